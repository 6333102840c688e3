//! The trainer end to end: a short run learns, a seed and thread count repeat bit for bit, a
//! resumed run matches an uninterrupted one, a NaN is traced to its equation, checkpoints load,
//! and `cellc run` / `cellc test` work from the command line with a plot.

mod support;

use cellc::check::Cell;
use cellc::tasks::{TaskConfig, TaskKind};
use cellc::train::optim::OptimizerKind;
use cellc::train::{Budget, Event, Hooks, Run, TrainConfig};
use cellc::workspace::CellSource;

/// A small, fast run: `TrainConfig::short` at H = 32, batch 16 x 20, lr 1e-2, 2 threads.
fn config(task: &str, steps: u64) -> TrainConfig {
    let mut t = TaskConfig::new(TaskKind::parse(task).unwrap());
    t.eval_chars = 256;
    t.max_digits = 3;
    let mut c = TrainConfig::short(t, 32, steps, 7);
    c.task.streams = 8;
    c.batch = 16;
    c.bptt = 20;
    c.lr = 1e-2;
    c.eval_every = 25;
    c.eval_examples = 256;
    c.threads = 2;
    c
}

fn std_source(name: &str) -> CellSource {
    let ws = cellc::workspace::Workspace::new();
    let file = ws.std_file(name).unwrap();
    let f = ws.sources.get(file);
    CellSource { name: name.into(), file: f.name.clone(), text: f.text.to_string() }
}

fn cell(name: &str) -> Cell {
    std_source(name).checked().unwrap()
}

/// Trains and returns (outcome's test metric, the history's numbers, final parameters).
/// (step, training loss, validation metric) per evaluation.
type History = Vec<(u64, f64, f64)>;

fn train(cell: &Cell, cfg: TrainConfig) -> (f64, History, Vec<Vec<f32>>) {
    let mut run = Run::start(cell, cfg).unwrap();
    let out = run.train(Hooks::default()).unwrap().unwrap();
    let state = &run.state;
    let hist = state.history.iter().map(|r| (r.step, r.train_loss, r.valid.metric)).collect();
    (out.test.metric, hist, state.params.tensors().into_iter().cloned().collect())
}

#[test]
fn a_short_run_learns_memorization() {
    let mut cfg = config("memorize", 300);
    cfg.hidden = 64;
    let mut run = Run::start(&cell("gru"), cfg).unwrap();
    let mut first_loss = None;
    let mut observe = |ev: Event<'_>| {
        if let Event::Step { loss, .. } = ev {
            first_loss.get_or_insert(loss);
        }
    };
    let out = run.train(Hooks { observe: Some(&mut observe), ..Hooks::default() }).unwrap().unwrap();
    let chance = (26f64).ln();
    let first = first_loss.unwrap();
    eprintln!("memorize: first loss {first:.3} (chance {chance:.3}), test accuracy {:.3}", out.test.metric);
    assert!((first - chance).abs() < 0.5, "starts near chance");
    assert!(out.test.loss < 0.5 * chance, "loss falls well below chance: {}", out.test.loss);
    assert!(out.test.metric > 0.5, "accuracy {}", out.test.metric);
}

#[test]
fn a_seed_and_thread_count_repeat_bit_for_bit() {
    let e = cell("mut1");
    for task in ["arith", "xml"] {
        let (a, ha, pa) = train(&e, config(task, 60));
        let (b, hb, pb) = train(&e, config(task, 60));
        assert_eq!(a.to_bits(), b.to_bits(), "{task}");
        assert_eq!(ha, hb, "{task}");
        assert_eq!(pa, pb, "{task}");
        let mut other = config(task, 60);
        other.seed = 8;
        assert_ne!(train(&e, other).2, pa, "{task}: another seed differs");
    }
}

#[test]
fn dropout_layers_and_sgd_train_too() {
    let e = cell("lstm");
    let mut cfg = config("arith", 80);
    cfg.layers = 2;
    cfg.dropout = 0.2;
    cfg.optimizer = OptimizerKind::Sgd;
    cfg.lr = 0.5;
    let (metric, hist, _) = train(&e, cfg.clone());
    assert!(hist.last().unwrap().1 < hist[0].1, "training loss falls: {hist:?}");
    assert!(metric > 0.15, "{metric}");
    assert_eq!(train(&e, cfg).0.to_bits(), metric.to_bits(), "dropout masks come from the seed");
}

#[test]
fn resuming_continues_exactly() {
    let e = cell("gru");
    let source = std_source("gru");
    for (task, dropout) in [("arith", 0.1), ("xml", 0.0), ("music:jsb", 0.1)] {
        let mut cfg = config(task, 100);
        cfg.task.data =
            task.starts_with("music").then(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data"));
        cfg.dropout = dropout;
        // arith resumes its curriculum level too.
        cfg.task.curriculum = task == "arith";
        let whole = train(&e, cfg.clone());
        // Stop at 50 (a checkpoint is written at each evaluation), then resume to 100.
        let dir = support::scratch(&format!("resume-{task}"));
        let mut half = cfg.clone();
        half.budget = Budget::Steps(50);
        let mut first = Run::start(&e, half).unwrap();
        first.train(Hooks { save: Some((&dir, &source)), ..Hooks::default() }).unwrap().unwrap();
        let mut run = Run::resume(&e, &dir).unwrap();
        assert_eq!(run.state.step, 50);
        run.state.config.budget = Budget::Steps(100);
        let out = run.train(Hooks::default()).unwrap().unwrap();
        let resumed = &run.state;
        let hist: Vec<(u64, f64, f64)> =
            resumed.history.iter().map(|r| (r.step, r.train_loss, r.valid.metric)).collect();
        assert_eq!(hist, whole.1, "{task}: the same history");
        assert_eq!(resumed.params.tensors().into_iter().cloned().collect::<Vec<_>>(), whole.2, "{task}: same weights");
        assert_eq!(out.test.metric.to_bits(), whole.0.to_bits(), "{task}: same test result");
    }
}

#[test]
fn a_run_builds_its_task_once() {
    // Music reads and parses its data set on every build: a run, its checkpoints, a resume and a
    // test of the saved model each build it exactly once.
    let mut cfg = config("music:jsb", 60);
    cfg.task.data = Some(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data"));
    let (gru, source) = (cell("gru"), std_source("gru"));
    let dir = support::scratch("built-once");
    let builds = cellc::tasks::builds_on_this_thread;
    let before = builds();
    let mut run = Run::start(&gru, cfg).unwrap();
    run.train(Hooks { save: Some((&dir, &source)), ..Hooks::default() }).unwrap().unwrap();
    assert_eq!(run.state.history.len(), 2, "two validations, each with a checkpoint");
    assert_eq!(builds() - before, 1, "a run with checkpoints builds its task once");
    let mut resumed = Run::resume(&gru, &dir).unwrap();
    resumed.state.config.budget = Budget::Steps(70);
    resumed.train(Hooks::default()).unwrap().unwrap();
    assert_eq!(builds() - before, 2, "a resumed run builds it once more");
    cellc::train::run::test_saved(&gru, &dir, 1).unwrap();
    assert_eq!(builds() - before, 3, "testing a saved model builds it once");
}

#[test]
fn the_curriculum_adds_digits_as_validation_passes() {
    let mut cfg = config("arith", 800);
    cfg.task.curriculum = true;
    cfg.task.distractors = 0.0;
    cfg.hidden = 64;
    cfg.batch = 64;
    cfg.lr = 3e-3;
    cfg.eval_every = 50;
    let mut run = Run::start(&cell("gru"), cfg).unwrap();
    assert_eq!(run.state.train.level(), Some(1), "it begins with 1-digit numbers");
    run.train(Hooks::default()).unwrap().unwrap();
    let state = &run.state;
    let levels: Vec<usize> = state.history.iter().map(|r| r.level.unwrap()).collect();
    assert!(levels.windows(2).all(|w| w[1] == w[0] || w[1] == w[0] + 1), "one digit at a time: {levels:?}");
    let valid: Vec<f64> = state.history.iter().map(|r| r.valid.metric).collect();
    assert!(*levels.last().unwrap() > 1, "the level rises: {levels:?} {valid:?}");
}

#[test]
fn a_nan_is_traced_to_its_equation() {
    // exp of a growing state overflows: the first infinity is in h' at some step.
    let text = "cell boom {\n    state h\n    h' = exp(W*h + x + b)\n}\n";
    let (_, checked) = support::check_text("boom.cell", text);
    let mut cfg = config("arith", 50);
    cfg.init_scale = 30.0;
    let mut run = Run::start(&checked.cells[0], cfg).unwrap();
    let err = run.train(Hooks::default()).unwrap().unwrap_err();
    eprintln!("diverged at step {}: {}", err.step, err.origin);
    assert_eq!(err.step, 1, "caught at the first step");
    assert!(err.origin.contains("h' = exp(") && err.origin.contains("time step"), "{}", err.origin);
}

#[test]
fn the_command_line_trains_saves_tests_and_plots() {
    let dir = support::scratch("cli");
    let (svg, png) = (dir.join("curves.svg"), dir.join("curves.png"));
    let out = support::cellc(&[
        "run",
        "gru",
        "--task",
        "memorize",
        "--hidden",
        "32",
        "--steps",
        "60",
        "--eval-every",
        "20",
        "--eval-examples",
        "200",
        "--json",
        "--save",
        dir.to_str().unwrap(),
        "--plot",
        svg.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 4, "three evaluations and a result: {stdout}");
    let result = lines.last().unwrap();
    for key in ["event", "cell", "task", "metric", "valid", "test", "steps", "seconds", "tokens_per_s"] {
        assert!(result.get(key).is_some(), "result has `{key}`: {result}");
    }
    assert_eq!(result["event"], "result");
    assert_eq!(result["steps"], 60);
    for f in ["model.safetensors", "state.safetensors"] {
        assert!(dir.join(f).exists(), "{f} written");
    }
    assert!(!dir.join("model.json").exists(), "no unverified copy of the description");
    let svg_text = std::fs::read_to_string(&svg).unwrap();
    assert!(svg_text.starts_with("<svg") && svg_text.contains("<polyline"), "an SVG with curves");
    // `cellc test` evaluates the saved model on the same test set.
    let t = support::cellc(&["test", dir.to_str().unwrap(), "--json"]);
    assert!(t.status.success(), "{}", String::from_utf8_lossy(&t.stderr));
    let tested: serde_json::Value = serde_json::from_slice(&t.stdout).unwrap();
    assert_eq!(tested["test"], result["test"], "the test metric of the best model");
    // PNG plots, on a resumed run extended to 80 steps.
    let r =
        support::cellc(&["run", "--resume", dir.to_str().unwrap(), "--steps", "80", "--plot", png.to_str().unwrap()]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert!(std::fs::read(&png).unwrap().starts_with(b"\x89PNG\r\n\x1a\n"));
    // Bad input: one line, exit 1.
    for args in [
        &["run", "gru"][..],
        &["run", "gru", "--task", "arith", "--lr=-1"],
        &["run", "gru", "--task", "arith", "--time", "5 parsecs"],
        &["run", "--resume", "/nonexistent/dir"],
        &["test", "/nonexistent/dir"],
    ] {
        let o = support::cellc(args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8(o.stderr).unwrap();
        assert!(err.starts_with("error: ") && err.lines().count() == 1, "{args:?}: {err}");
    }
}

#[test]
fn the_ptb_recipe_decays_by_epoch_from_a_uniform_start() {
    let e = cell("lstm");
    let dir = support::scratch("epochs");
    let file = dir.join("text.txt");
    std::fs::write(&file, "the quick brown fox jumps over the lazy dog\n".repeat(50)).unwrap();
    let mut cfg = config("text", 80);
    cfg.task.kind = TaskKind::Text;
    cfg.task.data = Some(file);
    cfg.task.streams = 4;
    cfg.bptt = 10;
    cfg.optimizer = OptimizerKind::Sgd;
    cfg.lr = 1.0;
    cfg.decay = 0.5;
    cfg.decay_epoch = Some(1);
    cfg.init_uniform = Some(0.1);
    let run = Run::start(&e, cfg.clone()).unwrap();
    let state = &run.state;
    assert!(state.params.tensors().iter().all(|t| t.iter().all(|v| v.abs() <= 0.1)), "every parameter in ±0.1");
    assert!(state.params.cells[0].iter().any(|t| t.iter().any(|v| v.abs() > 0.05)), "and spread over it");
    // 1,980 training characters in 4 streams of 495: 50 batches per epoch. Epoch i (from 0) runs
    // at decay^max(i + 1 - 1, 0): step 80 is in epoch 1, step 170 in epoch 3.
    let mut s80 = Run::start(&e, cfg.clone()).unwrap();
    s80.train(Hooks::default()).unwrap().unwrap();
    assert_eq!(s80.state.lr, 0.5, "one decay in the second epoch");
    cfg.budget = Budget::Steps(170);
    let mut s170 = Run::start(&e, cfg).unwrap();
    s170.train(Hooks::default()).unwrap().unwrap();
    assert_eq!(s170.state.lr, 0.125, "three in the fourth");
}

/// A cell with zoneout on its state (rate `rate`).
fn zoneout_gru(rate: &str) -> Cell {
    support::checked_cell(&format!(
        "cell gru_zoneout = gru with {{\n    h' = zoneout(z*h + (1 - z)*n, h, {rate})\n}}\n"
    ))
}

#[test]
fn a_cells_regularisers_draw_new_masks_each_step_from_the_seed_and_resume_exactly() {
    let cfg = config("arith", 60);
    let (metric, hist, params) = train(&zoneout_gru("0.3"), cfg.clone());
    let again = train(&zoneout_gru("0.3"), cfg.clone());
    assert_eq!((metric.to_bits(), &hist, &params), (again.0.to_bits(), &again.1, &again.2), "masks come from the seed");
    // Rate 0 draws masks that keep nothing old: the GRU, up to the rounding of a differently
    // fused kernel; rate 0.3 trains differently.
    let plain = train(&cell("gru"), cfg.clone());
    let rate0 = train(&zoneout_gru("0"), cfg.clone());
    let gap = |a: &[Vec<f32>], b: &[Vec<f32>]| {
        a.iter().flatten().zip(b.iter().flatten()).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max)
    };
    eprintln!("zoneout 0 vs gru: {:.1e}; zoneout 0.3 vs gru: {:.1e}", gap(&rate0.2, &plain.2), gap(&params, &plain.2));
    assert!(gap(&rate0.2, &plain.2) < 1e-4, "zoneout at rate 0 is the plain cell");
    assert!(gap(&params, &plain.2) > 1e-2, "zoneout at rate 0.3 changes training");
    // A resumed run draws the masks the uninterrupted one drew.
    let dir = support::scratch("resume-zoneout");
    let mut half = cfg.clone();
    half.budget = Budget::Steps(30);
    let e = zoneout_gru("0.3");
    let source = CellSource {
        name: "gru_zoneout".into(),
        file: "gru_zoneout.cell".into(),
        text: "cell gru_zoneout = gru with {\n    h' = zoneout(z*h + (1 - z)*n, h, 0.3)\n}\n".into(),
    };
    Run::start(&e, half).unwrap().train(Hooks { save: Some((&dir, &source)), ..Hooks::default() }).unwrap().unwrap();
    let mut run = Run::resume(&e, &dir).unwrap();
    run.state.config.budget = Budget::Steps(60);
    let out = run.train(Hooks::default()).unwrap().unwrap();
    assert_eq!(run.state.params.tensors().into_iter().cloned().collect::<Vec<_>>(), params);
    assert_eq!(out.test.metric.to_bits(), metric.to_bits());
}

#[test]
fn batches_run_by_length_train_exactly_as_padded_ones() {
    // Padding rows have weight 0, so their gradient is exactly 0 either way: running only each
    // example's own steps changes no bit (a layer normalisation divides by stored values; a
    // zoneout cell draws masks).
    for cell in [cell("gru"), cell("lstm_ln"), zoneout_gru("0.3")] {
        let mut cfg = config("arith", 40);
        cfg.layers = 2;
        let by_length = train(&cell, cfg.clone());
        cfg.padded = true;
        let padded = train(&cell, cfg);
        assert_eq!(by_length.2, padded.2, "{}: weights differ", cell.name);
        assert_eq!(by_length.1, padded.1, "{}: histories differ", cell.name);
    }
}

#[test]
fn a_bidirectional_run_repeats_resumes_and_runs_by_length_exactly() {
    let (e, source) = (cell("gru"), std_source("gru"));
    for (task, dropout) in [("arith", 0.0), ("memorize", 0.2)] {
        let mut cfg = config(task, 60);
        (cfg.layers, cfg.bidirectional, cfg.dropout) = (2, true, dropout);
        let whole = train(&e, cfg.clone());
        assert_eq!(whole.2, train(&e, cfg.clone()).2, "{task}: the seed fixes every number");
        let mut one_way = cfg.clone();
        one_way.bidirectional = false;
        let one_way = train(&e, one_way);
        // The embedding and output layer, then a cell per layer and per reverse direction (one).
        let per_cell = (one_way.2.len() - 3) / 2;
        assert_eq!(whole.2.len(), 3 + 3 * per_cell, "{task}: tensors");
        let forward = 1 + 2 * per_cell;
        assert_ne!(one_way.2[..forward], whole.2[..forward], "{task}: the reverse directions count");
        let mut padded = cfg.clone();
        padded.padded = true;
        assert_eq!(train(&e, padded).2, whole.2, "{task}: by length as padded");
        let dir = support::scratch(&format!("resume-bidirectional-{task}"));
        let mut half = cfg.clone();
        half.budget = Budget::Steps(25);
        Run::start(&e, half)
            .unwrap()
            .train(Hooks { save: Some((&dir, &source)), ..Hooks::default() })
            .unwrap()
            .unwrap();
        let mut run = Run::resume(&e, &dir).unwrap();
        run.state.config.budget = Budget::Steps(60);
        let out = run.train(Hooks::default()).unwrap().unwrap();
        assert_eq!(run.state.params.tensors().into_iter().cloned().collect::<Vec<_>>(), whole.2, "{task}: resumed");
        assert_eq!(out.test.metric.to_bits(), whole.0.to_bits(), "{task}: resumed test result");
    }
    // Refused where it cannot mean anything.
    let mut cfg = config("arith", 10);
    cfg.bidirectional = true;
    assert!(Run::start(&e, cfg.clone()).err().unwrap().contains("--layers 2"));
    (cfg.layers, cfg.task.kind) = (2, TaskKind::Xml);
    assert!(Run::start(&e, cfg).err().unwrap().contains("whole question"));
}
