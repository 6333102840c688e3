//! The regularisers' masks: what each one is (kind, rate, vector size) and its value at every
//! entry. A value is a pure function of a seed and the entry's coordinates (mask, step, example,
//! column), so the interpreter, the compiled runtime and any thread count draw the same masks,
//! and a run's masks follow from its seed alone.

use super::Dim;
use crate::check::Stochastic;

/// One mask of a cell: `M_k` in `v * M_k` (dropout) or `new + M_k*(old - new)` (zoneout).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MaskInfo {
    pub kind: Stochastic,
    /// The probability of dropping an entry (dropout) or of keeping its old value (zoneout).
    pub rate: f64,
    /// The size of the vector it multiplies.
    pub dim: Dim,
}

/// Which masks a run uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum MaskDraw {
    /// Each mask's expectation: what evaluation uses (dropout is the identity, zoneout mixes
    /// old and new by the rate).
    #[default]
    Expected,
    /// Random masks drawn from this seed: what a training step uses.
    Seed(u64),
}

/// The draws of one mask for one example at one step.
#[derive(Clone, Copy, Debug)]
pub struct MaskRow {
    info: MaskInfo,
    /// The stream of this row's draws, or `None` for the expectation.
    key: Option<u64>,
}

impl MaskInfo {
    /// The values of mask `k` for example `b` at step `t`. A variational dropout mask is the
    /// same at every step.
    pub fn row(&self, k: usize, draw: MaskDraw, t: usize, b: usize) -> MaskRow {
        let key = match draw {
            MaskDraw::Expected => None,
            MaskDraw::Seed(seed) => {
                let t = if self.kind == Stochastic::VarDropout { 0 } else { t };
                let key = mix(seed ^ mix(k as u64 + 1));
                Some(mix(mix(key ^ t as u64) ^ (b as u64).rotate_left(32)))
            }
        };
        MaskRow { info: *self, key }
    }

    /// The mask's expected value, the same for every entry.
    pub fn expected(&self) -> f64 {
        match self.kind {
            Stochastic::Dropout | Stochastic::VarDropout => 1.0,
            Stochastic::Zoneout => self.rate,
        }
    }
}

impl MaskRow {
    /// The value at column `j`: 0 or 1/(1-rate) for dropout, 0 or 1 for zoneout (1 keeps the
    /// old value), the expectation when not drawn.
    pub fn at(&self, j: usize) -> f64 {
        let Some(key) = self.key else { return self.info.expected() };
        // SplitMix64's output function over a counter: one mix per entry.
        let u = (mix(key.wrapping_add((j as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15))) >> 11) as f64
            * (1.0 / (1u64 << 53) as f64);
        let hit = u < self.info.rate;
        match self.info.kind {
            Stochastic::Dropout | Stochastic::VarDropout if hit => 0.0,
            Stochastic::Dropout | Stochastic::VarDropout => 1.0 / (1.0 - self.info.rate),
            Stochastic::Zoneout => f64::from(u8::from(hit)),
        }
    }
}

/// SplitMix64's finaliser: a bijection of 64-bit words that mixes every input bit into every
/// output bit.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(kind: Stochastic, rate: f64) -> MaskInfo {
        MaskInfo { kind, rate, dim: Dim::H }
    }

    #[test]
    fn drawn_masks_hit_their_rate_and_average_to_their_expectation() {
        for (kind, rate) in [(Stochastic::Dropout, 0.3), (Stochastic::Zoneout, 0.15), (Stochastic::VarDropout, 0.5)] {
            let m = info(kind, rate);
            let (mut zeros, mut sum, n) = (0usize, 0.0, 200_000usize);
            for i in 0..n {
                let v = m.row(2, MaskDraw::Seed(7), i / 1000, i % 7).at(i % 1000);
                zeros += usize::from(v == 0.0);
                sum += v;
            }
            let dropped = zeros as f64 / n as f64;
            let want = if kind == Stochastic::Zoneout { 1.0 - rate } else { rate };
            assert!((dropped - want).abs() < 0.01, "{kind:?}: {dropped} zeros, want {want}");
            assert!((sum / n as f64 - m.expected()).abs() < 0.01, "{kind:?}: mean {}", sum / n as f64);
        }
    }

    #[test]
    fn masks_differ_by_seed_step_example_and_mask_but_variational_ones_not_by_step() {
        let m = info(Stochastic::Dropout, 0.5);
        let bits = |k: usize, seed: u64, t: usize, b: usize| -> Vec<bool> {
            (0..64).map(|j| m.row(k, MaskDraw::Seed(seed), t, b).at(j) == 0.0).collect()
        };
        let base = bits(0, 1, 0, 0);
        assert_eq!(base, bits(0, 1, 0, 0));
        for other in [bits(1, 1, 0, 0), bits(0, 2, 0, 0), bits(0, 1, 1, 0), bits(0, 1, 0, 1)] {
            assert_ne!(base, other);
        }
        let v = info(Stochastic::VarDropout, 0.5);
        let row = |t: usize| (0..64).map(|j| v.row(0, MaskDraw::Seed(1), t, 3).at(j)).collect::<Vec<_>>();
        assert_eq!(row(0), row(9));
        assert_eq!(m.row(0, MaskDraw::Expected, 3, 3).at(5), 1.0);
        assert_eq!(info(Stochastic::Zoneout, 0.25).row(0, MaskDraw::Expected, 0, 0).at(0), 0.25);
    }
}
