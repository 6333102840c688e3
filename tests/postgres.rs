//! The search on a real PostgreSQL server (started by `support::pg_server`, TLS and passwords on):
//! a coordinator and several `cellc worker`s, workers SIGKILLed mid-run and the coordinator three
//! times (at moments set by progress seen in the store, not by the clock), finish every run exactly
//! once with the results of a one-worker SQLite search; concurrent claims never hand a job out
//! twice; leases expire; schema versions are enforced; passwords never show up in output or process
//! lists; bad URLs get a one-line error.

mod support;

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use cellc::store::postgres::PgStore;
use cellc::store::{Access, CandidateRow, ExperimentStore, JobRow, JobState, RoundRow, Store};
use support::pg_server::{PASSWORD, PgServer};
use support::small_search::{cellc, results, run_ok, search};

/// Opens the store through the library, the password in the URL.
fn open(server: &PgServer, db: &str, access: Access) -> PgStore {
    PgStore::open(&server.url_with_password(db), access).unwrap_or_else(|e| panic!("{e}"))
}

/// A `cellc worker` printing a line per recorded run into `log`; password from PGPASSWORD.
fn worker(server: &PgServer, db: &str, log: &Path) -> Child {
    cellc()
        .args(["worker", "--lease", "2", "-v", "--store", &server.url(db)])
        .env("PGPASSWORD", PASSWORD)
        .stdout(Stdio::null())
        .stderr(File::create(log).unwrap())
        .spawn()
        .unwrap()
}

/// Every process's command line on this machine, to look for a leaked password.
fn command_lines() -> String {
    let mut all = String::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(bytes) = std::fs::read(e.path().join("cmdline")) {
            all += &String::from_utf8_lossy(&bytes).replace('\0', " ");
            all.push('\n');
        }
    }
    all
}

#[test]
fn workers_killed_mid_run_finish_every_run_once_with_the_single_machine_results() {
    // The single-machine answer: one worker, SQLite, the same options and seed.
    let dir = support::scratch("kills");
    let sqlite = dir.join("reference.sqlite");
    run_ok(search(&sqlite, 1, &[]));
    let want = results(&mut Store::open(&sqlite).unwrap());
    assert!(want.len() > 10, "the reference search trained {} runs", want.len());

    let server = PgServer::start("kills");
    let db = server.database("cells");
    let coordinator = |resume: bool, n: usize| {
        let mut cmd = search(server.url_with_password(&db), 0, if resume { &["--resume"] } else { &[] });
        cmd.stdout(File::create(dir.join(format!("coordinator{n}.out"))).unwrap());
        cmd.stderr(File::create(dir.join(format!("coordinator{n}.err"))).unwrap());
        cmd.spawn().unwrap()
    };
    // The test's own connection, to time every kill by progress seen in the store, never by the
    // clock, so a faster or slower machine kills at the same points of the search.
    let mut view = open(&server, &db, Access::SameVersion);
    let mut coord = coordinator(false, 0);
    let mut coordinators = 1;
    // Three worker slots. After each newly finished run, one worker that holds a lease (a run in
    // progress) is SIGKILLed and replaced; every kill needs a finished run first, so the search
    // always ends.
    let mut logs = vec![];
    let spawn = |logs: &mut Vec<PathBuf>| {
        let log = dir.join(format!("worker{}.log", logs.len()));
        let child = worker(&server, &db, &log);
        logs.push(log);
        child
    };
    let mut slots: Vec<Child> = (0..3).map(|_| spawn(&mut logs)).collect();
    // The coordinator is killed (and resumed) when the 2nd, 6th and 10th runs have finished; the
    // workers go on with the planned round meanwhile. The search has more than 10 runs.
    let coordinator_kill_at = [2, 6, 10];
    let (mut worker_kills, mut coordinator_kills) = (0, 0);
    let mut killed: Vec<u32> = vec![];
    let mut finished_at_last_kill = 0;
    let mut leaked_check = false;
    let started = Instant::now();
    loop {
        assert!(started.elapsed() < Duration::from_secs(900), "no end after {worker_kills} kills");
        if let Some(status) = coord.try_wait().unwrap() {
            let err = std::fs::read_to_string(dir.join(format!("coordinator{}.err", coordinators - 1))).unwrap();
            assert!(status.success(), "the coordinator failed: {err}");
            break;
        }
        let jobs = view.jobs("search").unwrap();
        let finished = jobs.iter().filter(|j| j.state == JobState::Done).count();
        let holder = |pid: u32| {
            jobs.iter().any(|j| {
                j.state == JobState::Leased && j.worker.as_ref().is_some_and(|w| w.contains(&format!("/{pid}/")))
            })
        };
        if finished > finished_at_last_kill
            && let Some(slot) = slots.iter_mut().find(|w| holder(w.id()))
        {
            killed.push(slot.id());
            slot.kill().unwrap(); // SIGKILL, mid-run
            slot.wait().unwrap();
            worker_kills += 1;
            finished_at_last_kill = finished;
            *slot = spawn(&mut logs);
        }
        if coordinator_kill_at.get(coordinator_kills).is_some_and(|&at| finished >= at) {
            coord.kill().unwrap();
            coord.wait().unwrap();
            coordinator_kills += 1;
            coord = coordinator(true, coordinators);
            coordinators += 1;
        }
        if !leaked_check && jobs.iter().any(|j| j.state == JobState::Leased) {
            leaked_check = true;
            let lines = command_lines();
            let ours: Vec<_> = lines.lines().filter(|l| l.contains("cellc") && l.contains(" worker")).collect();
            assert!(!ours.is_empty(), "no worker process found");
            assert!(ours.iter().all(|l| !l.contains(PASSWORD)), "a worker's command line shows the password");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    for slot in slots.iter_mut() {
        slot.kill().unwrap();
        slot.wait().unwrap();
    }
    eprintln!(
        "{worker_kills} worker kills, {coordinator_kills} coordinator kills, {:.0} s",
        started.elapsed().as_secs_f64()
    );
    assert!(worker_kills > 0 && leaked_check, "no worker was killed during a run");
    assert_eq!(coordinator_kills, coordinator_kill_at.len(), "the coordinator was not killed at every point");

    let mut store = open(&server, &db, Access::SameVersion);
    let jobs = store.jobs("search").unwrap();
    // Every run finished exactly once: each job id appears in exactly one worker's "finished" lines.
    let mut finished: BTreeMap<i64, usize> = BTreeMap::new();
    let mut output = String::new();
    for log in &logs {
        let text = std::fs::read_to_string(log).unwrap();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("run ") {
                let id: i64 = rest.split_whitespace().next().unwrap().parse().unwrap();
                *finished.entry(id).or_default() += 1;
            }
        }
        output += &text;
    }
    for n in 0..coordinators {
        output += &std::fs::read_to_string(dir.join(format!("coordinator{n}.err"))).unwrap();
        output += &std::fs::read_to_string(dir.join(format!("coordinator{n}.out"))).unwrap();
    }
    assert!(!output.contains("panicked"), "{output}");
    assert!(!output.contains(PASSWORD), "the password was printed");
    // A worker killed after its result was stored but before it printed the line is the one
    // exception (the kill was decided on a snapshot taken a moment earlier).
    for j in &jobs {
        let killed_after_storing =
            || j.worker.as_ref().is_some_and(|w| killed.iter().any(|pid| w.contains(&format!("/{pid}/"))));
        assert!(j.state == JobState::Done, "run {} is {:?}", j.id, j.state);
        assert!(finished.contains_key(&j.id) || killed_after_storing(), "run {} not recorded by any worker", j.id);
    }
    let twice: Vec<_> = finished.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "runs recorded more than once: {twice:?}");
    let redone = jobs.iter().filter(|j| j.attempts > 1).count();
    eprintln!("{} runs, {redone} of them claimed again after a kill", jobs.len());
    assert!(redone > 0, "no kill hit a run in progress");
    assert_eq!(results(&mut store), want, "PostgreSQL with kills vs SQLite with one worker");

    // `status` shows the workers and their throughput, without the password.
    let out = run_ok({
        let mut c = cellc();
        c.args(["search", "status", "--json", "--store", &server.url_with_password(&db)]);
        c
    });
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains(PASSWORD));
    let status: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(status["searches"][0]["state"], "done", "{status}");
    let workers = status["workers"].as_array().unwrap();
    assert!(workers.len() >= 3, "{status}");
    assert!(
        workers.iter().any(|w| w["runs"].as_i64() > Some(0) && w["runs_per_hour"].as_f64() > Some(0.0)),
        "{status}"
    );
    assert_eq!(status["searches"][0]["counts"]["jobs_done"].as_u64(), Some(jobs.len() as u64), "{status}");
}

fn job_row(id: i64) -> JobRow {
    JobRow {
        id,
        search: "s".into(),
        candidate: 1,
        task: "arith".into(),
        stage: "first".into(),
        setting: 0,
        spec: "{}".into(),
        round: id / 50,
        state: JobState::Queued,
        worker: None,
        lease_until_ms: 0,
        attempts: 0,
        result: None,
        finished_ms: None,
    }
}

#[test]
fn concurrent_claims_hand_out_each_job_once_and_leases_expire() {
    let server = PgServer::start("claims");
    let db = server.database("claims");
    let mut s = open(&server, &db, Access::Migrate);
    s.create_experiment("s", "search", "{}").unwrap();
    assert!(s.create_experiment("s", "search", "{}").unwrap_err().contains("--resume"));
    let cand = CandidateRow {
        id: 1,
        hash: "h".into(),
        name: "gru".into(),
        parent: None,
        mutation: String::new(),
        source: "cell gru {}".into(),
        round: 0,
    };
    let round = RoundRow { round: 0, generated: 0, rejected: 0, duplicates: 0, planned_ms: 0 };
    let jobs: Vec<JobRow> = (1..=300).map(job_row).collect();
    assert!(s.commit_round("s", &round, &[cand], &jobs).unwrap());
    assert!(!s.commit_round("s", &round, &[], &[]).unwrap(), "a round is recorded once");

    // Six connections claim and finish as fast as they can.
    let claimed: Vec<Vec<i64>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..6)
            .map(|w| {
                let server = &server;
                let db = &db;
                scope.spawn(move || {
                    let mut store = open(server, db, Access::SameVersion);
                    let name = format!("w{w}");
                    let mut mine = vec![];
                    while let Some(j) = store.claim(&name, 60_000).unwrap() {
                        assert!(store.finish(j.id, &name, "{}").unwrap());
                        mine.push(j.id);
                    }
                    mine
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut all: Vec<i64> = claimed.iter().flatten().copied().collect();
    all.sort();
    assert_eq!(all, (1..=300).collect::<Vec<_>>(), "each job claimed exactly once");
    assert!(claimed.iter().filter(|c| !c.is_empty()).count() > 1, "the claims did not overlap");

    // A lease that runs out is taken over; the first worker's late result is dropped.
    s.commit_round("s", &RoundRow { round: 1, ..round }, &[], &[job_row(1000)]).unwrap();
    let a = s.claim("slow", 60_000).unwrap().unwrap();
    assert!(s.claim("other", 60_000).unwrap().is_none(), "leased");
    // A claim run again after its reply was lost with the connection finds the job it leased,
    // without counting a second attempt.
    let again = s.claim("slow", 60_000).unwrap().unwrap();
    assert_eq!((again.id, again.attempts), (a.id, a.attempts));
    // The lease is cut to 1 ms (on the server's clock); wait for the claim to succeed.
    assert!(s.renew(a.id, "slow", 1).unwrap());
    let b = eventually("the lapsed lease to be claimed", || s.claim("other", 60_000).unwrap());
    assert_eq!((b.id, b.attempts), (a.id, 2));
    assert!(!s.renew(a.id, "slow", 1000).unwrap());
    // Progress: kept for the lease holder only, from its first report, until the result.
    s.report_progress(b.id, "other", "[]").unwrap();
    let started = s.progress().unwrap()[0].started_ms;
    s.report_progress(b.id, "other", "[1]").unwrap();
    s.report_progress(b.id, "slow", "[2]").unwrap();
    let now = s.progress().unwrap();
    assert_eq!((now.len(), now[0].points.as_str(), now[0].started_ms), (1, "[1]", started));
    assert_eq!(s.jobs_changed_since(i64::MAX).unwrap().len(), 1, "the job in flight");
    assert!(!s.finish(a.id, "slow", "{}").unwrap());
    assert!(s.finish(b.id, "other", "{}").unwrap());
    // The same statement run again (its reply lost) is still a success; another result is not.
    assert!(s.finish(b.id, "other", "{}").unwrap());
    assert!(!s.finish(b.id, "other", "{\"valid\":1}").unwrap());
    assert!(s.progress().unwrap().is_empty());
    assert!(s.jobs_changed_since(i64::MAX).unwrap().is_empty());
    // A reader's connection cannot write, and creates nothing.
    let mut reader = open(&server, &db, Access::ReadOnly);
    assert_eq!(reader.jobs("s").unwrap().len(), 301);
    let err = reader.create_experiment("r", "search", "{}").unwrap_err();
    assert!(err.contains("read-only"), "{err}");
    let empty = server.database("empty");
    let err = PgStore::open(&server.url_with_password(&empty), Access::ReadOnly).err().unwrap();
    assert!(err.contains("not a cellc store"), "{err}");

    // A second coordinator of the same search is refused while the first is connected.
    s.lock_experiment("s").unwrap();
    let mut second = open(&server, &db, Access::Migrate);
    let err = second.lock_experiment("s").unwrap_err();
    assert!(err.contains("another `cellc search`") && !err.contains(PASSWORD), "{err}");
    drop(s);
    // The server drops the lock when it sees the connection close.
    eventually("the lock to be released", || second.lock_experiment("s").ok());
}

/// Polls `f` until it gives a value (every 20 ms, for at most 300 s): waits for an event, not for
/// a length of time.
fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let t = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(t.elapsed() < Duration::from_secs(300), "waited 300 s for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs cellc and expects exit code 1 with one line of error naming `want`.
fn fails(args: &[&str], env: &[(&str, &str)], want: &str) -> String {
    let out = cellc().args(args).envs(env.iter().copied()).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
    assert!(err.contains(want), "{args:?}: wanted `{want}` in: {err}");
    assert!(!err.contains("panicked") && !err.contains(PASSWORD), "{err}");
    err
}

#[test]
fn schema_versions_credentials_and_tls_are_enforced_with_clear_messages() {
    let server = PgServer::start("versions");
    let db = server.database("versions");
    let url = server.url(&db);
    let pw = [("PGPASSWORD", PASSWORD)];

    // An empty database: a worker sets the schema up and waits for work; status says nothing runs.
    let log = support::scratch("versions").join("worker.log");
    let mut w = worker(&server, &db, &log);
    let mut s = open(&server, &db, Access::SameVersion);
    eventually("the worker's first heartbeat", || (!s.workers().unwrap().is_empty()).then_some(()));
    // A newer cellc migrates the database: the running worker stops with the reason.
    let mut admin = postgres::Client::connect(
        &format!("host={} port={} user=cellc dbname={db}", server.dir.display(), server.port),
        postgres::NoTls,
    )
    .unwrap();
    admin.execute("UPDATE cellc_schema SET version = 99", &[]).unwrap();
    let status = eventually("the worker to notice the migration", || w.try_wait().unwrap());
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(status.code(), Some(1), "{text}");
    assert!(text.contains("schema version 99"), "{text}");
    // A new worker, a coordinator and status refuse that database, naming both versions.
    fails(&["worker", "--store", &url], &pw, "newer than this cellc");
    fails(&["search", "status", "--store", &url], &pw, "newer than this cellc");
    fails(&["search", "--store", &url, "--tasks", "arith"], &pw, "newer than this cellc");
    // An older schema (as version 1 left it: none of the later tables): workers refuse it, a coordinator
    // migrates it.
    admin
        .batch_execute(
            "DROP TABLE searches, rounds, candidates, jobs, workers, progress; UPDATE cellc_schema SET version = 1",
        )
        .unwrap();
    fails(&["worker", "--store", &url], &pw, &format!("needs {}", cellc::store::SCHEMA_VERSION));
    let mut migrated = open(&server, &db, Access::Migrate);
    assert_eq!(migrated.schema_version().unwrap(), cellc::store::SCHEMA_VERSION);

    // Credentials: wrong or missing password, no TLS when the server demands it, no server.
    fails(&["worker", "--store", &url], &[("PGPASSWORD", "wrong")], "password authentication failed");
    let no_tls = format!("{}?sslmode=disable", server.url_with_password(&db));
    fails(&["worker", "--store", &no_tls], &[], "no encryption");
    let verify = format!("{url}?sslmode=verify-full");
    fails(&["worker", "--store", &verify], &pw, "need the server's root certificate");
    // With the test CA as the root: verify-full fails for 127.0.0.1 (the certificate names
    // localhost) and passes for localhost; verify-ca does not check the name.
    let root = server.dir.join("ca.crt");
    let full = format!("{url}?sslmode=verify-full&sslrootcert={}", root.display());
    fails(&["worker", "--store", &full], &pw, "cannot connect");
    let status_ok = |store: &str| {
        let out = cellc().args(["search", "status", "--store", store]).envs(pw).output().unwrap();
        assert!(out.status.success(), "{store}: {}", String::from_utf8_lossy(&out.stderr));
    };
    status_ok(&full.replace("127.0.0.1", "localhost"));
    status_ok(&format!("{url}?sslmode=verify-ca&sslrootcert={}", root.display()));
    fails(
        &["worker", "--store", "postgres://nobody@127.0.0.1:1/x"],
        &[],
        "cannot connect to postgres://nobody@127.0.0.1:1/x",
    );
    fails(&["worker", "--store", "postgres://u@h/d?sslmode=maybe"], &[], "sslmode `maybe`");
}

/// Each job of the one comparison in `store` as ((cell, seed), result without its times).
fn comparison_results(store: &mut dyn ExperimentStore) -> BTreeMap<(i64, i64), String> {
    let name = store.experiments().unwrap().into_iter().find(|n| n.starts_with("compare-")).unwrap();
    store
        .jobs(&name)
        .unwrap()
        .into_iter()
        .map(|j| ((j.candidate, j.setting), support::small_search::timeless(&j.result.expect("every run finished"))))
        .collect()
}

#[test]
fn a_comparison_on_postgres_with_a_worker_killed_equals_the_sqlite_one() {
    let dir = support::scratch("pg-compare");
    let args = |store: &str, workers: &str| -> Vec<String> {
        ["compare", "gru", "tanh_rnn", "--task", "memorize", "--hidden", "8", "--steps", "300", "--eval-every", "100"]
            .into_iter()
            .chain(["--eval-examples", "64", "--seeds", "3", "--lease", "2", "--json", "--store", store])
            .chain(["--workers", workers])
            .map(String::from)
            .collect()
    };
    let sqlite = dir.join("c.sqlite").display().to_string();
    run_ok({
        let mut c = cellc();
        c.args(args(&sqlite, "2"));
        c
    });
    let want = comparison_results(&mut *cellc::store::open_search_store(&sqlite, Access::SameVersion).unwrap());
    assert_eq!(want.len(), 6);

    let server = PgServer::start("compare");
    let db = server.database("compare");
    let mut coordinator = cellc()
        .args(args(&server.url(&db), "0"))
        .env("PGPASSWORD", PASSWORD)
        .stdout(Stdio::null())
        .stderr(File::create(dir.join("coordinator.err")).unwrap())
        .spawn()
        .unwrap();
    let mut workers: Vec<Child> = (0..3).map(|i| worker(&server, &db, &dir.join(format!("w{i}.log")))).collect();
    // Kill the first worker as soon as it holds a lease (a run in progress); the others finish.
    let mut view = open(&server, &db, Access::SameVersion);
    let victim = workers[0].id();
    eventually("the first worker to hold a run", || {
        let names = view.experiments().unwrap();
        let jobs = names.first().map(|n| view.jobs(n).unwrap()).unwrap_or_default();
        jobs.iter()
            .any(|j| {
                j.state == JobState::Leased && j.worker.as_ref().is_some_and(|w| w.contains(&format!("/{victim}/")))
            })
            .then_some(())
    });
    workers[0].kill().unwrap();
    workers[0].wait().unwrap();
    let status = eventually("the comparison to finish", || coordinator.try_wait().unwrap());
    let err = std::fs::read_to_string(dir.join("coordinator.err")).unwrap();
    assert!(status.success(), "{err}");
    for w in workers.iter_mut().skip(1) {
        w.kill().unwrap();
        w.wait().unwrap();
    }
    let got = comparison_results(&mut view);
    assert_eq!(got, want, "PostgreSQL with a killed worker vs SQLite");
    // A dashboard on the database shows the comparison as it shows the SQLite one.
    let name = view.experiments().unwrap().into_iter().next().unwrap();
    let on_sqlite = support::dashboard::Server::start(Path::new(&sqlite), "1");
    let on_pg = support::dashboard::Server::start_url(&server.url_with_password(&db));
    let (a, b) = (on_sqlite.json(&format!("/api/experiments/{name}")), on_pg.json(&format!("/api/experiments/{name}")));
    for key in ["cells", "differences", "seeds", "experiment"] {
        assert_eq!(a[key], b[key], "{key}");
    }
    assert_eq!(on_pg.json("/api/overview")["experiments"][0]["done"], 6);
    let name = view.experiments().unwrap().into_iter().next().unwrap();
    assert!(view.jobs(&name).unwrap().iter().any(|j| j.attempts > 1), "the killed worker's run was redone");
    // The server stops: the dashboard says why it cannot read, keeps what it had, and clears the
    // message when the server is back.
    server.stop();
    let error = eventually("the dashboard to report the lost server", || {
        on_pg.json("/api/overview")["store_error"].as_str().map(str::to_string)
    });
    assert!(error.contains("lost the connection to postgres://") && !error.contains(PASSWORD), "{error}");
    assert_eq!(on_pg.json("/api/overview")["experiments"][0]["done"], 6, "what it read before");
    server.start_again();
    eventually("the dashboard to read again", || on_pg.json("/api/overview")["store_error"].is_null().then_some(()));
}
