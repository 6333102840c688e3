//! One fused element-wise kernel as a Cranelift function.
//!
//! Signature: `fn(ptrs: *const *mut f32, strides: *const i64, rows: i64, width: i64)`, one pointer
//! and one row stride (in elements) per argument, inputs first, then outputs. For each row the
//! body runs as an f32x4 loop over `width & !3` columns and a scalar loop over the rest; both are
//! emitted from the same code by [`emit_body`], generic over the value type. Loads and stores are
//! `notrap` and unaligned; the runtime checks every pointer and length before the call.

use std::collections::HashMap;

use cranelift::codegen::ir::{BlockArg, Function, Inst};
use cranelift::codegen::isa::TargetFrontendConfig;
use cranelift::prelude::*;

use super::math::Math;
use crate::check::Func;
use crate::ir::{Graph, NodeId, Op};
use crate::schedule::{KernelSpec, Store};

/// For `--emit clif`: the first instruction of each node's code, and the node.
pub type Annotations = Vec<(Inst, NodeId)>;

/// Builds `func` (whose signature is already set) as the kernel `spec`.
pub fn emit(
    func: &mut Function,
    fctx: &mut FunctionBuilderContext,
    config: TargetFrontendConfig,
    g: &Graph,
    spec: &KernelSpec,
    fma: bool,
) -> Annotations {
    let mut b = FunctionBuilder::new(func, fctx);
    let entry = b.create_block();
    let row_head = b.create_block();
    let row_body = b.create_block();
    let vec_head = b.create_block();
    let vec_body = b.create_block();
    let tail_head = b.create_block();
    let tail_body = b.create_block();
    let row_next = b.create_block();
    let exit = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.append_block_param(row_head, types::I64);
    b.append_block_param(vec_head, types::I64);
    b.append_block_param(tail_head, types::I64);

    // Entry: argument pointers and byte strides, loaded once.
    b.switch_to_block(entry);
    let [ptrs, strides, rows, width] = [0, 1, 2, 3].map(|i| b.block_params(entry)[i]);
    let n_args = spec.inputs.len() + spec.outputs.len();
    let flags = MemFlagsData::new().with_notrap();
    let mut bases = vec![];
    let mut steps = vec![];
    for k in 0..n_args {
        let off = (8 * k) as i32;
        bases.push(b.ins().load(types::I64, flags, ptrs, off));
        let s = b.ins().load(types::I64, flags, strides, off);
        steps.push(b.ins().ishl_imm_u(s, 2));
    }
    let vec_end = b.ins().band_imm_s(width, !3i64);
    let zero = b.ins().iconst(types::I64, 0);
    b.ins().jump(row_head, &[BlockArg::Value(zero)]);

    // Row loop.
    b.switch_to_block(row_head);
    let r = b.block_params(row_head)[0];
    let more_rows = b.ins().icmp(IntCC::SignedLessThan, r, rows);
    b.ins().brif(more_rows, row_body, &[], exit, &[]);

    b.switch_to_block(row_body);
    let row_ptrs: Vec<Value> = (0..n_args)
        .map(|k| {
            let off = b.ins().imul(r, steps[k]);
            b.ins().iadd(bases[k], off)
        })
        .collect();
    b.ins().jump(vec_head, &[BlockArg::Value(zero)]);

    // f32x4 loop over the first width & !3 columns.
    let mut notes = vec![];
    b.switch_to_block(vec_head);
    let i = b.block_params(vec_head)[0];
    let more = b.ins().icmp(IntCC::SignedLessThan, i, vec_end);
    b.ins().brif(more, vec_body, &[], tail_head, &[BlockArg::Value(i)]);
    b.switch_to_block(vec_body);
    notes.extend(emit_body(&mut b, g, spec, &row_ptrs, i, Math { fma, ty: types::F32X4 }));
    let i4 = b.ins().iadd_imm_s(i, 4);
    b.ins().jump(vec_head, &[BlockArg::Value(i4)]);

    // Scalar loop over the remaining columns.
    b.switch_to_block(tail_head);
    let j = b.block_params(tail_head)[0];
    let more_tail = b.ins().icmp(IntCC::SignedLessThan, j, width);
    b.ins().brif(more_tail, tail_body, &[], row_next, &[]);
    b.switch_to_block(tail_body);
    emit_body(&mut b, g, spec, &row_ptrs, j, Math { fma, ty: types::F32 });
    let j1 = b.ins().iadd_imm_s(j, 1);
    b.ins().jump(tail_head, &[BlockArg::Value(j1)]);

    b.switch_to_block(row_next);
    let r1 = b.ins().iadd_imm_s(r, 1);
    b.ins().jump(row_head, &[BlockArg::Value(r1)]);

    b.switch_to_block(exit);
    b.ins().return_(&[]);
    b.seal_all_blocks();
    b.finalize(config);
    notes
}

/// Loads, computes and stores one column group (4 lanes or 1) at column `col` of every row.
fn emit_body(
    b: &mut FunctionBuilder,
    g: &Graph,
    spec: &KernelSpec,
    row_ptrs: &[Value],
    col: Value,
    m: Math,
) -> Annotations {
    let flags = MemFlagsData::new().with_notrap();
    let byte_off = b.ins().ishl_imm_u(col, 2);
    let addr = |b: &mut FunctionBuilder, k: usize| b.ins().iadd(row_ptrs[k], byte_off);
    let mut vals: HashMap<NodeId, Value> = HashMap::new();
    let mut notes = vec![];
    for (k, &input) in spec.inputs.iter().enumerate() {
        let a = addr(b, k);
        vals.insert(input, b.ins().load(m.ty, flags, a, 0));
    }
    let fused = fusable_products(g, spec, m.fma);
    for &n in &spec.nodes {
        if fused.contains(&n) {
            continue; // emitted inside the fma of its one user
        }
        let first = b.func.dfg.num_insts();
        let v = emit_node(b, g, n, &vals, &fused, m);
        vals.insert(n, v);
        if b.func.dfg.num_insts() > first {
            notes.push((Inst::from_u32(first as u32), n));
        }
    }
    let base = spec.inputs.len();
    for (k, &(node, store)) in spec.outputs.iter().enumerate() {
        let mut v = value(b, g, node, &vals, m);
        let a = addr(b, base + k);
        if store == Store::Accumulate {
            let old = b.ins().load(m.ty, flags, a, 0);
            v = b.ins().fadd(old, v);
        }
        b.ins().store(flags, v, a, 0);
    }
    notes
}

/// The value of a node already computed or loaded, or a constant.
fn value(b: &mut FunctionBuilder, g: &Graph, n: NodeId, vals: &HashMap<NodeId, Value>, m: Math) -> Value {
    match g.const_value(n) {
        Some(c) => m.c(b, c as f32),
        None => vals[&n],
    }
}

/// Products used once, by an add or subtract in the same kernel, and not stored: each becomes
/// part of a fused multiply-add (when the host has FMA).
fn fusable_products(g: &Graph, spec: &KernelSpec, fma: bool) -> Vec<NodeId> {
    if !fma {
        return vec![];
    }
    let mut uses: HashMap<NodeId, usize> = HashMap::new();
    for &n in &spec.nodes {
        for &a in g.node(n).args() {
            *uses.entry(a).or_default() += 1;
        }
    }
    for (n, _) in &spec.outputs {
        *uses.entry(*n).or_default() += 1;
    }
    let mut out = vec![];
    for &n in &spec.nodes {
        let node = g.node(n);
        if !matches!(node.op, Op::Add | Op::Sub) {
            continue;
        }
        for &a in node.args() {
            let is_local_product = spec.nodes.contains(&a) && g.node(a).op == Op::Mul;
            if is_local_product && uses.get(&a) == Some(&1) && !out.contains(&a) {
                out.push(a);
                break; // one fused product per add
            }
        }
    }
    out
}

fn emit_node(
    b: &mut FunctionBuilder,
    g: &Graph,
    n: NodeId,
    vals: &HashMap<NodeId, Value>,
    fused: &[NodeId],
    m: Math,
) -> Value {
    let node = g.node(n);
    let arg = |b: &mut FunctionBuilder, k: usize| value(b, g, node.args[k], vals, m);
    match node.op {
        Op::Add | Op::Sub => {
            let (x, y) = (node.args[0], node.args[1]);
            let fused_x = fused.contains(&x);
            let fused_y = fused.contains(&y);
            if fused_x || fused_y {
                // a*b + c, a*b - c = a*b + (-c), c + a*b, c - a*b = (-a)*b + c
                let prod = if fused_x { x } else { y };
                let other = if fused_x { y } else { x };
                let pa = value(b, g, g.node(prod).args[0], vals, m);
                let pb = value(b, g, g.node(prod).args[1], vals, m);
                let c = value(b, g, other, vals, m);
                return match (node.op, fused_x) {
                    (Op::Add, _) => m.madd(b, pa, pb, c),
                    (Op::Sub, true) => {
                        let nc = b.ins().fneg(c);
                        m.madd(b, pa, pb, nc)
                    }
                    _ => {
                        let na = b.ins().fneg(pa);
                        m.madd(b, na, pb, c)
                    }
                };
            }
            let (x, y) = (arg(b, 0), arg(b, 1));
            if node.op == Op::Add { b.ins().fadd(x, y) } else { b.ins().fsub(x, y) }
        }
        Op::Mul => {
            let (x, y) = (arg(b, 0), arg(b, 1));
            b.ins().fmul(x, y)
        }
        Op::Div => {
            let (x, y) = (arg(b, 0), arg(b, 1));
            b.ins().fdiv(x, y)
        }
        Op::Neg => {
            let x = arg(b, 0);
            b.ins().fneg(x)
        }
        Op::Act(f) => {
            let x = arg(b, 0);
            match f {
                Func::Tanh => m.tanh(b, x),
                Func::Sigm => m.sigmoid(b, x),
                Func::Relu => m.relu(b, x),
                Func::Id => x,
                Func::Exp => m.exp(b, x),
                Func::Softplus => m.softplus(b, x),
                Func::Abs => b.ins().fabs(x),
                Func::Sqrt => b.ins().sqrt(x),
            }
        }
        Op::Step => {
            let x = arg(b, 0);
            m.step(b, x)
        }
        Op::Sign => {
            let x = arg(b, 0);
            m.sign(b, x)
        }
        op => unreachable!("{op:?} is not computed inside a kernel"),
    }
}
