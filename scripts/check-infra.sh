#!/usr/bin/env bash
# Check that the teaching tools fail when they must (and pass when they must),
# each in a temporary copy, so nothing in the checkout changes:
#
#   book      make book-check passes on the checkout's copy, and fails on a
#             snippet naming a missing marker, a missing file, a marker that is
#             never closed, a snippet that prints an exercise's solution, an
#             \includedoc of a missing file, and on a chapter edited without
#             make book-md; a header's `// [name]` marker and \includedoc work
#   docs      make docs passes on a small documented tree, and fails when a
#             header gains an undocumented function or struct field, or a
#             chapter names a missing snippet
#   notebooks make notebooks passes a good notebook and fails on a raising cell
#   figures   scripts/figures.sh refuses a script whose CSV is missing
#   gdb       the ts_view pretty printer and tsprint print the right matrices,
#             tsattn, tslatent and tsparam the right tables (tsattn calls out a row
#             that does not sum to 1), .vscode/launch.json matches
#             scripts/gdb/chapters.txt, and chapter 4's GDB_BATCH=1 stop (the
#             tiny model) prints 8 heads' probabilities that sum to 1 and the
#             latent split at kv_lora_rank
#   pool      scripts/pool.sh runs POOL_JOBS jobs at once, never more, runs every job,
#             and pool_wait fails naming the job that failed
#
#   scripts/check-infra.sh [book docs notebooks figures gdb pool]   (default: all)
# One line per check; exit 1 if any failed. Needs the base packages
# (scripts/install-deps.sh) and, for notebooks, `install-deps.sh notebooks`.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
PY=/usr/bin/python3
tmp=$(mktemp -d /tmp/tinyseek-check-infra-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
failures=0
make_q() { ${MAKE:-make} --no-print-directory "$@"; }

ok()   { echo "[check-infra] ok    $*"; }
bad()  { echo "[check-infra] FAIL  $*" >&2; failures=$((failures + 1)); }

# expect_fail NAME PATTERN CMD...: CMD must exit non-zero and print PATTERN (grep -E).
expect_fail() {
  local name=$1 pattern=$2; shift 2
  local out rc
  out=$("$@" 2>&1); rc=$?
  if [[ $rc -eq 0 ]]; then bad "$name: succeeded but must fail"; printf '%s\n' "$out" | tail -5 | sed 's/^/    /' >&2; return; fi
  if ! grep -qE -- "$pattern" <<<"$out"; then
    bad "$name: failed (exit $rc) without saying /$pattern/:"; printf '%s\n' "$out" | tail -8 | sed 's/^/    /' >&2; return
  fi
  ok "$name: exit $rc, $(grep -E -m1 -- "$pattern" <<<"$out" | sed 's/^ *//' | cut -c1-150)"
}
# expect_pass NAME CMD...
expect_pass() {
  local name=$1; shift
  local out rc
  out=$("$@" 2>&1); rc=$?
  if [[ $rc -ne 0 ]]; then bad "$name: must pass, exit $rc:"; printf '%s\n' "$out" | tail -8 | sed 's/^/    /' >&2; return; fi
  ok "$name"
}

check_book() {
  local c=$tmp/book
  mkdir -p "$c"
  # the pieces make book-check reads: the Makefile (it includes mk/), the generator, chapters,
  # sources, the exercises (whose functions no snippet may print), the figures (\includedoc)
  # and results/ (the numbers the chapters quote)
  cp -r Makefile mk scripts chapters src exercises figures results book.md "$c"/
  expect_pass "book: make book-check on the current chapters" make_q -C "$c" book-check
  mkdir -p "$c/src/probe"
  cat >"$c/src/probe/probe.c" <<'EOF'
int probe(void) {
    //! [probe-ok]
    return 1;
    //! [probe-ok]
    //! [probe-open]
    return 2;
}
EOF
  local ch=$c/chapters/99-probe.md
  printf '# Probe\n\n\\snippet src/probe/probe.c probe-ok\n' >"$ch"
  expect_fail "book: a new chapter without make book-md" "book.md is stale: run make book-md" make_q -C "$c" book-check
  make_q -C "$c" book-md >/dev/null 2>&1
  expect_pass "book: make book-md, then book-check" make_q -C "$c" book-check
  grep -q 'src/probe/probe.c, lines 3–3' "$c/book.md" && ok "book: snippet caption and line range" || bad "book: caption 'src/probe/probe.c, lines 3–3' missing from book.md"
  printf '# Probe\n\nText.\n\n\\snippet src/probe/probe.c no-such-marker\n' >"$ch"
  expect_fail "book: snippet naming a missing marker" "chapters/99-probe.md:5: .*no-such-marker.*no line in src/probe/probe.c contains" make_q -C "$c" book-check
  printf '# Probe\n\n\\snippet src/probe/nope.c probe-ok\n' >"$ch"
  expect_fail "book: snippet naming a missing file" "chapters/99-probe.md:3: .*no such file src/probe/nope.c" make_q -C "$c" book-check
  printf '# Probe\n\n\\snippet src/probe/probe.c probe-open\n' >"$ch"
  expect_fail "book: marker opened and never closed" "chapters/99-probe.md:3: .*probe-open.*never closed" make_q -C "$c" book-md
  # an exercise's solution: a snippet covering the body of an EX_FUNCTION fails
  mkdir -p "$c/exercises/probe_ex"
  printf 'EX_SOURCE   := src/probe/probe.c\nEX_FUNCTION := probe\nEX_TESTS    := test_probe\n' \
    >"$c/exercises/probe_ex/exercise.mk"
  printf '# Probe\n\n\\snippet src/probe/probe.c probe-ok\n' >"$ch"
  expect_fail "book: a snippet that prints an exercise's solution" \
    "chapters/99-probe.md:3: .*prints the body of probe\(\).*solution of exercise probe_ex" make_q -C "$c" book-md
  rm -r "$c/exercises/probe_ex"
  # a header's declaration, between two `// [name]` lines, and a generated table
  printf '#ifndef PROBE_H\n#define PROBE_H\n// [probe-sig]\n/** @brief A probe. */\nint probe(void);\n\n// [probe-sig]\n#endif\n' \
    >"$c/src/probe/probe.h"
  printf '| a | b |\n|---|---|\n| 1 | 2 |\n' >"$c/figures/probe-table.md"
  printf '# Probe\n\n\\snippet src/probe/probe.h probe-sig\n\n\\includedoc figures/probe-table.md\n' >"$ch"
  expect_pass "book: a header snippet and an \\includedoc" make_q -C "$c" book-md
  grep -q 'src/probe/probe.h, lines 4–5' "$c/book.md" && grep -qx '| 1 | 2 |' "$c/book.md" \
    && ok "book: the header's declaration (lines 4–5) and the included table are in book.md" \
    || bad "book: header snippet 'src/probe/probe.h, lines 4–5' or the included table missing from book.md"
  printf '# Probe\n\n\\includedoc figures/no-such.md\n' >"$ch"
  expect_fail "book: \\includedoc of a missing file" "chapters/99-probe.md:3: .*includedoc figures/no-such.md: no such file" \
    make_q -C "$c" book-md
}

check_docs() {
  local c=$tmp/docs
  mkdir -p "$c/scripts" "$c/src/core" "$c/chapters" "$c/docs" "$c/figures"
  cp Doxyfile "$c"/; cp scripts/docs.sh scripts/doxygen-md.sed scripts/doxygen-md.sh scripts/book.py "$c/scripts/"; cp docs/mainpage.md "$c/docs/"
  cp src/core/common.h src/core/arena.h "$c/src/core/"
  cat >"$c/src/core/probe.c" <<'EOF'
/** @file probe.c
 * @brief A probe for the docs check. */
#include "core/common.h"
#define PROBE_PRIVATE 1 /* private to this file: no documentation required */
int ts_num_threads(void) {
    //! [probe]
    return PROBE_PRIVATE;
    //! [probe]
}
EOF
  printf '# Probe chapter\n\nSee [common.h](../src/core/common.h).\n\n\\snippet src/core/probe.c probe\n' >"$c/chapters/01-probe.md"
  expect_pass "docs: a documented tree builds without warnings" bash "$c/scripts/docs.sh"
  cp "$c/src/core/common.h" "$c/common.h.orig"
  sed -i 's|^#endif|int ts_probe_undocumented(int x);\n#endif|' "$c/src/core/common.h"
  expect_fail "docs: an undocumented function in a header" "common.h:[0-9]+: warning: .*ts_probe_undocumented.*not documented" bash "$c/scripts/docs.sh"
  cp "$c/common.h.orig" "$c/src/core/common.h"
  sed -i 's|^#endif|/** @brief A probe struct. */\ntypedef struct { int documented; /**< yes */ int probe_field; } ts_probe;\n#endif|' "$c/src/core/common.h"
  expect_fail "docs: an undocumented struct field in a header" "warning: Member probe_field .*not documented" bash "$c/scripts/docs.sh"
  cp "$c/common.h.orig" "$c/src/core/common.h"
  printf '# Probe chapter\n\n\\snippet src/core/probe.c no-such-marker\n' >"$c/chapters/01-probe.md"
  expect_fail "docs: a chapter snippet naming a missing marker" "01-probe.md:[0-9]+: warning: .*no-such-marker" bash "$c/scripts/docs.sh"
}

check_notebooks() {
  if ! $PY -c 'import nbformat, nbconvert, ipykernel' 2>/dev/null; then
    bad "notebooks: Jupyter missing (bash scripts/install-deps.sh notebooks)"; return
  fi
  local c=$tmp/nb
  mkdir -p "$c"
  $PY - "$c" <<'EOF'
import sys, nbformat
from nbformat.v4 import new_notebook, new_code_cell
d = sys.argv[1]
meta = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
nbformat.write(new_notebook(cells=[new_code_cell("import os\nassert os.environ['TINYSEEK_QUICK'] == '1'\nprint('fine')")], metadata=meta), f"{d}/good.ipynb")
nbformat.write(new_notebook(cells=[new_code_cell("x = 1"), new_code_cell("raise RuntimeError('probe: this cell raises')"),
                                   new_code_cell("print('never reached')")], metadata=meta), f"{d}/bad.ipynb")
EOF
  local before after
  before=$(cat notebooks/*.ipynb 2>/dev/null | md5sum)
  expect_pass "notebooks: a good notebook passes (quick profile set)" make_q notebooks NOTEBOOKS="$c/good.ipynb"
  expect_fail "notebooks: a raising cell fails make notebooks" "RuntimeError: probe: this cell raises" make_q notebooks NOTEBOOKS="$c/bad.ipynb"
  [[ -s $root/build/notebooks/good.ipynb ]] && ok "notebooks: the executed copy is in build/notebooks/" \
    || bad "notebooks: no executed copy build/notebooks/good.ipynb"
  after=$(cat notebooks/*.ipynb 2>/dev/null | md5sum)
  [[ "$before" == "$after" ]] && ok "notebooks: notebooks/*.ipynb untouched" || bad "notebooks: the runs changed notebooks/*.ipynb"
}

check_figures() {
  local c=$tmp/fig
  mkdir -p "$c"
  printf '# input: runs/check-infra/no-such.csv\n# made-by: make chX\nplot "runs/check-infra/no-such.csv" using 1:2\n' >"$c/probe.gp"
  expect_fail "figures: a script whose CSV is missing" "probe.gp needs runs/check-infra/no-such.csv: run make chX first" bash scripts/figures.sh "$c/probe.gp"
  printf 'set datafile separator comma\nplot "%s" using 1:2 with lines\n' "$c/data.csv" >"$c/probe2.gp"
  printf 'a,b\n1,2\n2,3\n' >"$c/data.csv"
  mkdir -p "$c/figs"
  (cd "$c" && gnuplot -e "set terminal svg; set output 'figs/p.svg'" probe2.gp) >/dev/null 2>&1 && [[ -s $c/figs/p.svg ]] \
    && ok "figures: gnuplot draws svg" || bad "figures: gnuplot could not draw an svg"
}

check_gdb() {
  command -v gdb >/dev/null || { bad "gdb: not installed"; return; }
  local c=$tmp/gdb
  mkdir -p "$c"
  if ! cc -std=c11 -g -O0 -Isrc scripts/gdb/fixture.c -o "$c/fixture" 2>"$c/cc.log"; then
    bad "gdb: fixture does not compile: $(head -1 "$c/cc.log")"; return
  fi
  local out
  out=$(gdb -q -batch -x scripts/gdb/gdbinit -ex 'break ts_fixture_stop' -ex run -ex 'print *small' \
        -ex 'print *big' -ex 'tsprint ids 3 4' -ex 'tsprint ids n' "$c/fixture" 2>&1)
  local want_small=$'$1 = ts_view "layer.w" (2,3) float\n[[0.5 -1.25  3]\n [ 10 0.001 -7]]'
  grep -qF -- "$want_small" <<<"$out" && ok "gdb: print of a ts_view shows its shaped matrix" \
    || { bad "gdb: ts_view printer output differs"; printf '%s\n' "$out" | tail -30 | sed 's/^/    /' >&2; }
  grep -qF -- 'ts_view "acts" (3,40,50) float' <<<"$out" && grep -qE -- '^\[2, :, :\]$' <<<"$out" \
    && grep -qE -- '^ \[1950 1951 1952 1953 1954 … 1995 1996 1997 1998 1999\]\]$' <<<"$out" \
    && ok "gdb: a (3,40,50) view is elided with … and shows every block" || bad "gdb: large ts_view not elided as expected"
  grep -qF -- $'ids (3,4) int\n[[256 257 260 265]\n [272 281 292 305]\n [320 337 356 377]]' <<<"$out" \
    && ok "gdb: tsprint ids 3 4" || bad "gdb: tsprint ids 3 4 output differs"
  grep -qF -- '[256 257 260 265 272 … 305 320 337 356 377]' <<<"$out" \
    && ok "gdb: tsprint ids n (a vector, elided)" || bad "gdb: tsprint ids n output differs"
  grep -q 'Python Exception' <<<"$out" && bad "gdb: the Python helpers raised: $(grep -m1 'Python Exception' <<<"$out")"
  # tsattn: two heads' rows 4 floats apart; a row summing to 1.25 and a wrong stride must be called out
  out=$(gdb -q -batch -x scripts/gdb/gdbinit -ex 'break ts_fixture_stop' -ex run -ex 'tsattn probs 2 3 4' \
        -ex 'tsattn not_probs 1 3' -ex 'tsattn probs 2 4' -ex 'tslatent latent 2 3 2' "$c/fixture" 2>&1)
  grep -qF -- $'  head     0     1     2    sum max at\n     0 0.250 0.500 0.250 1.0000      1\n     1 0.125 0.125 0.750 1.0000      2\nevery head\'s row sums to 1' <<<"$out" \
    && ok "gdb: tsattn prints a head x key table whose rows sum to 1" || { bad "gdb: tsattn output differs"; printf '%s\n' "$out" | tail -30 | sed 's/^/    /' >&2; }
  grep -qF -- 'tsattn: head 0: the row sums to 1.25' <<<"$out" && grep -qF -- 'tsattn: head 0: the row sums to 100' <<<"$out" \
    && ok "gdb: tsattn calls out a row that is no distribution (sum 1.25; a wrong stride)" || bad "gdb: tsattn did not call out a row that does not sum to 1"
  grep -qF -- $'c_kv (2,3): the compressed keys and values, up-projected per head by kv_b_proj\n[[1 2 3]\n [4 5 6]]\nk_rope (2,2): the roped key, one for all heads\n[[-0.5 0.5]\n [-1.5 1.5]]' <<<"$out" \
    && ok "gdb: tslatent splits latent rows at kv_lora_rank" || bad "gdb: tslatent output differs"
  out=$(gdb -q -batch -x scripts/gdb/gdbinit -ex 'break ts_fixture_stop' -ex run -ex 'tsparam reg b.bias' \
        -ex 'tsparam &reg 0' -ex 'tsparam reg 0 grad' "$c/fixture" 2>&1)
  grep -qF -- $'tensor 1: b.bias (2) data\n[7 8]' <<<"$out" && grep -qF -- $'tensor 0: a.weight (2,3) data\n[[1 2 3]\n [4 5 6]]' <<<"$out" \
    && grep -qF -- 'tsparam: reg.grad is NULL' <<<"$out" \
    && ok "gdb: tsparam prints a registered tensor by name or index, and says when gradients are not allocated" \
    || { bad "gdb: tsparam output differs"; printf '%s\n' "$out" | tail -12 | sed 's/^/    /' >&2; }
  expect_pass "gdb: .vscode/launch.json matches scripts/gdb/chapters.txt" $PY scripts/gdb/launch_json.py --check
  # Chapter 4's stop under GDB_BATCH=1, in a copy without runs/ (so the tiny
  # model, and the line saying so): every tsattn row, as printed, sums to 1.
  if ! make_q all MODE=debug >"$c/debug.log" 2>&1; then bad "gdb: make all MODE=debug failed: $(tail -1 "$c/debug.log")"; return; fi
  local w=$c/tree
  mkdir -p "$w/scripts" "$w/configs"
  cp -r scripts/gdb "$w/scripts/"; cp configs/ch04-mla.json "$w/configs/"
  out=$(GDB_BATCH=1 bash "$w/scripts/gdb/run-gdb.sh" 4 "$root/build/debug/tinyseek" 2>&1)
  local rc=$?
  if [[ $rc -ne 0 ]]; then bad "gdb: GDB_BATCH=1 chapter 4 failed (exit $rc)"; printf '%s\n' "$out" | tail -8 | sed 's/^/    /' >&2; return; fi
  grep -q '^gdb: no trained model in runs/ch04/mla (make ch4 writes it)' <<<"$out" \
    && ok "gdb: without runs/ch04/mla, chapter 4 says so and stops in the tiny model" || bad "gdb: no line saying runs/ch04/mla is missing"
  # the table's rows: "  head  k0 k1 ... sum max_at"; add the printed probabilities (3 decimals each)
  local sums
  sums=$(awk '/^\(gdb\) tsattn/ {on=1; next} on && (/^  +head/ || /attention probabilities of the query/) {next}
              on && /^ +[0-9]+( +[0-9.]+)+ +[0-9]+$/ {s=0; for (i=2; i<=NF-2; i++) s+=$i; n++; printf "%d:%.3f ", $1, s;
                                                   if (s < 1 - 0.0005*(NF-3) || s > 1 + 0.0005*(NF-3)) bad++; next}
              on {on=0} END {printf "rows=%d bad=%d", n, bad}' <<<"$out")
  if [[ $sums =~ rows=([0-9]+)\ bad=0$ ]] && (( BASH_REMATCH[1] >= 8 )) && grep -qE '^c_kv \([0-9]+,64\):' <<<"$out" && grep -qE '^k_rope \([0-9]+,8\):' <<<"$out"; then
    ok "gdb: GDB_BATCH=1 make gdb CH=4: the latent split 64 + 8, each head's printed probabilities sum to 1 ($sums)"
  else
    bad "gdb: GDB_BATCH=1 chapter 4: probabilities or latent split not as expected ($sums)"; printf '%s\n' "$out" | grep -A12 '^(gdb) ts' | sed 's/^/    /' >&2
  fi
}

check_pool() {
  local d=$tmp/pool out
  mkdir -p "$d"
  # Each job records how many jobs are running when it starts (a file per running job),
  # sleeps, and removes its file; job "bad" fails.
  cat >"$d/run.sh" <<EOF
set -euo pipefail
source "$root/scripts/pool.sh"
job() { touch "$d/running.\$1"; ls "$d" | grep -c '^running\.' >"$d/seen.\$1"; sleep 0.3; rm "$d/running.\$1"; [[ \$1 != bad ]]; }
for j in a b c bad e; do pool_run "\$j" job "\$j"; done
pool_wait || { echo "pool_wait failed"; exit 1; }
EOF
  out=$(POOL_JOBS=2 bash "$d/run.sh" 2>&1)
  local ran max
  ran=$(ls "$d" | grep -c '^seen\.')
  max=$(cat "$d"/seen.* | sort -n | tail -1)
  if [[ $ran == 5 && $max == 2 && $out == *"pool: bad failed (exit 1)"* && $out == *"pool_wait failed"* ]]; then
    ok "pool: 5 jobs run, at most 2 at once, the failed one named and pool_wait fails"
  else
    bad "pool: ran $ran of 5 jobs, at most $max at once (want 2); output: $out"
  fi
}

checks=("$@")
[[ ${#checks[@]} -gt 0 ]] || checks=(book docs notebooks figures gdb pool)
start=$(date +%s.%N)
for c in "${checks[@]}"; do
  case $c in
    book|docs|notebooks|figures|gdb|pool) "check_$c" ;;
    *) echo "check-infra: unknown check '$c' (book docs notebooks figures gdb pool)" >&2; exit 2 ;;
  esac
done
secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
if [[ $failures -gt 0 ]]; then
  echo "[check-infra] $failures check(s) failed ($secs s)" >&2
  exit 1
fi
echo "[check-infra] all passed ($secs s)"
