//! Checked cell to graph. Lowering cannot fail: `check::Cell` is valid by construction.

use super::{CellSig, Graph, MaskInfo, NodeId, Op, ParamInfo, simplify};
use crate::check::{Cell, Dim, Expr, ExprKind, Reduction, Shape, Stochastic, Target};
use crate::syntax::ast::{MulOp, Sign};

/// The cell as a simplified graph: what every later stage starts from.
pub fn lower(cell: &Cell) -> Graph {
    let g = simplify(&lower_raw(cell));
    debug_assert_eq!(super::verify(&g), Ok(()), "lowering {} broke an invariant", cell.name);
    g
}

/// The cell as a graph exactly as written (hash-consed, not simplified), for testing `simplify`.
pub fn lower_raw(cell: &Cell) -> Graph {
    lower_values(cell).0
}

/// [`lower_raw`] and the node of every equation (indexed like `cell.equations`), unused ones
/// included: what the REPL evaluates to show each equation's value.
pub fn lower_values(cell: &Cell) -> (Graph, Vec<NodeId>) {
    let sig = CellSig {
        name: cell.name.clone(),
        states: cell.states.iter().map(|s| s.name.clone()).collect(),
        output: cell.output,
        params: cell
            .params
            .iter()
            .map(|p| ParamInfo { name: p.name.clone(), kind: p.kind, init: p.init.clone() })
            .collect(),
        d_equals_h: cell.d_equals_h.is_some(),
        masks: vec![],
    };
    let mut g = Graph::new(sig);
    let mut value: Vec<Option<NodeId>> = vec![None; cell.equations.len()];
    for &i in &cell.order {
        let eq = &cell.equations[i];
        let node = Lowerer { g: &mut g, cell, value: &value }.expr(&eq.expr);
        value[i] = Some(node);
        if g.node(node).op.arity() > 0 {
            g.names.entry(node).or_insert_with(|| eq.display_name());
        }
    }
    g.next = (0..cell.states.len())
        .map(|s| {
            let i = cell.equations.iter().position(|e| e.target == Target::Next(s)).expect("checked: next equation");
            value[i].expect("checked: ordered")
        })
        .collect();
    let values = value.into_iter().map(|v| v.expect("checked: every equation is ordered")).collect();
    (g, values)
}

struct Lowerer<'a> {
    g: &'a mut Graph,
    cell: &'a Cell,
    value: &'a [Option<NodeId>],
}

impl Lowerer<'_> {
    fn expr(&mut self, e: &Expr) -> NodeId {
        match &e.kind {
            ExprKind::Const(v) => self.g.intern(Op::constant(*v), &[]),
            ExprKind::Input => self.g.intern(Op::Input, &[]),
            ExprKind::State(s) => self.g.intern(Op::State(*s as u32), &[]),
            ExprKind::Next(s) => {
                let i = self.cell.equations.iter().position(|q| q.target == Target::Next(*s)).expect("checked");
                self.value[i].expect("checked: a next value is computed before it is read")
            }
            ExprKind::Local(i) => self.value[*i].expect("checked: locals are computed before they are read"),
            ExprKind::Param(p) => self.g.intern(Op::Param(*p as u32), &[]),
            ExprKind::Call(f, a) => {
                let a = self.expr(a);
                self.g.intern(Op::Act(*f), &[a])
            }
            ExprKind::Reduce(r, a) => {
                // Over the vector the argument is (the checker refuses numbers; H by default).
                let dim = match a.shape {
                    Shape::Vector(d) => d,
                    Shape::Scalar | Shape::Row => Dim::H,
                };
                let a = self.expr(a);
                let op = match r {
                    Reduction::Mean => Op::Mean(dim),
                    Reduction::Sum => Op::Sum(dim),
                };
                self.g.intern(op, &[a])
            }
            ExprKind::Stochastic { kind, rate, mask, args } => {
                let dim = match e.shape {
                    Shape::Vector(d) => d,
                    Shape::Scalar | Shape::Row => Dim::H,
                };
                let args: Vec<NodeId> = args.iter().map(|a| self.expr(a)).collect();
                debug_assert_eq!(*mask, self.g.sig.masks.len(), "masks are numbered in evaluation order");
                self.g.sig.masks.push(MaskInfo { kind: *kind, rate: *rate, dim });
                let mask = self.g.intern(Op::Mask(*mask as u32), &[]);
                match (kind, args.as_slice()) {
                    // new + M (old - new): M = 1 keeps the old value.
                    (Stochastic::Zoneout, &[new, old]) => {
                        let change = self.g.intern(Op::Sub, &[old, new]);
                        let kept = self.g.intern(Op::Mul, &[change, mask]);
                        self.g.intern(Op::Add, &[new, kept])
                    }
                    (_, &[v]) => self.g.intern(Op::Mul, &[v, mask]),
                    _ => unreachable!("checked: {} takes {} arguments", kind.name(), kind.arity()),
                }
            }
            ExprKind::Neg(a) => {
                let a = self.expr(a);
                self.g.intern(Op::Neg, &[a])
            }
            ExprKind::MatVec(p, a) => {
                let a = self.expr(a);
                self.g.intern(Op::MatVec(*p as u32), &[a])
            }
            ExprKind::Sum(terms) => {
                let mut acc: Option<NodeId> = None;
                for (sign, t) in terms {
                    let t = self.expr(t);
                    acc = Some(match (acc, sign) {
                        (None, Sign::Plus) => t,
                        (None, Sign::Minus) => self.g.intern(Op::Neg, &[t]),
                        (Some(a), Sign::Plus) => self.g.intern(Op::Add, &[a, t]),
                        (Some(a), Sign::Minus) => self.g.intern(Op::Sub, &[a, t]),
                    });
                }
                acc.expect("checked: sums have terms")
            }
            ExprKind::Product(factors) => {
                let mut acc: Option<NodeId> = None;
                for (op, f) in factors {
                    let f = self.expr(f);
                    acc = Some(match (acc, op) {
                        (None, _) => f,
                        (Some(a), MulOp::Mul) => self.g.intern(Op::Mul, &[a, f]),
                        (Some(a), MulOp::Div) => self.g.intern(Op::Div, &[a, f]),
                    });
                }
                acc.expect("checked: products have factors")
            }
        }
    }
}
