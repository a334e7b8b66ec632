#!/usr/bin/env bash
# Start gdb on the debug build, stopped at chapter N's key function
# (scripts/gdb/chapters.txt): in the model `make chN` trained, when the
# chapter has a `trained` line and runs/ holds that model, else in a tiny
# version of the chapter's experiment (made by its `setup` lines; one line says so).
#
#   scripts/gdb/run-gdb.sh N [BINARY]            interactive (what `make gdb CH=N` runs)
#   GDB_BATCH=1 scripts/gdb/run-gdb.sh N         non-interactive: stop, run the chapter's
#                                                `show` commands, quit; the transcript is
#                                                printed and kept in runs/gdb/chNN-transcript.txt
#   scripts/gdb/run-gdb.sh --setup N [BINARY]    only make the chapter's tiny inputs
#                                                (for VS Code, .vscode/launch.json)
#   scripts/gdb/run-gdb.sh --list                the table
#   GDB_TINY=1 scripts/gdb/run-gdb.sh N          the tiny run even when runs/ has the trained model
#
# BINARY defaults to build/debug/tinyseek (make gdb passes the right one).
set -euo pipefail
cd "$(dirname "$0")/../.."
table=scripts/gdb/chapters.txt

setup_only=0
if [[ ${1:-} == --list ]]; then
  echo "chapter  stops in                 runs"
  awk '!/^[[:space:]]*(#|$)/ && $2=="break" {b[$1]=$3} !/^[[:space:]]*(#|$)/ && $2=="run" {r[$1]=$0; sub(/^[^ \t]+[ \t]+run[ \t]+/, "", r[$1])}
       !/^[[:space:]]*(#|$)/ && $2=="trained" {m[$1]=" (or in " $3 ")"}
       END {for (c in b) printf "%-8s %-24s tinyseek %s%s\n", c, b[c], r[c], m[c]}' "$table" | sort -n
  exit 0
fi
if [[ ${1:-} == --setup ]]; then setup_only=1; shift; fi
ch=${1:-}
bin=${2:-build/debug/tinyseek}
if [[ -z "$ch" ]]; then
  echo "gdb: which chapter? e.g. make gdb CH=1 (scripts/gdb/run-gdb.sh --list shows them)" >&2
  exit 2
fi
ch=$((10#${ch#ch}))   # accept 1, 01, ch1

# field KEY: every value of KEY for this chapter, one per line, in table order
field() { awk -v c="$ch" -v k="$1" '!/^[[:space:]]*(#|$)/ && $1==c && $2==k { sub(/^[^ \t]+[ \t]+[^ \t]+[ \t]+/, ""); print }' "$table"; }

brk=$(field break | head -1)       # "FUNCTION [if CONDITION]"
func=${brk%% *}
run_args=$(field run | head -1)
if [[ -z "$func" || -z "$run_args" ]]; then
  echo "gdb: chapter $ch has no 'break' and 'run' lines in $table (scripts/gdb/run-gdb.sh --list)" >&2
  exit 2
fi
[[ -x "$bin" ]] || { echo "gdb: $bin not found: run make debug" >&2; exit 2; }
command -v gdb >/dev/null || { echo "gdb: gdb is not installed (apt-get install gdb)" >&2; exit 2; }

# `trained DIR ARGS...`: with DIR's checkpoint in runs/, gdb runs ARGS in it and
# nothing needs making; without it, the tiny run below (VS Code's --setup always makes that).
trained=$(field trained | head -1)
if [[ -n "$trained" && $setup_only == 0 ]]; then
  model=${trained%% *}
  if [[ ${GDB_TINY:-0} != 1 && -f $model/config.json && -f $model/model.safetensors ]]; then
    run_args=${trained#* }
    echo "gdb: the trained model $model"
    setup_done=1
  elif [[ ${GDB_TINY:-0} == 1 ]]; then
    echo "gdb: GDB_TINY=1: a tiny model trained for two steps, not $model"
  else
    echo "gdb: no trained model in $model (make ch$ch writes it): a tiny model trained for two steps instead"
  fi
fi

# Setup commands make the tiny inputs (with the same binary, so nothing else needs building).
[[ ${setup_done:-0} == 1 ]] || while IFS= read -r s; do
  [[ -n "$s" ]] || continue
  echo "gdb: setup: tinyseek $s"
  # shellcheck disable=SC2086  # the table's words are the arguments
  "$bin" $s >/dev/null || { echo "gdb: chapter $ch setup failed: $bin $s" >&2; exit 1; }
done < <(field setup)
[[ $setup_only == 1 ]] && exit 0

args=(-q -x scripts/gdb/gdbinit -ex "break $brk")
# shellcheck disable=SC2206
run_words=($run_args)

if [[ ${GDB_BATCH:-0} == 1 ]]; then
  mkdir -p runs/gdb
  out=$(printf 'runs/gdb/ch%02d-transcript.txt' "$ch")
  cmds=(-ex run)
  while IFS= read -r c; do
    [[ -n "$c" ]] && cmds+=(-ex "echo (gdb) $c\\n" -ex "$c")
  done < <(field show)
  cmds+=(-ex kill)
  echo "gdb: batch: $bin ${run_words[*]} (stop in $func)"
  set +e
  gdb -batch "${args[@]}" "${cmds[@]}" --args "$bin" "${run_words[@]}" 2>&1 | tee "$out"
  rc=${PIPESTATUS[0]}
  set -e
  if ! grep -q "Breakpoint 1, $func " "$out"; then
    echo "gdb: the run never reached $func (transcript: $out)" >&2
    exit 1
  fi
  if grep -q '^Python Exception' "$out"; then
    echo "gdb: the pretty printer raised an exception (transcript: $out)" >&2
    exit 1
  fi
  if grep -q '^tsattn: head .*, not 1' "$out"; then
    echo "gdb: a row of attention probabilities does not sum to 1: $(grep -m1 '^tsattn: head' "$out") (transcript: $out)" >&2
    exit 1
  fi
  echo "gdb: transcript in $out"
  exit $rc
fi

hint="Stopped in $func. Try:"
while IFS= read -r c; do [[ -n "$c" ]] && hint+="\\n  $c"; done < <(field show)
exec gdb "${args[@]}" -ex run -ex "echo \\n$hint\\n\\n" --args "$bin" "${run_words[@]}"
