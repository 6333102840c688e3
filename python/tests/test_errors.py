"""Bad input raises a clear Python exception; the process never crashes."""

import subprocess
import sys
import textwrap

import pytest
import torch

import cellc
import cellc.torch as ct


def test_wrong_dtypes_devices_and_shapes_raise_clear_errors():
    layer = ct.CellLayer("lstm", 3, 4)
    x = torch.randn(5, 2, 3)
    with pytest.raises(TypeError, match=r"x is torch.float64 but the layer is torch.float32 \(convert"):
        layer(x.double())
    with pytest.raises(TypeError, match="torch.int64"):
        layer(torch.ones(5, 2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="x is on meta; cellc runs on the CPU"):
        layer(torch.empty(5, 2, 3, device="meta"))
    with pytest.raises(ValueError, match=r"x must be \[T, B, input_size\] with input_size 3, got \(5, 2, 4\)"):
        layer(torch.randn(5, 2, 4))
    with pytest.raises(ValueError, match=r"x must be \[T, B, input_size\]"):
        layer(torch.randn(2, 3))
    with pytest.raises(ValueError, match="x is empty"):
        layer(torch.randn(0, 2, 3))
    with pytest.raises(ValueError, match=r"2 states expected \(h, c\), got 1"):
        layer(x, (torch.zeros(1, 2, 4),))
    with pytest.raises(ValueError, match=r"state c must be \[1, 2, 4\], got \(1, 3, 4\)"):
        layer(x, (torch.zeros(1, 2, 4), torch.zeros(1, 3, 4)))
    with pytest.raises(TypeError, match="must be a torch.Tensor, not list"):
        layer([[1.0]])
    with pytest.raises(ValueError, match="needs input_size equal to hidden_size"):
        ct.CellLayer("mut1", 3, 4)
    with pytest.raises(ValueError, match="hidden_size must be a positive int"):
        ct.CellLayer("gru", 3, 0)
    with pytest.raises(TypeError, match="float32 or torch.float64"):
        ct.CellLayer("gru", 3, 4, dtype=torch.float16)


def test_non_contiguous_input_is_copied_with_a_warning():
    layer = ct.CellLayer("gru", 3, 4)
    x = torch.randn(2, 5, 3).transpose(0, 1)
    with pytest.warns(UserWarning, match="x is not contiguous; copying it"):
        y, _ = layer(x)
    assert torch.equal(y, layer(x.contiguous())[0])


def test_the_operator_checks_its_arguments_when_called_directly():
    key = ct.register(cellc.Cell("gru"))
    ws = [torch.randn(s) for s in cellc.Cell("gru").param_shapes(4, 3).values()]
    x, h0 = torch.randn(5, 2, 3), torch.zeros(1, 2, 4)
    with pytest.raises(ValueError, match="no cell is registered under 'nope'"):
        ct.seq("nope", x, h0, ws)
    with pytest.raises(ValueError, match=r"W_\w+ has shape \(4, 4\), expected \(4, 3\)"):
        ct.seq(key, x, h0, [torch.randn(4, 4)] + ws[1:])
    with pytest.raises(ValueError, match="weights given"):
        ct.seq(key, x, h0, ws[:-1])
    with pytest.raises(ValueError, match=r"states must be \[1, 2, H\]"):
        ct.seq(key, x, torch.zeros(2, 2, 4), ws)
    with pytest.raises(TypeError, match="float32 .fused kernels. or float64"):
        ct.seq(key, x.half(), h0.half(), [w.half() for w in ws])
    y, h_final, saved = ct.seq(key, x, h0, ws)
    with pytest.raises(ValueError, match="not what cellc::seq returned"):
        ct.seq_backward(key, x, h0, ws, saved[:-1], torch.zeros_like(y), torch.zeros_like(h_final))
    with pytest.raises(ValueError, match="dy must be a CPU torch.float32 tensor of shape"):
        ct.seq_backward(key, x, h0, ws, saved, torch.zeros(1), torch.zeros_like(h_final))


BAD_INPUTS = """
import random, torch, cellc, cellc.torch as ct
random.seed(0)
layer = ct.CellLayer("lstm", 3, 4, layers=2)
shapes = [(), (0,), (5,), (5, 2), (5, 2, 3), (5, 0, 3), (1, 1, 3), (5, 2, 4), (2, 5, 2, 3)]
dtypes = [torch.float32, torch.float64, torch.float16, torch.int32, torch.bool]
caught = 0
for i in range(300):
    x = torch.zeros(random.choice(shapes), dtype=random.choice(dtypes))
    st = random.choice([None, (), (torch.zeros(2, 2, 4),), (torch.zeros(2, 2, 4), torch.zeros(2, 2, 4)),
                        (torch.zeros(1, 2, 4), torch.zeros(2, 2, 4)), "junk"])
    try:
        layer(x, st)
        if random.random() < 0.5:
            layer.step(x[0] if x.dim() == 3 else x, st)
    except (ValueError, TypeError):
        caught += 1
for text in ["", "cell", "cell c {", "cell c { state h h' = }", "\\x00" * 5, "cell c {\\n state h\\n h' = h(h)\\n}\\n"]:
    try:
        cellc.Cell(text)
    except cellc.CellError:
        caught += 1
print("caught", caught)
"""


def test_the_process_survives_a_stream_of_bad_inputs():
    # In a child process, so that a crash (a panic that aborts, a segfault) shows as a failure here.
    run = subprocess.run([sys.executable, "-c", textwrap.dedent(BAD_INPUTS)], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert int(run.stdout.split()[-1]) > 250
