"""cellc: recurrent cells written as equations, compiled to fused CPU kernels.

    import cellc
    gru = cellc.Cell("gru")                      # a standard cell, a .cell path, or source text
    print(gru.equations, gru.params)
    layer = cellc.torch.CellLayer(gru, 32, 64)   # a torch.nn.Module (needs PyTorch)

``cellc.Cell`` checks the cell; a cell that does not check raises ``cellc.CellError`` whose
message is cellc's report, pointing at the source. ``cellc.torch`` runs cells inside PyTorch.
"""

import hashlib
import os
from typing import NamedTuple

from . import _native
from ._native import CellError

__all__ = ["Cell", "CellError", "Param", "std_names"]


def std_names():
    """The names of the standard cells (``cellc.Cell(name)`` loads one)."""
    return list(_native.std_names())


class Param(NamedTuple):
    """A parameter of a cell: its name, its shape in H and D (``"[H, D]"``) and its
    initialisation as the cell's ``init`` statement writes it."""

    name: str
    shape: str
    init: str


def _looks_like_source(text):
    return "\n" in text or "{" in text


class Cell:
    """A checked cell.

    ``Cell(source_or_path, name=None)``: ``source_or_path`` is ``.cell`` source text, a path to
    a ``.cell`` file, or the name of a standard cell (``cellc.std_names()``); ``name`` picks one
    cell of a file that defines several. Raises ``CellError`` (a ``ValueError``) with cellc's
    rendered report when the cell does not check or cannot be found.
    """

    def __init__(self, source_or_path, name=None):
        if isinstance(source_or_path, Cell):
            self._native = source_or_path._native
            return
        if not isinstance(source_or_path, (str, os.PathLike)):
            raise TypeError(
                f"cellc.Cell takes .cell source text, a path or a standard cell's name, "
                f"not {type(source_or_path).__name__}"
            )
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a str, not {type(name).__name__}")
        text = os.fspath(source_or_path)
        if isinstance(text, bytes):
            raise TypeError("pass the path as str, not bytes")
        if isinstance(source_or_path, str) and _looks_like_source(text):
            self._native = _native.Cell.from_text(text, name)
        else:
            self._native = _native.Cell.load(text if name is None else f"{text}:{name}")

    @property
    def name(self):
        return self._native.name

    @property
    def source(self):
        """The text of the file that defines the cell."""
        return self._native.source

    @property
    def file(self):
        return self._native.file

    @property
    def states(self):
        """The state names, in order; ``output`` is the index of the one emitted each step."""
        return list(self._native.states)

    @property
    def output(self):
        return self._native.output

    @property
    def d_equals_h(self):
        """Whether the input size must equal the hidden size (the cell adds x to a hidden vector)."""
        return self._native.d_equals_h

    @property
    def masks(self):
        """(kind, rate, size) per regulariser mask (``dropout``, ``vardropout``, ``zoneout``),
        in the order the cell computes them: drawn anew by every training-mode forward of a
        ``CellLayer``, their expectation in eval mode."""
        return [tuple(m) for m in self._native.masks]

    @property
    def equations(self):
        """Each equation as written, in source order."""
        return list(self._native.equations)

    @property
    def warnings(self):
        """The check's warnings, rendered ("" when none)."""
        return self._native.warnings

    @property
    def params(self):
        """The parameters, in the order the kernels take them."""
        return [Param(*p) for p in self._native.params]

    def param_shapes(self, hidden_size, input_size):
        """``{name: shape}`` at these sizes (matrices ``[rows, cols]``, as ``nn.Linear`` stores them)."""
        shapes = self._native.param_shapes(hidden_size, input_size)
        return {p.name: tuple(s) for p, s in zip(self.params, shapes)}

    def initialise(self, hidden_size, input_size, seed, init_scale=1.0):
        """Initial values by the cell's rules (cellc's trainer's): ``{name: flat list of floats}``."""
        values = self._native.initialise(hidden_size, input_size, seed, init_scale)
        return {p.name: v for p, v in zip(self.params, values)}

    def export_torch(self):
        """The cell as a self-contained eager PyTorch module, the code ``cellc export`` writes."""
        return self._native.export_torch()

    def grad_text(self):
        """The symbolic derivative, as ``cellc grad`` prints it."""
        return self._native.grad_text()

    @property
    def key(self):
        """A name that identifies the cell's definition: its name and a digest of its source."""
        digest = hashlib.sha256(f"{self.file}\0{self.name}\0{self.source}".encode()).hexdigest()
        return f"{self.name}-{digest[:16]}"

    def __repr__(self):
        return repr(self._native)

    def __reduce__(self):
        # Pickled (torch.save of a model, copy.deepcopy) as the text that defines it.
        return (_from_source, (self.source, self.name, self.file))


def _from_source(source, name, file):
    cell = Cell.__new__(Cell)
    cell._native = _native.Cell.from_text(source, name, file)
    return cell


def __getattr__(name):
    # `cellc.torch` imports PyTorch, so it loads on first use, not with `import cellc`.
    if name == "torch":
        import importlib

        return importlib.import_module(".torch", __name__)
    raise AttributeError(f"module 'cellc' has no attribute {name!r}")
