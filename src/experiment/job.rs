//! One job of an experiment (a search, a study, a comparison): what a worker trains
//! ([`JobSpec`], stored with the job so any worker on any machine can run it, and nothing else
//! decides its numbers) and what it reports back ([`JobResult`]), with where the time went.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::tasks::Metrics;
use crate::train::{EvalRecord, Event, Hooks, Run, RunEnd, Stop, TrainConfig};
use crate::workspace::CellSource;

/// Everything that defines a training run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    pub cell: CellSource,
    pub config: TrainConfig,
    /// The hyperparameter setting `config` was made from (a search's child inherits it); none
    /// for a comparison's runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setting: Option<crate::train::grid::Setting>,
    /// Early stopping: stop after validation `k` (from 0) when the accuracy is below
    /// `stop_below[k]` (fixed when the job is planned, so the run is deterministic).
    #[serde(default)]
    pub stop_below: Vec<f64>,
}

impl JobSpec {
    /// Finds the job's data under this machine's data directory `dir` (a job planned on another
    /// machine names that machine's paths).
    pub fn use_data_dir(&mut self, dir: &std::path::Path) -> Result<(), String> {
        self.config.task.data = self.config.task.kind.locate_data(Some(dir))?;
        Ok(())
    }
}

/// What a run gave.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobResult {
    /// The compared metric (`TaskKind::scored`: accuracy, or next-word accuracy on ptb, NLL on
    /// music) of the best validation and of the test at that point.
    #[serde(with = "crate::io::float")]
    pub valid: f64,
    #[serde(with = "crate::io::float")]
    pub test: f64,
    /// `[step, compared metric on validation]` after each validation.
    #[serde(with = "crate::io::float_pairs")]
    pub curve: Vec<(u64, f64)>,
    /// Every metric of the best validation and of the test (absent in results recorded before
    /// they were kept, and for runs that did not finish).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<Detail>,
    /// Every validation in full (training loss, validation metrics, learning rate), as `cellc
    /// run --json` prints them (absent in results recorded before they were kept).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<EvalRecord>,
    pub steps: u64,
    pub outcome: RunEnd,
    pub compile_seconds: f64,
    pub train_seconds: f64,
    pub eval_seconds: f64,
    pub seconds: f64,
}

/// The best validation's and the test's metrics.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Detail {
    pub valid: Metrics,
    pub test: Metrics,
}

/// A result with nothing measured (a failure fills in `outcome` and the time).
pub fn failed_result() -> JobResult {
    JobResult {
        valid: 0.0,
        test: 0.0,
        curve: vec![],
        detail: None,
        history: vec![],
        steps: 0,
        outcome: RunEnd::Failed(String::new()),
        compile_seconds: 0.0,
        train_seconds: 0.0,
        eval_seconds: 0.0,
        seconds: 0.0,
    }
}

/// The value recorded for a diverged run on a task compared by a loss (music's NLL).
pub const DIVERGED_LOSS: f64 = 1e6;

/// Trains a job. `cancel` is polled every step (a lost lease, Ctrl-C): `Ok(None)` when it fired.
/// `progress` hears the validations so far after each one.
pub fn run(
    spec: &JobSpec,
    cancel: &dyn Fn() -> bool,
    progress: &mut dyn FnMut(&[EvalRecord]),
) -> Result<Option<JobResult>, String> {
    let started = Instant::now();
    let failed = |reason: String| JobResult {
        outcome: RunEnd::Failed(reason),
        seconds: started.elapsed().as_secs_f64(),
        ..failed_result()
    };
    let cell = match spec.cell.checked() {
        Ok(c) => c,
        Err(e) => return Ok(Some(failed(e))),
    };
    let mut run = match Run::start(&cell, spec.config.clone()) {
        Ok(r) => r,
        Err(e) => return Ok(Some(failed(e))),
    };
    let compile_seconds = run.compile_seconds;
    let kind = spec.config.task.kind;
    // Time between a step and the next event is training; between a step and a validation,
    // evaluation. What follows the last event (final validation and test) is evaluation too.
    let (mut train, mut eval) = (0.0, 0.0);
    let mut last = Instant::now();
    let mut evals = 0usize;
    let mut seen: Vec<EvalRecord> = vec![];
    let stop_early = std::cell::Cell::new(false);
    let mut observe = |e: Event<'_>| {
        let dt = last.elapsed().as_secs_f64();
        last = Instant::now();
        match e {
            Event::Step { .. } => train += dt,
            Event::Eval(r) => {
                eval += dt;
                if spec.stop_below.get(evals).is_some_and(|&min| r.valid.scored(kind) < min) {
                    stop_early.set(true);
                }
                evals += 1;
                seen.push(r.clone());
                progress(&seen);
            }
        }
    };
    let stopped = || stop_early.get() || cancel();
    let outcome = run.train(Hooks { observe: Some(&mut observe), cancel: Some(&stopped), save: None })?;
    eval += last.elapsed().as_secs_f64();
    let curve: Vec<(u64, f64)> = run.state.history.iter().map(|r| (r.step, r.valid.scored(kind))).collect();
    let (valid, test, detail, outcome, steps) = match outcome {
        Ok(o) if o.stop == Stop::Interrupted && !stop_early.get() => return Ok(None),
        Ok(o) => {
            let how = if o.stop == Stop::Interrupted { RunEnd::StoppedEarly } else { RunEnd::Ok };
            let detail = Detail { valid: o.valid, test: o.test };
            (o.valid.scored(kind), o.test.scored(kind), Some(detail), how, o.steps)
        }
        Err(d) => {
            // The worst value: no accuracy, or a huge loss.
            let worst = if kind.scored_by_accuracy() { 0.0 } else { DIVERGED_LOSS };
            (worst, worst, None, RunEnd::Diverged { step: d.step }, d.step)
        }
    };
    Ok(Some(JobResult {
        valid,
        test,
        curve,
        detail,
        history: run.state.history.clone(),
        steps,
        outcome,
        compile_seconds,
        train_seconds: train,
        eval_seconds: eval,
        seconds: started.elapsed().as_secs_f64(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_result_with_an_overflowing_perplexity_reads_back() {
        // A PTB run stopped early at a loss of 735 nats: its perplexity is exp(735) = inf, which
        // serde_json alone writes as `null` and then cannot read (this once stopped a search).
        let bad = Metrics { metric: 735f64.exp(), secondary: Some(0.004), loss: 735.3 };
        let r = JobResult {
            valid: 0.004,
            curve: vec![(100, 0.004)],
            detail: Some(Detail { valid: bad, test: bad }),
            outcome: RunEnd::StoppedEarly,
            ..failed_result()
        };
        let json = serde_json::to_string(&r).unwrap();
        let back: JobResult = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
        assert_eq!(back.detail.unwrap().valid.metric, f64::INFINITY);
        let stored_before_the_fix = json.replace("\"inf\"", "null");
        let old: JobResult = serde_json::from_str(&stored_before_the_fix).unwrap();
        assert!(old.detail.unwrap().test.metric.is_nan(), "a store written before reads too");
    }
}
