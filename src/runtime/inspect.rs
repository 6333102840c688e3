//! Finding where a run went wrong: the first forward value, in the order the run computed them,
//! that is NaN or infinite.

use super::{Buffers, Engine};
use crate::check::{Dim, Shape};
use crate::ir::NodeId;
use crate::schedule::{Blocks, Cols, Slot, Stage};

/// A value that was not finite: the step (0-based; `None` for the setup phase, which runs once)
/// and the graph node that produced it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NonFinite {
    pub step: Option<usize>,
    pub node: NodeId,
}

/// The first non-finite forward value of the last forward run in `bufs`.
pub fn first_non_finite(e: &Engine, bufs: &Buffers) -> Option<NonFinite> {
    let sch = &e.schedule;
    let found = |stage: &Stage, t: Option<usize>| -> Option<NodeId> {
        written(e, stage).into_iter().find(|(slot, _)| !finite(bufs, e, slot, t)).map(|(_, n)| n)
    };
    for stage in &sch.setup {
        if let Some(node) = found(stage, None) {
            return Some(NonFinite { step: None, node });
        }
    }
    for t in 0..bufs.sizes.steps {
        for stage in sch.forward_pre.iter().chain(&sch.forward_step) {
            if let Some(node) = found(stage, Some(t)) {
                return Some(NonFinite { step: Some(t), node });
            }
        }
    }
    None
}

/// What a stage writes, one entry per node: (slot of the node's columns, the node).
fn written(e: &Engine, stage: &Stage) -> Vec<(Slot, NodeId)> {
    let g = &e.backward.graph;
    let dim = |n: NodeId| match g.node(n).shape {
        Shape::Vector(d) => d,
        Shape::Scalar | Shape::Row => Dim::H,
    };
    match stage {
        Stage::Gemm { out, nodes, .. } => {
            // The stacked products sit side by side in the output, in node order.
            let mut col = out.col;
            nodes
                .iter()
                .map(|&n| {
                    let d = dim(n);
                    let slot = Slot { col, dim: d, ..*out };
                    col = if d == Dim::H { Cols { h: col.h + 1, ..col } } else { Cols { d: col.d + 1, ..col } };
                    (slot, n)
                })
                .collect()
        }
        Stage::Kernel { kernel, args } => {
            let spec = &e.schedule.kernels[*kernel];
            args[spec.inputs.len()..].iter().zip(&spec.outputs).map(|(slot, (node, _))| (*slot, *node)).collect()
        }
    }
}

/// Whether the rows of step `t` (or the setup row) of a slot are all finite.
fn finite(bufs: &Buffers, e: &Engine, slot: &Slot, t: Option<usize>) -> bool {
    let s = bufs.sizes;
    let buf = &e.schedule.buffers[slot.buf];
    if slot.buf >= bufs.data.len() {
        return true;
    }
    let data = bufs.buf(slot.buf);
    if data.is_empty() {
        return true;
    }
    let width = buf.width.at(s.hidden, s.input);
    let col = slot.col.at(s.hidden, s.input);
    let cols = if slot.dim == Dim::H { s.hidden } else { s.input };
    let rows = match (buf.blocks, t) {
        (Blocks::Broadcast, _) | (_, None) => 0..1,
        (Blocks::Parts, _) => 0..crate::schedule::MAX_PARTS,
        (_, Some(t)) => {
            let block = t as i64 + i64::from(slot.shift);
            if block < 0 {
                return true;
            }
            block as usize * s.batch..(block as usize + 1) * s.batch
        }
    };
    rows.into_iter().all(|r| {
        let from = r * width + col;
        data.get(from..from + cols).is_none_or(|v| v.iter().all(|x| x.is_finite()))
    })
}
