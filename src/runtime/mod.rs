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

mod buffers;
mod ctx;
pub mod faults;
pub mod denormals;
pub mod gemm;
mod grads;
pub mod inspect;
mod lengths;
mod masks;
pub mod openmp;
pub mod pool;
pub mod small_gemm;
#[cfg(target_arch = "x86_64")]
pub mod softmax;
pub mod softmax_avx2;
mod stacks;
mod steps;
pub mod stream;

pub use ctx::check_schedule;

pub use buffers::{Buffers, PhaseTimes};
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
        ctx::check_schedule(&backward.graph, &schedule)
            .map_err(|e| format!("the schedule is wrong (a cellc bug): {e}"))?;
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
            masks: crate::ir::MaskDraw::Expected,
            active: vec![],
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
    /// (`initial_state_mut`), writes every state at every step (`state`, `output`). An error
    /// when a thread of the step failed (a bug, or a fault injected by a test): the step was
    /// stopped on every thread, the buffers hold no meaningful values, and the engine and its
    /// thread pool can run again.
    pub fn forward(&self, bufs: &mut Buffers, weights: &[Vec<f32>], threads: usize) -> Result<(), String> {
        self.check_weights(bufs, weights);
        let t0 = std::time::Instant::now();
        stacks::prepare_stacks(self, bufs, weights);
        bufs.times.weights += t0.elapsed();
        masks::fill(self, bufs, threads);
        lengths::clean_padding(self, bufs)?;
        guarded(|| steps::forward(self, bufs, weights, threads))
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
    ) -> Result<(), String> {
        self.backward_final(bufs, weights, dy, &[], grads, threads)
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
        guarded(|| steps::backward(self, bufs, weights, threads))?;
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
    ) -> Result<(), String> {
        self.check_weights(bufs, weights);
        assert!(!bufs.attached(), "embedded runs use the buffers' own memory");
        let t0 = std::time::Instant::now();
        stacks::prepare_stacks(self, bufs, weights);
        bufs.times.weights += t0.elapsed();
        masks::fill(self, bufs, threads);
        guarded(|| steps::forward_embedded(self, bufs, weights, table, tokens, threads))
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
    ) -> Result<(), String> {
        self.check_weights(bufs, weights);
        let s = bufs.sizes;
        let vocab = table.len() / s.input.max(1);
        assert_eq!(dtable.len(), table.len(), "dtable is [V, D]");
        steps::prepare_scatter(self, bufs, vocab, threads);
        steps::seed_adjoints(self, bufs, dy);
        guarded(|| steps::backward(self, bufs, weights, threads))?;
        let emb = grads::Embedded { table, tokens, vocab };
        let t0 = std::time::Instant::now();
        grads::table_grad(self, bufs, weights, &emb, dtable, threads);
        let t1 = std::time::Instant::now();
        bufs.times.backward_post += t1 - t0;
        grads::param_grads(self, bufs, weights, grads, threads, Some(&emb));
        bufs.times.weight_grads += t1.elapsed();
        Ok(())
    }
}

/// Per buffer, whether a forward run writes it: the states, and whatever a stage of the setup or
/// forward phases stores into (x is the caller's; see [`Buffers::attach_input`]). Not the
/// backward phases' temporaries, which hold what the last backward run left (exporting them
/// would make the saved values vary between calls).
fn forward_written(sch: &Schedule) -> Vec<bool> {
    let mut written = written_by(sch, [&sch.setup, &sch.forward_pre, &sch.forward_step]);
    for &b in &sch.state_bufs {
        written[b] = true;
    }
    // Filled before the forward run, read by the backward one.
    for (b, buf) in sch.buffers.iter().enumerate() {
        written[b] |= matches!(buf.role, BufferRole::Mask(_));
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

/// Runs a phase, turning a panic on any of its threads (which the pool passes to the caller
/// once every thread has stopped) into an error.
fn guarded(phase: impl FnOnce()) -> Result<(), String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(phase)).map_err(|payload| {
        let why = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".into());
        format!("a step of the cell failed and was stopped on every thread: {why}")
    })
}
