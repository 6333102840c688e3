//! A search's options, fixed when it is created (stored as JSON, read back on `--resume`), and
//! the training configuration of each kind of run they imply.

use serde::{Deserialize, Serialize};

use crate::tasks::{PaperRole, TaskKind};
use crate::train::TrainConfig;
use crate::train::grid::Setting;
use crate::workspace::CellSource;

/// Everything that decides what a search does.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SearchConfig {
    /// Seed of every random choice (mutations, settings, training).
    pub seed: u64,
    /// The tasks a candidate is scored on, the first being the gate (paper: arith, xml, ptb).
    pub tasks: Vec<TaskKind>,
    /// Training steps per run on each task (and on the filter task).
    pub steps: Vec<(TaskKind, u64)>,
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
    pub filter_task: TaskKind,
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
    /// The data directory (`--data`; tasks find their data in it by [`TaskKind::locate_data`]).
    #[serde(default)]
    pub data: Option<std::path::PathBuf>,
    /// The confirmation stage: this many of the best cells found, trained again beside the GRU
    /// on fresh paired seeds (0: none).
    #[serde(default = "default_confirm_top")]
    pub confirm_top: usize,
    /// Whether mutations may also insert a layer normalisation (not one of the paper's
    /// operators; off by default and in searches stored before it existed).
    #[serde(default)]
    pub normalise: bool,
    /// Runs on tasks that read a whole question first (arith, memorize) use two layers, the
    /// lower one bidirectional (`cellc run --bidirectional`); the others are unchanged. Every
    /// cell, the GRU too, is trained so: scores stay relative to the same model.
    #[serde(default)]
    pub bidirectional: bool,
    /// The most seeds a confirmation adds before it calls a difference inconclusive.
    #[serde(default = "default_confirm_seeds")]
    pub confirm_seeds: usize,
}

fn default_confirm_top() -> usize {
    5
}

fn default_confirm_seeds() -> usize {
    10
}

/// The paper's tasks: the columns of its Table 1.
pub fn default_tasks() -> Vec<TaskKind> {
    TaskKind::ALL.into_iter().filter(|k| k.paper_role() == PaperRole::Table1).collect()
}

/// Steps per run at H = 32, 1 thread: about 4 s (memorize), 15 s (arith, xml) and 25 s (ptb) on
/// the machine this was developed on. Measured with `cellc run gru --task T --hidden 32
/// --threads 1 --steps N`: memorize reaches 0.98 at 3,000 steps.
pub const DEFAULT_STEPS: [(TaskKind, u64); 5] = [
    (TaskKind::Memorize, 3000),
    (TaskKind::Arith, 3000),
    (TaskKind::Xml, 1500),
    (TaskKind::Ptb, 400),
    (TaskKind::Text, 1500),
];

/// PTB validation and test read this many words during the search (the full sets take longer
/// than training).
pub const PTB_EVAL_WORDS: usize = 20_000;

impl SearchConfig {
    pub fn steps_for(&self, task: TaskKind) -> u64 {
        self.steps.iter().find(|(t, _)| *t == task).map_or(1000, |(_, s)| *s)
    }

    /// The training configuration of one run.
    pub fn config(&self, task: TaskKind, s: Setting, seed: u64) -> Result<TrainConfig, String> {
        let steps = self.steps_for(task);
        let data = task.locate_data(self.data.as_deref())?;
        let mut c = crate::train::grid::config(task, s, self.hidden, steps, seed, data);
        c.threads = self.threads;
        if task == TaskKind::Ptb {
            c.task.eval_tokens = Some(PTB_EVAL_WORDS);
        }
        if self.bidirectional && !task.is_stream() {
            (c.layers, c.bidirectional) = (c.layers.max(2), true);
        }
        Ok(c)
    }
}
