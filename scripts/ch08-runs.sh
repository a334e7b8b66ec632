#!/usr/bin/env bash
# Chapter 8's experiment (make ch8): reinforcement learning with rule rewards on
# chapter 7's models, for each of 3 seeds (seed S starts from chapter 7's seed-S
# cold-start SFT model; the base model is chapter 7's, shared by the seeds):
#
#   grpo    R1 in miniature: GRPO from the SFT model, r1 template
#   zero    R1-Zero in miniature: GRPO from the base model, R1-Zero's prompt (the paper's Table 1)
#   zeroq   R1-Zero from the base model asked as its own pretraining text asks
#           ("What is 31+86?", template question), where it sometimes writes the tags
#   sftmore baseline: as many more SFT steps on the cold-start pairs
#   rft     baseline: online rejection-sampling fine-tuning (SFT on each step's right, clean samples)
#   ppo     baseline: PPO with a learned value head (the critic GRPO drops)
#
# grpo, rft and ppo sample the same number of completions (STEPS/MU rollout
# batches of PROMPTS x GROUP). Every model, and the two starting points, is
# evaluated on the test set the way chapter 7 evaluates. Nothing is computed
# twice: where chapter 7 already evaluated a starting point (sft, base) with
# exactly the arguments this run would use (its seedS/MODEL.args says so), its
# CSV is copied; and where R1-Zero's weights come out byte for byte the base's
# (zero rewards, zero advantages), its evaluation is the base's, relabelled.
#
#   scripts/ch08-runs.sh TINYSEEK OUTDIR
#
# Sizes come from the environment (make ch8 passes its CH08_* variables):
#   STEPS MU GROUP PROMPTS LR BETA ZERO_STEPS EVAL_PROBLEMS (per difficulty) EVAL_SAMPLES MAX_NEW TEMPERATURE
# Writes OUTDIR/seedS/ARM/ (checkpoint + metrics.csv), OUTDIR/seedS/ARM.csv (evaluation),
# then OUTDIR/results.csv, by_difficulty.csv, per_seed.csv, passk.csv, curves.csv, training.csv, run.csv, summary.txt.
set -euo pipefail
ts=${1:?usage: ch08-runs.sh TINYSEEK OUTDIR}
out=${2:?usage: ch08-runs.sh TINYSEEK OUTDIR}
: "${STEPS:=200}" "${MU:=2}" "${GROUP:=8}" "${PROMPTS:=8}" "${LR:=1e-4}" "${BETA:=0.04}" "${ZERO_STEPS:=20}" "${RL_MIN_DIFFICULTY:=3}"
: "${EVAL_PROBLEMS:=100}" "${EVAL_SAMPLES:=16}" "${MAX_NEW:=96}" "${TEMPERATURE:=0.6}"
export STEPS MU GROUP PROMPTS LR BETA ZERO_STEPS RL_MIN_DIFFICULTY EVAL_PROBLEMS EVAL_SAMPLES MAX_NEW TEMPERATURE
data=${DATA:-runs/ch01/data}
ch7=${CH7:-runs/ch07}
for f in $data/rl_train.jsonl $data/test.jsonl $ch7/base/model.safetensors $ch7/seed1/sft/model.safetensors; do
  [[ -f $f ]] || { echo "ch08-runs: $f is missing (make ch7 writes it)" >&2; exit 2; }
done
mkdir -p "$out"
start=$(date +%s)
# RL prompts: rl_train.jsonl's problems of difficulty >= RL_MIN_DIFFICULTY. Chapter 7's
# SFT model already answers most difficulty-2 problems, and a group whose
# completions are all right has zero advantage: it costs a rollout and teaches nothing.
# The price (the book run, 4000-step base): the arms from the SFT model gain at
# difficulty 3 and lose much of difficulty 2, which they are never shown (chapter 8).
python3 - "$data/rl_train.jsonl" "$RL_MIN_DIFFICULTY" >"$out/rl_prompts.jsonl" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    if json.loads(line)["difficulty"] >= int(sys.argv[2]):
        sys.stdout.write(line)
PY
[[ -s $out/rl_prompts.jsonl ]] || { echo "ch08-runs: no RL prompts of difficulty >= $RL_MIN_DIFFICULTY" >&2; exit 2; }

step() {   # step SEED NAME COMMAND...: run, log to OUTDIR/seedS/NAME.log, stop the seed on failure
  local seed=$1 name=$2; shift 2
  "$@" >"$out/seed$seed/$name.log" 2>&1 ||
    { echo "ch08-runs: seed $seed: $name failed:" >&2; tail -3 "$out/seed$seed/$name.log" >&2; return 1; }
}

args() {   # args SEED: the RL settings (rl) and the evaluation settings (ev) of seed SEED
  rl=(--train "$out/rl_prompts.jsonl" --test $data/test.jsonl --group "$GROUP" --prompts "$PROMPTS" --mu "$MU" --lr "$LR" --min-lr "$LR" --beta "$BETA"
      --clip-low 0.2 --clip-high 0.28 --max-new "$MAX_NEW" --eval-every 0 --eval-problems 0
      --seed "$1" --sample-seed "$1" --threads 1 --quiet)
  ev=(--problems $data/test.jsonl --limit "$EVAL_PROBLEMS" --samples "$EVAL_SAMPLES" --max-new "$MAX_NEW"
      --temperature "$TEMPERATURE" --seed "$1" --threads 1 --quiet)
}

# The pool's jobs: one arm's training and its evaluation, or one evaluation of a
# starting point. job_ARM SEED.
job_grpo() { local s=$1 d=$out/seed$1 rl ev; args "$s"
  step "$s" grpo "$ts" grpo --init $ch7/seed$s/sft --template r1 --out "$d/grpo" --steps "$STEPS" "${rl[@]}"
  step "$s" eval-grpo "$ts" evaluate --model "$d/grpo" --template r1 --label grpo "${ev[@]}" --csv "$d/grpo.csv"; }
job_rft() { local s=$1 d=$out/seed$1 rl ev; args "$s"
  step "$s" rft "$ts" grpo --algo rft --init $ch7/seed$s/sft --template r1 --out "$d/rft" --steps "$STEPS" "${rl[@]}"
  step "$s" eval-rft "$ts" evaluate --model "$d/rft" --template r1 --label rft "${ev[@]}" --csv "$d/rft.csv"; }
job_ppo() { local s=$1 d=$out/seed$1 rl ev; args "$s"
  step "$s" ppo "$ts" grpo --algo ppo --init $ch7/seed$s/sft --template r1 --out "$d/ppo" --steps "$STEPS" "${rl[@]}"
  step "$s" eval-ppo "$ts" evaluate --model "$d/ppo" --template r1 --label ppo "${ev[@]}" --csv "$d/ppo.csv"; }
job_sftmore() { local s=$1 d=$out/seed$1 ev; args "$s"
  step "$s" sftmore "$ts" sft --init $ch7/seed$s/sft --data $data --out "$d/sftmore" --steps "$STEPS" --batch 16 \
    --lr "$LR" --min-lr "$LR" --warmup 0 --eval-every 0 --seed "$s" --threads 1 --quiet
  step "$s" eval-sftmore "$ts" evaluate --model "$d/sftmore" --template r1 --label sftmore "${ev[@]}" --csv "$d/sftmore.csv"; }
job_zero() { local s=$1 d=$out/seed$1 rl ev f same=1; args "$s"
  step "$s" zero "$ts" grpo --init $ch7/base --template r1-zero --out "$d/zero" --steps "$ZERO_STEPS" "${rl[@]}"
  for f in model.safetensors config.json tokenizer.json; do cmp -s "$d/zero/$f" "$ch7/base/$f" || same=0; done
  if (( same )) && [[ -f $d/base.csv && -f $d/base.reused ]]; then
    sed 's/^base,/zero,/' "$d/base.csv" >"$d/zero.csv"
    echo "the weights are the base model's, byte for byte: its evaluation is the base's ($d/base.csv), relabelled" >"$d/eval-zero.log"
  else
    step "$s" eval-zero "$ts" evaluate --model "$d/zero" --template r1-zero --label zero "${ev[@]}" --csv "$d/zero.csv"
  fi; }
job_zeroq() { local s=$1 d=$out/seed$1 rl ev; args "$s"
  step "$s" zeroq "$ts" grpo --init $ch7/base --template question --out "$d/zeroq" --steps "$STEPS" "${rl[@]}"
  step "$s" eval-zeroq "$ts" evaluate --model "$d/zeroq" --template question --label zeroq "${ev[@]}" --csv "$d/zeroq.csv"; }
job_sft() { local s=$1 d=$out/seed$1 ev; args "$s"
  step "$s" eval-sft "$ts" evaluate --model $ch7/seed$s/sft --template r1 --label sft "${ev[@]}" --csv "$d/sft.csv"; }
job_base() { local s=$1 d=$out/seed$1 ev; args "$s"
  step "$s" eval-base "$ts" evaluate --model $ch7/base --template r1-zero --label base "${ev[@]}" --csv "$d/base.csv"; }

# reuse SEED MODEL ARGS...: copy chapter 7's evaluation of MODEL for seed SEED when
# it ran `tinyseek evaluate ARGS` (its MODEL.args), true when it did.
reuse() {
  local s=$1 m=$2 d=$out/seed$1 src=$ch7/seed$1/$2; shift 2
  [[ -f $src.args && -f $src.csv && "$(cat "$src.args")" == "evaluate $*" ]] || return 1
  cp "$src.csv" "$d/$m.csv"
  echo "chapter 7's evaluation, the same command: $src.csv" >"$d/eval-$m.log"
  touch "$d/$m.reused"
}
job_baseq() { local s=$1 d=$out/seed$1 ev; args "$s"
  step "$s" eval-baseq "$ts" evaluate --model $ch7/base --template question --label baseq "${ev[@]}" --csv "$d/baseq.csv"; }

source scripts/pool.sh
jobs=()
for s in 1 2 3; do
  mkdir -p "$out/seed$s"
  args "$s"
  reuse "$s" sft --model $ch7/seed$s/sft --template r1 --label sft "${ev[@]}" || jobs+=("$s sft")
  reuse "$s" base --model $ch7/base --template r1-zero --label base "${ev[@]}" || jobs+=("$s base")
done
(( ${#jobs[@]} == 0 )) || echo "ch08: evaluating what chapter 7 did not evaluate the same way: ${jobs[*]}"
# Longest first (seconds per seed at 100 steps and 8 samples, roughly: zeroq 46,
# grpo 28, ppo 28, rft 25, base 21, baseq 10, zero 8 at 4 steps (and its evaluation
# the base's), sftmore 7, sft 3).
for j in zeroq grpo ppo rft base baseq zero sftmore sft; do
  for s in 1 2 3; do
    [[ $j != sft && $j != base ]] || [[ " ${jobs[*]} " == *" $s $j "* ]] || continue
    pool_run "seed $s $j" "job_$j" "$s"
  done
done
pool_wait || { echo "ch08-runs: a job failed (above)" >&2; exit 1; }
elapsed=$(( $(date +%s) - start ))
python3 scripts/ch08-table.py "$out" "$elapsed" | tee "$out/summary.txt"

# The summaries the chapter quotes, into the tracked results/ch08/.
bash scripts/save-results.sh "$out" ch08 \
  results.csv by_difficulty.csv per_seed.csv passk.csv curves.csv training.csv run.csv summary.txt
