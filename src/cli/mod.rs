//! The command line: argument parsing, reading files, printing, exit codes. The only module that
//! touches stdout, stderr or `process::exit`; every command is a thin layer over the library.

mod check;
mod files;
mod fmt;
mod input;
mod list;
mod ui;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use ui::ColorChoice;

const EXAMPLES: &str = "\
Examples:
  cellc list                     the standard cells and what they are
  cellc check gru                check a standard cell and print its parameters
  cellc check my.cell -v         check a file; show equations, shapes and initialisation
  cellc fmt my.cell --write      rewrite a file in canonical form

A cell is equations over the input x and the state (see examples/README.md):

  cell mycell {
      state h
      z = sigm(W_xz*x + W_hz*h + b_z)
      h' = z*h + (1 - z)*tanh(W_xh*x + W_hh*h + b_h)
  }";

/// cellc compiles recurrent neural-network cells written as equations, checks them, and (in later
/// stages) differentiates, JIT-compiles and trains them.
#[derive(Parser, Debug)]
#[command(name = "cellc", version, about, after_help = EXAMPLES, max_term_width = 100)]
pub struct Cli {
    /// When to colour diagnostics.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Check cells for errors; print a one-line summary of each good cell.
    ///
    /// Exits 0 when every cell is valid (warnings allowed), 1 when any has an error. All errors
    /// of a file are reported in one run.
    Check(check::Args),
    /// Print cells in canonical form, or rewrite files with --write.
    ///
    /// Formatting keeps comments and blank-line paragraphs; it is idempotent, and the result
    /// parses to the same cells.
    Fmt(fmt::Args),
    /// List the standard cells (or the cells of a file) with their descriptions.
    List(list::Args),
}

/// Runs the command line and returns the process exit code.
pub fn main() -> ExitCode {
    ui::install_panic_hook();
    let cli = Cli::parse();
    let ui = ui::Ui::new(cli.color);
    match cli.command {
        Command::Check(args) => check::run(&ui, args),
        Command::Fmt(args) => fmt::run(&ui, args),
        Command::List(args) => list::run(&ui, args),
    }
}
