//! `cellc paper`: reproduce the paper's Table 1 and check its claims with one command.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use serde_json::json;

use super::args::{DataArg, cores, parse_duration};
use super::failure::{Failure, Outcome};
use super::input;
use super::interrupt;
use super::progress::{StatusLine, clock};
use super::ui::Ui;
use super::workers::LocalWorkers;
use crate::experiment::Ended;
use crate::paper::RunRecord;
use crate::paper::plan::{PAPER_CELLS, Profile, WORKERS_PER_MACHINE};
use crate::paper::{self, Study, report};
use crate::store::{Access, ExperimentStore, open_search_store};
use crate::tasks::TaskKind;
use crate::workspace::{CellSource, Workspace};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Extra cells to put beside the paper's (a .cell file, FILE:NAME, or a standard cell).
    #[arg(value_name = "CELL")]
    cells: Vec<String>,
    /// CPU time for the whole study (for example 30m, 2h); split evenly over its runs, as training
    /// steps measured on a 2-core EPYC, evaluation included. Default 80m: about 40 minutes of
    /// wall time on 2 cores (the README gives the measured time).
    #[arg(long, value_name = "TIME")]
    budget: Option<String>,
    /// A 5-minute study: 10 CPU-minutes, H = 32, the default setting, 3 seeds.
    #[arg(long, conflicts_with = "full")]
    quick: bool,
    /// Runs long enough for the forget-gate ordering to appear (LSTM beats LSTM-f, confirmed on
    /// arith and XML; the learning curves are in the README): fixed steps per run (arith 40,000,
    /// XML 20,000, PTB 5,300, music 10,000), 5 seeds, H = 64, a learning curve of 20 validations
    /// per run. About 10.5 CPU-hours for the ten cells (estimated: `--full --estimate`): run it on
    /// several machines with `--workers 0` and `cellc worker`s on a shared store.
    #[arg(long, conflicts_with = "budget")]
    full: bool,
    /// Print what the study would cost (runs, CPU-hours, wall time on 1, 4 and 16 machines of 2
    /// cores) from the measured throughputs, and train nothing.
    #[arg(long)]
    estimate: bool,
    /// Comma-separated cells of the paper to train (default: all ten: tanh_rnn, lstm, lstm_f,
    /// lstm_i, lstm_o, lstm_b, gru, mut1, mut2, mut3); claims about cells left out are "not
    /// tested".
    #[arg(long = "cells", value_delimiter = ',', value_name = "CELLS")]
    paper_cells: Option<Vec<String>>,
    /// Comma-separated tasks (default: arith,xml,ptb,music:nottingham,music:piano-midi).
    #[arg(long, value_delimiter = ',')]
    tasks: Option<Vec<String>>,
    /// Random hyperparameter settings per cell and task (the first is the defaults; default 1).
    /// With more than one, each is trained on --selection-seeds seeds to choose one by mean
    /// validation, and the chosen one on --seeds other seeds for the report.
    #[arg(long)]
    settings: Option<usize>,
    /// Seeds the chosen setting is reported with (mean and 95% interval, paired differences);
    /// every cell gets the same seeds. Default 5.
    #[arg(long)]
    seeds: Option<usize>,
    /// Seeds that choose among --settings (at least 2; never among the reported seeds).
    #[arg(long)]
    selection_seeds: Option<usize>,
    /// Hidden size of every model.
    #[arg(long)]
    hidden: Option<usize>,
    /// Worker processes training runs here, one thread each (default: the number of cores; 0:
    /// only plan, while `cellc worker`s on other machines train).
    #[arg(long)]
    workers: Option<usize>,
    /// Seconds a worker holds a run without renewing its lease.
    #[arg(long, default_value_t = 60.0)]
    lease: f64,
    /// Seed of the settings and the first training seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Where the table, CSV and charts go.
    #[arg(long, default_value = "paper-results")]
    out: PathBuf,
    /// The store the study's runs go to (an SQLite file, or a postgres:// URL that workers on
    /// other machines share); an interrupted study continues from it. Default: OUT/store.sqlite.
    #[arg(long, env = "CELLC_STORE", hide_env_values = true)]
    store: Option<String>,
    #[command(flatten)]
    data: DataArg,
    /// Print a JSON summary instead of the Markdown table.
    #[arg(long)]
    json: bool,
}

fn profile(args: &Args) -> Result<Profile, String> {
    let mut p = if args.quick {
        Profile::quick()
    } else if args.full {
        Profile::full()
    } else {
        Profile::default_profile()
    };
    if let Some(b) = &args.budget {
        p.cpu_seconds = parse_duration("--budget", b)?;
    }
    if let Some(s) = args.settings {
        p.settings = s;
    }
    if let Some(s) = args.seeds {
        p.seeds = s;
    }
    if let Some(s) = args.selection_seeds {
        if s < 2 {
            return Err("--selection-seeds must be at least 2: a setting chosen on one seed is chosen on noise".into());
        }
        p.selection_seeds = s;
    }
    if let Some(h) = args.hidden {
        p.hidden = h;
    }
    if p.settings == 0 || p.seeds == 0 || p.hidden == 0 {
        return Err("--settings, --seeds and --hidden must be at least 1".into());
    }
    Ok(p)
}

fn cells(args: &Args, ui: &Ui) -> Result<Vec<CellSource>, Failure> {
    let paper: Vec<String> = match &args.paper_cells {
        None => PAPER_CELLS.iter().map(|s| s.to_string()).collect(),
        Some(names) => {
            let names: Vec<String> = names.iter().map(|n| n.trim().to_string()).collect();
            if let Some(bad) = names.iter().find(|n| !PAPER_CELLS.contains(&n.as_str())) {
                return Err(format!(
                    "--cells: `{bad}` is not one of the paper's cells ({}); put other cells after the flags",
                    PAPER_CELLS.join(", ")
                )
                .into());
            }
            names
        }
    };
    let mut ws = Workspace::new();
    let mut out = vec![];
    for name in paper.into_iter().chain(args.cells.iter().cloned()) {
        let (cell, source) = input::load_cell_source(&mut ws, &name, ui)?;
        if out.iter().any(|c: &CellSource| c.name == cell.name) {
            continue;
        }
        out.push(source);
    }
    Ok(out)
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map_or("unknown CPU", |l| l.trim_start_matches([' ', '\t', ':']));
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!("{model}, {cores} cores")
}

/// The study's tasks: `--tasks`, each one the study knows, or all of them.
fn tasks(args: &Args) -> Result<Vec<TaskKind>, String> {
    let all = TaskKind::in_paper();
    let Some(names) = &args.tasks else { return Ok(all) };
    names
        .iter()
        .map(|n| {
            let n = n.trim();
            all.iter()
                .copied()
                .find(|k| k.name() == n)
                .ok_or_else(|| format!("--tasks: no task `{n}` in the study (one of: {})", TaskKind::names(&all)))
        })
        .collect()
}

pub fn run(ui: &Ui, args: Args) -> Outcome {
    let profile = profile(&args)?;
    let tasks = tasks(&args)?;
    for t in &tasks {
        // Every task's data must be there before hours of training start.
        t.locate_data(args.data.data.as_deref()).map_err(|e| format!("{e}; or choose --tasks arith,xml"))?;
    }
    if !(args.lease.is_finite() && args.lease >= 1.0) {
        return Err("--lease must be at least 1 second".into());
    }
    let study = Study { cells: cells(&args, ui)?, tasks, profile, seed: args.seed, data: args.data.data.clone() };
    if args.estimate {
        print_cost(&study.estimated_runs(), "estimated from the measured throughputs", args.json);
        return Ok(ExitCode::SUCCESS);
    }
    std::fs::create_dir_all(&args.out).map_err(|e| format!("cannot create {}: {e}", args.out.display()))?;
    let store_url = args.store.clone().unwrap_or_else(|| args.out.join("store.sqlite").display().to_string());
    let mut store = open_search_store(&store_url, Access::Migrate)?;
    let name = study.open(&mut *store)?;
    store.lock_experiment(&name)?;
    let workers = args.workers.unwrap_or_else(cores);
    let p = &study.profile;
    let pairs = study.cells.len() * study.tasks.len();
    eprintln!(
        "cellc paper `{name}`: {} cells x {} tasks, {} = {} runs of {} steps (H = {}), {workers} worker process{}; store {}",
        study.cells.len(),
        study.tasks.len(),
        if p.selects() {
            format!(
                "{} settings x {} selection seeds + {} seeds of the chosen one",
                p.settings, p.selection_seeds, p.seeds
            )
        } else {
            format!("{} seeds", p.seeds)
        },
        pairs * p.runs_per_pair(),
        study.tasks.iter().map(|&t| format!("{} {t}", p.steps(t, pairs))).collect::<Vec<_>>().join(", "),
        p.hidden,
        if workers == 1 { "" } else { "es" },
        store.describe()
    );
    let records = train(&mut *store, &name, &study, workers, &args, &store_url)?;
    write_report(&args, &study, &records, &study.profile)?;
    Ok(ExitCode::SUCCESS)
}

/// Runs the study with `workers` local worker processes until it is done; its records.
fn train(
    store: &mut dyn ExperimentStore,
    name: &str,
    study: &Study,
    workers: usize,
    args: &Args,
    store_url: &str,
) -> Result<Vec<RunRecord>, Failure> {
    interrupt::catch_ctrl_c();
    let before = paper::View::load(store, name)?.records.len();
    if before > 0 {
        eprintln!("{before} already in the store");
    }
    let local = LocalWorkers::spawn(workers, store_url, args.lease, study.data.as_deref())?;
    let mut line = StatusLine::new();
    let started = std::time::Instant::now();
    let mut shown = before;
    let mut observe = |v: &paper::View| {
        let counts = paper::stage_counts(v);
        for r in v.records.iter().skip(shown) {
            let (planned, done) = counts.values().fold((0, 0), |a, c| (a.0 + c.0, a.1 + c.1));
            line.show_or_log(&format!(
                "[{done}/{planned}] {} {} setting {} seed {}: valid {:.4}, test {:.4} ({:.1} s, {}){}",
                r.cell,
                r.task,
                r.setting,
                r.seed,
                r.valid,
                r.test,
                r.seconds,
                clock(started.elapsed().as_secs_f64()),
                if r.outcome == "ok" { String::new() } else { format!(" {}", r.outcome) }
            ));
        }
        shown = v.records.len();
    };
    let stop = || interrupt::interrupted() || local.all_gone();
    let ended = paper::drive(store, name, Duration::from_millis(300), &stop, &mut observe);
    let crashed = !interrupt::interrupted() && local.all_gone();
    drop(local);
    if line.is_tty() {
        eprintln!();
    }
    match ended? {
        _ if crashed => {
            Err("every worker process exited (their errors are above); run the same command to continue".into())
        }
        Ended::Interrupted => Err("interrupted; finished runs are stored, run the same command to continue".into()),
        _ => Ok(paper::View::load(store, name)?.records),
    }
}

/// The report in `--out` (table, CSV, charts), and on stdout as Markdown or JSON.
fn write_report(args: &Args, study: &Study, records: &[RunRecord], profile: &Profile) -> Result<(), String> {
    let cell_names: Vec<String> = study.cells.iter().map(|c| c.name.clone()).collect();
    let table = report::Table::build(records, &cell_names, &study.tasks, &profile.seed_plan(args.seed));
    let command = std::iter::once("cellc".to_string()).chain(std::env::args().skip(1)).collect::<Vec<_>>().join(" ");
    let header = format!(
        "# Reproducing Jozefowicz et al. (2015), Table 1\n\n`{command}` (cellc {}), {}; {}, H = {}, \
         {}; machine: {}.",
        env!("CARGO_PKG_VERSION"),
        today(),
        budget_text(study),
        profile.hidden,
        if profile.selects() {
            format!(
                "{} settings per cell and task from the paper's grid (Adam, see ARCHITECTURE.md) chosen on {} selection \
                 seeds, the chosen one reported on {} other seeds",
                profile.settings, profile.selection_seeds, profile.seeds
            )
        } else {
            format!("the default setting (Adam, cosine schedule), {} seeds shared by every cell", profile.seeds)
        },
        machine()
    );
    let settled = paper::curves::settling(records, &table);
    let run_seconds: Vec<f64> = records.iter().map(|r| r.seconds).collect();
    let cost = format!(
        "## Cost\n\n{}. The wall times for more machines replay the measured run times through the job queue \
         (each worker takes the next run when it is free).\n",
        cost_text(&run_seconds, "measured: the sum of the run times, 1 thread each")
    );
    let md = format!("{}\n{}\n{cost}", report::markdown(&table, &header), paper::curves::markdown(&settled));
    let write = |name: &str, bytes: &[u8]| {
        let p = args.out.join(name);
        crate::io::write_atomic(&p, bytes).map_err(|e| format!("cannot write {}: {e}", p.display()))
    };
    write("table.md", md.as_bytes())?;
    write("runs.csv", report::csv(records).as_bytes())?;
    let fig = report::figure(&table, "cellc paper: each cell's evaluation seeds, mean and 95% interval");
    crate::plot::write(&fig, &args.out.join("charts.svg"))?;
    crate::plot::write(&fig, &args.out.join("charts.png"))?;
    let curves = paper::curves::figure(records, &table, "cellc paper: learning curves (thin: each seed; thick: mean)");
    crate::plot::write(&curves, &args.out.join("curves.svg"))?;
    crate::plot::write(&curves, &args.out.join("curves.png"))?;
    if !args.json {
        print!("{md}");
        println!("\nwrote {}/table.md, runs.csv, charts.svg, charts.png, curves.svg, curves.png", args.out.display());
        return Ok(());
    }
    let mut doc = report::json(&table, records);
    doc["out"] = json!(args.out);
    println!("{doc}");
    Ok(())
}

/// A study's cost, on stdout: runs, CPU-hours and wall time on [`MACHINES`] machines.
fn print_cost(run_seconds: &[f64], how: &str, json: bool) {
    if json {
        println!("{}", crate::paper::plan::cost_json(run_seconds));
    } else {
        println!("{}", cost_text(run_seconds, how));
    }
}

fn cost_text(run_seconds: &[f64], how: &str) -> String {
    let hours = |s: f64| format!("{:.2} h", s / 3600.0);
    let wall = crate::paper::plan::wall_by_machines(run_seconds)
        .into_iter()
        .map(|(m, w)| format!("{m} machine{} {}", if m == 1 { "" } else { "s" }, hours(w)))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "{} runs, {:.2} CPU-hours ({how}); wall time with {WORKERS_PER_MACHINE} workers per machine: {wall}",
        run_seconds.len(),
        run_seconds.iter().sum::<f64>() / 3600.0
    )
}

/// The budget as the report states it: CPU time shared out, or fixed steps per run.
fn budget_text(study: &Study) -> String {
    let p = &study.profile;
    let pairs = study.cells.len() * study.tasks.len();
    let fixed = study.tasks.iter().all(|t| p.run_steps.iter().any(|(k, _)| k == t));
    let steps = study.tasks.iter().map(|&t| format!("{t} {}", p.steps(t, pairs))).collect::<Vec<_>>().join(", ");
    if fixed {
        format!("steps per run: {steps}")
    } else {
        format!("budget {:.0} CPU-minutes (steps per run: {steps})", p.cpu_seconds / 60.0)
    }
}

/// Today's date (UTC) as YYYY-MM-DD, from the system clock.
fn today() -> String {
    let days =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() / 86_400) as i64;
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}
