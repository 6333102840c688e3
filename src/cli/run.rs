//! `cellc run`: train a cell on a task with live progress, final metrics, checkpoints and a plot;
//! and `cellc test`: evaluate a saved model on its task's test set.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use serde_json::json;

use super::input;
use super::ui::Ui;
use crate::runtime::Engine;
use crate::tasks::TaskConfig;
use crate::train::checkpoint;
use crate::train::fit::{self, Budget, Config, EvalRecord, Event, Metrics, RunState};
use crate::train::optim::Kind;
use crate::workspace::Workspace;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskName {
    /// Addition and subtraction of up to 8-digit numbers, read among distractor letters.
    Arith,
    /// Next character of a synthetic XML stream (tags must be closed in order).
    Xml,
    /// Read 5 of 26 symbols, then reproduce them.
    Memorize,
    /// Penn Treebank word-level language modelling (10,000 words; perplexity), from --data.
    Ptb,
    /// Character-level language modelling of a UTF-8 text file (bits per character): --data
    /// FILE, by default tiny-shakespeare from the data directory.
    Text,
    /// Polyphonic music, Nottingham folk tunes: the next 88-key frame (NLL per frame).
    #[value(name = "music:nottingham")]
    MusicNottingham,
    /// Polyphonic music, Piano-midi.de classical piano.
    #[value(name = "music:piano-midi")]
    MusicPianoMidi,
    /// Polyphonic music, JSB Chorales.
    #[value(name = "music:jsb")]
    MusicJsb,
    /// Polyphonic music, MuseData.
    #[value(name = "music:musedata")]
    MusicMusedata,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A .cell file (FILE:NAME for one of several cells) or a standard cell name; optional with
    /// --resume.
    #[arg(value_name = "CELL")]
    cell: Option<String>,
    /// The task to train on.
    #[arg(long, value_enum)]
    task: Option<TaskName>,
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
    #[arg(long, value_enum, default_value_t = Kind::Adam)]
    optimizer: Kind,
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
    /// Validate every this many steps [default: 200; ptb and text: once per epoch]
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
    /// ptb, music: the data directory (default: $CELLC_DATA, then ../shared/data beside the
    /// checkout); text: the text file (default: tiny-shakespeare in the data directory).
    #[arg(long, value_name = "PATH")]
    data: Option<PathBuf>,
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
    /// Threads (default: all cores). The same seed and thread count give the same numbers.
    #[arg(long)]
    threads: Option<usize>,
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
    /// Threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

pub(super) fn parse_time(s: &str) -> Result<f64, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let v: f64 =
        num.trim().parse().map_err(|_| format!("--time `{s}`: expected seconds or a number with s, m or h"))?;
    let mult = match unit {
        "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => return Err(format!("--time `{s}`: unknown unit `{unit}` (use s, m or h)")),
    };
    if v.is_nan() || v <= 0.0 {
        return Err(format!("--time `{s}` must be positive"));
    }
    Ok(v * mult)
}

fn budget(args: &Args) -> Result<Option<Budget>, String> {
    Ok(match (args.steps, args.epochs, &args.time) {
        (Some(0), _, _) => return Err("--steps must be at least 1".into()),
        (Some(n), _, _) => Some(Budget::Steps(n)),
        (_, Some(e), _) if e.is_nan() || e <= 0.0 => return Err("--epochs must be positive".into()),
        (_, Some(e), _) => Some(Budget::Epochs(e)),
        (_, _, Some(t)) => Some(Budget::Seconds(parse_time(t)?)),
        _ => None,
    })
}

fn threads(arg: Option<usize>) -> usize {
    arg.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())).max(1)
}

fn config(args: &Args, task: TaskName) -> Result<Config, String> {
    let name = match task {
        TaskName::Arith => "arith",
        TaskName::Xml => "xml",
        TaskName::Memorize => "memorize",
        TaskName::Ptb => "ptb",
        TaskName::Text => "text",
        TaskName::MusicNottingham => "music:nottingham",
        TaskName::MusicPianoMidi => "music:piano-midi",
        TaskName::MusicJsb => "music:jsb",
        TaskName::MusicMusedata => "music:musedata",
    };
    let mut t = TaskConfig::named(name);
    let music = name.starts_with("music:");
    let corpus = music || matches!(task, TaskName::Ptb | TaskName::Text);
    let (batch, bptt) = t.default_shape();
    let (batch, bptt) = (args.batch.unwrap_or(batch), args.bptt.unwrap_or(bptt));
    if corpus {
        let (dir, from) = crate::data::data_dir(args.data.as_deref());
        let path = match (task, &args.data) {
            (TaskName::Text, None) => dir.join("tinyshakespeare").join("input.txt"),
            _ => dir,
        };
        if !path.exists() {
            return Err(format!("{} does not exist (from {from})", path.display()));
        }
        t.data = Some(std::fs::canonicalize(&path).map_err(|e| format!("{}: {e}", path.display()))?);
    } else if args.data.is_some() {
        return Err(format!("--data is for ptb, text and music, not {name}"));
    }
    t.max_digits = args.max_digits;
    t.eval_max_digits = args.eval_max_digits;
    t.distractors = args.distractors;
    t.curriculum = args.curriculum;
    t.max_depth = args.max_depth;
    t.streams = batch;
    let lr = args.lr.unwrap_or(match args.optimizer {
        Kind::Adam => 3e-3,
        Kind::Sgd => 1.0,
    });
    let checks = [
        (args.hidden >= 1, "--hidden must be at least 1"),
        (args.layers >= 1, "--layers must be at least 1"),
        (batch >= 1, "--batch must be at least 1"),
        (bptt >= 1, "--bptt must be at least 1"),
        (lr > 0.0 && lr.is_finite(), "--lr must be positive"),
        (args.clip >= 0.0, "--clip must be 0 (off) or positive"),
        (args.init_scale > 0.0, "--init-scale must be positive"),
        ((0.0..1.0).contains(&args.dropout), "--dropout must be in [0, 1)"),
        (args.eval_every != Some(0), "--eval-every must be at least 1"),
        (args.init_uniform.is_none_or(|a| a > 0.0), "--init-uniform must be positive"),
        (args.eval_examples >= 1, "--eval-examples must be at least 1"),
        (args.decay > 0.0 && args.decay <= 1.0, "--decay must be in (0, 1]"),
        (args.decay_patience >= 1, "--decay-patience must be at least 1"),
    ];
    if let Some((_, msg)) = checks.iter().find(|(ok, _)| !ok) {
        return Err(msg.to_string());
    }
    let built = t.build()?;
    let eval_every = match (&built, args.eval_every) {
        (_, Some(n)) => n,
        (crate::tasks::Task::Corpus(c), None) => {
            crate::tasks::corpus::batches_per_epoch(&c.corpus.train, c.streams, bptt).max(1) as u64
        }
        (crate::tasks::Task::Music(m), None) => {
            // About one epoch: the training frames over the rows of a batch.
            let frames: usize = m.music.train.iter().map(Vec::len).sum();
            frames.div_ceil(batch * bptt).max(1) as u64
        }
        _ => 200,
    };
    Ok(Config {
        task: t,
        hidden: args.hidden,
        layers: args.layers,
        batch,
        bptt,
        optimizer: args.optimizer,
        lr,
        clip: args.clip,
        init_scale: args.init_scale,
        init_uniform: args.init_uniform,
        dropout: args.dropout,
        variational: args.variational,
        tied: args.tied,
        budget: budget(args)?.unwrap_or(Budget::Seconds(300.0)),
        eval_every,
        eval_examples: args.eval_examples,
        decay: args.decay,
        decay_patience: args.decay_patience,
        decay_epoch: args.decay_epoch,
        stop_patience: args.patience,
        seed: args.seed,
        threads: threads(args.threads),
    })
}

/// Live progress on stderr: a bar on a terminal, otherwise nothing between validations.
struct Progress {
    tty: bool,
    last_draw: Instant,
    last_valid: Option<f64>,
    metric: &'static str,
}

impl Progress {
    fn step(&mut self, step: u64, loss: f64, progress: f64, tokens_per_s: f64, seconds: f64) {
        if !self.tty || self.last_draw.elapsed().as_millis() < 100 {
            return;
        }
        self.last_draw = Instant::now();
        let p = progress.clamp(0.0, 1.0);
        let filled = (p * 24.0) as usize;
        let bar: String = (0..24)
            .map(|i| {
                if i < filled {
                    '='
                } else if i == filled {
                    '>'
                } else {
                    ' '
                }
            })
            .collect();
        let left = if p > 0.0 { seconds / p - seconds } else { 0.0 };
        let valid = self.last_valid.map_or(String::new(), |v| format!("  valid {} {v:.3}", self.metric));
        eprint!(
            "\r[{bar}] {:3.0}%  step {step}  loss {loss:.3}{valid}  {:.1}k tok/s  {} left   ",
            p * 100.0,
            tokens_per_s / 1000.0,
            clock(left)
        );
        let _ = std::io::stderr().flush();
    }

    fn eval(&mut self, r: &EvalRecord, json: bool) {
        self.last_valid = Some(r.valid.metric);
        if self.tty {
            eprint!("\r{:100}\r", "");
        }
        if json {
            println!(
                "{}",
                json!({"event": "eval", "step": r.step, "train_loss": r.train_loss, "valid": r.valid.metric,
                    "valid_secondary": r.valid.secondary, "valid_loss": r.valid.loss, "lr": r.lr,
                    "seconds": r.seconds, "tokens_per_s": r.tokens_per_s, "level": r.level})
            );
        } else {
            let second = r.valid.secondary.map_or(String::new(), |s| format!(" ({s:.3})"));
            let level = r.level.map_or(String::new(), |l| format!("  digits ≤{l}"));
            eprintln!(
                "step {:>7}  {}  train loss {:.4}  valid {} {:.4}{second}  loss {:.4}  lr {:.2e}  {:.1}k tok/s{level}",
                r.step,
                clock(r.seconds),
                r.train_loss,
                self.metric,
                r.valid.metric,
                r.valid.loss,
                r.lr,
                r.tokens_per_s / 1000.0
            );
        }
    }
}

fn clock(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    format!("{}:{:02}", s / 60, s % 60)
}

pub fn run(ui: &Ui, args: Args) -> ExitCode {
    match run_inner(ui, &args) {
        Ok(code) => code,
        Err(msg) => ui.fail(msg),
    }
}

fn run_inner(ui: &Ui, args: &Args) -> Result<ExitCode, String> {
    let mut ws = Workspace::new();
    let (cell_source, config) = match &args.resume {
        Some(dir) => {
            let (source, config) = checkpoint::peek(dir)?;
            if let Some(arg) = &args.cell {
                let (cell, _) =
                    input::load_cell_source(&mut ws, arg, ui).map_err(|_| "cannot load the cell".to_string())?;
                if cell.name != source.name {
                    return Err(format!("{} holds a run of `{}`, not `{}`", dir.display(), source.name, cell.name));
                }
            }
            (source, config)
        }
        None => {
            let Some(arg) = &args.cell else {
                return Err("name a cell to train (a .cell file or a standard cell), or --resume DIR".into());
            };
            let Some(task) = args.task else {
                return Err("choose a task with --task arith|xml|memorize".into());
            };
            let (_, source) = match input::load_cell_source(&mut ws, arg, ui) {
                Ok(c) => c,
                Err(code) => return Ok(code),
            };
            let config = config(args, task)?;
            (source, config)
        }
    };
    let cell = cell_source.checked()?;
    let engine = Engine::compile(&cell).map_err(|e| format!("cannot compile `{}`: {e}", cell.name))?;
    let mut state = match &args.resume {
        Some(dir) => {
            let mut s = checkpoint::load_state(dir, &engine)?;
            if let Some(b) = budget(args)? {
                s.config.budget = b;
            }
            if let Some(t) = args.threads {
                if t != s.config.threads {
                    ui.error(format!(
                        "note: the run used {} threads; with {t} the numbers differ from an uninterrupted run",
                        s.config.threads
                    ));
                }
                s.config.threads = t;
            }
            s
        }
        None => RunState::new(&engine, config.clone())?,
    };
    let task = state.config.task.build()?;
    let (metric_name, secondary_name) = task.metric_names();
    if !args.json {
        eprintln!(
            "training {} on {} (H={}, {} layer{}, batch {}, {:?} lr {}, {} thread{}){}",
            cell.name,
            task.name(),
            state.config.hidden,
            state.config.layers,
            if state.config.layers == 1 { "" } else { "s" },
            state.config.batch,
            state.config.optimizer,
            state.lr,
            state.config.threads,
            if state.config.threads == 1 { "" } else { "s" },
            if state.step > 0 { format!(", resumed at step {}", state.step) } else { String::new() }
        );
    }
    let mut progress = Progress {
        tty: std::io::stderr().is_terminal(),
        last_draw: Instant::now(),
        last_valid: None,
        metric: short(metric_name),
    };
    let json = args.json;
    let save = args.save.clone().or_else(|| args.resume.clone());
    let mut observe = |ev: Event<'_>| match ev {
        Event::Step { step, loss, progress: p, tokens_per_s, seconds } => {
            progress.step(step, loss, p, tokens_per_s, seconds)
        }
        Event::Eval(r) => progress.eval(r, json),
    };
    let mut save_fn = |s: &RunState| match &save {
        Some(dir) => checkpoint::save(dir, &engine, &cell_source, s),
        None => Ok(()),
    };
    let result = fit::fit(&engine, &mut state, &mut observe, &mut save_fn)?;
    if progress.tty {
        eprint!("\r{:100}\r", "");
    }
    if let Some(path) = &args.plot {
        crate::plot::write(&figure(&cell.name, task.name(), metric_name, &state.history), path)?;
        if !json {
            eprintln!("plot: {}", path.display());
        }
    }
    let outcome = match result {
        Ok(o) => o,
        Err(d) => {
            let kept = match &save {
                Some(dir) => format!("; the last good checkpoint is in {}", dir.display()),
                None => String::new(),
            };
            return Err(format!(
                "training diverged at step {}: the first non-finite value is {}{kept}",
                d.step, d.origin
            ));
        }
    };
    let m = |x: &Metrics| json!({"metric": x.metric, "secondary": x.secondary, "loss": x.loss});
    if json {
        println!(
            "{}",
            json!({"event": "result", "cell": cell.name, "task": task.name(), "metric": metric_name,
                "valid": outcome.valid.metric, "test": outcome.test.metric,
                "valid_detail": m(&outcome.valid), "test_detail": m(&outcome.test),
                "long_test": outcome.long_test.as_ref().map(m), "best_step": outcome.best_step,
                "steps": outcome.steps, "seconds": outcome.seconds, "tokens_per_s": outcome.tokens_per_s,
                "stop": outcome.stop})
        );
    } else {
        let second = |x: &Metrics| match (secondary_name, x.secondary) {
            (Some(n), Some(v)) => format!(", {n} {v:.4}"),
            _ => String::new(),
        };
        println!(
            "{} on {}: {} steps in {}, {:.1}k tokens/s",
            cell.name,
            task.name(),
            outcome.steps,
            clock(outcome.seconds),
            outcome.tokens_per_s / 1000.0
        );
        println!(
            "  best validation (step {}): {metric_name} {:.4}{}",
            outcome.best_step,
            outcome.valid.metric,
            second(&outcome.valid)
        );
        println!(
            "  test: {metric_name} {:.4}{}, loss {:.4}",
            outcome.test.metric,
            second(&outcome.test),
            outcome.test.loss
        );
        if let Some(l) = &outcome.long_test {
            println!("  test on longer numbers: {metric_name} {:.4}{}", l.metric, second(l));
        }
        if let Some(dir) = &save {
            println!("  model: {}", dir.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The headline metric's name on a progress line: `accuracy`, `perplexity`, `bpc`, `NLL`.
fn short(metric: &'static str) -> &'static str {
    match metric {
        "bits per character" => "bpc",
        "NLL per frame" => "NLL",
        m => m.split(' ').next_back().unwrap_or(m),
    }
}

/// Training loss and validation metric against steps.
pub fn figure(cell: &str, task: &str, metric: &str, history: &[EvalRecord]) -> crate::plot::Figure {
    use crate::plot::{COLORS, Figure, Panel, Series};
    let pts = |f: &dyn Fn(&EvalRecord) -> f64| history.iter().map(|r| (r.step as f64, f(r))).collect();
    Figure {
        title: format!("{cell} on {task}"),
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

pub fn test(ui: &Ui, args: TestArgs) -> ExitCode {
    let inner = || -> Result<(), String> {
        let (source, _) = checkpoint::peek(&args.dir)?;
        let cell = source.checked()?;
        let engine = Engine::compile(&cell).map_err(|e| format!("cannot compile `{}`: {e}", cell.name))?;
        let model = checkpoint::load_model(&args.dir, &engine)?;
        let mut config = model.config.clone();
        config.threads = threads(args.threads);
        let task = config.task.build()?;
        let shape = fit::model_shape(&config, &task);
        let mut runner = crate::train::lm::LmRunner::new(&engine, shape, config.threads)?;
        let sets = fit::EvalSets::new(&config, &task, shape.batch);
        let test = fit::evaluate(&mut runner, &model.params, &task, &sets.test)?;
        let long = match (&sets.long_test, config.task.long_task()) {
            (Some(set), Some(long)) => Some(fit::evaluate(&mut runner, &model.params, &long, set)?),
            _ => None,
        };
        let (metric, secondary) = task.metric_names();
        if args.json {
            println!(
                "{}",
                json!({"cell": cell.name, "task": task.name(), "metric": metric, "test": test.metric,
                    "secondary": test.secondary, "loss": test.loss, "long_test": long.map(|l| l.metric),
                    "step": model.best_step})
            );
        } else {
            let second = match (secondary, test.secondary) {
                (Some(n), Some(v)) => format!(", {n} {v:.4}"),
                _ => String::new(),
            };
            println!(
                "{} on {} (step {}): test {metric} {:.4}{second}, loss {:.4}",
                cell.name,
                task.name(),
                model.best_step,
                test.metric,
                test.loss
            );
            if let Some(l) = long {
                println!("  test on longer numbers: {metric} {:.4}", l.metric);
            }
        }
        Ok(())
    };
    match inner() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => ui.fail(e),
    }
}
