//! `cellc grad`: the backward step printed as readable equations.
//!
//! Forward values are read by the names their equations gave them; a bigger unnamed forward
//! value read more than once is named `t1, t2, ...` first. Adjoints are named after what they
//! are the adjoint of (`dn` for `n`, `dr_pre` for the argument of `r = sigm(...)`), and weight
//! gradients accumulate outer products, `dW_hh += outer(dn_pre, r*h)`.

use std::collections::{BTreeSet, HashMap};

use super::{Backward, ParamGrad};
use crate::ir::raise::Raiser;
use crate::ir::{Graph, NodeId, Op};
use crate::syntax::print;

/// Names for the values of a backward step, as `cellc grad` shows them: equation names for
/// forward values, `dn`, `dr_pre`, `t1` and so on for the rest.
pub fn names(b: &Backward) -> HashMap<NodeId, String> {
    name_all(b).names
}

fn name_all(b: &Backward) -> Namer<'_> {
    let g = &b.graph;
    let mut namer = Namer::new(b);
    // A regulariser's mask by name: the derivative multiplies by the very mask the forward
    // step drew (`mask0`), which a call like `dropout(dn, 0.25)` would hide.
    for id in g.ids().filter(|&id| matches!(g.node(id).op, Op::Mask(_))) {
        if let Op::Mask(k) = g.node(id).op {
            let name = namer.unique(&format!("mask{k}"));
            namer.names.insert(id, name);
        }
    }
    namer.name_forward_temporaries();
    for (s, &d) in b.d_state.iter().enumerate() {
        namer.output(d, format!("d{}", g.sig.states[s]));
    }
    namer.output(b.d_input, "dx".into());
    namer.name_adjoints();
    namer.name_shared_backward_values();
    namer
}

/// The backward step of `b` as text.
pub fn backward_text(b: &Backward) -> String {
    let g = &b.graph;
    let Namer { names, forward_lines, lines, .. } = name_all(b);
    let raiser = Raiser { g, names };
    let states: Vec<String> = g.sig.states.iter().map(|s| format!("d{s}'")).collect();
    let mut out = format!(
        "/// Backward step of {0}: from {1} (the adjoint{2} of the next state{2}) to the adjoints of the\n\
         /// previous state{2}, the input and every parameter. Forward values are read by name.\n\
         grad {0} {{\n",
        g.sig.name,
        states.join(" and "),
        if states.len() > 1 { "s" } else { "" },
    );
    let masks: Vec<NodeId> = g.ids().filter(|id| matches!(g.node(*id).op, Op::Mask(_))).collect();
    if !masks.is_empty() {
        out.push_str("    // the masks the forward step drew (training), or their expectation (evaluation)\n");
        for id in masks {
            let Op::Mask(k) = g.node(id).op else { continue };
            let m = g.sig.masks[k as usize];
            let what = match m.kind {
                crate::check::Stochastic::Zoneout => "1 keeps the old value, probability",
                _ => "0 drops the entry, probability",
            };
            out.push_str(&format!("    // {}: {} ({what} {})\n", raiser.names[&id], m.kind.name(), m.rate));
        }
        out.push('\n');
    }
    if !forward_lines.is_empty() {
        out.push_str("    // forward values read more than once\n");
        for id in &forward_lines {
            out.push_str(&format!("    {} = {}\n", raiser.names[id], print::expr(&raiser.definition(*id))));
        }
        out.push('\n');
    }
    out.push_str("    // adjoints, from the next states back to the previous ones\n");
    for (id, name) in &lines {
        // An output that is a forward value or a leaf is shown as what it equals.
        let rhs = if raiser.names.get(id) == Some(name) { raiser.definition(*id) } else { raiser.expr(*id) };
        out.push_str(&format!("    {name} = {}\n", print::expr(&rhs)));
    }
    out.push_str("\n    // parameter gradients, summed over the batch and every time step\n");
    for (p, grad) in b.d_params.iter().enumerate() {
        let name = &g.sig.params[p].name;
        match grad {
            ParamGrad::Vector(n) if g.const_value(*n) == Some(0.0) => {}
            ParamGrad::Vector(n) => out.push_str(&format!("    d{name} += {}\n", print::expr(&raiser.expr(*n)))),
            ParamGrad::Matrix(terms) => {
                for (gv, v) in terms {
                    let (gs, vs) = (print::expr(&raiser.expr(*gv)), print::expr(&raiser.expr(*v)));
                    out.push_str(&format!("    d{name} += outer({gs}, {vs})\n"));
                }
            }
        }
    }
    out.push_str("}\n");
    out
}

/// Chooses which nodes get a line and under what name.
struct Namer<'b> {
    b: &'b Backward,
    g: &'b Graph,
    /// Uses of each node by backward nodes and outputs.
    backward_uses: Vec<usize>,
    names: HashMap<NodeId, String>,
    taken: BTreeSet<String>,
    forward_lines: Vec<NodeId>,
    /// Backward lines in node order: (node, name).
    lines: Vec<(NodeId, String)>,
}

impl<'b> Namer<'b> {
    fn new(b: &'b Backward) -> Namer<'b> {
        let g = &b.graph;
        let roots = b.roots();
        let mut backward_uses = vec![0; g.len()];
        for id in g.reachable(&roots) {
            if id.index() >= b.forward_len {
                g.node(id).args().iter().for_each(|a| backward_uses[a.index()] += 1);
            }
        }
        roots.iter().for_each(|r| backward_uses[r.index()] += 1);
        let mut taken: BTreeSet<String> = g.names.values().cloned().collect();
        taken.extend(g.sig.states.iter().flat_map(|s| [s.clone(), format!("d{s}"), format!("d{s}'")]));
        taken.extend(g.sig.params.iter().map(|p| p.name.clone()));
        taken.insert("dx".into());
        let names = g.names.iter().map(|(id, n)| (*id, n.clone())).collect();
        Namer { b, g, backward_uses, names, taken, forward_lines: vec![], lines: vec![] }
    }

    fn unique(&mut self, wanted: &str) -> String {
        let mut name = wanted.to_string();
        let mut k = 1;
        while self.taken.contains(&name) {
            k += 1;
            name = format!("{wanted}{k}");
        }
        self.taken.insert(name.clone());
        name
    }

    /// Unnamed forward values the backward step reads twice or more, unless they are as short as
    /// a name (a product or difference of names, like `r*h` or `1 - z`).
    fn name_forward_temporaries(&mut self) {
        let mut k = 0;
        for id in self.g.ids().take(self.b.forward_len) {
            let node = self.g.node(id);
            let simple = matches!(node.op, Op::Add | Op::Sub | Op::Mul | Op::Div | Op::Neg)
                && node.args().iter().all(|a| self.g.node(*a).op.arity() == 0 || self.names.contains_key(a));
            if self.backward_uses[id.index()] >= 2 && node.op.arity() > 0 && !simple && !self.names.contains_key(&id) {
                k += 1;
                let name = self.unique(&format!("t{k}"));
                self.names.insert(id, name);
                self.forward_lines.push(id);
            }
        }
    }

    /// An output line `name = ...` for node `id`.
    fn output(&mut self, id: NodeId, name: String) {
        if id.index() >= self.b.forward_len && self.g.node(id).op.arity() > 0 && !self.names.contains_key(&id) {
            self.names.insert(id, name.clone());
        }
        self.lines.push((id, name));
    }

    /// The total adjoint of each named forward value (`dn`), and of each activation's argument
    /// that is read more than once (`dn_pre`).
    fn name_adjoints(&mut self) {
        let g = self.g;
        let activation_of: HashMap<NodeId, NodeId> = g
            .ids()
            .take(self.b.forward_len)
            .filter(|&id| matches!(g.node(id).op, Op::Act(_)))
            .map(|id| (g.node(id).args[0], id))
            .collect();
        for &(fwd, adj) in &self.b.adjoints {
            if self.names.contains_key(&adj) || g.node(adj).op.arity() == 0 || adj.index() < self.b.forward_len {
                continue; // already shown, or a seed `dh'` itself
            }
            let wanted = match (g.name(fwd), activation_of.get(&fwd).and_then(|a| g.name(*a))) {
                (Some(n), _) if n.ends_with('\'') => format!("d{n}_total"),
                (Some(n), _) => format!("d{n}"),
                (None, Some(n)) if self.backward_uses[adj.index()] >= 2 => format!("d{}_pre", n.trim_end_matches('\'')),
                _ => continue,
            };
            let name = self.unique(&wanted);
            self.names.insert(adj, name.clone());
            self.lines.push((adj, name));
        }
    }

    /// Other backward values read more than once: `t1, t2, ...` after the forward temporaries.
    fn name_shared_backward_values(&mut self) {
        let mut k = self.forward_lines.len();
        for id in self.g.ids().skip(self.b.forward_len) {
            let node = self.g.node(id);
            if self.backward_uses[id.index()] >= 2 && node.op.arity() > 0 && !self.names.contains_key(&id) {
                k += 1;
                let name = self.unique(&format!("t{k}"));
                self.names.insert(id, name.clone());
                self.lines.push((id, name));
            }
        }
        // Definitions before uses: backward nodes in arena order, which is topological.
        self.lines.sort_by_key(|(id, _)| *id);
    }
}
