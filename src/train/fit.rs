//! The training loop: batches from a task, forward/backward, clipping and the optimiser, periodic
//! validation with learning-rate decay on a plateau, early stopping, the best parameters kept
//! for the test, checkpoints, and a stop with a diagnosis at the first NaN.
//!
//! [`fit`] reads as its steps: while the budget lasts, [`Trainer::step`]; every `eval_every`
//! steps [`Trainer::validate`] and [`Trainer::decide`] (keep the best, decay the learning rate,
//! stop early); at the end [`Trainer::finish`] (a last validation and the test of the best model).
//!
//! Determinism: everything random comes from streams of the run's seed (data splits, dropout,
//! initialisation) and the schedule depends on steps, never on the clock, so a seed and a thread
//! count give the same numbers bit for bit, and a resumed run continues exactly. Only a `--time`
//! budget reads the clock, to decide when to stop.

use std::path::Path;
use std::time::Instant;

use super::config::{Budget, TrainConfig};
use super::evaluate::{EvalSets, evaluate};
use super::lm::{LmRunner, LmShape};
use super::state::{Diverged, EvalRecord, Event, Outcome, RunState, Stop, Trained};
use crate::ir::MaskDraw;
use crate::rng::Rng;
use crate::runtime::Engine;
use crate::tasks::{BatchStream, Split, Task};
use crate::workspace::CellSource;

/// What a caller hooks into a run; every part is optional (`Hooks::default()` trains quietly).
#[derive(Default)]
pub struct Hooks<'a> {
    /// Hears every step and validation.
    pub observe: Option<&'a mut dyn FnMut(Event<'_>)>,
    /// Polled before every step: true ends the run as if its budget had run out (Ctrl-C, a lost
    /// lease, a search's early stop); the best model so far is still tested.
    pub cancel: Option<&'a dyn Fn() -> bool>,
    /// Write a checkpoint of this cell's run into this directory after every validation.
    pub save: Option<(&'a Path, &'a CellSource)>,
}

/// Curriculum: move up a level when validation at the level reaches this accuracy...
const LEVEL_UP: f64 = 0.75;
/// ...measured on this many examples of the level.
const LEVEL_EXAMPLES: usize = 512;

/// Examples (sequence tasks) or characters (streams) in one epoch of a generated task.
const EPOCH_EXAMPLES: f64 = 100_000.0;
const EPOCH_CHARS: f64 = 1_000_000.0;

/// Trains `state` (made for `task`) until the budget, early stopping, a cancel or a NaN.
pub fn fit(engine: &Engine, task: &Task, state: &mut RunState, mut hooks: Hooks<'_>) -> Result<Trained, String> {
    let mut t = Trainer::new(engine, task, state)?;
    let stop = loop {
        if t.progress(state) >= 1.0 {
            break Stop::Budget;
        }
        if hooks.cancel.is_some_and(|cancel| cancel()) {
            break Stop::Interrupted;
        }
        if let Some(diverged) = t.step(state, &mut hooks)? {
            return Ok(Err(diverged));
        }
        if state.step.is_multiple_of(t.config.eval_every) {
            let record = t.validate(state)?;
            let early_stop = t.decide(state, record, &mut hooks)?;
            if early_stop {
                break Stop::EarlyStop;
            }
        }
    };
    t.finish(state, stop, &mut hooks).map(Ok)
}

/// One run's training machinery: the model runner for its shape, its evaluation sets, the clock.
struct Trainer<'e> {
    engine: &'e Engine,
    task: &'e Task,
    config: TrainConfig,
    shape: LmShape,
    runner: LmRunner<'e>,
    sets: EvalSets,
    started: Instant,
    seconds_before: f64,
    tokens_before: u64,
    /// Whether the last training batch continued the one before (its end states are carried).
    last_stream: bool,
}

impl<'e> Trainer<'e> {
    fn new(engine: &'e Engine, task: &'e Task, state: &RunState) -> Result<Trainer<'e>, String> {
        let config = state.config.clone();
        let shape = config.model_shape(task);
        let mut runner = LmRunner::new(engine, shape, config.threads)?;
        runner.variational = config.variational;
        runner.padded = config.padded;
        runner.tied = config.tied;
        let sets = EvalSets::new(&config, task, shape.batch);
        if let Some(states) = &state.carried {
            runner.set_steps(config.bptt)?;
            runner.set_carried_states(states)?;
        }
        Ok(Trainer {
            engine,
            task,
            config,
            shape,
            runner,
            sets,
            started: Instant::now(),
            seconds_before: state.seconds,
            tokens_before: state.tokens,
            last_stream: false,
        })
    }

    /// Seconds of training in this run, before this process and since.
    fn seconds(&self) -> f64 {
        self.seconds_before + self.started.elapsed().as_secs_f64()
    }

    fn tokens_per_s(&self, state: &RunState) -> f64 {
        (state.tokens - self.tokens_before) as f64 / self.started.elapsed().as_secs_f64().max(1e-9)
    }

    /// One training step: a batch forward and backward, the gradient norm, the update; a NaN
    /// or infinity ends the run with its origin named.
    fn step(&mut self, state: &mut RunState, hooks: &mut Hooks<'_>) -> Result<Option<Diverged>, String> {
        let config = &self.config;
        if !config.schedule.is_plateau() {
            state.lr = config.lr * config.schedule.factor(state.step, self.planned_steps(state));
        }
        let batch = state.train.next(self.shape.batch, config.bptt);
        self.runner.set_batch(&batch, self.task.pad())?;
        self.last_stream = batch.stream;
        let dropout = (config.dropout > 0.0).then_some((&mut state.dropout_rng, config.dropout));
        // The cell's own regularisers: masks that follow from the seed and the step alone, so a
        // resumed run draws what an uninterrupted one would.
        let masks = Rng::new(config.seed).fork(crate::init::name_hash("cell masks")).fork(state.step).next_u64();
        self.runner.set_cell_masks(MaskDraw::Seed(masks));
        let carry = batch.stream && state.step > 0;
        let p = &state.params;
        let loss = match &batch.frames {
            Some(f) => self.runner.forward_backward_frames(p, f, Some(&batch.weights), carry, dropout),
            None => self.runner.forward_backward_weighted(
                p,
                &batch.tokens,
                &batch.targets,
                Some(&batch.weights),
                carry,
                dropout,
            ),
        }?;
        let norm = self.runner.grad_norm();
        if !loss.is_finite() || !norm.is_finite() {
            let origin = super::diverge::origin(&self.runner, &state.params, &batch);
            return Ok(Some(Diverged { step: state.step + 1, origin }));
        }
        state.opt.update_with_norm(&mut state.params, &mut self.runner, state.lr, config.clip, norm);
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
            let i = epochs(config, self.task, state).floor();
            let want = config.lr * config.decay.powf((i + 1.0 - f64::from(after)).max(0.0));
            if want < state.lr {
                state.lr = want;
            }
        }
        if let Some(observe) = hooks.observe.as_mut() {
            let seconds = self.seconds();
            let (tokens_per_s, progress) = (self.tokens_per_s(state), self.progress_at(state, seconds));
            observe(Event::Step { step: state.step, loss, progress, tokens_per_s, seconds });
        }
        Ok(None)
    }

    /// Validation: the metrics on the validation set (and, with a curriculum, whether to move up
    /// a level), as a history record. Carried stream states are kept across it.
    fn validate(&mut self, state: &mut RunState) -> Result<EvalRecord, String> {
        let config = &self.config;
        // Throughput of training alone, before the validation's time.
        let tokens_per_s = self.tokens_per_s(state);
        if self.last_stream {
            state.carried = Some(self.runner.carried_states());
        }
        let valid = evaluate(&mut self.runner, &state.params, self.task, &self.sets.valid)?;
        let level = match (config.task.first_level(), state.train.level()) {
            (Some(_), Some(level)) if level < config.task.max_digits => {
                let at = config.task.at_level(level).expect("arith has levels");
                let set = BatchStream::eval_set(&at, Split::Valid, config.seed, LEVEL_EXAMPLES, self.shape.batch, 1);
                if evaluate(&mut self.runner, &state.params, &at, &set)?.metric >= LEVEL_UP {
                    state.train.set_level(level + 1);
                }
                state.train.level()
            }
            (Some(_), level) => level,
            _ => None,
        };
        if let Some(states) = &state.carried {
            self.runner.set_steps(config.bptt)?;
            self.runner.set_carried_states(states)?;
        }
        state.seconds = self.seconds();
        Ok(EvalRecord {
            step: state.step,
            train_loss: state.loss_sum / state.loss_count.max(1) as f64,
            valid,
            lr: state.lr,
            seconds: state.seconds,
            tokens_per_s,
            level,
        })
    }

    /// After a validation: keep the best parameters, decay the learning rate on a plateau,
    /// report, checkpoint. Returns whether to stop early.
    fn decide(&mut self, state: &mut RunState, record: EvalRecord, hooks: &mut Hooks<'_>) -> Result<bool, String> {
        let config = &self.config;
        state.loss_sum = 0.0;
        state.loss_count = 0;
        let valid = record.valid;
        let improved = state.best.as_ref().is_none_or(|(m, _, _)| valid.beats(m, self.task.kind()));
        if improved {
            state.best = Some((valid, state.step, state.params.clone()));
            state.since_best = 0;
            state.since_decay = 0;
        } else {
            state.since_best += 1;
            state.since_decay += 1;
            let plateau = config.schedule.is_plateau() && config.decay_epoch.is_none();
            if plateau && config.decay < 1.0 && state.since_decay >= config.decay_patience {
                state.lr *= config.decay;
                state.since_decay = 0;
            }
        }
        if let Some(observe) = hooks.observe.as_mut() {
            observe(Event::Eval(&record));
        }
        state.history.push(record);
        self.checkpoint(state, hooks)?;
        Ok(config.stop_patience > 0 && state.since_best >= config.stop_patience)
    }

    fn checkpoint(&self, state: &RunState, hooks: &Hooks<'_>) -> Result<(), String> {
        match hooks.save {
            Some((dir, cell)) => super::checkpoint::save(dir, self.engine, self.shape, cell, state),
            None => Ok(()),
        }
    }

    /// The end: a last validation when the budget ended between evaluations, then the best
    /// parameters on the test set.
    fn finish(mut self, state: &mut RunState, stop: Stop, hooks: &mut Hooks<'_>) -> Result<Outcome, String> {
        state.seconds = self.seconds();
        if state.history.last().is_none_or(|r| r.step != state.step) {
            let valid = evaluate(&mut self.runner, &state.params, self.task, &self.sets.valid)?;
            if state.best.as_ref().is_none_or(|(m, _, _)| valid.beats(m, self.task.kind())) {
                state.best = Some((valid, state.step, state.params.clone()));
            }
            self.checkpoint(state, hooks)?;
        }
        let (valid, best_step, best) = state.best.clone().expect("at least one validation");
        let (test, long_test) = super::evaluate::test(&mut self.runner, &best, &self.config, self.task, &self.sets)?;
        Ok(Outcome {
            best_step,
            valid,
            test,
            long_test,
            steps: state.step,
            seconds: state.seconds,
            tokens_per_s: self.tokens_per_s(state),
            stop,
            best,
        })
    }

    /// The run's length in steps for the schedule: the step budget, or the steps so far over the
    /// fraction of an epoch or time budget they used (an estimate that follows the step rate).
    fn planned_steps(&self, state: &RunState) -> f64 {
        if let Budget::Steps(n) = self.config.budget {
            return n as f64;
        }
        let done = self.progress(state);
        if state.step == 0 || done <= 0.0 {
            // Before the first step there is no rate yet: a provisional length.
            return 1000.0;
        }
        (state.step as f64 / done).max(state.step as f64 + 1.0)
    }

    /// The fraction of the budget used.
    fn progress(&self, state: &RunState) -> f64 {
        self.progress_at(state, self.seconds())
    }

    fn progress_at(&self, state: &RunState, seconds: f64) -> f64 {
        match self.config.budget {
            Budget::Steps(n) => state.step as f64 / n.max(1) as f64,
            Budget::Seconds(s) => seconds / s.max(1e-9),
            Budget::Epochs(e) => epochs(&self.config, self.task, state) / e.max(1e-9),
        }
    }
}

/// Epochs done: passes over a corpus, or [`EPOCH_CHARS`] characters or [`EPOCH_EXAMPLES`]
/// examples of a generated task.
fn epochs(config: &TrainConfig, task: &Task, state: &RunState) -> f64 {
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
