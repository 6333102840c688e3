//! Executing the schedule: slot views, kernel and GEMM calls, phases, threads, gradients.

use super::gemm::{Mat, MatMut, matmul};
use super::{Buffers, Engine, MAX_KERNEL_ARGS, Sizes};
use crate::check::{Dim, ParamKind};
use crate::ir::CellSig;
use crate::schedule::{Blocks, Buffer, BufferRole, GradPlan, Slot, Stage, WeightStack};

pub fn buffer_len(b: &Buffer, s: Sizes) -> usize {
    let rows = match b.blocks {
        Blocks::Steps => s.steps * s.batch,
        Blocks::StatesPlusOne => (s.steps + 1) * s.batch,
        Blocks::Broadcast => 1,
    };
    b.width.at(s.hidden, s.input) * rows
}

pub fn stack_len(sig: &CellSig, st: &WeightStack, s: Sizes) -> usize {
    st.params.iter().map(|&p| sig.params[p].len(s.hidden, s.input)).sum()
}

/// The rows a call covers.
#[derive(Clone, Copy, Debug)]
enum Rows {
    /// The single row of setup values.
    Once,
    /// `count` examples from `from` at step `t`.
    Step { t: usize, from: usize, count: usize },
    /// `count` rows of all T*B rows, from `from`.
    All { from: usize, count: usize },
}

impl Rows {
    fn count(self) -> usize {
        match self {
            Rows::Once => 1,
            Rows::Step { count, .. } | Rows::All { count, .. } => count,
        }
    }
}

/// Raw views of every buffer and weight stack for one run, shared by the run's threads. Threads
/// write disjoint rows (per-step phases split the batch, all-steps phases split the rows), so no
/// two threads ever touch the same element. Addresses are kept as `usize` in tables owned by the
/// `Buffers`, so making a context allocates nothing.
struct Ctx<'r> {
    e: &'r Engine,
    sizes: Sizes,
    /// (address, length) of each schedule buffer; parameters point at their weights.
    bufs: &'r [(usize, usize)],
    /// (address, length, columns) of each stack: a stacked copy, or the weight itself.
    stacks: &'r [(usize, usize, usize)],
}

fn dim_size(d: Dim, s: Sizes) -> usize {
    if d == Dim::H { s.hidden } else { s.input }
}

/// (rows, cols) of a parameter matrix.
fn matrix_shape(sig: &CellSig, p: usize, s: Sizes) -> (usize, usize) {
    match sig.params[p].kind {
        ParamKind::Matrix { rows, cols } => (dim_size(rows, s), dim_size(cols, s)),
        ParamKind::Vector { .. } => unreachable!("stacks hold matrices"),
    }
}

/// (K, N) of a stack: the operand width it multiplies and the output width.
fn stack_shape(sig: &CellSig, st: &WeightStack, s: Sizes) -> (usize, usize) {
    let (mut k, mut n) = (0, 0);
    for (i, &p) in st.params.iter().enumerate() {
        let (rows, cols) = matrix_shape(sig, p, s);
        let (ki, ni) = if st.transposed { (cols, rows) } else { (rows, cols) };
        if i == 0 {
            k = ki;
        }
        n += ni;
    }
    (k, n)
}

impl<'r> Ctx<'r> {
    fn new(e: &'r Engine, bufs: &'r mut Buffers, weights: &[Vec<f32>]) -> Ctx<'r> {
        let sizes = bufs.sizes;
        for ((b, d), view) in e.schedule.buffers.iter().zip(bufs.data.iter_mut()).zip(bufs.views.iter_mut()) {
            *view = match b.role {
                // Weights are only ever read through these addresses.
                BufferRole::Param(p) => (weights[p].as_ptr() as usize, weights[p].len()),
                _ => (d.as_mut_ptr() as usize, d.len()),
            };
        }
        let sig = &e.forward.sig;
        for ((st, copy), view) in e.schedule.stacks.iter().zip(&bufs.stacks).zip(bufs.stack_views.iter_mut()) {
            let (_, n) = stack_shape(sig, st, sizes);
            *view = if copy.is_empty() {
                let w = &weights[st.params[0]];
                (w.as_ptr() as usize, w.len(), n)
            } else {
                (copy.as_ptr() as usize, copy.len(), n)
            };
        }
        Ctx { e, sizes, bufs: &bufs.views, stacks: &bufs.stack_views }
    }

    /// Pointer and row stride of `slot` at the first row of `rows`, checked to hold `rows` rows
    /// of the slot's width.
    fn view(&self, slot: &Slot, rows: Rows) -> (*mut f32, usize) {
        let s = self.sizes;
        let buf = &self.e.schedule.buffers[slot.buf];
        let (base, len) = self.bufs[slot.buf];
        let base = base as *mut f32;
        let width = buf.width.at(s.hidden, s.input);
        let col = slot.col.at(s.hidden, s.input);
        let cols = dim_size(slot.dim, s);
        if buf.blocks == Blocks::Broadcast {
            assert!(col + cols <= len, "broadcast slot out of bounds");
            // SAFETY: in bounds by the assertion.
            return (unsafe { base.add(col) }, 0);
        }
        let block_row = |block: i64| -> usize {
            let b = block + i64::from(slot.shift);
            assert!(b >= 0, "slot before the first block");
            b as usize * s.batch
        };
        let row0 = match rows {
            Rows::Once => panic!("a setup stage reads a per-row buffer"),
            Rows::Step { t, from, .. } => block_row(t as i64) + from,
            Rows::All { from, .. } => block_row(0) + from,
        };
        let n = rows.count();
        assert!(n == 0 || (row0 + n - 1) * width + col + cols <= len, "slot view out of bounds");
        // SAFETY: in bounds by the assertion.
        (unsafe { base.add(row0 * width + col) }, width)
    }

    fn run(&self, stage: &Stage, rows: Rows) {
        match stage {
            Stage::Kernel { kernel, args } => self.kernel(*kernel, args, rows),
            Stage::Gemm { operand, stack, out, .. } => self.gemm(operand, *stack, out, rows),
        }
    }

    fn kernel(&self, k: usize, args: &[Slot], rows: Rows) {
        let spec = &self.e.schedule.kernels[k];
        let width = dim_size(spec.dim, self.sizes);
        let mut ptrs = [std::ptr::null_mut::<f32>(); MAX_KERNEL_ARGS];
        let mut strides = [0i64; MAX_KERNEL_ARGS];
        for (i, slot) in args.iter().enumerate() {
            let (p, stride) = self.view(slot, rows);
            ptrs[i] = p;
            strides[i] = stride as i64;
        }
        // SAFETY: every pointer covers `rows` rows of `width` floats at its stride (checked in
        // `view`); the kernel reads and writes nothing else and never traps.
        unsafe { (self.e.kernels.fns[k])(ptrs.as_ptr(), strides.as_ptr(), rows.count() as i64, width as i64) };
    }

    fn gemm(&self, operand: &Slot, stack: usize, out: &Slot, rows: Rows) {
        let st = &self.e.schedule.stacks[stack];
        let (k, n) = stack_shape(&self.e.forward.sig, st, self.sizes);
        let m = rows.count();
        let (lp, ls) = self.view(operand, rows);
        let (dp, ds) = self.view(out, rows);
        let lhs_len = if ls == 0 { k } else { (m.max(1) - 1) * ls + k };
        let dst_len = if ds == 0 { n } else { (m.max(1) - 1) * ds + n };
        let (rp, rlen, rcols) = self.stacks[stack];
        let rp = rp as *const f32;
        // SAFETY: the views come from `view` (bounds-checked) and the stack table; the GEMM
        // output buffer is never one of its inputs.
        unsafe {
            matmul(
                MatMut { ptr: dp, rows: m, cols: n, stride: ds.max(n), len: dst_len },
                Mat { ptr: lp, rows: m, cols: k, stride: ls.max(k), len: lhs_len },
                false,
                Mat { ptr: rp, rows: k, cols: rcols, stride: rcols, len: rlen },
                false,
            )
        };
    }
}

/// Copies the weights into the stacked layouts the GEMMs read.
pub fn prepare_stacks(e: &Engine, bufs: &mut Buffers, weights: &[Vec<f32>]) {
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
                // copy[k][offset + r] = W[r][k]
                for r in 0..rows {
                    for c in 0..cols {
                        copy[c * n + offset + r] = w[r * cols + c];
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

/// Runs `f(from, count)` on `threads` contiguous chunks of `0..n`, the first on this thread.
pub fn parallel(threads: usize, n: usize, f: impl Fn(usize, usize) + Sync) {
    let t = threads.clamp(1, n.max(1));
    if t == 1 {
        f(0, n);
        return;
    }
    let chunk = n.div_ceil(t);
    std::thread::scope(|scope| {
        let f = &f;
        for i in 1..t {
            let from = i * chunk;
            let to = ((i + 1) * chunk).min(n);
            if from < to {
                scope.spawn(move || f(from, to - from));
            }
        }
        f(0, chunk.min(n));
    });
}

/// Runs `f(offset, chunk)` on `threads` contiguous chunks of `data` (chunk sizes a multiple of
/// `granule`), the first on this thread.
pub fn par_chunks_mut(data: &mut [f32], granule: usize, threads: usize, f: impl Fn(usize, &mut [f32]) + Sync) {
    let units = data.len() / granule.max(1);
    let per = units.div_ceil(threads.clamp(1, units.max(1))).max(1) * granule.max(1);
    if threads <= 1 || data.len() <= per {
        f(0, data);
        return;
    }
    std::thread::scope(|scope| {
        let f = &f;
        let mut chunks = data.chunks_mut(per).enumerate();
        let first = chunks.next();
        for (i, c) in chunks {
            scope.spawn(move || f(i * per, c));
        }
        if let Some((_, c)) = first {
            f(0, c);
        }
    });
}

pub fn forward(e: &Engine, bufs: &mut Buffers, weights: &[Vec<f32>], threads: usize) {
    let s = bufs.sizes;
    let ctx = Ctx::new(e, bufs, weights);
    let sch = &e.schedule;
    for stage in &sch.setup {
        ctx.run(stage, Rows::Once);
    }
    parallel(threads, s.steps * s.batch, |from, count| {
        for stage in &sch.forward_pre {
            ctx.run(stage, Rows::All { from, count });
        }
    });
    parallel(threads, s.batch, |from, count| {
        for t in 0..s.steps {
            for stage in &sch.forward_step {
                ctx.run(stage, Rows::Step { t, from, count });
            }
        }
    });
}

/// Zeroes every state adjoint and puts dy where the output state's next-step adjoints go.
pub fn seed_adjoints(e: &Engine, bufs: &mut Buffers, dy: &[f32]) {
    let s = bufs.sizes;
    let block = s.batch * s.hidden;
    for (i, &buf) in e.schedule.adjoint_bufs.iter().enumerate() {
        let d = &mut bufs.data[buf];
        d.fill(0.0);
        if i == e.forward.sig.output {
            d[block..block + dy.len()].copy_from_slice(dy);
        }
    }
}

pub fn backward(e: &Engine, bufs: &mut Buffers, weights: &[Vec<f32>], threads: usize) {
    let s = bufs.sizes;
    let ctx = Ctx::new(e, bufs, weights);
    let sch = &e.schedule;
    parallel(threads, s.batch, |from, count| {
        for t in (0..s.steps).rev() {
            for stage in &sch.backward_step {
                ctx.run(stage, Rows::Step { t, from, count });
            }
        }
    });
    parallel(threads, s.steps * s.batch, |from, count| {
        for stage in &sch.backward_post {
            ctx.run(stage, Rows::All { from, count });
        }
    });
}

/// Parameter gradients, summed over every example and step.
pub fn param_grads(e: &Engine, bufs: &mut Buffers, weights: &[Vec<f32>], grads: &mut [Vec<f32>], threads: usize) {
    let s = bufs.sizes;
    let ctx = Ctx::new(e, bufs, weights);
    let all = Rows::All { from: 0, count: s.steps * s.batch };
    let sig = &e.forward.sig;
    for (p, plan) in e.schedule.grads.iter().enumerate() {
        let dst = &mut grads[p];
        match plan {
            GradPlan::Vector(None) => dst.fill(0.0),
            GradPlan::Vector(Some(slot)) => column_sums(&ctx, slot, all, dst),
            GradPlan::Matrix(terms) => {
                let (rows, cols) = matrix_shape(sig, p, s);
                dst.fill(0.0);
                for (g, v) in terms {
                    let (gp, gs) = ctx.view(g, all);
                    let (vp, vs) = ctx.view(v, all);
                    let n = all.count();
                    if vs == 0 {
                        // v is the same in every row: sum of rows of G, times v.
                        let mut sums = vec![0.0; rows];
                        column_sums(&ctx, g, all, &mut sums);
                        // SAFETY: a broadcast view holds `cols` values.
                        let v = unsafe { std::slice::from_raw_parts(vp, cols) };
                        for r in 0..rows {
                            for c in 0..cols {
                                dst[r * cols + c] += sums[r] * v[c];
                            }
                        }
                        continue;
                    }
                    // Threads take disjoint rows of the gradient; pointers cross as addresses.
                    let (out, gp, vp) = (dst.as_mut_ptr() as usize, gp as usize, vp as usize);
                    parallel(threads, rows, |from, count| {
                        let g = (gp as *const f32).wrapping_add(from);
                        let lhs = Mat { ptr: g, rows: n, cols: count, stride: gs, len: (n - 1) * gs + count };
                        let rhs = Mat { ptr: vp as *const f32, rows: n, cols, stride: vs, len: (n - 1) * vs + cols };
                        let d = (out as *mut f32).wrapping_add(from * cols);
                        // SAFETY: views inside the bounds-checked slot views; each thread writes
                        // its own rows of the gradient.
                        unsafe {
                            matmul(
                                MatMut { ptr: d, rows: count, cols, stride: cols, len: count * cols },
                                lhs,
                                true,
                                rhs,
                                true,
                            );
                        }
                    });
                }
            }
        }
    }
}

/// `dst[c] = sum over rows of slot[row][c]`.
fn column_sums(ctx: &Ctx<'_>, slot: &Slot, rows: Rows, dst: &mut [f32]) {
    let (p, stride) = ctx.view(slot, rows);
    let cols = dst.len();
    dst.fill(0.0);
    let n = if stride == 0 { 1 } else { rows.count() };
    for r in 0..n {
        // SAFETY: `view` checked that these rows are in bounds.
        let row = unsafe { std::slice::from_raw_parts(p.add(r * stride), cols) };
        for (d, v) in dst.iter_mut().zip(row) {
            *d += v;
        }
    }
    if stride == 0 {
        let k = rows.count() as f32;
        dst.iter_mut().for_each(|d| *d *= k);
    }
}
