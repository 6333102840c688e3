#!/usr/bin/env bash
# Every test: the Rust suite (`cargo test`), then the Python package's (tools/python-pkg.sh).
# The README's test command; `.ci/run` runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
cargo test
echo "cargo test: $(( $(date +%s) - start )) s wall"
start=$(date +%s)
tools/python-pkg.sh
echo "python package tests: $(( $(date +%s) - start )) s wall"
