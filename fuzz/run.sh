#!/usr/bin/env bash
# Run each harness for SECONDS; print its final coverage and executions; fail on any finding.
# usage: fuzz/run.sh FUZZ_DIR SECONDS NAME...
set -uo pipefail
dir=$1; secs=$2; shift 2
mkdir -p "$dir/artifacts" "$dir/logs"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
bad=()
for name in "$@"; do
  mkdir -p "$dir/corpus/$name"
  log="$dir/logs/$name.log"
  "$dir/fuzz_$name" -max_total_time="$secs" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 \
    -dict=fuzz/json.dict -artifact_prefix="$dir/artifacts/$name-" \
    "$dir/corpus/$name" "$dir/seeds/$name" >"$log" 2>&1
  rc=$?
  stats=$(grep -E '^#[0-9]+.*(DONE|pulse|NEW|REDUCE)' "$log" | tail -1 | sed -E 's/^#([0-9]+)[[:space:]]+[A-Z]+[[:space:]]+/\1 runs, /')
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  if [[ $rc -ne 0 ]]; then
    bad+=("$name")
    echo "fuzz $name: FAILED (exit $rc), see $log"
    grep -E 'ERROR|oracle failed|SUMMARY|Test unit written' "$log" | head -5
  else
    echo "fuzz $name: ok, ${execs:-?} executions in ${secs}s; last: $stats"
  fi
done
[[ ${#bad[@]} -eq 0 ]] || { echo "fuzz: findings in ${bad[*]}"; exit 1; }
