//! `cellc compile --emit schedule`: the plan as text, phase by phase.

use super::*;
use crate::autodiff::Backward;
use crate::ir::raise::Raiser;
use crate::syntax::print;

/// A readable account of the schedule of `b`.
pub fn describe(s: &Schedule, b: &Backward) -> String {
    let g = &b.graph;
    let raiser = Raiser { g, names: crate::autodiff::print::names(b) };
    let show = |id: NodeId| print::expr(&raiser.expr(id));
    let g_name = |p: usize| g.sig.params[p].name.clone();
    let define = |id: NodeId| print::expr(&raiser.definition(id));
    let cols = |c: Cols| match (c.h, c.d) {
        (0, 0) => "0".to_string(),
        (h, 0) => {
            if h == 1 {
                "H".into()
            } else {
                format!("{h}H")
            }
        }
        (0, d) => {
            if d == 1 {
                "D".into()
            } else {
                format!("{d}D")
            }
        }
        (h, d) => format!("{h}H+{d}D"),
    };
    let rows = |blocks: Blocks| match blocks {
        Blocks::Steps => "T*B",
        Blocks::StatesPlusOne => "(T+1)*B",
        Blocks::Broadcast => "1",
    };
    let slot = |sl: &Slot| {
        let buf = &s.buffers[sl.buf];
        let shift = match sl.shift {
            0 => String::new(),
            k => format!("@t{k:+}"),
        };
        let col = if sl.col == Cols::default() { String::new() } else { format!("[{}..]", cols(sl.col)) };
        format!("{}{col}{shift}", buf.name)
    };
    let mut out = format!(
        "schedule of {}: {} buffers, {} kernels, {} weight stacks\n\nbuffers\n",
        g.sig.name,
        s.buffers.len(),
        s.kernels.len(),
        s.stacks.len()
    );
    for buf in &s.buffers {
        let role = match buf.role {
            BufferRole::Input => "input".to_string(),
            BufferRole::State(_) => "state (block t: before step t)".into(),
            BufferRole::StateAdjoint(_) => {
                "state adjoint (block t+1: into step t; block 0: initial-state gradient)".into()
            }
            BufferRole::InputGrad => "input gradient".into(),
            BufferRole::Param(_) => "parameter".into(),
            BufferRole::Temp => "stored values".into(),
        };
        out.push_str(&format!("  {:<16} [{}, {}]  {role}\n", buf.name, rows(buf.blocks), cols(buf.width)));
    }
    for (name, stages) in s.phases() {
        out.push_str(&format!("\n{name}\n"));
        if stages.is_empty() {
            out.push_str("  (nothing)\n");
        }
        for stage in stages {
            match stage {
                Stage::Gemm { operand, stack, out: dst, nodes } => {
                    let st = &s.stacks[*stack];
                    let mats: Vec<String> = st
                        .params
                        .iter()
                        .map(|p| format!("{}{}", g.sig.params[*p].name, if st.transposed { "ᵀ" } else { "" }))
                        .collect();
                    out.push_str(&format!(
                        "  GEMM    {} = {} × [{}]\n          computes {}\n",
                        slot(dst),
                        slot(operand),
                        mats.join(" | "),
                        nodes.iter().map(|n| show(*n)).collect::<Vec<_>>().join(", ")
                    ));
                }
                Stage::Kernel { kernel, args } => {
                    let k = &s.kernels[*kernel];
                    let (ins, outs) = args.split_at(k.inputs.len());
                    out.push_str(&format!(
                        "  kernel  {} ({}-wide, {} ops)\n",
                        k.name,
                        cols(Cols::of(k.dim)),
                        k.nodes.len()
                    ));
                    if !ins.is_empty() {
                        out.push_str(&format!(
                            "          reads  {}\n",
                            ins.iter().map(slot).collect::<Vec<_>>().join(", ")
                        ));
                    }
                    for ((node, store), sl) in k.outputs.iter().zip(outs) {
                        let op = if *store == Store::Accumulate { "+=" } else { "=" };
                        out.push_str(&format!("          {} {op} {}\n", slot(sl), define(*node)));
                    }
                }
            }
        }
    }
    out.push_str("\ninput gradient (all T*B rows, after the backward loop)\n");
    let mut terms: Vec<String> = s
        .input_grad
        .matvecs
        .iter()
        .map(|(p, g, sign)| format!("{} {} × {}", if *sign < 0.0 { "-" } else { "+" }, slot(g), g_name(*p)))
        .collect();
    terms.extend(
        s.input_grad.rest.iter().map(|(sl, sign)| format!("{} {}", if *sign < 0.0 { "-" } else { "+" }, slot(sl))),
    );
    out.push_str(&format!("  dx = {}\n", if terms.is_empty() { "0".to_string() } else { terms.join(" ") }));
    out.push_str("\nweight gradients (summed over all T*B rows after the backward loop)\n");
    for (p, grad) in s.grads.iter().enumerate() {
        let name = &g.sig.params[p].name;
        match grad {
            GradPlan::Vector(None) => out.push_str(&format!("  d{name} = 0\n")),
            GradPlan::Vector(Some(sl)) => out.push_str(&format!("  d{name} = column sums of {}\n", slot(sl))),
            GradPlan::Matrix(terms) => {
                for (gs, vs) in terms {
                    out.push_str(&format!("  d{name} += {}ᵀ × {}   (one GEMM, k = T*B)\n", slot(gs), slot(vs)));
                }
            }
        }
    }
    out
}
