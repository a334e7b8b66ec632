#!/usr/bin/env bash
# Execute notebooks headless with Debian's Jupyter and python3 kernel, in the
# quick profile (TINYSEEK_QUICK=1: the notebooks pick small sizes).
#
#   scripts/run-notebooks.sh                      every notebooks/*.ipynb
#   scripts/run-notebooks.sh notebooks/01-*.ipynb
#   scripts/run-notebooks.sh --store [NOTEBOOK...] the full sizes (TINYSEEK_QUICK=0), and each
#                                                 notebook that runs through is written back to
#                                                 notebooks/ with its outputs (make notebooks-store),
#                                                 so a reader sees them without running anything
#
# The committed notebooks are never rewritten: each executed copy goes to
# build/notebooks/NAME.ipynb. The kernel runs in the notebook's own folder, so
# `import tinyseek` finds notebooks/tinyseek.py. Fails (exit 1, naming the
# notebook and the cell's error) if any cell raises. `make notebooks` installs
# the packages and builds the library first.
#   TINYSEEK_BUILD   build folder the notebooks use (default build/release)
#   TINYSEEK_QUICK   1 by default here; 0 runs the full sizes
#   NB_TIMEOUT       seconds per cell (default 600)
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD

store=0
if [[ ${1:-} == --store ]]; then store=1; shift; fi
nbs=("$@")
if [[ ${#nbs[@]} -eq 0 ]]; then
  shopt -s nullglob
  nbs=(notebooks/*.ipynb)
fi
[[ ${#nbs[@]} -gt 0 ]] || { echo "notebooks: no notebooks/*.ipynb"; exit 0; }

py=/usr/bin/python3
if ! $py -c 'import nbconvert, nbformat, ipykernel' 2>/dev/null; then
  echo "notebooks: Debian's Jupyter is missing: run bash scripts/install-deps.sh notebooks" >&2
  exit 2
fi

if ((store)); then export TINYSEEK_QUICK=0; else export TINYSEEK_QUICK=${TINYSEEK_QUICK:-1}; fi
export TINYSEEK_ROOT=$root
export TINYSEEK_BUILD=${TINYSEEK_BUILD:-build/release}
export PYTHONDONTWRITEBYTECODE=1
export PYDEVD_DISABLE_FILE_VALIDATION=1      # ipykernel's debugger warns about frozen modules otherwise
export MPLBACKEND=Agg
# Debian's kernelspec runs /usr/bin/python3; keep pyenv's python3 out of the way anyway.
export PATH=/usr/bin:/bin:$PATH
unset PYTHONPATH PYTHONHOME VIRTUAL_ENV

elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

outdir=$root/build/notebooks
mkdir -p "$outdir"
failed=()
total_start=$(date +%s.%N)
for nb in "${nbs[@]}"; do
  [[ -f "$nb" ]] || { echo "notebooks: $nb: no such file" >&2; failed+=("$nb"); continue; }
  name=$(basename "$nb")
  start=$(date +%s.%N)
  echo "[notebooks] $nb ..."
  log=$outdir/${name%.ipynb}.log
  if $py -m jupyter nbconvert --to notebook --execute \
        --ExecutePreprocessor.kernel_name=python3 \
        --ExecutePreprocessor.timeout="${NB_TIMEOUT:-600}" \
        --output-dir "$outdir" --output "$name" "$nb" >"$log" 2>&1; then
    echo "[notebooks] $nb ... ok in $(elapsed "$start") s (executed copy: build/notebooks/$name)"
    if ((store)); then
      # Written back with its outputs, atomically; the kernel's timing metadata dropped, so a
      # rerun that prints the same changes nothing.
      $py - "$outdir/$name" "$nb" <<'PY' || failed+=("$nb")
import nbformat, os, sys, tempfile
src, dst = sys.argv[1], sys.argv[2]
root = os.environ["TINYSEEK_ROOT"] + os.sep
nb = nbformat.read(src, as_version=4)
for cell in nb.cells:
    cell.get("metadata", {}).pop("execution", None)
    for o in cell.get("outputs", []):       # this machine's checkout, shown as the reader's
        if o.get("output_type") == "stream":
            o["text"] = o["text"].replace(root, "")
        elif "text/plain" in o.get("data", {}):   # a cell's value (a returned string, a repr)
            o["data"]["text/plain"] = o["data"]["text/plain"].replace(root, "")
fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(dst)), suffix=".tmp")
with os.fdopen(fd, "w", encoding="utf-8") as f:
    nbformat.write(nb, f)
os.chmod(tmp, 0o644)
os.replace(tmp, dst)
print(f"[notebooks] {dst}: stored with its outputs (full sizes)")
PY
    fi
  else
    # nbconvert prints the failing cell and the traceback: show the cell and the error, without colours.
    clean=$(sed 's/\x1b\[[0-9;]*m//g' "$log")
    err=$(printf '%s\n' "$clean" | grep -E '^[A-Za-z_][A-Za-z0-9_.]*(Error|Exception|Interrupt|Exit)[A-Za-z]*:? ' | tail -1)
    echo "[notebooks] $nb ... FAILED: ${err:-the execution failed (see the log)}" >&2
    printf '%s\n' "$clean" | sed -n '/An error occurred while executing the following cell/,$p' \
      | grep -v '^$' | head -n 30 | sed 's/^/  /' >&2
    echo "  (full log: build/notebooks/${name%.ipynb}.log)" >&2
    failed+=("$nb")
  fi
done
echo "[notebooks] ${#nbs[@]} run, ${#failed[@]} failed, $(elapsed "$total_start") s"
[[ ${#failed[@]} -eq 0 ]]
