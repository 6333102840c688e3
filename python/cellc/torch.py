"""cellc inside PyTorch: any cell as a ``torch.nn.Module`` running cellc's fused kernels.

    import torch, cellc
    layer = cellc.torch.CellLayer("mut1", input_size=64, hidden_size=64)
    y, states = layer(torch.randn(35, 32, 64))       # x [T, B, D] -> y [T, B, H]
    y.sum().backward()                               # gradients by cellc's symbolic backward

A whole sequence is one call of the custom operator ``cellc::seq`` (forward) and one of
``cellc::seq_backward`` (its gradient), registered with ``torch.library.custom_op`` with an
autograd formula and fake (shape-only) implementations, so they run in eager mode and under
``torch.compile``. float32 runs the JIT's fused kernels; float64 runs cellc's reference
interpreter (slow, exact: what ``torch.autograd.gradcheck`` checks). Tensors must be on the CPU;
other layouts are copied to contiguous ones (with a warning).
"""

import glob
import hashlib
import os
import warnings
from typing import Optional

import torch
from torch import Tensor, nn

from . import Cell, _native

__all__ = ["CellLayer", "register", "seq", "seq_backward", "share_threads"]

_DTYPES = (torch.float32, torch.float64)

def share_threads(on=True):
    """Runs cellc's kernels on PyTorch's OpenMP threads (``on``, the default) or on cellc's own
    threads. PyTorch's threads spin for milliseconds after each of its parallel operations;
    cellc's own threads would share the cores with them (measured ~1.5x slower per step on 2
    cores). Returns whether cellc now runs on PyTorch's threads: False when PyTorch's parallel
    backend is not GNU OpenMP (its libgomp must be in ``torch/lib``)."""
    if not on:
        _native.use_openmp(None)
        return False
    if "parallel backend: OpenMP" not in torch.__config__.parallel_info():
        return False
    libs = sorted(glob.glob(os.path.join(os.path.dirname(torch.__file__), "lib", "libgomp*.so*")))
    for path in libs:
        try:
            _native.use_openmp(path)
            return True
        except OSError:
            continue
    _native.use_openmp(None)
    return False


share_threads(os.environ.get("CELLC_SHARE_THREADS", "1") != "0")


class _Entry:
    """A registered cell: its compiled engine and what the operators check on every call,
    read from the cell once (calls into the native module cost microseconds each)."""

    def __init__(self, cell):
        self.cell = cell
        self.engine = _native.Engine(cell._native)
        self.name = cell.name
        self.param_names = [p.name for p in cell.params]
        # Each parameter's shape as a tuple of "H"/"D".
        self.param_dims = [tuple(p.shape.strip("[]").split(", ")) for p in cell.params]
        self.n_states = len(cell.states)
        self.d_equals_h = cell.d_equals_h
        self.has_masks = bool(cell.masks)
        self.saved_layout = list(self.engine.saved_layout())

    def shapes(self, H, D):
        size = {"H": H, "D": D}
        return [tuple(size[d] for d in dims) for dims in self.param_dims]


# Registered cells by key. The operators take the key, a string, so that traced graphs carry no
# Python objects; a cell is registered (compiled once) when a CellLayer is made.
_REGISTRY = {}
_BY_CELL = {}


def register(cell):
    """Compiles ``cell`` once (later calls reuse it) and returns the key the operators take: the
    cell's key plus a digest of its saved activations' layout, so that a graph compiled by
    ``torch.compile`` (and kept in its on-disk cache) for another layout is never reused."""
    cell = Cell(cell)
    if cell.key not in _BY_CELL:
        entry = _Entry(cell)
        digest = hashlib.sha256(repr(entry.saved_layout).encode()).hexdigest()[:8]
        key = f"{cell.key}-{digest}"
        _REGISTRY[key] = entry
        _BY_CELL[cell.key] = key
    return _BY_CELL[cell.key]


def _lookup(key):
    try:
        return _REGISTRY[key]
    except KeyError:
        raise ValueError(
            f"no cell is registered under {key!r}: make a CellLayer or call cellc.torch.register(cell) first"
        ) from None


def _threads():
    return max(1, torch.get_num_threads())


def _saved_len(key, dtype, T, B, H, D):
    """The length of the float32 forward's saved activations; works on symbolic sizes."""
    if dtype == torch.float64:
        return 0  # the interpreter's backward runs the forward pass again
    rows = {"steps": T * B, "states": (T + 1) * B, "once": 1}
    total = 0
    for h, d, r in _lookup(key).saved_layout:
        total = total + (h * H + d * D) * rows[r]
    return total


def _check(key, x, h0, weights):
    """Validates the operator's arguments; returns (entry, T, B, H, D)."""
    entry = _lookup(key)
    names = entry.param_names
    for name, t in [("x", x), ("states", h0)] + list(zip(names, weights)):
        if not isinstance(t, Tensor):
            raise TypeError(f"cellc: {name} must be a tensor, not {type(t).__name__}")
        if t.device.type != "cpu":
            raise ValueError(f"cellc: {name} is on {t.device}; cellc runs on the CPU (move it with .cpu())")
        if t.dtype not in _DTYPES:
            raise TypeError(
                f"cellc: {name} is {t.dtype}; cellc takes float32 (fused kernels) or float64 "
                f"(reference interpreter), the same for every tensor"
            )
        if t.dtype != x.dtype:
            raise TypeError(f"cellc: {name} is {t.dtype} but x is {x.dtype}; every tensor must have x's dtype")
    if x.dim() != 3:
        raise ValueError(f"cellc: x must be [T, B, D], got shape {tuple(x.shape)}")
    T, B, D = x.shape
    S = entry.n_states
    if h0.dim() != 3 or h0.shape[0] != S or h0.shape[1] != B:
        raise ValueError(f"cellc: states must be [{S}, {B}, H] (the cell's states stacked), got {tuple(h0.shape)}")
    H = h0.shape[2]
    if T == 0 or B == 0 or D == 0 or H == 0:
        raise ValueError(f"cellc: sizes T={T}, B={B}, D={D}, H={H} must each be at least 1")
    if entry.d_equals_h and D != H:
        raise ValueError(f"cellc: cell `{entry.name}` needs input size D equal to hidden size H (D={D}, H={H})")
    if len(weights) != len(names):
        raise ValueError(f"cellc: {len(weights)} weights given, cell `{entry.name}` has {len(names)}")
    for w, name, shape in zip(weights, names, entry.shapes(H, D)):
        if w.shape != shape:
            raise ValueError(f"cellc: {name} has shape {tuple(w.shape)}, expected {shape} (H={H}, D={D})")
    return entry, T, B, H, D


def _mem(t):
    """A tensor as the native module takes it: (address, element count, bytes per element)."""
    return (t.data_ptr(), t.numel(), t.element_size())


def _ptrs(tensors):
    return [_mem(t) for t in tensors]


def _saved_memory(x, n):
    """A float32 block for the saved activations from cellc's pool (reused once PyTorch lets go
    of it: no page faults on every step's fresh 50 MB), else an empty tensor like x."""
    if x.dtype == torch.float32 and n > 0:
        return torch.frombuffer(_native.saved_memory(n), dtype=torch.float32)
    return x.new_empty(n)


@torch.library.custom_op("cellc::seq", mutates_args=(), device_types="cpu")
def seq(
    key: str, x: Tensor, h0: Tensor, weights: list[Tensor], mask_seed: int = -1, lengths: Optional[Tensor] = None
) -> tuple[Tensor, Tensor, Tensor]:
    """The cell over a sequence: x [T, B, D] and the initial states [S, B, H] to y [T, B, H]
    (the emitted state after each step), the final states [S, B, H], and the activations the
    backward pass reads (float32; empty for float64). The cell's regularisers draw their masks
    from ``mask_seed`` (a training step), or use their expectation when it is -1. ``lengths``
    (int64 [B], longest first): example b runs its first lengths[b] steps, then its state stays
    (y repeats it, and the gradient is that of exactly this; x's padding must be finite)."""
    entry, T, B, H, D = _check(key, x, h0, weights)
    engine = entry.engine
    x, h0, weights = x.contiguous(), h0.contiguous(), [w.contiguous() for w in weights]
    y, h_final = x.new_empty(T, B, H), h0.new_empty(h0.shape)
    saved = _saved_memory(x, _saved_len(key, x.dtype, T, B, H, D))
    dims = (T, B, H, D)
    if x.dtype == torch.float32:
        engine.forward(dims, _mem(x), _mem(h0), _ptrs(weights), _mem(y), _mem(h_final),
                       _mem(saved), _threads(), _seed(mask_seed), _lengths(lengths, B))
    else:
        engine.forward64(dims, _mem(x), _mem(h0), _ptrs(weights), _mem(y), _mem(h_final), _seed(mask_seed),
                         _lengths(lengths, B))
    return y, h_final, saved


def _reverse(x, lengths):
    """x [T, B, ...] with each example's steps reversed: all T of them, or (`lengths`) its own
    first lengths[b], the rows after them left in place."""
    if lengths is None:
        return x.flip(0)
    t = torch.arange(x.shape[0]).unsqueeze(1)
    n = lengths.unsqueeze(0)
    index = torch.where(t < n, n - 1 - t, t).to(x.device)
    return x.gather(0, index.view(*index.shape, *([1] * (x.dim() - 2))).expand_as(x))


def _lengths(lengths, batch):
    """The native calls' lengths: a list of ints, or None."""
    if lengths is None:
        return None
    if lengths.dtype != torch.int64 or tuple(lengths.shape) != (batch,):
        raise ValueError(f"cellc: lengths must be an int64 tensor of shape ({batch},), got {lengths.dtype} "
                         f"{tuple(lengths.shape)}")
    return lengths.tolist()


def _seed(mask_seed):
    """The native calls' mask seed: None for the masks' expectation."""
    return None if mask_seed < 0 else mask_seed


@seq.register_fake
def _seq_fake(key, x, h0, weights, mask_seed=-1, lengths=None):
    T, B, D = x.shape
    H = h0.shape[2]
    return x.new_empty(T, B, H), h0.new_empty(h0.shape), x.new_empty(_saved_len(key, x.dtype, T, B, H, D))


@torch.library.custom_op("cellc::seq_backward", mutates_args=(), device_types="cpu")
def seq_backward(
    key: str, x: Tensor, h0: Tensor, weights: list[Tensor], saved: Tensor, dy: Tensor, dh_final: Tensor,
    mask_seed: int = -1,
    lengths: Optional[Tensor] = None,
) -> tuple[Tensor, Tensor, list[Tensor]]:
    """The gradients of x, of the initial states and of every weight, for the loss whose
    gradients with respect to y and to the final states are ``dy`` and ``dh_final``, through
    the masks the forward pass drew from ``mask_seed``."""
    entry, T, B, H, D = _check(key, x, h0, weights)
    engine = entry.engine
    for name, t, shape in [("dy", dy, (T, B, H)), ("final-state gradient", dh_final, tuple(h0.shape))]:
        if tuple(t.shape) != shape or t.dtype != x.dtype or t.device.type != "cpu":
            raise ValueError(f"cellc: {name} must be a CPU {x.dtype} tensor of shape {shape}, got "
                             f"{t.dtype} {tuple(t.shape)} on {t.device}")
    if saved.numel() != _saved_len(key, x.dtype, T, B, H, D) or saved.dtype != x.dtype:
        raise ValueError("cellc: `saved` is not what cellc::seq returned for these sizes")
    x, h0, saved, dy, dh_final = (t.contiguous() for t in (x, h0, saved, dy, dh_final))
    weights = [w.contiguous() for w in weights]
    dx, dh0, dweights = x.new_empty(x.shape), h0.new_empty(h0.shape), [w.new_empty(w.shape) for w in weights]
    dims = (T, B, H, D)
    if x.dtype == torch.float32:
        engine.backward(dims, _mem(x), _mem(saved), _ptrs(weights), _mem(dy), _mem(dh_final),
                        _mem(dx), _mem(dh0), _ptrs(dweights), _threads(), _lengths(lengths, B))
    else:
        engine.backward64(dims, _mem(x), _mem(h0), _ptrs(weights), _mem(dy), _mem(dh_final),
                          _mem(dx), _mem(dh0), _ptrs(dweights), _seed(mask_seed), _lengths(lengths, B))
    return dx, dh0, dweights


@seq_backward.register_fake
def _seq_backward_fake(key, x, h0, weights, saved, dy, dh_final, mask_seed=-1, lengths=None):
    return x.new_empty(x.shape), h0.new_empty(h0.shape), [w.new_empty(w.shape) for w in weights]


def _setup_context(ctx, inputs, output):
    key, x, h0, weights, mask_seed, lengths = inputs
    _, _, saved = output
    ctx.key, ctx.mask_seed, ctx.lengths = key, mask_seed, lengths
    ctx.mark_non_differentiable(saved)
    # No zero-filled gradients for outputs the loss does not read (saved is large): the
    # backward below makes the small ones it needs.
    ctx.set_materialize_grads(False)
    ctx.save_for_backward(x, h0, saved, *weights)


def _backward(ctx, dy, dh_final, _dsaved):
    x, h0, saved, *weights = ctx.saved_tensors
    T, B, _ = x.shape
    if dy is None:
        dy = x.new_zeros(T, B, h0.shape[2])
    if dh_final is None:
        dh_final = h0.new_zeros(h0.shape)
    dx, dh0, dweights = seq_backward(ctx.key, x, h0, weights, saved, dy.contiguous(), dh_final.contiguous(),
                                     ctx.mask_seed, ctx.lengths)
    return None, dx, dh0, dweights, None, None


seq.register_autograd(_backward, setup_context=_setup_context)


def _no_double_backward(ctx, *grads):
    raise RuntimeError("cellc: the gradient of cellc's backward pass (double backward) is not supported")


seq_backward.register_autograd(_no_double_backward, setup_context=lambda ctx, inputs, output: None)


class _CellParameters(nn.Module):
    """One layer's parameters, named as in the cell."""

    def __init__(self, cell, input_size, hidden_size, dtype):
        super().__init__()
        for name, shape in cell.param_shapes(hidden_size, input_size).items():
            self.register_parameter(name, nn.Parameter(torch.empty(shape, dtype=dtype)))
        self.input_size, self.hidden_size = input_size, hidden_size


def _user_stacklevel():
    """The stacklevel that points a warning at the first frame outside cellc and torch.nn."""
    import sys

    frame, level = sys._getframe(1), 1
    here = os.path.dirname(os.path.abspath(__file__))
    nn_dir = os.path.dirname(os.path.abspath(nn.__file__))
    while frame is not None:
        path = os.path.abspath(frame.f_code.co_filename)
        if not path.startswith(here) and not path.startswith(nn_dir) and "torch/utils/_contextlib" not in path:
            return level
        frame, level = frame.f_back, level + 1
    return level


def _convert(t, name, dtype, warn=True):
    """A tensor the operator can take without a copy, or a clear error (wrong device or dtype)."""
    if not isinstance(t, Tensor):
        raise TypeError(f"cellc: {name} must be a torch.Tensor, not {type(t).__name__}")
    if t.device.type != "cpu":
        raise ValueError(f"cellc: {name} is on {t.device}; cellc runs on the CPU (move it with .cpu())")
    if t.dtype != dtype:
        raise TypeError(f"cellc: {name} is {t.dtype} but the layer is {dtype} (convert with .to({dtype}))")
    if not t.is_contiguous():
        if warn:
            warnings.warn(f"cellc: {name} is not contiguous; copying it (pass contiguous tensors to avoid the copy)",
                          stacklevel=_user_stacklevel())
        t = t.contiguous()
    return t


class CellLayer(nn.Module):
    """A (stacked) recurrent layer of ``cell`` on cellc's fused kernels.

    ``CellLayer(cell, input_size, hidden_size, layers=1, init_scale=1.0, dtype=torch.float32,
    bidirectional=False)``: ``cell`` is a ``cellc.Cell``, source text, a ``.cell`` path or a
    standard cell's name. Parameters are ``torch.nn.Parameter``s named as in the cell, layer
    ``l``'s under ``cells.<l>.<name>`` (and, bidirectional, its reverse direction's under
    ``cells_reverse.<l>.<name>``), initialised by the cell's own rules (``reset_parameters``).

    Bidirectional (as ``nn.LSTM(bidirectional=True)``): each layer also runs the cell over the
    sequence reversed (each example within its own length), both on the fused kernels, and emits
    the two directions' outputs concatenated, [T, B, 2 * hidden_size]; states are
    [layers * 2, B, hidden_size], layer-major (index 2l forward, 2l + 1 reverse).

    ``forward(x, states=None)``: x [T, B, input_size] to ``(y, states)``: y [T, B, hidden_size]
    is the last layer's emitted state after every step; ``states`` is a tuple with one tensor per
    cell state (``cell.states``), each [layers, B, hidden_size], the final values (pass them back
    in to continue a sequence; ``None`` starts from zeros). ``lengths`` (optional, integers [B],
    any order): example b runs only its first lengths[b] steps; after them its state stays as it
    was (its final state is the state after its own last step, and y repeats it: where packed
    sequences in PyTorch pad y with zeros, a loss that reads y's padding here reaches the held
    state); the kernels skip those rows and x's padding gets no gradient. ``step(x_t, states)`` runs one step for streaming inference, without
    gradients.

    A cell with regularisers (``dropout``, ``vardropout``, ``zoneout`` in its equations) draws
    new masks for every layer on every forward in training mode (``.train()``, the default),
    from torch's default generator (so ``torch.manual_seed`` repeats them), and uses their
    expectation in eval mode (``.eval()``), as ``nn.Dropout`` does.
    """

    def __init__(self, cell, input_size, hidden_size, layers=1, init_scale=1.0, dtype=torch.float32,
                 bidirectional=False):
        super().__init__()
        self.cell = Cell(cell)
        if dtype not in _DTYPES:
            raise TypeError(f"cellc: dtype must be torch.float32 or torch.float64, not {dtype}")
        for name, v in [("input_size", input_size), ("hidden_size", hidden_size), ("layers", layers)]:
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"cellc: {name} must be a positive int, got {v!r}")
        if self.cell.d_equals_h and input_size != hidden_size:
            raise ValueError(
                f"cellc: cell `{self.cell.name}` needs input_size equal to hidden_size "
                f"(got {input_size} and {hidden_size})"
            )
        self.key = register(self.cell)
        self.input_size, self.hidden_size, self.layers = input_size, hidden_size, layers
        self.directions = 2 if bidirectional else 1
        if self.directions == 2 and self.cell.d_equals_h and layers > 1:
            raise ValueError(f"cellc: cell `{self.cell.name}` needs input_size equal to hidden_size, so it "
                             "cannot be stacked bidirectionally (a layer above reads 2 * hidden_size)")
        inputs = [input_size] + [hidden_size * self.directions] * (layers - 1)
        self.cells = nn.ModuleList(_CellParameters(self.cell, d, hidden_size, dtype) for d in inputs)
        if bidirectional:
            self.cells_reverse = nn.ModuleList(_CellParameters(self.cell, d, hidden_size, dtype) for d in inputs)
        self.reset_parameters(init_scale)

    @property
    def dtype(self):
        """The parameters' dtype (``.double()``, ``.float()`` and ``.to()`` change it)."""
        return next(self.parameters()).dtype

    def __setstate__(self, state):
        # Unpickled or deep-copied, possibly in another process: compile the cell there.
        super().__setstate__(state)
        self.__dict__.setdefault("directions", 1)  # pickled before layers had directions
        self.key = register(self.cell)

    def reset_parameters(self, init_scale=1.0, seed=None):
        """The cell's initialisation rules (a parameter without one: uniform in
        +-init_scale/sqrt(fan-in)), drawn from cellc's generator seeded by ``seed`` (default: a
        draw from torch's generator, so ``torch.manual_seed`` makes it reproducible)."""
        if seed is None:
            seed = int(torch.randint(0, 2**62, (1,)).item())
        runs = list(self.cells) + (list(self.cells_reverse) if self.directions == 2 else [])
        with torch.no_grad():
            for l, params in enumerate(runs):
                values = self.cell.initialise(self.hidden_size, params.input_size, seed + l, init_scale)
                for name, p in params.named_parameters():
                    p.copy_(torch.tensor(values[name], dtype=torch.float64).view(p.shape))

    def _weights(self, l, reverse=False):
        cells = self.cells_reverse if reverse else self.cells
        return [getattr(cells[l], p.name) for p in self.cell.params]

    def _initial_states(self, states, batch, like):
        S, L, H = len(self.cell.states), self.layers * self.directions, self.hidden_size
        if states is None:
            return [like.new_zeros(S, batch, H) for _ in range(L)]
        states = tuple(states) if isinstance(states, (tuple, list)) else (states,)
        if len(states) != S:
            raise ValueError(f"cellc: {S} states expected ({', '.join(self.cell.states)}), got {len(states)}")
        out = []
        for name, s in zip(self.cell.states, states):
            s = _convert(s, f"state {name}", self.dtype, warn=False)  # stacked below anyway
            if s.dim() == 2 and L == 1:
                s = s.unsqueeze(0)
            if tuple(s.shape) != (L, batch, H):
                raise ValueError(f"cellc: state {name} must be [{L}, {batch}, {H}], got {tuple(s.shape)}")
            out.append(s)
        # Per layer, the cell's states stacked: [S, B, H].
        return [torch.stack([s[l] for s in out]) for l in range(L)]

    def _check_input(self, x, dims):
        x = _convert(x, "x", self.dtype)
        if x.dim() != dims or x.shape[-1] != self.input_size:
            want = "[T, B, input_size]" if dims == 3 else "[B, input_size]"
            raise ValueError(f"cellc: x must be {want} with input_size {self.input_size}, got {tuple(x.shape)}")
        if x.numel() == 0:
            raise ValueError(f"cellc: x is empty (shape {tuple(x.shape)})")
        return x

    def forward(self, x, states=None, lengths=None):
        x = self._check_input(x, 3)
        h0 = self._initial_states(states, x.shape[1], x)
        if lengths is None:
            return self._layers(x, h0, None)
        # Longest first for the kernels, then back to the caller's order.
        lengths = self._check_lengths(lengths, x)
        order = torch.argsort(lengths, descending=True, stable=True)
        back = torch.argsort(order)
        y, finals = self._layers(x[:, order], [h[:, order] for h in h0], lengths[order])
        return y[:, back], tuple(f[:, back] for f in finals)

    def _layers(self, x, h0, lengths):
        """Every layer over x (examples longest first when `lengths` is given; x's padding is
        replaced by zeros, so any padding value works)."""
        if lengths is not None:
            live = torch.arange(x.shape[0]).unsqueeze(1) < lengths.unsqueeze(0)
            x = torch.where(live.unsqueeze(2), x, torch.zeros((), dtype=x.dtype))
        if self.directions == 1 and not torch.is_grad_enabled() and not torch.compiler.is_compiling():
            return self._run_without_grad(x, h0, lengths)
        finals = []
        for l in range(self.layers):
            y, h_final, _ = seq(self.key, x, h0[l * self.directions], self._weights(l), self._mask_seed(), lengths)
            finals.append(h_final)
            if self.directions == 2:
                back = _reverse(x, lengths)
                y_back, h_back, _ = seq(self.key, back, h0[2 * l + 1], self._weights(l, True), self._mask_seed(),
                                        lengths)
                finals.append(h_back)
                y = torch.cat([y, _reverse(y_back, lengths)], dim=-1)
            x = y
        return x, self._per_state(finals)

    def _check_lengths(self, lengths, x):
        T, B = x.shape[0], x.shape[1]
        lengths = torch.as_tensor(lengths)
        if lengths.dtype.is_floating_point or lengths.dtype == torch.bool or tuple(lengths.shape) != (B,):
            raise ValueError(f"cellc: lengths must be integers of shape ({B},), got {lengths.dtype} "
                             f"{tuple(lengths.shape)}")
        lengths = lengths.to(torch.int64).cpu()
        if bool(((lengths < 0) | (lengths > T)).any()):
            raise ValueError(f"cellc: lengths must lie in 0..{T} (the steps of x), got {lengths.tolist()}")
        return lengths

    def _mask_seed(self):
        """A new seed for the regularisers' masks in training mode; -1 (their expectation) in
        eval mode or for a cell without any."""
        if not (self.training and _lookup(self.key).has_masks):
            return -1
        return int(torch.randint(0, 2**62, (), dtype=torch.int64))

    def step(self, x_t, states=None):
        """One step, for streaming: x_t [B, input_size] and the carried states to the emitted
        state [B, hidden_size] and the new states (as ``forward`` returns them). No gradients.
        In training mode each call draws new masks (a ``vardropout`` mask too: a step does not
        know its sequence); inference usually runs in eval mode, with their expectation."""
        if self.directions == 2:
            raise ValueError("cellc: a bidirectional layer reads the whole sequence; it has no step()")
        x = self._check_input(x_t, 2).unsqueeze(0)
        h0 = self._initial_states(states, x.shape[1], x)
        with torch.no_grad():
            y, finals = self._run_without_grad(x, h0)
        return y[0], finals

    def _per_state(self, finals):
        return tuple(torch.stack([f[s] for f in finals]) for s in range(len(self.cell.states)))

    @torch.no_grad()
    def _run_without_grad(self, x, h0, lengths=None):
        """The forward pass without the activations a backward pass would need (inference)."""
        finals = []
        for l in range(self.layers):
            weights = [w.contiguous() for w in self._weights(l)]
            entry, T, B, H, D = _check(self.key, x, h0[l], weights)
            y, h_final = x.new_empty(T, B, H), h0[l].new_empty(h0[l].shape)
            seed, lens = _seed(self._mask_seed()), _lengths(lengths, B)
            if x.dtype == torch.float32:
                entry.engine.forward((T, B, H, D), _mem(x), _mem(h0[l]), _ptrs(weights), _mem(y),
                                     _mem(h_final), None, _threads(), seed, lens)
            else:
                entry.engine.forward64((T, B, H, D), _mem(x), _mem(h0[l]), _ptrs(weights), _mem(y),
                                       _mem(h_final), seed, lens)
            x = y
            finals.append(h_final)
        return x, self._per_state(finals)

    def extra_repr(self):
        both = ", bidirectional=True" if self.directions == 2 else ""
        return (f"cell={self.cell.name}, input_size={self.input_size}, hidden_size={self.hidden_size}, "
                f"layers={self.layers}{both}, dtype={self.dtype}")
