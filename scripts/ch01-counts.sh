#!/usr/bin/env bash
# Chapter 1: what `make ch1` wrote, counted, for the chapter's prose and tables.
#
#   scripts/ch01-counts.sh TINYSEEK RUNDIR
#
# Needs RUNDIR/data (tinyseek data) and RUNDIR/tokenizer.json. Writes
#   RUNDIR/files.csv         file,lines,bytes,tagged_lines   one row per data file; tagged_lines
#                            counts the lines holding <think> (the R1 format)
#   RUNDIR/difficulties.csv  file,difficulty,problems        the .jsonl files, per difficulty
#   RUNDIR/forms.csv         form,lines,share,mean_tokens,max_tokens   pretrain_train.txt by
#                            the form of its lines (chapter 1's table), tokens without the newline
# Every number is counted from the files (and the tokenizer's encoding); nothing is typed in.
set -euo pipefail
ts=${1:?usage: ch01-counts.sh TINYSEEK RUNDIR}
dir=${2:?usage: ch01-counts.sh TINYSEEK RUNDIR}
data=$dir/data
files=(pretrain_train.txt pretrain_test.txt sft_train.jsonl sft_test.jsonl rl_train.jsonl test.jsonl)
for f in "${files[@]/#/$data/}" "$dir/tokenizer.json"; do
  [[ -f $f ]] || { echo "ch01-counts: $f is missing (make ch1 writes it)" >&2; exit 2; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "file,lines,bytes,tagged_lines" > "$tmp/files.csv"
for f in "${files[@]}"; do
  echo "$f,$(grep -c '' "$data/$f"),$(wc -c < "$data/$f"),$(grep -c -F '<think>' "$data/$f" || true)" >> "$tmp/files.csv"
done

echo "file,difficulty,problems" > "$tmp/difficulties.csv"
for f in "${files[@]}"; do
  [[ $f == *.jsonl ]] || continue
  sed -n 's/.*"difficulty": *\([0-9]*\).*/\1/p' "$data/$f" | sort -n | uniq -c |
    awk -v f="$f" '{ printf "%s,%d,%d\n", f, $2, $1 }' >> "$tmp/difficulties.csv"
done

# Tokens per line: the byte-level tokenizer never merges the newline (a chunk of
# its own), so id 10 ends each line of the encoded file.
train=$data/pretrain_train.txt
"$ts" tokenizer encode --tokenizer "$dir/tokenizer.json" --input "$train" | tr -s ' \n' '\n\n' |
  awk '$1 == 10 { print n; n = 0; next } { n++ }' > "$tmp/tokens"
[[ $(grep -c '' "$tmp/tokens") == $(grep -c '' "$train") ]] ||
  { echo "ch01-counts: the encoding of $train does not have one newline token per line" >&2; exit 2; }
paste -d '\t' "$tmp/tokens" "$train" | awk -F '\t' '
  { if ($2 ~ /<think>/) form = "tagged"; else if ($2 ~ /^To work out /) form = "prose"
    else if ($2 ~ /^What is /) form = "question"; else if ($2 ~ /^[0-9]+[-+*][0-9]+=[0-9]+$/) form = "equation"
    else if ($2 ~ /^[0-9]+[-+*][0-9]+: /) form = "notes"; else form = "story"
    n[form]++; sum[form] += $1; if ($1 > max[form]) max[form] = $1; total++ }
  END { print "form,lines,share,mean_tokens,max_tokens"
        split("equation question notes prose story tagged", order, " ")
        for (i = 1; i <= 6; i++) { f = order[i]; if (n[f])
          printf "%s,%d,%.4f,%.1f,%d\n", f, n[f], n[f] / total, sum[f] / n[f], max[f] } }' > "$tmp/forms.csv"

mv "$tmp/files.csv" "$tmp/difficulties.csv" "$tmp/forms.csv" "$dir/"
echo "ch01-counts: files.csv, difficulties.csv, forms.csv -> $dir"
