//! Variable-length batches: example b runs steps 0..lengths[b] (longest first), so step t runs
//! the examples still going, rows 0..active(t), and skips the rest. After its last step an
//! example's state stays as it was (the final state is the state after its own last step; the
//! state buffer, y, repeats it at every later step), and its later rows are no part of the
//! cell's work: the per-step phases and the backward post phase skip them, every value any
//! phase stores for them is zero (x's padding too), and the all-rows gradient GEMMs add nothing
//! for them. The state adjoint passes through them unchanged to the last real step, with their
//! dy: the backward run is the derivative of exactly this forward run (a loss that ignores the
//! padding, as the trainer's, has dy = 0 there).

use super::ctx::Ctx;
use super::{Buffers, Engine, ctx};
use crate::schedule::{BufferRole, Stage};

impl Buffers {
    /// Per-example lengths for the next runs, longest first (`None`: every example runs every
    /// step). A length may exceed the steps of a run (the example then runs all of them).
    pub fn set_lengths(&mut self, lengths: Option<&[usize]>) -> Result<(), String> {
        self.active.clear();
        let Some(lengths) = lengths else { return Ok(()) };
        if lengths.len() != self.sizes.batch {
            return Err(format!("{} lengths for a batch of {}", lengths.len(), self.sizes.batch));
        }
        if lengths.windows(2).any(|w| w[0] < w[1]) {
            return Err("lengths must come longest first (sort the batch's examples by length)".into());
        }
        let steps = self.capacity_steps;
        self.active.extend((0..steps).map(|t| lengths.iter().take_while(|&&l| l > t).count()));
        Ok(())
    }
}

impl Ctx<'_> {
    /// How many examples step t runs (rows 0..active(t)).
    pub(super) fn active(&self, t: usize) -> usize {
        self.active.get(t).copied().unwrap_or(self.sizes.batch)
    }

    /// Rows `from..to` of step t that have ended: the range past `active(t)`.
    pub(super) fn ended(&self, t: usize, from: usize, to: usize) -> std::ops::Range<usize> {
        from.max(self.active(t)).min(to)..to
    }

    /// Runs `f(from, count)` on the sub-ranges of all-steps rows `from..from + count` (row
    /// t*B + b) whose examples are still going at their step: all of it for a padded batch.
    pub(super) fn live_rows(&self, from: usize, count: usize, mut f: impl FnMut(usize, usize)) {
        if self.active.is_empty() {
            return f(from, count);
        }
        let b = self.sizes.batch;
        let end = from + count;
        let mut row = from;
        while row < end {
            let t = row / b;
            let live_end = (t * b + self.active(t)).min(end);
            if row < live_end {
                f(row, live_end - row);
            }
            row = ((t + 1) * b).min(end).max(live_end);
        }
    }

    /// Forward, after step t: the ended rows among `from..to` keep their state (block t copied
    /// to block t + 1).
    pub(super) fn hold_states(&self, t: usize, from: usize, to: usize) {
        let rows = self.ended(t, from, to);
        for &b in &self.e.schedule.state_bufs {
            self.copy_rows(b, t, t + 1, rows.clone(), false);
        }
    }

    /// Backward, after step t: the ended rows among `from..to` pass their state adjoint on
    /// unchanged (block t + 1 added to block t).
    pub(super) fn pass_adjoints(&self, t: usize, from: usize, to: usize) {
        let rows = self.ended(t, from, to);
        for &b in &self.e.schedule.adjoint_bufs {
            self.copy_rows(b, t + 1, t, rows.clone(), true);
        }
    }

    /// Rows `rows` of block `src` of an H-wide buffer into block `dst` (added with `add`).
    fn copy_rows(&self, buf: usize, src: usize, dst: usize, rows: std::ops::Range<usize>, add: bool) {
        if rows.is_empty() {
            return;
        }
        let h = self.sizes.hidden;
        let (base, len) = self.bufs[buf];
        let b = self.sizes.batch;
        let (s0, d0) = ((src * b + rows.start) * h, (dst * b + rows.start) * h);
        let n = rows.len() * h;
        assert!(s0.max(d0) + n <= len, "state rows out of bounds");
        // SAFETY: in bounds by the assertion; src and dst are different blocks, so the ranges do
        // not overlap, and this thread owns these rows of both.
        let (s, d) = unsafe {
            let base = base as *mut f32;
            (std::slice::from_raw_parts(base.add(s0), n), std::slice::from_raw_parts_mut(base.add(d0), n))
        };
        if add {
            d.iter_mut().zip(s).for_each(|(d, s)| *d += s);
        } else {
            d.copy_from_slice(s);
        }
    }
}

/// After a per-step phase: zero the rows of ended examples in every `Blocks::Steps` buffer
/// `stages` write (stale values from an earlier run must not reach the all-rows phases), and
/// after the backward one also the state adjoints that only passed through them.
pub(super) fn clear_ended(e: &Engine, bufs: &mut Buffers, stages: &[Stage], adjoints: bool) {
    if bufs.active.is_empty() {
        return;
    }
    let s = bufs.sizes;
    let sch = &e.schedule;
    let writes = |i: usize| {
        stages.iter().any(|stage| match stage {
            Stage::Gemm { out, .. } => out.buf == i,
            Stage::Kernel { kernel, args } => args[sch.kernels[*kernel].inputs.len()..].iter().any(|a| a.buf == i),
        })
    };
    // Taken for the loop (no copy: runs allocate nothing), put back after it.
    let active = std::mem::take(&mut bufs.active);
    for (i, buf) in sch.buffers.iter().enumerate() {
        let (temp, adjoint) = (buf.role == BufferRole::Temp, matches!(buf.role, BufferRole::StateAdjoint(_)));
        if !(temp && buf.blocks == crate::schedule::Blocks::Steps && writes(i) || adjoints && adjoint) {
            continue;
        }
        let width = buf.width.at(s.hidden, s.input);
        // A state adjoint's block t + 1 belongs to step t.
        let shift = usize::from(adjoint);
        let n = ctx::buffer_len(buf, s);
        let data = &mut bufs.buf_mut(i)[..n];
        for (t, &live) in active.iter().enumerate().take(s.steps) {
            data[((t + shift) * s.batch + live) * width..(t + shift + 1) * s.batch * width].fill(0.0);
        }
    }
    bufs.active = active;
}

/// Before a forward run: x in the rows of ended examples (padding) is read by the weight
/// gradients' GEMMs (times zero), so it must be finite: zeroed in the buffers' own memory, and
/// checked (an error naming the row) in caller memory, which is read only.
pub(super) fn clean_padding(e: &Engine, bufs: &mut Buffers) -> Result<(), String> {
    if bufs.active.is_empty() {
        return Ok(());
    }
    let s = bufs.sizes;
    let buf = e.schedule.input_buf;
    let width = e.schedule.buffers[buf].width.at(s.hidden, s.input);
    let attached = bufs.external[buf].0 != 0;
    let active = std::mem::take(&mut bufs.active);
    let mut result = Ok(());
    let x = &mut bufs.buf_mut(buf)[..s.steps * s.batch * width];
    for (t, &live) in active.iter().enumerate().take(s.steps) {
        let rows = &mut x[(t * s.batch + live) * width..(t + 1) * s.batch * width];
        if !attached {
            rows.fill(0.0);
        } else if let Some(i) = rows.iter().position(|v| !v.is_finite()) {
            let b = live + i / width;
            result =
                Err(format!("x is not finite at step {t} of example {b}, past its length: padding must be finite"));
            break;
        }
    }
    bufs.active = active;
    result
}
