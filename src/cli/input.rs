//! Command-line cell arguments: a path to a `.cell` file, or the name of a standard cell.

use std::path::Path;

use super::failure::Failure;
use super::ui::Ui;
use crate::check::Cell;
use crate::diag::{FileId, did_you_mean};
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

/// Loads one checked cell: `FILE` (which must hold exactly one cell), `FILE:NAME`, or a std name.
/// The cell's diagnostics are printed through `ui`.
pub fn load_cell(ws: &mut Workspace, arg: &str, ui: &Ui) -> Result<Cell, Failure> {
    load_cell_source(ws, arg, ui).map(|(cell, _)| cell)
}

/// [`load_cell`], with the text of the file that defines the cell (for checkpoints and jobs).
pub fn load_cell_source(ws: &mut Workspace, arg: &str, ui: &Ui) -> Result<(Cell, CellSource), Failure> {
    let (path, wanted) = match arg.rsplit_once(':') {
        Some((p, n)) if !Path::new(arg).exists() && !n.is_empty() && !n.contains('/') => (p, Some(n)),
        _ => (arg, None),
    };
    let (file, _) = load(ws, path)?;
    let checked = ws.check(file);
    ui.diagnostics(&ws.sources, &checked.diagnostics);
    if checked.has_errors() {
        return Err(Failure::Reported);
    }
    let names: Vec<&str> = checked.ast.cells.iter().map(|c| c.name.name.as_str()).collect();
    let source = |cell: Cell| {
        let f = ws.sources.get(file);
        let src = CellSource { name: cell.name.clone(), file: f.name.clone(), text: f.text.to_string() };
        (cell, src)
    };
    match wanted {
        Some(name) => checked
            .cells
            .iter()
            .find(|c| c.name == name)
            .cloned()
            .map(source)
            .ok_or_else(|| format!("`{path}` has no cell `{name}` (it has: {})", names.join(", ")).into()),
        None if checked.cells.len() == 1 => Ok(source(checked.cells[0].clone())),
        None if checked.cells.is_empty() => Err(format!("`{path}` has no cells").into()),
        None => Err(Failure::Message(format!(
            "`{path}` has {} cells; name one with `{path}:NAME` (one of: {})",
            checked.cells.len(),
            names.join(", ")
        ))),
    }
}
