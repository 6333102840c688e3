//! Matrix products with few rows (the per-step GEMMs: m = batch rows of one thread), where the
//! general `gemm` crate spends much of its time packing. AVX2+FMA register tiles of 6 rows by 16
//! columns: per k, two loads of the right-hand side, six broadcasts and twelve FMAs, read
//! straight from the row-major operands. Used only when the CPU has AVX2 and FMA.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Whether this CPU can run [`matmul_small`].
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `C[m, n] (+)= scale * A[m, k] × B[k, n]` for row-major views (`lda`, `ldb`, `ldc` are row
/// strides in elements).
///
/// # Safety
/// The CPU must have AVX2 and FMA ([`available`]); every view must be valid for its rows at its
/// stride; `c` must not overlap `a` or `b`.
#[allow(clippy::too_many_arguments)]
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub unsafe fn matmul_small(
    m: usize,
    n: usize,
    k: usize,
    a: *const f32,
    lda: usize,
    b: *const f32,
    ldb: usize,
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
    scale: f32,
) {
    let mut j = 0;
    while j + 16 <= n {
        let mut i = 0;
        while i + 6 <= m {
            unsafe { tile::<6>(k, a.add(i * lda), lda, b.add(j), ldb, c.add(i * ldc + j), ldc, accumulate, scale) };
            i += 6;
        }
        let rest = m - i;
        let (ap, cp) = unsafe { (a.add(i * lda), c.add(i * ldc + j)) };
        unsafe {
            match rest {
                1 => tile::<1>(k, ap, lda, b.add(j), ldb, cp, ldc, accumulate, scale),
                2 => tile::<2>(k, ap, lda, b.add(j), ldb, cp, ldc, accumulate, scale),
                3 => tile::<3>(k, ap, lda, b.add(j), ldb, cp, ldc, accumulate, scale),
                4 => tile::<4>(k, ap, lda, b.add(j), ldb, cp, ldc, accumulate, scale),
                5 => tile::<5>(k, ap, lda, b.add(j), ldb, cp, ldc, accumulate, scale),
                _ => {}
            }
        }
        j += 16;
    }
    // Columns left over (n not a multiple of 16): plain loops.
    for i in 0..m {
        for jj in j..n {
            let mut sum = 0.0f32;
            for p in 0..k {
                sum += unsafe { *a.add(i * lda + p) * *b.add(p * ldb + jj) };
            }
            let out = unsafe { &mut *c.add(i * ldc + jj) };
            *out = if accumulate { *out + scale * sum } else { scale * sum };
        }
    }
}

/// Packs the full 16-column panels of a row-major B [k, n] (row stride `ldb`): panel p holds
/// B[0..k][16p..16p+16] contiguously, 16 values per k. Columns past the last full panel are
/// not packed ([`matmul_small_packed`] reads them from B).
pub fn pack(b: &[f32], k: usize, n: usize, ldb: usize, out: &mut [f32]) {
    let panels = n / 16;
    assert!(out.len() >= panels * k * 16, "pack: short output");
    for p in 0..panels {
        for kk in 0..k {
            let src = &b[kk * ldb + 16 * p..kk * ldb + 16 * p + 16];
            out[(p * k + kk) * 16..(p * k + kk) * 16 + 16].copy_from_slice(src);
        }
    }
}

/// [`matmul_small`] with B's full panels pre-packed by [`pack`] (the rest read from `b`).
///
/// # Safety
/// As [`matmul_small`]; `packed` must hold `(n / 16) * k * 16` values packed from `b`.
#[allow(clippy::too_many_arguments)]
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub unsafe fn matmul_small_packed(
    m: usize,
    n: usize,
    k: usize,
    a: *const f32,
    lda: usize,
    packed: *const f32,
    b: *const f32,
    ldb: usize,
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
    scale: f32,
) {
    let panels = n / 16;
    for p in 0..panels {
        let bp = unsafe { packed.add(p * k * 16) };
        let mut i = 0;
        while i + 6 <= m {
            unsafe { tile::<6>(k, a.add(i * lda), lda, bp, 16, c.add(i * ldc + 16 * p), ldc, accumulate, scale) };
            i += 6;
        }
        let (ap, cp) = unsafe { (a.add(i * lda), c.add(i * ldc + 16 * p)) };
        unsafe {
            match m - i {
                1 => tile::<1>(k, ap, lda, bp, 16, cp, ldc, accumulate, scale),
                2 => tile::<2>(k, ap, lda, bp, 16, cp, ldc, accumulate, scale),
                3 => tile::<3>(k, ap, lda, bp, 16, cp, ldc, accumulate, scale),
                4 => tile::<4>(k, ap, lda, bp, 16, cp, ldc, accumulate, scale),
                5 => tile::<5>(k, ap, lda, bp, 16, cp, ldc, accumulate, scale),
                _ => {}
            }
        }
    }
    if panels * 16 < n {
        // The last columns: the unpacked routine on the remaining part of B and C.
        let j = panels * 16;
        unsafe { matmul_small(m, n - j, k, a, lda, b.add(j), ldb, c.add(j), ldc, accumulate, scale) };
    }
}

/// One `R`-row by 16-column tile of C.
#[allow(clippy::too_many_arguments)]
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn tile<const R: usize>(
    k: usize,
    a: *const f32,
    lda: usize,
    b: *const f32,
    ldb: usize,
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
    scale: f32,
) {
    let mut acc = [[_mm256_setzero_ps(); 2]; R];
    for p in 0..k {
        let (b0, b1) = unsafe { (_mm256_loadu_ps(b.add(p * ldb)), _mm256_loadu_ps(b.add(p * ldb + 8))) };
        for (i, row) in acc.iter_mut().enumerate() {
            let ai = unsafe { _mm256_broadcast_ss(&*a.add(i * lda + p)) };
            row[0] = _mm256_fmadd_ps(ai, b0, row[0]);
            row[1] = _mm256_fmadd_ps(ai, b1, row[1]);
        }
    }
    let s = _mm256_set1_ps(scale);
    for (i, row) in acc.iter().enumerate() {
        let out = unsafe { c.add(i * ldc) };
        for (h, v) in row.iter().enumerate() {
            let dst = unsafe { out.add(8 * h) };
            let v =
                if accumulate { _mm256_fmadd_ps(*v, s, unsafe { _mm256_loadu_ps(dst) }) } else { _mm256_mul_ps(*v, s) };
            unsafe { _mm256_storeu_ps(dst, v) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_matches_unpacked() {
        if !available() {
            return;
        }
        let (m, n, k) = (9, 37, 11);
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
        let mut packed = vec![0.0; (n / 16) * k * 16];
        pack(&b, k, n, n, &mut packed);
        let (mut c1, mut c2) = (vec![0.5f32; m * n], vec![0.5f32; m * n]);
        unsafe {
            matmul_small(m, n, k, a.as_ptr(), k, b.as_ptr(), n, c1.as_mut_ptr(), n, true, 1.5);
            matmul_small_packed(m, n, k, a.as_ptr(), k, packed.as_ptr(), b.as_ptr(), n, c2.as_mut_ptr(), n, true, 1.5);
        }
        assert_eq!(c1, c2);
    }

    #[test]
    fn matches_loops_for_every_edge() {
        if !available() {
            return; // nothing to test on this CPU; `matmul` never calls it here
        }
        for (m, n, k) in [(1, 16, 3), (6, 32, 5), (7, 17, 9), (13, 40, 1), (32, 128, 64), (5, 3, 4)] {
            let a: Vec<f32> = (0..m * k).map(|i| ((i * 7 % 11) as f32 - 5.0) * 0.25).collect();
            let b: Vec<f32> = (0..k * n).map(|i| ((i * 3 % 13) as f32 - 6.0) * 0.5).collect();
            let mut c = vec![1.0f32; m * n];
            unsafe { matmul_small(m, n, k, a.as_ptr(), k, b.as_ptr(), n, c.as_mut_ptr(), n, true, -2.0) };
            for i in 0..m {
                for j in 0..n {
                    let want: f32 = 1.0 - 2.0 * (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum::<f32>();
                    assert!(
                        (c[i * n + j] - want).abs() < 1e-3,
                        "({m},{n},{k}) at ({i},{j}): {} vs {want}",
                        c[i * n + j]
                    );
                }
            }
        }
    }
}
