# make pipeline: the whole DeepSeek-R1 recipe in miniature (chapter 10), with
# the chapters' own commands: from chapter 7's pretrained base (MLA + MoE),
# cold-start SFT, GRPO, rejection sampling from the RL model and SFT of the base
# on it (R1's stage 3), a second GRPO stage, then distillation of the final
# model into chapter 9's pretrained dense student (SFT on its filtered samples;
# and logit-level KD). Every stage is evaluated as chapter 8 evaluates. Reads
# runs/ch07 and runs/ch09 (make ch7 and make ch9 first: it says so when they are
# missing), and takes chapter 7's cold-start models and chapter 8's GRPO models
# as its first two stages where those chapters ran the same commands (the same
# steps and flags). Writes runs/pipeline/ (see scripts/pipeline-runs.sh), copies
# the summaries to results/pipeline/ and draws figures/pipeline-*.png.
# FULL=1: 3 seeds and 200 GRPO steps per stage. Sizes: PIPE_SEEDS,
# PIPE_SFT_STEPS (each SFT and the distillation; chapter 7's by default),
# PIPE_STEPS (each GRPO stage), PIPE_MU, PIPE_GROUP, PIPE_PROMPTS, PIPE_LR,
# PIPE_BETA, PIPE_RL_MIN_DIFFICULTY (chapter 8's by default), PIPE_RS_PROMPTS
# (per difficulty), PIPE_RS_SAMPLES, PIPE_KD (1: the logit-level student too),
# PIPE_EVAL_PROBLEMS (per difficulty), PIPE_EVAL_SAMPLES, PIPE_MAX_NEW,
# PIPE_TEMPERATURE.
CHAPTERS += pipeline
PIPE := runs/pipeline
ifeq ($(FULL),1)
PIPE_SEEDS ?= 3
PIPE_STEPS ?= 200
else
PIPE_SEEDS ?= 2
PIPE_STEPS ?= 100
endif
PIPE_SFT_STEPS ?= $(CH07_SFT_STEPS)
PIPE_MU ?= $(CH08_MU)
PIPE_GROUP ?= $(CH08_GROUP)
PIPE_PROMPTS ?= $(CH08_PROMPTS)
PIPE_LR ?= $(CH08_LR)
PIPE_BETA ?= $(CH08_BETA)
PIPE_RL_MIN_DIFFICULTY ?= $(CH08_RL_MIN_DIFFICULTY)
PIPE_RS_PROMPTS ?= 250
PIPE_RS_SAMPLES ?= 8
PIPE_KD ?= 1
PIPE_EVAL_PROBLEMS ?= $(CH08_EVAL_PROBLEMS)
PIPE_EVAL_SAMPLES ?= 8
PIPE_MAX_NEW ?= $(CH08_MAX_NEW)
PIPE_TEMPERATURE ?= $(CH08_TEMPERATURE)

.PHONY: pipeline
pipeline: $(CLI_BIN)
	@test -f runs/ch01/tokenizer.json -a -f runs/ch01/data/sft_train.jsonl -a -f runs/ch01/data/test.jsonl \
	  || $(MAKE) --no-print-directory ch1
	@rm -rf $(PIPE)
	@SEEDS=$(PIPE_SEEDS) SFT_STEPS=$(PIPE_SFT_STEPS) STEPS=$(PIPE_STEPS) \
	  MU=$(PIPE_MU) GROUP=$(PIPE_GROUP) PROMPTS=$(PIPE_PROMPTS) LR=$(PIPE_LR) BETA=$(PIPE_BETA) \
	  RL_MIN_DIFFICULTY=$(PIPE_RL_MIN_DIFFICULTY) RS_PROMPTS=$(PIPE_RS_PROMPTS) RS_SAMPLES=$(PIPE_RS_SAMPLES) \
	  KD=$(PIPE_KD) EVAL_PROBLEMS=$(PIPE_EVAL_PROBLEMS) EVAL_SAMPLES=$(PIPE_EVAL_SAMPLES) MAX_NEW=$(PIPE_MAX_NEW) \
	  TEMPERATURE=$(PIPE_TEMPERATURE) bash scripts/pipeline-runs.sh $(TS) $(PIPE)
	@bash scripts/figures.sh $(sort $(wildcard figures/pipeline-*.gp))
