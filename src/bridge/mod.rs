//! The bridges to PyTorch and JAX. `cellc export`: a cell (and, from a checkpoint, a whole trained model) as one self-contained
//! Python file for PyTorch or JAX. The code follows the `.cell` equations one line each, with the
//! equation as a comment above its line; parameters are named and shaped as in the cell and in
//! `cellc eval`'s safetensors contract (a matrix [rows, cols] as PyTorch's `Linear` stores it);
//! the cell's own initialisation rules are written out. What the exported code is for:
//! readability, deployment, and further work in those frameworks; speed stays in cellc.
//!
//! `python.rs` prints the equations for either framework (a [`Dialect`] says how a function, a
//! parameter and a matrix product are spelled); `pytorch.rs` and `jax.rs` wrap them in an
//! `nn.Module` and an `init`/`apply` pair; `model.rs` adds the language model around the cell
//! for `--checkpoint`; `regularisers.rs` adds the masks of `dropout` and `zoneout` (drawn in
//! training, their expectation in evaluation). `import.rs` goes the other way: PyTorch `nn.LSTM`/`nn.GRU` weights to
//! cellc's.

pub mod import;
mod jax;
mod model;
mod python;
mod pytorch;
mod regularisers;

use crate::check::Cell;
use crate::workspace::CellSource;

/// The framework an export is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Framework {
    Pytorch,
    Jax,
}

/// The Python file for `cell` (its source text quoted in the header).
pub fn cell_module(cell: &Cell, source: &CellSource, to: Framework) -> String {
    match to {
        Framework::Pytorch => pytorch::module(cell, source),
        Framework::Jax => jax::module(cell, source),
    }
}

/// The Python file for the trained model saved in a checkpoint: the cell's module, then the
/// language model around it (embedding, stacked layers, output layer) and a loader for the
/// checkpoint's `model.safetensors`.
pub fn model_module(cell: &Cell, source: &CellSource, model: &model::ModelInfo, to: Framework) -> String {
    let mut out = cell_module(cell, source, to);
    out.push_str(&match to {
        Framework::Pytorch => model::pytorch(cell, model),
        Framework::Jax => model::jax(cell, model),
    });
    out
}

pub use model::ModelInfo;
