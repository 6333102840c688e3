//! The standard cells: each checks cleanly, matches the paper's equations and parameter names,
//! formats idempotently and round-trips through the formatter.

mod support;

use cellc::check::{Cell, ParamKind};
use cellc::stdlib;
use cellc::syntax::{self, print};
use cellc::workspace::Workspace;
use expect_test::expect;

fn std_cell(ws: &Workspace, name: &str) -> Cell {
    let checked = ws.check_std(name).unwrap_or_else(|| panic!("no std cell {name}"));
    assert!(checked.diagnostics.is_empty(), "std/{name}.cell has diagnostics: {:?}", checked.diagnostics);
    assert_eq!(checked.cells.len(), 1);
    checked.cells.into_iter().next().unwrap()
}

#[test]
fn every_std_file_is_registered_and_named_after_its_cell() {
    let files = support::fixtures("std", "cell");
    let registered: Vec<&str> = stdlib::names().collect();
    for (stem, path) in &files {
        assert!(registered.contains(&stem.as_str()), "std/{stem}.cell is not in stdlib::STD_CELLS");
        let text = std::fs::read_to_string(path).unwrap();
        assert_eq!(stdlib::source(stem), Some(text.as_str()), "embedded copy of {stem} differs");
    }
    assert_eq!(files.len(), registered.len());
    let ws = Workspace::new();
    for name in stdlib::names() {
        assert_eq!(std_cell(&ws, name).name, name);
    }
}

#[test]
fn std_cells_check_with_the_papers_shapes() {
    let ws = Workspace::new();
    let lines: Vec<String> = stdlib::names().map(|n| std_cell(&ws, n).signature()).collect();
    expect![[r#"
        tanh_rnn: state h | 3 params: W_xh[H,D] W_hh[H,H] b_h[H] | D free
        lstm: state h, c (emits h) | 12 params: W_xi[H,D] W_hi[H,H] b_i[H] W_xj[H,D] W_hj[H,H] b_j[H] W_xf[H,D] W_hf[H,H] b_f[H] W_xo[H,D] W_ho[H,H] b_o[H] | D free
        lstm_f: state h, c (emits h) | 9 params: W_xi[H,D] W_hi[H,H] b_i[H] W_xj[H,D] W_hj[H,H] b_j[H] W_xo[H,D] W_ho[H,H] b_o[H] | D free
        lstm_i: state h, c (emits h) | 9 params: W_xi[H,D] W_hi[H,H] b_i[H] W_xf[H,D] W_hf[H,H] b_f[H] W_xo[H,D] W_ho[H,H] b_o[H] | D free
        lstm_o: state h, c (emits h) | 9 params: W_xi[H,D] W_hi[H,H] b_i[H] W_xj[H,D] W_hj[H,H] b_j[H] W_xf[H,D] W_hf[H,H] b_f[H] | D free
        lstm_b: state h, c (emits h) | 12 params: W_xi[H,D] W_hi[H,H] b_i[H] W_xj[H,D] W_hj[H,H] b_j[H] W_xf[H,D] W_hf[H,H] b_f[H] W_xo[H,D] W_ho[H,H] b_o[H] | D free
        gru: state h | 9 params: W_xr[H,D] W_hr[H,H] b_r[H] W_xz[H,D] W_hz[H,H] b_z[H] W_xh[H,D] W_hh[H,H] b_h[H] | D free
        gru_torch: state h | 10 params: W_xr[H,D] W_hr[H,H] b_r[H] W_xz[H,D] W_hz[H,H] b_z[H] W_xn[H,D] b_xn[H] W_hn[H,H] b_hn[H] | D free
        lstm_ln: state h, c (emits h) | 22 params: W_hi[H,H] W_hj[H,H] W_hf[H,H] W_ho[H,H] W_xi[H,D] W_xj[H,D] W_xf[H,D] W_xo[H,D] g_hi[H] g_xi[H] b_i[H] g_hj[H] g_xj[H] b_j[H] g_hf[H] g_xf[H] b_f[H] g_ho[H] g_xo[H] b_o[H] g_c[H] b_c[H] | D free
        gru_ln: state h | 16 params: W_hr[H,H] W_hz[H,H] W_xr[H,D] W_xz[H,D] g_hr[H] g_xr[H] b_r[H] g_hz[H] g_xz[H] b_z[H] W_xh[H,D] W_hh[H,H] g_xh[H] b_h[H] g_hh[H] b_hh[H] | D free
        mut1: state h | 7 params: W_xz[H,H] b_z[H] W_xr[H,H] W_hr[H,H] b_r[H] W_hh[H,H] b_h[H] | D = H
        mut2: state h | 8 params: W_xz[H,H] W_hz[H,H] b_z[H] W_hr[H,H] b_r[H] W_hh[H,H] W_xh[H,H] b_h[H] | D = H
        mut3: state h | 9 params: W_xz[H,D] W_hz[H,H] b_z[H] W_xr[H,D] W_hr[H,H] b_r[H] W_hh[H,H] W_xh[H,D] b_h[H] | D free
        mingru: state h | 4 params: W_xz[H,D] b_z[H] W_xh[H,D] b_h[H] | D free
        minlstm: state h | 6 params: W_xf[H,D] b_f[H] W_xi[H,D] b_i[H] W_xh[H,D] b_h[H] | D free
        mgu: state h | 6 params: W_xf[H,D] W_hf[H,H] b_f[H] W_xh[H,D] W_hh[H,H] b_h[H] | D free
        indrnn: state h | 3 params: W_xh[H,D] u[H] b_h[H] | D free
        ugrnn: state h | 6 params: W_xc[H,D] W_hc[H,H] b_c[H] W_xg[H,D] W_hg[H,H] b_g[H] | D free"#]]
    .assert_eq(&lines.join("\n"));
}

#[test]
fn layer_normalised_cells_start_with_unit_gains() {
    let ws = Workspace::new();
    for (cell, gains) in [("lstm_ln", 9), ("gru_ln", 6)] {
        let c = std_cell(&ws, cell);
        let unit: Vec<&str> =
            c.params.iter().filter(|p| p.init == cellc::check::Init::Const(1.0)).map(|p| p.name.as_str()).collect();
        assert_eq!(unit.len(), gains, "{cell}: {unit:?}");
        assert!(unit.iter().all(|n| n.starts_with("g_")), "{cell}: {unit:?}");
    }
}

#[test]
fn lstm_b_sets_the_forget_bias_and_ablations_drop_their_gate() {
    let ws = Workspace::new();
    let b = std_cell(&ws, "lstm_b");
    assert_eq!(b.params[b.param("b_f").unwrap()].init, cellc::check::Init::Const(1.0));
    for (cell, gate) in [("lstm_f", "b_f"), ("lstm_i", "b_j"), ("lstm_o", "b_o")] {
        assert!(std_cell(&ws, cell).param(gate).is_none(), "{cell} still has {gate}");
    }
}

#[test]
fn std_docs_cite_a_source_and_write_equations() {
    for (name, text) in stdlib::STD_CELLS {
        let first = text.lines().next().unwrap();
        assert!(first.starts_with("/// "), "{name}: must open with a doc comment");
        assert!(first.contains(|c: char| c.is_ascii_digit()), "{name}: first line should cite a year: {first}");
        assert!(
            text.lines().any(|l| l.starts_with("///") && l.contains('=')),
            "{name}: doc should write the equations"
        );
    }
}

#[test]
fn fmt_is_idempotent_and_round_trips_on_std_cells() {
    let ws = Workspace::new();
    for name in stdlib::names() {
        let text = stdlib::source(name).unwrap();
        let (ast, diags) = syntax::parse(ws.std_file(name).unwrap(), text);
        assert!(diags.is_empty());
        let once = print::file(&ast);
        assert_eq!(once, text, "std/{name}.cell is not in canonical form");
        let (ws2, checked) = support::check_text("re.cell", &once);
        assert!(!checked.has_errors(), "{}", support::render(&ws2, &checked));
        assert_eq!(checked.cells[0].without_spans(), std_cell(&ws, name).without_spans(), "{name} changed meaning");
    }
}

#[test]
fn design_card_cell_checks_exactly_as_written() {
    let cell = support::checked_cell("cell card {\n    state h\n    h' = tanh(W*(r*h) + x)*z + h*(1-z)\n}\n");
    let shapes: Vec<String> = cell.params.iter().map(|p| format!("{}{}", p.name, p.kind)).collect();
    assert_eq!(shapes, ["W[H, H]", "r[H]", "z[H]"]);
    assert!(cell.d_equals_h.is_some(), "x added to an H-vector ties D to H");
    assert!(matches!(cell.params[0].kind, ParamKind::Matrix { .. }));
}
