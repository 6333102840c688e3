//! Optimisers over a language model's parameters: plain SGD (the paper's) and Adam, both after
//! clipping the gradients' global norm.
//!
//! Parameters and gradients are visited as one list of tensors in a fixed order (see
//! [`LmParams::tensors_mut`]); optimiser state follows the same order, so it can be saved and
//! restored by name.

use super::lm::{LmParams, LmRunner};
use crate::runtime::par_chunks_mut;
use crate::runtime::pool::run_parts;

#[derive(Clone, Copy, Debug, PartialEq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// w -= lr * g
    Sgd,
    /// Adam (Kingma & Ba), beta1 0.9, beta2 0.999, eps 1e-8
    Adam,
}

const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;
const EPS: f32 = 1e-8;

/// An optimiser and its state.
#[derive(Clone, Debug, PartialEq)]
pub struct Optimizer {
    pub kind: OptimizerKind,
    /// Updates taken so far (Adam's bias correction).
    pub step: u64,
    /// Adam's first and second moments, one tensor per parameter tensor (empty for SGD).
    pub m: Vec<Vec<f32>>,
    pub v: Vec<Vec<f32>>,
}

/// What one update did.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Update {
    /// The gradients' global norm before clipping.
    pub grad_norm: f64,
    /// The factor the gradients were scaled by (1 when under the clip).
    pub clip_scale: f64,
}

impl Optimizer {
    pub fn new(kind: OptimizerKind, params: &LmParams) -> Optimizer {
        let zeros = || params.tensors().iter().map(|t| vec![0.0; t.len()]).collect();
        match kind {
            OptimizerKind::Sgd => Optimizer { kind, step: 0, m: vec![], v: vec![] },
            OptimizerKind::Adam => Optimizer { kind, step: 0, m: zeros(), v: zeros() },
        }
    }

    /// One update with the runner's gradients: scales them so their global norm is at most
    /// `clip` (no clipping when `clip` is 0), then steps. Returns the norm before clipping.
    pub fn update(&mut self, params: &mut LmParams, runner: &mut LmRunner<'_>, lr: f64, clip: f64) -> Update {
        let grad_norm = runner.grad_norm();
        self.update_with_norm(params, runner, lr, clip, grad_norm)
    }

    /// [`Optimizer::update`] given the gradients' global norm (the trainer has it already, from
    /// its check for non-finite values).
    pub fn update_with_norm(
        &mut self,
        params: &mut LmParams,
        runner: &mut LmRunner<'_>,
        lr: f64,
        clip: f64,
        grad_norm: f64,
    ) -> Update {
        let t0 = std::time::Instant::now();
        let _fp = crate::runtime::denormals::FlushDenormals::new(runner.flush_denormals);
        let clip_scale = if clip > 0.0 && grad_norm > clip { clip / grad_norm } else { 1.0 };
        self.step += 1;
        let threads = runner.threads;
        let touched = runner.touched().to_vec();
        let grads = runner.grad_tensors();
        let mut tensors = params.tensors_mut();
        let h = runner.shape.hidden;
        match self.kind {
            OptimizerKind::Sgd => {
                let step = (lr * clip_scale) as f32;
                for (i, (w, g)) in tensors.iter_mut().zip(&grads).enumerate() {
                    if i == 0 {
                        // The embedding: only the rows of this batch's symbols have gradients.
                        for &t in &touched {
                            let rows = t as usize * h..(t as usize + 1) * h;
                            for (a, b) in w[rows.clone()].iter_mut().zip(&g[rows]) {
                                *a -= step * b;
                            }
                        }
                        continue;
                    }
                    par_chunks_mut(w, 1, threads, |from, chunk| {
                        for (a, b) in chunk.iter_mut().zip(&g[from..]) {
                            *a -= step * b;
                        }
                    });
                }
            }
            OptimizerKind::Adam => {
                let t = self.step as i32;
                let c1 = 1.0 - BETA1.powi(t);
                let c2 = 1.0 - BETA2.powi(t);
                // lr * mhat / (sqrt(vhat) + eps) with mhat = m / c1 and vhat = v / c2.
                let step = (lr / c1) as f32;
                let inv_c2 = (1.0 / c2) as f32;
                let (b1, b2) = (BETA1 as f32, BETA2 as f32);
                let scale = clip_scale as f32;
                for (((w, g), m), v) in tensors.iter_mut().zip(&grads).zip(&mut self.m).zip(&mut self.v) {
                    let per = w.len().div_ceil(threads.max(1)).max(1);
                    let mut parts: Vec<_> =
                        w.chunks_mut(per).zip(m.chunks_mut(per)).zip(v.chunks_mut(per)).zip(g.chunks(per)).collect();
                    run_parts(&mut parts, |_, (((w, m), v), g)| {
                        for k in 0..w.len() {
                            let gk = g[k] * scale;
                            m[k] = b1 * m[k] + (1.0 - b1) * gk;
                            v[k] = b2 * v[k] + (1.0 - b2) * gk * gk;
                            w[k] -= step * m[k] / ((v[k] * inv_c2).sqrt() + EPS);
                        }
                    });
                }
            }
        }
        runner.times.sgd += t0.elapsed();
        Update { grad_norm, clip_scale }
    }
}

/// The Euclidean norm of `slices` together, on `threads` threads. They are cut into fixed blocks,
/// each summed on some thread and added in block order, so the thread count does not change the
/// result.
pub(super) fn norm(slices: &[&[f32]], threads: usize) -> f64 {
    const BLOCK: usize = 1 << 14;
    let blocks: Vec<&[f32]> = slices.iter().flat_map(|s| s.chunks(BLOCK)).collect();
    let mut sums = vec![0f64; blocks.len()];
    let per = blocks.len().div_ceil(threads.max(1)).max(1);
    let mut parts: Vec<(&[&[f32]], &mut [f64])> = blocks.chunks(per).zip(sums.chunks_mut(per)).collect();
    crate::runtime::pool::run_parts(&mut parts, |_, (blocks, sums)| {
        for (b, s) in blocks.iter().zip(sums.iter_mut()) {
            *s = sum_of_squares(b);
        }
    });
    sums.iter().sum::<f64>().sqrt()
}

/// The sum of squares of `v`: eight f32 lanes per run of 1024 (vectorisable), runs summed in
/// f64, so it is fast and still accurate on long gradients.
fn sum_of_squares(v: &[f32]) -> f64 {
    v.chunks(1024)
        .map(|run| {
            let mut lanes = [0f32; 8];
            let mut it = run.chunks_exact(8);
            for c in &mut it {
                for (l, x) in lanes.iter_mut().zip(c) {
                    *l += x * x;
                }
            }
            let tail: f32 = it.remainder().iter().map(|x| x * x).sum();
            lanes.iter().map(|&l| f64::from(l)).sum::<f64>() + f64::from(tail)
        })
        .sum()
}
