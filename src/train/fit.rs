//! The training loop: batches from a task, forward/backward, clipping and the optimiser, periodic
//! validation with learning-rate decay on a plateau, early stopping, the best parameters kept
//! for the test, checkpoints, and a stop with a diagnosis at the first NaN.
//!
//! Determinism: everything random comes from streams of the run's seed (data splits, dropout,
//! initialisation) and the schedule depends on steps, never on the clock, so a seed and a thread
//! count give the same numbers bit for bit, and a resumed run continues exactly. Only a `--time`
//! budget reads the clock, to decide when to stop.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::lm::{LmParams, LmRunner, LmShape};
use super::optim::{Kind, Optimizer};
use crate::rng::Rng;
use crate::runtime::Engine;
use crate::tasks::corpus::Unit;
use crate::tasks::{Batch, Source, Split, Tally, Task};

/// When to stop.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Budget {
    Steps(u64),
    Seconds(f64),
    Epochs(f64),
}

/// Everything that defines a run (saved in checkpoints; a resumed run reads it back).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Config {
    pub task: crate::tasks::TaskConfig,
    pub hidden: usize,
    pub layers: usize,
    pub batch: usize,
    /// Stream tasks: steps per batch (truncated BPTT length).
    pub bptt: usize,
    pub optimizer: Kind,
    pub lr: f64,
    /// Largest global gradient norm (0: no clipping).
    pub clip: f64,
    pub init_scale: f64,
    /// Every parameter uniform in ±this instead (Zaremba et al. 2014), overriding the cell's
    /// initialisation rules.
    #[serde(default)]
    pub init_uniform: Option<f64>,
    pub dropout: f64,
    /// Dropout masks fixed over the time steps of a batch (variational) instead of per step.
    #[serde(default)]
    pub variational: bool,
    /// Tie the output matrix to the embedding.
    #[serde(default)]
    pub tied: bool,
    pub budget: Budget,
    /// Steps between validations.
    pub eval_every: u64,
    /// Validation and test examples (sequence tasks).
    pub eval_examples: usize,
    /// Multiply the learning rate by this when validation has not improved for
    /// `decay_patience` evaluations (1: constant).
    pub decay: f64,
    pub decay_patience: u32,
    /// Instead of decaying on a plateau, multiply the learning rate by `decay` at the end of
    /// every epoch after this many (Zaremba et al.: 4).
    #[serde(default)]
    pub decay_epoch: Option<u32>,
    /// Stop when validation has not improved for this many evaluations (0: never).
    pub stop_patience: u32,
    pub seed: u64,
    pub threads: usize,
}

impl Config {
    /// A short Adam run of `steps` on `task` at its usual batch shape: rate 3e-3, clip 5, the
    /// cell's own initialisation, no dropout, five validations on 500 examples, one thread.
    /// What the REPL's `:train` runs and the paper study starts from.
    pub fn short(mut task: crate::tasks::TaskConfig, hidden: usize, steps: u64, seed: u64) -> Config {
        let (batch, bptt) = task.default_shape();
        task.streams = batch;
        Config {
            task,
            hidden,
            layers: 1,
            batch,
            bptt,
            optimizer: Kind::Adam,
            lr: 3e-3,
            clip: 5.0,
            init_scale: 1.0,
            init_uniform: None,
            dropout: 0.0,
            variational: false,
            tied: false,
            budget: Budget::Steps(steps),
            eval_every: (steps / 5).max(1),
            eval_examples: 500,
            decay: 0.5,
            decay_patience: 3,
            decay_epoch: None,
            stop_patience: 0,
            seed,
            threads: 1,
        }
    }
}

/// Metrics of one evaluation set.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// The headline metric (accuracy).
    pub metric: f64,
    /// The secondary metric: exact match (sequence tasks) or closing-tag accuracy (xml).
    pub secondary: Option<f64>,
    /// Mean cross-entropy per counted symbol (nats).
    pub loss: f64,
}

impl Metrics {
    fn from_tally(t: &Tally, task: &Task) -> Metrics {
        let (metric, secondary) = match task {
            Task::Corpus(c) => match c.unit {
                Unit::Words => (t.loss().exp(), Some(t.accuracy())),
                Unit::Characters => (t.loss() / std::f64::consts::LN_2, Some(t.accuracy())),
            },
            Task::Xml(_) => (t.accuracy(), t.class_accuracy()),
            Task::Music(_) => (t.loss(), t.frame_accuracy()),
            _ => (t.accuracy(), t.exact_match()),
        };
        Metrics { metric, secondary, loss: t.loss() }
    }

    /// Whether these metrics beat `other` on the task's headline metric.
    pub fn beats(&self, other: &Metrics, task: &Task) -> bool {
        if task.higher_is_better() { self.metric > other.metric } else { self.metric < other.metric }
    }
}

/// One validation, as reported and kept in the history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalRecord {
    pub step: u64,
    /// Mean training loss since the previous evaluation.
    pub train_loss: f64,
    pub valid: Metrics,
    pub lr: f64,
    pub seconds: f64,
    pub tokens_per_s: f64,
    /// arith with a curriculum: the most digits of the easy share of training examples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<usize>,
}

/// Curriculum: move up a level when validation at the level reaches this accuracy...
const LEVEL_UP: f64 = 0.75;
/// ...measured on this many examples of the level.
const LEVEL_EXAMPLES: usize = 512;

/// What a caller hears during a run.
#[derive(Debug)]
pub enum Event<'a> {
    /// After each training step: the step, its loss, the fraction of the budget used and the
    /// training throughput so far.
    Step {
        step: u64,
        loss: f64,
        progress: f64,
        tokens_per_s: f64,
        seconds: f64,
    },
    Eval(&'a EvalRecord),
}

/// Why a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stop {
    Budget,
    EarlyStop,
    /// The caller asked to stop (Ctrl-C at the REPL); the best model so far is still tested.
    Interrupted,
}

/// A finished run.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub best_step: u64,
    pub valid: Metrics,
    pub test: Metrics,
    /// Arithmetic's length generalisation: the test metrics on longer numbers.
    pub long_test: Option<Metrics>,
    pub steps: u64,
    pub seconds: f64,
    pub tokens_per_s: f64,
    pub stop: Stop,
    pub best: LmParams,
}

/// A run stopped by a NaN or infinity.
#[derive(Clone, Debug)]
pub struct Diverged {
    pub step: u64,
    /// Where it first appeared, in words (the equation, the layer and the time step).
    pub origin: String,
}

/// The complete state of a run between steps: what a checkpoint holds.
pub struct RunState {
    pub config: Config,
    pub params: LmParams,
    pub opt: Optimizer,
    pub step: u64,
    pub tokens: u64,
    pub lr: f64,
    pub seconds: f64,
    pub train: Source,
    pub dropout_rng: Rng,
    /// Stream tasks: the states the next batch starts from.
    pub carried: Option<Vec<Vec<Vec<f32>>>>,
    pub history: Vec<EvalRecord>,
    pub best: Option<(Metrics, u64, LmParams)>,
    pub since_best: u32,
    pub since_decay: u32,
    /// Sum and count of training losses since the last evaluation.
    pub loss_sum: f64,
    pub loss_count: u64,
}

impl RunState {
    /// A fresh run.
    pub fn new(engine: &Engine, config: Config) -> Result<RunState, String> {
        let task = config.task.build()?;
        let shape = model_shape(&config, &task);
        let mut params = LmParams::init(engine, shape, config.init_scale, config.seed);
        if let Some(a) = config.init_uniform {
            params.init_uniform(a, config.seed);
        }
        if config.tied {
            params.out_w.clone_from(&params.embed);
        }
        let opt = Optimizer::new(config.optimizer, &params);
        let mut train = Source::new(&task, Split::Train, config.seed);
        if let Some(level) = config.task.first_level() {
            train.set_level(level);
        }
        Ok(RunState {
            train,
            dropout_rng: Rng::new(config.seed).fork(crate::init::name_hash("dropout")),
            lr: config.lr,
            config,
            params,
            opt,
            step: 0,
            tokens: 0,
            seconds: 0.0,
            carried: None,
            history: vec![],
            best: None,
            since_best: 0,
            since_decay: 0,
            loss_sum: 0.0,
            loss_count: 0,
        })
    }
}

/// The model's shape for a run (steps: a first guess; batches grow it as needed).
pub fn model_shape(config: &Config, task: &Task) -> LmShape {
    let batch = task.streams().unwrap_or(config.batch);
    let steps = if task.is_stream() { config.bptt } else { 32 };
    LmShape { vocab: task.vocab(), hidden: config.hidden, layers: config.layers, batch, steps }
}

/// Examples (sequence tasks) or characters (streams) in one epoch of a generated task.
const EPOCH_EXAMPLES: f64 = 100_000.0;
const EPOCH_CHARS: f64 = 1_000_000.0;

/// Evaluates `params` on a set of batches; stream sets run as one stream from zero states.
pub fn evaluate(runner: &mut LmRunner<'_>, params: &LmParams, task: &Task, set: &[Batch]) -> Result<Metrics, String> {
    let mut tally = Tally::default();
    for (i, b) in set.iter().enumerate() {
        runner.set_steps(b.steps)?;
        let carry = b.stream && i > 0;
        match &b.frames {
            Some(f) => {
                runner.evaluate_frames(params, f, Some(&b.weights), carry);
                tally.add_hits(b, runner.row_hits());
            }
            None => {
                runner.evaluate(params, &b.tokens, &b.targets, Some(&b.weights), carry);
            }
        }
        let (right, losses) = runner.row_results();
        tally.add(b, right, losses);
    }
    Ok(Metrics::from_tally(&tally, task))
}

/// The evaluation sets of a run: validation, test, and (arith) the longer-number test.
pub struct EvalSets {
    pub valid: Vec<Batch>,
    pub test: Vec<Batch>,
    pub long_test: Option<Vec<Batch>>,
}

impl EvalSets {
    pub fn new(config: &Config, task: &Task, batch: usize) -> EvalSets {
        let (n, seed) = (config.eval_examples, config.seed);
        let set = |t: &Task, split| Source::eval_set(t, split, seed, n, batch, config.bptt);
        let long_test = config.task.long_task().map(|t| set(&t, Split::Test));
        EvalSets { valid: set(task, Split::Valid), test: set(task, Split::Test), long_test }
    }
}

/// Runs training until the budget, early stopping or a NaN. `observe` hears every step and
/// evaluation; `checkpoint` is called after each evaluation with the state to save.
pub fn fit(
    engine: &Engine,
    state: &mut RunState,
    observe: &mut dyn FnMut(Event<'_>),
    checkpoint: &mut dyn FnMut(&RunState) -> Result<(), String>,
) -> Result<Result<Outcome, Diverged>, String> {
    fit_until(engine, state, observe, checkpoint, &|| false)
}

/// [`fit`] that also ends, as if the budget ran out, when `cancel` says so (checked every step).
pub fn fit_until(
    engine: &Engine,
    state: &mut RunState,
    observe: &mut dyn FnMut(Event<'_>),
    checkpoint: &mut dyn FnMut(&RunState) -> Result<(), String>,
    cancel: &dyn Fn() -> bool,
) -> Result<Result<Outcome, Diverged>, String> {
    let config = state.config.clone();
    let task = config.task.build()?;
    let shape = model_shape(&config, &task);
    let mut runner = LmRunner::new(engine, shape, config.threads)?;
    runner.variational = config.variational;
    runner.tied = config.tied;
    let sets = EvalSets::new(&config, &task, shape.batch);
    if let Some(states) = &state.carried {
        runner.set_steps(config.bptt)?;
        runner.set_carried_states(states)?;
    }
    let start = Instant::now();
    let seconds_before = state.seconds;
    let tokens_before = state.tokens;
    let mut stop = Stop::Budget;
    loop {
        let done = progress(&config, &task, state, seconds_before + start.elapsed().as_secs_f64());
        if done >= 1.0 {
            break;
        }
        if cancel() {
            stop = Stop::Interrupted;
            break;
        }
        let batch = state.train.next(shape.batch, config.bptt);
        runner.set_steps(batch.steps)?;
        let stream = batch.stream;
        let dropout = (config.dropout > 0.0).then_some((&mut state.dropout_rng, config.dropout));
        let carry = stream && state.step > 0;
        let loss = match &batch.frames {
            Some(f) => runner.forward_backward_frames(&state.params, f, Some(&batch.weights), carry, dropout),
            None => runner.forward_backward_weighted(
                &state.params,
                &batch.tokens,
                &batch.targets,
                Some(&batch.weights),
                carry,
                dropout,
            ),
        };
        let norm = runner.grad_norm();
        if !loss.is_finite() || !norm.is_finite() {
            let origin = super::diverge::origin(&runner, &state.params, &batch);
            return Ok(Err(Diverged { step: state.step + 1, origin }));
        }
        state.opt.update_with_norm(&mut state.params, &mut runner, state.lr, config.clip, norm);
        if config.tied {
            let p = &mut state.params;
            p.out_w.copy_from_slice(&p.embed);
        }
        state.step += 1;
        state.tokens += batch.weights.iter().filter(|&&w| w > 0.0).count() as u64;
        state.loss_sum += loss;
        state.loss_count += 1;
        if let Some(after) = config.decay_epoch {
            // Zaremba et al.: epoch i (from 0) runs at lr * decay^max(i + 1 - after, 0), so the
            // first `after` epochs keep the full rate.
            let i = epochs(&config, &task, state).floor();
            let want = config.lr * config.decay.powf((i + 1.0 - f64::from(after)).max(0.0));
            if want < state.lr {
                state.lr = want;
            }
        }
        let now = seconds_before + start.elapsed().as_secs_f64();
        let tokens_per_s = (state.tokens - tokens_before) as f64 / start.elapsed().as_secs_f64().max(1e-9);
        observe(Event::Step {
            step: state.step,
            loss,
            progress: progress(&config, &task, state, now),
            tokens_per_s,
            seconds: now,
        });
        if state.step.is_multiple_of(config.eval_every) {
            if stream {
                state.carried = Some(runner.carried_states());
            }
            let valid = evaluate(&mut runner, &state.params, &task, &sets.valid)?;
            let level = match (config.task.first_level(), state.train.level()) {
                (Some(_), Some(level)) if level < config.task.max_digits => {
                    let at = config.task.at_level(level).expect("arith has levels");
                    let set = Source::eval_set(&at, Split::Valid, config.seed, LEVEL_EXAMPLES, shape.batch, 1);
                    if evaluate(&mut runner, &state.params, &at, &set)?.metric >= LEVEL_UP {
                        state.train.set_level(level + 1);
                    }
                    state.train.level()
                }
                (Some(_), level) => level,
                _ => None,
            };
            if let Some(states) = &state.carried {
                runner.set_steps(config.bptt)?;
                runner.set_carried_states(states)?;
            }
            state.seconds = seconds_before + start.elapsed().as_secs_f64();
            let record = EvalRecord {
                step: state.step,
                train_loss: state.loss_sum / state.loss_count.max(1) as f64,
                valid,
                lr: state.lr,
                seconds: state.seconds,
                tokens_per_s,
                level,
            };
            state.loss_sum = 0.0;
            state.loss_count = 0;
            let improved = state.best.as_ref().is_none_or(|(m, _, _)| valid.beats(m, &task));
            if improved {
                state.best = Some((valid, state.step, state.params.clone()));
                state.since_best = 0;
                state.since_decay = 0;
            } else {
                state.since_best += 1;
                state.since_decay += 1;
                if config.decay < 1.0 && config.decay_epoch.is_none() && state.since_decay >= config.decay_patience {
                    state.lr *= config.decay;
                    state.since_decay = 0;
                }
            }
            observe(Event::Eval(&record));
            state.history.push(record);
            checkpoint(state)?;
            if config.stop_patience > 0 && state.since_best >= config.stop_patience {
                stop = Stop::EarlyStop;
                break;
            }
        }
    }
    state.seconds = seconds_before + start.elapsed().as_secs_f64();
    // A last validation when the budget ended between evaluations.
    if state.history.last().is_none_or(|r| r.step != state.step) {
        let valid = evaluate(&mut runner, &state.params, &task, &sets.valid)?;
        if state.best.as_ref().is_none_or(|(m, _, _)| valid.beats(m, &task)) {
            state.best = Some((valid, state.step, state.params.clone()));
        }
        checkpoint(state)?;
    }
    let (valid, best_step, best) = state.best.clone().expect("at least one validation");
    let test = evaluate(&mut runner, &best, &task, &sets.test)?;
    let long_test = match (&sets.long_test, config.task.long_task()) {
        (Some(set), Some(long)) => Some(evaluate(&mut runner, &best, &long, set)?),
        _ => None,
    };
    let tokens_per_s = (state.tokens - tokens_before) as f64 / start.elapsed().as_secs_f64().max(1e-9);
    Ok(Ok(Outcome {
        best_step,
        valid,
        test,
        long_test,
        steps: state.step,
        seconds: state.seconds,
        tokens_per_s,
        stop,
        best,
    }))
}

/// Epochs done: passes over a corpus, or [`EPOCH_CHARS`] characters or [`EPOCH_EXAMPLES`]
/// examples of a generated task.
fn epochs(config: &Config, task: &Task, state: &RunState) -> f64 {
    match task {
        Task::Corpus(c) => {
            let per_epoch = crate::tasks::corpus::stream_len(&c.corpus.train, c.streams).saturating_sub(1) * c.streams;
            state.tokens as f64 / per_epoch.max(1) as f64
        }
        Task::Xml(_) => state.tokens as f64 / EPOCH_CHARS,
        Task::Music(m) => state.tokens as f64 / m.music.train.iter().map(Vec::len).sum::<usize>().max(1) as f64,
        _ => (state.step * config.batch as u64) as f64 / EPOCH_EXAMPLES,
    }
}

/// The fraction of the budget used.
fn progress(config: &Config, task: &Task, state: &RunState, seconds: f64) -> f64 {
    match config.budget {
        Budget::Steps(n) => state.step as f64 / n.max(1) as f64,
        Budget::Seconds(s) => seconds / s.max(1e-9),
        Budget::Epochs(e) => epochs(config, task, state) / e.max(1e-9),
    }
}
