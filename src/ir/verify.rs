//! The graph verifier: structural invariants every pass must keep. Run after each pass in debug
//! builds and tests; a failure is a compiler bug, reported with the offending node.

use super::{Graph, NodeId, Op, broadcast};
use crate::check::{ParamKind, Shape};

/// Checks the graph's invariants; `Err` names the first broken one.
pub fn verify(g: &Graph) -> Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    for id in g.ids() {
        let n = g.node(id);
        let at = |msg: String| format!("node {} ({:?}): {msg}", id.0, n.op);
        if !seen.insert(*n) {
            return Err(at("stored twice: hash-consing is broken".into()));
        }
        for (k, a) in n.args.iter().enumerate() {
            let used = k < n.op.arity();
            if used && a.0 >= id.0 {
                return Err(at(format!("argument {} does not come before its user", a.0)));
            }
            if !used && *a != NodeId(u32::MAX) {
                return Err(at("an unused argument slot is set".into()));
            }
        }
        let param = |p: u32| g.sig.params.get(p as usize).map(|q| q.kind);
        let arg_shape = |k: usize| g.node(n.args[k]).shape;
        let expected = match n.op {
            Op::Param(p) => match param(p) {
                Some(ParamKind::Vector { len }) => Shape::Vector(len),
                _ => return Err(at("Param must name a vector parameter".into())),
            },
            Op::MatVec(p) | Op::MatVecT(p) => match param(p) {
                Some(ParamKind::Matrix { rows, cols }) => {
                    let (into, from) = if matches!(n.op, Op::MatVec(_)) { (rows, cols) } else { (cols, rows) };
                    if broadcast(arg_shape(0), Shape::Vector(from)) != Shape::Vector(from) && !g.sig.d_equals_h {
                        return Err(at(format!("multiplies a {:?} by a matrix expecting {from}", arg_shape(0))));
                    }
                    if matches!(arg_shape(0), Shape::Scalar | Shape::Row) {
                        return Err(at("a matrix multiplies a scalar".into()));
                    }
                    Shape::Vector(into)
                }
                _ => return Err(at("MatVec must name a matrix parameter".into())),
            },
            Op::Broadcast(d) | Op::Spread(d) => {
                if !matches!(arg_shape(0), Shape::Row | Shape::Scalar) {
                    return Err(at(format!("spreads a {:?}, not one number per example", arg_shape(0))));
                }
                Shape::Vector(d)
            }
            Op::Sum(d) | Op::Mean(d) => {
                if broadcast(arg_shape(0), Shape::Vector(d)) != Shape::Vector(d) && !g.sig.d_equals_h {
                    return Err(at(format!("reduces a {:?} over a {d}-vector", arg_shape(0))));
                }
                Shape::Row
            }
            Op::Mask(k) => match g.sig.masks.get(k as usize) {
                Some(m) => Shape::Vector(m.dim),
                None => return Err(at("no such mask".into())),
            },
            Op::State(s) | Op::AdjNext(s) if s as usize >= g.sig.states.len() => {
                return Err(at("no such state".into()));
            }
            _ => n.shape,
        };
        if expected != n.shape {
            return Err(at(format!("shape {:?}, expected {expected:?}", n.shape)));
        }
    }
    if g.next.len() != g.sig.states.len() {
        return Err(format!("{} next-state outputs for {} states", g.next.len(), g.sig.states.len()));
    }
    for (s, n) in g.next.iter().enumerate() {
        if n.index() >= g.len() {
            return Err(format!("output of state {s} is not a node"));
        }
        let shape = g.node(*n).shape;
        if !matches!(shape, Shape::Scalar | Shape::Row | Shape::Vector(crate::check::Dim::H)) && !g.sig.d_equals_h {
            return Err(format!("output of state {s} is not an H-vector"));
        }
    }
    Ok(())
}
