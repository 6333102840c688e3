//! The results store: every finished training run, in SQLite (WAL mode), keyed by what defines it
//! (cell source, task, settings, seed), so an interrupted study resumes and never trains a finished
//! run again. `cellc paper` writes it; the architecture search shares it.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

/// Schema version, kept in `PRAGMA user_version`; a store of another version is refused.
pub const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
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
    /// `ok`, `diverged` (valid and test are then the worst value), or `failed: reason`.
    pub outcome: String,
}

/// An open store.
pub struct Store {
    conn: Connection,
}

impl Store {
    /// Opens (creating if needed) the store at `path`.
    pub fn open(path: &Path) -> Result<Store, String> {
        let name = path.display();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let conn = Connection::open(path).map_err(|e| format!("cannot open the store {name}: {e}"))?;
        let store = Store { conn };
        store.init().map_err(|e| format!("{name}: {e}"))?;
        Ok(store)
    }

    /// An in-memory store, for tests.
    pub fn memory() -> Result<Store, String> {
        let conn = Connection::open_in_memory().map_err(|e| e.to_string())?;
        let store = Store { conn };
        store.init()?;
        Ok(store)
    }

    fn init(&self) -> Result<(), String> {
        let sql = |e: rusqlite::Error| e.to_string();
        // Another process may hold the write lock briefly: wait rather than fail.
        self.conn.busy_timeout(Duration::from_secs(60)).map_err(sql)?;
        let version: i64 = self.conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(sql)?;
        let tables: i64 = self
            .conn
            .query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table'", [], |r| r.get(0))
            .map_err(sql)?;
        if tables > 0 && version != SCHEMA_VERSION {
            return Err(format!(
                "this store has schema version {version}; this cellc reads version {SCHEMA_VERSION} (use a new --store file)"
            ));
        }
        self.conn.pragma_update(None, "journal_mode", "WAL").map_err(sql)?;
        self.conn.pragma_update(None, "synchronous", "NORMAL").map_err(sql)?;
        self.conn.execute_batch(SCHEMA).map_err(sql)?;
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
    fn keys_separate_their_parts() {
        assert_ne!(key(&["ab", "c"]), key(&["a", "bc"]));
        assert_eq!(key(&["x"]), key(&["x"]));
    }
}
