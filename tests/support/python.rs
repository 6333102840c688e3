//! The Python with PyTorch and JAX that the bridge tests run exported code in: the virtual
//! environment `tools/python-env.sh` makes from `tests/python/requirements.txt` (pinned), at
//! `$CELLC_VENV` or `~/.cache/cellc/venv`. The script runs once per test binary; it returns at
//! once when the environment is up to date and installs it otherwise (once per machine), so
//! `cargo test` needs nothing done by hand. Never skipped: an install that fails fails the tests.

use std::path::PathBuf;
use std::sync::OnceLock;

/// The environment's Python interpreter.
pub fn python() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tools/python-env.sh");
            let out = std::process::Command::new(script)
                .stderr(std::process::Stdio::inherit())
                .output()
                .expect("run tools/python-env.sh");
            assert!(out.status.success(), "tools/python-env.sh failed (its messages are above)");
            PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
        })
        .clone()
}
