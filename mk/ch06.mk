# Chapter 6: multi-token prediction. Chapter 5's MoE model trained without and
# with one MTP module (λ = 0.1, 0.3, 1.0), three seeds each, on chapter 1's data
# (running chapter 1 first if its outputs are missing); each model answers 100
# test problems greedily, and the MTP models again with self-speculative
# decoding (same output, fewer main-model passes). Writes runs/ch06/
# (per_seed.csv, results.csv: mean ± sd over seeds, curves.csv, summary.txt)
# and draws figures/ch06-*.png. CH06_STEPS=N for longer runs, CH06_SEEDS="1 2 3".
CHAPTERS += ch6
CH06 := runs/ch06
CH06_STEPS ?= 400
CH06_SEEDS ?= 1 2 3
CH06_LAMBDAS ?= 0.1 0.3 1.0

.PHONY: ch6
ch6: $(CLI_BIN)
	@test -f runs/ch01/tokenizer.json -a -f runs/ch01/data/pretrain_train.txt || $(MAKE) --no-print-directory ch1
	@rm -rf $(CH06)
	@bash scripts/ch06-runs.sh $(TS) $(CH06) $(CH06_STEPS) "$(CH06_SEEDS)" "$(CH06_LAMBDAS)"
	@bash scripts/figures.sh $(sort $(wildcard figures/ch06-*.gp))
