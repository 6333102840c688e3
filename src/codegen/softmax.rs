//! The softmax of a language model's output layer as one Cranelift kernel: per row, add the bias
//! and find the maximum, then exponentiate and sum, then scale, all in place. f32x4 loops with
//! scalar tails; exp is the inline polynomial of `math.rs`.
//!
//! Signature: `fn(rows: *mut f32, bias: *const f32, n_rows: i64, width: i64, stride: i64,
//! scale: f32, maxes: *mut f32, sums: *mut f32)`. Afterwards row r holds
//! `scale * softmax(row + bias)`, and `maxes[r]`, `sums[r]` give the log-sum-exp:
//! `maxes[r] + ln(sums[r])`.

use std::sync::Mutex;

use cranelift::codegen::ir::{BlockArg, UserFuncName};
use cranelift::jit::{JITBuilder, JITModule};
use cranelift::module::{Linkage, Module, default_libcall_names};
use cranelift::prelude::*;

use super::math::Math;

type SoftmaxFn = unsafe extern "C" fn(*mut f32, *const f32, i64, i64, i64, f32, *mut f32, *mut f32);

/// The compiled softmax kernel; its code is freed on drop.
pub struct Softmax {
    module: Mutex<Option<JITModule>>,
    f: SoftmaxFn,
}

impl Drop for Softmax {
    fn drop(&mut self) {
        if let Some(module) = self.module.get_mut().ok().and_then(Option::take) {
            // SAFETY: `f` dies with `self`.
            unsafe { module.free_memory() };
        }
    }
}

impl Softmax {
    pub fn compile() -> Result<Softmax, String> {
        let isa = super::host_isa(cfg!(debug_assertions))?;
        let fma = isa.has_native_fma();
        let mut module = JITModule::new(JITBuilder::with_isa(isa, default_libcall_names()));
        let ptr = module.target_config().pointer_type();
        let mut sig = module.make_signature();
        for ty in [ptr, ptr, types::I64, types::I64, types::I64, types::F32, ptr, ptr] {
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
        Ok(Softmax { module: Mutex::new(Some(module)), f })
    }

    /// Applies the kernel to `rows` consecutive rows of `width` values, `stride` apart.
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
    ) {
        assert!(bias.len() >= width && maxes.len() >= rows && sums.len() >= rows, "softmax: short buffers");
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

    // Pass 1: row += bias; running maximum.
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
            b.ins().store(flags, z, addr_row, 0);
            m.pick(b, FloatCC::LessThan, acc, z, z, acc)
        },
        Reduce::Max,
        sm,
    );
    let max_v_vec = b.ins().splat(types::F32X4, max_v);

    // Pass 2: row = exp(row - max); running sum.
    let zero_v = vm.c(b, 0.0);
    let sum = columns(
        b,
        row,
        bias,
        vec_end,
        width,
        zero_v,
        |b, ty, addr_row, _, acc| {
            let m = if ty.is_vector() { vm } else { sm };
            let x = b.ins().load(ty, flags, addr_row, 0);
            let mx = if ty.is_vector() { max_v_vec } else { max_v };
            let d = b.ins().fsub(x, mx);
            let e = m.exp(b, d);
            b.ins().store(flags, e, addr_row, 0);
            b.ins().fadd(acc, e)
        },
        Reduce::Sum,
        sm,
    );

    // Pass 3: row *= scale / sum.
    let factor = b.ins().fdiv(scale, sum);
    let factor_v = b.ins().splat(types::F32X4, factor);
    columns(
        b,
        row,
        bias,
        vec_end,
        width,
        zero_v,
        |b, ty, addr_row, _, acc| {
            let x = b.ins().load(ty, flags, addr_row, 0);
            let f = if ty.is_vector() { factor_v } else { factor };
            let y = b.ins().fmul(x, f);
            b.ins().store(flags, y, addr_row, 0);
            acc
        },
        Reduce::Sum,
        sm,
    );

    let r4 = b.ins().ishl_imm_u(r, 2);
    let maddr = b.ins().iadd(maxes, r4);
    b.ins().store(flags, max_v, maddr, 0);
    let saddr = b.ins().iadd(sums, r4);
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
/// tail carrying a scalar one. Returns the scalar reduction of both.
#[allow(clippy::too_many_arguments)]
fn columns(
    b: &mut FunctionBuilder,
    row: Value,
    bias: Value,
    vec_end: Value,
    width: Value,
    init: Value,
    mut body: impl FnMut(&mut FunctionBuilder, Type, Value, Value, Value) -> Value,
    reduce: Reduce,
    sm: Math,
) -> Value {
    let vhead = b.create_block();
    let vbody = b.create_block();
    let thead = b.create_block();
    let tbody = b.create_block();
    let exit = b.create_block();
    b.append_block_param(vhead, types::I64);
    b.append_block_param(vhead, types::F32X4);
    b.append_block_param(thead, types::I64);
    b.append_block_param(thead, types::F32);
    b.append_block_param(exit, types::F32);
    let zero = b.ins().iconst(types::I64, 0);
    b.ins().jump(vhead, &[BlockArg::Value(zero), BlockArg::Value(init)]);

    let vdone = b.create_block();
    b.switch_to_block(vhead);
    let (i, acc) = (b.block_params(vhead)[0], b.block_params(vhead)[1]);
    let more = b.ins().icmp(IntCC::SignedLessThan, i, vec_end);
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
    b.ins().jump(thead, &[BlockArg::Value(i), BlockArg::Value(s)]);

    b.switch_to_block(vbody);
    let off = b.ins().ishl_imm_u(i, 2);
    let ar = b.ins().iadd(row, off);
    let ab = b.ins().iadd(bias, off);
    let acc2 = body(b, types::F32X4, ar, ab, acc);
    let i4 = b.ins().iadd_imm_s(i, 4);
    b.ins().jump(vhead, &[BlockArg::Value(i4), BlockArg::Value(acc2)]);

    b.switch_to_block(thead);
    let (j, sacc) = (b.block_params(thead)[0], b.block_params(thead)[1]);
    let more = b.ins().icmp(IntCC::SignedLessThan, j, width);
    b.ins().brif(more, tbody, &[], exit, &[BlockArg::Value(sacc)]);

    b.switch_to_block(tbody);
    let off = b.ins().ishl_imm_u(j, 2);
    let ar = b.ins().iadd(row, off);
    let ab = b.ins().iadd(bias, off);
    let sacc2 = body(b, types::F32, ar, ab, sacc);
    let j1 = b.ins().iadd_imm_s(j, 1);
    b.ins().jump(thead, &[BlockArg::Value(j1), BlockArg::Value(sacc2)]);

    b.switch_to_block(exit);
    b.block_params(exit)[0]
}
