//! Symbolic reverse mode: a cell's step graph to the graph of its backward step. IR to IR; it
//! never computes numbers.
//!
//! Given the adjoints of the next states (`AdjNext` leaves, written `dh'`), [`grad`] adds to the
//! graph the adjoints of the previous states, of the input and of every parameter. Weight
//! matrices get their gradient as outer products `g ⊗ v`, to be summed over batch and time by
//! whoever runs the step. Backpropagation through time is this step applied from the last time
//! step to the first, each step's state adjoints feeding the step before.

pub mod print;
mod rules;

use crate::check::Shape;
use crate::ir::{Graph, NodeId, Op};
use rules::Contribution;

/// A parameter's gradient for one step of one example.
#[derive(Clone, Debug, PartialEq)]
pub enum ParamGrad {
    /// A vector parameter: its adjoint.
    Vector(NodeId),
    /// A weight matrix: the sum of these outer products `g ⊗ v` (g has the row size).
    Matrix(Vec<(NodeId, NodeId)>),
}

/// The backward step of a cell.
#[derive(Clone, Debug)]
pub struct Backward {
    /// The forward graph extended with the backward nodes (forward values are shared).
    pub graph: Graph,
    /// Adjoint of the previous value of each state.
    pub d_state: Vec<NodeId>,
    /// Adjoint of the input.
    pub d_input: NodeId,
    /// Gradient of each parameter, in the signature's order.
    pub d_params: Vec<ParamGrad>,
    /// The total adjoint of each forward node that has one: (forward node, adjoint), in forward order.
    pub adjoints: Vec<(NodeId, NodeId)>,
    /// How many nodes the forward graph has; later ids are backward nodes.
    pub forward_len: usize,
}

impl Backward {
    /// Every node the backward outputs read, for evaluation and printing.
    pub fn roots(&self) -> Vec<NodeId> {
        let mut roots = self.d_state.clone();
        roots.push(self.d_input);
        for p in &self.d_params {
            match p {
                ParamGrad::Vector(n) => roots.push(*n),
                ParamGrad::Matrix(terms) => terms.iter().for_each(|(g, v)| roots.extend([*g, *v])),
            }
        }
        roots
    }
}

/// Derives the backward step of `forward`.
pub fn grad(forward: &Graph) -> Backward {
    let mut g = forward.clone();
    let n = forward.len();
    let mut adj: Vec<Option<NodeId>> = vec![None; n];
    let mut outer: Vec<Vec<(NodeId, NodeId)>> = vec![vec![]; g.sig.params.len()];
    for (s, &out) in forward.next.iter().enumerate() {
        let seed = g.intern(Op::AdjNext(s as u32), &[]);
        accumulate(&mut g, &mut adj, out, seed);
    }
    // Arena order is topological, so reverse order visits every user before what it uses.
    for id in forward.ids().collect::<Vec<_>>().into_iter().rev() {
        let Some(adjoint) = adj[id.index()] else { continue };
        let node = *g.node(id);
        // Numbers and masks are constants to the derivative: no adjoint.
        let need = [0, 1].map(|k| {
            k < node.op.arity()
                && g.const_value(node.args[k]).is_none()
                && !matches!(g.node(node.args[k]).op, Op::Mask(_))
        });
        for c in rules::vjp(&mut g, id, adjoint, need) {
            match c {
                Contribution::Arg(k, value) => accumulate(&mut g, &mut adj, node.args[k], value),
                Contribution::Outer { param, g: gv, v } => outer[param as usize].push((gv, v)),
            }
        }
    }
    let zero = g.constant(0.0);
    let leaf = |g: &Graph, op: Op| g.find(op, &[]).and_then(|id| adj.get(id.index()).copied().flatten());
    let d_state = (0..g.sig.states.len()).map(|s| leaf(&g, Op::State(s as u32)).unwrap_or(zero)).collect();
    let d_input = leaf(&g, Op::Input).unwrap_or(zero);
    let d_params = g
        .sig
        .params
        .iter()
        .enumerate()
        .map(|(p, info)| {
            if info.kind.is_matrix() {
                ParamGrad::Matrix(std::mem::take(&mut outer[p]))
            } else {
                ParamGrad::Vector(leaf(&g, Op::Param(p as u32)).unwrap_or(zero))
            }
        })
        .collect();
    let adjoints = forward.ids().filter_map(|id| adj[id.index()].map(|a| (id, a))).collect();
    let backward = Backward { graph: g, d_state, d_input, d_params, adjoints, forward_len: n };
    debug_assert_eq!(crate::ir::verify(&backward.graph), Ok(()));
    backward
}

/// adj[target] += value. An adjoint has its node's shape: a contribution a vector makes to one
/// number per example (which broadcast along it) is summed over the vector, and one number per
/// example contributed to a vector is repeated along it.
fn accumulate(g: &mut Graph, adj: &mut [Option<NodeId>], target: NodeId, value: NodeId) {
    if g.const_value(target).is_some() {
        return;
    }
    let value = match (g.node(target).shape, g.node(value).shape) {
        (Shape::Row, Shape::Vector(d)) => g.build(Op::Sum(d), &[value]),
        (Shape::Vector(d), Shape::Row) => g.build(Op::Broadcast(d), &[value]),
        _ => value,
    };
    let slot = &mut adj[target.index()];
    *slot = Some(match *slot {
        None => value,
        Some(prev) => g.add(prev, value),
    });
}
