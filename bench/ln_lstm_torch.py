"""PyTorch's best ways to train a layer-normalised LSTM (Ba, Kiros & Hinton 2016), the peers of
cellc's std cell `lstm_ln` in bench/torch_layer.py.

The cell is the one of std/lstm_ln.cell, written the way PyTorch's own benchmark LayerNorm-LSTM
(pytorch/benchmarks/fastrnns/custom_lstms.py) writes it: one GEMM per operand for all four gates,
ATen's fused `layer_norm` over the 4H gate pre-activations (input and recurrent apart) and over
the new cell state (eps 1e-5), gates in the order of `lstm` (i candidate, j input gate, f, o). Unlike that
benchmark, the input side (x @ Wx and its layer norm) runs for all steps at once before the loop,
as cellc does: the strongest PyTorch baseline, not a handicapped one.

  jit:lstm_ln           the loop under TorchScript
  compile_full:lstm_ln  the whole loss under torch.compile
  eager:lstm_ln         plain PyTorch (for reference)
"""

from typing import List

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor



def ln_lstm_loop(xs: Tensor, h: Tensor, Wx: Tensor, Wh: Tensor, gx: Tensor, gh: Tensor, b: Tensor,
                 gc: Tensor, bc: Tensor) -> Tensor:
    T, B, D = xs.shape
    H = h.shape[1]
    # Input side for every step at once: LN(x Wx) over the 4H gate numbers, with the bias.
    xg = F.layer_norm(torch.mm(xs.reshape(T * B, D), Wx), [4 * H], gx, b, 1e-5).reshape(T, B, 4 * H)
    c = torch.zeros_like(h)
    hs: List[Tensor] = []
    for t in range(T):
        g = xg[t] + F.layer_norm(torch.mm(h, Wh), [4 * H], gh, None, 1e-5)
        i, j, f, o = g.chunk(4, 1)
        c = c * torch.sigmoid(f) + torch.tanh(i) * torch.sigmoid(j)
        h = torch.tanh(F.layer_norm(c, [H], gc, bc, 1e-5)) * torch.sigmoid(o)
        hs.append(h)
    return torch.stack(hs)


def init_params(H, V, seed=0):
    """Weights as the anchors draw them (uniform +-1/sqrt(H)), gains 1, biases 0."""
    rng = np.random.default_rng(seed)
    s = 1.0 / np.sqrt(H)

    def u(*shape):
        return rng.uniform(-s, s, size=shape).astype(np.float32)

    one, zero = np.ones(4 * H, np.float32), np.zeros(4 * H, np.float32)
    return dict(emb=rng.normal(0, 1, size=(V, H)).astype(np.float32), Wx=u(H, 4 * H), Wh=u(H, 4 * H),
                gx=one, gh=one.copy(), b=zero, gc=np.ones(H, np.float32), bc=np.zeros(H, np.float32),
                Wo=u(H, V), bo=np.zeros(V, np.float32))


CELL_KEYS = ["Wx", "Wh", "gx", "gh", "b", "gc", "bc"]


def lm_loss(loop, tokens, targets, emb, Wo, bo, w: List[Tensor]):
    """Embedding -> LN-LSTM -> output layer and softmax cross-entropy at every step."""
    T, B = tokens.shape
    H = emb.shape[1]
    hs = loop(F.embedding(tokens, emb), torch.zeros(B, H), *w)
    return F.cross_entropy(torch.addmm(bo, hs.reshape(T * B, H), Wo), targets.reshape(-1))


class LnLstmStep:
    """One training step (forward, backward through time, SGD) of the PyTorch LN-LSTM."""

    def __init__(self, mode, H, V, tokens, targets, lr):
        self.p = {k: torch.tensor(v, requires_grad=True) for k, v in init_params(H, V).items()}
        self.w = [self.p[k] for k in CELL_KEYS]
        self.params = list(self.p.values())
        self.tokens, self.targets, self.lr = torch.tensor(tokens), torch.tensor(targets), lr
        self.loop, self.loss_fn = ln_lstm_loop, lm_loss
        if mode == "jit":
            self.loop = torch.jit.script(ln_lstm_loop)
        elif mode == "compile_full":
            self.loss_fn = torch.compile(lm_loss, dynamic=False)
        elif mode != "eager":
            raise ValueError(f"no LN-LSTM mode {mode}")

    def __call__(self):
        loss = self.loss_fn(self.loop, self.tokens, self.targets, self.p["emb"], self.p["Wo"], self.p["bo"], self.w)
        loss.backward()
        with torch.no_grad():
            torch._foreach_add_(self.params, [p.grad for p in self.params], alpha=-self.lr)
        for p in self.params:
            p.grad = None
        return loss
