"""Bidirectional CellLayer: both directions on the fused kernels, each example reversed within
its own length; against two one-directional layers with the same weights, and against nn.GRU's
bidirectional layer for the cell that computes what nn.GRU computes."""

import pytest
import torch

from cellc.torch import CellLayer


def copy_direction(src, dst, reverse):
    """Weights of one direction of `src` into the one-directional `dst` (same sizes)."""
    cells = src.cells_reverse if reverse else src.cells
    with torch.no_grad():
        for l in range(src.layers):
            for name, p in dst.cells[l].named_parameters():
                p.copy_(getattr(cells[l], name))


def reversed_within(x, lengths):
    out = x.clone()
    for b, n in enumerate(lengths):
        out[:n, b] = x[:n, b].flip(0)
    return out


@pytest.mark.parametrize("lengths", [None, [5, 2, 4]])
def test_a_bidirectional_layer_is_two_directions_concatenated(lengths):
    torch.manual_seed(0)
    both = CellLayer("lstm", 3, 4, bidirectional=True).double()
    fwd, bwd = CellLayer("lstm", 3, 4).double(), CellLayer("lstm", 3, 4).double()
    copy_direction(both, fwd, False)
    copy_direction(both, bwd, True)
    x = torch.randn(5, 3, 3, dtype=torch.float64)
    y, (h, c) = both(x, lengths=lengths)
    assert y.shape == (5, 3, 8) and h.shape == (2, 3, 4)
    n = lengths or [5, 5, 5]
    yf, (hf, cf) = fwd(x, lengths=lengths)
    yb, (hb, cb) = bwd(reversed_within(x, n), lengths=lengths)
    assert torch.allclose(y[..., :4], yf) and torch.allclose(h[0], hf[0]) and torch.allclose(c[1], cb[0])
    assert torch.allclose(y[..., 4:], reversed_within(yb, n))
    assert torch.allclose(h[1], hb[0])


def test_matches_nn_grus_bidirectional_layer_and_its_gradients():
    torch.manual_seed(1)
    ref = torch.nn.GRU(3, 4, num_layers=2, bidirectional=True).double()
    ours = CellLayer("gru_torch", 3, 4, layers=2, bidirectional=True).double()
    names = {p: n for n, p in ours.named_parameters()}
    with torch.no_grad():
        for l in range(2):
            for suffix, cells in [("", ours.cells), ("_reverse", ours.cells_reverse)]:
                w_ih, w_hh = getattr(ref, f"weight_ih_l{l}{suffix}"), getattr(ref, f"weight_hh_l{l}{suffix}")
                b_ih, b_hh = getattr(ref, f"bias_ih_l{l}{suffix}"), getattr(ref, f"bias_hh_l{l}{suffix}")
                cell, rows = cells[l], [slice(0, 4), slice(4, 8), slice(8, 12)]
                # nn.GRU stacks (r, z, n); gru_torch names them, with r's and z's biases summed.
                for g, r in zip("rzn", rows):
                    getattr(cell, f"W_x{g}").copy_(w_ih[r])
                    getattr(cell, f"W_h{g}").copy_(w_hh[r])
                cell.b_r.copy_(b_ih[rows[0]] + b_hh[rows[0]])
                cell.b_z.copy_(b_ih[rows[1]] + b_hh[rows[1]])
                cell.b_xn.copy_(b_ih[rows[2]])
                cell.b_hn.copy_(b_hh[rows[2]])
    assert len(names) == 2 * 2 * 10
    x = torch.randn(6, 2, 3, dtype=torch.float64, requires_grad=True)
    y, (h,) = ours(x)
    y_ref, h_ref = ref(x)
    assert torch.allclose(y, y_ref) and torch.allclose(h, h_ref)
    grads = torch.autograd.grad((y * y).sum(), x)
    grads_ref = torch.autograd.grad((y_ref * y_ref).sum(), x)
    assert torch.allclose(grads[0], grads_ref[0])


def test_bidirectional_errors():
    with pytest.raises(ValueError, match="no step"):
        CellLayer("gru", 3, 4, bidirectional=True).step(torch.randn(2, 3))
    with pytest.raises(ValueError, match="stacked bidirectionally"):
        CellLayer("mut1", 4, 4, layers=2, bidirectional=True)
    assert "bidirectional=True" in repr(CellLayer("gru", 3, 4, bidirectional=True))
