//! The results store, in SQLite (WAL mode): the experiments (searches, comparisons, the paper's
//! study), their candidates and the job queue their runs go through (`search.rs`), which can live
//! in PostgreSQL instead (`postgres`) for experiments across machines.
//! The schema is versioned: each migration runs once, in order, and a store written by a newer
//! cellc is refused.

mod backend;
pub mod postgres;
mod read_only_media;
mod search;

pub use backend::ExperimentStore;
pub use search::{CandidateRow, ExperimentRow, JobRow, JobState, ProgressRow, RoundRow, WorkerRow, now_ms};

use std::path::Path;
use std::time::Duration;

use read_only_media::unwritable;
use rusqlite::Connection;

/// Schema version, kept in `PRAGMA user_version`: the number of migrations applied.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The migrations, oldest first; migration `i` takes the schema from version `i` to `i + 1`.
/// Never edit one that has shipped: add a new one.
const MIGRATIONS: [&str; 4] = [PAPER_RUNS, SEARCH, EXPERIMENT_KINDS, PROGRESS];

/// Migration 4: how far each run being trained has come (its validations so far), so a reader
/// (`cellc dashboard`) sees a run's curve grow before its result is recorded. A row lives from
/// the worker's first report to the job's result.
const PROGRESS: &str = "
CREATE TABLE progress (
    job INTEGER PRIMARY KEY,
    worker TEXT NOT NULL,
    started_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    points TEXT NOT NULL
);
";

/// Migration 3: the search tables hold every kind of experiment (search, study, compare). The
/// `runs` table of migration 1 (a study's runs before the study used the job queue) is no longer
/// read; it stays because shipped migrations never change.
const EXPERIMENT_KINDS: &str = "ALTER TABLE searches ADD COLUMN kind TEXT NOT NULL DEFAULT 'search';";

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

/// The oldest schema a read-only reader understands (the one where every experiment kind lives
/// in the job queue).
const READABLE_FROM: i64 = 3;

/// How a process opens a store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// A coordinator: brings an older store up to this cellc's schema.
    Migrate,
    /// A worker or a reader: a store at another schema version is refused, so a process never
    /// reads or writes tables it does not know (an empty store is set up).
    SameVersion,
    /// A reader that must never write nor hold a write lock (`cellc dashboard`): nothing is
    /// created or migrated, a missing store is an error, and every write fails in the database.
    ReadOnly,
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
    if access == Access::ReadOnly {
        // Every experiment table exists from version 3 on; what came later (run progress) is
        // optional to a reader, so an older store is read as it is, never migrated.
        return if found >= READABLE_FROM {
            Ok(false)
        } else {
            Err(format!(
                "this store has schema version {found}, older than a reader needs ({READABLE_FROM}); \
                 run `cellc search --resume` with this cellc to migrate {store}"
            ))
        };
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
pub fn open_search_store(store: &str, access: Access) -> Result<Box<dyn ExperimentStore>, String> {
    if postgres::is_url(store) {
        return Ok(Box::new(postgres::PgStore::open(store, access)?));
    }
    Ok(Box::new(Store::open_with(Path::new(store), access)?))
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
        if access == Access::ReadOnly {
            return Store::open_read_only(path);
        }
        let name = path.display();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let opened =
            Connection::open(path).map_err(|e| format!("cannot open the store {name}: {e}")).and_then(|conn| {
                let store = Store { conn, path: name.to_string() };
                store.init(access).map_err(|e| format!("{name}: {e}"))?;
                Ok(store)
            });
        opened.map_err(|e| unwritable(path).unwrap_or(e))
    }

    /// Opens an existing store to read it only. SQLite's write-ahead log lets readers and
    /// writers proceed together; the reader takes no write lock, ever (`query_only`), and is
    /// `immutable` only where no writer can be at work (`read_only_media`): under a writer it
    /// would read torn pages.
    fn open_read_only(path: &Path) -> Result<Store, String> {
        use rusqlite::OpenFlags;
        let name = path.display().to_string();
        if !path.is_file() {
            return Err(format!("no store at {name} (a store is the SQLite file `cellc search --store` writes)"));
        }
        let bad = |e: rusqlite::Error| format!("cannot read the store {name}: {e}");
        let version = |conn: &Connection| -> Result<i64, rusqlite::Error> {
            conn.busy_timeout(Duration::from_secs(2))?;
            conn.pragma_update(None, "query_only", true)?;
            conn.query_row("PRAGMA user_version", [], |r| r.get(0))
        };
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn =
            Connection::open_with_flags(path, flags).map_err(|e| format!("cannot open the store {name}: {e}"))?;
        // In a directory nobody can write, SQLite cannot make the `-shm` file a WAL reader needs.
        let (conn, version) = match version(&conn) {
            Ok(v) => (conn, v),
            Err(e) => {
                let conn = read_only_media::open_immutable(path).ok_or_else(|| bad(e))??;
                let v = version(&conn).map_err(bad)?;
                (conn, v)
            }
        };
        if version == 0 {
            return Err(format!("{name} is not a cellc store (it has no cellc tables)"));
        }
        version_gate(version, Access::ReadOnly, &name).map_err(|e| format!("{name}: {e}"))?;
        Ok(Store { conn, path: name })
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
        let old: i64 =
            Connection::open(&path).unwrap().query_row("SELECT COUNT(*) FROM runs", [], |r| r.get(0)).unwrap();
        assert_eq!(old, 0);
        let mut s = Store::open(&path).unwrap();
        s.create_experiment("s", "search", "{}").unwrap(); // the experiment tables exist now
        let version: i64 = s.conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        s.conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1).unwrap();
        drop(s);
        let err = Store::open(&path).err().unwrap();
        assert!(err.contains("newer than this cellc"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_read_only_store_is_never_created_migrated_or_written() {
        let dir = std::env::temp_dir().join(format!("cellc-store-ro-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.sqlite");
        let _ = std::fs::remove_file(&path);
        let err = Store::open_with(&path, Access::ReadOnly).err().unwrap();
        assert!(err.contains("no store at"), "{err}");
        assert!(!path.exists(), "a reader creates nothing");
        std::fs::write(&path, "not a database").unwrap();
        let err = Store::open_with(&path, Access::ReadOnly).err().unwrap();
        assert!(err.contains("not a database") && !err.contains('\n'), "{err}");
        std::fs::remove_file(&path).unwrap();
        {
            // A store at version 3 (before runs' progress) is read as it is.
            let conn = Connection::open(&path).unwrap();
            for m in &MIGRATIONS[..3] {
                conn.execute_batch(m).unwrap();
            }
            conn.pragma_update(None, "user_version", 3).unwrap();
        }
        let mut s = Store::open_with(&path, Access::ReadOnly).unwrap();
        assert_eq!(s.schema_version().unwrap(), 3, "not migrated");
        assert!(s.progress().unwrap().is_empty());
        assert!(s.experiments().unwrap().is_empty());
        let err = s.create_experiment("x", "search", "{}").unwrap_err();
        assert!(err.contains("readonly") || err.contains("read-only") || err.contains("read only"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn keys_separate_their_parts() {
        assert_ne!(key(&["ab", "c"]), key(&["a", "bc"]));
        assert_eq!(key(&["x"]), key(&["x"]));
    }
}
