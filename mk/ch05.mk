# Chapter 5: DeepSeekMoE. Four short runs on chapter 1's data (running chapter 1
# first if its outputs are missing): the dense baseline and the same model with
# DeepSeekMoE layers at matched activated parameters, the MoE model balanced by
# the bias update, by the auxiliary loss, and not at all. Writes runs/ch05/
# (metrics.csv and expert_load.csv per run, params.csv, balance.csv,
# summary.txt) and draws figures/ch05-*.png. CH05_STEPS=N for longer runs.
CHAPTERS += ch5
CH05 := runs/ch05
CH05_STEPS ?= 250

.PHONY: ch5
ch5: $(CLI_BIN)
	@test -f runs/ch01/tokenizer.json -a -f runs/ch01/data/pretrain_train.txt || $(MAKE) --no-print-directory ch1
	@rm -rf $(CH05)
	@bash scripts/ch05-runs.sh $(TS) $(CH05) $(CH05_STEPS)
	@bash scripts/figures.sh $(sort $(wildcard figures/ch05-*.gp))
