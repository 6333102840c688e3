//! Rematerialisation: a cheap element-wise value that a later stage reads is recomputed there
//! from values stored anyway, instead of being stored for every step and read back. A layer
//! normalisation's `v - mean(v)` and `(v - mean(v))/s` for four gates cost eight stored vectors;
//! recomputed, they cost the mean and the deviation (two). Kernels are memory-bound: an add, a
//! product or a division costs less than a vector's store and load.

use std::collections::{BTreeMap, BTreeSet};

use super::super::*;
use super::{Phase, Planner, is_matrix_op};
use crate::check::Shape;
use crate::ir::{NodeId, Op};

/// Where a kernel is: (phase, level, vector size).
pub(super) type KernelKey = (Phase, u32, Dim);

impl Planner<'_> {
    /// Takes out of `stored` the values each reader recomputes instead, and says which kernel
    /// recomputes which (`self.recomputed`). A value qualifies when it is a cheap vector op of a
    /// phase run per row, only kernels read it elsewhere, nothing else needs its slot (a GEMM
    /// operand, a gradient, a next state, a sink), and each argument is a leaf, stored anyway,
    /// one number per example (then stored), or qualifies too.
    pub(super) fn rematerialize(&mut self, stored: &mut BTreeSet<NodeId>) {
        let g = self.g;
        let mut pinned: BTreeSet<NodeId> = self.post_roots().into_iter().chain(g.next.iter().copied()).collect();
        pinned.extend(self.sinks.values().flatten().map(|s| s.node));
        let reachable = g.reachable(&self.b.roots());
        for &id in reachable.iter().chain(&g.reachable(&g.next)) {
            if is_matrix_op(g.node(id).op) {
                pinned.extend(g.node(id).args().iter().copied());
            }
        }
        let cheap = |id: NodeId| matches!(g.node(id).op, Op::Add | Op::Sub | Op::Mul | Op::Neg | Op::Div);
        let mut chosen: BTreeSet<NodeId> = stored
            .iter()
            .copied()
            .filter(|&id| {
                cheap(id)
                    && !pinned.contains(&id)
                    && matches!(g.node(id).shape, Shape::Vector(_))
                    && self.phase_of[&id] != Phase::Setup
            })
            .collect();
        // Drop values with an argument that would have to be stored only for them.
        loop {
            let before = chosen.len();
            let keep: Vec<NodeId> = chosen
                .iter()
                .copied()
                .filter(|&id| {
                    g.node(id).args().iter().all(|&a| {
                        !self.phase_of.contains_key(&a)
                            || chosen.contains(&a)
                            || stored.contains(&a)
                            || g.node(a).shape == Shape::Row
                    })
                })
                .collect();
            chosen = keep.into_iter().collect();
            if chosen.len() == before {
                break;
            }
        }
        for &id in &chosen {
            stored.remove(&id);
        }
        for &id in &chosen {
            for &a in g.node(id).args() {
                if self.phase_of.contains_key(&a) && !chosen.contains(&a) {
                    stored.insert(a); // a row value (the others are stored already)
                }
            }
        }
        // Each reader outside the value's own stage (a recomputed value in its own kernel too)
        // recomputes it and what it needs of `chosen`.
        let mut recomputed: BTreeMap<KernelKey, BTreeSet<NodeId>> = BTreeMap::new();
        for &id in reachable.iter().chain(&g.reachable(&g.next)) {
            let Some(&phase) = self.phase_of.get(&id) else { continue };
            let key = (phase, self.level[&id], self.dim(id));
            for &a in g.node(id).args() {
                if chosen.contains(&a) && self.kernel_key(a) != key {
                    let mut stack = vec![a];
                    while let Some(n) = stack.pop() {
                        if recomputed.entry(key).or_default().insert(n) {
                            stack.extend(g.node(n).args().iter().copied().filter(|c| chosen.contains(c)));
                        }
                    }
                }
            }
        }
        self.recomputed = recomputed;
    }

    fn kernel_key(&self, id: NodeId) -> KernelKey {
        (self.phase_of[&id], self.level[&id], self.dim(id))
    }
}
