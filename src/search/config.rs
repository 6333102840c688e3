//! A search's options, fixed when it is created (stored as JSON, read back on `--resume`), and
//! the training configuration of each kind of run they imply.

use serde::{Deserialize, Serialize};

use crate::paper::plan::Setting;
use crate::train::checkpoint::CellSource;
use crate::train::fit::Config;

/// Everything that decides what a search does.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SearchConfig {
    /// Seed of every random choice (mutations, settings, training).
    pub seed: u64,
    /// The tasks a candidate is scored on, the first being the gate (paper: arith, xml, ptb).
    pub tasks: Vec<String>,
    /// Training steps per run on each task (and on the filter task).
    pub steps: Vec<(String, u64)>,
    pub hidden: usize,
    /// Random hyperparameter settings per task per evaluation (the paper used 20).
    pub settings: usize,
    /// The population: the best `population` cells are the parents.
    pub population: usize,
    /// Candidates being evaluated at once: the width of a planning round.
    pub in_flight: usize,
    /// Chance that a new slot re-evaluates a top cell with new settings instead of mutating one.
    pub reevaluate: f64,
    /// The memorisation filter: task and the accuracy a candidate must reach.
    pub filter_task: String,
    pub filter: f64,
    /// Continue past the first task only at this fraction of the GRU's best on it.
    pub gate: f64,
    /// Early stopping: after validation k a run stops when its accuracy is below `keep[k]` times
    /// the GRU's best run's accuracy at that validation. Empty: no early stopping.
    pub keep: Vec<f64>,
    /// Threads per training run (part of what defines a run's numbers).
    pub threads: usize,
    /// Stop planning after this many rounds (0: no limit).
    pub max_rounds: u64,
    /// Stop planning after this many candidates (0: no limit).
    pub max_candidates: u64,
    /// The seed population: the GRU first (the baseline every score is relative to).
    pub seeds: Vec<CellSource>,
    /// Data directory for ptb (not part of a run's identity).
    #[serde(default)]
    pub data: Option<std::path::PathBuf>,
}

/// The paper's tasks.
pub const DEFAULT_TASKS: [&str; 3] = ["arith", "xml", "ptb"];

/// Steps per run at H = 32, 1 thread: about 4 s (memorize), 15 s (arith, xml) and 25 s (ptb) on
/// the machine this was developed on. Measured with `cellc run gru --task T --hidden 32
/// --threads 1 --steps N`: memorize reaches 0.98 at 3,000 steps.
pub const DEFAULT_STEPS: [(&str, u64); 5] =
    [("memorize", 3000), ("arith", 3000), ("xml", 1500), ("ptb", 400), ("text", 1500)];

/// PTB validation and test read this many words during the search (the full sets take longer
/// than training).
pub const PTB_EVAL_WORDS: usize = 20_000;

impl SearchConfig {
    pub fn steps_for(&self, task: &str) -> u64 {
        self.steps.iter().find(|(t, _)| t == task).map_or(1000, |(_, s)| *s)
    }

    /// The training configuration of one run.
    pub fn config(&self, task: &str, s: Setting, seed: u64) -> Config {
        let steps = self.steps_for(task);
        let mut c = crate::paper::plan::config(task, s, self.hidden, steps, seed, self.data.as_deref());
        c.threads = self.threads;
        if task == "ptb" {
            c.task.eval_tokens = Some(PTB_EVAL_WORDS);
        }
        c
    }
}
