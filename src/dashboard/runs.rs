//! The run-level views: the overview of the whole store (experiments with their progress, runs
//! in flight, workers, errors, the latest results), an experiment's list of runs, and one run
//! with its learning curves (training loss, validation metric, learning rate).

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::{Value, json};

use super::cache::Cache;
use crate::experiment::JobSpec;
use crate::experiment::job::JobResult;
use crate::store::{JobRow, JobState, ProgressRow};
use crate::train::{EvalRecord, RunEnd};

/// How many finished runs the overview lists, newest first.
const RECENT: usize = 20;

/// What the overview needs of a result, parsed once per run (done jobs never change).
#[derive(Clone, Debug, Deserialize)]
pub struct Brief {
    #[serde(with = "crate::io::float")]
    pub valid: f64,
    #[serde(with = "crate::io::float")]
    pub test: f64,
    pub outcome: RunEnd,
    pub steps: u64,
    pub seconds: f64,
}

/// Parsed results by job id.
pub type Briefs = HashMap<i64, Option<Brief>>;

/// The result of `job` as far as the overview needs it (`None`: not done, or unreadable).
pub fn brief<'a>(briefs: &'a mut Briefs, job: &JobRow) -> Option<&'a Brief> {
    let result = job.result.as_deref()?;
    briefs.entry(job.id).or_insert_with(|| serde_json::from_str(result).ok()).as_ref()
}

/// A run's one-line identity: its experiment, candidate (cell) name, task and stage.
fn identity(cache: &Cache, j: &JobRow) -> Value {
    let candidate =
        cache.candidate_of(&j.search, j.candidate).map_or_else(|| j.candidate.to_string(), |c| c.name.clone());
    json!({"run": j.id, "experiment": j.search, "candidate": candidate, "candidate_id": j.candidate,
        "task": j.task, "stage": j.stage, "setting": j.setting})
}

fn merge(mut a: Value, b: Value) -> Value {
    if let (Some(a), Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
    a
}

/// A finished run's numbers, for lists.
fn finished(b: Option<&Brief>, j: &JobRow) -> Value {
    match b {
        Some(b) => json!({"valid": b.valid, "test": b.test, "outcome": b.outcome.to_string(), "steps": b.steps,
            "seconds": b.seconds, "finished_ms": j.finished_ms}),
        None => json!({"outcome": if j.result.is_some() { "unreadable result" } else { "" }}),
    }
}

/// The validations a progress row holds so far.
fn points_of(p: &ProgressRow) -> Vec<EvalRecord> {
    serde_json::from_str(&p.points).unwrap_or_default()
}

/// A run in flight: who trains it, since when, how far it is.
fn in_flight(cache: &Cache, j: &JobRow, progress: Option<&ProgressRow>) -> Value {
    let now = cache.read_at();
    let points = progress.map(points_of).unwrap_or_default();
    let last = points.last();
    merge(
        identity(cache, j),
        json!({"worker": j.worker, "attempts": j.attempts, "lease_left_s": (j.lease_until_ms - now) as f64 / 1000.0,
            "started_ms": progress.map(|p| p.started_ms),
            "elapsed_s": progress.map(|p| (now - p.started_ms) as f64 / 1000.0),
            "validations": points.len(), "step": last.map(|r| r.step), "valid": last.map(|r| r.valid.metric)}),
    )
}

/// Every experiment with its progress; runs in flight; workers; errors; the latest results.
pub fn overview(cache: &Cache, briefs: &mut Briefs) -> Value {
    let progress: HashMap<i64, &ProgressRow> = cache.progress_rows().iter().map(|p| (p.job, p)).collect();
    let mut per: HashMap<&str, [usize; 4]> = HashMap::new(); // queued, leased, done, failed
    let (mut flying, mut errors, mut done) = (vec![], vec![], vec![]);
    for j in cache.all_jobs().values() {
        let counts = per.entry(j.search.as_str()).or_default();
        match j.state {
            JobState::Queued => counts[0] += 1,
            JobState::Leased => {
                counts[1] += 1;
                flying.push(in_flight(cache, j, progress.get(&j.id).copied()));
            }
            JobState::Done => {
                counts[2] += 1;
                done.push(j);
            }
        }
        if j.state == JobState::Done {
            let b = brief(briefs, j).cloned();
            let bad = b.as_ref().is_none_or(|b| matches!(b.outcome, RunEnd::Failed(_) | RunEnd::Diverged { .. }));
            if bad {
                per.entry(j.search.as_str()).or_default()[3] += 1;
                errors.push(merge(identity(cache, j), finished(b.as_ref(), j)));
            }
        }
        if j.attempts > 1 && j.state != JobState::Done {
            let why = format!("attempt {}: its previous worker stopped before finishing", j.attempts);
            errors.push(merge(identity(cache, j), json!({"outcome": why, "worker": j.worker})));
        }
    }
    done.sort_by_key(|j| std::cmp::Reverse((j.finished_ms, j.id)));
    let recent: Vec<Value> = done
        .iter()
        .take(RECENT)
        .map(|j| {
            let b = brief(briefs, j).cloned();
            merge(identity(cache, j), finished(b.as_ref(), j))
        })
        .collect();
    let experiments: Vec<Value> = cache
        .experiment_rows()
        .iter()
        .map(|e| {
            let [queued, leased, done, failed] = per.get(e.name.as_str()).copied().unwrap_or_default();
            json!({"name": e.name, "kind": e.kind, "state": e.state, "created_ms": e.created_ms,
                "runs": queued + leased + done, "queued": queued, "in_flight": leased, "done": done, "failed": failed,
                "candidates": cache.candidate_rows(&e.name).len()})
        })
        .collect();
    let now = cache.read_at();
    let workers: Vec<_> =
        cache.workers_now().into_iter().map(|w| crate::search::status::worker_status(w, now)).collect();
    errors.reverse(); // newest jobs first
    json!({"store": cache.describe_store(), "now_ms": now, "experiments": experiments, "in_flight": flying,
        "workers": workers, "errors": errors, "recent": recent})
}

/// Every run of experiment `name` (`None`: no such experiment).
pub fn runs(cache: &Cache, briefs: &mut Briefs, name: &str) -> Option<Value> {
    cache.experiment_rows().iter().find(|e| e.name == name)?;
    let rows: Vec<Value> = cache
        .all_jobs()
        .values()
        .filter(|j| j.search == name)
        .map(|j| {
            let b = brief(briefs, j).cloned();
            merge(merge(identity(cache, j), json!({"state": j.state})), finished(b.as_ref(), j))
        })
        .collect();
    Some(json!({"experiment": name, "runs": rows}))
}

/// A validation as `cellc run --json` prints its "eval" event.
fn point(r: &EvalRecord) -> Value {
    json!({"step": r.step, "train_loss": r.train_loss, "valid": r.valid.metric, "valid_secondary": r.valid.secondary,
        "valid_loss": r.valid.loss, "lr": r.lr, "seconds": r.seconds, "tokens_per_s": r.tokens_per_s, "level": r.level})
}

/// One run: what it is, its configuration, its result and its learning curves (`None`: no such
/// run).
pub fn run(cache: &Cache, id: i64) -> Result<Option<Value>, String> {
    let Some(j) = cache.all_jobs().get(&id) else { return Ok(None) };
    let spec: JobSpec = serde_json::from_str(&j.spec).map_err(|e| format!("run {id} has a bad spec: {e}"))?;
    let kind = spec.config.task.kind;
    let result: Option<JobResult> = match &j.result {
        Some(r) => Some(serde_json::from_str(r).map_err(|e| format!("run {id} has a bad result: {e}"))?),
        None => None,
    };
    let progress = cache.progress_rows().iter().find(|p| p.job == id);
    let history: Vec<EvalRecord> = match (&result, progress) {
        (Some(r), _) => r.history.clone(),
        (None, Some(p)) => points_of(p),
        (None, None) => vec![],
    };
    let kind_of = cache.experiment_rows().iter().find(|e| e.name == j.search).map(|e| e.kind.clone());
    let head = json!({"kind": kind_of, "state": j.state, "worker": j.worker, "attempts": j.attempts,
        "finished_ms": j.finished_ms, "round": j.round, "metric": kind.metric(), "scored_metric": kind.scored_name(),
        "higher_is_better": kind.higher_is_better(), "cell_source": spec.cell.text, "seed": spec.config.seed,
        "config": spec.config, "points": history.iter().map(point).collect::<Vec<_>>(),
        "scored_curve": result.as_ref().map(|r| &r.curve), "result": result,
        "in_flight": progress.map(|p| in_flight(cache, j, Some(p)))});
    Ok(Some(merge(identity(cache, j), head)))
}
