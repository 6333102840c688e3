//! Matrix products against constant weights with AVX2+FMA register tiles of 6 rows by 16
//! columns. The weights are packed once per optimiser step into 16-column panels (k rows of 16
//! contiguous values each, the last panel zero-padded), so every tile streams its panel
//! sequentially: per k, two loads, six broadcasts and twelve FMAs.
//!
//! The per-step GEMMs (few rows, the same weights at every step) are where the general `gemm`
//! crate loses most to packing; the packers here also build the panels straight from the weights
//! (transposing 8 x 8 blocks in registers), so no transposed copy is ever made. Used only when
//! the CPU has AVX2 and FMA.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Whether this CPU can run the kernels here.
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

/// Values a packed B [k, n] needs: `ceil(n / 16)` panels of k x 16.
pub fn packed_len(k: usize, n: usize) -> usize {
    n.div_ceil(16) * k * 16
}

/// Packs columns `col0..col0 + w.cols` of B from `w` itself (B[kk][col0 + c] = W[kk][c]):
/// the plain (not transposed) part of a stack. `out` holds the whole stack's panels.
pub fn pack_plain(w: &[f32], rows: usize, cols: usize, k: usize, col0: usize, out: &mut [f32]) {
    assert_eq!(rows, k, "pack_plain: W must have k rows");
    for kk in 0..k {
        let row = &w[kk * cols..(kk + 1) * cols];
        let mut c = 0;
        while c < cols {
            // The run of this row that falls in one panel.
            let col = col0 + c;
            let len = (16 - col % 16).min(cols - c);
            let at = ((col / 16) * k + kk) * 16 + col % 16;
            out[at..at + len].copy_from_slice(&row[c..c + len]);
            c += len;
        }
    }
}

/// Packs columns `col0..col0 + rows` of B from the transpose of `w` (B[kk][col0 + r] = W[r][kk]):
/// the transposed part of a forward stack. `w` is [rows, k].
pub fn pack_transposed(w: &[f32], rows: usize, k: usize, col0: usize, out: &mut [f32]) {
    assert!(w.len() >= rows * k);
    let mut r = 0;
    #[cfg(target_arch = "x86_64")]
    if available() && col0.is_multiple_of(8) {
        // Blocks of 8 rows of W become 8 columns of one panel.
        while r + 8 <= rows {
            let col = col0 + r;
            let base = ((col / 16) * k) * 16 + col % 16;
            let mut kk = 0;
            while kk + 8 <= k {
                // SAFETY: AVX2 is present; the 8 x 8 block lies inside `w`, and its 8 output rows
                // of 8 lie inside `out` (checked by the slice bounds below).
                unsafe {
                    let dst = &mut out[base + kk * 16..base + (kk + 7) * 16 + 8];
                    transpose8(w.as_ptr().add(r * k + kk), k, dst.as_mut_ptr(), 16);
                }
                kk += 8;
            }
            for kk in kk..k {
                for j in 0..8 {
                    out[base + kk * 16 + j] = w[(r + j) * k + kk];
                }
            }
            r += 8;
        }
    }
    for r in r..rows {
        let col = col0 + r;
        for kk in 0..k {
            out[((col / 16) * k + kk) * 16 + col % 16] = w[r * k + kk];
        }
    }
}

/// dst[j][i] = src[i][j] for an 8 x 8 block (`ld_src`, `ld_dst` are row strides).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn transpose8(src: *const f32, ld_src: usize, dst: *mut f32, ld_dst: usize) {
    unsafe {
        let r: [__m256; 8] = std::array::from_fn(|i| _mm256_loadu_ps(src.add(i * ld_src)));
        let t0 = _mm256_unpacklo_ps(r[0], r[1]);
        let t1 = _mm256_unpackhi_ps(r[0], r[1]);
        let t2 = _mm256_unpacklo_ps(r[2], r[3]);
        let t3 = _mm256_unpackhi_ps(r[2], r[3]);
        let t4 = _mm256_unpacklo_ps(r[4], r[5]);
        let t5 = _mm256_unpackhi_ps(r[4], r[5]);
        let t6 = _mm256_unpacklo_ps(r[6], r[7]);
        let t7 = _mm256_unpackhi_ps(r[6], r[7]);
        let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
        let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
        let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
        let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
        let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
        let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
        let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
        let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
        let out = [
            _mm256_permute2f128_ps::<0x20>(u0, u4),
            _mm256_permute2f128_ps::<0x20>(u1, u5),
            _mm256_permute2f128_ps::<0x20>(u2, u6),
            _mm256_permute2f128_ps::<0x20>(u3, u7),
            _mm256_permute2f128_ps::<0x31>(u0, u4),
            _mm256_permute2f128_ps::<0x31>(u1, u5),
            _mm256_permute2f128_ps::<0x31>(u2, u6),
            _mm256_permute2f128_ps::<0x31>(u3, u7),
        ];
        for (i, v) in out.iter().enumerate() {
            _mm256_storeu_ps(dst.add(i * ld_dst), *v);
        }
    }
}

/// `C[m, n] (+)= scale * A[m, k] × B[k, n]` with B packed (see [`packed_len`]); A and C are
/// row-major with row strides `lda` and `ldc`.
///
/// # Safety
/// The CPU must have AVX2 and FMA ([`available`]); A must be valid for m rows of k at stride
/// `lda`, C for m rows of n at stride `ldc`, `packed` for [`packed_len`] values; C must not
/// overlap A or the panels.
#[allow(clippy::too_many_arguments)]
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub unsafe fn matmul_packed(
    m: usize,
    n: usize,
    k: usize,
    a: *const f32,
    lda: usize,
    packed: *const f32,
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
    scale: f32,
) {
    let mut edge = [0.0f32; 6 * 16];
    for p in 0..n.div_ceil(16) {
        let bp = unsafe { packed.add(p * k * 16) };
        let width = (n - 16 * p).min(16);
        let mut i = 0;
        while i < m {
            // Tiles of 6 rows, but 7 or 8 left become 4 + 3 or 4 + 4 rather than 6 + 1 or 6 + 2
            // (a 1- or 2-row tile does a third of a 6-row tile's work per load).
            let rows = match m - i {
                7 | 8 => 4,
                left => left.min(6),
            };
            let ap = unsafe { a.add(i * lda) };
            let cp = unsafe { c.add(i * ldc + 16 * p) };
            if width == 16 {
                unsafe { tile_rows(rows, k, ap, lda, bp, cp, ldc, accumulate, scale) };
            } else {
                // A partial last panel: compute 16 columns into a scratch tile, keep `width`.
                for r in 0..rows {
                    for j in 0..width {
                        edge[r * 16 + j] = if accumulate { unsafe { *cp.add(r * ldc + j) } } else { 0.0 };
                    }
                }
                unsafe { tile_rows(rows, k, ap, lda, bp, edge.as_mut_ptr(), 16, true, scale) };
                for r in 0..rows {
                    for j in 0..width {
                        unsafe { *cp.add(r * ldc + j) = edge[r * 16 + j] };
                    }
                }
            }
            i += rows;
        }
    }
}

#[allow(clippy::too_many_arguments)]
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn tile_rows(
    rows: usize,
    k: usize,
    a: *const f32,
    lda: usize,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    acc: bool,
    scale: f32,
) {
    unsafe {
        match rows {
            6 => tile::<6>(k, a, lda, b, c, ldc, acc, scale),
            5 => tile::<5>(k, a, lda, b, c, ldc, acc, scale),
            4 => tile::<4>(k, a, lda, b, c, ldc, acc, scale),
            3 => tile::<3>(k, a, lda, b, c, ldc, acc, scale),
            2 => tile::<2>(k, a, lda, b, c, ldc, acc, scale),
            1 => tile::<1>(k, a, lda, b, c, ldc, acc, scale),
            _ => {}
        }
    }
}

/// One `R`-row by 16-column tile of C from a packed panel.
#[allow(clippy::too_many_arguments)]
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn tile<const R: usize>(
    k: usize,
    a: *const f32,
    lda: usize,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
    scale: f32,
) {
    let mut acc = [[_mm256_setzero_ps(); 2]; R];
    for p in 0..k {
        let (b0, b1) = unsafe { (_mm256_loadu_ps(b.add(p * 16)), _mm256_loadu_ps(b.add(p * 16 + 8))) };
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

    fn reference(m: usize, n: usize, k: usize, a: &[f32], b: &[f32]) -> Vec<f32> {
        (0..m * n).map(|i| (0..k).map(|p| a[(i / n) * k + p] * b[p * n + i % n]).sum()).collect()
    }

    #[test]
    fn packed_products_match_loops_at_every_edge() {
        if !available() {
            return; // this CPU never runs these kernels
        }
        for (m, n, k) in [(1, 16, 3), (6, 32, 5), (7, 17, 9), (13, 40, 1), (32, 128, 64), (5, 3, 4), (20, 200, 24)] {
            let a: Vec<f32> = (0..m * k).map(|i| ((i * 7 % 11) as f32 - 5.0) * 0.25).collect();
            let b: Vec<f32> = (0..k * n).map(|i| ((i * 3 % 13) as f32 - 6.0) * 0.5).collect();
            let mut packed = vec![f32::NAN; packed_len(k, n)];
            packed.iter_mut().for_each(|v| *v = 0.0);
            pack_plain(&b, k, n, k, 0, &mut packed);
            let want = reference(m, n, k, &a, &b);
            let mut c = vec![1.0f32; m * n];
            unsafe { matmul_packed(m, n, k, a.as_ptr(), k, packed.as_ptr(), c.as_mut_ptr(), n, true, -2.0) };
            for i in 0..m * n {
                assert!((c[i] - (1.0 - 2.0 * want[i])).abs() < 1e-3, "({m},{n},{k}) at {i}");
            }
        }
    }

    #[test]
    fn transposed_packing_equals_packing_the_transpose() {
        for (rows, k, col0) in [(16, 8, 0), (24, 13, 8), (5, 9, 16), (37, 40, 0)] {
            let w: Vec<f32> = (0..rows * k).map(|i| i as f32).collect();
            let n = col0 + rows;
            let wt: Vec<f32> = (0..k * rows).map(|i| w[(i % rows) * k + i / rows]).collect();
            let (mut a, mut b) = (vec![0.0; packed_len(k, n)], vec![0.0; packed_len(k, n)]);
            pack_transposed(&w, rows, k, col0, &mut a);
            pack_plain(&wt, k, rows, k, col0, &mut b);
            assert_eq!(a, b, "rows {rows} k {k} col0 {col0}");
        }
    }
}
