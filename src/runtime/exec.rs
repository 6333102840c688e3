//! Executing the schedule: slot views, kernel and GEMM calls, phases, threads, gradients.

use std::time::Instant;

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
    /// Address of each stack's packed panels (0: not packed).
    packed: &'r [usize],
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
        for (view, p) in bufs.packed_views.iter_mut().zip(&bufs.packed) {
            *view = if p.is_empty() { 0 } else { p.as_ptr() as usize };
        }
        Ctx { e, sizes, bufs: &bufs.views, stacks: &bufs.stack_views, packed: &bufs.packed_views }
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
        let packed = self.packed[stack];
        if packed != 0 && matches!(rows, Rows::Step { .. }) && m <= super::gemm::SMALL_ROWS {
            assert!(ls == 0 || (m.max(1) - 1) * ls + k <= lhs_len && (m.max(1) - 1) * ds + n <= dst_len);
            // SAFETY: packed stacks exist only when the CPU has AVX2 and FMA; views are checked
            // (`view`) and the packed panels were built from this stack at these sizes.
            unsafe {
                super::small_gemm::matmul_small_packed(
                    m,
                    n,
                    k,
                    lp,
                    ls.max(k),
                    packed as *const f32,
                    rp,
                    rcols,
                    dp,
                    ds.max(n),
                    false,
                    1.0,
                )
            };
            return;
        }
        // SAFETY: the views come from `view` (bounds-checked) and the stack table; the GEMM
        // output buffer is never one of its inputs.
        unsafe {
            matmul(
                MatMut { ptr: dp, rows: m, cols: n, stride: ds.max(n), len: dst_len },
                Mat { ptr: lp, rows: m, cols: k, stride: ls.max(k), len: lhs_len },
                false,
                Mat { ptr: rp, rows: k, cols: rcols, stride: rcols, len: rlen },
                false,
                1.0,
            )
        };
    }
}

/// Empty packed-panel buffers for the stacks per-step GEMMs read (when the CPU can use them).
pub fn packed_stacks(e: &Engine, s: Sizes) -> Vec<Vec<f32>> {
    let sch = &e.schedule;
    let mut per_step = vec![false; sch.stacks.len()];
    for stage in sch.forward_step.iter().chain(&sch.backward_step) {
        if let Stage::Gemm { stack, .. } = stage {
            per_step[*stack] = true;
        }
    }
    sch.stacks
        .iter()
        .zip(per_step)
        .map(|(st, used)| {
            if !used || !super::gemm::small_gemm_ok() {
                return vec![];
            }
            let (k, n) = stack_shape(&e.forward.sig, st, s);
            vec![0.0; (n / 16) * k * 16]
        })
        .collect()
}

/// Copies the weights into the stacked layouts the GEMMs read.
pub fn prepare_stacks(e: &Engine, bufs: &mut Buffers, weights: &[Vec<f32>]) {
    let sig = &e.forward.sig;
    let s = bufs.sizes;
    fill_stacks(e, bufs, weights);
    for ((st, packed), copy) in e.schedule.stacks.iter().zip(bufs.packed.iter_mut()).zip(&bufs.stacks) {
        if packed.is_empty() {
            continue;
        }
        let (k, n) = stack_shape(sig, st, s);
        let b: &[f32] = if copy.is_empty() { &weights[st.params[0]] } else { copy };
        super::small_gemm::pack(b, k, n, n, packed);
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
    super::pool::run(t, &|i| {
        let from = i * chunk;
        let to = ((i + 1) * chunk).min(n);
        if from < to {
            f(from, to - from);
        }
    });
}

/// Runs `f(offset, chunk)` on `threads` contiguous chunks of `data` (chunk sizes a multiple of
/// `granule`), the first on this thread.
pub fn par_chunks_mut(data: &mut [f32], granule: usize, threads: usize, f: impl Fn(usize, &mut [f32]) + Sync) {
    let granule = granule.max(1);
    let units = data.len() / granule;
    let per = units.div_ceil(threads.clamp(1, units.max(1))).max(1) * granule;
    if threads <= 1 || data.len() <= per {
        f(0, data);
        return;
    }
    let len = data.len();
    let base = data.as_mut_ptr() as usize;
    super::pool::run(len.div_ceil(per), &|i| {
        let from = i * per;
        let to = ((i + 1) * per).min(len);
        // SAFETY: the chunks [from, to) are disjoint parts of `data`, which outlives the region.
        let chunk = unsafe { std::slice::from_raw_parts_mut((base as *mut f32).add(from), to - from) };
        f(from, chunk);
    });
}

pub fn forward(e: &Engine, bufs: &mut Buffers, weights: &[Vec<f32>], threads: usize) {
    let s = bufs.sizes;
    let mut times = bufs.times;
    let ctx = Ctx::new(e, bufs, weights);
    let sch = &e.schedule;
    let t0 = Instant::now();
    for stage in &sch.setup {
        ctx.run(stage, Rows::Once);
    }
    parallel(threads, s.steps * s.batch, |from, count| {
        for stage in &sch.forward_pre {
            ctx.run(stage, Rows::All { from, count });
        }
    });
    let t1 = Instant::now();
    parallel(threads, s.batch, |from, count| {
        for t in 0..s.steps {
            for stage in &sch.forward_step {
                ctx.run(stage, Rows::Step { t, from, count });
            }
        }
    });
    times.forward_pre += t1 - t0;
    times.forward_step += t1.elapsed();
    bufs.times = times;
}

/// The temporaries the all-steps forward phase writes, or `None` if it writes anything else
/// (a state that depends on x alone): the buffers an embedded run computes per vocabulary entry.
pub fn pre_outputs(e: &Engine) -> Option<Vec<usize>> {
    let sch = &e.schedule;
    let mut out = vec![];
    for stage in &sch.forward_pre {
        let written: Vec<usize> = match stage {
            Stage::Gemm { out, .. } => vec![out.buf],
            Stage::Kernel { kernel, args } => args[sch.kernels[*kernel].inputs.len()..].iter().map(|s| s.buf).collect(),
        };
        for b in written {
            if sch.buffers[b].role != BufferRole::Temp {
                return None;
            }
            if !out.contains(&b) {
                out.push(b);
            }
        }
    }
    Some(out)
}

/// Scratch for per-vocabulary sums: one [V, widest] buffer per thread.
pub fn prepare_scatter(e: &Engine, bufs: &mut Buffers, vocab: usize, threads: usize) {
    let s = bufs.sizes;
    let sig = &e.forward.sig;
    let widest = (0..sig.params.len())
        .filter(|&p| sig.params[p].kind.is_matrix())
        .map(|p| matrix_shape(sig, p, s).0)
        .max()
        .unwrap_or(0)
        .max(s.hidden)
        .max(s.input);
    let want = vocab * widest;
    if bufs.scatter.len() != threads.max(1) || bufs.scatter.first().is_some_and(|b| b.len() < want) {
        bufs.scatter = (0..threads.max(1)).map(|_| vec![0.0; want]).collect();
    }
}

pub fn forward_embedded(
    e: &Engine,
    bufs: &mut Buffers,
    weights: &[Vec<f32>],
    table: &[f32],
    tokens: &[u32],
    threads: usize,
) {
    let s = bufs.sizes;
    let sch = &e.schedule;
    let outputs = pre_outputs(e).expect("forward_embedded: check supports_embedding first");
    let d = bufs.data[sch.input_buf].len() / (s.steps * s.batch).max(1);
    let vocab = table.len() / d.max(1);
    assert_eq!(tokens.len(), s.steps * s.batch, "one token per row");
    // x itself is still needed by the backward pass: gather it.
    let x = &mut bufs.data[sch.input_buf];
    for (r, &tok) in tokens.iter().enumerate() {
        let t = tok as usize;
        x[r * d..(r + 1) * d].copy_from_slice(&table[t * d..(t + 1) * d]);
    }
    for &b in outputs.iter().chain([&sch.input_buf]) {
        let width = sch.buffers[b].width.at(s.hidden, s.input);
        if bufs.vocab[b].len() != vocab * width {
            bufs.vocab[b] = vec![0.0; vocab * width];
        }
    }
    bufs.vocab[sch.input_buf].copy_from_slice(table);
    let mut times = bufs.times;
    let t0 = Instant::now();
    {
        // The vocabulary pass: the pre phase's buffers swapped for their per-entry versions.
        let ctx = Ctx::new(e, bufs, weights);
        for stage in &sch.setup {
            ctx.run(stage, Rows::Once);
        }
    }
    let swapped: Vec<usize> = outputs.iter().copied().chain([sch.input_buf]).collect();
    for &b in &swapped {
        std::mem::swap(&mut bufs.data[b], &mut bufs.vocab[b]);
    }
    {
        let ctx = Ctx::new(e, bufs, weights);
        parallel(threads, vocab, |from, count| {
            for stage in &sch.forward_pre {
                ctx.run(stage, Rows::All { from, count });
            }
        });
    }
    for &b in &swapped {
        std::mem::swap(&mut bufs.data[b], &mut bufs.vocab[b]);
    }
    // Gather each token's row of every value the step phase reads.
    for &b in &outputs {
        let width = sch.buffers[b].width.at(s.hidden, s.input);
        let (dst, src) = (&mut bufs.data[b], &bufs.vocab[b]);
        for (r, &tok) in tokens.iter().enumerate() {
            let t = tok as usize;
            dst[r * width..(r + 1) * width].copy_from_slice(&src[t * width..(t + 1) * width]);
        }
    }
    let t1 = Instant::now();
    let ctx = Ctx::new(e, bufs, weights);
    parallel(threads, s.batch, |from, count| {
        for t in 0..s.steps {
            for stage in &sch.forward_step {
                ctx.run(stage, Rows::Step { t, from, count });
            }
        }
    });
    times.forward_pre += t1 - t0;
    times.forward_step += t1.elapsed();
    bufs.times = times;
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
    let mut times = bufs.times;
    let ctx = Ctx::new(e, bufs, weights);
    let sch = &e.schedule;
    let t0 = Instant::now();
    parallel(threads, s.batch, |from, count| {
        for t in (0..s.steps).rev() {
            for stage in &sch.backward_step {
                ctx.run(stage, Rows::Step { t, from, count });
            }
        }
    });
    let t1 = Instant::now();
    parallel(threads, s.steps * s.batch, |from, count| {
        for stage in &sch.backward_post {
            ctx.run(stage, Rows::All { from, count });
        }
    });
    times.backward_step += t1 - t0;
    times.backward_post += t1.elapsed();
    bufs.times = times;
}

/// A (row-major) matrix view of a slot over all T*B rows (`stride` 0 for a broadcast row).
fn all_rows(ctx: &Ctx<'_>, slot: &Slot) -> (*const f32, usize, usize) {
    let s = ctx.sizes;
    let n = s.steps * s.batch;
    let (p, stride) = ctx.view(slot, Rows::All { from: 0, count: n });
    (p, stride, n)
}

/// How an embedded run replaces the input x: rows of `table` ([V, D]) picked by `tokens`, and
/// the scratch where per-token values are summed per vocabulary entry.
pub struct Embedded<'a> {
    pub table: &'a [f32],
    pub tokens: &'a [u32],
    pub vocab: usize,
}

/// `out[v] += sign * sum of rows r of the slot with tokens[r] = v`, for each vocabulary entry v
/// (`out` is [V, cols]). Threads take disjoint columns.
fn scatter_rows(ctx: &Ctx<'_>, slot: &Slot, tokens: &[u32], out: &mut [f32], cols: usize, sign: f32, threads: usize) {
    let (p, stride, n) = all_rows(ctx, slot);
    let (p, base) = (p as usize, out.as_mut_ptr() as usize);
    let len = out.len();
    parallel(threads, cols, |from, count| {
        for (r, &tok) in tokens.iter().enumerate().take(n) {
            // SAFETY: row r of the slot holds `cols` values (checked by `view`); each thread
            // writes only its columns of `out`, whose rows are in bounds by the assertion.
            let row = unsafe { std::slice::from_raw_parts((p as *const f32).add(r * stride + from), count) };
            let at = tok as usize * cols + from;
            assert!(at + count <= len, "token out of range");
            let dst = unsafe { std::slice::from_raw_parts_mut((base as *mut f32).add(at), count) };
            for (d, v) in dst.iter_mut().zip(row) {
                *d += sign * v;
            }
        }
    });
}

/// Parameter gradients, summed over every example and step. Each parameter is one task; threads
/// take every `threads`-th parameter. With `embedded`, a weight that multiplies x gets its
/// gradient from the table: G[rows]ᵀ X = (Sᵀ G)ᵀ E, where S picks table rows by token.
pub fn param_grads(
    e: &Engine,
    bufs: &mut Buffers,
    weights: &[Vec<f32>],
    grads: &mut [Vec<f32>],
    threads: usize,
    embedded: Option<&Embedded<'_>>,
) {
    let s = bufs.sizes;
    let input_buf = e.schedule.input_buf;
    let scatter = std::mem::take(&mut bufs.scatter);
    let ctx = Ctx::new(e, bufs, weights);
    let sig = &e.forward.sig;
    let n_params = grads.len();
    let dsts: Vec<(usize, usize)> = grads.iter_mut().map(|g| (g.as_mut_ptr() as usize, g.len())).collect();
    let scatters: Vec<std::sync::Mutex<Vec<f32>>> = scatter.into_iter().map(std::sync::Mutex::new).collect();
    let tasks = threads.clamp(1, n_params.max(1));
    let plan = balance(e, s, tasks, embedded.map(|emb| emb.vocab));
    super::pool::run(tasks, &|i| {
        for &p in &plan[i] {
            // SAFETY: each parameter's gradient is written by exactly one task.
            let dst = unsafe { std::slice::from_raw_parts_mut(dsts[p].0 as *mut f32, dsts[p].1) };
            match &e.schedule.grads[p] {
                GradPlan::Vector(None) => dst.fill(0.0),
                GradPlan::Vector(Some(slot)) => {
                    column_sums(&ctx, slot, Rows::All { from: 0, count: s.steps * s.batch }, dst)
                }
                GradPlan::Matrix(terms) => {
                    let (rows, cols) = matrix_shape(sig, p, s);
                    dst.fill(0.0);
                    for (g, v) in terms {
                        match embedded {
                            Some(emb) if v.buf == input_buf => {
                                let mut sc =
                                    scatters[i % scatters.len().max(1)].lock().unwrap_or_else(|x| x.into_inner());
                                let gv = &mut sc[..emb.vocab * rows];
                                gv.fill(0.0);
                                scatter_rows(&ctx, g, emb.tokens, gv, rows, 1.0, 1);
                                // dW += gvᵀ × table: [rows, V] × [V, cols].
                                let lhs =
                                    Mat { ptr: gv.as_ptr(), rows: emb.vocab, cols: rows, stride: rows, len: gv.len() };
                                let rhs = Mat {
                                    ptr: emb.table.as_ptr(),
                                    rows: emb.vocab,
                                    cols,
                                    stride: cols,
                                    len: emb.table.len(),
                                };
                                let out = MatMut { ptr: dst.as_mut_ptr(), rows, cols, stride: cols, len: dst.len() };
                                // SAFETY: views of live slices of the stated lengths.
                                unsafe { matmul(out, lhs, true, rhs, true, 1.0) };
                            }
                            _ => outer_sum(&ctx, g, v, dst, rows, cols),
                        }
                    }
                }
            }
        }
    });
    drop(ctx);
    bufs.scatter = scatters.into_iter().map(|m| m.into_inner().unwrap_or_else(|x| x.into_inner())).collect();
}

/// Parameters split into `tasks` lists of about equal work (largest first, each to the least
/// loaded list; ties by index, so the split is the same on every run). A term whose V is x costs
/// V rows instead of T*B in an embedded run.
fn balance(e: &Engine, s: Sizes, tasks: usize, vocab: Option<usize>) -> Vec<Vec<usize>> {
    let sig = &e.forward.sig;
    let rows = s.steps * s.batch;
    let mut cost: Vec<(usize, usize)> = e
        .schedule
        .grads
        .iter()
        .enumerate()
        .map(|(p, g)| {
            let n = sig.params[p].len(s.hidden, s.input);
            let c = match g {
                GradPlan::Matrix(terms) => terms
                    .iter()
                    .map(|(_, v)| match vocab {
                        Some(vocab) if v.buf == e.schedule.input_buf => 2 * n * vocab + rows * n / s.hidden.max(1),
                        _ => 2 * n * rows,
                    })
                    .sum(),
                GradPlan::Vector(_) => n * rows,
            };
            (c, p)
        })
        .collect();
    cost.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut lists = vec![vec![]; tasks];
    let mut load = vec![0usize; tasks];
    for (c, p) in cost {
        let k = (0..tasks).min_by_key(|&k| (load[k], k)).unwrap_or(0);
        lists[k].push(p);
        load[k] += c;
    }
    lists
}

/// `dst += G[all rows]ᵀ × V[all rows]`, or (V one broadcast row) column sums of G times v.
fn outer_sum(ctx: &Ctx<'_>, g: &Slot, v: &Slot, dst: &mut [f32], rows: usize, cols: usize) {
    let (gp, gs, n) = all_rows(ctx, g);
    let (vp, vs, _) = all_rows(ctx, v);
    if vs == 0 {
        // SAFETY: a broadcast view holds `cols` values.
        let v = unsafe { std::slice::from_raw_parts(vp, cols) };
        for r in 0..n {
            // SAFETY: row r of G holds `rows` values (checked by `view`).
            let grow = unsafe { std::slice::from_raw_parts(gp.add(r * gs), rows) };
            for (i, gi) in grow.iter().enumerate() {
                for (d, vc) in dst[i * cols..(i + 1) * cols].iter_mut().zip(v) {
                    *d += gi * vc;
                }
            }
        }
        return;
    }
    let lhs = Mat { ptr: gp, rows: n, cols: rows, stride: gs, len: (n - 1) * gs + rows };
    let rhs = Mat { ptr: vp, rows: n, cols, stride: vs, len: (n - 1) * vs + cols };
    let out = MatMut { ptr: dst.as_mut_ptr(), rows, cols, stride: cols, len: dst.len() };
    // SAFETY: views inside the bounds-checked slot views; `dst` is this task's own gradient.
    unsafe { matmul(out, lhs, true, rhs, true, 1.0) };
}

/// The input gradient over all rows, `sum of ± G W` plus the other terms; rows split over threads.
pub fn input_grad(e: &Engine, bufs: &mut Buffers, weights: &[Vec<f32>], threads: usize) {
    let s = bufs.sizes;
    let d = dim_size(if e.forward.sig.d_equals_h { Dim::H } else { Dim::D }, s);
    let dx_buf = e.schedule.input_grad_buf;
    let ctx = Ctx::new(e, bufs, weights);
    let (dx, _) = ctx.bufs[dx_buf];
    let plan = &e.schedule.input_grad;
    let sig = &e.forward.sig;
    parallel(threads, s.steps * s.batch, |from, count| {
        // SAFETY: rows [from, from + count) of dx belong to this thread.
        let out = unsafe { std::slice::from_raw_parts_mut((dx as *mut f32).add(from * d), count * d) };
        out.fill(0.0);
        let rows = Rows::All { from, count };
        for (slot, sign) in &plan.rest {
            let (p, stride) = ctx.view(slot, rows);
            for r in 0..count {
                // SAFETY: row r of the slot holds d values (checked by `view`).
                let row = unsafe { std::slice::from_raw_parts(p.add(r * stride), d) };
                for (o, v) in out[r * d..(r + 1) * d].iter_mut().zip(row) {
                    *o += sign * v;
                }
            }
        }
        for (param, slot, sign) in &plan.matvecs {
            let (n, k) = matrix_shape(sig, *param, s);
            let (gp, gs) = ctx.view(slot, rows);
            let lhs = Mat { ptr: gp, rows: count, cols: n, stride: gs, len: (count.max(1) - 1) * gs + n };
            let w = &weights[*param];
            let rhs = Mat { ptr: w.as_ptr(), rows: n, cols: k, stride: k, len: w.len() };
            let dst = MatMut { ptr: out.as_mut_ptr(), rows: count, cols: d, stride: d, len: out.len() };
            // SAFETY: views of bounds-checked slots, the weights and this thread's rows of dx.
            unsafe { matmul(dst, lhs, false, rhs, true, *sign) };
        }
    });
}

/// The gradient of an embedding table directly: for each vocabulary entry, the sum of the input
/// gradients of the rows with that token, formed as `sum of ± (Sᵀ G) W` plus scattered rest
/// terms, so the GEMMs have V rows instead of T*B.
pub fn table_grad(
    e: &Engine,
    bufs: &mut Buffers,
    weights: &[Vec<f32>],
    emb: &Embedded<'_>,
    dtable: &mut [f32],
    threads: usize,
) {
    let s = bufs.sizes;
    let d = dim_size(if e.forward.sig.d_equals_h { Dim::H } else { Dim::D }, s);
    let mut scatter = std::mem::take(&mut bufs.scatter);
    let ctx = Ctx::new(e, bufs, weights);
    let plan = &e.schedule.input_grad;
    dtable.fill(0.0);
    for (slot, sign) in &plan.rest {
        scatter_rows(&ctx, slot, emb.tokens, dtable, d, *sign, threads);
    }
    for (param, slot, sign) in &plan.matvecs {
        let (n, _) = matrix_shape(&e.forward.sig, *param, s);
        let gv = &mut scatter[0][..emb.vocab * n];
        gv.fill(0.0);
        scatter_rows(&ctx, slot, emb.tokens, gv, n, 1.0, threads);
        let w = &weights[*param];
        crate::runtime::gemm::matmul_scaled(dtable, emb.vocab, d, gv, n, w, *sign, threads);
    }
    drop(ctx);
    bufs.scatter = scatter;
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
