//! `cellc compare A B [C ...] --task T`: train the cells on the same seeds and say, with intervals
//! and p-values, whether each is better than the first.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use super::args::cores;
use super::failure::Outcome;
use super::input;
use super::interrupt;
use super::progress::StatusLine;
use super::train_args::TrainArgs;
use super::ui::Ui;
use super::workers::LocalWorkers;
use crate::compare::{self, CompareConfig, Seeds, View};
use crate::experiment::Ended;
use crate::experiment::stats::Sequential;
use crate::store::{Access, open_search_store};
use crate::train::Budget;
use crate::workspace::Workspace;

/// Training steps of a comparison's runs when no budget is given.
pub const DEFAULT_STEPS: u64 = 3000;

const EXAMPLES: &str = "\
Examples:
  cellc compare gru lstm --task arith                 5 seeds each, paired differences, a table
  cellc compare gru lstm mut1 --task arith --until-decided --max-seeds 10
                                                      add seeds until every difference is decided
  cellc compare gru my.cell --task xml --seeds 8 --json --plot compare.svg
  cellc compare gru lstm --task arith --store postgres://me@db/cells --workers 0
                                                      plan only; `cellc worker`s elsewhere train

Runs have a step budget (default 3000 steps, --steps N or --epochs E; not --time), so their numbers
depend only on what defines them: the same comparison asked again, or with more seeds, reuses every
run already in the store.";

#[derive(clap::Args, Debug)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// The cells (std names, .cell files or FILE:NAME); each is compared with the first.
    #[arg(value_name = "CELL", num_args = 2.., required = true)]
    cells: Vec<String>,
    #[command(flatten)]
    train: TrainArgs,
    /// Train exactly this many seeds per cell (intervals at 95%).
    #[arg(long, conflicts_with = "until_decided")]
    seeds: Option<usize>,
    /// Add seeds one at a time until every difference from the first cell is decided (its
    /// interval excludes zero) or --max-seeds is reached; each look's level is 1 - alpha/looks, so
    /// the error rate stays at most --alpha however the looks go.
    #[arg(long)]
    until_decided: bool,
    /// --until-decided: the most seeds per cell.
    #[arg(long, default_value_t = 10)]
    max_seeds: usize,
    /// --until-decided: seeds before the first look.
    #[arg(long, default_value_t = 3)]
    min_seeds: usize,
    /// --until-decided: the error rate (chance of a wrong decision or an interval that misses).
    #[arg(long, default_value_t = 0.05)]
    alpha: f64,
    /// The store the runs go to: an SQLite file or a postgres:// URL shared with other machines.
    #[arg(long, env = "CELLC_STORE", hide_env_values = true, default_value = "compare.sqlite")]
    store: String,
    /// Worker processes training runs here (default: one per core; 0: only plan, while `cellc
    /// worker`s elsewhere train).
    #[arg(long)]
    workers: Option<usize>,
    /// Seconds a worker holds a run without renewing its lease.
    #[arg(long, default_value_t = 60.0)]
    lease: f64,
    /// Print one JSON document instead of the table.
    #[arg(long)]
    json: bool,
    /// Draw the cells' intervals and the paired differences, with every seed (.svg or .png).
    #[arg(long, value_name = "FILE")]
    plot: Option<PathBuf>,
}

fn plan(a: &Args) -> Result<Seeds, String> {
    if !a.until_decided {
        let n = a.seeds.unwrap_or(5);
        return if n >= 2 { Ok(Seeds::Fixed(n)) } else { Err("--seeds must be at least 2 for an interval".into()) };
    }
    if a.min_seeds < 2 || a.max_seeds < a.min_seeds {
        return Err("--min-seeds must be at least 2 and at most --max-seeds".into());
    }
    if !(a.alpha > 0.0 && a.alpha < 1.0) {
        return Err("--alpha must be in (0, 1)".into());
    }
    Ok(Seeds::UntilDecided(Sequential { min_seeds: a.min_seeds, max_seeds: a.max_seeds, alpha: a.alpha }))
}

/// What the flags define: the cells and every run's config.
fn config(ui: &Ui, a: &Args) -> Result<CompareConfig, super::failure::Failure> {
    let kind = a.train.task.ok_or("choose a task with --task")?;
    if a.train.time.is_some() {
        return Err("--time makes a run's length depend on the machine; give compare --steps or --epochs".into());
    }
    let mut ws = Workspace::new();
    let mut cells = vec![];
    for arg in &a.cells {
        cells.push(input::load_cell_source(&mut ws, arg, ui)?.1);
    }
    let mut config = a.train.config(kind, Budget::Steps(DEFAULT_STEPS), 1)?;
    config.validate()?;
    // The seed flag is the first seed; each run sets its own.
    let first_seed = config.seed;
    config.seed = 0;
    Ok(CompareConfig { cells, config, first_seed })
}

pub fn run(ui: &Ui, a: Args) -> Outcome {
    let seeds = plan(&a)?;
    let config = config(ui, &a)?;
    if !(a.lease.is_finite() && a.lease >= 1.0) {
        return Err("--lease must be at least 1 second".into());
    }
    let mut store = open_search_store(&a.store, Access::Migrate)?;
    let name = compare::open(&mut *store, &config)?;
    store.lock_experiment(&name)?;
    let workers = a.workers.unwrap_or_else(|| (cores() / config.config.threads).max(1));
    eprintln!(
        "cellc compare `{name}`: {} on {}, {} per run, {}; {workers} worker process{}; store {}",
        config.cells.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(" vs "),
        config.config.task.kind,
        budget_text(config.config.budget),
        match seeds {
            Seeds::Fixed(n) => format!("{n} seeds"),
            Seeds::UntilDecided(s) =>
                format!("seeds until decided ({} to {}, alpha {})", s.min_seeds, s.max_seeds, s.alpha),
        },
        if workers == 1 { "" } else { "es" },
        store.describe()
    );
    interrupt::catch_ctrl_c();
    let local = LocalWorkers::spawn(workers, &a.store, a.lease, config.config.task.data.as_deref())?;
    let mut line = StatusLine::new();
    let mut observe = |v: &View| {
        let done = v.jobs.iter().filter(|j| j.result.is_some()).count();
        line.draw(&format!("runs {done}/{}, seeds complete {}", v.jobs.len(), v.complete_seeds()));
    };
    let stop = || interrupt::interrupted() || local.all_gone();
    let ended = compare::drive(
        &mut *store,
        &name,
        seeds,
        compare::Metric::Headline,
        Duration::from_millis(300),
        &stop,
        &mut observe,
    );
    line.clear();
    let crashed = !interrupt::interrupted() && local.all_gone();
    drop(local);
    let ended = ended?;
    if crashed {
        return Err("every worker process exited (their errors are above); run the same command to continue".into());
    }
    let view = View::load(&mut *store, &name)?;
    report(&view, &seeds, &a)?;
    if ended == Ended::Interrupted {
        eprintln!("interrupted; finished runs are stored: run the same command to continue");
        return Ok(ExitCode::from(130));
    }
    Ok(ExitCode::SUCCESS)
}

fn budget_text(b: Budget) -> String {
    match b {
        Budget::Steps(n) => format!("{n} steps"),
        Budget::Epochs(e) => format!("{e} epochs"),
        Budget::Seconds(s) => format!("{s} s"),
    }
}

fn report(view: &View, seeds: &Seeds, a: &Args) -> Result<(), String> {
    let n = compare::stopping_point(view, seeds);
    let analysis = view.analyse(n, seeds);
    if let Some(path) = &a.plot {
        crate::plot::write(&compare::report::figure(view, &analysis), path)?;
    }
    if a.json {
        println!("{}", compare::report::json(view, &analysis, seeds));
    } else {
        print!("{}", compare::report::table(view, &analysis));
        if let Some(path) = &a.plot {
            println!("plot: {}", path.display());
        }
    }
    Ok(())
}
