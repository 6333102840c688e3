//! `cellc search` (start, resume, report, replay, status) and `cellc worker`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use super::args::{DataArg, TaskParser, cores, parse_duration};
use super::failure::{Failure, Outcome};
use super::input;
use super::interrupt;
use super::progress::StatusLine;
use super::ui::Ui;
use super::workers::LocalWorkers;
use crate::experiment::job as spec;
use crate::experiment::worker::{self, WorkerOptions};
use crate::search::config::{DEFAULT_STEPS, default_tasks};
use crate::search::{Ended, SearchConfig, View, report};
use crate::store::{Access, ExperimentStore, open_search_store, postgres};
use crate::tasks::TaskKind;
use crate::workspace::Workspace;

const SEARCH_EXAMPLES: &str = "\
Examples:
  cellc search --time 1h --out docs/search         search for an hour on every core, then report
  cellc search --resume --time 30m                 continue the search in search.sqlite
  cellc search --tasks arith,xml --hidden 32 --candidates 50 --name small
  cellc search report --out report/                leaderboard, top cells as .cell files, plots
  cellc search replay 123                          retrain run 123 and compare bit for bit
  cellc search status                              searches, workers, runs in flight
  cellc search --store postgres://me@db.lan/cells --workers 2
                                                   a search other machines can join:
  cellc worker --store postgres://me@db.lan/cells  (on each other machine)

Stores: a path is an SQLite file (the default, one machine); postgres://user@host:port/db is a
PostgreSQL database shared by machines. PGHOST, PGPORT, PGUSER, PGPASSWORD (or ~/.pgpass),
PGDATABASE and PGSSLMODE fill what the URL leaves out; passwords are never printed.";

#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true, after_help = SEARCH_EXAMPLES)]
pub struct Args {
    #[command(subcommand)]
    command: Option<Sub>,
    #[command(flatten)]
    start: StartArgs,
}

#[derive(clap::Subcommand, Debug)]
enum Sub {
    /// Leaderboard, throughput, the top cells as .cell files, and plots (score over time,
    /// family tree of the best cells).
    Report(ReportArgs),
    /// Retrain one run from its stored spec and compare with the stored result, bit for bit.
    Replay(ReplayArgs),
    /// The store's searches, workers and runs in flight.
    Status(StoreArgs),
}

#[derive(clap::Args, Debug)]
struct StoreArgs {
    /// The search's store: an SQLite file or a postgres:// URL.
    #[arg(long, env = "CELLC_STORE", hide_env_values = true, default_value = "search.sqlite")]
    store: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
struct StartArgs {
    /// Where every candidate, run and result is kept: an SQLite file (one machine) or a
    /// postgres://user@host/db URL (workers on many machines).
    #[arg(long, env = "CELLC_STORE", hide_env_values = true, default_value = "search.sqlite")]
    store: String,
    /// The search's name in the store (letters, digits and `-_.:+@`: it also names the search
    /// in `cellc dashboard`'s addresses).
    #[arg(long, default_value = "search", value_parser = experiment_name)]
    name: String,
    /// Continue the named search with the options it was created with.
    #[arg(long)]
    resume: bool,
    /// Worker processes training runs (default: cores / --threads; 0: only plan, while
    /// `cellc worker`s on other machines train).
    #[arg(long)]
    workers: Option<usize>,
    /// Stop after this much wall time (for example 1h, 30m) once the runs in flight finish;
    /// --resume continues.
    #[arg(long, value_name = "TIME")]
    time: Option<String>,
    /// Stop making new candidates after this many mutants (0: no limit).
    #[arg(long, default_value_t = 0)]
    candidates: u64,
    /// Stop making new candidates after this many planning rounds (0: no limit).
    #[arg(long, default_value_t = 0)]
    rounds: u64,
    /// Comma-separated tasks of the score, the first gating the rest (default: the paper's
    /// Table 1 tasks).
    #[arg(long, value_delimiter = ',', value_parser = TaskParser)]
    tasks: Option<Vec<TaskKind>>,
    /// Training steps per run, as TASK=STEPS (comma-separated); defaults: memorize 3000, arith
    /// 3000, xml 1500, ptb 400.
    #[arg(long, value_delimiter = ',', value_name = "TASK=STEPS")]
    steps: Vec<String>,
    /// Hidden size of every model.
    #[arg(long, default_value_t = 32)]
    hidden: usize,
    /// Hyperparameter settings per task per evaluation (the first is the parent's best).
    #[arg(long, default_value_t = 2)]
    settings: usize,
    /// Population: the best K cells are the parents.
    #[arg(long, default_value_t = 100)]
    population: usize,
    /// Candidates evaluated at once (the width of a planning round).
    #[arg(long, default_value_t = 8)]
    in_flight: usize,
    /// Chance that a new slot re-evaluates a top cell with new settings instead of mutating one.
    #[arg(long, default_value_t = 0.1)]
    reevaluate: f64,
    /// Memorisation accuracy a mutant must reach before anything else is spent on it.
    #[arg(long, default_value_t = 0.95)]
    filter: f64,
    /// Continue past the first task only at this fraction of the GRU's best on it.
    #[arg(long, default_value_t = 0.9)]
    gate: f64,
    /// Early stopping: after validation k a run stops below keep[k] x the GRU's accuracy at that
    /// validation (comma-separated; `none` to switch off).
    #[arg(long, default_value = "0.5,0.7,0.8")]
    keep: String,
    /// Threads per training run (part of a run's definition: results do not depend on --workers).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The seed population (the first is the baseline every score is relative to).
    #[arg(long, value_delimiter = ',', default_values_t = ["gru".to_string(), "lstm".to_string()])]
    seeds: Vec<String>,
    #[command(flatten)]
    data: DataArg,
    /// Seconds a worker holds a run without renewing its lease.
    #[arg(long, default_value_t = 60.0)]
    lease: f64,
    /// When the search stops (done or --time): train this many of its best cells again beside
    /// the GRU on fresh paired seeds, on every task of the score, until each difference is
    /// decided (0: skip). Only a confirmed interval above 1 counts as beating the GRU.
    #[arg(long, default_value_t = 5)]
    confirm: usize,
    /// Let mutations also insert a layer normalisation (`d = v - mean(v)`, `d/sqrt(mean(d*d) +
    /// 1e-5)*g + b`, new gain and bias): a seventh operator beside the paper's six.
    #[arg(long)]
    normalise: bool,
    /// Train the runs on tasks that read a whole question first (arith, memorize) with two
    /// layers, the lower one bidirectional (as `cellc run --bidirectional`); every cell and the
    /// GRU alike, so scores stay relative to the same model. Other tasks are unchanged.
    #[arg(long)]
    bidirectional: bool,
    /// The most seeds a confirmation adds per cell before calling it inconclusive (at least 3).
    #[arg(long, default_value_t = 10)]
    confirm_seeds: usize,
    /// Write the report (as `cellc search report --out`) here when the search stops.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print a JSON summary at the end instead of the leaderboard.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
struct ReportArgs {
    /// The search's store: an SQLite file or a postgres:// URL.
    #[arg(long, env = "CELLC_STORE", hide_env_values = true, default_value = "search.sqlite")]
    store: String,
    #[arg(long, default_value = "search")]
    name: String,
    /// Where report.md, leaderboard.json, the top cells and the plots go.
    #[arg(long, default_value = "search-report")]
    out: PathBuf,
    /// How many cells the leaderboard and the .cell files cover.
    #[arg(long, default_value_t = 10)]
    top: usize,
    /// Print leaderboard.json instead of the Markdown.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
struct ReplayArgs {
    /// The run's id (`cellc search report` and leaderboard.json list them; ids are per store).
    run: i64,
    /// The search's store: an SQLite file or a postgres:// URL.
    #[arg(long, env = "CELLC_STORE", hide_env_values = true, default_value = "search.sqlite")]
    store: String,
    /// The data directory, if not the one the run was planned with.
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct WorkerArgs {
    /// The store whose runs to train: an SQLite file, or a postgres://user@host/db URL that
    /// workers on other machines share.
    #[arg(long, env = "CELLC_STORE", hide_env_values = true, default_value = "search.sqlite")]
    store: String,
    /// Seconds a claimed run stays ours without a renewal.
    #[arg(long, default_value_t = 60.0)]
    lease: f64,
    /// Exit when no search in the store is running (default: wait for work).
    #[arg(long)]
    exit_when_idle: bool,
    /// The data directory on this machine (default: the one each run was planned with).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Exit when this process stops being our parent (set by `cellc search` for its workers).
    #[arg(long, hide = true)]
    parent: Option<u32>,
    /// Print a line per finished run.
    #[arg(long, short)]
    verbose: bool,
}

pub fn run(ui: &Ui, args: Args) -> Outcome {
    match args.command {
        Some(Sub::Report(a)) => report_cmd(&a),
        Some(Sub::Replay(a)) => replay(&a),
        Some(Sub::Status(a)) => status(&a),
        None => start(ui, &args.start),
    }
}

fn parse_steps(items: &[String]) -> Result<Vec<(TaskKind, u64)>, String> {
    let mut steps: Vec<(TaskKind, u64)> = DEFAULT_STEPS.to_vec();
    for item in items {
        let (task, n) = item.split_once('=').ok_or_else(|| format!("--steps: `{item}` is not TASK=STEPS"))?;
        let task = TaskKind::parse(task).map_err(|e| format!("--steps: {e}"))?;
        let n: u64 =
            n.parse().ok().filter(|&n| n > 0).ok_or_else(|| format!("--steps: `{n}` is not a positive number"))?;
        steps.retain(|(t, _)| *t != task);
        steps.push((task, n));
    }
    Ok(steps)
}

fn parse_keep(text: &str) -> Result<Vec<f64>, String> {
    if text == "none" || text.is_empty() {
        return Ok(vec![]);
    }
    text.split(',')
        .map(|k| {
            k.trim()
                .parse::<f64>()
                .ok()
                .filter(|k| (0.0..=1.0).contains(k))
                .ok_or_else(|| format!("--keep: `{k}` is not a fraction in 0..=1 (or write `none`)"))
        })
        .collect()
}

fn config(ui: &Ui, a: &StartArgs) -> Result<SearchConfig, Failure> {
    let tasks = a.tasks.clone().unwrap_or_else(default_tasks);
    if let Some(t) = tasks.iter().find(|t| !t.scored_by_accuracy()) {
        let scored: Vec<TaskKind> = TaskKind::ALL.into_iter().filter(|k| k.scored_by_accuracy()).collect();
        return Err(
            format!("--tasks: `{t}` is not a task with an accuracy (one of: {})", TaskKind::names(&scored)).into()
        );
    }
    if tasks.is_empty() || a.hidden == 0 || a.settings == 0 || a.in_flight == 0 || a.population == 0 || a.threads == 0 {
        return Err("--tasks, --hidden, --settings, --in-flight, --population and --threads must be positive".into());
    }
    if !(0.0..=1.0).contains(&a.reevaluate) || !(0.0..=1.0).contains(&a.filter) || a.gate < 0.0 {
        return Err("--reevaluate and --filter are fractions in 0..=1; --gate is at least 0".into());
    }
    let steps = parse_steps(&a.steps)?;
    let keep = parse_keep(&a.keep)?;
    for t in &tasks {
        t.locate_data(a.data.data.as_deref()).map_err(|e| format!("{e}; or choose --tasks arith,xml"))?;
    }
    // The directory the tasks' data was found in, for workers started without --data.
    let data = if tasks.iter().any(|t| t.data() != crate::tasks::DataNeed::Generated) {
        let (dir, _) = crate::data::data_dir(a.data.data.as_deref());
        Some(std::fs::canonicalize(&dir).map_err(|e| format!("{}: {e}", dir.display()))?)
    } else {
        None
    };
    let mut ws = Workspace::new();
    let mut seeds = vec![];
    for name in &a.seeds {
        let (_, source) = input::load_cell_source(&mut ws, name, ui)?;
        seeds.push(source);
    }
    Ok(SearchConfig {
        seed: a.seed,
        tasks,
        steps,
        hidden: a.hidden,
        settings: a.settings,
        population: a.population,
        in_flight: a.in_flight,
        reevaluate: a.reevaluate,
        filter_task: TaskKind::Memorize,
        filter: a.filter,
        gate: a.gate,
        keep,
        threads: a.threads,
        max_rounds: a.rounds,
        max_candidates: a.candidates,
        seeds,
        data,
        confirm_top: a.confirm,
        confirm_seeds: a.confirm_seeds,
        normalise: a.normalise,
        bidirectional: a.bidirectional,
    })
}

/// One line of progress; `before` is how many runs were done when this process started.
fn progress_line(view: &View, started: Instant, before: u64) -> String {
    let c = view.counts();
    let hours = started.elapsed().as_secs_f64() / 3600.0;
    let rate =
        if hours > 0.0 { format!("{:.0}", (c.jobs_done - before.min(c.jobs_done)) as f64 / hours) } else { "-".into() };
    format!(
        "round {} | {} | in progress {} | runs {}/{}, {rate}/h | best {}",
        view.rounds.len(),
        c.candidates_line(),
        c.running,
        c.jobs_done,
        c.jobs,
        c.best_text()
    )
}

fn start(ui: &Ui, a: &StartArgs) -> Outcome {
    let deadline = match &a.time {
        Some(t) => Some(Instant::now() + Duration::from_secs_f64(parse_duration("--time", t)?)),
        None => None,
    };
    if !(a.lease.is_finite() && a.lease >= 1.0) {
        return Err("--lease must be at least 1 second".into());
    }
    let mut store = open_search(ui, a)?;
    let view = View::load(&mut *store, &a.name)?;
    let workers = a.workers.unwrap_or((cores() / view.config.threads).max(1));
    eprintln!(
        "cellc search `{}`: tasks {}, H = {}, {} settings per task, {} in flight, {} worker process{}; store {}",
        a.name,
        TaskKind::names(&view.config.tasks),
        view.config.hidden,
        view.config.settings,
        view.config.in_flight,
        workers,
        if workers == 1 { "" } else { "es" },
        store.describe()
    );
    if workers == 0 {
        eprintln!("this process only plans: start `cellc worker --store {}` where runs should train", store.describe());
    }
    let mut ended = drive(&mut *store, a, deadline, workers, &view)?;
    let mut view = View::load(&mut *store, &a.name)?;
    match ended {
        Ended::Done => eprintln!("search `{}` is done", a.name),
        Ended::TimeUp => eprintln!("time is up; `cellc search --resume --name {}` continues", a.name),
        Ended::Interrupted => eprintln!(
            "interrupted; finished runs are stored, runs in flight are redone: `cellc search --resume --name {}`",
            a.name
        ),
    }
    if ended != Ended::Interrupted && view.config.confirm_top > 0 {
        ended = match super::search_confirm::run(&mut *store, &a.store, &view, workers, a.lease)? {
            Ended::Interrupted => {
                eprintln!("confirmation interrupted; `cellc search --resume --name {}` continues it", a.name);
                Ended::Interrupted
            }
            _ => ended,
        };
        view = View::load(&mut *store, &a.name)?;
    }
    let confirmed = crate::search::confirm::confirmed(&mut *store, &view)?;
    let confirmed_ref = confirmed.as_ref().map(|(c, t)| (c.as_slice(), *t));
    if let Some(out) = &a.out {
        report::write(&view, out, 10, confirmed_ref)?;
        eprintln!("wrote the report to {}", out.display());
    }
    if a.json {
        let mut summary = report::json(&view, Some(10), confirmed_ref.map(|c| c.0));
        summary["ended"] = format!("{ended:?}").into();
        println!("{summary}");
    } else {
        print!("{}", report::markdown(&view, 10, confirmed_ref.map(|c| c.0)));
    }
    Ok(if ended == Ended::Interrupted { ExitCode::from(130) } else { ExitCode::SUCCESS })
}

/// Opens the store as the search's one coordinator, and creates the search or resumes it.
fn open_search(ui: &Ui, a: &StartArgs) -> Result<Box<dyn ExperimentStore>, Failure> {
    let mut store = open_search_store(&a.store, Access::Migrate)?;
    store.lock_experiment(&a.name)?;
    if !a.resume {
        let config = config(ui, a)?;
        crate::search::create(&mut *store, &a.name, &config)?;
        return Ok(store);
    }
    if store.experiment(&a.name)?.is_none() {
        let names = store.experiments()?;
        return Err(format!(
            "{} has no search named `{}` to resume (it has: {})",
            store.describe(),
            a.name,
            if names.is_empty() { "none".to_string() } else { names.join(", ") }
        )
        .into());
    }
    store.set_experiment_state(&a.name, "running")?;
    Ok(store)
}

/// Plans rounds while `workers` worker processes train, with a progress line, until the search
/// is done, the time is up, Ctrl-C, or every worker has died.
fn drive(
    store: &mut dyn ExperimentStore,
    a: &StartArgs,
    deadline: Option<Instant>,
    workers: usize,
    view: &View,
) -> Result<Ended, String> {
    interrupt::catch_ctrl_c();
    let workers = LocalWorkers::spawn(workers, &a.store, a.lease, view.config.data.as_deref())?;
    let mut line = StatusLine::new();
    let started = Instant::now();
    let mut last_round = usize::MAX;
    let before = view.results.len() as u64;
    let mut observe = |v: &View| {
        // A log gets one line per round; a terminal, a line redrawn at every poll.
        if line.is_tty() || v.rounds.len() != last_round {
            last_round = v.rounds.len();
            line.show_or_log(&progress_line(v, started, before));
        }
    };
    let stop = || interrupt::interrupted() || workers.all_gone();
    let ended = crate::search::drive(store, &a.name, deadline, Duration::from_millis(500), &stop, &mut observe);
    let crashed = !interrupt::interrupted() && workers.all_gone();
    drop(workers);
    if line.is_tty() {
        eprintln!();
    }
    let ended = ended?;
    if crashed {
        return Err(format!(
            "every worker process exited (their errors are above); `cellc search --resume --name {}` continues",
            a.name
        ));
    }
    Ok(ended)
}

fn report_cmd(a: &ReportArgs) -> Outcome {
    let mut store = open_existing(&a.store)?;
    let view = View::load(&mut *store, &a.name)?;
    let confirmed = crate::search::confirm::confirmed(&mut *store, &view)?;
    let confirmed_ref = confirmed.as_ref().map(|(c, t)| (c.as_slice(), *t));
    report::write(&view, &a.out, a.top, confirmed_ref)?;
    if a.json {
        let text = std::fs::read_to_string(a.out.join("leaderboard.json")).map_err(|e| e.to_string())?;
        println!("{text}");
    } else {
        print!("{}", report::markdown(&view, a.top, confirmed_ref.map(|c| c.0)));
        println!(
            "\nwrote {}/: report.md, leaderboard.json, the top cells (.cell), score.svg/png, family.svg/png",
            a.out.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// A search's name: one that is safe in a URL path segment as it is.
fn experiment_name(name: &str) -> Result<String, String> {
    let allowed = |c: char| c.is_alphanumeric() || "-_.:+@".contains(c);
    match name.chars().find(|&c| !allowed(c)) {
        _ if name.is_empty() => Err("a search needs a name".into()),
        Some(c) => Err(format!("`{c}` cannot be in a search's name (letters, digits and `-_.:+@` can)")),
        None => Ok(name.to_string()),
    }
}

/// Opens a store that must exist already (an SQLite file; a database is always there), to read
/// it only: never a write lock on it, and it may be on read-only media.
fn open_existing(store: &str) -> Result<Box<dyn ExperimentStore>, String> {
    if !postgres::is_url(store) && !Path::new(store).exists() {
        return Err(format!("{store}: no such store (start a search with `cellc search`)"));
    }
    open_search_store(store, Access::ReadOnly)
}

fn replay(a: &ReplayArgs) -> Outcome {
    let mut store = open_existing(&a.store)?;
    let job = store.job(a.run)?.ok_or_else(|| format!("{} has no run {}", store.describe(), a.run))?;
    let stored: spec::JobResult = match &job.result {
        Some(r) => serde_json::from_str(r).map_err(|e| format!("run {}: bad stored result: {e}", a.run))?,
        None => return Err(format!("run {} has not finished (it is {})", a.run, job.state).into()),
    };
    let mut spec: spec::JobSpec =
        serde_json::from_str(&job.spec).map_err(|e| format!("run {}: bad spec: {e}", a.run))?;
    if let Some(d) = &a.data {
        spec.use_data_dir(d)?;
    }
    eprintln!(
        "replaying run {} ({} on {}, setting {}, seed {})",
        a.run, spec.cell.name, job.task, job.setting, spec.config.seed
    );
    let replayed = spec::run(&spec, &|| false, &mut |_| {})?.ok_or("the replay was cancelled")?;
    let same = replayed.valid.to_bits() == stored.valid.to_bits()
        && replayed.test.to_bits() == stored.test.to_bits()
        && replayed.steps == stored.steps
        && replayed.outcome == stored.outcome
        && replayed.curve.len() == stored.curve.len()
        && replayed.curve.iter().zip(&stored.curve).all(|(a, b)| a.0 == b.0 && a.1.to_bits() == b.1.to_bits());
    println!("stored:   valid {} test {} steps {} ({})", stored.valid, stored.test, stored.steps, stored.outcome);
    println!(
        "replayed: valid {} test {} steps {} ({})",
        replayed.valid, replayed.test, replayed.steps, replayed.outcome
    );
    if same {
        println!("identical: every validation of the curve and the test match bit for bit");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("DIFFERENT: the replay does not reproduce the stored run");
        Ok(ExitCode::from(1))
    }
}

fn status(a: &StoreArgs) -> Outcome {
    let mut store = open_existing(&a.store)?;
    Ok(super::search_status::status(&mut *store, a.json)?)
}

pub fn run_worker(_ui: &Ui, a: WorkerArgs) -> Outcome {
    if !(a.lease.is_finite() && a.lease >= 1.0) {
        return Err("--lease must be at least 1 second".into());
    }
    let mut store = open_search_store(&a.store, Access::SameVersion)?;
    if a.verbose {
        eprintln!("worker {} on {}", worker::worker_id(), store.describe());
    }
    interrupt::catch_ctrl_c();
    let opts = WorkerOptions {
        lease: Duration::from_secs_f64(a.lease),
        parent: a.parent,
        exit_when_idle: a.exit_when_idle,
        data: a.data.clone(),
    };
    let verbose = a.verbose;
    let stats = worker::work(&mut *store, &opts, &interrupt::interrupted, &mut |job, spec, r| {
        if verbose {
            eprintln!(
                "run {job} finished: {} {}: valid {:.4} ({}, {:.1} s)",
                spec.cell.name, spec.config.task.kind, r.valid, r.outcome, r.seconds
            );
        }
    })?;
    if verbose {
        eprintln!("worker done: {} runs, {:.0} s busy", stats.jobs, stats.busy_seconds);
    }
    Ok(ExitCode::SUCCESS)
}
