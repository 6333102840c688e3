//! `cellc paper`'s study on the job queue: the selection and evaluation rounds, the store, resuming after an
//! interruption without training a finished run again, and the same numbers on every run.

mod support;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cellc::experiment::worker::{WorkerOptions, work};
use cellc::paper::RunRecord;
use cellc::paper::plan::Profile;
use cellc::paper::{self, Study, report};
use cellc::store::{Access, open_search_store};
use cellc::tasks::TaskKind;
use cellc::workspace::CellSource;

fn source(name: &str) -> CellSource {
    CellSource {
        name: name.into(),
        file: format!("std/{name}.cell"),
        text: cellc::stdlib::source(name).unwrap().into(),
    }
}

fn study() -> Study {
    Study {
        cells: vec![source("gru"), source("tanh_rnn")],
        tasks: vec![TaskKind::Memorize],
        // The smallest budget: every run gets the minimum of 20 steps.
        profile: Profile {
            cpu_seconds: 1.0,
            settings: 2,
            seeds: 2,
            selection_seeds: 2,
            hidden: 16,
            max_layers: 2,
            ptb_eval_words: None,
            run_steps: vec![],
            curve_points: Some(4),
        },
        seed: 1,
        data: None,
    }
}

fn values(records: &[RunRecord]) -> Vec<(String, u32, u64, f64, f64)> {
    let mut v: Vec<_> = records.iter().map(|r| (r.cell.clone(), r.setting, r.seed, r.valid, r.test)).collect();
    v.sort_by(|a, b| (&a.0, a.1, a.2).cmp(&(&b.0, b.1, b.2)));
    v
}

/// Runs the study in the store at `path` with one in-process worker until it is done or `stop`;
/// counts the runs the worker finished into `trained`. Returns whether it finished.
fn drive(path: &Path, stop: &(dyn Fn() -> bool + Sync), trained: &AtomicUsize) -> bool {
    let url = path.display().to_string();
    let mut store = open_search_store(&url, Access::Migrate).unwrap();
    let name = study().open(&mut *store).unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut mine = open_search_store(&url, Access::SameVersion).unwrap();
            let opts = WorkerOptions { lease: Duration::from_secs(60), parent: None, exit_when_idle: true, data: None };
            work(&mut *mine, &opts, stop, &mut |_, _, _| {
                trained.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
        });
        let ended = paper::drive(&mut *store, &name, Duration::from_millis(20), stop, &mut |_| {}).unwrap();
        ended == cellc::experiment::Ended::Done
    })
}

fn records(path: &Path) -> Vec<RunRecord> {
    let mut store = open_search_store(&path.display().to_string(), Access::SameVersion).unwrap();
    paper::View::load(&mut *store, &study().name()).unwrap().records
}

#[test]
fn a_study_trains_both_rounds_once_and_resumes_after_an_interruption() {
    let dir = support::scratch("paper-study");
    let never = || false;
    let trained = AtomicUsize::new(0);

    // Uninterrupted: 2 cells x (2 settings x 2 selection seeds + 2 evaluation seeds) = 12 runs.
    let full = dir.join("full.sqlite");
    assert!(drive(&full, &never, &trained));
    let first = records(&full);
    assert_eq!(first.len(), 12);
    assert_eq!(trained.load(Ordering::SeqCst), 12);
    let seeds: Vec<u64> = first.iter().map(|r| r.seed).collect();
    for (seed, runs) in [(1, 4), (2, 4), (3, 2), (4, 2)] {
        assert_eq!(seeds.iter().filter(|&&s| s == seed).count(), runs, "seed {seed}: selection 1-2, evaluation 3-4");
    }
    assert!(first.iter().all(|r| r.outcome == "ok" && r.steps == 20), "{first:?}");

    // Again on the same store: nothing is trained.
    trained.store(0, Ordering::SeqCst);
    assert!(drive(&full, &never, &trained));
    assert_eq!(trained.load(Ordering::SeqCst), 0);
    assert_eq!(values(&records(&full)), values(&first));

    // Stopped (coordinator and worker) after the first finished run, then resumed: the same
    // numbers as uninterrupted, and no run finished twice.
    let part = dir.join("part.sqlite");
    trained.store(0, Ordering::SeqCst);
    let stop_after_one = || trained.load(Ordering::SeqCst) >= 1;
    assert!(!drive(&part, &stop_after_one, &trained), "interrupted");
    let kept = records(&part).len();
    assert!((1..12).contains(&kept), "{kept} runs kept");
    assert!(drive(&part, &never, &trained));
    assert_eq!(trained.load(Ordering::SeqCst), 12, "no run finished twice");
    assert_eq!(values(&records(&part)), values(&first), "an interruption does not change numbers");
}

#[test]
fn the_report_has_the_table_scores_claims_and_charts() {
    let dir = support::scratch("paper-report");
    let path = dir.join("s.sqlite");
    assert!(drive(&path, &|| false, &AtomicUsize::new(0)));
    let records = records(&path);
    let cells = vec!["gru".to_string(), "tanh_rnn".to_string()];
    let table = report::Table::build(&records, &cells, &[TaskKind::Memorize], &study().profile.seed_plan(1));
    assert_eq!(table.score("gru"), Some(1.0));
    let e = table.entry("tanh_rnn", TaskKind::Memorize).unwrap();
    assert_eq!(e.by_seed.keys().copied().collect::<Vec<_>>(), vec![3, 4], "only the evaluation seeds");
    let md = report::markdown(&table, "# test");
    assert!(md.contains("| gru |") && md.contains("## The paper's claims, tested"), "{md}");
    assert!(md.contains("not tested"), "claims about absent cells are marked: {md}");
    let csv = report::csv(&records);
    assert_eq!(csv.lines().count(), 13);
    let svg = cellc::plot::to_svg(&report::figure(&table, "t"));
    assert!(svg.starts_with("<svg") && svg.contains("tanh_rnn"));
}

#[test]
fn the_command_writes_the_report_and_rejects_bad_flags() {
    let out = std::env::temp_dir().join(format!("cellc-paper-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_cellc")).arg("paper").args(args).output().expect("run cellc")
    };
    let o = run(&["--tasks", "nope"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no task `nope`"));
    let o = run(&["--seeds", "0"]);
    assert_eq!(o.status.code(), Some(1));
    let o = run(&["--settings", "3", "--selection-seeds", "1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("at least 2"));

    let o = run(&["--cells", "lstm,nope"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("`nope` is not one of the paper's cells"));
    let o = run(&["--full", "--budget", "1h"]);
    assert_eq!(o.status.code(), Some(2), "--full fixes the budget");
    let o = run(&["--full", "--estimate"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success() && text.contains("250 runs") && text.contains("16 machines"), "{text}");
    let o = run(&["--full", "--cells", "lstm,gru", "--tasks", "arith", "--estimate", "--json"]);
    let cost: serde_json::Value = serde_json::from_slice(&o.stdout).expect("--estimate --json prints JSON");
    assert_eq!(cost["runs"], 10, "2 cells x 1 task x 5 seeds");
    let one = cost["wall_seconds_by_machines"]["1"].as_f64().unwrap();
    let four = cost["wall_seconds_by_machines"]["4"].as_f64().unwrap();
    assert!(four < one && one <= cost["cpu_seconds"].as_f64().unwrap(), "{cost}");
    assert!(!out.exists(), "an estimate trains nothing and writes nothing");

    let dir = out.to_str().unwrap();
    let args = ["--tasks", "arith", "--budget", "1s", "--settings", "1", "--seeds", "2", "--hidden", "8", "--out", dir];
    let o = run(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let table = std::fs::read_to_string(out.join("table.md")).unwrap();
    assert!(table.contains("| mut1 |") && table.contains("The paper's numbers, for reference"), "{table}");
    assert!(table.contains("| MUT1 beats the GRU | arith |"), "the claims are tested:\n{table}");
    assert!(table.contains("## Cost") && table.contains("16 machines"), "{table}");
    assert!(table.contains("## Learning curves: where the orderings settle"), "{table}");
    for f in ["runs.csv", "charts.svg", "charts.png", "curves.svg", "curves.png", "store.sqlite"] {
        assert!(out.join(f).exists(), "{f}");
    }
    // A second run finds every run in the store.
    let o = run(&args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("20 already in the store") && !err.contains("[1/"), "{err}");
    let _ = std::fs::remove_dir_all(&out);
}
