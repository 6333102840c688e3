//! The study's report: Table 1 with our numbers beside the paper's, GRU-relative scores, the
//! paper's qualitative claims checked against the numbers, a CSV of every run, and bar charts.

use std::fmt::Write as _;

use super::RunRecord;
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

/// The setting with the best first-seed validation result of (cell, task).
pub fn best_setting(records: &[RunRecord], cell: &str, task: TaskKind, seed: u64) -> Option<u32> {
    let lower = !task.scored_by_accuracy();
    records
        .iter()
        .filter(|r| r.cell == cell && r.task == task.name() && r.seed == seed)
        .min_by(|a, b| {
            let (x, y) = if lower { (a.valid, b.valid) } else { (b.valid, a.valid) };
            x.total_cmp(&y).then(a.setting.cmp(&b.setting))
        })
        .map(|r| r.setting)
}

/// Mean and 95% confidence half-width (Student t) of the test results of the best setting.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    pub mean: f64,
    pub half_width: f64,
    pub seeds: usize,
}

impl Summary {
    fn of(values: &[f64]) -> Option<Summary> {
        let n = values.len();
        if n == 0 {
            return None;
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        let half_width = if n < 2 {
            f64::NAN
        } else {
            let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
            t_975(n - 1) * (var / n as f64).sqrt()
        };
        Some(Summary { mean, half_width, seeds: n })
    }

    fn show(&self) -> String {
        if self.half_width.is_finite() {
            format!("{:.3} ± {:.3}", self.mean, self.half_width)
        } else {
            format!("{:.3}", self.mean)
        }
    }
}

/// The 97.5% quantile of Student's t with `df` degrees of freedom.
fn t_975(df: usize) -> f64 {
    const T: [f64; 10] = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228];
    if df == 0 {
        f64::NAN
    } else if df <= T.len() {
        T[df - 1]
    } else {
        1.96 + 2.5 / df as f64
    }
}

/// Results by cell and task.
pub struct Table {
    pub cells: Vec<String>,
    pub tasks: Vec<TaskKind>,
    /// `[cell][task]`.
    pub results: Vec<Vec<Option<Summary>>>,
}

impl Table {
    pub fn build(records: &[RunRecord], cells: &[String], tasks: &[TaskKind], seed: u64) -> Table {
        let results = cells
            .iter()
            .map(|cell| {
                tasks
                    .iter()
                    .map(|&task| {
                        let best = best_setting(records, cell, task, seed)?;
                        let tests: Vec<f64> = records
                            .iter()
                            .filter(|r| &r.cell == cell && r.task == task.name() && r.setting == best)
                            .map(|r| r.test)
                            .collect();
                        Summary::of(&tests)
                    })
                    .collect()
            })
            .collect();
        Table { cells: cells.to_vec(), tasks: tasks.to_vec(), results }
    }

    pub fn get(&self, cell: &str, task: TaskKind) -> Option<Summary> {
        let c = self.cells.iter().position(|x| x == cell)?;
        let t = self.tasks.iter().position(|&x| x == task)?;
        self.results[c][t]
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

/// A claim of the paper and whether our numbers bear it out.
pub struct Claim {
    pub text: &'static str,
    pub verdict: Verdict,
    pub evidence: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Confirmed,
    NotConfirmed,
    /// A cell or task the claim needs was not in the study.
    NotTested,
}

/// Whether `a` beats `b` on the task, and whether by more than both intervals.
fn compare(t: &Table, a: &str, b: &str, task: TaskKind) -> Option<(bool, bool)> {
    let (x, y) = (t.get(a, task)?, t.get(b, task)?);
    let better = if task.scored_by_accuracy() { x.mean > y.mean } else { x.mean < y.mean };
    let hw = |s: Summary| if s.half_width.is_finite() { s.half_width } else { 0.0 };
    let clear = (x.mean - y.mean).abs() > hw(x) + hw(y);
    Some((better, clear))
}

fn fmt(t: &Table, cell: &str, task: TaskKind) -> String {
    t.get(cell, task).map_or("-".into(), |s| s.show())
}

/// The tasks the paper's claims are about.
const SYNTHETIC: [TaskKind; 2] = [TaskKind::Arith, TaskKind::Xml];

/// The paper's qualitative claims, each checked on the table.
pub fn claims(t: &Table) -> Vec<Claim> {
    vec![forget_gate_matters(t), forget_bias_closes_the_gap(t), gru_beats_lstm(t), mut1_is_best(t)]
}

/// The forget gate matters most (LSTM-f is the worst ablation), except on language modelling.
fn forget_gate_matters(t: &Table) -> Claim {
    let ablations = ["lstm_f", "lstm_i", "lstm_o"];
    let mut ok = true;
    let mut evidence = vec![];
    let mut tested = true;
    for task in SYNTHETIC {
        let means: Option<Vec<f64>> = ablations.iter().map(|c| t.get(c, task).map(|s| s.mean)).collect();
        match means {
            Some(m) => {
                ok &= m[0] < m[1] && m[0] < m[2];
                evidence.push(format!(
                    "{task}: LSTM-f {}, LSTM-i {}, LSTM-o {}",
                    fmt(t, "lstm_f", task),
                    fmt(t, "lstm_i", task),
                    fmt(t, "lstm_o", task)
                ));
            }
            None => tested = false,
        }
    }
    if let (Some(f), Some(l)) = (t.get("lstm_f", TaskKind::Ptb), t.get("lstm", TaskKind::Ptb)) {
        evidence.push(format!("ptb: LSTM-f {} vs LSTM {}", f.show(), l.show()));
    }
    Claim {
        text: "The forget gate matters most: LSTM-f is the worst LSTM ablation on arith and XML (the paper: not so on language modelling)",
        verdict: verdict(tested, ok),
        evidence: evidence.join("; "),
    }
}

/// LSTM-b closes the gap to the GRU.
fn forget_bias_closes_the_gap(t: &Table) -> Claim {
    let (b, l) = (t.score("lstm_b"), t.score("lstm"));
    let tested = b.is_some() && l.is_some();
    let ok = tested && b > l;
    Claim {
        text: "A forget-gate bias of 1 (LSTM-b) closes the gap between the LSTM and the GRU",
        verdict: verdict(tested, ok),
        evidence: format!(
            "GRU-relative score: LSTM-b {}, LSTM {}",
            b.map_or("-".into(), |v| format!("{v:.3}")),
            l.map_or("-".into(), |v| format!("{v:.3}"))
        ),
    }
}

/// The GRU beats the LSTM except on language modelling.
fn gru_beats_lstm(t: &Table) -> Claim {
    let mut ok = true;
    let mut tested = true;
    let mut evidence = vec![];
    for task in SYNTHETIC {
        match compare(t, "gru", "lstm", task) {
            Some((better, clear)) => {
                ok &= better;
                evidence.push(format!(
                    "{task}: GRU {} vs LSTM {}{}",
                    fmt(t, "gru", task),
                    fmt(t, "lstm", task),
                    if clear { "" } else { " (within the intervals)" }
                ));
            }
            None => tested = false,
        }
    }
    if t.get("gru", TaskKind::Ptb).is_some() && t.get("lstm", TaskKind::Ptb).is_some() {
        evidence.push(format!("ptb: GRU {} vs LSTM {}", fmt(t, "gru", TaskKind::Ptb), fmt(t, "lstm", TaskKind::Ptb)));
    }
    Claim {
        text: "The GRU outperforms the LSTM on arith and XML (the paper: not on language modelling)",
        verdict: verdict(tested, ok),
        evidence: evidence.join("; "),
    }
}

/// MUT1 is the best cell on arith and XML.
fn mut1_is_best(t: &Table) -> Claim {
    let mut ok = true;
    let mut tested = t.cells.iter().any(|c| c == "mut1");
    let mut evidence = vec![];
    for task in SYNTHETIC {
        let best = t.cells.iter().filter(|c| t.get(c, task).is_some()).max_by(|a, b| {
            t.get(a, task)
                .map(|s| s.mean)
                .partial_cmp(&t.get(b, task).map(|s| s.mean))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        match best {
            Some(b) => {
                ok &= b == "mut1";
                evidence.push(format!("{task}: best {b} {}, MUT1 {}", fmt(t, b, task), fmt(t, "mut1", task)));
            }
            None => tested = false,
        }
    }
    Claim {
        text: "MUT1 is the best cell on arith and XML",
        verdict: verdict(tested, ok),
        evidence: evidence.join("; "),
    }
}

fn verdict(tested: bool, ok: bool) -> Verdict {
    match (tested, ok) {
        (false, _) => Verdict::NotTested,
        (true, true) => Verdict::Confirmed,
        (true, false) => Verdict::NotConfirmed,
    }
}

/// The Markdown report: Table 1 beside the paper, scores, claims.
pub fn markdown(t: &Table, header: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{header}\n");
    let _ = writeln!(
        s,
        "Each cell: mean ± 95% interval (Student t) of the test result over the seeds of the setting with the best \
         validation result; the paper's number in parentheses. Accuracy: higher is better; NLL per frame: lower.\n"
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
            let ours = fmt(t, cell, task);
            let paper = paper_value(cell, task).map_or(String::new(), |v| format!(" ({v})"));
            let _ = write!(s, " {ours}{paper} |");
        }
        let _ = writeln!(s, " {} |", t.score(cell).map_or("-".into(), |v| format!("{v:.3}")));
    }
    let _ = writeln!(
        s,
        "\nGRU-relative score: the minimum over the accuracy tasks of the cell's accuracy over the GRU's (the paper's search score).\n"
    );
    let _ = writeln!(s, "## The paper's claims\n");
    for c in claims(t) {
        let mark = match c.verdict {
            Verdict::Confirmed => "confirmed",
            Verdict::NotConfirmed => "not confirmed",
            Verdict::NotTested => "not tested",
        };
        let _ = writeln!(s, "- **{mark}**: {}. {}", c.text, c.evidence);
    }
    s
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

/// One bar chart per task: each cell's mean with its interval, and the paper's value as a tick.
pub fn figure(t: &Table, title: &str) -> crate::plot::Figure {
    let panels = t
        .tasks
        .iter()
        .map(|&task| crate::plot::Panel {
            title: format!("{task}: {} (black tick: the paper)", task.scored_name()),
            x_label: String::new(),
            y_label: String::new(),
            series: vec![],
            bars: t
                .cells
                .iter()
                .filter_map(|cell| {
                    let s = t.get(cell, task)?;
                    let hw = if s.half_width.is_finite() { s.half_width } else { 0.0 };
                    Some(crate::plot::Bar {
                        label: cell.clone(),
                        value: s.mean,
                        low: s.mean - hw,
                        high: s.mean + hw,
                        reference: paper_value(cell, task),
                        points: vec![],
                    })
                })
                .collect(),
        })
        .collect();
    crate::plot::Figure { title: title.into(), panels }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(cell: &str, task: &str, setting: u32, seed: u64, valid: f64, test: f64) -> RunRecord {
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
    fn the_best_setting_is_chosen_on_validation_and_summarised_over_seeds() {
        let r = vec![
            rec("gru", "arith", 0, 1, 0.5, 0.5),
            rec("gru", "arith", 1, 1, 0.6, 0.58),
            rec("gru", "arith", 1, 2, 0.6, 0.60),
            rec("gru", "arith", 1, 3, 0.6, 0.62),
            rec("gru", "music:jsb", 0, 1, 8.0, 8.1),
            rec("gru", "music:jsb", 1, 1, 7.0, 7.1),
        ];
        let jsb = TaskKind::parse("music:jsb").unwrap();
        assert_eq!(best_setting(&r, "gru", TaskKind::Arith, 1), Some(1));
        assert_eq!(best_setting(&r, "gru", jsb, 1), Some(1), "lower NLL is better");
        let t = Table::build(&r, &["gru".into()], &[TaskKind::Arith], 1);
        let s = t.get("gru", TaskKind::Arith).unwrap();
        assert!((s.mean - 0.6).abs() < 1e-12 && s.seeds == 3);
        assert!((s.half_width - 4.303 * 0.02 / 3f64.sqrt()).abs() < 1e-9);
        assert_eq!(t.score("gru"), Some(1.0));
    }

    #[test]
    fn claims_follow_the_numbers() {
        let mut r = vec![];
        for (cell, a, x) in [
            ("lstm", 0.5, 0.4),
            ("lstm_f", 0.2, 0.2),
            ("lstm_i", 0.4, 0.3),
            ("lstm_o", 0.45, 0.35),
            ("lstm_b", 0.55, 0.42),
            ("gru", 0.6, 0.45),
            ("mut1", 0.7, 0.5),
        ] {
            r.push(rec(cell, "arith", 0, 1, a, a));
            r.push(rec(cell, "xml", 0, 1, x, x));
        }
        let cells: Vec<String> =
            ["lstm", "lstm_f", "lstm_i", "lstm_o", "lstm_b", "gru", "mut1"].map(String::from).to_vec();
        let t = Table::build(&r, &cells, &[TaskKind::Arith, TaskKind::Xml], 1);
        assert!(claims(&t).iter().all(|c| c.verdict == Verdict::Confirmed), "{}", markdown(&t, "#"));
        let r2: Vec<RunRecord> = r
            .into_iter()
            .map(|mut x| {
                if x.cell == "mut1" {
                    x.valid = 0.1;
                    x.test = 0.1;
                }
                x
            })
            .collect();
        let t2 = Table::build(&r2, &cells, &[TaskKind::Arith, TaskKind::Xml], 1);
        assert_eq!(claims(&t2)[3].verdict, Verdict::NotConfirmed);
    }
}
