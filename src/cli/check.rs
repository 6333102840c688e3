//! `cellc check`: diagnostics for bad cells, a one-line summary for good ones.

use std::process::ExitCode;

use serde_json::{Value, json};

use super::failure::Outcome;
use super::input::{self, Origin};
use super::ui::Ui;
use crate::check::{Cell, Target};
use crate::diag::{Diagnostic, Severity, Sources};
use crate::workspace::Workspace;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// .cell files or standard cell names (`cellc list` shows them).
    #[arg(required = true, value_name = "FILE|NAME")]
    cells: Vec<String>,
    /// Also print each cell's equations in evaluation order with their shapes, the initialisation
    /// of every parameter, and what ties the input size D to the hidden size H.
    #[arg(short, long)]
    verbose: bool,
    /// Print one JSON document with every cell and diagnostic, for scripts.
    #[arg(long)]
    json: bool,
}

pub fn run(ui: &Ui, args: Args) -> Outcome {
    let mut ws = Workspace::new();
    let mut failed = false;
    let mut json_cells = vec![];
    let mut json_diags = vec![];
    for arg in &args.cells {
        let (file, origin) = match input::load(&mut ws, arg) {
            Ok(loaded) => loaded,
            Err(msg) => {
                failed = true;
                if args.json {
                    json_diags.push(json!({"severity": "error", "code": "cellc::input", "message": msg}));
                } else {
                    ui.error(msg);
                }
                continue;
            }
        };
        let checked = ws.check(file);
        failed |= checked.has_errors();
        if args.json {
            json_diags.extend(checked.diagnostics.iter().map(|d| diagnostic_json(d, &ws.sources)));
            json_cells.extend(checked.cells.iter().map(|c| cell_json(c, &ws.sources)));
            continue;
        }
        ui.diagnostics(&ws.sources, &checked.diagnostics);
        let prefix = match origin {
            Origin::File(_) => format!("{arg}: "),
            Origin::Std => String::new(),
        };
        for cell in &checked.cells {
            println!("{prefix}{}", cell.signature());
            if args.verbose {
                print!("{}", details(cell, &ws.sources));
            }
        }
        if checked.ast.cells.is_empty() && !checked.has_errors() {
            ui.error(format!("{arg}: no cells in this file"));
            failed = true;
        }
    }
    if args.json {
        println!("{}", json!({"ok": !failed, "cells": json_cells, "diagnostics": json_diags}));
    }
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// Equations in evaluation order, initialisation, and the D = H reason, indented.
fn details(cell: &Cell, sources: &Sources) -> String {
    let mut out = String::new();
    if let Some(base) = &cell.base {
        out.push_str(&format!("    derived from {base}\n"));
    }
    for &i in &cell.order {
        let eq = &cell.equations[i];
        let kind = match eq.target {
            Target::Local => "local",
            Target::Next(_) => "next state",
        };
        let text = sources.slice(eq.span).split_whitespace().collect::<Vec<_>>().join(" ");
        out.push_str(&format!("    {text}    ({kind}, {})\n", shape_word(eq.expr.shape)));
    }
    for p in &cell.params {
        out.push_str(&format!("    init {} = {}\n", p.name, p.init.display(cell)));
    }
    match cell.d_equals_h {
        Some(span) => out.push_str(&format!(
            "    D = H: `{}` at {} combines the input with an H-vector element-wise\n",
            sources.slice(span).split_whitespace().collect::<Vec<_>>().join(" "),
            sources.location(span)
        )),
        None => out.push_str("    D free: the input size need not equal the hidden size\n"),
    }
    for (k, (kind, rate, dim)) in cell.masks().iter().enumerate() {
        out.push_str(&format!(
            "    mask {k}: {} at rate {rate} over {} (drawn each training step, its expectation when evaluating)\n",
            kind.name(),
            if *dim == crate::check::Dim::H { "an H-vector" } else { "a D-vector" }
        ));
    }
    out
}

fn shape_word(shape: crate::check::Shape) -> String {
    match shape {
        crate::check::Shape::Scalar => "scalar".into(),
        crate::check::Shape::Row => "one number per example".into(),
        crate::check::Shape::Vector(d) => format!("{d}-vector"),
    }
}

fn cell_json(cell: &Cell, sources: &Sources) -> Value {
    let params: Vec<Value> = cell
        .params
        .iter()
        .map(|p| {
            let shape: Vec<String> = match p.kind {
                crate::check::ParamKind::Matrix { rows, cols } => vec![rows.to_string(), cols.to_string()],
                crate::check::ParamKind::Vector { len } => vec![len.to_string()],
            };
            json!({"name": p.name, "shape": shape, "init": p.init.display(cell)})
        })
        .collect();
    json!({
        "file": sources.get(cell.name_span.file).name,
        "cell": cell.name,
        "description": cell.summary(),
        "base": cell.base,
        "states": cell.states.iter().map(|s| s.name.clone()).collect::<Vec<_>>(),
        "output": cell.states[cell.output].name,
        "params": params,
        "d_equals_h": cell.d_equals_h.is_some(),
        "masks": cell.masks().iter().map(|(kind, rate, dim)| json!({"kind": kind.name(), "rate": rate, "size": dim.to_string()})).collect::<Vec<_>>(),
    })
}

fn diagnostic_json(d: &Diagnostic, sources: &Sources) -> Value {
    let place = d.primary_span().map(|s| {
        let (line, col) = sources.line_col(s.file, s.start as usize);
        (sources.get(s.file).name.clone(), line, col)
    });
    json!({
        "severity": match d.severity { Severity::Error => "error", Severity::Warning => "warning" },
        "code": d.code,
        "message": d.message,
        "file": place.as_ref().map(|p| p.0.clone()),
        "line": place.as_ref().map(|p| p.1),
        "column": place.as_ref().map(|p| p.2),
        "labels": d.labels.iter().map(|l| l.text.clone()).collect::<Vec<_>>(),
        "help": d.help,
    })
}
