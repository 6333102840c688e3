//! Command-line cell arguments: a path to a `.cell` file, or the name of a standard cell.

use std::path::Path;

use crate::diag::{FileId, did_you_mean};
use crate::stdlib;
use crate::syntax::guard;
use crate::workspace::Workspace;

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
