//! Evaluation: a model's metrics on a fixed set of batches, the evaluation sets of a run
//! (validation, test, and arithmetic's longer numbers), and the final test that both a finished
//! run and `cellc test` report.

use super::config::TrainConfig;
use super::lm::{LmParams, LmRunner};
use crate::tasks::{Batch, BatchStream, Metrics, Split, Tally, Task};

/// Evaluates `params` on a set of batches; stream sets run as one stream from zero states.
pub fn evaluate(runner: &mut LmRunner<'_>, params: &LmParams, task: &Task, set: &[Batch]) -> Result<Metrics, String> {
    let mut tally = Tally::default();
    for (i, b) in set.iter().enumerate() {
        runner.set_batch(b, task.pad())?;
        let carry = b.stream && i > 0;
        match &b.frames {
            Some(f) => {
                runner.evaluate_frames(params, f, Some(&b.weights), carry)?;
                tally.add_hits(b, runner.row_hits());
            }
            None => {
                runner.evaluate(params, &b.tokens, &b.targets, Some(&b.weights), carry)?;
            }
        }
        let (right, losses) = runner.row_results();
        tally.add(b, right, losses);
    }
    Ok(Metrics::from_tally(&tally, task.kind()))
}

/// The evaluation sets of a run: validation, test, and (arith) the longer-number test.
pub struct EvalSets {
    pub valid: Vec<Batch>,
    pub test: Vec<Batch>,
    pub long_test: Option<Vec<Batch>>,
}

impl EvalSets {
    pub fn new(config: &TrainConfig, task: &Task, batch: usize) -> EvalSets {
        let (n, seed) = (config.eval_examples, config.seed);
        let set = |t: &Task, split| BatchStream::eval_set(t, split, seed, n, batch, config.bptt);
        let long_test = config.task.long_task().map(|t| set(&t, Split::Test));
        EvalSets { valid: set(task, Split::Valid), test: set(task, Split::Test), long_test }
    }
}

/// The test metrics of `params`, and on arithmetic's longer numbers when the run has them.
pub fn test(
    runner: &mut LmRunner<'_>,
    params: &LmParams,
    config: &TrainConfig,
    task: &Task,
    sets: &EvalSets,
) -> Result<(Metrics, Option<Metrics>), String> {
    let test = evaluate(runner, params, task, &sets.test)?;
    let long_test = match (&sets.long_test, config.task.long_task()) {
        (Some(set), Some(long)) => Some(evaluate(runner, params, &long, set)?),
        _ => None,
    };
    Ok((test, long_test))
}
