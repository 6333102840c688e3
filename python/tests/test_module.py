"""CellLayer as a torch.nn.Module: dtype conversions, copies and pickles, inference without the
backward pass's activations, double backward, forks, and where warnings point."""

import copy
import subprocess
import sys
import textwrap
import warnings

import pytest
import torch

import cellc.torch as ct
from conftest import REPO


def test_dtype_follows_double_float_and_half():
    layer = ct.CellLayer("gru", 3, 4)
    x = torch.randn(5, 2, 3)
    assert layer.double().dtype == torch.float64
    y64, _ = layer(x.double())
    y64_step, _ = layer.step(x[0].double())
    assert y64.dtype == y64_step.dtype == torch.float64
    assert layer.float().dtype == torch.float32
    assert torch.allclose(layer(x)[0].double(), y64, atol=1e-5)
    layer.half()
    with pytest.raises(TypeError, match="float16"):
        layer(x.half())
    with pytest.raises(TypeError, match="float16"):
        layer.step(x[0].half())


def test_copies_and_pickles_compute_the_same(tmp_path):
    torch.manual_seed(1)
    layer = ct.CellLayer("lstm_b", 3, 4, layers=2)
    x = torch.randn(6, 2, 3)
    twin = copy.deepcopy(layer)
    assert torch.equal(twin(x)[0], layer(x)[0])
    torch.save(layer, tmp_path / "layer.pt")
    torch.save(x, tmp_path / "x.pt")
    torch.save(layer(x)[0], tmp_path / "y.pt")
    # A fresh process, where the cell has not been compiled yet.
    script = textwrap.dedent(f"""
        import torch, cellc.torch
        layer = torch.load({str(tmp_path / 'layer.pt')!r}, weights_only=False)
        x, y = torch.load({str(tmp_path / 'x.pt')!r}), torch.load({str(tmp_path / 'y.pt')!r})
        assert torch.equal(layer(x)[0], y)
        print("ok")
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr[-2000:]


def test_inference_without_grad_gives_the_same_numbers():
    layer = ct.CellLayer("mut2", 4, 4, layers=2)
    x = torch.randn(7, 3, 4)
    y, finals = layer(x)
    with torch.no_grad():
        y0, finals0 = layer(x)
    assert torch.equal(y, y0) and not y0.requires_grad
    for a, b in zip(finals, finals0):
        assert torch.equal(a, b)


def test_double_backward_says_it_is_not_supported():
    layer = ct.CellLayer("gru", 3, 4)
    x = torch.randn(4, 2, 3, requires_grad=True)
    y, _ = layer(x)
    (gx,) = torch.autograd.grad(y.square().sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="double backward"):
        gx.sum().backward()


def test_the_contiguity_warning_points_at_the_callers_line():
    layer = ct.CellLayer("gru", 3, 4)
    x = torch.randn(2, 5, 3).transpose(0, 1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        layer(x)
    assert len(caught) == 1 and caught[0].filename == __file__


FORK = """
import os, pathlib, sys, torch, cellc.torch as ct
torch.set_num_threads(2)
layer = ct.CellLayer("lstm", 32, 64)
x = torch.randn(9, 8, 32)
y, _ = layer(x)
y.sum().backward()
# The regions ran on PyTorch's OpenMP team: cellc started no threads of its own.
names = [p.read_text().strip() for p in pathlib.Path("/proc/self/task").glob("*/comm")]
assert not any(n.startswith("cellc-worker") for n in names), names
pid = os.fork()
if pid == 0:
    # A child (a DataLoader worker) has none of the parent's threads: cellc must not wait for them.
    torch.set_num_threads(2)
    ok = torch.equal(layer(x)[0], y)
    os._exit(0 if ok else 3)
_, status = os.waitpid(pid, 0)
print("child", os.waitstatus_to_exitcode(status))
"""


def test_a_forked_child_runs_the_layer():
    run = subprocess.run([sys.executable, "-c", FORK], capture_output=True, text=True, timeout=120,
                         cwd=REPO)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split()[-1] == "0", run.stdout
