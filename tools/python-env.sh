#!/usr/bin/env bash
# Installs the Python side of the tests and benchmarks (PyTorch, JAX, numpy, safetensors: pinned
# in tests/python/requirements.txt) into a virtual environment, once per machine:
#
#   tools/python-env.sh          # into $CELLC_VENV, default ~/.cache/cellc/venv; prints its python
#
# An environment already made from the same requirements is kept (a copy of them inside it says
# which). PyPI's torch wheel brings ~5 GB of CUDA libraries even for CPU use; nothing uses them.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${CELLC_VENV:-$HOME/.cache/cellc/venv}"
req=tests/python/requirements.txt
if [ -x "$venv/bin/python" ] && cmp -s "$req" "$venv/cellc-requirements.txt"; then
    echo "$venv/bin/python"
    exit 0
fi
command -v python3 >/dev/null || { echo "python-env: python3 is needed (Debian: apt-get install python3 python3-venv)" >&2; exit 1; }
echo "python-env: installing $req into $venv" >&2
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --upgrade pip >&2
"$venv/bin/pip" install --quiet -r "$req" >&2
cp "$req" "$venv/cellc-requirements.txt"
echo "$venv/bin/python"
