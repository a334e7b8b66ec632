# Chapter 4: multi-head latent attention. MHA, GQA, MQA and MLA trained on
# chapter 1's data with the same steps and seeds (running chapter 1 first if
# its outputs are missing), their KV caches and decode speed (MLA naive and
# absorbed), and a context extension with and without YaRN. Writes runs/ch04/
# (a checkpoint and metrics.csv per model, decode-*.csv, yarn.csv,
# summary.csv/.txt) and draws figures/ch04-*.png. CH04_STEPS=N for longer runs.
CHAPTERS += ch4
CH04 := runs/ch04
CH04_STEPS ?= 250

.PHONY: ch4
ch4: $(CLI_BIN)
	@test -f runs/ch01/tokenizer.json -a -f runs/ch01/data/pretrain_train.txt || $(MAKE) --no-print-directory ch1
	@rm -rf $(CH04)
	@bash scripts/ch04-runs.sh $(TS) $(CH04) $(CH04_STEPS)
	@bash scripts/figures.sh $(sort $(wildcard figures/ch04-*.gp))
