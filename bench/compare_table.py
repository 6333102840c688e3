"""Print the Markdown table of a bench/compare.sh run: tokens/s of cellc (first layer full: the
peers' work; and auto: what `cellc run` does) and of each peer, each the median over the run's
repeats with the spread of the repeats' medians, and cellc's ratios over the best peer.

usage: python3 bench/compare_table.py anchor-results/compare-DATE"""
import glob
import json
import os
import statistics
import sys

CONFIGS = ["small", "medium", "ptb"]
CELLS = ["gru", "lstm", "mut1"]
# Peer columns: (heading, implementation key per cell).
PEERS = [
    ("PyTorch nn.GRU / nn.LSTM / TorchScript", {"gru": "fused:nn_gru", "lstm": "fused:nn_lstm", "mut1": "jit:mut1"}),
    ("torch.compile", {c: f"compile_full:{c}" for c in CELLS}),
    ("JAX scan", {c: f"scan:{c}" for c in CELLS}),
    ("JAX scan_hoist", {c: f"scan_hoist:{c}" for c in CELLS}),
]


def summary(values):
    """(median, min, max) of the repeats' values, or None."""
    values = [v for v in values if v]
    if not values:
        return None
    return statistics.median(values), min(values), max(values)


def peer_results(out, cfg):
    """{implementation: [tokens/s of each repeat]} from the peers' JSON files."""
    found = {}
    paths = glob.glob(os.path.join(out, f"torch_{cfg}_t*.json")) + glob.glob(os.path.join(out, f"jax_{cfg}*.json"))
    for path in sorted(paths):
        with open(path) as f:
            for key, res in json.load(f)["results"].items():
                if res.get("tokens_per_s"):
                    found.setdefault(key, []).append(res["tokens_per_s"])
    return {k: summary(v) for k, v in found.items()}


def cellc_results(out, cfg):
    """{(cell, mode): (tokens/s summary, median GFLOP/s executed, median GEMM rate)}."""
    path = os.path.join(out, f"cellc_{cfg}.jsonl")
    if not os.path.exists(path):
        return {}
    runs = {}
    with open(path) as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                runs.setdefault((r["cell"], r.get("mode", "auto")), []).append(r)
    return {
        key: (
            summary([r["tokens_per_s"] for r in rs]),
            statistics.median(r["gflops"] for r in rs),
            statistics.median(r["gemm_gflops"] for r in rs),
            rs[0].get("first_layer", "?"),
        )
        for key, rs in runs.items()
    }


def k(s):
    if not s:
        return "–"
    med, lo, hi = s
    return f"{med / 1000:.1f}k ({lo / 1000:.1f}–{hi / 1000:.1f})"


def main():
    out = sys.argv[1]
    try:
        repeats = open(os.path.join(out, "repeats")).read().strip()
    except OSError:
        repeats = "?"
    print(f"tokens/s of 2-thread training steps: median over {repeats} interleaved repeats (min–max of the "
          f"repeats' medians); run {os.path.basename(out)}\n")
    head = ["config", "cell", "cellc full (equal work)", "cellc auto"] + [p[0] for p in PEERS]
    head += ["full / best peer", "auto / best peer", "cellc GFLOP/s executed, full (GEMM rate)"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for cfg in CONFIGS:
        ours = cellc_results(out, cfg)
        if not ours:
            continue
        peers = peer_results(out, cfg)
        for cell in CELLS:
            full = ours.get((cell, "full"))
            auto = ours.get((cell, "auto"))
            vals = [peers.get(keys[cell]) for _, keys in PEERS]
            best = max((v[0] for v in vals if v), default=None)
            cols = [cfg, cell, k(full and full[0]), k(auto and auto[0]) + (f" [{auto[3]}]" if auto else "")]
            cols += [f"**{k(v)}**" if v and v[0] == best else k(v) for v in vals]
            for mine in (full, auto):
                cols.append(f"{mine[0][0] / best:.2f}x" if mine and mine[0] and best else "–")
            cols.append(f"{full[1]:.0f} ({full[2]:.0f})" if full else "–")
            print("| " + " | ".join(cols) + " |")


if __name__ == "__main__":
    main()
