//! Matrix products through the `gemm` crate (AVX-512 kernels with its `x86-v4` feature), with
//! every shape and stride checked against the slices before the unsafe call.

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

/// `dst = lhs × rhs` (or `dst += lhs × rhs` when `accumulate`). With `transpose_lhs`, `lhs` is
/// given as its transpose: a [k, m] view whose transpose is multiplied.
pub fn matmul(dst: MatMut, lhs: Mat, transpose_lhs: bool, rhs: Mat, accumulate: bool) {
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
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
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
            matmul(dst, lhs, transpose, Mat { ptr: b.as_ptr(), rows: k, cols: n, stride: n, len: b.len() }, true);
            for (x, w) in c.iter().zip(&want) {
                assert!((x - (w + 1.0)).abs() < 1e-4, "{x} vs {}", w + 1.0);
            }
        }
    }
}
