//! `cellc dashboard` end to end: its JSON views against a store filled by a real small search
//! (with its confirmation stage), a comparison and a study, equal to what the `--json` commands
//! print; 404s and one-line errors; live change events; writers never locked out by it; a store
//! of many runs; and the page itself in headless Chromium (tests/browser/dashboard.mjs).

mod support;

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;

use serde_json::Value;
use support::dashboard::Server;
use support::small_search::{SMALL, cellc, run_ok};

/// A study small enough for a test: two cells on arith, 3 seeds, 10 CPU-seconds.
const PAPER: &[&str] = &["paper", "--quick", "--cells", "gru,lstm", "--tasks", "arith", "--budget", "10s"];

/// A comparison small enough for a test, its runs finishing within seconds.
fn compare_args(cells: &[&str], seeds: &str) -> Vec<String> {
    let mut args: Vec<String> = vec!["compare".into()];
    args.extend(cells.iter().map(|c| c.to_string()));
    args.extend(
        [
            "--task",
            "memorize",
            "--hidden",
            "8",
            "--steps",
            "200",
            "--eval-every",
            "50",
            "--seeds",
            seeds,
            "--workers",
            "1",
        ]
        .map(String::from),
    );
    args
}

/// The store the tests read (never written after it is made): a small search with a
/// confirmation stage, a comparison (its `--json` output kept) and a small study.
fn store() -> &'static (PathBuf, Value) {
    static STORE: OnceLock<(PathBuf, Value)> = OnceLock::new();
    STORE.get_or_init(|| {
        let dir = support::scratch("dashboard");
        let store = dir.join("s.sqlite");
        let mut search = cellc();
        search.arg("search").args(SMALL.iter().filter(|a| !["--confirm", "0"].contains(a)));
        search.args(["--confirm", "2", "--confirm-seeds", "3", "--workers", "2", "--store"]).arg(&store);
        run_ok(search);
        let out = run_ok({
            let mut c = cellc();
            c.args(compare_args(&["gru", "tanh_rnn"], "3")).arg("--json").arg("--store").arg(&store);
            c
        });
        let compared: Value = serde_json::from_slice(&out.stdout).unwrap();
        run_ok({
            let mut c = cellc();
            c.args(PAPER).args(["--workers", "2"]);
            c.arg("--store").arg(&store).arg("--out").arg(dir.join("paper"));
            c
        });
        (store, compared)
    })
}

/// A copy of the store (with its write-ahead log) for a test that adds runs to it.
fn copy_of_store(name: &str) -> PathBuf {
    let (store, _) = store();
    let dir = support::scratch(name);
    let copy = dir.join("s.sqlite");
    let conn = rusqlite::Connection::open(store).unwrap();
    conn.execute("VACUUM INTO ?1", [copy.to_str().unwrap()]).unwrap();
    // The copy comes out in rollback-journal mode, where readers do block writers; cellc's own
    // opening puts it back in write-ahead-log mode, as every store cellc writes is.
    drop(cellc::store::Store::open(&copy).unwrap());
    let mode: String =
        rusqlite::Connection::open(&copy).unwrap().query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
    copy
}

fn cellc_json(args: &[&str], store: &Path) -> Value {
    let out = run_ok({
        let mut c = cellc();
        c.args(args).arg("--store").arg(store);
        c
    });
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn experiment_of_kind(overview: &Value, kind: &str) -> String {
    let e = overview["experiments"].as_array().unwrap().iter().find(|e| e["kind"] == kind);
    e.unwrap_or_else(|| panic!("no {kind} in {overview}"))["name"].as_str().unwrap().to_string()
}

/// Drops the fields that depend on when they are read (seconds left, seconds since).
fn timeless(mut v: Value) -> Value {
    match &mut v {
        Value::Object(m) => {
            for k in ["lease_left_s", "last_seen_s", "runs_per_hour", "busy", "alive"] {
                m.remove(k);
            }
            for x in m.values_mut() {
                *x = timeless(x.take());
            }
        }
        Value::Array(a) => {
            for x in a.iter_mut() {
                *x = timeless(x.take());
            }
        }
        _ => {}
    }
    v
}

#[test]
fn the_json_views_show_the_store_as_the_commands_do() {
    let (store, compared) = store();
    let server = Server::start(store, "1");
    let overview = server.json("/api/overview");
    let runs: u64 = overview["experiments"].as_array().unwrap().iter().map(|e| e["runs"].as_u64().unwrap()).sum();
    let jobs: usize = {
        let mut s = cellc::store::Store::open_with(store, cellc::store::Access::ReadOnly).unwrap();
        use cellc::store::ExperimentStore;
        s.experiments().unwrap().iter().map(|e| s.jobs(e).unwrap().len()).sum()
    };
    assert_eq!(runs as usize, jobs, "every run is counted once");
    assert!(overview["in_flight"].as_array().unwrap().is_empty(), "{overview}");
    for e in overview["errors"].as_array().unwrap() {
        // Runs that failed or diverged (the small search's mutants may), each with its reason.
        assert!(e["outcome"].as_str().is_some_and(|o| o.starts_with("failed") || o.starts_with("diverged")), "{e}");
    }
    assert_eq!(overview["recent"].as_array().unwrap().len(), 20);

    // The status view is `cellc search status --json`.
    let status = cellc_json(&["search", "status", "--json"], store);
    assert_eq!(timeless(server.json("/api/status")), timeless(status));

    // The search view starts from `cellc search report --json`, confirmation included.
    let report =
        cellc_json(&["search", "report", "--json", "--out", support::scratch("report").to_str().unwrap()], store);
    let search = server.json("/api/experiments/search");
    for key in ["search", "counts", "throughput", "leaderboard", "confirmed"] {
        assert_eq!(search[key], report[key], "{key}");
    }
    assert!(search["confirmed"].as_array().is_some_and(|c| !c.is_empty()), "the confirmation ran: {search}");
    assert!(search["score_history"].as_array().is_some_and(|h| !h.is_empty()));
    assert!(search["tree"].as_array().is_some_and(|t| !t.is_empty()));
    let dropped = search["candidates"].as_array().unwrap().iter().filter(|c| c["status"] == "dropped").count();
    assert!(dropped > 0, "the small search drops some candidates, and says why");

    // The comparison is `cellc compare --json`; the study is `cellc paper --json` without `out`.
    let compare = server.json(&format!("/api/experiments/{}", compared["experiment"].as_str().unwrap()));
    for key in ["experiment", "cells", "differences", "seeds", "level", "metric", "task"] {
        assert_eq!(compare[key], compared[key], "{key}");
    }
    let study = server.json(&format!("/api/experiments/{}", experiment_of_kind(&overview, "study")));
    let paper_out = support::scratch("paper-again");
    let again = cellc_json(&[PAPER, &["--json", "--out", paper_out.to_str().unwrap()]].concat(), store);
    for key in ["cells", "claims", "runs", "cost", "study"] {
        assert_eq!(study[key], again[key], "{key}");
    }
    assert_eq!(study["cells"][0]["tasks"]["arith"]["paper"], 0.896, "the paper's value beside ours");

    // A candidate: its source and derivative as `cellc grad` prints it; a run: its curves.
    let best = &search["leaderboard"][0];
    let cell = server.json(&format!("/api/experiments/search/cells/{}", best["id"]));
    let file = support::scratch("cell").join("c.cell");
    std::fs::write(&file, cell["source"].as_str().unwrap()).unwrap();
    let grad = run_ok({
        let mut c = cellc();
        c.arg("grad").arg(format!("{}:{}", file.display(), cell["name"].as_str().unwrap()));
        c
    });
    assert_eq!(cell["grad"].as_str().unwrap(), String::from_utf8_lossy(&grad.stdout));
    let run_id = cell["runs"][0]["run"].as_i64().unwrap();
    let run = server.json(&format!("/api/runs/{run_id}"));
    let points = run["points"].as_array().unwrap();
    assert!(!points.is_empty(), "{run}");
    assert_eq!(points.len(), run["result"]["history"].as_array().unwrap().len());
    for key in ["step", "train_loss", "valid", "valid_loss", "lr"] {
        assert!(points.iter().all(|p| p[key].is_number()), "{key}: {run}");
    }
    let listed = server.json("/api/experiments/search/runs");
    assert_eq!(listed["runs"].as_array().unwrap().len(), search["counts"]["jobs"].as_u64().unwrap() as usize);
}

#[test]
fn missing_things_get_404s_and_bad_stores_one_line_errors() {
    let (store, _) = store();
    let server = Server::start(store, "1");
    let (code, body) = server.get("/runs/999999");
    assert_eq!(code, 404);
    assert!(body.contains("404") && body.contains("<html"), "{body}");
    for path in
        ["/api/runs/999999", "/api/runs/x", "/api/experiments/nope", "/api/experiments/search/cells/999", "/api/nope"]
    {
        let (code, body) = server.get(path);
        assert_eq!(code, 404, "{path}: {body}");
        assert!(serde_json::from_str::<Value>(&body).unwrap()["error"].is_string(), "{path}: {body}");
    }
    for path in ["/experiments/nope", "/nothing/here", "/assets/nope.js"] {
        assert_eq!(server.get(path).0, 404, "{path}");
    }
    assert_eq!(server.get("/experiments/search").0, 200);
    assert_eq!(server.get("/assets/uPlot.iife.min.js").0, 200);

    let dir = support::scratch("bad-stores");
    let not_a_store = dir.join("notes.txt");
    std::fs::write(&not_a_store, "hello").unwrap();
    let missing = dir.join("missing.sqlite");
    for (store, says) in [(missing.as_path(), "no store at"), (not_a_store.as_path(), "not a database")] {
        let out = cellc().args(["dashboard", "--port", "0", "--store"]).arg(store).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(says) && stderr.trim().lines().count() == 1, "{stderr}");
    }
    assert!(!missing.exists(), "a dashboard creates no store");
    let out = cellc().args(["dashboard", "--poll", "0"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "a bad flag is a usage error");
}

#[test]
fn a_run_finishing_is_announced_and_shown() {
    let store = copy_of_store("live");
    let server = Server::start(&store, "0.1");
    let mut events = server.events();
    let first = events.next_change();
    let before = server.json("/api/overview")["recent"][0]["run"].as_i64().unwrap();
    let mut compare = cellc();
    compare.args(compare_args(&["gru", "lstm"], "2")).arg("--store").arg(&store).stdout(Stdio::null());
    let mut child = compare.spawn().unwrap();
    // Every change is announced; the run shows up in the overview once finished.
    loop {
        assert!(events.next_change() > first);
        let recent = server.json("/api/overview")["recent"][0]["run"].as_i64().unwrap();
        if recent > before {
            break;
        }
    }
    assert!(child.wait().unwrap().success());
}

#[test]
fn a_run_in_flight_shows_its_curve_so_far() {
    let store = copy_of_store("in-flight");
    let server = Server::start(&store, "0.1");
    let mut events = server.events();
    // Long enough to be seen mid-run: validations every 50 of 20,000 steps.
    let mut compare = cellc();
    compare.args(["compare", "gru", "lstm", "--task", "memorize", "--hidden", "8", "--steps", "20000"]);
    compare.args(["--eval-every", "50", "--seeds", "2", "--workers", "1", "--store"]).arg(&store);
    let mut child = compare.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let run = loop {
        events.next_change();
        let overview = server.json("/api/overview");
        let flying = overview["in_flight"].as_array().unwrap().clone();
        if let Some(r) = flying.iter().find(|r| r["validations"].as_u64() > Some(1)) {
            assert!(r["worker"].is_string() && r["elapsed_s"].is_number(), "{r}");
            break r["run"].as_i64().unwrap();
        }
    };
    let view = server.json(&format!("/api/runs/{run}"));
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(view["state"], "leased", "{view}");
    let points = view["points"].as_array().unwrap();
    assert!(points.len() > 1 && points.iter().all(|p| p["train_loss"].is_number()), "{view}");
    assert!(view["result"].is_null());
}

#[test]
fn workers_are_never_locked_out_by_a_dashboard() {
    let store = copy_of_store("no-lock");
    let server = Server::start(&store, "0.02");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (stop, client) = (stop.clone(), (*server).clone());
        std::thread::spawn(move || {
            let server = client;
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                for path in ["/api/overview", "/api/experiments/search", "/api/status"] {
                    server.json(path);
                }
                n += 1;
            }
            n
        })
    };
    // A writer that never waits: any lock held by the dashboard would fail it at once.
    let conn = rusqlite::Connection::open(&store).unwrap();
    conn.busy_timeout(std::time::Duration::ZERO).unwrap();
    for i in 0..400 {
        conn.execute_batch(&format!(
            "BEGIN IMMEDIATE; INSERT INTO workers (id, started_ms, heartbeat_ms, jobs_done, busy_seconds) \
             VALUES ('writer-{i}', 0, 0, 0, 0); COMMIT;"
        ))
        .unwrap_or_else(|e| panic!("write {i} was refused while the dashboard read: {e}"));
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let reads = reader.join().unwrap();
    assert!(reads > 0);
    let wal = std::fs::metadata(store.with_extension("sqlite-wal")).map_or(0, |m| m.len());
    assert!(wal < 16 << 20, "the write-ahead log keeps being checkpointed: {wal} bytes");
}

#[test]
fn the_page_works_in_headless_chromium() {
    let store = copy_of_store("browser");
    let server = Server::start(&store, "0.2");
    let search = server.json("/api/experiments/search");
    let cells: Vec<&str> =
        search["leaderboard"].as_array().unwrap().iter().take(3).map(|e| e["name"].as_str().unwrap()).collect();
    let run = search["leaderboard"][0]["id"].as_i64().unwrap();
    let cell = server.json(&format!("/api/experiments/search/cells/{run}"));
    let run = cell["runs"][0]["run"].as_i64().unwrap();
    let mut node = support::browser::node("dashboard.mjs");
    node.args([server.url(), run.to_string(), serde_json::to_string(&cells).unwrap()]);
    if let Ok(dir) = std::env::var("CELLC_SCREENSHOTS") {
        node.arg(dir);
    }
    let mut node = node.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap();
    let mut lines = std::io::BufReader::new(node.stdout.take().unwrap()).lines();
    let ready = lines.next().map(|l| l.unwrap());
    assert_eq!(ready.as_deref(), Some("READY"), "the page's checks failed (above)");
    // A run finishes while the page is open.
    let mut compare = cellc();
    compare.args(compare_args(&["gru", "lstm"], "2")).arg("--store").arg(&store);
    run_ok(compare); // no "database is locked" while the page reads
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    assert!(node.wait().unwrap().success(), "the page test failed (above): {rest:?}");
    assert_eq!(rest, ["OK"]);
}

/// A search of `runs` runs made without training (results drawn from a seeded generator, in
/// the shape real ones have: three stages per candidate, 20 validations each) in `path`, its
/// config and specs taken from the real small search.
fn synthetic_search(path: &Path, runs: usize) {
    use cellc::store::{CandidateRow, ExperimentStore, JobRow, RoundRow, Store};
    let (real, _) = store();
    let mut real = Store::open_with(real, cellc::store::Access::ReadOnly).unwrap();
    let config = real.experiment("search").unwrap().unwrap().config;
    let real_jobs = real.jobs("search").unwrap();
    let spec_of = |task: &str| real_jobs.iter().find(|j| j.task == task).unwrap().spec.clone();
    let source = real.candidates("search").unwrap()[0].source.clone();
    let mut s = Store::open(path).unwrap();
    s.create_experiment("search", "search", &config).unwrap();
    let mut rng = cellc::rng::Rng::new(11);
    let tasks = [("memorize", "filter"), ("arith", "first"), ("xml", "rest")];
    let count = runs.div_ceil(tasks.len());
    let candidates: Vec<CandidateRow> = (1..=count as i64)
        .map(|id| CandidateRow {
            id,
            hash: format!("{id:016x}"),
            name: if id == 1 { "gru".into() } else { format!("c{id}") },
            parent: (id > 2).then_some(id / 2),
            mutation: if id > 2 { "insert tanh before argument 1 of `W*h`".into() } else { String::new() },
            source: source.clone(),
            round: 0,
        })
        .collect();
    let jobs: Vec<JobRow> = (0..count * tasks.len())
        .map(|i| {
            let (task, stage) = tasks[i % tasks.len()];
            let spec: cellc::experiment::JobSpec = serde_json::from_str(&spec_of(task)).unwrap();
            let candidate = (i / tasks.len()) as i64 + 1;
            cellc::experiment::queued_job(i as i64 + 1, "search", candidate, stage, 0, 0, &spec).unwrap()
        })
        .collect();
    let round = RoundRow { round: 0, generated: count as i64, rejected: 0, duplicates: 0, planned_ms: 0 };
    assert!(s.commit_round("search", &round, &candidates, &jobs).unwrap());
    while let Some(job) = s.claim("w", 60_000).unwrap() {
        let base = [0.3, 0.2, 0.3][(job.id as usize - 1) % tasks.len()];
        let top = base + 0.1 * rng.f64();
        let history: Vec<Value> = (1..=20)
            .map(|k| {
                let v = top * f64::from(k) / 20.0;
                serde_json::json!({"step": k * 100, "train_loss": 3.0 - v, "valid": {"metric": v, "secondary": 0.0,
                    "loss": 3.0 - v}, "lr": 0.003, "seconds": 0.1 * f64::from(k), "tokens_per_s": 1e6})
            })
            .collect();
        let curve: Vec<(u64, f64)> = (1..=20).map(|k| (k * 100, top * k as f64 / 20.0)).collect();
        let result = serde_json::json!({"valid": top, "test": top, "curve": curve, "history": history, "steps": 2000,
            "outcome": "ok", "compile_seconds": 0.01, "train_seconds": 1.0, "eval_seconds": 0.1, "seconds": 1.2});
        assert!(s.finish(job.id, "w", &result.to_string()).unwrap());
    }
}

#[test]
fn a_store_of_many_runs_is_shown_whole() {
    // 1,500 runs here; `CELLC_DASHBOARD_RUNS=10000 CELLC_DASHBOARD_KEEP=PATH` makes the store
    // bench/dashboard.sh times the page on.
    let runs = std::env::var("CELLC_DASHBOARD_RUNS").map_or(1500, |n| n.parse().unwrap());
    let path = match std::env::var("CELLC_DASHBOARD_KEEP") {
        Ok(p) => PathBuf::from(p),
        Err(_) => support::scratch("many").join("s.sqlite"),
    };
    let _ = std::fs::remove_file(&path);
    synthetic_search(&path, runs);
    let started = std::time::Instant::now();
    let server = Server::start(&path, "1");
    let overview = server.json("/api/overview");
    let first_view = started.elapsed();
    let search = server.json("/api/experiments/search");
    let search_view = started.elapsed() - first_view;
    eprintln!("{runs} runs: overview {first_view:?} from start, then the search view in {search_view:?}");
    assert_eq!(overview["experiments"][0]["done"].as_u64(), Some(runs.div_ceil(3) as u64 * 3));
    assert_eq!(overview["recent"].as_array().unwrap().len(), 20);
    assert_eq!(search["candidates"].as_array().unwrap().len(), runs.div_ceil(3));
    let board = search["leaderboard"].as_array().unwrap();
    assert_eq!(board.len(), runs.div_ceil(3), "every candidate passes: each is scored");
    assert!(board.windows(2).all(|w| w[0]["score"].as_f64() >= w[1]["score"].as_f64()));
    assert_eq!(server.json("/api/runs/7")["points"].as_array().unwrap().len(), 20);
}
