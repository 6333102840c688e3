//! Parallel regions on an OpenMP runtime that is already in the process: PyTorch's. Inside a
//! PyTorch training loop, PyTorch's OpenMP threads keep spinning for a few milliseconds after
//! each of its parallel operations; cellc's own pool threads would then share the cores with
//! them (measured: a 2-thread MUT1 forward and backward ~1.5x slower). Run on the same OpenMP
//! team instead, cellc's regions take over the threads that are spinning for work.
//!
//! [`use_library`] finds `GOMP_parallel` and friends in a libgomp the process has loaded (never
//! loads one); [`crate::runtime::pool::run`] then tries [`run`] first and falls back to its own
//! threads when the region cannot run here (inside an OpenMP region, or a team of another size).

use std::ffi::{CString, c_int, c_uint, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

use super::denormals;

type ParallelFn = unsafe extern "C" fn(extern "C" fn(*mut c_void), *mut c_void, c_uint, c_uint);
type IntFn = unsafe extern "C" fn() -> c_int;

/// The libgomp entry points cellc calls.
#[derive(Clone, Copy)]
struct Gomp {
    parallel: ParallelFn,
    thread_num: IntFn,
    num_threads: IntFn,
    in_parallel: IntFn,
}

/// The runtime in use and the process that chose it (None: cellc's own pool). Set from Python,
/// read on every region. A child made by `fork` has none of the team's threads (GOMP_parallel
/// would wait for them), so it uses cellc's own pool.
fn active() -> &'static Mutex<Option<(u32, Gomp)>> {
    static ACTIVE: OnceLock<Mutex<Option<(u32, Gomp)>>> = OnceLock::new();
    ACTIVE.get_or_init(|| Mutex::new(None))
}

/// The runtime in use, if this process chose it.
fn current() -> Option<Gomp> {
    match *active().lock().unwrap_or_else(|e| e.into_inner()) {
        Some((pid, gomp)) if pid == std::process::id() => Some(gomp),
        _ => None,
    }
}

/// Runs regions on the libgomp at `path`, which must already be loaded (PyTorch's
/// `torch/lib/libgomp*.so*`); `None` goes back to cellc's own threads.
pub fn use_library(path: Option<&str>) -> Result<(), String> {
    let Some(path) = path else {
        *active().lock().unwrap_or_else(|e| e.into_inner()) = None;
        return Ok(());
    };
    let c_path = CString::new(path).map_err(|_| format!("`{path}`: a path with a NUL byte"))?;
    // SAFETY: dlopen with RTLD_NOLOAD only returns a handle to a library already loaded (it runs
    // no constructors); the handle is never closed, so the symbols stay valid.
    let handle = unsafe { libc::dlopen(c_path.as_ptr(), libc::RTLD_LAZY | libc::RTLD_NOLOAD) };
    if handle.is_null() {
        return Err(format!("`{path}` is not loaded in this process"));
    }
    let symbol = |name: &str| -> Result<*mut c_void, String> {
        let c_name = CString::new(name).expect("symbol names have no NUL");
        // SAFETY: a valid handle and a NUL-terminated name.
        let f = unsafe { libc::dlsym(handle, c_name.as_ptr()) };
        if f.is_null() { Err(format!("`{path}` has no `{name}`: not GNU OpenMP")) } else { Ok(f) }
    };
    // SAFETY: the symbols of libgomp's ABI, with these C signatures.
    let gomp = unsafe {
        Gomp {
            parallel: std::mem::transmute::<*mut c_void, ParallelFn>(symbol("GOMP_parallel")?),
            thread_num: std::mem::transmute::<*mut c_void, IntFn>(symbol("omp_get_thread_num")?),
            num_threads: std::mem::transmute::<*mut c_void, IntFn>(symbol("omp_get_num_threads")?),
            in_parallel: std::mem::transmute::<*mut c_void, IntFn>(symbol("omp_in_parallel")?),
        }
    };
    *active().lock().unwrap_or_else(|e| e.into_inner()) = Some((std::process::id(), gomp));
    Ok(())
}

/// Whether regions run on an OpenMP runtime.
pub fn in_use() -> bool {
    current().is_some()
}

/// One region, shared with the team's threads.
struct Region<'a> {
    gomp: Gomp,
    job: &'a (dyn Fn(usize) + Sync),
    n: usize,
    fp_mode: u32,
    wrong_team: AtomicBool,
    panicked: AtomicBool,
}

extern "C" fn on_each_thread(data: *mut c_void) {
    // SAFETY: `run` passes a pointer to a Region that outlives GOMP_parallel.
    let region = unsafe { &*(data as *const Region) };
    // SAFETY: plain libgomp queries, inside the region.
    let (team, index) = unsafe { ((region.gomp.num_threads)(), (region.gomp.thread_num)()) };
    // The jobs may wait for each other (lockstep barriers): run them only if all n run at once.
    if team as usize != region.n {
        region.wrong_team.store(true, Ordering::Release);
        return;
    }
    let own_mode = denormals::mode();
    denormals::set_mode(region.fp_mode);
    // A panic must not unwind into C: caught here, raised again on the caller.
    if catch_unwind(AssertUnwindSafe(|| (region.job)(index as usize))).is_err() {
        region.panicked.store(true, Ordering::Release);
    }
    denormals::set_mode(own_mode);
}

/// Runs `job(0..n)` on an OpenMP team of `n` threads; false (having run nothing) when no
/// OpenMP runtime is in use or the region cannot run on one.
pub fn run(n: usize, job: &(dyn Fn(usize) + Sync)) -> bool {
    let Some(gomp) = current() else {
        return false;
    };
    // SAFETY: a plain libgomp query.
    if unsafe { (gomp.in_parallel)() } != 0 {
        return false;
    }
    let Ok(threads) = c_uint::try_from(n) else { return false };
    let region = Region {
        gomp,
        job,
        n,
        fp_mode: denormals::mode(),
        wrong_team: AtomicBool::new(false),
        panicked: AtomicBool::new(false),
    };
    // SAFETY: GOMP_parallel runs `on_each_thread(&region)` on every thread of a new team and
    // returns when all have finished, so `region` outlives every use.
    unsafe { (gomp.parallel)(on_each_thread, &region as *const Region as *mut c_void, threads, 0) };
    if region.wrong_team.load(Ordering::Acquire) {
        return false;
    }
    assert!(!region.panicked.load(Ordering::Acquire), "a worker thread panicked");
    true
}
