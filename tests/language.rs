//! The language's rules, one at a time: the matrix rule, line continuation, derived cells,
//! initialisation, equation order, and shape inference.

mod support;

use cellc::check::{Dim, ExprKind, Init, ParamKind, Shape, Target};
use support::checked_cell;

/// The right-hand side of the cell's only next-state equation, as a compact tree string.
fn tree(src: &str) -> String {
    let cell = checked_cell(src);
    fn show(e: &cellc::check::Expr, cell: &cellc::check::Cell) -> String {
        match &e.kind {
            ExprKind::Const(v) => format!("{v}"),
            ExprKind::Input => "x".into(),
            ExprKind::State(s) => cell.states[*s].name.clone(),
            ExprKind::Next(s) => format!("{}'", cell.states[*s].name),
            ExprKind::Local(i) => cell.equations[*i].name.clone(),
            ExprKind::Param(p) => cell.params[*p].name.clone(),
            ExprKind::Call(f, a) => format!("{}({})", f.name(), show(a, cell)),
            ExprKind::Reduce(r, a) => format!("{}({})", r.name(), show(a, cell)),
            ExprKind::Stochastic { kind, rate, mask, args } => {
                let args: Vec<String> = args.iter().map(|a| show(a, cell)).collect();
                format!("{}#{mask}({}; {rate})", kind.name(), args.join(", "))
            }
            ExprKind::Neg(a) => format!("neg({})", show(a, cell)),
            ExprKind::MatVec(p, a) => format!("{}@({})", cell.params[*p].name, show(a, cell)),
            ExprKind::Sum(t) => {
                let parts: Vec<String> = t.iter().map(|(s, e)| format!("{s:?}:{}", show(e, cell))).collect();
                format!("sum[{}]", parts.join(", "))
            }
            ExprKind::Product(f) => {
                let parts: Vec<String> = f.iter().map(|(o, e)| format!("{o:?}:{}", show(e, cell))).collect();
                format!("prod[{}]", parts.join(", "))
            }
        }
    }
    let eq = cell.next_equation(0).clone();
    show(&eq.expr, &cell)
}

fn one(rhs: &str) -> String {
    tree(&format!("cell t {{\n    state h\n    h' = {rhs}\n}}\n"))
}

#[test]
fn a_matrix_applies_to_the_factor_right_after_it() {
    assert_eq!(one("W*h"), "W@(h)");
    assert_eq!(one("a*W*h"), "prod[Mul:a, Mul:W@(h)]");
    assert_eq!(one("W*r*h"), "prod[Mul:W@(r), Mul:h]");
    assert_eq!(one("W*(r*h)"), "W@(prod[Mul:r, Mul:h])");
    assert_eq!(one("W*U*h"), "W@(U@(h))");
    assert_eq!(one("h/W*h"), "prod[Mul:h, Div:W@(h)]");
}

#[test]
fn regularisers_take_their_arguments_and_number_their_masks_in_evaluation_order() {
    assert_eq!(one("dropout(h, 0.25)"), "dropout#0(h; 0.25)");
    assert_eq!(one("zoneout(tanh(W*x), h, .5)"), "zoneout#0(tanh(W@(x)), h; 0.5)");
    assert_eq!(one("vardropout(h,\n 0.1) + h"), "sum[Plus:vardropout#0(h; 0.1), Plus:h]");
    // Arguments first, then the call; equations in the order they are computed.
    let src = "cell t {\n    state h\n    h' = zoneout(dropout(a, 0.5), h, 0.1)\n    a = dropout(tanh(W*h), 0.2)\n}\n";
    assert_eq!(tree(src), "zoneout#2(dropout#1(a; 0.5), h; 0.1)");
    let cell = checked_cell(src);
    let a = &cell.equations.iter().find(|e| e.name == "a").unwrap().expr;
    assert!(matches!(a.kind, ExprKind::Stochastic { mask: 0, .. }));
    assert_eq!(a.shape, Shape::Vector(Dim::H));
}

#[test]
fn precedence_and_signs() {
    assert_eq!(one("-h*h"), "neg(prod[Mul:h, Mul:h])");
    assert_eq!(one("h*-h"), "prod[Mul:h, Mul:neg(h)]");
    assert_eq!(one("--h"), "neg(neg(h))");
    assert_eq!(one("-(-h)"), "neg(neg(h))");
    assert_eq!(one("h - h + 1"), "sum[Plus:h, Minus:h, Plus:1]");
    assert_eq!(one("sigmoid(h)"), "sigm(h)");
    assert_eq!(one("2.5e-1*h"), "prod[Mul:0.25, Mul:h]");
}

#[test]
fn expressions_continue_across_lines_next_to_operators_and_in_parentheses() {
    let expect = "sum[Plus:h, Plus:W@(x), Minus:b]";
    assert_eq!(tree("cell t {\n state h\n h' = h +\n   W*x\n   - b\n}"), expect);
    assert_eq!(tree("cell t {\n state h\n h' = (\n  h\n  + W*x - b\n )\n}"), expect);
    assert_eq!(tree("cell t { state h; h' = h + W*x - b }"), expect);
    assert_eq!(tree("cell t {\n state h\n h' =\n  h + W*x - b  // comment\n}"), expect);
}

#[test]
fn equations_are_ordered_by_what_they_read() {
    let cell = checked_cell("cell t {\n state h\n h' = b*a\n a = tanh(b)\n b = sigm(W*h)\n}");
    let order: Vec<String> = cell.order.iter().map(|&i| cell.equations[i].display_name()).collect();
    assert_eq!(order, ["b", "a", "h'"]);
}

#[test]
fn next_values_can_be_read_in_the_same_step() {
    let cell = checked_cell("cell t {\n state h, c\n h' = tanh(c')\n c' = c + W*x\n}");
    let order: Vec<String> = cell.order.iter().map(|&i| cell.equations[i].display_name()).collect();
    assert_eq!(order, ["c'", "h'"]);
    assert_eq!(cell.equations[0].target, Target::Next(0));
}

#[test]
fn output_defaults_to_the_first_state() {
    assert_eq!(checked_cell("cell t {\n state h, c\n h' = c\n c' = h\n}").output, 0);
    assert_eq!(checked_cell("cell t {\n state h, c\n output c\n h' = c\n c' = h\n}").output, 1);
}

#[test]
fn shapes_follow_what_matrices_multiply() {
    let cell = checked_cell("cell t {\n state h\n u = W_u*x\n h' = tanh(W_h*h + U*u + b)\n}");
    let kinds: Vec<(String, ParamKind)> = cell.params.iter().map(|p| (p.name.clone(), p.kind)).collect();
    assert_eq!(
        kinds,
        [
            // Nothing says how long u is, so W_u's rows default to H.
            ("W_u".into(), ParamKind::Matrix { rows: Dim::H, cols: Dim::D }),
            ("W_h".into(), ParamKind::Matrix { rows: Dim::H, cols: Dim::H }),
            ("U".into(), ParamKind::Matrix { rows: Dim::H, cols: Dim::H }),
            ("b".into(), ParamKind::Vector { len: Dim::H }),
        ]
    );
    assert!(cell.d_equals_h.is_none());

    let d_sized = checked_cell("cell t {\n state h\n u = x*(W_u*x)\n h' = tanh(W_h*h + U*u)\n}");
    let kind = |n: &str| d_sized.params[d_sized.param(n).unwrap()].kind;
    assert_eq!(kind("W_u"), ParamKind::Matrix { rows: Dim::D, cols: Dim::D });
    assert_eq!(kind("U"), ParamKind::Matrix { rows: Dim::H, cols: Dim::D });
    assert_eq!(d_sized.equations[0].expr.shape, Shape::Vector(Dim::D));
    assert!(d_sized.d_equals_h.is_none(), "u is D-sized and only ever meets D-sized values");

    let tied = checked_cell("cell t {\n state h\n h' = tanh(W*h) + x\n}");
    assert!(tied.d_equals_h.is_some(), "x added to an H-vector ties D to H");
}

#[test]
fn derived_cells_replace_equations_and_drop_unused_parameters() {
    let cell = checked_cell("cell g = gru with {\n    r = 1\n    init b_z = -1\n}\n");
    assert_eq!(cell.base.as_deref(), Some("gru"));
    assert!(cell.param("W_hr").is_none() && cell.param("b_r").is_none());
    assert_eq!(cell.params[cell.param("b_z").unwrap()].init, Init::Const(-1.0));
    let own = checked_cell("cell lstm = lstm with {\n    init b_f = 2\n}\n");
    assert_eq!(
        own.params[own.param("b_f").unwrap()].init,
        Init::Const(2.0),
        "a cell named like its std base derives from std"
    );
}

#[test]
fn init_schemes() {
    let cell = checked_cell(
        "cell t {\n state h\n f = sigm(W*x + b_f)\n h' = f*h + sigm(b_i)*tanh(U*h + V*x)\n init b_f = chrono(35)\n init b_i = -b_f\n init U = orthogonal\n init V = uniform(0.5)\n}",
    );
    let init = |n: &str| cell.params[cell.param(n).unwrap()].init.clone();
    assert_eq!(init("b_f"), Init::Chrono { t_max: 35.0, negated: false });
    assert_eq!(init("b_i"), Init::Copy { param: cell.param("b_f").unwrap(), negated: true });
    assert_eq!(init("U"), Init::Orthogonal(1.0));
    assert_eq!(init("V"), Init::Uniform(0.5));
    assert_eq!(init("W"), Init::Default);
}
