//! The results store, in SQLite (WAL mode): every finished `cellc paper` run keyed by what defines
//! it (cell source, task, settings, seed), so an interrupted study resumes and never trains a
//! finished run again; and the architecture search's candidates and job queue (`search.rs`),
//! which can live in PostgreSQL instead (`postgres`) for searches across machines.
//! The schema is versioned: each migration runs once, in order, and a store written by a newer
//! cellc is refused.

mod backend;
pub mod postgres;
mod search;

pub use backend::SearchStore;
pub use search::{CandidateRow, JobRow, JobState, RoundRow, SearchRow, WorkerRow, now_ms};

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

/// Schema version, kept in `PRAGMA user_version`: the number of migrations applied.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The migrations, oldest first; migration `i` takes the schema from version `i` to `i + 1`.
/// Never edit one that has shipped: add a new one.
const MIGRATIONS: [&str; 2] = [PAPER_RUNS, SEARCH];

const PAPER_RUNS: &str = "
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    study TEXT NOT NULL,
    cell TEXT NOT NULL,
    cell_source TEXT NOT NULL,
    task TEXT NOT NULL,
    setting INTEGER NOT NULL,
    seed INTEGER NOT NULL,
    config TEXT NOT NULL,
    metric TEXT NOT NULL,
    valid REAL NOT NULL,
    test REAL NOT NULL,
    curve TEXT NOT NULL,
    steps INTEGER NOT NULL,
    seconds REAL NOT NULL,
    outcome TEXT NOT NULL,
    finished_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_study ON runs (study, task, cell);
";

const SEARCH: &str = "
CREATE TABLE searches (
    name TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    state TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE TABLE rounds (
    search TEXT NOT NULL,
    round INTEGER NOT NULL,
    generated INTEGER NOT NULL,
    rejected INTEGER NOT NULL,
    duplicates INTEGER NOT NULL,
    planned_ms INTEGER NOT NULL,
    PRIMARY KEY (search, round)
);
CREATE TABLE candidates (
    id INTEGER NOT NULL,
    search TEXT NOT NULL,
    hash TEXT NOT NULL,
    name TEXT NOT NULL,
    parent INTEGER,
    mutation TEXT NOT NULL,
    source TEXT NOT NULL,
    round INTEGER NOT NULL,
    PRIMARY KEY (search, id),
    UNIQUE (search, hash)
);
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY,
    search TEXT NOT NULL,
    candidate INTEGER NOT NULL,
    task TEXT NOT NULL,
    stage TEXT NOT NULL,
    setting INTEGER NOT NULL,
    spec TEXT NOT NULL,
    round INTEGER NOT NULL,
    state TEXT NOT NULL,
    worker TEXT,
    lease_until_ms INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    result TEXT,
    finished_ms INTEGER
);
CREATE INDEX jobs_queue ON jobs (state, round, id);
CREATE INDEX jobs_search ON jobs (search, candidate);
CREATE TABLE workers (
    id TEXT PRIMARY KEY,
    started_ms INTEGER NOT NULL,
    heartbeat_ms INTEGER NOT NULL,
    jobs_done INTEGER NOT NULL,
    busy_seconds REAL NOT NULL
);
";

/// How a process opens a store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// A coordinator: brings an older store up to this cellc's schema.
    Migrate,
    /// A worker or a reader: a store at another schema version is refused, so a process never
    /// reads or writes tables it does not know (an empty store is set up).
    SameVersion,
}

/// Decides what opening a store at schema version `found` does: `Ok(true)` migrate it,
/// `Ok(false)` use it as it is, or a message saying why not.
pub fn version_gate(found: i64, access: Access, store: &str) -> Result<bool, String> {
    if found > SCHEMA_VERSION {
        return Err(format!(
            "this store has schema version {found}, newer than this cellc reads ({SCHEMA_VERSION}); \
             use a newer cellc (the one that wrote {store}) or another store"
        ));
    }
    if found == SCHEMA_VERSION {
        return Ok(false);
    }
    if found == 0 || access == Access::Migrate {
        return Ok(true);
    }
    Err(format!(
        "this store has schema version {found} and this cellc needs {SCHEMA_VERSION}; \
         run `cellc search --resume` with this cellc to migrate {store}, or use the cellc that wrote it"
    ))
}

/// Opens the search store `store` names: a `postgres://` URL or an SQLite file.
pub fn open_search_store(store: &str, access: Access) -> Result<Box<dyn SearchStore>, String> {
    if postgres::is_url(store) {
        return Ok(Box::new(postgres::PgStore::open(store, access)?));
    }
    Ok(Box::new(Store::open_with(Path::new(store), access)?))
}

/// One finished run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// What defines the run, hashed: the same key is the same computation.
    pub key: String,
    /// The study it belongs to (`paper`, or a search's name).
    pub study: String,
    pub cell: String,
    pub cell_source: String,
    pub task: String,
    /// Which hyperparameter setting of the (cell, task) pair.
    pub setting: u32,
    pub seed: u64,
    /// The training configuration, JSON.
    pub config: String,
    /// The headline metric's name (`accuracy`, `NLL`, ...).
    pub metric: String,
    pub valid: f64,
    pub test: f64,
    /// Validation metric after each evaluation, JSON `[[step, value], ...]`.
    pub curve: String,
    pub steps: u64,
    pub seconds: f64,
    /// How the run ended, `train::RunEnd` as text: `ok`, or `diverged at step N` (valid and test
    /// are then the worst value).
    pub outcome: String,
}

/// An open store.
pub struct Store {
    conn: Connection,
    /// Where it is, for messages.
    path: String,
}

impl Store {
    /// Opens (creating if needed) the store at `path`, migrating an older one.
    pub fn open(path: &Path) -> Result<Store, String> {
        Store::open_with(path, Access::Migrate)
    }

    /// Opens (creating if needed) the store at `path`, as `access` allows.
    pub fn open_with(path: &Path, access: Access) -> Result<Store, String> {
        let name = path.display();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let conn = Connection::open(path).map_err(|e| format!("cannot open the store {name}: {e}"))?;
        let store = Store { conn, path: name.to_string() };
        store.init(access).map_err(|e| format!("{name}: {e}"))?;
        Ok(store)
    }

    /// An in-memory store, for tests.
    pub fn memory() -> Result<Store, String> {
        let conn = Connection::open_in_memory().map_err(|e| e.to_string())?;
        let store = Store { conn, path: ":memory:".into() };
        store.init(Access::Migrate)?;
        Ok(store)
    }

    fn init(&self, access: Access) -> Result<(), String> {
        let sql = |e: rusqlite::Error| e.to_string();
        // Another process may hold the write lock briefly: wait rather than fail.
        self.conn.busy_timeout(Duration::from_secs(60)).map_err(sql)?;
        self.conn.pragma_update(None, "journal_mode", "WAL").map_err(sql)?;
        self.conn.pragma_update(None, "synchronous", "NORMAL").map_err(sql)?;
        // Read the version and migrate in one write transaction, so two processes opening a new
        // store at once do not both migrate it.
        self.conn.execute_batch("BEGIN IMMEDIATE").map_err(sql)?;
        let result = self.migrate(access);
        self.conn.execute_batch(if result.is_ok() { "COMMIT" } else { "ROLLBACK" }).map_err(sql)?;
        result
    }

    fn migrate(&self, access: Access) -> Result<(), String> {
        let sql = |e: rusqlite::Error| e.to_string();
        let version: i64 = self.conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(sql)?;
        if !version_gate(version, access, &self.path)? {
            return Ok(());
        }
        for (i, migration) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            self.conn.execute_batch(migration).map_err(|e| format!("migration {} failed: {e}", i + 1))?;
        }
        self.conn.pragma_update(None, "user_version", SCHEMA_VERSION).map_err(sql)?;
        Ok(())
    }

    /// The finished run with this key, if any.
    pub fn get(&self, key: &str) -> Result<Option<RunRecord>, String> {
        self.conn
            .query_row(&format!("SELECT {COLUMNS} FROM runs WHERE key = ?1"), [key], row)
            .optional()
            .map_err(|e| e.to_string())
    }

    /// Records a finished run (a second record with the same key is ignored: it is the same run).
    pub fn put(&self, r: &RunRecord) -> Result<(), String> {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        self.conn
            .execute(
                "INSERT OR IGNORE INTO runs (key, study, cell, cell_source, task, setting, seed, config, metric,
                 valid, test, curve, steps, seconds, outcome, finished_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
                params![
                    r.key,
                    r.study,
                    r.cell,
                    r.cell_source,
                    r.task,
                    r.setting,
                    r.seed as i64,
                    r.config,
                    r.metric,
                    r.valid,
                    r.test,
                    r.curve,
                    r.steps as i64,
                    r.seconds,
                    r.outcome,
                    now as i64
                ],
            )
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// Every run of a study, in the order they finished.
    pub fn study(&self, study: &str) -> Result<Vec<RunRecord>, String> {
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {COLUMNS} FROM runs WHERE study = ?1 ORDER BY id"))
            .map_err(|e| e.to_string())?;
        let rows = stmt.query_map([study], row).map_err(|e| e.to_string())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| e.to_string())
    }
}

const COLUMNS: &str =
    "key, study, cell, cell_source, task, setting, seed, config, metric, valid, test, curve, steps, seconds, outcome";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RunRecord> {
    Ok(RunRecord {
        key: r.get(0)?,
        study: r.get(1)?,
        cell: r.get(2)?,
        cell_source: r.get(3)?,
        task: r.get(4)?,
        setting: r.get(5)?,
        seed: r.get::<_, i64>(6)? as u64,
        config: r.get(7)?,
        metric: r.get(8)?,
        valid: r.get(9)?,
        test: r.get(10)?,
        curve: r.get(11)?,
        steps: r.get::<_, i64>(12)? as u64,
        seconds: r.get(13)?,
        outcome: r.get(14)?,
    })
}

/// A stable key for a run: FNV-1a over the parts, as 16 hex digits (the same on every machine).
pub fn key(parts: &[&str]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain([0xff]) {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(key: &str) -> RunRecord {
        RunRecord {
            key: key.into(),
            study: "paper".into(),
            cell: "gru".into(),
            cell_source: "cell gru {}".into(),
            task: "arith".into(),
            setting: 0,
            seed: 1,
            config: "{}".into(),
            metric: "accuracy".into(),
            valid: 0.5,
            test: 0.4,
            curve: "[]".into(),
            steps: 10,
            seconds: 1.0,
            outcome: "ok".into(),
        }
    }

    #[test]
    fn runs_round_trip_and_a_key_is_stored_once() {
        let s = Store::memory().unwrap();
        assert_eq!(s.get("a").unwrap(), None);
        s.put(&record("a")).unwrap();
        s.put(&RunRecord { valid: 0.9, ..record("a") }).unwrap();
        assert_eq!(s.get("a").unwrap(), Some(record("a")));
        s.put(&record("b")).unwrap();
        assert_eq!(s.study("paper").unwrap().len(), 2);
        assert!(s.study("other").unwrap().is_empty());
    }

    #[test]
    fn an_old_store_is_migrated_in_place_and_a_newer_one_refused() {
        let dir = std::env::temp_dir().join(format!("cellc-store-migrate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("v1.sqlite");
        let _ = std::fs::remove_file(&path);
        {
            // A store as cellc with schema version 1 (paper runs only) wrote it.
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(PAPER_RUNS).unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
        }
        // A worker (same version only) does not migrate it: it says what to do.
        let err = Store::open_with(&path, Access::SameVersion).err().unwrap();
        assert!(err.contains("version 1") && err.contains("--resume"), "{err}");
        Store::open(&path).unwrap().put(&record("old")).unwrap();
        let mut s = Store::open(&path).unwrap();
        assert_eq!(s.get("old").unwrap(), Some(record("old")));
        s.create_search("s", "{}").unwrap(); // the search tables exist now
        let version: i64 = s.conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        s.conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1).unwrap();
        drop(s);
        let err = Store::open(&path).err().unwrap();
        assert!(err.contains("newer than this cellc"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn keys_separate_their_parts() {
        assert_ne!(key(&["ab", "c"]), key(&["a", "bc"]));
        assert_eq!(key(&["x"]), key(&["x"]));
    }
}
