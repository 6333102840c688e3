//! `cellc paper`: the paper's Table 1 reproduced by one command. Every cell is trained on every
//! task with a few settings from the paper's grid (phase 1, seed 1); the best setting by
//! validation is trained again with more seeds (phase 2) so the report can show which
//! differences are real. Every finished run goes into the [`crate::store`]: an interrupted study
//! resumes where it stopped. Runs use one thread each, `workers` at a time.

pub mod plan;
pub mod report;

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Instant;

use crate::store::{RunRecord, Store};
use crate::tasks::TaskKind;
use crate::train::grid::{self, Setting};
use crate::train::{Hooks, Run, RunEnd, Stop, TrainConfig};
use crate::workspace::CellSource;
use plan::Profile;

/// The study's name in the store.
pub const STUDY: &str = "paper";

/// What one study covers.
pub struct Study {
    pub cells: Vec<CellSource>,
    pub tasks: Vec<TaskKind>,
    pub profile: Profile,
    /// Seed of the settings' draws and the first training seed.
    pub seed: u64,
    /// The data directory (`--data`; tasks find their data in it by [`TaskKind::locate_data`]).
    pub data: Option<std::path::PathBuf>,
    pub workers: usize,
}

/// One training run to do.
#[derive(Clone)]
pub struct Job {
    pub cell: usize,
    pub task: TaskKind,
    pub setting_index: usize,
    pub setting: Setting,
    pub seed: u64,
    pub steps: u64,
}

/// What the caller hears while the study runs.
pub enum Progress<'a> {
    /// A phase starts: how many runs it has and how many the store already holds.
    Phase { phase: u8, runs: usize, stored: usize },
    /// A run finished (or was found in the store).
    Finished { record: &'a RunRecord, done: usize, of: usize },
}

impl Study {
    fn pairs(&self) -> usize {
        self.cells.len() * self.tasks.len()
    }

    fn job(&self, cell: usize, task: TaskKind, setting_index: usize, seed: u64) -> Job {
        Job {
            cell,
            task,
            setting_index,
            setting: grid::setting(task, setting_index, self.seed, self.profile.max_layers),
            seed,
            steps: self.profile.steps(task, self.pairs()),
        }
    }

    /// Phase 1: every setting of every (cell, task) pair with the first seed.
    pub fn phase1(&self) -> Vec<Job> {
        let mut jobs = vec![];
        for &task in &self.tasks {
            for i in 0..self.profile.settings {
                for c in 0..self.cells.len() {
                    jobs.push(self.job(c, task, i, self.seed));
                }
            }
        }
        jobs
    }

    /// Phase 2: the best setting of each pair (by phase 1's validation) with the other seeds.
    pub fn phase2(&self, records: &[RunRecord]) -> Vec<Job> {
        let mut jobs = vec![];
        for &task in &self.tasks {
            for (c, cell) in self.cells.iter().enumerate() {
                let Some(best) = report::best_setting(records, &cell.name, task, self.seed) else { continue };
                for k in 1..self.profile.seeds as u64 {
                    jobs.push(self.job(c, task, best as usize, self.seed + k));
                }
            }
        }
        jobs
    }

    /// The store key of a job: cell source, task, setting, seed, steps and model size (not
    /// where the data is).
    pub fn key(&self, job: &Job) -> String {
        let config_json = serde_json::to_string(&self.config(job, None)).unwrap_or_default();
        let cell = &self.cells[job.cell];
        crate::store::key(&[STUDY, &cell.name, &cell.text, job.task.name(), &config_json])
    }

    /// A job's training configuration, its task's data at `data`.
    fn config(&self, job: &Job, data: Option<std::path::PathBuf>) -> TrainConfig {
        let mut c = grid::config(job.task, job.setting, self.profile.hidden, job.steps, job.seed, data);
        if job.task == TaskKind::Ptb {
            c.task.eval_tokens = self.profile.ptb_eval_words;
        }
        c
    }

    /// Runs both phases, skipping runs the store holds. Returns every record of the study.
    pub fn run(
        &self,
        store: &Mutex<Store>,
        observe: &(dyn Fn(Progress<'_>) + Sync),
        stop: &(dyn Fn() -> bool + Sync),
    ) -> Result<Vec<RunRecord>, String> {
        let phase1 = self.phase1();
        self.execute(1, &phase1, store, observe, stop)?;
        let records = lock(store).study(STUDY)?;
        let phase2 = self.phase2(&records);
        self.execute(2, &phase2, store, observe, stop)?;
        lock(store).study(STUDY)
    }

    fn execute(
        &self,
        phase: u8,
        jobs: &[Job],
        store: &Mutex<Store>,
        observe: &(dyn Fn(Progress<'_>) + Sync),
        stop: &(dyn Fn() -> bool + Sync),
    ) -> Result<(), String> {
        let mut todo = VecDeque::new();
        let mut stored = 0;
        for job in jobs {
            let key = self.key(job);
            if lock(store).get(&key)?.is_some() {
                stored += 1;
            } else {
                todo.push_back((key, job.clone()));
            }
        }
        observe(Progress::Phase { phase, runs: jobs.len(), stored });
        let queue = Mutex::new(todo);
        let done = Mutex::new(stored);
        let failure: Mutex<Option<String>> = Mutex::new(None);
        std::thread::scope(|scope| {
            for _ in 0..self.workers.max(1) {
                scope.spawn(|| {
                    loop {
                        if stop() || lock(&failure).is_some() {
                            return;
                        }
                        let Some((key, job)) = lock(&queue).pop_front() else { return };
                        let record = match self.train(&key, &job, stop) {
                            Ok(Some(r)) => r,
                            Ok(None) => return, // interrupted: not stored, redone next time
                            Err(e) => {
                                *lock(&failure) = Some(e);
                                return;
                            }
                        };
                        if let Err(e) = lock(store).put(&record) {
                            *lock(&failure) = Some(format!("cannot store a run: {e}"));
                            return;
                        }
                        let n = {
                            let mut d = lock(&done);
                            *d += 1;
                            *d
                        };
                        observe(Progress::Finished { record: &record, done: n, of: jobs.len() });
                    }
                });
            }
        });
        match failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
            Some(e) => Err(e),
            None if stop() => Err("interrupted; finished runs are stored, run the same command to continue".into()),
            None => Ok(()),
        }
    }

    /// Trains one job; `None` when stopped before the end.
    fn train(&self, key: &str, job: &Job, stop: &(dyn Fn() -> bool + Sync)) -> Result<Option<RunRecord>, String> {
        let source = &self.cells[job.cell];
        let cell = source.checked()?;
        let config = self.config(job, job.task.locate_data(self.data.as_deref())?);
        let started = Instant::now();
        let mut run = Run::start(&cell, config.clone())?;
        let result = run.train(Hooks { cancel: Some(&stop), ..Hooks::default() })?;
        let kind = job.task;
        let curve: Vec<(u64, f64)> = run.state.history.iter().map(|r| (r.step, r.valid.scored(kind))).collect();
        let (valid, test, outcome, steps) = match result {
            Ok(o) if o.stop == Stop::Interrupted => return Ok(None),
            Ok(o) => (o.valid.scored(kind), o.test.scored(kind), RunEnd::Ok, o.steps),
            Err(d) => {
                let worst = if kind.scored_by_accuracy() { 0.0 } else { report::DIVERGED_NLL };
                (worst, worst, RunEnd::Diverged { step: d.step }, d.step)
            }
        };
        Ok(Some(RunRecord {
            key: key.to_string(),
            study: STUDY.into(),
            cell: source.name.clone(),
            cell_source: source.text.clone(),
            task: kind.name().into(),
            setting: job.setting_index as u32,
            seed: job.seed,
            config: serde_json::to_string(&config).unwrap_or_default(),
            metric: kind.scored_name().into(),
            valid,
            test,
            curve: serde_json::to_string(&curve).unwrap_or_default(),
            steps,
            seconds: started.elapsed().as_secs_f64(),
            outcome: outcome.to_string(),
        }))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A worker that panicked has already failed the study; the data is still consistent.
    m.lock().unwrap_or_else(|p| p.into_inner())
}
