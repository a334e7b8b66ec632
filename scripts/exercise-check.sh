#!/usr/bin/env bash
# Prove every exercise works: its unmodified student stub must build and FAIL
# its tests, and the same file with the library's own function pasted in
# (scripts/exercise-solution.py) must PASS them.
#
#   scripts/exercise-check.sh            every exercises/*/exercise.mk
#   scripts/exercise-check.sh NAME...    some of them
#
# One line per exercise, e.g.
#   [exercise-check] bpe_apply_merge: stub fails (5 of 6 tests), solution passes (6 tests) ... ok in 3.1 s
# and the details of whatever went wrong. Exit 1 if any exercise is broken.
set -uo pipefail
cd "$(dirname "$0")/.."
make_q() { ${MAKE:-make} --no-print-directory "$@"; }
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

names=("$@")
if [[ ${#names[@]} -eq 0 ]]; then
  for f in exercises/*/exercise.mk; do [[ -f $f ]] && names+=("$(basename "$(dirname "$f")")"); done
fi
[[ ${#names[@]} -gt 0 ]] || { echo "[exercise-check] no exercises/*/exercise.mk"; exit 0; }

# The debug build folder make uses for exercises (MODE=debug), as the Makefile computes it.
build=$(make_q -s print-exercise-build 2>/dev/null) || build=build/debug
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
broken=0
for ex in "${names[@]}"; do
  t0=$(date +%s.%N)
  home=exercises/$ex
  [[ -f $home/exercise.mk ]] || { echo "[exercise-check] $ex: no $home/exercise.mk" >&2; broken=1; continue; }
  src=$(sed -n 's/^EX_SOURCE *:\{0,1\}= *//p' "$home/exercise.mk")
  fn=$(sed -n 's/^EX_FUNCTION *:\{0,1\}= *//p' "$home/exercise.mk")

  # 1. the stub: builds, links, and its tests fail
  if ! make_q exercise-build MODE=debug EX="$ex" >"$tmp/stub-build.log" 2>&1; then
    echo "[exercise-check] $ex: the stub $home/student.c does not build:" >&2
    grep -v '^cc \|^ar \|^objcopy ' "$tmp/stub-build.log" | tail -15 | sed 's/^/  /' >&2
    broken=1; continue
  fi
  # (the stub only has to fail: a short time limit, since a stub often loops forever)
  if EX_TIMEOUT=${EX_CHECK_STUB_TIMEOUT:-5} bash scripts/exercise-run.sh "$build/exercise/$ex" >"$tmp/stub.log" 2>&1; then
    echo "[exercise-check] $ex: the stub PASSES its tests: they do not check $fn()" >&2
    tail -3 "$tmp/stub.log" | sed 's/^/  /' >&2
    broken=1; continue
  fi
  stub_sum=$(tail -1 "$tmp/stub.log" | sed 's/^exercise: //')

  # 2. the solution: the library's function pasted into the student file passes
  if ! /usr/bin/python3 scripts/exercise-solution.py "$src" "$fn" "$home/student.c" >"$tmp/$ex-solution.c"; then
    broken=1; continue
  fi
  if ! make_q exercise-build MODE=debug EX="$ex" EX_STUDENT="$tmp/$ex-solution.c" >"$tmp/sol-build.log" 2>&1; then
    echo "[exercise-check] $ex: the solution (from $src) does not build in the student file:" >&2
    grep -v '^cc \|^ar \|^objcopy ' "$tmp/sol-build.log" | tail -15 | sed 's/^/  /' >&2
    broken=1; continue
  fi
  if ! bash scripts/exercise-run.sh "$build/exercise/$ex" >"$tmp/sol.log" 2>&1; then
    echo "[exercise-check] $ex: the library's own $fn() FAILS the exercise's tests:" >&2
    grep -v '^\[==\|^\[ *PASSED' "$tmp/sol.log" | tail -15 | sed 's/^/  /' >&2
    broken=1; continue
  fi
  sol_sum=$(tail -1 "$tmp/sol.log" | sed 's/^exercise: //')
  # leave the build holding the student's own file again
  make_q exercise-build MODE=debug EX="$ex" >/dev/null 2>&1
  echo "[exercise-check] $ex: stub fails ($stub_sum), solution passes ($sol_sum) ... ok in $(since "$t0") s"
done
exit $broken
