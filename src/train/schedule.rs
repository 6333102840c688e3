//! Learning-rate schedules. `cosine` and `linear` warm up linearly over the first `warmup`
//! fraction of the run, then fall to `floor` times the base rate exactly when the budget ends;
//! `constant` keeps the base rate; `plateau` decays it when validation stops improving (the
//! trainer's `decay`/`decay_patience`; with `decay_epoch`, per epoch as Zaremba et al.).
//!
//! A schedule needs the run's length in steps: a step budget gives it; an epoch or time budget
//! gives it through the fraction of the budget used so far (`steps done / fraction`), which the
//! trainer updates every step, so a time budget follows the measured step rate.

use serde::{Deserialize, Serialize};

/// How the learning rate moves over a run.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    Constant,
    /// Decay on a plateau of the validation metric (the trainer applies it).
    #[default]
    Plateau,
    Linear {
        warmup: f64,
        floor: f64,
    },
    Cosine {
        warmup: f64,
        floor: f64,
    },
}

/// The warm-up fraction and floor `cellc run` uses unless told otherwise.
pub const WARMUP: f64 = 0.02;
pub const FLOOR: f64 = 0.02;

impl Schedule {
    /// Whether the trainer decays on a plateau (the one schedule that reads validation).
    pub fn is_plateau(&self) -> bool {
        matches!(self, Schedule::Plateau)
    }

    /// The name `--schedule` takes.
    pub fn name(&self) -> &'static str {
        match self {
            Schedule::Constant => "constant",
            Schedule::Plateau => "plateau",
            Schedule::Linear { .. } => "linear",
            Schedule::Cosine { .. } => "cosine",
        }
    }

    /// The factor on the base rate at `step` (from 0) of a run planned to take `planned` steps;
    /// 1 for the schedules that do not follow the clock of the run (constant, plateau).
    pub fn factor(&self, step: u64, planned: f64) -> f64 {
        let (warmup, floor, shape): (f64, f64, fn(f64) -> f64) = match *self {
            Schedule::Constant | Schedule::Plateau => return 1.0,
            Schedule::Linear { warmup, floor } => (warmup, floor, |p| 1.0 - p),
            Schedule::Cosine { warmup, floor } => (warmup, floor, |p| 0.5 * (1.0 + (std::f64::consts::PI * p).cos())),
        };
        let planned = planned.max(1.0);
        let s = step as f64 + 1.0;
        let warm = warmup.clamp(0.0, 1.0) * planned;
        if s <= warm {
            return s / warm;
        }
        let p = ((s - warm) / (planned - warm).max(1.0)).clamp(0.0, 1.0);
        floor + (1.0 - floor) * shape(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_and_linear_warm_up_then_reach_the_floor_at_the_end() {
        for s in [Schedule::Cosine { warmup: 0.1, floor: 0.05 }, Schedule::Linear { warmup: 0.1, floor: 0.05 }] {
            let f: Vec<f64> = (0..1000).map(|i| s.factor(i, 1000.0)).collect();
            assert!((f[0] - 0.01).abs() < 1e-12, "{s:?} starts at 1/warm-up steps");
            assert!((f[99] - 1.0).abs() < 1e-12, "{s:?} reaches the base rate after warm-up");
            assert!(f[100..].windows(2).all(|w| w[1] <= w[0] + 1e-12), "{s:?} then only falls");
            assert!((f[999] - 0.05).abs() < 1e-9, "{s:?} ends at the floor: {}", f[999]);
        }
        assert_eq!(
            Schedule::Cosine { warmup: 0.0, floor: 0.0 }.factor(499, 1000.0),
            0.5 * (1.0 + (std::f64::consts::PI * 0.5).cos())
        );
        assert_eq!(Schedule::Plateau.factor(10, 100.0), 1.0);
        assert_eq!(Schedule::Constant.factor(10, 100.0), 1.0);
    }
}
