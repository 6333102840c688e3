//! No allocation in the time loop: a counting global allocator watches the engine's forward and
//! backward passes and the language model's training step, with 1 and 2 threads, in both step
//! modes, at two sequence lengths. The engine's forward pass allocates nothing at all; its
//! forward + backward allocates the same for T = 3 and T = 40, so nothing per step (what remains
//! is the `gemm` crate's packing workspace, made in each call of the all-steps products after
//! the time loop); a training step stays under a bound far below one allocation per step.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use cellc::runtime::{Engine, Sizes, StepMode};
use cellc::train::lm::{LmParams, LmRunner, LmShape};

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made by `f` (other test threads are kept out: this file has one test).
fn allocations(f: impl FnOnce()) -> usize {
    ALLOCATIONS.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    f();
    COUNTING.store(false, Ordering::SeqCst);
    ALLOCATIONS.load(Ordering::SeqCst)
}

/// Allocations of one engine forward, and of forward + backward (after a warm-up run at the
/// same sizes).
fn engine_pass(engine: &Engine, steps: usize, threads: usize) -> (usize, usize) {
    let sizes = Sizes { hidden: 20, input: 20, batch: 6, steps };
    let mut bufs = engine.buffers(sizes).unwrap();
    let weights: Vec<Vec<f32>> = engine.param_lens(sizes).into_iter().map(|n| vec![0.01; n]).collect();
    let mut grads: Vec<Vec<f32>> = weights.iter().map(|w| vec![0.0; w.len()]).collect();
    let dy = vec![0.1; steps * 6 * 20];
    let mut pass = |bufs: &mut cellc::runtime::Buffers| {
        engine.forward(bufs, &weights, threads).unwrap();
        engine.backward(bufs, &weights, &dy, &mut grads, threads).unwrap();
    };
    pass(&mut bufs);
    let forward = allocations(|| engine.forward(&mut bufs, &weights, threads).unwrap());
    (forward, allocations(|| pass(&mut bufs)))
}

/// Allocations of one language-model training step (after a warm-up step).
fn lm_step(engine: &Engine, steps: usize, vocab: usize, threads: usize) -> usize {
    let shape = LmShape { vocab, hidden: 16, layers: 2, batch: 4, steps, bidirectional: false };
    let mut runner = LmRunner::new(engine, shape, threads).unwrap();
    let mut params = LmParams::init(engine, shape, 1.0, 3);
    let tokens: Vec<u32> = (0..steps * 4).map(|i| (i % vocab) as u32).collect();
    let targets: Vec<u32> = tokens.iter().map(|t| (t + 1) % vocab as u32).collect();
    runner.train_step(&mut params, &tokens, &targets, 0.1).unwrap();
    allocations(|| {
        runner.train_step(&mut params, &tokens, &targets, 0.1).unwrap();
    })
}

#[test]
fn nothing_allocates_per_time_step() {
    let ws = cellc::workspace::Workspace::new();
    for name in ["gru", "lstm", "mut1"] {
        let mut engine = Engine::compile(&ws.check_std(name).unwrap().cells[0]).unwrap();
        for (threads, mode) in [(1, StepMode::Auto), (2, StepMode::Batch), (2, StepMode::Lockstep)] {
            engine.step_mode = mode;
            let ((fwd, short), (_, long)) = (engine_pass(&engine, 3, threads), engine_pass(&engine, 40, threads));
            eprintln!(
                "{name}, {threads} threads {mode:?}: forward allocates {fwd}, forward+backward {short} (T=3), {long} (T=40)"
            );
            assert_eq!(short, long, "{name}: allocations grow with T");
            if threads == 1 {
                assert_eq!(fwd, 0, "{name}: the forward pass allocates");
            }
            // Embedded (V small against T*B) and per-token first layers. The `gemm` crate's
            // workspaces vary a little with the shapes, so here the bound is what matters: with
            // T = 40 and 2 layers, one allocation per step would add 80.
            for vocab in [5, 200] {
                let (short, long) = (lm_step(&engine, 3, vocab, threads), lm_step(&engine, 40, vocab, threads));
                eprintln!(
                    "{name}, {threads} threads {mode:?}, V={vocab}: LM step allocates {short} (T=3), {long} (T=40)"
                );
                assert!(long < 64, "{name}: an LM step allocates {long} times (2 layers x 40 steps would add 80)");
            }
        }
    }
}
