#!/usr/bin/env bash
# Install the Debian packages tinyseek needs, only when something is missing.
#
#   scripts/install-deps.sh            packages for building, testing, figures, docs
#   scripts/install-deps.sh notebooks  also Jupyter (Debian's python3, not a virtualenv)
#   scripts/install-deps.sh torch      also PyTorch and NumPy, for `make crosscheck` / `make bench`
#   scripts/install-deps.sh fuzz       also clang (libFuzzer, ASan, UBSan), for `make fuzz`
#   scripts/install-deps.sh mpi        also Open MPI, for appendix C (`make test-mpi`, `make appC`)
#
# Quiet and fast when everything is present: it only asks dpkg.
set -euo pipefail

base=(build-essential pkg-config libcmocka-dev libcjson-dev libopenblas-dev libopenblas-openmp-dev gnuplot-nox doxygen graphviz python3 python3-jinja2)
extra=()
for what in "$@"; do
  case "$what" in
    notebooks) extra+=(python3-ipykernel jupyter-nbconvert python3-nbformat python3-numpy jupyter-client) ;;
    torch) extra+=(python3-torch python3-numpy) ;;
    fuzz) extra+=(clang) ;;
    mpi) extra+=(libopenmpi-dev openmpi-bin) ;;
    *) echo "install-deps: unknown extra '$what' (expected: notebooks, torch, fuzz, mpi)" >&2; exit 2 ;;
  esac
done

missing=()
for pkg in "${base[@]}" "${extra[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "install-deps: installing ${missing[*]}"
sudo=""
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null; then sudo="sudo"; else
    echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 2
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
