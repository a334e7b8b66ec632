#!/usr/bin/env bash
# Chapter 4's experiment (make ch4): MHA, GQA, MQA and MLA trained on the same
# data, steps and seed (each on one thread, two at a time: the machine has two
# cores); the KV cache each allocates; decode speed against context length for
# all of them, MLA both naive and absorbed; and a context extension: the MLA
# model, trained on 64-token windows, evaluated on longer ones with plain RoPE
# and with YaRN.
#
#   scripts/ch04-runs.sh TINYSEEK OUTDIR STEPS
#
#   mha   configs/ch03-mha.json: 8 heads of 16, 8 key/value heads (chapter 3's)
#   gqa4  configs/ch03-gqa-kv4.json: 4 key/value heads, FFN widened to the same parameters
#   gqa2  configs/ch03-gqa-kv2.json: 2 key/value heads
#   mqa   configs/ch03-mqa.json: 1 key/value head
#   mla   configs/ch04-mla.json: 8 heads, q_lora_rank 96, kv_lora_rank 64 = 4 d_h,
#         qk_rope_head_dim 8 = d_h/2 (DeepSeek-V2's ratios), the same parameters
#
# Every config gets max_position_embeddings 1088 (it only sizes the RoPE table)
# so that decoding can run to a context of 1024. Writes OUTDIR/NAME/ (checkpoint,
# metrics.csv), OUTDIR/decode-*.csv (bench-decode), OUTDIR/yarn.csv (tinyseek
# eval), and the table OUTDIR/summary.csv + OUTDIR/summary.txt.
set -euo pipefail
ts=${1:?usage: ch04-runs.sh TINYSEEK OUTDIR STEPS}
out=${2:?usage: ch04-runs.sh TINYSEEK OUTDIR STEPS}
steps=${3:?usage: ch04-runs.sh TINYSEEK OUTDIR STEPS}
for f in runs/ch01/data/pretrain_train.txt runs/ch01/tokenizer.json; do
  [[ -f $f ]] || { echo "ch04-runs: $f is missing (make ch1 writes it)" >&2; exit 2; }
done
mkdir -p "$out/configs"
train_seq=64

# ---- configs ------------------------------------------------------------------
long() { sed -E 's/"max_position_embeddings": *[0-9]+/"max_position_embeddings": 1088/' "$1"; }
long configs/ch04-mla.json >"$out/configs/mla.json"
echo "configs/ch04-mla.json" >"$out/configs/mla.source"
for kind in mha:ch03-mha gqa4:ch03-gqa-kv4 gqa2:ch03-gqa-kv2 mqa:ch03-mqa; do
  name=${kind%%:*} file=configs/${kind##*:}.json
  [[ -f $file ]] || { echo "ch04-runs: $file is missing (chapter 3's configs)" >&2; exit 2; }
  long "$file" >"$out/configs/$name.json"
  echo "$file" >"$out/configs/$name.source"
done

# ---- training: same data, steps and seeds --------------------------------------
common=(--data runs/ch01/data --tokenizer runs/ch01/tokenizer.json --steps "$steps" --batch 8 --seq $train_seq
        --warmup 30 --eval-every 25 --eval-batches 4 --seed 1 --init-seed 1 --threads 1 --quiet)
run() {   # run NAME: one training run, its output in OUTDIR/NAME.log
  local name=$1
  "$ts" pretrain --config "$out/configs/$name.json" --out "$out/$name" "${common[@]}" >"$out/$name.log" 2>&1 ||
    { echo "ch04-runs: $name failed:" >&2; tail -3 "$out/$name.log" >&2; return 1; }
  echo "ch04: $name: $(sed -n 's/^pretrain: \([0-9]* steps in [0-9.]* s\).*held-out loss \([0-9.]*\).*/\1, held-out loss \2/p' "$out/$name.log")"
}
run mha & a=$!
run mla & b=$!
wait $a; wait $b
run gqa4 & a=$!
run gqa2 & b=$!
wait $a; wait $b
run mqa & a=$!   # beside the context-extension evaluations below (one core each)

# ---- context extension: trained at 64 tokens, evaluated longer ---------------
# rope: the plain frequencies; yarn: DeepSeek-V3's rope_scaling (beta_fast 32,
# beta_slow 1, mscale = mscale_all_dim = 1) with the factor YaRN prescribes for
# a context L', s = L'/L (1 at the training context, where YaRN changes
# nothing); yarn-short: the same with the ramp's ends moved for a 64-token
# context (beta_fast 1, beta_slow 0.1: pairs that turn at least once in 64
# tokens keep their frequency, those that turn less than a tenth are slowed).
rm -f "$out/yarn.csv"
for seq in 64 128 256 512 1024; do
  ev=(--model "$out/mla" --data runs/ch01/data --seq "$seq" --batch 4 --batches 4 --threads 1 --csv "$out/yarn.csv")
  s=$((seq / train_seq))
  "$ts" eval "${ev[@]}" --label rope >/dev/null
  "$ts" eval "${ev[@]}" --label yarn --yarn-factor $s --yarn-original $train_seq >/dev/null
  "$ts" eval "${ev[@]}" --label yarn-short --yarn-factor $s --yarn-original $train_seq \
    --yarn-beta-fast 1 --yarn-beta-slow 0.1 >/dev/null
done

wait $a

# ---- decode speed against context, and the cache actually allocated ----------
bench() {   # bench NAME MODEL [bench-decode flags]
  local name=$1 model=$2; shift 2
  "$ts" bench-decode --model "$out/$model" --batch 4 --start 64 --max-context 1024 --every 64 --threads 1 \
    --out "$out/decode-$name.csv" "$@" >"$out/decode-$name.log" 2>&1 ||
    { echo "ch04-runs: bench-decode $name failed:" >&2; cat "$out/decode-$name.log" >&2; return 1; }
}
for name in mha gqa4 gqa2 mqa; do bench "$name" "$name"; done
bench mla-naive mla --mla-cache naive
bench mla-absorbed mla --mla-cache absorbed

# ---- the table -------------------------------------------------------------------
{
  echo "attention,config,params,kv_bytes_per_token,final_val_loss,decode_tps_ctx64,decode_tps_ctx1024"
  for name in mha gqa4 gqa2 mqa mla-naive mla-absorbed; do
    model=${name%%-*}
    params=$("$ts" info "$out/configs/$model.json" | sed -n 's/^parameters *\([0-9]*\) total.*/\1/p')
    val=$(sed -n 's/.*held-out loss \([0-9.]*\).*/\1/p' "$out/$model.log")
    awk -F, -v n="$name" -v c="$(cat "$out/configs/$model.source")" -v p="$params" -v v="$val" '
      NR == 1 { next }
      { if (!first) first = $3; last = $3; bytes = $4 }
      END { printf "%s,%s,%s,%s,%s,%s,%s\n", n, c, p, bytes, v, first, last }' "$out/decode-$name.csv"
  done
} >"$out/summary.csv"
{
  echo "Chapter 4: $steps steps of 8 x $train_seq tokens each, same data and seeds, one thread each"
  column -s, -t <"$out/summary.csv"
  echo
  echo "Held-out loss of the MLA model (trained at $train_seq tokens) at longer contexts"
  awk -F, 'NR > 1 { v[$2 "," $1] = $4; if (!($2 in s)) { s[$2] = 1; seqs[++n] = $2 } }
    END { printf "%-8s %10s %10s %12s\n", "context", "rope", "yarn", "yarn-short"
          for (i = 1; i <= n; i++) printf "%-8s %10s %10s %12s\n", seqs[i], v[seqs[i] ",rope"], v[seqs[i] ",yarn"], v[seqs[i] ",yarn-short"] }' \
    "$out/yarn.csv"
} | tee "$out/summary.txt"

# The summaries the chapter quotes, into the tracked results/ch04/ (scripts/book.py
# reads them there; make book-md then puts this run's numbers in book.md).
bash scripts/save-results.sh "$out" ch04 \
  summary.csv summary.txt yarn.csv decode-mha.csv decode-gqa4.csv decode-gqa2.csv decode-mqa.csv decode-mla-naive.csv decode-mla-absorbed.csv
