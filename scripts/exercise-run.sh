#!/usr/bin/env bash
# Run an exercise's test suites (built by `make exercise` into DIR/tests/),
# each under a time and memory limit: a student's endless loop or runaway
# allocation ends as a failed suite with a one-line reason, not a hung machine.
#
#   scripts/exercise-run.sh DIR
#   EX_TIMEOUT=seconds per suite (default 20), EX_MEMORY_MB (default 4096)
#
# Prints the failures of each suite and ends with "exercise: N passed, N failed";
# exit 1 if any suite failed.
set -u
dir=${1:?usage: exercise-run.sh BUILD_DIR/exercise/NAME}
timeout_s=${EX_TIMEOUT:-20}
mem_mb=${EX_MEMORY_MB:-4096}
export TS_CLI="$PWD/$dir/tinyseek"   # suites that drive the command use the exercise's build
export TS_SRC="$PWD"
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
passed=0; failed=0; bad=()
shopt -s nullglob
for t in "$dir"/tests/*; do
  [[ -x "$t" ]] || continue
  name=$(basename "$t")
  out=$( (ulimit -v $((mem_mb * 1024)); timeout "$timeout_s" "$t") 2>&1 ); rc=$?
  printf '%s\n' "$out" | grep -vE '^\[ (RUN|      OK) ' || true
  p=$(printf '%s\n' "$out" | sed -n 's/.*\[  PASSED  \] \([0-9]*\) test.*/\1/p' | tail -1)
  f=$(printf '%s\n' "$out" | sed -n 's/.*\[  FAILED  \] \([0-9]*\) test.*/\1/p' | tail -1)
  passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0}))
  if [[ $rc -ne 0 ]]; then
    bad+=("$name")
    if [[ $rc -eq 124 ]]; then
      echo "exercise: $name did not finish in $timeout_s s (an endless loop?); stopped"
    elif [[ $rc -gt 128 ]]; then
      echo "exercise: $name was killed by signal $((rc - 128)) (a crash, or more than $mem_mb MB of memory)"
    fi
    [[ -z "$f" || "$f" == 0 ]] && failed=$((failed + 1))
  fi
done
[[ ${#bad[@]} -gt 0 ]] && echo "exercise: failing suites: ${bad[*]}"
echo "exercise: $passed passed, $failed failed"
[[ ${#bad[@]} -eq 0 ]]
