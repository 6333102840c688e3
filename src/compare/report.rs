//! A comparison's report: a table for people, one JSON document for scripts, and a figure (each
//! cell's mean with its interval and per-seed values; each paired difference from the first cell
//! with its interval and per-seed differences).

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::{Analysis, Verdict, View};
use crate::plot::{Bar, Figure, Panel};

/// The table: one line per cell, then one per difference, with the verdicts.
pub fn table(view: &View, a: &Analysis) -> String {
    let kind = view.kind();
    let metric = view.metric_name();
    let better = if view.higher_is_better() { "higher" } else { "lower" };
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} on {kind}, {} seed{} ({}; {better} is better), {:.1}% intervals:",
        view.config.cells.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(" vs "),
        a.seeds,
        if a.seeds == 1 { "" } else { "s" },
        metric,
        100.0 * a.level
    );
    let width = view.config.cells.iter().map(|c| c.name.len()).max().unwrap_or(4).max(4);
    for (c, sum) in view.config.cells.iter().zip(&a.per_cell) {
        let _ = writeln!(s, "  {:width$}  {}", c.name, interval(sum.mean, sum.half_width));
    }
    let first = &view.config.cells[0].name;
    for d in &a.differences {
        let name = &view.config.cells[d.cell].name;
        let verdict = match d.verdict {
            Verdict::Better => format!("{name} is better"),
            Verdict::Worse => format!("{first} is better"),
            Verdict::Inconclusive => "inconclusive".to_string(),
        };
        let _ = writeln!(
            s,
            "  {name} - {first}: {} (paired, p = {}): {verdict}",
            interval(d.summary.mean, d.summary.half_width),
            crate::experiment::stats::show_p(d.summary.p_value)
        );
    }
    s
}

fn interval(mean: f64, half: f64) -> String {
    if half.is_finite() { format!("{mean:.4} ± {half:.4}") } else { format!("{mean:.4}") }
}

/// The JSON document `--json` prints.
pub fn json(view: &View, a: &Analysis, plan: &super::Seeds) -> Value {
    let kind = view.kind();
    let cells: Vec<Value> = view
        .config
        .cells
        .iter()
        .zip(&a.per_cell)
        .enumerate()
        .map(|(i, (c, s))| json!({"cell": c.name, "summary": s, "per_seed": view.test_values(i, a.seeds)}))
        .collect();
    let differences: Vec<Value> = a
        .differences
        .iter()
        .map(|d| {
            json!({"cell": view.config.cells[d.cell].name, "minus": view.config.cells[0].name,
                "summary": d.summary, "per_seed": d.per_seed, "verdict": d.verdict})
        })
        .collect();
    json!({"experiment": view.name, "task": kind.name(), "metric": view.metric_name(),
        "higher_is_better": view.higher_is_better(), "seeds": a.seeds, "level": a.level, "plan": plan,
        "first_seed": view.config.first_seed, "config": view.config.config,
        "cells": cells, "differences": differences})
}

/// The figure: means with intervals and per-seed values, then the paired differences.
pub fn figure(view: &View, a: &Analysis) -> Figure {
    let kind = view.kind();
    let bar = |label: &str, s: &crate::experiment::stats::Summary, points: Vec<f64>| Bar {
        label: label.to_string(),
        value: s.mean,
        low: s.low(),
        high: s.high(),
        reference: None,
        points,
    };
    let cells = Panel {
        title: format!("test {} per cell: mean, {:.1}% interval, each seed", view.metric_name(), 100.0 * a.level),
        x_label: String::new(),
        y_label: String::new(),
        series: vec![],
        bars: view
            .config
            .cells
            .iter()
            .zip(&a.per_cell)
            .enumerate()
            .map(|(i, (c, s))| bar(&c.name, s, view.test_values(i, a.seeds)))
            .collect(),
    };
    let first = &view.config.cells[0].name;
    let diffs = Panel {
        title: format!("paired difference from {first} (same seeds): mean, interval, each seed"),
        x_label: String::new(),
        y_label: String::new(),
        series: vec![],
        bars: a
            .differences
            .iter()
            .map(|d| bar(&format!("{} - {first}", view.config.cells[d.cell].name), &d.summary, d.per_seed.clone()))
            .collect(),
    };
    Figure { title: format!("cellc compare on {kind}, {} seeds", a.seeds), panels: vec![cells, diffs] }
}
