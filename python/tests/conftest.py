"""Shared helpers for the package's tests (run by tools/python-pkg.sh; `.ci/run` calls it)."""

import pathlib
import types

import torch

import cellc

REPO = pathlib.Path(__file__).resolve().parents[2]


def exported_module(cell):
    """The cell's exported eager PyTorch module (`cellc export`), loaded from its source text."""
    module = types.ModuleType(f"exported_{cell.name}")
    exec(compile(cell.export_torch(), f"<export {cell.name}>", "exec"), module.__dict__)
    return module


def exported_layer(module):
    """The exported module's sequence layer class (`<Cell>Layer`)."""
    names = [n for n in dir(module) if n.endswith("Layer") and isinstance(getattr(module, n), type)]
    assert len(names) == 1, names
    return getattr(module, names[0])


def op_problem(cell, dtype, T, B, H, D, seed):
    """The key, x [T, B, D], initial states [S, B, H] and weights of a call of cellc::seq, drawn
    uniform in [-1, 1) from `seed`, all requiring gradients."""
    import cellc.torch as ct

    g = torch.Generator().manual_seed(seed)
    draw = lambda *shape: (torch.rand(*shape, generator=g, dtype=torch.float64) * 2 - 1).to(dtype)  # noqa: E731
    x, h0 = draw(T, B, D), draw(len(cell.states), B, H)
    ws = [draw(*s) for s in cell.param_shapes(H, D).values()]
    for t in [x, h0, *ws]:
        t.requires_grad_(True)
    return ct.register(cell), x, h0, ws


def sizes_for(cell, hidden=6, input=5):
    """(input, hidden) sizes the cell accepts."""
    return (hidden if cell.d_equals_h else input), hidden


def rel_error(got, want):
    """max |got - want| over max(1e-6, max |want|)."""
    got, want = got.detach().double(), want.detach().double()
    assert got.shape == want.shape, (got.shape, want.shape)
    return float((got - want).abs().max() / want.abs().max().clamp_min(1e-6))


def std_cells():
    return [cellc.Cell(n) for n in cellc.std_names()]


torch.manual_seed(0)
