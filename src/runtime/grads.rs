//! Gradients after the time loop: weights as large GEMMs over all steps, the input and the embedding table.

use super::ctx::{Ctx, Rows, all_rows, dim_size, matrix_shape};
use super::gemm::{Mat, MatMut, matmul};
use super::pool::parallel;
use super::{Buffers, Engine, Sizes};
use crate::check::Dim;
use crate::schedule::{GradPlan, Slot};

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
    let n_params = grads.len();
    // The tables live in `bufs` (so nothing is allocated here) but are taken out for the run:
    // the context borrows `bufs` as a whole.
    let mut dsts = std::mem::take(&mut bufs.grad_dsts);
    for (d, g) in dsts.iter_mut().zip(grads.iter_mut()) {
        *d = (g.as_mut_ptr() as usize, g.len());
    }
    let scatters = std::mem::take(&mut bufs.scatter_views);
    let tasks = threads.clamp(1, n_params.max(1));
    let key = (tasks, embedded.map(|emb| emb.vocab));
    let plan = match bufs.grad_plan.take() {
        Some((k, plan)) if k == key => plan,
        _ => balance(e, s, tasks, key.1),
    };
    let ctx = Ctx::new(e, bufs, weights);
    let sig = &e.forward.sig;
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
                                // Task i alone uses scatter buffer i (there is one per thread,
                                // and at most one task per thread).
                                let (addr, len) = scatters[i];
                                assert!(emb.vocab * rows <= len, "prepare_scatter first");
                                // SAFETY: in bounds by the assertion; task i is its only user.
                                let gv = unsafe { std::slice::from_raw_parts_mut(addr as *mut f32, emb.vocab * rows) };
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
    bufs.grad_dsts = dsts;
    bufs.scatter_views = scatters;
    bufs.grad_plan = Some((key, plan));
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
    bufs.scatter = scatter;
}

/// `dst[c] = sum over rows of slot[row][c]` (for a per-part slot: over its parts' sums, in
/// part order).
fn column_sums(ctx: &Ctx<'_>, slot: &Slot, rows: Rows, dst: &mut [f32]) {
    if ctx.e.schedule.buffers[slot.buf].blocks == crate::schedule::Blocks::Parts {
        dst.fill(0.0);
        for part in 0..crate::schedule::MAX_PARTS {
            let (p, _) = ctx.view(slot, Rows::Part { part, from: 0, count: 1 });
            // SAFETY: `view` checked that the part's row is in bounds.
            let row = unsafe { std::slice::from_raw_parts(p, dst.len()) };
            dst.iter_mut().zip(row).for_each(|(d, v)| *d += v);
        }
        return;
    }
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
