//! One run's view of the buffers: slot addresses, bounds checks, and the kernel and GEMM calls of a stage.

use super::gemm::{Mat, MatMut, matmul};
use super::{Buffers, Engine, MAX_KERNEL_ARGS, Sizes};
use crate::check::{Dim, ParamKind, Shape};
use crate::ir::{CellSig, Graph};
use crate::schedule::{Blocks, Buffer, BufferRole, Schedule, Slot, Stage, WeightStack};

pub fn buffer_len(b: &Buffer, s: Sizes) -> usize {
    let rows = match b.blocks {
        Blocks::Steps => s.steps * s.batch,
        Blocks::StatesPlusOne => (s.steps + 1) * s.batch,
        Blocks::Broadcast => 1,
        Blocks::Parts => crate::schedule::MAX_PARTS,
    };
    b.width.at(s.hidden, s.input) * rows
}

pub fn stack_len(sig: &CellSig, st: &WeightStack, s: Sizes) -> usize {
    st.params.iter().map(|&p| sig.params[p].len(s.hidden, s.input)).sum()
}

/// The rows a call covers.
#[derive(Clone, Copy, Debug)]
pub(super) enum Rows {
    /// The single row of setup values.
    Once,
    /// `count` examples from `from` at step `t`.
    Step { t: usize, from: usize, count: usize },
    /// `count` rows of all T*B rows, from `from`.
    All { from: usize, count: usize },
    /// The same, run as part `part` of a parallel split: a `Blocks::Parts` slot is that part's
    /// row, which every row adds to.
    Part { part: usize, from: usize, count: usize },
}

impl Rows {
    pub(super) fn count(self) -> usize {
        match self {
            Rows::Once => 1,
            Rows::Step { count, .. } | Rows::All { count, .. } | Rows::Part { count, .. } => count,
        }
    }
}

/// Raw views of every buffer and weight stack for one run, shared by the run's threads. Threads
/// write disjoint rows (per-step phases split the batch, all-steps phases split the rows), so no
/// two threads ever touch the same element. Addresses are kept as `usize` in tables owned by the
/// `Buffers`, so making a context allocates nothing.
pub(super) struct Ctx<'r> {
    pub(super) e: &'r Engine,
    pub(super) sizes: Sizes,
    /// (address, length) of each schedule buffer; parameters point at their weights.
    pub(super) bufs: &'r [(usize, usize)],
    /// (address, length, columns) of each stack: a stacked copy, or the weight itself.
    stacks: &'r [(usize, usize, usize)],
    /// Address of each stack's packed panels (0: not packed).
    pub(super) packed: &'r [usize],
    /// Per step, how many examples run (`Buffers::set_lengths`); empty: all of them.
    pub(super) active: &'r [usize],
}

pub(super) fn dim_size(d: Dim, s: Sizes) -> usize {
    if d == Dim::H { s.hidden } else { s.input }
}

/// (rows, cols) of a parameter matrix.
pub(super) fn matrix_shape(sig: &CellSig, p: usize, s: Sizes) -> (usize, usize) {
    match sig.params[p].kind {
        ParamKind::Matrix { rows, cols } => (dim_size(rows, s), dim_size(cols, s)),
        ParamKind::Vector { .. } => unreachable!("stacks hold matrices"),
    }
}

/// Whether a GEMM of K x N fits its slots at these sizes: the operand's k columns and the
/// output's n columns lie within a row of their buffers.
pub(super) fn gemm_fits(
    sch: &Schedule,
    operand: &Slot,
    out: &Slot,
    k: usize,
    n: usize,
    s: Sizes,
) -> Result<(), String> {
    for (slot, cols, what) in [(operand, k, "operand"), (out, n, "output")] {
        let buf = &sch.buffers[slot.buf];
        let (col, width) = (slot.col.at(s.hidden, s.input), buf.width.at(s.hidden, s.input));
        if col + cols > width {
            return Err(format!("a GEMM's {what} spans columns {col}..{} of rows {width} wide", col + cols));
        }
    }
    Ok(())
}

/// The schedule's slots against what reads them, before any run (a planner bug is a compile
/// error, not memory read past a row): every kernel argument is as wide as the rows its kernel
/// was compiled for (a row value it reads needs only its first column), and every GEMM fits its
/// slots, at sizes of several shapes.
pub fn check_schedule(g: &Graph, sch: &Schedule) -> Result<(), String> {
    let sig = &g.sig;
    let samples = [(3, 5), (7, 2), (16, 16)];
    for (hidden, input) in samples {
        let input = if sig.d_equals_h { hidden } else { input };
        let s = Sizes { hidden, input, batch: 2, steps: 2 };
        let phases = [&sch.setup, &sch.forward_pre, &sch.forward_step, &sch.backward_step, &sch.backward_post];
        for stage in phases.into_iter().flatten() {
            match stage {
                Stage::Kernel { kernel, args } => {
                    let spec = &sch.kernels[*kernel];
                    let row_input = |i: usize| i < spec.inputs.len() && g.node(spec.inputs[i]).shape == Shape::Row;
                    if let Some((_, a)) = args.iter().enumerate().find(|(i, a)| a.dim != spec.dim && !row_input(*i)) {
                        return Err(format!(
                            "kernel {} reads rows of {:?} from a slot of {:?}",
                            spec.name, spec.dim, a.dim
                        ));
                    }
                }
                Stage::Gemm { operand, stack, out, .. } => {
                    let (k, n) = stack_shape(sig, &sch.stacks[*stack], s);
                    gemm_fits(sch, operand, out, k, n, s)?;
                }
            }
        }
    }
    Ok(())
}

/// (K, N) of a stack: the operand width it multiplies and the output width.
pub(super) fn stack_shape(sig: &CellSig, st: &WeightStack, s: Sizes) -> (usize, usize) {
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
    pub(super) fn new(e: &'r Engine, bufs: &'r mut Buffers, weights: &[Vec<f32>]) -> Ctx<'r> {
        let sizes = bufs.sizes;
        let own = e.schedule.buffers.iter().zip(bufs.data.iter_mut()).zip(&bufs.external);
        for (((b, d), &external), view) in own.zip(bufs.views.iter_mut()) {
            *view = match b.role {
                // Weights are only ever read through these addresses.
                BufferRole::Param(p) => (weights[p].as_ptr() as usize, weights[p].len()),
                // Caller memory (`Buffers::attach_saved`).
                _ if external.0 != 0 => external,
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
        Ctx { e, sizes, bufs: &bufs.views, stacks: &bufs.stack_views, packed: &bufs.packed_views, active: &bufs.active }
    }

    /// Pointer and row stride of `slot` at the first row of `rows`, checked to hold `rows` rows
    /// of the slot's width.
    pub(super) fn view(&self, slot: &Slot, rows: Rows) -> (*mut f32, usize) {
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
        if buf.blocks == Blocks::Parts {
            let Rows::Part { part, .. } = rows else { panic!("a per-part slot outside a split phase") };
            assert!(part * width + col + cols <= len, "per-part slot out of bounds");
            // SAFETY: in bounds by the assertion.
            return (unsafe { base.add(part * width + col) }, 0);
        }
        let block_row = |block: i64| -> usize {
            let b = block + i64::from(slot.shift);
            assert!(b >= 0, "slot before the first block");
            b as usize * s.batch
        };
        let row0 = match rows {
            Rows::Once => panic!("a setup stage reads a per-row buffer"),
            Rows::Step { t, from, .. } => block_row(t as i64) + from,
            Rows::All { from, .. } | Rows::Part { from, .. } => block_row(0) + from,
        };
        let n = rows.count();
        assert!(n == 0 || (row0 + n - 1) * width + col + cols <= len, "slot view out of bounds");
        // SAFETY: in bounds by the assertion.
        (unsafe { base.add(row0 * width + col) }, width)
    }

    pub(super) fn run(&self, stage: &Stage, rows: Rows) {
        match stage {
            Stage::Kernel { kernel, args } => self.kernel(*kernel, args, rows),
            Stage::Gemm { operand, stack, out, .. } => self.gemm(operand, *stack, out, rows),
        }
    }

    pub(super) fn kernel(&self, k: usize, args: &[Slot], rows: Rows) {
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

    /// Part `part` of `parts` of a per-step GEMM over all B rows: a contiguous share of the
    /// output's 16-column panels (so of the packed weights).
    pub(super) fn gemm_part(&self, operand: &Slot, stack: usize, out: &Slot, t: usize, part: usize, parts: usize) {
        let st = &self.e.schedule.stacks[stack];
        let (k, n) = stack_shape(&self.e.forward.sig, st, self.sizes);
        let m = self.active(t);
        if m == 0 {
            return;
        }
        let rows = Rows::Step { t, from: 0, count: m };
        let (lp, ls) = self.view(operand, rows);
        let (dp, ds) = self.view(out, rows);
        let panels = n.div_ceil(16);
        let per = panels.div_ceil(parts);
        let (p0, p1) = ((part * per).min(panels), ((part + 1) * per).min(panels));
        if p0 >= p1 {
            return;
        }
        let (c0, c1) = (16 * p0, (16 * p1).min(n));
        let packed = self.packed[stack] as *const f32;
        assert!(!packed.is_null(), "lockstep needs packed weights");
        self.check_gemm_slots(operand, out, k, n);
        // SAFETY: as in `gemm`: views bounds-checked, panels packed from this stack; each part
        // writes only its own columns of the output.
        unsafe {
            super::small_gemm::matmul_packed(
                m,
                c1 - c0,
                k,
                lp,
                ls.max(k),
                packed.add(p0 * k * 16),
                dp.add(c0),
                ds.max(n),
                false,
                1.0,
            )
        };
    }

    /// The GEMM reads k columns of its operand's rows and writes n of its output's: both must
    /// lie within a row of their buffers, so `view`'s bounds checks (whole rows) cover it.
    /// (`Engine::compile` checks every GEMM of the schedule this way before any run.)
    fn check_gemm_slots(&self, operand: &Slot, out: &Slot, k: usize, n: usize) {
        if let Err(e) = gemm_fits(&self.e.schedule, operand, out, k, n, self.sizes) {
            panic!("{e}");
        }
    }

    pub(super) fn gemm(&self, operand: &Slot, stack: usize, out: &Slot, rows: Rows) {
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
        self.check_gemm_slots(operand, out, k, n);
        if packed != 0 {
            // SAFETY: packed stacks exist only when the CPU has AVX2 and FMA; the views are
            // bounds-checked and the panels were packed from this stack at these sizes.
            unsafe {
                super::small_gemm::matmul_packed(
                    m,
                    n,
                    k,
                    lp,
                    ls.max(k),
                    packed as *const f32,
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

/// A (row-major) matrix view of a slot over all T*B rows (`stride` 0 for a broadcast row).
pub(super) fn all_rows(ctx: &Ctx<'_>, slot: &Slot) -> (*const f32, usize, usize) {
    let s = ctx.sizes;
    let n = s.steps * s.batch;
    let (p, stride) = ctx.view(slot, Rows::All { from: 0, count: n });
    (p, stride, n)
}
