//! Ctrl-C as a flag: a SIGINT handler that only records the signal, so a long computation (a
//! REPL `:train`, a study, a search) can stop cleanly at its next step instead of killing the
//! process. The library never sees the signal: commands hand it `interrupted` as a stop check.
//!
//! The one `unsafe` outside codegen and runtime (tests/tidy.rs allows this file by name):
//! installing a signal handler is a libc call, and the handler does nothing but an atomic store.

use std::sync::atomic::{AtomicBool, Ordering};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// From now on, Ctrl-C sets the flag instead of ending the process.
pub fn catch_ctrl_c() {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_sigint as *const () as libc::sighandler_t);
    }
    // A PostgreSQL store waiting for its server to come back stops waiting too.
    crate::store::postgres::stop_reconnecting_when(interrupted);
}

/// Whether Ctrl-C came since the last [`clear`].
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

pub fn clear() {
    INTERRUPTED.store(false, Ordering::SeqCst);
}
