//! Matrix products through the `gemm` crate (its AVX-512 kernels with the `x86-v4` feature where
//! the CPU has them, AVX2+FMA otherwise), with every shape and stride checked against the slices
//! before the unsafe call; and the machine's measured GEMM rate.

/// Whether GEMMs against weight stacks use the packed kernel of `small_gemm`.
pub(crate) fn small_gemm_ok() -> bool {
    static OK: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *OK.get_or_init(super::small_gemm::available)
}

/// A row-major matrix view: `rows` x `cols`, row `r` starting at `r * stride`.
#[derive(Clone, Copy, Debug)]
pub struct Mat {
    pub ptr: *const f32,
    pub rows: usize,
    pub cols: usize,
    pub stride: usize,
    /// Elements readable from `ptr` (for the bounds check).
    pub len: usize,
}

/// A writable row-major matrix view.
#[derive(Clone, Copy, Debug)]
pub struct MatMut {
    pub ptr: *mut f32,
    pub rows: usize,
    pub cols: usize,
    pub stride: usize,
    pub len: usize,
}

fn fits(rows: usize, cols: usize, stride: usize, len: usize) -> bool {
    rows == 0 || cols == 0 || (rows - 1) * stride + cols <= len
}

/// `dst = scale * lhs × rhs` (or `dst += ...` when `accumulate`). With `transpose_lhs`, `lhs` is
/// given as its transpose: a [k, m] view whose transpose is multiplied.
///
/// # Safety
/// Each view's pointer must be valid for its `len` elements (reads, and writes for `dst`), and
/// `dst` must not overlap the inputs. Shapes and strides are checked against `len` here.
pub unsafe fn matmul(dst: MatMut, lhs: Mat, transpose_lhs: bool, rhs: Mat, accumulate: bool, scale: f32) {
    let (m, k) = if transpose_lhs { (lhs.cols, lhs.rows) } else { (lhs.rows, lhs.cols) };
    let n = rhs.cols;
    assert_eq!(rhs.rows, k, "matmul: inner sizes differ");
    assert_eq!((dst.rows, dst.cols), (m, n), "matmul: output shape");
    assert!(fits(lhs.rows, lhs.cols, lhs.stride, lhs.len), "matmul: lhs view out of bounds");
    assert!(fits(rhs.rows, rhs.cols, rhs.stride, rhs.len), "matmul: rhs view out of bounds");
    assert!(fits(dst.rows, dst.cols, dst.stride, dst.len), "matmul: dst view out of bounds");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for r in 0..m {
                // SAFETY: in bounds by the check above.
                unsafe { std::ptr::write_bytes(dst.ptr.add(r * dst.stride), 0, n) };
            }
        }
        return;
    }
    let (lhs_cs, lhs_rs) = if transpose_lhs { (lhs.stride as isize, 1) } else { (1, lhs.stride as isize) };
    // SAFETY: every view is in bounds (checked above); the output does not alias the inputs
    // (they are distinct buffers in the schedule).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.ptr,
            1,
            dst.stride as isize,
            accumulate,
            lhs.ptr,
            lhs_cs,
            lhs_rs,
            rhs.ptr,
            1,
            rhs.stride as isize,
            1.0,
            scale,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// `dst[m, n] (+)= lhs × rhs` on contiguous row-major slices, with `lhs` either [m, k] or, with
/// `transpose_lhs`, [k, m]; `rhs` is [k, n]. Rows of `dst` are split over `threads`.
#[allow(clippy::too_many_arguments)]
pub fn matmul_slices(
    dst: &mut [f32],
    m: usize,
    n: usize,
    lhs: &[f32],
    k: usize,
    transpose_lhs: bool,
    rhs: &[f32],
    accumulate: bool,
    threads: usize,
) {
    assert_eq!(dst.len(), m * n, "matmul_slices: dst");
    assert_eq!(lhs.len(), m * k, "matmul_slices: lhs");
    assert_eq!(rhs.len(), k * n, "matmul_slices: rhs");
    let chunk = m.div_ceil(threads.clamp(1, m.max(1))).max(1);
    let work = |(i, d): (usize, &mut [f32])| {
        let from = i * chunk;
        let rows = d.len() / n.max(1);
        let out = MatMut { ptr: d.as_mut_ptr(), rows, cols: n, stride: n, len: d.len() };
        let l = if transpose_lhs {
            Mat { ptr: lhs[from..].as_ptr(), rows: k, cols: rows, stride: m, len: lhs.len() - from }
        } else {
            Mat { ptr: lhs[from * k..].as_ptr(), rows, cols: k, stride: k, len: rows * k }
        };
        let r = Mat { ptr: rhs.as_ptr(), rows: k, cols: n, stride: n, len: rhs.len() };
        // SAFETY: every view lies inside its slice; `d` is this chunk's own rows of `dst`.
        unsafe { matmul(out, l, transpose_lhs, r, accumulate, 1.0) };
    };
    if n == 0 || m == 0 {
        return;
    }
    let parts = m.div_ceil(chunk);
    let base = dst.as_mut_ptr() as usize;
    super::pool::run(parts, &|i| {
        let from = i * chunk;
        let rows = chunk.min(m - from);
        // SAFETY: each part is its own rows of `dst`, which outlives the region.
        let d = unsafe { std::slice::from_raw_parts_mut((base as *mut f32).add(from * n), rows * n) };
        work((i, d));
    });
}

/// `dst[m, n] += scale * lhs[m, k] × rhs[k, n]` on contiguous row-major slices, rows of `dst`
/// split over `threads`.
#[allow(clippy::too_many_arguments)]
pub fn matmul_scaled(
    dst: &mut [f32],
    m: usize,
    n: usize,
    lhs: &[f32],
    k: usize,
    rhs: &[f32],
    scale: f32,
    threads: usize,
) {
    assert!(dst.len() >= m * n && lhs.len() >= m * k && rhs.len() >= k * n, "matmul_scaled: short slices");
    if m == 0 || n == 0 {
        return;
    }
    let chunk = m.div_ceil(threads.clamp(1, m)).max(1);
    let (base, lp) = (dst.as_mut_ptr() as usize, lhs.as_ptr() as usize);
    super::pool::run(m.div_ceil(chunk), &|i| {
        let from = i * chunk;
        let rows = chunk.min(m - from);
        let out = MatMut { ptr: (base as *mut f32).wrapping_add(from * n), rows, cols: n, stride: n, len: rows * n };
        let l = Mat { ptr: (lp as *const f32).wrapping_add(from * k), rows, cols: k, stride: k, len: rows * k };
        let r = Mat { ptr: rhs.as_ptr(), rows: k, cols: n, stride: n, len: k * n };
        // SAFETY: each part covers its own rows of `dst` and `lhs`, inside the slices.
        unsafe { matmul(out, l, false, r, true, scale) };
    });
}

/// A matrix inside a slice: element (r, c) at `r * rs + c * cs`, so a transpose is a view too.
#[derive(Clone, Copy, Debug)]
pub struct Strided<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
}

impl<'a> Strided<'a> {
    /// A row-major [rows, cols] matrix.
    pub fn rows(data: &'a [f32], rows: usize, cols: usize) -> Strided<'a> {
        Strided { data, rows, cols, rs: cols, cs: 1 }
    }

    /// The transpose of a row-major [cols, rows] matrix, seen as [rows, cols].
    pub fn transposed(data: &'a [f32], rows: usize, cols: usize) -> Strided<'a> {
        Strided { data, rows, cols, rs: 1, cs: rows }
    }

    fn in_bounds(&self) -> bool {
        self.rows == 0 || self.cols == 0 || (self.rows - 1) * self.rs + (self.cols - 1) * self.cs < self.data.len()
    }
}

/// `dst (+)= lhs × rhs` for strided views, where `dst` is [m, n] at (`d_rs`, `d_cs`) in its
/// slice. The larger of m and n is split into `threads` parts, each one call of the `gemm` crate
/// (which reads any strides and packs as it goes), so a given thread count always splits alike.
#[allow(clippy::too_many_arguments)]
pub fn gemm_strided(
    dst: &mut [f32],
    d_rs: usize,
    d_cs: usize,
    lhs: Strided<'_>,
    rhs: Strided<'_>,
    accumulate: bool,
    threads: usize,
) {
    let (m, k, n) = (lhs.rows, lhs.cols, rhs.cols);
    assert_eq!(rhs.rows, k, "gemm_strided: inner sizes differ");
    assert!(lhs.in_bounds() && rhs.in_bounds(), "gemm_strided: input view out of bounds");
    let out = Strided { data: dst, rows: m, cols: n, rs: d_rs, cs: d_cs };
    assert!(out.in_bounds(), "gemm_strided: output view out of bounds");
    // Distinct (r, c) must be distinct elements, or two threads could write one of them.
    assert!(m <= 1 || n <= 1 || d_rs >= n * d_cs || d_cs >= m * d_rs, "gemm_strided: output rows overlap");
    if m == 0 || n == 0 {
        return;
    }
    let split_rows = m >= n;
    let len = if split_rows { m } else { n };
    let per = len.div_ceil(threads.clamp(1, len));
    let base = dst.as_mut_ptr() as usize;
    super::pool::run(len.div_ceil(per), &|i| {
        let (from, count) = (i * per, per.min(len - i * per));
        let (rows, cols) = if split_rows { (count, n) } else { (m, count) };
        let (l_off, r_off, d_off) =
            if split_rows { (from * lhs.rs, 0, from * d_rs) } else { (0, from * rhs.cs, from * d_cs) };
        // SAFETY: all three views are in bounds (checked above, and a part lies inside the whole);
        // parts write disjoint rows or columns of `dst`, whose elements are distinct (checked);
        // `dst` is a `&mut` so it does not alias the inputs.
        unsafe {
            gemm::gemm(
                rows,
                cols,
                k,
                (base as *mut f32).add(d_off),
                d_cs as isize,
                d_rs as isize,
                accumulate,
                lhs.data.as_ptr().add(l_off),
                lhs.cs as isize,
                lhs.rs as isize,
                rhs.data.as_ptr().add(r_off),
                rhs.cs as isize,
                rhs.rs as isize,
                1.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::None,
            )
        };
    });
}

/// `dst[c][r] = src[r][c]` for a row-major [rows, cols] `src`, in 32 x 32 tiles (so both sides
/// stay in cache lines), threads taking disjoint bands of `dst` rows.
pub fn transpose(src: &[f32], rows: usize, cols: usize, dst: &mut [f32], threads: usize) {
    assert!(src.len() == rows * cols && dst.len() == rows * cols, "transpose: sizes");
    const TILE: usize = 32;
    crate::runtime::par_chunks_mut(dst, TILE * rows, threads, |offset, band| {
        let c0 = offset / rows.max(1);
        let band_cols = band.len() / rows.max(1);
        for r0 in (0..rows).step_by(TILE) {
            for cb in (0..band_cols).step_by(TILE) {
                for c in cb..(cb + TILE).min(band_cols) {
                    for r in r0..(r0 + TILE).min(rows) {
                        band[c * rows + r] = src[r * cols + c0 + c];
                    }
                }
            }
        }
    });
}

/// The machine's GEMM rate in GFLOP/s with `threads` threads, each multiplying its own
/// 256 x 512 by 512 x 512 matrices for about 0.3 s.
pub fn machine_rate(threads: usize) -> f64 {
    let (m, k, n) = (256, 512, 512);
    let flops_per_call = 2.0 * (m * k * n) as f64;
    let per_thread = || {
        let a = vec![0.5f32; m * k];
        let b = vec![0.25f32; k * n];
        let mut c = vec![0.0f32; m * n];
        let start = std::time::Instant::now();
        let mut calls = 0u32;
        while start.elapsed().as_secs_f64() < 0.3 {
            matmul_slices(&mut c, m, n, &a, k, false, &b, false, 1);
            calls += 1;
        }
        f64::from(calls) * flops_per_call / start.elapsed().as_secs_f64() / 1e9
    };
    let rates: Vec<std::sync::Mutex<f64>> = (0..threads.max(1)).map(|_| std::sync::Mutex::new(0.0)).collect();
    super::pool::run(rates.len(), &|i| {
        let r = per_thread();
        if let Ok(mut slot) = rates[i].lock() {
            *slot = r;
        }
    });
    rates.iter().map(|r| r.lock().map(|v| *v).unwrap_or(0.0)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transposes_any_shape_on_any_thread_count() {
        for (rows, cols, threads) in [(1, 1, 1), (3, 70, 2), (65, 33, 3), (40, 1, 2)] {
            let src: Vec<f32> = (0..rows * cols).map(|i| i as f32).collect();
            let mut dst = vec![0.0; rows * cols];
            transpose(&src, rows, cols, &mut dst, threads);
            for r in 0..rows {
                for c in 0..cols {
                    assert_eq!(dst[c * rows + r], src[r * cols + c]);
                }
            }
        }
    }

    #[test]
    fn strided_products_match_loops_for_every_layout_and_split() {
        let (m, k, n) = (7, 5, 9);
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
        let want: Vec<f32> = (0..m * n).map(|i| (0..k).map(|j| a[(i / n) * k + j] * b[j * n + i % n]).sum()).collect();
        let at: Vec<f32> = (0..k * m).map(|i| a[(i % m) * k + i / m]).collect();
        let bt: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
        for (ta, tb, td, threads) in (0..16).map(|i| (i & 1 != 0, i & 2 != 0, i & 4 != 0, 1 + (i >> 3) * 2)) {
            let lhs = if ta { Strided::transposed(&at, m, k) } else { Strided::rows(&a, m, k) };
            let rhs = if tb { Strided::transposed(&bt, k, n) } else { Strided::rows(&b, k, n) };
            let mut c = vec![1.0f32; m * n];
            let (rs, cs) = if td { (1, m) } else { (n, 1) };
            gemm_strided(&mut c, rs, cs, lhs, rhs, true, threads);
            for r in 0..m {
                for col in 0..n {
                    let (x, w) = (c[r * rs + col * cs], want[r * n + col] + 1.0);
                    assert!((x - w).abs() < 1e-4, "{ta} {tb} {td} {threads}: ({r}, {col}) {x} vs {w}");
                }
            }
        }
    }

    #[test]
    fn products_and_transposes_match_loops() {
        let (m, k, n) = (3, 4, 5);
        let a: Vec<f32> = (0..m * k).map(|i| i as f32 * 0.5 - 2.0).collect();
        let at: Vec<f32> = (0..k * m).map(|i| a[(i % m) * k + i / m]).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32).sin()).collect();
        let want: Vec<f32> = (0..m * n).map(|i| (0..k).map(|j| a[(i / n) * k + j] * b[j * n + i % n]).sum()).collect();
        for transpose in [false, true] {
            let mut c = vec![1.0f32; m * n];
            let lhs = if transpose {
                Mat { ptr: at.as_ptr(), rows: k, cols: m, stride: m, len: at.len() }
            } else {
                Mat { ptr: a.as_ptr(), rows: m, cols: k, stride: k, len: a.len() }
            };
            let dst = MatMut { ptr: c.as_mut_ptr(), rows: m, cols: n, stride: n, len: m * n };
            let rhs = Mat { ptr: b.as_ptr(), rows: k, cols: n, stride: n, len: b.len() };
            // SAFETY: views of live vectors of the stated lengths.
            unsafe { matmul(dst, lhs, transpose, rhs, true, 1.0) };
            for (x, w) in c.iter().zip(&want) {
                assert!((x - (w + 1.0)).abs() < 1e-4, "{x} vs {}", w + 1.0);
            }
        }
    }
}
