//! Equation dependencies: evaluation order, cycles (shown edge by edge), unused equations.

use super::{Checker, Expr, ExprKind, Target};
use crate::diag::{Diagnostic, Span};

/// The equations `e` reads, each with the span of the reference.
pub(super) fn reads(e: &Expr, next_of: &dyn Fn(usize) -> Option<usize>, out: &mut Vec<(usize, Span)>) {
    match &e.kind {
        ExprKind::Local(i) => out.push((*i, e.span)),
        ExprKind::Next(s) => {
            if let Some(i) = next_of(*s) {
                out.push((i, e.span));
            }
        }
        ExprKind::Const(_) | ExprKind::Input | ExprKind::State(_) | ExprKind::Param(_) => {}
        ExprKind::Call(_, a) | ExprKind::Reduce(_, a) | ExprKind::Neg(a) | ExprKind::MatVec(_, a) => {
            reads(a, next_of, out)
        }
        ExprKind::Sum(terms) => terms.iter().for_each(|(_, t)| reads(t, next_of, out)),
        ExprKind::Stochastic { args, .. } => args.iter().for_each(|a| reads(a, next_of, out)),
        ExprKind::Product(factors) => factors.iter().for_each(|(_, f)| reads(f, next_of, out)),
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Mark {
    New,
    Active,
    Done,
}

impl Checker<'_> {
    fn dependency_lists(&self) -> Vec<Vec<(usize, Span)>> {
        let next_of = |s: usize| self.equations.iter().position(|e| e.target == Target::Next(s));
        self.equations
            .iter()
            .map(|eq| {
                let mut out = vec![];
                reads(&eq.expr, &next_of, &mut out);
                out
            })
            .collect()
    }

    /// Orders equations so each follows what it reads; reports every cycle.
    pub(super) fn order_equations(&mut self) {
        let deps = self.dependency_lists();
        let mut marks = vec![Mark::New; self.equations.len()];
        let mut order = vec![];
        for root in 0..self.equations.len() {
            if marks[root] != Mark::New {
                continue;
            }
            // Iterative depth-first search: the path holds (equation, next dependency to visit).
            let mut path: Vec<(usize, usize)> = vec![(root, 0)];
            marks[root] = Mark::Active;
            while let Some(&mut (node, ref mut k)) = path.last_mut() {
                if let Some(&(dep, _)) = deps[node].get(*k) {
                    *k += 1;
                    match marks[dep] {
                        Mark::New => {
                            marks[dep] = Mark::Active;
                            path.push((dep, 0));
                        }
                        Mark::Active => {
                            let from = path.iter().position(|(n, _)| *n == dep).expect("active node is on the path");
                            let cycle: Vec<usize> = path[from..].iter().map(|(n, _)| *n).collect();
                            self.report_cycle(&cycle, &deps);
                        }
                        Mark::Done => {}
                    }
                } else {
                    marks[node] = Mark::Done;
                    order.push(node);
                    path.pop();
                }
            }
        }
        self.order = order;
    }

    fn report_cycle(&mut self, cycle: &[usize], deps: &[Vec<(usize, Span)>]) {
        let names: Vec<String> = cycle.iter().map(|&i| self.equations[i].display_name()).collect();
        let mut shown = names.clone();
        shown.push(names[0].clone());
        let mut d = Diagnostic::error("cellc::cycle", format!("dependency cycle: {}", shown.join(" → ")));
        for (k, &i) in cycle.iter().enumerate() {
            let next = cycle[(k + 1) % cycle.len()];
            let span = deps[i].iter().find(|(d, _)| *d == next).map(|(_, s)| *s).expect("edge exists");
            d = d.label(span, format!("`{}` reads `{}` here", names[k], names[(k + 1) % names.len()]));
        }
        let help = if cycle.len() == 1 {
            "an equation cannot read its own value; to use the previous step's value, make it a state".to_string()
        } else {
            "values in one step must be computable in some order; break the cycle, or carry one value as a state"
                .to_string()
        };
        self.error(d.help(help));
    }

    /// Warns about local equations that no next-state equation reads, directly or indirectly.
    pub(super) fn warn_unused(&mut self) {
        let deps = self.dependency_lists();
        let mut used = vec![false; self.equations.len()];
        let mut stack: Vec<usize> =
            (0..self.equations.len()).filter(|&i| matches!(self.equations[i].target, Target::Next(_))).collect();
        while let Some(i) = stack.pop() {
            if !used[i] {
                used[i] = true;
                stack.extend(deps[i].iter().map(|(d, _)| *d));
            }
        }
        for (i, eq) in self.equations.iter().enumerate() {
            if !used[i] {
                self.diags.push(
                    Diagnostic::warning("cellc::unused", format!("equation `{}` is never used", eq.name))
                        .label(eq.target_span, "no next-state equation reads this value")
                        .help("remove it, or use it in the cell"),
                );
            }
        }
    }
}
