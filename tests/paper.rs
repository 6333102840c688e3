//! `cellc paper`'s study engine: both phases, the store, resuming after an interruption without
//! training a finished run again, and the same numbers on every run.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use cellc::paper::plan::Profile;
use cellc::paper::{Progress, Study, report};
use cellc::store::{RunRecord, Store};
use cellc::tasks::TaskKind;
use cellc::workspace::CellSource;

fn source(name: &str) -> CellSource {
    CellSource {
        name: name.into(),
        file: format!("std/{name}.cell"),
        text: cellc::stdlib::source(name).unwrap().into(),
    }
}

fn study(workers: usize) -> Study {
    Study {
        cells: vec![source("gru"), source("tanh_rnn")],
        tasks: vec![TaskKind::Memorize],
        // The smallest budget: every run gets the minimum of 20 steps.
        profile: Profile { cpu_seconds: 1.0, settings: 2, seeds: 2, hidden: 16, max_layers: 2, ptb_eval_words: None },
        seed: 1,
        data: None,
        workers,
    }
}

fn values(records: &[RunRecord]) -> Vec<(String, u32, u64, f64, f64)> {
    let mut v: Vec<_> = records.iter().map(|r| (r.cell.clone(), r.setting, r.seed, r.valid, r.test)).collect();
    v.sort_by(|a, b| (&a.0, a.1, a.2).cmp(&(&b.0, b.1, b.2)));
    v
}

#[test]
fn a_study_trains_both_phases_once_and_resumes_after_an_interruption() {
    let trained = AtomicUsize::new(0);
    let observe = |p: Progress<'_>| {
        if let Progress::Finished { .. } = p {
            trained.fetch_add(1, Ordering::SeqCst);
        }
    };
    let never = || false;

    // Uninterrupted: 2 cells x (2 settings + 1 more seed of the best) = 6 runs.
    let full = Mutex::new(Store::memory().unwrap());
    let records = study(2).run(&full, &observe, &never).unwrap();
    assert_eq!(records.len(), 6);
    assert_eq!(trained.load(Ordering::SeqCst), 6);
    let seeds: Vec<u64> = records.iter().map(|r| r.seed).collect();
    assert_eq!(seeds.iter().filter(|&&s| s == 2).count(), 2, "one extra seed per cell");
    assert!(records.iter().all(|r| r.outcome == "ok" && r.steps == 20), "{records:?}");

    // Again on the same store: nothing is trained.
    trained.store(0, Ordering::SeqCst);
    let again = study(2).run(&full, &observe, &never).unwrap();
    assert_eq!(trained.load(Ordering::SeqCst), 0);
    assert_eq!(values(&again), values(&records));

    // Interrupted after the first finished run, then resumed: the same numbers as uninterrupted,
    // each run trained once (one worker, so exactly one run finishes before the stop).
    let store = Mutex::new(Store::memory().unwrap());
    trained.store(0, Ordering::SeqCst);
    let stop_after_one = || trained.load(Ordering::SeqCst) >= 1;
    let err = study(1).run(&store, &observe, &stop_after_one).expect_err("interrupted");
    assert!(err.contains("interrupted"), "{err}");
    let kept = store.lock().unwrap().study("paper").unwrap().len();
    assert!((1..6).contains(&kept), "{kept} runs kept");
    let resumed = study(1).run(&store, &observe, &never).unwrap();
    assert_eq!(trained.load(Ordering::SeqCst), 6, "no run trained twice");
    assert_eq!(values(&resumed), values(&records), "worker count and interruption do not change numbers");
}

#[test]
fn the_report_has_the_table_scores_claims_and_charts() {
    let store = Mutex::new(Store::memory().unwrap());
    let records = study(2).run(&store, &|_| {}, &|| false).unwrap();
    let cells = vec!["gru".to_string(), "tanh_rnn".to_string()];
    let table = report::Table::build(&records, &cells, &[TaskKind::Memorize], 1);
    assert_eq!(table.score("gru"), Some(1.0));
    assert!(table.get("tanh_rnn", TaskKind::Memorize).unwrap().seeds == 2);
    let md = report::markdown(&table, "# test");
    assert!(md.contains("| gru |") && md.contains("## The paper's claims"), "{md}");
    assert!(md.contains("not tested"), "claims about absent cells are marked: {md}");
    let csv = report::csv(&records);
    assert_eq!(csv.lines().count(), 7);
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

    let dir = out.to_str().unwrap();
    let args = ["--tasks", "arith", "--budget", "1s", "--settings", "1", "--seeds", "2", "--hidden", "8", "--out", dir];
    let o = run(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let table = std::fs::read_to_string(out.join("table.md")).unwrap();
    assert!(table.contains("| mut1 |") && table.contains("(0.921)"), "the paper's numbers beside ours:\n{table}");
    for f in ["runs.csv", "charts.svg", "charts.png", "store.sqlite"] {
        assert!(out.join(f).exists(), "{f}");
    }
    // A second run finds every run in the store.
    let o = run(&args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("10 already in the store") && !err.contains("[1/"), "{err}");
    let _ = std::fs::remove_dir_all(&out);
}
