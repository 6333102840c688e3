//! [`Buffers`]: the memory of runs at one size, its accessors for callers (x, states, outputs,
//! gradients), and the saved activations a forward run leaves for a backward run elsewhere,
//! exported or attached to caller memory.

use super::{Engine, Sizes, ctx};

/// Wall time spent in each phase of the runs on one [`Buffers`], accumulated.
#[derive(Clone, Copy, Debug, Default)]
pub struct PhaseTimes {
    pub weights: std::time::Duration,
    pub forward_pre: std::time::Duration,
    pub forward_step: std::time::Duration,
    pub backward_step: std::time::Duration,
    pub backward_post: std::time::Duration,
    pub weight_grads: std::time::Duration,
}

/// Parameter lists per weight-gradient task, for a (task count, vocabulary) key.
pub(super) type GradTasks = ((usize, Option<usize>), Vec<Vec<usize>>);

/// The memory of runs at one size: every schedule buffer plus stacked weight copies, and the
/// tables of raw views a run fills in (allocated here, so a run allocates nothing).
pub struct Buffers {
    /// The sizes of the next run (`steps` may be below `capacity_steps`; see `set_steps`).
    pub sizes: Sizes,
    /// The most steps these buffers hold.
    pub(super) capacity_steps: usize,
    pub times: PhaseTimes,
    pub(super) data: Vec<Vec<f32>>,
    pub(super) stacks: Vec<Vec<f32>>,
    /// Every stack packed in 16-column panels for the `small_gemm` kernel (empty when the CPU
    /// lacks AVX2 and FMA; then `stacks` holds row-major copies for the `gemm` crate).
    pub(super) packed: Vec<Vec<f32>>,
    /// Address of each packed stack during a run (0: none).
    pub(super) packed_views: Vec<usize>,
    /// (address, length) of each buffer during a run.
    pub(super) views: Vec<(usize, usize)>,
    /// (address, length, columns) of each weight stack during a run.
    pub(super) stack_views: Vec<(usize, usize, usize)>,
    /// Embedded runs: per-vocabulary-entry values of x and of what the all-steps forward phase
    /// writes, [V, width] (empty when not used).
    pub(super) vocab: Vec<Vec<f32>>,
    /// Embedded runs: scratch for sums per vocabulary entry, one per thread.
    pub(super) scatter: Vec<Vec<f32>>,
    /// (address, length) of each `scatter` buffer during a run.
    pub(super) scatter_views: Vec<(usize, usize)>,
    /// (address, length) of each parameter's gradient during a run.
    pub(super) grad_dsts: Vec<(usize, usize)>,
    /// Caller memory standing in for each buffer, (address, length); (0, 0): the buffer's own
    /// `data`. Set by [`Buffers::attach_saved`].
    pub(super) external: Vec<(usize, usize)>,
    /// The split of the weight-gradient tasks over threads, for the (tasks, vocabulary) it was
    /// made for: kept, so that runs after the first allocate nothing.
    pub(super) grad_plan: Option<GradTasks>,
    /// The masks forward runs fill in ([`Buffers::set_masks`]).
    pub(super) masks: crate::ir::MaskDraw,
    /// Per step, how many examples run ([`Buffers::set_lengths`]); empty: all of them.
    pub(super) active: Vec<usize>,
}

impl Buffers {
    pub(super) fn rows(&self, block_from: usize, blocks: usize) -> std::ops::Range<usize> {
        let w = self.sizes.hidden * self.sizes.batch;
        block_from * w..(block_from + blocks) * w
    }

    pub(super) fn input_rows(&self) -> usize {
        self.sizes.input * self.sizes.batch * self.sizes.steps
    }

    /// Buffer `i`: caller memory while attached, else its own.
    pub(super) fn buf(&self, i: usize) -> &[f32] {
        match self.external[i] {
            (0, _) => &self.data[i],
            // SAFETY: `attach_saved`'s contract: the memory is valid and ours until `detach`.
            (addr, len) => unsafe { std::slice::from_raw_parts(addr as *const f32, len) },
        }
    }

    /// Buffer `i`, writable: caller memory while attached, else its own.
    pub(super) fn buf_mut(&mut self, i: usize) -> &mut [f32] {
        match self.external[i] {
            (0, _) => &mut self.data[i],
            // SAFETY: `attach_saved`'s contract: the memory is valid and ours until `detach`.
            (addr, len) => unsafe { std::slice::from_raw_parts_mut(addr as *mut f32, len) },
        }
    }

    /// Makes the buffers of [`Engine::saved_buffers`] live in caller memory of
    /// [`Engine::saved_len`] values, laid out as [`Buffers::export_saved`] writes them, until
    /// [`Buffers::detach`]: a forward run then leaves its saved activations there, and a backward
    /// run reads them from there (it never writes them), with no copies either way.
    ///
    /// # Safety
    /// `memory` must be valid for reads and writes of `len` f32 values, and nothing else may
    /// access it, until `detach` is called or these buffers are dropped.
    pub unsafe fn attach_saved(&mut self, e: &Engine, memory: *mut f32, len: usize) -> Result<(), String> {
        let want = e.saved_len(self.sizes);
        if len != want {
            return Err(format!("saved activations: {len} values given, {want} needed"));
        }
        if want > 0 && memory.is_null() {
            return Err("saved activations: null memory".into());
        }
        let mut at = 0;
        for (i, b) in e.schedule.buffers.iter().enumerate() {
            if e.saved[i] {
                let n = ctx::buffer_len(b, self.sizes);
                // A buffer of no values keeps its own (empty) memory.
                // SAFETY: at + n <= len, by the sum that `saved_len` is.
                self.external[i] = if n == 0 { (0, 0) } else { (unsafe { memory.add(at) } as usize, n) };
                at += n;
            }
        }
        Ok(())
    }

    /// Makes x ([T, B, D] at the current sizes) the caller's memory until [`Buffers::detach`]:
    /// runs read it in place (no run writes x, except the embedded ones, which refuse attached
    /// memory).
    ///
    /// # Safety
    /// `x` must be valid for reads of `len` values and unchanged until `detach` or drop.
    pub unsafe fn attach_input(&mut self, e: &Engine, x: *const f32, len: usize) -> Result<(), String> {
        self.attach_one(e.schedule.input_buf, x as *mut f32, len, "x")
    }

    /// Makes the gradient of x ([T, B, D]) the caller's memory until [`Buffers::detach`]: a
    /// backward run writes every value of it there.
    ///
    /// # Safety
    /// `dx` must be valid for writes of `len` values, and nothing else may access it, until
    /// `detach` or drop.
    pub unsafe fn attach_input_grad(&mut self, e: &Engine, dx: *mut f32, len: usize) -> Result<(), String> {
        self.attach_one(e.schedule.input_grad_buf, dx, len, "the gradient of x")
    }

    fn attach_one(&mut self, buf: usize, memory: *mut f32, len: usize, what: &str) -> Result<(), String> {
        let want = self.input_rows();
        if len != want || memory.is_null() {
            return Err(format!("{what}: {len} values at {memory:?} given, {want} needed"));
        }
        self.external[buf] = (memory as usize, len);
        Ok(())
    }

    /// Back to the buffers' own memory after [`Buffers::attach_saved`].
    pub fn detach(&mut self) {
        self.external.fill((0, 0));
    }

    /// Whether caller memory is attached.
    pub(super) fn attached(&self) -> bool {
        self.external.iter().any(|&(a, _)| a != 0)
    }

    /// x, [T, B, D] row-major, as the last run read it.
    pub fn input(&self, e: &Engine) -> &[f32] {
        let n = self.input_rows();
        &self.buf(e.schedule.input_buf)[..n]
    }

    /// x, [T, B, D] row-major.
    pub fn input_mut(&mut self, e: &Engine) -> &mut [f32] {
        // An attached x is the caller's read-only memory.
        assert_eq!(self.external[e.schedule.input_buf].0, 0, "x is attached read-only");
        let n = self.input_rows();
        &mut self.buf_mut(e.schedule.input_buf)[..n]
    }

    /// The initial value of state `s`, [B, H].
    pub fn initial_state_mut(&mut self, e: &Engine, s: usize) -> &mut [f32] {
        let r = self.rows(0, 1);
        &mut self.buf_mut(e.schedule.state_bufs[s])[r]
    }

    /// The initial value of state `s`, [B, H].
    pub fn initial_state(&self, e: &Engine, s: usize) -> &[f32] {
        let r = self.rows(0, 1);
        &self.buf(e.schedule.state_bufs[s])[r]
    }

    /// State `s` after every step, [T, B, H].
    pub fn state(&self, e: &Engine, s: usize) -> &[f32] {
        let r = self.rows(1, self.sizes.steps);
        &self.buf(e.schedule.state_bufs[s])[r]
    }

    /// The emitted state after every step, [T, B, H].
    pub fn output(&self, e: &Engine) -> &[f32] {
        self.state(e, e.forward.sig.output)
    }

    /// The final value of state `s`, [B, H].
    pub fn final_state(&self, e: &Engine, s: usize) -> &[f32] {
        let r = self.rows(self.sizes.steps, 1);
        &self.buf(e.schedule.state_bufs[s])[r]
    }

    /// Sets every initial state to zero.
    pub fn zero_states(&mut self, e: &Engine) {
        let r = self.rows(0, 1);
        for &b in &e.schedule.state_bufs {
            self.buf_mut(b)[r.clone()].fill(0.0);
        }
    }

    /// Runs sequences of `steps` steps (at most the steps these buffers were made for) from now
    /// on: one set of buffers serves batches of any length up to its capacity.
    pub fn set_steps(&mut self, steps: usize) -> Result<(), String> {
        if steps == 0 || steps > self.capacity_steps {
            return Err(format!("{steps} steps do not fit buffers made for 1..={} steps", self.capacity_steps));
        }
        self.sizes.steps = steps;
        Ok(())
    }

    /// The most steps these buffers can run.
    pub fn capacity_steps(&self) -> usize {
        self.capacity_steps
    }

    /// The final value of state `s` of the last run, writable: what `carry_states` will start
    /// the next run from (restoring a training run's carried state).
    pub fn final_state_mut(&mut self, e: &Engine, s: usize) -> &mut [f32] {
        let r = self.rows(self.sizes.steps, 1);
        &mut self.buf_mut(e.schedule.state_bufs[s])[r]
    }

    /// Makes the final states of the last run the initial states of the next.
    pub fn carry_states(&mut self, e: &Engine) {
        let first = self.rows(0, 1);
        let last = self.rows(self.sizes.steps, 1);
        for &b in &e.schedule.state_bufs {
            self.buf_mut(b).copy_within(last.clone(), first.start);
        }
    }

    /// Writes every buffer of [`Engine::saved_buffers`] (at the current sizes) into `out`, one
    /// after another: after a forward run, all that a backward run needs besides the weights.
    pub fn export_saved(&self, e: &Engine, out: &mut [f32]) -> Result<(), String> {
        let want = e.saved_len(self.sizes);
        if out.len() != want {
            return Err(format!("saved activations: {} values given, {want} needed", out.len()));
        }
        let mut at = 0;
        for (i, b) in e.schedule.buffers.iter().enumerate() {
            if e.saved[i] {
                let n = ctx::buffer_len(b, self.sizes);
                out[at..at + n].copy_from_slice(&self.buf(i)[..n]);
                at += n;
            }
        }
        Ok(())
    }

    /// The gradient of x after a backward run, [T, B, D].
    pub fn input_grad(&self, e: &Engine) -> &[f32] {
        &self.buf(e.schedule.input_grad_buf)[..self.input_rows()]
    }

    /// The gradient of the initial value of state `s` after a backward run, [B, H].
    pub fn initial_state_grad(&self, e: &Engine, s: usize) -> &[f32] {
        let r = self.rows(0, 1);
        &self.data[e.schedule.adjoint_bufs[s]][r]
    }
}
