//! The cell being sketched: a syntax tree edited one statement at a time, printed by the one
//! printer whenever it is checked, shown or saved.

use crate::diag::Span;
use crate::syntax::ast::{CellDef, Ident, Stmt, StmtKind};

/// Name of a cell started by typing an equation with no cell loaded.
pub const SKETCH: &str = "sketch";

/// An empty cell to type equations into.
pub fn empty(name: &str) -> CellDef {
    CellDef {
        comments: vec![],
        doc: vec![],
        name: ident(name),
        base: None,
        body: vec![],
        end_comments: vec![],
        span: Span::default(),
    }
}

fn ident(name: &str) -> Ident {
    Ident { name: name.to_string(), span: Span::default() }
}

/// What a statement did to the draft, for the reply.
#[derive(Debug, PartialEq)]
pub enum Edit {
    Added,
    Replaced,
}

/// The statement's key: statements with the same key replace each other.
fn key(s: &StmtKind) -> Option<(u8, String)> {
    match s {
        StmtKind::Equation(e) => Some((if e.primed { 1 } else { 0 }, e.target.name.clone())),
        StmtKind::Init(name, _) => Some((2, name.name.clone())),
        StmtKind::Output(_) => Some((3, String::new())),
        StmtKind::State(_) => None,
    }
}

/// Puts `stmt` into the cell: an equation, `init` or `output` replaces the one with the same
/// target; `state` adds the names not yet declared. A next-state equation `h' = ...` declares
/// `h` when no `state` line (of this cell or, per `known_states`, its base) does.
pub fn apply(def: &mut CellDef, mut stmt: Stmt, known_states: &[String]) -> Edit {
    stmt.comments.clear();
    stmt.blank_before = false;
    if let StmtKind::State(names) = &stmt.kind {
        let mut added = false;
        for n in names {
            if !declared(def, &n.name) && !known_states.contains(&n.name) {
                declare(def, &n.name);
                added = true;
            }
        }
        return if added { Edit::Added } else { Edit::Replaced };
    }
    if let StmtKind::Equation(e) = &stmt.kind
        && e.primed
        && !declared(def, &e.target.name)
        && !known_states.contains(&e.target.name)
    {
        declare(def, &e.target.name);
    }
    let k = key(&stmt.kind);
    match def.body.iter_mut().find(|s| key(&s.kind) == k) {
        Some(old) => {
            *old = stmt;
            Edit::Replaced
        }
        None => {
            def.body.push(stmt);
            Edit::Added
        }
    }
}

fn declared(def: &CellDef, name: &str) -> bool {
    def.body.iter().any(|s| matches!(&s.kind, StmtKind::State(ns) if ns.iter().any(|n| n.name == name)))
}

/// Adds `name` to the first `state` line, or starts one at the top.
fn declare(def: &mut CellDef, name: &str) {
    if let Some(StmtKind::State(names)) =
        def.body.iter_mut().map(|s| &mut s.kind).find(|k| matches!(k, StmtKind::State(_)))
    {
        names.push(ident(name));
        return;
    }
    let stmt = Stmt {
        kind: StmtKind::State(vec![ident(name)]),
        span: Span::default(),
        comments: vec![],
        trailing_comment: None,
        blank_before: false,
    };
    def.body.insert(0, stmt);
}

/// Removes what defines `target`: `h'` its next-state equation; `z` the equation or `init` of
/// `z`, or, when `z` is a state, the state and its next-state equation. Returns how many
/// statements or names went.
pub fn drop(def: &mut CellDef, target: &str) -> usize {
    let (name, primed) = match target.strip_suffix('\'') {
        Some(n) => (n, true),
        None => (target, false),
    };
    let is_state = !primed && declared(def, name);
    let before = def.body.len();
    def.body.retain(|s| match &s.kind {
        StmtKind::Equation(e) => !(e.target.name == name && (e.primed == primed || is_state)),
        StmtKind::Init(n, _) => n.name != name,
        _ => true,
    });
    let mut gone = before - def.body.len();
    if is_state {
        for s in &mut def.body {
            if let StmtKind::State(names) = &mut s.kind {
                names.retain(|n| n.name != name);
            }
        }
        def.body.retain(|s| !matches!(&s.kind, StmtKind::State(ns) if ns.is_empty()));
        gone += 1;
    }
    gone
}

/// The names a user may type in this cell: equation targets, states, and inits' parameters.
pub fn names(def: &CellDef) -> Vec<String> {
    let mut out = vec![];
    for s in &def.body {
        match &s.kind {
            StmtKind::State(ns) => out.extend(ns.iter().map(|n| n.name.clone())),
            StmtKind::Equation(e) => out.push(e.target.name.clone()),
            StmtKind::Init(n, _) | StmtKind::Output(n) => out.push(n.name.clone()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Sources;
    use crate::syntax::{parse_stmt, print};

    fn stmt(text: &str) -> Stmt {
        let mut sources = Sources::new();
        let f = sources.add("t", text);
        parse_stmt(f, text).expect("parses")
    }

    #[test]
    fn equations_replace_by_target_and_declare_states() {
        let mut def = empty(SKETCH);
        assert_eq!(apply(&mut def, stmt("h' = tanh(W*x + U*h)"), &[]), Edit::Added);
        assert_eq!(apply(&mut def, stmt("z = sigm(h)"), &[]), Edit::Added);
        assert_eq!(apply(&mut def, stmt("h' = z*h"), &[]), Edit::Replaced);
        assert_eq!(print::cell(&def), "cell sketch {\n    state h\n    h' = z*h\n    z = sigm(h)\n}\n");
        assert_eq!(drop(&mut def, "z"), 1);
        assert_eq!(drop(&mut def, "z"), 0);
        assert_eq!(names(&def), ["h", "h"]);
        assert_eq!(drop(&mut def, "h"), 2, "a state goes with its equation");
        assert_eq!(print::cell(&def), "cell sketch {}\n");
    }

    #[test]
    fn a_base_state_is_not_declared_again() {
        let mut def = empty("mine");
        apply(&mut def, stmt("h' = h"), &["h".to_string()]);
        assert_eq!(print::cell(&def), "cell mine {\n    h' = h\n}\n");
    }
}
