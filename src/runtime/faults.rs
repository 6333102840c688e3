//! Faults on purpose: a panic injected into one thread of a lockstep step, so tests can show
//! that a failing thread ends the step for every thread (nothing waits for ever at a barrier)
//! and the caller gets an error. Disarmed unless a test arms it; one atomic load per step.

use std::sync::atomic::{AtomicU64, Ordering};

const DISARMED: u64 = u64::MAX;

/// The armed fault: thread index in the high half, step in the low half.
static ARMED: AtomicU64 = AtomicU64::new(DISARMED);

/// Makes lockstep thread `thread` panic when it reaches step `step` of the next phase that runs
/// that far (once; then disarmed).
pub fn arm_panic(thread: usize, step: usize) {
    ARMED.store(((thread as u64) << 32) | step as u64, Ordering::SeqCst);
}

/// Called by lockstep thread `thread` at each step.
pub(super) fn at_step(thread: usize, step: usize) {
    let armed = ARMED.load(Ordering::Relaxed);
    if armed != DISARMED
        && armed == ((thread as u64) << 32) | step as u64
        && ARMED.compare_exchange(armed, DISARMED, Ordering::SeqCst, Ordering::SeqCst).is_ok()
    {
        panic!("a fault injected on purpose: thread {thread}, step {step}");
    }
}
