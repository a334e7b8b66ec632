# make pipeline: the whole DeepSeek-R1 recipe in miniature (chapter 10), with
# the chapters' own commands: pretrain the base (chapter 7's MLA + MoE) and a
# dense student, cold-start SFT, GRPO, rejection sampling from the RL model and
# SFT of the base on it (R1's stage 3), a second GRPO stage, then distillation
# of the final model into the student (SFT on its filtered samples; and
# logit-level KD). Every stage is evaluated as chapter 8 evaluates. Needs only
# runs/ch01 (running make ch1 if it is missing). Writes runs/pipeline/ (see
# scripts/pipeline-runs.sh), copies the summaries to results/pipeline/ and
# draws figures/pipeline-*.png.
# The default sizes are meant for about 10 minutes on a quiet 2-core machine
# (the committed run, on a machine shared with other jobs, took 34 minutes);
# FULL=1 uses chapters 7 and 8's sizes (8000 pretraining steps, 200 GRPO
# steps, 3 seeds), about three times as long. Sizes: PIPE_SEEDS, PIPE_PRETRAIN_STEPS (base and
# student), PIPE_SFT_STEPS (each SFT and the distillation), PIPE_STEPS (each
# GRPO stage), PIPE_MU, PIPE_GROUP, PIPE_PROMPTS, PIPE_LR, PIPE_BETA,
# PIPE_RL_MIN_DIFFICULTY, PIPE_RS_PROMPTS (per difficulty), PIPE_RS_SAMPLES,
# PIPE_KD (1: the logit-level student too), PIPE_EVAL_PROBLEMS (per
# difficulty), PIPE_EVAL_SAMPLES, PIPE_MAX_NEW, PIPE_TEMPERATURE.
CHAPTERS += pipeline
PIPE := runs/pipeline
ifeq ($(FULL),1)
PIPE_SEEDS ?= 3
PIPE_PRETRAIN_STEPS ?= 8000
PIPE_STEPS ?= 200
else
PIPE_SEEDS ?= 2
PIPE_PRETRAIN_STEPS ?= 4000
PIPE_STEPS ?= 100
endif
PIPE_SFT_STEPS ?= 300
PIPE_MU ?= 2
PIPE_GROUP ?= 8
PIPE_PROMPTS ?= 8
PIPE_LR ?= 1e-4
PIPE_BETA ?= 0.04
PIPE_RL_MIN_DIFFICULTY ?= 3
PIPE_RS_PROMPTS ?= 250
PIPE_RS_SAMPLES ?= 8
PIPE_KD ?= 1
PIPE_EVAL_PROBLEMS ?= 100
PIPE_EVAL_SAMPLES ?= 16
PIPE_MAX_NEW ?= 96
PIPE_TEMPERATURE ?= 0.6

.PHONY: pipeline
pipeline: $(CLI_BIN)
	@test -f runs/ch01/tokenizer.json -a -f runs/ch01/data/sft_train.jsonl -a -f runs/ch01/data/test.jsonl \
	  || $(MAKE) --no-print-directory ch1
	@rm -rf $(PIPE)
	@SEEDS=$(PIPE_SEEDS) PRETRAIN_STEPS=$(PIPE_PRETRAIN_STEPS) SFT_STEPS=$(PIPE_SFT_STEPS) STEPS=$(PIPE_STEPS) \
	  MU=$(PIPE_MU) GROUP=$(PIPE_GROUP) PROMPTS=$(PIPE_PROMPTS) LR=$(PIPE_LR) BETA=$(PIPE_BETA) \
	  RL_MIN_DIFFICULTY=$(PIPE_RL_MIN_DIFFICULTY) RS_PROMPTS=$(PIPE_RS_PROMPTS) RS_SAMPLES=$(PIPE_RS_SAMPLES) \
	  KD=$(PIPE_KD) EVAL_PROBLEMS=$(PIPE_EVAL_PROBLEMS) EVAL_SAMPLES=$(PIPE_EVAL_SAMPLES) MAX_NEW=$(PIPE_MAX_NEW) \
	  TEMPERATURE=$(PIPE_TEMPERATURE) bash scripts/pipeline-runs.sh $(TS) $(PIPE)
	@bash scripts/figures.sh $(sort $(wildcard figures/pipeline-*.gp))
