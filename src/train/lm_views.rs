//! What a language-model run leaves to read: each row's result, the gradients and their norm,
//! the carried states, the layers' buffers and their phase times.

use super::lm::LmRunner;
use crate::runtime::Buffers;

impl LmRunner<'_> {
    /// Per row of the last `evaluate_frames`: (true positives, false positives, false negatives)
    /// of the notes predicted sounding (probability above 1/2).
    pub fn row_hits(&self) -> &[[u32; 3]] {
        &self.tables.row_hits[..self.rows()]
    }

    /// Per row of the last `evaluate`: whether the top prediction was the target, and the
    /// cross-entropy (0 for rows of weight 0).
    pub fn row_results(&self) -> (&[bool], &[f32]) {
        let n = self.rows();
        (&self.tables.row_right[..n], &self.tables.row_loss[..n])
    }

    /// The Euclidean norm of all gradients together (the embedding's included), the same for
    /// any thread count.
    pub fn grad_norm(&self) -> f64 {
        let h = self.shape.hidden;
        let mut slices: Vec<&[f32]> =
            self.touched.iter().map(|&t| &self.dembed[t as usize * h..(t as usize + 1) * h]).collect();
        slices.extend(self.grads.cells.iter().chain(&self.grads.reverse).flatten().map(Vec::as_slice));
        slices.push(&self.grads.out_w);
        slices.push(&self.grads.out_b);
        super::optim::norm(&slices, self.threads)
    }

    /// The gradients in [`LmParams::tensors`] order.
    pub fn grad_tensors(&self) -> Vec<&[f32]> {
        let mut g: Vec<&[f32]> = vec![&self.dembed];
        g.extend(self.grads.cells.iter().chain(&self.grads.reverse).flatten().map(|v| v.as_slice()));
        g.push(&self.grads.out_w);
        g.push(&self.grads.out_b);
        g
    }

    /// The distinct symbols of the last batch: the embedding rows with a gradient.
    pub fn touched(&self) -> &[u32] {
        &self.touched
    }

    /// The states the next `carry` run starts from, per layer and state ([B, H] each).
    pub fn carried_states(&self) -> Vec<Vec<Vec<f32>>> {
        let e = self.engine;
        let n = e.forward.sig.states.len();
        self.layers.iter().map(|l| (0..n).map(|s| l.final_state(e, s).to_vec()).collect()).collect()
    }

    /// Sets what the next `carry` run starts from (see [`LmRunner::carried_states`]).
    pub fn set_carried_states(&mut self, states: &[Vec<Vec<f32>>]) -> Result<(), String> {
        let e = self.engine;
        let want = self.shape.batch * self.shape.hidden;
        if states.len() != self.layers.len() || states.iter().flatten().any(|s| s.len() != want) {
            return Err("carried states do not match the model's layers and sizes".into());
        }
        for (l, layer) in states.iter().enumerate() {
            for (s, v) in layer.iter().enumerate() {
                self.layers[l].final_state_mut(e, s).copy_from_slice(v);
            }
        }
        Ok(())
    }

    /// Each bidirectional layer's reverse direction's buffers (the last forward pass's values).
    pub fn reverse_layers(&self) -> &[Buffers] {
        &self.reverse.layers
    }

    /// Each layer's buffers (their stored values are the last forward pass).
    pub fn layers(&self) -> &[Buffers] {
        &self.layers
    }

    /// The accumulated phase times of every layer's cell runs.
    pub fn cell_times(&self) -> crate::runtime::PhaseTimes {
        let mut t = crate::runtime::PhaseTimes::default();
        for l in self.layers.iter().chain(&self.reverse.layers) {
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
