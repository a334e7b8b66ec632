#!/usr/bin/env bash
# Run every cmocka suite in one or more build folders and end with one
# summary line, "N passed, N failed", over all of them.
# usage: scripts/run-tests.sh BUILD_DIR...
set -u
passed=0; failed=0; bad=()
for build in "$@"; do
  export TS_CLI="$PWD/$build/tinyseek"   # suites that drive the command find it here
  export TS_SRC="$PWD"
  # The release build with BLAS runs OpenBLAS's kernels here even where ts_sgemm
  # would prefer the project's C loops (an AVX-512 CPU with OPENBLAS_CORETYPE=Haswell):
  # the -noblas build tests those, so both backends get tested. ASan keeps the C loops.
  if [[ $build == */release ]]; then export TS_MATMUL=openblas; else unset TS_MATMUL; fi
  echo "== $build${TS_MATMUL:+ (TS_MATMUL=$TS_MATMUL)}"
  for t in "$build"/tests/test_*; do
    [[ -x "$t" ]] || continue
    name=$(basename "$t")
    out=$("$t" 2>&1); rc=$?
    printf '%s\n' "$out" | grep -vE '^\[ (RUN|      OK) ' || true
    p=$(printf '%s\n' "$out" | sed -n 's/.*\[  PASSED  \] \([0-9]*\) test.*/\1/p' | tail -1)
    f=$(printf '%s\n' "$out" | sed -n 's/.*\[  FAILED  \] \([0-9]*\) test.*/\1/p' | tail -1)
    passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0}))
    if [[ $rc -ne 0 ]]; then
      bad+=("$build/$name")
      [[ -z "$f" || "$f" == 0 ]] && failed=$((failed + 1))   # crashed before cmocka's summary
    fi
  done
done
[[ ${#bad[@]} -gt 0 ]] && echo "failing suites: ${bad[*]}"
echo "$passed passed, $failed failed"
[[ ${#bad[@]} -eq 0 ]]
