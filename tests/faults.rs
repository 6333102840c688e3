//! Faults on purpose around checkpoints: a disk that fills while a checkpoint is written (a
//! file-size limit, `setrlimit(RLIMIT_FSIZE)`, in the child) leaves the previous checkpoint
//! intact and stops the run with a clear message; SIGKILL at random moments of a run that
//! checkpoints often (100 kills) never leaves a checkpoint that fails to load and verify.

mod support;

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use cellc::rng::Rng;

/// A run that validates, and so checkpoints, every 10 steps.
fn run_args(dir: &Path, steps: &str) -> Vec<String> {
    [
        "run",
        "gru",
        "--task",
        "memorize",
        "--hidden",
        "32",
        "--steps",
        steps,
        "--eval-every",
        "10",
        "--eval-examples",
        "64",
    ]
    .into_iter()
    .map(String::from)
    .chain(["--save".to_string(), dir.display().to_string()])
    .collect()
}

/// Both files verify (digests present and matching, every weight finite) and `cellc test DIR`
/// loads the model.
fn loads(dir: &Path) -> Result<(), String> {
    for f in ["model.safetensors", "state.safetensors"] {
        let what = dir.join(f).display().to_string();
        let (set, digested) = cellc::tensors::TensorSet::decode_checked(&std::fs::read(dir.join(f)).unwrap(), &what)?;
        set.check_finite(&what)?;
        if !digested {
            return Err(format!("{what}: no digests"));
        }
    }
    let out = support::cellc(&["test", dir.to_str().unwrap()]);
    if out.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&out.stderr).into_owned()) }
}

#[test]
fn a_disk_that_fills_during_a_checkpoint_keeps_the_previous_one() {
    let dir = support::scratch("disk-full").join("run");
    let first = support::cellc(&run_args(&dir, "20").iter().map(String::as_str).collect::<Vec<_>>());
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let before: Vec<Vec<u8>> =
        ["model.safetensors", "state.safetensors"].iter().map(|f| std::fs::read(dir.join(f)).unwrap()).collect();
    // Resume with files limited to half the state's size: the next checkpoint cannot be written.
    let limit = (before[1].len() / 2) as libc::rlim_t;
    let mut cmd = support::cellc_cmd();
    cmd.args(["run", "--resume", dir.to_str().unwrap(), "--steps", "40"]);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN); // a write past the limit fails (EFBIG) instead
            let lim = libc::rlimit { rlim_cur: limit, rlim_max: limit };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let last = err.trim().lines().last().unwrap_or("");
    assert!(last.contains("cannot write the checkpoint") && last.contains("large"), "{err}");
    let after: Vec<Vec<u8>> =
        ["model.safetensors", "state.safetensors"].iter().map(|f| std::fs::read(dir.join(f)).unwrap()).collect();
    assert!(after == before, "the previous checkpoint is untouched");
    let leftovers: Vec<_> = std::fs::read_dir(&dir).unwrap().filter_map(|e| e.ok()).map(|e| e.file_name()).collect();
    assert_eq!(leftovers.len(), 2, "no partial temporary file is left: {leftovers:?}");
    loads(&dir).unwrap();
}

#[test]
fn a_hundred_kills_never_leave_a_checkpoint_that_fails_to_verify() {
    let dir = support::scratch("kills").join("run");
    let mut rng = Rng::new(3);
    let mut kills = 0;
    let mut finished = 0;
    while kills < 100 {
        let steps = 2000.to_string();
        let resume = dir.join("state.safetensors").exists();
        let mut cmd = support::cellc_cmd();
        if resume {
            cmd.args(["run", "--resume", dir.to_str().unwrap(), "--steps", &steps]);
        } else {
            cmd.args(run_args(&dir, &steps));
        }
        let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        // A random moment: the run writes a checkpoint every few milliseconds.
        std::thread::sleep(Duration::from_micros(rng.below(400_000)));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            kills += 1;
        } else {
            finished += 1;
            let _ = std::fs::remove_dir_all(&dir); // a finished run: start another
        }
        child.wait().unwrap();
        if dir.join("state.safetensors").exists() {
            loads(&dir).unwrap_or_else(|e| panic!("after kill {kills}: {e}"));
        }
    }
    eprintln!("100 kills, {finished} runs finished between them");
}
