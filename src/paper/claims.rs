//! The paper's findings as orderings of two cells on one task, each tested by the paired
//! difference over the evaluation seeds the cells share: confirmed, contradicted or inconclusive
//! by where its 95% interval lies, never by comparing means.

use std::collections::BTreeMap;

use super::report::Table;
use crate::experiment::stats::{Summary, paired};
use crate::tasks::TaskKind;

/// One ordering the paper reports: `better` beats `worse` on `task`.
pub struct Claim {
    pub text: &'static str,
    pub task: TaskKind,
    pub better: &'static str,
    pub worse: &'static str,
    /// `better - worse` per shared seed, signed so that positive is the paper's direction
    /// (for NLL, lower is better); `None` when a cell or the task is not in the study.
    pub difference: Option<Summary>,
    pub verdict: Verdict,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The interval excludes zero in the paper's direction.
    Confirmed,
    /// The interval excludes zero the other way.
    Contradicted,
    /// The interval contains zero (or there are fewer than two shared seeds).
    Inconclusive,
    /// A cell or the task the claim needs was not in the study.
    NotTested,
}

impl Verdict {
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Confirmed => "confirmed",
            Verdict::Contradicted => "contradicted",
            Verdict::Inconclusive => "inconclusive",
            Verdict::NotTested => "not tested",
        }
    }
}

/// The paper's orderings (its Table 1 and text), on the tasks where it reports them: arith and
/// XML (on language modelling the paper itself finds them weaker or reversed).
pub(super) const ORDERINGS: [(&str, &str, &str); 6] = [
    ("The forget gate matters: LSTM beats LSTM-f", "lstm", "lstm_f"),
    ("LSTM-f is the worst ablation: LSTM-i beats LSTM-f", "lstm_i", "lstm_f"),
    ("LSTM-f is the worst ablation: LSTM-o beats LSTM-f", "lstm_o", "lstm_f"),
    ("A forget-gate bias of 1 helps: LSTM-b beats LSTM", "lstm_b", "lstm"),
    ("The GRU beats the LSTM", "gru", "lstm"),
    ("MUT1 beats the GRU", "mut1", "gru"),
];

pub(super) const TASKS: [TaskKind; 2] = [TaskKind::Arith, TaskKind::Xml];

/// Every ordering on every task the paper reports it for, tested on the table.
pub fn claims(t: &Table) -> Vec<Claim> {
    let mut out = vec![];
    for (text, better, worse) in ORDERINGS {
        for task in TASKS {
            let difference = paired_difference(t, better, worse, task);
            let verdict = match &difference {
                None => Verdict::NotTested,
                Some(d) => match d.sign() {
                    Some(true) => Verdict::Confirmed,
                    Some(false) => Verdict::Contradicted,
                    None => Verdict::Inconclusive,
                },
            };
            out.push(Claim { text, task, better, worse, difference, verdict });
        }
    }
    out
}

/// `better - worse` on the seeds both have, positive when `better` is better; 95% interval.
pub fn paired_difference(t: &Table, better: &str, worse: &str, task: TaskKind) -> Option<Summary> {
    let (b, w) = (t.entry(better, task)?, t.entry(worse, task)?);
    paired_between(&b.by_seed, &w.by_seed, task)
}

/// `better - worse` over the seeds both have (values by seed), positive when `better` is better.
pub fn paired_between(better: &BTreeMap<u64, f64>, worse: &BTreeMap<u64, f64>, task: TaskKind) -> Option<Summary> {
    let seeds: Vec<u64> = better.keys().filter(|s| worse.contains_key(s)).copied().collect();
    if seeds.is_empty() {
        return None;
    }
    let sign = if task.higher_is_better() { 1.0 } else { -1.0 };
    let worse_values: Vec<f64> = seeds.iter().map(|s| sign * worse[s]).collect();
    let better_values: Vec<f64> = seeds.iter().map(|s| sign * better[s]).collect();
    Some(Summary::of(&paired(&worse_values, &better_values), 0.95))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paper::plan::SeedPlan;
    use crate::paper::report::tests::rec;

    fn table(records: &[crate::paper::RunRecord]) -> Table {
        let cells: Vec<String> = ["lstm", "lstm_f", "lstm_i", "lstm_o", "lstm_b", "gru"].map(String::from).to_vec();
        let seeds = SeedPlan { selection: vec![], evaluation: vec![1, 2, 3] };
        Table::build(records, &cells, &[TaskKind::Arith], &seeds)
    }

    #[test]
    fn verdicts_come_from_paired_intervals_not_from_means() {
        // Seed effects much larger than the cell effects: the means' intervals overlap, but
        // every seed ranks the cells the same way, so the paired intervals decide.
        let seed_effect = [0.0, 0.2, 0.4];
        let mut r = vec![];
        for (cell, base, wobble) in [
            ("lstm", 0.30, [0.0, 0.001, -0.001]),
            ("lstm_f", 0.20, [0.0, 0.002, 0.0]),
            ("lstm_i", 0.25, [0.0, 0.0, 0.001]),
            ("lstm_o", 0.26, [0.001, 0.0, 0.0]),
            ("lstm_b", 0.30, [0.02, -0.03, 0.01]), // no consistent difference from lstm
            ("gru", 0.25, [0.0, 0.001, 0.0]),      // consistently below lstm
        ] {
            for (i, seed) in (1..=3u64).enumerate() {
                let v = base + seed_effect[i] + wobble[i];
                r.push(rec(cell, "arith", 0, seed, v, v));
            }
        }
        let t = table(&r);
        let verdict = |better: &str, worse: &str, task: TaskKind| {
            claims(&t).into_iter().find(|c| c.better == better && c.worse == worse && c.task == task).unwrap().verdict
        };
        let means_overlap = {
            let (a, b) = (t.get("lstm", TaskKind::Arith).unwrap(), t.get("lstm_f", TaskKind::Arith).unwrap());
            a.low() < b.high()
        };
        assert!(means_overlap, "the test needs overlapping per-cell intervals");
        assert_eq!(verdict("lstm", "lstm_f", TaskKind::Arith), Verdict::Confirmed);
        assert_eq!(verdict("lstm_o", "lstm_f", TaskKind::Arith), Verdict::Confirmed);
        assert_eq!(verdict("gru", "lstm", TaskKind::Arith), Verdict::Contradicted);
        assert_eq!(verdict("lstm_b", "lstm", TaskKind::Arith), Verdict::Inconclusive);
        assert_eq!(verdict("mut1", "gru", TaskKind::Arith), Verdict::NotTested, "mut1 is not in the study");
        assert_eq!(verdict("gru", "lstm", TaskKind::Xml), Verdict::NotTested, "xml is not in the study");
    }

    #[test]
    fn lower_is_better_for_nll() {
        let jsb = TaskKind::parse("music:jsb").unwrap();
        let mut r = vec![];
        for seed in 1..=3u64 {
            let s = seed as f64 * 0.1;
            r.push(rec("gru", "music:jsb", 0, seed, 8.0 + s, 8.0 + s));
            r.push(rec("lstm", "music:jsb", 0, seed, 8.5 + s * 1.01, 8.5 + s * 1.01));
        }
        let cells = vec!["gru".to_string(), "lstm".to_string()];
        let t = Table::build(&r, &cells, &[jsb], &SeedPlan { selection: vec![], evaluation: vec![1, 2, 3] });
        let d = paired_difference(&t, "gru", "lstm", jsb).unwrap();
        assert!(d.mean > 0.49 && d.sign() == Some(true), "{d:?}");
    }
}
