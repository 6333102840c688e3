//! The syntax tree of a `.cell` file, exactly as written (names unresolved, every node spanned).
//!
//! Sums and products are n-ary, as the grammar reads them, so a long chain `a + b + c + ...` is one
//! node and tree depth follows parenthesis nesting only. Comments ride along on statements and cells
//! so the formatter can put them back.

use crate::diag::Span;

/// A parsed file: its cells and the comments after the last one.
#[derive(Clone, Debug, PartialEq)]
pub struct File {
    pub cells: Vec<CellDef>,
    pub trailing_comments: Vec<String>,
}

/// An identifier with its position.
#[derive(Clone, Debug, PartialEq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

/// `cell NAME { ... }` or `cell NAME = BASE with { ... }`.
#[derive(Clone, Debug, PartialEq)]
pub struct CellDef {
    /// `//` comments on the lines before the cell (and before its doc comment).
    pub comments: Vec<String>,
    /// The `///` lines, without the slashes and one leading space.
    pub doc: Vec<String>,
    pub name: Ident,
    pub base: Option<Ident>,
    pub body: Vec<Stmt>,
    /// Comments after the last statement, before the closing brace.
    pub end_comments: Vec<String>,
    /// From `cell` to the closing brace.
    pub span: Span,
}

impl CellDef {
    /// First line of the doc comment: the description `cellc list` shows.
    pub fn summary(&self) -> &str {
        self.doc.iter().map(|l| l.trim()).find(|l| !l.is_empty()).unwrap_or("")
    }
}

/// A statement and the layout around it.
#[derive(Clone, Debug, PartialEq)]
pub struct Stmt {
    pub kind: StmtKind,
    pub span: Span,
    /// Comment lines right before the statement.
    pub comments: Vec<String>,
    /// A comment at the end of the statement's last line.
    pub trailing_comment: Option<String>,
    /// Whether a blank line separates this statement from the one before.
    pub blank_before: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub enum StmtKind {
    /// `state h, c`
    State(Vec<Ident>),
    /// `output c`
    Output(Ident),
    /// `init NAME = VALUE`
    Init(Ident, InitValue),
    /// `name = expr` or `name' = expr`
    Equation(Equation),
}

/// `target = rhs`; `primed` marks a next-state equation `h' = ...`.
#[derive(Clone, Debug, PartialEq)]
pub struct Equation {
    pub target: Ident,
    pub primed: bool,
    pub rhs: Expr,
}

/// The right side of `init P = ...`: `-`? then a number or a scheme/name with optional arguments.
#[derive(Clone, Debug, PartialEq)]
pub struct InitValue {
    pub negated: bool,
    pub kind: InitKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum InitKind {
    Number(Number),
    /// `uniform`, `chrono(35)`, or the name of another parameter (`-b_f`).
    Scheme {
        name: Ident,
        args: Option<Vec<Number>>,
    },
}

/// A numeric literal: its value and its text, so the formatter can keep `1e-3` as written.
#[derive(Clone, Debug, PartialEq)]
pub struct Number {
    pub value: f64,
    pub text: String,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sign {
    Plus,
    Minus,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MulOp {
    Mul,
    Div,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    Number(Number),
    /// A name, `primed` for `c'`.
    Var {
        name: String,
        primed: bool,
    },
    /// `f(arg, ...)`; `func.span` covers the name.
    Call {
        func: Ident,
        args: Vec<Expr>,
    },
    /// `t0 ± t1 ± ...`: the first sign is the optional leading minus.
    Sum(Vec<(Sign, Expr)>),
    /// `f0 op1 f1 op2 f2 ...`: the first operator is always `Mul` and means nothing.
    Product(Vec<(MulOp, Expr)>),
    /// `-e`, written on a factor (`a*-b`).
    Neg(Box<Expr>),
    /// `(e)`, kept so spans and the formatter stay faithful.
    Paren(Box<Expr>),
}

impl Expr {
    /// The expression with any parentheses around it removed.
    pub fn unparen(&self) -> &Expr {
        match &self.kind {
            ExprKind::Paren(e) => e.unparen(),
            _ => self,
        }
    }
}
