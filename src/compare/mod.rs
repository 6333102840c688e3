//! `cellc compare`: is this cell better than that one, and by how much? Every cell is trained on
//! the same seeds with common random numbers: the same batches in the same order, the same
//! evaluation sets, and the same initial values for parameters that share a name (each
//! parameter's stream is forked from the seed by its name), so the per-seed differences between
//! two cells carry little noise besides the cells' own. The report gives each cell's mean and
//! interval, and each cell's paired difference from the first with its interval and p-value.
//!
//! The runs are jobs on the shared queue (`experiment`): `cellc worker`s anywhere train them,
//! runs already in the store are never trained again (the experiment is named after what defines
//! it), and asking again with more seeds trains only the new ones. With a sequential plan
//! (`--until-decided`), seeds are added one at a time until every difference is decided or the
//! maximum is reached, at an error rate that stays honest ([`stats::Sequential`]).

pub mod report;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::experiment::stats::{self, Sequential, Summary};
use crate::experiment::{Coordinator, JobResult, JobSpec, Round};
use crate::store::{ExperimentStore, JobRow, RoundRow, now_ms};
use crate::tasks::TaskKind;
use crate::train::TrainConfig;
use crate::workspace::CellSource;

/// The experiment kind of a comparison in the store.
pub const KIND: &str = "compare";

/// What defines a comparison's runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CompareConfig {
    /// The cells; the first is the reference the others are compared with.
    pub cells: Vec<CellSource>,
    /// Every run's training configuration; run i trains with seed `first_seed + i`.
    pub config: TrainConfig,
    pub first_seed: u64,
}

impl CompareConfig {
    /// The experiment's name: `compare-` and a hash of what defines its runs (not where the data
    /// is), so the same comparison asked again finds its runs.
    pub fn name(&self) -> String {
        let mut c = self.config.clone();
        c.task.data = None;
        let config = serde_json::to_string(&c).unwrap_or_default();
        let mut parts: Vec<&str> = vec![KIND, &config];
        let seed = self.first_seed.to_string();
        parts.push(&seed);
        for cell in &self.cells {
            parts.extend([cell.name.as_str(), cell.text.as_str()]);
        }
        format!("compare-{}", crate::store::key(&parts))
    }

    /// Run `seed_index`'s spec for cell `cell`.
    fn spec(&self, cell: usize, seed_index: usize) -> JobSpec {
        let mut config = self.config.clone();
        config.seed = self.first_seed + seed_index as u64;
        JobSpec { cell: self.cells[cell].clone(), config, setting: None, stop_below: vec![] }
    }
}

/// How many seeds to train.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub enum Seeds {
    /// Exactly this many, reported at 95%.
    Fixed(usize),
    /// One at a time until every difference is decided ([`Sequential`]).
    UntilDecided(Sequential),
}

impl Seeds {
    /// The confidence level of the reported intervals.
    pub fn level(&self) -> f64 {
        match self {
            Seeds::Fixed(_) => 0.95,
            Seeds::UntilDecided(s) => s.level(),
        }
    }
}

/// Creates the comparison in the store, or finds it (its runs are reused); either way it is set
/// running, so workers train what the plan adds.
pub fn open(store: &mut dyn ExperimentStore, config: &CompareConfig) -> Result<String, String> {
    if config.cells.len() < 2 {
        return Err("compare needs at least two cells".into());
    }
    let name = config.name();
    if store.experiment(&name)?.is_none() {
        let json = serde_json::to_string(config).map_err(|e| e.to_string())?;
        store.create_experiment(&name, KIND, &json)?;
    }
    store.set_experiment_state(&name, "running")?;
    Ok(name)
}

/// Which test metric a comparison is analysed by. Not part of what defines its runs: the same
/// runs can be read either way.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Metric {
    /// The task's headline metric (perplexity on PTB): what `cellc compare` reports.
    Headline,
    /// The metric a study or search scores by (`TaskKind::scored`: next-word accuracy on PTB):
    /// what a search's confirmation stage, whose score is a ratio of accuracies, needs.
    Scored,
}

/// A comparison as the store holds it.
pub struct View {
    pub name: String,
    pub config: CompareConfig,
    pub jobs: Vec<JobRow>,
    pub rounds: usize,
    /// Per cell (index), per seed index: the finished run's result.
    pub results: Vec<BTreeMap<usize, JobResult>>,
    /// The metric [`View::test_values`] and [`View::analyse`] read (the headline unless set).
    pub metric: Metric,
}

impl View {
    pub fn load(store: &mut dyn ExperimentStore, name: &str) -> Result<View, String> {
        let row = store.experiment(name)?.ok_or_else(|| format!("the store has no comparison `{name}`"))?;
        let config: CompareConfig =
            serde_json::from_str(&row.config).map_err(|e| format!("comparison `{name}` has a bad config: {e}"))?;
        let jobs = store.jobs(name)?;
        let mut results = vec![BTreeMap::new(); config.cells.len()];
        for j in &jobs {
            if let Some(r) = &j.result {
                let r: JobResult =
                    serde_json::from_str(r).map_err(|e| format!("job {} has a bad result: {e}", j.id))?;
                let cell = (j.candidate - 1) as usize;
                if let Some(per_seed) = results.get_mut(cell) {
                    per_seed.insert(j.setting as usize, r);
                }
            }
        }
        Ok(View {
            name: name.to_string(),
            config,
            rounds: store.rounds(name)?.len(),
            jobs,
            results,
            metric: Metric::Headline,
        })
    }

    /// Seeds every cell has a result for, from the first, without gaps.
    pub fn complete_seeds(&self) -> usize {
        (0..).take_while(|s| self.results.iter().all(|r| r.contains_key(s))).count()
    }

    /// Seeds planned (jobs exist for them).
    fn planned_seeds(&self) -> usize {
        self.jobs.iter().map(|j| j.setting as usize + 1).max().unwrap_or(0)
    }

    /// The task.
    pub fn kind(&self) -> TaskKind {
        self.config.config.task.kind
    }

    /// Whether a higher value of the analysed metric is better.
    pub fn higher_is_better(&self) -> bool {
        match self.metric {
            Metric::Headline => self.kind().higher_is_better(),
            Metric::Scored => self.kind().scored_by_accuracy(),
        }
    }

    /// The analysed metric's name.
    pub fn metric_name(&self) -> &'static str {
        match self.metric {
            Metric::Headline => self.kind().metric(),
            Metric::Scored => self.kind().scored_name(),
        }
    }

    /// Cell `cell`'s test metric ([`View::metric`]) on each of the first `n` seeds; a run that
    /// diverged or failed counts as the worst value.
    pub fn test_values(&self, cell: usize, n: usize) -> Vec<f64> {
        let worst = if self.higher_is_better() { 0.0 } else { f64::INFINITY };
        let kind = self.kind();
        let value = |m: &crate::tasks::Metrics| match self.metric {
            Metric::Headline => m.metric,
            Metric::Scored => m.scored(kind),
        };
        (0..n).map(|s| self.results[cell].get(&s).and_then(|r| r.detail).map_or(worst, |d| value(&d.test))).collect()
    }

    /// The analysis of the first `n` seeds at `seeds`' level.
    pub fn analyse(&self, n: usize, seeds: &Seeds) -> Analysis {
        let level = seeds.level();
        let per_cell: Vec<Summary> =
            (0..self.config.cells.len()).map(|c| Summary::of(&self.test_values(c, n), level)).collect();
        let reference = self.test_values(0, n);
        let higher = self.higher_is_better();
        let differences = (1..self.config.cells.len())
            .map(|c| {
                let d = stats::paired(&reference, &self.test_values(c, n));
                let summary = Summary::of(&d, level);
                let verdict = match (summary.sign(), higher) {
                    (Some(up), _) if n >= min_seeds(seeds) => {
                        if up == higher {
                            Verdict::Better
                        } else {
                            Verdict::Worse
                        }
                    }
                    _ => Verdict::Inconclusive,
                };
                Difference { cell: c, per_seed: d, summary, verdict }
            })
            .collect();
        Analysis { seeds: n, level, per_cell, differences }
    }
}

fn min_seeds(seeds: &Seeds) -> usize {
    match seeds {
        Seeds::Fixed(n) => *n,
        Seeds::UntilDecided(s) => s.min_seeds,
    }
}

/// One cell's difference from the first.
#[derive(Clone, Debug, Serialize)]
pub struct Difference {
    /// The cell's index.
    pub cell: usize,
    /// Its test metric minus the first cell's, per seed.
    pub per_seed: Vec<f64>,
    pub summary: Summary,
    pub verdict: Verdict,
}

/// What an interval says about a cell against the first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Better than the first cell: the interval excludes zero on the side where the task's
    /// headline metric is better.
    Better,
    Worse,
    Inconclusive,
}

/// What the seeds say.
#[derive(Clone, Debug, Serialize)]
pub struct Analysis {
    pub seeds: usize,
    pub level: f64,
    pub per_cell: Vec<Summary>,
    pub differences: Vec<Difference>,
}

/// The comparison as an experiment: it adds seeds until its plan is satisfied.
pub struct Compare {
    pub name: String,
    pub seeds: Seeds,
    pub metric: Metric,
}

impl Coordinator for Compare {
    type View = View;

    fn load(&mut self, store: &mut dyn ExperimentStore) -> Result<View, String> {
        let mut view = View::load(store, &self.name)?;
        view.metric = self.metric;
        Ok(view)
    }

    fn jobs<'v>(&self, view: &'v View) -> &'v [JobRow] {
        &view.jobs
    }

    fn is_done(&self, _view: &View) -> bool {
        // Whether more seeds are wanted depends on this run's plan, not on an earlier one.
        false
    }

    fn rounds(&self, view: &View) -> usize {
        view.rounds
    }

    fn plan(&mut self, view: &View, round: i64, first_job: i64) -> Result<Round, String> {
        let have = view.planned_seeds();
        let want = match self.seeds {
            Seeds::Fixed(n) => n,
            Seeds::UntilDecided(plan) => {
                let done = view.complete_seeds();
                let decided = done >= plan.min_seeds
                    && view.analyse(done, &self.seeds).differences.iter().all(|d| d.verdict != Verdict::Inconclusive);
                if decided || done >= plan.max_seeds { done } else { done.max(plan.min_seeds - 1) + 1 }
            }
        };
        let mut row = RoundRow { round, generated: 0, rejected: 0, duplicates: 0, planned_ms: now_ms() };
        let candidates = if have == 0 && view.rounds == 0 {
            crate::experiment::cell_candidates(&view.config.cells, round)
        } else {
            vec![]
        };
        let mut jobs = vec![];
        for seed in have..want {
            for cell in 0..view.config.cells.len() {
                let spec = view.config.spec(cell, seed);
                let id = first_job + jobs.len() as i64;
                jobs.push(crate::experiment::queued_job(
                    id,
                    &view.name,
                    cell as i64 + 1,
                    KIND,
                    seed as i64,
                    round,
                    &spec,
                )?);
            }
        }
        row.generated = (want.saturating_sub(have)) as i64;
        Ok(Round { row, candidates, jobs })
    }
}

/// The number of seeds the plan looks at: `n` of a fixed plan (or what is done, if fewer); for a
/// sequential plan, the first look at which every difference is decided, else the last look.
pub fn stopping_point(view: &View, seeds: &Seeds) -> usize {
    let done = view.complete_seeds();
    match *seeds {
        Seeds::Fixed(n) => n.min(done),
        Seeds::UntilDecided(plan) => (plan.min_seeds..=plan.max_seeds.min(done))
            .find(|&n| view.analyse(n, seeds).differences.iter().all(|d| d.verdict != Verdict::Inconclusive))
            .unwrap_or(plan.max_seeds.min(done)),
    }
}

/// Coordinates comparison `name` until its plan is satisfied, or `stop` says so.
pub fn drive(
    store: &mut dyn ExperimentStore,
    name: &str,
    seeds: Seeds,
    metric: Metric,
    poll: std::time::Duration,
    stop: &dyn Fn() -> bool,
    observe: &mut dyn FnMut(&View),
) -> Result<crate::experiment::Ended, String> {
    let mut compare = Compare { name: name.to_string(), seeds, metric };
    crate::experiment::drive(store, name, &mut compare, None, poll, stop, observe)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::job::{Detail, failed_result};
    use crate::tasks::{Metrics, TaskConfig};

    #[test]
    fn a_ptb_comparison_reads_perplexity_or_next_word_accuracy() {
        let cell = |name: &str| CellSource { name: name.into(), file: String::new(), text: String::new() };
        let config = CompareConfig {
            cells: vec![cell("gru"), cell("odd")],
            config: TrainConfig::short(TaskConfig::new(TaskKind::Ptb), 8, 10, 1),
            first_seed: 1000,
        };
        let result = |perplexity: f64, accuracy: f64| {
            let m = Metrics { metric: perplexity, secondary: Some(accuracy), loss: perplexity.ln() };
            JobResult { detail: Some(Detail { valid: m, test: m }), ..failed_result() }
        };
        let results = vec![
            BTreeMap::from([(0, result(300.0, 0.12)), (1, result(310.0, 0.125))]),
            BTreeMap::from([(0, result(1e149, 0.002)), (1, result(f64::INFINITY, 0.001))]),
        ];
        let mut v = View { name: "c".into(), config, jobs: vec![], rounds: 0, results, metric: Metric::Headline };
        assert_eq!((v.metric_name(), v.higher_is_better()), ("perplexity", false));
        assert_eq!(v.test_values(1, 2), vec![1e149, f64::INFINITY]);
        v.metric = Metric::Scored;
        assert!(v.higher_is_better());
        assert_eq!(v.test_values(0, 2), vec![0.12, 0.125]);
        assert_eq!(v.test_values(1, 2), vec![0.002, 0.001], "a search's ratio of accuracies stays finite");
    }
}
