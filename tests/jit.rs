//! The JIT (f32, fused Cranelift kernels and GEMMs) against the reference interpreter (f64),
//! forward and backward: every std cell and example at sizes that are not multiples of 4 and at
//! batch 1, and 1,000 random cells. Also: the same thread count gives the same bits, and the
//! inline activations against f64 over their whole range. The loss also reads the final states
//! (their gradients seeded), and every other problem runs its backward pass on fresh buffers with
//! the exported saved activations attached, as the PyTorch op does.

mod support;

use cellc::check::Cell;
use cellc::interp::{self, SeqInputs};
use cellc::ir::MaskDraw;
use cellc::rng::Rng;
use cellc::runtime::{Engine, Sizes, StepMode};
use ndarray::{Array2, Array3, ArrayD};

/// Largest error accepted, relative to the largest value of the tensor compared.
const TOLERANCE: f64 = 1e-4;

/// Everything one comparison produced.
struct Outputs {
    y: Vec<f64>,
    finals: Vec<Vec<f64>>,
    dx: Vec<f64>,
    dstates: Vec<Vec<f64>>,
    dparams: Vec<Vec<f64>>,
}

struct Problem {
    sizes: Sizes,
    weights: Vec<Vec<f32>>,
    x: Vec<f32>,
    states: Vec<Vec<f32>>,
    dy: Vec<f32>,
    /// The gradient of each state's final value.
    d_final: Vec<Vec<f32>>,
    /// Run the backward pass on fresh buffers from the forward run's exported activations.
    via_saved: bool,
    /// The regularisers' masks: drawn, as in a training step.
    masks: MaskDraw,
    /// Per-example lengths (longest first) of a variable-length batch.
    lengths: Option<Vec<usize>>,
}

fn problem(engine: &Engine, sizes: Sizes, seed: u64) -> Problem {
    let mut rng = Rng::new(seed);
    let mut draw = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.uniform(-1.0, 1.0) as f32).collect() };
    let weights = engine.param_lens(sizes).into_iter().map(&mut draw).collect();
    let (t, b, h, d) = (sizes.steps, sizes.batch, sizes.hidden, sizes.input);
    let x = draw(t * b * d);
    let states = engine.forward.sig.states.iter().map(|_| draw(b * h)).collect();
    let dy = draw(t * b * h);
    let d_final = engine.forward.sig.states.iter().map(|_| draw(b * h)).collect();
    Problem {
        sizes,
        weights,
        x,
        states,
        dy,
        d_final,
        via_saved: seed % 2 == 1,
        masks: MaskDraw::Seed(seed + 100),
        lengths: None,
    }
}

fn run_jit(engine: &Engine, p: &Problem, threads: usize) -> Outputs {
    let mut bufs = engine.buffers(p.sizes).unwrap();
    bufs.set_masks(p.masks);
    bufs.set_lengths(p.lengths.as_deref()).unwrap();
    bufs.input_mut(engine).copy_from_slice(&p.x);
    for (s, st) in p.states.iter().enumerate() {
        bufs.initial_state_mut(engine, s).copy_from_slice(st);
    }
    engine.forward(&mut bufs, &p.weights, threads).unwrap();
    let to64 = |v: &[f32]| v.iter().map(|x| f64::from(*x)).collect::<Vec<f64>>();
    let y = to64(bufs.output(engine));
    let n = p.states.len();
    let finals = (0..n).map(|s| to64(bufs.final_state(engine, s))).collect();
    let mut grads: Vec<Vec<f32>> = engine.param_lens(p.sizes).into_iter().map(|n| vec![0.0; n]).collect();
    let d_final: Vec<&[f32]> = p.d_final.iter().map(Vec::as_slice).collect();
    let mut saved = vec![f32::NAN; engine.saved_len(p.sizes)];
    let mut dx = vec![f32::NAN; p.x.len()];
    if p.via_saved {
        bufs.export_saved(engine, &mut saved).unwrap();
        bufs = engine.buffers(p.sizes).unwrap();
        bufs.set_lengths(p.lengths.as_deref()).unwrap();
        // SAFETY: `saved`, `p.x` and `dx` outlive the run and nothing else touches them until
        // `detach`.
        unsafe {
            bufs.attach_saved(engine, saved.as_mut_ptr(), saved.len()).unwrap();
            bufs.attach_input(engine, p.x.as_ptr(), p.x.len()).unwrap();
            bufs.attach_input_grad(engine, dx.as_mut_ptr(), dx.len()).unwrap();
        }
        engine.prepare_weights(&mut bufs, &p.weights);
        engine.backward_final(&mut bufs, &p.weights, &p.dy, &d_final, &mut grads, threads).unwrap();
        bufs.detach();
    } else {
        engine.backward_final(&mut bufs, &p.weights, &p.dy, &d_final, &mut grads, threads).unwrap();
        dx.copy_from_slice(bufs.input_grad(engine));
    }
    Outputs {
        y,
        finals,
        dx: to64(&dx),
        dstates: (0..n).map(|s| to64(bufs.initial_state_grad(engine, s))).collect(),
        dparams: grads.iter().map(|g| to64(g)).collect(),
    }
}

fn run_interp(engine: &Engine, p: &Problem) -> Outputs {
    let s = p.sizes;
    let g = &engine.forward;
    let weights: Vec<ArrayD<f64>> = g
        .sig
        .params
        .iter()
        .zip(&p.weights)
        .map(|(info, w)| {
            ArrayD::from_shape_vec(info.dims(s.hidden, s.input), w.iter().map(|v| f64::from(*v)).collect()).unwrap()
        })
        .collect();
    let to64 = |v: &[f32]| v.iter().map(|x| f64::from(*x)).collect::<Vec<f64>>();
    let x = Array3::from_shape_vec((s.steps, s.batch, s.input), to64(&p.x)).unwrap();
    let states = p.states.iter().map(|st| Array2::from_shape_vec((s.batch, s.hidden), to64(st)).unwrap()).collect();
    let inputs = SeqInputs { x, states, masks: p.masks, lengths: p.lengths.clone() };
    let out = interp::forward(g, &weights, &inputs).unwrap();
    let dy = Array3::from_shape_vec((s.steps, s.batch, s.hidden), to64(&p.dy)).unwrap();
    let d_final: Vec<Array2<f64>> =
        p.d_final.iter().map(|d| Array2::from_shape_vec((s.batch, s.hidden), to64(d)).unwrap()).collect();
    let grads = interp::backward_final(&engine.backward, &weights, &inputs, &out, &dy, &d_final);
    Outputs {
        y: out.y.iter().copied().collect(),
        finals: out.states.iter().map(|a| a.iter().copied().collect()).collect(),
        dx: grads.x.iter().copied().collect(),
        dstates: grads.states.iter().map(|a| a.iter().copied().collect()).collect(),
        dparams: grads.params.iter().map(|a| a.iter().copied().collect()).collect(),
    }
}

/// max |a - b| over max |b|, or over `floor` if |b| is smaller everywhere.
fn rel_error(a: &[f64], b: &[f64], floor: f64) -> f64 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(floor);
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max) / scale
}

/// The worst error between JIT and interpreter, and where. A tensor that is zero up to rounding
/// (the gradient through `sum(v - mean(v))` is zero exactly, and f32 noise the size of `v`
/// times 1e-7) is measured against a hundredth of the run's scale (its largest input or output
/// value), not against itself; a wrong kernel is off by far more.
fn compare(engine: &Engine, p: &Problem, threads: usize) -> (f64, String) {
    let (e, at, _) = compare_scaled(engine, p, threads);
    (e, at)
}

/// [`compare`], and the largest value the interpreter computed.
fn compare_scaled(engine: &Engine, p: &Problem, threads: usize) -> (f64, String, f64) {
    let (j, r) = (run_jit(engine, p, threads), run_interp(engine, p));
    let sig = &engine.forward.sig;
    let outputs = [&r.y, &r.dx].into_iter().chain(&r.finals).chain(&r.dstates).chain(&r.dparams);
    let largest_output = outputs.flat_map(|t| t.iter()).fold(0.0f64, |m, v| m.max(v.abs()));
    let inputs = [&p.x, &p.dy].into_iter().chain(&p.weights).chain(&p.states);
    let largest_input = inputs.flat_map(|t| t.iter()).fold(0.0f64, |m, &v| m.max(f64::from(v).abs()));
    let floor = (1e-2 * largest_output.max(largest_input)).max(1e-6);
    let mut worst = (rel_error(&j.y, &r.y, floor), "y".to_string());
    let mut check = |e: f64, what: String| {
        if e > worst.0 || e.is_nan() {
            worst = (e, what);
        }
    };
    for s in 0..sig.states.len() {
        check(rel_error(&j.finals[s], &r.finals[s], floor), format!("final {}", sig.states[s]));
        check(rel_error(&j.dstates[s], &r.dstates[s], floor), format!("grad.{}", sig.states[s]));
    }
    check(rel_error(&j.dx, &r.dx, floor), "grad.x".into());
    for (k, info) in sig.params.iter().enumerate() {
        check(rel_error(&j.dparams[k], &r.dparams[k], floor), format!("grad.{}", info.name));
    }
    (worst.0, worst.1, largest_output)
}

fn cells_under_test() -> Vec<Cell> {
    let ws = cellc::workspace::Workspace::new();
    let mut cells: Vec<Cell> = cellc::stdlib::names().map(|n| ws.check_std(n).unwrap().cells.remove(0)).collect();
    for (_, path) in support::fixtures("examples", "cell") {
        let (_, checked) = support::check_text("example.cell", &std::fs::read_to_string(path).unwrap());
        cells.extend(checked.cells);
    }
    cells
}

#[test]
fn std_cells_and_examples_match_the_interpreter() {
    let mut worst = (0.0, String::new());
    for cell in cells_under_test() {
        let mut engine = Engine::compile(&cell).unwrap();
        let shapes = [(5, 3, 1, 4), (8, 8, 3, 3), (13, 6, 2, 7), (1, 1, 1, 1), (21, 7, 5, 3)];
        for (k, &(h, d, b, t)) in shapes.iter().enumerate() {
            let d = if engine.forward.sig.d_equals_h { h } else { d };
            let sizes = Sizes { hidden: h, input: d, batch: b, steps: t };
            // Both ways of running the time loop on two threads: split by examples, or lockstep.
            for (threads, mode) in [(1, StepMode::Auto), (2, StepMode::Batch), (2, StepMode::Lockstep)] {
                engine.step_mode = mode;
                let p = problem(&engine, sizes, k as u64);
                let (e, at) = compare(&engine, &p, threads);
                let name = &cell.name;
                assert!(e <= TOLERANCE, "{name} at {sizes:?}, {threads} threads {mode:?}: error {e:.2e} in {at}");
                if e > worst.0 {
                    worst = (e, format!("{} {at} at {sizes:?}", cell.name));
                }
            }
        }
    }
    eprintln!("std cells and examples: worst JIT/interpreter error {:.2e} ({})", worst.0, worst.1);
}

/// Values beyond this make a run ill-conditioned in f32: a cell whose state multiplies itself
/// grows doubly exponentially over a few steps (1e10 by step 4 happens), and f32's relative
/// rounding of 6e-8 then decides the digits a comparison reads, whatever the kernels do.
const WELL_CONDITIONED: f64 = 1e5;

/// 1,000 random cells against the interpreter, widths below `max_hidden` and `max_input` (reductions need
/// rows wider than one f32x4 to exercise the lanes and the tail together). Cells whose values
/// pass [`WELL_CONDITIONED`] are drawn again (at most one in ten may be).
fn random_cells_against_the_interpreter(
    seed: u64,
    kind: support::CellGen,
    max_hidden: usize,
    max_input: usize,
) -> (f64, String) {
    let mut rng = Rng::new(seed);
    let mut worst = (0.0, String::new());
    let (mut compared, mut redrawn) = (0, 0);
    for case in 0.. {
        if compared == 1_000 {
            break;
        }
        let text = support::random_cell(&mut rng, &format!("random{case}"), kind);
        let cell = support::checked_cell(&text);
        let engine = Engine::compile(&cell).unwrap_or_else(|e| panic!("cell {case} does not compile: {e}\n{text}"));
        let h = rng.range(1, max_hidden);
        let d = if engine.forward.sig.d_equals_h { h } else { rng.range(1, max_input) };
        let sizes = Sizes { hidden: h, input: d, batch: rng.range(1, 3), steps: rng.range(1, 4) };
        let p = problem(&engine, sizes, case as u64);
        let (e, at, largest) = compare_scaled(&engine, &p, 1 + case % 2);
        if largest > WELL_CONDITIONED {
            redrawn += 1;
            assert!(redrawn <= 100, "more than one cell in ten blows up: {redrawn} after {compared}");
            continue;
        }
        compared += 1;
        assert!(e <= TOLERANCE, "random cell {case} at {sizes:?}: error {e:.2e} in {at}\n{text}");
        if e > worst.0 {
            worst = (e, format!("case {case}, {at}"));
        }
    }
    (worst.0, format!("{}; {redrawn} ill-conditioned cells drawn again", worst.1))
}

#[test]
fn random_cells_match_the_interpreter() {
    let worst = random_cells_against_the_interpreter(77, support::CellGen::default(), 9, 6);
    eprintln!("1,000 random cells: worst JIT/interpreter error {:.2e} ({})", worst.0, worst.1);
}

#[test]
fn random_cells_with_reductions_match_the_interpreter() {
    let kind = support::CellGen { reductions: true, ..support::CellGen::default() };
    let worst = random_cells_against_the_interpreter(78, kind, 17, 11);
    eprintln!("1,000 random cells with reductions: worst JIT/interpreter error {:.2e} ({})", worst.0, worst.1);
}

#[test]
fn random_cells_with_reductions_and_masks_match_the_interpreter() {
    let kind = support::CellGen { reductions: true, masks: true, ..support::CellGen::default() };
    let worst = random_cells_against_the_interpreter(79, kind, 17, 11);
    eprintln!(
        "1,000 random cells with reductions and masks: worst JIT/interpreter error {:.2e} ({})",
        worst.0, worst.1
    );
}

/// Random lengths from 0 to `steps`, longest first (one example runs every step).
fn random_lengths(rng: &mut Rng, batch: usize, steps: usize) -> Vec<usize> {
    let mut lengths: Vec<usize> = (0..batch).map(|b| if b == 0 { steps } else { rng.range(0, steps) }).collect();
    lengths.sort_unstable_by(|a, b| b.cmp(a));
    lengths
}

#[test]
fn variable_length_batches_match_the_interpreter() {
    let mut rng = Rng::new(31);
    let mut cells = cells_under_test();
    let masked = support::CellGen { reductions: true, masks: true, ..support::CellGen::default() };
    for case in 0..300 {
        cells.push(support::checked_cell(&support::random_cell(&mut rng, &format!("random{case}"), masked)));
    }
    let (mut worst, mut ill_conditioned) = ((0.0, String::new()), 0);
    for (k, cell) in cells.iter().enumerate() {
        let mut engine = Engine::compile(cell).unwrap();
        let h = rng.range(1, 13);
        let d = if engine.forward.sig.d_equals_h { h } else { rng.range(1, 7) };
        let sizes = Sizes { hidden: h, input: d, batch: rng.range(2, 7), steps: rng.range(1, 6) };
        let mut p = problem(&engine, sizes, k as u64);
        p.lengths = Some(random_lengths(&mut rng, sizes.batch, sizes.steps));
        for (threads, mode) in [(1, StepMode::Auto), (2, StepMode::Batch), (2, StepMode::Lockstep)] {
            engine.step_mode = mode;
            let (e, at, largest) = compare_scaled(&engine, &p, threads);
            if largest > WELL_CONDITIONED {
                continue;
            }
            // A cell whose f32 rounding alone passes the tolerance (a sum of values that cancel
            // to zero) may pass it by as much with lengths: lengths must add no error of their own.
            let allowed = if e > TOLERANCE {
                let mut whole = problem(&engine, sizes, k as u64);
                whole.via_saved = p.via_saved;
                TOLERANCE.max(2.0 * compare_scaled(&engine, &whole, threads).0)
            } else {
                TOLERANCE
            };
            let lengths = &p.lengths;
            assert!(
                e <= allowed,
                "{} at {sizes:?}, lengths {lengths:?}, {threads} threads {mode:?}: error {e:.2e} in {at}",
                cell.name
            );
            ill_conditioned += usize::from(e > TOLERANCE);
            if e > worst.0 && e <= TOLERANCE {
                worst = (e, format!("{} {at}", cell.name));
            }
        }
    }
    eprintln!(
        "variable-length batches: worst JIT/interpreter error {:.2e} ({}); {ill_conditioned} runs past 1e-4 by as much as without lengths",
        worst.0, worst.1
    );
}

/// Padding costs no gradient and a finished example's state stays: the same examples with
/// lengths (and a loss that ignores the padding) give the gradients and final states of each
/// example run alone for its own length.
#[test]
fn a_variable_length_batch_is_its_examples_run_alone() {
    let ws = cellc::workspace::Workspace::new();
    let engine = Engine::compile(&ws.check_std("lstm").unwrap().cells[0]).unwrap();
    let (h, d, steps) = (6, 4, 5);
    let lengths = vec![5, 3, 1];
    let mut p = problem(&engine, Sizes { hidden: h, input: d, batch: 3, steps }, 4);
    p.lengths = Some(lengths.clone());
    p.via_saved = false;
    // A loss that ignores the padding (the held state y repeats there).
    for (b, &len) in lengths.iter().enumerate() {
        (len..steps).for_each(|t| p.dy[(t * 3 + b) * h..(t * 3 + b + 1) * h].fill(0.0));
    }
    let together = run_jit(&engine, &p, 1);
    let mut summed: Vec<Vec<f64>> = together.dparams.iter().map(|g| vec![0.0; g.len()]).collect();
    for (b, &len) in lengths.iter().enumerate() {
        let sizes = Sizes { hidden: h, input: d, batch: 1, steps: len };
        let rows = |v: &[f32], width: usize, t_len: usize| -> Vec<f32> {
            (0..t_len).flat_map(|t| v[(t * 3 + b) * width..(t * 3 + b + 1) * width].to_vec()).collect()
        };
        let alone = Problem {
            sizes,
            weights: p.weights.clone(),
            x: rows(&p.x, d, len),
            states: p.states.iter().map(|s| s[b * h..(b + 1) * h].to_vec()).collect(),
            dy: rows(&p.dy, h, len),
            d_final: p.d_final.iter().map(|s| s[b * h..(b + 1) * h].to_vec()).collect(),
            via_saved: false,
            masks: p.masks,
            lengths: None,
        };
        let one = run_jit(&engine, &alone, 1);
        for s in 0..p.states.len() {
            let close = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5);
            assert!(close(&together.finals[s][b * h..(b + 1) * h], &one.finals[s]), "final state of example {b}");
            assert!(close(&together.dstates[s][b * h..(b + 1) * h], &one.dstates[s]), "initial-state gradient {b}");
        }
        for t in len..steps {
            assert!(
                together.dx[(t * 3 + b) * d..(t * 3 + b + 1) * d].iter().all(|&v| v == 0.0),
                "padding has no gradient"
            );
        }
        for (acc, g) in summed.iter_mut().zip(&one.dparams) {
            acc.iter_mut().zip(g).for_each(|(a, g)| *a += g);
        }
    }
    for (a, b) in together.dparams.iter().zip(&summed) {
        assert!(rel_error(a, b, 1e-6) < 1e-5, "weight gradients are the examples' sums");
    }
}

#[test]
fn a_thread_count_always_gives_the_same_bits() {
    let ws = cellc::workspace::Workspace::new();
    // lstm_ln: kernels that reduce rows in several passes, and gradients summed per part.
    for name in ["gru", "lstm", "mut1", "lstm_ln"] {
        let mut engine = Engine::compile(&ws.check_std(name).unwrap().cells[0]).unwrap();
        let sizes = Sizes { hidden: 24, input: 24, batch: 6, steps: 5 };
        let p = problem(&engine, sizes, 9);
        for (threads, mode) in
            [(1, StepMode::Auto), (2, StepMode::Batch), (3, StepMode::Batch), (2, StepMode::Lockstep)]
        {
            engine.step_mode = mode;
            let (a, b) = (run_jit(&engine, &p, threads), run_jit(&engine, &p, threads));
            assert_eq!(a.y, b.y, "{name}, {threads} threads: y differs between runs");
            assert_eq!(a.dparams, b.dparams, "{name}, {threads} threads: gradients differ between runs");
            assert_eq!(a.dx, b.dx);
        }
    }
}

/// Runs `h' = f(h)` on `points` with the JIT: the activation alone, one value per lane.
fn jit_activation(f: &str, points: &[f32]) -> Vec<f32> {
    let cell = support::checked_cell(&format!("cell act {{\n    state h\n    h' = {f}(h)\n}}\n"));
    let engine = Engine::compile(&cell).unwrap();
    let sizes = Sizes { hidden: points.len(), input: points.len(), batch: 1, steps: 1 };
    let mut bufs = engine.buffers(sizes).unwrap();
    bufs.initial_state_mut(&engine, 0).copy_from_slice(points);
    engine.forward(&mut bufs, &[], 1).unwrap();
    bufs.output(&engine).to_vec()
}

/// Test points: a dense grid over [-100, 100], tiny and huge magnitudes, ±0, ±inf, NaN.
fn activation_points() -> Vec<f32> {
    let mut p: Vec<f32> = (0..400_001).map(|i| -100.0 + i as f32 * 5e-4).collect();
    for e in -45..=38 {
        for m in [1.0f32, 2.5, 7.3] {
            let v = m * 10f32.powi(e);
            if v.is_finite() {
                p.extend([v, -v]);
            }
        }
    }
    p.extend([0.0, -0.0, f32::INFINITY, f32::NEG_INFINITY, f32::NAN, f32::MAX, f32::MIN, f32::MIN_POSITIVE]);
    p
}

/// An activation's name, its f64 definition and the relative error allowed.
type Reference = (&'static str, fn(f64) -> f64, f64);

#[test]
fn activations_are_accurate_over_their_whole_range() {
    let points = activation_points();
    let reference: [Reference; 7] = [
        ("tanh", f64::tanh, 1.5e-6),
        ("sigm", cellc::ir::sigmoid, 1.5e-6),
        ("exp", f64::exp, 1.5e-6),
        ("softplus", cellc::ir::softplus, 1.5e-6),
        ("relu", |x| if x > 0.0 || x.is_nan() { x } else { 0.0 }, 0.0),
        ("abs", f64::abs, 0.0),
        ("sqrt", f64::sqrt, 1e-7),
    ];
    for (name, f, bound) in reference {
        let got = jit_activation(name, &points);
        let mut worst = (0.0f64, 0.0f32);
        for (&x, &y) in points.iter().zip(&got) {
            let want = f(f64::from(x));
            if want.is_nan() {
                assert!(y.is_nan(), "{name}({x}) = {y}, want NaN");
                continue;
            }
            if want.is_infinite() || want.abs() > f64::from(f32::MAX) {
                assert!(y.is_infinite() && (y > 0.0) == (want > 0.0), "{name}({x}) = {y}, want {want}");
                continue;
            }
            // Results below the smallest normal f32 are flushed to zero; judge them absolutely.
            let diff = (f64::from(y) - want).abs();
            let err = if want.abs() < f64::from(f32::MIN_POSITIVE) { diff } else { diff / want.abs() };
            if err > worst.0 {
                worst = (err, x);
            }
        }
        eprintln!("{name}: max relative error {:.2e} at x = {}", worst.0, worst.1);
        assert!(worst.0 <= bound.max(1e-12), "{name}: max relative error {:.2e} at x = {}", worst.0, worst.1);
    }
}

/// What a forward run exports for its backward run depends on its inputs alone, not on what the
/// buffers held before (the PyTorch op's outputs must be the same on every call).
#[test]
fn saved_activations_depend_only_on_the_forward_inputs() {
    let mut rng = Rng::new(5);
    let mut cells = cells_under_test();
    for case in 0..200 {
        let text = support::random_cell(&mut rng, &format!("random{case}"), support::CellGen::default());
        cells.push(support::checked_cell(&text));
    }
    for cell in cells {
        let engine = Engine::compile(&cell).unwrap();
        let h = 6;
        let d = if engine.forward.sig.d_equals_h { h } else { 4 };
        let sizes = Sizes { hidden: h, input: d, batch: 3, steps: 4 };
        let (p, other) = (problem(&engine, sizes, 1), problem(&engine, sizes, 2));
        let export = |bufs: &mut cellc::runtime::Buffers| {
            bufs.input_mut(&engine).copy_from_slice(&p.x);
            for (s, st) in p.states.iter().enumerate() {
                bufs.initial_state_mut(&engine, s).copy_from_slice(st);
            }
            engine.forward(bufs, &p.weights, 1).unwrap();
            let mut saved = vec![0.0; engine.saved_len(sizes)];
            bufs.export_saved(&engine, &mut saved).unwrap();
            saved
        };
        let fresh = export(&mut engine.buffers(sizes).unwrap());
        // Buffers that ran another problem forward and backward first.
        let mut used = engine.buffers(sizes).unwrap();
        used.input_mut(&engine).copy_from_slice(&other.x);
        engine.forward(&mut used, &other.weights, 1).unwrap();
        let mut grads: Vec<Vec<f32>> = engine.param_lens(sizes).into_iter().map(|n| vec![0.0; n]).collect();
        engine.backward(&mut used, &other.weights, &other.dy, &mut grads, 1).unwrap();
        let saved = export(&mut used);
        assert_eq!(fresh, saved, "{}: saved activations depend on earlier runs", cell.name);
        // A backward run reads the saved activations and never writes them (the PyTorch op
        // runs it on the op's `saved` output in place, attached).
        engine.backward(&mut used, &p.weights, &p.dy, &mut grads, 1).unwrap();
        let mut after = vec![0.0; saved.len()];
        used.export_saved(&engine, &mut after).unwrap();
        assert_eq!(saved, after, "{}: the backward run wrote saved activations", cell.name);
    }
}

/// What the search's normalisation operator (`cellc search --normalise`) makes of each std
/// cell, at every vector node it can normalise, runs on the kernels as the interpreter runs it.
#[test]
fn normalised_std_cells_match_the_interpreter() {
    use cellc::ir::{NodeId, Op, simplify};
    use cellc::search::edit::{apply_normalisation, rebuild};
    let ws = cellc::workspace::Workspace::new();
    let (mut tested, mut worst) = (0, 0.0f64);
    for name in ["tanh_rnn", "gru", "lstm", "mut1"] {
        let g = cellc::ir::lower(&ws.check_std(name).unwrap().cells[0]);
        let vectors: Vec<NodeId> = g
            .reachable(&g.next)
            .into_iter()
            .filter(|&id| g.node(id).op.arity() > 0 && matches!(g.node(id).shape, cellc::check::Shape::Vector(_)))
            .collect();
        for (k, &at) in vectors.iter().enumerate() {
            let node = *g.node(at);
            let m = simplify(&rebuild(&g, at, |out, map| {
                let args: Vec<NodeId> = node.args().iter().map(|a| map[a.index()]).collect();
                let value = out.intern(node.op, &args);
                apply_normalisation(out, value)
            }));
            assert!(m.ids().any(|id| matches!(m.node(id).op, Op::Mean(_))));
            let c =
                cellc::search::candidate::candidate(&m, "normalised").unwrap_or_else(|e| panic!("{name} at {k}: {e}"));
            let cell = support::checked_cell(&c.source.text);
            let engine = Engine::compile(&cell).unwrap_or_else(|e| panic!("{e}\n{}", c.source.text));
            let sizes = Sizes { hidden: 9, input: 9, batch: 2, steps: 3 };
            let (e, at) = compare(&engine, &problem(&engine, sizes, k as u64), 1 + k % 2);
            assert!(e <= TOLERANCE, "error {e:.2e} in {at}\n{}", c.source.text);
            worst = worst.max(e);
            tested += 1;
        }
    }
    eprintln!("{tested} normalised std cells: worst JIT/interpreter error {worst:.2e}");
}

/// Paths the random cells rarely take: a row reduced over D inside the step phase (from a
/// [D, H] matrix of the state) read by an H kernel, a row value as a next state (spread over H),
/// D-wide vector gradients summed per part, and a D reduction of x in the pre phase.
#[test]
fn reductions_over_d_and_row_valued_states_match_the_interpreter() {
    let cells = [
        "cell a {\n    state h\n    v = V*h*x\n    h' = tanh(U*h + W*x)*mean(v) + sum(x*b)*0.1\n}\n",
        "cell b {\n    state h, c\n    c' = mean(V*h*x + b)\n    h' = tanh(U*h + W*x + c)\n}\n",
        "cell c {\n    state h\n    d = x*g - mean(x*g)\n    h' = tanh(U*h + W*(d/sqrt(mean(d*d) + 0.00001)))\n}\n",
    ];
    for text in cells {
        let engine = Engine::compile(&support::checked_cell(text)).unwrap_or_else(|e| panic!("{e}\n{text}"));
        for (k, &(h, d)) in [(5, 3), (9, 7), (16, 11), (1, 6)].iter().enumerate() {
            let sizes = Sizes { hidden: h, input: d, batch: 3, steps: 4 };
            let (e, at) = compare(&engine, &problem(&engine, sizes, k as u64), 1 + k % 2);
            assert!(e <= TOLERANCE, "{text} at H={h}, D={d}: error {e:.2e} in {at}");
        }
    }
}

/// Padding may hold anything: NaN in x past an example's end changes no output and no gradient
/// (the buffers' copy is zeroed; the gradient GEMMs read x there).
#[test]
fn non_finite_padding_in_x_changes_nothing() {
    let ws = cellc::workspace::Workspace::new();
    for name in ["gru", "lstm_ln"] {
        let engine = Engine::compile(&ws.check_std(name).unwrap().cells[0]).unwrap();
        let sizes = Sizes { hidden: 5, input: 3, batch: 3, steps: 4 };
        let mut p = problem(&engine, sizes, 2);
        p.via_saved = false;
        p.lengths = Some(vec![4, 2, 1]);
        let clean = run_jit(&engine, &p, 1);
        for (b, len) in [(1usize, 2usize), (2, 1)] {
            (len..4).for_each(|t| p.x[(t * 3 + b) * 3..(t * 3 + b + 1) * 3].fill(f32::NAN));
        }
        let dirty = run_jit(&engine, &p, 1);
        assert_eq!(clean.dparams, dirty.dparams, "{name}");
        assert_eq!(clean.y, dirty.y, "{name}");
    }
}
