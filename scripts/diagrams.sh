#!/usr/bin/env bash
# Draw the book's diagrams: each graphviz file figures/NAME.dot becomes
# figures/NAME.png and figures/NAME.svg, and scripts/ch04-absorption-example.py
# writes chapter 4's worked example (figures/ch04-absorption.md). None of them
# reads a run: they are pictures of the algorithms, drawn from the files alone.
#
#   scripts/diagrams.sh                   every figures/*.dot, and the example
#   scripts/diagrams.sh figures/ch04-mla.dot
#
# Outputs are written to a temporary file and renamed, so a failure never
# leaves half a picture. Exit 1 if any failed, 2 if graphviz is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

files=("$@")
if [[ ${#files[@]} -eq 0 ]]; then
  shopt -s nullglob
  files=(figures/*.dot)
  /usr/bin/python3 scripts/ch04-absorption-example.py
fi
[[ ${#files[@]} -gt 0 ]] || { echo "diagrams: no figures/*.dot"; exit 0; }
command -v dot >/dev/null || { echo "diagrams: graphviz's dot is not installed (run: make deps)" >&2; exit 2; }

failed=0
for f in "${files[@]}"; do
  [[ -f $f ]] || { echo "diagrams: $f: no such file" >&2; exit 2; }
  name=$(basename "$f" .dot)
  for fmt in png svg; do
    out=figures/$name.$fmt
    tmp=figures/.$name.$fmt.tmp
    # 110 dpi: the labels stay readable when a book viewer scales the PNG down
    if ! err=$(dot -T"$fmt" -Gdpi=110 "$f" -o "$tmp" 2>&1) || [[ -n $err ]]; then
      rm -f "$tmp"
      echo "diagrams: $f failed:" >&2
      printf '%s\n' "$err" | sed 's/^/  /' >&2
      failed=1
      continue 2
    fi
    mv -f "$tmp" "$out"
  done
  echo "diagrams: $f -> figures/$name.png, figures/$name.svg"
done
exit $failed
