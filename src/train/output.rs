//! The language model's output layer: logits = W y + b over all T*B rows as one GEMM, then one
//! softmax pass per row (`runtime::softmax`) that leaves the gradient of the weighted mean
//! cross-entropy in place of the logits and sums its columns into the bias gradient, then the
//! two gradient GEMMs.
//!
//! Rows carry loss weights (0 or 1): a sequence task counts only its answers, so rows of weight 0
//! skip the softmax and get a zero gradient.

use super::lm::{LmParams, LmRunner};
use crate::runtime::gemm::{Strided, gemm_strided, transpose};
use crate::runtime::pool::run_parts;
use crate::tasks::Sets;

/// Per-row results of the softmax pass, and per-thread column sums.
pub(super) struct SoftmaxTables {
    maxes: Vec<f32>,
    sums: Vec<f32>,
    target_logits: Vec<f32>,
    /// Per row: cross-entropy (weighted rows only) and whether the top logit is the target
    /// (when predictions are asked for).
    pub(super) row_loss: Vec<f32>,
    pub(super) row_right: Vec<bool>,
    /// Per part, [V]: column sums of the part's rows of d(loss)/d(logits).
    colsums: Vec<Vec<f32>>,
    /// Sigmoid outputs (music): per row, (true pos, false pos, false neg) when predicting, and
    /// a [V] scratch of the row's targets.
    pub(super) row_hits: Vec<[u32; 3]>,
    target_mask: Vec<f32>,
}

impl SoftmaxTables {
    pub(super) fn new(rows: usize, vocab: usize, threads: usize) -> SoftmaxTables {
        SoftmaxTables {
            maxes: vec![0.0; rows],
            sums: vec![0.0; rows],
            target_logits: vec![0.0; rows],
            row_loss: vec![0.0; rows],
            row_right: vec![false; rows],
            colsums: (0..threads.max(1)).map(|_| vec![0.0; vocab]).collect(),
            row_hits: vec![[0; 3]; rows],
            target_mask: vec![0.0; vocab],
        }
    }
}

/// One thread's rows of the softmax pass and its own slots of the per-row tables.
struct Part<'a> {
    logits: &'a mut [f32],
    maxes: &'a mut [f32],
    sums: &'a mut [f32],
    target_logits: &'a mut [f32],
    right: &'a mut [bool],
    targets: &'a [u32],
    weights: Option<&'a [f32]>,
    colsums: &'a mut [f32],
}

/// What the output layer reads: the top layer's output, after dropout when it is on.
fn top_output<'a>(
    dropped: bool,
    top_dropped: &'a [f32],
    top: &'a crate::runtime::Buffers,
    e: &crate::runtime::Engine,
    n: usize,
) -> &'a [f32] {
    if dropped { &top_dropped[..n] } else { &top.output(e)[..n] }
}

impl LmRunner<'_> {
    /// logits = top × out_wᵀ for every row (reading out_w [V, H] through a transposed view);
    /// returns the rows counted, the loss scale 1/counted, and when the GEMM ended.
    fn logits(&mut self, p: &LmParams, weights: Option<&[f32]>) -> (f64, f32, std::time::Instant) {
        let s = self.shape;
        let (v, h, rows) = (s.vocab, s.hidden, self.rows());
        let t0 = std::time::Instant::now();
        let top = top_output(self.masks_live, &self.top_dropped, &self.layers[s.layers - 1], self.engine, rows * h);
        let wt = Strided::transposed(&p.out_w, h, v);
        gemm_strided(&mut self.logits[..rows * v], v, 1, Strided::rows(top, rows, h), wt, false, self.threads);
        let t1 = std::time::Instant::now();
        self.times.logits += t1 - t0;
        let counted = weights.map_or(rows as f64, |w| w.iter().filter(|&&x| x > 0.0).count() as f64);
        let scale = if counted > 0.0 { (1.0 / counted) as f32 } else { 0.0 };
        (counted, scale, t1)
    }

    /// Logits, softmax and the mean cross-entropy over the rows of weight 1 (all rows without
    /// `weights`); afterwards `logits` holds d(loss)/d(logits), and with `predict` each row's
    /// `row_right`. Returns the mean loss (0 when no row counts).
    pub(super) fn output_layer(
        &mut self,
        p: &LmParams,
        targets: &[u32],
        weights: Option<&[f32]>,
        predict: bool,
    ) -> f64 {
        let (v, rows) = (self.shape.vocab, self.rows());
        assert!(targets.len() == rows && weights.is_none_or(|w| w.len() == rows), "one target and weight per row");
        let (counted, scale, t1) = self.logits(p, weights);
        let per = rows.div_ceil(self.tables.colsums.len()).max(1);
        let (softmax, bias) = (&self.softmax, &p.out_b);
        let t = &mut self.tables;
        let mut parts: Vec<Part<'_>> = self.logits[..rows * v]
            .chunks_mut(per * v)
            .zip(t.maxes.chunks_mut(per))
            .zip(t.sums.chunks_mut(per))
            .zip(t.target_logits.chunks_mut(per))
            .zip(t.row_right.chunks_mut(per))
            .zip(targets.chunks(per))
            .zip(t.colsums.iter_mut())
            .enumerate()
            .map(|(i, ((((((logits, maxes), sums), target_logits), right), targets), colsums))| Part {
                logits,
                maxes,
                sums,
                target_logits,
                right,
                targets,
                weights: weights.map(|w| &w[i * per..i * per + targets.len()]),
                colsums,
            })
            .collect();
        let used = parts.len();
        run_parts(&mut parts, |_, part| {
            part.colsums.fill(0.0);
            for (r, &target) in part.targets.iter().enumerate() {
                let row = &mut part.logits[r * v..(r + 1) * v];
                if part.weights.is_some_and(|w| w[r] <= 0.0) {
                    row.fill(0.0);
                    part.right[r] = false;
                    continue;
                }
                let t = target as usize;
                part.target_logits[r] = row[t] + bias[t];
                if predict {
                    // The prediction is the largest biased logit; ties go to the smallest index.
                    let best = (0..v).fold(0, |b, c| if row[c] + bias[c] > row[b] + bias[b] { c } else { b });
                    part.right[r] = best == t;
                }
                let (mx, sm) = (&mut part.maxes[r..r + 1], &mut part.sums[r..r + 1]);
                softmax.run(row, bias, 1, v, v, scale, mx, sm, part.colsums);
            }
        });
        drop(parts);
        for c in &mut t.colsums[used..] {
            c.fill(0.0);
        }
        self.times.softmax += t1.elapsed();
        let mut loss = 0.0f64;
        for (r, &target) in targets.iter().enumerate() {
            if weights.is_some_and(|w| w[r] <= 0.0) {
                t.row_loss[r] = 0.0;
                continue;
            }
            let ce = f64::from(t.maxes[r]) + f64::from(t.sums[r]).ln() - f64::from(t.target_logits[r]);
            t.row_loss[r] = ce as f32;
            loss += ce;
            self.logits[r * v + target as usize] -= scale;
            t.colsums[0][target as usize] -= scale;
        }
        if counted > 0.0 { loss / counted } else { 0.0 }
    }

    /// Logits and V independent sigmoids (music's notes) with the Bernoulli log-loss summed over
    /// the V outputs of a row and averaged over the rows of weight 1; afterwards `logits` holds
    /// d(loss)/d(logits) and column sums are in part 0, as the softmax leaves them. With
    /// `predict`, each row's note counts go to `row_hits`. Returns the mean loss.
    pub(super) fn sigmoid_layer(
        &mut self,
        p: &LmParams,
        targets: &Sets,
        weights: Option<&[f32]>,
        predict: bool,
    ) -> f64 {
        let (v, rows) = (self.shape.vocab, self.rows());
        assert!(targets.rows() == rows && weights.is_none_or(|w| w.len() == rows), "one target and weight per row");
        let (counted, scale, t1) = self.logits(p, weights);
        let t = &mut self.tables;
        for c in &mut t.colsums {
            c.fill(0.0);
        }
        let mut loss = 0.0f64;
        for r in 0..rows {
            let row = &mut self.logits[r * v..(r + 1) * v];
            if weights.is_some_and(|w| w[r] <= 0.0) {
                row.fill(0.0);
                t.row_loss[r] = 0.0;
                t.row_hits[r] = [0; 3];
                continue;
            }
            for &u in targets.row(r) {
                t.target_mask[usize::from(u)] = 1.0;
            }
            let (mut row_loss, mut hits) = (0.0f64, [0u32; 3]);
            for ((z, &b), (y, c)) in row.iter_mut().zip(&p.out_b).zip(t.target_mask.iter().zip(&mut t.colsums[0])) {
                let z_b = *z + b;
                // log-loss = softplus(z) - y z, and sigmoid(z), from one exp(-|z|).
                let e = (-z_b.abs()).exp();
                row_loss += f64::from(z_b.max(0.0) + e.ln_1p() - y * z_b);
                let prob = if z_b >= 0.0 { 1.0 / (1.0 + e) } else { e / (1.0 + e) };
                *z = (prob - y) * scale;
                *c += *z;
                if predict {
                    let (on, sounding) = (z_b > 0.0, *y > 0.0);
                    hits[0] += u32::from(on && sounding);
                    hits[1] += u32::from(on && !sounding);
                    hits[2] += u32::from(!on && sounding);
                }
            }
            for &u in targets.row(r) {
                t.target_mask[usize::from(u)] = 0.0;
            }
            t.row_loss[r] = row_loss as f32;
            t.row_hits[r] = hits;
            t.row_right[r] = false;
            loss += row_loss;
        }
        self.times.softmax += t1.elapsed();
        if counted > 0.0 { loss / counted } else { 0.0 }
    }

    /// The output layer's gradients from d(loss)/d(logits), and d(loss)/d(top output) in `dy`.
    pub(super) fn output_backward(&mut self, p: &LmParams) {
        let s = self.shape;
        let (v, h, rows) = (s.vocab, s.hidden, self.rows());
        let t0 = std::time::Instant::now();
        // dy = dlogits × out_w; d(out_w) = dlogitsᵀ × top, formed as its transpose (topᵀ ×
        // dlogits: the gemm crate runs this orientation ~25% faster) and then transposed.
        let dl = Strided::rows(&self.logits[..rows * v], rows, v);
        gemm_strided(&mut self.dy[..rows * h], h, 1, dl, Strided::rows(&p.out_w, v, h), false, self.threads);
        let top = top_output(self.masks_live, &self.top_dropped, &self.layers[s.layers - 1], self.engine, rows * h);
        let mut grad_t = std::mem::take(&mut self.out_w_grad_t);
        gemm_strided(&mut grad_t, v, 1, Strided::transposed(top, h, rows), dl, false, self.threads);
        transpose(&grad_t, h, v, &mut self.grads.out_w, self.threads);
        self.out_w_grad_t = grad_t;
        if self.masks_live {
            for (d, m) in self.dy[..rows * h].iter_mut().zip(&self.masks[s.layers]) {
                *d *= m;
            }
        }
        // d(out_b): the softmax parts' column sums, added in part order.
        let t = &self.tables;
        self.grads.out_b.copy_from_slice(&t.colsums[0]);
        for part in &t.colsums[1..] {
            for (g, c) in self.grads.out_b.iter_mut().zip(part) {
                *g += c;
            }
        }
        self.times.output_grads += t0.elapsed();
    }
}
