//! The SQLite store's queue protocol, tested on an in-memory store: claims, leases, late
//! results, dead workers' jobs, and runs' progress.

use super::*;

fn job_row(id: i64, round: i64) -> JobRow {
    JobRow {
        id,
        search: "s".into(),
        candidate: 1,
        task: "arith".into(),
        stage: "first".into(),
        setting: 0,
        spec: "{}".into(),
        round,
        state: JobState::Queued,
        worker: None,
        lease_until_ms: 0,
        attempts: 0,
        result: None,
        finished_ms: None,
    }
}

fn round(r: i64) -> RoundRow {
    RoundRow { round: r, generated: 0, rejected: 0, duplicates: 0, planned_ms: 0 }
}

#[test]
fn jobs_are_claimed_once_leases_expire_and_late_results_are_dropped() {
    let mut s = Store::memory().unwrap();
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
    assert!(s.commit_round("s", &round(0), &[cand], &[job_row(1, 0), job_row(2, 0)]).unwrap());
    assert!(!s.commit_round("s", &round(0), &[], &[]).unwrap(), "a round is recorded once");
    let a = s.claim("w1", 60_000).unwrap().unwrap();
    let b = s.claim("w2", 60_000).unwrap().unwrap();
    assert_ne!(a.id, b.id);
    assert!(s.claim("w3", 60_000).unwrap().is_none());
    assert!(s.finish(a.id, "w1", "{}").unwrap());
    assert!(!s.finish(a.id, "w1", "{}").unwrap(), "done once");
    // w2's lease runs out; w3 takes the job over and w2's late result is dropped.
    s.conn.execute("UPDATE jobs SET lease_until_ms = 0 WHERE id = ?1", [b.id]).unwrap();
    let c = s.claim("w3", 60_000).unwrap().unwrap();
    assert_eq!((c.id, c.attempts), (b.id, 2));
    assert!(!s.renew(b.id, "w2", 1000).unwrap());
    assert!(!s.finish(b.id, "w2", "{}").unwrap());
    assert!(s.finish(b.id, "w3", "{}").unwrap());
    assert!(s.jobs("s").unwrap().iter().all(|j| j.state == JobState::Done));
}

#[test]
fn jobs_of_dead_workers_go_back_to_the_queue() {
    let mut s = Store::memory().unwrap();
    s.create_experiment("s", "search", "{}").unwrap();
    s.commit_round("s", &round(0), &[], &[job_row(1, 0)]).unwrap();
    s.claim("dead", 60_000).unwrap().unwrap();
    assert_eq!(s.requeue_dead(&|w| w == "dead").unwrap(), 1);
    assert_eq!(s.claim("alive", 60_000).unwrap().unwrap().id, 1);
}

#[test]
fn progress_is_kept_while_the_lease_is_held_and_goes_with_the_result() {
    let mut s = Store::memory().unwrap();
    s.create_experiment("s", "search", "{}").unwrap();
    assert!(s.commit_round("s", &round(0), &[], &[job_row(1, 0), job_row(2, 0)]).unwrap());
    let a = s.claim("w1", 60_000).unwrap().unwrap();
    s.report_progress(a.id, "w1", "[]").unwrap();
    let first = s.progress().unwrap();
    assert_eq!(first.len(), 1);
    s.report_progress(a.id, "w1", "[1]").unwrap();
    s.report_progress(a.id, "w2", "[2]").unwrap(); // not its lease: ignored
    s.report_progress(2, "w1", "[3]").unwrap(); // queued, not leased: ignored
    let now = s.progress().unwrap();
    assert_eq!(now.len(), 1);
    assert_eq!((now[0].job, now[0].worker.as_str(), now[0].points.as_str()), (a.id, "w1", "[1]"));
    assert_eq!(now[0].started_ms, first[0].started_ms, "the start is kept from the first report");
    let open = s.jobs_changed_since(i64::MAX).unwrap();
    assert_eq!(open.len(), 2, "jobs not done are always read");
    assert!(s.finish(a.id, "w1", "{}").unwrap());
    assert!(s.progress().unwrap().is_empty(), "the result replaces the progress");
    assert_eq!(s.jobs_changed_since(i64::MAX).unwrap().len(), 1, "a job done before the time is not read again");
    assert_eq!(s.jobs_changed_since(0).unwrap().len(), 2);
}
