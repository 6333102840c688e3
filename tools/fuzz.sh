#!/usr/bin/env bash
# Coverage-guided fuzzing of cellc's readers (libFuzzer through cargo-fuzz; nightly Rust):
#
#   tools/fuzz.sh                 # every target for 15 minutes, two at a time (2 cores)
#   tools/fuzz.sh 60 cell midi    # these targets, 60 seconds each
#
# Targets (bodies in fuzz/targets.rs): safetensors, checkpoint, cell, music, midi, text. Each
# runs from its working corpus in fuzz/corpus/TARGET (this machine's; tens of MB, not in git),
# seeded from fuzz/regressions/TARGET, and grows it; then the smallest 200 inputs of at most
# 4 KiB go to fuzz/regressions/TARGET, which is in git and which `cargo test` replays
# (tests/fuzz_corpus.rs). A crash or a hang (10 s) is saved in fuzz/artifacts/TARGET and fails
# the script: fix it, and put the input in fuzz/regressions/TARGET. Prints each target's
# executions and coverage.
# Needs: rustup's nightly toolchain and `cargo install cargo-fuzz`.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs="${1:-900}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(safetensors checkpoint cell music midi text)
cargo +nightly fuzz build -O >&2
mkdir -p logs
run() {
    local t="$1"
    mkdir -p "corpus/$t" "regressions/$t"
    cp -n regressions/"$t"/* "corpus/$t/" 2>/dev/null || true
    if cargo +nightly fuzz run -O "$t" "corpus/$t" -- -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 > "logs/$t.log" 2>&1; then
        echo "$t: ok, $(grep -o 'stat::number_of_executed_units: [0-9]*' "logs/$t.log" | grep -o '[0-9]*$') executions," \
            "$(grep -o 'cov: [0-9]*' "logs/$t.log" | tail -1) edges, $(grep -o 'ft: [0-9]*' "logs/$t.log" | tail -1)" \
            "features, corpus $(ls "corpus/$t" | wc -l) files"
    else
        echo "$t: FAILED (a crash or a hang: fuzz/logs/$t.log, input in fuzz/artifacts/$t/)"
        return 1
    fi
}
# The regression set: the smallest 200 inputs of at most 4 KiB (a crash input is added by hand).
keep() {
    python3 - "$1" <<'PY'
import os, shutil, sys
t = sys.argv[1]
files = sorted((os.path.getsize(f"corpus/{t}/{n}"), n) for n in os.listdir(f"corpus/{t}"))
for size, name in [f for f in files if f[0] <= 4096][:200]:
    shutil.copy(f"corpus/{t}/{name}", f"regressions/{t}/{name}")
PY
}
status=0
for ((i = 0; i < ${#targets[@]}; i += 2)); do
    pids=()
    for t in "${targets[@]:i:2}"; do run "$t" & pids+=($!); done
    for p in "${pids[@]}"; do wait "$p" || status=1; done
done
for t in "${targets[@]}"; do keep "$t"; done
exit $status
