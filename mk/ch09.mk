# Chapter 9: distillation. DeepSeek-R1's Table 6 question in miniature: a
# small dense student (configs/ch09-student.json) learns from a fixed teacher
# (the best chapter-8 arm trained from the SFT model by mean sampled pass@1,
# seed 1's checkpoint; chapter 8 runs first if its models are missing), or
# without one. The student is pretrained once; for 3 seeds it is then trained
# at the same optimizer steps and batch by cold-start SFT (sft), SFT on the
# teacher's rejection-filtered samples (seqkd) and logit distillation on the
# cold-start pairs at two temperatures (logitkd, logitkd_t2); and sft is
# followed by GRPO with chapter 8's settings on all RL prompts (grpo) and on
# chapter 8's difficulty-3 prompts (grpo3).
# Evaluates the teacher and every student as chapter 8 does. The work runs as
# independent jobs, two at a time, longest first (scripts/pool.sh). Writes runs/ch09/
# (per-seed checkpoints, evaluations, results.csv, by_difficulty.csv,
# per_seed.csv, passk.csv, cost.csv, run.csv, teacher.txt, summary.txt),
# copies the summaries to results/ch09/ and draws figures/ch09-*.png.
# Sizes: CH09_PRETRAIN_STEPS (the student's pretraining), CH09_STEPS and
# CH09_BATCH (every student arm's optimizer steps and pairs per step),
# CH09_RS_PROMPTS (teacher prompts per difficulty, 0 = all of rl_train.jsonl),
# CH09_RS_SAMPLES (teacher samples per prompt), CH09_ALPHA, CH09_KD_TEMPERATURE
# and CH09_KD_TEMPERATURE_ALT (logit KD's two arms), CH09_GRPO_STEPS,
# CH09_RL_MIN_DIFFICULTY (the grpo arm's prompts; the rest of GRPO's settings
# are chapter 8's CH08_*),
# CH09_EVAL_PROBLEMS (per difficulty), CH09_EVAL_SAMPLES, CH09_MAX_NEW,
# CH09_TEMPERATURE.
CHAPTERS += ch9
CH09 := runs/ch09
CH09_PRETRAIN_STEPS ?= 3000
CH09_STEPS ?= 600
CH09_BATCH ?= 16
CH09_RS_PROMPTS ?= 0
# Two teacher samples per prompt, not four: at temperature 0.6 a problem's right
# samples are mostly the same text, and four kept only about 0.5% more distinct
# pairs (1918 against 1905-1913 per seed, with chapter 8's first teacher).
CH09_RS_SAMPLES ?= 2
CH09_ALPHA ?= 0.5
CH09_KD_TEMPERATURE ?= 1
CH09_KD_TEMPERATURE_ALT ?= 2
CH09_GRPO_STEPS ?= $(CH08_STEPS)
CH09_RL_MIN_DIFFICULTY ?= 2
CH09_EVAL_PROBLEMS ?= $(CH08_EVAL_PROBLEMS)
CH09_EVAL_SAMPLES ?= $(CH08_EVAL_SAMPLES)
CH09_MAX_NEW ?= $(CH08_MAX_NEW)
CH09_TEMPERATURE ?= $(CH08_TEMPERATURE)

.PHONY: ch9
ch9: $(CLI_BIN)
	@test -f runs/ch08/results.csv -a -f runs/ch08/seed1/grpo/model.safetensors -a -f runs/ch08/seed1/rft/model.safetensors || $(MAKE) --no-print-directory ch8
	@rm -rf $(CH09)
	@PRETRAIN_STEPS=$(CH09_PRETRAIN_STEPS) STEPS=$(CH09_STEPS) BATCH=$(CH09_BATCH) RS_PROMPTS=$(CH09_RS_PROMPTS) \
	  RS_SAMPLES=$(CH09_RS_SAMPLES) ALPHA=$(CH09_ALPHA) KD_TEMPERATURE=$(CH09_KD_TEMPERATURE) KD_TEMPERATURE_ALT=$(CH09_KD_TEMPERATURE_ALT) GRPO_STEPS=$(CH09_GRPO_STEPS) \
	  MU=$(CH08_MU) GROUP=$(CH08_GROUP) PROMPTS=$(CH08_PROMPTS) LR=$(CH08_LR) BETA=$(CH08_BETA) \
	  RL_MIN_DIFFICULTY=$(CH09_RL_MIN_DIFFICULTY) EVAL_PROBLEMS=$(CH09_EVAL_PROBLEMS) EVAL_SAMPLES=$(CH09_EVAL_SAMPLES) \
	  MAX_NEW=$(CH09_MAX_NEW) TEMPERATURE=$(CH09_TEMPERATURE) bash scripts/ch09-runs.sh $(TS) $(CH09)
	@bash scripts/figures.sh $(sort $(wildcard figures/ch09-*.gp))
