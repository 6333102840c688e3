//! Matrix products through the `gemm` crate (AVX-512 kernels with its `x86-v4` feature), with
//! every shape and stride checked against the slices before the unsafe call.

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
