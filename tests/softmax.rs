//! The output layer's softmax, both the JIT kernel and (where the CPU has it) the AVX2 rows,
//! against an f64 softmax: values, log-sum-exp, and the column sums.

use cellc::rng::Rng;
use cellc::runtime::softmax::Softmax;

/// Worst relative error of one implementation over many widths and value ranges.
fn worst_error(avx2: bool) -> f64 {
    let mut sm = Softmax::compile().unwrap();
    sm.avx2 = avx2;
    let mut rng = Rng::new(5);
    let mut worst: f64 = 0.0;
    for (case, width) in (1..40).chain([1000, 10_000]).enumerate() {
        let (rows, stride) = (3, width + case % 3);
        let spread = [0.1, 5.0, 40.0][case % 3];
        let data: Vec<f32> = (0..rows * stride).map(|_| rng.uniform(-spread, spread) as f32).collect();
        let bias: Vec<f32> = (0..width).map(|_| rng.uniform(-1.0, 1.0) as f32).collect();
        let scale = 0.25f32;
        let (mut out, mut maxes, mut sums, mut colsums) =
            (data.clone(), vec![0.0; rows], vec![0.0; rows], vec![1.0; width]);
        sm.run(&mut out, &bias, rows, width, stride, scale, &mut maxes, &mut sums, &mut colsums);
        let mut want_cols = vec![1.0f64; width];
        for r in 0..rows {
            let z: Vec<f64> = (0..width).map(|c| f64::from(data[r * stride + c]) + f64::from(bias[c])).collect();
            let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let total: f64 = z.iter().map(|v| (v - m).exp()).sum();
            let lse = m + total.ln();
            let got_lse = f64::from(maxes[r]) + f64::from(sums[r]).ln();
            worst = worst.max((got_lse - lse).abs() / lse.abs().max(1.0));
            for c in 0..width {
                let want = f64::from(scale) * (z[c] - lse).exp();
                want_cols[c] += want;
                let got = f64::from(out[r * stride + c]);
                worst = worst.max((got - want).abs() / want.abs().max(1e-6));
            }
        }
        for c in 0..width {
            worst = worst.max((f64::from(colsums[c]) - want_cols[c]).abs() / want_cols[c]);
        }
    }
    worst
}

#[test]
fn jit_softmax_matches_f64() {
    let e = worst_error(false);
    eprintln!("JIT softmax: worst relative error {e:.2e}");
    assert!(e < 2e-5, "JIT softmax error {e:.2e}");
}

#[test]
fn avx2_softmax_matches_f64() {
    if !cellc::runtime::small_gemm::available() {
        eprintln!("no AVX2+FMA on this CPU: the JIT kernel is the only path");
        return;
    }
    let e = worst_error(true);
    eprintln!("AVX2 softmax: worst relative error {e:.2e}");
    assert!(e < 2e-5, "AVX2 softmax error {e:.2e}");
}
