"""A cell's regularisers (dropout, vardropout, zoneout) through the operator and CellLayer:
the gradient through fixed masks (gradcheck in float64), the float32 kernels against the
float64 interpreter under the same masks, masks drawn by torch's generator in training mode and
their expectation in eval mode."""

import os

import pytest
import torch

import cellc
import cellc.torch as ct
from conftest import op_problem, rel_error

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "06_regularisers.cell")
NAMES = ["lstm_zoneout", "gru_rdrop", "rnn_vdrop"]


def cell(name):
    return cellc.Cell(f"{EXAMPLES}:{name}")


def problem(c, dtype, T=4, B=3, H=5, D=3, seed=0):
    return op_problem(c, dtype, T, B, H, D, seed)


@pytest.mark.parametrize("name", NAMES)
def test_masks_are_listed(name):
    kinds = {"lstm_zoneout": ["zoneout", "zoneout"], "gru_rdrop": ["dropout"], "rnn_vdrop": ["vardropout"]}
    assert [m[0] for m in cell(name).masks] == kinds[name]
    assert cellc.Cell("gru").masks == []


@pytest.mark.parametrize("name", NAMES)
def test_gradcheck_float64_with_fixed_masks(name):
    key, x, h0, ws = problem(cell(name), torch.float64)

    def f(x, h0, *ws):
        y, h_final, _ = ct.seq(key, x, h0, list(ws), 12345)
        return y, h_final

    assert torch.autograd.gradcheck(f, (x, h0, *ws), eps=1e-6, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("seed", [-1, 3, 2**40 + 7])
@pytest.mark.parametrize("name", NAMES)
def test_float32_kernels_match_the_interpreter_under_the_same_masks(name, seed):
    key, x64, h064, ws64 = problem(cell(name), torch.float64, seed=1)
    x32, h032 = x64.detach().float().requires_grad_(), h064.detach().float().requires_grad_()
    ws32 = [w.detach().float().requires_grad_() for w in ws64]
    outs = {}
    for tag, (x, h0, ws) in {"f32": (x32, h032, ws32), "f64": (x64, h064, ws64)}.items():
        y, h_final, _ = ct.seq(key, x, h0, ws, seed)
        (y.sum() + (h_final * h_final).sum()).backward()
        outs[tag] = [y.detach(), h_final.detach(), x.grad, h0.grad, *[w.grad for w in ws]]
    for a, b in zip(outs["f32"], outs["f64"]):
        assert rel_error(a.double(), b) < 1e-4


def test_a_mask_seed_changes_the_output_only_where_masks_are_drawn():
    key, x, h0, ws = problem(cell("gru_rdrop"), torch.float32)
    with torch.no_grad():
        expected = ct.seq(key, x, h0, ws)[0]
        a, b, c = (ct.seq(key, x, h0, ws, s)[0] for s in (1, 1, 2))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert not torch.equal(a, expected)
    assert torch.equal(expected, ct.seq(key, x, h0, ws, -1)[0])


def test_layer_draws_masks_in_training_mode_from_torchs_generator_and_none_in_eval_mode():
    layer = ct.CellLayer(cell("lstm_zoneout"), 3, 6, layers=2)
    x = torch.randn(5, 4, 3)

    def run(seed):
        torch.manual_seed(seed)
        return layer(x)[0].detach()

    assert torch.equal(run(0), run(0))
    assert not torch.equal(run(0), run(1))
    layer.eval()
    first = layer(x)[0].detach()
    assert torch.equal(first, run(5))  # eval mode: the expectation, whatever the generator
    with torch.no_grad():
        assert torch.equal(layer(x)[0], first)
    layer.train()
    with torch.no_grad():
        torch.manual_seed(0)
        assert torch.equal(layer(x)[0], run(0))  # the no-grad path draws the same masks


def test_dropout_keeps_its_expectation_on_average():
    # dropout(v, 0.25) scales the kept entries by 4/3: over many draws the mean output of a
    # step equals the eval-mode output where the cell is linear in the dropped value.
    c = cellc.Cell("cell lin {\n    state h\n    h' = dropout(W*x, 0.25)\n}\n")
    layer = ct.CellLayer(c, 3, 8)
    x = torch.randn(1, 2000, 3)
    with torch.no_grad():
        drawn = layer(x)[0]
        layer.eval()
        mean = layer(x)[0]
    zero = (drawn == 0).float().mean().item()
    assert abs(zero - 0.25) < 0.02
    kept = drawn != 0
    assert torch.allclose(drawn[kept], mean[kept] / 0.75, rtol=1e-5, atol=1e-6)
