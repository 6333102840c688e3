//! A checked cell's equations as Python: one line per equation in evaluation order, each under a
//! comment that shows the equation as the `.cell` file writes it. A [`Dialect`] says how a
//! framework spells a function, a parameter and a matrix product; the `.cell` notation for the
//! comments is a dialect too.

use crate::check::{Cell, Expr, ExprKind, Shape, Target};
use crate::syntax::ast::{MulOp, Sign};
use crate::syntax::{Func, Reduction, Stochastic};

/// How one notation spells the pieces of an expression.
pub(super) trait Dialect {
    /// `f(arg)`.
    fn call(&self, f: Func, arg: &str) -> String;
    /// A reduction of `arg` over its last axis, kept as an axis of one so it broadcasts back.
    fn reduce(&self, r: Reduction, arg: &str) -> String;
    /// A regulariser through mask `mask` of the step's `masks` (random while training, the
    /// expectation otherwise): `v*M` for dropout, `new + M*(old - new)` for zoneout. `args` are
    /// parenthesised where they are sums; the result is one atom.
    fn stochastic(&self, kind: Stochastic, _rate: f64, mask: usize, args: &[String]) -> String {
        match (kind, args) {
            (Stochastic::Zoneout, [new, old]) => format!("({new} + masks[{mask}]*({old} - {new}))"),
            (_, [v, ..]) => format!("({v}*masks[{mask}])"),
            _ => unreachable!("checked: {} takes {} arguments", kind.name(), kind.arity()),
        }
    }
    /// A parameter by name.
    fn param(&self, name: &str) -> String;
    /// Weight matrix `name` times `arg` (already an atom: a name or parenthesised).
    fn matvec(&self, name: &str, arg: &str) -> String;
    /// The input.
    fn input(&self) -> String {
        "x".into()
    }
    /// State `name`'s value before the step, and after it (read later in the same step).
    fn state(&self, name: &str) -> String {
        py_name(name)
    }
    fn next(&self, name: &str) -> String {
        format!("{}_next", py_name(name))
    }
    fn local(&self, name: &str) -> String {
        py_name(name)
    }
    fn number(&self, v: f64) -> String {
        python_float(v)
    }
    /// A number-valued expression (constants only) as the framework's functions take it.
    fn scalar(&self, arg: &str) -> String {
        arg.to_string()
    }
    /// `value` (the same for every example: built from constants and parameters only) as a
    /// batch of rows shaped like state `like`.
    fn rows_like(&self, value: &str, like: &str) -> String {
        format!("{value} + 0*{like}")
    }
}

/// Names Python or the exported code use for themselves, which an equation's name must not
/// shadow: such a name gets a trailing underscore.
const RESERVED: &[&str] = &[
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue", "def", "del",
    "elif", "else", "except", "finally", "for", "from", "global", "if", "import", "in", "is", "lambda", "nonlocal",
    "not", "or", "pass", "raise", "return", "try", "while", "with", "yield", "match", "case", "type", "self", "torch",
    "nn", "F", "math", "jax", "jnp", "params", "states", "key", "x", "xs", "ys",
];

/// A cell name as a Python identifier.
pub(super) fn py_name(name: &str) -> String {
    if RESERVED.contains(&name) { format!("{name}_") } else { name.to_string() }
}

/// A number as Python writes a float.
pub(super) fn python_float(v: f64) -> String {
    let s = format!("{v:?}");
    if s.contains(['.', 'e', 'E']) || s.contains("inf") || s.contains("NaN") { s } else { format!("{s}.0") }
}

/// The `.cell` notation, for the comments.
pub(super) struct CellText;

impl Dialect for CellText {
    fn call(&self, f: Func, arg: &str) -> String {
        format!("{}({arg})", f.name())
    }
    fn reduce(&self, r: Reduction, arg: &str) -> String {
        format!("{}({arg})", r.name())
    }
    fn stochastic(&self, kind: Stochastic, rate: f64, _mask: usize, args: &[String]) -> String {
        format!("{}({}, {})", kind.name(), args.join(", "), self.number(rate))
    }
    fn param(&self, name: &str) -> String {
        name.to_string()
    }
    fn matvec(&self, name: &str, arg: &str) -> String {
        format!("{name}*{arg}")
    }
    fn state(&self, name: &str) -> String {
        name.to_string()
    }
    fn next(&self, name: &str) -> String {
        format!("{name}'")
    }
    fn local(&self, name: &str) -> String {
        name.to_string()
    }
    fn number(&self, v: f64) -> String {
        crate::syntax::print::format_number(v)
    }
}

/// Binding strength, for parentheses.
#[derive(Clone, Copy, PartialEq, PartialOrd)]
enum Prec {
    Sum,
    Product,
    Unary,
    Atom,
}

fn prec(e: &Expr) -> Prec {
    match &e.kind {
        ExprKind::Sum(terms) if terms.len() > 1 || terms.first().is_some_and(|t| t.0 == Sign::Minus) => Prec::Sum,
        ExprKind::Sum(terms) => terms.first().map_or(Prec::Atom, |t| prec(&t.1)),
        ExprKind::Product(f) if f.len() > 1 => Prec::Product,
        ExprKind::Product(f) => f.first().map_or(Prec::Atom, |t| prec(&t.1)),
        ExprKind::Neg(_) => Prec::Unary,
        ExprKind::Const(v) if *v < 0.0 => Prec::Unary,
        _ => Prec::Atom,
    }
}

/// `e` in dialect `d`, parenthesised when it binds more loosely than `need`.
fn child(cell: &Cell, e: &Expr, d: &dyn Dialect, need: Prec) -> String {
    let s = expr(cell, e, d);
    if prec(e) < need { format!("({s})") } else { s }
}

/// `e` in dialect `d`.
pub(super) fn expr(cell: &Cell, e: &Expr, d: &dyn Dialect) -> String {
    match &e.kind {
        ExprKind::Const(v) => d.number(*v),
        ExprKind::Input => d.input(),
        ExprKind::State(i) => d.state(&cell.states[*i].name),
        ExprKind::Next(i) => d.next(&cell.states[*i].name),
        ExprKind::Local(i) => d.local(&cell.equations[*i].name),
        ExprKind::Param(p) => d.param(&cell.params[*p].name),
        ExprKind::Call(f, a) if a.shape == Shape::Scalar => d.call(*f, &d.scalar(&expr(cell, a, d))),
        ExprKind::Call(f, a) => d.call(*f, &expr(cell, a, d)),
        ExprKind::Reduce(r, a) => d.reduce(*r, &expr(cell, a, d)),
        ExprKind::Stochastic { kind, rate, mask, args } => {
            let args: Vec<String> = args.iter().map(|a| child(cell, a, d, Prec::Product)).collect();
            d.stochastic(*kind, *rate, *mask, &args)
        }
        ExprKind::Neg(a) => format!("-{}", child(cell, a, d, Prec::Unary)),
        ExprKind::MatVec(p, a) => d.matvec(&cell.params[*p].name, &child(cell, a, d, Prec::Atom)),
        ExprKind::Sum(terms) => {
            let mut s = String::new();
            for (i, (sign, t)) in terms.iter().enumerate() {
                let need = if i == 0 && *sign == Sign::Plus { Prec::Sum } else { Prec::Product };
                let t = child(cell, t, d, need);
                match (i, sign) {
                    (0, Sign::Plus) => s.push_str(&t),
                    (0, Sign::Minus) => s.push_str(&format!("-{t}")),
                    (_, Sign::Plus) => s.push_str(&format!(" + {t}")),
                    (_, Sign::Minus) => s.push_str(&format!(" - {t}")),
                }
            }
            s
        }
        ExprKind::Product(factors) => {
            let mut s = String::new();
            for (i, (op, f)) in factors.iter().enumerate() {
                // A divisor that is itself a product needs parentheses: a/(b*c).
                let need = if *op == MulOp::Div { Prec::Unary } else { Prec::Product };
                let f = child(cell, f, d, need);
                match (i, op) {
                    (0, _) => s.push_str(&f),
                    (_, MulOp::Mul) => s.push_str(&format!("*{f}")),
                    (_, MulOp::Div) => s.push_str(&format!("/{f}")),
                }
            }
            s
        }
    }
}

/// The step's body: every equation in evaluation order, `indent` deep, each line under a comment
/// with the equation in `.cell` notation.
pub(super) fn equations(cell: &Cell, d: &dyn Dialect, indent: &str) -> String {
    let mut out = String::new();
    for &i in &cell.order {
        let eq = &cell.equations[i];
        let target = match eq.target {
            Target::Local => d.local(&eq.name),
            Target::Next(s) => d.next(&cell.states[s].name),
        };
        out.push_str(&format!("{indent}# {} = {}\n", eq.display_name(), expr(cell, &eq.expr, &CellText)));
        out.push_str(&format!("{indent}{target} = {}\n", expr(cell, &eq.expr, d)));
    }
    out
}

/// Whether `e` differs from example to example (reads x or a state, directly or through locals):
/// a state whose equation does not would come out as one row (or one number) instead of a batch.
fn per_example(cell: &Cell, e: &Expr) -> bool {
    match &e.kind {
        ExprKind::Input | ExprKind::State(_) | ExprKind::Next(_) => true,
        ExprKind::Const(_) | ExprKind::Param(_) => false,
        ExprKind::Local(i) => per_example(cell, &cell.equations[*i].expr),
        ExprKind::Call(_, a) | ExprKind::Reduce(_, a) | ExprKind::Neg(a) | ExprKind::MatVec(_, a) => {
            per_example(cell, a)
        }
        ExprKind::Sum(terms) => terms.iter().any(|(_, t)| per_example(cell, t)),
        ExprKind::Product(factors) => factors.iter().any(|(_, f)| per_example(cell, f)),
        // A mask differs from example to example.
        ExprKind::Stochastic { .. } => true,
    }
}

/// What the step returns: each state's next value, as a batch of rows.
pub(super) fn next_states(cell: &Cell, d: &dyn Dialect) -> Vec<String> {
    (0..cell.states.len())
        .map(|s| {
            let name = &cell.states[s].name;
            let eq = cell.equations.iter().find(|e| e.target == Target::Next(s));
            match eq {
                // One row for every example (no x or state read), or one number per example.
                Some(eq) if !per_example(cell, &eq.expr) || eq.expr.shape == Shape::Row => {
                    d.rows_like(&d.next(name), &d.state(name))
                }
                _ => d.next(name),
            }
        })
        .collect()
}

/// The cell's doc lines and equations as a Python docstring body (each line indented).
pub(super) fn docstring(cell: &Cell, source: &crate::workspace::CellSource, indent: &str) -> String {
    let mut s = String::new();
    for line in &cell.doc {
        s.push_str(&format!("{indent}{}\n", line.replace('\\', "\\\\").replace("\"\"\"", "'''")));
    }
    if !cell.doc.is_empty() {
        s.push('\n');
    }
    s.push_str(&format!(
        "{indent}Exported by cellc {} from `{}` ({}).\n",
        env!("CARGO_PKG_VERSION"),
        cell.name,
        source.file
    ));
    s
}

/// Python's name for a shape dimension.
pub(super) fn dim(d: crate::check::Dim) -> &'static str {
    match d {
        crate::check::Dim::H => "H",
        crate::check::Dim::D => "D",
    }
}

/// The class name for a cell: its name in CamelCase.
pub(super) fn class_name(cell: &Cell) -> String {
    let mut out = String::new();
    let mut upper = true;
    for c in cell.name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) { format!("Cell{out}") } else { out }
}
