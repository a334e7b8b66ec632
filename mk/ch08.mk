# Chapter 8: GRPO. For 3 seeds, from chapter 7's models (running chapter 7
# first if they are missing): GRPO from the cold-start SFT model (R1), GRPO from
# the base model with the R1-Zero prompt (R1-Zero), and three baselines from
# the SFT model with the same sampling budget or steps: more SFT, online
# rejection-sampling fine-tuning, PPO with a value head. Evaluates every model
# as chapter 7 does. Writes runs/ch08/ (per-seed checkpoints, metrics and
# evaluations, results.csv, by_difficulty.csv, passk.csv, curves.csv, run.csv,
# summary.txt), copies the summaries to results/ch08/ and draws figures/ch08-*.png.
# Sizes: CH08_STEPS (optimizer steps), CH08_MU (steps per rollout batch),
# CH08_GROUP (G), CH08_PROMPTS (prompts per rollout batch), CH08_LR, CH08_BETA,
# CH08_ZERO_STEPS (R1-Zero's steps: its prompt is long), CH08_EVAL_PROBLEMS
# (per difficulty), CH08_EVAL_SAMPLES, CH08_MAX_NEW, CH08_TEMPERATURE.
# At CH08_EVAL_SAMPLES = CH07_EVAL_SAMPLES (and chapter 7's other evaluation sizes)
# the SFT and base models' evaluations are chapter 7's, read from runs/ch07/.
CHAPTERS += ch8
CH08 := runs/ch08
CH08_STEPS ?= 100
CH08_MU ?= 2
CH08_GROUP ?= 8
CH08_PROMPTS ?= 8
CH08_LR ?= 1e-4
CH08_BETA ?= 0.04
CH08_ZERO_STEPS ?= 4
CH08_RL_MIN_DIFFICULTY ?= 3
CH08_EVAL_PROBLEMS ?= 100
CH08_EVAL_SAMPLES ?= 8
CH08_MAX_NEW ?= 96
CH08_TEMPERATURE ?= 0.6

.PHONY: ch8
ch8: $(CLI_BIN)
	@test -f runs/ch07/base/model.safetensors -a -f runs/ch07/seed3/sft/model.safetensors || $(MAKE) --no-print-directory ch7
	@rm -rf $(CH08)
	@STEPS=$(CH08_STEPS) MU=$(CH08_MU) GROUP=$(CH08_GROUP) PROMPTS=$(CH08_PROMPTS) LR=$(CH08_LR) BETA=$(CH08_BETA) \
	  ZERO_STEPS=$(CH08_ZERO_STEPS) RL_MIN_DIFFICULTY=$(CH08_RL_MIN_DIFFICULTY) EVAL_PROBLEMS=$(CH08_EVAL_PROBLEMS) EVAL_SAMPLES=$(CH08_EVAL_SAMPLES) \
	  MAX_NEW=$(CH08_MAX_NEW) TEMPERATURE=$(CH08_TEMPERATURE) bash scripts/ch08-runs.sh $(TS) $(CH08)
	@bash scripts/figures.sh $(sort $(wildcard figures/ch08-*.gp))
