//! `cellc search status`: prints `search::status` (the store's searches and workers) as text or
//! JSON.

use std::process::ExitCode;

use crate::store::ExperimentStore;

pub fn status(store: &mut dyn ExperimentStore, json: bool) -> Result<ExitCode, String> {
    let status = crate::search::status::status(store)?;
    if json {
        println!("{}", serde_json::to_string(&status).map_err(|e| e.to_string())?);
        return Ok(ExitCode::SUCCESS);
    }
    let crate::search::status::Status { searches, workers, .. } = status;
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
