"""CellLayer: equal to the exported eager module for every std cell, stacked layers, carried
states, the step API, and torch.compile."""

import pytest
import torch

import cellc
import cellc.torch as ct
from conftest import exported_layer, exported_module, rel_error, sizes_for, std_cells

TOLERANCE = 1e-4


def copy_params(layer, exported):
    with torch.no_grad():
        for name, p in exported.cell.named_parameters():
            p.copy_(getattr(layer.cells[0], name))


@pytest.mark.parametrize("cell", std_cells(), ids=lambda c: c.name)
def test_outputs_and_gradients_equal_the_exported_module(cell):
    torch.manual_seed(2)
    D, H = sizes_for(cell, hidden=12, input=9)
    layer = ct.CellLayer(cell, D, H)
    exported = exported_layer(exported_module(cell))(D, H)
    copy_params(layer, exported)
    x = torch.randn(6, 4, D)
    states = tuple(torch.randn(4, H) * 0.5 for _ in cell.states)
    results = []
    for module, sts in [(layer, tuple(s.unsqueeze(0) for s in states)), (exported, states)]:
        xs = x.clone().requires_grad_()
        sts = tuple(s.clone().requires_grad_() for s in sts)
        y, finals = module(xs, sts)
        finals = tuple(f.reshape(4, H) for f in finals)
        loss = (y * torch.linspace(-1, 1, H)).sum() + sum((f * f).sum() for f in finals)
        loss.backward()
        params = layer.cells[0] if module is layer else exported.cell
        grads = {n: p.grad for n, p in params.named_parameters()}
        results.append(([y, *finals, xs.grad, *(s.grad.reshape(4, H) for s in sts)], grads))
    (ours, our_grads), (theirs, their_grads) = results
    for a, b in zip(ours, theirs):
        assert rel_error(a, b) < TOLERANCE
    assert set(our_grads) == set(their_grads) == {p.name for p in cell.params}
    for name in our_grads:
        assert rel_error(our_grads[name], their_grads[name]) < TOLERANCE, name


def test_parameters_are_named_as_in_the_cell():
    layer = ct.CellLayer("lstm", 3, 5, layers=2)
    names = [n for n, _ in layer.named_parameters()]
    cell_names = [p.name for p in cellc.Cell("lstm").params]
    assert names == [f"cells.{l}.{n}" for l in range(2) for n in cell_names]
    assert all(isinstance(p, torch.nn.Parameter) for p in layer.parameters())
    assert layer.cells[0].W_xi.shape == (5, 3) and layer.cells[1].W_xi.shape == (5, 5)
    assert torch.all(ct.CellLayer("lstm_b", 3, 5).cells[0].b_f == 1)


def test_initialisation_follows_torch_manual_seed():
    torch.manual_seed(7)
    a = ct.CellLayer("gru", 3, 5)
    torch.manual_seed(7)
    b = ct.CellLayer("gru", 3, 5)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)


def test_stacked_layers_chain_single_layers():
    torch.manual_seed(3)
    stack = ct.CellLayer("lstm", 4, 6, layers=3)
    singles = [ct.CellLayer("lstm", 4 if l == 0 else 6, 6) for l in range(3)]
    with torch.no_grad():
        for l, single in enumerate(singles):
            for name, p in single.cells[0].named_parameters():
                p.copy_(getattr(stack.cells[l], name))
    x = torch.randn(5, 2, 4)
    y, (h, c) = stack(x)
    assert h.shape == c.shape == (3, 2, 6)
    for l, single in enumerate(singles):
        x, (hl, cl) = single(x)
        assert torch.equal(hl[0], h[l]) and torch.equal(cl[0], c[l])
    assert torch.equal(x, y)


def test_carrying_states_continues_the_sequence():
    layer = ct.CellLayer("mut2", 5, 5, layers=2)
    x = torch.randn(8, 3, 5)
    y, finals = layer(x)
    y1, mid = layer(x[:3])
    y2, finals2 = layer(x[3:], mid)
    assert rel_error(torch.cat([y1, y2]), y) < 1e-6
    for a, b in zip(finals2, finals):
        assert rel_error(a, b) < 1e-6


def test_the_step_api_streams_the_same_numbers():
    layer = ct.CellLayer("lstm", 4, 6, layers=2)
    x = torch.randn(7, 3, 4)
    y, finals = layer(x)
    states = None
    outs = []
    for t in range(7):
        out, states = layer.step(x[t], states)
        outs.append(out)
    assert rel_error(torch.stack(outs), y) < 1e-6
    for a, b in zip(states, finals):
        assert rel_error(a, b) < 1e-6
    assert not outs[0].requires_grad


def test_a_layer_under_torch_compile_matches_eager():
    torch.manual_seed(4)
    layer = ct.CellLayer("mut1", 8, 8)
    x = torch.randn(5, 3, 8)

    def loss_fn(x):
        y, (h,) = layer(x)
        return y.square().mean() + h.sum()

    compiled = torch.compile(loss_fn, fullgraph=True)  # the default backend, inductor
    eager = torch.autograd.grad(loss_fn(x), list(layer.parameters()))
    got = torch.autograd.grad(compiled(x), list(layer.parameters()))
    for a, b in zip(got, eager):
        assert rel_error(a, b) < 1e-6


def test_own_threads_and_pytorchs_threads_give_the_same_bits():
    torch.manual_seed(5)
    layer = ct.CellLayer("lstm", 16, 32)
    x = torch.randn(9, 8, 16, requires_grad=True)
    results = []
    for shared in [False, True]:
        assert ct.share_threads(shared) == shared  # the test venv's torch is built with GNU OpenMP
        x.grad = None
        layer.zero_grad()
        y, (h, c) = layer(x)
        (y.sum() + c.sum()).backward()
        results.append([y, h, c, x.grad] + [p.grad for p in layer.parameters()])
    for a, b in zip(*results):
        assert torch.equal(a, b)
