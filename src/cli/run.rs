//! `cellc run`: train a cell on a task with live progress, final metrics, checkpoints and a plot;
//! and `cellc test`: evaluate a saved model on its task's test set. Both go through
//! `train::Run`, the one training path.

use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::json;

use super::args::ThreadsArg;
use super::failure::Outcome;
use super::input;
use super::progress::{StatusLine, bar, clock};
use super::train_args::TrainArgs;
use super::ui::Ui;
use crate::tasks::{Metrics, TaskKind};
use crate::train::{Budget, EvalRecord, Event, Hooks, Outcome as RunOutcome, Run, Stop, checkpoint};
use crate::workspace::{CellSource, Workspace};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A .cell file (FILE:NAME for one of several cells) or a standard cell name; optional with
    /// --resume.
    #[arg(value_name = "CELL")]
    cell: Option<String>,
    #[command(flatten)]
    train: TrainArgs,
    /// Write checkpoints here after every validation (the best model and the full state).
    #[arg(long, value_name = "DIR")]
    save: Option<PathBuf>,
    /// Continue the run saved in DIR exactly; a budget flag may extend it.
    #[arg(long, value_name = "DIR")]
    resume: Option<PathBuf>,
    /// Print one JSON object per validation and a final result object, nothing else on stdout.
    #[arg(long)]
    json: bool,
    /// Draw training loss and validation metric against steps (.svg or .png).
    #[arg(long, value_name = "FILE")]
    plot: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct TestArgs {
    /// A checkpoint directory written by `cellc run --save`.
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    #[command(flatten)]
    threads: ThreadsArg,
    /// Instead of the test set, the mean loss on this batch (safetensors: `inputs` and `targets`
    /// [T, B] symbol numbers as F32, or for music [T, B, 88] notes as 0/1; `weights` [T, B]
    /// optional), from zero states: what an exported model is checked against.
    #[arg(long, value_name = "FILE")]
    batch: Option<PathBuf>,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// The run the flags ask for: a new one, or the one saved in `--resume` (with a new budget or
/// thread count if given). The cell is checked once.
fn start(ui: &Ui, args: &Args) -> Result<(Run, CellSource), super::failure::Failure> {
    let mut ws = Workspace::new();
    let Some(dir) = &args.resume else {
        let arg =
            args.cell.as_deref().ok_or("name a cell to train (a .cell file or a standard cell), or --resume DIR")?;
        let t = &args.train;
        let kind = t.task.ok_or_else(|| format!("choose a task with --task ({})", TaskKind::names(&TaskKind::ALL)))?;
        let (cell, source) = input::load_cell_source(&mut ws, arg, ui)?;
        let run = Run::start(&cell, t.config(kind, Budget::Seconds(300.0), super::args::cores())?)?;
        return Ok((run, source));
    };
    let cannot = |e: String| format!("cannot resume: {e} (a run's state cannot be rebuilt from anything else)");
    let (source, _) = checkpoint::peek(dir).map_err(cannot)?;
    if let Some(arg) = &args.cell {
        let (cell, _) = input::load_cell_source(&mut ws, arg, ui)?;
        if cell.name != source.name {
            return Err(format!("{} holds a run of `{}`, not `{}`", dir.display(), source.name, cell.name).into());
        }
    }
    let mut run = Run::resume(&source.checked()?, dir).map_err(cannot)?;
    if let Some(repaired) = run.repair_model(dir, &source)? {
        eprintln!("warning: {repaired}");
    }
    let config = &mut run.state.config;
    if let Some(b) = args.train.budget()? {
        config.budget = b;
    }
    if let Some(t) = args.train.threads.threads {
        if t != config.threads {
            ui.error(format!(
                "note: the run used {} threads; with {t} the numbers differ from an uninterrupted run",
                config.threads
            ));
        }
        config.threads = t;
    }
    Ok((run, source))
}

/// Live progress: a bar on a terminal, and a line (or a JSON object) per validation.
struct Progress {
    line: StatusLine,
    last_valid: Option<f64>,
    kind: TaskKind,
    json: bool,
}

impl Progress {
    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::Step { step, loss, progress, tokens_per_s, seconds } => {
                let p = progress.clamp(0.0, 1.0);
                let left = if p > 0.0 { seconds / p - seconds } else { 0.0 };
                let valid =
                    self.last_valid.map_or(String::new(), |v| format!("  valid {} {v:.3}", self.kind.metric_short()));
                self.line.draw(&format!(
                    "[{}] {:3.0}%  step {step}  loss {loss:.3}{valid}  {:.1}k tok/s  {} left",
                    bar(p, 24),
                    p * 100.0,
                    tokens_per_s / 1000.0,
                    clock(left)
                ));
            }
            Event::Eval(r) => self.eval(r),
        }
    }

    fn eval(&mut self, r: &EvalRecord) {
        self.last_valid = Some(r.valid.metric);
        self.line.clear();
        if self.json {
            println!(
                "{}",
                json!({"event": "eval", "step": r.step, "train_loss": r.train_loss, "valid": r.valid.metric,
                    "valid_secondary": r.valid.secondary, "valid_loss": r.valid.loss, "lr": r.lr,
                    "seconds": r.seconds, "tokens_per_s": r.tokens_per_s, "level": r.level})
            );
            return;
        }
        let second = r.valid.secondary.map_or(String::new(), |s| format!(" ({s:.3})"));
        let level = r.level.map_or(String::new(), |l| format!("  digits ≤{l}"));
        eprintln!(
            "step {:>7}  {}  train loss {:.4}  valid {} {:.4}{second}  loss {:.4}  lr {:.2e}  {:.1}k tok/s{level}",
            r.step,
            clock(r.seconds),
            r.train_loss,
            self.kind.metric_short(),
            r.valid.metric,
            r.valid.loss,
            r.lr,
            r.tokens_per_s / 1000.0
        );
    }
}

pub fn run(ui: &Ui, args: Args) -> Outcome {
    let (mut run, source) = start(ui, &args)?;
    let kind = run.task.kind();
    let c = &run.state.config;
    if !args.json {
        eprintln!(
            "training {} on {kind} (H={}, {} layer{}, batch {}, {:?} lr {} {}, {} thread{}){}",
            source.name,
            c.hidden,
            c.layers,
            if c.layers == 1 { "" } else { "s" },
            c.batch,
            c.optimizer,
            c.lr,
            c.schedule.name(),
            c.threads,
            if c.threads == 1 { "" } else { "s" },
            if run.state.step > 0 { format!(", resumed at step {}", run.state.step) } else { String::new() }
        );
    }
    let mut progress = Progress { line: StatusLine::new(), last_valid: None, kind, json: args.json };
    let save = args.save.clone().or_else(|| args.resume.clone());
    let mut observe = |e: Event<'_>| progress.event(e);
    // Ctrl-C ends the run between steps; the best model so far is still tested and saved.
    super::interrupt::catch_ctrl_c();
    let cancel = super::interrupt::interrupted;
    let hooks =
        Hooks { observe: Some(&mut observe), cancel: Some(&cancel), save: save.as_deref().map(|d| (d, &source)) };
    let result = run.train(hooks)?;
    progress.line.clear();
    if let Some(path) = &args.plot {
        crate::plot::write(&figure(&source.name, kind, &run.state.history), path)?;
        if !args.json {
            eprintln!("plot: {}", path.display());
        }
    }
    let outcome = result.map_err(|d| {
        let kept =
            save.as_ref().map_or(String::new(), |dir| format!("; the last good checkpoint is in {}", dir.display()));
        format!("training diverged at step {}: the first non-finite value is {}{kept}", d.step, d.origin)
    })?;
    report(&source.name, kind, &outcome, save.as_deref(), args.json);
    Ok(if outcome.stop == Stop::Interrupted { ExitCode::from(130) } else { ExitCode::SUCCESS })
}

/// The final result: a JSON object, or lines for people.
fn report(cell: &str, kind: TaskKind, o: &RunOutcome, save: Option<&std::path::Path>, json: bool) {
    let metric = kind.metric();
    if json {
        let m = |x: &Metrics| json!({"metric": x.metric, "secondary": x.secondary, "loss": x.loss});
        println!(
            "{}",
            json!({"event": "result", "cell": cell, "task": kind.name(), "metric": metric,
                "valid": o.valid.metric, "test": o.test.metric,
                "valid_detail": m(&o.valid), "test_detail": m(&o.test),
                "long_test": o.long_test.as_ref().map(m), "best_step": o.best_step,
                "steps": o.steps, "seconds": o.seconds, "tokens_per_s": o.tokens_per_s,
                "stop": o.stop})
        );
        return;
    }
    let second = |x: &Metrics| x.secondary.map_or(String::new(), |v| format!(", {} {v:.4}", kind.secondary()));
    println!("{cell} on {kind}: {} steps in {}, {:.1}k tokens/s", o.steps, clock(o.seconds), o.tokens_per_s / 1000.0);
    println!("  stopped: {}", stop_reason(o.stop));
    println!("  best validation (step {}): {metric} {:.4}{}", o.best_step, o.valid.metric, second(&o.valid));
    println!("  test: {metric} {:.4}{}, loss {:.4}", o.test.metric, second(&o.test), o.test.loss);
    if let Some(l) = &o.long_test {
        println!("  test on longer numbers: {metric} {:.4}{}", l.metric, second(l));
    }
    if let Some(dir) = save {
        println!("  model: {}", dir.display());
    }
}

/// Why a run ended, for people.
fn stop_reason(stop: Stop) -> &'static str {
    match stop {
        Stop::Budget => "the budget ran out",
        Stop::EarlyStop => "early stop: validation did not improve for --patience evaluations",
        Stop::Interrupted => "interrupted (Ctrl-C); the best model so far was tested",
    }
}

/// Training loss and validation metric against steps.
pub fn figure(cell: &str, kind: TaskKind, history: &[EvalRecord]) -> crate::plot::Figure {
    use crate::plot::{COLORS, Figure, Panel, Series};
    let pts = |f: &dyn Fn(&EvalRecord) -> f64| history.iter().map(|r| (r.step as f64, f(r))).collect();
    let metric = kind.metric();
    Figure {
        title: format!("{cell} on {kind}"),
        panels: vec![
            Panel {
                title: "loss (nats per predicted symbol or frame)".into(),
                x_label: "training step".into(),
                y_label: String::new(),
                bars: vec![],
                series: vec![
                    Series { label: "training".into(), points: pts(&|r| r.train_loss), color: COLORS[0] },
                    Series { label: "validation".into(), points: pts(&|r| r.valid.loss), color: COLORS[1] },
                ],
            },
            Panel {
                title: format!("validation {metric}"),
                x_label: "training step".into(),
                y_label: String::new(),
                bars: vec![],
                series: vec![Series { label: metric.to_string(), points: pts(&|r| r.valid.metric), color: COLORS[2] }],
            },
        ],
    }
}

pub fn test(_ui: &Ui, args: TestArgs) -> Outcome {
    let (source, _) = checkpoint::peek(&args.dir)?;
    if let Some(path) = &args.batch {
        let what = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read {what}: {e}"))?;
        let batch = crate::tensors::TensorSet::decode(&bytes, &what)?;
        let loss = crate::train::run::loss_on_batch(&source.checked()?, &args.dir, batch, &what)?;
        if args.json {
            println!("{}", json!({"cell": source.name, "batch": what, "loss": loss}));
        } else {
            println!("{} on {what}: loss {loss:.6}", source.name);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let t = crate::train::run::test_saved(&source.checked()?, &args.dir, args.threads.get())?;
    let kind = t.task.kind();
    let metric = kind.metric();
    if args.json {
        println!(
            "{}",
            json!({"cell": source.name, "task": kind.name(), "metric": metric, "test": t.test.metric,
                "secondary": t.test.secondary, "loss": t.test.loss, "long_test": t.long_test.map(|l| l.metric),
                "step": t.best_step})
        );
        return Ok(ExitCode::SUCCESS);
    }
    let second = t.test.secondary.map_or(String::new(), |v| format!(", {} {v:.4}", kind.secondary()));
    println!(
        "{} on {kind} (step {}): test {metric} {:.4}{second}, loss {:.4}",
        source.name, t.best_step, t.test.metric, t.test.loss
    );
    if let Some(l) = t.long_test {
        println!("  test on longer numbers: {metric} {:.4}", l.metric);
    }
    Ok(ExitCode::SUCCESS)
}
