#!/usr/bin/env bash
# Side-by-side training-step speed: cellc against the PyTorch and JAX programs of
# ../shared/anchors, same configs, same machine, one run. Every program runs --repeats times,
# interleaved (cellc, torch, jax, cellc, torch, jax, ...), so machine noise hits them alike; the
# table gives each one's median over the repeats with its spread (min-max of the repeats'
# medians), and cellc's ratios are of medians from this run.
#
#   bench/compare.sh                        # all configs, all peers, 3 repeats (~1.5 h: torch.compile compiles slowly)
#   bench/compare.sh --configs ptb          # one config
#   bench/compare.sh --quick                # no torch.compile or plain-scan peers, fewer steps, 2 repeats (~10 min)
#   bench/compare.sh --repeats 5
#
# cellc runs twice per repeat: --first-layer full (the peers' work: the equal-work ratio) and
# auto (what `cellc run` does; the embedded first layer when 2V <= B*T). Installs the peers with
# tools/python-env.sh on first use. Writes every measurement under
# anchor-results/compare-DATE/ and prints the Markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."

configs="small,medium,ptb"
threads=2
quick=0
repeats=3
anchors="${ANCHORS:-../shared/anchors}"
while [ $# -gt 0 ]; do
    case "$1" in
        --configs) configs="$2"; shift 2 ;;
        --threads) threads="$2"; shift 2 ;;
        --repeats) repeats="$2"; shift 2 ;;
        --quick) quick=1; repeats=2; shift ;;
        -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "compare.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
    esac
done
[ -f "$anchors/bench_torch.py" ] || { echo "compare.sh: no peer programs in $anchors (set ANCHORS=DIR)" >&2; exit 1; }

# The peers' Python (PyTorch, JAX; pinned in tests/python/requirements.txt), installed once.
python=$(tools/python-env.sh)
cargo build --release --quiet
cellc=target/release/cellc

out="anchor-results/compare-$(date -u +%Y%m%d-%H%M%S)"
mkdir -p "$out"
steps=20; torch_steps=20
torch_cells="fused:nn_gru,fused:nn_lstm,jit:mut1,compile_full:gru,compile_full:lstm,compile_full:mut1"
jax_cells="scan:gru,scan:lstm,scan:mut1,scan_hoist:gru,scan_hoist:lstm,scan_hoist:mut1"
if [ "$quick" = 1 ]; then
    steps=10; torch_steps=8
    torch_cells="fused:nn_gru,fused:nn_lstm,jit:mut1"
    jax_cells="scan_hoist:gru,scan_hoist:lstm,scan_hoist:mut1"
fi
ANCHORS_RESULTS="$out" "$python" "$anchors/env_info.py" > "$out/env.log" 2>&1 || true
lscpu > "$out/lscpu.txt" 2>&1 || true
echo "$repeats" > "$out/repeats"

cellc_round() { # config B H T V repeat
    for mode in full auto; do
        for cell in gru lstm mut1; do
            "$cellc" bench "$cell" --batch "$2" --hidden "$3" --seq "$4" --vocab "$5" --threads "$threads" \
                --steps "$steps" --first-layer "$mode" --json \
                | python3 -c "import json,sys; d=json.load(sys.stdin); d['repeat']=$6; d['mode']='$mode'; print(json.dumps(d))" \
                | tee -a "$out/cellc_$1.jsonl"
        done
    done
}

for rep in $(seq 1 "$repeats"); do
    for cfg in ${configs//,/ }; do
        read -r B H T V < <("$python" -c "import sys; sys.path.insert(0, '$anchors'); import common
c = common.CONFIGS['$cfg']; print(c['B'], c['H'], c['T'], c['V'])")
        echo "== repeat $rep/$repeats, $cfg: B=$B H=$H T=$T V=$V, $threads threads"
        cellc_round "$cfg" "$B" "$H" "$T" "$V" "$rep"
        ANCHORS_RESULTS="$out" ANCHORS_RUN_TAG="_r$rep" "$python" "$anchors/bench_torch.py" --config "$cfg" \
            --threads "$threads" --impls "$torch_cells" --steps "$torch_steps" 2>&1 | tee "$out/torch_${cfg}_r$rep.log"
        ANCHORS_RESULTS="$out" ANCHORS_RUN_TAG="_r$rep" "$python" "$anchors/bench_jax.py" --config "$cfg" \
            --impls "$jax_cells" --steps "$torch_steps" 2>&1 | tee "$out/jax_${cfg}_r$rep.log"
    done
done
python3 bench/compare_table.py "$out" | tee "$out/table.md"
