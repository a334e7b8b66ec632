# Chapter 5: DeepSeekMoE. Four short runs on chapter 1's data (running chapter 1
# first if its outputs are missing), each with seeds 1, 2 and 3: the dense
# baseline and the same model with DeepSeekMoE layers at matched activated
# parameters, the MoE model balanced by the bias update, by the auxiliary loss,
# and not at all. Writes runs/ch05/ (NAME-sSEED/ per run: metrics.csv and
# expert_load.csv; params.csv, per_seed.csv, results.csv = mean and sd over the
# seeds, curves.csv, summary.txt), copies the summaries to results/ch05/ and
# draws figures/ch05-*.png. CH05_STEPS=N for longer runs, CH05_SEEDS="1 2 3 4 5"
# for more seeds.
CHAPTERS += ch5
CH05 := runs/ch05
CH05_STEPS ?= 250
CH05_SEEDS ?= 1 2 3

.PHONY: ch5
ch5: $(CLI_BIN)
	@test -f runs/ch01/tokenizer.json -a -f runs/ch01/data/pretrain_train.txt || $(MAKE) --no-print-directory ch1
	@rm -rf $(CH05)
	@bash scripts/ch05-runs.sh $(TS) $(CH05) $(CH05_STEPS) "$(CH05_SEEDS)"
	@bash scripts/figures.sh $(sort $(wildcard figures/ch05-*.gp))
