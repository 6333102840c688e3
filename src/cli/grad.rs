//! `cellc grad`: print a cell's backward step as equations.

use std::process::ExitCode;

use super::args::CellArg;
use super::failure::Outcome;
use super::input;
use super::ui::Ui;
use crate::workspace::Workspace;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    cell: CellArg,
}

pub fn run(ui: &Ui, args: Args) -> Outcome {
    let mut ws = Workspace::new();
    let cell = input::load_cell(&mut ws, &args.cell.cell, ui)?;
    let graph = crate::ir::lower(&cell);
    let backward = crate::autodiff::grad(&graph);
    print!("{}", crate::autodiff::print::backward_text(&backward));
    Ok(ExitCode::SUCCESS)
}
