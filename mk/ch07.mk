# Chapter 7: supervised fine-tuning. For 3 seeds: pretrain a base model with
# chapter 5's architecture (MLA + DeepSeekMoE, configs/ch07-base.json) on the
# pretraining corpus, cold-start SFT it, one round of rejection sampling + SFT;
# evaluate the three (base with the R1-Zero prompt). Writes runs/ch07/ (per-seed
# checkpoints and evaluation CSV/JSON, results.csv, by_difficulty.csv,
# passk.csv, run.csv, summary.txt) and draws figures/ch07-*.png.
# Sizes: CH07_PRETRAIN_STEPS, CH07_PRETRAIN_THREADS (the pretraining runs alone, so on
# both cores: a different thread count gives other bits), CH07_SFT_STEPS, CH07_RS_PROMPTS and CH07_EVAL_PROBLEMS
# (per difficulty), CH07_RS_SAMPLES, CH07_EVAL_SAMPLES, CH07_MAX_NEW, CH07_TEMPERATURE
# (of the samples, 0.6 as DeepSeek-R1 evaluates).
CHAPTERS += ch7
CH07 := runs/ch07
# 4000 steps: at 3000 (131 s -> 99 s alone on 2 cores) the base still added, but chapter 8's
# R1-Zero from it learned the format and no answers (pass@1 0.003 over 3 seeds); from a
# 4000-step base its training accuracy rose from 0.17 to 0.6 in 40 steps (one seed, a trial),
# and in the book run (3 seeds, 100 steps) its test pass@1 went from 0.04 to 0.30.
CH07_PRETRAIN_STEPS ?= 4000
CH07_PRETRAIN_THREADS ?= 2
CH07_SFT_STEPS ?= 300
CH07_RS_PROMPTS ?= 50
CH07_RS_SAMPLES ?= 8
CH07_EVAL_PROBLEMS ?= 100
CH07_EVAL_SAMPLES ?= 8
CH07_MAX_NEW ?= 96
CH07_TEMPERATURE ?= 0.6

.PHONY: ch7
ch7: $(CLI_BIN)
	@test -f runs/ch01/tokenizer.json -a -f runs/ch01/data/sft_train.jsonl || $(MAKE) --no-print-directory ch1
	@rm -rf $(CH07)
	@PRETRAIN_STEPS=$(CH07_PRETRAIN_STEPS) PRETRAIN_THREADS=$(CH07_PRETRAIN_THREADS) SFT_STEPS=$(CH07_SFT_STEPS) RS_PROMPTS=$(CH07_RS_PROMPTS) \
	  RS_SAMPLES=$(CH07_RS_SAMPLES) EVAL_PROBLEMS=$(CH07_EVAL_PROBLEMS) EVAL_SAMPLES=$(CH07_EVAL_SAMPLES) \
	  MAX_NEW=$(CH07_MAX_NEW) TEMPERATURE=$(CH07_TEMPERATURE) bash scripts/ch07-runs.sh $(TS) $(CH07)
	@bash scripts/figures.sh $(sort $(wildcard figures/ch07-*.gp))
