//! The paper's six mutation operators (§6), applied to the IR graph of a cell.
//!
//! A mutation draws p ~ U[0, 1] and then, for each computed node with probability p, applies one
//! random operator to it. We draw the number of operators k ~ Binomial(nodes, p) (at least one)
//! and apply them one after another to random nodes of the graph as it changes, which keeps the
//! paper's distribution of mutation sizes without tracking node identities across edits.
//! The result may be invalid (a shape error, no input, no recurrence): [`super::candidate`]
//! checks it and the caller redraws.

use super::edit::{apply_activation, apply_normalisation, rebuild};
use crate::check::{Func, Shape};
use crate::ir::{Graph, NodeId, Op, simplify};
use crate::rng::Rng;

/// An activation the search may place: a function, or the paper's Linear(a, v) = W v + b with a
/// new square W (initialised small, plus `a` on its diagonal) and a new bias.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    Func(Func),
    Linear(f64),
}

/// The paper's activation set.
pub const ACTIVATIONS: [Activation; 7] = [
    Activation::Func(Func::Tanh),
    Activation::Func(Func::Sigm),
    Activation::Func(Func::Relu),
    Activation::Linear(0.0),
    Activation::Linear(1.0),
    Activation::Linear(0.9),
    Activation::Linear(1.1),
];

/// The paper's element-wise operations.
const ELEMENTWISE: [Op; 3] = [Op::Add, Op::Mul, Op::Sub];

impl std::fmt::Display for Activation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Activation::Func(func) => write!(f, "{}", func.name()),
            Activation::Linear(a) => write!(f, "Linear({a})"),
        }
    }
}

/// The six operators, numbered as in the paper.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operator {
    ReplaceActivation,
    ReplaceElementwise,
    InsertActivation,
    RemoveNode,
    ReplaceByAncestor,
    ReplaceByCombination,
    /// Not the paper's (`cellc search --normalise`): a layer normalisation of the node's value,
    /// with a new gain and bias.
    InsertNormalisation,
}

const OPERATORS: [Operator; 6] = [
    Operator::ReplaceActivation,
    Operator::ReplaceElementwise,
    Operator::InsertActivation,
    Operator::RemoveNode,
    Operator::ReplaceByAncestor,
    Operator::ReplaceByCombination,
];

/// Applies a random mutation to `g` (with the paper's six operators, and a seventh that inserts
/// a layer normalisation if `normalise`); returns the new (simplified) graph and what was done,
/// one line per operator applied. `None` when no operator could be applied.
pub fn mutate(g: &Graph, rng: &mut Rng, normalise: bool) -> Option<(Graph, Vec<String>)> {
    let operators: Vec<Operator> =
        OPERATORS.iter().copied().chain(normalise.then_some(Operator::InsertNormalisation)).collect();
    let nodes = computed(g).len();
    let p = rng.f64();
    let k = (0..nodes).filter(|_| rng.chance(p)).count().max(1);
    let mut current = g.clone();
    let mut done = vec![];
    for _ in 0..k {
        let candidates = computed(&current);
        if candidates.is_empty() {
            break;
        }
        let at = *rng.pick(&candidates);
        let mut ops: Vec<Operator> = operators.iter().copied().filter(|o| applicable(&current, at, *o)).collect();
        rng.shuffle(&mut ops);
        if let Some((next, what)) = ops.iter().find_map(|&o| apply(&current, at, o, rng)) {
            current = next;
            done.push(what);
        }
    }
    (!done.is_empty()).then_some((current, done))
}

/// The computed (non-leaf) nodes the outputs use: what a mutation may act on.
fn computed(g: &Graph) -> Vec<NodeId> {
    g.reachable(&g.next).into_iter().filter(|&id| g.node(id).op.arity() > 0).collect()
}

fn applicable(g: &Graph, at: NodeId, o: Operator) -> bool {
    let op = g.node(at).op;
    match o {
        Operator::ReplaceActivation => matches!(op, Op::Act(_)),
        Operator::ReplaceElementwise => matches!(op, Op::Add | Op::Sub | Op::Mul | Op::Div),
        Operator::InsertActivation | Operator::ReplaceByAncestor | Operator::ReplaceByCombination => true,
        Operator::RemoveNode => op.arity() == 1 && g.use_counts(&g.next)[at.index()] == 1,
        Operator::InsertNormalisation => matches!(g.node(at).shape, Shape::Vector(_)),
    }
}

/// One operator at one node; `None` when its random choices leave nothing to do.
fn apply(g: &Graph, at: NodeId, o: Operator, rng: &mut Rng) -> Option<(Graph, String)> {
    let node = *g.node(at);
    let label = describe(g, at);
    let (out, what) = match o {
        Operator::ReplaceActivation => {
            let Op::Act(current) = node.op else { return None };
            let choices: Vec<Activation> =
                ACTIVATIONS.iter().copied().filter(|&a| a != Activation::Func(current)).collect();
            let act = *rng.pick(&choices);
            let out = rebuild(g, at, |out, map| apply_activation(out, act, map[node.args[0].index()]));
            (out, format!("replace the activation of {label} by {act}"))
        }
        Operator::ReplaceElementwise => {
            let choices: Vec<Op> = ELEMENTWISE.iter().copied().filter(|&e| e != node.op).collect();
            let new = *rng.pick(&choices);
            let out = rebuild(g, at, |out, map| {
                let args = [map[node.args[0].index()], map[node.args[1].index()]];
                out.intern(new, &args)
            });
            (out, format!("turn the {} of {label} into {}", op_symbol(node.op), op_symbol(new)))
        }
        Operator::InsertActivation => {
            let k = rng.below(node.op.arity() as u64) as usize;
            let act = *rng.pick(&ACTIVATIONS);
            let out = rebuild(g, at, |out, map| {
                let mut args: Vec<NodeId> = node.args().iter().map(|a| map[a.index()]).collect();
                args[k] = apply_activation(out, act, args[k]);
                out.intern(node.op, &args)
            });
            (out, format!("insert {act} before argument {} of {label}", k + 1))
        }
        Operator::RemoveNode => {
            let out = rebuild(g, at, |_, map| map[node.args[0].index()]);
            (out, format!("remove {label}"))
        }
        Operator::InsertNormalisation => {
            let out = rebuild(g, at, |out, map| {
                let args: Vec<NodeId> = node.args().iter().map(|a| map[a.index()]).collect();
                let value = out.intern(node.op, &args);
                apply_normalisation(out, value)
            });
            (out, format!("normalise {label}"))
        }
        Operator::ReplaceByAncestor => {
            let ancestors = strict_ancestors(g, at);
            let a = *rng.pick(&ancestors);
            let what = format!("replace {label} by its ancestor {}", describe(g, a));
            (rebuild(g, at, |_, map| map[a.index()]), what)
        }
        Operator::ReplaceByCombination => {
            let ancestors = strict_ancestors(g, at);
            let first = *rng.pick(&ancestors);
            let others: Vec<NodeId> = computed(g).into_iter().filter(|&m| m != at).collect();
            let other = if others.is_empty() { at } else { *rng.pick(&others) };
            // The second operand must not depend on the node it replaces (no cycles).
            let depends = super::edit::dependents(g, at);
            let pool: Vec<NodeId> = g.reachable(&[other]).into_iter().filter(|a| !depends[a.index()]).collect();
            if pool.is_empty() {
                return None;
            }
            let second = *rng.pick(&pool);
            let op = *rng.pick(&ELEMENTWISE);
            let what = format!("replace {label} by {} {} {}", describe(g, first), op_symbol(op), describe(g, second));
            let out = rebuild(g, at, |out, map| out.intern(op, &[map[first.index()], map[second.index()]]));
            (out, what)
        }
    };
    Some((simplify(&out), what))
}

/// The nodes `at` depends on, without itself (its leaves at least, so never empty).
fn strict_ancestors(g: &Graph, at: NodeId) -> Vec<NodeId> {
    g.reachable(&[at]).into_iter().filter(|&a| a != at).collect()
}

fn op_symbol(op: Op) -> &'static str {
    match op {
        Op::Add => "+",
        Op::Sub => "-",
        Op::Mul => "*",
        _ => "/",
    }
}

/// A node in words for the mutation log: its equation name, or its expression (shortened).
fn describe(g: &Graph, id: NodeId) -> String {
    if let Some(name) = g.name(id) {
        return format!("`{name}`");
    }
    let raiser = crate::ir::raise::Raiser { g, names: g.names.iter().map(|(k, v)| (*k, v.clone())).collect() };
    let mut text = crate::syntax::print::expr(&raiser.definition(id));
    if text.chars().count() > 40 {
        text = text.chars().take(37).collect::<String>() + "...";
    }
    format!("`{text}`")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(name: &str) -> Graph {
        let ws = crate::workspace::Workspace::new();
        let checked = ws.check_std(name).expect("a std cell");
        crate::ir::lower(&checked.cells[0])
    }

    #[test]
    fn every_operator_can_fire_and_mutations_change_the_graph() {
        let g = graph("gru");
        let mut rng = Rng::new(3);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..300 {
            // Mutants may be invalid (shapes); `candidate` rejects those. Here: operators fire.
            if let Some((_, what)) = mutate(&g, &mut rng, false) {
                for w in what {
                    seen.insert(w.split(' ').next().unwrap_or("").to_string());
                }
            }
        }
        for verb in ["replace", "turn", "insert", "remove"] {
            assert!(seen.contains(verb), "{seen:?}");
        }
    }

    #[test]
    fn the_normalisation_operator_fires_only_when_asked() {
        let g = graph("gru");
        let (mut rng, mut valid) = (Rng::new(4), 0);
        for _ in 0..300 {
            if let Some((_, what)) = mutate(&g, &mut rng, false) {
                assert!(!what.iter().any(|w| w.starts_with("normalise")), "{what:?}");
            }
        }
        for _ in 0..300 {
            let Some((m, what)) = mutate(&g, &mut rng, true) else { continue };
            // (A later operator of the same mutation may take the normalisation out again.)
            let normalised = m.ids().any(|id| matches!(m.node(id).op, Op::Mean(_)));
            if what.iter().any(|w| w.starts_with("normalise")) && normalised {
                valid += usize::from(super::super::candidate::candidate(&m, "c1").is_ok());
            }
        }
        assert!(valid >= 10, "only {valid} valid normalised mutants");
    }

    #[test]
    fn the_same_seed_gives_the_same_mutation() {
        let g = graph("lstm");
        let a = mutate(&g, &mut Rng::new(9), true).map(|(_, w)| w);
        let b = mutate(&g, &mut Rng::new(9), true).map(|(_, w)| w);
        assert_eq!(a, b);
    }
}
