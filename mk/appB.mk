# Appendix B: FP8 training. Chapter 5's MoE model (configs/ch05-moe.json) trained
# on chapter 1's data (running chapter 1 first if its outputs are missing) in
# float32, in simulated FP8 with V3's fine-grained scales, in FP8 with one
# scale per tensor, and in float32 with the other sgemm (the noise floor), for 3
# seeds each: 12 runs, two at a time. Writes runs/appB/ (metrics.csv per run,
# runs.csv, results.csv, gap.csv, summary.txt) and draws figures/appB-loss.png. Chapter 5's 250 steps; simulated FP8 is several times
# slower than sgemm, so this is the slowest target: APPB_STEPS=N to change it.
CHAPTERS += appB
APPB := runs/appB
APPB_STEPS ?= 250

.PHONY: appB
appB: $(CLI_BIN)
	@test -f runs/ch01/tokenizer.json -a -f runs/ch01/data/pretrain_train.txt || $(MAKE) --no-print-directory ch1
	@rm -rf $(APPB)
	@bash scripts/appB-runs.sh $(TS) $(APPB) $(APPB_STEPS)
	@bash scripts/figures.sh figures/appB-loss.gp
