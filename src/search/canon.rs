//! The canonical hash of a cell: the search's identity of a candidate, so equivalent cells are
//! trained once.
//!
//! Computed on the simplified graph (constants folded, `x*1`, `--x`, ... gone; common
//! subexpressions shared). Names never enter: a parameter is hashed by its kind and
//! initialisation, a state by its role (the output first, then the others in order). Sums and
//! products are flattened and their terms sorted, so `a + (b + c)`, `(c + a) + b` and `b - -a + c`
//! hash alike, as do `z*h` and `h*z`. Which products share one matrix (and how often each
//! vector is read) is hashed separately, so `W*a + W*b` (one matrix) and `W1*a + W2*b` differ.

use crate::ir::{Graph, NodeId, Op};

/// 16 hex digits.
pub fn hash(g: &Graph) -> String {
    let state_rank = |s: u32| {
        let s = s as usize;
        if s == g.sig.output { 0 } else { 1 + (0..g.sig.states.len()).filter(|&t| t != g.sig.output && t < s).count() }
    };
    let mut h = vec![0u64; g.len()];
    for id in g.ids() {
        let n = g.node(id);
        let arg = |k: usize| h[n.args[k].index()];
        h[id.index()] = match n.op {
            Op::Input => mix(b"x", &[]),
            Op::State(s) => mix(b"s", &[state_rank(s) as u64]),
            Op::Param(p) => mix(b"p", &[param_key(g, p)]),
            Op::Const(bits) => mix(b"c", &[bits]),
            // What the mask is, not its number: cells that differ only in numbering are one.
            Op::Mask(k) => {
                let m = g.sig.masks[k as usize];
                mix(m.kind.name().as_bytes(), &[m.rate.to_bits(), u64::from(m.dim == crate::check::Dim::D)])
            }
            Op::Act(f) => mix(f.name().as_bytes(), &[arg(0)]),
            Op::MatVec(p) => mix(b"m", &[param_key(g, p), arg(0)]),
            Op::Add | Op::Sub | Op::Neg => {
                let mut terms = vec![];
                flatten(g, &h, id, false, &[Op::Add, Op::Sub, Op::Neg], &mut terms);
                terms.sort_unstable();
                mix(b"+", &terms)
            }
            Op::Mul | Op::Div => {
                let mut factors = vec![];
                flatten(g, &h, id, false, &[Op::Mul, Op::Div], &mut factors);
                factors.sort_unstable();
                mix(b"*", &factors)
            }
            other => {
                let args: Vec<u64> = n.args().iter().map(|a| h[a.index()]).collect();
                mix(format!("{other:?}").as_bytes(), &args)
            }
        };
    }
    // Which uses share a parameter: per matrix, the hashes of its products; per vector, how
    // many nodes read it (its direct users depend on how a sum is grouped, so not those).
    let reachable = g.reachable(&g.next);
    let mut users: Vec<Vec<u64>> = vec![vec![]; g.sig.params.len()];
    for &id in &reachable {
        let n = g.node(id);
        if let Op::MatVec(p) = n.op {
            users[p as usize].push(h[id.index()]);
        }
        for a in n.args() {
            if let Op::Param(p) = g.node(*a).op {
                users[p as usize].push(0);
            }
        }
    }
    let mut sharing: Vec<u64> = users
        .iter_mut()
        .map(|u| {
            u.sort_unstable();
            mix(b"u", u)
        })
        .collect();
    sharing.sort_unstable();
    let mut order: Vec<usize> = (0..g.next.len()).collect();
    order.sort_by_key(|&s| state_rank(s as u32));
    let mut parts: Vec<u64> = order.iter().map(|&s| h[g.next[s].index()]).collect();
    parts.push(mix(b"sharing", &sharing));
    format!("{:016x}", mix(b"cell", &parts))
}

/// The signed terms (or factors, `inverse` for a divisor) of a chain of `ops`, as hashes tagged
/// with their sign; a node outside the chain is one term.
fn flatten(g: &Graph, h: &[u64], id: NodeId, negative: bool, ops: &[Op], out: &mut Vec<u64>) {
    let n = g.node(id);
    if !ops.contains(&n.op) {
        out.push(mix(if negative { b"-" } else { b"+" }, &[h[id.index()]]));
        return;
    }
    match n.op {
        Op::Neg => flatten(g, h, n.args[0], !negative, ops, out),
        Op::Sub | Op::Div => {
            flatten(g, h, n.args[0], negative, ops, out);
            flatten(g, h, n.args[1], !negative, ops, out);
        }
        _ => {
            flatten(g, h, n.args[0], negative, ops, out);
            flatten(g, h, n.args[1], negative, ops, out);
        }
    }
}

/// A parameter by what it is, not what it is called.
fn param_key(g: &Graph, p: u32) -> u64 {
    let info = &g.sig.params[p as usize];
    let init = match &info.init {
        crate::check::Init::Copy { param, negated } => {
            format!("copy {negated} {:?}", g.sig.params.get(*param).map(|q| &q.init))
        }
        other => format!("{other:?}"),
    };
    mix(format!("{:?} {init}", info.kind).as_bytes(), &[])
}

/// FNV-1a over a tag and numbers, then a final avalanche (splitmix64) so close inputs spread.
fn mix(tag: &[u8], values: &[u64]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in tag.iter().copied().chain([0xff]).chain(values.iter().flat_map(|v| v.to_le_bytes())) {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash_of(src: &str) -> String {
        let mut ws = crate::workspace::Workspace::new();
        let f = ws.add("t.cell", src);
        let checked = ws.check(f);
        assert!(!checked.has_errors(), "{src}");
        hash(&crate::ir::lower(&checked.cells[0]))
    }

    #[test]
    fn renaming_reordering_and_regrouping_do_not_change_the_hash() {
        let a = hash_of("cell a { state h\n z = sigm(W*x + U*h + b)\n h' = z*h + (1 - z)*tanh(V*x + c) }");
        let b = hash_of("cell b { state s\n g = sigm(b2 + A*s + B*x)\n s' = (1 - g)*tanh(c2 + C*x) + s*g }");
        assert_eq!(a, b);
        let c = hash_of("cell c { state h\n h' = tanh(x + (h + W*h)) }");
        let d = hash_of("cell d { state h\n h' = tanh((W*h + x) + h) }");
        assert_eq!(c, d);
        let e = hash_of("cell e { state h\n h' = tanh(x - (h - W*h)) }");
        let f = hash_of("cell f { state h\n h' = tanh(W*h + x - h) }");
        assert_eq!(e, f);
    }

    #[test]
    fn different_cells_and_different_sharing_differ() {
        let plus = hash_of("cell a { state h\n h' = tanh(W*x + U*h) }");
        let minus = hash_of("cell a { state h\n h' = tanh(W*x - U*h) }");
        let times = hash_of("cell a { state h\n h' = tanh((W*x) * (U*h)) }");
        assert_ne!(plus, minus);
        assert_ne!(plus, times);
        let separate = hash_of("cell a { state h\n h' = tanh(W*h + U*(h*h) + x) }");
        let shared = hash_of("cell a { state h\n h' = tanh(W*h + W*(h*h) + x) }");
        assert_ne!(separate, shared);
        let init = hash_of("cell a { state h\n h' = tanh(W*x + U*h)\n init U = diag(1) }");
        assert_ne!(plus, init);
    }
}
