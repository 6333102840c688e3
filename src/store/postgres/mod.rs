//! The search store in PostgreSQL, for searches across machines: the coordinator and every
//! worker connect to one database. Same tables and lease protocol as the SQLite store; a job is
//! claimed with `FOR UPDATE SKIP LOCKED` (claims never wait on each other), and leases and
//! heartbeats run on the database server's clock, so machines need not agree on the time.

mod connect;
mod schema;
mod session;
mod tls;

pub use connect::{SslMode, Target, is_url};
pub use session::{connection_lost, report_reconnects_with, stop_reconnecting_when};

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
    /// The connection, which reconnects when the server goes away and comes back.
    session: session::Session,
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
        // Readers (the dashboard) report a lost server at once and try again at their next
        // poll; writers wait for it to come back.
        let session = session::Session::connect(target, access != Access::ReadOnly)?;
        let mut store = PgStore { session, describe };
        let checked = if access == Access::ReadOnly { store.check_version() } else { store.migrate(access) };
        checked.map_err(|e| format!("{}: {e}", store.describe))?;
        Ok(store)
    }

    /// A reader's check: the schema is one it reads (nothing is created or migrated).
    fn check_version(&mut self) -> Result<(), String> {
        let has_schema: bool = self
            .session
            .client()
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
        let mut tx = self.session.client().transaction().map_err(err)?;
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
        self.session.run(|c| c.execute(sql, params)).map(|n| n == 1)
    }

    fn query(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<postgres::Row>, String> {
        self.session.run(|c| c.query(sql, params))
    }

    fn query_opt(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Option<postgres::Row>, String> {
        self.session.run(|c| c.query_opt(sql, params))
    }

    /// The first column of the one row `sql` returns.
    fn value<T: for<'a> postgres::types::FromSql<'a>>(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<T, String> {
        self.session.run(|c| c.query_one(sql, params).and_then(|r| r.try_get(0)))
    }

    fn execute(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<(), String> {
        self.session.run(|c| c.execute(sql, params)).map(|_| ())
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
        self.value("SELECT version FROM cellc_schema", &[])
    }

    fn now_ms(&mut self) -> Result<i64, String> {
        self.value(&format!("SELECT {NOW}"), &[])
    }

    /// A session advisory lock: the server drops it when the coordinator's connection ends, so a
    /// killed coordinator never leaves its search locked. A reconnected session takes it again.
    fn lock_experiment(&mut self, name: &str) -> Result<(), String> {
        let key = search_lock_key(name);
        let got: bool = self.value("SELECT pg_try_advisory_lock($1)", &[&key])?;
        if got {
            self.session.hold_lock(key);
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
        // A unique violation on a second attempt (the first one's reply lost with the connection)
        // is this very experiment if the row holds what we wrote: created.
        let mut attempts = 0;
        let created = self.session.run(|c| {
            attempts += 1;
            match c.execute(&sql, &[&name, &kind, &config]) {
                Ok(_) => Ok(true),
                Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) && attempts > 1 => {
                    let row = c.query_one("SELECT kind, config FROM searches WHERE name = $1", &[&name])?;
                    Ok(row.try_get::<_, String>(0)? == kind && row.try_get::<_, String>(1)? == config)
                }
                Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => Ok(false),
                Err(e) => Err(e),
            }
        })?;
        if created {
            Ok(())
        } else {
            Err(format!("the store already has an experiment named `{name}` (use --resume, or another --name)"))
        }
    }

    fn experiment(&mut self, name: &str) -> Result<Option<ExperimentRow>, String> {
        let row =
            self.query_opt("SELECT name, kind, config, state, created_ms FROM searches WHERE name = $1", &[&name])?;
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
        let rows = self.query("SELECT name FROM searches ORDER BY created_ms, name", &[])?;
        rows.iter().map(|r| r.try_get(0)).collect::<Result<_, _>>().map_err(err)
    }

    fn any_running(&mut self) -> Result<bool, String> {
        let n: i64 = self.value("SELECT count(*) FROM searches WHERE state = 'running'", &[])?;
        Ok(n > 0)
    }

    fn set_experiment_state(&mut self, name: &str, state: &str) -> Result<(), String> {
        self.execute("UPDATE searches SET state = $2 WHERE name = $1", &[&name, &state])
    }

    fn rounds(&mut self, search: &str) -> Result<Vec<RoundRow>, String> {
        let rows = self.query(
            "SELECT round, generated, rejected, duplicates, planned_ms FROM rounds WHERE search = $1 ORDER BY round",
            &[&search],
        )?;
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
        let rows = self.query(
            "SELECT id, hash, name, parent, mutation, source, round FROM candidates WHERE search = $1 ORDER BY id",
            &[&search],
        )?;
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
        let rows = self.query(&sql, &[&search])?;
        rows.iter().map(job).collect::<Result<_, _>>().map_err(err)
    }

    fn job(&mut self, id: i64) -> Result<Option<JobRow>, String> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1");
        let row = self.query_opt(&sql, &[&id])?;
        row.as_ref().map(job).transpose().map_err(err)
    }

    fn max_job_id(&mut self) -> Result<i64, String> {
        self.value("SELECT coalesce(max(id), 0)::bigint FROM jobs", &[])
    }

    fn commit_round(
        &mut self,
        search: &str,
        round: &RoundRow,
        candidates: &[CandidateRow],
        jobs: &[JobRow],
    ) -> Result<bool, String> {
        // One transaction, run again whole if the connection is lost; a round already there
        // (committed by a run whose reply was lost, or by another coordinator) is not added twice.
        self.session.run(|c| {
            let mut tx = c.transaction()?;
            let exists =
                tx.query_opt("SELECT round FROM rounds WHERE search = $1 AND round = $2", &[&search, &round.round])?;
            if exists.is_some() {
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO rounds (search, round, generated, rejected, duplicates, planned_ms)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[&search, &round.round, &round.generated, &round.rejected, &round.duplicates, &round.planned_ms],
            )?;
            let insert_candidate = tx.prepare(
                "INSERT INTO candidates (id, search, hash, name, parent, mutation, source, round)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )?;
            for c in candidates {
                tx.execute(
                    &insert_candidate,
                    &[&c.id, &search, &c.hash, &c.name, &c.parent, &c.mutation, &c.source, &c.round],
                )?;
            }
            let insert_job = tx.prepare(
                "INSERT INTO jobs (id, search, candidate, task, stage, setting, spec, round, state, lease_until_ms, attempts)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'queued', 0, 0)",
            )?;
            for j in jobs {
                tx.execute(&insert_job, &[&j.id, &search, &j.candidate, &j.task, &j.stage, &j.setting, &j.spec, &j.round])?;
            }
            tx.commit()?;
            Ok(true)
        })
    }

    /// One statement: pick the oldest claimable job, skipping rows another worker is claiming
    /// right now, and lease it. A job already leased to this worker comes first, as it was: a
    /// worker claims only when it runs nothing, so such a job is one whose claim committed but
    /// whose reply was lost with the connection (`session.rs` runs the claim again).
    fn claim(&mut self, worker: &str, lease_ms: i64) -> Result<Option<JobRow>, String> {
        let sql = format!(
            "UPDATE jobs SET state = 'leased', worker = $1, lease_until_ms = {NOW} + $2,
                 attempts = attempts + (CASE WHEN state = 'leased' AND worker = $1 THEN 0 ELSE 1 END)
             WHERE id = (
                 SELECT id FROM jobs
                 WHERE (state = 'queued' OR (state = 'leased' AND (lease_until_ms < {NOW} OR worker = $1)))
                   AND search IN (SELECT name FROM searches WHERE state = 'running')
                 ORDER BY (state = 'leased' AND worker = $1) DESC, round, id LIMIT 1
                 FOR UPDATE SKIP LOCKED)
             RETURNING {JOB_COLUMNS}"
        );
        let row = self.query_opt(&sql, &[&worker, &lease_ms])?;
        row.as_ref().map(job).transpose().map_err(err)
    }

    fn renew(&mut self, job: i64, worker: &str, lease_ms: i64) -> Result<bool, String> {
        let sql =
            format!("UPDATE jobs SET lease_until_ms = {NOW} + $3 WHERE id = $1 AND worker = $2 AND state = 'leased'");
        self.count(&sql, &[&job, &worker, &lease_ms])
    }

    /// The result and the end of the job's progress row, in one statement. Also true when this
    /// worker's identical result is already there: the statement ran again after its reply was
    /// lost with the connection (the second subquery reads the rows as they were before this
    /// statement, so it never counts the update the first one makes).
    fn finish(&mut self, job: i64, worker: &str, result: &str) -> Result<bool, String> {
        let sql = format!(
            "WITH done AS (UPDATE jobs SET state = 'done', result = $3, finished_ms = {NOW}
                           WHERE id = $1 AND worker = $2 AND state = 'leased' RETURNING id),
                  gone AS (DELETE FROM progress WHERE job IN (SELECT id FROM done))
             SELECT (SELECT count(*) FROM done)
                  + (SELECT count(*) FROM jobs WHERE id = $1 AND worker = $2 AND state = 'done' AND result = $3)"
        );
        let n: i64 = self.value(&sql, &[&job, &worker, &result])?;
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
        self.execute(&sql, &[&job, &worker, &points])
    }

    /// A store of schema version 3 (read by a dashboard) has no progress table: no progress.
    fn progress(&mut self) -> Result<Vec<ProgressRow>, String> {
        let has_table: bool = self.value("SELECT to_regclass('progress') IS NOT NULL", &[])?;
        if !has_table {
            return Ok(vec![]);
        }
        let rows = self.query(
            "SELECT p.job, p.worker, p.started_ms, p.updated_ms, p.points FROM progress p
             JOIN jobs j ON j.id = p.job AND j.worker = p.worker AND j.state = 'leased' ORDER BY p.job",
            &[],
        )?;
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
        let rows = self.query(&sql, &[&finished_after_ms])?;
        rows.iter().map(job).collect::<Result<_, _>>().map_err(err)
    }

    fn requeue_dead(&mut self, dead: &dyn Fn(&str) -> bool) -> Result<usize, String> {
        let rows = self.query("SELECT id, worker FROM jobs WHERE state = 'leased'", &[])?;
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
        self.execute(&sql, &[&w.id, &w.jobs_done, &w.busy_seconds])
    }

    fn workers(&mut self) -> Result<Vec<WorkerRow>, String> {
        let rows = self.query(
            "SELECT id, started_ms, heartbeat_ms, jobs_done, busy_seconds FROM workers ORDER BY started_ms, id",
            &[],
        )?;
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
