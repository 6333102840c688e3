//! A recurrent language model around a compiled cell: an embedding of input symbols to H, L
//! stacked layers of the cell, and a softmax output layer with cross-entropy at every step.
//!
//! The output layer is a GEMM over all T*B rows, then one JIT-compiled pass per row (bias, max,
//! exp, sum, scale) that leaves the gradient of the mean cross-entropy in place of the logits.

use crate::codegen::softmax::Softmax;
use crate::runtime::gemm::{Strided, gemm_strided, transpose};
use crate::runtime::pool::run_parts;
use crate::runtime::{Buffers, Engine, Sizes, par_chunks_mut};

/// Sizes of a language model and of one batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LmShape {
    pub vocab: usize,
    pub hidden: usize,
    pub layers: usize,
    pub batch: usize,
    pub steps: usize,
}

/// The parameters of a language model.
#[derive(Clone, Debug, PartialEq)]
pub struct LmParams {
    /// [V, H]: row v is the input vector of symbol v.
    pub embed: Vec<f32>,
    /// Per layer, per cell parameter (the cell's order), row-major.
    pub cells: Vec<Vec<Vec<f32>>>,
    /// [V, H], PyTorch's `Linear` layout: logits = W h + b.
    pub out_w: Vec<f32>,
    pub out_b: Vec<f32>,
}

impl LmParams {
    /// Initial parameters: the cell's init rules in each layer (each layer its own seed stream),
    /// the embedding normal(0, 1) as PyTorch's `nn.Embedding`, the output matrix uniform in
    /// ±scale/sqrt(H) and its bias zero.
    pub fn init(engine: &Engine, shape: LmShape, init_scale: f64, seed: u64) -> LmParams {
        let h = shape.hidden;
        let sig = &engine.forward.sig;
        let cells = (0..shape.layers)
            .map(|l| {
                let values = crate::init::initialise(sig, h, h, init_scale, seed.wrapping_add(1000 * l as u64 + 1));
                values.into_iter().map(|a| a.iter().map(|v| *v as f32).collect()).collect()
            })
            .collect();
        let mut rng = crate::rng::Rng::new(seed).fork(crate::init::name_hash("embed"));
        let embed = (0..shape.vocab * h).map(|_| rng.normal() as f32).collect();
        let mut rng = crate::rng::Rng::new(seed).fork(crate::init::name_hash("out.W"));
        let bound = init_scale / (h as f64).sqrt();
        let out_w = (0..shape.vocab * h).map(|_| rng.uniform(-bound, bound) as f32).collect();
        LmParams { embed, cells, out_w, out_b: vec![0.0; shape.vocab] }
    }
}

/// Gradients of the dense parameters after a backward pass (the embedding's gradient is the
/// input gradient of the first layer, applied row by row).
#[derive(Clone, Debug)]
pub struct LmGrads {
    pub cells: Vec<Vec<Vec<f32>>>,
    pub out_w: Vec<f32>,
    pub out_b: Vec<f32>,
}

/// Wall time of the parts of language-model steps outside the cell, accumulated.
#[derive(Clone, Copy, Debug, Default)]
pub struct LmTimes {
    pub embed: std::time::Duration,
    pub logits: std::time::Duration,
    pub softmax: std::time::Duration,
    pub output_grads: std::time::Duration,
    pub sgd: std::time::Duration,
}

/// One thread's rows of the softmax pass and its own slots of the per-part tables.
struct SoftmaxPart<'a> {
    logits: &'a mut [f32],
    maxes: &'a mut [f32],
    sums: &'a mut [f32],
    target_logits: &'a mut [f32],
    targets: &'a [u32],
    colsums: &'a mut [f32],
    correct: &'a mut usize,
}

/// Everything one batch shape needs, allocated once.
pub struct LmRunner<'e> {
    pub times: LmTimes,
    pub engine: &'e Engine,
    pub shape: LmShape,
    pub threads: usize,
    softmax: Softmax,
    layers: Vec<Buffers>,
    /// [T*B, V]: logits, then (after the softmax pass) the gradient of the loss.
    logits: Vec<f32>,
    maxes: Vec<f32>,
    sums: Vec<f32>,
    target_logits: Vec<f32>,
    /// Per softmax part, [V]: column sums of the part's rows of d(loss)/d(logits).
    colsums: Vec<Vec<f32>>,
    /// Per softmax part: rows whose top logit is the target (when counted).
    correct: Vec<usize>,
    /// [H, V]: the output matrix's gradient transposed, as its GEMM leaves it.
    out_w_grad_t: Vec<f32>,
    /// [T*B, H]: the gradient flowing into the top layer's output, then down the layers.
    dy: Vec<f32>,
    /// Whether the first layer runs per vocabulary entry (V well below T*B; see
    /// `Engine::forward_embedded`), and then the embedding's gradient, [V, H].
    embedded: bool,
    /// [V, H]; only the rows of `touched` are meaningful (the others stay zero).
    pub dembed: Vec<f32>,
    /// The distinct symbols of the last batch, ascending.
    touched: Vec<u32>,
    pub grads: LmGrads,
}

impl<'e> LmRunner<'e> {
    pub fn new(engine: &'e Engine, shape: LmShape, threads: usize) -> Result<LmRunner<'e>, String> {
        LmRunner::with_options(engine, shape, threads, true)
    }

    /// As [`LmRunner::new`]; `allow_embedded` false keeps the first layer per token always.
    pub fn with_options(
        engine: &'e Engine,
        shape: LmShape,
        threads: usize,
        allow_embedded: bool,
    ) -> Result<LmRunner<'e>, String> {
        let sizes = Sizes { hidden: shape.hidden, input: shape.hidden, batch: shape.batch, steps: shape.steps };
        let layers = (0..shape.layers).map(|_| engine.buffers(sizes)).collect::<Result<Vec<_>, _>>()?;
        let rows = shape.steps * shape.batch;
        let lens = engine.param_lens(sizes);
        Ok(LmRunner {
            times: LmTimes::default(),
            engine,
            shape,
            threads,
            softmax: Softmax::compile()?,
            layers,
            logits: vec![0.0; rows * shape.vocab],
            maxes: vec![0.0; rows],
            sums: vec![0.0; rows],
            target_logits: vec![0.0; rows],
            colsums: (0..threads.clamp(1, rows.max(1))).map(|_| vec![0.0; shape.vocab]).collect(),
            correct: vec![0; threads.clamp(1, rows.max(1))],
            dy: vec![0.0; rows * shape.hidden],
            out_w_grad_t: vec![0.0; shape.hidden * shape.vocab],
            embedded: allow_embedded && engine.supports_embedding() && 2 * shape.vocab <= rows,
            dembed: vec![0.0; shape.vocab * shape.hidden],
            touched: vec![],
            grads: LmGrads {
                cells: (0..shape.layers).map(|_| lens.iter().map(|&n| vec![0.0; n]).collect()).collect(),
                out_w: vec![0.0; shape.vocab * shape.hidden],
                out_b: vec![0.0; shape.vocab],
            },
        })
    }

    /// Forward through every layer from `tokens` ([T, B]); states start at zero, or (with
    /// `carry`) at the final states of the previous batch (truncated BPTT over a stream).
    fn forward_layers(&mut self, p: &LmParams, tokens: &[u32], carry: bool) {
        let h = self.shape.hidden;
        let e = self.engine;
        if !self.embedded {
            let t0 = std::time::Instant::now();
            let x = self.layers[0].input_mut(e);
            for (row, &tok) in tokens.iter().enumerate() {
                let t = tok as usize;
                x[row * h..(row + 1) * h].copy_from_slice(&p.embed[t * h..(t + 1) * h]);
            }
            self.times.embed += t0.elapsed();
        }
        for l in 0..self.shape.layers {
            if l > 0 {
                let (below, above) = self.layers.split_at_mut(l);
                above[0].input_mut(e).copy_from_slice(below[l - 1].output(e));
            }
            if carry {
                self.layers[l].carry_states(e);
            } else {
                self.layers[l].zero_states(e);
            }
            if l == 0 && self.embedded {
                e.forward_embedded(&mut self.layers[0], &p.cells[0], &p.embed, tokens, self.threads);
            } else {
                e.forward(&mut self.layers[l], &p.cells[l], self.threads);
            }
        }
    }

    /// Logits, softmax and the mean cross-entropy over all T*B rows; afterwards `logits` holds
    /// d(loss)/d(logits). Returns (mean loss, number of rows whose top logit is the target, if
    /// `count_correct`).
    fn output_layer(&mut self, p: &LmParams, targets: &[u32], count_correct: bool) -> (f64, usize) {
        let s = self.shape;
        let (v, h, rows) = (s.vocab, s.hidden, s.steps * s.batch);
        let t0 = std::time::Instant::now();
        let top = self.layers[s.layers - 1].output(self.engine);
        // logits = top × out_wᵀ, reading out_w ([V, H]) through a transposed view.
        let wt = Strided::transposed(&p.out_w, h, v);
        gemm_strided(&mut self.logits, v, 1, Strided::rows(top, rows, h), wt, false, self.threads);
        let t1 = std::time::Instant::now();
        self.times.logits += t1 - t0;
        let scale = 1.0 / rows as f32;
        // Each thread takes whole rows, with their own slots of the max, sum, target-logit and
        // correct-prediction tables; the target logit is read before the row is overwritten.
        let per = rows.div_ceil(self.colsums.len()).max(1);
        let (softmax, bias) = (&self.softmax, &p.out_b);
        let mut parts: Vec<SoftmaxPart<'_>> = self
            .logits
            .chunks_mut(per * v)
            .zip(self.maxes.chunks_mut(per))
            .zip(self.sums.chunks_mut(per))
            .zip(self.target_logits.chunks_mut(per))
            .zip(targets.chunks(per))
            .zip(self.colsums.iter_mut().zip(self.correct.iter_mut()))
            .map(|(((((logits, maxes), sums), target_logits), targets), (colsums, correct))| SoftmaxPart {
                logits,
                maxes,
                sums,
                target_logits,
                targets,
                colsums,
                correct,
            })
            .collect();
        let used = parts.len();
        run_parts(&mut parts, |_, part| {
            let mut correct = 0;
            for (r, &t) in part.targets.iter().enumerate() {
                let row = &part.logits[r * v..(r + 1) * v];
                part.target_logits[r] = row[t as usize] + bias[t as usize];
                if count_correct {
                    // The prediction is the largest biased logit; ties go to the smallest index.
                    let best = (0..v).fold(0, |b, c| if row[c] + bias[c] > row[b] + bias[b] { c } else { b });
                    correct += usize::from(best == t as usize);
                }
            }
            *part.correct = correct;
            part.colsums.fill(0.0);
            let n = part.targets.len();
            softmax.run(part.logits, bias, n, v, v, scale, part.maxes, part.sums, part.colsums);
        });
        drop(parts);
        self.colsums[used..].iter_mut().for_each(|c| c.fill(0.0));
        let correct = self.correct[..used].iter().sum();
        self.times.softmax += t1.elapsed();
        let mut loss = 0.0f64;
        for (r, &t) in targets.iter().enumerate() {
            let lse = f64::from(self.maxes[r]) + f64::from(self.sums[r]).ln();
            loss += lse - f64::from(self.target_logits[r]);
            self.logits[r * v + t as usize] -= scale;
            self.colsums[0][t as usize] -= scale;
        }
        (loss / rows as f64, correct)
    }

    /// Mean cross-entropy and correct predictions of a batch, without training.
    pub fn evaluate(&mut self, p: &LmParams, tokens: &[u32], targets: &[u32]) -> (f64, usize) {
        self.forward_layers(p, tokens, false);
        self.output_layer(p, targets, true)
    }

    /// One step of plain SGD on one batch (states start at zero): forward, loss, BPTT, update.
    /// Returns the mean cross-entropy before the update.
    pub fn train_step(&mut self, p: &mut LmParams, tokens: &[u32], targets: &[u32], lr: f32) -> f64 {
        let loss = self.forward_backward(p, tokens, targets, false);
        self.sgd(p, lr);
        loss
    }

    /// Forward and backward on one batch: the mean cross-entropy, and every gradient in
    /// `self.grads` and `self.dembed`. With `carry`, states start where the last batch ended.
    pub fn forward_backward(&mut self, p: &LmParams, tokens: &[u32], targets: &[u32], carry: bool) -> f64 {
        self.forward_layers(p, tokens, carry);
        let (loss, _) = self.output_layer(p, targets, false);
        self.backward(p, tokens);
        loss
    }

    /// The Euclidean norm of all gradients together (the embedding's included).
    pub fn grad_norm(&self) -> f64 {
        let h = self.shape.hidden;
        let sq = |v: &[f32]| v.iter().map(|x| f64::from(*x) * f64::from(*x)).sum::<f64>();
        let mut total = sq(&self.grads.out_w) + sq(&self.grads.out_b);
        for layer in &self.grads.cells {
            total += layer.iter().map(|g| sq(g)).sum::<f64>();
        }
        for &t in &self.touched {
            let t = t as usize;
            total += sq(&self.dembed[t * h..(t + 1) * h]);
        }
        total.sqrt()
    }

    /// Gradients of every parameter from the softmax gradient in `logits`.
    fn backward(&mut self, p: &LmParams, tokens: &[u32]) {
        let s = self.shape;
        let (v, h, rows) = (s.vocab, s.hidden, s.steps * s.batch);
        let e = self.engine;
        let t0 = std::time::Instant::now();
        // dy = dlogits × out_w; d(out_w) = dlogitsᵀ × top, formed as its transpose (topᵀ ×
        // dlogits: the gemm crate runs this orientation ~25% faster) and then transposed.
        let dl = Strided::rows(&self.logits, rows, v);
        gemm_strided(&mut self.dy, h, 1, dl, Strided::rows(&p.out_w, v, h), false, self.threads);
        let top = self.layers[s.layers - 1].output(e);
        gemm_strided(&mut self.out_w_grad_t, v, 1, Strided::transposed(top, h, rows), dl, false, self.threads);
        transpose(&self.out_w_grad_t, h, v, &mut self.grads.out_w, self.threads);
        // d(out_b): the softmax parts' column sums, added in part order.
        self.grads.out_b.copy_from_slice(&self.colsums[0]);
        for part in &self.colsums[1..] {
            for (g, c) in self.grads.out_b.iter_mut().zip(part) {
                *g += c;
            }
        }
        self.times.output_grads += t0.elapsed();
        // Clear the rows the last batch left in the embedding gradient, then note this batch's.
        for &t in &self.touched {
            self.dembed[t as usize * h..(t as usize + 1) * h].fill(0.0);
        }
        self.touched.clear();
        self.touched.extend_from_slice(tokens);
        self.touched.sort_unstable();
        self.touched.dedup();
        for l in (0..s.layers).rev() {
            let (bufs, grads) = (&mut self.layers[l], &mut self.grads.cells[l]);
            if l == 0 && self.embedded {
                e.backward_embedded(
                    bufs,
                    &p.cells[0],
                    &self.dy,
                    grads,
                    &p.embed,
                    tokens,
                    &mut self.dembed,
                    self.threads,
                );
            } else {
                e.backward(bufs, &p.cells[l], &self.dy, grads, self.threads);
            }
            if l > 0 {
                self.dy.copy_from_slice(self.layers[l].input_grad(e));
            } else if !self.embedded {
                let dx = self.layers[0].input_grad(e);
                for (row, &tok) in tokens.iter().enumerate() {
                    let t = tok as usize;
                    for (d, g) in self.dembed[t * h..(t + 1) * h].iter_mut().zip(&dx[row * h..(row + 1) * h]) {
                        *d += g;
                    }
                }
            }
        }
    }

    /// Plain SGD with the current gradients: w -= lr * dw for every parameter (the embedding
    /// rows of the last batch's symbols only).
    pub fn sgd(&mut self, p: &mut LmParams, lr: f32) {
        let h = self.shape.hidden;
        let threads = self.threads;
        let t0 = std::time::Instant::now();
        let update = |w: &mut [f32], g: &[f32]| {
            par_chunks_mut(w, 1, threads, |from, chunk| {
                for (a, b) in chunk.iter_mut().zip(&g[from..]) {
                    *a -= lr * b;
                }
            });
        };
        for (layer, grads) in p.cells.iter_mut().zip(&self.grads.cells) {
            for (w, g) in layer.iter_mut().zip(grads) {
                update(w, g);
            }
        }
        update(&mut p.out_w, &self.grads.out_w);
        update(&mut p.out_b, &self.grads.out_b);
        for &t in &self.touched {
            let t = t as usize;
            for (w, g) in p.embed[t * h..(t + 1) * h].iter_mut().zip(&self.dembed[t * h..(t + 1) * h]) {
                *w -= lr * g;
            }
        }
        self.times.sgd += t0.elapsed();
    }

    /// The accumulated phase times of every layer's cell runs.
    pub fn cell_times(&self) -> crate::runtime::PhaseTimes {
        let mut t = crate::runtime::PhaseTimes::default();
        for l in &self.layers {
            let x = l.times;
            t.weights += x.weights;
            t.forward_pre += x.forward_pre;
            t.forward_step += x.forward_step;
            t.backward_step += x.backward_step;
            t.backward_post += x.backward_post;
            t.weight_grads += x.weight_grads;
        }
        t
    }
}
