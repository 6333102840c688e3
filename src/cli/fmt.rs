//! `cellc fmt`: print cells in canonical form, check it, or rewrite files atomically.

use std::process::ExitCode;

use super::failure::Outcome;
use super::input::{self, Origin};
use super::ui::Ui;
use crate::syntax::{self, print};
use crate::workspace::Workspace;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// .cell files (or standard cell names, to print them).
    #[arg(required = true, value_name = "FILE|NAME")]
    cells: Vec<String>,
    /// Rewrite each file in place (atomically: a temporary file renamed over it).
    #[arg(long, conflicts_with = "check")]
    write: bool,
    /// Print nothing; exit 1 if any file is not in canonical form.
    #[arg(long)]
    check: bool,
}

pub fn run(ui: &Ui, args: Args) -> Outcome {
    let mut ws = Workspace::new();
    let mut failed = false;
    for arg in &args.cells {
        let (file, origin) = match input::load(&mut ws, arg) {
            Ok(loaded) => loaded,
            Err(msg) => {
                ui.error(msg);
                failed = true;
                continue;
            }
        };
        let text = ws.sources.get(file).text.clone();
        let (ast, diags) = syntax::parse(file, &text);
        if !diags.is_empty() {
            ui.diagnostics(&ws.sources, &diags);
            failed = true;
            continue;
        }
        let formatted = print::file(&ast);
        match (&origin, args.write, args.check) {
            (_, false, false) => print!("{formatted}"),
            (_, _, true) => {
                if formatted != *text {
                    println!("{arg}: not in canonical form");
                    failed = true;
                }
            }
            (Origin::Std, true, _) => {
                ui.error(format!("`{arg}` is a standard cell, built into cellc; it cannot be rewritten"));
                failed = true;
            }
            (Origin::File(path), true, _) => {
                if formatted != *text
                    && let Err(e) = crate::io::write_atomic(path, formatted.as_bytes())
                {
                    ui.error(format!("cannot write `{arg}`: {e}"));
                    failed = true;
                }
            }
        }
    }
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
