//! The study's report: our Table 1 from the evaluation seeds (the paper's own numbers apart, as a
//! reference: they come from training to convergence), GRU-relative scores, the paper's claims
//! tested by paired intervals (`claims`), a CSV of every run, and bar charts.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::RunRecord;
use super::claims::{Verdict, claims};
use super::plan::SeedPlan;
use crate::experiment::stats::Summary;
use crate::tasks::TaskKind;

/// The value stored for a diverged run on an NLL task (accuracy tasks store 0).
pub const DIVERGED_NLL: f64 = 1e6;

/// The paper's Table 1 (accuracy) and music NLL, by our cell names.
pub fn paper_value(cell: &str, task: TaskKind) -> Option<f64> {
    let table: [(&str, [f64; 3]); 10] = [
        ("tanh_rnn", [0.295, 0.321, 0.0878]),
        ("lstm", [0.892, 0.425, 0.0891]),
        ("lstm_f", [0.293, 0.234, 0.0881]),
        ("lstm_i", [0.751, 0.414, 0.0866]),
        ("lstm_o", [0.867, 0.421, 0.0893]),
        ("lstm_b", [0.902, 0.444, 0.0895]),
        ("gru", [0.896, 0.460, 0.0907]),
        ("mut1", [0.921, 0.475, 0.0897]),
        ("mut2", [0.897, 0.473, 0.0904]),
        ("mut3", [0.907, 0.465, 0.0916]),
    ];
    let music: [(&str, [f64; 2]); 3] = [("lstm", [3.49, 6.87]), ("lstm_b", [3.42, 6.82]), ("mut1", [3.25, 6.79])];
    let col = [TaskKind::Arith, TaskKind::Xml, TaskKind::Ptb].iter().position(|t| *t == task);
    if let Some(k) = col {
        return table.iter().find(|r| r.0 == cell).map(|r| r.1[k]);
    }
    use crate::data::music::MusicSet;
    let k = [TaskKind::Music(MusicSet::Nottingham), TaskKind::Music(MusicSet::PianoMidi)]
        .iter()
        .position(|t| *t == task)?;
    music.iter().find(|r| r.0 == cell).map(|r| r.1[k])
}

/// The setting chosen for (cell, task): the best mean validation result over the selection
/// seeds' runs; setting 0 (the defaults) when there is nothing to choose (`selection` empty).
pub fn best_setting(records: &[RunRecord], cell: &str, task: TaskKind, selection: &[u64]) -> Option<u32> {
    if selection.is_empty() {
        return Some(0);
    }
    let sign = if task.higher_is_better() { 1.0 } else { -1.0 };
    let mut by_setting: BTreeMap<u32, Vec<f64>> = BTreeMap::new();
    for r in records.iter().filter(|r| r.cell == cell && r.task == task.name() && selection.contains(&r.seed)) {
        by_setting.entry(r.setting).or_default().push(sign * r.valid);
    }
    let mean = |v: &Vec<f64>| v.iter().sum::<f64>() / v.len() as f64;
    // Highest mean; the lower setting on a tie (BTreeMap order, and max_by keeps the last).
    by_setting.iter().rev().max_by(|a, b| mean(a.1).total_cmp(&mean(b.1))).map(|(&s, _)| s)
}

/// The reported runs of one (cell, task): the chosen setting's test results by evaluation seed.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub setting: u32,
    pub by_seed: BTreeMap<u64, f64>,
    /// Mean and 95% Student-t interval over the seeds.
    pub summary: Summary,
}

/// Results by cell and task, from the evaluation seeds only.
pub struct Table {
    pub cells: Vec<String>,
    pub tasks: Vec<TaskKind>,
    /// `[cell][task]`.
    pub results: Vec<Vec<Option<Entry>>>,
}

impl Table {
    pub fn build(records: &[RunRecord], cells: &[String], tasks: &[TaskKind], seeds: &SeedPlan) -> Table {
        let entry = |cell: &String, task: TaskKind| {
            let setting = best_setting(records, cell, task, &seeds.selection)?;
            let by_seed: BTreeMap<u64, f64> = records
                .iter()
                .filter(|r| &r.cell == cell && r.task == task.name() && r.setting == setting)
                .filter(|r| seeds.evaluation.contains(&r.seed))
                .map(|r| (r.seed, r.test))
                .collect();
            if by_seed.is_empty() {
                return None;
            }
            let values: Vec<f64> = by_seed.values().copied().collect();
            Some(Entry { setting, summary: Summary::of(&values, 0.95), by_seed })
        };
        let results = cells.iter().map(|cell| tasks.iter().map(|&task| entry(cell, task)).collect()).collect();
        Table { cells: cells.to_vec(), tasks: tasks.to_vec(), results }
    }

    pub fn entry(&self, cell: &str, task: TaskKind) -> Option<&Entry> {
        let c = self.cells.iter().position(|x| x == cell)?;
        let t = self.tasks.iter().position(|&x| x == task)?;
        self.results[c][t].as_ref()
    }

    pub fn get(&self, cell: &str, task: TaskKind) -> Option<Summary> {
        self.entry(cell, task).map(|e| e.summary)
    }

    /// The paper's score: the minimum over accuracy tasks of the cell's accuracy over the GRU's.
    pub fn score(&self, cell: &str) -> Option<f64> {
        let ratios: Vec<f64> = self
            .tasks
            .iter()
            .filter(|t| t.scored_by_accuracy())
            .map(|&t| Some(self.get(cell, t)?.mean / self.get("gru", t)?.mean))
            .collect::<Option<Vec<_>>>()?;
        ratios.into_iter().reduce(f64::min)
    }
}

/// `mean ± half-width`, or the mean alone for one seed.
pub fn show(s: &Summary) -> String {
    if s.half_width.is_finite() { format!("{:.3} ± {:.3}", s.mean, s.half_width) } else { format!("{:.3}", s.mean) }
}

fn fmt(t: &Table, cell: &str, task: TaskKind) -> String {
    t.get(cell, task).map_or("-".into(), |s| show(&s))
}

/// The Markdown report: our table, scores, the paper's claims tested, the paper's numbers apart.
pub fn markdown(t: &Table, header: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{header}\n");
    let _ = writeln!(
        s,
        "Each cell: mean ± 95% interval (Student t) of the test result over the evaluation seeds, which every cell \
         shares and which never took part in choosing a setting. Accuracy: higher is better; NLL per frame: lower.\n"
    );
    let _ = write!(s, "| cell |");
    for task in &t.tasks {
        let _ = write!(s, " {task} ({}) |", task.scored_name());
    }
    let _ = writeln!(s, " GRU-relative score |");
    let _ = writeln!(s, "|---|{}---|", "---|".repeat(t.tasks.len()));
    for cell in &t.cells {
        let _ = write!(s, "| {cell} |");
        for &task in &t.tasks {
            let _ = write!(s, " {} |", fmt(t, cell, task));
        }
        let _ = writeln!(s, " {} |", t.score(cell).map_or("-".into(), |v| format!("{v:.3}")));
    }
    let _ = writeln!(
        s,
        "\nGRU-relative score: the minimum over the accuracy tasks of the cell's mean accuracy over the GRU's (the paper's search score).\n"
    );
    let _ = writeln!(s, "## The paper's claims, tested\n");
    let _ = writeln!(
        s,
        "Each row is one ordering the paper reports, on one task: the paired difference over the shared evaluation \
         seeds, signed so that positive is the paper's direction, with its 95% interval. **confirmed**: the interval \
         excludes zero in the paper's direction; **contradicted**: it excludes zero the other way; **inconclusive**: \
         it contains zero. Each row is at 95% on its own: among many rows, about one in twenty decisions can be \
         wrong by chance.\n"
    );
    let _ = writeln!(s, "| claim | task | difference | 95% interval | p | seeds | verdict |");
    let _ = writeln!(s, "|---|---|---|---|---|---|---|");
    let all = claims(t);
    for c in &all {
        let (diff, interval, p, n) = match &c.difference {
            Some(d) if d.half_width.is_finite() => (
                format!("{:+.3}", d.mean),
                format!("[{:+.3}, {:+.3}]", d.low(), d.high()),
                crate::experiment::stats::show_p(d.p_value),
                d.n.to_string(),
            ),
            Some(d) => (format!("{:+.3}", d.mean), "-".into(), "-".into(), d.n.to_string()),
            None => ("-".into(), "-".into(), "-".into(), "0".into()),
        };
        let _ = writeln!(s, "| {} | {} | {diff} | {interval} | {p} | {n} | {} |", c.text, c.task, c.verdict.word());
    }
    let count = |v: Verdict| all.iter().filter(|c| c.verdict == v).count();
    let _ = writeln!(
        s,
        "\n{} confirmed, {} contradicted, {} inconclusive, {} not tested.\n",
        count(Verdict::Confirmed),
        count(Verdict::Contradicted),
        count(Verdict::Inconclusive),
        count(Verdict::NotTested)
    );
    let _ = writeln!(s, "## The paper's numbers, for reference\n");
    let _ = writeln!(
        s,
        "Jozefowicz et al. trained every cell to convergence with a large hyperparameter search; a budgeted study \
         is not comparable column by column, so only the orderings above are tested against the paper.\n"
    );
    let paper_tasks: Vec<TaskKind> =
        t.tasks.iter().copied().filter(|&k| t.cells.iter().any(|c| paper_value(c, k).is_some())).collect();
    let _ = write!(s, "| cell |");
    for task in &paper_tasks {
        let _ = write!(s, " {task} |");
    }
    let _ = writeln!(s, "\n|---|{}", "---|".repeat(paper_tasks.len()));
    for cell in t.cells.iter().filter(|c| paper_tasks.iter().any(|&k| paper_value(c, k).is_some())) {
        let _ = write!(s, "| {cell} |");
        for &task in &paper_tasks {
            let _ = write!(s, " {} |", paper_value(cell, task).map_or("-".into(), |v| format!("{v:.3}")));
        }
        let _ = writeln!(s);
    }
    s
}

/// The study as JSON (`cellc paper --json`, `cellc dashboard`): per cell and task the mean, its
/// 95% interval, the seeds, the chosen setting and the paper's value; the claims with their
/// verdicts; the runs and their cost.
pub fn json(table: &Table, records: &[RunRecord]) -> serde_json::Value {
    use serde_json::json;
    let cells: Vec<_> = table
        .cells
        .iter()
        .map(|c| {
            let per_task: serde_json::Map<String, serde_json::Value> = table
                .tasks
                .iter()
                .map(|&t| {
                    let e = table.entry(c, t);
                    let summary = json!({"mean": e.map(|e| e.summary.mean), "ci95": e.map(|e| e.summary.half_width),
                        "seeds": e.map(|e| e.summary.n), "setting": e.map(|e| e.setting),
                        "per_seed": e.map(|e| &e.by_seed), "paper": paper_value(c, t)});
                    (t.name().to_string(), summary)
                })
                .collect();
            json!({"cell": c, "score": table.score(c), "tasks": per_task})
        })
        .collect();
    let claims: Vec<_> = claims(table)
        .iter()
        .map(|c| {
            json!({"claim": c.text, "task": c.task.name(), "better": c.better, "worse": c.worse,
                "difference": c.difference, "verdict": c.verdict.word()})
        })
        .collect();
    let run_seconds: Vec<f64> = records.iter().map(|r| r.seconds).collect();
    let tasks: Vec<&str> = table.tasks.iter().map(|t| t.name()).collect();
    json!({"study": super::STUDY, "tasks": tasks, "cells": cells, "claims": claims, "runs": records.len(),
        "cost": super::plan::cost_json(&run_seconds)})
}

/// Every run as CSV.
pub fn csv(records: &[RunRecord]) -> String {
    let mut s = String::from("cell,task,metric,setting,seed,valid,test,steps,seconds,outcome,config\n");
    for r in records {
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{},{:.1},{},\"{}\"",
            r.cell,
            r.task,
            r.metric,
            r.setting,
            r.seed,
            r.valid,
            r.test,
            r.steps,
            r.seconds,
            r.outcome.replace(',', ";"),
            r.config.replace('"', "\"\"")
        );
    }
    s
}

/// One bar chart per task: each cell's mean with its interval and its seeds as points.
pub fn figure(t: &Table, title: &str) -> crate::plot::Figure {
    let panels = t
        .tasks
        .iter()
        .map(|&task| crate::plot::Panel {
            title: format!("{task}: {}", task.scored_name()),
            x_label: String::new(),
            y_label: String::new(),
            series: vec![],
            bars: t
                .cells
                .iter()
                .filter_map(|cell| {
                    let e = t.entry(cell, task)?;
                    let s = e.summary;
                    let hw = if s.half_width.is_finite() { s.half_width } else { 0.0 };
                    Some(crate::plot::Bar {
                        label: cell.clone(),
                        value: s.mean,
                        low: s.mean - hw,
                        high: s.mean + hw,
                        reference: None,
                        points: e.by_seed.values().copied().collect(),
                    })
                })
                .collect(),
        })
        .collect();
    crate::plot::Figure { title: title.into(), panels }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn rec(cell: &str, task: &str, setting: u32, seed: u64, valid: f64, test: f64) -> RunRecord {
        RunRecord {
            key: format!("{cell}{task}{setting}{seed}"),
            study: "paper".into(),
            cell: cell.into(),
            cell_source: String::new(),
            task: task.into(),
            setting,
            seed,
            config: "{}".into(),
            metric: TaskKind::parse(task).unwrap().scored_name().into(),
            valid,
            test,
            curve: "[]".into(),
            steps: 1,
            seconds: 1.0,
            outcome: "ok".into(),
        }
    }

    #[test]
    fn the_setting_is_chosen_on_selection_seeds_and_reported_on_the_others() {
        let seeds = SeedPlan { selection: vec![1, 2], evaluation: vec![3, 4, 5] };
        let r = vec![
            // Setting 0 has the single best selection run, setting 1 the best mean.
            rec("gru", "arith", 0, 1, 0.70, 0.0),
            rec("gru", "arith", 0, 2, 0.40, 0.0),
            rec("gru", "arith", 1, 1, 0.60, 0.0),
            rec("gru", "arith", 1, 2, 0.60, 0.0),
            rec("gru", "arith", 1, 3, 0.6, 0.58),
            rec("gru", "arith", 1, 4, 0.6, 0.60),
            rec("gru", "arith", 1, 5, 0.6, 0.62),
            rec("gru", "music:jsb", 0, 1, 8.0, 8.1),
            rec("gru", "music:jsb", 0, 2, 8.0, 8.1),
            rec("gru", "music:jsb", 1, 1, 7.0, 7.1),
            rec("gru", "music:jsb", 1, 2, 7.0, 7.1),
        ];
        let jsb = TaskKind::parse("music:jsb").unwrap();
        assert_eq!(best_setting(&r, "gru", TaskKind::Arith, &seeds.selection), Some(1), "by mean validation");
        assert_eq!(best_setting(&r, "gru", jsb, &seeds.selection), Some(1), "lower NLL is better");
        assert_eq!(best_setting(&r, "gru", TaskKind::Arith, &[]), Some(0), "nothing to choose: the defaults");
        let t = Table::build(&r, &["gru".into()], &[TaskKind::Arith], &seeds);
        let e = t.entry("gru", TaskKind::Arith).unwrap();
        assert_eq!(e.by_seed.keys().copied().collect::<Vec<_>>(), vec![3, 4, 5], "selection seeds are not reported");
        let s = e.summary;
        assert!((s.mean - 0.6).abs() < 1e-12 && s.n == 3);
        assert!((s.half_width - 4.303 * 0.02 / 3f64.sqrt()).abs() < 1e-3);
        assert_eq!(t.score("gru"), Some(1.0));
    }

    #[test]
    fn the_report_keeps_the_papers_numbers_apart() {
        let seeds = SeedPlan { selection: vec![], evaluation: vec![1, 2] };
        let r: Vec<RunRecord> =
            (1..=2).flat_map(|s| [rec("gru", "arith", 0, s, 0.5, 0.5), rec("lstm", "arith", 0, s, 0.4, 0.4)]).collect();
        let t = Table::build(&r, &["gru".into(), "lstm".into()], &[TaskKind::Arith], &seeds);
        let md = markdown(&t, "#");
        let ours = md.split("## The paper's claims").next().unwrap();
        assert!(!ours.contains("0.896"), "the paper's GRU number is not beside ours:\n{md}");
        assert!(md.contains("## The paper's numbers, for reference") && md.contains("0.896"), "{md}");
        assert!(md.contains("| The GRU beats the LSTM | arith | +0.100 |"), "{md}");
    }
}
