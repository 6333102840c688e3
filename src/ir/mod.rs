//! The expression graph: a typed, hash-consed DAG over a small closed set of ops.
//!
//! Nodes live in an arena in topological order (arguments before users) and identical nodes are
//! stored once, so common subexpressions are shared by construction. The graph carries the cell's
//! signature (states, parameters with shapes and initialisation) so every later stage works from
//! it alone. No syntax, no Cranelift, no ndarray here.

mod build;
mod lower;
mod mask;
mod op;
pub mod raise;
mod verify;

use std::collections::{BTreeMap, HashMap};

pub use build::simplify;
pub use lower::{lower, lower_raw, lower_values};
pub use mask::{MaskDraw, MaskInfo, MaskRow};
pub use op::{Op, activation, broadcast, sigmoid, softplus};
pub use verify::verify;

/// Vector sizes, which the graph's later readers (the interpreter) see through the IR.
pub use crate::check::Dim;
use crate::check::{Init, ParamKind, Shape};

/// Index of a node in its graph's arena.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub u32);

impl NodeId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// An op applied to earlier nodes. Unused argument slots hold `NodeId(u32::MAX)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Node {
    pub op: Op,
    pub args: [NodeId; 2],
    pub shape: Shape,
}

impl Node {
    /// The arguments actually used by the op.
    pub fn args(&self) -> &[NodeId] {
        &self.args[..self.op.arity()]
    }
}

const NO_ARG: NodeId = NodeId(u32::MAX);

/// A parameter as the graph sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamInfo {
    pub name: String,
    pub kind: ParamKind,
    pub init: Init,
}

impl ParamInfo {
    /// Number of values for hidden size `h` and input size `d`.
    pub fn len(&self, h: usize, d: usize) -> usize {
        let size = |dim: Dim| if dim == Dim::H { h } else { d };
        match self.kind {
            ParamKind::Matrix { rows, cols } => size(rows) * size(cols),
            ParamKind::Vector { len } => size(len),
        }
    }

    /// Tensor shape for hidden size `h` and input size `d`: `[rows, cols]` or `[len]`.
    pub fn dims(&self, h: usize, d: usize) -> Vec<usize> {
        let size = |dim: Dim| if dim == Dim::H { h } else { d };
        match self.kind {
            ParamKind::Matrix { rows, cols } => vec![size(rows), size(cols)],
            ParamKind::Vector { len } => vec![size(len)],
        }
    }
}

/// What a graph computes: a cell's signature.
#[derive(Clone, Debug, PartialEq)]
pub struct CellSig {
    pub name: String,
    pub states: Vec<String>,
    /// Index of the emitted state.
    pub output: usize,
    pub params: Vec<ParamInfo>,
    /// Whether the input size must equal the hidden size.
    pub d_equals_h: bool,
    /// The regularisers' masks (`Op::Mask(k)` reads `masks[k]`), in the order lowering met them.
    pub masks: Vec<MaskInfo>,
}

/// A cell's step as a DAG: `next[i]` is the next value of state `i`.
#[derive(Clone, Debug)]
pub struct Graph {
    pub sig: CellSig,
    nodes: Vec<Node>,
    table: HashMap<Node, NodeId>,
    /// The next value of each state.
    pub next: Vec<NodeId>,
    /// Names from the source equations, for printing.
    pub names: BTreeMap<NodeId, String>,
}

impl Graph {
    /// An empty graph for a signature.
    pub fn new(sig: CellSig) -> Graph {
        Graph { sig, nodes: vec![], table: HashMap::new(), next: vec![], names: BTreeMap::new() }
    }

    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.index()]
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// All node ids, in topological order.
    pub fn ids(&self) -> impl Iterator<Item = NodeId> + use<> {
        (0..self.nodes.len() as u32).map(NodeId)
    }

    /// The node for `op(args)`, created if new, without any simplification (see `build.rs` for
    /// the simplifying constructors). Panics on a malformed node: that is a compiler bug.
    pub fn intern(&mut self, op: Op, args: &[NodeId]) -> NodeId {
        assert_eq!(args.len(), op.arity(), "{op:?} takes {} arguments", op.arity());
        let mut slots = [NO_ARG; 2];
        slots[..args.len()].copy_from_slice(args);
        let shape = self.shape_of(op, args);
        let node = Node { op, args: slots, shape };
        if let Some(&id) = self.table.get(&node) {
            return id;
        }
        let id = NodeId(self.nodes.len() as u32);
        self.nodes.push(node);
        self.table.insert(node, id);
        id
    }

    /// The existing node for `op(args)`, if the graph has one.
    pub fn find(&self, op: Op, args: &[NodeId]) -> Option<NodeId> {
        let mut slots = [NO_ARG; 2];
        slots[..args.len()].copy_from_slice(args);
        self.table.get(&Node { op, args: slots, shape: self.shape_of(op, args) }).copied()
    }

    /// The shape rule of every op.
    fn shape_of(&self, op: Op, args: &[NodeId]) -> Shape {
        let arg = |i: usize| self.node(args[i]).shape;
        match op {
            Op::Input => Shape::Vector(if self.sig.d_equals_h { Dim::H } else { Dim::D }),
            Op::State(_) | Op::AdjNext(_) => Shape::Vector(Dim::H),
            Op::Mask(k) => Shape::Vector(self.sig.masks[k as usize].dim),
            Op::Param(p) => match self.sig.params[p as usize].kind {
                ParamKind::Vector { len } => Shape::Vector(len),
                ParamKind::Matrix { .. } => panic!("Param op on matrix {}", self.sig.params[p as usize].name),
            },
            Op::Const(_) => Shape::Scalar,
            Op::Add | Op::Sub | Op::Mul | Op::Div => broadcast(arg(0), arg(1)),
            Op::Neg | Op::Act(_) | Op::Step | Op::Sign => arg(0),
            Op::MatVec(p) => match self.sig.params[p as usize].kind {
                ParamKind::Matrix { rows, .. } => Shape::Vector(rows),
                ParamKind::Vector { .. } => panic!("MatVec with vector {}", self.sig.params[p as usize].name),
            },
            Op::MatVecT(p) => match self.sig.params[p as usize].kind {
                ParamKind::Matrix { cols, .. } => Shape::Vector(cols),
                ParamKind::Vector { .. } => panic!("MatVecT with vector {}", self.sig.params[p as usize].name),
            },
            Op::Sum(_) | Op::Mean(_) => Shape::Row,
            Op::Broadcast(d) | Op::Spread(d) => Shape::Vector(d),
        }
    }

    /// How many nodes (and outputs) use each node.
    pub fn use_counts(&self, roots: &[NodeId]) -> Vec<usize> {
        let mut counts = vec![0; self.nodes.len()];
        for id in self.reachable(roots) {
            for a in self.node(id).args() {
                counts[a.index()] += 1;
            }
        }
        for r in roots {
            counts[r.index()] += 1;
        }
        counts
    }

    /// The nodes `roots` depend on (including themselves), in topological order.
    pub fn reachable(&self, roots: &[NodeId]) -> Vec<NodeId> {
        let mut seen = vec![false; self.nodes.len()];
        let mut stack: Vec<NodeId> = roots.to_vec();
        while let Some(id) = stack.pop() {
            if !std::mem::replace(&mut seen[id.index()], true) {
                stack.extend_from_slice(self.node(id).args());
            }
        }
        self.ids().filter(|id| seen[id.index()]).collect()
    }

    /// The value of a constant node.
    pub fn const_value(&self, id: NodeId) -> Option<f64> {
        self.node(id).op.const_value()
    }

    /// The name given to a node by its source equation, if any.
    pub fn name(&self, id: NodeId) -> Option<&str> {
        self.names.get(&id).map(String::as_str)
    }
}
