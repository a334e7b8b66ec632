#!/usr/bin/env bash
# Run chapter experiments with a progress line and a time for each.
#
#   scripts/run-chapter.sh ch1 ch2        make ch1, then make ch2
#   scripts/run-chapter.sh --book CHAPTERS...
#                                         what `make book` does: make deps, the build,
#                                         every chapter in the order given, make figures,
#                                         make book-md, then the total time
#
# Each step prints "[book] NAME ..." before and "[book] NAME ... done in 3.2 s"
# after; the first failure stops everything with "[book] NAME ... FAILED".
# MAKEFLAGS from the calling make (e.g. BLAS=0) carry over to each step.
set -uo pipefail
cd "$(dirname "$0")/.."

book=0
if [[ ${1:-} == --book ]]; then book=1; shift; fi
[[ $# -gt 0 || $book == 1 ]] || { echo "usage: scripts/run-chapter.sh [--book] chN..." >&2; exit 2; }

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
make_q() { ${MAKE:-make} --no-print-directory "$@"; }

step() {   # step LABEL make-args...
  local label=$1; shift
  local t0; t0=$(now)
  echo "[book] $label ..."
  if make_q "$@"; then
    echo "[book] $label ... done in $(since "$t0") s"
  else
    echo "[book] $label ... FAILED after $(since "$t0") s (rerun: make $*)" >&2
    exit 1
  fi
}

total=$(now)
if [[ $book == 1 ]]; then
  step deps deps
  step build all
fi
for ch in "$@"; do
  step "$ch" "$ch"
done
if [[ $book == 1 ]]; then
  step figures figures
  step book.md book-md
  echo "[book] $# chapter(s), total $(since "$total") s"
fi
