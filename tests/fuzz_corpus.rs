//! The fuzzers' regression inputs (`fuzz/regressions/TARGET`, kept by `tools/fuzz.sh`: the small
//! inputs its coverage-guided runs found, and any input that once crashed) replayed through the
//! same target bodies (`fuzz/targets.rs`): every one must return, none may panic.

#[allow(dead_code)] // the replay uses the table; the fuzzer binaries use the bodies
#[path = "../fuzz/targets.rs"]
mod targets;

#[test]
fn every_regression_input_of_every_fuzz_target_returns() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/regressions");
    let mut total = 0;
    for (name, target) in targets::TARGETS {
        let dir = std::path::Path::new(root).join(name);
        let mut inputs: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        inputs.sort();
        assert!(!inputs.is_empty(), "{name}: no regression inputs");
        for path in &inputs {
            let data = std::fs::read(path).unwrap();
            if std::panic::catch_unwind(|| target(&data)).is_err() {
                panic!("fuzz target `{name}` panics on {}", path.display());
            }
        }
        total += inputs.len();
    }
    assert!(total >= 600, "the regression set shrank to {total} inputs");
}
