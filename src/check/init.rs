//! `init` declarations: which parameter, which scheme, and whether the scheme fits its shape.
//!
//! Schemes: a number (every entry), `uniform` / `uniform(s)` (±s/sqrt(fan-in)), `chrono(T)`,
//! `ugi`, `diag(a)` (default law plus a on the diagonal), `orthogonal` / `orthogonal(g)`, and the
//! name of another parameter, `-`-negated or not, to copy its initial values (`init b_i = -b_f`).

use super::flatten::Flat;
use super::{Checker, Init, ParamKind};
use crate::diag::{Diagnostic, Span, did_you_mean};
use crate::syntax::ast::{InitKind, InitValue, Number};

/// The scheme names, for suggestions.
pub const SCHEMES: [&str; 5] = ["uniform", "chrono", "ugi", "diag", "orthogonal"];

impl Checker<'_> {
    /// Applies `init` declarations. With `params_complete` false (an expression failed to resolve,
    /// so some parameters may be missing), an unknown target is not reported.
    pub(super) fn apply_inits(&mut self, flat: &Flat<'_>, params_complete: bool) {
        let mut seen: Vec<(String, Span)> = vec![];
        let mut copies = vec![];
        for fi in &flat.inits {
            let name = &fi.name.name;
            if let Some((_, first)) = seen.iter().find(|(n, _)| n == name) {
                let first = *first;
                self.error(
                    Diagnostic::error("cellc::duplicate", format!("`{name}` is initialised twice"))
                        .label(fi.name.span, "initialised again here")
                        .label(first, "first initialised here"),
                );
                continue;
            }
            seen.push((name.clone(), fi.name.span));
            let Some(p) = self.param_index.get(name).copied() else {
                if params_complete {
                    self.unknown_init_target(fi.name, fi.inherited);
                }
                continue;
            };
            if let Some(init) = self.init_scheme(p, fi.value) {
                if let Init::Copy { param, .. } = init {
                    copies.push((p, param, fi.value.span));
                }
                self.params[p].init = init;
            }
        }
        // A copy must read a parameter that is not itself a copy, so values exist when copied.
        for (p, src, span) in copies {
            if matches!(self.params[src].init, Init::Copy { .. }) {
                let (a, b) = (self.params[p].name.clone(), self.params[src].name.clone());
                self.error(
                    Diagnostic::error("cellc::bad_init", format!("`{a}` copies `{b}`, which is itself a copy"))
                        .label(span, "copies of copies are not allowed")
                        .help(format!("copy the parameter that `{b}` copies instead")),
                );
            }
        }
    }

    fn unknown_init_target(&mut self, ident: &crate::syntax::ast::Ident, inherited: bool) {
        let params: Vec<&str> = self.params.iter().map(|p| p.name.as_str()).collect();
        let help = match did_you_mean(&ident.name, params.iter().copied()) {
            Some(s) => format!("did you mean `{s}`?"),
            None => format!("the parameters are: {}", params.join(", ")),
        };
        if inherited {
            self.diags.push(
                Diagnostic::warning("cellc::unused_init", format!("inherited `init {}` is ignored", ident.name))
                    .label(ident.span, format!("`{}` no longer has a parameter `{}`", self.name, ident.name))
                    .help("the replaced equations no longer use it"),
            );
        } else {
            self.error(
                Diagnostic::error(
                    "cellc::undefined_name",
                    format!("`init {}`: no parameter `{}`", ident.name, ident.name),
                )
                .label(ident.span, "not a parameter of this cell")
                .help(help),
            );
        }
    }

    fn init_scheme(&mut self, p: usize, v: &InitValue) -> Option<Init> {
        let sign = if v.negated { -1.0 } else { 1.0 };
        let (name, args) = match &v.kind {
            InitKind::Number(n) => return Some(Init::Const(sign * n.value)),
            InitKind::Scheme { name, args } => (name, args.as_deref()),
        };
        let kind = self.params[p].kind;
        let pname = self.params[p].name.clone();
        let arity = |want: &[usize]| match args {
            None => want.contains(&0),
            Some(a) => want.contains(&a.len()),
        };
        let arg = |i: usize| args.and_then(|a: &[Number]| a.get(i)).map(|n| n.value);
        let scheme = name.name.as_str();
        let (ok_arity, usage) = match scheme {
            "uniform" => (arity(&[0, 1]), "`uniform` or `uniform(scale)`"),
            "chrono" => (arity(&[1]), "`chrono(T_max)`"),
            "ugi" => (arity(&[0]), "`ugi`"),
            "diag" => (arity(&[1]), "`diag(a)`"),
            "orthogonal" => (arity(&[0, 1]), "`orthogonal` or `orthogonal(gain)`"),
            _ => (true, ""),
        };
        if !ok_arity {
            self.error(
                Diagnostic::error("cellc::bad_init", format!("wrong arguments for `{scheme}`"))
                    .label(v.span, format!("written as {usage}")),
            );
            return None;
        }
        let vector_only = |this: &mut Self, what: &str| {
            if kind.is_matrix() {
                this.error(
                    Diagnostic::error("cellc::bad_init", format!("`{what}` initialises gate biases, not matrices"))
                        .label(v.span, format!("`{pname}` is a weight matrix"))
                        .help("use it on a bias vector such as `b_f`"),
                );
                return false;
            }
            true
        };
        let negated = v.negated;
        match scheme {
            "uniform" => Some(Init::Uniform(arg(0).unwrap_or(1.0))),
            "chrono" => {
                let t_max = arg(0).unwrap_or(0.0);
                if t_max <= 2.0 {
                    self.error(
                        Diagnostic::error("cellc::bad_init", "`chrono(T_max)` needs T_max > 2")
                            .label(v.span, "biases are log(U[1, T_max - 1])")
                            .help("T_max is the longest dependency to expect, in steps, e.g. `chrono(35)`"),
                    );
                    return None;
                }
                vector_only(self, "chrono").then_some(Init::Chrono { t_max, negated })
            }
            "ugi" => vector_only(self, "ugi").then_some(Init::Ugi { negated }),
            "diag" => match kind {
                ParamKind::Matrix { rows, cols } if rows == cols => Some(Init::Diag(sign * arg(0).unwrap_or(0.0))),
                _ => {
                    self.error(
                        Diagnostic::error("cellc::bad_init", "`diag(a)` needs a square weight matrix")
                            .label(v.span, format!("`{pname}` has shape {kind}")),
                    );
                    None
                }
            },
            "orthogonal" => {
                if !kind.is_matrix() {
                    self.error(
                        Diagnostic::error("cellc::bad_init", "`orthogonal` initialises weight matrices")
                            .label(v.span, format!("`{pname}` is a vector")),
                    );
                    return None;
                }
                Some(Init::Orthogonal(sign * arg(0).unwrap_or(1.0)))
            }
            other => self.init_copy(p, other, name.span, v, args.is_some()),
        }
    }

    /// `init b_i = -b_f`: the value of another parameter of the same shape.
    fn init_copy(&mut self, p: usize, other: &str, span: Span, v: &InitValue, has_args: bool) -> Option<Init> {
        let Some(src) = self.param_index.get(other).copied() else {
            let params: Vec<&str> = self.params.iter().map(|q| q.name.as_str()).collect();
            let candidates = SCHEMES.iter().copied().chain(params.iter().copied());
            let help = match did_you_mean(other, candidates) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("the schemes are {}, a number, or the name of another parameter", SCHEMES.join(", ")),
            };
            self.error(
                Diagnostic::error("cellc::bad_init", format!("unknown init scheme `{other}`"))
                    .label(span, "not a scheme or a parameter of this cell")
                    .help(help),
            );
            return None;
        };
        if has_args {
            self.error(
                Diagnostic::error("cellc::bad_init", format!("`{other}` is a parameter, not a scheme"))
                    .label(v.span, "a copied parameter takes no arguments"),
            );
            return None;
        }
        if src == p || self.params[src].kind != self.params[p].kind {
            let (a, b) = (self.params[p].kind, self.params[src].kind);
            self.error(
                Diagnostic::error("cellc::bad_init", format!("`{}` cannot copy `{other}`", self.params[p].name)).label(
                    v.span,
                    if src == p {
                        "a parameter cannot copy itself".to_string()
                    } else {
                        format!("shapes differ: {a} and {b}")
                    },
                ),
            );
            return None;
        }
        Some(Init::Copy { param: src, negated: v.negated })
    }
}
