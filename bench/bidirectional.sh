#!/usr/bin/env bash
# Does reading the question both ways help? `cellc run --layers 2` with and without
# --bidirectional on the same seeds (so each pair trains on the same batches), interleaved;
# reports each seed's test accuracy, the paired difference's mean with its 95% t interval
# ("confirmed" only when it excludes zero), and the cost in training speed.
#
#   bench/bidirectional.sh                        # gru, arith, H=128, 3000 steps, 5 seeds (~7 min)
#   bench/bidirectional.sh --task memorize --seeds 8 --steps 1500 --cell lstm
#   bench/bidirectional.sh --one-steps 4650      # equal time: the one-directional runs get more steps
set -euo pipefail
cd "$(dirname "$0")/.."

cell=gru
task=arith
seeds=5
steps=3000
hidden=128
one_steps=""
while [ $# -gt 0 ]; do
    case "$1" in
        --cell) cell="$2"; shift 2 ;;
        --task) task="$2"; shift 2 ;;
        --seeds) seeds="$2"; shift 2 ;;
        --steps) steps="$2"; shift 2 ;;
        --hidden) hidden="$2"; shift 2 ;;
        --one-steps) one_steps="$2"; shift 2 ;;
        -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "bidirectional.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
    esac
done
cargo build --release --quiet
out=$(mktemp -d)
for s in $(seq 1 "$seeds"); do
    for mode in one bi; do
        flag=""
        n="$steps"
        [ "$mode" = bi ] && flag="--bidirectional"
        [ "$mode" = one ] && n="${one_steps:-$steps}"
        ./target/release/cellc run "$cell" --task "$task" --layers 2 --hidden "$hidden" --steps "$n" \
            --seed "$s" --json $flag 2>/dev/null | tail -1 > "$out/$mode-$s.json"
    done
done
python3 - "$out" "$seeds" "$cell" "$task" "$hidden" "$steps" "${one_steps:-$steps}" <<'PY'
import json, statistics, sys
out, n, cell, task, hidden, steps, one_steps = sys.argv[1], int(sys.argv[2]), *sys.argv[3:]
# Two-sided 95% quantiles of Student's t, by degrees of freedom.
T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131]
runs = {m: [json.load(open(f"{out}/{m}-{s}.json")) for s in range(1, n + 1)] for m in ("one", "bi")}
acc = {m: [r["test"] for r in runs[m]] for m in runs}
speed = {m: [r["tokens_per_s"] for r in runs[m]] for m in runs}
budget = f"{steps} steps" if one_steps == steps else f"{one_steps} steps one direction, {steps} bidirectional"
print(f"{cell} on {task}, 2 layers, H={hidden}, {budget}, seeds 1..{n} (test {runs['one'][0]['metric']}):")
print("| seed | one direction | lower layer bidirectional | difference |")
print("|---:|---:|---:|---:|")
diffs = [b - a for a, b in zip(acc["one"], acc["bi"])]
for s, (a, b, d) in enumerate(zip(acc["one"], acc["bi"], diffs), 1):
    print(f"| {s} | {a:.4f} | {b:.4f} | {d:+.4f} |")
mean = statistics.mean(diffs)
half = T975[n - 2] * statistics.stdev(diffs) / n ** 0.5 if 2 <= n <= len(T975) + 1 else float("nan")
verdict = "confirmed" if mean - half > 0 or mean + half < 0 else "inconclusive"
print(f"paired difference (bidirectional - one direction): {mean:+.4f}, 95% interval "
      f"[{mean - half:+.4f}, {mean + half:+.4f}]: {verdict}")
ratio = statistics.median(speed["bi"]) / statistics.median(speed["one"])
secs = {m: statistics.median(r["seconds"] for r in runs[m]) for m in runs}
print(f"training time per run: {secs['one']:.0f} s vs {secs['bi']:.0f} s (medians)")
print(f"training speed: {statistics.median(speed['one']):,.0f} vs {statistics.median(speed['bi']):,.0f} "
      f"tokens/s (medians; bidirectional {ratio:.2f}x)")
PY
rm -rf "$out"
