//! The paper's hyperparameter grid (§5) and the training configuration of one setting: what the
//! study (`paper`) and the search draw their runs from, so both compare cells on common draws.

use serde::{Deserialize, Serialize};

use super::config::TrainConfig;
use crate::rng::Rng;
use crate::tasks::{TaskConfig, TaskKind};

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
pub fn setting(task: TaskKind, i: usize, seed: u64, max_layers: usize) -> Setting {
    if i == 0 {
        return Setting { init_scale: 1.0, lr_factor: 1.0, clip: 5.0, layers: 1 };
    }
    let mut rng = Rng::new(seed).fork(crate::init::name_hash(task.name()) ^ (i as u64).wrapping_mul(0x9e37_79b9));
    // Adam is unstable at the grid's top rates (10x its usual rate and more): cap at 2x.
    let lrs: Vec<f64> = LR_GRID.iter().copied().filter(|&l| l <= 2.0).collect();
    Setting {
        init_scale: *rng.pick(&INIT_SCALES),
        lr_factor: *rng.pick(&lrs),
        clip: *rng.pick(&CLIPS),
        layers: rng.range(1, max_layers), // inclusive: 1..=max_layers
    }
}

/// The training configuration of one run: [`TrainConfig::short`] with the setting, four validations
/// on 1,000 examples, and a faster plateau decay (the runs are short).
/// `data` is where the task's data is ([`TaskKind::locate_data`]).
pub fn config(
    task: TaskKind,
    s: Setting,
    hidden: usize,
    steps: u64,
    seed: u64,
    data: Option<std::path::PathBuf>,
) -> TrainConfig {
    let mut t = TaskConfig::new(task);
    t.data = data;
    let mut c = TrainConfig::short(t, hidden, steps, seed);
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
        let a = setting(TaskKind::Arith, 1, 7, 2);
        assert_eq!(a, setting(TaskKind::Arith, 1, 7, 2));
        assert!(INIT_SCALES.contains(&a.init_scale) && CLIPS.contains(&a.clip) && (1..=2).contains(&a.layers));
        assert_ne!(
            setting(TaskKind::Arith, 1, 7, 2),
            setting(TaskKind::Arith, 2, 7, 2),
            "settings differ (for this seed)"
        );
        assert_eq!(setting(TaskKind::Xml, 0, 3, 4).lr_factor, 1.0);
    }

    #[test]
    fn layers_stay_within_max_layers_and_reach_it() {
        for max_layers in 1..=3 {
            let drawn: Vec<usize> = (1..200).map(|i| setting(TaskKind::Ptb, i, 11, max_layers).layers).collect();
            assert!(drawn.iter().all(|&l| (1..=max_layers).contains(&l)), "max {max_layers}: {drawn:?}");
            assert!(drawn.contains(&max_layers), "max {max_layers} is never drawn");
        }
    }
}
