//! The stages of each phase: GEMMs grouped by operand, fused kernels per level, and the plans
//! of the gradients, all reading and writing the slots the planner gave each value.

use std::collections::BTreeSet;

use super::super::*;
use super::{Phase, Planner, Sink, is_matrix_op};
use crate::autodiff::ParamGrad;
use crate::check::ParamKind;
use crate::ir::{Graph, NodeId, Op};

impl Planner<'_> {
    /// Where a value can be read: its home, or the leaf's own buffer. `None` for constants.
    fn slot(&mut self, id: NodeId) -> Option<Slot> {
        if let Some(s) = self.homes.get(&id) {
            return Some(*s);
        }
        let col = Cols::default();
        Some(match self.g.node(id).op {
            Op::Input => Slot { buf: self.input_buf, col, dim: self.buffers_dim(self.input_buf), shift: 0 },
            Op::State(s) => Slot { buf: self.state_bufs[s as usize], col, dim: Dim::H, shift: 0 },
            Op::AdjNext(s) => Slot { buf: self.adjoint_bufs[s as usize], col, dim: Dim::H, shift: 1 },
            Op::Param(p) => {
                let p = p as usize;
                let len = match self.g.sig.params[p].kind {
                    ParamKind::Vector { len } => len,
                    ParamKind::Matrix { .. } => unreachable!("matrices are only read by GEMMs"),
                };
                let buf = match self.param_bufs.get(&p) {
                    Some(&b) => b,
                    None => {
                        self.buffers.push(Buffer {
                            name: self.g.sig.params[p].name.clone(),
                            role: BufferRole::Param(p),
                            width: Cols::of(len),
                            blocks: Blocks::Broadcast,
                        });
                        let b = self.buffers.len() - 1;
                        self.param_bufs.insert(p, b);
                        b
                    }
                };
                Slot { buf, col, dim: len, shift: 0 }
            }
            Op::Mask(k) => {
                let k = k as usize;
                let dim = self.g.sig.masks[k].dim;
                let buf = match self.mask_bufs.get(&k) {
                    Some(&b) => b,
                    None => {
                        let name = format!("{}{k}", self.g.sig.masks[k].kind.name());
                        self.buffers.push(Buffer {
                            name,
                            role: BufferRole::Mask(k),
                            width: Cols::of(dim),
                            blocks: Blocks::Steps,
                        });
                        self.mask_bufs.insert(k, self.buffers.len() - 1);
                        self.buffers.len() - 1
                    }
                };
                Slot { buf, col, dim, shift: 0 }
            }
            Op::Const(_) => return None,
            op => unreachable!("computed value {id:?} ({op:?}) without a home"),
        })
    }

    /// The stages of one phase: for each level, its GEMMs then its kernels; last, the sinks of
    /// values no kernel of the phase computes.
    pub(super) fn stages(&mut self, phase: Phase, stored: &BTreeSet<NodeId>) -> Vec<Stage> {
        let nodes: Vec<NodeId> = self.g.ids().filter(|id| self.phase_of.get(id) == Some(&phase)).collect();
        let max_level = nodes.iter().map(|n| self.level[n]).max().unwrap_or(0);
        let sinks = self.sinks.get(&phase).cloned().unwrap_or_default();
        let mut stages = vec![];
        let mut sunk = BTreeSet::new();
        for level in 0..=max_level {
            for (key, group) in self.gemm_groups(stored) {
                if key.0 == phase && key.1 == level {
                    stages.push(self.gemm_stage(key.2, key.3, &group));
                }
            }
            for dim in [Dim::H, Dim::D] {
                let own = nodes
                    .iter()
                    .copied()
                    .filter(|&n| self.level[&n] == level && !is_matrix_op(self.g.node(n).op) && self.dim(n) == dim);
                let again = self.recomputed.get(&(phase, level, dim)).into_iter().flatten().copied();
                // Node ids are in topological order.
                let members: Vec<NodeId> = own.chain(again).collect::<BTreeSet<_>>().into_iter().collect();
                if members.is_empty() {
                    continue;
                }
                // A row value reduced over D that is a next state is spread over H by a kernel
                // of its own. A sink of a value the kernel reads anyway is written here too.
                let reads = |n: NodeId| members.iter().any(|&m| self.g.node(m).args().contains(&n));
                let extra: Vec<Sink> = sinks
                    .iter()
                    .filter(|s| !sunk.contains(&s.node) && s.slot.dim == dim)
                    .filter(|s| members.contains(&s.node) || (s.store == Store::Accumulate && reads(s.node)))
                    .copied()
                    .collect();
                sunk.extend(extra.iter().map(|s| s.node));
                let name = format!("{}_{level}{}", phase_name(phase), if dim == Dim::D { "_d" } else { "" });
                stages.push(self.kernel_stage(name, dim, &members, stored, &extra));
            }
        }
        let rest: Vec<Sink> = sinks.iter().filter(|s| !sunk.contains(&s.node)).copied().collect();
        for dim in [Dim::H, Dim::D] {
            let part: Vec<Sink> = rest.iter().filter(|s| s.slot.dim == dim).copied().collect();
            if !part.is_empty() {
                let name = format!("{}_out{}", phase_name(phase), if dim == Dim::D { "_d" } else { "" });
                stages.push(self.kernel_stage(name, dim, &[], stored, &part));
            }
        }
        stages
    }

    fn gemm_stage(&mut self, operand: NodeId, backward: bool, group: &[NodeId]) -> Stage {
        let params: Vec<usize> = group
            .iter()
            .map(|&n| match self.g.node(n).op {
                Op::MatVec(p) | Op::MatVecT(p) => p as usize,
                _ => unreachable!("GEMM groups hold matrix products"),
            })
            .collect();
        let stack = WeightStack { params, transposed: !backward };
        let stack = match self.stacks.iter().position(|s| *s == stack) {
            Some(i) => i,
            None => {
                self.stacks.push(stack);
                self.stacks.len() - 1
            }
        };
        let operand = self.slot(operand).expect("GEMM operands are vectors");
        let out = self.homes[&group[0]];
        Stage::Gemm { operand, stack, out, nodes: group.to_vec() }
    }

    /// A kernel computing `members` (in order), reading what it does not compute, storing stored
    /// members and the `sinks`.
    fn kernel_stage(
        &mut self,
        name: String,
        dim: Dim,
        members: &[NodeId],
        stored: &BTreeSet<NodeId>,
        sinks: &[Sink],
    ) -> Stage {
        let inside: BTreeSet<NodeId> = members.iter().copied().collect();
        let mut inputs: Vec<NodeId> = vec![];
        let needs = |id: NodeId, g: &Graph, inputs: &mut Vec<NodeId>| {
            if !inside.contains(&id) && g.const_value(id).is_none() && !inputs.contains(&id) {
                inputs.push(id);
            }
        };
        for &m in members {
            for &a in self.g.node(m).args() {
                needs(a, self.g, &mut inputs);
            }
        }
        for s in sinks {
            needs(s.node, self.g, &mut inputs);
        }
        let mut outputs = vec![];
        let mut args = vec![];
        for &i in &inputs {
            args.push(self.slot(i).expect("inputs are not constants"));
        }
        // Values a later pass over the row reads that are cheaper to store than to recompute.
        let across_passes = super::super::passes::values_to_store(self.g, members, stored);
        for &m in &across_passes {
            let dim = self.dim(m);
            let buf = self.new_buffer(self.label(m), Cols::of(dim), self.phase_of[&m]);
            self.homes.insert(m, Slot { buf, col: Cols::default(), dim, shift: 0 });
        }
        for &m in members {
            if stored.contains(&m) || across_passes.contains(&m) {
                outputs.push((m, Store::Set));
                args.push(self.homes[&m]);
            }
        }
        for s in sinks {
            if self.homes.get(&s.node) != Some(&s.slot) {
                outputs.push((s.node, s.store));
                args.push(s.slot);
            }
        }
        self.kernels.push(KernelSpec { name, dim, inputs, nodes: members.to_vec(), outputs });
        Stage::Kernel { kernel: self.kernels.len() - 1, args }
    }

    pub(super) fn input_grad_plan(&mut self) -> InputGradPlan {
        let matvecs = self.input_matvecs.clone();
        let rest = self.input_rest.clone();
        InputGradPlan {
            matvecs: matvecs.iter().filter_map(|&(p, n, sign)| self.slot(n).map(|s| (p, s, sign))).collect(),
            rest: rest.iter().filter_map(|&(n, sign)| self.slot(n).map(|s| (s, sign))).collect(),
        }
    }

    pub(super) fn grad_plans(&mut self) -> Vec<GradPlan> {
        let grads = self.b.d_params.clone();
        grads
            .iter()
            .map(|grad| match grad {
                ParamGrad::Vector(n) => GradPlan::Vector(match self.summed.get(n) {
                    Some(&parts) => Some(parts),
                    None if self.g.const_value(*n).is_some() => None,
                    None => self.slot(*n),
                }),
                ParamGrad::Matrix(terms) => GradPlan::Matrix(
                    terms
                        .iter()
                        .filter_map(|(gn, vn)| match (self.slot(*gn), self.slot(*vn)) {
                            (Some(gs), Some(vs)) => Some((gs, vs)),
                            _ => None, // a constant factor: only zero is possible here
                        })
                        .collect(),
                ),
            })
            .collect()
    }
}

fn phase_name(p: Phase) -> &'static str {
    match p {
        Phase::Setup => "setup",
        Phase::ForwardPre => "fwd_pre",
        Phase::ForwardStep => "fwd_step",
        Phase::BackwardStep => "bwd_step",
        Phase::BackwardPost => "bwd_post",
    }
}
