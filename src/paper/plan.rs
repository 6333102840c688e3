//! What `cellc paper` trains: the cells and tasks of the paper's Table 1, and a step budget per
//! run derived from the CPU budget (the settings come from `train::grid`).
//!
//! Steps, not seconds: a run's length must not depend on the machine, so the same budget and
//! seed give the same numbers anywhere. The CPU budget is turned into steps with throughputs
//! measured once (see [`STEPS_PER_CPU_SECOND`]).

use serde::{Deserialize, Serialize};

use crate::data::music::MusicSet;
use crate::tasks::TaskKind;

/// The cells of the paper's Table 1, in its order.
pub const PAPER_CELLS: [&str; 10] =
    ["tanh_rnn", "lstm", "lstm_f", "lstm_i", "lstm_o", "lstm_b", "gru", "mut1", "mut2", "mut3"];

/// Training steps one CPU core does per second with a GRU at H = 64 (1 thread), per task, on
/// the 2-vCPU AMD EPYC this was developed on (`cellc run gru --task T --hidden 64 --threads 1
/// --steps N`; see the issue notes for the measurement).
pub const STEPS_PER_CPU_SECOND: [(TaskKind, f64); 5] = [
    (TaskKind::Arith, 122.0),
    (TaskKind::Xml, 62.5),
    (TaskKind::Ptb, 12.4),
    (TaskKind::Music(MusicSet::Nottingham), 108.0),
    (TaskKind::Music(MusicSet::PianoMidi), 87.0),
];

/// A study's size.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// CPU seconds for the whole study (both phases, all workers).
    pub cpu_seconds: f64,
    /// Random settings per (cell, task), the first being the defaults.
    pub settings: usize,
    /// Seeds the best setting is trained with (the first is the search's).
    pub seeds: usize,
    pub hidden: usize,
    /// Largest number of stacked layers a setting may draw.
    pub max_layers: usize,
    /// PTB: validate and test on this many words instead of the whole sets (whose forward
    /// passes cost more than the quick profile's training).
    #[serde(default)]
    pub ptb_eval_words: Option<usize>,
}

impl Profile {
    /// About an hour on 2 cores.
    pub fn default_profile() -> Profile {
        Profile { cpu_seconds: 2.0 * 3600.0, settings: 3, seeds: 3, hidden: 64, max_layers: 2, ptb_eval_words: None }
    }

    /// About five minutes on 2 cores.
    pub fn quick() -> Profile {
        Profile {
            cpu_seconds: 2.0 * 300.0,
            settings: 1,
            seeds: 3,
            hidden: 32,
            max_layers: 1,
            ptb_eval_words: Some(10_000),
        }
    }

    /// Runs per (cell, task): the settings, then the best one's extra seeds.
    pub fn runs_per_pair(&self) -> usize {
        self.settings + self.seeds.saturating_sub(1)
    }

    /// Training steps of one run on `task` when `pairs` (cell, task) pairs share the budget.
    pub fn steps(&self, task: TaskKind, pairs: usize) -> u64 {
        let per_run = self.cpu_seconds / (pairs * self.runs_per_pair()).max(1) as f64;
        let rate = STEPS_PER_CPU_SECOND.iter().find(|(t, _)| *t == task).map_or(10.0, |(_, r)| *r);
        // A run also validates and tests (about a fifth of its time at these sizes).
        let h_scale = (64.0 / self.hidden as f64).max(1.0).sqrt();
        ((per_run * 0.8 * rate * h_scale).round() as u64).max(20)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_shared_out_in_steps() {
        let p = Profile::default_profile();
        let ten_cells = p.steps(TaskKind::Arith, 10 * 5);
        assert!(ten_cells > 100, "{ten_cells}");
        assert!(p.steps(TaskKind::Arith, 20 * 5) < ten_cells);
        assert!(Profile::quick().steps(TaskKind::Ptb, 50) >= 20);
    }
}
