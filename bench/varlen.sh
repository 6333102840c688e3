#!/usr/bin/env bash
# Variable-length batches against padded ones on arith: `cellc run` by length (the default: each
# example runs only its own steps) and with --padded (every example runs every step of its
# batch, as before), interleaved, same seed, so both train on the same batches and must reach
# the same test result bit for bit. Reports the training speed per real (answer) token.
#
#   bench/varlen.sh                 # gru, H=256, arith up to 3 and 8 digits, 5 repeats (~3 min)
#   bench/varlen.sh --cell lstm --repeats 3 --steps 300
set -euo pipefail
cd "$(dirname "$0")/.."

cell=gru
repeats=5
steps=400
hidden=256
while [ $# -gt 0 ]; do
    case "$1" in
        --cell) cell="$2"; shift 2 ;;
        --repeats) repeats="$2"; shift 2 ;;
        --steps) steps="$2"; shift 2 ;;
        --hidden) hidden="$2"; shift 2 ;;
        -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "varlen.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
    esac
done
cargo build --release --quiet
out=$(mktemp -d)
for digits in 3 8; do
    for r in $(seq 1 "$repeats"); do
        for mode in bylength padded; do
            flag=""
            [ "$mode" = padded ] && flag="--padded"
            # One evaluation, at the end: the time is the training steps'.
            ./target/release/cellc run "$cell" --task arith --max-digits "$digits" --steps "$steps" \
                --hidden "$hidden" --eval-every 100000 --seed 3 --json $flag 2>/dev/null | tail -1 \
                > "$out/$digits-$mode-$r.json"
        done
    done
done
python3 - "$out" "$repeats" "$cell" "$hidden" "$steps" <<'EOF'
import json, statistics, sys
out, repeats, cell, hidden, steps = sys.argv[1], int(sys.argv[2]), *sys.argv[3:]
print(f"{cell}, H={hidden}, {steps} steps of arith, {repeats} interleaved repeats (median, min-max):")
print("| digits | by length (answer tokens/s) | padded (answer tokens/s) | by length / padded | same test result |")
print("|---|---:|---:|---:|---|")
for digits in (3, 8):
    runs = {m: [json.load(open(f"{out}/{digits}-{m}-{r}.json")) for r in range(1, repeats + 1)]
            for m in ("bylength", "padded")}
    rate = {m: [d["tokens_per_s"] for d in runs[m]] for m in runs}
    same = all(a["test"] == b["test"] for a, b in zip(runs["bylength"], runs["padded"]))
    ratios = [a / b for a, b in zip(rate["bylength"], rate["padded"])]
    med = {m: statistics.median(v) for m, v in rate.items()}
    print(f"| {digits} | {med['bylength']:,.0f} ({min(rate['bylength']):,.0f}-{max(rate['bylength']):,.0f}) "
          f"| {med['padded']:,.0f} ({min(rate['padded']):,.0f}-{max(rate['padded']):,.0f}) "
          f"| {statistics.median(ratios):.3f}x ({min(ratios):.3f}-{max(ratios):.3f}) | {'yes' if same else 'NO'} |")
EOF
rm -rf "$out"
