//! The softmax of a language model's output layer as one Cranelift kernel: per row, the maximum
//! of row + bias, then exponentiate and sum, then scale, all in place; the scaled rows are also
//! added into column sums (the bias gradient) while they are in cache. f32x4 loops with scalar
//! tails; exp is the inline polynomial of `math.rs`.
//!
//! Signature: `fn(rows: *mut f32, bias: *const f32, n_rows: i64, width: i64, stride: i64,
//! scale: f32, maxes: *mut f32, sums: *mut f32, colsums: *mut f32)`. Afterwards row r holds
//! `scale * softmax(row + bias)`, `colsums[c]` has gained column c of every row, and `maxes[r]`,
//! `sums[r]` give the log-sum-exp: `maxes[r] + ln(sums[r])`.

use std::sync::Mutex;

use cranelift::codegen::ir::{BlockArg, UserFuncName};
use cranelift::jit::{JITBuilder, JITModule};
use cranelift::module::{Linkage, Module, default_libcall_names};
use cranelift::prelude::*;

use super::math::Math;

type SoftmaxFn = unsafe extern "C" fn(*mut f32, *const f32, i64, i64, i64, f32, *mut f32, *mut f32, *mut f32);

/// The compiled softmax kernel; its code is freed on drop. `runtime::softmax` decides when to
/// run it (it prefers 8-wide AVX2 rows where the CPU has them).
pub struct SoftmaxKernel {
    module: Mutex<Option<JITModule>>,
    f: SoftmaxFn,
}

impl Drop for SoftmaxKernel {
    fn drop(&mut self) {
        if let Some(module) = self.module.get_mut().ok().and_then(Option::take) {
            // SAFETY: `f` dies with `self`.
            unsafe { module.free_memory() };
        }
    }
}

impl SoftmaxKernel {
    pub fn compile() -> Result<SoftmaxKernel, String> {
        let isa = super::host_isa(cfg!(debug_assertions))?;
        let fma = isa.has_native_fma();
        let mut module = JITModule::new(JITBuilder::with_isa(isa, default_libcall_names()));
        let ptr = module.target_config().pointer_type();
        let mut sig = module.make_signature();
        for ty in [ptr, ptr, types::I64, types::I64, types::I64, types::F32, ptr, ptr, ptr] {
            sig.params.push(AbiParam::new(ty));
        }
        let id = module.declare_function("softmax", Linkage::Local, &sig).map_err(|e| e.to_string())?;
        let mut ctx = module.make_context();
        ctx.func.signature = sig;
        ctx.func.name = UserFuncName::user(0, id.as_u32());
        let mut fctx = FunctionBuilderContext::new();
        emit(FunctionBuilder::new(&mut ctx.func, &mut fctx), fma, module.target_config());
        module.define_function(id, &mut ctx).map_err(|e| format!("Cranelift rejected the softmax kernel: {e:?}"))?;
        module.finalize_definitions().map_err(|e| e.to_string())?;
        // SAFETY: built with exactly this signature.
        let f = unsafe { std::mem::transmute::<*const u8, SoftmaxFn>(module.get_finalized_function(id)) };
        Ok(SoftmaxKernel { module: Mutex::new(Some(module)), f })
    }

    /// Applies the kernel to `rows` consecutive rows of `width` values, `stride` apart, adding
    /// the results into `colsums` ([width]).
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
        assert!(bias.len() >= width && maxes.len() >= rows && sums.len() >= rows, "softmax: short buffers");
        assert!(colsums.len() >= width, "softmax: short column sums");
        assert!(rows == 0 || (rows - 1) * stride + width <= data.len(), "softmax: rows out of bounds");
        if rows == 0 || width == 0 {
            return;
        }
        // SAFETY: every access is within the slices (checked above).
        unsafe {
            (self.f)(
                data.as_mut_ptr(),
                bias.as_ptr(),
                rows as i64,
                width as i64,
                stride as i64,
                scale,
                maxes.as_mut_ptr(),
                sums.as_mut_ptr(),
                colsums.as_mut_ptr(),
            )
        };
    }
}

fn emit(mut builder: FunctionBuilder, fma: bool, config: cranelift::codegen::isa::TargetFrontendConfig) {
    let b = &mut builder;
    let flags = MemFlagsData::new().with_notrap();
    let vm = Math { fma, ty: types::F32X4 };
    let sm = Math { fma, ty: types::F32 };
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    let p: Vec<Value> = b.block_params(entry).to_vec();
    let (data, bias, n_rows, width, stride, scale, maxes, sums) = (p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7]);
    let colsums = p[8];
    let vec_end = b.ins().band_imm_s(width, !3i64);
    let stride_bytes = b.ins().ishl_imm_u(stride, 2);
    let zero = b.ins().iconst(types::I64, 0);

    let row_head = b.create_block();
    let row_body = b.create_block();
    let done = b.create_block();
    b.append_block_param(row_head, types::I64);
    b.ins().jump(row_head, &[BlockArg::Value(zero)]);
    b.switch_to_block(row_head);
    let r = b.block_params(row_head)[0];
    let more = b.ins().icmp(IntCC::SignedLessThan, r, n_rows);
    b.ins().brif(more, row_body, &[], done, &[]);
    b.switch_to_block(row_body);
    let off = b.ins().imul(r, stride_bytes);
    let row = b.ins().iadd(data, off);

    // Pass 1: the running maximum of row + bias (not stored: pass 2 adds the bias again).
    let neg_inf = vm.c(b, f32::NEG_INFINITY);
    let max_v = columns(
        b,
        row,
        bias,
        vec_end,
        width,
        neg_inf,
        |b, ty, addr_row, addr_bias, acc| {
            let m = if ty.is_vector() { vm } else { sm };
            let x = b.ins().load(ty, flags, addr_row, 0);
            let bb = b.ins().load(ty, flags, addr_bias, 0);
            let z = b.ins().fadd(x, bb);
            m.pick(b, FloatCC::LessThan, acc, z, z, acc)
        },
        Reduce::Max,
        sm,
    );
    let max_v_vec = b.ins().splat(types::F32X4, max_v);

    // Pass 2: row = exp(row + bias - max); running sum.
    let zero_v = vm.c(b, 0.0);
    let sum = columns(
        b,
        row,
        bias,
        vec_end,
        width,
        zero_v,
        |b, ty, addr_row, addr_bias, acc| {
            let m = if ty.is_vector() { vm } else { sm };
            let x = b.ins().load(ty, flags, addr_row, 0);
            let bb = b.ins().load(ty, flags, addr_bias, 0);
            let z = b.ins().fadd(x, bb);
            let mx = if ty.is_vector() { max_v_vec } else { max_v };
            let d = b.ins().fsub(z, mx);
            let e = m.exp(b, d);
            b.ins().store(flags, e, addr_row, 0);
            b.ins().fadd(acc, e)
        },
        Reduce::Sum,
        sm,
    );

    // Pass 3: row *= scale / sum; colsums += row.
    // Through memory: a load stays where it is written, so the division runs once per row
    // (as a pure value, Cranelift placed it inside the loop below).
    let r4 = b.ins().ishl_imm_u(r, 2);
    let saddr = b.ins().iadd(sums, r4);
    let quotient = b.ins().fdiv(scale, sum);
    b.ins().store(flags, quotient, saddr, 0);
    let factor = b.ins().load(types::F32, flags, saddr, 0);
    let factor_v = b.ins().splat(types::F32X4, factor);
    columns(
        b,
        row,
        colsums,
        vec_end,
        width,
        zero_v,
        |b, ty, addr_row, addr_sum, acc| {
            let x = b.ins().load(ty, flags, addr_row, 0);
            let f = if ty.is_vector() { factor_v } else { factor };
            let y = b.ins().fmul(x, f);
            b.ins().store(flags, y, addr_row, 0);
            let c = b.ins().load(ty, flags, addr_sum, 0);
            let c = b.ins().fadd(c, y);
            b.ins().store(flags, c, addr_sum, 0);
            acc
        },
        Reduce::Sum,
        sm,
    );

    let maddr = b.ins().iadd(maxes, r4);
    b.ins().store(flags, max_v, maddr, 0);
    b.ins().store(flags, sum, saddr, 0);
    let r1 = b.ins().iadd_imm_s(r, 1);
    b.ins().jump(row_head, &[BlockArg::Value(r1)]);

    b.switch_to_block(done);
    b.ins().return_(&[]);
    b.seal_all_blocks();
    builder.finalize(config);
}

#[derive(Clone, Copy)]
enum Reduce {
    Max,
    Sum,
}

/// One pass over a row's columns: an f32x4 loop carrying a vector accumulator, then a scalar
/// tail carrying a scalar one; `body` gets the addresses of column j in the row and in `aux`.
/// Returns the scalar reduction of both.
#[allow(clippy::too_many_arguments)]
fn columns(
    b: &mut FunctionBuilder,
    row: Value,
    aux: Value,
    vec_end: Value,
    width: Value,
    init: Value,
    mut body: impl FnMut(&mut FunctionBuilder, Type, Value, Value, Value) -> Value,
    reduce: Reduce,
    sm: Math,
) -> Value {
    // The loops carry their two addresses rather than an index: Cranelift would otherwise
    // recompute `row + 4 i` (and the row address itself) on every iteration.
    let vhead = b.create_block();
    let vbody = b.create_block();
    let thead = b.create_block();
    let tbody = b.create_block();
    let exit = b.create_block();
    let ptr = types::I64;
    for block in [vhead, thead] {
        b.append_block_param(block, ptr);
        b.append_block_param(block, ptr);
    }
    b.append_block_param(vhead, types::F32X4);
    b.append_block_param(thead, types::F32);
    b.append_block_param(exit, types::F32);
    let vec_bytes = b.ins().ishl_imm_u(vec_end, 2);
    let vec_stop = b.ins().iadd(row, vec_bytes);
    let bytes = b.ins().ishl_imm_u(width, 2);
    let stop = b.ins().iadd(row, bytes);
    b.ins().jump(vhead, &[BlockArg::Value(row), BlockArg::Value(aux), BlockArg::Value(init)]);

    let vdone = b.create_block();
    b.switch_to_block(vhead);
    let (ar, ab, acc) = (b.block_params(vhead)[0], b.block_params(vhead)[1], b.block_params(vhead)[2]);
    let more = b.ins().icmp(IntCC::UnsignedLessThan, ar, vec_stop);
    b.ins().brif(more, vbody, &[], vdone, &[]);

    // Reduce the vector accumulator to a scalar on the way to the tail.
    b.switch_to_block(vdone);
    let lanes: Vec<Value> = (0..4u8).map(|l| b.ins().extractlane(acc, l)).collect();
    let mut s = lanes[0];
    for &l in &lanes[1..] {
        s = match reduce {
            Reduce::Max => sm.pick(b, FloatCC::LessThan, s, l, l, s),
            Reduce::Sum => b.ins().fadd(s, l),
        };
    }
    b.ins().jump(thead, &[BlockArg::Value(ar), BlockArg::Value(ab), BlockArg::Value(s)]);

    b.switch_to_block(vbody);
    let acc2 = body(b, types::F32X4, ar, ab, acc);
    let ar2 = b.ins().iadd_imm_s(ar, 16);
    let ab2 = b.ins().iadd_imm_s(ab, 16);
    b.ins().jump(vhead, &[BlockArg::Value(ar2), BlockArg::Value(ab2), BlockArg::Value(acc2)]);

    b.switch_to_block(thead);
    let (tr, tb, sacc) = (b.block_params(thead)[0], b.block_params(thead)[1], b.block_params(thead)[2]);
    let more = b.ins().icmp(IntCC::UnsignedLessThan, tr, stop);
    b.ins().brif(more, tbody, &[], exit, &[BlockArg::Value(sacc)]);

    b.switch_to_block(tbody);
    let sacc2 = body(b, types::F32, tr, tb, sacc);
    let tr2 = b.ins().iadd_imm_s(tr, 4);
    let tb2 = b.ins().iadd_imm_s(tb, 4);
    b.ins().jump(thead, &[BlockArg::Value(tr2), BlockArg::Value(tb2), BlockArg::Value(sacc2)]);

    b.switch_to_block(exit);
    b.block_params(exit)[0]
}
