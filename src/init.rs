//! Initial parameter values from a cell's `init` rules.
//!
//! The default law is the paper's: uniform in ±scale/sqrt(fan-in), where a matrix's fan-in is its
//! column count and a vector's is its length. Each parameter draws from its own random stream,
//! forked from the seed by a hash of its name, so a parameter gets the same values in every cell
//! that has it (LSTM and LSTM-f start from the same W_xi): ablations differ only where they differ.

use ndarray::{Array2, ArrayD, IxDyn};

use crate::check::Init;
use crate::ir::CellSig;
use crate::rng::Rng;

/// FNV-1a of a name: a stable stream id for [`Rng::fork`].
pub fn name_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
}

/// Initial values of every parameter of `sig` for hidden size `h` and input size `d`.
/// `scale` is the default law's scale (the paper's "init scale").
pub fn initialise(sig: &CellSig, h: usize, d: usize, scale: f64, seed: u64) -> Vec<ArrayD<f64>> {
    let root = Rng::new(seed);
    let mut values: Vec<Option<ArrayD<f64>>> = vec![None; sig.params.len()];
    // Copies last: they read the values of the parameter they copy.
    let order = (0..sig.params.len())
        .filter(|&p| !matches!(sig.params[p].init, Init::Copy { .. }))
        .chain((0..sig.params.len()).filter(|&p| matches!(sig.params[p].init, Init::Copy { .. })));
    for p in order.collect::<Vec<_>>() {
        let info = &sig.params[p];
        let dims = info.dims(h, d);
        let mut rng = root.fork(name_hash(&info.name));
        let fan_in = *dims.last().unwrap_or(&1) as f64;
        let uniform = |rng: &mut Rng, s: f64| {
            let bound = s / fan_in.sqrt();
            ArrayD::from_shape_fn(IxDyn(&dims), |_| rng.uniform(-bound, bound))
        };
        let len = dims.iter().product::<usize>() as f64;
        let value = match &info.init {
            Init::Default => uniform(&mut rng, scale),
            Init::Const(v) => ArrayD::from_elem(IxDyn(&dims), *v),
            Init::Uniform(s) => uniform(&mut rng, *s),
            Init::Chrono { t_max, negated } => {
                let sign = if *negated { -1.0 } else { 1.0 };
                ArrayD::from_shape_fn(IxDyn(&dims), |_| sign * rng.uniform(1.0, t_max - 1.0).ln())
            }
            Init::Ugi { negated } => {
                let sign = if *negated { -1.0 } else { 1.0 };
                let (lo, hi) = (1.0 / len, 1.0 - 1.0 / len);
                ArrayD::from_shape_fn(IxDyn(&dims), |_| {
                    let u = if lo < hi { rng.uniform(lo, hi) } else { 0.5 };
                    sign * -(1.0 / u - 1.0).ln()
                })
            }
            Init::Diag(a) => {
                let mut w = uniform(&mut rng, scale);
                for i in 0..dims[0].min(dims[1]) {
                    w[[i, i]] += a;
                }
                w
            }
            Init::Orthogonal(gain) => orthogonal(&mut rng, dims[0], dims[1], *gain).into_dyn(),
            Init::Copy { param, negated } => {
                let src = values[*param].clone().expect("copies come after their source");
                if *negated { -src } else { src }
            }
        };
        values[p] = Some(value);
    }
    values.into_iter().map(|v| v.expect("every parameter initialised")).collect()
}

/// A random matrix with orthonormal rows (rows <= cols) or columns (rows > cols), times `gain`:
/// Gram-Schmidt on a Gaussian matrix.
fn orthogonal(rng: &mut Rng, rows: usize, cols: usize, gain: f64) -> Array2<f64> {
    let transpose = rows > cols;
    let (n, m) = if transpose { (cols, rows) } else { (rows, cols) };
    let mut a = Array2::from_shape_fn((n, m), |_| rng.normal());
    for i in 0..n {
        for j in 0..i {
            let dot: f64 = (0..m).map(|k| a[[i, k]] * a[[j, k]]).sum();
            for k in 0..m {
                a[[i, k]] -= dot * a[[j, k]];
            }
        }
        let norm = (0..m).map(|k| a[[i, k]] * a[[i, k]]).sum::<f64>().sqrt().max(1e-12);
        for k in 0..m {
            a[[i, k]] /= norm;
        }
    }
    let a = a * gain;
    if transpose { a.reversed_axes().as_standard_layout().to_owned() } else { a }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orthogonal_rows_are_orthonormal() {
        let w = orthogonal(&mut Rng::new(3), 4, 6, 1.0);
        let wwt = w.dot(&w.t());
        for i in 0..4 {
            for j in 0..4 {
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((wwt[[i, j]] - want).abs() < 1e-12, "{wwt}");
            }
        }
        let tall = orthogonal(&mut Rng::new(3), 6, 4, 2.0);
        let wtw = tall.t().dot(&tall);
        assert!((wtw[[1, 1]] - 4.0).abs() < 1e-12 && wtw[[0, 1]].abs() < 1e-12);
    }
}
