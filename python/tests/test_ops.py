"""The custom operators cellc::seq and cellc::seq_backward: gradcheck in float64 (the reference
interpreter), torch.library.opcheck, and the float32 JIT against the float64 interpreter."""

import pytest
import torch

import cellc
import cellc.torch as ct
from conftest import rel_error, sizes_for, std_cells

# Small cells of different structure: one state, two states, D = H, many gates.
GRADCHECK_CELLS = ["tanh_rnn", "gru", "lstm", "mut1", "mut3"]


def problem(cell, dtype, T=3, B=2, hidden=4, input=3, requires_grad=True, seed=0):
    g = torch.Generator().manual_seed(seed)
    D, H = sizes_for(cell, hidden, input)
    key = ct.register(cell)
    S = len(cell.states)
    draw = lambda *shape: (torch.rand(*shape, generator=g, dtype=torch.float64) * 2 - 1).to(dtype)
    x = draw(T, B, D)
    h0 = draw(S, B, H)
    ws = [draw(*s) for s in cell.param_shapes(H, D).values()]
    for t in [x, h0, *ws]:
        t.requires_grad_(requires_grad)
    return key, x, h0, ws


@pytest.mark.parametrize("name", GRADCHECK_CELLS)
def test_gradcheck_float64_through_the_op(name):
    cell = cellc.Cell(name)
    key, x, h0, ws = problem(cell, torch.float64)

    def f(x, h0, *ws):
        y, h_final, _ = ct.seq(key, x, h0, list(ws))
        return y, h_final  # both outputs: gradients flow through the final states too

    assert torch.autograd.gradcheck(f, (x, h0, *ws), eps=1e-6, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", ["gru", "lstm"])
def test_opcheck(name, dtype):
    cell = cellc.Cell(name)
    key, x, h0, ws = problem(cell, dtype)
    torch.library.opcheck(ct.seq, (key, x, h0, ws))
    y, h_final, saved = ct.seq(key, x, h0, ws)
    args = (key, x.detach(), h0.detach(), [w.detach() for w in ws], saved.detach(),
            torch.randn_like(y).detach(), torch.randn_like(h_final).detach())
    torch.library.opcheck(ct.seq_backward, args)


@pytest.mark.parametrize("cell", std_cells(), ids=lambda c: c.name)
def test_float32_kernels_match_the_float64_interpreter(cell):
    key, x64, h064, ws64 = problem(cell, torch.float64, T=5, B=3, hidden=9, input=7, seed=3)
    x32, h032 = x64.detach().float().requires_grad_(), h064.detach().float().requires_grad_()
    ws32 = [w.detach().float().requires_grad_() for w in ws64]
    g = torch.Generator().manual_seed(1)
    outs = {}
    for tag, (x, h0, ws) in {"f32": (x32, h032, ws32), "f64": (x64, h064, ws64)}.items():
        y, h_final, _ = ct.seq(key, x, h0, ws)
        dy = torch.rand(y.shape, generator=g, dtype=torch.float64).to(y.dtype)
        dh = torch.rand(h_final.shape, generator=g, dtype=torch.float64).to(y.dtype)
        g.manual_seed(1)
        ((y * dy).sum() + (h_final * dh).sum()).backward()
        outs[tag] = [y, h_final, x.grad, h0.grad] + [w.grad for w in ws]
    for got, want in zip(outs["f32"], outs["f64"]):
        assert rel_error(got, want) < 1e-4


def test_the_op_works_under_torch_compile():
    cell = cellc.Cell("gru")
    key, x, h0, ws = problem(cell, torch.float32)

    def loss(x, h0, ws):
        y, h_final, _ = ct.seq(key, x, h0, ws)
        return (y * y).sum() + h_final.sum()

    compiled = torch.compile(loss, backend="aot_eager", fullgraph=True, dynamic=True)
    eager_grads = torch.autograd.grad(loss(x, h0, ws), [x, h0, *ws])
    compiled_grads = torch.autograd.grad(compiled(x, h0, ws), [x, h0, *ws])
    for a, b in zip(compiled_grads, eager_grads):
        assert torch.equal(a, b)
    # Another length and batch: the fake implementation's symbolic sizes serve it.
    key, x, h0, ws = problem(cell, torch.float32, T=7, B=5)
    assert torch.equal(compiled(x, h0, ws), loss(x, h0, ws))
