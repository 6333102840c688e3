//! Weight stacks: the matrices that share an operand, copied side by side (and packed into panels) for the GEMMs.

use super::ctx::{matrix_shape, stack_shape};
use super::{Buffers, Engine, Sizes};
/// Packed-panel buffers for every stack, when the CPU can use them.
pub fn packed_stacks(e: &Engine, s: Sizes) -> Vec<Vec<f32>> {
    e.schedule
        .stacks
        .iter()
        .map(|st| {
            if !super::gemm::small_gemm_ok() {
                return vec![];
            }
            let (k, n) = stack_shape(&e.forward.sig, st, s);
            vec![0.0; super::small_gemm::packed_len(k, n)]
        })
        .collect()
}

/// Copies the weights into the stacked layouts the GEMMs read.
pub fn prepare_stacks(e: &Engine, bufs: &mut Buffers, weights: &[Vec<f32>]) {
    let sig = &e.forward.sig;
    let s = bufs.sizes;
    fill_stacks(e, bufs, weights);
    for (st, packed) in e.schedule.stacks.iter().zip(bufs.packed.iter_mut()) {
        if packed.is_empty() {
            continue;
        }
        let (k, _) = stack_shape(sig, st, s);
        let mut col = 0;
        for &p in &st.params {
            let (rows, cols) = matrix_shape(sig, p, s);
            if st.transposed {
                super::small_gemm::pack_transposed(&weights[p], rows, cols, col, packed);
                col += rows;
            } else {
                super::small_gemm::pack_plain(&weights[p], rows, cols, k, col, packed);
                col += cols;
            }
        }
    }
}

fn fill_stacks(e: &Engine, bufs: &mut Buffers, weights: &[Vec<f32>]) {
    let sig = &e.forward.sig;
    let s = bufs.sizes;
    for (st, copy) in e.schedule.stacks.iter().zip(bufs.stacks.iter_mut()) {
        if copy.is_empty() {
            continue;
        }
        let (_, n) = stack_shape(sig, st, s);
        let mut offset = 0;
        for &p in &st.params {
            let (rows, cols) = matrix_shape(sig, p, s);
            let w = &weights[p];
            if st.transposed {
                // copy[c][offset + r] = W[r][c], 8 columns at a time: the 8 output rows being
                // written are a power of two apart and share a cache set, so more than the
                // cache's 8 ways would evict each other on every store.
                for c0 in (0..cols).step_by(8) {
                    let c1 = (c0 + 8).min(cols);
                    for r in 0..rows {
                        let src = &w[r * cols + c0..r * cols + c1];
                        for (j, v) in src.iter().enumerate() {
                            copy[(c0 + j) * n + offset + r] = *v;
                        }
                    }
                }
                offset += rows;
            } else {
                // copy[r][offset + c] = W[r][c]
                for r in 0..rows {
                    copy[r * n + offset..r * n + offset + cols].copy_from_slice(&w[r * cols..(r + 1) * cols]);
                }
                offset += cols;
            }
        }
    }
}
