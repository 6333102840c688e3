//! Dropout on the language model's non-recurrent connections (Zaremba et al. 2014): the masks of
//! a training pass, one per connection (each layer's input and the output layer's), per step or
//! fixed over a batch's steps (variational).

use super::lm::LmRunner;
use crate::rng::Rng;

impl LmRunner<'_> {
    /// Draws fresh dropout masks (drop probability `p`) for every non-recurrent connection.
    pub(super) fn draw_masks(&mut self, rng: &mut Rng, p: f64) {
        let s = self.shape;
        let n = self.rows() * s.hidden;
        let cap = self.dy.len();
        if self.masks.len() != s.layers + 1 {
            self.masks = (0..=s.layers).map(|_| vec![0.0; cap]).collect();
            self.top_dropped = vec![0.0; cap];
        }
        let keep = (1.0 / (1.0 - p)) as f32;
        let per_column = s.batch * s.hidden;
        for m in &mut self.masks {
            let drawn = if self.variational { per_column } else { n };
            for v in &mut m[..drawn] {
                *v = if rng.chance(p) { 0.0 } else { keep };
            }
            if self.variational {
                // Step t's rows are t*B..(t+1)*B: repeat step 0's mask.
                let (first, rest) = m[..n].split_at_mut(per_column);
                for chunk in rest.chunks_mut(per_column) {
                    chunk.copy_from_slice(&first[..chunk.len()]);
                }
            }
        }
    }

    /// The dropout mask of the last training pass on connection `l` (layer l's input for l < L,
    /// the output layer's input for l = L), [T*B, H]; empty without dropout.
    pub fn dropout_mask(&self, l: usize) -> &[f32] {
        if self.masks_live { &self.masks[l][..self.rows() * self.shape.hidden] } else { &[] }
    }
}
