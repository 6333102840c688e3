"""A model built on CellLayer trains in a plain PyTorch loop."""

import torch
from torch import nn

import cellc.torch as ct


class TinyLM(nn.Module):
    def __init__(self, cell, vocab, hidden):
        super().__init__()
        self.embed = nn.Embedding(vocab, hidden)
        self.rnn = ct.CellLayer(cell, hidden, hidden)
        self.out = nn.Linear(hidden, vocab)

    def forward(self, tokens):
        y, _ = self.rnn(self.embed(tokens))
        return self.out(y)


def test_a_model_learns_to_echo_a_delayed_token():
    # Target at step t: the token of step t-2, which only the recurrent state can remember.
    torch.manual_seed(0)
    vocab, T, B = 6, 12, 32
    model = TinyLM("gru", vocab, 24)
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    losses = []
    for _ in range(150):
        tokens = torch.randint(vocab, (T, B))
        logits = model(tokens)[2:]
        loss = nn.functional.cross_entropy(logits.reshape(-1, vocab), tokens[:-2].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    first, last = losses[0], sum(losses[-10:]) / 10
    assert first > 1.6  # about log(6): guessing
    assert last < 0.3 * first, (first, last)
