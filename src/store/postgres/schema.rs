//! The PostgreSQL schema: the same tables, columns and versions as the SQLite store's (migration
//! `i` here does what migration `i` does there), in PostgreSQL's types. The version lives in
//! the one-row table `cellc_schema`.

/// The migrations, oldest first; never edit one that has shipped.
pub const MIGRATIONS: [&str; super::super::SCHEMA_VERSION as usize] = [PAPER_RUNS, SEARCH, EXPERIMENT_KINDS, PROGRESS];

const EXPERIMENT_KINDS: &str = "ALTER TABLE searches ADD COLUMN kind TEXT NOT NULL DEFAULT 'search';";

const PROGRESS: &str = "
CREATE TABLE progress (
    job BIGINT PRIMARY KEY,
    worker TEXT NOT NULL,
    started_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL,
    points TEXT NOT NULL
);
";

/// Serialises migrations of one database across processes and machines (an advisory lock key:
/// "cellc" in ASCII).
pub const MIGRATION_LOCK: i64 = 0x63_656c_6c63;

pub const VERSION_TABLE: &str = "CREATE TABLE IF NOT EXISTS cellc_schema (version BIGINT NOT NULL)";

const PAPER_RUNS: &str = "
CREATE TABLE IF NOT EXISTS runs (
    id BIGSERIAL PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    study TEXT NOT NULL,
    cell TEXT NOT NULL,
    cell_source TEXT NOT NULL,
    task TEXT NOT NULL,
    setting BIGINT NOT NULL,
    seed BIGINT NOT NULL,
    config TEXT NOT NULL,
    metric TEXT NOT NULL,
    valid DOUBLE PRECISION NOT NULL,
    test DOUBLE PRECISION NOT NULL,
    curve TEXT NOT NULL,
    steps BIGINT NOT NULL,
    seconds DOUBLE PRECISION NOT NULL,
    outcome TEXT NOT NULL,
    finished_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_study ON runs (study, task, cell);
";

const SEARCH: &str = "
CREATE TABLE searches (
    name TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    state TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);
CREATE TABLE rounds (
    search TEXT NOT NULL,
    round BIGINT NOT NULL,
    generated BIGINT NOT NULL,
    rejected BIGINT NOT NULL,
    duplicates BIGINT NOT NULL,
    planned_ms BIGINT NOT NULL,
    PRIMARY KEY (search, round)
);
CREATE TABLE candidates (
    id BIGINT NOT NULL,
    search TEXT NOT NULL,
    hash TEXT NOT NULL,
    name TEXT NOT NULL,
    parent BIGINT,
    mutation TEXT NOT NULL,
    source TEXT NOT NULL,
    round BIGINT NOT NULL,
    PRIMARY KEY (search, id),
    UNIQUE (search, hash)
);
CREATE TABLE jobs (
    id BIGINT PRIMARY KEY,
    search TEXT NOT NULL,
    candidate BIGINT NOT NULL,
    task TEXT NOT NULL,
    stage TEXT NOT NULL,
    setting BIGINT NOT NULL,
    spec TEXT NOT NULL,
    round BIGINT NOT NULL,
    state TEXT NOT NULL,
    worker TEXT,
    lease_until_ms BIGINT NOT NULL,
    attempts BIGINT NOT NULL,
    result TEXT,
    finished_ms BIGINT
);
CREATE INDEX jobs_queue ON jobs (state, round, id);
CREATE INDEX jobs_search ON jobs (search, candidate);
CREATE TABLE workers (
    id TEXT PRIMARY KEY,
    started_ms BIGINT NOT NULL,
    heartbeat_ms BIGINT NOT NULL,
    jobs_done BIGINT NOT NULL,
    busy_seconds DOUBLE PRECISION NOT NULL
);
";
