//! One fused element-wise kernel as a Cranelift function.
//!
//! Signature: `fn(ptrs: *const *mut f32, strides: *const i64, rows: i64, width: i64)`, one pointer
//! and one row stride (in elements) per argument, inputs first, then outputs. For each row the
//! kernel makes the passes of [`crate::schedule::passes`] (one, unless it reduces a row): each
//! pass computes its row values (one number per example, in scalar registers), then runs an
//! f32x4 loop over `width & !3` columns and a scalar loop over the rest, accumulating the row
//! sums the next pass needs. Both loops are emitted from the same code by [`emit_columns`],
//! generic over the value type. A row value in a slot is stored splatted across the slot's
//! columns and read from its first column. Loads and stores are `notrap` and unaligned; the
//! runtime checks every pointer and length before the call.

use std::collections::HashMap;

use cranelift::codegen::ir::{BlockArg, Function, Inst};
use cranelift::codegen::isa::TargetFrontendConfig;
use cranelift::prelude::*;

use super::math::Math;
use crate::check::Func;
use crate::ir::{Graph, NodeId, Op};
use crate::schedule::passes::{PassPlan, is_row, plan_passes};
use crate::schedule::{KernelSpec, Store};

/// For `--emit clif`: the first instruction of each node's code, and the node.
pub type Annotations = Vec<(Inst, NodeId)>;

/// What the column loops of one row share.
struct RowCtx<'a> {
    g: &'a Graph,
    spec: &'a KernelSpec,
    fma: bool,
    /// Each argument's address at this row.
    row_ptrs: Vec<Value>,
    /// Row values ready so far: the scalar and its splat.
    rows: HashMap<NodeId, (Value, Value)>,
    /// The accumulators of each reduction: f32x4 (vector loop) and f32 (tail).
    sums: HashMap<NodeId, (Variable, Variable)>,
    /// 1 / width, as f32 and splatted (if a mean needs it).
    inv_width: Option<(Value, Value)>,
}

/// Builds `func` (whose signature is already set) as the kernel `spec`.
pub fn emit(
    func: &mut Function,
    fctx: &mut FunctionBuilderContext,
    config: TargetFrontendConfig,
    g: &Graph,
    spec: &KernelSpec,
    fma: bool,
) -> Annotations {
    let passes = plan_passes(g, spec);
    let mut b = FunctionBuilder::new(func, fctx);
    let entry = b.create_block();
    let row_head = b.create_block();
    let row_body = b.create_block();
    let exit = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.append_block_param(row_head, types::I64);

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
    // 1/width, only where a mean or its adjoint needs it.
    let divides = spec.nodes.iter().any(|&n| matches!(g.node(n).op, Op::Mean(_) | Op::Spread(_)));
    let inv_width = divides.then(|| {
        let width_f = b.ins().fcvt_from_sint(types::F32, width);
        let one = b.ins().f32const(1.0);
        let inv = b.ins().fdiv(one, width_f);
        (inv, b.ins().splat(types::F32X4, inv))
    });
    let mut sums = HashMap::new();
    for plan in &passes.passes {
        for &r in &plan.reductions {
            sums.insert(r, (b.declare_var(types::F32X4), b.declare_var(types::F32)));
        }
    }
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
    let mut cx = RowCtx { g, spec, fma, row_ptrs, rows: HashMap::new(), sums, inv_width };
    for &input in &passes.row_inputs {
        let k = spec.inputs.iter().position(|&i| i == input).expect("row inputs are inputs");
        let v = b.ins().load(types::F32, flags, cx.row_ptrs[k], 0);
        let splat = b.ins().splat(types::F32X4, v);
        cx.rows.insert(input, (v, splat));
    }
    let mut notes = vec![];
    for plan in &passes.passes {
        notes.extend(cx.row_values(&mut b, plan));
        if plan.has_column_work() {
            notes.extend(cx.column_loops(&mut b, plan, vec_end, width));
        }
    }
    let r1 = b.ins().iadd_imm_s(r, 1);
    b.ins().jump(row_head, &[BlockArg::Value(r1)]);

    b.switch_to_block(exit);
    b.ins().return_(&[]);
    b.seal_all_blocks();
    b.finalize(config);
    notes
}

impl RowCtx<'_> {
    /// The row values of a pass, before its column loop: finished sums, then what is computed
    /// from row values.
    fn row_values(&mut self, b: &mut FunctionBuilder, plan: &PassPlan) -> Annotations {
        let m = Math { fma: self.fma, ty: types::F32 };
        let mut notes = vec![];
        for &n in &plan.row_nodes {
            let first = b.func.dfg.num_insts();
            let node = self.g.node(n);
            let v = match node.op {
                Op::Sum(_) | Op::Mean(_) => {
                    let (acc4, acc1) = self.sums[&n];
                    let lanes = b.use_var(acc4);
                    let tail = b.use_var(acc1);
                    let total = horizontal_sum(b, lanes, tail);
                    match (node.op, self.inv_width) {
                        (Op::Mean(_), Some((inv, _))) => b.ins().fmul(total, inv),
                        _ => total,
                    }
                }
                _ => {
                    let scalars: HashMap<NodeId, Value> = self.rows.iter().map(|(k, v)| (*k, v.0)).collect();
                    emit_node(b, self.g, n, &scalars, &[], m)
                }
            };
            let splat = b.ins().splat(types::F32X4, v);
            self.rows.insert(n, (v, splat));
            notes.push((Inst::from_u32(first as u32), n));
        }
        notes
    }

    /// The f32x4 loop over the first `width & !3` columns and the scalar loop over the rest.
    fn column_loops(&mut self, b: &mut FunctionBuilder, plan: &PassPlan, vec_end: Value, width: Value) -> Annotations {
        for &r in &plan.reductions {
            let (acc4, acc1) = self.sums[&r];
            let z = b.ins().f32const(0.0);
            let z4 = b.ins().splat(types::F32X4, z);
            b.def_var(acc4, z4);
            b.def_var(acc1, z);
        }
        let [vec_head, vec_body, tail_head, tail_body, done] = [(); 5].map(|_| b.create_block());
        b.append_block_param(vec_head, types::I64);
        b.append_block_param(tail_head, types::I64);
        let zero = b.ins().iconst(types::I64, 0);
        b.ins().jump(vec_head, &[BlockArg::Value(zero)]);

        b.switch_to_block(vec_head);
        let i = b.block_params(vec_head)[0];
        let more = b.ins().icmp(IntCC::SignedLessThan, i, vec_end);
        b.ins().brif(more, vec_body, &[], tail_head, &[BlockArg::Value(i)]);
        b.switch_to_block(vec_body);
        let notes = self.emit_columns(b, plan, i, Math { fma: self.fma, ty: types::F32X4 });
        let i4 = b.ins().iadd_imm_s(i, 4);
        b.ins().jump(vec_head, &[BlockArg::Value(i4)]);

        b.switch_to_block(tail_head);
        let j = b.block_params(tail_head)[0];
        let more_tail = b.ins().icmp(IntCC::SignedLessThan, j, width);
        b.ins().brif(more_tail, tail_body, &[], done, &[]);
        b.switch_to_block(tail_body);
        self.emit_columns(b, plan, j, Math { fma: self.fma, ty: types::F32 });
        let j1 = b.ins().iadd_imm_s(j, 1);
        b.ins().jump(tail_head, &[BlockArg::Value(j1)]);

        b.switch_to_block(done);
        notes
    }

    /// Loads, computes, accumulates and stores one column group (4 lanes or 1) at column `col`.
    fn emit_columns(&self, b: &mut FunctionBuilder, plan: &PassPlan, col: Value, m: Math) -> Annotations {
        let (g, spec) = (self.g, self.spec);
        let flags = MemFlagsData::new().with_notrap();
        let byte_off = b.ins().ishl_imm_u(col, 2);
        let addr = |b: &mut FunctionBuilder, k: usize| b.ins().iadd(self.row_ptrs[k], byte_off);
        let vector = m.ty.is_vector();
        let mut vals: HashMap<NodeId, Value> =
            self.rows.iter().map(|(k, v)| (*k, if vector { v.1 } else { v.0 })).collect();
        let mut notes = vec![];
        for &input in &plan.loads {
            let k = spec.inputs.iter().position(|&i| i == input).expect("loads are inputs");
            let a = addr(b, k);
            vals.insert(input, b.ins().load(m.ty, flags, a, 0));
        }
        for &(node, out) in &plan.reloads {
            let a = addr(b, spec.inputs.len() + out);
            vals.insert(node, b.ins().load(m.ty, flags, a, 0));
        }
        let fused = fusable_products(g, spec, plan, m.fma);
        let inv_width = self.inv_width.map(|(one, lanes)| if vector { lanes } else { one });
        for &n in &plan.compute {
            if fused.contains(&n) {
                continue; // emitted inside the fma of its one user
            }
            let first = b.func.dfg.num_insts();
            let node = g.node(n);
            let v = match node.op {
                Op::Broadcast(_) => value(b, g, node.args[0], &vals, m),
                Op::Spread(_) => {
                    let x = value(b, g, node.args[0], &vals, m);
                    b.ins().fmul(x, inv_width.expect("a kernel with a spread has 1/width"))
                }
                _ => emit_node(b, g, n, &vals, &fused, m),
            };
            vals.insert(n, v);
            if b.func.dfg.num_insts() > first {
                notes.push((Inst::from_u32(first as u32), n));
            }
        }
        for &r in &plan.reductions {
            let x = value(b, g, g.node(r).args[0], &vals, m);
            let (acc4, acc1) = self.sums[&r];
            let acc = if vector { acc4 } else { acc1 };
            let old = b.use_var(acc);
            let new = b.ins().fadd(old, x);
            b.def_var(acc, new);
        }
        let base = spec.inputs.len();
        for &k in &plan.stores {
            let (node, store) = spec.outputs[k];
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
}

/// The sum of the four lanes and the tail's sum, in a fixed order.
fn horizontal_sum(b: &mut FunctionBuilder, lanes: Value, tail: Value) -> Value {
    let l: Vec<Value> = (0..4).map(|i| b.ins().extractlane(lanes, i)).collect();
    let a = b.ins().fadd(l[0], l[1]);
    let c = b.ins().fadd(l[2], l[3]);
    let s = b.ins().fadd(a, c);
    b.ins().fadd(s, tail)
}

/// The value of a node already computed or loaded, or a constant.
fn value(b: &mut FunctionBuilder, g: &Graph, n: NodeId, vals: &HashMap<NodeId, Value>, m: Math) -> Value {
    match g.const_value(n) {
        Some(c) => m.c(b, c as f32),
        None => vals[&n],
    }
}

/// Products used once in this pass, by an add or subtract, and not stored or summed: each
/// becomes part of a fused multiply-add (when the host has FMA).
fn fusable_products(g: &Graph, spec: &KernelSpec, plan: &PassPlan, fma: bool) -> Vec<NodeId> {
    if !fma {
        return vec![];
    }
    let mut uses: HashMap<NodeId, usize> = HashMap::new();
    for &n in &plan.compute {
        for &a in g.node(n).args() {
            *uses.entry(a).or_default() += 1;
        }
    }
    for &r in &plan.reductions {
        *uses.entry(g.node(r).args[0]).or_default() += 1;
    }
    for &k in &plan.stores {
        *uses.entry(spec.outputs[k].0).or_default() += 1;
    }
    let mut out = vec![];
    for &n in &plan.compute {
        let node = g.node(n);
        if !matches!(node.op, Op::Add | Op::Sub) {
            continue;
        }
        for &a in node.args() {
            let is_local_product = plan.compute.contains(&a) && g.node(a).op == Op::Mul && !is_row(g, a);
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
