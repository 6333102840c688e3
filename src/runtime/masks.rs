//! The regularisers' mask buffers, filled before each forward run: random draws for a training
//! step, each mask's expectation otherwise ([`Buffers::set_masks`]). Every entry is a pure
//! function of the draw and its (step, example, column), so any thread count fills the same
//! numbers, and they are the interpreter's.

use super::{Buffers, Engine, ctx, pool};
use crate::ir::MaskDraw;
use crate::schedule::BufferRole;

impl Buffers {
    /// Which masks the next forward runs use: `MaskDraw::Seed` for a training step (a new seed
    /// per step gives new masks), `MaskDraw::Expected` (the default) for evaluation.
    pub fn set_masks(&mut self, draw: MaskDraw) {
        self.masks = draw;
    }

    /// The masks the next forward runs use.
    pub fn masks(&self) -> MaskDraw {
        self.masks
    }
}

/// Fills every mask buffer for the buffers' current sizes and draw (counted as forward-pre
/// time).
pub(super) fn fill(e: &Engine, bufs: &mut Buffers, threads: usize) {
    let t0 = std::time::Instant::now();
    let s = bufs.sizes;
    let draw = bufs.masks;
    for (i, b) in e.schedule.buffers.iter().enumerate() {
        let BufferRole::Mask(k) = b.role else { continue };
        let info = e.forward.sig.masks[k];
        let width = b.width.at(s.hidden, s.input);
        let n = ctx::buffer_len(b, s);
        pool::par_chunks_mut(&mut bufs.buf_mut(i)[..n], width, threads, |from, chunk| {
            for (r, row) in chunk.chunks_exact_mut(width).enumerate() {
                let r = from / width + r;
                let mask = info.row(k, draw, r / s.batch, r % s.batch);
                for (j, v) in row.iter_mut().enumerate() {
                    *v = mask.at(j) as f32;
                }
            }
        });
    }
    bufs.times.forward_pre += t0.elapsed();
}
