#!/usr/bin/env bash
# Layer-normalised LSTM training-step speed: cellc's std cell `lstm_ln` against PyTorch's best
# LN-LSTM (bench/ln_lstm_torch.py: TorchScript and torch.compile, ATen's fused layer_norm, input
# side hoisted out of the loop), same configs as ../shared/anchors, same machine, one run.
#
#   bench/ln_lstm.sh                      # small, medium, ptb; 3 repeats (~25 min)
#   bench/ln_lstm.sh --configs small --repeats 2
#
# Each repeat runs, per config: `cellc bench lstm_ln` (the native trainer) with --first-layer
# full (the peers' work: equal work) and auto (what `cellc run` does: the embedded first layer,
# an optimisation the peers do not make), then bench/torch_layer.py with cellc's PyTorch layer
# (cellc:lstm_ln), TorchScript (jit:lstm_ln) and torch.compile (compile_full:lstm_ln), which
# first checks that cellc's cell and the PyTorch one compute the same outputs. The table gives
# medians over the repeats with the spread (min-max of the repeats' medians) and cellc's ratios
# of medians over the best PyTorch implementation. Writes anchor-results/ln-lstm-DATE/.
set -euo pipefail
cd "$(dirname "$0")/.."

configs="small,medium,ptb"
repeats=3
threads=2
while [ $# -gt 0 ]; do
    case "$1" in
        --configs) configs="$2"; shift 2 ;;
        --repeats) repeats="$2"; shift 2 ;;
        -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "ln_lstm.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
    esac
done
anchors="${ANCHORS:-../shared/anchors}"
[ -f "$anchors/common.py" ] || { echo "ln_lstm.sh: no anchors in $anchors (set ANCHORS=DIR)" >&2; exit 1; }

python=$(tools/python-env.sh)
venv=$(dirname "$(dirname "$python")")
cargo build --release --quiet
VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH" "$venv/bin/maturin" develop --release --quiet -m python/Cargo.toml
out="anchor-results/ln-lstm-$(date -u +%Y%m%d-%H%M%S)"
mkdir -p "$out"
lscpu > "$out/lscpu.txt" 2>&1 || true

for rep in $(seq 1 "$repeats"); do
    for cfg in ${configs//,/ }; do
        read -r B H T V < <("$python" -c "import sys; sys.path.insert(0, '$anchors'); import common
c = common.CONFIGS['$cfg']; print(c['B'], c['H'], c['T'], c['V'])")
        echo "== repeat $rep/$repeats, $cfg: B=$B H=$H T=$T V=$V, $threads threads"
        for mode in full auto; do
            target/release/cellc bench lstm_ln --batch "$B" --hidden "$H" --seq "$T" --vocab "$V" \
                --threads "$threads" --steps 20 --first-layer "$mode" --json \
                | python3 -c "import json,sys; d=json.load(sys.stdin); d['repeat']=$rep; d['mode']='$mode'; d['config']='$cfg'; print(json.dumps(d))" \
                | tee -a "$out/cellc.jsonl"
        done
        "$python" bench/torch_layer.py --configs "$cfg" --impls cellc:lstm_ln,jit:lstm_ln,compile_full:lstm_ln \
            --threads "$threads" --rounds 1 --steps 10 --out "$out/torch_r$rep" 2>&1 \
            | tee "$out/torch_${cfg}_r$rep.log" | grep -E "equal work|wrote"
    done
done

python3 - "$out" "$configs" <<'EOF' | tee "$out/table.md"
import glob, json, os, statistics, sys
out, configs = sys.argv[1], sys.argv[2].split(",")
def summary(v):
    return (statistics.median(v), min(v), max(v)) if v else None
cellc = {}
for line in open(os.path.join(out, "cellc.jsonl")):
    d = json.loads(line)
    cellc.setdefault((d["config"], f"cellc bench, first layer {d['mode']}"), []).append(d["tokens_per_s"])
torch = {}
for path in glob.glob(os.path.join(out, "torch_r*", "*.json")):
    d = json.load(open(path))
    for key, r in d["results"].items():
        if r.get("tokens_per_s"):
            torch.setdefault((d["config"], key), []).append(r["tokens_per_s"])
print("LN-LSTM training step (embedding, layer, linear, cross-entropy, SGD), tokens/s: median over repeats (min-max).\n")
print("| config | implementation | tokens/s | spread |\n|---|---|---:|---|")
rows = {**cellc, **torch}
for cfg in configs:
    for (c, key), v in sorted(rows.items()):
        if c == cfg:
            m, lo, hi = summary(v)
            print(f"| {cfg} | {key} | {m/1e3:.1f}k | {lo/1e3:.1f}k-{hi/1e3:.1f}k |")
print("\n| config | cellc | best PyTorch (TorchScript, torch.compile) | ratio of medians |\n|---|---|---|---:|")
for cfg in configs:
    peers = {k: summary(v)[0] for (c, k), v in torch.items() if c == cfg and not k.startswith("cellc")}
    if not peers:
        continue
    best = max(peers, key=peers.get)
    for (c, key), v in sorted(rows.items()):
        if c == cfg and key.startswith("cellc"):
            print(f"| {cfg} | {key} | {best} {peers[best]/1e3:.1f}k | {summary(v)[0]/peers[best]:.2f}x |")
EOF
echo "wrote $out/table.md"
