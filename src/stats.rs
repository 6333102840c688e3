//! Size and cost of a cell: parameter count and floating-point operations per step per example,
//! forward and backward, split into matrix products and element-wise work.
//!
//! Counting rules: a matrix-vector product with an r x c matrix is 2rc flops (multiply and add);
//! so is accumulating an outer product into a weight gradient. Every element-wise op on an
//! n-vector is n flops, and a reduction (`mean`, `sum`) of an n-vector too; transcendental
//! functions (tanh, sigm, exp, softplus, sqrt) are also counted on their own, since they cost
//! several flops each in practice.

use crate::autodiff::{Backward, ParamGrad};
use crate::check::{Dim, Func, Shape};
use crate::ir::{Graph, NodeId, Op};

/// Costs of one step for one example.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Cost {
    pub matmul_flops: u64,
    pub elementwise_flops: u64,
    /// How many of the element-wise flops are transcendental functions.
    pub transcendental: u64,
}

impl Cost {
    pub fn total(&self) -> u64 {
        self.matmul_flops + self.elementwise_flops
    }
}

/// Everything `cellc stats` reports.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Stats {
    pub hidden: usize,
    pub input: usize,
    pub params: usize,
    pub forward: Cost,
    pub backward: Cost,
}

/// Counts the cell at hidden size `h` and input size `d`.
pub fn stats(fwd: &Graph, bwd: &Backward, h: usize, d: usize) -> Stats {
    let size = |s: Shape| match s {
        Shape::Scalar | Shape::Row => 1,
        Shape::Vector(Dim::H) => h as u64,
        Shape::Vector(Dim::D) => d as u64,
    };
    let matrix = |p: u32| fwd.sig.params[p as usize].len(h, d) as u64;
    let cost_of = |g: &Graph, ids: &mut dyn Iterator<Item = NodeId>| {
        let mut c = Cost::default();
        for id in ids {
            let n = g.node(id);
            match n.op {
                Op::MatVec(p) | Op::MatVecT(p) => c.matmul_flops += 2 * matrix(p),
                // A reduction adds every entry of the vector it reads.
                Op::Sum(_) | Op::Mean(_) => c.elementwise_flops += size(g.node(n.args[0]).shape),
                op if op.arity() > 0 => {
                    c.elementwise_flops += size(n.shape);
                    if matches!(op, Op::Act(Func::Tanh | Func::Sigm | Func::Exp | Func::Softplus | Func::Sqrt)) {
                        c.transcendental += size(n.shape);
                    }
                }
                _ => {}
            }
        }
        c
    };
    let forward = cost_of(fwd, &mut fwd.reachable(&fwd.next).into_iter());
    let g = &bwd.graph;
    let mut backward =
        cost_of(g, &mut g.reachable(&bwd.roots()).into_iter().filter(|id| id.index() >= bwd.forward_len));
    for (p, grad) in bwd.d_params.iter().enumerate() {
        match grad {
            ParamGrad::Matrix(terms) => backward.matmul_flops += 2 * terms.len() as u64 * matrix(p as u32),
            // Summing a vector gradient over examples: one add per entry.
            ParamGrad::Vector(_) => backward.elementwise_flops += fwd.sig.params[p].len(h, d) as u64,
        }
    }
    let params = fwd.sig.params.iter().map(|p| p.len(h, d)).sum();
    Stats { hidden: h, input: d, params, forward, backward }
}
