#!/usr/bin/env bash
# Run chapter experiments with a progress line and a time for each.
#
#   scripts/run-chapter.sh ch1 ch2        make ch1, then make ch2
#   scripts/run-chapter.sh --book CHAPTERS...
#                                         what `make book` does: make deps, the build,
#                                         every chapter in the order given, make figures,
#                                         then the times (below), make book-md, the total
#
# Each step prints "[book] NAME ..." before and "[book] NAME ... done in 3.2 s"
# after; the first failure stops everything with "[book] NAME ... FAILED".
# MAKEFLAGS from the calling make (e.g. BLAS=0) carry over to each step.
#
# The budget (issue 17): no chapter over BOOK_CHAPTER_BUDGET seconds (300), the whole
# of `make book` within BOOK_BUDGET (1800), on a 2-core machine with nothing else
# running. A chapter over it is named as it finishes, and --book writes every step's
# seconds, the load average when it ended and the total to runs/book/times.csv,
# saved to results/book/ before book-md, so the book quotes this run's own times.
set -uo pipefail
cd "$(dirname "$0")/.."

book=0
if [[ ${1:-} == --book ]]; then book=1; shift; fi
[[ $# -gt 0 || $book == 1 ]] || { echo "usage: scripts/run-chapter.sh [--book] chN..." >&2; exit 2; }

now() { date +%s.%N; }
: "${BOOK_CHAPTER_BUDGET:=300}" "${BOOK_BUDGET:=1800}"
times_csv=runs/book/times.csv
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
make_q() { ${MAKE:-make} --no-print-directory "$@"; }

step() {   # step LABEL make-args...
  local label=$1; shift
  local t0; t0=$(now)
  echo "[book] $label ..."
  if make_q "$@"; then
    local secs over=0; secs=$(since "$t0")
    if [[ $label == ch* || $label == app* || $label == pipeline ]] &&
       awk -v s="$secs" -v b="$BOOK_CHAPTER_BUDGET" 'BEGIN { exit !(s > b) }'; then
      over=1
      echo "[book] $label ... done in $secs s: over the budget of $BOOK_CHAPTER_BUDGET s a chapter"
    else
      echo "[book] $label ... done in $secs s"
    fi
    if [[ $book == 1 ]]; then
      echo "$label,$secs,$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo),$over" >>"$times_csv"
    fi
  else
    echo "[book] $label ... FAILED after $(since "$t0") s (rerun: make $*)" >&2
    exit 1
  fi
}

total=$(now)
if [[ $book == 1 ]]; then
  mkdir -p runs/book
  echo "step,seconds,load_after,over_budget" >"$times_csv"
  step deps deps
  step build all
fi
for ch in "$@"; do
  step "$ch" "$ch"
done
if [[ $book == 1 ]]; then
  step figures figures
  secs=$(since "$total")
  within=1
  awk -v s="$secs" -v b="$BOOK_BUDGET" 'BEGIN { exit !(s > b) }' && within=0
  echo "total,$secs,$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo),$((1 - within))" >>"$times_csv"
  bash scripts/save-results.sh runs/book book times.csv
  step book.md book-md
  if [[ $within == 1 ]]; then
    echo "[book] $# chapter(s), total $(since "$total") s (budget $BOOK_BUDGET s)"
  else
    echo "[book] $# chapter(s), total $(since "$total") s: over the budget of $BOOK_BUDGET s"
  fi
fi
