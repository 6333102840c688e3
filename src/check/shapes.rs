//! Shape inference: every vector has size H or D; matrices get [rows, cols] from their uses.
//!
//! States are H, the input `x` is D, numbers broadcast, and so does a reduction (`mean(v)`: one
//! number per example) along any vector it meets. Combining an H-vector and a D-vector
//! element-wise is allowed and ties D to H (reported by `cellc check --verbose`). A weight matrix
//! has one shape, so using it on (or producing) vectors of different sizes is a conflict, unless
//! the cell ties D to H anyway.

use super::{Checker, Dim, Expr, ExprKind, ParamKind, Shape, Target};
use crate::diag::{Diagnostic, Span};

/// A shape during inference: a scalar, one number per example, a known size, or a variable.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Sv {
    Scalar,
    Row,
    Dim(Dim),
    Var(usize),
}

struct MatUse {
    rows: Sv,
    cols: Sv,
    span: Span,
}

#[derive(Default)]
struct Infer {
    parent: Vec<usize>,
    bound: Vec<Option<Dim>>,
    forced: Option<Span>,
    /// Shape variable of each vector parameter.
    param_var: Vec<Option<usize>>,
    matrix_uses: Vec<Vec<MatUse>>,
    /// Shape of each equation's value, once inferred.
    equation_shape: Vec<Sv>,
    /// Post-order shapes of every node, per equation, written back in a second walk.
    node_shapes: Vec<Vec<Sv>>,
    errors: Vec<Diagnostic>,
}

impl Infer {
    fn var(&mut self) -> Sv {
        self.parent.push(self.parent.len());
        self.bound.push(None);
        Sv::Var(self.parent.len() - 1)
    }

    fn find(&mut self, mut v: usize) -> usize {
        while self.parent[v] != v {
            self.parent[v] = self.parent[self.parent[v]];
            v = self.parent[v];
        }
        v
    }

    fn value(&mut self, s: Sv) -> Sv {
        match s {
            Sv::Var(v) => {
                let r = self.find(v);
                self.bound[r].map_or(Sv::Var(r), Sv::Dim)
            }
            other => other,
        }
    }

    /// Element-wise combination: scalars and rows broadcast, variables bind, H with D ties D to H.
    fn unify(&mut self, a: Sv, b: Sv, span: Span) -> Sv {
        match (self.value(a), self.value(b)) {
            (Sv::Scalar, x) | (x, Sv::Scalar) => x,
            (Sv::Row, x) | (x, Sv::Row) => x,
            (Sv::Var(r), Sv::Var(s)) => {
                self.parent[r] = s;
                Sv::Var(s)
            }
            (Sv::Var(r), Sv::Dim(d)) | (Sv::Dim(d), Sv::Var(r)) => {
                self.bound[r] = Some(d);
                Sv::Dim(d)
            }
            (Sv::Dim(d), Sv::Dim(e)) => {
                if d != e {
                    self.forced.get_or_insert(span);
                    Sv::Dim(Dim::H)
                } else {
                    Sv::Dim(d)
                }
            }
        }
    }

    fn expr(&mut self, e: &Expr, names: &[String], shapes: &mut Vec<Sv>) -> Sv {
        let s = match &e.kind {
            ExprKind::Const(_) => Sv::Scalar,
            ExprKind::Input => Sv::Dim(Dim::D),
            ExprKind::State(_) | ExprKind::Next(_) => Sv::Dim(Dim::H),
            ExprKind::Local(i) => self.equation_shape[*i],
            ExprKind::Param(p) => match self.param_var[*p] {
                Some(v) => Sv::Var(v),
                None => {
                    let v = self.var();
                    if let Sv::Var(id) = v {
                        self.param_var[*p] = Some(id);
                    }
                    v
                }
            },
            ExprKind::Call(_, a) | ExprKind::Neg(a) => self.expr(a, names, shapes),
            ExprKind::Reduce(r, a) => {
                let s = self.expr(a, names, shapes);
                if matches!(self.value(s), Sv::Scalar | Sv::Row) {
                    self.errors.push(
                        Diagnostic::error("cellc::shape_conflict", format!("`{}` of a number", r.name()))
                            .label(a.span, "this is already one number per example, not a vector")
                            .help(format!(
                                "`{}` reduces a vector (a state, `x`, a vector parameter) to one number",
                                r.name()
                            )),
                    );
                }
                Sv::Row
            }
            ExprKind::Sum(terms) => {
                let mut acc = Sv::Scalar;
                for (_, t) in terms {
                    let s = self.expr(t, names, shapes);
                    acc = self.unify(acc, s, e.span);
                }
                acc
            }
            ExprKind::Product(factors) => {
                let mut acc = Sv::Scalar;
                for (_, f) in factors {
                    let s = self.expr(f, names, shapes);
                    acc = self.unify(acc, s, e.span);
                }
                acc
            }
            ExprKind::Stochastic { kind, args, .. } => {
                let mut acc = Sv::Scalar;
                for a in args {
                    let s = self.expr(a, names, shapes);
                    acc = self.unify(acc, s, e.span);
                }
                if matches!(self.value(acc), Sv::Scalar | Sv::Row) {
                    self.errors.push(
                        Diagnostic::error("cellc::shape_conflict", format!("`{}` of a number", kind.name()))
                            .label(e.span, "this is one number per example, not a vector")
                            .help(format!(
                                "`{}` draws one mask entry per vector entry: apply it to a state, `x` or a value of them",
                                kind.name()
                            )),
                    );
                }
                acc
            }
            ExprKind::MatVec(p, v) => {
                let cols = self.expr(v, names, shapes);
                if matches!(self.value(cols), Sv::Scalar | Sv::Row) {
                    self.errors.push(
                        Diagnostic::error(
                            "cellc::shape_conflict",
                            format!("weight matrix `{}` multiplies a number", names[*p]),
                        )
                        .label(v.span, "this is a number, not a vector")
                        .help("a matrix maps a vector to a vector; scale with a vector parameter instead"),
                    );
                }
                let rows = self.var();
                self.matrix_uses[*p].push(MatUse { rows, cols, span: e.span });
                rows
            }
        };
        shapes.push(s);
        s
    }

    /// The final shape of an inference shape: unbound variables are H; with D tied to H, all is H.
    fn resolve(&mut self, s: Sv) -> Shape {
        match self.value(s) {
            Sv::Scalar => Shape::Scalar,
            Sv::Row => Shape::Row,
            Sv::Dim(d) if self.forced.is_none() => Shape::Vector(d),
            _ => Shape::Vector(Dim::H),
        }
    }

    /// A matrix has one shape: a use whose size is still free (inside a reduction, whose result
    /// does not tie its argument to anything) takes the size another use of the matrix has.
    /// Binding one size can free another matrix's, so this repeats until nothing changes (the
    /// result does not depend on the order of the parameters).
    fn tie_matrix_uses(&mut self) {
        while self.tie_matrix_uses_once() {}
    }

    /// One pass of [`Infer::tie_matrix_uses`]: whether it bound anything.
    fn tie_matrix_uses_once(&mut self) -> bool {
        let mut changed = false;
        for p in 0..self.matrix_uses.len() {
            for rows in [true, false] {
                let side = |u: &MatUse| if rows { u.rows } else { u.cols };
                let sides: Vec<Sv> = self.matrix_uses[p].iter().map(side).collect();
                let Some(d) = sides.iter().find_map(|&s| match self.value(s) {
                    Sv::Dim(d) => Some(d),
                    _ => None,
                }) else {
                    continue;
                };
                for s in sides {
                    if let Sv::Var(r) = self.value(s) {
                        self.bound[r] = Some(d);
                        changed = true;
                    }
                }
            }
        }
        changed
    }

    fn dim(&mut self, s: Sv) -> Dim {
        match self.resolve(s) {
            Shape::Vector(d) => d,
            Shape::Scalar | Shape::Row => Dim::H,
        }
    }
}

fn write_back(e: &mut Expr, shapes: &[Shape], k: &mut usize) {
    match &mut e.kind {
        ExprKind::Call(_, a) | ExprKind::Reduce(_, a) | ExprKind::Neg(a) | ExprKind::MatVec(_, a) => {
            write_back(a, shapes, k)
        }
        ExprKind::Sum(terms) => terms.iter_mut().for_each(|(_, t)| write_back(t, shapes, k)),
        ExprKind::Product(factors) => factors.iter_mut().for_each(|(_, f)| write_back(f, shapes, k)),
        ExprKind::Stochastic { args, .. } => args.iter_mut().for_each(|a| write_back(a, shapes, k)),
        _ => {}
    }
    e.shape = shapes[*k];
    *k += 1;
}

fn size_word(d: Dim) -> &'static str {
    match d {
        Dim::H => "an H-vector",
        Dim::D => "a D-vector",
    }
}

impl Checker<'_> {
    pub(super) fn infer_shapes(&mut self) {
        let names: Vec<String> = self.params.iter().map(|p| p.name.clone()).collect();
        let mut inf = Infer {
            param_var: vec![None; self.params.len()],
            matrix_uses: (0..self.params.len()).map(|_| vec![]).collect(),
            equation_shape: vec![Sv::Scalar; self.equations.len()],
            node_shapes: vec![vec![]; self.equations.len()],
            ..Infer::default()
        };
        for &i in &self.order.clone() {
            let mut shapes = vec![];
            let mut s = inf.expr(&self.equations[i].expr, &names, &mut shapes);
            if matches!(self.equations[i].target, Target::Next(_)) {
                s = inf.unify(s, Sv::Dim(Dim::H), self.equations[i].expr.span);
            }
            inf.equation_shape[i] = s;
            inf.node_shapes[i] = shapes;
        }
        inf.tie_matrix_uses();
        self.d_equals_h = inf.forced;
        for (i, eq) in self.equations.iter_mut().enumerate() {
            let shapes: Vec<Shape> = inf.node_shapes[i].clone().into_iter().map(|s| inf.resolve(s)).collect();
            if !shapes.is_empty() {
                write_back(&mut eq.expr, &shapes, &mut 0);
            }
        }
        for p in 0..self.params.len() {
            self.params[p].kind = match self.params[p].kind {
                ParamKind::Vector { .. } => {
                    let len = inf.param_var[p].map_or(Dim::H, |v| inf.dim(Sv::Var(v)));
                    ParamKind::Vector { len }
                }
                ParamKind::Matrix { .. } => self.matrix_shape(p, &mut inf),
            };
        }
        let errors = std::mem::take(&mut inf.errors);
        self.diags.extend(errors);
    }

    /// The matrix's shape from its first use; a use of another shape is a conflict.
    fn matrix_shape(&mut self, p: usize, inf: &mut Infer) -> ParamKind {
        let uses: Vec<(Dim, Dim, Span)> = std::mem::take(&mut inf.matrix_uses[p])
            .into_iter()
            .map(|u| (inf.dim(u.rows), inf.dim(u.cols), u.span))
            .collect();
        let Some(&(rows, cols, first_span)) = uses.first() else {
            return ParamKind::Matrix { rows: Dim::H, cols: Dim::H };
        };
        let name = self.params[p].name.clone();
        if let Some(&(_, c, span)) = uses.iter().find(|u| u.1 != cols) {
            self.error(
                Diagnostic::error(
                    "cellc::shape_conflict",
                    format!("weight matrix `{name}` multiplies vectors of different sizes"),
                )
                .label(first_span, format!("multiplies {} here", size_word(cols)))
                .label(span, format!("multiplies {} here", size_word(c)))
                .help(format!(
                    "a weight matrix has one shape: use a separate matrix for each, e.g. `{name}_x*x` and `{name}_h*h`"
                )),
            );
        } else if let Some(&(r, _, span)) = uses.iter().find(|u| u.0 != rows) {
            self.error(
                Diagnostic::error(
                    "cellc::shape_conflict",
                    format!("weight matrix `{name}` produces vectors of different sizes"),
                )
                .label(first_span, format!("gives {} here", size_word(rows)))
                .label(span, format!("gives {} here", size_word(r)))
                .help("a weight matrix has one shape: use a separate matrix for each use"),
            );
        }
        ParamKind::Matrix { rows, cols }
    }
}
