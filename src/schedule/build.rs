//! Building the schedule: phase membership, levels (how many GEMMs deep a value is within its
//! phase), which values must be stored, where, and the stages that compute them.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::*;
use crate::autodiff::{Backward, ParamGrad};
use crate::check::Shape;
use crate::ir::{Graph, NodeId, Op};

mod remat;
mod stages;

/// The phases, in run order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Phase {
    /// Values of parameters alone (`W*b`, `sigm(b)`): one row, computed once per run.
    Setup,
    ForwardPre,
    ForwardStep,
    BackwardStep,
    BackwardPost,
}

/// A write a phase must make besides storing values for later readers: a next state into its
/// state buffer, a state adjoint into the previous step's adjoint, the input gradient.
#[derive(Clone, Copy, Debug)]
struct Sink {
    node: NodeId,
    slot: Slot,
    store: Store,
}

struct Planner<'a> {
    g: &'a Graph,
    b: &'a Backward,
    /// Display names (`cellc grad`'s), for buffer names.
    names: HashMap<NodeId, String>,
    /// The vector size each row value (one number per example) was reduced over, so the kernel
    /// of those columns computes it.
    row_dims: HashMap<NodeId, Dim>,
    /// The input gradient as a signed sum: `± g W` terms (parameter, g) and other terms.
    input_matvecs: Vec<(usize, NodeId, f32)>,
    input_rest: Vec<(NodeId, f32)>,
    phase_of: HashMap<NodeId, Phase>,
    level: HashMap<NodeId, u32>,
    buffers: Vec<Buffer>,
    homes: HashMap<NodeId, Slot>,
    param_bufs: HashMap<usize, BufId>,
    mask_bufs: HashMap<usize, BufId>,
    sinks: BTreeMap<Phase, Vec<Sink>>,
    kernels: Vec<KernelSpec>,
    stacks: Vec<WeightStack>,
    /// Vector-parameter gradients summed over rows by the backward post kernel computing them:
    /// node -> its `Blocks::Parts` slot.
    summed: BTreeMap<NodeId, Slot>,
    /// Values each kernel recomputes instead of reading them from a slot (`remat.rs`).
    recomputed: BTreeMap<remat::KernelKey, BTreeSet<NodeId>>,
    state_bufs: Vec<BufId>,
    adjoint_bufs: Vec<BufId>,
    input_buf: BufId,
    input_grad_buf: BufId,
}

/// Plans the forward and backward passes of a differentiated cell.
pub fn plan(b: &Backward) -> Schedule {
    let mut p = Planner::new(b);
    p.split_input_grad();
    p.assign_phases();
    p.assign_levels();
    p.add_sinks();
    let mut stored = p.stored_nodes();
    p.rematerialize(&mut stored);
    p.assign_homes(&stored);
    let setup = p.stages(Phase::Setup, &stored);
    let forward_pre = p.stages(Phase::ForwardPre, &stored);
    let forward_step = p.stages(Phase::ForwardStep, &stored);
    let backward_step = p.stages(Phase::BackwardStep, &stored);
    let backward_post = p.stages(Phase::BackwardPost, &stored);
    let grads = p.grad_plans();
    let input_grad = p.input_grad_plan();
    Schedule {
        input_grad,
        buffers: p.buffers,
        kernels: p.kernels,
        stacks: p.stacks,
        setup,
        forward_pre,
        forward_step,
        backward_step,
        backward_post,
        grads,
        state_bufs: p.state_bufs,
        adjoint_bufs: p.adjoint_bufs,
        input_buf: p.input_buf,
        input_grad_buf: p.input_grad_buf,
    }
}

fn is_matrix_op(op: Op) -> bool {
    matches!(op, Op::MatVec(_) | Op::MatVecT(_))
}

impl<'a> Planner<'a> {
    fn new(b: &'a Backward) -> Planner<'a> {
        let g = &b.graph;
        let input_dim = if g.sig.d_equals_h { Dim::H } else { Dim::D };
        let mut buffers = vec![];
        let mut add = |name: String, role: BufferRole, dim: Dim, blocks: Blocks| {
            buffers.push(Buffer { name, role, width: Cols::of(dim), blocks });
            buffers.len() - 1
        };
        let input_buf = add("x".into(), BufferRole::Input, input_dim, Blocks::Steps);
        let input_grad_buf = add("dx".into(), BufferRole::InputGrad, input_dim, Blocks::Steps);
        let state_bufs = (0..g.sig.states.len())
            .map(|s| add(g.sig.states[s].clone(), BufferRole::State(s), Dim::H, Blocks::StatesPlusOne))
            .collect();
        let adjoint_bufs = (0..g.sig.states.len())
            .map(|s| add(format!("d{}'", g.sig.states[s]), BufferRole::StateAdjoint(s), Dim::H, Blocks::StatesPlusOne))
            .collect();
        Planner {
            g,
            b,
            names: crate::autodiff::print::names(b),
            row_dims: row_dims(g),
            input_matvecs: vec![],
            input_rest: vec![],
            phase_of: HashMap::new(),
            level: HashMap::new(),
            buffers,
            homes: HashMap::new(),
            param_bufs: HashMap::new(),
            mask_bufs: HashMap::new(),
            sinks: BTreeMap::new(),
            kernels: vec![],
            stacks: vec![],
            recomputed: BTreeMap::new(),
            summed: BTreeMap::new(),
            state_bufs,
            adjoint_bufs,
            input_buf,
            input_grad_buf,
        }
    }

    fn dim(&self, id: NodeId) -> Dim {
        match self.g.node(id).shape {
            Shape::Vector(d) => d,
            Shape::Row => self.row_dims[&id],
            Shape::Scalar => Dim::H,
        }
    }

    /// GEMMs and kernel boundaries between `arg` and its reader `n` in one phase: 1 across a
    /// matrix product, and 1 when `n` uses a row value reduced over the other size (the kernel
    /// over those columns must finish first).
    fn level_step(&self, arg: NodeId, n: NodeId) -> u32 {
        let crosses = self.g.node(arg).shape == Shape::Row && self.dim(arg) != self.dim(n);
        u32::from(is_matrix_op(self.g.node(n).op) || crosses)
    }

    /// Splits the input gradient into `± Wᵀ g` terms, which become GEMMs over all rows (or, for
    /// an embedding input, over the vocabulary), and other signed terms. Only sums used by
    /// nothing else are taken apart.
    fn split_input_grad(&mut self) {
        let g = self.g;
        let counts = g.use_counts(&self.b.roots());
        let mut stack = vec![(self.b.d_input, 1.0f32)];
        while let Some((n, sign)) = stack.pop() {
            let node = g.node(n);
            // A term that is one number per example stays inside its sum: the runtime adds
            // vectors.
            let rows_inside = node.args().iter().any(|&a| g.node(a).shape == Shape::Row);
            let open = (n == self.b.d_input || counts[n.index()] == 1) && !rows_inside;
            match node.op {
                Op::Add if open => stack.extend([(node.args[1], sign), (node.args[0], sign)]),
                Op::Sub if open => stack.extend([(node.args[1], -sign), (node.args[0], sign)]),
                Op::Neg if open => stack.push((node.args[0], -sign)),
                Op::MatVecT(p) if open => self.input_matvecs.push((p as usize, node.args[0], sign)),
                Op::Const(_) if g.const_value(n) == Some(0.0) => {}
                _ => self.input_rest.push((n, sign)),
            }
        }
    }

    /// Whether the backward post phase must produce `id` for something besides a vector
    /// parameter's gradient.
    fn other_root(&self, id: NodeId) -> bool {
        self.input_matvecs.iter().any(|t| t.1 == id)
            || self.input_rest.iter().any(|t| t.0 == id)
            || self.b.d_params.iter().any(|g| match g {
                ParamGrad::Matrix(terms) => terms.iter().any(|(a, b)| *a == id || *b == id),
                ParamGrad::Vector(_) => false,
            })
    }

    /// The roots the backward post phase must produce.
    fn post_roots(&self) -> Vec<NodeId> {
        let mut roots: Vec<NodeId> = self.input_matvecs.iter().map(|t| t.1).collect();
        roots.extend(self.input_rest.iter().map(|t| t.0));
        for grad in &self.b.d_params {
            match grad {
                ParamGrad::Vector(n) => roots.push(*n),
                ParamGrad::Matrix(terms) => terms.iter().for_each(|(g, v)| roots.extend([*g, *v])),
            }
        }
        roots
    }

    /// Forward: values of parameters alone in setup, other values without state dependence in
    /// the pre phase, the rest per step. Backward: the chain to the state adjoints per step,
    /// everything else after the loop.
    fn assign_phases(&mut self) {
        let g = self.g;
        // 0: parameters and constants only; 1: reads x; 2: reads a state.
        let mut class = vec![0u8; g.len()];
        for id in g.ids().take(self.b.forward_len) {
            let n = g.node(id);
            class[id.index()] = match n.op {
                Op::State(_) => 2,
                // A mask differs from step to step, like x.
                Op::Input | Op::Mask(_) => 1,
                _ => n.args().iter().map(|a| class[a.index()]).max().unwrap_or(0),
            };
            if n.op.arity() > 0 {
                let phase = [Phase::Setup, Phase::ForwardPre, Phase::ForwardStep][class[id.index()] as usize];
                self.phase_of.insert(id, phase);
            }
        }
        let computed = |g: &Graph, id: NodeId, fl: usize| id.index() >= fl && g.node(id).op.arity() > 0;
        for id in g.reachable(&self.b.d_state) {
            if computed(g, id, self.b.forward_len) {
                self.phase_of.insert(id, Phase::BackwardStep);
            }
        }
        for id in g.reachable(&self.post_roots()) {
            if computed(g, id, self.b.forward_len) {
                self.phase_of.entry(id).or_insert(Phase::BackwardPost);
            }
        }
    }

    /// Level: GEMMs (and crossings from a row value of one vector size to the other, see
    /// [`Planner::level_step`]) between the phase's start and the node, counting its own. GEMMs run as
    /// early as they can; an element-wise value then moves as late as its readers in the phase
    /// allow, so it is computed in the kernel that uses it instead of being stored in between.
    fn assign_levels(&mut self) {
        for id in self.g.ids() {
            let Some(&phase) = self.phase_of.get(&id) else { continue };
            let n = self.g.node(id);
            let level = n
                .args()
                .iter()
                .filter(|a| self.phase_of.get(a) == Some(&phase))
                .map(|&a| self.level[&a] + self.level_step(a, id))
                .max()
                .unwrap_or(u32::from(is_matrix_op(n.op)));
            self.level.insert(id, level);
        }
        let mut latest: HashMap<NodeId, u32> = HashMap::new();
        for id in self.g.ids().collect::<Vec<_>>().into_iter().rev() {
            let Some(&phase) = self.phase_of.get(&id) else { continue };
            let n = *self.g.node(id);
            if !is_matrix_op(n.op)
                && let Some(&l) = latest.get(&id)
            {
                self.level.insert(id, l.max(self.level[&id]));
            }
            for &a in n.args() {
                if self.phase_of.get(&a) != Some(&phase) {
                    continue;
                }
                let need = self.level[&id] - self.level_step(a, id);
                let entry = latest.entry(a).or_insert(need);
                *entry = (*entry).min(need);
            }
        }
    }

    fn add_sinks(&mut self) {
        let g = self.g;
        for (s, &next) in g.next.iter().enumerate() {
            // A next state of parameters alone is computed once and copied into every step.
            let phase = match self.phase_of.get(&next) {
                Some(Phase::Setup) => Phase::ForwardPre,
                Some(&p) => p,
                None => Phase::ForwardStep,
            };
            let slot = Slot { buf: self.state_bufs[s], col: Cols::default(), dim: Dim::H, shift: 1 };
            self.sinks.entry(phase).or_default().push(Sink { node: next, slot, store: Store::Set });
        }
        // A vector gradient of the backward pass is summed over the rows by a backward post
        // kernel (the one computing it, or one reading it anyway): one partial sum per part of
        // the phase's parallel split.
        for grad in &self.b.d_params {
            let ParamGrad::Vector(n) = *grad else { continue };
            let backward = matches!(self.phase_of.get(&n), Some(Phase::BackwardPost | Phase::BackwardStep));
            if !backward || is_matrix_op(g.node(n).op) {
                continue;
            }
            if !matches!(g.node(n).shape, Shape::Vector(_)) || self.summed.contains_key(&n) {
                continue;
            }
            let dim = self.dim(n);
            let name = format!("Σ{}", self.label(n));
            self.buffers.push(Buffer { name, role: BufferRole::Temp, width: Cols::of(dim), blocks: Blocks::Parts });
            let slot = Slot { buf: self.buffers.len() - 1, col: Cols::default(), dim, shift: 0 };
            self.summed.insert(n, slot);
            self.sinks.entry(Phase::BackwardPost).or_default().push(Sink { node: n, slot, store: Store::Accumulate });
        }
        for (s, &d) in self.b.d_state.iter().enumerate() {
            if g.const_value(d) == Some(0.0) {
                continue;
            }
            let slot = Slot { buf: self.adjoint_bufs[s], col: Cols::default(), dim: Dim::H, shift: 0 };
            self.sinks.entry(Phase::BackwardStep).or_default().push(Sink { node: d, slot, store: Store::Accumulate });
        }
    }

    fn buffers_dim(&self, buf: BufId) -> Dim {
        if self.buffers[buf].width == Cols::of(Dim::D) { Dim::D } else { Dim::H }
    }

    /// Computed values that must be stored: GEMM outputs and operands, values read by a later
    /// stage or another phase, and values the gradients read.
    fn stored_nodes(&self) -> BTreeSet<NodeId> {
        let g = self.g;
        let mut stored = BTreeSet::new();
        let stage = |id: NodeId| (self.phase_of[&id], self.level[&id], is_matrix_op(g.node(id).op));
        for id in g.reachable(&self.b.roots()).into_iter().chain(g.reachable(&g.next)) {
            let Some(&phase) = self.phase_of.get(&id) else { continue };
            let n = g.node(id);
            if is_matrix_op(n.op) {
                stored.insert(id);
            }
            for &a in n.args() {
                if !self.phase_of.contains_key(&a) {
                    continue; // a leaf: it has a slot of its own
                }
                let read_elsewhere =
                    is_matrix_op(n.op) || self.phase_of[&a] != phase || stage(a) != (phase, self.level[&id], false);
                if read_elsewhere {
                    stored.insert(a);
                }
            }
        }
        // (A gradient the backward post kernel computing it sums is stored only if something
        // else reads it.)
        let summed_where_computed =
            |id: &NodeId| self.summed.contains_key(id) && self.phase_of.get(id) == Some(&Phase::BackwardPost);
        let roots = self.post_roots().into_iter().filter(|id| !summed_where_computed(id) || self.other_root(*id));
        for id in roots.chain(self.g.next.iter().copied()) {
            if self.phase_of.contains_key(&id) {
                stored.insert(id);
            }
        }
        stored
    }

    /// A buffer for values of `phase`: one row for setup values, else a row per example and step.
    fn new_buffer(&mut self, name: String, width: Cols, phase: Phase) -> BufId {
        let blocks = if phase == Phase::Setup { Blocks::Broadcast } else { Blocks::Steps };
        self.buffers.push(Buffer { name, role: BufferRole::Temp, width, blocks });
        self.buffers.len() - 1
    }

    /// Gives every stored value a slot. Next states that are computed in a kernel live in their
    /// state buffer; GEMM groups share one buffer, a column block each.
    fn assign_homes(&mut self, stored: &BTreeSet<NodeId>) {
        let g = self.g;
        for (s, &next) in g.next.iter().enumerate() {
            let per_row = matches!(self.phase_of.get(&next), Some(Phase::ForwardPre | Phase::ForwardStep));
            // (A row value reduced over D lives beside its kernel and is spread over H later.)
            let kernel_dim_fits = self.dim(next) == Dim::H;
            if per_row && kernel_dim_fits && !is_matrix_op(g.node(next).op) && !self.homes.contains_key(&next) {
                self.homes.insert(next, Slot { buf: self.state_bufs[s], col: Cols::default(), dim: Dim::H, shift: 1 });
            }
        }
        for (key, group) in self.gemm_groups(stored) {
            let name = format!("{}{}", if key.3 { "W" } else { "Wᵀ" }, group.len());
            let mut col = Cols::default();
            let cols: Vec<Cols> = group
                .iter()
                .map(|&n| {
                    let at = col;
                    col = col.plus(Cols::of(self.dim(n)));
                    at
                })
                .collect();
            let buf = self.new_buffer(format!("{name}·{}", self.label(key.2)), col, key.0);
            for (&n, at) in group.iter().zip(cols) {
                self.homes.insert(n, Slot { buf, col: at, dim: self.dim(n), shift: 0 });
            }
        }
        for &id in stored {
            if !self.homes.contains_key(&id) {
                let dim = self.dim(id);
                let buf = self.new_buffer(self.label(id), Cols::of(dim), self.phase_of[&id]);
                self.homes.insert(id, Slot { buf, col: Cols::default(), dim, shift: 0 });
            }
        }
    }

    /// GEMM nodes grouped by (phase, level, operand, forward): one GEMM each.
    fn gemm_groups(&self, stored: &BTreeSet<NodeId>) -> BTreeMap<(Phase, u32, NodeId, bool), Vec<NodeId>> {
        let mut groups: BTreeMap<(Phase, u32, NodeId, bool), Vec<NodeId>> = BTreeMap::new();
        for &id in stored {
            let n = self.g.node(id);
            if is_matrix_op(n.op) {
                let backward = matches!(n.op, Op::MatVecT(_));
                groups.entry((self.phase_of[&id], self.level[&id], n.args[0], backward)).or_default().push(id);
            }
        }
        groups
    }

    /// A short name for a node's buffer: its display name, or `v<id>`.
    fn label(&self, id: NodeId) -> String {
        match self.names.get(&id) {
            Some(n) => n.clone(),
            None => match self.g.node(id).op {
                Op::Input => "x".into(),
                Op::State(s) => self.g.sig.states[s as usize].clone(),
                Op::AdjNext(s) => format!("d{}'", self.g.sig.states[s as usize]),
                Op::Param(p) => self.g.sig.params[p as usize].name.clone(),
                Op::Mask(k) => format!("mask{k}"),
                _ => format!("v{}", id.0),
            },
        }
    }
}

/// The vector size each row value of `g` comes from: a reduction's, or its first row argument's.
fn row_dims(g: &Graph) -> HashMap<NodeId, Dim> {
    let mut dims = HashMap::new();
    for id in g.ids() {
        let n = g.node(id);
        if n.shape != Shape::Row {
            continue;
        }
        let dim = match n.op {
            Op::Sum(d) | Op::Mean(d) => d,
            _ => n.args().iter().find_map(|a| dims.get(a).copied()).unwrap_or(Dim::H),
        };
        dims.insert(id, dim);
    }
    dims
}
