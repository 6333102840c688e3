//! The output layer's softmax rows, one entry point for the trainer: 8-wide AVX2 rows
//! (`softmax_avx2`) where the CPU has AVX2 and FMA, otherwise the portable Cranelift kernel that
//! `codegen::softmax` compiles. Both leave `scale * softmax(row + bias)` in place, add the rows
//! into column sums, and return each row's log-sum-exp as (max, sum of exp).

use crate::codegen::softmax::SoftmaxKernel;

/// The softmax, ready to run.
pub struct Softmax {
    kernel: SoftmaxKernel,
    /// Whether `run` uses the AVX2 rows instead of the JIT kernel.
    pub avx2: bool,
}

impl Softmax {
    pub fn compile() -> Result<Softmax, String> {
        Ok(Softmax { kernel: SoftmaxKernel::compile()?, avx2: super::small_gemm::available() })
    }

    /// Applies the softmax to `rows` consecutive rows of `width` values, `stride` apart, adding
    /// the results into `colsums` ([width]); `maxes[r]` and `sums[r]` give row r's log-sum-exp.
    #[allow(clippy::too_many_arguments)]
    pub fn run(
        &self,
        data: &mut [f32],
        bias: &[f32],
        rows: usize,
        width: usize,
        stride: usize,
        scale: f32,
        maxes: &mut [f32],
        sums: &mut [f32],
        colsums: &mut [f32],
    ) {
        #[cfg(target_arch = "x86_64")]
        if self.avx2 {
            assert!(maxes.len() >= rows && sums.len() >= rows, "softmax: short buffers");
            assert!(rows == 0 || (rows - 1) * stride + width <= data.len(), "softmax: rows out of bounds");
            for r in 0..rows {
                let row = &mut data[r * stride..r * stride + width];
                // SAFETY: `avx2` is set only when the CPU has AVX2 and FMA.
                (maxes[r], sums[r]) = unsafe { super::softmax_avx2::softmax_row(row, bias, scale, colsums) };
            }
            return;
        }
        self.kernel.run(data, bias, rows, width, stride, scale, maxes, sums, colsums);
    }
}
