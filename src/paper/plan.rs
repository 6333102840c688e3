//! What `cellc paper` trains: the cells and tasks of the paper's Table 1, hyperparameter settings
//! drawn from the paper's grid (§5), and a step budget per run derived from the CPU budget.
//!
//! Steps, not seconds: a run's length must not depend on the machine, so the same budget and
//! seed give the same numbers anywhere. The CPU budget is turned into steps with throughputs
//! measured once (see [`STEPS_PER_CPU_SECOND`]).

use serde::{Deserialize, Serialize};

use crate::rng::Rng;
use crate::train::fit::Config;

/// The cells of the paper's Table 1, in its order.
pub const PAPER_CELLS: [&str; 10] =
    ["tanh_rnn", "lstm", "lstm_f", "lstm_i", "lstm_o", "lstm_b", "gru", "mut1", "mut2", "mut3"];

/// Tasks: the three of Table 1 (accuracy) and the held-out music sets (NLL per frame).
pub const TASKS: [&str; 5] = ["arith", "xml", "ptb", "music:nottingham", "music:piano-midi"];

/// Training steps one CPU core does per second with a GRU at H = 64 (1 thread), per task, on
/// the 2-vCPU AMD EPYC this was developed on (`cellc run gru --task T --hidden 64 --threads 1
/// --steps N`; see the issue notes for the measurement).
pub const STEPS_PER_CPU_SECOND: [(&str, f64); 5] =
    [("arith", 122.0), ("xml", 62.5), ("ptb", 12.4), ("music:nottingham", 108.0), ("music:piano-midi", 87.0)];

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
    pub fn steps(&self, task: &str, pairs: usize) -> u64 {
        let per_run = self.cpu_seconds / (pairs * self.runs_per_pair()).max(1) as f64;
        let rate = STEPS_PER_CPU_SECOND.iter().find(|(t, _)| *t == task).map_or(10.0, |(_, r)| *r);
        // A run also validates and tests (about a fifth of its time at these sizes).
        let h_scale = (64.0 / self.hidden as f64).max(1.0).sqrt();
        ((per_run * 0.8 * rate * h_scale).round() as u64).max(20)
    }
}

/// One hyperparameter setting (paper §5).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Setting {
    pub init_scale: f64,
    /// As a multiple of the optimiser's base rate (the paper's grid: 0.1 ... 5 for SGD).
    pub lr_factor: f64,
    pub clip: f64,
    pub layers: usize,
}

const INIT_SCALES: [f64; 6] = [0.3, 0.7, 1.0, 1.4, 2.0, 2.8];
const LR_GRID: [f64; 7] = [0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0];
const CLIPS: [f64; 5] = [1.0, 2.5, 5.0, 10.0, 20.0];

/// Adam's rate at the grid's 1: the paper's SGD grid spans 0.1 to 5 around SGD's 1.
pub const ADAM_BASE_LR: f64 = 3e-3;

/// Setting `i` of `task`: 0 is the defaults (init 1, lr 1x, clip 5, 1 layer); the rest are drawn
/// from the grid by a stream of `seed` and the task. Every cell gets the same settings, so cells
/// are compared on common draws.
pub fn setting(task: &str, i: usize, seed: u64, max_layers: usize) -> Setting {
    if i == 0 {
        return Setting { init_scale: 1.0, lr_factor: 1.0, clip: 5.0, layers: 1 };
    }
    let mut rng = Rng::new(seed).fork(crate::init::name_hash(task) ^ (i as u64).wrapping_mul(0x9e37_79b9));
    // Adam is unstable at the grid's top rates (10x its usual rate and more): cap at 2x.
    let lrs: Vec<f64> = LR_GRID.iter().copied().filter(|&l| l <= 2.0).collect();
    Setting {
        init_scale: *rng.pick(&INIT_SCALES),
        lr_factor: *rng.pick(&lrs),
        clip: *rng.pick(&CLIPS),
        layers: rng.range(1, max_layers + 1),
    }
}

/// The training configuration of one run: [`Config::short`] with the setting, four validations
/// on 1,000 examples, and a faster plateau decay (the runs are short).
pub fn config(task: &str, s: Setting, hidden: usize, steps: u64, seed: u64, data: Option<&std::path::Path>) -> Config {
    let mut t = crate::tasks::TaskConfig::named(task);
    t.data = data.map(std::path::Path::to_path_buf);
    let mut c = Config::short(t, hidden, steps, seed);
    c.layers = s.layers;
    c.lr = ADAM_BASE_LR * s.lr_factor;
    c.clip = s.clip;
    c.init_scale = s.init_scale;
    c.eval_every = (steps / 4).max(1);
    c.eval_examples = 1000;
    c.decay_patience = 2;
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_drawn_from_the_grid_the_same_for_every_call() {
        let a = setting("arith", 1, 7, 2);
        assert_eq!(a, setting("arith", 1, 7, 2));
        assert!(INIT_SCALES.contains(&a.init_scale) && CLIPS.contains(&a.clip) && (1..=2).contains(&a.layers));
        assert_ne!(setting("arith", 1, 7, 2), setting("arith", 2, 7, 2), "settings differ (for this seed)");
        assert_eq!(setting("xml", 0, 3, 4).lr_factor, 1.0);
    }

    #[test]
    fn the_budget_is_shared_out_in_steps() {
        let p = Profile::default_profile();
        let ten_cells = p.steps("arith", 10 * 5);
        assert!(ten_cells > 100, "{ten_cells}");
        assert!(p.steps("arith", 20 * 5) < ten_cells);
        assert!(Profile::quick().steps("ptb", 50) >= 20);
    }
}
