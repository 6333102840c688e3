"""The saved activations' memory pool: a block is reused only after PyTorch lets go of it, so
graphs alive at once (two forwards before their backwards, retain_graph) never share memory."""

import torch

import cellc.torch as ct


def grads(layer, x):
    y, _ = layer(x)
    (y * y).sum().backward()
    out = [p.grad.clone() for p in layer.parameters()]
    layer.zero_grad()
    return out


def test_a_block_is_reused_after_its_backward_and_never_while_a_graph_holds_it():
    torch.manual_seed(0)
    layer = ct.CellLayer("lstm_ln", 8, 8)
    x1, x2 = torch.randn(5, 3, 8), torch.randn(5, 3, 8)
    alone = [grads(layer, x1), grads(layer, x2)]
    # Two graphs alive at once: each keeps its own block until its backward.
    y1, _ = layer(x1)
    y2, _ = layer(x2)
    (y2 * y2).sum().backward()
    g2 = [p.grad.clone() for p in layer.parameters()]
    layer.zero_grad()
    y3, _ = layer(x2)  # may take y2's freed block, never y1's
    (y1 * y1).sum().backward(retain_graph=True)
    g1 = [p.grad.clone() for p in layer.parameters()]
    layer.zero_grad()
    (y1 * y1).sum().backward()  # the retained graph still reads its own activations
    g1_again = [p.grad.clone() for p in layer.parameters()]
    layer.zero_grad()
    del y3
    for a, b in zip(g1, alone[0]):
        assert torch.equal(a, b)
    for a, b in zip(g1_again, alone[0]):
        assert torch.equal(a, b)
    for a, b in zip(g2, alone[1]):
        assert torch.equal(a, b)


def test_a_freed_block_is_handed_out_again_and_a_held_one_never():
    x = torch.zeros(1)
    saved = ct._saved_memory(x, 1000)
    ptr = saved.data_ptr()
    del saved
    again = ct._saved_memory(x, 1000)
    assert again.data_ptr() == ptr, "a freed block of the same size is handed out again"
    other = ct._saved_memory(x, 1000)
    assert other.data_ptr() != again.data_ptr(), "a block in use is never handed out twice"
    assert ct._saved_memory(torch.zeros(1, dtype=torch.float64), 3).dtype == torch.float64
