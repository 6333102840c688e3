//! The experiments' store as one trait, so coordinators, workers and reports never know which
//! database they talk to: SQLite (one file, embedded, the default) or, for experiments across
//! machines, PostgreSQL. Both keep the same tables and the same lease protocol. (The tables keep
//! their first names: an experiment is a row of `searches`.)

use super::{CandidateRow, ExperimentRow, JobRow, ProgressRow, RoundRow, WorkerRow};

/// What an experiment (a search, a study, a comparison) and its workers need from the store.
pub trait ExperimentStore {
    /// Where the store is, for messages (never a password).
    fn describe(&self) -> String;
    /// The schema version the store is at (the number of migrations applied).
    fn schema_version(&mut self) -> Result<i64, String>;
    /// The store's clock, in milliseconds since the Unix epoch. Leases and heartbeats use it, so
    /// workers on machines whose clocks disagree still agree on when a lease has run out.
    fn now_ms(&mut self) -> Result<i64, String>;
    /// Makes this connection the only coordinator of the experiment until it closes; an error
    /// when another process coordinates it already.
    fn lock_experiment(&mut self, name: &str) -> Result<(), String>;
    /// Creates an experiment of `kind`; an existing one of the same name is an error.
    fn create_experiment(&mut self, name: &str, kind: &str, config: &str) -> Result<(), String>;
    fn experiment(&mut self, name: &str) -> Result<Option<ExperimentRow>, String>;
    /// The experiments' names, oldest first.
    fn experiments(&mut self) -> Result<Vec<String>, String>;
    /// Whether any experiment is still running.
    fn any_running(&mut self) -> Result<bool, String>;
    fn set_experiment_state(&mut self, name: &str, state: &str) -> Result<(), String>;
    fn rounds(&mut self, search: &str) -> Result<Vec<RoundRow>, String>;
    fn candidates(&mut self, search: &str) -> Result<Vec<CandidateRow>, String>;
    fn jobs(&mut self, search: &str) -> Result<Vec<JobRow>, String>;
    /// One job by id (any experiment).
    fn job(&mut self, id: i64) -> Result<Option<JobRow>, String>;
    /// The largest job id (0 when there is none).
    fn max_job_id(&mut self) -> Result<i64, String>;
    /// Records a planned round with its candidates and jobs, all or nothing; false when the
    /// round was already recorded.
    fn commit_round(
        &mut self,
        search: &str,
        round: &RoundRow,
        candidates: &[CandidateRow],
        jobs: &[JobRow],
    ) -> Result<bool, String>;
    /// Claims the oldest job of a running search that is queued or whose lease has expired.
    fn claim(&mut self, worker: &str, lease_ms: i64) -> Result<Option<JobRow>, String>;
    /// Renews a lease; false when the worker no longer holds it.
    fn renew(&mut self, job: i64, worker: &str, lease_ms: i64) -> Result<bool, String>;
    /// Records a result if the worker still holds the lease; false otherwise.
    fn finish(&mut self, job: i64, worker: &str, result: &str) -> Result<bool, String>;
    /// Records how far a leased job has come (its validations so far, JSON); nothing when the
    /// worker no longer holds the lease.
    fn report_progress(&mut self, job: i64, worker: &str, points: &str) -> Result<(), String>;
    /// The progress of every job being trained now (leased, by the worker that reported it).
    fn progress(&mut self) -> Result<Vec<ProgressRow>, String>;
    /// Every job of every experiment that is not done, and every done job finished at or after
    /// `finished_after_ms` (store clock): what a reader holding the older done jobs (which never
    /// change) needs to be current.
    fn jobs_changed_since(&mut self, finished_after_ms: i64) -> Result<Vec<JobRow>, String>;
    /// Puts the leased jobs of workers `dead` names back in the queue; returns how many.
    fn requeue_dead(&mut self, dead: &dyn Fn(&str) -> bool) -> Result<usize, String>;
    /// A worker's heartbeat.
    fn worker_beat(&mut self, w: &WorkerRow) -> Result<(), String>;
    fn workers(&mut self) -> Result<Vec<WorkerRow>, String>;
}
