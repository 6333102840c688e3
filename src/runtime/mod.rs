//! Running a compiled cell over sequences: buffers laid out for the GEMMs (batch-major, a row per
//! example and step), the schedule's phases, and batch-parallel threads. With `codegen`, the only
//! module with `unsafe`; its API is safe.
//!
//! A run works on [`Buffers`] allocated once per size and reused: nothing inside the time loop
//! allocates (`tests/alloc.rs` counts). The per-step phases run in one of two [`StepMode`]s:
//! threads split the batch and each runs the whole time loop for its examples with no
//! synchronisation (small weights), or threads run in lockstep, splitting each step's GEMM by
//! output columns and its kernels by rows, with a spin barrier between stages (weights too big
//! for one core's cache, which each thread would otherwise stream). All-steps phases split rows;
//! weight gradients are cost-balanced tasks. Every split is fixed by the thread count, so a given
//! thread count always gives the same numbers.

mod ctx;
pub mod denormals;
pub mod gemm;
mod grads;
pub mod inspect;
pub mod openmp;
pub mod pool;
pub mod small_gemm;
#[cfg(target_arch = "x86_64")]
pub mod softmax;
pub mod softmax_avx2;
mod stacks;
mod steps;
pub mod stream;

pub use pool::{par_chunks_mut, parallel};

use crate::autodiff::Backward;
use crate::check::Cell;
use crate::codegen::{self, Kernels};
use crate::ir::Graph;
use crate::schedule::{self, BufferRole, Schedule};

/// CPU time this process has used, all threads together: unlike wall time, it does not grow
/// when the machine's other tenants take the cores (steal time on a shared VM).
pub fn cpu_time() -> std::time::Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid timespec to write; the clock id is a constant the kernel knows.
    let ok = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) } == 0;
    if !ok {
        return std::time::Duration::ZERO;
    }
    std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Problem sizes of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sizes {
    pub hidden: usize,
    pub input: usize,
    pub batch: usize,
    pub steps: usize,
}

/// How threads share a per-step phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum StepMode {
    /// Lockstep when the per-step weights do not fit in cache, else split the batch.
    #[default]
    Auto,
    /// Each thread runs the whole time loop for its share of the batch.
    Batch,
    /// Threads split every GEMM's columns and every kernel's rows, with a barrier per stage.
    Lockstep,
}

/// A cell compiled to kernels, ready to run at any size.
pub struct Engine {
    pub forward: Graph,
    pub backward: Backward,
    pub schedule: Schedule,
    pub kernels: Kernels,
    pub step_mode: StepMode,
    /// What the all-steps forward phase writes, when that is temporaries only (see
    /// [`Engine::supports_embedding`]); found once here so runs need not allocate it.
    embed_outputs: Option<Vec<usize>>,
    /// Per buffer, whether it is among [`Engine::saved_buffers`].
    saved: Vec<bool>,
    /// Whether a backward run writes one of the saved buffers (then it cannot run on attached
    /// memory that must stay unchanged; `tests/jit.rs` finds none among std and random cells).
    backward_writes_saved: bool,
}

/// Most arguments one kernel may take (pointers are passed in a fixed-size array).
pub const MAX_KERNEL_ARGS: usize = 64;

impl Engine {
    /// Lowers, differentiates, schedules and compiles a checked cell.
    pub fn compile(cell: &Cell) -> Result<Engine, String> {
        Engine::from_graph(crate::ir::lower(cell))
    }

    pub fn from_graph(forward: Graph) -> Result<Engine, String> {
        let backward = crate::autodiff::grad(&forward);
        let schedule = schedule::plan(&backward);
        if let Some(k) = schedule.kernels.iter().find(|k| k.inputs.len() + k.outputs.len() > MAX_KERNEL_ARGS) {
            return Err(format!("kernel {} has more than {MAX_KERNEL_ARGS} arguments", k.name));
        }
        let kernels = codegen::compile(&backward.graph, &schedule, codegen::Options::default())?;
        let saved = forward_written(&schedule);
        let backward_written = written_by(&schedule, [&schedule.backward_step, &schedule.backward_post]);
        let backward_writes_saved = saved.iter().zip(&backward_written).any(|(s, b)| *s && *b);
        let mut engine = Engine {
            forward,
            backward,
            schedule,
            kernels,
            step_mode: StepMode::Auto,
            embed_outputs: None,
            saved,
            backward_writes_saved,
        };
        engine.embed_outputs = steps::pre_outputs(&engine);
        Ok(engine)
    }

    /// Buffers for runs of this size.
    pub fn buffers(&self, sizes: Sizes) -> Result<Buffers, String> {
        let sig = &self.forward.sig;
        if sig.d_equals_h && sizes.input != sizes.hidden {
            return Err(format!("cell `{}` needs input size D equal to hidden size H", sig.name));
        }
        if sizes.batch == 0 || sizes.hidden == 0 || sizes.input == 0 {
            return Err("batch, hidden and input sizes must be at least 1".into());
        }
        let data = self
            .schedule
            .buffers
            .iter()
            .map(|b| match b.role {
                BufferRole::Param(_) => vec![],
                _ => vec![0.0; ctx::buffer_len(b, sizes)],
            })
            .collect();
        // Row-major stacked copies, for the `gemm` crate, only where the packed kernel cannot run.
        let packing = gemm::small_gemm_ok();
        let stacks = self
            .schedule
            .stacks
            .iter()
            .map(|st| {
                if !packing && (st.transposed || st.params.len() > 1) {
                    vec![0.0; ctx::stack_len(sig, st, sizes)]
                } else {
                    vec![]
                }
            })
            .collect();
        let views = vec![(0, 0); self.schedule.buffers.len()];
        let stack_views = vec![(0, 0, 0); self.schedule.stacks.len()];
        let vocab = vec![vec![]; self.schedule.buffers.len()];
        let packed = stacks::packed_stacks(self, sizes);
        let packed_views = vec![0; self.schedule.stacks.len()];
        Ok(Buffers {
            sizes,
            capacity_steps: sizes.steps,
            times: PhaseTimes::default(),
            data,
            stacks,
            packed,
            packed_views,
            views,
            stack_views,
            vocab,
            scatter: vec![],
            scatter_views: vec![],
            grad_dsts: vec![(0, 0); sig.params.len()],
            external: vec![(0, 0); self.schedule.buffers.len()],
            grad_plan: None,
        })
    }

    /// The number of values each parameter has at these sizes, in the signature's order.
    pub fn param_lens(&self, sizes: Sizes) -> Vec<usize> {
        self.forward.sig.params.iter().map(|p| p.len(sizes.hidden, sizes.input)).collect()
    }

    fn check_weights(&self, bufs: &Buffers, weights: &[Vec<f32>]) {
        let s = bufs.sizes;
        assert_eq!(weights.len(), self.forward.sig.params.len(), "one weight vector per parameter");
        for (w, p) in weights.iter().zip(&self.forward.sig.params) {
            assert_eq!(w.len(), p.len(s.hidden, s.input), "weight size of {}", p.name);
        }
    }

    /// Runs the cell over the sequence in `bufs`: reads x (`input_mut`) and the initial states
    /// (`initial_state_mut`), writes every state at every step (`state`, `output`).
    pub fn forward(&self, bufs: &mut Buffers, weights: &[Vec<f32>], threads: usize) {
        self.check_weights(bufs, weights);
        let t0 = std::time::Instant::now();
        stacks::prepare_stacks(self, bufs, weights);
        bufs.times.weights += t0.elapsed();
        steps::forward(self, bufs, weights, threads);
    }

    /// Backpropagation through time after [`Engine::forward`], for the loss sum(dy * y) where y
    /// is the output state at every step. Writes each parameter's gradient into `grads`
    /// (overwriting), the input gradient (`input_grad`) and the initial-state gradients
    /// (`initial_state_grad`).
    pub fn backward(
        &self,
        bufs: &mut Buffers,
        weights: &[Vec<f32>],
        dy: &[f32],
        grads: &mut [Vec<f32>],
        threads: usize,
    ) {
        if let Err(e) = self.backward_final(bufs, weights, dy, &[], grads, threads) {
            panic!("{e}");
        }
    }

    /// The buffers a backward run reads that a forward run writes (every state, every
    /// intermediate value), in schedule order: what a caller must carry from a forward run on one
    /// [`Buffers`] to a backward run on another (the PyTorch op, whose backward is a separate
    /// call), besides x and the weights (weight stacks are rebuilt from the weights).
    pub fn saved_buffers(&self) -> impl Iterator<Item = &schedule::Buffer> + '_ {
        self.schedule.buffers.iter().enumerate().filter(|(i, _)| self.saved[*i]).map(|(_, b)| b)
    }

    /// The number of values [`Buffers::export_saved`] writes at these sizes.
    pub fn saved_len(&self, sizes: Sizes) -> usize {
        self.saved_buffers().map(|b| ctx::buffer_len(b, sizes)).sum()
    }

    /// Lays the weights out for the GEMMs in `bufs`, as a forward run does first: what a
    /// backward run on buffers that did not run the forward pass needs (after
    /// [`Buffers::attach_saved`]).
    pub fn prepare_weights(&self, bufs: &mut Buffers, weights: &[Vec<f32>]) {
        self.check_weights(bufs, weights);
        let t0 = std::time::Instant::now();
        stacks::prepare_stacks(self, bufs, weights);
        bufs.times.weights += t0.elapsed();
    }

    /// [`Engine::backward`] for the loss sum(dy * y) + sum over states of sum(d_final[s] * final
    /// value of s): the gradient of a loss that also reads the final states (one [B, H] per
    /// state, or none).
    pub fn backward_final(
        &self,
        bufs: &mut Buffers,
        weights: &[Vec<f32>],
        dy: &[f32],
        d_final: &[&[f32]],
        grads: &mut [Vec<f32>],
        threads: usize,
    ) -> Result<(), String> {
        let s = bufs.sizes;
        let block = s.batch * s.hidden;
        if !d_final.is_empty() && d_final.len() != self.schedule.state_bufs.len() {
            return Err(format!(
                "{} final-state gradients for {} states",
                d_final.len(),
                self.schedule.state_bufs.len()
            ));
        }
        if let Some(d) = d_final.iter().find(|d| d.len() != block) {
            return Err(format!("a final-state gradient has {} values, expected B*H = {block}", d.len()));
        }
        if dy.len() != s.steps * block {
            return Err(format!("dy has {} values, expected T*B*H = {}", dy.len(), s.steps * block));
        }
        for (g, p) in grads.iter().zip(&self.forward.sig.params) {
            if g.len() != p.len(s.hidden, s.input) {
                return Err(format!(
                    "gradient size of {}: {} values, expected {}",
                    p.name,
                    g.len(),
                    p.len(s.hidden, s.input)
                ));
            }
        }
        self.check_weights(bufs, weights);
        if bufs.attached() && self.backward_writes_saved {
            return Err(format!("cell `{}`: its backward pass writes saved activations", self.forward.sig.name));
        }
        steps::seed_adjoints(self, bufs, dy);
        for (&buf, d) in self.schedule.adjoint_bufs.iter().zip(d_final) {
            // Block T holds the adjoint of the state after the last step.
            let last = &mut bufs.data[buf][s.steps * block..(s.steps + 1) * block];
            last.iter_mut().zip(d.iter()).for_each(|(a, d)| *a += d);
        }
        steps::backward(self, bufs, weights, threads);
        let t0 = std::time::Instant::now();
        grads::input_grad(self, bufs, weights, threads);
        let t1 = std::time::Instant::now();
        bufs.times.backward_post += t1 - t0;
        grads::param_grads(self, bufs, weights, grads, threads, None);
        bufs.times.weight_grads += t1.elapsed();
        Ok(())
    }

    /// Whether [`Engine::forward_embedded`] applies: the all-steps forward phase writes only
    /// temporaries (no state is a function of x alone).
    pub fn supports_embedding(&self) -> bool {
        self.embed_outputs.is_some()
    }

    /// Flops per row of the matrix products that read x alone (the forward-pre GEMMs): what
    /// [`Engine::forward_embedded`] computes per vocabulary entry instead of per token. Their
    /// input and weight gradients cost as much again each.
    pub fn input_projection_flops(&self, sizes: Sizes) -> u64 {
        let sig = &self.forward.sig;
        self.schedule
            .forward_pre
            .iter()
            .map(|stage| match stage {
                schedule::Stage::Gemm { stack, .. } => {
                    let (k, n) = ctx::stack_shape(sig, &self.schedule.stacks[*stack], sizes);
                    2 * (k * n) as u64
                }
                schedule::Stage::Kernel { .. } => 0,
            })
            .sum()
    }

    /// [`Engine::forward`] for an input x that is rows of an embedding `table` ([V, D]) picked by
    /// `tokens` ([T, B]): everything that depends on x alone is computed once per vocabulary
    /// entry and then gathered, instead of once per token. Worth it when V is well below T*B.
    pub fn forward_embedded(
        &self,
        bufs: &mut Buffers,
        weights: &[Vec<f32>],
        table: &[f32],
        tokens: &[u32],
        threads: usize,
    ) {
        self.check_weights(bufs, weights);
        assert!(!bufs.attached(), "embedded runs use the buffers' own memory");
        let t0 = std::time::Instant::now();
        stacks::prepare_stacks(self, bufs, weights);
        bufs.times.weights += t0.elapsed();
        steps::forward_embedded(self, bufs, weights, table, tokens, threads);
    }

    /// [`Engine::backward`] after [`Engine::forward_embedded`]: instead of the input gradient,
    /// writes the gradient of the embedding table into `dtable` ([V, D]), formed per vocabulary
    /// entry; weights that multiply x get their gradients from the table too.
    #[allow(clippy::too_many_arguments)]
    pub fn backward_embedded(
        &self,
        bufs: &mut Buffers,
        weights: &[Vec<f32>],
        dy: &[f32],
        grads: &mut [Vec<f32>],
        table: &[f32],
        tokens: &[u32],
        dtable: &mut [f32],
        threads: usize,
    ) {
        self.check_weights(bufs, weights);
        let s = bufs.sizes;
        let vocab = table.len() / s.input.max(1);
        assert_eq!(dtable.len(), table.len(), "dtable is [V, D]");
        steps::prepare_scatter(self, bufs, vocab, threads);
        steps::seed_adjoints(self, bufs, dy);
        steps::backward(self, bufs, weights, threads);
        let emb = grads::Embedded { table, tokens, vocab };
        let t0 = std::time::Instant::now();
        grads::table_grad(self, bufs, weights, &emb, dtable, threads);
        let t1 = std::time::Instant::now();
        bufs.times.backward_post += t1 - t0;
        grads::param_grads(self, bufs, weights, grads, threads, Some(&emb));
        bufs.times.weight_grads += t1.elapsed();
    }
}

/// Per buffer, whether a forward run writes it: the states, and whatever a stage of the setup or
/// forward phases stores into (x is the caller's; see [`Buffers::attach_input`]). Not the backward phases' temporaries, which hold what
/// the last backward run left (exporting them would make the saved values vary between calls).
fn forward_written(sch: &Schedule) -> Vec<bool> {
    let mut written = written_by(sch, [&sch.setup, &sch.forward_pre, &sch.forward_step]);
    for &b in &sch.state_bufs {
        written[b] = true;
    }
    written
}

/// Per buffer, whether a stage of `phases` stores into it.
fn written_by<'a>(sch: &Schedule, phases: impl IntoIterator<Item = &'a Vec<schedule::Stage>>) -> Vec<bool> {
    let mut written = vec![false; sch.buffers.len()];
    for stage in phases.into_iter().flatten() {
        match stage {
            schedule::Stage::Gemm { out, .. } => written[out.buf] = true,
            schedule::Stage::Kernel { kernel, args } => {
                for slot in &args[sch.kernels[*kernel].inputs.len()..] {
                    written[slot.buf] = true;
                }
            }
        }
    }
    written
}

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

/// The memory of runs at one size: every schedule buffer plus stacked weight copies, and the
/// tables of raw views a run fills in (allocated here, so a run allocates nothing).
/// Parameter lists per weight-gradient task, for a (task count, vocabulary) key.
type GradTasks = ((usize, Option<usize>), Vec<Vec<usize>>);

pub struct Buffers {
    /// The sizes of the next run (`steps` may be below `capacity_steps`; see `set_steps`).
    pub sizes: Sizes,
    /// The most steps these buffers hold.
    capacity_steps: usize,
    pub times: PhaseTimes,
    data: Vec<Vec<f32>>,
    stacks: Vec<Vec<f32>>,
    /// Every stack packed in 16-column panels for the `small_gemm` kernel (empty when the CPU
    /// lacks AVX2 and FMA; then `stacks` holds row-major copies for the `gemm` crate).
    packed: Vec<Vec<f32>>,
    /// Address of each packed stack during a run (0: none).
    packed_views: Vec<usize>,
    /// (address, length) of each buffer during a run.
    views: Vec<(usize, usize)>,
    /// (address, length, columns) of each weight stack during a run.
    stack_views: Vec<(usize, usize, usize)>,
    /// Embedded runs: per-vocabulary-entry values of x and of what the all-steps forward phase
    /// writes, [V, width] (empty when not used).
    vocab: Vec<Vec<f32>>,
    /// Embedded runs: scratch for sums per vocabulary entry, one per thread.
    scatter: Vec<Vec<f32>>,
    /// (address, length) of each `scatter` buffer during a run.
    scatter_views: Vec<(usize, usize)>,
    /// (address, length) of each parameter's gradient during a run.
    grad_dsts: Vec<(usize, usize)>,
    /// Caller memory standing in for each buffer, (address, length); (0, 0): the buffer's own
    /// `data`. Set by [`Buffers::attach_saved`].
    external: Vec<(usize, usize)>,
    /// The split of the weight-gradient tasks over threads, for the (tasks, vocabulary) it was
    /// made for: kept, so that runs after the first allocate nothing.
    grad_plan: Option<GradTasks>,
}

impl Buffers {
    fn rows(&self, block_from: usize, blocks: usize) -> std::ops::Range<usize> {
        let w = self.sizes.hidden * self.sizes.batch;
        block_from * w..(block_from + blocks) * w
    }

    fn input_rows(&self) -> usize {
        self.sizes.input * self.sizes.batch * self.sizes.steps
    }

    /// Buffer `i`: caller memory while attached, else its own.
    fn buf(&self, i: usize) -> &[f32] {
        match self.external[i] {
            (0, _) => &self.data[i],
            // SAFETY: `attach_saved`'s contract: the memory is valid and ours until `detach`.
            (addr, len) => unsafe { std::slice::from_raw_parts(addr as *const f32, len) },
        }
    }

    /// Buffer `i`, writable: caller memory while attached, else its own.
    fn buf_mut(&mut self, i: usize) -> &mut [f32] {
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
    fn attached(&self) -> bool {
        self.external.iter().any(|&(a, _)| a != 0)
    }

    /// x, [T, B, D] row-major.
    pub fn input_mut(&mut self, e: &Engine) -> &mut [f32] {
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
