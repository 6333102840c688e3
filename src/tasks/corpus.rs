//! Language modelling on a token corpus (Penn Treebank words, or the characters of a text): the
//! next token at every position, with the state carried from batch to batch.
//!
//! Batching is Zaremba et al.'s (2014): the split is cut into B contiguous streams of
//! `len = N / B` tokens (the remainder is dropped), and batch i holds tokens `i*T .. i*T + T` of
//! every stream (T = the BPTT length; the last batch of an epoch may be shorter). An epoch is
//! one pass; the next epoch starts again at the beginning with zero states.

use std::sync::Arc;

use super::Batch;
use crate::data::corpus::Corpus;

/// What the corpus is, which decides the headline metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Penn Treebank: perplexity per word.
    Words,
    /// Text: bits per character.
    Characters,
}

#[derive(Clone, Debug)]
pub struct CorpusTask {
    pub unit: Unit,
    pub corpus: Arc<Corpus>,
    /// Parallel streams: the batch size of this task.
    pub streams: usize,
    /// Evaluate on about this many tokens of each set (None: all).
    pub eval_tokens: Option<usize>,
}

impl PartialEq for CorpusTask {
    fn eq(&self, other: &Self) -> bool {
        self.unit == other.unit && self.streams == other.streams && Arc::ptr_eq(&self.corpus, &other.corpus)
    }
}

/// Tokens per stream of a split cut into `streams` streams.
pub fn stream_len(tokens: &[u32], streams: usize) -> usize {
    tokens.len() / streams.max(1)
}

/// Batches in one pass over a split.
pub fn batches_per_epoch(tokens: &[u32], streams: usize, steps: usize) -> usize {
    stream_len(tokens, streams).saturating_sub(1).div_ceil(steps.max(1))
}

/// Batch `i` of a pass over `tokens` cut into `streams` streams, `steps` tokens each; `None` past
/// the end. The first batch of a pass starts from zero states (`stream: false`).
pub fn batch(tokens: &[u32], streams: usize, steps: usize, i: usize) -> Option<Batch> {
    let len = stream_len(tokens, streams);
    let start = i * steps;
    if start + 1 >= len {
        return None;
    }
    let t_len = steps.min(len - 1 - start);
    let mut b = Batch::padded(t_len, streams, 0);
    b.stream = i > 0;
    for s in 0..streams {
        let base = s * len + start;
        for t in 0..t_len {
            let r = t * streams + s;
            b.tokens[r] = tokens[base + t];
            b.targets[r] = tokens[base + t + 1];
            b.weights[r] = 1.0;
        }
    }
    Some(b)
}
