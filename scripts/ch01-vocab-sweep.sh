#!/usr/bin/env bash
# Chapter 1: how long a problem is in tokens, as the vocabulary grows.
#
#   scripts/ch01-vocab-sweep.sh TINYSEEK RUNDIR
#
# Needs RUNDIR/data (tinyseek data) and RUNDIR/merges.csv (the full tokenizer
# run of `make ch1`). For vocabulary sizes from 256 bytes + 9 special tokens
# (no merge at all) up to the size that run reached, it trains a tokenizer on
# RUNDIR/data/pretrain_train.txt, encodes the held-out RUNDIR/data/pretrain_test.txt
# with it, and writes one row per size to RUNDIR/vocab-sweep.csv:
#   vocab_size,merges,tokens,problems,tokens_per_problem,bytes_per_token
# Every number comes from the tinyseek command; figures/ch01-vocab.gp plots it.
set -euo pipefail
ts=${1:?usage: ch01-vocab-sweep.sh TINYSEEK RUNDIR}
dir=${2:?usage: ch01-vocab-sweep.sh TINYSEEK RUNDIR}
train=$dir/data/pretrain_train.txt
test=$dir/data/pretrain_test.txt
for f in "$train" "$test" "$dir/merges.csv"; do
  [[ -f $f ]] || { echo "ch01-vocab-sweep: $f is missing (make ch1 writes it)" >&2; exit 2; }
done

base=$((256 + 9))
max_merges=$(( $(wc -l < "$dir/merges.csv") - 1 ))
# At most ~24 sizes, evenly spaced over 0..max_merges merges, both ends included.
step=$(( (max_merges + 23) / 24 )); (( step >= 1 )) || step=1
sizes=()
for ((m = 0; m < max_merges; m += step)); do sizes+=($((base + m))); done
sizes+=($((base + max_merges)))

problems=$(grep -c '' "$test")
bytes=$(wc -c < "$test")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
out=$dir/vocab-sweep.csv
echo "vocab_size,merges,tokens,problems,tokens_per_problem,bytes_per_token" > "$tmp/sweep.csv"
for v in "${sizes[@]}"; do
  "$ts" tokenizer train --input "$train" --vocab-size "$v" --out "$tmp/tok.json" >/dev/null
  tokens=$("$ts" tokenizer encode --tokenizer "$tmp/tok.json" --input "$test" | wc -w)
  awk -v v="$v" -v m=$((v - base)) -v t="$tokens" -v p="$problems" -v b="$bytes" \
    'BEGIN { printf "%d,%d,%d,%d,%.3f,%.4f\n", v, m, t, p, t / p, b / t }' >> "$tmp/sweep.csv"
done
mv "$tmp/sweep.csv" "$out"
echo "ch01-vocab-sweep: ${#sizes[@]} tokenizers ($base to $((base + max_merges)) tokens) -> $out"
