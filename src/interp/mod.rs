//! The reference interpreter: f64, plain loops, no cleverness. It is the living specification the
//! JIT must match, and with finite differences it checks the symbolic derivative.
//!
//! One step evaluates graph nodes one example at a time; a sequence runs the step over time.
//! The backward pass of a sequence is the backward step applied from the last time step to the
//! first (backpropagation through time), each step's state adjoints feeding the step before, with
//! parameter gradients summed over batch and time.

pub mod gradcheck;

use ndarray::{Array2, Array3, ArrayD, Axis};

use crate::autodiff::{Backward, ParamGrad};
use crate::ir::{Graph, MaskDraw, NodeId, Op};

/// Sizes a run is evaluated at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sizes {
    pub hidden: usize,
    pub input: usize,
}

impl Sizes {
    /// The length of a vector of size `d`.
    pub fn of(self, d: crate::ir::Dim) -> usize {
        match d {
            crate::ir::Dim::H => self.hidden,
            crate::ir::Dim::D => self.input,
        }
    }
}

/// Inputs of one sequence run: `x` is [T, B, D]; one [B, H] initial value per state; which
/// masks the regularisers use (their expectation unless a seed says otherwise); and, for a
/// variable-length batch, each example's length: example b runs steps 0..lengths[b], then its
/// state stays as it was (y repeats it).
#[derive(Clone, Debug)]
pub struct SeqInputs {
    pub x: Array3<f64>,
    pub states: Vec<Array2<f64>>,
    pub masks: MaskDraw,
    pub lengths: Option<Vec<usize>>,
}

impl SeqInputs {
    /// Inputs that evaluate the regularisers by their expectation, every example running every
    /// step.
    pub fn new(x: Array3<f64>, states: Vec<Array2<f64>>) -> SeqInputs {
        SeqInputs { x, states, masks: MaskDraw::Expected, lengths: None }
    }

    /// Whether example b runs step t.
    fn runs(&self, b: usize, t: usize) -> bool {
        self.lengths.as_ref().is_none_or(|l| t < l[b])
    }
}

/// Outputs of a forward run: `y` is [T, B, H] (the output state after each step), and the final
/// value of each state. `steps` holds each step's previous states, for the backward pass.
#[derive(Clone, Debug)]
pub struct SeqOutputs {
    pub y: Array3<f64>,
    pub states: Vec<Array2<f64>>,
    pub steps: Vec<Vec<Array2<f64>>>,
}

/// Gradients of L = sum(dy * y): for `x`, each initial state, and each parameter.
#[derive(Clone, Debug)]
pub struct SeqGrads {
    pub x: Array3<f64>,
    pub states: Vec<Array2<f64>>,
    pub params: Vec<ArrayD<f64>>,
}

impl SeqInputs {
    /// The sizes these inputs imply, checked against each other and the cell.
    pub fn sizes(&self, g: &Graph) -> Result<Sizes, String> {
        let (_, b, d) = self.x.dim();
        if self.states.len() != g.sig.states.len() {
            return Err(format!("{} initial states given, the cell has {}", self.states.len(), g.sig.states.len()));
        }
        let h = self.states.first().map_or(0, |s| s.dim().1);
        for (s, st) in self.states.iter().enumerate() {
            if st.dim() != (b, h) {
                return Err(format!("state `{}` has shape {:?}, expected [{b}, {h}]", g.sig.states[s], st.shape()));
            }
        }
        if g.sig.d_equals_h && d != h {
            return Err(format!("cell `{}` needs input size D = hidden size H, got D = {d}, H = {h}", g.sig.name));
        }
        Ok(Sizes { hidden: h, input: d })
    }
}

/// Per-step inputs for one example.
struct Step<'a> {
    x: &'a [f64],
    states: &'a [Vec<f64>],
    adjoints: &'a [Vec<f64>],
    /// The masks, which step `t` and example `b` of a run drawn how.
    masks: MaskDraw,
    t: usize,
    b: usize,
}

/// Evaluates the nodes `order` (a topologically ordered set) for one example at one step.
/// Values are vectors; scalars have length 1 and broadcast.
fn eval(g: &Graph, order: &[NodeId], weights: &[ArrayD<f64>], sizes: Sizes, step: &Step<'_>) -> Vec<Vec<f64>> {
    let mut vals: Vec<Vec<f64>> = vec![vec![]; g.len()];
    for &id in order {
        let node = g.node(id);
        let arg = |k: usize| &vals[node.args[k].index()];
        let v = match node.op {
            Op::Input => step.x.to_vec(),
            Op::State(s) => step.states[s as usize].clone(),
            Op::AdjNext(s) => step.adjoints[s as usize].clone(),
            Op::Mask(k) => {
                let info = g.sig.masks[k as usize];
                let row = info.row(k as usize, step.masks, step.t, step.b);
                (0..sizes.of(info.dim)).map(|j| row.at(j)).collect()
            }
            Op::Param(p) => weights[p as usize].iter().copied().collect(),
            Op::Const(_) => vec![g.const_value(id).unwrap_or(f64::NAN)],
            Op::MatVec(p) => matvec(&weights[p as usize], arg(0), false),
            Op::MatVecT(p) => matvec(&weights[p as usize], arg(0), true),
            // One number per example is a vector of length 1, like a scalar.
            Op::Sum(d) => vec![row_sum(arg(0), sizes.of(d))],
            Op::Mean(d) => vec![row_sum(arg(0), sizes.of(d)) / sizes.of(d) as f64],
            Op::Broadcast(d) => widen(arg(0), sizes.of(d)),
            Op::Spread(d) => widen(arg(0), sizes.of(d)).iter().map(|v| v / sizes.of(d) as f64).collect(),
            op if op.arity() == 1 => arg(0).iter().map(|&a| op.apply(a, 0.0)).collect(),
            op => {
                let (a, b) = (arg(0), arg(1));
                let n = a.len().max(b.len());
                (0..n)
                    .map(|i| op.apply(a[if a.len() == 1 { 0 } else { i }], b[if b.len() == 1 { 0 } else { i }]))
                    .collect()
            }
        };
        debug_assert!(v.len() == 1 || v.len() == sizes.hidden || v.len() == sizes.input);
        vals[id.index()] = v;
    }
    vals
}

/// The values of `nodes` for one example at one step: input `x`, previous `states`. Scalars come
/// back with length 1. For the REPL, which shows what each equation computes.
pub fn step_values(
    g: &Graph,
    weights: &[ArrayD<f64>],
    x: &[f64],
    states: &[Vec<f64>],
    nodes: &[NodeId],
) -> Vec<Vec<f64>> {
    let sizes = Sizes { hidden: states.first().map_or(x.len(), Vec::len), input: x.len() };
    let order = g.reachable(nodes);
    let step = Step { x, states, adjoints: &[], masks: MaskDraw::Expected, t: 0, b: 0 };
    let vals = eval(g, &order, weights, sizes, &step);
    nodes.iter().map(|n| vals[n.index()].clone()).collect()
}

/// `W v` (or `Wᵀ v`) for a row-major [rows, cols] matrix.
fn matvec(w: &ArrayD<f64>, v: &[f64], transpose: bool) -> Vec<f64> {
    let (rows, cols) = (w.shape()[0], w.shape()[1]);
    let at = |r: usize, c: usize| w[[r, c]];
    let v_at = |i: usize| v[if v.len() == 1 { 0 } else { i }];
    if transpose {
        (0..cols).map(|c| (0..rows).map(|r| at(r, c) * v_at(r)).sum()).collect()
    } else {
        (0..rows).map(|r| (0..cols).map(|c| at(r, c) * v_at(c)).sum()).collect()
    }
}

/// The sum of `v` as a vector of length `n` (a number broadcasts).
fn row_sum(v: &[f64], n: usize) -> f64 {
    if v.len() == 1 { v[0] * n as f64 } else { v.iter().sum() }
}

/// A value as a vector of length `n` (broadcasting a scalar).
fn widen(v: &[f64], n: usize) -> Vec<f64> {
    if v.len() == 1 { vec![v[0]; n] } else { v.to_vec() }
}

/// Runs the cell over a sequence.
pub fn forward(g: &Graph, weights: &[ArrayD<f64>], inp: &SeqInputs) -> Result<SeqOutputs, String> {
    let sizes = inp.sizes(g)?;
    check_weights(g, weights, sizes)?;
    let (t_len, b_len, _) = inp.x.dim();
    let order = g.reachable(&g.next);
    let mut states = inp.states.clone();
    let mut y = Array3::zeros((t_len, b_len, sizes.hidden));
    let mut steps = Vec::with_capacity(t_len);
    for t in 0..t_len {
        steps.push(states.clone());
        let mut next: Vec<Array2<f64>> = states.iter().map(|s| Array2::zeros(s.dim())).collect();
        for b in 0..b_len {
            if !inp.runs(b, t) {
                for (s, st) in states.iter().enumerate() {
                    next[s].row_mut(b).assign(&st.row(b));
                }
                continue;
            }
            let x: Vec<f64> = inp.x.index_axis(Axis(0), t).row(b).to_vec();
            let prev: Vec<Vec<f64>> = states.iter().map(|s| s.row(b).to_vec()).collect();
            let step = Step { x: &x, states: &prev, adjoints: &[], masks: inp.masks, t, b };
            let vals = eval(g, &order, weights, sizes, &step);
            for (s, n) in g.next.iter().enumerate() {
                let v = widen(&vals[n.index()], sizes.hidden);
                next[s].row_mut(b).assign(&ndarray::ArrayView1::from(&v));
            }
        }
        states = next;
        y.index_axis_mut(Axis(0), t).assign(&states[g.sig.output]);
    }
    Ok(SeqOutputs { y, states, steps })
}

/// Backpropagation through time for L = sum(dy * y), reusing the forward run `out`.
pub fn backward(
    bwd: &Backward,
    weights: &[ArrayD<f64>],
    inp: &SeqInputs,
    out: &SeqOutputs,
    dy: &Array3<f64>,
) -> SeqGrads {
    let zeros: Vec<Array2<f64>> = inp.states.iter().map(|s| Array2::zeros(s.dim())).collect();
    backward_final(bwd, weights, inp, out, dy, &zeros)
}

/// [`backward`] for L = sum(dy * y) + sum over states s of sum(d_final[s] * final value of s):
/// a loss that also reads the final states (`d_final`: one [B, H] per state).
pub fn backward_final(
    bwd: &Backward,
    weights: &[ArrayD<f64>],
    inp: &SeqInputs,
    out: &SeqOutputs,
    dy: &Array3<f64>,
    d_final: &[Array2<f64>],
) -> SeqGrads {
    let g = &bwd.graph;
    let sizes = inp.sizes(g).expect("checked by forward");
    let (t_len, b_len, d) = inp.x.dim();
    let order = g.reachable(&bwd.roots());
    assert_eq!(d_final.len(), inp.states.len(), "one final-state gradient per state");
    let mut carry: Vec<Array2<f64>> = d_final.to_vec();
    let mut gx = Array3::zeros((t_len, b_len, d));
    let mut gp: Vec<ArrayD<f64>> = weights.iter().map(|w| ArrayD::zeros(w.shape())).collect();
    for t in (0..t_len).rev() {
        let mut new_carry: Vec<Array2<f64>> = carry.iter().map(|c| Array2::zeros(c.dim())).collect();
        for b in 0..b_len {
            // An ended example holds its state, y repeats it: the state adjoint passes through,
            // with dy.
            if !inp.runs(b, t) {
                for (s, c) in carry.iter().enumerate() {
                    new_carry[s].row_mut(b).assign(&c.row(b));
                }
                new_carry[g.sig.output].row_mut(b).scaled_add(1.0, &dy.index_axis(Axis(0), t).row(b));
                continue;
            }
            let x: Vec<f64> = inp.x.index_axis(Axis(0), t).row(b).to_vec();
            let prev: Vec<Vec<f64>> = out.steps[t].iter().map(|s| s.row(b).to_vec()).collect();
            // The adjoint of each next state: from the later steps, plus dy for the output.
            let adjoints: Vec<Vec<f64>> = (0..carry.len())
                .map(|s| {
                    let mut a = carry[s].row(b).to_vec();
                    if s == g.sig.output {
                        a.iter_mut().zip(dy.index_axis(Axis(0), t).row(b)).for_each(|(a, d)| *a += d);
                    }
                    a
                })
                .collect();
            let step = Step { x: &x, states: &prev, adjoints: &adjoints, masks: inp.masks, t, b };
            let vals = eval(g, &order, weights, sizes, &step);
            for (s, n) in bwd.d_state.iter().enumerate() {
                new_carry[s].row_mut(b).assign(&ndarray::ArrayView1::from(&widen(&vals[n.index()], sizes.hidden)));
            }
            let dx = widen(&vals[bwd.d_input.index()], d);
            gx.index_axis_mut(Axis(0), t).row_mut(b).assign(&ndarray::ArrayView1::from(&dx));
            accumulate_params(bwd, &vals, &mut gp);
        }
        carry = new_carry;
    }
    SeqGrads { x: gx, states: carry, params: gp }
}

/// Adds one example's step gradients to the parameter gradients.
fn accumulate_params(bwd: &Backward, vals: &[Vec<f64>], gp: &mut [ArrayD<f64>]) {
    for (p, grad) in bwd.d_params.iter().enumerate() {
        match grad {
            ParamGrad::Vector(n) => {
                let len = gp[p].len();
                for (acc, v) in gp[p].iter_mut().zip(widen(&vals[n.index()], len)) {
                    *acc += v;
                }
            }
            ParamGrad::Matrix(terms) => {
                let (rows, cols) = (gp[p].shape()[0], gp[p].shape()[1]);
                for (gn, vn) in terms {
                    let (gv, vv) = (widen(&vals[gn.index()], rows), widen(&vals[vn.index()], cols));
                    for r in 0..rows {
                        for c in 0..cols {
                            gp[p][[r, c]] += gv[r] * vv[c];
                        }
                    }
                }
            }
        }
    }
}

/// Checks that weights match the cell's parameters at these sizes.
pub fn check_weights<T>(g: &Graph, weights: &[ArrayD<T>], sizes: Sizes) -> Result<(), String> {
    if weights.len() != g.sig.params.len() {
        return Err(format!("{} weight tensors for {} parameters", weights.len(), g.sig.params.len()));
    }
    for (p, w) in g.sig.params.iter().zip(weights) {
        let want = p.dims(sizes.hidden, sizes.input);
        if w.shape() != want.as_slice() {
            return Err(format!("parameter `{}` has shape {:?}, expected {want:?}", p.name, w.shape()));
        }
    }
    Ok(())
}
