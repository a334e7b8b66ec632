#!/usr/bin/env bash
# Appendix C: tinyseek-mpi from the outside (make test-mpi runs it after the suites).
#  - 1 and 2 ranks over the same 2 shards write the same model.safetensors, byte for byte;
#  - the ledger counts the gradient sum, and with --ep the dispatch and combine;
#  - bad input ends with one line naming the problem and exit status 2.
# usage: tests/mpi/cli.sh BUILD_DIR   (with mpirun on the PATH, or MPIRUN set)
set -u
build=${1:?usage: tests/mpi/cli.sh BUILD_DIR}
ts=$build/tinyseek
bin=$build/tinyseek-mpi
mpirun=${MPIRUN:-mpirun}
flags=(--oversubscribe)
[[ $(id -u) == 0 ]] && flags+=(--allow-run-as-root)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
ok() { echo "  ok: $1"; }
bad() { echo "  FAILED: $1"; fail=1; }

"$ts" data --out "$tmp/data" --seed 1 >/dev/null &&
  "$ts" tokenizer train --input "$tmp/data/pretrain_test.txt" --vocab-size 300 --out "$tmp/tok.json" >/dev/null ||
  { echo "cli.sh: could not make the toy data"; exit 1; }
common=(--config configs/ch05-moe.json --data "$tmp/data" --tokenizer "$tmp/tok.json" --steps 3 --warmup 0
        --batch 4 --seq 16 --bias-update-speed 0.01 --quiet)
run() { # run NAME RANKS FLAGS...
  local name=$1 n=$2
  shift 2
  OMP_NUM_THREADS=1 "$mpirun" "${flags[@]}" -np "$n" "$bin" pretrain --out "$tmp/$name" --ledger "$tmp/$name.csv" \
    "${common[@]}" "$@" >"$tmp/$name.log" 2>&1
}
value() { sed -n "s/^$2,//p" "$tmp/$1.csv"; }

run one 1 --shards 2 && run two 2 --shards 2 || { cat "$tmp"/*.log; bad "a run failed"; }
if cmp -s "$tmp/one/model.safetensors" "$tmp/two/model.safetensors"; then ok "1 and 2 ranks: the same checkpoint, byte for byte"
else bad "1 and 2 ranks wrote different checkpoints"; fi
g1=$(value one grad_bytes_per_step) g2=$(value two grad_bytes_per_step)
if [[ $g1 == 0.0 && ${g2%.*} -gt 0 ]]; then ok "ledger: no gradient traffic at 1 rank, $g2 bytes per step at 2"
else bad "ledger gradient bytes: '$g1' at 1 rank, '$g2' at 2"; fi
if run ep 2 --ep; then
  d=$(value ep ep_dispatch_bytes_per_step) c=$(value ep ep_combine_bytes_per_step)
  if [[ ${d%.*} -gt 0 && $d == "$c" ]]; then ok "--ep: dispatch and combine both $d bytes per step"
  else bad "--ep ledger: dispatch '$d', combine '$c'"; fi
else
  cat "$tmp/ep.log"; bad "--ep run failed"
fi

expect() { # expect WHAT RANKS PATTERN FLAGS...: exit status 2 and PATTERN in the output
  local what=$1 n=$2 pattern=$3
  shift 3
  local out rc
  out=$(OMP_NUM_THREADS=1 "$mpirun" "${flags[@]}" -np "$n" "$bin" pretrain --out "$tmp/bad" "$@" 2>&1)
  rc=$?
  if [[ $rc == 2 ]] && grep -q -- "$pattern" <<<"$out"; then ok "$what: exit 2, '$pattern'"
  else bad "$what: exit $rc, output: $(head -2 <<<"$out")"; fi
}
expect "shards not a multiple of the ranks" 2 "3 shards over 2 ranks" "${common[@]}" --shards 3
expect "shards per rank not a power of two" 2 "expected a power of two" "${common[@]}" --shards 6 --batch 6
expect "experts not split evenly" 3 "do not split over 3 ranks" "${common[@]}" --ep --batch 6
expect "--ep with more shards than ranks" 2 "one shard per rank" "${common[@]}" --ep --shards 4
expect "missing config" 1 "nope.json" "${common[@]}" --config "$tmp/nope.json"
expect "ranks per node" 2 "ranks per node 3" "${common[@]}" --ranks-per-node 3
exit $fail
