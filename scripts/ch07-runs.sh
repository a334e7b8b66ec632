#!/usr/bin/env bash
# Chapter 7's experiment (make ch7): for each of 3 seeds, on chapter 1's data,
#
#   base  pretrain configs/ch07-base.json (chapter 5's MLA + DeepSeekMoE, small) on pretrain_train.txt
#   sft   cold-start SFT of base on sft_train.jsonl (r1 template, loss on the response only)
#   rs    rejection sampling: K samples per rl_train.jsonl prompt from sft, keep the right, clean,
#         distinct ones; then SFT of sft on the cold-start pairs + the kept ones
#
# and evaluate all three on the test set (test.jsonl, else rl_test.jsonl): base
# with the R1-Zero prompt (a base model has never seen the chat template), sft
# and rs with the r1 template. Two seeds run at a time, one thread each.
#
#   scripts/ch07-runs.sh TINYSEEK OUTDIR
#
# Sizes come from the environment (make ch7 passes its CH07_* variables):
#   PRETRAIN_STEPS SFT_STEPS RS_PROMPTS (per difficulty) RS_SAMPLES EVAL_PROBLEMS (per difficulty)
#   EVAL_SAMPLES MAX_NEW TEMPERATURE (of the samples; DeepSeek-R1 evaluates at 0.6)
# Writes OUTDIR/seedS/{base,sft,rs}/ (checkpoints), OUTDIR/seedS/{base,sft,rs}.csv/.json
# (the evaluation summaries), OUTDIR/seedS/rs.jsonl, then OUTDIR/results.csv,
# OUTDIR/passk.csv, OUTDIR/by_difficulty.csv and OUTDIR/summary.txt (scripts/ch07-table.py).
set -euo pipefail
ts=${1:?usage: ch07-runs.sh TINYSEEK OUTDIR}
out=${2:?usage: ch07-runs.sh TINYSEEK OUTDIR}
: "${PRETRAIN_STEPS:=8000}" "${PRETRAIN_BATCH:=8}" "${PRETRAIN_SEQ:=128}" "${SFT_STEPS:=300}" "${RS_PROMPTS:=50}" "${RS_SAMPLES:=8}" "${EVAL_PROBLEMS:=50}"
: "${EVAL_SAMPLES:=8}" "${MAX_NEW:=96}" "${TEMPERATURE:=0.6}"
data=runs/ch01/data
for f in $data/pretrain_train.txt $data/sft_train.jsonl $data/rl_train.jsonl runs/ch01/tokenizer.json; do
  [[ -f $f ]] || { echo "ch07-runs: $f is missing (make ch1 writes it)" >&2; exit 2; }
done
test_set=$data/test.jsonl
[[ -f $test_set ]] || test_set=$data/rl_test.jsonl
mkdir -p "$out"
start=$(date +%s)

step() {   # step SEED NAME COMMAND...: run, log to OUTDIR/seedS/NAME.log, stop the seed on failure
  local seed=$1 name=$2; shift 2
  "$@" >"$out/seed$seed/$name.log" 2>&1 ||
    { echo "ch07-runs: seed $seed: $name failed:" >&2; tail -3 "$out/seed$seed/$name.log" >&2; return 1; }
}

pipeline() {   # pipeline SEED
  local s=$1 d=$out/seed$1
  mkdir -p "$d"
  local ev=(--problems "$test_set" --limit "$EVAL_PROBLEMS" --samples "$EVAL_SAMPLES" --max-new "$MAX_NEW"
            --temperature "$TEMPERATURE" --seed "$s" --threads 1 --quiet)
  step "$s" sft "$ts" sft --init "$out/base" --data $data --out "$d/sft" --steps "$SFT_STEPS" --batch 16 \
    --warmup $((SFT_STEPS / 15 + 1)) --eval-every 25 --seed "$s" --threads 1 --quiet
  step "$s" rejection "$ts" rejection-sample --model "$d/sft" --data $data --limit "$RS_PROMPTS" \
    --samples "$RS_SAMPLES" --max-new "$MAX_NEW" --temperature "$TEMPERATURE" --seed "$((s + 100))" --out "$d/rs.jsonl" --threads 1 --quiet
  cat $data/sft_train.jsonl "$d/rs.jsonl" >"$d/rs_train.jsonl"
  step "$s" rs "$ts" sft --init "$d/sft" --train "$d/rs_train.jsonl" --test $data/sft_test.jsonl --out "$d/rs" \
    --steps "$SFT_STEPS" --batch 16 --warmup $((SFT_STEPS / 15 + 1)) --eval-every 25 --seed "$s" --threads 1 --quiet
  step "$s" eval-base "$ts" evaluate --model "$out/base" --template r1-zero --label base "${ev[@]}" \
    --csv "$d/base.csv" --json "$d/base.json"
  step "$s" eval-sft "$ts" evaluate --model "$d/sft" --template r1 --label sft "${ev[@]}" --csv "$d/sft.csv" --json "$d/sft.json"
  step "$s" eval-rs "$ts" evaluate --model "$d/rs" --template r1 --label rs "${ev[@]}" --csv "$d/rs.csv" --json "$d/rs.json"
  echo "ch07: seed $s: $(sed -n 's/^rejection-sample: //p' "$d/rejection.log")"
}

# One base model for all seeds: pretraining is the expensive part (chapters 2-5
# compare pretraining seeds); the seeds here vary SFT, sampling and evaluation.
echo "ch07: pretraining the base model ($PRETRAIN_STEPS steps of $PRETRAIN_BATCH x $PRETRAIN_SEQ tokens)"
"$ts" pretrain --config configs/ch07-base.json --data $data --tokenizer runs/ch01/tokenizer.json \
  --out "$out/base" --steps "$PRETRAIN_STEPS" --batch "$PRETRAIN_BATCH" --seq "$PRETRAIN_SEQ" \
  --warmup $((PRETRAIN_STEPS / 15 + 1)) --eval-every 250 --bias-update-speed 0.01 --seed 1 --init-seed 1 \
  --threads 1 --quiet >"$out/pretrain.log" 2>&1 ||
  { echo "ch07-runs: pretraining failed:" >&2; tail -3 "$out/pretrain.log" >&2; exit 1; }
pipeline 1 & a=$!
pipeline 2 & b=$!
wait $a; wait $b
pipeline 3
elapsed=$(( $(date +%s) - start ))
python3 scripts/ch07-table.py "$out" "$elapsed" | tee "$out/summary.txt"

# The summaries the chapter quotes, into the tracked results/ch07/ (scripts/book.py
# reads them there; make book-md then puts this run's numbers in book.md).
bash scripts/save-results.sh "$out" ch07 \
  results.csv by_difficulty.csv passk.csv run.csv summary.txt
