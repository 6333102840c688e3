//! `cellc run`: train a cell on a task with live progress, final metrics, checkpoints and a plot;
//! and `cellc test`: evaluate a saved model on its task's test set. Both go through
//! `train::Run`, the one training path.

use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::json;

use super::args::{DataArg, TaskParser, ThreadsArg, parse_duration};
use super::failure::Outcome;
use super::input;
use super::progress::{StatusLine, bar, clock};
use super::ui::Ui;
use crate::tasks::{DataNeed, Metrics, TaskConfig, TaskKind};
use crate::train::optim::OptimizerKind;
use crate::train::{Budget, EvalRecord, Event, Hooks, Outcome as RunOutcome, Run, TrainConfig, checkpoint};
use crate::workspace::{CellSource, Workspace};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A .cell file (FILE:NAME for one of several cells) or a standard cell name; optional with
    /// --resume.
    #[arg(value_name = "CELL")]
    cell: Option<String>,
    /// The task to train on.
    #[arg(long, value_parser = TaskParser)]
    task: Option<TaskKind>,
    /// Hidden size H (and the embedding size).
    #[arg(long, default_value_t = 128)]
    hidden: usize,
    /// Stacked layers of the cell.
    #[arg(long, default_value_t = 1)]
    layers: usize,
    /// Examples per batch, parallel streams of xml, ptb and text, or pieces side by side of music
    /// [default: 64; ptb 20; music 16]
    #[arg(long)]
    batch: Option<usize>,
    /// xml, ptb, text, music: steps per batch (truncated backpropagation through time)
    /// [default: 64; ptb 35; music 100]
    #[arg(long)]
    bptt: Option<usize>,
    /// The optimiser.
    #[arg(long, value_enum, default_value_t = OptimizerKind::Adam)]
    optimizer: OptimizerKind,
    /// Learning rate (default: 3e-3 for Adam, 1 for SGD).
    #[arg(long)]
    lr: Option<f64>,
    /// Clip the global gradient norm to this (0: no clipping).
    #[arg(long, default_value_t = 5.0)]
    clip: f64,
    /// Weights start uniform in ±scale/sqrt(fan-in) (unless the cell says otherwise).
    #[arg(long, default_value_t = 1.0)]
    init_scale: f64,
    /// Every parameter starts uniform in ±A instead, whatever the cell says (Zaremba et al.
    /// 2014 use 0.1 on PTB).
    #[arg(long, value_name = "A")]
    init_uniform: Option<f64>,
    /// Dropout probability on the non-recurrent connections: the embedding into the first layer,
    /// between layers, and before the output (Zaremba et al. 2014).
    #[arg(long, default_value_t = 0.0)]
    dropout: f64,
    /// Variational dropout: the same mask at every time step of a batch (Gal & Ghahramani 2016).
    #[arg(long)]
    variational: bool,
    /// Tie the output matrix to the input embedding (Press & Wolf 2017).
    #[arg(long)]
    tied: bool,
    /// Stop after this many training steps.
    #[arg(long, group = "budget")]
    steps: Option<u64>,
    /// Stop after this many epochs: passes over a corpus (ptb, text), or 100,000 examples (arith,
    /// memorize), or 1,000,000 characters (xml).
    #[arg(long, group = "budget")]
    epochs: Option<f64>,
    /// Stop after this much time: seconds, or with a unit (90s, 5m, 1h). Default 5m.
    #[arg(long, group = "budget")]
    time: Option<String>,
    /// Validate every this many steps [default: 200; ptb, text and music: once per epoch]
    #[arg(long)]
    eval_every: Option<u64>,
    /// Validation and test examples (arith, memorize).
    #[arg(long, default_value_t = 2000)]
    eval_examples: usize,
    /// Multiply the learning rate by this when validation stops improving (1: constant).
    #[arg(long, default_value_t = 0.5)]
    decay: f64,
    /// Decay by epochs instead: multiply the learning rate by --decay at the end of every epoch
    /// after this one (Zaremba et al.'s PTB schedule: 4).
    #[arg(long, value_name = "EPOCH")]
    decay_epoch: Option<u32>,
    #[command(flatten)]
    data: DataArg,
    /// Evaluations without improvement before the learning rate decays.
    #[arg(long, default_value_t = 3)]
    decay_patience: u32,
    /// Stop after this many evaluations without improvement (0: never).
    #[arg(long, default_value_t = 10)]
    patience: u32,
    /// arith: most digits per operand in training.
    #[arg(long, default_value_t = 8)]
    max_digits: usize,
    /// arith: also test on longer numbers, up to this many digits.
    #[arg(long)]
    eval_max_digits: Option<usize>,
    /// arith: mean distractor letters after each input character.
    #[arg(long, default_value_t = 1.0)]
    distractors: f64,
    /// arith: a curriculum over the number of digits: begin with 1-digit numbers (half of the
    /// examples still of any length) and add a digit when validation at the current length
    /// reaches 0.75 (measured: no faster than without in a 5-minute run, so off by default)
    #[arg(long)]
    curriculum: bool,
    /// xml: iterations after which every open tag is closed.
    #[arg(long, default_value_t = 50)]
    max_depth: usize,
    /// Seed of every random choice (data, initialisation, dropout).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[command(flatten)]
    threads: ThreadsArg,
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
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

fn budget(args: &Args) -> Result<Option<Budget>, String> {
    Ok(match (args.steps, args.epochs, &args.time) {
        (Some(0), _, _) => return Err("--steps must be at least 1".into()),
        (Some(n), _, _) => Some(Budget::Steps(n)),
        (_, Some(e), _) if e.is_nan() || e <= 0.0 => return Err("--epochs must be positive".into()),
        (_, Some(e), _) => Some(Budget::Epochs(e)),
        (_, _, Some(t)) => Some(Budget::Seconds(parse_duration("--time", t)?)),
        _ => None,
    })
}

/// The training configuration the flags describe (its ranges are checked when the run starts).
fn config(args: &Args, kind: TaskKind) -> Result<TrainConfig, String> {
    let mut t = TaskConfig::new(kind);
    let (batch, bptt) = kind.default_shape();
    let (batch, bptt) = (args.batch.unwrap_or(batch), args.bptt.unwrap_or(bptt));
    if kind.data() == DataNeed::Generated && args.data.data.is_some() {
        return Err(format!("--data is for ptb, text and music, not {kind}"));
    }
    t.data = kind.locate_data(args.data.data.as_deref())?;
    t.max_digits = args.max_digits;
    t.eval_max_digits = args.eval_max_digits;
    t.distractors = args.distractors;
    t.curriculum = args.curriculum;
    t.max_depth = args.max_depth;
    t.streams = batch;
    if args.eval_every == Some(0) {
        return Err("--eval-every must be at least 1".into());
    }
    Ok(TrainConfig {
        task: t,
        hidden: args.hidden,
        layers: args.layers,
        batch,
        bptt,
        optimizer: args.optimizer,
        lr: args.lr.unwrap_or(match args.optimizer {
            OptimizerKind::Adam => 3e-3,
            OptimizerKind::Sgd => 1.0,
        }),
        clip: args.clip,
        init_scale: args.init_scale,
        init_uniform: args.init_uniform,
        dropout: args.dropout,
        variational: args.variational,
        tied: args.tied,
        budget: budget(args)?.unwrap_or(Budget::Seconds(300.0)),
        // 0: once per epoch for a corpus or music, else 200 (decided when the task is built).
        eval_every: args.eval_every.unwrap_or(0),
        eval_examples: args.eval_examples,
        decay: args.decay,
        decay_patience: args.decay_patience,
        decay_epoch: args.decay_epoch,
        stop_patience: args.patience,
        seed: args.seed,
        threads: args.threads.get(),
    })
}

/// The run the flags ask for: a new one, or the one saved in `--resume` (with a new budget or
/// thread count if given). The cell is checked once.
fn start(ui: &Ui, args: &Args) -> Result<(Run, CellSource), super::failure::Failure> {
    let mut ws = Workspace::new();
    let Some(dir) = &args.resume else {
        let arg =
            args.cell.as_deref().ok_or("name a cell to train (a .cell file or a standard cell), or --resume DIR")?;
        let kind =
            args.task.ok_or_else(|| format!("choose a task with --task ({})", TaskKind::names(&TaskKind::ALL)))?;
        let (cell, source) = input::load_cell_source(&mut ws, arg, ui)?;
        let run = Run::start(&cell, config(args, kind)?)?;
        return Ok((run, source));
    };
    let (source, _) = checkpoint::peek(dir)?;
    if let Some(arg) = &args.cell {
        let (cell, _) = input::load_cell_source(&mut ws, arg, ui)?;
        if cell.name != source.name {
            return Err(format!("{} holds a run of `{}`, not `{}`", dir.display(), source.name, cell.name).into());
        }
    }
    let mut run = Run::resume(&source.checked()?, dir)?;
    let config = &mut run.state.config;
    if let Some(b) = budget(args)? {
        config.budget = b;
    }
    if let Some(t) = args.threads.threads {
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
            "training {} on {kind} (H={}, {} layer{}, batch {}, {:?} lr {}, {} thread{}){}",
            source.name,
            c.hidden,
            c.layers,
            if c.layers == 1 { "" } else { "s" },
            c.batch,
            c.optimizer,
            run.state.lr,
            c.threads,
            if c.threads == 1 { "" } else { "s" },
            if run.state.step > 0 { format!(", resumed at step {}", run.state.step) } else { String::new() }
        );
    }
    let mut progress = Progress { line: StatusLine::new(), last_valid: None, kind, json: args.json };
    let save = args.save.clone().or_else(|| args.resume.clone());
    let mut observe = |e: Event<'_>| progress.event(e);
    let hooks = Hooks { observe: Some(&mut observe), cancel: None, save: save.as_deref().map(|d| (d, &source)) };
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
    Ok(ExitCode::SUCCESS)
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
    println!("  best validation (step {}): {metric} {:.4}{}", o.best_step, o.valid.metric, second(&o.valid));
    println!("  test: {metric} {:.4}{}, loss {:.4}", o.test.metric, second(&o.test), o.test.loss);
    if let Some(l) = &o.long_test {
        println!("  test on longer numbers: {metric} {:.4}{}", l.metric, second(l));
    }
    if let Some(dir) = save {
        println!("  model: {}", dir.display());
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
