#!/usr/bin/env bash
# Chapter 9's experiment (make ch9): DeepSeek-R1's Table 6 question asked of
# tinyseek. A small dense student (configs/ch09-student.json, GQA, Llama-like)
# learns the task from a fixed teacher (the best chapter-8 model trained from
# the SFT model, seed 1's checkpoint), or without one. The student's base model
# is pretrained once and shared by the seeds (as chapter 7's is); for each of
# 3 seeds:
#
#   sft      the student base + cold-start SFT on sft_train.jsonl (no teacher)
#   grpo     sft followed by GRPO with chapter 8's settings (RL on the student itself), on
#            the RL-train prompts of difficulty >= RL_MIN_DIFFICULTY (2: all of them)
#   grpo3    the same on chapter 8's prompts exactly (difficulty 3 only)
#   seqkd    sequence-level distillation, R1's way: the teacher samples RS_SAMPLES
#            completions per rl_train.jsonl prompt (r1 template), chapter 7's
#            rejection filter keeps the right, clean, distinct ones, and the
#            student base is fine-tuned on the kept pairs
#   logitkd  logit-level distillation (tinyseek distill) of the student base from
#            the teacher on the cold-start pairs: alpha*CE + (1-alpha)*T^2*KL, T = KD_TEMPERATURE
#   logitkd_t2  the same at T = KD_TEMPERATURE_ALT (Hinton's usual 2)
#
# sft, seqkd and the logitkd arms train the student for the same STEPS optimizer
# steps of the same batch; grpo and grpo3 spend GRPO's steps and rollouts on top of sft. The
# teacher and every student model are evaluated as chapter 8 evaluates.
#
# scripts/pool.sh runs the work as independent jobs, two at a time, longest
# first: first the student's pretraining beside the teacher's sampling and
# evaluation, then every arm of every seed (sft and the GRPO arms from it form
# one job). One thread per process and fixed seeds: the pool changes no number.
#
#   scripts/ch09-runs.sh TINYSEEK OUTDIR
#
# Sizes come from the environment (make ch9 passes its CH09_* variables):
#   PRETRAIN_STEPS STEPS BATCH RS_PROMPTS (per difficulty, 0 = all) RS_SAMPLES ALPHA KD_TEMPERATURE KD_TEMPERATURE_ALT
#   GRPO_STEPS MU GROUP PROMPTS LR BETA RL_MIN_DIFFICULTY EVAL_PROBLEMS EVAL_SAMPLES MAX_NEW TEMPERATURE
# Writes OUTDIR/student-base/, OUTDIR/teacher.txt, OUTDIR/seedS/ARM/ (checkpoint + metrics.csv),
# OUTDIR/seedS/ARM.csv (evaluation), then OUTDIR/results.csv, by_difficulty.csv, per_seed.csv,
# passk.csv, run.csv, cost.csv, summary.txt (scripts/ch09-table.py).
set -euo pipefail
ts=${1:?usage: ch09-runs.sh TINYSEEK OUTDIR}
out=${2:?usage: ch09-runs.sh TINYSEEK OUTDIR}
: "${PRETRAIN_STEPS:=3000}" "${PRETRAIN_BATCH:=8}" "${PRETRAIN_SEQ:=128}" "${STEPS:=600}" "${BATCH:=16}"
: "${RS_PROMPTS:=0}" "${RS_SAMPLES:=2}" "${ALPHA:=0.5}" "${KD_TEMPERATURE:=1}" "${KD_TEMPERATURE_ALT:=2}"
: "${GRPO_STEPS:=100}" "${MU:=2}" "${GROUP:=8}" "${PROMPTS:=8}" "${LR:=1e-4}" "${BETA:=0.04}" "${RL_MIN_DIFFICULTY:=2}"
: "${EVAL_PROBLEMS:=100}" "${EVAL_SAMPLES:=8}" "${MAX_NEW:=96}" "${TEMPERATURE:=0.6}"
export PRETRAIN_STEPS PRETRAIN_BATCH PRETRAIN_SEQ STEPS BATCH RS_PROMPTS RS_SAMPLES ALPHA KD_TEMPERATURE KD_TEMPERATURE_ALT
export GRPO_STEPS MU GROUP PROMPTS LR BETA RL_MIN_DIFFICULTY EVAL_PROBLEMS EVAL_SAMPLES MAX_NEW TEMPERATURE
data=${DATA:-runs/ch01/data}
ch8=${CH8:-runs/ch08}
for f in $data/pretrain_train.txt $data/sft_train.jsonl $data/rl_train.jsonl $data/test.jsonl runs/ch01/tokenizer.json \
         $ch8/results.csv configs/ch09-student.json; do
  [[ -f $f ]] || { echo "ch09-runs: $f is missing (make ch8 writes it)" >&2; exit 2; }
done
mkdir -p "$out"
start=$(date +%s)

# The teacher: of chapter 8's arms trained from the SFT model, the one with the
# highest mean sampled pass@1 over its seeds; seed 1's checkpoint, frozen.
teacher_arm=$(python3 - "$ch8/results.csv" 2>"$out/teacher.txt" <<'PY'
import csv, sys
rows = [r for r in csv.DictReader(open(sys.argv[1])) if r["model"] in ("sftmore", "rft", "ppo", "grpo")]
if not rows:
    sys.exit("ch09-runs: %s has none of the arms trained from the SFT model (sftmore, rft, ppo, grpo)" % sys.argv[1])
best = max(rows, key=lambda r: float(r["pass1_mean"]))
print(best["model"])
for r in sorted(rows, key=lambda r: -float(r["pass1_mean"])):
    print("  %-8s sampled pass@1 %s ± %s (%s)" % (r["model"], r["pass1_mean"], r["pass1_sd"], r["label"]), file=sys.stderr)
PY
)
teacher=$ch8/seed1/$teacher_arm
[[ -f $teacher/model.safetensors ]] || { echo "ch09-runs: $teacher/model.safetensors is missing (make ch8 writes it)" >&2; exit 2; }
{ echo "teacher: $teacher (chapter 8's '$teacher_arm', the highest mean sampled pass@1 of the arms trained from the SFT model):"
  cat "$out/teacher.txt"; } >"$out/teacher.tmp" && mv "$out/teacher.tmp" "$out/teacher.txt"
cat "$out/teacher.txt"

# RL prompts: grpo's, rl_train.jsonl's problems of difficulty >= RL_MIN_DIFFICULTY
# (chapter 8 kept difficulty 3 only, because its SFT model already answered
# nearly every difficulty-2 problem; this student does not), and grpo3's,
# chapter 8's own.
prompts() {   # prompts MIN_DIFFICULTY FILE
  python3 - "$data/rl_train.jsonl" "$1" >"$2" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    if json.loads(line)["difficulty"] >= int(sys.argv[2]):
        sys.stdout.write(line)
PY
  [[ -s $2 ]] || { echo "ch09-runs: no RL prompts of difficulty >= $1" >&2; exit 2; }
}
prompts "$RL_MIN_DIFFICULTY" "$out/rl_prompts.jsonl"
prompts 3 "$out/rl_prompts_d3.jsonl"

step() {   # step SEED NAME COMMAND...: run, log to OUTDIR/seedS/NAME.log, stop the seed on failure
  local seed=$1 name=$2; shift 2
  local t0=$(date +%s.%N)
  "$@" >"$out/seed$seed/$name.log" 2>&1 ||
    { echo "ch09-runs: seed $seed: $name failed:" >&2; tail -3 "$out/seed$seed/$name.log" >&2; return 1; }
  echo "$name,$(python3 -c "import sys; print('%.1f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$t0" "$(date +%s.%N)")" \
    >>"$out/seed$seed/seconds.csv"
}

# The jobs. A job that needs another's output runs after it in the same
# function; the rest are independent, and scripts/pool.sh runs them two at a
# time, longest first. Every process runs one thread from fixed seeds, so the
# order changes no number, only the wall clock.
train_args() {   # the student arms' shared SFT flags for seed $1
  echo --steps "$STEPS" --batch "$BATCH" --warmup $((STEPS / 15 + 1)) --eval-every 0 --seed "$1" --threads 1 --quiet
}
evaluate() {   # evaluate SEED NAME MODEL: chapter 8's evaluation, r1 template
  local s=$1
  step "$s" "eval-$2" "$ts" evaluate --model "$3" --label "$2" --problems $data/test.jsonl --limit "$EVAL_PROBLEMS" \
    --samples "$EVAL_SAMPLES" --max-new "$MAX_NEW" --temperature "$TEMPERATURE" --seed "$s" --threads 1 --quiet \
    --template r1 --csv "$out/seed$s/$2.csv"
}
pretrain_student() {   # one student base for all seeds, as chapter 7 pretrains its base: 128-token windows, one thread
  "$ts" pretrain --config configs/ch09-student.json --data $data --tokenizer runs/ch01/tokenizer.json \
    --out "$out/student-base" --steps "$PRETRAIN_STEPS" --batch "$PRETRAIN_BATCH" --seq "$PRETRAIN_SEQ" \
    --warmup $((PRETRAIN_STEPS / 15 + 1)) --eval-every 250 --seed 1 --init-seed 1 \
    --threads 1 --quiet >"$out/pretrain.log" 2>&1 ||
    { echo "ch09-runs: pretraining failed:" >&2; tail -3 "$out/pretrain.log" >&2; return 1; }
  echo "ch09: $(tail -1 "$out/pretrain.log")"
}
teacher_samples() {   # teacher_samples SEED: the teacher's completions for sequence KD
  local s=$1
  step "$s" teacher-samples "$ts" rejection-sample --model "$teacher" --data $data --limit "$RS_PROMPTS" \
    --samples "$RS_SAMPLES" --max-new "$MAX_NEW" --temperature "$TEMPERATURE" --seed "$((s + 100))" \
    --out "$out/seed$s/teacher_pairs.jsonl" --threads 1 --quiet
  echo "ch09: seed $s: teacher: $(sed -n 's/^rejection-sample: //p' "$out/seed$s/teacher-samples.log")"
}
rl_arms() {   # rl_arms SEED: sft, then GRPO from it on both prompt sets
  local s=$1 d=$out/seed$1
  step "$s" sft "$ts" sft --init "$out/student-base" --data $data --out "$d/sft" $(train_args "$s")
  evaluate "$s" sft "$d/sft"
  local rl=(--test $data/test.jsonl --group "$GROUP" --prompts "$PROMPTS" --mu "$MU" --lr "$LR" --min-lr "$LR" --beta "$BETA"
            --clip-low 0.2 --clip-high 0.28 --max-new "$MAX_NEW" --eval-every 0 --eval-problems 0
            --seed "$s" --sample-seed "$s" --threads 1 --quiet)
  step "$s" grpo "$ts" grpo --init "$d/sft" --template r1 --out "$d/grpo" --steps "$GRPO_STEPS" \
    --train "$out/rl_prompts.jsonl" "${rl[@]}"
  evaluate "$s" grpo "$d/grpo"
  step "$s" grpo3 "$ts" grpo --init "$d/sft" --template r1 --out "$d/grpo3" --steps "$GRPO_STEPS" \
    --train "$out/rl_prompts_d3.jsonl" "${rl[@]}"
  evaluate "$s" grpo3 "$d/grpo3"
  echo "ch09: seed $s: sft, grpo, grpo3 done ($(( $(date +%s) - start )) s)"
}
logitkd_arm() {   # logitkd_arm SEED NAME TEMPERATURE
  local s=$1 d=$out/seed$1
  step "$s" "$2" "$ts" distill --teacher "$teacher" --init "$out/student-base" --data $data --out "$d/$2" \
    --alpha "$ALPHA" --temperature "$3" $(train_args "$s")
  evaluate "$s" "$2" "$d/$2"
  echo "ch09: seed $s: $2 done ($(( $(date +%s) - start )) s)"
}
seqkd_arm() {   # seqkd_arm SEED (after teacher_samples SEED)
  local s=$1 d=$out/seed$1
  step "$s" seqkd "$ts" sft --init "$out/student-base" --train "$d/teacher_pairs.jsonl" --test $data/sft_test.jsonl \
    --out "$d/seqkd" $(train_args "$s")
  evaluate "$s" seqkd "$d/seqkd"
  echo "ch09: seed $s: seqkd done ($(( $(date +%s) - start )) s)"
}

source scripts/pool.sh
for s in 1 2 3; do
  mkdir -p "$out/seed$s"
  echo "step,seconds" >"$out/seed$s/seconds.csv"
done
# Round 1: the student's pretraining beside the teacher's work (its samples and
# its evaluation), which needs no student.
echo "ch09: pretraining the student ($PRETRAIN_STEPS steps of $PRETRAIN_BATCH x $PRETRAIN_SEQ tokens) beside the teacher's sampling"
pool_run pretrain pretrain_student
for s in 1 2 3; do pool_run "seed $s: teacher-samples" teacher_samples $s; done
for s in 1 2 3; do pool_run "seed $s: eval-teacher" evaluate $s teacher "$teacher"; done
pool_wait || { echo "ch09-runs: stopped (see above)" >&2; exit 1; }
# Round 2: every student arm from the student base, longest first.
for s in 1 2 3; do pool_run "seed $s: sft+grpo" rl_arms $s; done
for s in 1 2 3; do
  pool_run "seed $s: logitkd" logitkd_arm $s logitkd "$KD_TEMPERATURE"
  pool_run "seed $s: logitkd_t2" logitkd_arm $s logitkd_t2 "$KD_TEMPERATURE_ALT"
done
for s in 1 2 3; do pool_run "seed $s: seqkd" seqkd_arm $s; done
pool_wait || { echo "ch09-runs: stopped (see above)" >&2; exit 1; }
elapsed=$(( $(date +%s) - start ))
TEACHER=$teacher TEACHER_ARM=$teacher_arm python3 scripts/ch09-table.py "$out" "$elapsed" | tee "$out/summary.txt"

# The summaries the chapter quotes, into the tracked results/ch09/.
bash scripts/save-results.sh "$out" ch09 \
  results.csv by_difficulty.csv per_seed.csv passk.csv arms.csv run.csv cost.csv teacher.txt summary.txt
