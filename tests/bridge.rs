//! The bridges to PyTorch and JAX, checked in the real frameworks (`tests/python/check_export.py`
//! in the environment of `support::python`): `cellc export` of every std cell, of 100 random
//! cells, of 30 with reductions and of 30 with regularisers (a training step's masks replayed,
//! or their expectation) and every std cell on a variable-length batch (per-example lengths)
//! computes what `cellc eval` computes, outputs and every gradient, in
//! both frameworks; an exported trained model gives the loss `cellc test --batch` gives; `cellc import` of PyTorch's
//! `nn.LSTM` and `nn.GRU` reproduces PyTorch's outputs through `cellc eval`. Also: `cellc sample`
//! is deterministic for a seed, and the MIDI file it writes holds the notes it reports.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use cellc::check::Cell;
use cellc::rng::Rng;
use cellc::tasks::{BatchStream, Split};
use cellc::tensors::TensorSet;
use ndarray::ArrayD;
use serde_json::{Value, json};
use support::{cellc, scratch};

/// Sizes of the cell cases: small, with D != H where the cell allows it (a transposed matrix
/// would not go unnoticed).
const T: usize = 3;
const B: usize = 2;
const H: usize = 4;
const D: usize = 3;

fn ok(args: &[&str]) -> String {
    let o = cellc(args);
    assert!(o.status.success(), "cellc {}: {}", args.join(" "), String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn random(rng: &mut Rng, shape: &[usize], scale: f64) -> ArrayD<f32> {
    let n = shape.iter().product();
    ArrayD::from_shape_vec(shape.to_vec(), (0..n).map(|_| rng.uniform(-scale, scale) as f32).collect()).unwrap()
}

fn write(p: &Path, set: &TensorSet) {
    std::fs::write(p, set.encode()).unwrap();
}

fn read(p: &Path) -> TensorSet {
    TensorSet::decode(&std::fs::read(p).unwrap(), &p.display().to_string()).unwrap()
}

/// Runs the checker on `cases`; fails with its output unless every case passed.
fn check(dir: &Path, cases: &[Value]) -> String {
    let manifest = dir.join("manifest.json");
    std::fs::write(&manifest, serde_json::to_string_pretty(cases).unwrap()).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/check_export.py");
    let o = Command::new(support::python::python()).arg(script).arg(&manifest).output().expect("run python");
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success() && out.lines().last() == Some(&format!("ok {}", cases.len())),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

/// One cell case: weights from its init rules, random inputs, what `cellc eval` (the f64
/// interpreter) computes, and both exports.
fn cell_case(dir: &Path, name: &str, cell_arg: &str, cell: &Cell, rng: &mut Rng) -> Value {
    cell_case_masked(dir, name, cell_arg, cell, rng, None, false)
}

/// [`cell_case`] with the regularisers' masks drawn from `mask_seed` (a training step's, which
/// `cellc eval` writes out for the frameworks to replay), or at their expectation (`None`).
fn cell_case_masked(
    dir: &Path,
    name: &str,
    cell_arg: &str,
    cell: &Cell,
    rng: &mut Rng,
    mask_seed: Option<u64>,
    with_lengths: bool,
) -> Value {
    let states: Vec<&str> = cell.states.iter().map(|s| s.name.as_str()).collect();
    let d = if cell.d_equals_h.is_some() { H } else { D };
    let file = |ext: &str| dir.join(format!("{name}.{ext}"));
    let (w, inputs, expected, torch, jax) =
        (file("w.safetensors"), file("in.safetensors"), file("out.safetensors"), file("torch.py"), file("jax.py"));
    let (h, dd) = (H.to_string(), d.to_string());
    let seed = rng.below(1000).to_string();
    ok(&["init", cell_arg, "--hidden", &h, "--input", &dd, "--seed", &seed, "--out", path(&w)]);
    let mut set = TensorSet::default();
    set.tensors.insert("x".into(), random(rng, &[T, B, d], 1.0));
    set.tensors.insert("dy".into(), random(rng, &[T, B, H], 1.0));
    for s in states {
        set.tensors.insert(s.to_string(), random(rng, &[B, H], 0.5));
    }
    if with_lengths {
        // Longest first; one example ends before the last step, one before the first.
        let lengths: Vec<f32> = (0..B).map(|b| (T - b.min(T)) as f32).collect();
        set.tensors.insert("lengths".into(), ArrayD::from_shape_vec(vec![B], lengths).unwrap());
    }
    write(&inputs, &set);
    let eval = ["eval", cell_arg, "--weights", path(&w), "--inputs", path(&inputs), "--out", path(&expected)];
    let seed_flag = mask_seed.map(|s| s.to_string());
    let masks: Vec<&str> = seed_flag.iter().flat_map(|s| ["--mask-seed", s.as_str()]).collect();
    ok(&[&eval[..], &["--grad", "--engine", "interp"], &masks].concat());
    ok(&["export", cell_arg, "--to", "pytorch", "--out", path(&torch)]);
    ok(&["export", cell_arg, "--to", "jax", "--out", path(&jax)]);
    json!({"kind": "cell", "name": name, "hidden": H, "weights": w, "inputs": inputs, "expected": expected,
           "torch": torch, "jax": jax})
}

#[test]
fn exported_cells_compute_what_cellc_eval_computes_in_pytorch_and_jax() {
    let dir = scratch("bridge-cells");
    let ws = cellc::workspace::Workspace::new();
    let mut rng = Rng::new(21);
    let mut cases = vec![];
    for name in cellc::stdlib::names() {
        let cell = &ws.check_std(name).unwrap().cells[0];
        cases.push(cell_case(&dir, name, name, cell, &mut rng));
    }
    for k in 0..100 {
        let name = format!("random{k}");
        let text = support::random_cell(&mut rng, &name, support::CellGen::default());
        let cell = support::checked_cell(&text);
        let file = dir.join(format!("{name}.cell"));
        std::fs::write(&file, &text).unwrap();
        cases.push(cell_case(&dir, &name, path(&file), &cell, &mut rng));
    }
    // Reductions and layer normalisations (`mean`, `sum`; the interpreter computes them).
    let reducing = support::CellGen { reductions: true, ..support::CellGen::default() };
    for k in 0..30 {
        let name = format!("reducing{k}");
        let text = support::random_cell(&mut rng, &name, reducing);
        let cell = support::checked_cell(&text);
        let file = dir.join(format!("{name}.cell"));
        std::fs::write(&file, &text).unwrap();
        cases.push(cell_case(&dir, &name, path(&file), &cell, &mut rng));
    }
    // Regularisers: a training step's masks replayed (and, for a few, their expectation).
    let (_, examples) =
        support::check_text("06.cell", &std::fs::read_to_string("examples/06_regularisers.cell").unwrap());
    for cell in &examples.cells {
        let arg = format!("examples/06_regularisers.cell:{}", cell.name);
        cases.push(cell_case_masked(&dir, &cell.name, &arg, cell, &mut rng, Some(7), false));
        cases.push(cell_case_masked(&dir, &format!("{}_eval", cell.name), &arg, cell, &mut rng, None, false));
        cases.push(cell_case_masked(&dir, &format!("{}_lengths", cell.name), &arg, cell, &mut rng, Some(8), true));
    }
    let masked = support::CellGen { reductions: true, masks: true, ..support::CellGen::default() };
    for k in 0..30 {
        let name = format!("masked{k}");
        let text = support::random_cell(&mut rng, &name, masked);
        let cell = support::checked_cell(&text);
        let file = dir.join(format!("{name}.cell"));
        std::fs::write(&file, &text).unwrap();
        let seed = (k % 5 != 0).then_some(k);
        cases.push(cell_case_masked(&dir, &name, path(&file), &cell, &mut rng, seed, k % 2 == 1));
    }
    // Variable-length batches: every std cell with per-example lengths.
    for name in cellc::stdlib::names() {
        let cell = &ws.check_std(name).unwrap().cells[0];
        cases.push(cell_case_masked(&dir, &format!("{name}_lengths"), name, cell, &mut rng, None, true));
    }
    let out = check(&dir, &cases);
    eprintln!(
        "{}",
        out.lines()
            .filter(|l| l.starts_with("ok    gru") || l.starts_with("ok    lstm:"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Trains a small model and saves it.
fn trained(dir: &Path, cell: &str, task: &str, extra: &[&str]) -> PathBuf {
    let save = dir.join(format!("{cell}-{}", task.replace(':', "-")));
    let args = ["run", cell, "--task", task, "--steps", "40", "--hidden", "16", "--save", path(&save), "--json"];
    ok(&[&args[..], extra].concat());
    save
}

/// The first validation batch of the checkpoint's task, as `cellc test --batch` reads it.
fn validation_batch(checkpoint: &Path, out: &Path) -> bool {
    let (_, config) = cellc::train::checkpoint::peek(checkpoint).unwrap();
    let task = config.task.build().unwrap();
    let b = BatchStream::new(&task, Split::Valid, 5).next(4, 12);
    // Sequence tasks size a batch's steps by its examples.
    let (batch, steps) = (b.batch, b.steps);
    let mut set = TensorSet::default();
    let music = b.frames.is_some();
    if let Some(f) = &b.frames {
        let hot = |sets: &cellc::tasks::Sets| {
            let mut a = ArrayD::zeros(vec![steps, batch, task.vocab()]);
            for r in 0..sets.rows() {
                for &u in sets.row(r) {
                    a[[r / batch, r % batch, u as usize]] = 1.0;
                }
            }
            a
        };
        set.tensors.insert("inputs".into(), hot(&f.input));
        set.tensors.insert("targets".into(), hot(&f.target));
    } else {
        let symbols =
            |v: &[u32]| ArrayD::from_shape_vec(vec![steps, batch], v.iter().map(|&s| s as f32).collect()).unwrap();
        set.tensors.insert("inputs".into(), symbols(&b.tokens));
        set.tensors.insert("targets".into(), symbols(&b.targets));
    }
    set.tensors.insert("weights".into(), ArrayD::from_shape_vec(vec![steps, batch], b.weights.clone()).unwrap());
    write(out, &set);
    music
}

#[test]
fn an_exported_trained_model_gives_the_loss_cellc_test_gives() {
    let dir = scratch("bridge-models");
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data");
    let models = [
        trained(&dir, "gru", "arith", &[]),
        trained(&dir, "lstm", "music:jsb", &["--layers", "2", "--data", data]),
        trained(&dir, "mut1", "xml", &["--layers", "2"]),
        trained(&dir, "gru", "memorize", &["--layers", "3", "--bidirectional", "--dropout", "0.1"]),
    ];
    let mut cases = vec![];
    for (i, m) in models.iter().enumerate() {
        let batch = dir.join(format!("batch{i}.safetensors"));
        validation_batch(m, &batch);
        let out: Value = serde_json::from_str(&ok(&["test", path(m), "--batch", path(&batch), "--json"])).unwrap();
        let (torch, jax) = (dir.join(format!("model{i}_torch.py")), dir.join(format!("model{i}_jax.py")));
        let cell = out["cell"].as_str().unwrap();
        for (to, file) in [("pytorch", &torch), ("jax", &jax)] {
            ok(&["export", cell, "--to", to, "--checkpoint", path(m), "--out", path(file)]);
        }
        cases.push(json!({"kind": "model", "name": m.file_name().unwrap().to_string_lossy(), "loss": out["loss"],
            "batch": batch, "checkpoint": m.join("model.safetensors"), "torch": torch, "jax": jax}));
    }
    eprintln!("{}", check(&dir, &cases));
}

#[test]
fn imported_torch_weights_reproduce_pytorchs_outputs() {
    let dir = scratch("bridge-import");
    let (steps, batch, input, hidden, layers) = (5, 3, 6, 4, 2);
    let modules = [("nn.LSTM", "lstm", vec!["h", "c"]), ("nn.GRU", "gru_torch", vec!["h"])];
    let cases: Vec<Value> = modules
        .iter()
        .enumerate()
        .map(|(i, (module, _, _))| {
            json!({"kind": "torch_rnn", "name": module, "module": module, "seed": 7 + i, "steps": steps,
                "batch": batch, "input": input, "hidden": hidden, "layers": layers,
                "state_dict": dir.join(format!("{i}.state.safetensors")),
                "outputs": dir.join(format!("{i}.torch_out.safetensors"))})
        })
        .collect();
    check(&dir, &cases);
    for (i, (module, cell, states)) in modules.iter().enumerate() {
        let weights = dir.join(format!("{i}.cellc.safetensors"));
        let state_dict = dir.join(format!("{i}.state.safetensors"));
        ok(&["import", path(&state_dict), "--from", module, "--out", path(&weights)]);
        let torch = read(&dir.join(format!("{i}.torch_out.safetensors")));
        let mut x = torch.tensors["x"].clone();
        for l in 0..layers {
            let mut inputs = TensorSet::default();
            inputs.tensors.insert("x".into(), x.clone());
            for s in states {
                inputs.tensors.insert(s.to_string(), ArrayD::zeros(vec![batch, hidden]));
            }
            let (inp, out) =
                (dir.join(format!("{i}.{l}.in.safetensors")), dir.join(format!("{i}.{l}.out.safetensors")));
            write(&inp, &inputs);
            let layer = l.to_string();
            ok(&[
                "eval",
                cell,
                "--weights",
                path(&weights),
                "--layer",
                &layer,
                "--inputs",
                path(&inp),
                "--out",
                path(&out),
            ]);
            let got = read(&out);
            for (s, torch_name) in states.iter().zip(["h_n", "c_n"]) {
                let want = torch.tensors[torch_name].index_axis(ndarray::Axis(0), l).to_owned().into_dyn();
                assert_close(&got.tensors[*s], &want, &format!("{module} layer {l} final {s}"));
            }
            x = got.tensors["y"].clone();
        }
        assert_close(&x, &torch.tensors["y"], &format!("{module}: the last layer's outputs"));
    }
}

fn assert_close(got: &ArrayD<f32>, want: &ArrayD<f32>, what: &str) {
    assert_eq!(got.shape(), want.shape(), "{what}");
    let worst = got.iter().zip(want).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(worst <= 1e-5, "{what}: differs by {worst}");
}

#[test]
fn sampling_is_deterministic_for_a_seed_and_its_midi_holds_the_notes() {
    let dir = scratch("bridge-sample");
    let text = trained(&dir, "gru", "arith", &[]);
    let sample = |seed: &str| ok(&["sample", path(&text), "--prime", "12+345=", "--seed", seed, "--json"]);
    assert_eq!(sample("3"), sample("3"), "the same seed gives the same sample");
    let xml = trained(&dir, "gru", "xml", &[]);
    let unprimed: Value = serde_json::from_str(&ok(&["sample", path(&xml), "--length", "30", "--json"])).unwrap();
    assert_eq!(unprimed["prime"], "<", "XML without a prime starts a tag: {unprimed}");
    assert!(!unprimed["sample"].as_str().unwrap().is_empty(), "{unprimed}");
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data");
    let music = trained(&dir, "gru", "music:jsb", &["--data", data]);
    let mid = dir.join("piece.mid");
    let run = || {
        let out = ok(&["sample", path(&music), "--length", "48", "--seed", "4", "--out", path(&mid), "--json"]);
        (serde_json::from_str::<Value>(&out).unwrap(), std::fs::read(&mid).unwrap())
    };
    let (report, bytes) = run();
    assert_eq!(run().1, bytes, "the same seed writes the same file");
    assert!(mid.with_extension("png").exists(), "a piano roll beside the MIDI file");
    let mut frames: Vec<Vec<u8>> = serde_json::from_value(report["piece"].clone()).unwrap();
    frames.iter_mut().for_each(|f| f.sort());
    assert_eq!(frames.len(), 48);
    assert_eq!(midi_frames(&bytes, frames.len()), frames, "the MIDI file holds the reported notes");
}

/// The notes sounding at the start of each frame, read with `midly` directly (not through
/// cellc): a frame is an eighth note at the file's ticks per quarter; units are MIDI keys - 21.
fn midi_frames(bytes: &[u8], frames: usize) -> Vec<Vec<u8>> {
    let smf = midly::Smf::parse(bytes).expect("a valid MIDI file");
    let midly::Timing::Metrical(ppq) = smf.header.timing else { panic!("metrical timing") };
    let frame_ticks = u32::from(ppq.as_int()) / 2;
    let mut sounding = std::collections::BTreeSet::new();
    let mut out = vec![vec![]; frames];
    let mut tick = 0u32;
    let mut events = smf.tracks[0].iter().peekable();
    for (f, frame) in out.iter_mut().enumerate() {
        let start = f as u32 * frame_ticks;
        while let Some(e) = events.peek() {
            if tick + e.delta.as_int() > start {
                break;
            }
            tick += e.delta.as_int();
            if let midly::TrackEventKind::Midi { message, .. } = e.kind {
                match message {
                    midly::MidiMessage::NoteOn { key, vel } if vel.as_int() > 0 => {
                        sounding.insert(key.as_int() - 21);
                    }
                    midly::MidiMessage::NoteOn { key, .. } | midly::MidiMessage::NoteOff { key, .. } => {
                        sounding.remove(&(key.as_int() - 21));
                    }
                    _ => {}
                }
            }
            events.next();
        }
        *frame = sounding.iter().copied().collect();
    }
    out
}
