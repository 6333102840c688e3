//! A small persistent thread pool: parallel regions cost a wake-up, not a thread spawn.
//!
//! `run(n, job)` calls `job(0)` on the caller and `job(1..n)` on workers, and returns when all
//! have finished, so `job` may borrow from the caller's stack. Workers spin briefly for the next
//! region (regions come in quick succession during a training step), then sleep on a condvar.
//! Every region runs with the caller's floating-point mode (see `denormals`): a worker takes
//! it on for the job and returns to its own after. Inside PyTorch, regions run on PyTorch's
//! OpenMP threads instead when the Python package asks for it (`openmp`).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use super::denormals;
use std::sync::{Condvar, Mutex};

/// The job of the current region, its lifetime erased; `run` outlives every use of it.
#[derive(Clone, Copy)]
struct JobPtr(*const (dyn Fn(usize) + Sync));

// SAFETY: the pointee is `Sync` and `run` keeps it alive until every worker is done with it.
unsafe impl Send for JobPtr {}

struct Shared {
    /// Bumped for every region; workers watch it.
    epoch: AtomicU64,
    job: Mutex<Option<(JobPtr, usize)>>,
    wake: Condvar,
    pending: AtomicUsize,
    /// The caller's floating-point control word for the current region.
    fp_mode: AtomicU32,
    done: Mutex<()>,
    finished: Condvar,
    panicked: AtomicBool,
    /// What the first worker to panic in the region said.
    panic_message: Mutex<String>,
}

/// The process-wide pool; it grows to the largest region asked for.
pub struct Pool {
    shared: &'static Shared,
    workers: Mutex<usize>,
    /// One region at a time (nested or concurrent callers run serially).
    region: Mutex<()>,
}

/// The process's pool. A child made by `fork` (a PyTorch DataLoader worker) has none of its
/// parent's threads, so it gets a pool of its own (the parent's is leaked in it, never used).
fn pool() -> &'static Pool {
    static POOL: Mutex<Option<(u32, &'static Pool)>> = Mutex::new(None);
    let pid = std::process::id();
    let mut current = POOL.lock().unwrap_or_else(|e| e.into_inner());
    match *current {
        Some((owner, p)) if owner == pid => p,
        _ => {
            let p: &'static Pool = Box::leak(Box::new(new_pool()));
            *current = Some((pid, p));
            p
        }
    }
}

fn new_pool() -> Pool {
    let shared = Box::leak(Box::new(Shared {
        epoch: AtomicU64::new(0),
        job: Mutex::new(None),
        wake: Condvar::new(),
        pending: AtomicUsize::new(0),
        fp_mode: AtomicU32::new(0),
        done: Mutex::new(()),
        finished: Condvar::new(),
        panicked: AtomicBool::new(false),
        panic_message: Mutex::new(String::new()),
    }));
    Pool { shared, workers: Mutex::new(0), region: Mutex::new(()) }
}

fn worker(shared: &'static Shared, index: usize) {
    let mut seen = 0u64;
    loop {
        // Spin a little: the next region usually starts within microseconds.
        let mut spins = 0u32;
        while shared.epoch.load(Ordering::Acquire) == seen && spins < 20_000 {
            std::hint::spin_loop();
            spins += 1;
        }
        let mut slot = shared.job.lock().unwrap_or_else(|e| e.into_inner());
        while shared.epoch.load(Ordering::Acquire) == seen {
            slot = shared.wake.wait(slot).unwrap_or_else(|e| e.into_inner());
        }
        seen = shared.epoch.load(Ordering::Acquire);
        let job = *slot;
        drop(slot);
        let Some((job, participants)) = job else { continue };
        if index >= participants {
            continue;
        }
        // SAFETY: `run` does not return before `pending` reaches zero, so the job is alive.
        let f = unsafe { &*job.0 };
        let own_mode = denormals::mode();
        denormals::set_mode(shared.fp_mode.load(Ordering::Acquire));
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| f(index)))
            && !shared.panicked.swap(true, Ordering::AcqRel)
        {
            *shared.panic_message.lock().unwrap_or_else(|e| e.into_inner()) = message(&*payload);
        }
        denormals::set_mode(own_mode);
        if shared.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            let _guard = shared.done.lock().unwrap_or_else(|e| e.into_inner());
            shared.finished.notify_all();
        }
    }
}

/// Runs `job(i)` for i in 0..n, `job(0)` on this thread, and waits for all of them.
pub fn run(n: usize, job: &(dyn Fn(usize) + Sync)) {
    if n <= 1 {
        if n == 1 {
            job(0);
        }
        return;
    }
    if super::openmp::run(n, job) {
        return;
    }
    let p = pool();
    let _region = p.region.lock().unwrap_or_else(|e| e.into_inner());
    {
        let mut workers = p.workers.lock().unwrap_or_else(|e| e.into_inner());
        while *workers < n - 1 {
            let index = *workers + 1;
            let shared = p.shared;
            std::thread::Builder::new()
                .name(format!("cellc-worker-{index}"))
                .spawn(move || worker(shared, index))
                .expect("cannot start a worker thread");
            *workers += 1;
        }
    }
    let shared = p.shared;
    shared.panicked.store(false, Ordering::Release);
    shared.pending.store(n - 1, Ordering::Release);
    shared.fp_mode.store(denormals::mode(), Ordering::Release);
    {
        let mut slot = shared.job.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY (lifetime erasure): we wait below until every worker has finished with it.
        let erased: &'static (dyn Fn(usize) + Sync) = unsafe { std::mem::transmute(job) };
        *slot = Some((JobPtr(erased as *const _), n));
        shared.epoch.fetch_add(1, Ordering::AcqRel);
        shared.wake.notify_all();
    }
    let mine = catch_unwind(AssertUnwindSafe(|| job(0)));
    let mut spins = 0u32;
    while shared.pending.load(Ordering::Acquire) != 0 && spins < 200_000 {
        std::hint::spin_loop();
        spins += 1;
    }
    let mut guard = shared.done.lock().unwrap_or_else(|e| e.into_inner());
    while shared.pending.load(Ordering::Acquire) != 0 {
        guard = shared.finished.wait(guard).unwrap_or_else(|e| e.into_inner());
    }
    drop(guard);
    *shared.job.lock().unwrap_or_else(|e| e.into_inner()) = None;
    if let Err(payload) = mine {
        std::panic::resume_unwind(payload);
    }
    if shared.panicked.load(Ordering::Acquire) {
        let said = std::mem::take(&mut *shared.panic_message.lock().unwrap_or_else(|e| e.into_inner()));
        panic!("a worker thread panicked: {said}");
    }
}

/// A panic's message, when it has one.
fn message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

/// Runs `f(from, count)` on `threads` contiguous chunks of `0..n`, the first on this thread.
pub fn parallel(threads: usize, n: usize, f: impl Fn(usize, usize) + Sync) {
    let t = threads.clamp(1, n.max(1));
    if t == 1 {
        f(0, n);
        return;
    }
    let chunk = n.div_ceil(t);
    run(t, &|i| {
        let from = i * chunk;
        let to = ((i + 1) * chunk).min(n);
        if from < to {
            f(from, to - from);
        }
    });
}

/// [`parallel`], telling `f` which part it runs: `f(part, from, count)`, at most
/// `crate::schedule::MAX_PARTS` parts.
pub fn parallel_parts(threads: usize, n: usize, f: impl Fn(usize, usize, usize) + Sync) {
    let t = threads.clamp(1, n.max(1)).min(crate::schedule::MAX_PARTS);
    let chunk = n.div_ceil(t).max(1);
    run(t, &|i| {
        let from = i * chunk;
        let to = ((i + 1) * chunk).min(n);
        if from < to {
            f(i, from, to - from);
        }
    });
}

/// Runs `f(offset, chunk)` on `threads` contiguous chunks of `data` (chunk sizes a multiple of
/// `granule`), the first on this thread.
pub fn par_chunks_mut(data: &mut [f32], granule: usize, threads: usize, f: impl Fn(usize, &mut [f32]) + Sync) {
    let granule = granule.max(1);
    let units = data.len() / granule;
    let per = units.div_ceil(threads.clamp(1, units.max(1))).max(1) * granule;
    if threads <= 1 || data.len() <= per {
        f(0, data);
        return;
    }
    let len = data.len();
    let base = data.as_mut_ptr() as usize;
    run(len.div_ceil(per), &|i| {
        let from = i * per;
        let to = ((i + 1) * per).min(len);
        // SAFETY: the chunks [from, to) are disjoint parts of `data`, which outlives the region.
        let chunk = unsafe { std::slice::from_raw_parts_mut((base as *mut f32).add(from), to - from) };
        f(from, chunk);
    });
}

/// Runs `f(i, &mut parts[i])` for every part, each on its own thread (the first on this one):
/// the safe way to hand threads disjoint pieces made with `chunks_mut` and the like.
pub fn run_parts<T: Send>(parts: &mut [T], f: impl Fn(usize, &mut T) + Sync) {
    let base = parts.as_mut_ptr() as usize;
    let n = parts.len();
    run(n, &|i| {
        assert!(i < n);
        // SAFETY: job i is the only one to touch element i, and `parts` outlives the region.
        let part = unsafe { &mut *(base as *mut T).add(i) };
        f(i, part);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_index_runs_once_and_borrows_work() {
        let counts: Vec<AtomicUsize> = (0..5).map(|_| AtomicUsize::new(0)).collect();
        for _ in 0..200 {
            run(5, &|i| {
                counts[i].fetch_add(1, Ordering::Relaxed);
            });
        }
        assert!(counts.iter().all(|c| c.load(Ordering::Relaxed) == 200));
    }
}
