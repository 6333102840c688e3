"""Print the Markdown table of a bench/compare.sh run: tokens/s of cellc and of each peer, and
cellc's ratio over the best peer. usage: python3 bench/compare_table.py anchor-results/compare-DATE"""
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


def peer_results(out, cfg):
    found = {}
    for path in glob.glob(os.path.join(out, f"torch_{cfg}_t*.json")) + glob.glob(os.path.join(out, f"jax_{cfg}*.json")):
        with open(path) as f:
            for key, res in json.load(f)["results"].items():
                if res.get("tokens_per_s"):
                    found[key] = res["tokens_per_s"]
    return found


def cellc_results(out, cfg):
    runs = {}
    path = os.path.join(out, f"cellc_{cfg}.jsonl")
    if not os.path.exists(path):
        return {}, {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                r = json.loads(line)
                runs.setdefault(r["cell"], []).append(r)
    tok = {c: statistics.median(r["tokens_per_s"] for r in rs) for c, rs in runs.items()}
    extra = {c: (statistics.median(r["gflops"] for r in rs), statistics.median(r["gemm_gflops"] for r in rs)) for c, rs in runs.items()}
    return tok, extra


def k(x):
    return f"{x / 1000:.1f}k" if x else "–"


def main():
    out = sys.argv[1]
    print(f"tokens/s, 2-thread training steps, medians; run {os.path.basename(out)}\n")
    head = ["config", "cell", "cellc"] + [p[0] for p in PEERS] + ["cellc / best peer", "cellc GFLOP/s (GEMM rate)"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for cfg in CONFIGS:
        tok, extra = cellc_results(out, cfg)
        if not tok:
            continue
        peers = peer_results(out, cfg)
        for cell in CELLS:
            ours = tok.get(cell)
            vals = [peers.get(keys[cell]) for _, keys in PEERS]
            best = max((v for v in vals if v), default=None)
            cols = [cfg, cell, k(ours)]
            cols += [f"**{k(v)}**" if v and v == best else k(v) for v in vals]
            cols.append(f"{ours / best:.2f}x" if ours and best else "–")
            g, rate = extra.get(cell, (0, 0))
            cols.append(f"{g:.0f} ({rate:.0f})")
            print("| " + " | ".join(cols) + " |")


if __name__ == "__main__":
    main()
