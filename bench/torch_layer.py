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

usage (from the repository's root, with the package built: tools/python-pkg.sh or pip install ./python):
  python bench/torch_layer.py --config small --threads 2 [--impls cellc:mut1,jit:mut1] [--out DIR]

Equal work: cellc:gru_torch computes what nn.GRU computes (PyTorch's GRU: reset gate after the
recurrent product) and cellc:lstm what nn.LSTM computes up to which gate takes tanh; cellc:gru
and cellc:mut1 are the anchors' custom gru and mut1.
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
    return CustomCellStep(cell, mode, common.init_params(cell, H, V), tokens, targets, common.LR)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True, choices=list(common.CONFIGS))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--impls", default=DEFAULT_IMPLS)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--out", default="anchor-results")
    args = ap.parse_args()

    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    cfg = common.CONFIGS[args.config]
    tokens, targets = common.make_data(cfg["B"], cfg["T"], cfg["V"])
    print(f"== torch {torch.__version__} config={args.config} {cfg} threads={torch.get_num_threads()}", flush=True)
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
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, f"torch_layer_{args.config}_t{args.threads}.json")
    with open(path, "w") as f:
        json.dump(dict(config=args.config, cfg=cfg, threads=args.threads, torch=torch.__version__,
                       machine=common.machine_info(), results=info), f, indent=1)
    print(f"wrote {path}")
    for key, d in info.items():
        if "tokens_per_s" in d:
            spread = [B * T / m for m in d["round_medians"]]
            print(f"  {key:20s} {d['tokens_per_s']/1e3:8.1f}k tokens/s (rounds {min(spread)/1e3:.1f}k-{max(spread)/1e3:.1f}k)")


if __name__ == "__main__":
    main()
