"""Training-loop speed of cellc's PyTorch layer against PyTorch's own ways to run a cell.

One full training step (embedding lookup, T recurrent steps, linear output layer and softmax
cross-entropy at every step, backpropagation through time, SGD update), as in
../shared/anchors/bench_torch.py, whose programs and timing this reuses: the same configs,
data, learning rate, SGD update and round-robin timing that discards blocks run while other
processes took the cores. Implementations:

  cellc:CELL         embedding -> cellc.torch.CellLayer(CELL) -> linear (this package)
  fused:nn_gru|lstm  PyTorch's library nn.GRU / nn.LSTM (ATen/oneDNN kernels)
  jit:CELL           the anchors' custom cell, TorchScript
  compile_full:CELL  the anchors' custom cell, whole loss under torch.compile
  jit:lstm_ln, compile_full:lstm_ln, eager:lstm_ln
                     the layer-normalised LSTM of bench/ln_lstm_torch.py (ATen's layer_norm)

usage (from the repository's root, with the package built in release mode:
`pip install ./python`, or `maturin develop --release -m python/Cargo.toml` in the venv):
  python bench/torch_layer.py                        # small, medium and ptb; every implementation
  python bench/torch_layer.py --configs small --impls cellc:mut1,jit:mut1 --rounds 2
  python bench/torch_layer.py --own-threads          # cellc on its own threads (see below)
  python bench/torch_layer.py --impls cellc:lstm_ln,jit:lstm_ln,compile_full:lstm_ln

Writes anchor-results/torch-layer-DATE/CONFIG.json (every timing) and table.md (medians, the
spread of the rounds' medians, and cellc's ratios).

Threads: cellc's kernels run on PyTorch's OpenMP threads (`cellc.torch.share_threads`, the
default); `--own-threads` runs them on cellc's own pool, which then shares the cores with
PyTorch's spinning OpenMP threads.

Equal work: cellc:gru_torch computes what nn.GRU computes (PyTorch's GRU: reset gate after the
recurrent product) and cellc:lstm what nn.LSTM computes up to which gate takes tanh; cellc:gru
and cellc:mut1 are the anchors' custom gru and mut1; cellc:lstm_ln computes what
bench/ln_lstm_torch.py computes (checked at start: same weights, same outputs).
"""

import argparse
import json
import os
import sys
import time
import traceback
import warnings

import numpy as np
import torch
import torch.nn.functional as F

ANCHORS = os.environ.get("ANCHORS", os.path.join(os.path.dirname(__file__), "..", "..", "shared", "anchors"))
sys.path.insert(0, ANCHORS)
import common  # noqa: E402
from cells_torch import CustomCellStep, FusedStep, sgd_  # noqa: E402

import cellc.torch as ct  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
import ln_lstm_torch  # noqa: E402

DEFAULT_IMPLS = ("cellc:mut1,cellc:gru,cellc:lstm,cellc:gru_torch,fused:nn_gru,fused:nn_lstm,"
                 "jit:mut1,jit:gru,jit:lstm,compile_full:mut1,compile_full:gru,compile_full:lstm")


class CellLayerStep:
    """The anchors' training step with cellc's layer as the recurrence."""

    def __init__(self, cell, B, H, T, V, tokens, targets, lr):
        torch.manual_seed(0)
        self.emb = torch.nn.Embedding(V, H)
        self.rnn = ct.CellLayer(cell, H, H)
        self.out = torch.nn.Linear(H, V)
        self.params = list(self.emb.parameters()) + list(self.rnn.parameters()) + list(self.out.parameters())
        self.tokens, self.targets = torch.tensor(tokens), torch.tensor(targets)
        self.T, self.B, self.H, self.lr = T, B, H, lr

    def __call__(self):
        hs, _ = self.rnn(self.emb(self.tokens))
        loss = F.cross_entropy(self.out(hs.reshape(self.T * self.B, self.H)), self.targets.reshape(-1))
        loss.backward()
        sgd_(self.params, self.lr)
        return loss


def build(mode, cell, cfg, tokens, targets):
    B, H, T, V = cfg["B"], cfg["H"], cfg["T"], cfg["V"]
    if mode == "cellc":
        return CellLayerStep(cell, B, H, T, V, tokens, targets, common.LR)
    if mode == "fused":
        return FusedStep(cell, B, H, T, V, tokens, targets, common.LR)
    if cell == "lstm_ln":
        return ln_lstm_torch.LnLstmStep(mode, H, V, tokens, targets, common.LR)
    return CustomCellStep(cell, mode, common.init_params(cell, H, V), tokens, targets, common.LR)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", default="small,medium,ptb")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--impls", default=DEFAULT_IMPLS)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--out", default=None)
    ap.add_argument("--own-threads", action="store_true")
    args = ap.parse_args()
    shared = ct.share_threads(not args.own_threads)
    if "lstm_ln" in args.impls:
        check_ln_lstm_equal()
    out = args.out or time.strftime("anchor-results/torch-layer-%Y%m%d-%H%M%S", time.gmtime())
    os.makedirs(out, exist_ok=True)
    rows = []
    for config in args.configs.split(","):
        rows += run_config(args, config, shared, out)
    table = render_table(rows, args, shared)
    with open(os.path.join(out, "table.md"), "w") as f:
        f.write(table)
    print(table)
    print(f"wrote {out}/table.md")


def run_config(args, config, shared, out):

    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    # Every config and cell recompiles the anchors' lm_loss; past dynamo's default limit (8) it
    # would silently run eagerly.
    torch._dynamo.config.recompile_limit = 64
    cfg = common.CONFIGS[config]
    tokens, targets = common.make_data(cfg["B"], cfg["T"], cfg["V"])
    print(f"== torch {torch.__version__} config={config} {cfg} threads={torch.get_num_threads()} "
          f"cellc on PyTorch's threads: {shared}", flush=True)
    runners, info = {}, {}
    for key in args.impls.split(","):
        mode, cell = key.split(":")
        try:
            t0 = time.perf_counter()
            r = build(mode, cell, cfg, tokens, targets)
            l0 = float(r().detach())  # first step: compiles (TorchScript, torch.compile, cellc's JIT)
            first = time.perf_counter() - t0
            for _ in range(args.warmup):
                l1 = float(r().detach())
            runners[key] = r
            info[key] = dict(mode=mode, cell=cell, first_step_s=first, loss_first=l0, loss_after_warmup=l1)
            print(f"  {key:20s} build+first step {first:6.2f}s loss {l0:.3f}->{l1:.3f}", flush=True)
        except Exception as e:
            info[key] = dict(mode=mode, cell=cell, error=f"{type(e).__name__}: {e}"[:2000])
            print(f"  {key:20s} FAILED: {type(e).__name__}: {str(e)[:300]}", flush=True)
            traceback.print_exc()
    common.timed_rounds(runners, info, args.steps, args.rounds)
    B, T = cfg["B"], cfg["T"]
    for d in info.values():
        if "rounds" in d:
            d["round_medians"] = [r["median"] for r in d["rounds"]]
            d["median_s"] = float(np.median([t for r in d["rounds"] for t in r["times"]]))
            d["tokens_per_s"] = B * T / d["median_s"]
    with open(os.path.join(out, f"{config}.json"), "w") as f:
        json.dump(dict(config=config, cfg=cfg, threads=args.threads, torch=torch.__version__,
                       cellc_on_torch_threads=shared, machine=common.machine_info(), results=info), f, indent=1)
    rows = []
    for key, d in info.items():
        if "tokens_per_s" in d:
            spread = [B * T / m for m in d["round_medians"]]
            rows.append(dict(config=config, key=key, tps=d["tokens_per_s"], lo=min(spread), hi=max(spread)))
        else:
            rows.append(dict(config=config, key=key, error=d.get("error", "no timing")))
    return rows


# What each cellc cell is compared with: (label, peers whose best it is measured against).
TARGETS = {
    "cellc:mut1": ("best of TorchScript, torch.compile MUT1", ["jit:mut1", "compile_full:mut1"]),
    "cellc:gru": ("best of TorchScript, torch.compile GRU", ["jit:gru", "compile_full:gru"]),
    "cellc:lstm": ("nn.LSTM", ["fused:nn_lstm"]),
    "cellc:gru_torch": ("nn.GRU", ["fused:nn_gru"]),
    "cellc:lstm_ln": ("best of TorchScript, torch.compile LN-LSTM", ["jit:lstm_ln", "compile_full:lstm_ln"]),
}


def check_ln_lstm_equal(H=16, B=3, T=5):
    """cellc's lstm_ln and the PyTorch LN-LSTM give the same outputs from the same weights."""
    torch.manual_seed(0)
    w = {k: torch.tensor(v) for k, v in ln_lstm_torch.init_params(H, 7).items()}
    w["b"] = torch.randn(4 * H) * 0.1
    w["gx"], w["gh"], w["bc"] = 1 + torch.randn(4 * H) * 0.1, 1 + torch.randn(4 * H) * 0.1, torch.randn(H) * 0.1
    layer = ct.CellLayer("lstm_ln", H, H)
    p = layer.cells[0]
    with torch.no_grad():
        for k, gate in enumerate("ijfo"):
            cols = slice(k * H, (k + 1) * H)
            getattr(p, f"W_x{gate}").copy_(w["Wx"][:, cols].T)
            getattr(p, f"W_h{gate}").copy_(w["Wh"][:, cols].T)
            getattr(p, f"g_x{gate}").copy_(w["gx"][cols])
            getattr(p, f"g_h{gate}").copy_(w["gh"][cols])
            getattr(p, f"b_{gate}").copy_(w["b"][cols])
        p.g_c.copy_(w["gc"])
        p.b_c.copy_(w["bc"])
        xs = torch.randn(T, B, H)
        ours, _ = layer(xs)
        theirs = ln_lstm_torch.ln_lstm_loop(xs, torch.zeros(B, H), *[w[k] for k in ln_lstm_torch.CELL_KEYS])
    diff = float((ours - theirs).abs().max())
    if not diff < 1e-4:
        raise SystemExit(f"cellc's lstm_ln and the PyTorch LN-LSTM differ by {diff:.2e}: not equal work")
    print(f"equal work: cellc lstm_ln and the PyTorch LN-LSTM agree to {diff:.1e} (H={H}, B={B}, T={T})")


def render_table(rows, args, shared):
    lines = [f"Training step (embedding, recurrent layer, linear, cross-entropy, SGD), {args.threads} threads, "
             f"median of {args.rounds} rounds x {args.steps} steps; spread = min-max of the rounds' medians. "
             f"cellc on PyTorch's threads: {shared}.", "",
             "| config | implementation | tokens/s | spread |", "|---|---|---:|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['config']} | {r['key']} | failed: {r['error'][:80]} | |")
        else:
            lines.append(f"| {r['config']} | {r['key']} | {r['tps']/1e3:.1f}k | {r['lo']/1e3:.1f}k-{r['hi']/1e3:.1f}k |")
    lines += ["", "| config | cellc | against | ratio of medians |", "|---|---|---|---:|"]
    by = {(r["config"], r["key"]): r for r in rows if "tps" in r}
    for config in dict.fromkeys(r["config"] for r in rows):
        for key, (label, peers) in TARGETS.items():
            ours = by.get((config, key))
            theirs = [by[(config, p)]["tps"] for p in peers if (config, p) in by]
            if ours and theirs:
                lines.append(f"| {config} | {key} | {label} | {ours['tps'] / max(theirs):.2f}x |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
