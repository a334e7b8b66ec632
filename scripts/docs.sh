#!/usr/bin/env bash
# Build the Doxygen HTML (docs/html) and fail on any warning that matters.
#
# Every warning counts, except "X is not documented" for members of a .c file
# (its private macros, helper types and main()): the public API is the headers,
# and all of a header's functions, structs, fields and macros must be
# documented. Call graphs are drawn when graphviz's `dot` is installed.
#
#   scripts/docs.sh            what `make docs` runs
#   DOXYFILE=path scripts/docs.sh
#
# All of Doxygen's own messages stay in build/doxygen-warnings.log; the ones
# that count are printed (paths relative to the repository) and make the exit
# status 1.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
command -v doxygen >/dev/null || { echo "docs: doxygen is not installed (run: make deps)" >&2; exit 2; }
doxyfile=${DOXYFILE:-Doxyfile}
log=build/doxygen-warnings.log
mkdir -p build docs
rm -f "$log"

extra=()
if command -v dot >/dev/null; then
  extra=("HAVE_DOT = YES" "CALL_GRAPH = YES" "CALLER_GRAPH = YES")
fi
start=$(date +%s.%N)
{ cat "$doxyfile"; printf '%s\n' "WARN_LOGFILE = $log" "${extra[@]}"; } | doxygen - >build/doxygen.out 2>&1
rc=$?
if [[ $rc -ne 0 ]]; then
  cat build/doxygen.out >&2
  echo "docs: doxygen failed (exit $rc)" >&2
  exit 1
fi

# One warning may span lines (a list of undocumented parameters): join the
# indented continuation lines to their first line, filter, then split again.
touch "$log"
kept=$(awk '
    function flush() {
      if (entry == "") return
      if (!(entry ~ /^[^:]*\.c:[0-9]+: (warning|error): Member .* is not documented\.$/) && !seen[entry]++) print entry
      entry = ""
    }
    /^[ \t]/ { entry = entry "\n" $0; next }
    { flush(); entry = $0 }
    END { flush() }' "$log" | sed "s|$root/||g")

if [[ -n "$kept" ]]; then
  printf '%s\n' "$kept" | sed 's/: error: /: warning: /' >&2
  n=$(printf '%s\n' "$kept" | grep -c -E ': (warning|error): ')
  echo "docs: $n Doxygen warning(s), listed above (all messages: $log)" >&2
  exit 1
fi
graphs="with call graphs"
[[ ${#extra[@]} -eq 0 ]] && graphs="without graphs (dot not found)"
echo "docs: docs/html/index.html, no warnings, $graphs ($(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s)"
