//! A search small enough for a test, run through the binary, and what it computed, for the
//! tests that compare searches (tests/search.rs on SQLite, tests/postgres.rs on PostgreSQL).

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::process::{Command, Output};

use cellc::store::ExperimentStore;

pub fn cellc() -> Command {
    super::cellc_cmd()
}

/// Tiny models and runs, a lenient filter so mutants get through to the tasks, early stopping on,
/// no confirmation stage (tests/search.rs tests it on its own).
pub const SMALL: &[&str] = &[
    "--tasks",
    "arith,xml",
    "--steps",
    "memorize=400,arith=120,xml=80",
    "--hidden",
    "16",
    "--settings",
    "1",
    "--filter",
    "0.25",
    "--gate",
    "0.6",
    "--keep",
    "0.5,0.8",
    "--in-flight",
    "4",
    "--candidates",
    "10",
    "--lease",
    "2",
    "--seed",
    "7",
    "--confirm",
    "0",
];

/// `cellc search` with the small options on `store` (a path or a URL) and `workers` workers.
pub fn search(store: impl AsRef<OsStr>, workers: usize, extra: &[&str]) -> Command {
    let mut cmd = cellc();
    cmd.arg("search").args(SMALL).arg("--store").arg(store).arg("--workers").arg(workers.to_string()).args(extra);
    cmd
}

/// Runs `cmd`, which must succeed without a "database is locked" anywhere in its stderr.
pub fn run_ok(mut cmd: Command) -> Output {
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{cmd:?} failed: {stderr}");
    assert!(!stderr.contains("locked"), "{stderr}");
    out
}

/// What a search computed: per job, its candidate's hash, task, setting and the exact result.
pub type Results = BTreeMap<i64, (String, String, i64, String)>;

/// The results of the search named `search` in `store`; every job must be done.
pub fn results(store: &mut dyn ExperimentStore) -> Results {
    let hashes: BTreeMap<i64, String> =
        store.candidates("search").unwrap().into_iter().map(|c| (c.id, c.hash)).collect();
    store
        .jobs("search")
        .unwrap()
        .into_iter()
        .map(|j| {
            let result = j.result.unwrap_or_else(|| panic!("job {} unfinished", j.id));
            (j.id, (hashes[&j.candidate].clone(), j.task, j.setting, timeless(&result)))
        })
        .collect()
}

/// A stored result without its times (they differ from run to run; nothing else may): the
/// run's and each validation's seconds and throughput.
pub fn timeless(result: &str) -> String {
    let mut r: serde_json::Value = serde_json::from_str(result).unwrap();
    let r_obj = r.as_object_mut().unwrap();
    for k in ["compile_seconds", "train_seconds", "eval_seconds", "seconds"] {
        r_obj.remove(k);
    }
    for point in r_obj.get_mut("history").and_then(|h| h.as_array_mut()).into_iter().flatten() {
        let point = point.as_object_mut().unwrap();
        point.remove("seconds");
        point.remove("tokens_per_s");
    }
    r.to_string()
}
