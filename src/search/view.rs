//! What the store says about a search, digested: each candidate's status, its best accuracy per
//! task, the GRU's bests and the GRU-relative scores. Planning, progress and the report all read
//! this one view, so they never disagree.

use std::collections::HashMap;

use super::config::SearchConfig;
use crate::experiment::{JobResult, JobSpec};
use crate::store::{CandidateRow, ExperimentStore, JobRow, JobState, RoundRow};

/// Where a candidate is in the pipeline.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Status {
    /// Some of its runs are queued or training.
    Running,
    /// Failed the memorisation filter (its accuracy).
    Filtered(f64),
    /// Passed the filter; the first task is next.
    NeedsFirst,
    /// Below the gate on the first task (its accuracy relative to the GRU's).
    Weak(f64),
    /// Passed the gate; the other tasks are next.
    NeedsRest,
    /// Scored on every task.
    Evaluated(f64),
}

/// A search as the store holds it.
pub struct View {
    pub name: String,
    pub config: SearchConfig,
    pub state: String,
    pub candidates: Vec<CandidateRow>,
    pub jobs: Vec<JobRow>,
    pub rounds: Vec<RoundRow>,
    pub results: HashMap<i64, JobResult>,
    pub created_ms: i64,
    /// The store's workers (all searches), with their busy time.
    pub workers: Vec<crate::store::WorkerRow>,
    /// Indexes into `jobs`, per candidate.
    by_candidate: HashMap<i64, Vec<usize>>,
}

/// The id of the baseline (the GRU, the first seed cell).
pub const BASELINE: i64 = 1;

impl View {
    pub fn load(store: &mut dyn ExperimentStore, name: &str) -> Result<View, String> {
        let search = store.experiment(name)?.ok_or_else(|| format!("the store has no search named `{name}`"))?;
        let config: SearchConfig =
            serde_json::from_str(&search.config).map_err(|e| format!("search `{name}` has a bad config: {e}"))?;
        let jobs = store.jobs(name)?;
        let mut results = HashMap::new();
        for j in &jobs {
            if let Some(r) = &j.result {
                let r: JobResult =
                    serde_json::from_str(r).map_err(|e| format!("job {} has a bad result: {e}", j.id))?;
                results.insert(j.id, r);
            }
        }
        let mut by_candidate: HashMap<i64, Vec<usize>> = HashMap::new();
        for (i, j) in jobs.iter().enumerate() {
            by_candidate.entry(j.candidate).or_default().push(i);
        }
        Ok(View {
            by_candidate,
            name: name.to_string(),
            config,
            state: search.state,
            candidates: store.candidates(name)?,
            rounds: store.rounds(name)?,
            jobs,
            results,
            created_ms: search.created_ms,
            workers: store.workers()?,
        })
    }

    pub fn jobs_of(&self, candidate: i64) -> impl Iterator<Item = &JobRow> {
        self.by_candidate.get(&candidate).into_iter().flatten().map(|&i| &self.jobs[i])
    }

    pub fn candidate(&self, id: i64) -> Option<&CandidateRow> {
        self.candidates.iter().find(|c| c.id == id)
    }

    /// The candidate's best finished run on `task` (highest validation accuracy; the earliest
    /// on ties).
    pub fn best(&self, candidate: i64, task: &str) -> Option<(&JobRow, &JobResult)> {
        let mut best: Option<(&JobRow, &JobResult)> = None;
        for j in self.jobs_of(candidate).filter(|j| j.task == task && j.stage != "filter") {
            if let Some(r) = self.results.get(&j.id)
                && best.is_none_or(|(_, b)| r.valid > b.valid)
            {
                best = Some((j, r));
            }
        }
        best
    }

    /// Best validation accuracy of the baseline on `task`.
    pub fn baseline(&self, task: &str) -> Option<f64> {
        self.best(BASELINE, task).map(|(_, r)| r.valid)
    }

    /// Accuracy relative to the baseline's best on `task`.
    pub fn relative(&self, candidate: i64, task: &str) -> Option<f64> {
        let base = self.baseline(task)?;
        let (_, r) = self.best(candidate, task)?;
        Some(if base > 0.0 { r.valid / base } else { 0.0 })
    }

    /// The paper's score: the minimum over tasks of the relative accuracy.
    pub fn score(&self, candidate: i64) -> Option<f64> {
        self.config
            .tasks
            .iter()
            .map(|t| self.relative(candidate, t.name()))
            .try_fold(f64::INFINITY, |m, r| r.map(|r| m.min(r)))
    }

    /// The candidate's score as it stood at `until_ms` (store clock): only runs finished by then
    /// count. `None` before it had a run on every task.
    pub fn score_until(&self, candidate: i64, until_ms: i64) -> Option<f64> {
        let best = |id: i64, task: &str| {
            self.jobs_of(id)
                .filter(|j| j.task == task && j.stage != "filter" && j.finished_ms.is_some_and(|f| f <= until_ms))
                .filter_map(|j| self.results.get(&j.id).map(|r| r.valid))
                .reduce(f64::max)
        };
        self.config.tasks.iter().try_fold(f64::INFINITY, |m, t| {
            let (mine, base) = (best(candidate, t.name())?, best(BASELINE, t.name())?);
            Some(m.min(if base > 0.0 { mine / base } else { 0.0 }))
        })
    }

    pub fn status(&self, candidate: i64) -> Status {
        let jobs: Vec<&JobRow> = self.jobs_of(candidate).collect();
        if jobs.iter().any(|j| j.state != JobState::Done) {
            return Status::Running;
        }
        let has = |stage: &str| jobs.iter().any(|j| j.stage == stage);
        if let Some(f) = jobs.iter().find(|j| j.stage == "filter") {
            let acc = self.results.get(&f.id).map_or(0.0, |r| r.valid);
            if acc < self.config.filter {
                return Status::Filtered(acc);
            }
            if !has("first") {
                return Status::NeedsFirst;
            }
            if !has("rest") && !has("again") {
                let ratio = self.relative(candidate, self.config.tasks[0].name()).unwrap_or(0.0);
                if ratio < self.config.gate || self.config.tasks.len() == 1 {
                    return if self.config.tasks.len() == 1 { Status::Evaluated(ratio) } else { Status::Weak(ratio) };
                }
                return Status::NeedsRest;
            }
        }
        match self.score(candidate) {
            Some(s) => Status::Evaluated(s),
            None => Status::Running, // a baseline whose runs are not planned yet
        }
    }

    /// The population: evaluated candidates, best score first (ties: the older), at most
    /// `population` of them.
    pub fn population(&self) -> Vec<(i64, f64)> {
        let mut scored: Vec<(i64, f64)> = self
            .candidates
            .iter()
            .filter_map(|c| match self.status(c.id) {
                Status::Evaluated(s) => Some((c.id, s)),
                _ => None,
            })
            .collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        scored.truncate(self.config.population.max(1));
        scored
    }

    /// Counts for progress lines and the report.
    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for r in &self.rounds {
            c.generated += r.generated as u64;
            c.rejected += r.rejected as u64;
            c.duplicates += r.duplicates as u64;
        }
        for cand in &self.candidates {
            match self.status(cand.id) {
                Status::Filtered(_) => c.filtered += 1,
                Status::Weak(_) => c.weak += 1,
                Status::Evaluated(_) => c.evaluated += 1,
                _ => c.running += 1,
            }
        }
        c.jobs_done = self.results.len() as u64;
        c.jobs = self.jobs.len() as u64;
        c.stopped_early =
            self.results.values().filter(|r| r.outcome == crate::train::RunEnd::StoppedEarly).count() as u64;
        c.best = self.population().iter().find(|(id, _)| *id != BASELINE).map(|p| p.1);
        c
    }

    /// The spec of a job.
    pub fn spec(&self, job: &JobRow) -> Result<JobSpec, String> {
        serde_json::from_str(&job.spec).map_err(|e| format!("job {} has a bad spec: {e}", job.id))
    }
}

/// How far a search has come.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Counts {
    /// Mutants drawn, rejected as invalid, skipped as duplicates.
    pub generated: u64,
    pub rejected: u64,
    pub duplicates: u64,
    /// Candidates (seeds included) by status.
    pub filtered: u64,
    pub weak: u64,
    pub evaluated: u64,
    pub running: u64,
    pub jobs: u64,
    pub jobs_done: u64,
    pub stopped_early: u64,
    /// The best score of a candidate other than the baseline.
    pub best: Option<f64>,
}

impl Counts {
    /// The candidates' fates in one line, as the progress line and `status` print them.
    pub fn candidates_line(&self) -> String {
        format!(
            "mutants {} (invalid {}, duplicates {}) | filtered {} | weak {} | scored {}",
            self.generated, self.rejected, self.duplicates, self.filtered, self.weak, self.evaluated
        )
    }

    /// The best score, or `-` before any.
    pub fn best_text(&self) -> String {
        self.best.map_or("-".into(), |b| format!("{b:.3}"))
    }
}
