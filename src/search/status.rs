//! The store's state now, as `cellc search status` and `cellc dashboard` show it: each search's
//! progress and runs in flight with their leases, and every worker (alive or gone by heartbeat,
//! runs, runs per hour, share of time training).

use serde::Serialize;

use super::View;
use super::view::Counts;
use crate::store::{ExperimentStore, JobState, WorkerRow};

/// The whole status (`cellc search status --json` prints it).
#[derive(Serialize)]
pub struct Status {
    pub store: String,
    pub searches: Vec<SearchStatus>,
    pub workers: Vec<WorkerStatus>,
}

/// A worker is alive if it reported within this long (it beats every 5 s, also mid-run).
pub const ALIVE_MS: i64 = 30_000;

/// One search: its state, counts and runs being trained.
#[derive(Serialize)]
pub struct SearchStatus {
    pub name: String,
    pub state: String,
    pub counts: Counts,
    pub in_flight: Vec<InFlight>,
}

/// A run being trained, with how long its lease has left.
#[derive(Serialize)]
pub struct InFlight {
    pub run: i64,
    pub task: String,
    pub candidate: String,
    pub worker: Option<String>,
    pub lease_left_s: f64,
}

/// A worker as its heartbeats tell it.
#[derive(Serialize)]
pub struct WorkerStatus {
    pub worker: String,
    pub alive: bool,
    pub runs: i64,
    pub runs_per_hour: f64,
    /// Share of its life spent training runs.
    pub busy: f64,
    pub last_seen_s: f64,
}

/// The store's searches and workers now.
pub fn status(store: &mut dyn ExperimentStore) -> Result<Status, String> {
    let now = store.now_ms()?;
    let mut searches = vec![];
    for name in store.experiments()? {
        // Comparisons and studies share the store and its workers; this view is of searches.
        if store.experiment(&name)?.is_some_and(|e| e.kind != super::KIND) {
            continue;
        }
        let view = View::load(store, &name)?;
        let in_flight = view
            .jobs
            .iter()
            .filter(|j| j.state == JobState::Leased)
            .map(|j| InFlight {
                run: j.id,
                task: j.task.clone(),
                candidate: view.candidate(j.candidate).map_or_else(|| j.candidate.to_string(), |c| c.name.clone()),
                worker: j.worker.clone(),
                lease_left_s: (j.lease_until_ms - now) as f64 / 1000.0,
            })
            .collect();
        searches.push(SearchStatus { name, state: view.state.clone(), counts: view.counts(), in_flight });
    }
    let workers = store.workers()?.into_iter().map(|w| worker_status(w, now)).collect();
    Ok(Status { store: store.describe(), searches, workers })
}

/// A worker's row as its status at `now` (store clock).
pub fn worker_status(w: WorkerRow, now: i64) -> WorkerStatus {
    let life_s = ((w.heartbeat_ms - w.started_ms).max(1) as f64) / 1000.0;
    WorkerStatus {
        alive: now - w.heartbeat_ms < ALIVE_MS,
        runs: w.jobs_done,
        runs_per_hour: w.jobs_done as f64 * 3600.0 / life_s,
        busy: (w.busy_seconds / life_s).min(1.0),
        last_seen_s: (now - w.heartbeat_ms) as f64 / 1000.0,
        worker: w.id,
    }
}
