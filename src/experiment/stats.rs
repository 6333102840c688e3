//! The statistics experiments report with: Student-t intervals of a mean over seeds, paired
//! differences between two cells trained on the same seeds, their p-values, and a sequential
//! procedure that adds seeds until a difference is decided while keeping its error rate.
//!
//! The sequential procedure looks after every new seed, from `min_seeds` to `max_seeds`. Each look
//! uses level `alpha / looks` (Bonferroni over the planned looks), so the chance that any look
//! declares a difference that is not there, or that the interval reported when it stops misses
//! the true difference, is at most `alpha` whatever the stopping rule does with the data. It is
//! conservative, simple, and exact for normal differences at every sample size (a test in this
//! file checks its coverage by simulation).

use serde::Serialize;

/// Mean, spread and interval of a sample.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Summary {
    pub n: usize,
    pub mean: f64,
    /// Sample standard deviation (n - 1); NaN for n < 2.
    pub sd: f64,
    /// Half-width of the two-sided interval at `level`; NaN for n < 2.
    pub half_width: f64,
    pub level: f64,
    /// Two-sided p-value of "the mean is 0" (Student t); NaN for n < 2.
    pub p_value: f64,
}

impl Summary {
    /// The sample's mean and its two-sided Student-t interval at confidence `level`.
    pub fn of(values: &[f64], level: f64) -> Summary {
        let n = values.len();
        let mean = if n == 0 { f64::NAN } else { values.iter().sum::<f64>() / n as f64 };
        if n < 2 {
            return Summary { n, mean, sd: f64::NAN, half_width: f64::NAN, level, p_value: f64::NAN };
        }
        let df = (n - 1) as f64;
        let sd = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / df).sqrt();
        let se = sd / (n as f64).sqrt();
        let half_width = cached_quantile(0.5 + level / 2.0, df) * se;
        let p_value = if se > 0.0 {
            2.0 * (1.0 - t_cdf((mean / se).abs(), df))
        } else if mean == 0.0 {
            1.0
        } else {
            0.0
        };
        Summary { n, mean, sd, half_width, level, p_value }
    }

    pub fn low(&self) -> f64 {
        self.mean - self.half_width
    }

    pub fn high(&self) -> f64 {
        self.mean + self.half_width
    }

    /// Whether the interval lies wholly above (`Some(true)`) or below (`Some(false)`) zero.
    pub fn sign(&self) -> Option<bool> {
        if !self.half_width.is_finite() {
            return None;
        }
        if self.low() > 0.0 {
            Some(true)
        } else if self.high() < 0.0 {
            Some(false)
        } else {
            None
        }
    }
}

/// A p-value for a table: `-` when undefined, scientific below 1e-4.
pub fn show_p(p: f64) -> String {
    if !p.is_finite() {
        "-".into()
    } else if p < 1e-4 {
        format!("{p:.1e}")
    } else {
        format!("{p:.4}")
    }
}

/// The paired differences `b[i] - a[i]` (same seeds).
pub fn paired(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(x, y)| y - x).collect()
}

/// The sequential plan: look after each new seed from `min_seeds` to `max_seeds` at an overall
/// error rate `alpha`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Sequential {
    pub min_seeds: usize,
    pub max_seeds: usize,
    pub alpha: f64,
}

impl Sequential {
    /// How many looks the plan has.
    pub fn looks(&self) -> usize {
        self.max_seeds.saturating_sub(self.min_seeds.max(2)) + 1
    }

    /// The confidence level of each look: 1 - alpha / looks.
    pub fn level(&self) -> f64 {
        1.0 - self.alpha / self.looks() as f64
    }

    /// The paired differences' summary at this look's level, and whether it decides (its interval
    /// excludes zero).
    pub fn look(&self, differences: &[f64]) -> (Summary, bool) {
        let s = Summary::of(differences, self.level());
        let decided = differences.len() >= self.min_seeds && s.sign().is_some();
        (s, decided)
    }
}

/// [`t_quantile`], remembered per (p, df): experiments ask for the same few many times.
fn cached_quantile(p: f64, df: f64) -> f64 {
    thread_local! {
        static SEEN: std::cell::RefCell<std::collections::HashMap<(u64, u64), f64>> = Default::default();
    }
    SEEN.with(|seen| *seen.borrow_mut().entry((p.to_bits(), df.to_bits())).or_insert_with(|| t_quantile(p, df)))
}

/// Student's t cumulative distribution at `t` with `df` degrees of freedom.
pub fn t_cdf(t: f64, df: f64) -> f64 {
    let x = df / (df + t * t);
    let tail = 0.5 * incomplete_beta(df / 2.0, 0.5, x);
    if t >= 0.0 { 1.0 - tail } else { tail }
}

/// The `p` quantile of Student's t with `df` degrees of freedom (bisection on the CDF).
pub fn t_quantile(p: f64, df: f64) -> f64 {
    if p == 0.5 {
        return 0.0;
    }
    if p < 0.5 {
        return -t_quantile(1.0 - p, df);
    }
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    while t_cdf(hi, df) < p {
        hi *= 2.0;
        if hi > 1e12 {
            return f64::INFINITY;
        }
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if t_cdf(mid, df) < p {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo < 1e-12 * hi.max(1.0) {
            break;
        }
    }
    0.5 * (lo + hi)
}

/// The regularised incomplete beta function I_x(a, b) (continued fraction, as in Numerical
/// Recipes' `betai`).
fn incomplete_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    if x < (a + 1.0) / (a + b + 2.0) {
        ln_front.exp() * beta_fraction(a, b, x) / a
    } else {
        1.0 - ln_front.exp() * beta_fraction(b, a, 1.0 - x) / b
    }
}

fn beta_fraction(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..500 {
        let m = f64::from(m);
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        d = if d.abs() < TINY { TINY } else { d };
        c = 1.0 + aa / c;
        c = if c.abs() < TINY { TINY } else { c };
        d = 1.0 / d;
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        d = if d.abs() < TINY { TINY } else { d };
        c = 1.0 + aa / c;
        c = if c.abs() < TINY { TINY } else { c };
        d = 1.0 / d;
        let del = d * c;
        h *= del;
        if (del - 1.0).abs() < 1e-15 {
            break;
        }
    }
    h
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, 9 terms).
fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection.
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = G[0];
    let t = x + 7.5;
    for (i, g) in G.iter().enumerate().skip(1) {
        a += g / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn t_quantiles_match_published_tables() {
        // Two-sided 95% (0.975 quantile) and 99% (0.995) for df = 1, 2, 5, 10, 30.
        for (df, q975, q995) in [
            (1.0, 12.706, 63.657),
            (2.0, 4.303, 9.925),
            (5.0, 2.571, 4.032),
            (10.0, 2.228, 3.169),
            (30.0, 2.042, 2.750),
        ] {
            assert!((t_quantile(0.975, df) - q975).abs() < 1e-3, "df {df}: {}", t_quantile(0.975, df));
            assert!((t_quantile(0.995, df) - q995).abs() < 1e-3, "df {df}: {}", t_quantile(0.995, df));
        }
        assert!((t_cdf(0.0, 7.0) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn a_summary_gives_the_textbook_interval_and_p_value() {
        let s = Summary::of(&[0.58, 0.60, 0.62], 0.95);
        assert!((s.mean - 0.6).abs() < 1e-12 && (s.sd - 0.02).abs() < 1e-12);
        assert!((s.half_width - 4.303 * 0.02 / 3f64.sqrt()).abs() < 1e-4);
        // t = 0.6 / (0.02 / sqrt 3) = 51.96 at df 2: p = 3.7e-4.
        assert!((s.p_value - 3.70e-4).abs() < 0.1e-4, "{}", s.p_value);
        assert_eq!(s.sign(), Some(true));
    }

    /// Normal paired differences with mean `mu` and sd 1, fed to the sequential plan one seed at
    /// a time: (the fraction of runs where the interval reported at the stop covers `mu`, the
    /// fraction that decided).
    fn simulate(mu: f64, plan: Sequential, runs: usize, seed: u64) -> (f64, f64) {
        let mut rng = Rng::new(seed);
        let (mut covered, mut decided) = (0usize, 0usize);
        for _ in 0..runs {
            let mut d = vec![];
            let summary = loop {
                // Box-Muller.
                let (u, v) = (rng.f64().max(1e-300), rng.f64());
                d.push(mu + (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos());
                if d.len() < plan.min_seeds {
                    continue;
                }
                let (s, done) = plan.look(&d);
                if done || d.len() >= plan.max_seeds {
                    decided += usize::from(done);
                    break s;
                }
            };
            covered += usize::from(summary.low() <= mu && mu <= summary.high());
        }
        (covered as f64 / runs as f64, decided as f64 / runs as f64)
    }

    #[test]
    fn the_sequential_plan_keeps_its_error_rate() {
        let plan = Sequential { min_seeds: 3, max_seeds: 10, alpha: 0.05 };
        // No difference: deciding is an error, and must happen in at most 5% of runs.
        let (coverage, decided) = simulate(0.0, plan, 4000, 1);
        assert!(coverage >= 0.95 && decided <= 0.05, "mu 0: coverage {coverage}, decided {decided}");
        // Real differences: the interval at the stop still covers the truth in >= 95% of runs
        // (stopping early when the data look extreme is what an unadjusted interval fails at).
        for (mu, seed) in [(0.5, 2), (1.0, 3), (2.0, 4)] {
            let (coverage, decided) = simulate(mu, plan, 4000, seed);
            assert!(coverage >= 0.95, "mu {mu}: coverage {coverage} (decided {decided})");
        }
        // And a large difference is found: with sd 1 and mean 2, almost always within 10 seeds.
        assert!(simulate(2.0, plan, 1000, 5).1 > 0.95);
    }

    #[test]
    fn unadjusted_looks_would_not_keep_it() {
        // The check above can fail: looking after every seed at plain 95% does break coverage.
        let naive = Sequential { min_seeds: 3, max_seeds: 10, alpha: 0.05 };
        let mut rng = Rng::new(9);
        let mut errors = 0;
        for _ in 0..4000 {
            let mut d = vec![];
            for n in 1..=naive.max_seeds {
                let (u, v) = (rng.f64().max(1e-300), rng.f64());
                d.push((-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos());
                if n >= 3 && Summary::of(&d, 0.95).sign().is_some() {
                    errors += 1;
                    break;
                }
            }
        }
        assert!(errors as f64 / 4000.0 > 0.08, "naive looks err in {} of 4000", errors);
    }
}
