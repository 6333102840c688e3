//! The output layer's softmax rows with 8-wide AVX2+FMA code: the same three passes and the same
//! exp polynomial as the portable Cranelift kernel in `codegen::softmax`, at twice its width
//! (Cranelift emits 128-bit vectors only). On 10,000-wide rows this ran at 1.3-1.6 ns per value
//! against 2.9-3.5 for the JIT kernel (one thread, 350 rows, 2026-11-27), halving the softmax in a
//! PTB-sized `cellc bench --profile`. Used only when the CPU has AVX2 and FMA; `tests/softmax.rs`
//! checks both against f64.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// e^x for 8 lanes: Cody-Waite reduction, the Cephes degree-6 polynomial, 2^n in two halves;
/// above 88.72 +inf, below -87.34 zero, NaN stays NaN (as `codegen::math::Math::exp`).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::excessive_precision)] // Cephes' coefficients as published.
fn exp8(x: __m256) -> __m256 {
    const HI: f32 = 88.722_84;
    const LO: f32 = -87.336_55;
    let (hi, lo) = (_mm256_set1_ps(HI), _mm256_set1_ps(LO));
    let xc = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
    let t = _mm256_mul_ps(xc, _mm256_set1_ps(std::f32::consts::LOG2_E));
    // Round by adding 1.5 * 2^23: the sum's low bits are the integer n (see `Math::exp`).
    let magic = _mm256_set1_ps(12_582_912.0);
    let shifted = _mm256_add_ps(t, magic);
    let n = _mm256_sub_ps(shifted, magic);
    let r = _mm256_fmadd_ps(n, _mm256_set1_ps(-0.693_359_4), xc);
    let r = _mm256_fmadd_ps(n, _mm256_set1_ps(2.121_944_4e-4), r);
    let mut p = _mm256_set1_ps(1.987_569_1e-4);
    for k in [1.398_2e-3f32, 8.333_452e-3, 4.166_579_6e-2, 1.666_666_5e-1, 5.000_000_1e-1] {
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(k));
    }
    let e = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0)));
    let ni = _mm256_sub_epi32(_mm256_castps_si256(shifted), _mm256_castps_si256(magic));
    let half = _mm256_srai_epi32::<1>(ni);
    let rest = _mm256_sub_epi32(ni, half);
    let bias = _mm256_set1_epi32(127);
    let s1 = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(half, bias)));
    let s2 = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(rest, bias)));
    let y = _mm256_mul_ps(_mm256_mul_ps(e, s1), s2);
    let y = _mm256_blendv_ps(y, _mm256_set1_ps(f32::INFINITY), _mm256_cmp_ps::<_CMP_GT_OQ>(x, hi));
    _mm256_blendv_ps(y, _mm256_setzero_ps(), _mm256_cmp_ps::<_CMP_LT_OQ>(x, lo))
}

/// One row: `row = scale * softmax(row + bias)` in place, `colsums += row`; returns the row's
/// (max, sum of exp) so that its log-sum-exp is `max + ln(sum)`.
///
/// # Safety
/// The CPU must have AVX2 and FMA (see `small_gemm::available`).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub unsafe fn softmax_row(row: &mut [f32], bias: &[f32], scale: f32, colsums: &mut [f32]) -> (f32, f32) {
    let n = row.len();
    assert!(bias.len() >= n && colsums.len() >= n, "softmax_row: short bias or column sums");
    let vec_end = n / 8 * 8;
    let (rp, bp, cp) = (row.as_mut_ptr(), bias.as_ptr(), colsums.as_mut_ptr());
    // SAFETY (all loads and stores below): offsets i < vec_end <= n, and every slice holds n.
    let load = |p: *const f32, i: usize| unsafe { _mm256_loadu_ps(p.add(i)) };
    let mut m = _mm256_set1_ps(f32::NEG_INFINITY);
    for i in (0..vec_end).step_by(8) {
        m = _mm256_max_ps(m, _mm256_add_ps(load(rp, i), load(bp, i)));
    }
    let mut lanes = [0f32; 8];
    // SAFETY: `lanes` holds 8 values.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), m) };
    let mut max = lanes.iter().fold(f32::NEG_INFINITY, |a, &b| if b > a { b } else { a });
    for i in vec_end..n {
        let z = row[i] + bias[i];
        if z > max {
            max = z;
        }
    }
    let mv = _mm256_set1_ps(max);
    let mut s = _mm256_setzero_ps();
    for i in (0..vec_end).step_by(8) {
        let e = exp8(_mm256_sub_ps(_mm256_add_ps(load(rp, i), load(bp, i)), mv));
        // SAFETY: as for `load`.
        unsafe { _mm256_storeu_ps(rp.add(i), e) };
        s = _mm256_add_ps(s, e);
    }
    // SAFETY: `lanes` holds 8 values.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), s) };
    let mut sum: f32 = lanes.iter().sum();
    for i in vec_end..n {
        let mut one = [0f32; 8];
        one[0] = row[i] + bias[i] - max;
        // SAFETY: `one` holds 8 values.
        let e = unsafe { exp8(_mm256_loadu_ps(one.as_ptr())) };
        // SAFETY: as above.
        unsafe { _mm256_storeu_ps(one.as_mut_ptr(), e) };
        row[i] = one[0];
        sum += one[0];
    }
    let factor = scale / sum;
    let fv = _mm256_set1_ps(factor);
    for i in (0..vec_end).step_by(8) {
        let y = _mm256_mul_ps(load(rp, i), fv);
        // SAFETY: as for `load`.
        unsafe {
            _mm256_storeu_ps(rp.add(i), y);
            _mm256_storeu_ps(cp.add(i), _mm256_add_ps(load(cp, i), y));
        }
    }
    for i in vec_end..n {
        row[i] *= factor;
        colsums[i] += row[i];
    }
    (max, sum)
}
