#!/usr/bin/env bash
# make pipeline: DeepSeek-R1's recipe end to end in miniature (R1 §2.3 and §2.4),
# with the commands of chapters 7 and 8, on chapter 1's data:
#
#   base      pretrain configs/ch07-base.json (chapter 5's MLA + DeepSeekMoE) as chapter 7 does
#   sft       R1 stage 1, cold start: SFT of base on the cold-start pairs (sft_train.jsonl)
#   grpo1     R1 stage 2, reasoning RL: GRPO from sft with chapter 8's flags
#   rssft     R1 stage 3: rejection sampling from grpo1 on the RL prompts (right, clean,
#             distinct samples), then SFT of the BASE model on those + the cold-start pairs
#   grpo2     R1 stage 4: a second GRPO stage, from rssft (reasoning prompts only here)
#   student   the distillation student (configs/ch09-student.json, dense GQA), pretrained as base is
#   distill   R1 §2.4: SFT of student on grpo2's rejection-sampled responses (sequence level)
#   kd        optional (KD=1): logit-level distillation from grpo2 on the same pairs (tinyseek distill)
#
# The two pretrainings run side by side (one thread each); then each seed's
# post-training chain runs on one thread, two seeds at a time. Every model is
# evaluated the way chapter 8 evaluates (greedy and sampled pass@1, format rate,
# length, by difficulty) on the test set: the two pretrained models with the
# question template (the bare question, as their pretraining text asks it;
# R1-Zero's prompt gives them no answer at all, chapter 8), the others with r1.
#
#   scripts/pipeline-runs.sh TINYSEEK OUTDIR
#
# Sizes come from the environment (make pipeline passes its PIPE_* variables):
#   SEEDS PRETRAIN_STEPS STUDENT_STEPS SFT_STEPS STEPS (of each GRPO stage) MU GROUP PROMPTS LR BETA
#   RL_MIN_DIFFICULTY RS_PROMPTS (per difficulty) RS_SAMPLES DISTILL_STEPS KD EVAL_PROBLEMS (per
#   difficulty) EVAL_SAMPLES MAX_NEW TEMPERATURE
# Writes OUTDIR/{base,student}/ and OUTDIR/seedS/STAGE/ (checkpoints), OUTDIR/seedS/STAGE.csv
# (evaluations) and STAGE.samples.jsonl (every scored sample), OUTDIR/seedS/rs{1,2}.jsonl
# (the kept samples), OUTDIR/times.csv and OUTDIR/seedS/times.csv (seconds per step),
# then scripts/pipeline-table.py's results.csv, by_difficulty.csv, per_seed.csv,
# compare.csv, run.csv, sizes.csv and summary.txt.
set -euo pipefail
ts=${1:?usage: pipeline-runs.sh TINYSEEK OUTDIR}
out=${2:?usage: pipeline-runs.sh TINYSEEK OUTDIR}
: "${SEEDS:=2}" "${PRETRAIN_STEPS:=4000}" "${STUDENT_STEPS:=$PRETRAIN_STEPS}" "${SFT_STEPS:=300}"
: "${STEPS:=100}" "${MU:=2}" "${GROUP:=8}" "${PROMPTS:=8}" "${LR:=1e-4}" "${BETA:=0.04}" "${RL_MIN_DIFFICULTY:=3}"
: "${RS_PROMPTS:=250}" "${RS_SAMPLES:=8}" "${DISTILL_STEPS:=$SFT_STEPS}" "${KD:=1}"
: "${EVAL_PROBLEMS:=100}" "${EVAL_SAMPLES:=16}" "${MAX_NEW:=96}" "${TEMPERATURE:=0.6}"
export SEEDS PRETRAIN_STEPS STUDENT_STEPS SFT_STEPS STEPS MU GROUP PROMPTS LR BETA RL_MIN_DIFFICULTY RS_PROMPTS RS_SAMPLES \
  DISTILL_STEPS KD EVAL_PROBLEMS EVAL_SAMPLES MAX_NEW TEMPERATURE
data=${DATA:-runs/ch01/data}
tok=runs/ch01/tokenizer.json
for f in "$data"/pretrain_train.txt "$data"/sft_train.jsonl "$data"/sft_test.jsonl "$data"/rl_train.jsonl "$data"/test.jsonl "$tok"; do
  [[ -f $f ]] || { echo "pipeline-runs: $f is missing (make ch1 writes it)" >&2; exit 2; }
done
[[ $SEEDS =~ ^[1-9][0-9]*$ ]] || { echo "pipeline-runs: SEEDS must be a positive integer, not '$SEEDS'" >&2; exit 2; }
mkdir -p "$out"
start=$(date +%s)
echo "stage,seconds" >"$out/times.csv"

# RL prompts: rl_train.jsonl's problems of difficulty >= RL_MIN_DIFFICULTY (chapter 8's choice).
python3 - "$data/rl_train.jsonl" "$RL_MIN_DIFFICULTY" >"$out/rl_prompts.jsonl" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    if json.loads(line)["difficulty"] >= int(sys.argv[2]):
        sys.stdout.write(line)
PY
[[ -s $out/rl_prompts.jsonl ]] || { echo "pipeline-runs: no RL prompts of difficulty >= $RL_MIN_DIFFICULTY" >&2; exit 2; }

step() {   # step DIR NAME COMMAND...: run, log to DIR/NAME.log, time it into DIR/times.csv, stop on failure
  local dir=$1 name=$2; shift 2
  local t0; t0=$(date +%s.%N)
  "$@" >"$dir/$name.log" 2>&1 ||
    { echo "pipeline-runs: $dir: $name failed:" >&2; tail -3 "$dir/$name.log" >&2; return 1; }
  echo "$name,$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')" >>"$dir/times.csv"
}

# One base model and one student base for all seeds (chapter 7's choice: pretraining is
# the expensive part; the seeds vary every post-training stage, its sampling and the evaluation).
pre=(--data "$data" --tokenizer "$tok" --batch 8 --seq 128 --eval-every 250 --seed 1 --init-seed 1 --threads 1 --quiet)
echo "pipeline: pretraining the base ($PRETRAIN_STEPS steps) and the student ($STUDENT_STEPS steps), side by side"
step "$out" pretrain "$ts" pretrain --config configs/ch07-base.json --out "$out/base" --steps "$PRETRAIN_STEPS" \
  --warmup $((PRETRAIN_STEPS / 15 + 1)) --bias-update-speed 0.01 "${pre[@]}" & a=$!
step "$out" pretrain-student "$ts" pretrain --config configs/ch09-student.json --out "$out/student" --steps "$STUDENT_STEPS" \
  --warmup $((STUDENT_STEPS / 15 + 1)) "${pre[@]}" & b=$!
wait $a; wait $b
echo "pipeline: pretraining done ($(( $(date +%s) - start )) s)"

chain() {   # chain SEED: every post-training stage of one seed
  local s=$1 d=$out/seed$1
  mkdir -p "$d"
  echo "stage,seconds" >"$d/times.csv"
  local sft=(--batch 16 --warmup $((SFT_STEPS / 15 + 1)) --eval-every 25 --seed "$s" --threads 1 --quiet)
  local rl=(--train "$out/rl_prompts.jsonl" --test "$data"/test.jsonl --group "$GROUP" --prompts "$PROMPTS" --mu "$MU" --lr "$LR"
            --min-lr "$LR" --beta "$BETA" --clip-low 0.2 --clip-high 0.28 --max-new "$MAX_NEW" --eval-every 0 --eval-problems 0
            --seed "$s" --sample-seed "$s" --threads 1 --quiet)
  local rs=(--data "$data" --limit "$RS_PROMPTS" --samples "$RS_SAMPLES" --max-new "$MAX_NEW" --temperature "$TEMPERATURE"
            --threads 1 --quiet)
  ev() {   # ev NAME MODEL TEMPLATE
    step "$d" "eval-$1" "$ts" evaluate --model "$2" --template "$3" --label "$1" --problems "$data"/test.jsonl \
      --limit "$EVAL_PROBLEMS" --samples "$EVAL_SAMPLES" --max-new "$MAX_NEW" --temperature "$TEMPERATURE" --seed "$s" \
      --threads 1 --quiet --csv "$d/$1.csv" --samples-out "$d/$1.samples.jsonl"
  }
  ev base "$out/base" question
  # Stage 1: cold start.
  step "$d" sft "$ts" sft --init "$out/base" --data "$data" --out "$d/sft" --steps "$SFT_STEPS" "${sft[@]}"
  ev sft "$d/sft" r1
  # Stage 2: reasoning-oriented RL.
  step "$d" grpo1 "$ts" grpo --init "$d/sft" --template r1 --out "$d/grpo1" --steps "$STEPS" "${rl[@]}"
  ev grpo1 "$d/grpo1" r1
  # Stage 3: rejection sampling from the RL model, then SFT of the base model on it + the cold-start pairs.
  step "$d" rejection1 "$ts" rejection-sample --model "$d/grpo1" --seed "$((s + 100))" --out "$d/rs1.jsonl" "${rs[@]}"
  cat "$data"/sft_train.jsonl "$d/rs1.jsonl" >"$d/rssft_train.jsonl"
  step "$d" rssft "$ts" sft --init "$out/base" --train "$d/rssft_train.jsonl" --test "$data"/sft_test.jsonl --out "$d/rssft" \
    --steps "$SFT_STEPS" "${sft[@]}"
  ev rssft "$d/rssft" r1
  # Stage 4: RL again, from the stage-3 model.
  step "$d" grpo2 "$ts" grpo --init "$d/rssft" --template r1 --out "$d/grpo2" --steps "$STEPS" "${rl[@]}"
  ev grpo2 "$d/grpo2" r1
  # Distillation (R1 §2.4): the final model writes the data, the student is fine-tuned on it.
  step "$d" rejection2 "$ts" rejection-sample --model "$d/grpo2" --seed "$((s + 200))" --out "$d/rs2.jsonl" "${rs[@]}"
  [[ -s $d/rs2.jsonl ]] || { echo "pipeline-runs: seed $s: rejection sampling kept none of grpo2's samples: nothing to distil" >&2; return 1; }
  ev student "$out/student" question
  step "$d" distill "$ts" sft --init "$out/student" --train "$d/rs2.jsonl" --test "$data"/sft_test.jsonl --out "$d/distill" \
    --steps "$DISTILL_STEPS" --batch 16 --warmup $((DISTILL_STEPS / 15 + 1)) --eval-every 25 --seed "$s" --threads 1 --quiet
  ev distill "$d/distill" r1
  if [[ $KD == 1 ]]; then
    step "$d" kd "$ts" distill --teacher "$d/grpo2" --init "$out/student" --train "$d/rs2.jsonl" --test "$data"/sft_test.jsonl \
      --out "$d/kd" --steps "$DISTILL_STEPS" --batch 16 --warmup $((DISTILL_STEPS / 15 + 1)) --eval-every 25 --seed "$s" \
      --threads 1 --quiet
    ev kd "$d/kd" r1
  fi
  echo "pipeline: seed $s done ($(( $(date +%s) - start )) s)"
}

# Two seeds at a time, one thread each (the machine's two cores).
s=1
while (( s <= SEEDS )); do
  if (( s + 1 <= SEEDS )); then
    chain $s & a=$!
    chain $((s + 1)) & b=$!
    wait $a; wait $b
    s=$((s + 2))
  else
    chain $s
    s=$((s + 1))
  fi
done
elapsed=$(( $(date +%s) - start ))
python3 scripts/pipeline-table.py "$out" "$elapsed" | tee "$out/summary.txt"

# The summaries chapter 10 quotes, into the tracked results/pipeline/.
bash scripts/save-results.sh "$out" pipeline \
  results.csv by_difficulty.csv per_seed.csv compare.csv run.csv sizes.csv summary.txt
