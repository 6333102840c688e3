//! `cellc compare` end to end, through the binary: cells trained on the same seeds with paired
//! differences in the report, the runs kept in the store (asking for more seeds trains only the
//! new ones), a sequential plan, and bad input rejected in one line.

mod support;

use std::path::Path;

use cellc::store::{Access, JobState, open_search_store};
use support::cellc;

/// A comparison small enough for a test: memorize, H = 8, 40 steps a run.
fn compare(store: &Path, extra: &[&str]) -> serde_json::Value {
    let s = store.display().to_string();
    let mut args = vec![
        "compare",
        "gru",
        "tanh_rnn",
        "--task",
        "memorize",
        "--hidden",
        "8",
        "--steps",
        "40",
        "--eval-every",
        "20",
        "--eval-examples",
        "64",
        "--workers",
        "2",
        "--lease",
        "5",
        "--json",
        "--store",
        &s,
    ];
    args.extend_from_slice(extra);
    let out = cellc(&args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?}: {err}");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// (job id, finished time, result) of every job of the store's one comparison.
fn jobs(store: &Path) -> Vec<(i64, Option<i64>, Option<String>)> {
    let mut s = open_search_store(&store.display().to_string(), Access::SameVersion).unwrap();
    let name = s.experiments().unwrap().into_iter().next().unwrap();
    let jobs = s.jobs(&name).unwrap();
    assert!(jobs.iter().all(|j| j.state == JobState::Done));
    jobs.into_iter().map(|j| (j.id, j.finished_ms, j.result)).collect()
}

#[test]
fn cells_are_compared_on_paired_seeds_and_more_seeds_train_only_the_new_runs() {
    let dir = support::scratch("compare");
    let store = dir.join("c.sqlite");
    let three = compare(&store, &["--seeds", "3", "--plot", dir.join("c.svg").to_str().unwrap()]);
    assert_eq!(three["seeds"], 3);
    assert_eq!(three["cells"][0]["cell"], "gru");
    let gru: Vec<f64> = serde_json::from_value(three["cells"][0]["per_seed"].clone()).unwrap();
    let rnn: Vec<f64> = serde_json::from_value(three["cells"][1]["per_seed"].clone()).unwrap();
    let diff: Vec<f64> = serde_json::from_value(three["differences"][0]["per_seed"].clone()).unwrap();
    assert_eq!(gru.len(), 3);
    for i in 0..3 {
        assert!((diff[i] - (rnn[i] - gru[i])).abs() < 1e-12, "the differences are paired by seed");
    }
    let half = three["differences"][0]["summary"]["half_width"].as_f64().unwrap();
    assert!(half.is_finite() && half > 0.0, "{three}");
    assert!(["better", "worse", "inconclusive"].contains(&three["differences"][0]["verdict"].as_str().unwrap()));
    assert!(dir.join("c.svg").exists());
    let before = jobs(&store);
    assert_eq!(before.len(), 6);

    // The same question again: nothing is trained; with one more seed, only its two runs are.
    assert_eq!(compare(&store, &["--seeds", "3"])["cells"], three["cells"]);
    assert_eq!(jobs(&store), before);
    let four = compare(&store, &["--seeds", "4"]);
    assert_eq!(four["seeds"], 4);
    let after = jobs(&store);
    assert_eq!(after.len(), 8);
    assert_eq!(&after[..6], &before[..], "the first three seeds' runs are untouched");
    let gru4: Vec<f64> = serde_json::from_value(four["cells"][0]["per_seed"].clone()).unwrap();
    assert_eq!(&gru4[..3], &gru[..], "and give the same numbers");
}

#[test]
fn a_sequential_comparison_stops_within_its_plan() {
    let dir = support::scratch("compare-seq");
    let store = dir.join("c.sqlite");
    let out = compare(&store, &["--until-decided", "--min-seeds", "2", "--max-seeds", "4"]);
    let seeds = out["seeds"].as_u64().unwrap();
    assert!((2..=4).contains(&seeds), "{out}");
    // Each look is at level 1 - 0.05 / 3 (three looks: 2, 3 and 4 seeds).
    assert!((out["level"].as_f64().unwrap() - (1.0 - 0.05 / 3.0)).abs() < 1e-12, "{out}");
    let decided = out["differences"][0]["verdict"] != "inconclusive";
    assert!(decided || seeds == 4, "it stops early only when decided: {out}");
}

#[test]
fn bad_input_gets_a_one_line_error() {
    let dir = support::scratch("compare-bad");
    let s = dir.join("c.sqlite").display().to_string();
    let fail = |args: &[&str], want: &str| {
        let out = cellc(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(want) && err.lines().count() == 1, "{args:?}: {err}");
    };
    fail(&["compare", "gru", "lstm", "--store", &s], "choose a task with --task");
    fail(&["compare", "gru", "lstm", "--task", "arith", "--time", "5m", "--store", &s], "--time");
    fail(&["compare", "gru", "lstm", "--task", "arith", "--seeds", "1", "--store", &s], "--seeds must be at least 2");
    fail(&["compare", "gru", "nosuchcell", "--task", "arith", "--store", &s], "nosuchcell");
    let usage = cellc(&["compare", "gru", "--task", "arith"]);
    assert_eq!(usage.status.code(), Some(2), "one cell is a usage error");
}
