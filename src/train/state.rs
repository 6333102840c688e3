//! A run between steps: its parameters, optimiser, data stream, random streams, carried states,
//! validation history and best model ([`RunState`], what a checkpoint holds), and what a run
//! reports: events while it trains and its [`Outcome`] or [`Diverged`] at the end.

use serde::{Deserialize, Serialize};

use super::config::TrainConfig;
use super::lm::LmParams;
use super::optim::Optimizer;
use crate::rng::Rng;
use crate::runtime::Engine;
use crate::tasks::{BatchStream, Metrics, Split, Task};

/// One validation, as reported and kept in the history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalRecord {
    pub step: u64,
    /// Mean training loss since the previous evaluation.
    #[serde(with = "crate::io::float")]
    pub train_loss: f64,
    pub valid: Metrics,
    pub lr: f64,
    pub seconds: f64,
    pub tokens_per_s: f64,
    /// arith with a curriculum: the most digits of the easy share of training examples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<usize>,
}

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
    /// The caller asked to stop (Ctrl-C, a lost lease); the best model so far is still tested.
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

/// How a run ended: finished (budget, early stop or a stop request), or diverged.
pub type Trained = Result<Outcome, Diverged>;

/// How a run ended, as stores record it (one word or phrase: `ok`, `stopped early`, `diverged
/// at step N`, `failed: reason`).
#[derive(Clone, Debug, PartialEq)]
pub enum RunEnd {
    Ok,
    /// A search's early stop: validation fell below the GRU-relative threshold.
    StoppedEarly,
    Diverged {
        step: u64,
    },
    /// The run could not be trained (its cell no longer checks, its data is missing, ...).
    Failed(String),
}

impl RunEnd {
    pub fn parse(s: &str) -> RunEnd {
        match s {
            "ok" => RunEnd::Ok,
            "stopped early" => RunEnd::StoppedEarly,
            _ => match s.strip_prefix("diverged at step ").and_then(|n| n.parse().ok()) {
                Some(step) => RunEnd::Diverged { step },
                None => RunEnd::Failed(s.strip_prefix("failed").unwrap_or(s).trim_start_matches(": ").to_string()),
            },
        }
    }
}

impl std::fmt::Display for RunEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunEnd::Ok => f.write_str("ok"),
            RunEnd::StoppedEarly => f.write_str("stopped early"),
            RunEnd::Diverged { step } => write!(f, "diverged at step {step}"),
            RunEnd::Failed(why) if why.is_empty() => f.write_str("failed"),
            RunEnd::Failed(why) => write!(f, "failed: {why}"),
        }
    }
}

impl Serialize for RunEnd {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RunEnd {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<RunEnd, D::Error> {
        Ok(RunEnd::parse(&String::deserialize(d)?))
    }
}

/// The complete state of a run between steps: what a checkpoint holds.
pub struct RunState {
    pub config: TrainConfig,
    pub params: LmParams,
    pub opt: Optimizer,
    pub step: u64,
    pub tokens: u64,
    pub lr: f64,
    pub seconds: f64,
    pub train: BatchStream,
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
    /// A fresh run of `config` on the built `task`: parameters from the cell's init rules (or
    /// uniform), the optimiser at rest, the training stream at its start.
    pub fn new(engine: &Engine, task: &Task, config: TrainConfig) -> RunState {
        let shape = config.model_shape(task);
        let mut params = LmParams::init(engine, shape, config.init_scale, config.seed);
        if let Some(a) = config.init_uniform {
            params.init_uniform(a, config.seed);
        }
        if config.tied {
            params.out_w.clone_from(&params.embed);
        }
        let opt = Optimizer::new(config.optimizer, &params);
        let mut train = BatchStream::new(task, Split::Train, config.seed);
        if let Some(level) = config.task.first_level() {
            train.set_level(level);
        }
        RunState {
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
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RunEnd;

    #[test]
    fn run_ends_read_back_as_written() {
        for end in [
            RunEnd::Ok,
            RunEnd::StoppedEarly,
            RunEnd::Diverged { step: 12 },
            RunEnd::Failed(String::new()),
            RunEnd::Failed("no data: ptb.train.txt".into()),
        ] {
            assert_eq!(RunEnd::parse(&end.to_string()), end);
        }
        assert_eq!(RunEnd::Diverged { step: 3 }.to_string(), "diverged at step 3");
    }
}
