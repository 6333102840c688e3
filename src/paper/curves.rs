//! Learning curves of the study's reported runs (validation metric against steps, every
//! evaluation seed), and where along them each of the paper's orderings settles: the first
//! step from which the paired difference keeps the paper's direction at every later
//! validation, and the first from which its 95% interval keeps excluding zero.
//!
//! A curve's early points come from a run whose schedule was set for the whole budget (the
//! learning rate is still high there), so a step at which an ordering settles is an estimate of,
//! not the same as, the budget at which a run that ends there would show it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::RunRecord;
use super::claims::{ORDERINGS, TASKS, paired_between};
use super::report::Table;
use crate::experiment::stats::Summary;
use crate::plot::{COLORS, Figure, Panel, Series};
use crate::tasks::TaskKind;

/// Per seed, the (step, validation metric) points of the reported runs of one (cell, task).
pub type SeedCurves = BTreeMap<u64, Vec<(u64, f64)>>;

type BySeed = BTreeMap<u64, f64>;

/// The reported runs' curves: those of the table's setting on the table's seeds.
pub fn curves(records: &[RunRecord], table: &Table, cell: &str, task: TaskKind) -> SeedCurves {
    let Some(entry) = table.entry(cell, task) else { return SeedCurves::new() };
    records
        .iter()
        .filter(|r| r.cell == cell && r.task == task.name() && r.setting == entry.setting)
        .filter(|r| entry.by_seed.contains_key(&r.seed))
        .filter_map(|r| Some((r.seed, serde_json::from_str::<Vec<(u64, f64)>>(&r.curve).ok()?)))
        .filter(|(_, c)| !c.is_empty())
        .collect()
}

/// One panel per task: each seed's curve as a thin line, the mean over seeds as a thick one.
pub fn figure(records: &[RunRecord], table: &Table, title: &str) -> Figure {
    let panels = table
        .tasks
        .iter()
        .map(|&task| {
            let mut thin = vec![];
            let mut thick = vec![];
            for (k, cell) in table.cells.iter().enumerate() {
                let color = COLORS[k % COLORS.len()];
                let by_seed = curves(records, table, cell, task);
                for c in by_seed.values() {
                    thin.push(Series { label: String::new(), points: as_f64(c), color });
                }
                let mean = mean_curve(&by_seed);
                if !mean.is_empty() {
                    thick.push(Series { label: cell.clone(), points: as_f64(&mean), color });
                }
            }
            thin.extend(thick);
            Panel {
                title: format!("{task}: validation {}", task.scored_name()),
                x_label: "training step".into(),
                y_label: String::new(),
                series: thin,
                bars: vec![],
            }
        })
        .collect();
    Figure { title: title.into(), panels }
}

fn as_f64(c: &[(u64, f64)]) -> Vec<(f64, f64)> {
    c.iter().map(|&(s, v)| (s as f64, v)).collect()
}

/// The mean over seeds at each step every seed validated at.
fn mean_curve(by_seed: &SeedCurves) -> Vec<(u64, f64)> {
    let mut at: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
    for c in by_seed.values() {
        for &(step, v) in c {
            at.entry(step).or_default().push(v);
        }
    }
    at.into_iter()
        .filter(|(_, v)| v.len() == by_seed.len())
        .map(|(step, v)| (step, v.iter().sum::<f64>() / v.len() as f64))
        .collect()
}

/// Where one ordering settles along the curves.
pub struct Settling {
    pub text: &'static str,
    pub task: TaskKind,
    /// Per validation step: `better - worse` (positive in the paper's direction), paired by seed.
    pub along: Vec<(u64, Summary)>,
    /// The first step from which the mean difference is positive at every later validation.
    pub holds_from: Option<u64>,
    /// The first step from which the interval excludes zero in the paper's direction at every
    /// later validation.
    pub confirmed_from: Option<u64>,
}

/// Every ordering the study has both cells of, on arith and XML.
pub fn settling(records: &[RunRecord], table: &Table) -> Vec<Settling> {
    let mut out = vec![];
    for (text, better, worse) in ORDERINGS {
        for task in TASKS {
            let (b, w) = (curves(records, table, better, task), curves(records, table, worse, task));
            if b.is_empty() || w.is_empty() {
                continue;
            }
            // Per validation step, each side's value by seed.
            let mut steps: BTreeMap<u64, [BySeed; 2]> = BTreeMap::new();
            for (side, by_seed) in [(0, &b), (1, &w)] {
                for (&seed, c) in by_seed {
                    for &(step, v) in c {
                        steps.entry(step).or_default()[side].insert(seed, v);
                    }
                }
            }
            let along: Vec<(u64, Summary)> = steps
                .into_iter()
                .filter_map(|(step, [bv, wv])| Some((step, paired_between(&bv, &wv, task)?)))
                .collect();
            let from = |ok: &dyn Fn(&Summary) -> bool| {
                let mut first = None;
                for (step, d) in &along {
                    if !ok(d) {
                        first = None;
                    } else if first.is_none() {
                        first = Some(*step);
                    }
                }
                first
            };
            let holds_from = from(&|d| d.mean > 0.0);
            let confirmed_from = from(&|d| d.sign() == Some(true));
            out.push(Settling { text, task, along, holds_from, confirmed_from });
        }
    }
    out
}

/// The Markdown section: per ordering, where it settles and its difference at the end.
pub fn markdown(settled: &[Settling]) -> String {
    let mut s = String::new();
    if settled.is_empty() {
        return s;
    }
    let _ = writeln!(
        s,
        "## Learning curves: where the orderings settle\n\nValidation curves of the reported runs are in \
         curves.svg. For each ordering, the first step from which the paired difference (better - worse, over \
         the shared seeds) stays in the paper's direction at every later validation, and the first from which its \
         95% interval stays above zero. Early points come from runs whose learning-rate schedule spans the whole \
         budget, so they estimate, not equal, a shorter run's result.\n"
    );
    let _ = writeln!(s, "| ordering | task | holds from step | confirmed from step | at the last validation |");
    let _ = writeln!(s, "|---|---|---|---|---|");
    let step = |x: Option<u64>| x.map_or("never".to_string(), |v| v.to_string());
    for t in settled {
        let last = t.along.last().map_or("-".to_string(), |(step, d)| {
            format!("{:+.3} [{:+.3}, {:+.3}] at {step}", d.mean, d.low(), d.high())
        });
        let _ =
            writeln!(s, "| {} | {} | {} | {} | {last} |", t.text, t.task, step(t.holds_from), step(t.confirmed_from));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paper::plan::SeedPlan;
    use crate::paper::report::tests::rec;

    #[test]
    fn an_ordering_settles_where_it_stops_reversing() {
        // lstm_f leads early, lstm overtakes it after step 200 on every seed.
        let mut r = vec![];
        for seed in 1..=3u64 {
            let wobble = seed as f64 * 0.01;
            let lstm = [(100, 0.30), (200, 0.40), (300, 0.60), (400, 0.70)];
            let lstm_f = [(100, 0.35), (200, 0.45), (300, 0.50), (400, 0.52)];
            for (cell, c) in [("lstm", lstm), ("lstm_f", lstm_f)] {
                let mut x = rec(cell, "arith", 0, seed, 0.0, c[3].1 + wobble);
                x.curve = serde_json::to_string(&c.map(|(s, v)| (s, v + wobble))).unwrap();
                r.push(x);
            }
        }
        let cells = vec!["lstm".to_string(), "lstm_f".to_string()];
        let table =
            Table::build(&r, &cells, &[TaskKind::Arith], &SeedPlan { selection: vec![], evaluation: vec![1, 2, 3] });
        let s = settling(&r, &table);
        assert_eq!(s.len(), 1, "only lstm vs lstm_f on arith has both cells");
        assert_eq!(s[0].holds_from, Some(300));
        assert_eq!(s[0].confirmed_from, Some(300));
        assert!((s[0].along[0].1.mean + 0.05).abs() < 1e-9, "reversed at first");
        let fig = figure(&r, &table, "t");
        let labelled = fig.panels[0].series.iter().filter(|s| !s.label.is_empty()).count();
        assert_eq!((fig.panels[0].series.len(), labelled), (8, 2), "a thin line per seed, a mean per cell");
        assert!(markdown(&s).contains("| 300 | 300 |"));
    }
}
