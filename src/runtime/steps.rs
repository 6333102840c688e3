//! The phases of a run: setup, the all-steps pre phase, the time loop (batch-split or lockstep), and backward.

use std::time::Instant;

use super::ctx::{Ctx, Rows, matrix_shape, stack_shape};
use super::faults;
use super::pool::{parallel, parallel_parts};
use super::{Buffers, Engine};
use crate::schedule::{BufferRole, Stage};

pub fn forward(e: &Engine, bufs: &mut Buffers, weights: &[Vec<f32>], threads: usize) {
    let s = bufs.sizes;
    let mut times = bufs.times;
    let ctx = Ctx::new(e, bufs, weights);
    let sch = &e.schedule;
    let t0 = Instant::now();
    for stage in &sch.setup {
        ctx.run(stage, Rows::Once);
    }
    parallel(threads, s.steps * s.batch, |from, count| {
        for stage in &sch.forward_pre {
            ctx.run(stage, Rows::All { from, count });
        }
    });
    let t1 = Instant::now();
    run_steps(&ctx, &sch.forward_step, false, threads);
    clear_ended_forward(e, bufs);
    times.forward_pre += t1 - t0;
    times.forward_step += t1.elapsed();
    bufs.times = times;
}

/// Zeroes what the forward phases stored for the rows of ended examples (stale or computed from
/// padding): the gradient GEMMs read every row.
fn clear_ended_forward(e: &Engine, bufs: &mut Buffers) {
    super::lengths::clear_ended(e, bufs, &e.schedule.forward_pre, false);
    super::lengths::clear_ended(e, bufs, &e.schedule.forward_step, false);
}

/// Whether per-step phases run in lockstep (threads split each GEMM's columns and each kernel's
/// rows, meeting at a barrier after every stage) rather than each thread running the whole time
/// loop for its own examples. Lockstep pays barriers but reads each weight once per step instead
/// of once per thread: it wins when the per-step weights do not fit in a core's cache.
fn lockstep(ctx: &Ctx<'_>, stages: &[Stage], threads: usize) -> bool {
    const CACHE_FLOATS: usize = 64 * 1024; // 256 KiB: well inside a core's L2
    let gemm_stacks = || {
        stages.iter().filter_map(|st| match st {
            Stage::Gemm { stack, .. } => Some(*stack),
            Stage::Kernel { .. } => None,
        })
    };
    // Lockstep splits GEMMs by packed panels, so it needs every per-step stack packed.
    if threads < 2 || ctx.sizes.batch < 2 || gemm_stacks().any(|st| ctx.packed[st] == 0) {
        return false;
    }
    match ctx.e.step_mode {
        super::StepMode::Batch => false,
        super::StepMode::Lockstep => true,
        super::StepMode::Auto => gemm_stacks().any(|st| {
            let (k, n) = stack_shape(&ctx.e.forward.sig, &ctx.e.schedule.stacks[st], ctx.sizes);
            k * n > CACHE_FLOATS
        }),
    }
}

/// A spin barrier: threads in lockstep meet here after each stage. A thread that panics breaks
/// it, and every thread waiting (or arriving later) leaves instead of waiting for ever: the
/// step ends on every thread and the pool reports the panic to the caller.
#[derive(Default)]
struct Barrier {
    arrived: std::sync::atomic::AtomicUsize,
    generation: std::sync::atomic::AtomicUsize,
    broken: std::sync::atomic::AtomicBool,
    n: usize,
}

impl Barrier {
    /// False when the barrier is broken: stop.
    fn wait(&self) -> bool {
        use std::sync::atomic::Ordering::{AcqRel, Acquire, Release};
        let generation = self.generation.load(Acquire);
        if self.arrived.fetch_add(1, AcqRel) + 1 == self.n {
            self.arrived.store(0, Release);
            self.generation.fetch_add(1, Release);
            return !self.broken.load(Acquire);
        }
        let mut spins = 0u32;
        while self.generation.load(Acquire) == generation {
            if self.broken.load(Acquire) {
                return false;
            }
            spins += 1;
            if spins < 4096 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        !self.broken.load(Acquire)
    }

    /// Runs one thread's part; a panic in it breaks the barrier, then goes on to the pool.
    fn guard(&self, part: impl FnOnce()) {
        use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
        if let Err(payload) = catch_unwind(AssertUnwindSafe(part)) {
            self.broken.store(true, std::sync::atomic::Ordering::Release);
            resume_unwind(payload);
        }
    }
}

/// Runs a per-step phase for every step (from the last with `reverse`).
fn run_steps(ctx: &Ctx<'_>, stages: &[Stage], reverse: bool, threads: usize) {
    let s = ctx.sizes;
    let order = move |i: usize| if reverse { s.steps - 1 - i } else { i };
    if !lockstep(ctx, stages, threads) {
        parallel(threads, s.batch, |from, count| {
            for i in 0..s.steps {
                let t = order(i);
                let live = ctx.active(t).clamp(from, from + count) - from;
                if live > 0 {
                    for stage in stages {
                        ctx.run(stage, Rows::Step { t, from, count: live });
                    }
                }
                end_step(ctx, t, from, from + count, reverse);
            }
        });
        return;
    }
    let threads = threads.min(s.batch);
    let barrier = Barrier { n: threads, ..Barrier::default() };
    // A barrier is needed after a GEMM (kernels read all its columns) and before a GEMM (it
    // reads all rows); consecutive kernels work on their own rows.
    let barrier_after = |k: usize| {
        matches!(stages[k], Stage::Gemm { .. }) || matches!(stages[(k + 1) % stages.len()], Stage::Gemm { .. })
    };
    let rows = s.batch.div_ceil(threads);
    super::pool::run(threads, &|i| {
        let (from, to) = ((i * rows).min(s.batch), ((i + 1) * rows).min(s.batch));
        barrier.guard(|| {
            for step in 0..s.steps {
                let t = order(step);
                faults::at_step(i, step);
                let live = to.min(ctx.active(t));
                for (k, stage) in stages.iter().enumerate() {
                    match stage {
                        Stage::Gemm { operand, stack, out, .. } => ctx.gemm_part(operand, *stack, out, t, i, threads),
                        Stage::Kernel { .. } => {
                            if from < live {
                                ctx.run(stage, Rows::Step { t, from, count: live - from });
                            }
                        }
                    }
                    // Ended examples before the step's last barrier: the next step's GEMM
                    // may read an adjoint that passed through one.
                    if k + 1 == stages.len() {
                        end_step(ctx, t, from, to, reverse);
                    }
                    if barrier_after(k) && !barrier.wait() {
                        return;
                    }
                }
                if stages.is_empty() {
                    end_step(ctx, t, from, to, reverse);
                }
            }
        });
    });
}

/// After step t on rows `from..to`: the examples that have ended keep their state (forward) or
/// pass their state adjoint on (backward).
fn end_step(ctx: &Ctx<'_>, t: usize, from: usize, to: usize, reverse: bool) {
    if ctx.active.is_empty() {
        return;
    }
    if reverse { ctx.pass_adjoints(t, from, to) } else { ctx.hold_states(t, from, to) }
}

/// The temporaries the all-steps forward phase writes, or `None` if it writes anything else
/// (a state that depends on x alone): the buffers an embedded run computes per vocabulary entry.
pub fn pre_outputs(e: &Engine) -> Option<Vec<usize>> {
    let sch = &e.schedule;
    let mut out = vec![];
    // A mask differs from row to row: what reads one cannot be computed per vocabulary entry.
    let reads_mask = |stage: &Stage| match stage {
        Stage::Gemm { operand, .. } => matches!(sch.buffers[operand.buf].role, BufferRole::Mask(_)),
        Stage::Kernel { kernel, args } => args[..sch.kernels[*kernel].inputs.len()]
            .iter()
            .any(|s| matches!(sch.buffers[s.buf].role, BufferRole::Mask(_))),
    };
    if sch.forward_pre.iter().any(reads_mask) {
        return None;
    }
    for stage in &sch.forward_pre {
        let written: Vec<usize> = match stage {
            Stage::Gemm { out, .. } => vec![out.buf],
            Stage::Kernel { kernel, args } => args[sch.kernels[*kernel].inputs.len()..].iter().map(|s| s.buf).collect(),
        };
        for b in written {
            if sch.buffers[b].role != BufferRole::Temp {
                return None;
            }
            if !out.contains(&b) {
                out.push(b);
            }
        }
    }
    Some(out)
}

/// Scratch for per-vocabulary sums: one [V, widest] buffer per thread.
pub fn prepare_scatter(e: &Engine, bufs: &mut Buffers, vocab: usize, threads: usize) {
    let s = bufs.sizes;
    let sig = &e.forward.sig;
    let widest = (0..sig.params.len())
        .filter(|&p| sig.params[p].kind.is_matrix())
        .map(|p| matrix_shape(sig, p, s).0)
        .max()
        .unwrap_or(0)
        .max(s.hidden)
        .max(s.input);
    let want = vocab * widest;
    if bufs.scatter.len() != threads.max(1) || bufs.scatter.first().is_some_and(|b| b.len() < want) {
        bufs.scatter = (0..threads.max(1)).map(|_| vec![0.0; want]).collect();
    }
    if bufs.scatter_views.len() != bufs.scatter.len() {
        bufs.scatter_views = vec![(0, 0); bufs.scatter.len()];
    }
    for (view, b) in bufs.scatter_views.iter_mut().zip(bufs.scatter.iter_mut()) {
        *view = (b.as_mut_ptr() as usize, b.len());
    }
}

pub fn forward_embedded(
    e: &Engine,
    bufs: &mut Buffers,
    weights: &[Vec<f32>],
    table: &[f32],
    tokens: &[u32],
    threads: usize,
) {
    let s = bufs.sizes;
    let sch = &e.schedule;
    let outputs = e.embed_outputs.as_deref().expect("forward_embedded: check supports_embedding first");
    let d = s.input;
    let vocab = table.len() / d.max(1);
    assert_eq!(tokens.len(), s.steps * s.batch, "one token per row");
    // x itself is still needed by the backward pass: gather it.
    let x = &mut bufs.data[sch.input_buf];
    for (r, &tok) in tokens.iter().enumerate() {
        let t = tok as usize;
        x[r * d..(r + 1) * d].copy_from_slice(&table[t * d..(t + 1) * d]);
    }
    for &b in outputs.iter().chain([&sch.input_buf]) {
        let width = sch.buffers[b].width.at(s.hidden, s.input);
        if bufs.vocab[b].len() != vocab * width {
            bufs.vocab[b] = vec![0.0; vocab * width];
        }
    }
    bufs.vocab[sch.input_buf].copy_from_slice(table);
    let mut times = bufs.times;
    let t0 = Instant::now();
    {
        // The vocabulary pass: the pre phase's buffers swapped for their per-entry versions.
        let ctx = Ctx::new(e, bufs, weights);
        for stage in &sch.setup {
            ctx.run(stage, Rows::Once);
        }
    }
    let swapped = || outputs.iter().copied().chain([sch.input_buf]);
    for b in swapped() {
        std::mem::swap(&mut bufs.data[b], &mut bufs.vocab[b]);
    }
    {
        let ctx = Ctx::new(e, bufs, weights);
        parallel(threads, vocab, |from, count| {
            for stage in &sch.forward_pre {
                ctx.run(stage, Rows::All { from, count });
            }
        });
    }
    for b in swapped() {
        std::mem::swap(&mut bufs.data[b], &mut bufs.vocab[b]);
    }
    // Gather each token's row of every value the step phase reads.
    for &b in outputs {
        let width = sch.buffers[b].width.at(s.hidden, s.input);
        let (dst, src) = (&mut bufs.data[b], &bufs.vocab[b]);
        for (r, &tok) in tokens.iter().enumerate() {
            let t = tok as usize;
            dst[r * width..(r + 1) * width].copy_from_slice(&src[t * width..(t + 1) * width]);
        }
    }
    let t1 = Instant::now();
    let ctx = Ctx::new(e, bufs, weights);
    run_steps(&ctx, &sch.forward_step, false, threads);
    clear_ended_forward(e, bufs);
    times.forward_pre += t1 - t0;
    times.forward_step += t1.elapsed();
    bufs.times = times;
}

/// Zeroes every state adjoint and puts dy where the output state's next-step adjoints go.
pub fn seed_adjoints(e: &Engine, bufs: &mut Buffers, dy: &[f32]) {
    let s = bufs.sizes;
    let block = s.batch * s.hidden;
    for (i, &buf) in e.schedule.adjoint_bufs.iter().enumerate() {
        let d = &mut bufs.data[buf];
        d.fill(0.0);
        if i == e.forward.sig.output {
            d[block..block + dy.len()].copy_from_slice(dy);
        }
    }
}

pub fn backward(e: &Engine, bufs: &mut Buffers, weights: &[Vec<f32>], threads: usize) {
    let s = bufs.sizes;
    let mut times = bufs.times;
    // Per-part sums start from zero (kernels add every row of their part).
    for (b, buf) in e.schedule.buffers.iter().enumerate() {
        if buf.blocks == crate::schedule::Blocks::Parts {
            bufs.data[b].fill(0.0);
        }
    }
    let ctx = Ctx::new(e, bufs, weights);
    let sch = &e.schedule;
    let t0 = Instant::now();
    run_steps(&ctx, &sch.backward_step, true, threads);
    super::lengths::clear_ended(e, bufs, &sch.backward_step, true);
    let ctx = Ctx::new(e, bufs, weights);
    let t1 = Instant::now();
    parallel_parts(threads, s.steps * s.batch, |part, from, count| {
        ctx.live_rows(from, count, |from, count| {
            for stage in &sch.backward_post {
                ctx.run(stage, Rows::Part { part, from, count });
            }
        });
    });
    super::lengths::clear_ended(e, bufs, &sch.backward_post, false);
    times.backward_step += t1 - t0;
    times.backward_post += t1.elapsed();
    bufs.times = times;
}
