//! Headless Chromium for the dashboard's page tests: Debian's chromium driven by playwright-core
//! (pinned in tests/browser/package-lock.json), which `tools/browser-env.sh` installs once per
//! machine and locates. Never skipped: a missing browser or Node fails the test with the
//! script's one-line reason.

use std::path::PathBuf;
use std::sync::OnceLock;

/// The playwright-core package directory (for the scripts' `PLAYWRIGHT_CORE`).
pub fn playwright_core() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tools/browser-env.sh");
        let out = std::process::Command::new(script)
            .stderr(std::process::Stdio::inherit())
            .output()
            .expect("run tools/browser-env.sh");
        assert!(out.status.success(), "tools/browser-env.sh failed (its message is above)");
        PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
    })
    .clone()
}

/// A script of tests/browser/ run by node with playwright-core at hand.
pub fn node(script: &str) -> std::process::Command {
    let mut cmd = std::process::Command::new("node");
    cmd.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/").to_string() + script);
    cmd.env("PLAYWRIGHT_CORE", playwright_core());
    cmd
}
