//! A cell named by a user: a `.cell` path, `FILE:NAME`, or a standard cell's name. The file
//! reading the [`Workspace`] does not do, shared by the command line and the Python package.

use std::path::Path;

use crate::check::Cell;
use crate::diag::{Diagnostic, FileId, did_you_mean};
use crate::stdlib;
use crate::syntax::guard;
use crate::workspace::{CellSource, Workspace};

/// Where a loaded argument came from.
pub enum Origin {
    File(std::path::PathBuf),
    Std,
}

/// Loads `arg` into the workspace: an existing path is read, otherwise a standard cell name is
/// looked up. Errors are one line, naming the argument.
pub fn load(ws: &mut Workspace, arg: &str) -> Result<(FileId, Origin), String> {
    let path = Path::new(arg);
    if path.exists() {
        if path.is_dir() {
            return Err(format!("`{arg}` is a directory, not a .cell file"));
        }
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read `{arg}`: {e}"))?;
        let text = guard::decode(&bytes).map_err(|e| format!("{arg}: {e}"))?;
        return Ok((ws.add(arg, text), Origin::File(path.to_path_buf())));
    }
    if let Some(file) = ws.std_file(arg) {
        return Ok((file, Origin::Std));
    }
    let mut msg = format!("no file or standard cell named `{arg}`");
    if let Some(s) = did_you_mean(arg, stdlib::names()) {
        msg.push_str(&format!(" (did you mean the standard cell `{s}`?)"));
    } else if arg.ends_with(".cell") {
        msg.push_str(" (the file does not exist)");
    } else {
        msg.push_str(" (`cellc list` shows the standard cells)");
    }
    Err(msg)
}

/// Why no cell came out of [`load_cell`].
#[derive(Debug)]
pub enum LoadError {
    /// The file has errors; the diagnostics returned beside say which.
    Invalid,
    /// A one-line reason: no such file or cell, or which of several cells is meant.
    Message(String),
}

/// A loaded cell, with the text of the file that defines it.
pub type Loaded = Result<(Cell, CellSource), LoadError>;

/// Loads one checked cell: `FILE` (which must hold exactly one cell), `FILE:NAME`, or a std name.
/// Returns the file's diagnostics (warnings too) beside the result.
pub fn load_cell(ws: &mut Workspace, arg: &str) -> (Vec<Diagnostic>, Loaded) {
    let (path, wanted) = match arg.rsplit_once(':') {
        Some((p, n)) if !Path::new(arg).exists() && !n.is_empty() && !n.contains('/') => (p, Some(n)),
        _ => (arg, None),
    };
    match load(ws, path) {
        Ok((file, _)) => pick_cell(ws, file, path, wanted),
        Err(e) => (vec![], Err(LoadError::Message(e))),
    }
}

/// Checks `file` (shown as `path` in messages) and picks its cell `wanted`, or its only cell.
pub fn pick_cell(ws: &Workspace, file: FileId, path: &str, wanted: Option<&str>) -> (Vec<Diagnostic>, Loaded) {
    let checked = ws.check(file);
    if checked.has_errors() {
        return (checked.diagnostics, Err(LoadError::Invalid));
    }
    let names: Vec<&str> = checked.ast.cells.iter().map(|c| c.name.name.as_str()).collect();
    let source = |cell: Cell| {
        let f = ws.sources.get(file);
        let src = CellSource { name: cell.name.clone(), file: f.name.clone(), text: f.text.to_string() };
        (cell, src)
    };
    let message = |m: String| LoadError::Message(m);
    let picked = match wanted {
        Some(name) => checked
            .cells
            .iter()
            .find(|c| c.name == name)
            .cloned()
            .map(source)
            .ok_or_else(|| message(format!("`{path}` has no cell `{name}` (it has: {})", names.join(", ")))),
        None if checked.cells.len() == 1 => Ok(source(checked.cells[0].clone())),
        None if checked.cells.is_empty() => Err(message(format!("`{path}` has no cells"))),
        None => Err(message(format!(
            "`{path}` has {} cells; name one with `{path}:NAME` (one of: {})",
            checked.cells.len(),
            names.join(", ")
        ))),
    };
    (checked.diagnostics, picked)
}
