//! `cellc search`: the paper's evolutionary architecture search (§6), made to trust, resume and
//! replay.
//!
//! Cells are mutated on the IR graph (`mutate`, `edit`), printed back to `.cell` source and
//! checked again (`candidate`), and identified by a canonical hash so equivalent cells are
//! trained once (`canon`). The search is an experiment on the shared job queue: its coordinator
//! ([`drive`], through `experiment::drive`) plans rounds of work (`plan`) from what the store
//! holds (`view`); `cellc worker`s claim the jobs under leases and train them
//! (`experiment::job`); the next round is planned when a round's jobs are all done. Planning is a
//! pure function of the store and the round number, and every job's numbers depend only on its
//! spec, so a search killed at any moment resumes to the same results, with any number of
//! workers. `report` makes the leaderboard, the cell files and the plots; `status` is the store now.

pub mod candidate;
pub mod canon;
pub mod config;
pub mod confirm;
pub mod edit;
pub mod mutate;
pub mod plan;
pub mod report;
pub mod status;
pub mod view;

use std::time::{Duration, Instant};

pub use config::SearchConfig;
pub use view::View;

pub use crate::experiment::Ended;
use crate::experiment::{Coordinator, Round};
use crate::store::{ExperimentStore, JobRow};

/// The experiment kind of a search in the store.
pub const KIND: &str = "search";

/// Creates a search in the store.
pub fn create(store: &mut dyn ExperimentStore, name: &str, config: &SearchConfig) -> Result<(), String> {
    if config.tasks.is_empty() || config.seeds.is_empty() {
        return Err("a search needs at least one task and one seed cell".into());
    }
    let json = serde_json::to_string(config).map_err(|e| e.to_string())?;
    store.create_experiment(name, KIND, &json)
}

/// The search as an experiment: its view of the store, and its rounds from `plan`.
struct Search<'a> {
    name: &'a str,
}

impl Coordinator for Search<'_> {
    type View = View;

    fn load(&mut self, store: &mut dyn ExperimentStore) -> Result<View, String> {
        View::load(store, self.name)
    }

    fn jobs<'v>(&self, view: &'v View) -> &'v [JobRow] {
        &view.jobs
    }

    fn is_done(&self, view: &View) -> bool {
        view.state == "done"
    }

    fn rounds(&self, view: &View) -> usize {
        view.rounds.len()
    }

    fn plan(&mut self, view: &View, round: i64, first_job: i64) -> Result<Round, String> {
        let c = &view.config;
        let mutants = view.candidates.iter().filter(|c| c.parent.is_some()).count() as u64;
        let grow = (c.max_rounds == 0 || (round as u64) < c.max_rounds)
            && (c.max_candidates == 0 || mutants < c.max_candidates);
        plan::plan(view, round, grow, first_job)
    }
}

/// Coordinates a search until it is done, `deadline` passes, or `stop` says so: plans a round,
/// waits for workers to finish its jobs, plans the next. `observe` sees the store's state every
/// `poll`.
pub fn drive(
    store: &mut dyn ExperimentStore,
    name: &str,
    deadline: Option<Instant>,
    poll: Duration,
    stop: &dyn Fn() -> bool,
    observe: &mut dyn FnMut(&View),
) -> Result<Ended, String> {
    crate::experiment::drive(store, name, &mut Search { name }, deadline, poll, stop, observe)
}
