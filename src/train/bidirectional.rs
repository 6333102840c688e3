//! Bidirectional layers for tasks that read a whole question before answering (arith,
//! memorize). Every layer below the top also runs a reverse direction (its own parameters, the
//! same compiled cell) over each example's question read backwards, and its output is added to
//! the forward direction's at those rows (the two directions merged by sum, Keras'
//! `merge_mode="sum"`, so every layer keeps width H and the layer above reads H values).
//!
//! An example's question is its rows before the first answer target, the last of them the row
//! that predicts the answer's first symbol: all of them read before the first weighted
//! prediction, so no weighted (answer) row reads a symbol after its own row. (The question's
//! own rows, weight 0, do read later question symbols.) The answer rows get what the reverse
//! direction read through the layers above; that is why the top layer has one direction only.
//!
//! The reverse runs are the runtime's variable-length runs (longest question first, so the
//! reverse columns are the batch's in another order): reverse row t*B + j mirrors forward row
//! (q[order[j]] - 1 - t)*B + order[j], where q[b] is example b's question length.

use super::lm::{Input, LmParams, LmRunner, LmShape};
use crate::ir::MaskDraw;
use crate::rng::Rng;
use crate::runtime::{Buffers, Engine, Sizes};

/// A reverse row past its example's question.
const PADDING: u32 = u32::MAX;

/// The reverse directions of a runner's bidirectional layers and the current batch's questions.
pub(super) struct Reverse {
    /// One per bidirectional layer (none for a one-directional model).
    pub(super) layers: Vec<Buffers>,
    /// Per reverse row, the forward row it mirrors (or `PADDING`).
    rows: Vec<u32>,
    /// [Tq*B, H]: the reverse direction's share of a layer's output gradient.
    dy: Vec<f32>,
    /// Whether `rows` describes the current batch (`LmRunner::set_questions`; a new batch
    /// length clears it).
    pub(super) ready: bool,
}

impl Reverse {
    pub(super) fn new(engine: &Engine, shape: LmShape) -> Result<Reverse, String> {
        let sizes = Sizes { hidden: shape.hidden, input: shape.hidden, batch: shape.batch, steps: shape.steps };
        let layers = (0..shape.reverse_layers()).map(|_| engine.buffers(sizes)).collect::<Result<Vec<_>, _>>()?;
        Ok(Reverse { layers, rows: vec![], dy: vec![], ready: false })
    }
}

/// The (reverse row, forward row) pairs of a batch's questions.
fn pairs(rows: &[u32]) -> impl Iterator<Item = (usize, usize)> + '_ {
    rows.iter().enumerate().filter(|&(_, &f)| f != PADDING).map(|(r, &f)| (r, f as usize))
}

impl LmRunner<'_> {
    /// Each example's question length (rows, per batch column) for the next passes of a
    /// bidirectional model: its reverse directions read rows 0..q backwards.
    pub fn set_questions(&mut self, lengths: &[usize]) -> Result<(), String> {
        let (b, h) = (self.shape.batch, self.shape.hidden);
        // Until this succeeds, no pass runs on the last batch's questions.
        self.reverse.ready = false;
        if self.reverse.layers.is_empty() {
            return Ok(());
        }
        if lengths.len() != b || lengths.iter().any(|&q| q > self.shape.steps) {
            return Err(format!("{} question lengths for {b} examples of {} steps", lengths.len(), self.shape.steps));
        }
        let mut order: Vec<usize> = (0..b).collect();
        order.sort_by_key(|&j| std::cmp::Reverse(lengths[j]));
        let sorted: Vec<usize> = order.iter().map(|&j| lengths[j]).collect();
        let steps = sorted[0].max(1);
        let rev = &mut self.reverse;
        if steps > rev.layers[0].capacity_steps() {
            let sizes = Sizes { hidden: h, input: h, batch: b, steps };
            rev.layers = (0..rev.layers.len()).map(|_| self.engine.buffers(sizes)).collect::<Result<Vec<_>, _>>()?;
        }
        for layer in &mut rev.layers {
            layer.set_steps(steps)?;
            layer.set_lengths(Some(&sorted))?;
        }
        rev.rows.clear();
        for t in 0..steps {
            rev.rows.extend(order.iter().map(|&col| match lengths[col] > t {
                true => ((lengths[col] - 1 - t) * b + col) as u32,
                false => PADDING,
            }));
        }
        rev.dy.resize(steps * b * h, 0.0);
        rev.ready = true;
        Ok(())
    }

    /// Runs layer `l`'s reverse direction (if it has one) on the input the forward direction
    /// read: the layer's input buffer, or for a first layer run per vocabulary entry (never
    /// with input dropout) the embedding rows of `input`.
    pub(super) fn forward_reverse(
        &mut self,
        p: &LmParams,
        l: usize,
        input: Input<'_>,
        masks: MaskDraw,
    ) -> Result<(), String> {
        if l >= self.reverse.layers.len() {
            return Ok(());
        }
        if !self.reverse.ready {
            return Err("a bidirectional model needs each example's question length (set_questions)".into());
        }
        let (h, e) = (self.shape.hidden, self.engine);
        let embedded = l == 0 && self.first_embedded;
        let tokens = match input {
            Input::Tokens(t) => t,
            Input::Sets(_) if !embedded => &[],
            Input::Sets(_) => return Err("a first layer per vocabulary entry reads symbols".into()),
        };
        let (rev, fwd) = (&mut self.reverse, &self.layers[l]);
        let x = rev.layers[l].input_mut(e);
        x.fill(0.0);
        for (r, f) in pairs(&rev.rows) {
            let dst = &mut x[r * h..(r + 1) * h];
            if embedded {
                let t = tokens[f] as usize;
                dst.copy_from_slice(&p.embed[t * h..(t + 1) * h]);
            } else {
                dst.copy_from_slice(&fwd.input(e)[f * h..(f + 1) * h]);
            }
        }
        let layer = &mut rev.layers[l];
        layer.zero_states(e);
        // Its own regulariser masks, apart from every forward layer's.
        layer.set_masks(match masks {
            MaskDraw::Seed(seed) => MaskDraw::Seed(Rng::new(seed).fork((1 << 32) + l as u64).next_u64()),
            MaskDraw::Expected => MaskDraw::Expected,
        });
        e.forward(layer, &p.reverse[l], self.threads)
    }

    /// Adds layer `l`'s reverse output to the input of layer l + 1 (times that input's dropout
    /// mask when `dropped`).
    pub(super) fn add_reverse_output(&mut self, l: usize, dropped: bool) {
        if l >= self.reverse.layers.len() {
            return;
        }
        let (h, e) = (self.shape.hidden, self.engine);
        let mask = dropped.then(|| &self.masks[l + 1]);
        let (rev, above) = (&self.reverse, &mut self.layers[l + 1]);
        let (y, x) = (rev.layers[l].output(e), above.input_mut(e));
        for (r, f) in pairs(&rev.rows) {
            let (x, y) = (&mut x[f * h..(f + 1) * h], &y[r * h..(r + 1) * h]);
            match mask {
                Some(m) => x.iter_mut().zip(y).zip(&m[f * h..(f + 1) * h]).for_each(|((x, y), m)| *x += y * m),
                None => x.iter_mut().zip(y).for_each(|(x, y)| *x += y),
            }
        }
    }

    /// The backward run of layer `l`'s reverse direction from the layer's output gradient (in
    /// `dy`, before the forward direction turns it into the input's).
    pub(super) fn backward_reverse(&mut self, p: &LmParams, l: usize) -> Result<(), String> {
        if l >= self.reverse.layers.len() {
            return Ok(());
        }
        let (h, e) = (self.shape.hidden, self.engine);
        let rev = &mut self.reverse;
        rev.dy.fill(0.0);
        for (r, f) in pairs(&rev.rows) {
            rev.dy[r * h..(r + 1) * h].copy_from_slice(&self.dy[f * h..(f + 1) * h]);
        }
        e.backward(&mut rev.layers[l], &p.reverse[l], &rev.dy, &mut self.grads.reverse[l], self.threads)
    }

    /// Adds layer `l`'s reverse input gradient to the forward one's: into `dy` (becoming layer
    /// l - 1's output gradient) for l > 0, into the embedding's rows for l = 0.
    pub(super) fn add_reverse_input_grad(&mut self, l: usize, input: Input<'_>) {
        if l >= self.reverse.layers.len() {
            return;
        }
        let (h, e) = (self.shape.hidden, self.engine);
        let mask = self.masks_live.then(|| &self.masks[l]);
        let dx = self.reverse.layers[l].input_grad(e);
        for (r, f) in pairs(&self.reverse.rows) {
            let g = &dx[r * h..(r + 1) * h];
            let add = |d: &mut [f32]| match mask {
                Some(m) => d.iter_mut().zip(g).zip(&m[f * h..(f + 1) * h]).for_each(|((d, g), m)| *d += g * m),
                None => d.iter_mut().zip(g).for_each(|(d, g)| *d += g),
            };
            if l > 0 {
                add(&mut self.dy[f * h..(f + 1) * h]);
                continue;
            }
            match input {
                Input::Tokens(tokens) => {
                    let t = tokens[f] as usize;
                    add(&mut self.dembed[t * h..(t + 1) * h]);
                }
                Input::Sets(sets) => {
                    for &u in sets.row(f) {
                        add(&mut self.dembed[usize::from(u) * h..(usize::from(u) + 1) * h]);
                    }
                }
            }
        }
    }
}
