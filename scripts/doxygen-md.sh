#!/usr/bin/env bash
# Doxygen input filter for chapters/*.md (Doxyfile FILTER_PATTERNS): the
# chapter's {{...}} placeholders replaced by their numbers from results/
# (scripts/book.py --resolve), then the link rewrites of scripts/doxygen-md.sed.
set -euo pipefail
here=$(dirname "$0")
/usr/bin/python3 "$here/book.py" --resolve "$1" | sed -E -f "$here/doxygen-md.sed"
