//! The search store in PostgreSQL, for searches across machines: the coordinator and every
//! worker connect to one database. Same tables and lease protocol as the SQLite store; a job is
//! claimed with `FOR UPDATE SKIP LOCKED` (claims never wait on each other), and leases and
//! heartbeats run on the database server's clock, so machines need not agree on the time.

mod connect;
mod schema;
mod tls;

pub use connect::{SslMode, Target, is_url};

use postgres::Client;
use postgres::error::SqlState;
use postgres::types::ToSql;

use super::{
    Access, CandidateRow, ExperimentRow, ExperimentStore, JobRow, ProgressRow, RoundRow, SCHEMA_VERSION, WorkerRow,
    version_gate,
};

/// The server's clock in milliseconds since the Unix epoch.
const NOW: &str = "(extract(epoch from clock_timestamp()) * 1000)::bigint";

const JOB_COLUMNS: &str = "id, search, candidate, task, stage, setting, spec, round, state, worker, lease_until_ms, \
                           attempts, result, finished_ms";

/// An open PostgreSQL store.
pub struct PgStore {
    client: Client,
    /// The URL without its password.
    describe: String,
}

/// A driver error as one line: the server's message (and hint) when it sent one, else the
/// error and its causes.
pub fn error_text(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut text = format!("{}: {}", db.severity(), db.message());
        if let Some(hint) = db.hint() {
            text += &format!(" ({hint})");
        }
        return text;
    }
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        text += &format!(": {c}");
        cause = c.source();
    }
    text
}

fn err(e: postgres::Error) -> String {
    error_text(&e)
}

impl PgStore {
    /// Connects to the database `url` names (see [`Target::parse`] for the environment it reads)
    /// and brings its schema to this cellc's version as `access` allows.
    pub fn open(url: &str, access: Access) -> Result<PgStore, String> {
        let mut target = Target::parse(url, &|k| std::env::var(k).ok())?;
        let describe = target.describe();
        if access == Access::ReadOnly {
            // Every transaction of this session is read-only, and none can linger holding back
            // VACUUM or a migration's lock.
            target.config.options(
                "-c default_transaction_read_only=on -c statement_timeout=10000 \
                 -c idle_in_transaction_session_timeout=10000",
            );
        }
        let client = target.connect()?;
        let mut store = PgStore { client, describe };
        let checked = if access == Access::ReadOnly { store.check_version() } else { store.migrate(access) };
        checked.map_err(|e| format!("{}: {e}", store.describe))?;
        Ok(store)
    }

    /// A reader's check: the schema is one it reads (nothing is created or migrated).
    fn check_version(&mut self) -> Result<(), String> {
        let has_schema: bool = self
            .client
            .query_one("SELECT to_regclass('cellc_schema') IS NOT NULL", &[])
            .and_then(|r| r.try_get(0))
            .map_err(err)?;
        if !has_schema {
            return Err("this database is not a cellc store (it has no cellc tables)".into());
        }
        let found = self.schema_version()?;
        if found == 0 {
            return Err("this database is not a cellc store (it has no cellc tables)".into());
        }
        version_gate(found, Access::ReadOnly, &self.describe).map(|_| ())
    }

    fn migrate(&mut self, access: Access) -> Result<(), String> {
        let describe = self.describe.clone();
        let mut tx = self.client.transaction().map_err(err)?;
        // One process migrates at a time; the lock ends with the transaction.
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&schema::MIGRATION_LOCK]).map_err(err)?;
        tx.batch_execute(schema::VERSION_TABLE).map_err(err)?;
        let found: Option<i64> =
            tx.query_opt("SELECT version FROM cellc_schema", &[]).map_err(err)?.map(|r| r.get::<_, i64>(0));
        if found.is_none() {
            tx.execute("INSERT INTO cellc_schema (version) VALUES (0)", &[]).map_err(err)?;
        }
        let found = found.unwrap_or(0);
        if !version_gate(found, access, &describe)? {
            return tx.commit().map_err(err);
        }
        for (i, migration) in schema::MIGRATIONS.iter().enumerate().skip(found as usize) {
            tx.batch_execute(migration).map_err(|e| format!("migration {} failed: {}", i + 1, error_text(&e)))?;
        }
        tx.execute("UPDATE cellc_schema SET version = $1", &[&SCHEMA_VERSION]).map_err(err)?;
        tx.commit().map_err(err)
    }

    fn count(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<bool, String> {
        self.client.execute(sql, params).map(|n| n == 1).map_err(err)
    }
}

impl<'a> postgres::types::FromSql<'a> for super::JobState {
    fn from_sql(ty: &postgres::types::Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(super::JobState::parse(<&str>::from_sql(ty, raw)?)?)
    }

    fn accepts(ty: &postgres::types::Type) -> bool {
        <&str as postgres::types::FromSql>::accepts(ty)
    }
}

fn job(r: &postgres::Row) -> Result<JobRow, postgres::Error> {
    Ok(JobRow {
        id: r.try_get(0)?,
        search: r.try_get(1)?,
        candidate: r.try_get(2)?,
        task: r.try_get(3)?,
        stage: r.try_get(4)?,
        setting: r.try_get(5)?,
        spec: r.try_get(6)?,
        round: r.try_get(7)?,
        state: r.try_get(8)?,
        worker: r.try_get(9)?,
        lease_until_ms: r.try_get(10)?,
        attempts: r.try_get(11)?,
        result: r.try_get(12)?,
        finished_ms: r.try_get(13)?,
    })
}

/// A stable advisory-lock key for a search's coordinator (FNV-1a of its name).
fn search_lock_key(name: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in "cellc search ".bytes().chain(name.bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h as i64
}

impl ExperimentStore for PgStore {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn schema_version(&mut self) -> Result<i64, String> {
        self.client.query_one("SELECT version FROM cellc_schema", &[]).and_then(|r| r.try_get(0)).map_err(err)
    }

    fn now_ms(&mut self) -> Result<i64, String> {
        self.client.query_one(&format!("SELECT {NOW}"), &[]).and_then(|r| r.try_get(0)).map_err(err)
    }

    /// A session advisory lock: the server drops it when the coordinator's connection ends, so a
    /// killed coordinator never leaves its search locked.
    fn lock_experiment(&mut self, name: &str) -> Result<(), String> {
        let got: bool = self
            .client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&search_lock_key(name)])
            .and_then(|r| r.try_get(0))
            .map_err(err)?;
        if got {
            Ok(())
        } else {
            Err(format!(
                "another `cellc search` is coordinating `{name}` in {} (one coordinator per search; add machines \
                 with `cellc worker --store ...`)",
                self.describe
            ))
        }
    }

    fn create_experiment(&mut self, name: &str, kind: &str, config: &str) -> Result<(), String> {
        let sql = format!(
            "INSERT INTO searches (name, kind, config, state, created_ms) VALUES ($1, $2, $3, 'running', {NOW})"
        );
        match self.client.execute(&sql, &[&name, &kind, &config]) {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                Err(format!("the store already has an experiment named `{name}` (use --resume, or another --name)"))
            }
            Err(e) => Err(err(e)),
        }
    }

    fn experiment(&mut self, name: &str) -> Result<Option<ExperimentRow>, String> {
        let row = self
            .client
            .query_opt("SELECT name, kind, config, state, created_ms FROM searches WHERE name = $1", &[&name])
            .map_err(err)?;
        row.map(|r| {
            Ok(ExperimentRow {
                name: r.try_get(0)?,
                kind: r.try_get(1)?,
                config: r.try_get(2)?,
                state: r.try_get(3)?,
                created_ms: r.try_get(4)?,
            })
        })
        .transpose()
        .map_err(err)
    }

    fn experiments(&mut self) -> Result<Vec<String>, String> {
        let rows = self.client.query("SELECT name FROM searches ORDER BY created_ms, name", &[]).map_err(err)?;
        rows.iter().map(|r| r.try_get(0)).collect::<Result<_, _>>().map_err(err)
    }

    fn any_running(&mut self) -> Result<bool, String> {
        let n: i64 = self
            .client
            .query_one("SELECT count(*) FROM searches WHERE state = 'running'", &[])
            .and_then(|r| r.try_get(0))
            .map_err(err)?;
        Ok(n > 0)
    }

    fn set_experiment_state(&mut self, name: &str, state: &str) -> Result<(), String> {
        self.client.execute("UPDATE searches SET state = $2 WHERE name = $1", &[&name, &state]).map(|_| ()).map_err(err)
    }

    fn rounds(&mut self, search: &str) -> Result<Vec<RoundRow>, String> {
        let rows = self
            .client
            .query(
                "SELECT round, generated, rejected, duplicates, planned_ms FROM rounds WHERE search = $1 ORDER BY round",
                &[&search],
            )
            .map_err(err)?;
        rows.iter()
            .map(|r| {
                Ok(RoundRow {
                    round: r.try_get(0)?,
                    generated: r.try_get(1)?,
                    rejected: r.try_get(2)?,
                    duplicates: r.try_get(3)?,
                    planned_ms: r.try_get(4)?,
                })
            })
            .collect::<Result<_, postgres::Error>>()
            .map_err(err)
    }

    fn candidates(&mut self, search: &str) -> Result<Vec<CandidateRow>, String> {
        let rows = self
            .client
            .query(
                "SELECT id, hash, name, parent, mutation, source, round FROM candidates WHERE search = $1 ORDER BY id",
                &[&search],
            )
            .map_err(err)?;
        rows.iter()
            .map(|r| {
                Ok(CandidateRow {
                    id: r.try_get(0)?,
                    hash: r.try_get(1)?,
                    name: r.try_get(2)?,
                    parent: r.try_get(3)?,
                    mutation: r.try_get(4)?,
                    source: r.try_get(5)?,
                    round: r.try_get(6)?,
                })
            })
            .collect::<Result<_, postgres::Error>>()
            .map_err(err)
    }

    fn jobs(&mut self, search: &str) -> Result<Vec<JobRow>, String> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE search = $1 ORDER BY id");
        let rows = self.client.query(&sql, &[&search]).map_err(err)?;
        rows.iter().map(job).collect::<Result<_, _>>().map_err(err)
    }

    fn job(&mut self, id: i64) -> Result<Option<JobRow>, String> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1");
        let row = self.client.query_opt(&sql, &[&id]).map_err(err)?;
        row.as_ref().map(job).transpose().map_err(err)
    }

    fn max_job_id(&mut self) -> Result<i64, String> {
        self.client
            .query_one("SELECT coalesce(max(id), 0)::bigint FROM jobs", &[])
            .and_then(|r| r.try_get(0))
            .map_err(err)
    }

    fn commit_round(
        &mut self,
        search: &str,
        round: &RoundRow,
        candidates: &[CandidateRow],
        jobs: &[JobRow],
    ) -> Result<bool, String> {
        let mut tx = self.client.transaction().map_err(err)?;
        let exists = tx
            .query_opt("SELECT round FROM rounds WHERE search = $1 AND round = $2", &[&search, &round.round])
            .map_err(err)?;
        if exists.is_some() {
            return Ok(false);
        }
        tx.execute(
            "INSERT INTO rounds (search, round, generated, rejected, duplicates, planned_ms) VALUES ($1, $2, $3, $4, $5, $6)",
            &[&search, &round.round, &round.generated, &round.rejected, &round.duplicates, &round.planned_ms],
        )
        .map_err(err)?;
        let insert_candidate = tx
            .prepare(
                "INSERT INTO candidates (id, search, hash, name, parent, mutation, source, round)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .map_err(err)?;
        for c in candidates {
            tx.execute(
                &insert_candidate,
                &[&c.id, &search, &c.hash, &c.name, &c.parent, &c.mutation, &c.source, &c.round],
            )
            .map_err(err)?;
        }
        let insert_job = tx
            .prepare(
                "INSERT INTO jobs (id, search, candidate, task, stage, setting, spec, round, state, lease_until_ms, attempts)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'queued', 0, 0)",
            )
            .map_err(err)?;
        for j in jobs {
            tx.execute(&insert_job, &[&j.id, &search, &j.candidate, &j.task, &j.stage, &j.setting, &j.spec, &j.round])
                .map_err(err)?;
        }
        tx.commit().map_err(err)?;
        Ok(true)
    }

    /// One statement: pick the oldest claimable job, skipping rows another worker is claiming
    /// right now, and lease it.
    fn claim(&mut self, worker: &str, lease_ms: i64) -> Result<Option<JobRow>, String> {
        let sql = format!(
            "UPDATE jobs SET state = 'leased', worker = $1, lease_until_ms = {NOW} + $2, attempts = attempts + 1
             WHERE id = (
                 SELECT id FROM jobs
                 WHERE (state = 'queued' OR (state = 'leased' AND lease_until_ms < {NOW}))
                   AND search IN (SELECT name FROM searches WHERE state = 'running')
                 ORDER BY round, id LIMIT 1
                 FOR UPDATE SKIP LOCKED)
             RETURNING {JOB_COLUMNS}"
        );
        let row = self.client.query_opt(&sql, &[&worker, &lease_ms]).map_err(err)?;
        row.as_ref().map(job).transpose().map_err(err)
    }

    fn renew(&mut self, job: i64, worker: &str, lease_ms: i64) -> Result<bool, String> {
        let sql =
            format!("UPDATE jobs SET lease_until_ms = {NOW} + $3 WHERE id = $1 AND worker = $2 AND state = 'leased'");
        self.count(&sql, &[&job, &worker, &lease_ms])
    }

    /// The result and the end of the job's progress row, in one statement.
    fn finish(&mut self, job: i64, worker: &str, result: &str) -> Result<bool, String> {
        let sql = format!(
            "WITH done AS (UPDATE jobs SET state = 'done', result = $3, finished_ms = {NOW}
                           WHERE id = $1 AND worker = $2 AND state = 'leased' RETURNING id),
                  gone AS (DELETE FROM progress WHERE job IN (SELECT id FROM done))
             SELECT count(*) FROM done"
        );
        let n: i64 = self.client.query_one(&sql, &[&job, &worker, &result]).and_then(|r| r.try_get(0)).map_err(err)?;
        Ok(n == 1)
    }

    fn report_progress(&mut self, job: i64, worker: &str, points: &str) -> Result<(), String> {
        let sql = format!(
            "INSERT INTO progress (job, worker, started_ms, updated_ms, points)
             SELECT $1, $2, {NOW}, {NOW}, $3 WHERE EXISTS
                 (SELECT 1 FROM jobs WHERE id = $1 AND worker = $2 AND state = 'leased')
             ON CONFLICT (job) DO UPDATE SET updated_ms = excluded.updated_ms, points = excluded.points,
                 started_ms = CASE WHEN progress.worker = excluded.worker THEN progress.started_ms
                                   ELSE excluded.started_ms END,
                 worker = excluded.worker"
        );
        self.client.execute(&sql, &[&job, &worker, &points]).map(|_| ()).map_err(err)
    }

    /// A store of schema version 3 (read by a dashboard) has no progress table: no progress.
    fn progress(&mut self) -> Result<Vec<ProgressRow>, String> {
        let has_table: bool = self
            .client
            .query_one("SELECT to_regclass('progress') IS NOT NULL", &[])
            .and_then(|r| r.try_get(0))
            .map_err(err)?;
        if !has_table {
            return Ok(vec![]);
        }
        let rows = self
            .client
            .query(
                "SELECT p.job, p.worker, p.started_ms, p.updated_ms, p.points FROM progress p
                 JOIN jobs j ON j.id = p.job AND j.worker = p.worker AND j.state = 'leased' ORDER BY p.job",
                &[],
            )
            .map_err(err)?;
        rows.iter()
            .map(|r| {
                Ok(ProgressRow {
                    job: r.try_get(0)?,
                    worker: r.try_get(1)?,
                    started_ms: r.try_get(2)?,
                    updated_ms: r.try_get(3)?,
                    points: r.try_get(4)?,
                })
            })
            .collect::<Result<_, postgres::Error>>()
            .map_err(err)
    }

    fn jobs_changed_since(&mut self, finished_after_ms: i64) -> Result<Vec<JobRow>, String> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE state != 'done' OR finished_ms >= $1 ORDER BY id");
        let rows = self.client.query(&sql, &[&finished_after_ms]).map_err(err)?;
        rows.iter().map(job).collect::<Result<_, _>>().map_err(err)
    }

    fn requeue_dead(&mut self, dead: &dyn Fn(&str) -> bool) -> Result<usize, String> {
        let rows = self.client.query("SELECT id, worker FROM jobs WHERE state = 'leased'", &[]).map_err(err)?;
        let mut n = 0;
        for r in rows {
            let (id, worker): (i64, Option<String>) = (r.try_get(0).map_err(err)?, r.try_get(1).map_err(err)?);
            if let Some(w) = worker.filter(|w| dead(w)) {
                let sql = "UPDATE jobs SET state = 'queued', lease_until_ms = 0 WHERE id = $1 AND state = 'leased' AND worker = $2";
                n += usize::from(self.count(sql, &[&id, &w])?);
            }
        }
        Ok(n)
    }

    /// Start and heartbeat times are the server's.
    fn worker_beat(&mut self, w: &WorkerRow) -> Result<(), String> {
        let sql = format!(
            "INSERT INTO workers (id, started_ms, heartbeat_ms, jobs_done, busy_seconds) VALUES ($1, {NOW}, {NOW}, $2, $3)
             ON CONFLICT (id) DO UPDATE SET heartbeat_ms = {NOW}, jobs_done = $2, busy_seconds = $3"
        );
        self.client.execute(&sql, &[&w.id, &w.jobs_done, &w.busy_seconds]).map(|_| ()).map_err(err)
    }

    fn workers(&mut self) -> Result<Vec<WorkerRow>, String> {
        let rows = self
            .client
            .query(
                "SELECT id, started_ms, heartbeat_ms, jobs_done, busy_seconds FROM workers ORDER BY started_ms, id",
                &[],
            )
            .map_err(err)?;
        rows.iter()
            .map(|r| {
                Ok(WorkerRow {
                    id: r.try_get(0)?,
                    started_ms: r.try_get(1)?,
                    heartbeat_ms: r.try_get(2)?,
                    jobs_done: r.try_get(3)?,
                    busy_seconds: r.try_get(4)?,
                })
            })
            .collect::<Result<_, postgres::Error>>()
            .map_err(err)
    }
}
