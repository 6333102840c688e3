//! Experiments on one shared job queue: a search, the paper's study and a comparison of cells all
//! submit their training runs as jobs to the same store (SQLite, or PostgreSQL across machines),
//! and the same `cellc worker`s train them, whichever experiment they belong to.
//!
//! An experiment is a coordinator that plans rounds of jobs from what the store holds
//! ([`Coordinator`]); [`drive`] commits a round, waits until its jobs are done, and plans the
//! next. Planning is a function of the store's contents and the round number, and a job's numbers
//! depend only on its spec ([`job`]), so an experiment killed at any moment resumes to the same
//! results, with one worker or twenty, local or remote. Workers ([`worker`]) claim jobs under
//! leases; [`stats`] holds the intervals and tests the experiments report with.

pub mod job;
pub mod stats;
pub mod worker;

use std::time::{Duration, Instant};

use crate::store::{CandidateRow, ExperimentStore, JobRow, JobState, RoundRow};

pub use job::{JobResult, JobSpec};

/// A planned round: what to add to the store.
pub struct Round {
    pub row: RoundRow,
    pub candidates: Vec<CandidateRow>,
    pub jobs: Vec<JobRow>,
}

impl Round {
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }
}

/// How a call to [`drive`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// Nothing left to plan: the experiment is done.
    Done,
    /// The time limit passed; every planned job has finished. Running it again continues.
    TimeUp,
    /// Stopped on request; unfinished jobs stay in the store and are redone when it continues.
    Interrupted,
}

/// What plans an experiment's rounds.
pub trait Coordinator {
    /// The store's contents as this experiment reads them.
    type View;
    fn load(&mut self, store: &mut dyn ExperimentStore) -> Result<Self::View, String>;
    /// The experiment's jobs in the view (to wait until they are done).
    fn jobs<'a>(&self, view: &'a Self::View) -> &'a [JobRow];
    /// Whether the view says the experiment is finished already.
    fn is_done(&self, view: &Self::View) -> bool;
    /// Rounds planned so far.
    fn rounds(&self, view: &Self::View) -> usize;
    /// The next round, from a view in which every job is done; an empty round ends the
    /// experiment. `first_job` is the id the first new job gets.
    fn plan(&mut self, view: &Self::View, round: i64, first_job: i64) -> Result<Round, String>;
}

/// Coordinates experiment `name` until it is done, `deadline` passes, or `stop` says so: plans a
/// round, waits for workers to finish its jobs, plans the next. `observe` sees the view every
/// `poll`.
pub fn drive<C: Coordinator>(
    store: &mut dyn ExperimentStore,
    name: &str,
    coordinator: &mut C,
    deadline: Option<Instant>,
    poll: Duration,
    stop: &dyn Fn() -> bool,
    observe: &mut dyn FnMut(&C::View),
) -> Result<Ended, String> {
    loop {
        // Jobs of workers on this machine that died go back in the queue at once.
        store.requeue_dead(&worker::is_dead_here)?;
        let view = coordinator.load(store)?;
        observe(&view);
        if stop() {
            return Ok(Ended::Interrupted);
        }
        if coordinator.is_done(&view) {
            return Ok(Ended::Done);
        }
        if coordinator.jobs(&view).iter().any(|j| j.state != JobState::Done) {
            std::thread::sleep(poll);
            continue;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(Ended::TimeUp);
        }
        let round = coordinator.rounds(&view) as i64;
        let planned = coordinator.plan(&view, round, store.max_job_id()? + 1)?;
        if planned.is_empty() {
            store.set_experiment_state(name, "done")?;
            return Ok(Ended::Done);
        }
        store.commit_round(name, &planned.row, &planned.candidates, &planned.jobs)?;
    }
}

/// The candidate rows of an experiment over fixed cells (a study, a comparison): cell `i` is
/// candidate `i + 1`, its jobs point at it.
pub fn cell_candidates(cells: &[crate::workspace::CellSource], round: i64) -> Vec<CandidateRow> {
    cells
        .iter()
        .enumerate()
        .map(|(i, c)| CandidateRow {
            id: i as i64 + 1,
            hash: format!("cell{i}"),
            name: c.name.clone(),
            parent: None,
            mutation: String::new(),
            source: c.text.clone(),
            round,
        })
        .collect()
}

/// A job row for `spec`, queued.
#[allow(clippy::too_many_arguments)]
pub fn queued_job(
    id: i64,
    experiment: &str,
    candidate: i64,
    stage: &str,
    setting: i64,
    round: i64,
    spec: &JobSpec,
) -> Result<JobRow, String> {
    Ok(JobRow {
        id,
        search: experiment.to_string(),
        candidate,
        task: spec.config.task.kind.name().to_string(),
        stage: stage.to_string(),
        setting,
        spec: serde_json::to_string(spec).map_err(|e| e.to_string())?,
        round,
        state: JobState::Queued,
        worker: None,
        lease_until_ms: 0,
        attempts: 0,
        result: None,
        finished_ms: None,
    })
}
