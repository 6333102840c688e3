//! The confirmation stage: the search's best scores are the best of several noisy runs, so its
//! top cells are trained again beside the GRU on fresh seeds, paired (`compare`'s common random
//! numbers and its sequential plan), one comparison per task of the score, until every
//! difference is decided or the seed limit is reached. A cell "beats the GRU" only when its
//! confirmed score's interval lies above 1.

use serde::Serialize;

use super::view::{BASELINE, View};
use crate::compare::{self, CompareConfig, Seeds};
use crate::experiment::stats::{Sequential, Summary};
use crate::store::ExperimentStore;
use crate::tasks::TaskKind;
use crate::train::grid;
use crate::workspace::CellSource;

/// Confirmation seeds start here, away from the seeds the search's own runs use (1 and up), so
/// no run that chose a cell also measures it.
pub const FIRST_SEED: u64 = 1_000;

/// The sequential plan of every confirmation: 3 seeds, then one more at a time up to the
/// search's `confirm_seeds`, at an error rate of 5% per difference.
pub fn plan(view: &View) -> Sequential {
    Sequential { min_seeds: 3, max_seeds: view.config.confirm_seeds.max(3), alpha: 0.05 }
}

/// The search's `confirm_top` best cells it found (mutants, not its seed cells), best first.
pub fn top_cells(view: &View) -> Vec<(i64, CellSource)> {
    view.population()
        .into_iter()
        .filter_map(|(id, _)| {
            let c = view.candidate(id).filter(|c| c.parent.is_some())?;
            Some((id, CellSource { name: c.name.clone(), file: format!("candidate {id}"), text: c.source.clone() }))
        })
        .take(view.config.confirm_top)
        .collect()
}

/// One comparison per task of the score: the GRU first, then the top cells; the defaults
/// setting, the search's steps and H, seeds from [`FIRST_SEED`].
pub fn comparisons(view: &View) -> Result<Vec<CompareConfig>, String> {
    let cells = top_cells(view);
    if cells.is_empty() {
        return Ok(vec![]);
    }
    let gru = view.candidate(BASELINE).ok_or("the search has no baseline cell")?;
    let gru = CellSource { name: gru.name.clone(), file: "baseline".into(), text: gru.source.clone() };
    let mut out = vec![];
    for &task in &view.config.tasks {
        let config = view.config.config(task, grid::setting(task, 0, view.config.seed, 1), FIRST_SEED)?;
        let mut all = vec![gru.clone()];
        all.extend(cells.iter().map(|(_, c)| c.clone()));
        out.push(CompareConfig { cells: all, config, first_seed: FIRST_SEED });
    }
    Ok(out)
}

/// The seeds plan of every comparison.
pub fn seeds(view: &View) -> Seeds {
    Seeds::UntilDecided(plan(view))
}

/// One cell's confirmed result.
#[derive(Clone, Debug, Serialize)]
pub struct Confirmed {
    pub candidate: i64,
    pub name: String,
    /// Per task: the cell's test metric over the GRU's, per seed, summarised at the plan's level.
    pub ratios: Vec<(TaskKind, Summary)>,
    /// The min-over-tasks score of the mean ratios, and its interval: [min of the tasks' lows,
    /// min of the tasks' highs].
    pub score: f64,
    pub low: f64,
    pub high: f64,
    /// The interval lies above 1 on every task.
    pub beats_gru: bool,
}

/// The confirmed scores from the comparisons' views (in the order of [`comparisons`]), best
/// first; `None` while a comparison has fewer seeds than the plan's first look.
pub fn results(view: &View, views: &[compare::View]) -> Option<Vec<Confirmed>> {
    let cells = top_cells(view);
    let seeds = self::seeds(view);
    let mut out: Vec<Confirmed> = cells
        .iter()
        .map(|(id, c)| Confirmed {
            candidate: *id,
            name: c.name.clone(),
            ratios: vec![],
            score: f64::INFINITY,
            low: f64::INFINITY,
            high: f64::INFINITY,
            beats_gru: true,
        })
        .collect();
    for v in views {
        let n = compare::stopping_point(v, &seeds);
        if n < plan(view).min_seeds {
            return None;
        }
        let gru = v.test_values(0, n);
        for (i, c) in out.iter_mut().enumerate() {
            let ratios: Vec<f64> =
                v.test_values(i + 1, n).iter().zip(&gru).map(|(x, g)| if *g > 0.0 { x / g } else { 0.0 }).collect();
            let s = Summary::of(&ratios, seeds.level());
            c.score = c.score.min(s.mean);
            c.low = c.low.min(s.low());
            c.high = c.high.min(s.high());
            c.beats_gru &= s.low() > 1.0;
            c.ratios.push((v.kind(), s));
        }
    }
    out.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.candidate.cmp(&b.candidate)));
    Some(out)
}

/// The comparisons of the confirmation stage as the store holds them (those not opened yet are
/// left out).
pub fn load(store: &mut dyn ExperimentStore, view: &View) -> Result<Vec<compare::View>, String> {
    let mut out = vec![];
    for c in comparisons(view)? {
        if store.experiment(&c.name())?.is_some() {
            let mut v = compare::View::load(store, &c.name())?;
            // The search's score is a ratio of accuracies (next-word accuracy on PTB).
            v.metric = compare::Metric::Scored;
            out.push(v);
        }
    }
    Ok(out)
}

/// The confirmation's results and when it finished (hours since the search began), once every
/// comparison has reached its first look; `None` before.
pub fn confirmed(store: &mut dyn ExperimentStore, view: &View) -> Result<Option<(Vec<Confirmed>, f64)>, String> {
    let wanted = comparisons(view)?.len();
    let views = load(store, view)?;
    if wanted == 0 || views.len() < wanted {
        return Ok(None);
    }
    let Some(results) = results(view, &views) else { return Ok(None) };
    let last = views.iter().flat_map(|v| v.jobs.iter().filter_map(|j| j.finished_ms)).max().unwrap_or(view.created_ms);
    Ok(Some((results, (last - view.created_ms) as f64 / 3.6e6)))
}
