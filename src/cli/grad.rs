//! `cellc grad`: print a cell's backward step as equations.

use std::process::ExitCode;

use super::input;
use super::ui::Ui;
use crate::workspace::Workspace;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A .cell file (one cell, or use FILE:NAME) or a standard cell name.
    #[arg(value_name = "CELL")]
    cell: String,
}

pub fn run(ui: &Ui, args: Args) -> ExitCode {
    let mut ws = Workspace::new();
    let cell = match input::load_cell(&mut ws, &args.cell, ui) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let graph = crate::ir::lower(&cell);
    let backward = crate::autodiff::grad(&graph);
    print!("{}", crate::autodiff::print::backward_text(&backward));
    ExitCode::SUCCESS
}
