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
# and rs with the r1 template. After the pretraining, every seed's chain
# (sft, its evaluation, rejection sampling, rs, its evaluation) and every
# evaluation of the base is one job of scripts/pool.sh: two at a time, one
# thread each, longest first.
#
#   scripts/ch07-runs.sh TINYSEEK OUTDIR
#
# Sizes come from the environment (make ch7 passes its CH07_* variables):
#   PRETRAIN_STEPS PRETRAIN_THREADS SFT_STEPS RS_PROMPTS (per difficulty) RS_SAMPLES EVAL_PROBLEMS (per difficulty)
#   EVAL_SAMPLES MAX_NEW TEMPERATURE (of the samples; DeepSeek-R1 evaluates at 0.6)
# Writes OUTDIR/seedS/{base,sft,rs}/ (checkpoints), OUTDIR/seedS/{base,sft,rs}.csv/.json
# (the evaluation summaries) and .args (the evaluation's arguments, so that chapter 8
# can tell when its own evaluation would be the same and read this one), OUTDIR/seedS/rs.jsonl, then OUTDIR/results.csv,
# OUTDIR/prose.txt (the base model's greedy worked-prose answers to the test problems),
# OUTDIR/passk.csv, OUTDIR/by_difficulty.csv and OUTDIR/summary.txt (scripts/ch07-table.py).
set -euo pipefail
ts=${1:?usage: ch07-runs.sh TINYSEEK OUTDIR}
out=${2:?usage: ch07-runs.sh TINYSEEK OUTDIR}
: "${PRETRAIN_STEPS:=8000}" "${PRETRAIN_THREADS:=1}" "${PRETRAIN_BATCH:=8}" "${PRETRAIN_SEQ:=128}" "${SFT_STEPS:=300}" "${RS_PROMPTS:=50}" "${RS_SAMPLES:=8}" "${EVAL_PROBLEMS:=50}"
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

evaluate() {   # evaluate SEED MODEL ARGS...: evaluate into OUTDIR/seedS/MODEL.{csv,json}, its arguments into MODEL.args
  local s=$1 m=$2 d=$out/seed$1; shift 2
  step "$s" "eval-$m" "$ts" evaluate "$@" --csv "$d/$m.csv" --json "$d/$m.json"
  printf '%s\n' "evaluate $*" >"$d/$m.args"
}

evargs() {   # evargs SEED: the evaluation settings every model of seed SEED is evaluated with
  ev=(--problems "$test_set" --limit "$EVAL_PROBLEMS" --samples "$EVAL_SAMPLES" --max-new "$MAX_NEW"
      --temperature "$TEMPERATURE" --seed "$1" --threads 1 --quiet)
}

chain() {   # chain SEED: the seed's models, each trained from the one before, and their evaluations
  local s=$1 d=$out/seed$1 ev
  evargs "$s"
  step "$s" sft "$ts" sft --init "$out/base" --data $data --out "$d/sft" --steps "$SFT_STEPS" --batch 16 \
    --warmup $((SFT_STEPS / 15 + 1)) --eval-every 25 --seed "$s" --threads 1 --quiet
  evaluate "$s" sft --model "$d/sft" --template r1 --label sft "${ev[@]}"
  step "$s" rejection "$ts" rejection-sample --model "$d/sft" --data $data --limit "$RS_PROMPTS" \
    --samples "$RS_SAMPLES" --max-new "$MAX_NEW" --temperature "$TEMPERATURE" --seed "$((s + 100))" --out "$d/rs.jsonl" --threads 1 --quiet
  cat $data/sft_train.jsonl "$d/rs.jsonl" >"$d/rs_train.jsonl"
  step "$s" rs "$ts" sft --init "$d/sft" --train "$d/rs_train.jsonl" --test $data/sft_test.jsonl --out "$d/rs" \
    --steps "$SFT_STEPS" --batch 16 --warmup $((SFT_STEPS / 15 + 1)) --eval-every 25 --seed "$s" --threads 1 --quiet
  evaluate "$s" rs --model "$d/rs" --template r1 --label rs "${ev[@]}"
  echo "ch07: seed $s: $(sed -n 's/^rejection-sample: //p' "$d/rejection.log")"
}

eval_base() {   # eval_base SEED: the base model with the R1-Zero prompt, sampled with the seed's seed
  local s=$1 d=$out/seed$1 ev
  evargs "$s"
  evaluate "$s" base --model "$out/base" --template r1-zero --label base "${ev[@]}"
}

prose() {   # the base model in its worked-prose form, greedy: "To work out A plus B," for the evaluation's problems
  python3 - "$test_set" "$EVAL_PROBLEMS" >"$out/prose.jsonl" <<'PY'
import json, re, sys
per = {}
for line in open(sys.argv[1]):
    p = json.loads(line)
    m = re.match(r"What is (\d+)([-+])(\d+)\?$", p["prompt"])
    if m and per.setdefault(p["difficulty"], 0) < int(sys.argv[2]):
        per[p["difficulty"]] += 1
        a, op, b = m.groups()
        p["prompt"] = f"To work out {a} {'plus' if op == '+' else 'minus'} {b},"
        sys.stdout.write(json.dumps(p) + "\n")
PY
  python3 -c 'import json, sys; [print(json.loads(l)["prompt"]) for l in open(sys.argv[1])]' "$out/prose.jsonl" >"$out/prose_prompts.txt"
  "$ts" generate --model "$out/base" --prompts "$out/prose_prompts.txt" --max-new "$MAX_NEW" --threads 1 \
    >"$out/prose.txt" 2>"$out/prose.log" || { echo "ch07-runs: prose generation failed:" >&2; tail -3 "$out/prose.log" >&2; return 1; }
}

# One base model for all seeds: pretraining is the expensive part (chapters 2-5
# compare pretraining seeds); the seeds here vary SFT, sampling and evaluation.
# Nothing else can run beside it, so it may take both cores: --threads 2 gives other
# bits than --threads 1 but the same bits every time (DESIGN: Determinism), whatever
# the threads do while they wait. How long they spin at a barrier before sleeping is
# what matters for the time: alone on 2 cores, libgomp's default spin makes 2 threads
# 1.24x as fast as 1 and never sleeping (OMP_WAIT_POLICY=passive) 0.88x; on a machine
# busy with other work the default spin makes 2 threads many times slower than 1.
# A short spin (GOMP_SPINCOUNT=10000, 1.22x alone) is the compromise.
echo "ch07: pretraining the base model ($PRETRAIN_STEPS steps of $PRETRAIN_BATCH x $PRETRAIN_SEQ tokens, $PRETRAIN_THREADS thread(s))"
GOMP_SPINCOUNT=10000 "$ts" pretrain --config configs/ch07-base.json --data $data --tokenizer runs/ch01/tokenizer.json \
  --out "$out/base" --steps "$PRETRAIN_STEPS" --batch "$PRETRAIN_BATCH" --seq "$PRETRAIN_SEQ" \
  --warmup $((PRETRAIN_STEPS / 15 + 1)) --eval-every 250 --bias-update-speed 0.01 --seed 1 --init-seed 1 \
  --threads "$PRETRAIN_THREADS" --quiet >"$out/pretrain.log" 2>&1 ||
  { echo "ch07-runs: pretraining failed:" >&2; tail -3 "$out/pretrain.log" >&2; exit 1; }
source scripts/pool.sh
for s in 1 2 3; do mkdir -p "$out/seed$s"; done
# Longest first: a chain (two SFTs, sampling, two evaluations) takes longer than
# one evaluation of the base (whose R1-Zero prompt is long and whose answers run
# to --max-new, as it never closes the tags).
for s in 1 2 3; do pool_run "seed $s" chain "$s"; done
for s in 1 2 3; do pool_run "seed $s eval-base" eval_base "$s"; done
pool_run prose prose
pool_wait || { echo "ch07-runs: a job failed (above)" >&2; exit 1; }
elapsed=$(( $(date +%s) - start ))
python3 scripts/ch07-table.py "$out" "$elapsed" | tee "$out/summary.txt"

# The summaries the chapter quotes, into the tracked results/ch07/ (scripts/book.py
# reads them there; make book-md then puts this run's numbers in book.md).
bash scripts/save-results.sh "$out" ch07 \
  results.csv by_difficulty.csv passk.csv run.csv summary.txt
