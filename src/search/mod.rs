//! `cellc search`: the paper's evolutionary architecture search (§6), made to trust, resume and
//! replay.
//!
//! Cells are mutated on the IR graph (`mutate`, `edit`), printed back to `.cell` source and
//! checked again (`candidate`), and identified by a canonical hash so equivalent cells are
//! trained once (`canon`). The coordinator ([`drive`]) plans rounds of work (`plan`) from what
//! the store holds (`view`): candidates and jobs go into the store (SQLite, or PostgreSQL for
//! many machines), worker processes (`worker`) claim jobs under leases and train them (`spec`),
//! and the next round is planned when a round's jobs are all done. Planning is a pure function of the store and the round
//! number, and every job's numbers depend only on its spec, so a search killed at any moment
//! resumes to the same results, with any number of workers. `report` makes the leaderboard,
//! the cell files and the plots.

pub mod candidate;
pub mod canon;
pub mod config;
pub mod edit;
pub mod mutate;
pub mod plan;
pub mod report;
pub mod spec;
pub mod view;
pub mod worker;

use std::time::{Duration, Instant};

pub use config::SearchConfig;
pub use view::View;

use crate::store::{JobState, SearchStore};

/// How a call to [`drive`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// Nothing left to plan: the search is done.
    Done,
    /// The time limit passed; every planned job has finished. `--resume` continues.
    TimeUp,
    /// Stopped on request; unfinished jobs stay in the store and are redone on resume.
    Interrupted,
}

/// Creates a search in the store.
pub fn create(store: &mut dyn SearchStore, name: &str, config: &SearchConfig) -> Result<(), String> {
    if config.tasks.is_empty() || config.seeds.is_empty() {
        return Err("a search needs at least one task and one seed cell".into());
    }
    let json = serde_json::to_string(config).map_err(|e| e.to_string())?;
    store.create_search(name, &json)
}

/// Coordinates a search until it is done, `deadline` passes, or `stop` says so: plans a round,
/// waits for workers to finish its jobs, plans the next. `observe` sees the store's state every
/// `poll`.
pub fn drive(
    store: &mut dyn SearchStore,
    name: &str,
    deadline: Option<Instant>,
    poll: Duration,
    stop: &dyn Fn() -> bool,
    observe: &mut dyn FnMut(&View),
) -> Result<Ended, String> {
    loop {
        // Jobs of workers on this machine that died go back in the queue at once.
        store.requeue_dead(&worker::is_dead_here)?;
        let view = View::load(store, name)?;
        observe(&view);
        if stop() {
            return Ok(Ended::Interrupted);
        }
        if view.state == "done" {
            return Ok(Ended::Done);
        }
        if view.jobs.iter().any(|j| j.state != JobState::Done) {
            std::thread::sleep(poll);
            continue;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(Ended::TimeUp);
        }
        let c = &view.config;
        let round = view.rounds.len() as i64;
        let mutants = view.candidates.iter().filter(|c| c.parent.is_some()).count() as u64;
        let grow = (c.max_rounds == 0 || (round as u64) < c.max_rounds)
            && (c.max_candidates == 0 || mutants < c.max_candidates);
        let planned = plan::plan(&view, round, grow, store.max_job_id()? + 1)?;
        if planned.is_empty() {
            store.set_search_state(name, "done")?;
            return Ok(Ended::Done);
        }
        store.commit_round(name, &planned.row, &planned.candidates, &planned.jobs)?;
    }
}
