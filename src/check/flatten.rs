//! Derived cells to plain statement lists: `cell lstm_f = lstm with { f = 1 }` becomes the
//! statements of `lstm` with the equation for `f` replaced.

use std::collections::HashSet;

use super::Env;
use crate::diag::{Diagnostic, did_you_mean};
use crate::syntax::ast::{self, CellDef, Ident, InitValue, StmtKind};

/// A cell's statements after derivation, each still pointing at the text that wrote it.
#[derive(Default)]
pub(super) struct Flat<'a> {
    pub states: Vec<&'a Ident>,
    pub outputs: Vec<&'a Ident>,
    pub inits: Vec<FlatInit<'a>>,
    pub equations: Vec<FlatEquation<'a>>,
}

pub(super) struct FlatInit<'a> {
    pub name: &'a Ident,
    pub value: &'a InitValue,
    /// Came from a base cell rather than the cell being checked.
    pub inherited: bool,
}

pub(super) struct FlatEquation<'a> {
    pub eq: &'a ast::Equation,
    pub stmt_span: crate::diag::Span,
}

/// Flattens `def`; errors (unknown base or equation, cycles) go to `diags`.
pub(super) fn flatten<'a>(def: &'a CellDef, env: &Env<'a>, diags: &mut Vec<Diagnostic>) -> Option<Flat<'a>> {
    flatten_chain(def, env, &mut vec![def], diags)
}

/// `chain` holds the cells being flattened, by identity: `cell lstm = lstm with {...}` in a user
/// file derives from the std `lstm`, a different cell with the same name.
fn flatten_chain<'a>(
    def: &'a CellDef,
    env: &Env<'a>,
    chain: &mut Vec<&'a CellDef>,
    diags: &mut Vec<Diagnostic>,
) -> Option<Flat<'a>> {
    let Some(base_ident) = &def.base else {
        return Some(plain(def));
    };
    let Some(base) = env.lookup_base(&base_ident.name, def) else {
        let names: Vec<&str> = env.cell_names().filter(|n| *n != def.name.name).collect();
        let mut d = Diagnostic::error("cellc::unknown_base", format!("unknown base cell `{}`", base_ident.name))
            .label(base_ident.span, "no cell of this name in this file or the standard library");
        d = d.help(match did_you_mean(&base_ident.name, names.iter().copied()) {
            Some(s) => format!("did you mean `{s}`?"),
            None => "`cellc list` shows the standard cells".to_string(),
        });
        diags.push(d);
        return None;
    };
    if chain.iter().any(|c| std::ptr::eq(*c, base)) {
        chain.push(base);
        let names: Vec<&str> = chain.iter().map(|c| c.name.name.as_str()).collect();
        diags.push(
            Diagnostic::error("cellc::cycle", format!("derived cells form a cycle: {}", names.join(" → ")))
                .label(base_ident.span, "derives from a cell that derives from this one"),
        );
        return None;
    }
    chain.push(base);
    let mut flat = flatten_chain(base, env, chain, diags)?;
    for init in &mut flat.inits {
        init.inherited = true;
    }
    let mut replaced = HashSet::new();
    for stmt in &def.body {
        match &stmt.kind {
            StmtKind::State(names) => {
                let span = names.first().map_or(stmt.span, |n| n.span).to(stmt.span);
                diags.push(
                    Diagnostic::error("cellc::derived_state", "a derived cell cannot declare states")
                        .label(span, format!("`{}` keeps the states of `{}`", def.name.name, base.name.name))
                        .help("write a full cell to change the states"),
                );
            }
            StmtKind::Output(name) => flat.outputs = vec![name],
            StmtKind::Init(name, value) => {
                let new = FlatInit { name, value, inherited: false };
                match flat.inits.iter_mut().find(|i| i.inherited && i.name.name == name.name) {
                    Some(old) => *old = new,
                    None => flat.inits.push(new),
                }
            }
            StmtKind::Equation(eq) => {
                let key = (eq.target.name.as_str(), eq.primed);
                if !replaced.insert(key) {
                    diags.push(
                        Diagnostic::error("cellc::duplicate", format!("`{}` is replaced twice", display(eq)))
                            .label(eq.target.span, "second replacement"),
                    );
                    continue;
                }
                match flat.equations.iter_mut().find(|e| e.eq.target.name == eq.target.name && e.eq.primed == eq.primed)
                {
                    Some(old) => *old = FlatEquation { eq, stmt_span: stmt.span },
                    None => {
                        diags.push(unknown_equation(eq, def, base, &flat));
                    }
                }
            }
        }
    }
    // Bad statements were reported and skipped; checking the rest reports further problems.
    Some(flat)
}

fn plain(def: &CellDef) -> Flat<'_> {
    let mut flat = Flat::default();
    for stmt in &def.body {
        match &stmt.kind {
            StmtKind::State(names) => flat.states.extend(names),
            StmtKind::Output(name) => flat.outputs.push(name),
            StmtKind::Init(name, value) => flat.inits.push(FlatInit { name, value, inherited: false }),
            StmtKind::Equation(eq) => flat.equations.push(FlatEquation { eq, stmt_span: stmt.span }),
        }
    }
    flat
}

fn display(eq: &ast::Equation) -> String {
    format!("{}{}", eq.target.name, if eq.primed { "'" } else { "" })
}

fn unknown_equation(eq: &ast::Equation, def: &CellDef, base: &CellDef, flat: &Flat<'_>) -> Diagnostic {
    let names: Vec<String> = flat.equations.iter().map(|e| display(e.eq)).collect();
    let wanted = display(eq);
    let mut d = Diagnostic::error(
        "cellc::unknown_equation",
        format!("`{}` replaces `{wanted}`, but `{}` has no equation `{wanted}`", def.name.name, base.name.name),
    )
    .label(eq.target.span, "not an equation of the base cell");
    let list = names.join(", ");
    let primed = format!("{wanted}'");
    let suggestion = if names.contains(&primed) {
        Some(primed.as_str())
    } else {
        did_you_mean(&wanted, names.iter().map(String::as_str))
    };
    d = d.help(match suggestion {
        Some(s) => format!("did you mean `{s}`? `{}` defines: {list}", base.name.name),
        None => format!("a derived cell can only replace equations of its base; `{}` defines: {list}", base.name.name),
    });
    d
}
