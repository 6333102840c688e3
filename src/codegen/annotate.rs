//! `cellc compile --emit clif`: a kernel's Cranelift IR with a `;` comment before the code of
//! each equation it computes (the idea of rustc_codegen_cranelift's comment writer).

use std::collections::HashMap;
use std::fmt::{self, Write};

use cranelift::codegen::entity::SecondaryMap;
use cranelift::codegen::ir::{Block, Function, Inst, Value};
use cranelift::codegen::write::{FuncWriter, PlainWriter};

use super::kernel::Annotations;
use crate::ir::raise::Raiser;
use crate::ir::{Graph, NodeId};
use crate::schedule::KernelSpec;
use crate::syntax::print;

/// The function's text with equation comments.
pub fn clif_text(func: &Function, g: &Graph, spec: &KernelSpec, notes: &Annotations) -> String {
    let names: HashMap<NodeId, String> = g.names.iter().map(|(k, v)| (*k, v.clone())).collect();
    let raiser = Raiser { g, names };
    let comments: HashMap<Inst, String> = notes
        .iter()
        .map(|(inst, node)| {
            let def = print::expr(&raiser.definition(*node));
            let text = match g.name(*node) {
                Some(n) => format!("{n} = {def}"),
                None => def,
            };
            (*inst, text)
        })
        .collect();
    let mut out = format!("; kernel {} ({} inputs, {} outputs)\n", spec.name, spec.inputs.len(), spec.outputs.len());
    let mut writer = Commented { comments, plain: PlainWriter };
    if cranelift::codegen::write::decorate_function(&mut writer, &mut out, func).is_err() {
        out.push_str(&func.display().to_string());
    }
    out
}

struct Commented {
    comments: HashMap<Inst, String>,
    plain: PlainWriter,
}

impl FuncWriter for Commented {
    fn write_block_header(&mut self, w: &mut dyn Write, func: &Function, block: Block, indent: usize) -> fmt::Result {
        self.plain.write_block_header(w, func, block, indent)
    }

    fn write_instruction(
        &mut self,
        w: &mut dyn Write,
        func: &Function,
        aliases: &SecondaryMap<Value, Vec<Value>>,
        inst: Inst,
        indent: usize,
    ) -> fmt::Result {
        if let Some(c) = self.comments.get(&inst) {
            writeln!(w, "{:indent$}; {c}", "", indent = indent)?;
        }
        self.plain.write_instruction(w, func, aliases, inst, indent)
    }
}
