#!/usr/bin/env bash
# Builds the Python package (python/: PyO3 + maturin, dev profile, sharing target/ with cargo)
# into the test environment of tools/python-env.sh and runs its tests with pytest:
#
#   tools/python-pkg.sh [PYTEST ARGS]
#
# Not run from inside `cargo test`: cargo holds target/'s lock while tests run, so a nested
# build would wait for ever.
set -euo pipefail
cd "$(dirname "$0")/.."
python=$(tools/python-env.sh)
venv=$(dirname "$(dirname "$python")")
start=$(date +%s)
VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH" "$venv/bin/maturin" develop --quiet -m python/Cargo.toml
echo "python package built into $venv: $(( $(date +%s) - start )) s wall"
# -p no:cacheprovider: leave no .pytest_cache in the repository. pytest exits non-zero when it
# collects no tests, so a broken collection cannot pass.
"$python" -m pytest python/tests -q -p no:cacheprovider "$@"
