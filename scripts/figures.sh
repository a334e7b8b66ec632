#!/usr/bin/env bash
# Draw figures: run each gnuplot script figures/NAME.gp twice, writing
# figures/NAME.png (pngcairo, or png when cairo is missing) and figures/NAME.svg.
#
#   scripts/figures.sh                  every figures/*.gp
#   scripts/figures.sh figures/ch01-*.gp
#
# A script only plots: it must not set a terminal or an output. It names the
# CSV files it reads in header lines of the form
#     # input: runs/ch01/merges.csv
# and this script refuses to run it (one line naming the file and the make
# target that writes it) when one is missing, rather than letting gnuplot draw
# an empty or stale plot. Numbers always come from those runs, never typed in.
# A script with a line "# optional: <why>" (make bench's, whose runs need
# PyTorch) is skipped with a note instead when it was not named explicitly.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts=("$@")
explicit=${#scripts[@]}
if [[ ${#scripts[@]} -eq 0 ]]; then
  shopt -s nullglob
  scripts=(figures/*.gp)
fi
if [[ ${#scripts[@]} -eq 0 ]]; then
  echo "figures: no figures/*.gp scripts"
  exit 0
fi
command -v gnuplot >/dev/null || { echo "figures: gnuplot is not installed (run: make deps)" >&2; exit 2; }

if gnuplot -e 'set terminal pngcairo' </dev/null >/dev/null 2>&1; then
  png_term="pngcairo size 900,540 enhanced font 'Sans,11'"
else
  png_term="png size 900,540"
fi
svg_term="svg size 900,540 dynamic enhanced font 'Sans,11' background rgb 'white'"

failed=0
for gp in "${scripts[@]}"; do
  [[ -f "$gp" ]] || { echo "figures: $gp: no such file" >&2; exit 2; }
  name=$(basename "$gp" .gp)
  missing=()
  while read -r input; do
    [[ -f "$input" ]] || missing+=("$input")
  done < <(sed -n 's/^#[[:space:]]*input:[[:space:]]*\([^[:space:]]*\).*/\1/p' "$gp")
  if [[ ${#missing[@]} -gt 0 && $explicit -eq 0 ]] && grep -q '^#[[:space:]]*optional:' "$gp"; then
    echo "figures: $gp skipped: ${missing[*]} not there ($(sed -n 's/^#[[:space:]]*made-by:[[:space:]]*//p' "$gp" | head -1) writes it)"
    continue
  fi
  if [[ ${#missing[@]} -gt 0 ]]; then
    target=$(sed -n 's/^#[[:space:]]*made-by:[[:space:]]*\(.*\)$/\1/p' "$gp" | head -1)
    echo "figures: $gp needs ${missing[*]}: run ${target:-the make target that writes it} first" >&2
    failed=1
    continue
  fi
  for fmt in png svg; do
    term=$png_term; [[ $fmt == svg ]] && term=$svg_term
    out="figures/$name.$fmt"
    tmp="figures/.$name.$fmt.tmp"
    if ! err=$(gnuplot -e "set terminal $term; set output '$tmp'" "$gp" 2>&1); then
      rm -f "$tmp"
      echo "figures: $gp failed:" >&2
      printf '%s\n' "$err" | sed 's/^/  /' >&2
      failed=1
      continue 2
    fi
    if [[ -n "$err" ]]; then   # gnuplot warnings (e.g. a column it could not read) are errors here
      rm -f "$tmp"
      echo "figures: $gp printed warnings:" >&2
      printf '%s\n' "$err" | sed 's/^/  /' >&2
      failed=1
      continue 2
    fi
    mv -f "$tmp" "$out"
  done
  echo "figures: $gp -> figures/$name.png, figures/$name.svg"
done
exit $failed
