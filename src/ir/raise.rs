//! Graph to AST, so the one printer (`syntax::print`) shows any graph as `.cell` text.
//!
//! A [`Raiser`] turns nodes into expressions, referring to named nodes by name and inlining the
//! rest. Chains of `+`/`-` and `*`/`/` become n-ary sums and products, walked iteratively so a
//! long chain never deepens the recursion. [`cell_def`] picks the names for a forward graph.

use std::collections::{BTreeSet, HashMap};

use super::{Graph, MaskInfo, NodeId, Op};
use crate::check::{Dim, Init, Shape, Stochastic};
use crate::diag::Span;
use crate::syntax::ast::{self, Expr, ExprKind, Ident, MulOp, Sign, Stmt, StmtKind};
use crate::syntax::print::format_number;

/// Builds AST expressions for the nodes of a graph.
pub struct Raiser<'g> {
    pub g: &'g Graph,
    /// Nodes shown by name instead of inline.
    pub names: HashMap<NodeId, String>,
}

fn expr(kind: ExprKind) -> Expr {
    Expr { kind, span: Span::default() }
}

fn var(name: &str) -> Expr {
    expr(ExprKind::Var { name: name.to_string(), primed: false })
}

fn ident(name: &str) -> Ident {
    Ident { name: name.to_string(), span: Span::default() }
}

fn number(v: f64) -> Expr {
    let n = |v: f64| expr(ExprKind::Number(ast::Number { value: v, text: format_number(v), span: Span::default() }));
    if v < 0.0 { expr(ExprKind::Neg(Box::new(n(-v)))) } else { n(v) }
}

impl Raiser<'_> {
    /// The node as an expression: its name if it has one, else its definition.
    pub fn expr(&self, id: NodeId) -> Expr {
        match self.names.get(&id) {
            Some(name) => var(name),
            None => self.definition(id),
        }
    }

    /// The node's own definition; arguments by name where they have one.
    pub fn definition(&self, id: NodeId) -> Expr {
        let node = self.g.node(id);
        let sig = &self.g.sig;
        let arg = |k: usize| self.expr(node.args[k]);
        match node.op {
            Op::Input => var("x"),
            Op::State(s) => var(&sig.states[s as usize]),
            Op::Param(p) => var(&sig.params[p as usize].name),
            Op::Const(_) => number(self.g.const_value(id).unwrap_or(f64::NAN)),
            Op::AdjNext(s) => var(&format!("d{}'", sig.states[s as usize])),
            // Only shown, never read back: a mask outside a product is no value of the language.
            Op::Mask(k) => var(&format!("⟨mask {k}⟩")),
            Op::Add | Op::Mul if self.regulariser(id).is_some() => self.regulariser(id).unwrap_or_else(|| arg(0)),
            Op::Add | Op::Sub => expr(ExprKind::Sum(self.sum_terms(id))),
            Op::Mul | Op::Div => expr(ExprKind::Product(self.product_factors(id))),
            Op::Neg => expr(ExprKind::Neg(Box::new(arg(0)))),
            Op::Act(f) => call(f.name(), arg(0)),
            Op::Step => call("step", arg(0)),
            Op::Sign => call("sign", arg(0)),
            Op::MatVec(p) => matvec(&sig.params[p as usize].name, arg(0)),
            Op::MatVecT(p) => matvec(&format!("{}ᵀ", sig.params[p as usize].name), arg(0)),
            // A sum of a number (simplification folded its argument) still runs over a vector's
            // entries: `sum(2 + 0*h)` says which, and simplifies back to the same node.
            Op::Sum(d) if self.g.node(node.args[0]).shape == Shape::Scalar => {
                let zero = expr(ExprKind::Product(vec![(MulOp::Mul, number(0.0)), (MulOp::Mul, self.vector_of(d))]));
                call("sum", expr(ExprKind::Sum(vec![(Sign::Plus, arg(0)), (Sign::Plus, zero)])))
            }
            Op::Sum(_) => call("sum", arg(0)),
            Op::Mean(_) => call("mean", arg(0)),
            // Backward only, for people: a broadcast is implicit, a spread divides by the size.
            Op::Broadcast(_) => arg(0),
            Op::Spread(d) => expr(ExprKind::Product(vec![(MulOp::Mul, arg(0)), (MulOp::Div, var(&d.to_string()))])),
        }
    }

    /// A masked product as the call that wrote it: `v*M` as `dropout(v, p)` (or `vardropout`,
    /// or `zoneout(0, v, p)`), and `new + (old - new)*M` as `zoneout(new, old, p)`.
    fn regulariser(&self, id: NodeId) -> Option<Expr> {
        let node = self.g.node(id);
        // A named mask (a derivative's display) is shown by name, as a factor.
        let mask_of = |n: NodeId| match self.g.node(n).op {
            Op::Mask(k) if !self.names.contains_key(&n) => Some(self.g.sig.masks[k as usize]),
            _ => None,
        };
        let masked = |n: NodeId| {
            let m = self.g.node(n);
            let k = (0..2).find(|&k| m.op == Op::Mul && mask_of(m.args[k]).is_some())?;
            Some((m.args[1 - k], mask_of(m.args[k])?))
        };
        let call = |mask: MaskInfo, mut args: Vec<Expr>| {
            args.push(number(mask.rate));
            expr(ExprKind::Call { func: ident(mask.kind.name()), args })
        };
        match node.op {
            Op::Mul => {
                let (v, mask) = masked(id)?;
                Some(match mask.kind {
                    Stochastic::Zoneout => call(mask, vec![number(0.0), self.expr(v)]),
                    _ => call(mask, vec![self.expr(v)]),
                })
            }
            Op::Add => {
                let (new, kept) = (node.args[0], node.args[1]);
                let (change, mask) = masked(kept).filter(|_| !self.names.contains_key(&kept))?;
                let c = self.g.node(change);
                let zoneout = mask.kind == Stochastic::Zoneout && c.op == Op::Sub && c.args[1] == new;
                zoneout.then(|| call(mask, vec![self.expr(new), self.expr(c.args[0])]))
            }
            _ => None,
        }
    }

    /// A vector of size `d` to name in text: a state for H, x for D.
    fn vector_of(&self, d: Dim) -> Expr {
        match d {
            Dim::D => var("x"),
            Dim::H => var(self.g.sig.states.first().map_or("x", String::as_str)),
        }
    }

    /// The terms of a chain of unnamed `+`/`-` nodes, left to right.
    fn sum_terms(&self, id: NodeId) -> Vec<(Sign, Expr)> {
        let mut rights = vec![];
        let mut cur = id;
        loop {
            let n = self.g.node(cur);
            let sign = match n.op {
                Op::Add => Sign::Plus,
                Op::Sub => Sign::Minus,
                _ => break,
            };
            if cur != id && (self.names.contains_key(&cur) || self.regulariser(cur).is_some()) {
                break;
            }
            rights.push((sign, self.expr(n.args[1])));
            cur = n.args[0];
        }
        let mut terms = vec![(Sign::Plus, self.expr(cur))];
        terms.extend(rights.into_iter().rev());
        terms
    }

    /// The factors of a chain of unnamed `*`/`/` nodes, left to right.
    fn product_factors(&self, id: NodeId) -> Vec<(MulOp, Expr)> {
        let mut rights = vec![];
        let mut cur = id;
        loop {
            let n = self.g.node(cur);
            let op = match n.op {
                Op::Mul => MulOp::Mul,
                Op::Div => MulOp::Div,
                _ => break,
            };
            if cur != id && (self.names.contains_key(&cur) || self.regulariser(cur).is_some()) {
                break;
            }
            rights.push((op, self.expr(n.args[1])));
            cur = n.args[0];
        }
        let mut factors = vec![(MulOp::Mul, self.expr(cur))];
        factors.extend(rights.into_iter().rev());
        factors
    }
}

fn call(name: &str, arg: Expr) -> Expr {
    expr(ExprKind::Call { func: ident(name), args: vec![arg] })
}

/// `W*v`: a product whose first factor is the matrix, so the printer keeps `v` as one factor.
fn matvec(matrix: &str, v: Expr) -> Expr {
    expr(ExprKind::Product(vec![(MulOp::Mul, var(matrix)), (MulOp::Mul, v)]))
}

fn stmt(kind: StmtKind) -> Stmt {
    Stmt { kind, span: Span::default(), comments: vec![], trailing_comment: None, blank_before: false }
}

fn equation(name: &str, primed: bool, rhs: Expr) -> Stmt {
    stmt(StmtKind::Equation(ast::Equation { target: ident(name), primed, rhs }))
}

/// The graph as a cell definition: named equations keep their names, other values used more than
/// once get fresh names `t1, t2, ...`, and non-default initialisation becomes `init` lines.
pub fn cell_def(g: &Graph) -> ast::CellDef {
    let counts = g.use_counts(&g.next);
    let reachable = g.reachable(&g.next);
    let mut taken: BTreeSet<String> = g.names.values().cloned().collect();
    taken.extend(g.sig.states.iter().cloned());
    taken.extend(g.sig.params.iter().map(|p| p.name.clone()));
    let mut names = HashMap::new();
    let mut fresh = 0;
    for &id in &reachable {
        if g.node(id).op.arity() == 0 {
            continue;
        }
        let name = match g.name(id) {
            Some(n) => n.to_string(),
            None if counts[id.index()] >= 2 => loop {
                fresh += 1;
                let candidate = format!("t{fresh}");
                if !taken.contains(&candidate) {
                    break candidate;
                }
            },
            None => continue,
        };
        names.insert(id, name);
    }
    let raiser = Raiser { g, names };
    let mut body = vec![stmt(StmtKind::State(g.sig.states.iter().map(|s| ident(s)).collect()))];
    if g.sig.output != 0 {
        body.push(stmt(StmtKind::Output(ident(&g.sig.states[g.sig.output]))));
    }
    for &id in &reachable {
        if let Some(name) = raiser.names.get(&id) {
            let (base, primed) = match name.strip_suffix('\'') {
                Some(b) => (b, true),
                None => (name.as_str(), false),
            };
            body.push(equation(base, primed, raiser.definition(id)));
        }
    }
    for (s, &next) in g.next.iter().enumerate() {
        let state = &g.sig.states[s];
        if raiser.names.get(&next).map(String::as_str) != Some(&format!("{state}'")) {
            body.push(equation(state, true, raiser.expr(next)));
        }
    }
    for p in &g.sig.params {
        if let Some(value) = init_value(&p.init, g) {
            body.push(stmt(StmtKind::Init(ident(&p.name), value)));
        }
    }
    ast::CellDef {
        comments: vec![],
        doc: vec![],
        name: ident(&g.sig.name),
        base: None,
        body,
        end_comments: vec![],
        span: Span::default(),
    }
}

/// `init` right-hand side for a non-default initialisation.
fn init_value(init: &Init, g: &Graph) -> Option<ast::InitValue> {
    let num = |v: f64| ast::Number { value: v, text: format_number(v), span: Span::default() };
    let scheme = |name: &str, args: Option<Vec<f64>>, negated: bool| ast::InitValue {
        negated,
        kind: ast::InitKind::Scheme { name: ident(name), args: args.map(|a| a.into_iter().map(num).collect()) },
        span: Span::default(),
    };
    Some(match init {
        Init::Default => return None,
        Init::Const(v) => {
            ast::InitValue { negated: *v < 0.0, kind: ast::InitKind::Number(num(v.abs())), span: Span::default() }
        }
        Init::Uniform(s) => scheme("uniform", Some(vec![*s]), false),
        Init::Chrono { t_max, negated } => scheme("chrono", Some(vec![*t_max]), *negated),
        Init::Ugi { negated } => scheme("ugi", None, *negated),
        Init::Diag(a) => scheme("diag", Some(vec![a.abs()]), *a < 0.0),
        Init::Orthogonal(gain) => scheme("orthogonal", Some(vec![gain.abs()]), *gain < 0.0),
        Init::Copy { param, negated } => scheme(&g.sig.params[*param].name, None, *negated),
    })
}
