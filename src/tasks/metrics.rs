//! A task's metrics: running totals over evaluated batches ([`Tally`]) and the numbers a run
//! reports ([`Metrics`]): the headline metric, the secondary one, and the loss.

use serde::{Deserialize, Serialize};

use super::{Batch, TaskKind};

/// Running totals of a task's metrics over evaluated batches.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Tally {
    /// Weighted rows and those predicted right (the headline metric).
    pub rows: f64,
    pub correct: f64,
    /// Rows of the secondary class and those predicted right.
    pub class_rows: f64,
    pub class_correct: f64,
    /// Whole examples and those with every weighted row right (sequence tasks).
    pub examples: f64,
    pub exact: f64,
    /// Sum of the weighted rows' cross-entropy (nats).
    pub loss_sum: f64,
    /// Music: notes predicted sounding that do, that do not, and sounding notes missed.
    pub true_pos: f64,
    pub false_pos: f64,
    pub false_neg: f64,
}

impl Tally {
    /// Adds one batch given whether each row's top prediction equals its target and each row's
    /// cross-entropy.
    pub fn add(&mut self, batch: &Batch, right: &[bool], losses: &[f32]) {
        let (t_max, b_max) = (batch.steps, batch.batch);
        for b in 0..b_max {
            let mut any = false;
            let mut all_right = true;
            for t in 0..t_max {
                let r = t * b_max + b;
                if batch.weights[r] > 0.0 {
                    any = true;
                    self.rows += 1.0;
                    self.loss_sum += f64::from(losses[r]);
                    if right[r] {
                        self.correct += 1.0;
                    } else {
                        all_right = false;
                    }
                }
                if batch.classes[r] {
                    self.class_rows += 1.0;
                    self.class_correct += f64::from(u8::from(right[r]));
                }
            }
            if any && !batch.stream {
                self.examples += 1.0;
                self.exact += f64::from(u8::from(all_right));
            }
        }
    }

    /// Music: adds each weighted row's (true positives, false positives, false negatives).
    pub fn add_hits(&mut self, batch: &Batch, hits: &[[u32; 3]]) {
        for (h, &w) in hits.iter().zip(&batch.weights) {
            if w > 0.0 {
                self.true_pos += f64::from(h[0]);
                self.false_pos += f64::from(h[1]);
                self.false_neg += f64::from(h[2]);
            }
        }
    }

    /// Music's frame-level accuracy (Bay et al. 2009): TP / (TP + FP + FN), notes predicted
    /// sounding when their probability is above 1/2.
    pub fn frame_accuracy(&self) -> Option<f64> {
        let all = self.true_pos + self.false_pos + self.false_neg;
        (all > 0.0).then(|| self.true_pos / all)
    }

    pub fn accuracy(&self) -> f64 {
        if self.rows > 0.0 { self.correct / self.rows } else { 0.0 }
    }

    pub fn class_accuracy(&self) -> Option<f64> {
        (self.class_rows > 0.0).then(|| self.class_correct / self.class_rows)
    }

    pub fn exact_match(&self) -> Option<f64> {
        (self.examples > 0.0).then(|| self.exact / self.examples)
    }

    /// Mean cross-entropy per weighted row.
    pub fn loss(&self) -> f64 {
        if self.rows > 0.0 { self.loss_sum / self.rows } else { 0.0 }
    }
}

/// Metrics of one evaluation set.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// The headline metric (accuracy, perplexity, bits per character, NLL per frame).
    #[serde(with = "crate::io::float")]
    pub metric: f64,
    /// The secondary metric: exact match (sequence tasks), closing-tag accuracy (xml), next-word
    /// or character accuracy (a corpus), frame accuracy (music).
    pub secondary: Option<f64>,
    /// Mean cross-entropy per counted symbol (nats).
    #[serde(with = "crate::io::float")]
    pub loss: f64,
}

impl Metrics {
    pub fn from_tally(t: &Tally, kind: TaskKind) -> Metrics {
        let (metric, secondary) = match kind {
            TaskKind::Ptb => (t.loss().exp(), Some(t.accuracy())),
            TaskKind::Text => (t.loss() / std::f64::consts::LN_2, Some(t.accuracy())),
            TaskKind::Xml => (t.accuracy(), t.class_accuracy()),
            TaskKind::Music(_) => (t.loss(), t.frame_accuracy()),
            TaskKind::Arith | TaskKind::Memorize => (t.accuracy(), t.exact_match()),
        };
        Metrics { metric, secondary, loss: t.loss() }
    }

    /// Whether these metrics beat `other` on the task's headline metric.
    pub fn beats(&self, other: &Metrics, kind: TaskKind) -> bool {
        if kind.higher_is_better() { self.metric > other.metric } else { self.metric < other.metric }
    }

    /// The number a study or a search compares ([`TaskKind::scored`]).
    pub fn scored(&self, kind: TaskKind) -> f64 {
        match kind.scored() {
            super::Scored::Headline => self.metric,
            super::Scored::Secondary => self.secondary.unwrap_or(0.0),
        }
    }
}
