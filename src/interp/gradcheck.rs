//! Finite-difference gradient check: the symbolic backward pass against central differences of
//! the forward pass, both in f64 through the interpreter.
//!
//! The loss is L = sum(dy * y) over a short random sequence. Every entry of every parameter (or a
//! random sample of entries for big tensors), of the input and of the initial states is nudged by
//! ±eps; so is everything at once along a random direction. The error of one check is
//! |fd - analytic| / max(|fd|, |analytic|, 1e-3). A check that fails at eps = 1e-6 is retried at
//! 1e-7 and 1e-8 and keeps its best error: straddling a kink of relu or abs is not a bug, and
//! shrinking eps makes straddling unlikely, while a wrong derivative stays wrong at every eps.

use ndarray::{Array2, Array3, ArrayD};

use super::{SeqInputs, Sizes, backward, forward};
use crate::autodiff::Backward;
use crate::ir::{Graph, MaskDraw};
use crate::rng::Rng;

/// Worst error a passing check may have. A correct derivative typically agrees to 1e-7 or better;
/// the floor of central differences in f64 is about 1e-16 |L| / eps, which reaches 1e-6 relative
/// for tiny gradients of a large loss.
pub const TOLERANCE: f64 = 1e-5;

/// Where the worst disagreement was, and how bad.
#[derive(Clone, Debug)]
pub struct Report {
    pub worst: f64,
    /// `W_hh[2, 1]`, `x[0, 1, 2]`, `h0[1, 0]` or `direction`.
    pub worst_at: String,
    pub analytic: f64,
    pub numeric: f64,
    pub checks: usize,
    /// The loss's magnitude: beyond ~1e5, central differences at eps 1e-6 cannot resolve
    /// gradients of order 1 in f64 (a cell whose state grows without bound), whatever the
    /// derivative is.
    pub loss: f64,
}

/// Problem sizes for a check.
#[derive(Clone, Copy, Debug)]
pub struct CheckSizes {
    pub hidden: usize,
    pub input: usize,
    pub seq: usize,
    pub batch: usize,
    /// Most entries checked per tensor (the rest are sampled).
    pub per_tensor: usize,
}

impl Default for CheckSizes {
    fn default() -> Self {
        CheckSizes { hidden: 3, input: 2, seq: 3, batch: 2, per_tensor: 8 }
    }
}

/// Everything a loss evaluation needs.
struct Problem<'a> {
    fwd: &'a Graph,
    weights: Vec<ArrayD<f64>>,
    inputs: SeqInputs,
    dy: Array3<f64>,
}

impl Problem<'_> {
    fn loss(&self) -> f64 {
        let out = forward(self.fwd, &self.weights, &self.inputs).expect("sizes are consistent");
        (&out.y * &self.dy).sum()
    }
}

/// Which value a check perturbs.
#[derive(Clone, Copy)]
enum Slot {
    Param(usize),
    Input,
    State(usize),
}

/// Checks `bwd` (the backward step of `fwd`) with random weights and inputs drawn from `seed`.
pub fn check(fwd: &Graph, bwd: &Backward, seed: u64, sizes: CheckSizes) -> Report {
    check_lengths(fwd, bwd, seed, sizes, None)
}

/// [`check`] on a variable-length batch: example b runs `lengths[b]` steps, then holds its
/// state (which y repeats, and the loss reads).
pub fn check_lengths(fwd: &Graph, bwd: &Backward, seed: u64, sizes: CheckSizes, lengths: Option<Vec<usize>>) -> Report {
    let mut rng = Rng::new(seed);
    let input = if fwd.sig.d_equals_h { sizes.hidden } else { sizes.input };
    let s = Sizes { hidden: sizes.hidden, input };
    let mut uniform = |shape: &[usize]| ArrayD::from_shape_fn(shape, |_| rng.uniform(-1.0, 1.0));
    let weights: Vec<ArrayD<f64>> = fwd.sig.params.iter().map(|p| uniform(&p.dims(s.hidden, s.input))).collect();
    let to3 = |a: ArrayD<f64>| a.into_dimensionality::<ndarray::Ix3>().expect("3-d");
    let to2 = |a: ArrayD<f64>| a.into_dimensionality::<ndarray::Ix2>().expect("2-d");
    let x = to3(uniform(&[sizes.seq, sizes.batch, s.input]));
    let states: Vec<Array2<f64>> = fwd.sig.states.iter().map(|_| to2(uniform(&[sizes.batch, s.hidden]))).collect();
    let dy = to3(uniform(&[sizes.seq, sizes.batch, s.hidden]));
    let inputs = SeqInputs { x, states, masks: MaskDraw::Seed(seed), lengths };
    let mut prob = Problem { fwd, weights, inputs, dy };

    let out = forward(fwd, &prob.weights, &prob.inputs).expect("sizes are consistent");
    let grads = backward(bwd, &prob.weights, &prob.inputs, &out, &prob.dy);
    let loss = prob.loss().abs();
    let mut report = Report { worst: 0.0, worst_at: String::new(), analytic: 0.0, numeric: 0.0, checks: 0, loss };

    let mut slots: Vec<(Slot, String, Vec<f64>)> = vec![];
    for (p, info) in fwd.sig.params.iter().enumerate() {
        slots.push((Slot::Param(p), info.name.clone(), grads.params[p].iter().copied().collect()));
    }
    slots.push((Slot::Input, "x".into(), grads.x.iter().copied().collect()));
    for (i, name) in fwd.sig.states.iter().enumerate() {
        slots.push((Slot::State(i), format!("{name}0"), grads.states[i].iter().copied().collect()));
    }
    for (slot, name, analytic) in &slots {
        let n = analytic.len();
        let mut entries: Vec<usize> = (0..n).collect();
        if n > sizes.per_tensor {
            rng_for(seed, name).shuffle(&mut entries);
            entries.truncate(sizes.per_tensor);
        }
        for k in entries {
            let numeric = best_difference(&mut prob, analytic[k], |prob, delta| nudge(prob, *slot, k, delta));
            record(&mut report, numeric, analytic[k], || format!("{name}[{}]", flat_index(&prob, *slot, k)));
        }
    }

    // Everything at once, along a random direction.
    let mut dir_rng = rng_for(seed, "direction");
    let direction: Vec<Vec<f64>> = slots.iter().map(|(_, _, a)| a.iter().map(|_| dir_rng.normal()).collect()).collect();
    let analytic: f64 =
        slots.iter().zip(&direction).map(|((_, _, a), d)| a.iter().zip(d).map(|(a, d)| a * d).sum::<f64>()).sum();
    let numeric = best_difference(&mut prob, analytic, |prob, delta| {
        for ((slot, _, _), d) in slots.iter().zip(&direction) {
            for (k, dk) in d.iter().enumerate() {
                nudge(prob, *slot, k, delta * dk);
            }
        }
    });
    record(&mut report, numeric, analytic, || "direction".to_string());
    report
}

fn rng_for(seed: u64, what: &str) -> Rng {
    Rng::new(seed).fork(crate::init::name_hash(what))
}

/// The central difference at eps = 1e-6, or at 1e-7 or 1e-8 if those agree better.
fn best_difference(prob: &mut Problem<'_>, analytic: f64, mut apply: impl FnMut(&mut Problem<'_>, f64)) -> f64 {
    let mut best = f64::NAN;
    for eps in [1e-6, 1e-7, 1e-8] {
        apply(prob, eps);
        let up = prob.loss();
        apply(prob, -2.0 * eps);
        let down = prob.loss();
        apply(prob, eps);
        let fd = (up - down) / (2.0 * eps);
        if best.is_nan() || error(fd, analytic) < error(best, analytic) {
            best = fd;
        }
        if error(best, analytic) < 1e-7 {
            break;
        }
    }
    best
}

/// The relative error measure used throughout.
pub fn error(numeric: f64, analytic: f64) -> f64 {
    (numeric - analytic).abs() / numeric.abs().max(analytic.abs()).max(1e-3)
}

fn record(report: &mut Report, numeric: f64, analytic: f64, at: impl FnOnce() -> String) {
    report.checks += 1;
    let e = error(numeric, analytic);
    if e > report.worst || report.worst_at.is_empty() || e.is_nan() {
        report.worst = e;
        report.worst_at = at();
        report.analytic = analytic;
        report.numeric = numeric;
    }
}

fn nudge(prob: &mut Problem<'_>, slot: Slot, k: usize, delta: f64) {
    let value = match slot {
        Slot::Param(p) => prob.weights[p].iter_mut().nth(k),
        Slot::Input => prob.inputs.x.iter_mut().nth(k),
        Slot::State(s) => prob.inputs.states[s].iter_mut().nth(k),
    };
    if let Some(v) = value {
        *v += delta;
    }
}

/// The multi-index of flat entry `k`, as `2, 1`.
fn flat_index(prob: &Problem<'_>, slot: Slot, k: usize) -> String {
    let shape: Vec<usize> = match slot {
        Slot::Param(p) => prob.weights[p].shape().to_vec(),
        Slot::Input => prob.inputs.x.shape().to_vec(),
        Slot::State(s) => prob.inputs.states[s].shape().to_vec(),
    };
    let mut idx = vec![0; shape.len()];
    let mut rest = k;
    for (i, &n) in shape.iter().enumerate().rev() {
        idx[i] = rest % n.max(1);
        rest /= n.max(1);
    }
    idx.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", ")
}
