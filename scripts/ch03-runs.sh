#!/usr/bin/env bash
# Chapter 3's experiment (make ch3): MHA, GQA with 4 and with 2 key/value
# heads, and MQA, trained on chapter 1's data with the same data order, steps
# and seeds, at matched parameter count (configs/ch03-*.json: 8 query heads of
# 16; the K/V weights a variant saves go into a wider feed-forward layer).
# Then the KV cache each allocates and its decode speed as the context grows.
#
#   scripts/ch03-runs.sh TINYSEEK OUTDIR STEPS
#
# Each training run uses one thread; CH03_JOBS (default 2: the reference
# machine has two cores) run side by side. Decode speed is measured one model
# at a time, on one thread. Writes OUTDIR/NAME/ (checkpoint, metrics.csv,
# train.log, decode.csv) for NAME in mha gqa-kv4 gqa-kv2 mqa, and the table
# OUTDIR/summary.csv + OUTDIR/summary.txt; and OUTDIR/pooled-kvN/, the MHA model
# converted to N key/value heads by mean-pooling, with OUTDIR/pooled.csv, the
# held-out loss of each before any further training.
set -euo pipefail
ts=${1:?usage: ch03-runs.sh TINYSEEK OUTDIR STEPS}
out=${2:?usage: ch03-runs.sh TINYSEEK OUTDIR STEPS}
steps=${3:?usage: ch03-runs.sh TINYSEEK OUTDIR STEPS}
jobs=${CH03_JOBS:-2}
for f in runs/ch01/data/pretrain_train.txt runs/ch01/tokenizer.json; do
  [[ -f $f ]] || { echo "ch03-runs: $f is missing (make ch1 writes it)" >&2; exit 2; }
done
names=(mha gqa-kv4 gqa-kv2 mqa)
mkdir -p "$out"

# ---- training: same data order, steps and seeds ---------------------------------
common=(--data runs/ch01/data --tokenizer runs/ch01/tokenizer.json --steps "$steps" --batch 8 --seq 128
        --warmup 20 --eval-every 25 --eval-batches 4 --seed 1 --init-seed 1 --threads 1 --quiet)
train() {   # train NAME
  local name=$1
  mkdir -p "$out/$name"
  "$ts" pretrain --config "configs/ch03-$name.json" --out "$out/$name" "${common[@]}" >"$out/$name/train.log" 2>&1 ||
    { echo "ch03-runs: training $name failed:" >&2; tail -3 "$out/$name/train.log" >&2; return 1; }
  echo "ch03: $name: $(sed -n 's/^pretrain: \([0-9]* steps in [0-9.]* s\).*held-out loss \([0-9.]*\).*/\1, held-out loss \2/p' \
    "$out/$name/train.log")"
}
for ((i = 0; i < ${#names[@]}; i += jobs)); do
  pids=()
  for name in "${names[@]:i:jobs}"; do
    train "$name" & pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
done

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
  column -s, -t <"$out/summary.csv"
  echo
  echo "The trained MHA model with its key/value heads mean-pooled (tinyseek convert-gqa), not trained further:"
  echo "held-out loss on the same 32 windows of 128 tokens (tinyseek eval)"
  awk -F, 'NR > 1 { printf "%-12s %s\n", $1, $4 }' "$out/pooled.csv"
} | tee "$out/summary.txt"

# The summaries the chapter quotes, into the tracked results/ch03/ (scripts/book.py
# reads them there; make book-md then puts this run's numbers in book.md).
bash scripts/save-results.sh "$out" ch03 \
  summary.csv summary.txt pooled.csv mha/decode.csv gqa-kv4/decode.csv gqa-kv2/decode.csv mqa/decode.csv
