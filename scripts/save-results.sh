#!/usr/bin/env bash
# Copy a chapter's small result files (the CSV/JSON/text summaries its prose
# quotes, kilobytes, never checkpoints) from its run folder into the tracked
# results/NAME/, where scripts/book.py reads them for the book's {{...}}
# placeholders. runs/ is not in git and the experiments take minutes, so this
# copy is what lets CI rebuild and check book.md, and lets a reader who reruns
# `make chN` then `make book-md` get a book with their own numbers.
#
#   scripts/save-results.sh RUNDIR NAME FILE...
#
# FILE is relative to RUNDIR and keeps its relative path under results/NAME/.
# results/NAME/ is replaced as a whole (a file the run no longer writes does not
# linger), and only when every FILE exists. It is left alone, with a note, when
# RUNDIR is not runs/NAME: a trial run elsewhere (another OUTDIR, a test) must
# not change the book's numbers.
set -euo pipefail
run=${1:?usage: save-results.sh RUNDIR NAME FILE...}
name=${2:?usage: save-results.sh RUNDIR NAME FILE...}
shift 2
(( $# > 0 )) || { echo "save-results: no files named for $name" >&2; exit 2; }
given=$run
run=$(cd "$run" 2>/dev/null && pwd -P) || { echo "save-results: no folder $given" >&2; exit 2; }
cd "$(dirname "$0")/.."
if [[ "$run" != "$(pwd -P)/runs/$name" ]]; then
  echo "save-results: $given is not runs/$name: results/$name/ left as it is"
  exit 0
fi
for f in "$@"; do
  [[ -f $run/$f ]] || { echo "save-results: $run/$f is missing (the run did not write it)" >&2; exit 2; }
done
mkdir -p results
tmp=$(mktemp -d "results/.$name.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
for f in "$@"; do
  mkdir -p "$tmp/$(dirname "$f")"
  cp "$run/$f" "$tmp/$f"
done
chmod 755 "$tmp"
rm -rf "results/.$name.old"
[[ -d results/$name ]] && mv "results/$name" "results/.$name.old"
mv "$tmp" "results/$name"
rm -rf "results/.$name.old"
echo "save-results: $# file(s) -> results/$name/ (make book-md puts them in book.md)"
