//! Command-line cell arguments: a path to a `.cell` file, or the name of a standard cell (found by
//! [`crate::cell_arg`]; this module prints what it reports).

use super::failure::Failure;
use super::ui::Ui;
use crate::cell_arg::{self, LoadError};
pub use crate::cell_arg::{Origin, load};
use crate::check::Cell;
use crate::workspace::{CellSource, Workspace};

/// Loads one checked cell: `FILE` (which must hold exactly one cell), `FILE:NAME`, or a std name.
/// The cell's diagnostics are printed through `ui`.
pub fn load_cell(ws: &mut Workspace, arg: &str, ui: &Ui) -> Result<Cell, Failure> {
    load_cell_source(ws, arg, ui).map(|(cell, _)| cell)
}

/// [`load_cell`], with the text of the file that defines the cell (for checkpoints and jobs).
pub fn load_cell_source(ws: &mut Workspace, arg: &str, ui: &Ui) -> Result<(Cell, CellSource), Failure> {
    let (diagnostics, loaded) = cell_arg::load_cell(ws, arg);
    ui.diagnostics(&ws.sources, &diagnostics);
    loaded.map_err(|e| match e {
        LoadError::Invalid => Failure::Reported,
        LoadError::Message(m) => Failure::Message(m),
    })
}
