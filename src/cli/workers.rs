//! Local worker processes for an experiment's coordinator (`cellc search`, `cellc compare`,
//! `cellc paper`): `cellc worker`s started as children that exit when their parent does. The store
//! goes to them in the environment, not on the command line, where other users could read a
//! password in it.

use std::cell::RefCell;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// The coordinator's own workers; killed when dropped.
pub struct LocalWorkers {
    children: RefCell<Vec<Child>>,
}

impl LocalWorkers {
    /// Starts `n` workers on `store` with leases of `lease` seconds, reading data from `data`.
    pub fn spawn(n: usize, store: &str, lease: f64, data: Option<&Path>) -> Result<LocalWorkers, String> {
        let exe = std::env::current_exe().map_err(|e| format!("cannot find the cellc executable: {e}"))?;
        let children = (0..n)
            .map(|_| {
                let mut cmd = Command::new(&exe);
                cmd.arg("worker").env("CELLC_STORE", store).arg("--lease").arg(lease.to_string());
                cmd.arg("--parent").arg(std::process::id().to_string());
                if let Some(d) = data {
                    cmd.arg("--data").arg(d);
                }
                cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::inherit());
                cmd.spawn().map_err(|e| format!("cannot start a worker: {e}"))
            })
            .collect::<Result<_, _>>()?;
        Ok(LocalWorkers { children: RefCell::new(children) })
    }

    /// Whether there were workers and every one has exited (each printed its error): nothing
    /// would ever finish.
    pub fn all_gone(&self) -> bool {
        let mut children = self.children.borrow_mut();
        !children.is_empty() && children.iter_mut().all(|c| matches!(c.try_wait(), Ok(Some(_))))
    }
}

impl Drop for LocalWorkers {
    fn drop(&mut self) {
        for c in self.children.get_mut().iter_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
