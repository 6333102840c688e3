//! The expression graph: verification after every pass, simplification that never changes a
//! value, hash-consing, and printing any graph back as a cell that means the same.

mod support;

use cellc::interp::{self, SeqInputs};
use cellc::ir::{self, Graph};
use cellc::rng::Rng;
use cellc::syntax::print;
use ndarray::{Array2, Array3, ArrayD};

/// Runs `g` on random weights and inputs from `seed`; returns y.
fn run(g: &Graph, seed: u64) -> Array3<f64> {
    let mut rng = Rng::new(seed);
    // D = H for every graph, so a reprinted cell that no longer reads x element-wise (and so no
    // longer ties D to H) still runs on the same inputs.
    let (h, d) = (3, 3);
    // Weights drawn by parameter name, so a reprinted cell (whose parameters may come in another
    // order) gets the same values.
    let weights: Vec<ArrayD<f64>> = g
        .sig
        .params
        .iter()
        .map(|p| {
            let mut r = Rng::new(seed).fork(cellc::init::name_hash(&p.name));
            ArrayD::from_shape_fn(p.dims(h, d), |_| r.uniform(-1.0, 1.0))
        })
        .collect();
    let x = Array3::from_shape_fn((3, 2, d), |_| rng.uniform(-1.0, 1.0));
    let states = g.sig.states.iter().map(|_| Array2::from_shape_fn((2, h), |_| rng.uniform(-1.0, 1.0))).collect();
    interp::forward(g, &weights, &SeqInputs::new(x, states)).expect("consistent sizes").y
}

fn assert_same(a: &Array3<f64>, b: &Array3<f64>, what: &str) {
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() <= 1e-12 * x.abs().max(1.0) || (x.is_nan() && y.is_nan()), "{what}: {x} != {y}");
    }
}

/// `n` random cells, as many again that use reductions (`mean`, `sum`, layer normalisations),
/// and as many again that also use regularisers (`dropout`, `vardropout`, `zoneout`; run at
/// their expectation).
fn random_cells(n: usize, seed: u64) -> Vec<(String, cellc::check::Cell)> {
    let mut rng = Rng::new(seed);
    let reducing = support::CellGen { reductions: true, ..support::CellGen::default() };
    let masked = support::CellGen { masks: true, ..reducing };
    (0..3 * n)
        .map(|k| {
            let options = [support::CellGen::default(), reducing, masked][k / n];
            let text = support::random_cell(&mut rng, &format!("r{k}"), options);
            let cell = support::checked_cell(&text);
            (text, cell)
        })
        .collect()
}

#[test]
fn every_graph_verifies_raw_simplified_and_differentiated() {
    let ws = cellc::workspace::Workspace::new();
    let mut cells: Vec<cellc::check::Cell> =
        cellc::stdlib::names().map(|n| ws.check_std(n).unwrap().cells.remove(0)).collect();
    cells.extend(random_cells(300, 5).into_iter().map(|(_, c)| c));
    for cell in &cells {
        let raw = ir::lower_raw(cell);
        assert_eq!(ir::verify(&raw), Ok(()), "{} raw", cell.name);
        let simple = ir::simplify(&raw);
        assert_eq!(ir::verify(&simple), Ok(()), "{} simplified", cell.name);
        assert_eq!(ir::verify(&cellc::autodiff::grad(&simple).graph), Ok(()), "{} backward", cell.name);
    }
}

#[test]
fn simplify_never_changes_a_value() {
    for (k, (text, cell)) in random_cells(500, 6).into_iter().enumerate() {
        let raw = ir::lower_raw(&cell);
        let simple = ir::simplify(&raw);
        assert!(simple.len() <= raw.len(), "simplify grew the graph");
        assert_same(&run(&raw, k as u64), &run(&simple, k as u64), &format!("cell {k}:\n{text}"));
    }
}

#[test]
fn simplification_rules() {
    // Each rule on a cell built to trigger it; the printed result shows what remains.
    for (rhs, want) in [
        ("h*1 + 0", "h"),
        ("1*h - 0", "h"),
        ("0 - h", "-h"),
        ("h*0 + b", "b"),
        ("--h", "h"),
        ("h*-1", "-h"),
        ("h/1", "h"),
        ("id(h)", "h"),
        ("tanh(0) + h", "h"),
        ("2*3*h", "6*h"),
        ("h + -b", "h - b"),
        ("h - -b", "h + b"),
        ("(-h)*b", "-(h*b)"),
        ("W*(0*h) + h", "h"),
        ("h - mean(0*h)", "h"),
        ("h + sum(h*0)", "h"),
    ] {
        let cell = support::checked_cell(&format!("cell t {{\n    state h\n    h' = {rhs}\n}}\n"));
        let g = ir::lower(&cell);
        let printed = print::cell(&ir::raise::cell_def(&g));
        let line = printed.lines().find(|l| l.trim_start().starts_with("h' =")).unwrap().trim();
        assert_eq!(line, format!("h' = {want}"), "simplifying {rhs}");
    }
}

#[test]
fn common_subexpressions_are_shared() {
    let cell = support::checked_cell("cell t {\n state h\n a = tanh(W*h)\n b = tanh(W*h)\n h' = a*b + tanh(W*h)\n}");
    let g = ir::lower(&cell);
    let tanh_nodes = g.ids().filter(|&id| matches!(g.node(id).op, ir::Op::Act(_))).count();
    let matvecs = g.ids().filter(|&id| matches!(g.node(id).op, ir::Op::MatVec(_))).count();
    assert_eq!((tanh_nodes, matvecs), (1, 1));
}

#[test]
fn printed_graphs_reparse_to_the_same_computation() {
    let ws = cellc::workspace::Workspace::new();
    let mut cells: Vec<cellc::check::Cell> =
        cellc::stdlib::names().map(|n| ws.check_std(n).unwrap().cells.remove(0)).collect();
    cells.extend(random_cells(300, 7).into_iter().map(|(_, c)| c));
    for (k, cell) in cells.iter().enumerate() {
        let g = ir::lower(cell);
        let text = print::cell(&ir::raise::cell_def(&g));
        let (wsp, checked) = support::check_text("printed.cell", &text);
        assert!(!checked.has_errors(), "printed graph does not check:\n{text}\n{}", support::render(&wsp, &checked));
        let g2 = ir::lower(&checked.cells[0]);
        assert_same(&run(&g, k as u64), &run(&g2, k as u64), &format!("{}:\n{text}", cell.name));
        assert_eq!(print::cell(&ir::raise::cell_def(&g2)), text, "printing is not a fixpoint");
        assert_eq!(g2.len(), g.len(), "{}: a different number of nodes after the round trip", cell.name);
    }
}

#[test]
fn gru_prints_as_written() {
    let ws = cellc::workspace::Workspace::new();
    let g = ir::lower(&ws.check_std("gru").unwrap().cells[0]);
    expect_test::expect![[r#"
        cell gru {
            state h
            r = sigm(W_xr*x + W_hr*h + b_r)
            z = sigm(W_xz*x + W_hz*h + b_z)
            n = tanh(W_xh*x + W_hh*(r*h) + b_h)
            h' = z*h + (1 - z)*n
        }
    "#]]
    .assert_eq(&print::cell(&ir::raise::cell_def(&g)));
}

#[test]
fn a_sum_of_a_number_prints_as_a_sum_over_its_vector() {
    // Simplification folds the argument to a number; the sum still runs over H (or D) entries.
    for rhs in ["tanh(W*x) + sum(2 + 0*h)", "tanh(W*x) + sum(3 + 0*x)*h"] {
        let cell = support::checked_cell(&format!("cell t {{\n    state h\n    h' = {rhs}\n}}\n"));
        let g = ir::lower(&cell);
        let text = print::cell(&ir::raise::cell_def(&g));
        let (wsp, checked) = support::check_text("printed.cell", &text);
        assert!(!checked.has_errors(), "{text}\n{}", support::render(&wsp, &checked));
        let g2 = ir::lower(&checked.cells[0]);
        assert_eq!(print::cell(&ir::raise::cell_def(&g2)), text);
        assert_eq!(g2.len(), g.len(), "{text}");
    }
}
