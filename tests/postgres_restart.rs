//! The PostgreSQL server stopped and restarted under a running search: the coordinator and the
//! workers wait for it, reconnect and go on, and the search ends with every run recorded once,
//! none redone, and the results of a one-worker SQLite search. A worker allowed only a moment to
//! reconnect gives up with one line. Every wait is for an event (a run finished, a message in a
//! log, a process ending), never for a length of time.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use cellc::store::postgres::PgStore;
use cellc::store::{Access, ExperimentStore, JobState, Store};
use support::pg_server::{PASSWORD, PgServer};
use support::small_search::{cellc, results, run_ok, search};

/// A `cellc worker` logging each recorded run to `log`. Its lease (60 s) outlasts the outages,
/// so a run in flight keeps its lease and no run is redone.
fn worker(server: &PgServer, db: &str, log: &Path, reconnect_secs: &str) -> Child {
    cellc()
        .args(["worker", "--lease", "60", "-v", "--store", &server.url(db)])
        .env("PGPASSWORD", PASSWORD)
        .env("CELLC_PG_RECONNECT", reconnect_secs)
        .stdout(Stdio::null())
        .stderr(File::create(log).unwrap())
        .spawn()
        .unwrap()
}

/// Waits until `ready` holds, polling; the limit only turns a hang into a failure.
fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let started = Instant::now();
    while !ready() {
        assert!(started.elapsed() < Duration::from_secs(600), "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn a_search_goes_on_through_two_server_restarts_and_loses_nothing() {
    let dir = support::scratch("pg-restart");
    let sqlite = dir.join("reference.sqlite");
    run_ok(search(&sqlite, 1, &[]));
    let want = results(&mut Store::open(&sqlite).unwrap());
    assert!(want.len() > 10, "the reference search trained {} runs", want.len());

    let server = PgServer::start("restart");
    let db = server.database("cells");
    let coordinator_err = dir.join("coordinator.err");
    let mut coordinator = search(server.url_with_password(&db), 0, &[]);
    coordinator.env("CELLC_PG_RECONNECT", "300").stdout(Stdio::null());
    coordinator.stderr(File::create(&coordinator_err).unwrap());
    let mut coordinator = coordinator.spawn().unwrap();
    let logs: Vec<PathBuf> = (0..2).map(|i| dir.join(format!("worker{i}.log"))).collect();
    let mut workers: Vec<Child> = logs.iter().map(|log| worker(&server, &db, log, "300")).collect();
    let every_log = || [&coordinator_err].into_iter().chain(&logs).map(|p| read(p)).collect::<Vec<_>>();

    // The outages: when 3 runs have finished and when 8 have, with a run in flight each time.
    let mut outages = 0;
    for at in [3, 8] {
        let mut view = PgStore::open(&server.url_with_password(&db), Access::SameVersion).unwrap();
        wait_for(&format!("{at} finished runs and one in flight"), || {
            let jobs = view.jobs("search").unwrap();
            jobs.iter().filter(|j| j.state == JobState::Done).count() >= at
                && jobs.iter().any(|j| j.state == JobState::Leased)
        });
        drop(view);
        server.stop();
        outages += 1;
        // Every process notices (a worker at its next store call: a claim, a progress report).
        wait_for("every process to notice the server is gone", || {
            every_log().iter().all(|text| text.matches("warning: lost the connection").count() >= outages)
        });
        server.start_again();
        wait_for("every process to reconnect", || {
            every_log().iter().all(|text| text.matches("reconnected to").count() >= outages)
        });
    }
    let mut ended = None;
    wait_for("the search to end", || {
        ended = coordinator.try_wait().unwrap();
        ended.is_some()
    });
    for w in &mut workers {
        w.kill().unwrap();
        w.wait().unwrap();
    }
    let output = every_log().concat();
    assert!(ended.unwrap().success(), "the coordinator failed: {}", read(&coordinator_err));
    assert!(!output.contains("panicked") && !output.contains(PASSWORD), "{output}");

    // Nothing lost, nothing done twice: every job recorded by exactly one worker, none claimed
    // twice, and the numbers those of the one-worker SQLite search.
    let mut store = PgStore::open(&server.url_with_password(&db), Access::SameVersion).unwrap();
    let jobs = store.jobs("search").unwrap();
    let mut recorded: BTreeMap<i64, usize> = BTreeMap::new();
    for line in output.lines() {
        if let Some(rest) = line.strip_prefix("run ") {
            *recorded.entry(rest.split_whitespace().next().unwrap().parse().unwrap()).or_default() += 1;
        }
    }
    let ids: BTreeSet<i64> = jobs.iter().map(|j| j.id).collect();
    assert_eq!(recorded.keys().copied().collect::<BTreeSet<_>>(), ids, "runs no worker recorded");
    assert!(recorded.values().all(|&n| n == 1), "runs recorded twice: {recorded:?}");
    assert!(jobs.iter().all(|j| j.attempts == 1), "a run was claimed again: {:?}", jobs);
    assert_eq!(results(&mut store), want, "PostgreSQL through restarts vs SQLite");
    eprintln!("{} runs through {outages} restarts", jobs.len());

    // A worker allowed 1 s to reconnect gives up with one line and exit 1.
    let log = dir.join("impatient.log");
    let mut impatient = worker(&server, &db, &log, "1");
    wait_for("the impatient worker's first heartbeat", || {
        store.workers().unwrap().len() > 2 // the two workers above, then this one
    });
    server.stop();
    let mut status = None;
    wait_for("the impatient worker to give up", || {
        status = impatient.try_wait().unwrap();
        status.is_some()
    });
    let text = read(&log);
    let last = text.lines().last().unwrap_or("");
    assert_eq!(status.unwrap().code(), Some(1), "{text}");
    assert!(last.starts_with("error: lost the connection to postgres://") && last.contains("within 1 s"), "{text}");
    server.start_again(); // for the server's own clean stop on drop
}

#[test]
fn a_worker_started_while_the_server_is_down_fails_at_once_with_one_line() {
    let server = PgServer::start("down");
    let db = server.database("cells");
    server.stop();
    let out = {
        let mut c = cellc();
        c.args(["worker", "--store", &server.url(&db)]).env("PGPASSWORD", PASSWORD);
        c.output().unwrap()
    };
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("cannot connect to postgres://"), "{err}");
    server.start_again();
}
