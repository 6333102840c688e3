//! `cellc compile --emit schedule`: the plan as text, phase by phase.

use super::*;
use crate::autodiff::Backward;
use crate::ir::raise::Raiser;
use crate::syntax::print;

/// A readable account of the schedule of `b`.
pub fn describe(s: &Schedule, b: &Backward) -> String {
    let g = &b.graph;
    let p = Printer { s, b, raiser: Raiser { g, names: crate::autodiff::print::names(b) } };
    let mut out = format!(
        "schedule of {}: {} buffers, {} kernels, {} weight stacks\n\nbuffers\n",
        g.sig.name,
        s.buffers.len(),
        s.kernels.len(),
        s.stacks.len()
    );
    p.buffers(&mut out);
    for (name, stages) in s.phases() {
        out.push_str(&format!("\n{name}\n"));
        if stages.is_empty() {
            out.push_str("  (nothing)\n");
        }
        for stage in stages {
            p.stage(stage, &mut out);
        }
    }
    p.input_grad(&mut out);
    p.weight_grads(&mut out);
    out
}

/// Column counts as multiples of H and D: `H`, `2D`, `3H+1D`.
fn cols(c: Cols) -> String {
    let unit = |n: u32, u: &str| if n == 1 { u.to_string() } else { format!("{n}{u}") };
    match (c.h, c.d) {
        (0, 0) => "0".to_string(),
        (h, 0) => unit(h, "H"),
        (0, d) => unit(d, "D"),
        (h, d) => format!("{h}H+{d}D"),
    }
}

fn rows(blocks: Blocks) -> &'static str {
    match blocks {
        Blocks::Steps => "T*B",
        Blocks::StatesPlusOne => "(T+1)*B",
        Blocks::Broadcast => "1",
        Blocks::Parts => "parts",
    }
}

fn sign(s: f32) -> &'static str {
    if s < 0.0 { "-" } else { "+" }
}

struct Printer<'a> {
    s: &'a Schedule,
    b: &'a Backward,
    raiser: Raiser<'a>,
}

impl Printer<'_> {
    fn show(&self, id: NodeId) -> String {
        print::expr(&self.raiser.expr(id))
    }

    fn define(&self, id: NodeId) -> String {
        print::expr(&self.raiser.definition(id))
    }

    /// A slot: its buffer, the first column if not 0, and its time shift.
    fn slot(&self, sl: &Slot) -> String {
        let buf = &self.s.buffers[sl.buf];
        let shift = match sl.shift {
            0 => String::new(),
            k => format!("@t{k:+}"),
        };
        let col = if sl.col == Cols::default() { String::new() } else { format!("[{}..]", cols(sl.col)) };
        format!("{}{col}{shift}", buf.name)
    }

    fn buffers(&self, out: &mut String) {
        for buf in &self.s.buffers {
            let role = match buf.role {
                BufferRole::Input => "input",
                BufferRole::State(_) => "state (block t: before step t)",
                BufferRole::StateAdjoint(_) => {
                    "state adjoint (block t+1: into step t; block 0: initial-state gradient)"
                }
                BufferRole::InputGrad => "input gradient",
                BufferRole::Param(_) => "parameter",
                BufferRole::Mask(_) => "mask (random while training)",
                BufferRole::Temp => "stored values",
            };
            out.push_str(&format!("  {:<16} [{}, {}]  {role}\n", buf.name, rows(buf.blocks), cols(buf.width)));
        }
    }

    fn stage(&self, stage: &Stage, out: &mut String) {
        let g = &self.b.graph;
        match stage {
            Stage::Gemm { operand, stack, out: dst, nodes } => {
                let st = &self.s.stacks[*stack];
                let mats: Vec<String> = st
                    .params
                    .iter()
                    .map(|p| format!("{}{}", g.sig.params[*p].name, if st.transposed { "ᵀ" } else { "" }))
                    .collect();
                out.push_str(&format!(
                    "  GEMM    {} = {} × [{}]\n          computes {}\n",
                    self.slot(dst),
                    self.slot(operand),
                    mats.join(" | "),
                    nodes.iter().map(|n| self.show(*n)).collect::<Vec<_>>().join(", ")
                ));
            }
            Stage::Kernel { kernel, args } => {
                let k = &self.s.kernels[*kernel];
                let (ins, outs) = args.split_at(k.inputs.len());
                // A kernel that reduces rows makes one pass over a row's columns per reduction.
                let passes = super::passes::plan_passes(&self.b.graph, k).passes.len();
                let passes = if passes > 1 { format!(", {passes} passes over each row") } else { String::new() };
                out.push_str(&format!(
                    "  kernel  {} ({}-wide, {} ops{passes})\n",
                    k.name,
                    cols(Cols::of(k.dim)),
                    k.nodes.len()
                ));
                if !ins.is_empty() {
                    let reads: Vec<String> = ins.iter().map(|sl| self.slot(sl)).collect();
                    out.push_str(&format!("          reads  {}\n", reads.join(", ")));
                }
                for ((node, store), sl) in k.outputs.iter().zip(outs) {
                    let op = if *store == Store::Accumulate { "+=" } else { "=" };
                    out.push_str(&format!("          {} {op} {}\n", self.slot(sl), self.define(*node)));
                }
            }
        }
    }

    fn input_grad(&self, out: &mut String) {
        let g = &self.b.graph;
        out.push_str("\ninput gradient (all T*B rows, after the backward loop)\n");
        let plan = &self.s.input_grad;
        let mut terms: Vec<String> = plan
            .matvecs
            .iter()
            .map(|(p, gs, s)| format!("{} {} × {}", sign(*s), self.slot(gs), g.sig.params[*p].name))
            .collect();
        terms.extend(plan.rest.iter().map(|(sl, s)| format!("{} {}", sign(*s), self.slot(sl))));
        out.push_str(&format!("  dx = {}\n", if terms.is_empty() { "0".to_string() } else { terms.join(" ") }));
    }

    fn weight_grads(&self, out: &mut String) {
        let g = &self.b.graph;
        out.push_str("\nweight gradients (summed over all T*B rows after the backward loop)\n");
        for (p, grad) in self.s.grads.iter().enumerate() {
            let name = &g.sig.params[p].name;
            match grad {
                GradPlan::Vector(None) => out.push_str(&format!("  d{name} = 0\n")),
                GradPlan::Vector(Some(sl)) => out.push_str(&format!("  d{name} = column sums of {}\n", self.slot(sl))),
                GradPlan::Matrix(terms) => {
                    for (gs, vs) in terms {
                        let (gs, vs) = (self.slot(gs), self.slot(vs));
                        out.push_str(&format!("  d{name} += {gs}ᵀ × {vs}   (one GEMM, k = T*B)\n"));
                    }
                }
            }
        }
    }
}
