#!/usr/bin/env bash
# Chapter 3's experiment (make ch3): MHA, GQA with 4 and with 2 key/value
# heads, and MQA, trained on chapter 1's data with the same data order, steps
# and seeds (three by default), at matched parameter count (configs/ch03-*.json: 8 query heads of
# 16; the K/V weights a variant saves go into a wider feed-forward layer).
# Then the KV cache each allocates and its decode speed as the context grows.
#
#   scripts/ch03-runs.sh TINYSEEK OUTDIR STEPS [SEEDS]     (SEEDS default "1 2 3")
#
# A seed S sets both the weights (--init-seed S) and the data order (--seed S);
# the four models of one seed share both. The first seed's models train into
# OUTDIR/NAME/ (the ones the decode benchmark, the pooling and the figures use),
# the others into OUTDIR/NAME-sS/ (checkpoint, metrics.csv, train.log).
#
# Each training run uses one thread; CH03_JOBS (default 2: the reference
# machine has two cores) run side by side. Decode speed is measured one model
# at a time, on one thread. Writes OUTDIR/NAME/ (checkpoint, metrics.csv,
# train.log, decode.csv) for NAME in mha gqa-kv4 gqa-kv2 mqa, and the table
# OUTDIR/summary.csv + OUTDIR/summary.txt; and OUTDIR/pooled-kvN/, the MHA model
# converted to N key/value heads by mean-pooling, with OUTDIR/pooled.csv, the
# held-out loss of each before any further training. summary.csv's
# final_val_loss is the first seed's; OUTDIR/per_seed.csv has every seed's and
# OUTDIR/losses.csv the mean and sample sd over the seeds, and of the paired
# difference from MHA (same seed), per model.
set -euo pipefail
ts=${1:?usage: ch03-runs.sh TINYSEEK OUTDIR STEPS [SEEDS]}
out=${2:?usage: ch03-runs.sh TINYSEEK OUTDIR STEPS [SEEDS]}
steps=${3:?usage: ch03-runs.sh TINYSEEK OUTDIR STEPS [SEEDS]}
read -r -a seeds <<<"${4:-1 2 3}"
(( ${#seeds[@]} > 0 )) || { echo "ch03-runs: no seeds given" >&2; exit 2; }
PY=${PY3:-/usr/bin/python3}
jobs=${CH03_JOBS:-2}
for f in runs/ch01/data/pretrain_train.txt runs/ch01/tokenizer.json; do
  [[ -f $f ]] || { echo "ch03-runs: $f is missing (make ch1 writes it)" >&2; exit 2; }
done
names=(mha gqa-kv4 gqa-kv2 mqa)
mkdir -p "$out"

# ---- training: same data order, steps and seeds ---------------------------------
common=(--data runs/ch01/data --tokenizer runs/ch01/tokenizer.json --steps "$steps" --batch 8 --seq 128
        --warmup 20 --eval-every 25 --eval-batches 4 --threads 1 --quiet)
dir() {     # dir NAME SEED: where that run goes
  if [[ $2 == "${seeds[0]}" ]]; then echo "$out/$1"; else echo "$out/$1-s$2"; fi
}
train() {   # train NAME SEED
  local name=$1 seed=$2 d
  d=$(dir "$name" "$seed")
  mkdir -p "$d"
  "$ts" pretrain --config "configs/ch03-$name.json" --out "$d" "${common[@]}" --seed "$seed" --init-seed "$seed" \
    >"$d/train.log" 2>&1 ||
    { echo "ch03-runs: training $name seed $seed failed:" >&2; tail -3 "$d/train.log" >&2; return 1; }
  echo "ch03: $name seed $seed: $(sed -n 's/^pretrain: \([0-9]* steps in [0-9.]* s\).*held-out loss \([0-9.]*\).*/\1, held-out loss \2/p' \
    "$d/train.log")"
}
runs=()
for seed in "${seeds[@]}"; do
  for name in "${names[@]}"; do runs+=("$name $seed"); done
done
for ((i = 0; i < ${#runs[@]}; i += jobs)); do
  pids=()
  for r in "${runs[@]:i:jobs}"; do
    # shellcheck disable=SC2086
    train $r & pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
done

# ---- held-out loss over the seeds -------------------------------------------------
{
  echo "attention,seed,final_val_loss"
  for seed in "${seeds[@]}"; do
    for name in "${names[@]}"; do
      echo "$name,$seed,$(sed -n 's/.*held-out loss \([0-9.]*\).*/\1/p' "$(dir "$name" "$seed")/train.log")"
    done
  done
} >"$out/per_seed.csv"
"$PY" - "$out/per_seed.csv" "$out/losses.csv" <<'PYEOF'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
loss = {(r["attention"], r["seed"]): float(r["final_val_loss"]) for r in rows}
names = list(dict.fromkeys(r["attention"] for r in rows))
seeds = list(dict.fromkeys(r["seed"] for r in rows))
sd = lambda xs: statistics.stdev(xs) if len(xs) > 1 else float("nan")
with open(sys.argv[2], "w", newline="") as f:
    w = csv.writer(f, lineterminator="\n")
    w.writerow(["attention", "seeds", "final_val_loss_mean", "final_val_loss_sd", "final_val_loss_min",
                "final_val_loss_max", "minus_mha_mean", "minus_mha_sd", "minus_mha_min", "minus_mha_max"])
    for n in names:
        xs = [loss[n, s] for s in seeds]
        ds = [loss[n, s] - loss["mha", s] for s in seeds]
        w.writerow([n, len(seeds), "%.4f" % statistics.mean(xs), "%.4f" % sd(xs), "%.4f" % min(xs),
                    "%.4f" % max(xs), "%.4f" % statistics.mean(ds), "%.4f" % sd(ds), "%.4f" % min(ds),
                    "%.4f" % max(ds)])
PYEOF

# ---- decode speed as the context grows, one model at a time ----------------------
for name in "${names[@]}"; do
  "$ts" bench-decode --model "$out/$name" --label "$name" --batch 4 --start 64 --max-context 1024 --every 32 \
    --threads 1 --out "$out/$name/decode.csv" >"$out/$name/decode.log" 2>&1 ||
    { echo "ch03-runs: bench-decode $name failed:" >&2; cat "$out/$name/decode.log" >&2; exit 1; }
done

# ---- mean-pooling the trained MHA model into fewer key/value heads (GQA paper) ----
# No further training: the held-out loss right after `tinyseek convert-gqa`,
# next to the MHA model's own on the same windows (tinyseek eval).
ev=(--data runs/ch01/data --seq 128 --batch 4 --batches 8 --threads 1 --csv "$out/pooled.csv")
rm -f "$out/pooled.csv"
"$ts" eval --model "$out/mha" "${ev[@]}" --label "mha" >/dev/null
for kv in 4 2 1; do
  "$ts" convert-gqa --model "$out/mha" --kv-heads "$kv" --out "$out/pooled-kv$kv" >/dev/null
  "$ts" eval --model "$out/pooled-kv$kv" "${ev[@]}" --label "pooled-kv$kv" >/dev/null
done

# ---- the table --------------------------------------------------------------------
{
  echo "attention,kv_heads,params,final_val_loss,kv_bytes_per_token,decode_tps_ctx64,decode_tps_ctx1024"
  for name in "${names[@]}"; do
    kv=$(sed -n 's/.*"num_key_value_heads": *\([0-9]*\).*/\1/p' "configs/ch03-$name.json")
    params=$("$ts" info "configs/ch03-$name.json" | sed -n 's/^parameters *\([0-9]*\) total.*/\1/p')
    val=$(sed -n 's/.*held-out loss \([0-9.]*\).*/\1/p' "$out/$name/train.log")
    awk -F, -v n="$name" -v kv="$kv" -v p="$params" -v v="$val" '
      NR == 1 { next }
      { if (!first) first = $3; last = $3; bytes = $4 }
      END { printf "%s,%s,%s,%s,%s,%.0f,%.0f\n", n, kv, p, v, bytes, first, last }' "$out/$name/decode.csv"
  done
} >"$out/summary.csv"
{
  echo "Chapter 3: $steps steps of 8 x 128 tokens each, same data and seeds, one thread each;"
  echo "KV cache in fp32 bytes per token (all 4 layers); decode tokens/s for a batch of 4 on one thread"
  echo "(final_val_loss: seed ${seeds[0]}, the models benchmarked)"
  column -s, -t <"$out/summary.csv"
  echo
  echo "Held-out loss over seeds ${seeds[*]}: mean, sample sd, range; minus_mha: the same seed's MHA loss subtracted"
  column -s, -t <"$out/losses.csv"
  echo
  echo "The trained MHA model with its key/value heads mean-pooled (tinyseek convert-gqa), not trained further:"
  echo "held-out loss on the same 32 windows of 128 tokens (tinyseek eval)"
  awk -F, 'NR > 1 { printf "%-12s %s\n", $1, $4 }' "$out/pooled.csv"
} | tee "$out/summary.txt"

# The summaries the chapter quotes, into the tracked results/ch03/ (scripts/book.py
# reads them there; make book-md then puts this run's numbers in book.md).
bash scripts/save-results.sh "$out" ch03 \
  summary.csv summary.txt pooled.csv per_seed.csv losses.csv mha/decode.csv gqa-kv4/decode.csv gqa-kv2/decode.csv mqa/decode.csv
