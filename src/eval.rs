//! The `cellc eval` interop contract: named tensors in, named tensors out.
//!
//! Weights: one f32 tensor per parameter, named as in the cell, a matrix [rows, cols] as PyTorch's
//! `Linear` stores it (y = W v), a vector [len]. Inputs: `x` [T, B, D], each state [B, H], and
//! with gradients `dy` [T, B, H]; optionally `lengths` [B] for a variable-length batch (example
//! b runs its first lengths[b] steps, longest first; then its state stays as it was and y
//! repeats it). Outputs: `y` [T, B, H], each final state [B, H], and with
//! gradients of L = sum(dy * y): `grad.x`, `grad.<state>` and `grad.<param>`. With drawn masks
//! (a training step's), also `mask.<k>` [T, B, size] for each regulariser's mask, in the order
//! the cell computes them, so another framework can replay the same step. External tools rely
//! on exactly these names and shapes.

use ndarray::{Array2, Array3, ArrayD, Ix2, Ix3};

use crate::autodiff::Backward;
use crate::check::{Dim, ParamKind};
use crate::interp::{self, SeqInputs};
use crate::ir::{Graph, MaskDraw};
use crate::tensors::TensorSet;

/// Which evaluator computes the numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Engine {
    /// The f64 reference interpreter.
    Interp,
    /// Cranelift-compiled f32 kernels.
    Jit,
}

/// Named inputs of one evaluation, and the names of the files they came from (for errors).
pub struct Request {
    pub weights: TensorSet,
    pub weights_name: String,
    pub inputs: TensorSet,
    pub inputs_name: String,
    pub grad: bool,
    /// The regularisers' masks: their expectation (evaluation) or drawn from a seed (a
    /// training step).
    pub masks: MaskDraw,
}

/// Evaluates the cell `fwd` (with its backward step `bwd` when gradients are asked for).
pub fn evaluate(fwd: &Graph, bwd: &Backward, req: Request, engine: Engine) -> Result<TensorSet, String> {
    let Request { mut weights, weights_name, mut inputs, inputs_name, grad, masks } = req;
    let states = &fwd.sig.states;
    let x = inputs.take_rank("x", &["T", "B", "D"], &inputs_name)?;
    let (t, b, d) = (x.shape()[0], x.shape()[1], x.shape()[2]);
    let first = inputs.take_rank(&states[0], &["B", "H"], &inputs_name)?;
    let h = first.shape()[1];
    if first.shape()[0] != b {
        return Err(format!(
            "{inputs_name}: tensor `{}` has shape {:?}, expected [B={b}, H]",
            states[0],
            first.shape()
        ));
    }
    let mut state_values = vec![first];
    for s in &states[1..] {
        state_values.push(inputs.take(s, &[b, h], &["B", "H"], &inputs_name)?);
    }
    let dy = if grad { Some(inputs.take("dy", &[t, b, h], &["T", "B", "H"], &inputs_name)?) } else { None };
    let lengths = match inputs.tensors.contains_key("lengths") {
        true => Some(lengths(inputs.take("lengths", &[b], &["B"], &inputs_name)?, &inputs_name)?),
        false => None,
    };
    let allowed = format!(
        "the inputs are x, {}{}",
        states.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", "),
        if grad { ", dy and lengths" } else { ", lengths, and dy with --grad" }
    );
    inputs.expect_empty(&inputs_name, &allowed)?;
    if fwd.sig.d_equals_h && d != h {
        return Err(format!(
            "{inputs_name}: cell `{}` needs input size D equal to hidden size H; x has D = {d}, the states H = {h}",
            fwd.sig.name
        ));
    }
    let mut params = vec![];
    for p in &fwd.sig.params {
        let labels: Vec<&str> = match p.kind {
            ParamKind::Matrix { rows, cols } => vec![dim_label(rows), dim_label(cols)],
            ParamKind::Vector { len } => vec![dim_label(len)],
        };
        params.push(weights.take(&p.name, &p.dims(h, d), &labels, &weights_name)?);
    }
    let names: Vec<&str> = fwd.sig.params.iter().map(|p| p.name.as_str()).collect();
    weights.expect_empty(&weights_name, &format!("the parameters of `{}` are {}", fwd.sig.name, names.join(", ")))?;

    let mut out = match engine {
        Engine::Interp => run_interp(fwd, bwd, &params, Run { x, states: state_values, dy, masks, lengths })?,
        Engine::Jit => run_jit(fwd, &params, Run { x, states: state_values, dy, masks, lengths })?,
    };
    if let MaskDraw::Seed(_) = masks {
        for (k, info) in fwd.sig.masks.iter().enumerate() {
            let n = if info.dim == Dim::H { h } else { d };
            let values = ArrayD::from_shape_fn(vec![t, b, n], |i| info.row(k, masks, i[0], i[1]).at(i[2]) as f32);
            out.tensors.insert(format!("mask.{k}"), values);
        }
    }
    Ok(out)
}

/// One run's inputs, as read from the request.
struct Run {
    x: ArrayD<f32>,
    states: Vec<ArrayD<f32>>,
    dy: Option<ArrayD<f32>>,
    masks: MaskDraw,
    lengths: Option<Vec<usize>>,
}

/// `lengths` as step counts: whole numbers, longest first.
fn lengths(values: ArrayD<f32>, what: &str) -> Result<Vec<usize>, String> {
    let out: Vec<usize> = values
        .iter()
        .map(|&v| {
            if v >= 0.0 && v.fract() == 0.0 && v < 1e9 {
                Ok(v as usize)
            } else {
                Err(format!("{what}: `lengths` holds {v}, not a whole number of steps"))
            }
        })
        .collect::<Result<_, _>>()?;
    if out.windows(2).any(|w| w[0] < w[1]) {
        return Err(format!("{what}: `lengths` must come longest first (sort the batch's examples by length)"));
    }
    Ok(out)
}

fn dim_label(d: Dim) -> &'static str {
    match d {
        Dim::H => "H",
        Dim::D => "D",
    }
}

fn to64(a: &ArrayD<f32>) -> ArrayD<f64> {
    a.mapv(f64::from)
}

fn to32<D: ndarray::Dimension>(a: &ndarray::Array<f64, D>) -> ArrayD<f32> {
    a.mapv(|v| v as f32).into_dyn()
}

fn run_interp(fwd: &Graph, bwd: &Backward, params: &[ArrayD<f32>], run: Run) -> Result<TensorSet, String> {
    let Run { x, states, dy, masks, lengths } = run;
    let weights: Vec<ArrayD<f64>> = params.iter().map(to64).collect();
    let x: Array3<f64> = to64(&x).into_dimensionality::<Ix3>().map_err(|e| e.to_string())?;
    let states: Vec<Array2<f64>> = states
        .iter()
        .map(|s| to64(s).into_dimensionality::<Ix2>().map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    let inputs = SeqInputs { x, states, masks, lengths };
    let out = interp::forward(fwd, &weights, &inputs)?;
    let mut result = TensorSet::default();
    result.tensors.insert("y".into(), to32(&out.y));
    for (s, name) in fwd.sig.states.iter().enumerate() {
        result.tensors.insert(name.clone(), to32(&out.states[s]));
    }
    if let Some(dy) = dy {
        let dy: Array3<f64> = to64(&dy).into_dimensionality::<Ix3>().map_err(|e| e.to_string())?;
        let grads = interp::backward(bwd, &weights, &inputs, &out, &dy);
        result.tensors.insert("grad.x".into(), to32(&grads.x));
        for (s, name) in fwd.sig.states.iter().enumerate() {
            result.tensors.insert(format!("grad.{name}"), to32(&grads.states[s]));
        }
        for (p, info) in fwd.sig.params.iter().enumerate() {
            result.tensors.insert(format!("grad.{}", info.name), to32(&grads.params[p]));
        }
    }
    result.metadata.insert("cell".into(), fwd.sig.name.clone());
    result.metadata.insert("engine".into(), "interp".into());
    Ok(result)
}

fn run_jit(fwd: &Graph, params: &[ArrayD<f32>], run: Run) -> Result<TensorSet, String> {
    let Run { x, states, dy, masks, lengths } = run;
    let engine = crate::runtime::Engine::from_graph(fwd.clone())?;
    let (t, b, d) = (x.shape()[0], x.shape()[1], x.shape()[2]);
    let h = states[0].shape()[1];
    let sizes = crate::runtime::Sizes { hidden: h, input: d, batch: b, steps: t };
    let mut bufs = engine.buffers(sizes)?;
    bufs.set_masks(masks);
    bufs.set_lengths(lengths.as_deref())?;
    let flat = |a: &ArrayD<f32>| a.iter().copied().collect::<Vec<f32>>();
    let weights: Vec<Vec<f32>> = params.iter().map(flat).collect();
    bufs.input_mut(&engine).copy_from_slice(&flat(&x));
    for (s, st) in states.iter().enumerate() {
        bufs.initial_state_mut(&engine, s).copy_from_slice(&flat(st));
    }
    let threads = 1;
    engine.forward(&mut bufs, &weights, threads)?;
    let arr = |shape: Vec<usize>, data: &[f32]| ArrayD::from_shape_vec(shape, data.to_vec()).expect("sizes match");
    let mut result = TensorSet::default();
    result.tensors.insert("y".into(), arr(vec![t, b, h], bufs.output(&engine)));
    for (s, name) in fwd.sig.states.iter().enumerate() {
        result.tensors.insert(name.clone(), arr(vec![b, h], bufs.final_state(&engine, s)));
    }
    if let Some(dy) = dy {
        let mut grads: Vec<Vec<f32>> = engine.param_lens(sizes).into_iter().map(|n| vec![0.0; n]).collect();
        engine.backward(&mut bufs, &weights, &flat(&dy), &mut grads, threads)?;
        result.tensors.insert("grad.x".into(), arr(vec![t, b, d], bufs.input_grad(&engine)));
        for (s, name) in fwd.sig.states.iter().enumerate() {
            result.tensors.insert(format!("grad.{name}"), arr(vec![b, h], bufs.initial_state_grad(&engine, s)));
        }
        for (p, info) in fwd.sig.params.iter().enumerate() {
            result.tensors.insert(format!("grad.{}", info.name), arr(info.dims(h, d), &grads[p]));
        }
    }
    result.metadata.insert("cell".into(), fwd.sig.name.clone());
    result.metadata.insert("engine".into(), "jit".into());
    Ok(result)
}
