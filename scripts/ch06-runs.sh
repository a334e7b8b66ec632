#!/usr/bin/env bash
# Chapter 6's experiment (make ch6): chapter 5's MoE model trained with and
# without a multi-token prediction module, the same steps, three seeds each,
# on chapter 1's data; each run on one thread, two at a time (two cores).
#
#   scripts/ch06-runs.sh TINYSEEK OUTDIR STEPS [SEEDS] [LAMBDAS]
#
#   base        configs/ch05-moe.json (no module), auxiliary-loss-free balancing
#   mtp-L       configs/ch06-mtp.json (the same model + one MTP module, D = 1),
#               trained on L_main + L·L_1, for L in LAMBDAS (default 0.1 0.3 1.0)
#
# The main model of a seed starts from the same weights in every run (the
# module's parameters are registered, and drawn, after the main model's).
# After training, every run answers the first 25 test problems of each
# difficulty greedily, in the form "347+28=" (tinyseek generate --sequential:
# the main model alone, one prompt at a time),
# scored by scripts/answer-accuracy.py; every MTP run answers them again with
# --speculative (module 1 drafts, the main model verifies), which must print
# the same completions, and reports its acceptance rate, main-model passes per
# token and its speed against --sequential: tokens per CPU second of the
# one-thread process (what a run costs, whatever else the machine is doing;
# wall-clock tokens/s is in the logs).
#
# Writes OUTDIR/NAME-sSEED/ (checkpoint, metrics.csv, logs), OUTDIR/per_seed.csv
# (one row per run), OUTDIR/results.csv (mean and sd over the seeds per
# configuration), OUTDIR/curves.csv (held-out loss by step, mean over seeds)
# and OUTDIR/summary.txt.
set -euo pipefail
ts=${1:?usage: ch06-runs.sh TINYSEEK OUTDIR STEPS [SEEDS] [LAMBDAS]}
out=${2:?usage: ch06-runs.sh TINYSEEK OUTDIR STEPS [SEEDS] [LAMBDAS]}
steps=${3:?usage: ch06-runs.sh TINYSEEK OUTDIR STEPS [SEEDS] [LAMBDAS]}
seeds=${4:-1 2 3}
lambdas=${5:-0.1 0.3 1.0}
PY=${PY3:-/usr/bin/python3}
test=runs/ch01/data/test.jsonl
for f in runs/ch01/data/pretrain_train.txt $test runs/ch01/tokenizer.json; do
  [[ -f $f ]] || { echo "ch06-runs: $f is missing (make ch1 writes it)" >&2; exit 2; }
done
mkdir -p "$out"
# Accuracy as chapter 2 measures a base model: the first 25 test problems of
# each difficulty in the pretraining text's own form ("347+28="), in order.
levels=$(sed -n 's/.*"difficulty": *\([0-9]*\).*/\1/p' "$test" | sort -un)
per_level=25
for d in $levels; do "$PY" scripts/answer-accuracy.py prompts "$test" $per_level "$d"; done >"$out/prompts.txt"
common=(--data runs/ch01/data --tokenizer runs/ch01/tokenizer.json --steps "$steps" --batch 16 --seq 64
        --warmup 20 --eval-every 25 --eval-batches 4 --threads 1 --quiet --bias-update-speed 0.01)

run() {   # run NAME SEED FLAGS...: train, then answer the test problems
  local name=$1 seed=$2; shift 2
  local dir=$out/$name-s$seed
  "$ts" pretrain --out "$dir" --seed "$seed" --init-seed "$seed" "${common[@]}" "$@" >"$dir.log" 2>&1 ||
    { echo "ch06-runs: $name seed $seed failed:" >&2; tail -3 "$dir.log" >&2; return 1; }
  "$ts" generate --model "$dir" --prompts "$out/prompts.txt" --sequential --threads 1 \
    >"$dir.sequential.txt" 2>"$dir.sequential.log"
  local parts=() i=0
  for d in $levels; do   # the completions, one file per difficulty, as answer-accuracy.py scores them
    sed -n "$((i * per_level + 1)),$(((i + 1) * per_level))p" "$dir.sequential.txt" >"$dir.sequential-$d.txt"
    parts+=("$dir.sequential-$d.txt"); i=$((i + 1))
  done
  "$PY" scripts/answer-accuracy.py score "$test" $per_level "${parts[@]}" >"$dir.accuracy.txt"
  if [[ $name == mtp-* ]]; then
    "$ts" generate --model "$dir" --prompts "$out/prompts.txt" --speculative --threads 1 \
      >"$dir.speculative.txt" 2>"$dir.speculative.log"
    cmp -s "$dir.sequential.txt" "$dir.speculative.txt" ||
      { echo "ch06-runs: $name seed $seed: speculative decoding changed the output" >&2; return 1; }
  fi
  echo "ch06: $name seed $seed: $(sed -n 's/.*held-out loss \([0-9.]*\).*/held-out loss \1/p' "$dir.log"), accuracy $(tail -1 "$dir.accuracy.txt")"
}

jobs=()
for seed in $seeds; do
  jobs+=("base $seed --config configs/ch05-moe.json")
  for lam in $lambdas; do jobs+=("mtp-$lam $seed --config configs/ch06-mtp.json --mtp-lambda $lam"); done
done
for ((i = 0; i < ${#jobs[@]}; i += 2)); do   # two at a time
  # shellcheck disable=SC2086
  run ${jobs[i]} & a=$!
  b=
  if ((i + 1 < ${#jobs[@]})); then
    # shellcheck disable=SC2086
    run ${jobs[i + 1]} & b=$!
  fi
  wait $a
  [[ -z $b ]] || wait $b
done

# One row per run, from the runs' own outputs.
{
  echo "run,lambda,seed,val_loss,accuracy,acceptance,passes_per_token,tokens_per_main_pass,spec_tokens_per_s,seq_tokens_per_s,speedup"
  for job in "${jobs[@]}"; do
    read -r name seed _ <<<"$job"
    dir=$out/$name-s$seed
    lam=0; [[ $name == mtp-* ]] && lam=${name#mtp-}
    val=$(sed -n 's/.*held-out loss \([0-9.]*\).*/\1/p' "$dir.log")
    acc=$(sed -n 's/^all: \([0-9]*\)\/\([0-9]*\).*/\1 \2/p' "$dir.accuracy.txt" | awk '{printf "%.4f", $1 / $2}')
    seq_tps=$(sed -n 's/.* \([0-9.]*\) tokens per CPU second.*/\1/p' "$dir.sequential.log")
    if [[ $name == mtp-* ]]; then
      sl=$dir.speculative.log
      acc_rate=$(sed -n 's/.*(acceptance \([0-9.]*\)).*/\1/p' "$sl")
      ppt=$(sed -n 's/.*main-model passes per token \([0-9.]*\).*/\1/p' "$sl")
      tpp=$(sed -n 's/.*tokens per main pass \([0-9.]*\).*/\1/p' "$sl")
      spec_tps=$(sed -n 's/.* \([0-9.]*\) tokens per CPU second.*/\1/p' "$sl")
      speedup=$(awk -v a="$spec_tps" -v b="$seq_tps" 'BEGIN { printf "%.3f", a / b }')
    else
      acc_rate=; ppt=1; tpp=1; spec_tps=; speedup=
    fi
    echo "$name,$lam,$seed,$val,$acc,$acc_rate,$ppt,$tpp,$spec_tps,$seq_tps,$speedup"
  done
} >"$out/per_seed.csv"

# Mean and sample standard deviation over the seeds, per configuration.
"$PY" - "$out" <<'EOF'
import csv, math, sys
out = sys.argv[1]
rows = list(csv.DictReader(open(f"{out}/per_seed.csv")))
cols = ["val_loss", "accuracy", "acceptance", "passes_per_token", "tokens_per_main_pass",
        "spec_tokens_per_s", "seq_tokens_per_s", "speedup"]
order = []
for r in rows:
    if r["run"] not in order:
        order.append(r["run"])
def stats(xs):
    xs = [float(x) for x in xs if x != ""]
    if not xs:
        return "", ""
    m = sum(xs) / len(xs)
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
    return f"{m:.4f}", f"{sd:.4f}"
with open(f"{out}/results.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["run", "lambda", "seeds"] + [f"{c}_{s}" for c in cols for s in ("mean", "sd")])
    for name in order:
        rs = [r for r in rows if r["run"] == name]
        line = [name, rs[0]["lambda"], len(rs)]
        for c in cols:
            line += stats([r[c] for r in rs])
        w.writerow(line)
# held-out loss curves: mean over seeds, one column per configuration
curves = {}
for r in rows:
    for m in csv.DictReader(open(f"{out}/{r['run']}-s{r['seed']}/metrics.csv")):
        if m["val_loss"] not in ("", "nan"):
            curves.setdefault(r["run"], {}).setdefault(int(m["step"]), []).append(float(m["val_loss"]))
steps = sorted({s for c in curves.values() for s in c})
with open(f"{out}/curves.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["step"] + order)
    for s in steps:
        w.writerow([s] + [f"{sum(curves[n][s]) / len(curves[n][s]):.5f}" if s in curves.get(n, {}) else "" for n in order])
EOF

{
  echo "Chapter 6: chapter 5's MoE model without (base) and with one MTP module (mtp-LAMBDA),"
  echo "$steps steps of 16 x 64 tokens, seeds: $seeds; mean and sd over the seeds"
  echo "(accuracy: greedy, first $per_level test problems per difficulty; speed: tokens per CPU second, one prompt at a time, one thread)"
  column -s, -t <"$out/results.csv"
} | tee "$out/summary.txt"

# The summaries the chapter quotes, into the tracked results/ch06/ (scripts/book.py
# reads them there; make book-md then puts this run's numbers in book.md).
bash scripts/save-results.sh "$out" ch06 \
  per_seed.csv results.csv curves.csv summary.txt
