//! AST to checked cells: derivation, name resolution, dependency order, shapes, initialisation.
//!
//! Every problem becomes a [`Diagnostic`]; checking goes on after an error so one run reports all
//! of a file's problems. A cell with any error yields no [`Cell`].

mod calls;
mod cell;
mod deps;
mod flatten;
mod init;
mod names;
mod shapes;

pub use crate::syntax::{Func, Reduction, Stochastic};
pub use cell::*;

use std::collections::HashMap;

use crate::diag::{Diagnostic, Span};
use crate::syntax::ast::{self, CellDef};

/// The cells a derived cell may name as its base, searched in order (this file, then the std
/// library). A cell never finds itself, so `cell lstm = lstm with {...}` derives from std `lstm`.
pub struct Env<'a> {
    pub scopes: Vec<&'a [CellDef]>,
}

impl<'a> Env<'a> {
    fn lookup_base(&self, name: &str, asking: &CellDef) -> Option<&'a CellDef> {
        self.scopes.iter().flat_map(|s| s.iter()).find(|c| c.name.name == name && !std::ptr::eq(*c, asking))
    }

    fn cell_names(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.scopes.iter().flat_map(|s| s.iter()).map(|c| c.name.name.as_str())
    }
}

/// Checks every cell of a parsed file. Returns the cells that passed and all diagnostics
/// (errors and warnings), in source order.
pub fn check_file(file: &ast::File, std_cells: &[CellDef]) -> (Vec<Cell>, Vec<Diagnostic>) {
    let env = Env { scopes: vec![&file.cells, std_cells] };
    check_cells(&file.cells, &env)
}

/// Checks `defs` against `env`; see [`check_file`].
pub fn check_cells(defs: &[CellDef], env: &Env<'_>) -> (Vec<Cell>, Vec<Diagnostic>) {
    let mut diags = vec![];
    let mut cells = vec![];
    let mut seen: HashMap<&str, Span> = HashMap::new();
    let mut failed: Vec<&str> = vec![];
    for def in defs {
        if let Some(first) = seen.get(def.name.name.as_str()) {
            diags.push(
                Diagnostic::error("cellc::duplicate", format!("cell `{}` is defined twice", def.name.name))
                    .label(def.name.span, "second definition")
                    .label(*first, "first defined here"),
            );
            continue;
        }
        seen.insert(&def.name.name, def.name.span);
        if let Some(base) = &def.base
            && failed.contains(&base.name.as_str())
        {
            diags.push(
                Diagnostic::error(
                    "cellc::base_has_errors",
                    format!("cannot check `{}`: its base has errors", def.name.name),
                )
                .label(base.span, "this cell has errors, reported above"),
            );
            failed.push(&def.name.name);
            continue;
        }
        match check_cell(def, env, &mut diags) {
            Some(cell) => cells.push(cell),
            None => failed.push(&def.name.name),
        }
    }
    (cells, diags)
}

/// Checks one cell definition. Diagnostics go to `diags`; `None` if any was an error.
pub fn check_cell(def: &CellDef, env: &Env<'_>, diags: &mut Vec<Diagnostic>) -> Option<Cell> {
    let errors_before = count_errors(diags);
    let flat = flatten::flatten(def, env, diags)?;
    let mut cx = Checker::new(def, diags);
    cx.declare_states(&flat);
    cx.declare_outputs(&flat);
    cx.declare_equations(&flat);
    let errors_declared = count_errors(cx.diags);
    cx.resolve_equations(&flat);
    // Later passes still run after an error, so one run reports as much as it can: an equation
    // that failed to resolve reads nothing, so it cannot invent cycles.
    let resolved = count_errors(cx.diags) == errors_declared;
    cx.order_equations();
    if count_errors(cx.diags) == errors_before {
        cx.infer_shapes();
    }
    cx.apply_inits(&flat, resolved);
    if count_errors(cx.diags) > errors_before {
        return None;
    }
    cx.warn_unused();
    cx.warn_parameter_typos();
    Some(cx.finish())
}

fn count_errors(diags: &[Diagnostic]) -> usize {
    diags.iter().filter(|d| d.is_error()).count()
}

/// Working state while one cell is checked; each pass lives in its own file.
struct Checker<'d> {
    name: String,
    name_span: Span,
    doc: Vec<String>,
    base: Option<String>,
    diags: &'d mut Vec<Diagnostic>,
    states: Vec<Named>,
    output: usize,
    /// Every equation, source order; `expr` is filled in by `resolve_equations`.
    equations: Vec<Equation>,
    /// (name, primed) -> index into `equations`.
    equation_index: HashMap<(String, bool), usize>,
    params: Vec<Param>,
    param_index: HashMap<String, usize>,
    order: Vec<usize>,
    d_equals_h: Option<Span>,
}

impl<'d> Checker<'d> {
    fn new(def: &CellDef, diags: &'d mut Vec<Diagnostic>) -> Checker<'d> {
        Checker {
            name: def.name.name.clone(),
            name_span: def.name.span,
            doc: def.doc.clone(),
            base: def.base.as_ref().map(|b| b.name.clone()),
            diags,
            states: vec![],
            output: 0,
            equations: vec![],
            equation_index: HashMap::new(),
            params: vec![],
            param_index: HashMap::new(),
            order: vec![],
            d_equals_h: None,
        }
    }

    fn error(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    fn state_index(&self, name: &str) -> Option<usize> {
        self.states.iter().position(|s| s.name == name)
    }

    fn finish(mut self) -> Cell {
        let mut masks = 0;
        for &i in &self.order {
            self.equations[i].expr.number_masks(&mut masks);
        }
        Cell {
            name: self.name,
            name_span: self.name_span,
            doc: self.doc,
            base: self.base,
            states: self.states,
            output: self.output,
            params: self.params,
            equations: self.equations,
            order: self.order,
            d_equals_h: self.d_equals_h,
        }
    }
}

/// Why a name cannot be defined by an equation or declared as a state, if it cannot.
fn reserved(name: &str) -> Option<String> {
    if name == "x" {
        return Some("`x` is the cell's input".into());
    }
    if crate::syntax::is_builtin(name) {
        return Some(format!("`{name}` is a built-in function"));
    }
    if name.starts_with(|c: char| c.is_ascii_uppercase()) {
        return Some(format!("`{name}` starts with an upper-case letter, which marks a weight matrix"));
    }
    None
}
