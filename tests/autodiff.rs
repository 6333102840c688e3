//! Symbolic differentiation: the printed backward steps of the GRU, LSTM, MUT1, minLSTM and a
//! zoneout LSTM (goldens in `tests/data/grad`, bless with `UPDATE_EXPECT=1`), and each op's rule
//! checked on its own against finite differences.

mod support;

use cellc::interp::gradcheck::{self, CheckSizes, TOLERANCE};
use expect_test::expect_file;

fn grad_text(cell: &cellc::check::Cell) -> String {
    let g = cellc::ir::lower(cell);
    cellc::autodiff::print::backward_text(&cellc::autodiff::grad(&g))
}

#[test]
fn printed_backward_steps_match_goldens() {
    let ws = cellc::workspace::Workspace::new();
    for name in ["gru", "lstm", "mut1", "minlstm"] {
        let cell = ws.check_std(name).unwrap().cells.remove(0);
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/data/grad/{name}.grad"));
        expect_file![path].assert_eq(&grad_text(&cell));
    }
    // Regularisers: the derivative multiplies by the very masks the forward step drew, by name.
    let text = std::fs::read_to_string("examples/06_regularisers.cell").unwrap();
    let (_, checked) = support::check_text("06.cell", &text);
    let zoneout = checked.cells.iter().find(|c| c.name == "lstm_zoneout").unwrap();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/grad/lstm_zoneout.grad");
    expect_file![path].assert_eq(&grad_text(zoneout));
}

#[test]
fn each_op_rule_passes_gradcheck_alone() {
    for rhs in [
        "W*h + x",
        "h + b",
        "h - b",
        "h*b",
        "h/(2 + b*b)",
        "-h",
        "tanh(W*h)",
        "sigm(W*h)",
        "sigmoid(h*b)",
        "relu(W*h + b)",
        "id(W*h)",
        "exp(tanh(h))",
        "softplus(W*h)",
        "abs(W*h + b)",
        "W*(U*h)",
        "tanh(W*h)*h + (1 - tanh(W*h))*b",
    ] {
        let cell = support::checked_cell(&format!("cell t {{\n    state h\n    h' = {rhs}\n}}\n"));
        let g = cellc::ir::lower(&cell);
        let b = cellc::autodiff::grad(&g);
        for seed in 0..5 {
            let r = gradcheck::check(&g, &b, seed, CheckSizes::default());
            assert!(r.worst <= TOLERANCE, "h' = {rhs}, seed {seed}: error {:.2e} at {}", r.worst, r.worst_at);
        }
    }
}

#[test]
fn a_next_state_read_in_the_same_step_gets_both_adjoints() {
    // c' feeds h' and is itself a next state: its adjoint is dc' plus what flows back from h'.
    let cell = support::checked_cell("cell t {\n state h, c\n c' = c*sigm(W*h)\n h' = tanh(c')*b\n}");
    let text = grad_text(&cell);
    assert!(text.contains("dc'_total = dc' + dh'*b*(1 - t2*t2)"), "{text}");
    let g = cellc::ir::lower(&cell);
    let r = gradcheck::check(&g, &cellc::autodiff::grad(&g), 1, CheckSizes::default());
    assert!(r.worst <= TOLERANCE, "{:.2e} at {}", r.worst, r.worst_at);
}
