//! Calls of built-in functions: which function a name means, how many arguments it takes, and a
//! regulariser's rate (a number from 0 up to, not including, 1).

use super::{Checker, ExprKind, Func, Reduction, Stochastic};
use crate::diag::{Diagnostic, Span, did_you_mean};
use crate::syntax::ast;

impl Checker<'_> {
    /// The checked form of `func(args)`, or `None` after reporting why there is none.
    pub(super) fn resolve_call(&mut self, func: &ast::Ident, args: &[ast::Expr], span: Span) -> Option<ExprKind> {
        if let Some(kind) = Stochastic::from_name(&func.name) {
            return self.resolve_stochastic(kind, func, args, span);
        }
        let reduction = Reduction::from_name(&func.name);
        let f = if reduction.is_none() { Some(self.resolve_func(func)?) } else { None };
        if !self.arity_ok(func, args.len(), 1, &format!("{}(v)", func.name), span) {
            return None;
        }
        let arg = Box::new(self.resolve_value(&args[0])?);
        Some(match (reduction, f) {
            (Some(r), _) => ExprKind::Reduce(r, arg),
            (None, f) => ExprKind::Call(f?, arg),
        })
    }

    fn resolve_stochastic(
        &mut self,
        kind: Stochastic,
        func: &ast::Ident,
        args: &[ast::Expr],
        span: Span,
    ) -> Option<ExprKind> {
        if !self.arity_ok(func, args.len(), kind.arity(), kind.usage(), span) {
            return None;
        }
        let (values, rate) = args.split_at(args.len() - 1);
        let rate = self.rate(kind, &rate[0]);
        let values: Vec<_> = values.iter().map(|a| self.resolve_value(a)).collect();
        let values = values.into_iter().collect::<Option<Vec<_>>>()?;
        // Numbered once the evaluation order is known (`Checker::finish`).
        Some(ExprKind::Stochastic { kind, rate: rate?, mask: usize::MAX, args: values })
    }

    /// The rate argument: a number literal from 0 up to (not including) 1.
    fn rate(&mut self, kind: Stochastic, e: &ast::Expr) -> Option<f64> {
        let value = match &e.unparen().kind {
            ast::ExprKind::Number(n) => Some(n.value),
            ast::ExprKind::Neg(inner) => match &inner.unparen().kind {
                ast::ExprKind::Number(n) => Some(-n.value),
                _ => None,
            },
            _ => None,
        };
        let label = match value {
            Some(p) if (0.0..1.0).contains(&p) => return Some(p),
            Some(_) => "out of range",
            None => "not a number",
        };
        self.error(
            Diagnostic::error("cellc::rate", format!("the rate of `{}` must be a number from 0 up to 1", kind.name()))
                .label(e.span, label)
                .help(format!("write the probability as a number below 1, like `{}`", kind.usage())),
        );
        None
    }

    /// Whether a call has the number of arguments its function takes (reported if not).
    fn arity_ok(&mut self, func: &ast::Ident, given: usize, wanted: usize, usage: &str, span: Span) -> bool {
        if given == wanted {
            return true;
        }
        let plural = |n: usize| if n == 1 { "argument" } else { "arguments" };
        self.error(
            Diagnostic::error(
                "cellc::call_arguments",
                format!("`{}` takes {wanted} {}, not {given}", func.name, plural(wanted)),
            )
            .label(span, format!("{given} {} given", plural(given)))
            .help(format!("call it as `{usage}`")),
        );
        false
    }

    fn resolve_func(&mut self, func: &ast::Ident) -> Option<Func> {
        if let Some(f) = Func::from_name(&func.name) {
            return Some(f);
        }
        let mut d = Diagnostic::error("cellc::unknown_function", format!("unknown function `{}`", func.name))
            .label(func.span, "not a built-in function");
        let list = crate::syntax::builtin_names().collect::<Vec<_>>().join(", ");
        d = d.help(if func.name.starts_with(|c: char| c.is_ascii_uppercase()) {
            format!("weight matrices multiply with `*`: write `{}*(...)`", func.name)
        } else if let Some(s) = did_you_mean(&func.name, crate::syntax::builtin_names()) {
            format!("did you mean `{s}`? The functions are: {list}")
        } else {
            format!("the functions are: {list}")
        });
        self.error(d);
        None
    }
}
