//! `cellc search` end to end, through the binary: a search killed with SIGKILL at moments set by
//! its progress (after a run finishes, or while one is in progress) and resumed until done gives
//! exactly the results of an uninterrupted one and never loses a finished run; several workers
//! (spawned, and standalone `cellc worker`s) give the same results without "database is locked"
//! failures; `replay` reproduces a run bit for bit; the report writes its files; bad input gets a
//! one-line error.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use cellc::rng::Rng;
use cellc::store::{ExperimentStore, JobState, Store};
use support::small_search::{Results, cellc, run_ok, search};

fn results(store: &Path) -> Results {
    support::small_search::results(&mut Store::open(store).unwrap())
}

/// An uninterrupted search with one worker, run once and shared by the tests (read only).
fn reference() -> &'static (PathBuf, Results) {
    static REFERENCE: std::sync::OnceLock<(PathBuf, Results)> = std::sync::OnceLock::new();
    REFERENCE.get_or_init(|| {
        let dir = support::scratch("reference");
        let store = dir.join("s.sqlite");
        run_ok(search(&store, 1, &[]));
        let r = results(&store);
        (store, r)
    })
}

#[test]
fn a_search_killed_at_random_moments_resumes_to_the_same_results() {
    let (_, want) = reference();
    assert!(want.len() > 10, "the reference search trained {} runs", want.len());
    let scored = want.values().filter(|v| v.1 == "xml").count();
    assert!(scored > 2, "some mutants should reach the second task: {want:?}");

    let dir = support::scratch("killed");
    let store = dir.join("s.sqlite");
    // The test's own view of the store, to time the kills by progress, never by the clock: a
    // faster or slower machine kills at the same points of the search.
    let mut view = Store::open(&store).unwrap();
    let mut rng = Rng::new(42);
    let (mut kills, mut kills_mid_run) = (0, 0);
    let mut finished_before: BTreeMap<i64, (String, Option<i64>)> = BTreeMap::new();
    let started = Instant::now();
    for attempt in 0.. {
        let mut cmd = if attempt == 0 { search(&store, 2, &[]) } else { search(&store, 2, &["--resume"]) };
        cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        // Kill once 1 or 2 more runs have finished: at once (often between a run's end and the
        // next claim, or while a round is planned), or at the first moment a run is in progress.
        // Every kill needs a finished run first, so the search always ends.
        let more = rng.range(1, 2);
        let mid_run = rng.range(0, 1) == 1;
        let target = finished_before.len() + more;
        let mut done = false;
        loop {
            assert!(started.elapsed() < Duration::from_secs(900), "no end after {attempt} attempts");
            if let Some(status) = child.try_wait().unwrap() {
                assert!(status.success(), "the search failed: {:?}", child.wait_with_output().unwrap());
                done = true;
                break;
            }
            let jobs = view.jobs("search").unwrap();
            let finished = jobs.iter().filter(|j| j.state == JobState::Done).count();
            if finished >= target && (!mid_run || jobs.iter().any(|j| j.state == JobState::Leased)) {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        if done {
            break;
        }
        child.kill().unwrap(); // SIGKILL: no chance to clean up
        child.wait().unwrap();
        kills += 1;
        // Every run that had finished is still there, unchanged, and was not trained again.
        let jobs = view.jobs("search").unwrap();
        if jobs.iter().any(|j| j.state == JobState::Leased) {
            kills_mid_run += 1;
        }
        for j in jobs {
            if let Some(before) = finished_before.get(&j.id) {
                assert_eq!(&(j.result.clone().unwrap_or_default(), j.finished_ms), before, "job {} changed", j.id);
            }
            if j.state == JobState::Done {
                finished_before.insert(j.id, (j.result.unwrap_or_default(), j.finished_ms));
            }
        }
    }
    let redone = view.jobs("search").unwrap().iter().filter(|j| j.attempts > 1).count();
    eprintln!(
        "{kills} kills ({kills_mid_run} during a run), {redone} runs trained again, {:.0} s",
        started.elapsed().as_secs_f64()
    );
    assert!(kills_mid_run > 0 && redone > 0, "no kill hit a run in progress ({kills} kills)");
    assert_eq!(&results(&store), want, "after {kills} kills");
}

#[test]
fn several_workers_give_the_same_results_and_replay_reproduces_a_run() {
    let (ref_store, want) = reference();
    // Three spawned workers.
    let dir = support::scratch("workers");
    let store = dir.join("s.sqlite");
    run_ok(search(&store, 3, &[]));
    assert_eq!(&results(&store), want, "3 workers");

    // A coordinator with one worker of its own plus two standalone workers on the same store.
    let store2 = dir.join("s2.sqlite");
    Store::open(&store2).unwrap();
    let extra: Vec<_> = (0..2)
        .map(|_| {
            cellc()
                .args(["worker", "--lease", "2", "--store"])
                .arg(&store2)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    run_ok(search(&store2, 1, &[]));
    for mut w in extra {
        w.kill().unwrap();
        let out = w.wait_with_output().unwrap();
        assert!(!String::from_utf8_lossy(&out.stderr).contains("locked"));
    }
    assert_eq!(&results(&store2), want, "1 + 2 standalone workers");
    let mut s = Store::open(&store2).unwrap();
    let workers = s.workers().unwrap();
    assert!(workers.len() >= 2, "{workers:?}");

    // Replay: the best xml run and a filter run, bit for bit.
    let jobs = Store::open(ref_store).unwrap().jobs("search").unwrap();
    for id in [jobs.iter().find(|j| j.task == "xml").unwrap().id, jobs.iter().find(|j| j.stage == "filter").unwrap().id]
    {
        let out = run_ok({
            let mut c = cellc();
            c.args(["search", "replay", &id.to_string(), "--store"]).arg(ref_store);
            c
        });
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("identical"), "{text}");
    }
}

#[test]
fn the_report_writes_the_leaderboard_cells_and_plots() {
    let (store, _) = reference();
    let out = support::scratch("report");
    let o = run_ok({
        let mut c = cellc();
        c.args(["search", "report", "--top", "3", "--store"]).arg(store).arg("--out").arg(&out);
        c
    });
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("| rank | cell | score | arith | xml |"), "{text}");
    assert!(text.contains("Mutants drawn"), "{text}");
    for f in ["report.md", "leaderboard.json", "score.svg", "score.png", "family.svg", "family.png"] {
        assert!(out.join(f).exists(), "{f}");
    }
    let cells: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cell"))
        .collect();
    assert!(!cells.is_empty() && cells.len() <= 3);
    for c in cells {
        let o = cellc().arg("check").arg(&c).output().unwrap();
        assert!(o.status.success(), "{}: {}", c.display(), String::from_utf8_lossy(&o.stderr));
    }
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("leaderboard.json")).unwrap()).unwrap();
    assert_eq!(json["leaderboard"][0]["score"].as_f64().map(|s| s > 0.0), Some(true));
}

#[test]
fn the_confirmation_stage_retrains_the_best_cells_beside_the_gru_on_fresh_paired_seeds() {
    let dir = support::scratch("confirm");
    let store = dir.join("s.sqlite");
    let out = dir.join("report");
    let small: Vec<&str> = support::small_search::SMALL.iter().copied().take_while(|a| *a != "--confirm").collect();
    let mut cmd = cellc();
    cmd.arg("search").args(small).arg("--store").arg(&store).args(["--workers", "2", "--confirm", "2"]);
    cmd.args(["--confirm-seeds", "4", "--json", "--out"]).arg(&out);
    let o = run_ok(cmd);
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let confirmed = summary["confirmed"].as_array().unwrap_or_else(|| panic!("no confirmation: {summary}"));
    assert_eq!(confirmed.len(), 2, "{summary}");
    for c in confirmed {
        let ratios = c["ratios"].as_array().unwrap();
        assert_eq!(ratios.len(), 2, "one ratio per task: {c}");
        let (low, high, beats) = (c["low"].as_f64().unwrap(), c["high"].as_f64().unwrap(), c["beats_gru"].as_bool());
        assert!(low <= c["score"].as_f64().unwrap() && c["score"].as_f64().unwrap() <= high, "{c}");
        assert_eq!(beats, Some(low > 1.0), "beats the GRU exactly when the interval is above 1: {c}");
        for (_, r) in ratios.iter().map(|r| (r[0].clone(), r[1].clone())) {
            let n = r["n"].as_u64().unwrap();
            assert!((3..=4).contains(&n), "3 to 4 seeds: {r}");
        }
    }
    // The comparisons are experiments of their own, with seeds the search never used.
    let mut s = Store::open(&store).unwrap();
    let experiments = s.experiments().unwrap();
    assert_eq!(experiments.iter().filter(|e| e.starts_with("compare-")).count(), 2, "{experiments:?}");
    for e in experiments.iter().filter(|e| e.starts_with("compare-")) {
        for j in s.jobs(e).unwrap() {
            let spec: serde_json::Value = serde_json::from_str(&j.spec).unwrap();
            assert!(spec["config"]["seed"].as_u64().unwrap() >= 1000, "fresh seeds: {spec}");
        }
    }
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("## Confirmation against the GRU") && report.contains("| verdict |"), "{report}");
    // Asked again, nothing is trained: the same answer from the store.
    let before: usize = experiments.iter().map(|e| s.jobs(e).unwrap().len()).sum();
    let again: serde_json::Value =
        serde_json::from_slice(&run_ok(search(&store, 2, &["--resume", "--json"])).stdout).unwrap();
    let after: usize = s.experiments().unwrap().iter().map(|e| s.jobs(e).unwrap().len()).sum();
    assert_eq!(before, after, "no new runs");
    assert_eq!(again["confirmed"], summary["confirmed"]);
}

#[test]
fn bad_input_gets_a_one_line_error() {
    let dir = support::scratch("bad");
    let store = dir.join("s.sqlite");
    let fail = |args: &[&str], want: &str| {
        let out = cellc().args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    };
    let s = store.to_str().unwrap();
    fail(&["search", "--store", s, "--resume"], "no search named `search`");
    fail(&["search", "--store", s, "--tasks", "arith,music:jsb"], "is not a task with an accuracy");
    fail(&["search", "--store", s, "--steps", "arith:10"], "is not TASK=STEPS");
    fail(&["search", "--store", s, "--keep", "2"], "is not a fraction");
    fail(&["search", "--store", s, "--seeds", "nosuchcell"], "nosuchcell");
    // A bad flag is a usage error (exit 2), before any store is opened.
    let named = dir.join("named.sqlite");
    let out = cellc().args(["search", "--name", "runs/7", "--store"]).arg(&named).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("`/` cannot be in a search's name") && !named.exists(), "{err}");
    fail(&["search", "replay", "5", "--store", s], "no run 5");
    fail(&["search", "report", "--store", dir.join("missing.sqlite").to_str().unwrap()], "no such store");
}

#[test]
fn the_score_history_is_the_best_mutant_score_after_each_finished_run() {
    // The report's one-pass history against its definition: at each moment a run finished, the
    // best score among mutants with only the runs finished by then.
    let (store, _) = reference();
    let view = cellc::search::View::load(&mut Store::open(store).unwrap(), "search").unwrap();
    let mut times: Vec<i64> =
        view.jobs.iter().filter(|j| view.results.contains_key(&j.id)).filter_map(|j| j.finished_ms).collect();
    times.sort_unstable();
    times.dedup();
    let mutants: Vec<i64> = view.candidates.iter().filter(|c| c.parent.is_some()).map(|c| c.id).collect();
    let mut want: Vec<(f64, f64)> = vec![];
    for t in times {
        let Some(best) = mutants.iter().filter_map(|&id| view.score_until(id, t)).reduce(f64::max) else { continue };
        let hours = (t - view.created_ms) as f64 / 3.6e6;
        match want.last() {
            Some(&(_, b)) if b == best => {}
            Some(&(_, b)) => want.extend([(hours, b), (hours, best)]),
            None => want.push((hours, best)),
        }
    }
    if let (Some(&(_, b)), Some(last)) = (want.last(), view.jobs.iter().filter_map(|j| j.finished_ms).max()) {
        want.push(((last - view.created_ms) as f64 / 3.6e6, b));
    }
    assert!(want.len() >= 2, "the small search should score some mutants: {want:?}");
    assert_eq!(cellc::search::report::score_history(&view), want);
}

/// `--normalise`: mutants with a layer normalisation inserted are drawn, print back to cells
/// that check, and train on the compiled kernels like any other.
#[test]
fn a_search_with_normalise_trains_normalised_mutants() {
    let dir = support::scratch("normalise");
    let store = dir.join("s.sqlite");
    let o = run_ok(search(&store, 2, &["--normalise", "--json"]));
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let board = summary["leaderboard"].as_array().unwrap();
    let normalised: Vec<&serde_json::Value> =
        board.iter().filter(|c| c["mutation"].as_str().is_some_and(|m| m.contains("normalise"))).collect();
    assert!(!normalised.is_empty(), "no normalised mutant on the leaderboard: {board:?}");
    assert!(normalised.iter().all(|c| c["runs"].as_u64() > Some(0)), "{normalised:?}");
    let out = dir.join("report");
    run_ok({
        let mut c = cellc();
        c.args(["search", "report", "--store"]).arg(&store).arg("--out").arg(&out);
        c
    });
    let with_mean = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cell"))
        .filter(|p| std::fs::read_to_string(p).unwrap().contains("mean("))
        .count();
    assert!(with_mean > 0, "the report's cells hold no normalisation");
}

#[test]
fn a_search_from_regularised_cells_trains_mutants_that_keep_their_masks() {
    let dir = support::scratch("regularised");
    let store = dir.join("s.sqlite");
    let seeds = "gru,examples/06_regularisers.cell:lstm_zoneout,examples/06_regularisers.cell:gru_rdrop";
    let o = run_ok(search(&store, 2, &["--seeds", seeds, "--json"]));
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let board = summary["leaderboard"].as_array().unwrap();
    assert!(board.iter().any(|c| c["runs"].as_u64() > Some(0)), "{board:?}");
    let out = dir.join("report");
    run_ok({
        let mut c = cellc();
        c.args(["search", "report", "--store"]).arg(&store).arg("--out").arg(&out);
        c
    });
    // A mutant of a regularised cell prints its regularisers as calls, and the text checks.
    let regularised: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap_or_default())
        .filter(|t| t.contains("zoneout(") || t.contains("dropout("))
        .collect();
    assert!(!regularised.is_empty(), "no regularised cell in the report");
    for text in &regularised {
        let (ws, checked) = support::check_text("mutant.cell", text);
        assert!(!checked.has_errors(), "{text}\n{}", support::render(&ws, &checked));
    }
}

#[test]
fn a_bidirectional_search_trains_its_question_tasks_bidirectional() {
    let dir = support::scratch("bidirectional");
    let store = dir.join("s.sqlite");
    let o = run_ok(search(&store, 2, &["--bidirectional", "--json"]));
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let board = summary["leaderboard"].as_array().unwrap();
    assert!(board.iter().any(|c| c["runs"].as_u64() > Some(0)), "{board:?}");
    // Every stored run: arith and memorize with a bidirectional lower layer, xml one-directional.
    let mut s = Store::open(&store).unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for e in s.experiments().unwrap() {
        for j in s.jobs(&e).unwrap() {
            let spec: serde_json::Value = serde_json::from_str(&j.spec).unwrap();
            let config = &spec["config"];
            let kind = config["task"]["name"].to_string();
            let question = kind.contains("arith") || kind.contains("memorize");
            assert_eq!(config["bidirectional"].as_bool(), Some(question), "{kind}: {config}");
            assert!(!question || config["layers"].as_u64() >= Some(2), "{config}");
            seen.insert(kind);
        }
    }
    assert!(seen.len() >= 2, "runs of a question task and of xml: {seen:?}");
}
