"""cellc.Cell: loading, description, errors."""

import pytest

import cellc
from conftest import REPO


def test_a_standard_cell_describes_itself():
    gru = cellc.Cell("gru")
    assert gru.name == "gru"
    assert gru.states == ["h"] and gru.output == 0
    names = [p.name for p in gru.params]
    assert len(names) == len(set(names)) > 0
    shapes = gru.param_shapes(hidden_size=7, input_size=3)
    assert set(shapes) == set(names)
    for p in gru.params:
        want = tuple(7 if c == "H" else 3 for c in p.shape.strip("[]").split(", "))
        assert shapes[p.name] == want
    assert any(eq.startswith("h' =") for eq in gru.equations)
    assert "cellc grad" not in gru.grad_text() and "d" in gru.grad_text()


def test_every_standard_cell_loads_and_is_listed():
    names = cellc.std_names()
    assert {"gru", "lstm", "mut1", "mut2", "mut3", "tanh_rnn"} <= set(names)
    for n in names:
        assert cellc.Cell(n).name


def test_init_rules_are_the_cells_and_reproducible():
    lstm_b = cellc.Cell("lstm_b")
    inits = {p.name: p.init for p in lstm_b.params}
    assert inits["b_f"] == "1"
    a = lstm_b.initialise(4, 3, seed=5)
    assert a == lstm_b.initialise(4, 3, seed=5)
    assert a != lstm_b.initialise(4, 3, seed=6)
    assert a["b_f"] == [1.0] * 4
    shapes = lstm_b.param_shapes(4, 3)
    for name, values in a.items():
        n = 1
        for s in shapes[name]:
            n *= s
        assert len(values) == n


def test_source_text_paths_and_names():
    text = "cell twice {\n    state h\n    h' = tanh(W*h + U*x + b)\n}\n"
    c = cellc.Cell(text)
    assert c.name == "twice" and c.source == text and c.file == "<string>"
    two = text + "cell other {\n    state h\n    h' = sigm(W*h + x)\n}\n"
    with pytest.raises(cellc.CellError, match="has 2 cells; name one"):
        cellc.Cell(two)
    assert cellc.Cell(two, name="other").d_equals_h
    path = REPO / "std" / "mut2.cell"
    assert cellc.Cell(path).name == "mut2"
    assert cellc.Cell(str(path)).name == "mut2"
    with pytest.raises(cellc.CellError, match="has no cell `nope`"):
        cellc.Cell(str(path), name="nope")


def test_a_cell_that_does_not_check_raises_the_rendered_report():
    bad = "cell bad {\n    state h\n    h' = tanh(W*h + x\n}\n"
    with pytest.raises(cellc.CellError) as info:
        cellc.Cell(bad)
    report = str(info.value)
    assert "<string>:" in report and "not closed" in report and "help:" in report
    assert isinstance(info.value, ValueError)


def test_unknown_names_and_bad_arguments_are_clear():
    with pytest.raises(cellc.CellError, match="did you mean the standard cell `gru`"):
        cellc.Cell("gruu")
    with pytest.raises(cellc.CellError, match="the file does not exist"):
        cellc.Cell("missing.cell")
    with pytest.raises(TypeError, match="not int"):
        cellc.Cell(3)
    with pytest.raises(cellc.CellError, match="directory"):
        cellc.Cell(str(REPO / "std"))
    with pytest.raises(ValueError, match="at least 1"):
        cellc.Cell("gru").initialise(0, 3, seed=1)


def test_the_export_is_python_for_the_same_cell():
    src = cellc.Cell("mut1").export_torch()
    compile(src, "<export>", "exec")
    assert "W_hh" in src and "class" in src
