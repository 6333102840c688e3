//! The checked cell: names resolved, shapes inferred, equations ordered, initialisation known.
//!
//! This is the contract between the front end and everything after it: a `Cell` is always valid
//! (no cycles, every state has one next-state equation, shapes agree), so IR lowering cannot fail.

use std::fmt;

use crate::diag::Span;
use crate::syntax::ast::{MulOp, Sign};
use crate::syntax::{Func, Reduction, Stochastic};

/// A checked recurrent cell.
#[derive(Clone, Debug, PartialEq)]
pub struct Cell {
    pub name: String,
    pub name_span: Span,
    /// The doc comment lines (of the derived cell, if derived).
    pub doc: Vec<String>,
    /// For a derived cell, the name of the cell it derives from.
    pub base: Option<String>,
    pub states: Vec<Named>,
    /// Index into `states` of the state the cell emits each step.
    pub output: usize,
    /// Parameters in order of first use.
    pub params: Vec<Param>,
    /// Every equation (local values and next states) in source order, after derivation.
    pub equations: Vec<Equation>,
    /// Indices into `equations` in an order where each comes after everything it reads.
    pub order: Vec<usize>,
    /// Where an element-wise use ties the input size D to the hidden size H, if anywhere.
    pub d_equals_h: Option<Span>,
}

impl Cell {
    /// One line of description: the first doc line.
    pub fn summary(&self) -> &str {
        self.doc.iter().map(|l| l.trim()).find(|l| !l.is_empty()).unwrap_or("")
    }

    /// The equation that defines the next value of state `s`.
    pub fn next_equation(&self, s: usize) -> &Equation {
        self.equations
            .iter()
            .find(|e| e.target == Target::Next(s))
            .expect("checked cell: every state has a next equation")
    }

    /// One line: `gru: state h | 9 params: W_xr[H,D] ... | D free` (what `cellc check` prints).
    pub fn signature(&self) -> String {
        let states: Vec<&str> = self.states.iter().map(|s| s.name.as_str()).collect();
        let emits =
            if self.states.len() > 1 { format!(" (emits {})", self.states[self.output].name) } else { String::new() };
        let params: Vec<String> =
            self.params.iter().map(|p| format!("{}{}", p.name, p.kind.to_string().replace(", ", ","))).collect();
        let d = if self.d_equals_h.is_some() { "D = H" } else { "D free" };
        let params = if params.is_empty() {
            "0 params".into()
        } else {
            format!("{} params: {}", params.len(), params.join(" "))
        };
        format!("{}: state {}{emits} | {params} | {d}", self.name, states.join(", "))
    }

    pub fn param(&self, name: &str) -> Option<usize> {
        self.params.iter().position(|p| p.name == name)
    }

    /// The same cell with every span zeroed: two cells are the same cell, wherever their text
    /// came from, exactly when their span-free forms are equal.
    pub fn without_spans(&self) -> Cell {
        let mut c = self.clone();
        let zero = Span::default();
        c.name_span = zero;
        c.d_equals_h = c.d_equals_h.map(|_| zero);
        c.states.iter_mut().for_each(|s| s.span = zero);
        c.params.iter_mut().for_each(|p| p.span = zero);
        for eq in &mut c.equations {
            eq.span = zero;
            eq.target_span = zero;
            eq.expr.erase_spans();
        }
        c
    }
}

impl Cell {
    /// Each regulariser's mask by number: its kind, rate and the vector size it multiplies.
    pub fn masks(&self) -> Vec<(Stochastic, f64, Dim)> {
        fn walk(e: &Expr, out: &mut Vec<(usize, Stochastic, f64, Dim)>) {
            match &e.kind {
                ExprKind::Call(_, a) | ExprKind::Reduce(_, a) | ExprKind::Neg(a) | ExprKind::MatVec(_, a) => {
                    walk(a, out)
                }
                ExprKind::Sum(terms) => terms.iter().for_each(|(_, t)| walk(t, out)),
                ExprKind::Product(factors) => factors.iter().for_each(|(_, f)| walk(f, out)),
                ExprKind::Stochastic { kind, rate, mask, args } => {
                    args.iter().for_each(|a| walk(a, out));
                    let dim = if let Shape::Vector(d) = e.shape { d } else { Dim::H };
                    out.push((*mask, *kind, *rate, dim));
                }
                _ => {}
            }
        }
        let mut found = vec![];
        self.equations.iter().for_each(|eq| walk(&eq.expr, &mut found));
        found.sort_by_key(|m| m.0);
        found.into_iter().map(|(_, kind, rate, dim)| (kind, rate, dim)).collect()
    }
}

impl Expr {
    /// Numbers the regulariser calls inside `self` from `next` on, arguments first.
    pub(super) fn number_masks(&mut self, next: &mut usize) {
        match &mut self.kind {
            ExprKind::Call(_, a) | ExprKind::Reduce(_, a) | ExprKind::Neg(a) | ExprKind::MatVec(_, a) => {
                a.number_masks(next)
            }
            ExprKind::Sum(terms) => terms.iter_mut().for_each(|(_, t)| t.number_masks(next)),
            ExprKind::Product(factors) => factors.iter_mut().for_each(|(_, f)| f.number_masks(next)),
            ExprKind::Stochastic { mask, args, .. } => {
                args.iter_mut().for_each(|a| a.number_masks(next));
                *mask = *next;
                *next += 1;
            }
            _ => {}
        }
    }

    fn erase_spans(&mut self) {
        self.span = Span::default();
        match &mut self.kind {
            ExprKind::Call(_, a) | ExprKind::Reduce(_, a) | ExprKind::Neg(a) | ExprKind::MatVec(_, a) => {
                a.erase_spans()
            }
            ExprKind::Sum(terms) => terms.iter_mut().for_each(|(_, t)| t.erase_spans()),
            ExprKind::Stochastic { args, .. } => args.iter_mut().for_each(Expr::erase_spans),
            ExprKind::Product(factors) => factors.iter_mut().for_each(|(_, f)| f.erase_spans()),
            _ => {}
        }
    }
}

/// A name with the span that declared it.
#[derive(Clone, Debug, PartialEq)]
pub struct Named {
    pub name: String,
    pub span: Span,
}

/// `name = expr` (a local value) or `s' = expr` (the next value of state `s`).
#[derive(Clone, Debug, PartialEq)]
pub struct Equation {
    pub target: Target,
    /// The local's name, or the state's name (without the prime).
    pub name: String,
    pub expr: Expr,
    /// The whole statement.
    pub span: Span,
    pub target_span: Span,
}

impl Equation {
    /// `r` or `h'`, as written on the left of `=`.
    pub fn display_name(&self) -> String {
        match self.target {
            Target::Local => self.name.clone(),
            Target::Next(_) => format!("{}'", self.name),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Local,
    /// The next value of state `i`.
    Next(usize),
}

/// A learned parameter: a weight matrix (upper-case name) or a vector (lower-case name).
#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    pub name: String,
    pub kind: ParamKind,
    pub init: Init,
    /// The first use, for diagnostics.
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamKind {
    /// `rows x cols`; it maps a `cols`-vector to a `rows`-vector.
    Matrix {
        rows: Dim,
        cols: Dim,
    },
    Vector {
        len: Dim,
    },
}

impl ParamKind {
    pub fn is_matrix(self) -> bool {
        matches!(self, ParamKind::Matrix { .. })
    }
}

impl fmt::Display for ParamKind {
    /// `[H, D]` or `[H]`: the PyTorch layout `cellc eval` uses.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamKind::Matrix { rows, cols } => write!(f, "[{rows}, {cols}]"),
            ParamKind::Vector { len } => write!(f, "[{len}]"),
        }
    }
}

/// A vector size: the hidden size H or the input size D.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dim {
    H,
    D,
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Dim::H => "H",
            Dim::D => "D",
        })
    }
}

/// The shape of an expression's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Shape {
    /// A number, broadcast against vectors.
    Scalar,
    Vector(Dim),
    /// One number per example (a reduction such as `mean(v)`), broadcast along vectors.
    Row,
}

/// How a parameter starts, as declared with `init` (or `Default`: the trainer's uniform law).
#[derive(Clone, Debug, PartialEq)]
pub enum Init {
    /// Uniform in ±scale/sqrt(fan-in) with the trainer's scale.
    Default,
    /// Every entry equal to this value (`init b_f = 1`).
    Const(f64),
    /// Uniform in ±s/sqrt(fan-in) with this `s` (`init W = uniform(0.5)`).
    Uniform(f64),
    /// Chrono initialisation (Tallec & Ollivier 2018): log(U[1, t_max - 1]).
    Chrono { t_max: f64, negated: bool },
    /// Uniform gate initialisation (Gu et al. 2020): -log(1/u - 1), u ~ U[1/d, 1 - 1/d].
    Ugi { negated: bool },
    /// The default uniform law plus `a` on the diagonal (the paper's Linear(a, ·)); square only.
    Diag(f64),
    /// A random (semi-)orthogonal matrix times `gain`.
    Orthogonal(f64),
    /// The same values as another parameter's initial values, optionally negated (`init b_i = -b_f`).
    Copy { param: usize, negated: bool },
}

impl Init {
    /// The initialisation as an `init` statement would write it (`1`, `chrono(35)`, `-b_f`).
    pub fn display(&self, cell: &Cell) -> String {
        use crate::syntax::print::format_number as num;
        let neg = |n: bool| if n { "-" } else { "" };
        match self {
            Init::Default => "uniform (default)".into(),
            Init::Const(v) => num(*v),
            Init::Uniform(s) => format!("uniform({})", num(*s)),
            Init::Chrono { t_max, negated } => format!("{}chrono({})", neg(*negated), num(*t_max)),
            Init::Ugi { negated } => format!("{}ugi", neg(*negated)),
            Init::Diag(a) => format!("diag({})", num(*a)),
            Init::Orthogonal(g) => format!("orthogonal({})", num(*g)),
            Init::Copy { param, negated } => format!("{}{}", neg(*negated), cell.params[*param].name),
        }
    }
}

/// A resolved expression with its shape.
#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
    pub shape: Shape,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    Const(f64),
    /// The input vector `x`.
    Input,
    /// The previous value of state `i`.
    State(usize),
    /// The next value of state `i` (`c'`), as its equation defines it.
    Next(usize),
    /// The value of the local equation with this index into `Cell::equations`.
    Local(usize),
    /// A vector parameter.
    Param(usize),
    Call(Func, Box<Expr>),
    /// A reduction over the vector its argument is (one number per example).
    Reduce(Reduction, Box<Expr>),
    /// A regulariser with its rate and its other arguments (`zoneout(new, old, p)`: new, old).
    /// `mask` numbers the calls in evaluation order (`order`, arguments first): the index of
    /// the mask the call draws.
    Stochastic {
        kind: Stochastic,
        rate: f64,
        mask: usize,
        args: Vec<Expr>,
    },
    Neg(Box<Expr>),
    Sum(Vec<(Sign, Expr)>),
    /// Element-wise products and quotients; the first operator is always `Mul`.
    Product(Vec<(MulOp, Expr)>),
    /// A weight matrix (parameter index) times a vector.
    MatVec(usize, Box<Expr>),
}
