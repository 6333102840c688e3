//! `cellc search status`: the store's searches (progress, runs in flight with their leases) and
//! its workers (alive or gone by heartbeat, runs, runs per hour, share of time training).

use std::process::ExitCode;

use serde::Serialize;

use crate::search::View;
use crate::search::view::Counts;
use crate::store::{ExperimentStore, JobState};

/// A worker is alive if it reported within this long (it beats every 5 s, also mid-run).
const ALIVE_MS: i64 = 30_000;

#[derive(Serialize)]
struct SearchStatus {
    name: String,
    state: String,
    counts: Counts,
    in_flight: Vec<InFlight>,
}

#[derive(Serialize)]
struct InFlight {
    run: i64,
    task: String,
    candidate: String,
    worker: Option<String>,
    lease_left_s: f64,
}

#[derive(Serialize)]
struct WorkerStatus {
    worker: String,
    alive: bool,
    runs: i64,
    runs_per_hour: f64,
    /// Share of its life spent training runs.
    busy: f64,
    last_seen_s: f64,
}

pub fn status(store: &mut dyn ExperimentStore, json: bool) -> Result<ExitCode, String> {
    let now = store.now_ms()?;
    let mut searches = vec![];
    for name in store.experiments()? {
        // Comparisons and studies share the store and its workers; this view is of searches.
        if store.experiment(&name)?.is_some_and(|e| e.kind != crate::search::KIND) {
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
    let workers: Vec<WorkerStatus> = store
        .workers()?
        .into_iter()
        .map(|w| {
            let life_s = ((w.heartbeat_ms - w.started_ms).max(1) as f64) / 1000.0;
            WorkerStatus {
                alive: now - w.heartbeat_ms < ALIVE_MS,
                runs: w.jobs_done,
                runs_per_hour: w.jobs_done as f64 * 3600.0 / life_s,
                busy: (w.busy_seconds / life_s).min(1.0),
                last_seen_s: (now - w.heartbeat_ms) as f64 / 1000.0,
                worker: w.id,
            }
        })
        .collect();
    if json {
        println!("{}", serde_json::json!({"store": store.describe(), "searches": searches, "workers": workers}));
        return Ok(ExitCode::SUCCESS);
    }
    println!("store {}", store.describe());
    if searches.is_empty() {
        println!("no searches yet (start one with `cellc search --store ...`)");
    }
    for s in &searches {
        let c = &s.counts;
        println!(
            "search `{}` ({}): runs {}/{} done, {} in flight | {} | best {}",
            s.name,
            s.state,
            c.jobs_done,
            c.jobs,
            s.in_flight.len(),
            c.candidates_line(),
            c.best_text()
        );
        for j in &s.in_flight {
            println!(
                "  run {} ({} on {}) by {}, lease {:.0} s left",
                j.run,
                j.candidate,
                j.task,
                j.worker.as_deref().unwrap_or("-"),
                j.lease_left_s
            );
        }
    }
    let alive = workers.iter().filter(|w| w.alive).count();
    println!("workers: {alive} alive of {}", workers.len());
    for w in &workers {
        let seen = if w.alive { "alive".to_string() } else { format!("gone ({:.0} s ago)", w.last_seen_s) };
        println!(
            "  {} {seen}: {} runs, {:.1} runs/h, training {:.0}% of the time",
            w.worker,
            w.runs,
            w.runs_per_hour,
            100.0 * w.busy
        );
    }
    Ok(ExitCode::SUCCESS)
}
