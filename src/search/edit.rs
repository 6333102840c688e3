//! Graph surgery for the mutation operators: rebuild a graph with one node replaced, add a
//! Linear(a, ·) or a layer normalisation with fresh parameters, and prune states and parameters
//! nothing uses any more.

use crate::check::{Dim, Init, ParamKind};
use crate::ir::{CellSig, Graph, NodeId, Op, ParamInfo};

use super::mutate::Activation;

/// `dependents(g, at)[i]`: whether node `i` depends on `at` (`at` included).
pub fn dependents(g: &Graph, at: NodeId) -> Vec<bool> {
    let mut dep = vec![false; g.len()];
    for id in g.ids() {
        dep[id.index()] = id == at || g.node(id).args().iter().any(|a| dep[a.index()]);
    }
    dep
}

/// `g` with node `at` replaced by what `replace` builds. `replace` gets the output graph and the
/// map from old node ids to new ones, filled for every node that does not depend on `at` (so any
/// such node may be used in the replacement); the nodes that depend on `at` are rebuilt after
/// it. Nothing is simplified here; names stay with their nodes, except primed ones, which the
/// printer derives from the states again.
pub fn rebuild(g: &Graph, at: NodeId, replace: impl FnOnce(&mut Graph, &[NodeId]) -> NodeId) -> Graph {
    let dep = dependents(g, at);
    let mut out = Graph::new(g.sig.clone());
    let unset = NodeId(u32::MAX);
    let mut map = vec![unset; g.len()];
    let copy = |out: &mut Graph, map: &mut Vec<NodeId>, id: NodeId| {
        let n = g.node(id);
        let args: Vec<NodeId> = n.args().iter().map(|a| map[a.index()]).collect();
        map[id.index()] = out.intern(n.op, &args);
    };
    for id in g.ids().filter(|id| !dep[id.index()]) {
        copy(&mut out, &mut map, id);
    }
    map[at.index()] = replace(&mut out, &map);
    for id in g.ids().filter(|&id| dep[id.index()] && id != at) {
        copy(&mut out, &mut map, id);
    }
    out.next = g.next.iter().map(|n| map[n.index()]).collect();
    for (id, name) in &g.names {
        let new = map[id.index()];
        if !name.ends_with('\'') && out.node(new).op.arity() > 0 {
            out.names.entry(new).or_insert_with(|| name.clone());
        }
    }
    out
}

/// A layer normalisation of `v` in `out` with a new gain (starting at 1) and bias:
/// `d = v - mean(v)`, `d / sqrt(mean(d*d) + 1e-5) * g + b` (Ba et al. 2016).
pub fn apply_normalisation(out: &mut Graph, v: NodeId) -> NodeId {
    let dim = match out.node(v).shape {
        crate::check::Shape::Vector(d) => d,
        _ => Dim::H,
    };
    let k = (1..)
        .find(|k| !out.sig.params.iter().any(|p| p.name == format!("g_n{k}") || p.name == format!("b_n{k}")))
        .unwrap_or(1);
    let gain = out.sig.params.len() as u32;
    out.sig.params.push(ParamInfo {
        name: format!("g_n{k}"),
        kind: ParamKind::Vector { len: dim },
        init: Init::Const(1.0),
    });
    out.sig.params.push(ParamInfo {
        name: format!("b_n{k}"),
        kind: ParamKind::Vector { len: dim },
        init: Init::Default,
    });
    let mean = out.intern(Op::Mean(dim), &[v]);
    let d = out.intern(Op::Sub, &[v, mean]);
    let dd = out.intern(Op::Mul, &[d, d]);
    let var = out.intern(Op::Mean(dim), &[dd]);
    let eps = out.intern(Op::constant(1e-5), &[]);
    let var_eps = out.intern(Op::Add, &[var, eps]);
    let sd = out.intern(Op::Act(crate::check::Func::Sqrt), &[var_eps]);
    let n = out.intern(Op::Div, &[d, sd]);
    let g = out.intern(Op::Param(gain), &[]);
    let b = out.intern(Op::Param(gain + 1), &[]);
    let scaled = out.intern(Op::Mul, &[n, g]);
    out.intern(Op::Add, &[scaled, b])
}

/// `act(v)` in `out`; a Linear adds a new square matrix and bias to the signature.
pub fn apply_activation(out: &mut Graph, act: Activation, v: NodeId) -> NodeId {
    match act {
        Activation::Func(f) => out.intern(Op::Act(f), &[v]),
        Activation::Linear(a) => {
            let k = (1..)
                .find(|k| !out.sig.params.iter().any(|p| p.name == format!("W_l{k}") || p.name == format!("b_l{k}")))
                .unwrap_or(1);
            let w = out.sig.params.len() as u32;
            let init = if a == 0.0 { Init::Default } else { Init::Diag(a) };
            out.sig.params.push(ParamInfo {
                name: format!("W_l{k}"),
                kind: ParamKind::Matrix { rows: Dim::H, cols: Dim::H },
                init,
            });
            out.sig.params.push(ParamInfo {
                name: format!("b_l{k}"),
                kind: ParamKind::Vector { len: Dim::H },
                init: Init::Default,
            });
            let wv = out.intern(Op::MatVec(w), &[v]);
            let b = out.intern(Op::Param(w + 1), &[]);
            out.intern(Op::Add, &[wv, b])
        }
    }
}

/// The states the output depends on, over any number of steps.
pub fn live_states(g: &Graph) -> Vec<bool> {
    let mut live = vec![false; g.sig.states.len()];
    let mut todo = vec![g.sig.output];
    while let Some(s) = todo.pop() {
        if std::mem::replace(&mut live[s], true) {
            continue;
        }
        for id in g.reachable(&[g.next[s]]) {
            if let Op::State(t) = g.node(id).op {
                todo.push(t as usize);
            }
        }
    }
    live
}

/// `g` without the states the output never reads and the parameters no live value uses,
/// renumbered. Inputs are H-sized (every search cell has D = H).
pub fn prune(g: &Graph) -> Graph {
    let live = live_states(g);
    let state_map: Vec<Option<u32>> = {
        let mut n = 0;
        live.iter().map(|&l| l.then(|| (n, n += 1).0)).collect()
    };
    let roots: Vec<NodeId> = (0..g.next.len()).filter(|&s| live[s]).map(|s| g.next[s]).collect();
    let reachable = g.reachable(&roots);
    let mut used = vec![false; g.sig.params.len()];
    for &id in &reachable {
        if let Op::Param(p) | Op::MatVec(p) = g.node(id).op {
            used[p as usize] = true;
        }
    }
    let param_map: Vec<Option<u32>> = {
        let mut n = 0;
        used.iter().map(|&u| u.then(|| (n, n += 1).0)).collect()
    };
    let params = g
        .sig
        .params
        .iter()
        .enumerate()
        .filter(|(p, _)| used[*p])
        .map(|(_, info)| {
            let mut info = info.clone();
            if let Init::Copy { param, negated } = info.init {
                info.init = match param_map[param] {
                    Some(q) => Init::Copy { param: q as usize, negated },
                    None => Init::Default, // the source is gone; its law was the default anyway
                };
            }
            info
        })
        .collect();
    let sig = CellSig {
        name: g.sig.name.clone(),
        states: g.sig.states.iter().enumerate().filter(|(s, _)| live[*s]).map(|(_, n)| n.clone()).collect(),
        output: state_map[g.sig.output].unwrap_or(0) as usize,
        params,
        d_equals_h: true,
        masks: g.sig.masks.clone(),
    };
    let mut out = Graph::new(sig);
    let mut map = vec![NodeId(u32::MAX); g.len()];
    for &id in &reachable {
        let n = g.node(id);
        let op = match n.op {
            Op::State(s) => Op::State(state_map[s as usize].unwrap_or(0)),
            Op::Param(p) => Op::Param(param_map[p as usize].unwrap_or(0)),
            Op::MatVec(p) => Op::MatVec(param_map[p as usize].unwrap_or(0)),
            other => other,
        };
        let args: Vec<NodeId> = n.args().iter().map(|a| map[a.index()]).collect();
        map[id.index()] = out.intern(op, &args);
    }
    out.next = roots.iter().map(|r| map[r.index()]).collect();
    for (id, name) in &g.names {
        if map[id.index()] != NodeId(u32::MAX) {
            out.names.entry(map[id.index()]).or_insert_with(|| name.clone());
        }
    }
    out
}
