//! `cellc eval`, the interop contract, end to end through the binary: a GRU with hand-chosen
//! weights against results derived by hand; GRU, LSTM and MUT1 forward and backward against the
//! independent implementations in `support/reference.rs`; every error path; `cellc init`.

mod support;

use std::path::Path;

use cellc::rng::Rng;
use cellc::tensors::TensorSet;
use cellc::workspace::Workspace;
use ndarray::ArrayD;
use support::reference::{self, HandCell, Params};
use support::{cellc, scratch};

fn save(dir: &Path, name: &str, set: &TensorSet) -> String {
    let p = dir.join(name);
    std::fs::write(&p, set.encode()).unwrap();
    p.to_string_lossy().into_owned()
}

fn tensor(shape: &[usize], data: Vec<f32>) -> ArrayD<f32> {
    ArrayD::from_shape_vec(shape.to_vec(), data).unwrap()
}

/// Runs `cellc eval` (with the interpreter) and returns the output tensors.
fn eval(dir: &Path, cell: &str, w: &TensorSet, inp: &TensorSet, grad: bool) -> TensorSet {
    eval_with(dir, cell, w, inp, grad, "interp")
}

fn eval_with(dir: &Path, cell: &str, w: &TensorSet, inp: &TensorSet, grad: bool, engine: &str) -> TensorSet {
    let (wp, ip, op) = (save(dir, "w.safetensors", w), save(dir, "in.safetensors", inp), dir.join("out.safetensors"));
    let op = op.to_string_lossy().into_owned();
    let mut args = vec!["eval", cell, "--weights", &wp, "--inputs", &ip, "--out", &op, "--engine", engine];
    if grad {
        args.push("--grad");
    }
    let o = cellc(&args);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    TensorSet::decode(&std::fs::read(&op).unwrap(), "out").unwrap()
}

fn close(got: f32, want: f64, what: &str) {
    assert!((f64::from(got) - want).abs() <= 2e-6 * want.abs().max(1.0), "{what}: got {got}, want {want}");
}

fn sigm(a: f64) -> f64 {
    1.0 / (1.0 + (-a).exp())
}

/// H = D = B = 1. Weights chosen so the first step is exact: r = z = σ(0) = 1/2 and n = tanh(0) = 0.
fn tiny_gru() -> TensorSet {
    let mut w = TensorSet::default();
    for (name, v) in [
        ("W_xr", 0.5),
        ("W_hr", -1.0),
        ("b_r", 0.0),
        ("W_xz", 0.5),
        ("W_hz", -1.0),
        ("b_z", 0.0),
        ("W_xh", -0.25),
        ("W_hh", 1.0),
        ("b_h", 0.0),
    ] {
        let shape: &[usize] = if name.starts_with('b') { &[1] } else { &[1, 1] };
        w.tensors.insert(name.into(), tensor(shape, vec![v]));
    }
    w
}

#[test]
fn gru_forward_matches_hand_computation() {
    let dir = scratch("gru-hand");
    let mut inp = TensorSet::default();
    inp.tensors.insert("x".into(), tensor(&[2, 1, 1], vec![1.0, 2.0]));
    inp.tensors.insert("h".into(), tensor(&[1, 1], vec![0.5]));
    let out = eval(&dir, "gru", &tiny_gru(), &inp, false);
    // Step 1, x = 1, h = 1/2: a_r = 0.5 - 0.5 = 0, a_z = 0.5 - 0.5 = 0, so r = z = 1/2;
    // a_n = -0.25 + 1 * (1/2 * 1/2) = 0, so n = 0; h1 = z h + (1 - z) n = 1/4.
    let h1 = 0.25;
    // Step 2, x = 2, h = 1/4: a_r = a_z = 1 - 1/4 = 3/4; a_n = -0.5 + r/4.
    let (r, z) = (sigm(0.75), sigm(0.75));
    let n = (-0.5 + r * h1).tanh();
    let h2 = z * h1 + (1.0 - z) * n;
    close(out.tensors["y"][[0, 0, 0]], h1, "y[0]");
    close(out.tensors["y"][[1, 0, 0]], h2, "y[1]");
    close(out.tensors["h"][[0, 0]], h2, "final h");
}

#[test]
fn gru_gradient_matches_hand_derivation() {
    let dir = scratch("gru-hand-grad");
    let mut inp = TensorSet::default();
    inp.tensors.insert("x".into(), tensor(&[1, 1, 1], vec![1.0]));
    inp.tensors.insert("h".into(), tensor(&[1, 1], vec![0.5]));
    inp.tensors.insert("dy".into(), tensor(&[1, 1, 1], vec![1.0]));
    let out = eval(&dir, "gru", &tiny_gru(), &inp, true);
    // One step at the exact point r = z = 1/2, n = 0, h0 = 1/2, x = 1, with L = h1:
    // dL/dn = 1 - z = 1/2 and tanh' = 1 - n² = 1, so dL/da_n = 1/2:
    //   dW_xh = 1/2 * x = 1/2, dW_hh = 1/2 * (r h0) = 1/8, db_h = 1/2.
    // dL/dz = h0 - n = 1/2 and σ' = 1/4, so dL/da_z = 1/8: dW_xz = 1/8, dW_hz = 1/8 * h0 = 1/16.
    // dL/dr = (dL/da_n * W_hh) * h0 = 1/4, so dL/da_r = 1/16: dW_xr = 1/16, dW_hr = 1/32.
    // dL/dh0 = z + dL/da_n * W_hh * r + dL/da_z * W_hz + dL/da_r * W_hr
    //        = 1/2 + 1/4 - 1/8 - 1/16 = 9/16.
    // dL/dx = dL/da_r * W_xr + dL/da_z * W_xz + dL/da_n * W_xh = 1/32 + 1/16 - 1/8 = -1/32.
    let want = [
        ("grad.W_xh", 0.5),
        ("grad.W_hh", 0.125),
        ("grad.b_h", 0.5),
        ("grad.W_xz", 0.125),
        ("grad.W_hz", 0.0625),
        ("grad.b_z", 0.125),
        ("grad.W_xr", 0.0625),
        ("grad.W_hr", 0.03125),
        ("grad.b_r", 0.0625),
        ("grad.h", 0.5625),
        ("grad.x", -0.03125),
    ];
    for (name, v) in want {
        close(*out.tensors[name].iter().next().unwrap(), v, name);
    }
}

/// Random f32 weights, inputs and dy for a std cell, also as f64 for the reference.
struct Case {
    weights: TensorSet,
    inputs: TensorSet,
    params: Params,
    x: Vec<Vec<Vec<f64>>>,
    s0: Vec<Vec<Vec<f64>>>,
    dy: Vec<Vec<Vec<f64>>>,
}

fn random_case(cell: &str, h: usize, d: usize, t: usize, b: usize, seed: u64) -> Case {
    let ws = Workspace::new();
    let checked = ws.check_std(cell).unwrap();
    let g = cellc::ir::lower(&checked.cells[0]);
    let mut rng = Rng::new(seed);
    let mut draw = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.uniform(-1.0, 1.0) as f32).collect() };
    let mut weights = TensorSet::default();
    let mut params = Params::default();
    for p in &g.sig.params {
        let dims = p.dims(h, d);
        let data = draw(dims.iter().product());
        let as64: Vec<f64> = data.iter().map(|v| f64::from(*v)).collect();
        if dims.len() == 2 {
            params.m.insert(p.name.clone(), as64.chunks(dims[1]).map(|r| r.to_vec()).collect());
        } else {
            params.v.insert(p.name.clone(), as64);
        }
        weights.tensors.insert(p.name.clone(), tensor(&dims, data));
    }
    let mut inputs = TensorSet::default();
    let nest = |data: &[f32], outer: usize, inner: usize| -> Vec<Vec<Vec<f64>>> {
        data.chunks(outer * inner)
            .map(|t| t.chunks(inner).map(|r| r.iter().map(|v| f64::from(*v)).collect()).collect())
            .collect()
    };
    let xd = draw(t * b * d);
    let x = nest(&xd, b, d);
    inputs.tensors.insert("x".into(), tensor(&[t, b, d], xd));
    let mut s0 = vec![];
    for s in &g.sig.states {
        let sd = draw(b * h);
        s0.push(nest(&sd, b, h).remove(0));
        inputs.tensors.insert(s.clone(), tensor(&[b, h], sd));
    }
    let dyd = draw(t * b * h);
    let dy = nest(&dyd, b, h);
    inputs.tensors.insert("dy".into(), tensor(&[t, b, h], dyd));
    Case { weights, inputs, params, x, s0, dy }
}

fn compare(got: &ArrayD<f32>, want: impl IntoIterator<Item = f64>, what: &str) {
    let want: Vec<f64> = want.into_iter().collect();
    assert_eq!(got.len(), want.len(), "{what}: size");
    for (k, (g, w)) in got.iter().zip(&want).enumerate() {
        assert!((f64::from(*g) - w).abs() <= 1e-5 * w.abs().max(1.0), "{what}[{k}]: cellc {g}, reference {w}");
    }
}

fn flat2(v: &[Vec<f64>]) -> Vec<f64> {
    v.iter().flatten().copied().collect()
}

fn flat3(v: &[Vec<Vec<f64>>]) -> Vec<f64> {
    v.iter().flatten().flatten().copied().collect()
}

fn check_against_reference(cell: &str, hand: &dyn HandCell, h: usize, d: usize) {
    for engine in ["interp", "jit"] {
        check_engine(cell, hand, h, d, engine);
    }
}

fn check_engine(cell: &str, hand: &dyn HandCell, h: usize, d: usize, engine: &str) {
    let dir = scratch(&format!("{cell}-{engine}"));
    let (t, b) = (4, 2);
    let case = random_case(cell, h, d, t, b, 17);
    let out = eval_with(&dir, cell, &case.weights, &case.inputs, true, engine);
    let (y, fin) = reference::forward(hand, &case.params, &case.x, &case.s0);
    let (grads, dx, ds0) = reference::backward(hand, &case.params, &case.x, &case.s0, &case.dy);
    compare(&out.tensors["y"], flat3(&y), &format!("{cell} y"));
    let ws = Workspace::new();
    let g = cellc::ir::lower(&ws.check_std(cell).unwrap().cells[0]);
    for (s, name) in g.sig.states.iter().enumerate() {
        compare(&out.tensors[name], flat2(&fin[s]), &format!("{cell} final {name}"));
        compare(&out.tensors[&format!("grad.{name}")], flat2(&ds0[s]), &format!("{cell} grad.{name}"));
    }
    compare(&out.tensors["grad.x"], flat3(&dx), &format!("{cell} grad.x"));
    for p in &g.sig.params {
        let want: Vec<f64> = match (grads.m.get(&p.name), grads.v.get(&p.name)) {
            (Some(m), _) => flat2(m),
            (_, Some(v)) => v.clone(),
            _ => panic!("reference has no {}", p.name),
        };
        compare(&out.tensors[&format!("grad.{}", p.name)], want, &format!("{cell} grad.{}", p.name));
    }
}

#[test]
fn gru_matches_independent_implementation() {
    check_against_reference("gru", &reference::Gru, 3, 2);
}

#[test]
fn lstm_matches_independent_implementation() {
    check_against_reference("lstm", &reference::Lstm, 3, 2);
}

#[test]
fn mut1_matches_independent_implementation() {
    check_against_reference("mut1", &reference::Mut1, 3, 3);
}

fn eval_error(dir: &Path, cell: &str, w: &TensorSet, inp: &TensorSet, extra: &[&str]) -> String {
    let (wp, ip) = (save(dir, "w.safetensors", w), save(dir, "in.safetensors", inp));
    let op = dir.join("out.safetensors").to_string_lossy().into_owned();
    let mut args = vec!["eval", cell, "--weights", &wp, "--inputs", &ip, "--out", &op];
    args.extend_from_slice(extra);
    let o = cellc(&args);
    assert_eq!(o.status.code(), Some(1), "expected failure for {extra:?}");
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(!dir.join("out.safetensors").exists(), "no output on failure");
    err
}

#[test]
fn bad_tensors_get_one_line_errors_naming_the_tensor() {
    let dir = scratch("errors");
    let good = random_case("gru", 3, 2, 2, 1, 1);
    let grad = ["--engine", "interp", "--grad"];

    let mut w = good.weights.clone();
    w.tensors.remove("W_hz");
    assert!(
        eval_error(&dir, "gru", &w, &good.inputs, &grad).contains("missing tensor `W_hz` (expected shape [H=3, H=3])")
    );

    let mut w = good.weights.clone();
    w.tensors.insert("W_xr".into(), ArrayD::zeros(vec![2, 3]));
    let e = eval_error(&dir, "gru", &w, &good.inputs, &grad);
    assert!(e.contains("tensor `W_xr` has shape [2, 3], expected [H=3, D=2]"), "{e}");

    let mut w = good.weights.clone();
    w.tensors.insert("W_typo".into(), ArrayD::zeros(vec![3, 3]));
    assert!(eval_error(&dir, "gru", &w, &good.inputs, &grad).contains("unexpected tensor `W_typo`"));

    let mut inp = good.inputs.clone();
    inp.tensors.remove("dy");
    assert!(
        eval_error(&dir, "gru", &good.weights, &inp, &grad)
            .contains("missing tensor `dy` (expected shape [T=2, B=1, H=3])")
    );

    let mut inp = good.inputs.clone();
    inp.tensors.insert("h".into(), ArrayD::zeros(vec![3]));
    assert!(eval_error(&dir, "gru", &good.weights, &inp, &grad).contains("tensor `h` has shape [3], expected [B, H]"));

    let mut inp = random_case("mut1", 3, 3, 2, 1, 1).inputs;
    inp.tensors.insert("x".into(), ArrayD::zeros(vec![2, 1, 2]));
    let mut_w = random_case("mut1", 3, 3, 2, 1, 1).weights;
    assert!(eval_error(&dir, "mut1", &mut_w, &inp, &["--grad"]).contains("needs input size D equal to hidden size H"));
    let e = eval_error(&dir, "gru", &good.weights, &good.inputs, &[]);
    assert!(e.contains("unexpected tensor `dy`") && e.contains("dy with --grad"), "dy without --grad: {e}");
}

#[test]
fn unreadable_and_foreign_files_get_one_line_errors() {
    let dir = scratch("files");
    let good = random_case("gru", 3, 2, 2, 1, 1);
    let wp = save(&dir, "w.safetensors", &good.weights);
    let ip = save(&dir, "in.safetensors", &good.inputs);
    let garbage = dir.join("garbage.safetensors");
    std::fs::write(&garbage, b"this is not a tensor file").unwrap();
    // A valid safetensors file holding an F64 tensor.
    let f64_file = dir.join("f64.safetensors");
    let header = br#"{"x":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}}"#;
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header);
    bytes.extend_from_slice(&1.0f64.to_le_bytes());
    std::fs::write(&f64_file, bytes).unwrap();
    let out = dir.join("out.safetensors").to_string_lossy().into_owned();
    for (w, i, expect) in [
        ("missing.safetensors", ip.as_str(), "cannot read `missing.safetensors`"),
        (garbage.to_str().unwrap(), ip.as_str(), "not a valid safetensors file"),
        (wp.as_str(), f64_file.to_str().unwrap(), "tensor `x` has dtype F64; cellc reads F32 tensors"),
    ] {
        let o = cellc(&["eval", "gru", "--weights", w, "--inputs", i, "--out", &out]);
        assert_eq!(o.status.code(), Some(1));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.lines().count() == 1 && err.contains(expect), "{err}");
    }
}

#[test]
fn init_writes_deterministic_weights_in_the_contract_layout() {
    let dir = scratch("init");
    let a = dir.join("a.safetensors").to_string_lossy().into_owned();
    let b = dir.join("b.safetensors").to_string_lossy().into_owned();
    for out in [&a, &b] {
        let o = cellc(&["init", "lstm_b", "--hidden", "5", "--input", "3", "--seed", "7", "--out", out]);
        assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    }
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap(), "same seed, same bytes");
    let set = TensorSet::decode(&std::fs::read(&a).unwrap(), "a").unwrap();
    assert_eq!(set.tensors["W_xi"].shape(), &[5, 3]);
    assert_eq!(set.tensors["W_hi"].shape(), &[5, 5]);
    assert!(set.tensors["b_f"].iter().all(|v| *v == 1.0), "lstm_b starts with b_f = 1");
    let bound = 1.0 / 3f32.sqrt();
    assert!(set.tensors["W_xi"].iter().all(|v| v.abs() <= bound), "default law: ±1/sqrt(fan-in)");
    assert_eq!(set.metadata["cell"], "lstm_b");
    let o = cellc(&["init", "mut1", "--hidden", "5", "--input", "3", "--out", &a]);
    assert_eq!(o.status.code(), Some(1), "mut1 needs D = H");
}
