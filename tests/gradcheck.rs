//! The symbolic derivative against finite differences (f64 central differences through the
//! interpreter): every std cell, every example, and 1,000 random valid cells. A failure prints the
//! cell and the seed, so `cellc gradcheck FILE --seed N` reproduces it.

mod support;

use cellc::interp::gradcheck::{self, CheckSizes, TOLERANCE};
use cellc::rng::Rng;
use cellc::workspace::Workspace;

fn check_cell(cell: &cellc::check::Cell, seed: u64, sizes: CheckSizes) -> gradcheck::Report {
    let fwd = cellc::ir::lower(cell);
    let bwd = cellc::autodiff::grad(&fwd);
    assert_eq!(cellc::ir::verify(&bwd.graph), Ok(()), "{}: backward graph fails verification", cell.name);
    gradcheck::check(&fwd, &bwd, seed, sizes)
}

#[test]
fn std_cells_and_examples_pass_gradcheck() {
    let ws = Workspace::new();
    let mut cells: Vec<cellc::check::Cell> =
        cellc::stdlib::names().map(|n| ws.check_std(n).unwrap().cells.remove(0)).collect();
    for (_, path) in support::fixtures("examples", "cell") {
        let (_, checked) = support::check_text("example.cell", &std::fs::read_to_string(path).unwrap());
        cells.extend(checked.cells);
    }
    let mut worst = (0.0, String::new());
    for cell in &cells {
        for seed in 0..3 {
            let r = check_cell(cell, seed, CheckSizes { hidden: 4, input: 3, seq: 4, batch: 2, per_tensor: 12 });
            assert!(
                r.worst <= TOLERANCE,
                "{} seed {seed}: error {:.2e} at {} ({} vs {})",
                cell.name,
                r.worst,
                r.worst_at,
                r.analytic,
                r.numeric
            );
            if r.worst > worst.0 {
                worst = (r.worst, format!("{} seed {seed} at {}", cell.name, r.worst_at));
            }
        }
    }
    eprintln!("std cells and examples: worst relative error {:.2e} ({})", worst.0, worst.1);
}

/// Gradchecks 1,000 random cells drawn with `options` from `rng_seed`; returns the texts and the
/// worst error with where it was.
fn random_cells_pass(rng_seed: u64, options: support::CellGen, seed_base: u64) -> (Vec<String>, f64, String) {
    let mut rng = Rng::new(rng_seed);
    let (mut texts, mut worst) = (vec![], (0.0, String::new()));
    for case in 0..1_000 {
        let text = support::random_cell(&mut rng, &format!("random{case}"), options);
        let (ws, checked) = support::check_text("random.cell", &text);
        assert!(!checked.has_errors(), "generated cell does not check:\n{text}\n{}", support::render(&ws, &checked));
        let seed = seed_base + case;
        let r =
            check_cell(&checked.cells[0], seed, CheckSizes { hidden: 3, input: 2, seq: 3, batch: 2, per_tensor: 4 });
        assert!(
            r.worst <= TOLERANCE,
            "random cell {case} (seed {seed}): error {:.2e} at {} (analytic {}, numeric {})\n{text}",
            r.worst,
            r.worst_at,
            r.analytic,
            r.numeric
        );
        if r.worst > worst.0 {
            worst = (r.worst, format!("case {case} at {}", r.worst_at));
        }
        texts.push(text);
    }
    (texts, worst.0, worst.1)
}

#[test]
fn random_cells_pass_gradcheck() {
    let (_, worst, at) = random_cells_pass(2024, support::CellGen::default(), 1000);
    eprintln!("1,000 random cells: worst relative error {worst:.2e} ({at})");
}

/// The same on random cells that use `mean`, `sum` and layer normalisations: the derivative of a
/// reduction (a sum repeated back along the vector) and of the broadcast of one number per
/// example (a sum of the adjoint) against finite differences.
#[test]
fn random_cells_with_reductions_pass_gradcheck() {
    let options = support::CellGen { reductions: true, ..support::CellGen::default() };
    let (texts, worst, at) = random_cells_pass(2026, options, 5000);
    let reducing = texts.iter().filter(|t| t.contains("mean(") || t.contains("sum(")).count();
    assert!(reducing > 600, "only {reducing} of 1,000 cells reduce anything");
    eprintln!("1,000 random cells ({reducing} with reductions): worst relative error {worst:.2e} ({at})");
}

/// The same on random cells that also wrap values in `dropout`, `vardropout` and `zoneout`:
/// finite differences with the masks fixed (drawn from the check's seed, as a training step
/// draws them), so the derivative through a mask is checked where it is not the identity.
#[test]
fn random_cells_with_reductions_and_masks_pass_gradcheck() {
    let options = support::CellGen { reductions: true, masks: true, ..support::CellGen::default() };
    let (texts, worst, at) = random_cells_pass(2027, options, 9000);
    let masked = texts.iter().filter(|t| t.contains("dropout(") || t.contains("zoneout(")).count();
    assert!(masked > 600, "only {masked} of 1,000 cells use a regulariser");
    eprintln!("1,000 random cells ({masked} with regularisers): worst relative error {worst:.2e} ({at})");
}

/// Variable-length batches: example b runs `lengths[b]` steps, then holds its state, which y
/// repeats (the loss reads every row and the final states). Finite differences through the
/// interpreter's length-aware runs against the derivative that passes an ended example's
/// adjoint (with its dy) through unchanged; std cells and 300 random cells with reductions and
/// regularisers.
#[test]
fn variable_length_batches_pass_gradcheck() {
    let ws = Workspace::new();
    let mut cells: Vec<cellc::check::Cell> =
        cellc::stdlib::names().map(|n| ws.check_std(n).unwrap().cells.remove(0)).collect();
    let mut rng = Rng::new(2028);
    let options = support::CellGen { reductions: true, masks: true, ..support::CellGen::default() };
    for case in 0..300 {
        cells.push(support::checked_cell(&support::random_cell(&mut rng, &format!("random{case}"), options)));
    }
    let (mut worst, mut blown) = ((0.0, String::new()), 0);
    for (k, cell) in cells.iter().enumerate() {
        let fwd = cellc::ir::lower(cell);
        let bwd = cellc::autodiff::grad(&fwd);
        let mut lengths: Vec<usize> = (0..3).map(|_| rng.range(0, 4)).collect();
        lengths.sort_unstable_by(|a, b| b.cmp(a));
        let sizes = CheckSizes { hidden: 3, input: 2, seq: 4, batch: 3, per_tensor: 4 };
        let r = gradcheck::check_lengths(&fwd, &bwd, 7000 + k as u64, sizes, Some(lengths.clone()));
        // A state that grows without bound makes the loss too large for finite differences to
        // see a held example's gradient (of order 1); at most a few such cells.
        if r.loss > 1e5 {
            blown += 1;
            assert!(blown <= 15, "{blown} cells blow up");
            continue;
        }
        assert!(
            r.worst <= TOLERANCE,
            "{} with lengths {lengths:?}: error {:.2e} at {} (analytic {}, numeric {})\n{}",
            cell.name,
            r.worst,
            r.worst_at,
            r.analytic,
            r.numeric,
            cellc::syntax::print::cell(&cellc::ir::raise::cell_def(&fwd))
        );
        if r.worst > worst.0 {
            worst = (r.worst, format!("{} at {}", cell.name, r.worst_at));
        }
    }
    eprintln!(
        "variable-length batches: worst relative error {:.2e} ({}); {blown} cells skipped (loss > 1e5)",
        worst.0, worst.1
    );
}
