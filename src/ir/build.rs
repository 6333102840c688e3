//! Simplifying constructors, and the `simplify` pass that rebuilds a graph through them.
//!
//! Every rule keeps the value of finite inputs: constant folding (with the same f64 semantics as
//! the interpreter), `x+0`, `x-0`, `0-x`, `x*1`, `x*0`, `x*-1`, `x/1`, `id(x)`, `--x`, and moving
//! negations outward (`(-a)*b = -(a*b)`, `a + -b = a - b`), which keeps derivatives readable.
//! `tests/ir.rs` checks on random graphs that simplification never changes a value.

use super::{Graph, NodeId, Op};
use crate::check::{Func, Shape};

impl Graph {
    pub fn constant(&mut self, v: f64) -> NodeId {
        self.intern(Op::constant(v), &[])
    }

    pub fn add(&mut self, a: NodeId, b: NodeId) -> NodeId {
        self.build(Op::Add, &[a, b])
    }

    pub fn sub(&mut self, a: NodeId, b: NodeId) -> NodeId {
        self.build(Op::Sub, &[a, b])
    }

    pub fn mul(&mut self, a: NodeId, b: NodeId) -> NodeId {
        self.build(Op::Mul, &[a, b])
    }

    pub fn div(&mut self, a: NodeId, b: NodeId) -> NodeId {
        self.build(Op::Div, &[a, b])
    }

    pub fn neg(&mut self, a: NodeId) -> NodeId {
        self.build(Op::Neg, &[a])
    }

    pub fn act(&mut self, f: Func, a: NodeId) -> NodeId {
        self.build(Op::Act(f), &[a])
    }

    /// `op(args)` after the simplification rules; leaves are interned as they are.
    pub fn build(&mut self, op: Op, args: &[NodeId]) -> NodeId {
        let c = |g: &Graph, i: usize| g.const_value(args[i]);
        let is = |g: &Graph, i: usize, v: f64| c(g, i) == Some(v);
        let negated = |g: &Graph, i: usize| match g.node(args[i]).op {
            Op::Neg => Some(g.node(args[i]).args[0]),
            _ => None,
        };
        if op.is_elementwise() && op.arity() > 0 && (0..op.arity()).all(|i| c(self, i).is_some()) {
            let a = c(self, 0).unwrap_or(0.0);
            let b = if op.arity() == 2 { c(self, 1).unwrap_or(0.0) } else { 0.0 };
            return self.constant(op.apply(a, b));
        }
        let negative = |g: &Graph, i: usize| c(g, i).filter(|v| *v < 0.0);
        match op {
            // Constants inside sums and products are kept positive, the sign moved outward, so
            // every graph prints one way: `x - 2`, `-(2*x)`, never `x + -2` or `-2*x`.
            Op::Add | Op::Sub | Op::Mul | Op::Div if (0..2).any(|i| negative(self, i).is_some()) => {
                let i = if negative(self, 0).is_some() { 0 } else { 1 };
                let abs = self.constant(-negative(self, i).unwrap_or(0.0));
                let (a, b) = (args[0], args[1]);
                match (op, i) {
                    (Op::Add, 0) => self.build(Op::Sub, &[b, abs]), // -c + b = b - c
                    (Op::Add, _) => self.build(Op::Sub, &[a, abs]), // a + -c = a - c
                    (Op::Sub, 0) => {
                        let sum = self.build(Op::Add, &[abs, b]); // -c - b = -(c + b)
                        self.build(Op::Neg, &[sum])
                    }
                    (Op::Sub, _) => self.build(Op::Add, &[a, abs]), // a - -c = a + c
                    _ => {
                        let inner = if i == 0 { self.build(op, &[abs, b]) } else { self.build(op, &[a, abs]) };
                        self.build(Op::Neg, &[inner]) // (-c)*b = -(c*b), a/(-c) = -(a/c)
                    }
                }
            }
            Op::Add if is(self, 1, 0.0) => args[0],
            Op::Add if is(self, 0, 0.0) => args[1],
            Op::Add if negated(self, 1).is_some() => {
                let b = negated(self, 1).unwrap_or(args[1]);
                self.build(Op::Sub, &[args[0], b])
            }
            Op::Add if negated(self, 0).is_some() => {
                let a = negated(self, 0).unwrap_or(args[0]);
                self.build(Op::Sub, &[args[1], a])
            }
            Op::Sub if is(self, 1, 0.0) => args[0],
            Op::Sub if is(self, 0, 0.0) => self.build(Op::Neg, &[args[1]]),
            Op::Sub if negated(self, 1).is_some() => {
                let b = negated(self, 1).unwrap_or(args[1]);
                self.build(Op::Add, &[args[0], b])
            }
            Op::Mul if is(self, 0, 0.0) || is(self, 1, 0.0) => self.constant(0.0),
            Op::Mul if is(self, 1, 1.0) => args[0],
            Op::Mul if is(self, 0, 1.0) => args[1],
            Op::Mul | Op::Div if negated(self, 0).is_some() => {
                let a = negated(self, 0).unwrap_or(args[0]);
                let inner = self.build(op, &[a, args[1]]);
                self.build(Op::Neg, &[inner])
            }
            Op::Mul | Op::Div if negated(self, 1).is_some() => {
                let b = negated(self, 1).unwrap_or(args[1]);
                let inner = self.build(op, &[args[0], b]);
                self.build(Op::Neg, &[inner])
            }
            Op::Div if is(self, 1, 1.0) => args[0],
            Op::Neg if negated(self, 0).is_some() => negated(self, 0).unwrap_or(args[0]),
            Op::Act(Func::Id) => args[0],
            Op::MatVec(_) | Op::MatVecT(_) if is(self, 0, 0.0) => self.constant(0.0),
            Op::Sum(_) | Op::Mean(_) | Op::Broadcast(_) | Op::Spread(_) if is(self, 0, 0.0) => self.constant(0.0),
            // The mean of what is already one number per example is that number.
            Op::Mean(_) if matches!(self.node(args[0]).shape, Shape::Scalar | Shape::Row) => args[0],
            _ => self.intern(op, args),
        }
    }
}

/// The same computation rebuilt through the simplifying constructors, with unreachable nodes
/// dropped and names kept (a name moves only with a computed value, not onto a leaf).
pub fn simplify(g: &Graph) -> Graph {
    let mut out = Graph::new(g.sig.clone());
    let mut map: Vec<Option<NodeId>> = vec![None; g.len()];
    for id in g.reachable(&g.next) {
        let node = g.node(id);
        let args: Vec<NodeId> = node.args().iter().map(|a| map[a.index()].expect("arguments come first")).collect();
        let new = out.build(node.op, &args);
        map[id.index()] = Some(new);
        // A name stays with a computed value; `f = 1` does not rename every constant 1.
        if let Some(name) = g.names.get(&id)
            && out.node(new).op.arity() > 0
        {
            out.names.entry(new).or_insert_with(|| name.clone());
        }
    }
    out.next = g.next.iter().map(|n| map[n.index()].expect("outputs are reachable")).collect();
    compact(&out)
}

/// The graph without nodes the outputs do not reach (a rule may leave a constant it consumed).
fn compact(g: &Graph) -> Graph {
    let mut out = Graph::new(g.sig.clone());
    let mut map: Vec<Option<NodeId>> = vec![None; g.len()];
    for id in g.reachable(&g.next) {
        let node = g.node(id);
        let args: Vec<NodeId> = node.args().iter().map(|a| map[a.index()].expect("arguments come first")).collect();
        map[id.index()] = Some(out.intern(node.op, &args));
    }
    out.next = g.next.iter().map(|n| map[n.index()].expect("outputs are reachable")).collect();
    out.names = g.names.iter().filter_map(|(id, name)| map[id.index()].map(|n| (n, name.clone()))).collect();
    out
}
