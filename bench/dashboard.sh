#!/usr/bin/env bash
# The dashboard's two targets, measured on this machine:
#
#   bench/dashboard.sh            # both parts (~12 min on 2 cores)
#   bench/dashboard.sh --load     # only the 10,000-run page load
#   bench/dashboard.sh --workers  # only the workers' speed with and without a dashboard
#
# 1. Load: a search of 10,000 runs (made without training by tests/dashboard.rs's synthetic
#    store, results in the shape real ones have), served by the release binary; the time to read
#    the store at start, the overview's and the search's JSON (curl), and each view in headless
#    Chromium from navigation to its table drawn (bench/dashboard_page.mjs, median of 5).
# 2. Workers: the same comparison (2 workers, 8 runs of ~8 s) trained into a fresh store, alternately
#    with no dashboard and with a dashboard polling every second and a Chromium page open on its
#    live overview (both started before the comparison, as when a user watches a store); runs per hour of each, 5 rounds interleaved after a warm-up run.
# Writes bench-results/dashboard-DATE/ (every measurement) and prints a Markdown summary.
set -euo pipefail
cd "$(dirname "$0")/.."
part="${1:-all}"
out="bench-results/dashboard-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$out"
cargo build --release --quiet
bin="$PWD/target/release/cellc"
export PLAYWRIGHT_CORE="$(tools/browser-env.sh)"

serve() { # store, poll -> sets url and pid; fails when the store cannot be read (yet)
    "$bin" dashboard --store "$1" --port 0 --poll "$2" > "$out/serve.out" 2>/dev/null &
    pid=$!
    until grep -q '^dashboard: ' "$out/serve.out" 2>/dev/null; do
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.05
    done
    url="$(sed -n 's/^dashboard: \(http:[^ ]*\)\/$/\1/p' "$out/serve.out")"
}

if [ "$part" = all ] || [ "$part" = --load ]; then
    store="$out/10k.sqlite"
    echo "making a 10,000-run store (tests/dashboard.rs synthetic search)..." >&2
    CELLC_DASHBOARD_RUNS=10000 CELLC_DASHBOARD_KEEP="$PWD/$store" \
        cargo test --quiet --test dashboard a_store_of_many_runs -- --nocapture 2>&1 | grep 'runs:' >&2
    t0=$(date +%s%N)
    serve "$store" 1 || { echo "the dashboard did not start" >&2; exit 1; }
    ready_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    curl -s -o /dev/null -w '%{time_total}\n' "$url/api/overview" > "$out/overview.curl"
    curl -s -o /dev/null -w '%{time_total} %{size_download}\n' "$url/api/experiments/search" > "$out/search.curl"
    node bench/dashboard_page.mjs "$url" 5 > "$out/page.json"
    kill "$pid"; wait "$pid" 2>/dev/null || true
    python3 - "$out" "$ready_ms" <<'PY'
import json, statistics, sys
out, ready = sys.argv[1], int(sys.argv[2])
page = json.load(open(f"{out}/page.json"))
ov = float(open(f"{out}/overview.curl").read().split()[0]) * 1000
se, size = open(f"{out}/search.curl").read().split()
print("| 10,000 runs | ms |\n|---|---|")
print(f"| start: open and read the store, listening | {ready} |")
print(f"| GET /api/overview (first) | {ov:.0f} |")
print(f"| GET /api/experiments/search (first; {int(size)/1e6:.1f} MB) | {float(se)*1000:.0f} |")
for view, ms in page.items():
    print(f"| page `{view}` in Chromium, navigation to table drawn: median (min-max of {len(ms)}) | {statistics.median(ms):.0f} ({min(ms)}-{max(ms)}) |")
PY
fi

if [ "$part" = all ] || [ "$part" = --workers ]; then
    compare=(compare gru lstm --task arith --hidden 32 --steps 4000 --eval-every 150 --seeds 4 --workers 2)
    : > "$out/workers.tsv"
    "$bin" "${compare[@]}" --store "$out/warm-up.sqlite" > /dev/null 2>&1 # page cache, CPU clocks
    for round in 1 2 3 4 5; do
        for mode in without with; do
            store="$out/w-$round-$mode.sqlite"
            if [ "$mode" = with ]; then
                # The dashboard and its page are open before the comparison starts, as for a user
                # watching a store (an empty store first: a worker with nothing to do makes it).
                "$bin" worker --store "$store" --exit-when-idle
                serve "$store" 1 || { echo "the dashboard did not start" >&2; exit 1; }
                node bench/dashboard_watch.mjs "$url" > "$out/watch.out" &
                page_pid=$!
                until grep -q '^open' "$out/watch.out"; do sleep 0.1; done
            fi
            t0=$(date +%s%N)
            "$bin" "${compare[@]}" --store "$store" > /dev/null 2>&1
            secs=$(python3 -c "print(($(date +%s%N) - $t0) / 1e9)")
            if [ "$mode" = with ]; then
                kill "$page_pid" "$pid"; wait "$page_pid" "$pid" 2>/dev/null || true
            fi
            runs=$(sqlite3 "$store" "SELECT count(*) FROM jobs WHERE state = 'done'" 2>/dev/null \
                || python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(\"SELECT count(*) FROM jobs WHERE state='done'\").fetchone()[0])" "$store")
            printf '%s\t%s\t%s\t%s\n' "$round" "$mode" "$runs" "$secs" | tee -a "$out/workers.tsv" >&2
        done
    done
    python3 - "$out/workers.tsv" <<'PY'
import statistics, sys
rows = [l.split("\t") for l in open(sys.argv[1]).read().split("\n") if l]
rate = {"without": [], "with": []}
for _, mode, runs, secs in rows:  # rounds in order, "without" first in each
    rate[mode].append(int(runs) * 3600 / float(secs))
print("\n| workers (2, one comparison of 8 runs) | runs/hour: median (min-max of 5) |\n|---|---|")
for mode, r in rate.items():
    print(f"| {mode} a dashboard open | {statistics.median(r):.0f} ({min(r):.0f}-{max(r):.0f}) |")
# Paired by round (the two runs of a round are back to back): with/without - 1, mean and 95%
# Student-t interval.
d = [w / wo - 1 for w, wo in zip(rate["with"], rate["without"])]
t95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}[len(d) - 1]
half = t95 * statistics.stdev(d) / len(d) ** 0.5
verdict = "slower, confirmed" if d and statistics.mean(d) + half < 0 else ("faster, confirmed" if statistics.mean(d) - half > 0 else "no difference measured (inconclusive)")
print(f"| with / without - 1, paired by round | {100 * statistics.mean(d):+.2f}% ± {100 * half:.2f}% (95%): {verdict} |")
PY
fi
