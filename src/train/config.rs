//! A run's training configuration: everything that defines its numbers (saved in checkpoints; a
//! resumed run reads it back), with the range checks every caller gets, and the budget.

use serde::{Deserialize, Serialize};

use super::lm::LmShape;
use super::optim::OptimizerKind;
use super::schedule::Schedule;
use crate::tasks::{Task, TaskConfig, corpus};

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
pub struct TrainConfig {
    pub task: TaskConfig,
    pub hidden: usize,
    pub layers: usize,
    pub batch: usize,
    /// Stream tasks: steps per batch (truncated BPTT length).
    pub bptt: usize,
    pub optimizer: OptimizerKind,
    /// The base learning rate.
    pub lr: f64,
    /// How the rate moves over the run (absent in configs saved before schedules: plateau).
    #[serde(default, skip_serializing_if = "Schedule::is_plateau")]
    pub schedule: Schedule,
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
    /// Run the batches of whole examples (arith, memorize) padded, every example every step,
    /// instead of each example for its own length.
    #[serde(default)]
    pub padded: bool,
    /// Every layer below the top also reads each example's question backwards (tasks that read
    /// a whole question before answering: arith, memorize); see `train/bidirectional.rs`.
    #[serde(default)]
    pub bidirectional: bool,
    pub budget: Budget,
    /// Steps between validations (0: chosen when the run starts: about once per epoch for a
    /// corpus or music, every 200 steps otherwise).
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

impl TrainConfig {
    /// A short Adam run of `steps` on `task` at its usual batch shape: rate 3e-3, clip 5, the
    /// cell's own initialisation, no dropout, five validations on 500 examples, one thread.
    /// What the REPL's `:train` runs and the paper study starts from.
    pub fn short(mut task: TaskConfig, hidden: usize, steps: u64, seed: u64) -> TrainConfig {
        let (batch, bptt) = task.kind.default_shape();
        task.streams = batch;
        TrainConfig {
            task,
            hidden,
            layers: 1,
            batch,
            bptt,
            optimizer: OptimizerKind::Adam,
            lr: 3e-3,
            schedule: Schedule::Plateau,
            clip: 5.0,
            init_scale: 1.0,
            init_uniform: None,
            dropout: 0.0,
            variational: false,
            tied: false,
            padded: false,
            bidirectional: false,
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

    /// Checks every range; the messages name the `cellc run` flags.
    pub fn validate(&self) -> Result<(), String> {
        let checks = [
            (self.hidden >= 1, "--hidden must be at least 1"),
            (self.layers >= 1, "--layers must be at least 1"),
            (self.batch >= 1, "--batch must be at least 1"),
            (self.bptt >= 1, "--bptt must be at least 1"),
            (self.lr > 0.0 && self.lr.is_finite(), "--lr must be positive"),
            (self.clip >= 0.0, "--clip must be 0 (off) or positive"),
            (self.init_scale > 0.0, "--init-scale must be positive"),
            ((0.0..1.0).contains(&self.dropout), "--dropout must be in [0, 1)"),
            (self.init_uniform.is_none_or(|a| a > 0.0), "--init-uniform must be positive"),
            (self.eval_examples >= 1, "--eval-examples must be at least 1"),
            (self.decay > 0.0 && self.decay <= 1.0, "--decay must be in (0, 1]"),
            (self.decay_patience >= 1, "--decay-patience must be at least 1"),
            (self.threads >= 1, "--threads must be at least 1"),
            (self.budget.is_valid(), "the budget (--steps, --epochs, --time) must be positive"),
            (self.schedule_is_valid(), "--warmup and --floor must be fractions in [0, 1]"),
            (
                !self.bidirectional || self.layers >= 2,
                "--bidirectional needs --layers 2 or more: the layers below the top read the question both ways, the top one answers left to right",
            ),
            (
                !self.bidirectional || !self.task.kind.is_stream(),
                "--bidirectional is for tasks that read a whole question before answering (arith, memorize); this one predicts every next symbol",
            ),
            (
                self.schedule.is_plateau() || self.decay_epoch.is_none(),
                "--decay-epoch is a schedule of its own: use it with --schedule plateau",
            ),
        ];
        match checks.iter().find(|(ok, _)| !ok) {
            Some((_, msg)) => Err(msg.to_string()),
            None => Ok(()),
        }
    }

    fn schedule_is_valid(&self) -> bool {
        match self.schedule {
            Schedule::Linear { warmup, floor } | Schedule::Cosine { warmup, floor } => {
                (0.0..=1.0).contains(&warmup) && (0.0..=1.0).contains(&floor)
            }
            Schedule::Constant | Schedule::Plateau => true,
        }
    }

    /// Fills in what depends on the built task: the validation interval when it was left to
    /// the run (`eval_every` 0).
    pub fn resolve(&mut self, task: &Task) {
        if self.eval_every > 0 {
            return;
        }
        self.eval_every = match task {
            Task::Corpus(c) => corpus::batches_per_epoch(&c.corpus.train, c.streams, self.bptt).max(1) as u64,
            Task::Music(m) => {
                // About one epoch: the training frames over the rows of a batch.
                let frames: usize = m.music.train.iter().map(Vec::len).sum();
                frames.div_ceil(self.batch * self.bptt).max(1) as u64
            }
            _ => 200,
        };
    }

    /// The model's shape for this run on `task` (steps: a first guess; batches grow it).
    pub fn model_shape(&self, task: &Task) -> LmShape {
        let batch = task.streams().unwrap_or(self.batch);
        let steps = if task.kind().is_stream() { self.bptt } else { 32 };
        LmShape {
            vocab: task.vocab(),
            hidden: self.hidden,
            layers: self.layers,
            batch,
            steps,
            bidirectional: self.bidirectional,
        }
    }
}

impl Budget {
    fn is_valid(&self) -> bool {
        match *self {
            Budget::Steps(n) => n >= 1,
            Budget::Seconds(s) | Budget::Epochs(s) => s.is_finite() && s > 0.0,
        }
    }
}
