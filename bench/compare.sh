#!/usr/bin/env bash
# Side-by-side training-step speed: cellc against the PyTorch and JAX programs of
# ../shared/anchors, same configs, same machine, one run, rounds interleaved.
#
#   bench/compare.sh                       # all configs, all peers (~30 min: torch.compile is slow to compile)
#   bench/compare.sh --configs small       # one config
#   bench/compare.sh --quick               # no torch.compile peers, fewer steps (~5 min)
#
# Installs the peers into .venv-anchors on first use (python3 -m venv + pip). Writes every
# measurement under anchor-results/compare-DATE/ and prints a Markdown table of tokens/s with
# cellc's ratio over each peer and over the best one.
set -euo pipefail
cd "$(dirname "$0")/.."

configs="small,medium,ptb"
threads=2
quick=0
anchors="${ANCHORS:-../shared/anchors}"
while [ $# -gt 0 ]; do
    case "$1" in
        --configs) configs="$2"; shift 2 ;;
        --threads) threads="$2"; shift 2 ;;
        --quick) quick=1; shift ;;
        -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "compare.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
    esac
done
[ -f "$anchors/bench_torch.py" ] || { echo "compare.sh: no peer programs in $anchors (set ANCHORS=DIR)" >&2; exit 1; }

venv=.venv-anchors
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import torch, jax" 2>/dev/null; then
    echo "== installing the peers into $venv (once; torch's wheel is large)"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet -r "$anchors/requirements.txt"
fi
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
ANCHORS_RESULTS="$out" "$venv/bin/python" "$anchors/env_info.py" > "$out/env.log" 2>&1 || true
lscpu > "$out/lscpu.txt" 2>&1 || true

cellc_round() { # config B H T V round
    for cell in gru lstm mut1; do
        "$cellc" bench "$cell" --batch "$2" --hidden "$3" --seq "$4" --vocab "$5" --threads "$threads" \
            --steps "$steps" --json | tee -a "$out/cellc_$1.jsonl"
        echo
    done
}

for cfg in ${configs//,/ }; do
    read -r B H T V < <("$venv/bin/python" -c "import sys; sys.path.insert(0, '$anchors'); import common
c = common.CONFIGS['$cfg']; print(c['B'], c['H'], c['T'], c['V'])")
    echo "== $cfg: B=$B H=$H T=$T V=$V, $threads threads"
    cellc_round "$cfg" "$B" "$H" "$T" "$V" 1
    ANCHORS_RESULTS="$out" "$venv/bin/python" "$anchors/bench_torch.py" --config "$cfg" --threads "$threads" \
        --impls "$torch_cells" --steps "$torch_steps" 2>&1 | tee "$out/torch_$cfg.log"
    ANCHORS_RESULTS="$out" "$venv/bin/python" "$anchors/bench_jax.py" --config "$cfg" \
        --impls "$jax_cells" --steps "$torch_steps" 2>&1 | tee "$out/jax_$cfg.log"
    cellc_round "$cfg" "$B" "$H" "$T" "$V" 2
done
python3 bench/compare_table.py "$out" | tee "$out/table.md"
