//! Declarations and name resolution: states, equations, parameters, functions, and the matrix rule.
//!
//! The rule users can predict: a free name starting with an upper-case letter is a weight matrix,
//! any other free name is a parameter vector, and a matrix multiplies the one factor right after
//! its `*` (`a*W*h` is `a * (W h)`; write `W*(r*h)` to apply it to a product).

use super::Dim;
use super::flatten::Flat;
use super::{Checker, Equation, Expr, ExprKind, Init, Named, Param, ParamKind, Shape, Target, reserved};
use crate::diag::{Diagnostic, Span};
use crate::syntax::ast::{self, MulOp, Sign};

/// An expression being resolved: a value, or a bare matrix waiting for its operand.
pub(super) enum Resolved {
    Value(Expr),
    Matrix(usize, Span),
}

impl Checker<'_> {
    pub(super) fn declare_states(&mut self, flat: &Flat<'_>) {
        for ident in &flat.states {
            if let Some(why) = reserved(&ident.name) {
                self.error(
                    Diagnostic::error("cellc::reserved_name", format!("`{}` cannot name a state", ident.name))
                        .label(ident.span, why)
                        .help("state names start with a lower-case letter, like `h` or `c`"),
                );
            } else if let Some(first) = self.states.iter().find(|s| s.name == ident.name) {
                let first = first.span;
                self.error(
                    Diagnostic::error("cellc::duplicate", format!("state `{}` is declared twice", ident.name))
                        .label(ident.span, "declared again here")
                        .label(first, "first declared here"),
                );
            } else {
                self.states.push(Named { name: ident.name.clone(), span: ident.span });
            }
        }
        if flat.states.is_empty() {
            let span = self.name_span;
            self.error(
                Diagnostic::error("cellc::no_state", format!("cell `{}` declares no state", self.name))
                    .label(span, "a recurrent cell needs at least one state vector")
                    .help("declare one, e.g. `state h`, and give it a next-state equation `h' = ...`"),
            );
        }
    }

    pub(super) fn declare_outputs(&mut self, flat: &Flat<'_>) {
        if let [.., second, _] = flat.outputs.as_slice() {
            let d = Diagnostic::error("cellc::duplicate", "the output is declared twice")
                .label(flat.outputs[flat.outputs.len() - 1].span, "declared again here")
                .label(second.span, "first declared here");
            self.error(d);
        }
        if let Some(out) = flat.outputs.last() {
            match self.state_index(&out.name) {
                Some(i) => self.output = i,
                None => {
                    let states: Vec<String> = self.states.iter().map(|s| s.name.clone()).collect();
                    self.error(
                        Diagnostic::error(
                            "cellc::undefined_name",
                            format!("`output {}`: `{}` is not a state", out.name, out.name),
                        )
                        .label(out.span, "the output must be one of the cell's states")
                        .help(format!("the states are: {}", states.join(", "))),
                    );
                }
            }
        }
    }

    pub(super) fn declare_equations(&mut self, flat: &Flat<'_>) {
        for fe in &flat.equations {
            let eq = fe.eq;
            let name = &eq.target.name;
            let key = (name.clone(), eq.primed);
            if let Some(&first) = self.equation_index.get(&key) {
                let first = self.equations[first].target_span;
                let shown = if eq.primed { format!("{name}'") } else { name.clone() };
                self.error(
                    Diagnostic::error("cellc::duplicate", format!("`{shown}` is defined twice"))
                        .label(eq.target.span, "defined again here")
                        .label(first, "first defined here")
                        .help("each value has exactly one equation"),
                );
                continue;
            }
            let target = if eq.primed {
                match self.state_index(name) {
                    Some(s) => Target::Next(s),
                    None => {
                        self.error(
                            Diagnostic::error(
                                "cellc::undeclared_state",
                                format!("next-state equation for `{name}`, which is not a state"),
                            )
                            .label(eq.target.span, "`'` marks the next value of a state")
                            .help(format!("declare it with `state {name}`, or drop the `'` to define a local value")),
                        );
                        continue;
                    }
                }
            } else {
                if let Some(why) = reserved(name) {
                    self.error(
                        Diagnostic::error("cellc::reserved_name", format!("`{name}` cannot be defined by an equation"))
                            .label(eq.target.span, why)
                            .help("equation names start with a lower-case letter and are not `x` or a function name"),
                    );
                    continue;
                }
                if let Some(s) = self.state_index(name) {
                    let decl = self.states[s].span;
                    self.error(
                        Diagnostic::error(
                            "cellc::state_without_prime",
                            format!("`{name}` is a state; its next value is written `{name}'`"),
                        )
                        .label(eq.target.span, "assigns to a state")
                        .label(decl, "declared as a state here")
                        .help(format!("write `{name}' = ...`")),
                    );
                    continue;
                }
                Target::Local
            };
            self.equation_index.insert(key, self.equations.len());
            self.equations.push(Equation {
                target,
                name: name.clone(),
                expr: Expr { kind: ExprKind::Const(0.0), span: eq.rhs.span, shape: Shape::Scalar },
                span: fe.stmt_span,
                target_span: eq.target.span,
            });
        }
        for (s, state) in self.states.clone().iter().enumerate() {
            // `h = ...` for a state was reported above; saying `h'` is missing too would be noise.
            let written_unprimed = flat.equations.iter().any(|fe| !fe.eq.primed && fe.eq.target.name == state.name);
            if !written_unprimed && !self.equations.iter().any(|e| e.target == Target::Next(s)) {
                self.error(
                    Diagnostic::error(
                        "cellc::missing_next_state",
                        format!("state `{}` has no next-state equation", state.name),
                    )
                    .label(state.span, "declared here")
                    .help(format!("add `{}' = ...`", state.name)),
                );
            }
        }
    }

    pub(super) fn resolve_equations(&mut self, flat: &Flat<'_>) {
        for fe in &flat.equations {
            let key = (fe.eq.target.name.clone(), fe.eq.primed);
            let Some(&i) = self.equation_index.get(&key) else { continue };
            if self.equations[i].span != fe.stmt_span {
                continue; // a duplicate, already reported
            }
            if let Some(expr) = self.resolve_value(&fe.eq.rhs) {
                self.equations[i].expr = expr;
            }
        }
    }

    /// Resolves an expression that must be a vector or number (not a bare matrix).
    pub(super) fn resolve_value(&mut self, e: &ast::Expr) -> Option<Expr> {
        match self.resolve(e)? {
            Resolved::Value(v) => Some(v),
            Resolved::Matrix(p, span) => {
                self.matrix_misused(p, span, e.span);
                None
            }
        }
    }

    fn resolve(&mut self, e: &ast::Expr) -> Option<Resolved> {
        let value = |kind| Some(Resolved::Value(Expr { kind, span: e.span, shape: Shape::Scalar }));
        match &e.kind {
            ast::ExprKind::Number(n) => value(ExprKind::Const(n.value)),
            ast::ExprKind::Var { name, primed } => self.resolve_name(name, *primed, e.span),
            ast::ExprKind::Paren(inner) => self.resolve(inner),
            ast::ExprKind::Call { func, args } => value(self.resolve_call(func, args, e.span)?),
            ast::ExprKind::Neg(inner) => {
                let inner = self.resolve_value(inner)?;
                value(ExprKind::Neg(Box::new(inner)))
            }
            ast::ExprKind::Sum(terms) => {
                let mut out = Vec::with_capacity(terms.len());
                let mut ok = true;
                for (sign, t) in terms {
                    match self.resolve_value(t) {
                        Some(v) => out.push((*sign, v)),
                        None => ok = false,
                    }
                }
                if !ok {
                    return None;
                }
                // One term: `+a` is `a` and `-a` is a negation, however it was written.
                if let [(sign, _)] = out.as_slice() {
                    let sign = *sign;
                    let (_, v) = out.pop().expect("one term");
                    return match sign {
                        Sign::Plus => Some(Resolved::Value(v)),
                        Sign::Minus => value(ExprKind::Neg(Box::new(v))),
                    };
                }
                value(ExprKind::Sum(out))
            }
            ast::ExprKind::Product(factors) => self.resolve_product(factors, e.span),
        }
    }

    fn resolve_name(&mut self, name: &str, primed: bool, span: Span) -> Option<Resolved> {
        let kind = if primed {
            match self.state_index(name) {
                Some(s) => ExprKind::Next(s),
                None => {
                    let help = if self.equation_index.contains_key(&(name.to_string(), false)) {
                        format!("`{name}` is a local value; refer to it as `{name}` (only states have a next value)")
                    } else {
                        format!("declare `{name}` as a state, or drop the `'`")
                    };
                    self.error(
                        Diagnostic::error("cellc::undefined_name", format!("undefined name `{name}'`"))
                            .label(span, format!("`{name}` is not a state, so `{name}'` means nothing"))
                            .help(help),
                    );
                    return None;
                }
            }
        } else if name == "x" {
            ExprKind::Input
        } else if let Some(s) = self.state_index(name) {
            ExprKind::State(s)
        } else if let Some(&i) = self.equation_index.get(&(name.to_string(), false)) {
            ExprKind::Local(i)
        } else if crate::syntax::is_builtin(name) {
            self.error(
                Diagnostic::error("cellc::function_as_value", format!("`{name}` is a function, not a value"))
                    .label(span, "used without an argument")
                    .help(format!("call it: `{name}(...)`")),
            );
            return None;
        } else {
            let p = self.param(name, span);
            if self.params[p].kind.is_matrix() {
                return Some(Resolved::Matrix(p, span));
            }
            ExprKind::Param(p)
        };
        Some(Resolved::Value(Expr { kind, span, shape: Shape::Scalar }))
    }

    /// The parameter called `name`, created at its first use. Shapes are filled in later.
    fn param(&mut self, name: &str, span: Span) -> usize {
        if let Some(&p) = self.param_index.get(name) {
            return p;
        }
        let kind = if name.starts_with(|c: char| c.is_ascii_uppercase()) {
            ParamKind::Matrix { rows: Dim::H, cols: Dim::H }
        } else {
            ParamKind::Vector { len: Dim::H }
        };
        self.params.push(Param { name: name.to_string(), kind, init: Init::Default, span });
        self.param_index.insert(name.to_string(), self.params.len() - 1);
        self.params.len() - 1
    }

    /// Applies the matrix rule to a chain `f0 * f1 / f2 ...`.
    fn resolve_product(&mut self, factors: &[(MulOp, ast::Expr)], span: Span) -> Option<Resolved> {
        let resolved: Vec<(MulOp, Option<Resolved>, Span)> =
            factors.iter().map(|(op, f)| (*op, self.resolve(f), f.span)).collect();
        if resolved.iter().any(|(_, r, _)| r.is_none()) {
            return None;
        }
        let mut out: Vec<(MulOp, Expr)> = vec![];
        let mut i = 0;
        let mut ok = true;
        while i < resolved.len() {
            let (op, r, _) = &resolved[i];
            match r {
                Some(Resolved::Value(v)) => {
                    out.push((*op, v.clone()));
                    i += 1;
                }
                Some(Resolved::Matrix(p, mspan)) => {
                    // Matrices stack to the right: `W*U*v` is `W (U v)`.
                    let mut mats = vec![(*p, *mspan)];
                    let mut j = i + 1;
                    loop {
                        match resolved.get(j) {
                            Some((MulOp::Mul, Some(Resolved::Matrix(q, qspan)), _)) => {
                                mats.push((*q, *qspan));
                                j += 1;
                            }
                            Some((MulOp::Mul, Some(Resolved::Value(v)), _)) => {
                                let mut acc = v.clone();
                                for (m, mspan) in mats.iter().rev() {
                                    let s = mspan.to(acc.span);
                                    acc = Expr {
                                        kind: ExprKind::MatVec(*m, Box::new(acc)),
                                        span: s,
                                        shape: Shape::Scalar,
                                    };
                                }
                                out.push((*op, acc));
                                i = j + 1;
                                break;
                            }
                            _ => {
                                let (m, mspan) = *mats.last().expect("at least one matrix");
                                self.matrix_dangling(m, mspan);
                                ok = false;
                                i = resolved.len();
                                break;
                            }
                        }
                    }
                }
                None => unreachable!("checked above"),
            }
        }
        if !ok {
            return None;
        }
        if out.len() == 1 {
            return out.pop().map(|(_, v)| Resolved::Value(v));
        }
        Some(Resolved::Value(Expr { kind: ExprKind::Product(out), span, shape: Shape::Scalar }))
    }

    fn matrix_misused(&mut self, p: usize, span: Span, context: Span) {
        let name = self.params[p].name.clone();
        let mut d =
            Diagnostic::error("cellc::matrix_elementwise", format!("weight matrix `{name}` is used element-wise"))
                .label(span, "a matrix can only multiply a vector, as `M*v`");
        if context != span {
            d = d.label(context, "in this expression");
        }
        self.error(d.help(format!(
            "names starting with an upper-case letter are weight matrices; write `{name}*v`, or use a lower-case name for a vector"
        )));
    }

    fn matrix_dangling(&mut self, p: usize, span: Span) {
        let name = self.params[p].name.clone();
        self.error(
            Diagnostic::error("cellc::matrix_elementwise", format!("weight matrix `{name}` has nothing to multiply"))
                .label(span, "a matrix must be followed by `*` and the vector it multiplies")
                .help(format!("write `{name}*h`, or use a lower-case name for an element-wise vector")),
        );
    }
}

impl Checker<'_> {
    /// Warns when a vector parameter's name is one edit away from an equation or state: a free
    /// name silently becomes a parameter, so `tahn_r` for `tanh_r` would otherwise go unnoticed.
    pub(super) fn warn_parameter_typos(&mut self) {
        let defined: Vec<(String, Span)> = self
            .equations
            .iter()
            .filter(|e| e.target == Target::Local)
            .map(|e| (e.name.clone(), e.target_span))
            .chain(self.states.iter().map(|s| (s.name.clone(), s.span)))
            .collect();
        for p in &self.params {
            if p.kind.is_matrix() || p.name.chars().count() < 3 {
                continue;
            }
            let close =
                defined.iter().find(|(d, _)| d.chars().count() >= 3 && crate::diag::edit_distance(d, &p.name) == 1);
            if let Some((d, span)) = close {
                self.diags.push(
                    Diagnostic::warning("cellc::maybe_typo", format!("`{}` is taken to be a parameter", p.name))
                        .label(p.span, "no equation defines this name, so it is a learned vector")
                        .label(*span, format!("`{d}` is defined here"))
                        .help(format!("did you mean `{d}`?")),
                );
            }
        }
    }
}
