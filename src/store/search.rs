//! The architecture search's tables in the SQLite store: searches, planning rounds, candidates,
//! and jobs (one training run each) that worker processes claim under a lease.
//!
//! The work queue is the `jobs` table. A worker claims the oldest job that is queued or whose
//! lease has expired (`BEGIN IMMEDIATE` makes the claim atomic across processes), renews its
//! lease while training, and records the result only if it still holds the lease; so a killed
//! worker's job is redone once by another, and a finished job is never trained again.

use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::{ExperimentStore, Store};

/// One experiment: a search, a study or a comparison.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExperimentRow {
    pub name: String,
    /// `search`, `study` or `compare`.
    pub kind: String,
    /// Its options (JSON), fixed at creation so a resumed experiment plans the same way.
    pub config: String,
    /// `running` or `done`.
    pub state: String,
    pub created_ms: i64,
}

/// What one planning round did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoundRow {
    pub round: i64,
    /// Mutants drawn, mutants rejected as invalid, and mutants skipped as duplicates of a
    /// candidate already in the search.
    pub generated: i64,
    pub rejected: i64,
    pub duplicates: i64,
    pub planned_ms: i64,
}

/// A candidate cell.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CandidateRow {
    pub id: i64,
    pub hash: String,
    pub name: String,
    pub parent: Option<i64>,
    /// The mutation that made it from its parent (empty for the seed cells).
    pub mutation: String,
    pub source: String,
    pub round: i64,
}

/// A training run to do, being done, or done.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobRow {
    pub id: i64,
    pub search: String,
    pub candidate: i64,
    pub task: String,
    /// `filter`, `first`, `rest` or `baseline`.
    pub stage: String,
    /// The setting's index among the candidate's settings on this task.
    pub setting: i64,
    /// Everything a worker needs (cell source, training config, early-stopping thresholds), JSON.
    pub spec: String,
    pub round: i64,
    pub state: JobState,
    pub worker: Option<String>,
    pub lease_until_ms: i64,
    pub attempts: i64,
    /// The outcome (JSON) once done.
    pub result: Option<String>,
    pub finished_ms: Option<i64>,
}

/// Where a job is in its life: queued, leased to a worker (being trained), or done (its result
/// recorded). Stored as the lowercase word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Queued,
    Leased,
    Done,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Leased => "leased",
            JobState::Done => "done",
        }
    }

    pub fn parse(s: &str) -> Result<JobState, String> {
        match s {
            "queued" => Ok(JobState::Queued),
            "leased" => Ok(JobState::Leased),
            "done" => Ok(JobState::Done),
            other => Err(format!("unknown job state `{other}`")),
        }
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl rusqlite::types::FromSql for JobState {
    fn column_result(v: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<JobState> {
        JobState::parse(v.as_str()?).map_err(|e| rusqlite::types::FromSqlError::Other(e.into()))
    }
}

/// A worker process, as it reports itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkerRow {
    pub id: String,
    pub started_ms: i64,
    pub heartbeat_ms: i64,
    pub jobs_done: i64,
    pub busy_seconds: f64,
}

/// How far a run being trained has come, as its worker last reported.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProgressRow {
    pub job: i64,
    pub worker: String,
    /// When the worker began it, and when it last reported (store clock).
    pub started_ms: i64,
    pub updated_ms: i64,
    /// Its validations so far: a JSON array of `train::EvalRecord`.
    pub points: String,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

const JOB_COLUMNS: &str = "id, search, candidate, task, stage, setting, spec, round, state, worker, lease_until_ms, \
                           attempts, result, finished_ms";

fn job(r: &rusqlite::Row<'_>) -> rusqlite::Result<JobRow> {
    Ok(JobRow {
        id: r.get(0)?,
        search: r.get(1)?,
        candidate: r.get(2)?,
        task: r.get(3)?,
        stage: r.get(4)?,
        setting: r.get(5)?,
        spec: r.get(6)?,
        round: r.get(7)?,
        state: r.get(8)?,
        worker: r.get(9)?,
        lease_until_ms: r.get(10)?,
        attempts: r.get(11)?,
        result: r.get(12)?,
        finished_ms: r.get(13)?,
    })
}

fn err(e: rusqlite::Error) -> String {
    e.to_string()
}

impl ExperimentStore for Store {
    fn describe(&self) -> String {
        self.path.clone()
    }

    fn schema_version(&mut self) -> Result<i64, String> {
        self.conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(err)
    }

    fn now_ms(&mut self) -> Result<i64, String> {
        Ok(now_ms())
    }

    /// One file on one machine: the coordinator's processes are the only writers that plan.
    fn lock_experiment(&mut self, _name: &str) -> Result<(), String> {
        Ok(())
    }

    /// Creates an experiment; an existing one of the same name is an error (resume it instead).
    fn create_experiment(&mut self, name: &str, kind: &str, config: &str) -> Result<(), String> {
        self.conn
            .execute(
                "INSERT INTO searches (name, kind, config, state, created_ms) VALUES (?1, ?2, ?3, 'running', ?4)",
                params![name, kind, config, now_ms()],
            )
            .map(|_| ())
            .map_err(|e| match e {
                rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
                    format!("the store already has an experiment named `{name}` (use --resume, or another --name)")
                }
                e => e.to_string(),
            })
    }

    fn experiment(&mut self, name: &str) -> Result<Option<ExperimentRow>, String> {
        self.conn
            .query_row("SELECT name, kind, config, state, created_ms FROM searches WHERE name = ?1", [name], |r| {
                Ok(ExperimentRow {
                    name: r.get(0)?,
                    kind: r.get(1)?,
                    config: r.get(2)?,
                    state: r.get(3)?,
                    created_ms: r.get(4)?,
                })
            })
            .optional()
            .map_err(err)
    }

    /// The names of the store's experiments, oldest first.
    fn experiments(&mut self) -> Result<Vec<String>, String> {
        let mut stmt = self.conn.prepare("SELECT name FROM searches ORDER BY created_ms").map_err(err)?;
        let rows = stmt.query_map([], |r| r.get(0)).map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    /// Whether any experiment is still running (workers wait for work while one is).
    fn any_running(&mut self) -> Result<bool, String> {
        self.conn
            .query_row("SELECT count(*) FROM searches WHERE state = 'running'", [], |r| r.get::<_, i64>(0))
            .map(|n| n > 0)
            .map_err(err)
    }

    fn set_experiment_state(&mut self, name: &str, state: &str) -> Result<(), String> {
        self.conn
            .execute("UPDATE searches SET state = ?2 WHERE name = ?1", params![name, state])
            .map(|_| ())
            .map_err(err)
    }

    fn rounds(&mut self, search: &str) -> Result<Vec<RoundRow>, String> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT round, generated, rejected, duplicates, planned_ms FROM rounds WHERE search = ?1 ORDER BY round",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map([search], |r| {
                Ok(RoundRow {
                    round: r.get(0)?,
                    generated: r.get(1)?,
                    rejected: r.get(2)?,
                    duplicates: r.get(3)?,
                    planned_ms: r.get(4)?,
                })
            })
            .map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    fn candidates(&mut self, search: &str) -> Result<Vec<CandidateRow>, String> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, hash, name, parent, mutation, source, round FROM candidates WHERE search = ?1 ORDER BY id",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map([search], |r| {
                Ok(CandidateRow {
                    id: r.get(0)?,
                    hash: r.get(1)?,
                    name: r.get(2)?,
                    parent: r.get(3)?,
                    mutation: r.get(4)?,
                    source: r.get(5)?,
                    round: r.get(6)?,
                })
            })
            .map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    fn jobs(&mut self, search: &str) -> Result<Vec<JobRow>, String> {
        let mut stmt =
            self.conn.prepare(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE search = ?1 ORDER BY id")).map_err(err)?;
        let rows = stmt.query_map([search], job).map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    /// The largest job id in the store (0 when empty): new jobs are numbered after it.
    fn max_job_id(&mut self) -> Result<i64, String> {
        self.conn.query_row("SELECT coalesce(max(id), 0) FROM jobs", [], |r| r.get(0)).map_err(err)
    }

    /// One job by id (any search).
    fn job(&mut self, id: i64) -> Result<Option<JobRow>, String> {
        self.conn.query_row(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"), [id], job).optional().map_err(err)
    }

    /// Records a planned round with its new candidates and jobs, all or nothing. A round that is
    /// already recorded is left alone (returns false): planning is deterministic, so it was this.
    fn commit_round(
        &mut self,
        search: &str,
        round: &RoundRow,
        candidates: &[CandidateRow],
        jobs: &[JobRow],
    ) -> Result<bool, String> {
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(err)?;
        let exists: Option<i64> = tx
            .query_row("SELECT round FROM rounds WHERE search = ?1 AND round = ?2", params![search, round.round], |r| {
                r.get(0)
            })
            .optional()
            .map_err(err)?;
        if exists.is_some() {
            return Ok(false);
        }
        tx.execute(
            "INSERT INTO rounds (search, round, generated, rejected, duplicates, planned_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![search, round.round, round.generated, round.rejected, round.duplicates, round.planned_ms],
        )
        .map_err(err)?;
        for c in candidates {
            tx.execute(
                "INSERT INTO candidates (id, search, hash, name, parent, mutation, source, round)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![c.id, search, c.hash, c.name, c.parent, c.mutation, c.source, c.round],
            )
            .map_err(err)?;
        }
        for j in jobs {
            tx.execute(
                "INSERT INTO jobs (id, search, candidate, task, stage, setting, spec, round, state, lease_until_ms, attempts)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'queued', 0, 0)",
                params![j.id, search, j.candidate, j.task, j.stage, j.setting, j.spec, j.round],
            )
            .map_err(err)?;
        }
        tx.commit().map_err(err)?;
        Ok(true)
    }

    /// Claims the oldest job of a running search that is queued or whose lease has expired.
    fn claim(&mut self, worker: &str, lease_ms: i64) -> Result<Option<JobRow>, String> {
        let now = now_ms();
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(err)?;
        let found = tx
            .query_row(
                &format!(
                    "SELECT {JOB_COLUMNS} FROM jobs WHERE (state = 'queued' OR (state = 'leased' AND lease_until_ms < ?1))
                     AND search IN (SELECT name FROM searches WHERE state = 'running')
                     ORDER BY round, id LIMIT 1"
                ),
                [now],
                job,
            )
            .optional()
            .map_err(err)?;
        let Some(mut j) = found else { return Ok(None) };
        tx.execute(
            "UPDATE jobs SET state = 'leased', worker = ?2, lease_until_ms = ?3, attempts = attempts + 1 WHERE id = ?1",
            params![j.id, worker, now + lease_ms],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
        j.state = JobState::Leased;
        j.worker = Some(worker.to_string());
        j.lease_until_ms = now + lease_ms;
        j.attempts += 1;
        Ok(Some(j))
    }

    /// Renews a lease; false when the worker no longer holds it (it expired and was re-claimed).
    fn renew(&mut self, job: i64, worker: &str, lease_ms: i64) -> Result<bool, String> {
        self.conn
            .execute(
                "UPDATE jobs SET lease_until_ms = ?3 WHERE id = ?1 AND worker = ?2 AND state = 'leased'",
                params![job, worker, now_ms() + lease_ms],
            )
            .map(|n| n == 1)
            .map_err(err)
    }

    /// Records a job's result if the worker still holds its lease; false otherwise (the result is
    /// dropped: another worker owns the job now). Its progress row goes: the result holds more.
    fn finish(&mut self, job: i64, worker: &str, result: &str) -> Result<bool, String> {
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(err)?;
        let done = tx
            .execute(
                "UPDATE jobs SET state = 'done', result = ?3, finished_ms = ?4
                 WHERE id = ?1 AND worker = ?2 AND state = 'leased'",
                params![job, worker, result, now_ms()],
            )
            .map_err(err)?;
        if done == 1 {
            tx.execute("DELETE FROM progress WHERE job = ?1", [job]).map_err(err)?;
        }
        tx.commit().map_err(err)?;
        Ok(done == 1)
    }

    /// Only while the worker holds the lease; the start time is kept from its first report.
    fn report_progress(&mut self, job: i64, worker: &str, points: &str) -> Result<(), String> {
        let now = now_ms();
        self.conn
            .execute(
                "INSERT INTO progress (job, worker, started_ms, updated_ms, points)
                 SELECT ?1, ?2, ?3, ?3, ?4 WHERE EXISTS
                     (SELECT 1 FROM jobs WHERE id = ?1 AND worker = ?2 AND state = 'leased')
                 ON CONFLICT (job) DO UPDATE SET updated_ms = ?3, points = ?4,
                     started_ms = CASE WHEN progress.worker = ?2 THEN progress.started_ms ELSE ?3 END, worker = ?2",
                params![job, worker, now, points],
            )
            .map(|_| ())
            .map_err(err)
    }

    /// A store of schema version 3 (read by a dashboard) has no progress table: no progress.
    fn progress(&mut self) -> Result<Vec<ProgressRow>, String> {
        let has_table: i64 = self
            .conn
            .query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'progress'", [], |r| {
                r.get(0)
            })
            .map_err(err)?;
        if has_table == 0 {
            return Ok(vec![]);
        }
        let mut stmt = self
            .conn
            .prepare(
                "SELECT p.job, p.worker, p.started_ms, p.updated_ms, p.points FROM progress p
                 JOIN jobs j ON j.id = p.job AND j.worker = p.worker AND j.state = 'leased' ORDER BY p.job",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map([], |r| {
                Ok(ProgressRow {
                    job: r.get(0)?,
                    worker: r.get(1)?,
                    started_ms: r.get(2)?,
                    updated_ms: r.get(3)?,
                    points: r.get(4)?,
                })
            })
            .map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    fn jobs_changed_since(&mut self, finished_after_ms: i64) -> Result<Vec<JobRow>, String> {
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE state != 'done' OR finished_ms >= ?1 ORDER BY id"))
            .map_err(err)?;
        let rows = stmt.query_map([finished_after_ms], job).map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    /// Puts the leased jobs of workers that `dead` says are gone back in the queue at once,
    /// instead of waiting for their leases to expire. Returns how many.
    fn requeue_dead(&mut self, dead: &dyn Fn(&str) -> bool) -> Result<usize, String> {
        let mut stmt = self.conn.prepare("SELECT id, worker FROM jobs WHERE state = 'leased'").map_err(err)?;
        let leased: Vec<(i64, Option<String>)> =
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).map_err(err)?.collect::<Result<_, _>>().map_err(err)?;
        let mut n = 0;
        for (id, worker) in leased {
            if worker.as_deref().is_some_and(dead) {
                n += self
                    .conn
                    .execute(
                        "UPDATE jobs SET state = 'queued', lease_until_ms = 0 WHERE id = ?1 AND state = 'leased'",
                        [id],
                    )
                    .map_err(err)?;
            }
        }
        Ok(n)
    }

    /// A worker says it is alive (and what it has done so far).
    fn worker_beat(&mut self, w: &WorkerRow) -> Result<(), String> {
        self.conn
            .execute(
                "INSERT INTO workers (id, started_ms, heartbeat_ms, jobs_done, busy_seconds) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (id) DO UPDATE SET heartbeat_ms = ?3, jobs_done = ?4, busy_seconds = ?5",
                params![w.id, w.started_ms, w.heartbeat_ms, w.jobs_done, w.busy_seconds],
            )
            .map(|_| ())
            .map_err(err)
    }

    fn workers(&mut self) -> Result<Vec<WorkerRow>, String> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, started_ms, heartbeat_ms, jobs_done, busy_seconds FROM workers ORDER BY started_ms")
            .map_err(err)?;
        let rows = stmt
            .query_map([], |r| {
                Ok(WorkerRow {
                    id: r.get(0)?,
                    started_ms: r.get(1)?,
                    heartbeat_ms: r.get(2)?,
                    jobs_done: r.get(3)?,
                    busy_seconds: r.get(4)?,
                })
            })
            .map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }
}

#[cfg(test)]
#[path = "search_tests.rs"]
mod tests;
