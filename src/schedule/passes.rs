//! Row reductions inside a fused kernel: the passes a kernel makes over each row's columns, and
//! what each pass loads, recomputes, accumulates and stores.
//!
//! A value's pass is the number of reductions it waits for: `sum(v)` needs all of `v` before any
//! column can use it, so it is ready one pass after `v`. Within a row the kernel runs pass 0's
//! column loop (accumulating the sums whose argument it computes), then the row values of pass 1
//! (`mean(v)`, `sqrt(mean(d*d) + eps)`: one number each, kept in registers and splatted), then
//! pass 1's column loop, and so on. A vector value a later pass reads is read back from the slot
//! the kernel stored it in, or recomputed from the kernel's inputs when that is cheap (an add, a
//! product or a division costs less than the store and the load; a `tanh` does not). The planner
//! ([`values_to_store`]) and the code generator ([`plan_passes`]) share this one definition.

use std::collections::{BTreeSet, HashMap};

use crate::check::{Func, Shape};
use crate::ir::{Graph, NodeId, Op};

use super::{KernelSpec, Store};

/// What one pass over a row's columns does.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PassPlan {
    /// Row values computed before the column loop, in order (their arguments are row values of
    /// this or earlier passes, or row inputs).
    pub row_nodes: Vec<NodeId>,
    /// Vector inputs loaded in the column loop.
    pub loads: Vec<NodeId>,
    /// Values of earlier passes read back from the output slot (index into the kernel's outputs)
    /// an earlier pass stored them in.
    pub reloads: Vec<(NodeId, usize)>,
    /// Vector values computed in the column loop, in order; some were computed by an earlier
    /// pass too.
    pub compute: Vec<NodeId>,
    /// Reductions whose sums this pass accumulates.
    pub reductions: Vec<NodeId>,
    /// Outputs (indices into the kernel's outputs) this pass stores.
    pub stores: Vec<usize>,
}

impl PassPlan {
    /// Whether the pass needs a loop over the columns at all.
    pub fn has_column_work(&self) -> bool {
        !(self.loads.is_empty() && self.compute.is_empty() && self.reductions.is_empty() && self.stores.is_empty())
    }
}

/// A kernel's passes, and its inputs that are row values (loaded once per row).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Passes {
    pub row_inputs: Vec<NodeId>,
    pub passes: Vec<PassPlan>,
}

pub fn is_row(g: &Graph, n: NodeId) -> bool {
    g.node(n).shape == Shape::Row
}

fn is_reduction(op: Op) -> bool {
    matches!(op, Op::Sum(_) | Op::Mean(_))
}

/// The pass of each of `nodes` (a kernel's members, in order); values from outside are ready
/// before pass 0.
pub fn pass_numbers(g: &Graph, nodes: &[NodeId]) -> HashMap<NodeId, u32> {
    let mut pass: HashMap<NodeId, u32> = HashMap::new();
    for &n in nodes {
        let node = g.node(n);
        let ready = node.args().iter().map(|a| pass.get(a).copied().unwrap_or(0)).max().unwrap_or(0);
        pass.insert(n, ready + u32::from(is_reduction(node.op)));
    }
    pass
}

/// Whether recomputing a value in a later pass costs more than storing and loading it.
fn costly(op: Op) -> bool {
    match op {
        Op::Act(f) => !matches!(f, Func::Id | Func::Abs | Func::Relu),
        _ => false,
    }
}

/// The vector values pass `k` must compute to produce `targets`, in node order, and the values
/// of earlier passes it must read instead (those `kept` says are stored). Inputs it needs are
/// added to `loads`.
fn closure(
    g: &Graph,
    pass: &HashMap<NodeId, u32>,
    k: u32,
    targets: &[NodeId],
    kept: &dyn Fn(NodeId) -> bool,
) -> (Vec<NodeId>, Vec<NodeId>, Vec<NodeId>) {
    let (mut compute, mut reread, mut loads) = (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    let mut stack: Vec<NodeId> = targets.to_vec();
    while let Some(n) = stack.pop() {
        if g.const_value(n).is_some() || is_row(g, n) || compute.contains(&n) || reread.contains(&n) {
            continue; // row values are ready before the loop
        }
        match pass.get(&n) {
            None => {
                loads.insert(n);
            }
            Some(&p) if p < k && kept(n) => {
                reread.insert(n);
            }
            Some(_) => {
                compute.insert(n);
                stack.extend(g.node(n).args().iter().copied());
            }
        }
    }
    // Node ids are in topological order.
    (compute.into_iter().collect(), reread.into_iter().collect(), loads.into_iter().collect())
}

/// What each pass needs to produce: the vector values of that pass that are read in the kernel
/// or stored, and the arguments of the reductions it accumulates.
fn pass_targets(g: &Graph, nodes: &[NodeId], outputs: &[NodeId], pass: &HashMap<NodeId, u32>) -> Vec<Vec<NodeId>> {
    let count = pass.values().copied().max().map_or(1, |p| p as usize + 1);
    let mut targets = vec![vec![]; count];
    for &n in nodes {
        let node = g.node(n);
        if is_reduction(node.op) {
            let arg = node.args[0];
            targets[pass.get(&arg).copied().unwrap_or(0) as usize].push(arg);
        } else if !is_row(g, n) {
            targets[pass[&n] as usize].push(n);
        }
    }
    for &o in outputs {
        if !is_row(g, o) {
            targets[pass.get(&o).copied().unwrap_or(0) as usize].push(o);
        }
    }
    targets
}

/// Members of a kernel that a later pass reads and that cost more to recompute than to store
/// and load, beside those `stored` already: the planner gives them a slot.
pub fn values_to_store(g: &Graph, members: &[NodeId], stored: &BTreeSet<NodeId>) -> Vec<NodeId> {
    let pass = pass_numbers(g, members);
    let outputs: Vec<NodeId> = members.iter().copied().filter(|m| stored.contains(m)).collect();
    let targets = pass_targets(g, members, &outputs, &pass);
    let kept = |n: NodeId| stored.contains(&n) || costly(g.node(n).op);
    let mut extra = BTreeSet::new();
    for (k, t) in targets.iter().enumerate() {
        let (_, reread, _) = closure(g, &pass, k as u32, t, &kept);
        extra.extend(reread.into_iter().filter(|n| !stored.contains(n)));
    }
    extra.into_iter().collect()
}

/// The passes of a kernel: what the code generator emits for each.
pub fn plan_passes(g: &Graph, spec: &KernelSpec) -> Passes {
    let pass = pass_numbers(g, &spec.nodes);
    let out_nodes: Vec<NodeId> = spec.outputs.iter().map(|o| o.0).collect();
    let targets = pass_targets(g, &spec.nodes, &out_nodes, &pass);
    // A value an earlier pass stored (as itself: not added to what was there) can be read back.
    let stored_at = |n: NodeId| spec.outputs.iter().position(|&(o, s)| o == n && s == Store::Set);
    let kept = |n: NodeId| stored_at(n).is_some();
    let mut passes: Vec<PassPlan> = vec![PassPlan::default(); targets.len()];
    for (k, plan) in passes.iter_mut().enumerate() {
        let (compute, reread, loads) = closure(g, &pass, k as u32, &targets[k], &kept);
        plan.compute = compute;
        plan.loads = loads;
        plan.reloads = reread.into_iter().map(|n| (n, stored_at(n).expect("kept values are stored"))).collect();
    }
    for &n in &spec.nodes {
        let p = pass[&n] as usize;
        if is_row(g, n) {
            passes[p].row_nodes.push(n);
        }
        if is_reduction(g.node(n).op) {
            passes[p - 1].reductions.push(n);
        }
    }
    for (i, &(o, _)) in spec.outputs.iter().enumerate() {
        passes[pass.get(&o).copied().unwrap_or(0) as usize].stores.push(i);
    }
    let row_inputs = spec.inputs.iter().copied().filter(|&n| is_row(g, n)).collect();
    Passes { row_inputs, passes }
}
