//! The one printer: AST to canonical `.cell` text.
//!
//! `cellc fmt`, `cellc grad`, the REPL's `:show` and the search's mutated cells all print through
//! here (later stages build an AST and call [`cell`]). Canonical form: four-space indent, spaces
//! around `+ - =`, none around `* /`, one blank line between cells, comments and blank-line
//! paragraphs kept, parentheses kept where written and added where precedence needs them.

use super::ast::*;

/// A whole file.
pub fn file(f: &File) -> String {
    let mut out = String::new();
    for (i, c) in f.cells.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&cell(c));
    }
    let trailing = trim_blank_ends(&f.trailing_comments);
    if !trailing.is_empty() {
        if !out.is_empty() {
            out.push('\n');
        }
        for c in trailing {
            out.push_str(c);
            out.push('\n');
        }
    }
    out
}

/// One cell, ending with a newline.
pub fn cell(c: &CellDef) -> String {
    let mut out = String::new();
    // Leading comments keep one blank line after them if they had one (a file header).
    let comments = &c.comments[c.comments.iter().position(|l| !l.is_empty()).unwrap_or(c.comments.len())..];
    for (i, line) in comments.iter().enumerate() {
        if !(line.is_empty() && comments.get(i + 1).is_some_and(|l| l.is_empty())) {
            out.push_str(line);
            out.push('\n');
        }
    }
    for line in &c.doc {
        out.push_str(if line.is_empty() { "///".to_string() } else { format!("/// {line}") }.as_str());
        out.push('\n');
    }
    out.push_str("cell ");
    out.push_str(&c.name.name);
    if let Some(base) = &c.base {
        out.push_str(" = ");
        out.push_str(&base.name);
        out.push_str(" with");
    }
    let end_comments = trim_blank_ends(&c.end_comments);
    if c.body.is_empty() && end_comments.is_empty() {
        out.push_str(" {}\n");
        return out;
    }
    out.push_str(" {\n");
    for (i, s) in c.body.iter().enumerate() {
        if i > 0 && s.blank_before {
            out.push('\n');
        }
        for line in &s.comments {
            if !line.is_empty() {
                out.push_str("    ");
                out.push_str(line);
            }
            out.push('\n');
        }
        out.push_str("    ");
        out.push_str(&wrapped_stmt(s));
        if let Some(t) = &s.trailing_comment {
            out.push_str("  ");
            out.push_str(t);
        }
        out.push('\n');
    }
    if c.end_comments.first().is_some_and(|l| l.is_empty()) && !c.body.is_empty() && !end_comments.is_empty() {
        out.push('\n');
    }
    for line in end_comments {
        if !line.is_empty() {
            out.push_str("    ");
            out.push_str(line);
        }
        out.push('\n');
    }
    out.push_str("}\n");
    out
}

fn trim_blank_ends(lines: &[String]) -> &[String] {
    let start = lines.iter().position(|l| !l.is_empty()).unwrap_or(lines.len());
    let end = lines.iter().rposition(|l| !l.is_empty()).map_or(start, |e| e + 1);
    &lines[start..end]
}

/// Longest line the formatter writes before it breaks a long sum across lines.
pub const MAX_WIDTH: usize = 100;

/// A statement, with an equation whose line would pass [`MAX_WIDTH`] broken before the `+` and
/// `-` of its top-level sum, continuation lines indented twice.
fn wrapped_stmt(s: &Stmt) -> String {
    let one_line = stmt(s);
    let StmtKind::Equation(eq) = &s.kind else { return one_line };
    let ExprKind::Sum(terms) = &eq.rhs.kind else { return one_line };
    if 4 + one_line.len() <= MAX_WIDTH || terms.len() < 2 {
        return one_line;
    }
    let mut out = format!("{}{} = ", eq.target.name, if eq.primed { "'" } else { "" });
    for (i, (sign, t)) in terms.iter().enumerate() {
        match (i, sign) {
            (0, Sign::Plus) => {}
            (0, Sign::Minus) => out.push('-'),
            (_, Sign::Plus) => out.push_str("\n        + "),
            (_, Sign::Minus) => out.push_str("\n        - "),
        }
        let need = if i == 0 && *sign == Sign::Minus { Prec::Product.max_with(t) } else { Prec::Product };
        write_child(&mut out, t, need);
    }
    out
}

/// One statement, without comments or indentation.
pub fn stmt(s: &Stmt) -> String {
    match &s.kind {
        StmtKind::State(names) => {
            format!("state {}", names.iter().map(|n| n.name.as_str()).collect::<Vec<_>>().join(", "))
        }
        StmtKind::Output(n) => format!("output {}", n.name),
        StmtKind::Init(n, v) => format!("init {} = {}", n.name, init_value(v)),
        StmtKind::Equation(eq) => {
            format!("{}{} = {}", eq.target.name, if eq.primed { "'" } else { "" }, expr(&eq.rhs))
        }
    }
}

fn init_value(v: &InitValue) -> String {
    let sign = if v.negated { "-" } else { "" };
    match &v.kind {
        InitKind::Number(n) => format!("{sign}{}", number(n)),
        InitKind::Scheme { name, args: None } => format!("{sign}{}", name.name),
        InitKind::Scheme { name, args: Some(args) } => {
            let args: Vec<String> = args.iter().map(number).collect();
            format!("{sign}{}({})", name.name, args.join(", "))
        }
    }
}

fn number(n: &Number) -> String {
    if n.text.is_empty() { format_number(n.value) } else { n.text.clone() }
}

/// Shortest text that reads back as the same f64: `1`, `0.5`, `1e-7`.
pub fn format_number(v: f64) -> String {
    if v == v.trunc() && v.abs() < 1e15 {
        return format!("{}", v as i64);
    }
    let plain = format!("{v}");
    let sci = format!("{v:e}");
    if sci.len() < plain.len() { sci } else { plain }
}

/// Binding strength, loosest first: what a child must reach to print without parentheses.
#[derive(Clone, Copy, PartialEq, PartialOrd)]
enum Prec {
    Sum,
    Product,
    Prefix,
    Atom,
}

fn prec(e: &Expr) -> Prec {
    match &e.kind {
        ExprKind::Sum(_) => Prec::Sum,
        ExprKind::Product(_) => Prec::Product,
        ExprKind::Neg(_) => Prec::Prefix,
        // A negative literal prints with a minus sign, so it binds like a negation.
        ExprKind::Number(n) if number(n).starts_with('-') => Prec::Prefix,
        _ => Prec::Atom,
    }
}

/// One expression, with the fewest parentheses that keep its meaning (plus those written).
pub fn expr(e: &Expr) -> String {
    let mut out = String::new();
    write_expr(&mut out, e);
    out
}

fn write_expr(out: &mut String, e: &Expr) {
    match &e.kind {
        ExprKind::Number(n) => out.push_str(&number(n)),
        ExprKind::Var { name, primed } => {
            out.push_str(name);
            if *primed {
                out.push('\'');
            }
        }
        ExprKind::Call { func, args } => {
            out.push_str(&func.name);
            out.push('(');
            for (i, arg) in args.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_expr(out, arg);
            }
            out.push(')');
        }
        ExprKind::Paren(inner) => {
            out.push('(');
            write_expr(out, inner);
            out.push(')');
        }
        ExprKind::Neg(inner) => {
            out.push('-');
            write_child(out, inner, Prec::Atom);
        }
        ExprKind::Sum(terms) => {
            for (i, (sign, t)) in terms.iter().enumerate() {
                match (i, sign) {
                    (0, Sign::Plus) => {}
                    (0, Sign::Minus) => out.push('-'),
                    (_, Sign::Plus) => out.push_str(" + "),
                    (_, Sign::Minus) => out.push_str(" - "),
                }
                // `-(-a)`: a leading minus before a term that itself starts with one needs parentheses.
                let need = if i == 0 && *sign == Sign::Minus { Prec::Product.max_with(t) } else { Prec::Product };
                write_child(out, t, need);
            }
        }
        ExprKind::Product(factors) => {
            for (i, (op, f)) in factors.iter().enumerate() {
                if i > 0 {
                    out.push(if *op == MulOp::Div { '/' } else { '*' });
                }
                // Products chain to the left, so a product on the right needs parentheses.
                let need = if i == 0 { Prec::Product } else { Prec::Prefix };
                write_child(out, f, need);
            }
        }
    }
}

impl Prec {
    /// A leading minus must not touch a child that also starts with a minus sign.
    fn max_with(self, child: &Expr) -> Prec {
        if prec(child) == Prec::Prefix { Prec::Atom } else { self }
    }
}

fn write_child(out: &mut String, child: &Expr, need: Prec) {
    if prec(child) < need {
        out.push('(');
        write_expr(out, child);
        out.push(')');
    } else {
        write_expr(out, child);
    }
}
