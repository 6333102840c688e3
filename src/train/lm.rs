//! A recurrent language model around a compiled cell: an embedding of input symbols to H, L
//! stacked layers of the cell (layer l reads layer l-1's output), and a softmax output layer
//! with cross-entropy at every step; inverted dropout on the non-recurrent connections (between
//! layers and before the output), off unless asked for.
//!
//! [`LmRunner`] owns every buffer for a batch size and a capacity of steps, allocated once;
//! batches of any length up to the capacity run in them (a longer one grows them). The output
//! layer is in `output.rs`, the model's shape and parameters in `model.rs`.

pub use super::model::{LmParams, LmShape};
use super::output::SoftmaxTables;
use crate::ir::MaskDraw;
use crate::rng::Rng;
use crate::runtime::denormals::FlushDenormals;
use crate::runtime::softmax::Softmax;
use crate::runtime::{Buffers, Engine, Sizes};
use crate::tasks::{Frames, Sets};

/// What the first layer reads at each row: one symbol, or a set of units (music's sounding notes,
/// whose input vector is the sum of their embedding rows: the projection of the 88-key frame).
#[derive(Clone, Copy)]
pub(super) enum Input<'a> {
    Tokens(&'a [u32]),
    Sets(&'a Sets),
}

/// Gradients of the dense parameters after a backward pass (the embedding's gradient is the
/// input gradient of the first layer, applied row by row).
#[derive(Clone, Debug)]
pub struct LmGrads {
    pub cells: Vec<Vec<Vec<f32>>>,
    /// Per bidirectional layer, its reverse direction's.
    pub reverse: Vec<Vec<Vec<f32>>>,
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

/// Everything one batch shape needs, allocated once.
pub struct LmRunner<'e> {
    pub times: LmTimes,
    pub engine: &'e Engine,
    /// `shape.steps` is the current batch's length (at most the capacity of the buffers).
    pub shape: LmShape,
    pub threads: usize,
    pub(super) softmax: Softmax,
    pub(super) layers: Vec<Buffers>,
    /// The bidirectional layers' reverse directions (`bidirectional.rs`).
    pub(super) reverse: super::bidirectional::Reverse,
    /// [T*B, V]: logits, then (after the softmax pass) the gradient of the loss.
    pub(super) logits: Vec<f32>,
    pub(super) tables: SoftmaxTables,
    /// [T*B, H]: the gradient flowing into the top layer's output, then down the layers.
    pub(super) dy: Vec<f32>,
    /// [H, V]: the output matrix's gradient transposed, as its GEMM leaves it.
    pub(super) out_w_grad_t: Vec<f32>,
    /// Dropout: the keep probability's inverse-scaled masks, [T*B, H] each: index l < L for
    /// layer l's input (the embedding for l = 0), index L for the output layer's (empty: off).
    pub(super) masks: Vec<Vec<f32>>,
    /// Variational dropout (Gal & Ghahramani 2016): one mask per batch column for all its steps.
    pub variational: bool,
    /// Run sequence batches padded (every example every step) instead of by length.
    pub padded: bool,
    /// Tied embeddings (Press & Wolf 2017): `out_w` is `embed` (its gradient added to it).
    pub tied: bool,
    /// [T*B, H]: the top layer's output after dropout (when on).
    pub(super) top_dropped: Vec<f32>,
    /// Whether the last forward pass applied dropout masks (backward then applies them too).
    pub(super) masks_live: bool,
    /// The masks of the cell's own regularisers in training passes (see `set_cell_masks`).
    cell_masks: MaskDraw,
    /// Whether the first layer runs per vocabulary entry (`Engine::forward_embedded`), and whether the last pass did.
    pub(super) embedded: bool,
    pub(super) first_embedded: bool,
    /// [V, H], the embedding's gradient; only the rows of `touched` are non-zero.
    pub dembed: Vec<f32>,
    /// The distinct symbols of the last batch, ascending.
    pub(super) touched: Vec<u32>,
    pub grads: LmGrads,
    /// Flush denormals to zero while computing (`runtime::denormals`; on by default).
    pub flush_denormals: bool,
}

/// How the first layer reads its input symbols.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FirstLayer {
    /// Per token: embedding lookup, then every product of the cell on every row (what PyTorch
    /// and JAX programs do).
    Full,
    /// Per vocabulary entry: what depends on x alone is computed for the V embedding rows and
    /// gathered, and its gradients are formed per entry (`Engine::forward_embedded`): exact, and
    /// far fewer flops when V is well below T*B.
    Embedded,
    /// Embedded when 2V <= T*B and the cell allows it, else full.
    Auto,
}

impl<'e> LmRunner<'e> {
    pub fn new(engine: &'e Engine, shape: LmShape, threads: usize) -> Result<LmRunner<'e>, String> {
        LmRunner::with_first_layer(engine, shape, threads, FirstLayer::Auto)
    }

    /// As [`LmRunner::new`], with the first layer's mode chosen.
    pub fn with_first_layer(
        engine: &'e Engine,
        shape: LmShape,
        threads: usize,
        first: FirstLayer,
    ) -> Result<LmRunner<'e>, String> {
        if shape.layers == 0 || shape.vocab == 0 || shape.steps == 0 {
            return Err("a language model needs at least one layer, one symbol and one step".into());
        }
        let rows = shape.steps * shape.batch;
        let embedded = match first {
            FirstLayer::Full => false,
            FirstLayer::Auto => engine.supports_embedding() && 2 * shape.vocab <= rows,
            FirstLayer::Embedded if engine.supports_embedding() => true,
            FirstLayer::Embedded => {
                return Err("this cell's input projections cannot run per vocabulary entry (--first-layer full)".into());
            }
        };
        let sizes = Sizes { hidden: shape.hidden, input: shape.hidden, batch: shape.batch, steps: shape.steps };
        let layers = (0..shape.layers).map(|_| engine.buffers(sizes)).collect::<Result<Vec<_>, _>>()?;
        let lens = engine.param_lens(sizes);
        Ok(LmRunner {
            times: LmTimes::default(),
            engine,
            shape,
            threads,
            softmax: Softmax::compile()?,
            layers,
            reverse: super::bidirectional::Reverse::new(engine, shape)?,
            logits: vec![0.0; rows * shape.vocab],
            tables: SoftmaxTables::new(rows, shape.vocab, threads),
            dy: vec![0.0; rows * shape.hidden],
            out_w_grad_t: vec![0.0; shape.hidden * shape.vocab],
            masks: vec![],
            variational: false,
            padded: false,
            tied: false,
            top_dropped: vec![],
            masks_live: false,
            cell_masks: MaskDraw::Expected,
            embedded,
            first_embedded: false,
            dembed: vec![0.0; shape.vocab * shape.hidden],
            touched: vec![],
            flush_denormals: true,
            grads: LmGrads {
                cells: (0..shape.layers).map(|_| lens.iter().map(|&n| vec![0.0; n]).collect()).collect(),
                reverse: (0..shape.reverse_layers()).map(|_| lens.iter().map(|&n| vec![0.0; n]).collect()).collect(),
                out_w: vec![0.0; shape.vocab * shape.hidden],
                out_b: vec![0.0; shape.vocab],
            },
        })
    }

    /// Whether the first layer runs per vocabulary entry (on symbol input without dropout).
    pub fn first_layer_embedded(&self) -> bool {
        self.embedded
    }

    /// Rows of the current batch: steps x batch.
    pub fn rows(&self) -> usize {
        self.shape.steps * self.shape.batch
    }

    /// Runs batches of `steps` steps from now on, growing every buffer if they hold fewer.
    /// (Growing loses a carried state: streams keep one length.)
    pub fn set_steps(&mut self, steps: usize) -> Result<(), String> {
        if steps == 0 {
            return Err("a batch needs at least one step".into());
        }
        if steps > self.layers[0].capacity_steps() {
            let s = self.shape;
            let sizes = Sizes { hidden: s.hidden, input: s.hidden, batch: s.batch, steps };
            self.layers = (0..s.layers).map(|_| self.engine.buffers(sizes)).collect::<Result<Vec<_>, _>>()?;
            let rows = steps * s.batch;
            self.logits = vec![0.0; rows * s.vocab];
            self.tables = SoftmaxTables::new(rows, s.vocab, self.threads);
            self.dy = vec![0.0; rows * s.hidden];
            for m in self.masks.iter_mut().chain([&mut self.top_dropped]) {
                if !m.is_empty() {
                    *m = vec![0.0; rows * s.hidden];
                }
            }
        }
        for l in &mut self.layers {
            l.set_steps(steps)?;
        }
        // The questions were the last batch's.
        self.reverse.ready = false;
        self.shape.steps = steps;
        Ok(())
    }

    /// Forward through every layer from `tokens` ([T, B]); states start at zero, or (with
    /// `carry`) at the final states of the previous batch (truncated BPTT over a stream). With
    /// `dropout` (rng, p), masks are drawn and applied between layers and before the output.
    pub(super) fn forward_layers(
        &mut self,
        p: &LmParams,
        tokens: &[u32],
        carry: bool,
        dropout: Option<(&mut Rng, f64)>,
        masks: MaskDraw,
    ) -> Result<(), String> {
        self.forward_input(p, Input::Tokens(tokens), carry, dropout, masks)
    }

    /// The masks the cell's regularisers use in the training passes from now on
    /// (`forward_backward*`): a new seed per step draws new masks. Evaluation passes use the
    /// masks' expectation whatever this says.
    pub fn set_cell_masks(&mut self, draw: MaskDraw) {
        self.cell_masks = draw;
    }

    /// [`LmRunner::forward_layers`] from symbols or from sets of units.
    pub(super) fn forward_input(
        &mut self,
        p: &LmParams,
        input: Input<'_>,
        carry: bool,
        dropout: Option<(&mut Rng, f64)>,
        masks: MaskDraw,
    ) -> Result<(), String> {
        let h = self.shape.hidden;
        let n = self.rows() * h;
        let e = self.engine;
        let rows = match input {
            Input::Tokens(t) => t.len(),
            Input::Sets(s) => s.rows(),
        };
        assert_eq!(rows, self.rows(), "one input per row");
        let dropping = match dropout {
            Some((rng, prob)) if prob > 0.0 => {
                self.draw_masks(rng, prob);
                true
            }
            _ => false,
        };
        // Input dropout needs the first layer's inputs, which the per-vocabulary path never forms.
        self.first_embedded = self.embedded && matches!(input, Input::Tokens(_)) && !dropping;
        if !self.first_embedded {
            let t0 = std::time::Instant::now();
            let x = self.layers[0].input_mut(e);
            match input {
                Input::Tokens(tokens) => {
                    for (row, &tok) in tokens.iter().enumerate() {
                        let t = tok as usize;
                        x[row * h..(row + 1) * h].copy_from_slice(&p.embed[t * h..(t + 1) * h]);
                    }
                }
                Input::Sets(sets) => {
                    for row in 0..rows {
                        let xr = &mut x[row * h..(row + 1) * h];
                        xr.fill(0.0);
                        for &u in sets.row(row) {
                            let u = u as usize;
                            for (xi, ei) in xr.iter_mut().zip(&p.embed[u * h..(u + 1) * h]) {
                                *xi += ei;
                            }
                        }
                    }
                }
            }
            if dropping {
                for (xi, mi) in x[..n].iter_mut().zip(&self.masks[0][..n]) {
                    *xi *= mi;
                }
            }
            self.times.embed += t0.elapsed();
        }
        for l in 0..self.shape.layers {
            if l > 0 {
                let (below, above) = self.layers.split_at_mut(l);
                let (x, y) = (above[0].input_mut(e), below[l - 1].output(e));
                if dropping {
                    for ((xi, yi), mi) in x.iter_mut().zip(y).zip(&self.masks[l][..n]) {
                        *xi = yi * mi;
                    }
                } else {
                    x.copy_from_slice(y);
                }
                self.add_reverse_output(l - 1, dropping);
            }
            if carry {
                self.layers[l].carry_states(e);
            } else {
                self.layers[l].zero_states(e);
            }
            // Each layer draws its own masks.
            let layer_masks = match masks {
                MaskDraw::Seed(seed) => MaskDraw::Seed(Rng::new(seed).fork(l as u64).next_u64()),
                MaskDraw::Expected => MaskDraw::Expected,
            };
            self.layers[l].set_masks(layer_masks);
            if let (0, true, Input::Tokens(tokens)) = (l, self.first_embedded, input) {
                e.forward_embedded(&mut self.layers[0], &p.cells[0], &p.embed, tokens, self.threads)?;
            } else {
                e.forward(&mut self.layers[l], &p.cells[l], self.threads)?;
            }
            self.forward_reverse(p, l, input, masks)?;
        }
        if dropping {
            let top = self.layers[self.shape.layers - 1].output(e);
            for ((d, y), m) in self.top_dropped[..n].iter_mut().zip(top).zip(&self.masks[self.shape.layers][..n]) {
                *d = y * m;
            }
        }
        self.masks_live = dropping;
        Ok(())
    }

    /// Gradients of every parameter from the output layer's gradient in `logits`.
    pub(super) fn backward(&mut self, p: &LmParams, tokens: &[u32]) -> Result<(), String> {
        self.backward_input(p, Input::Tokens(tokens))
    }

    /// [`LmRunner::backward`] for symbols or sets of units read by the last forward pass.
    pub(super) fn backward_input(&mut self, p: &LmParams, input: Input<'_>) -> Result<(), String> {
        self.backward_layers(p, input)?;
        if self.tied {
            // One matrix in two places: its gradient is the sum, all of it on the embedding.
            for (d, g) in self.dembed.iter_mut().zip(&mut self.grads.out_w) {
                *d += *g;
                *g = 0.0;
            }
            self.touched.clear();
            self.touched.extend(0..self.shape.vocab as u32);
        }
        Ok(())
    }

    fn backward_layers(&mut self, p: &LmParams, input: Input<'_>) -> Result<(), String> {
        let s = self.shape;
        let (h, n) = (s.hidden, self.rows() * s.hidden);
        let e = self.engine;
        self.output_backward(p);
        // Clear the rows the last batch left in the embedding gradient, then note this batch's.
        for &t in &self.touched {
            self.dembed[t as usize * h..(t as usize + 1) * h].fill(0.0);
        }
        self.touched.clear();
        match input {
            Input::Tokens(tokens) => self.touched.extend_from_slice(tokens),
            Input::Sets(sets) => self.touched.extend(sets.units.iter().map(|&u| u32::from(u))),
        }
        self.touched.sort_unstable();
        self.touched.dedup();
        for l in (0..s.layers).rev() {
            self.backward_reverse(p, l)?;
            let (bufs, grads) = (&mut self.layers[l], &mut self.grads.cells[l]);
            if let (0, true, Input::Tokens(tokens)) = (l, self.first_embedded, input) {
                e.backward_embedded(
                    bufs,
                    &p.cells[0],
                    &self.dy[..n],
                    grads,
                    &p.embed,
                    tokens,
                    &mut self.dembed,
                    self.threads,
                )?;
            } else {
                e.backward(bufs, &p.cells[l], &self.dy[..n], grads, self.threads)?;
            }
            if l > 0 {
                let dx = self.layers[l].input_grad(e);
                if self.masks_live {
                    for ((d, g), m) in self.dy[..n].iter_mut().zip(dx).zip(&self.masks[l]) {
                        *d = g * m;
                    }
                } else {
                    self.dy[..n].copy_from_slice(dx);
                }
            } else if !self.first_embedded {
                let dx = self.layers[0].input_grad(e);
                let mask = self.masks_live.then(|| &self.masks[0][..n]);
                let mut add = |unit: usize, row: usize| {
                    let (d, g) = (&mut self.dembed[unit * h..(unit + 1) * h], &dx[row * h..(row + 1) * h]);
                    match mask {
                        Some(m) => {
                            d.iter_mut().zip(g).zip(&m[row * h..(row + 1) * h]).for_each(|((d, g), m)| *d += g * m)
                        }
                        None => d.iter_mut().zip(g).for_each(|(d, g)| *d += g),
                    }
                };
                match input {
                    Input::Tokens(tokens) => tokens.iter().enumerate().for_each(|(row, &t)| add(t as usize, row)),
                    Input::Sets(sets) => {
                        for row in 0..sets.rows() {
                            sets.row(row).iter().for_each(|&u| add(usize::from(u), row));
                        }
                    }
                }
            }
            self.add_reverse_input_grad(l, input);
        }
        Ok(())
    }

    /// Forward and backward on one batch of the current length: the mean cross-entropy over the
    /// rows of weight 1 (every row without `weights`), and every gradient in `grads` and
    /// `dembed`. With `carry`, states start where the last batch ended; with `dropout`, masks
    /// are drawn from the rng.
    pub fn forward_backward_weighted(
        &mut self,
        p: &LmParams,
        tokens: &[u32],
        targets: &[u32],
        weights: Option<&[f32]>,
        carry: bool,
        dropout: Option<(&mut Rng, f64)>,
    ) -> Result<f64, String> {
        let _fp = FlushDenormals::new(self.flush_denormals);
        self.forward_layers(p, tokens, carry, dropout, self.cell_masks)?;
        let loss = self.output_layer(p, targets, weights, false);
        self.backward(p, tokens)?;
        Ok(loss)
    }

    /// [`LmRunner::forward_backward_weighted`] for music: multi-hot frames in, 88 independent
    /// sigmoids out; the loss is the mean over weighted rows of each row's summed log-loss.
    pub fn forward_backward_frames(
        &mut self,
        p: &LmParams,
        frames: &Frames,
        weights: Option<&[f32]>,
        carry: bool,
        dropout: Option<(&mut Rng, f64)>,
    ) -> Result<f64, String> {
        let _fp = FlushDenormals::new(self.flush_denormals);
        self.forward_input(p, Input::Sets(&frames.input), carry, dropout, self.cell_masks)?;
        let loss = self.sigmoid_layer(p, &frames.target, weights, false);
        self.backward_input(p, Input::Sets(&frames.input))?;
        Ok(loss)
    }

    /// Forward only on music frames; afterwards [`LmRunner::row_results`] gives each row's loss
    /// and [`LmRunner::row_hits`] its note counts.
    pub fn evaluate_frames(
        &mut self,
        p: &LmParams,
        frames: &Frames,
        weights: Option<&[f32]>,
        carry: bool,
    ) -> Result<f64, String> {
        let _fp = FlushDenormals::new(self.flush_denormals);
        self.forward_input(p, Input::Sets(&frames.input), carry, None, MaskDraw::Expected)?;
        Ok(self.sigmoid_layer(p, &frames.target, weights, true))
    }

    /// [`LmRunner::forward_backward_weighted`], every row counted, no dropout, the cell's masks
    /// as `set_cell_masks` last set them (their expectation by default).
    pub fn forward_backward(
        &mut self,
        p: &LmParams,
        tokens: &[u32],
        targets: &[u32],
        carry: bool,
    ) -> Result<f64, String> {
        self.forward_backward_weighted(p, tokens, targets, None, carry, None)
    }

    /// One step of plain SGD on one batch (states start at zero): forward, loss, BPTT, update.
    /// Returns the mean cross-entropy before the update.
    pub fn train_step(&mut self, p: &mut LmParams, tokens: &[u32], targets: &[u32], lr: f32) -> Result<f64, String> {
        let loss = self.forward_backward(p, tokens, targets, false)?;
        let mut opt = super::optim::Optimizer::new(super::optim::OptimizerKind::Sgd, p);
        opt.update(p, self, f64::from(lr), 0.0);
        Ok(loss)
    }

    /// Forward only: the mean loss over weighted rows; afterwards [`LmRunner::row_results`]
    /// gives each row's loss and whether its prediction was right.
    pub fn evaluate(
        &mut self,
        p: &LmParams,
        tokens: &[u32],
        targets: &[u32],
        weights: Option<&[f32]>,
        carry: bool,
    ) -> Result<f64, String> {
        let _fp = FlushDenormals::new(self.flush_denormals);
        self.forward_layers(p, tokens, carry, None, MaskDraw::Expected)?;
        Ok(self.output_layer(p, targets, weights, true))
    }
}
