//! Checkpoints that prove their integrity: every way a saved run can be damaged (a NaN written
//! over a weight with the header intact, one flipped bit, damaged metadata, a truncated file, a
//! tensor added) gives exit 1 and one line naming the file and the tensor; `--resume` rebuilds a
//! damaged best-model file from the run's state and says so, and refuses a damaged state.

mod support;

use std::path::{Path, PathBuf};

/// A short saved run (made once, then copied for each case).
fn saved() -> &'static PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = support::scratch("ckpt").join("run");
        let args = ["run", "gru", "--task", "memorize", "--hidden", "16", "--steps", "60", "--eval-every", "20"];
        let out = support::cellc(&[&args[..], &["--eval-examples", "100", "--save", dir.to_str().unwrap()]].concat());
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        dir
    })
}

fn copy(name: &str) -> PathBuf {
    let dir = support::scratch(&format!("ckpt-{name}"));
    for f in ["model.safetensors", "state.safetensors"] {
        std::fs::copy(saved().join(f), dir.join(f)).unwrap();
    }
    dir
}

/// Where tensor `name`'s bytes are in a safetensors file.
fn data_range(bytes: &[u8], name: &str) -> std::ops::Range<usize> {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let o = &header[name]["data_offsets"];
    8 + n + o[0].as_u64().unwrap() as usize..8 + n + o[1].as_u64().unwrap() as usize
}

fn damage(path: &Path, f: impl FnOnce(&mut Vec<u8>)) {
    let mut bytes = std::fs::read(path).unwrap();
    f(&mut bytes);
    std::fs::write(path, bytes).unwrap();
}

/// Runs cellc: exit 1 and one line of error naming every one of `names`.
fn fails(args: &[&str], names: &[&str]) {
    let out = support::cellc(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
    assert_eq!(err.trim().lines().count(), 1, "{args:?}: one line: {err}");
    for n in names {
        assert!(err.contains(n), "{args:?}: wanted `{n}` in: {err}");
    }
}

#[test]
fn a_saved_run_tests_clean_and_writes_no_unverified_copy() {
    let dir = copy("clean");
    let out = support::cellc(&["test", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!saved().join("model.json").exists());
}

#[test]
fn damaged_weights_metadata_and_tensors_are_named() {
    let d = |name| copy(name);
    // A NaN over a weight, the header intact.
    let dir = d("nan");
    let model = dir.join("model.safetensors");
    damage(&model, |b| {
        let r = data_range(b, "layer0.W_hz");
        b[r.start..r.start + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    });
    fails(&["test", dir.to_str().unwrap()], &["model.safetensors", "layer0.W_hz", "damaged"]);
    // One flipped bit.
    let dir = d("bit");
    damage(&dir.join("model.safetensors"), |b| {
        let r = data_range(b, "out.W");
        b[r.start + 5] ^= 0x10;
    });
    fails(&["test", dir.to_str().unwrap()], &["model.safetensors", "out.W", "damaged"]);
    // The metadata changed without changing its length.
    let dir = d("meta");
    damage(&dir.join("model.safetensors"), |b| {
        let n = u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
        let at = b[8..8 + n].windows(6).position(|w| w == b"\\\"step").unwrap() + 8;
        b[at + 2] = b'S';
    });
    fails(&["test", dir.to_str().unwrap()], &["model.safetensors", "metadata"]);
    // A NaN written with fresh digests (a file made by another program): still refused.
    let dir = d("nan-digested");
    let path = dir.join("model.safetensors");
    let mut set = cellc::tensors::TensorSet::decode(&std::fs::read(&path).unwrap(), "m").unwrap();
    set.tensors.get_mut("embed").unwrap()[[0, 0]] = f32::INFINITY;
    std::fs::write(&path, set.encode()).unwrap();
    fails(&["test", dir.to_str().unwrap()], &["model.safetensors", "embed", "inf"]);
    // An extra tensor, and a missing one.
    let dir = d("extra");
    let path = dir.join("model.safetensors");
    let mut set = cellc::tensors::TensorSet::decode(&std::fs::read(&path).unwrap(), "m").unwrap();
    let extra = set.tensors["out.b"].clone();
    set.tensors.insert("out.c".into(), extra);
    std::fs::write(&path, set.encode()).unwrap();
    fails(&["test", dir.to_str().unwrap()], &["model.safetensors", "out.c"]);
    set.tensors.remove("out.c");
    set.tensors.remove("out.b");
    std::fs::write(&path, set.encode()).unwrap();
    fails(&["test", dir.to_str().unwrap()], &["model.safetensors", "out.b", "missing"]);
}

#[test]
fn resume_rebuilds_a_damaged_model_file_and_refuses_a_damaged_state() {
    let dir = copy("resume-model");
    let model = dir.join("model.safetensors");
    let len = std::fs::metadata(&model).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&model).unwrap().set_len(len / 2).unwrap();
    let out = support::cellc(&["run", "--resume", dir.to_str().unwrap(), "--steps", "80"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("model.safetensors") && err.contains("rewrote"), "says what it did: {err}");
    let tested = support::cellc(&["test", dir.to_str().unwrap()]);
    assert!(tested.status.success(), "the rebuilt model tests: {}", String::from_utf8_lossy(&tested.stderr));

    let dir = copy("resume-state");
    damage(&dir.join("state.safetensors"), |b| {
        let r = data_range(b, "adam.m.out.W");
        b[r.start] ^= 1;
    });
    fails(&["run", "--resume", dir.to_str().unwrap()], &["state.safetensors", "adam.m.out.W", "damaged"]);
    let dir = copy("resume-truncated");
    let state = dir.join("state.safetensors");
    let len = std::fs::metadata(&state).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&state).unwrap().set_len(len - 100).unwrap();
    fails(&["run", "--resume", dir.to_str().unwrap()], &["state.safetensors"]);
}
