//! A process forked after cellc's thread pool started (a PyTorch DataLoader worker) runs
//! parallel regions on threads of its own. Alone in its binary: no other test thread may hold a
//! lock at the moment of the fork.

use std::sync::atomic::{AtomicUsize, Ordering};

use cellc::runtime::pool;

#[test]
fn a_forked_child_gets_threads_of_its_own() {
    pool::run(2, &|_| {});
    // SAFETY: the child runs one region and leaves with _exit; nothing returns to the harness.
    let child = unsafe { libc::fork() };
    assert!(child >= 0, "fork failed");
    if child == 0 {
        let ran: Vec<AtomicUsize> = (0..3).map(|_| AtomicUsize::new(0)).collect();
        pool::run(3, &|i| {
            ran[i].fetch_add(1, Ordering::Relaxed);
        });
        let ok = ran.iter().all(|c| c.load(Ordering::Relaxed) == 1);
        // SAFETY: leaving the child at once, without the parent's exit handlers.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    // Wait for the child to exit; a child that hangs (waiting for its parent's threads) is
    // killed after a generous bound, and fails the test instead of hanging it.
    let mut status = 0;
    let mut polls = 0;
    loop {
        // SAFETY: polling our own child; `status` is a valid int to write.
        let waited = unsafe { libc::waitpid(child, &mut status, libc::WNOHANG) };
        if waited == child {
            break;
        }
        assert_eq!(waited, 0, "waitpid failed");
        polls += 1;
        if polls == 6_000 {
            // SAFETY: our own child.
            unsafe { libc::kill(child, libc::SIGKILL) };
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(libc::WIFEXITED(status), "the child hung in a parallel region and was killed");
    assert_eq!(libc::WEXITSTATUS(status), 0, "the child's region did not run every job once");
    pool::run(2, &|_| {});
}
