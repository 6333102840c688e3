"""Variable-length batches through the operator and CellLayer: gradcheck in float64 with
lengths, the float32 kernels against the float64 interpreter, and a batch in any order equal to
its examples run alone (final states and gradients; padding gets no gradient)."""

import pytest
import torch

import cellc
import cellc.torch as ct
from conftest import op_problem, rel_error

CELLS = ["gru", "lstm", "lstm_ln"]


def problem(cell, dtype, T=5, B=4, H=4, D=3, seed=0):
    return op_problem(cell, dtype, T, B, H, D, seed)


@pytest.mark.parametrize("name", CELLS)
def test_gradcheck_float64_with_lengths(name):
    key, x, h0, ws = problem(cellc.Cell(name), torch.float64)
    lengths = torch.tensor([5, 3, 3, 0])

    def f(x, h0, *ws):
        # y's padding repeats the held state: its gradient reaches the last real step.
        y, h_final, _ = ct.seq(key, x, h0, list(ws), -1, lengths)
        return y, h_final

    assert torch.autograd.gradcheck(f, (x, h0, *ws), eps=1e-6, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", CELLS)
def test_float32_kernels_match_the_interpreter_with_lengths(name):
    key, x64, h064, ws64 = problem(cellc.Cell(name), torch.float64, seed=2)
    x32, h032 = x64.detach().float().requires_grad_(), h064.detach().float().requires_grad_()
    ws32 = [w.detach().float().requires_grad_() for w in ws64]
    lengths = torch.tensor([4, 4, 2, 1])
    outs = {}
    for tag, (x, h0, ws) in {"f32": (x32, h032, ws32), "f64": (x64, h064, ws64)}.items():
        y, h_final, _ = ct.seq(key, x, h0, ws, -1, lengths)
        (y.sum() + (h_final * h_final).sum()).backward()
        outs[tag] = [y.detach(), h_final.detach(), x.grad, h0.grad, *[w.grad for w in ws]]
    for a, b in zip(outs["f32"], outs["f64"]):
        assert rel_error(a.double(), b) < 1e-4


def test_a_batch_in_any_order_is_its_examples_run_alone():
    torch.manual_seed(0)
    layer = ct.CellLayer("lstm", 3, 5, layers=2).double()
    x = torch.randn(6, 4, 3, dtype=torch.float64, requires_grad=True)
    lengths = [2, 6, 0, 4]
    y, (h, c) = layer(x, lengths=lengths)
    (h.sum() + (c * c).sum()).backward()
    batch_grads = [p.grad.clone() for p in layer.parameters()]
    dx = x.grad.clone()
    for p in layer.parameters():
        p.grad = None
    for b, n in enumerate(lengths):
        if n == 0:
            assert torch.equal(h[:, b], torch.zeros_like(h[:, b]))
            continue
        xb = x.detach()[:n, b : b + 1].clone().requires_grad_()
        yb, (hb, cb) = layer(xb)
        assert torch.allclose(h[:, b], hb[:, 0]) and torch.allclose(c[:, b], cb[:, 0])
        assert torch.allclose(y[:n, b], yb[:, 0])
        (hb.sum() + (cb * cb).sum()).backward()
        assert torch.allclose(dx[:n, b], xb.grad[:, 0])
        assert torch.equal(dx[n:, b], torch.zeros_like(dx[n:, b])), "padding has no gradient"
    alone = [p.grad for p in layer.parameters()]
    for a, b in zip(batch_grads, alone):
        assert torch.allclose(a, b)


def test_bad_lengths_get_clear_errors():
    layer = ct.CellLayer("gru", 3, 4)
    x = torch.randn(5, 2, 3)
    for bad, words in [([1, 2, 3], "shape"), ([1.5, 2], "integers"), ([6, 1], "0..5"), ([-1, 2], "0..5")]:
        with pytest.raises(ValueError, match=words):
            layer(x, lengths=bad)
    key, xs, h0, ws = problem(cellc.Cell("gru"), torch.float32, B=2)
    with pytest.raises(ValueError, match="longest first"):
        ct.seq(key, xs, h0, ws, -1, torch.tensor([1, 5]))


def test_padding_may_hold_anything():
    torch.manual_seed(3)
    layer = ct.CellLayer("lstm_ln", 3, 4)
    x = torch.randn(4, 2, 3)
    clean = x.clone().requires_grad_()
    dirty = x.clone()
    dirty[2:, 1] = float("nan")
    dirty.requires_grad_()
    outs = []
    for inp in (clean, dirty):
        y, (h, c) = layer(inp, lengths=[4, 2])
        (h.sum() + c.sum()).backward()
        outs.append([h.detach(), *[p.grad.clone() for p in layer.parameters()]])
        layer.zero_grad()
    for a, b in zip(*outs):
        assert torch.equal(a, b)
    assert torch.isfinite(dirty.grad).all() and (dirty.grad[2:, 1] == 0).all()
