//! `cellc list`: the standard cells (or a file's cells) with their one-line descriptions.

use std::process::ExitCode;

use serde_json::json;

use super::failure::{Failure, Outcome};
use super::input;
use super::ui::Ui;
use crate::syntax;
use crate::workspace::Workspace;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A .cell file whose cells to list (default: the standard cells).
    #[arg(value_name = "FILE")]
    file: Option<String>,
    /// Print a JSON array of {name, description, base}.
    #[arg(long)]
    json: bool,
}

pub fn run(ui: &Ui, args: Args) -> Outcome {
    let mut ws = Workspace::new();
    let defs = match &args.file {
        None => ws.std_defs().to_vec(),
        Some(arg) => {
            let (file, _) = input::load(&mut ws, arg)?;
            let text = ws.sources.get(file).text.clone();
            let (ast, diags) = syntax::parse(file, &text);
            ui.diagnostics(&ws.sources, &diags);
            if !diags.is_empty() {
                return Err(Failure::Reported);
            }
            ast.cells
        }
    };
    if args.json {
        let items: Vec<_> = defs
            .iter()
            .map(|d| json!({"name": d.name.name, "description": d.summary(), "base": d.base.as_ref().map(|b| &b.name)}))
            .collect();
        println!("{}", serde_json::Value::Array(items));
        return Ok(ExitCode::SUCCESS);
    }
    let width = defs.iter().map(|d| d.name.name.len()).max().unwrap_or(0);
    for d in &defs {
        println!("{:width$}  {}", d.name.name, d.summary());
    }
    Ok(ExitCode::SUCCESS)
}
