#!/usr/bin/env bash
# make crosscheck / make crosscheck-selftest (mk/crosscheck.mk).
#
#   scripts/crosscheck.sh TINYSEEK OUTDIR VARIANT...            every variant must match the twin
#   scripts/crosscheck.sh --selftest TINYSEEK OUTDIR VARIANT     one perturbed gradient must be caught
#
# A variant is tests/reference/configs/VARIANT.json. For each, `tinyseek
# dump-grads` writes a random checkpoint, a batch, the logits, loss, every
# gradient, a KV-cache decode and 10 AdamW steps to OUTDIR/VARIANT, and the
# PyTorch twin (tests/reference/twin.py check) recomputes them and compares
# tensor by tensor. Exit status: 0 all matched, 1 a mismatch, 2 a tool failed.
set -uo pipefail
PY=${PY3:-/usr/bin/python3}
here=$(cd "$(dirname "$0")/.." && pwd)
selftest=0
if [[ ${1:-} == --selftest ]]; then selftest=1; shift; fi
ts=$1 out=$2
shift 2
[[ $# -gt 0 ]] || { echo "crosscheck: no variants (tests/reference/configs/*.json)" >&2; exit 2; }
mkdir -p "$out"

if [[ $selftest == 1 ]]; then
  v=$1
  name=${CROSSCHECK_PERTURB:-model.layers.1.self_attn.k_proj.weight}
  echo "crosscheck-selftest: perturbing the gradient of $name in tinyseek ($v); the twin must catch it"
  TS_CROSSCHECK_PERTURB=$name "$ts" dump-grads --config "$here/tests/reference/configs/$v.json" --out "$out/selftest-$v" || exit 2
  "$PY" "$here/tests/reference/twin.py" check "$out/selftest-$v" --quiet > "$out/selftest-$v.txt"
  rc=$?
  cat "$out/selftest-$v.txt"
  if ! [[ $rc == 1 ]] || ! grep -q "grad\.$name .*FAIL" "$out/selftest-$v.txt"; then
    echo "crosscheck-selftest: FAILED: the twin did not flag the perturbed gradient of $name (exit $rc)" >&2
    exit 1
  fi
  echo "crosscheck-selftest: OK (the perturbed gradient failed the check, as it must)"
  # Bugs planted in the GRPO loss alone (cmd_dump.c, TS_CROSSCHECK_GRPO_BUG): the gradient of the settings
  # it names must fail, and nothing outside grpo.S.* may.
  for bug in noclip:seq nokl:seq noclip_higher:tok; do
    b=${bug%%:*} s=${bug##*:}
    echo "crosscheck-selftest: planting '$b' in tinyseek's GRPO loss ($v); the twin must catch it in grpo.$s"
    TS_CROSSCHECK_GRPO_BUG=$b "$ts" dump-grads --config "$here/tests/reference/configs/$v.json" \
      --out "$out/selftest-$v-$b" > /dev/null || exit 2
    "$PY" "$here/tests/reference/twin.py" check "$out/selftest-$v-$b" --quiet > "$out/selftest-$v-$b.txt"
    rc=$?
    grep "FAIL" "$out/selftest-$v-$b.txt" | head -4
    if [[ $rc != 1 ]] || ! grep -q "grpo\.$s\.grad\..*FAIL" "$out/selftest-$v-$b.txt" ||
       grep "FAIL" "$out/selftest-$v-$b.txt" | grep -v "^crosscheck" | grep -qv "grpo\."; then
      echo "crosscheck-selftest: FAILED: the twin did not flag the GRPO bug '$b' in grpo.$s alone (exit $rc)" >&2
      exit 1
    fi
  done
  echo "crosscheck-selftest: OK (each planted GRPO bug failed the GRPO check, and only it)"
  exit 0
fi

failed=()
t0=$(date +%s)
for v in "$@"; do
  cfg=$here/tests/reference/configs/$v.json
  [[ -f $cfg ]] || { echo "crosscheck: no config $cfg" >&2; exit 2; }
  "$ts" dump-grads --config "$cfg" --out "$out/$v" > "$out/$v.dump.log" 2>&1 || { cat "$out/$v.dump.log" >&2; failed+=("$v"); continue; }
  "$PY" "$here/tests/reference/twin.py" check "$out/$v" | tee "$out/$v.txt"
  [[ ${PIPESTATUS[0]} == 0 ]] || failed+=("$v")
  echo
done
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "crosscheck: FAILED: ${failed[*]} (of $*)"
  exit 1
fi
echo "crosscheck: $# variants match the PyTorch twin ($*) in $(( $(date +%s) - t0 )) s"
