//! `cellc paper`: the paper's Table 1 reproduced by one command. With several settings from the
//! paper's grid, every cell is trained on every task with each of them on the selection seeds
//! (round 0), and the best by mean validation is trained on the evaluation seeds (round 1); with
//! one setting, round 0 trains the evaluation seeds directly. Only evaluation seeds are
//! reported, and every cell shares them, so the report's differences are paired.
//!
//! The study is an experiment on the shared job queue (`experiment`): its runs are jobs that
//! local worker processes, or `cellc worker`s on other machines, train. An interrupted study
//! resumes where it stopped, and a finished run is never trained again: the study is named after
//! what defines its runs.

pub mod claims;
pub mod curves;
pub mod plan;
pub mod report;

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::experiment::{Coordinator, JobResult, JobSpec, Round};
use crate::store::{ExperimentStore, JobRow, RoundRow, now_ms};
use crate::tasks::TaskKind;
use crate::train::TrainConfig;
use crate::train::grid::{self, Setting};
use crate::workspace::CellSource;
use plan::Profile;

/// One finished run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// What defines the run, hashed: the same key is the same computation.
    pub key: String,
    /// The study it belongs to (`paper`, or a search's name).
    pub study: String,
    pub cell: String,
    pub cell_source: String,
    pub task: String,
    /// Which hyperparameter setting of the (cell, task) pair.
    pub setting: u32,
    pub seed: u64,
    /// The training configuration, JSON.
    pub config: String,
    /// The headline metric's name (`accuracy`, `NLL`, ...).
    pub metric: String,
    pub valid: f64,
    pub test: f64,
    /// Validation metric after each evaluation, JSON `[[step, value], ...]`.
    pub curve: String,
    pub steps: u64,
    pub seconds: f64,
    /// How the run ended, `train::RunEnd` as text: `ok`, or `diverged at step N` (valid and test
    /// are then the worst value).
    pub outcome: String,
}

/// The experiment kind of a study in the store, and what records call it.
pub const KIND: &str = "study";
pub const STUDY: &str = "paper";

/// What one study covers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Study {
    pub cells: Vec<CellSource>,
    pub tasks: Vec<TaskKind>,
    pub profile: Profile,
    /// Seed of the settings' draws and the first training seed.
    pub seed: u64,
    /// The data directory (`--data`; tasks find their data in it by [`TaskKind::locate_data`]).
    /// Not part of what defines the runs.
    #[serde(default)]
    pub data: Option<std::path::PathBuf>,
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

impl Study {
    fn pairs(&self) -> usize {
        self.cells.len() * self.tasks.len()
    }

    /// The study's name in the store: `paper-` and a hash of what defines its runs.
    pub fn name(&self) -> String {
        let mut definition = self.clone();
        definition.data = None;
        let json = serde_json::to_string(&definition).unwrap_or_default();
        format!("{STUDY}-{}", crate::store::key(&[KIND, &json]))
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

    /// The estimated CPU seconds of every run the study plans, in queue order (selection, then
    /// evaluation; task by task), from the measured throughputs.
    pub fn estimated_runs(&self) -> Vec<f64> {
        let p = &self.profile;
        let selection = if p.selects() { p.settings * p.selection_seeds } else { 0 };
        let mut out = vec![];
        for per_pair in [selection, p.seeds] {
            for &task in &self.tasks {
                out.extend(std::iter::repeat_n(p.run_cpu_seconds(task, self.pairs()), per_pair * self.cells.len()));
            }
        }
        out
    }

    /// Round 0 with a setting search: every setting of every (cell, task) pair on the selection
    /// seeds.
    pub fn selection_jobs(&self) -> Vec<Job> {
        let mut jobs = vec![];
        for &task in &self.tasks {
            for i in 0..self.profile.settings {
                for &seed in &self.profile.seed_plan(self.seed).selection {
                    for c in 0..self.cells.len() {
                        jobs.push(self.job(c, task, i, seed));
                    }
                }
            }
        }
        jobs
    }

    /// The reported runs: the chosen setting of each pair (by the selection runs' mean
    /// validation; the defaults when there is nothing to choose) on the evaluation seeds.
    pub fn evaluation_jobs(&self, records: &[RunRecord]) -> Vec<Job> {
        let plan = self.profile.seed_plan(self.seed);
        let mut jobs = vec![];
        for &task in &self.tasks {
            for (c, cell) in self.cells.iter().enumerate() {
                let Some(best) = report::best_setting(records, &cell.name, task, &plan.selection) else { continue };
                for &seed in &plan.evaluation {
                    jobs.push(self.job(c, task, best as usize, seed));
                }
            }
        }
        jobs
    }

    /// A job's training configuration (its task's data found under the study's directory).
    pub fn config(&self, job: &Job) -> Result<TrainConfig, String> {
        let data = job.task.locate_data(self.data.as_deref())?;
        let mut c = grid::config(job.task, job.setting, self.profile.hidden, job.steps, job.seed, data);
        if let Some(points) = self.profile.curve_points {
            c.eval_every = (job.steps / points.max(1)).max(1);
        }
        if job.task == TaskKind::Ptb {
            c.task.eval_tokens = self.profile.ptb_eval_words;
        }
        Ok(c)
    }

    fn spec(&self, job: &Job) -> Result<JobSpec, String> {
        Ok(JobSpec {
            cell: self.cells[job.cell].clone(),
            config: self.config(job)?,
            setting: Some(job.setting),
            stop_below: vec![],
        })
    }

    /// Creates the study in the store, or finds it (its runs are reused), and sets it running.
    pub fn open(&self, store: &mut dyn ExperimentStore) -> Result<String, String> {
        let name = self.name();
        if store.experiment(&name)?.is_none() {
            let json = serde_json::to_string(self).map_err(|e| e.to_string())?;
            store.create_experiment(&name, KIND, &json)?;
        } else if store.experiment(&name)?.is_some_and(|e| e.state != "done") {
            store.set_experiment_state(&name, "running")?;
        }
        Ok(name)
    }
}

/// A study as the store holds it: its runs as records.
pub struct View {
    pub name: String,
    pub study: Study,
    pub state: String,
    pub jobs: Vec<JobRow>,
    pub rounds: usize,
    /// The finished runs.
    pub records: Vec<RunRecord>,
}

impl View {
    pub fn load(store: &mut dyn ExperimentStore, name: &str) -> Result<View, String> {
        let row = store.experiment(name)?.ok_or_else(|| format!("the store has no study `{name}`"))?;
        let study: Study =
            serde_json::from_str(&row.config).map_err(|e| format!("study `{name}` has a bad config: {e}"))?;
        let jobs = store.jobs(name)?;
        let mut records = vec![];
        for j in jobs.iter().filter(|j| j.result.is_some()) {
            records.push(record(&study, j)?);
        }
        Ok(View { name: name.to_string(), study, state: row.state, rounds: store.rounds(name)?.len(), jobs, records })
    }
}

/// A finished job as the report's record.
fn record(study: &Study, j: &JobRow) -> Result<RunRecord, String> {
    let bad = |what: &str, e: serde_json::Error| format!("job {} has a bad {what}: {e}", j.id);
    let spec: JobSpec = serde_json::from_str(&j.spec).map_err(|e| bad("spec", e))?;
    let r: JobResult = serde_json::from_str(j.result.as_deref().unwrap_or("")).map_err(|e| bad("result", e))?;
    let kind = spec.config.task.kind;
    let cell = &study.cells[(j.candidate - 1) as usize];
    Ok(RunRecord {
        key: j.id.to_string(),
        study: STUDY.into(),
        cell: cell.name.clone(),
        cell_source: cell.text.clone(),
        task: kind.name().into(),
        setting: j.setting as u32,
        seed: spec.config.seed,
        config: serde_json::to_string(&spec.config).unwrap_or_default(),
        metric: kind.scored_name().into(),
        valid: r.valid,
        test: r.test,
        curve: serde_json::to_string(&r.curve).unwrap_or_default(),
        steps: r.steps,
        seconds: r.seconds,
        outcome: r.outcome.to_string(),
    })
}

/// The study as an experiment: round 0 selects settings (or evaluates, with one setting), round
/// 1 evaluates the chosen ones, then it is done.
pub struct StudyCoordinator {
    pub name: String,
}

impl Coordinator for StudyCoordinator {
    type View = View;

    fn load(&mut self, store: &mut dyn ExperimentStore) -> Result<View, String> {
        View::load(store, &self.name)
    }

    fn jobs<'v>(&self, view: &'v View) -> &'v [JobRow] {
        &view.jobs
    }

    fn is_done(&self, view: &View) -> bool {
        view.state == "done"
    }

    fn rounds(&self, view: &View) -> usize {
        view.rounds
    }

    fn plan(&mut self, view: &View, round: i64, first_job: i64) -> Result<Round, String> {
        let study = &view.study;
        let selects = study.profile.selects();
        let (jobs, stage) = match round {
            0 if selects => (study.selection_jobs(), "selection"),
            0 => (study.evaluation_jobs(&view.records), "evaluation"),
            1 if selects => (study.evaluation_jobs(&view.records), "evaluation"),
            _ => (vec![], "done"),
        };
        let candidates = if round == 0 { crate::experiment::cell_candidates(&study.cells, round) } else { vec![] };
        let mut rows = vec![];
        for job in &jobs {
            let id = first_job + rows.len() as i64;
            let spec = study.spec(job)?;
            let setting = job.setting_index as i64;
            rows.push(crate::experiment::queued_job(
                id,
                &view.name,
                job.cell as i64 + 1,
                stage,
                setting,
                round,
                &spec,
            )?);
        }
        let row = RoundRow { round, generated: rows.len() as i64, rejected: 0, duplicates: 0, planned_ms: now_ms() };
        Ok(Round { row, candidates, jobs: rows })
    }
}

/// Per stage (selection, evaluation): runs planned and runs finished.
pub fn stage_counts(view: &View) -> HashMap<&str, (usize, usize)> {
    let mut counts: HashMap<&str, (usize, usize)> = HashMap::new();
    for j in &view.jobs {
        let c = counts.entry(j.stage.as_str()).or_default();
        c.0 += 1;
        c.1 += usize::from(j.result.is_some());
    }
    counts
}

/// Coordinates study `name` until it is done or `stop` says so.
pub fn drive(
    store: &mut dyn ExperimentStore,
    name: &str,
    poll: std::time::Duration,
    stop: &dyn Fn() -> bool,
    observe: &mut dyn FnMut(&View),
) -> Result<crate::experiment::Ended, String> {
    let mut c = StudyCoordinator { name: name.to_string() };
    crate::experiment::drive(store, name, &mut c, None, poll, stop, observe)
}
