//! Token corpora for language modelling: Penn Treebank (words) and any UTF-8 text (characters).
//!
//! PTB follows the standard reader (Zaremba et al. 2014; TensorFlow's `ptb` reader): every line
//! end becomes `<eos>`, tokens are split on whitespace, and the vocabulary is the training set's
//! words plus `<eos>` (10,000 for Mikolov's files), ordered by falling count, then alphabetically.
//! A validation or test word missing from it is an error (Mikolov's files have none).
//!
//! Text is split by character, not byte: the first 90% of the characters train, the next 5%
//! validate, the last 5% test; the vocabulary is every character of the file, sorted.

use std::collections::HashMap;
use std::path::Path;

use super::{read, thousands};

/// A corpus: the vocabulary and each split as token ids.
#[derive(Clone, Debug, PartialEq)]
pub struct Corpus {
    pub vocab: Vec<String>,
    pub train: Vec<u32>,
    pub valid: Vec<u32>,
    pub test: Vec<u32>,
    /// `words` or `characters`, for messages.
    pub unit: &'static str,
}

/// The PTB file of a split in `dir` (or `dir/ptb`).
fn ptb_file(dir: &Path, split: &str) -> std::path::PathBuf {
    let name = format!("ptb.{split}.txt");
    let direct = dir.join(&name);
    if direct.exists() { direct } else { dir.join("ptb").join(name) }
}

/// Whitespace-separated words of ASCII text, `<eos>` at each line end; an error names the line
/// of a non-ASCII byte or a file that does not end with a newline (a truncated copy).
fn ptb_words(path: &Path) -> Result<Vec<String>, String> {
    let bytes = read(path)?;
    if bytes.is_empty() {
        return Err(format!("{} is empty", path.display()));
    }
    if let Some(at) = bytes.iter().position(|b| !b.is_ascii()) {
        let line = bytes[..at].iter().filter(|&&b| b == b'\n').count() + 1;
        return Err(format!("{}:{line}: a non-ASCII byte; PTB files are ASCII", path.display()));
    }
    if bytes.last() != Some(&b'\n') {
        let lines = bytes.iter().filter(|&&b| b == b'\n').count() + 1;
        return Err(format!("{}:{lines}: the last line has no newline (a truncated file?)", path.display()));
    }
    let text = std::str::from_utf8(&bytes).expect("ASCII is UTF-8");
    let mut words = Vec::with_capacity(bytes.len() / 5);
    for line in text.lines() {
        words.extend(line.split_ascii_whitespace().map(str::to_string));
        words.push("<eos>".to_string());
    }
    Ok(words)
}

impl Corpus {
    /// Mikolov's PTB from `dir` (holding `ptb.train.txt` etc., or a `ptb/` directory with them).
    pub fn ptb(dir: &Path) -> Result<Corpus, String> {
        let train_path = ptb_file(dir, "train");
        if !train_path.exists() {
            return Err(format!(
                "Penn Treebank not found: no {} (give the data directory with --data DIR or ${})",
                train_path.display(),
                super::DATA_VAR
            ));
        }
        let train_words = ptb_words(&train_path)?;
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for w in &train_words {
            *counts.entry(w.as_str()).or_default() += 1;
        }
        let mut vocab: Vec<(&str, usize)> = counts.into_iter().collect();
        vocab.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let vocab: Vec<String> = vocab.into_iter().map(|(w, _)| w.to_string()).collect();
        let ids: HashMap<&str, u32> = vocab.iter().enumerate().map(|(i, w)| (w.as_str(), i as u32)).collect();
        let train = train_words.iter().map(|w| ids[w.as_str()]).collect();
        let split = |name: &str| -> Result<Vec<u32>, String> {
            let path = ptb_file(dir, name);
            if !path.exists() {
                return Err(format!("Penn Treebank incomplete: no {}", path.display()));
            }
            let words = ptb_words(&path)?;
            let mut line = 1;
            words
                .iter()
                .map(|w| {
                    let id = ids
                        .get(w.as_str())
                        .copied()
                        .ok_or_else(|| format!("{}:{line}: `{w}` is not in the training vocabulary", path.display()));
                    line += usize::from(w == "<eos>");
                    id
                })
                .collect()
        };
        let (valid, test) = (split("valid")?, split("test")?);
        Ok(Corpus { vocab, train, valid, test, unit: "words" })
    }

    /// A UTF-8 text file, split 90/5/5 by character.
    pub fn text(path: &Path) -> Result<Corpus, String> {
        Corpus::text_bytes(&read(path)?, &path.display().to_string())
    }

    /// [`Corpus::text`] of a file's bytes; `what` names the file in errors.
    pub fn text_bytes(bytes: &[u8], what: &str) -> Result<Corpus, String> {
        let text = std::str::from_utf8(bytes).map_err(|e| {
            let line = bytes[..e.valid_up_to()].iter().filter(|&&b| b == b'\n').count() + 1;
            format!("{what}:{line}: not UTF-8 text")
        })?;
        let chars: Vec<char> = text.chars().collect();
        if chars.len() < 100 {
            return Err(format!(
                "{what}: {} characters is too little text to split 90/5/5 (100 at least)",
                chars.len()
            ));
        }
        let mut vocab: Vec<char> = chars.clone();
        vocab.sort_unstable();
        vocab.dedup();
        let ids: HashMap<char, u32> = vocab.iter().enumerate().map(|(i, &c)| (c, i as u32)).collect();
        let tokens: Vec<u32> = chars.iter().map(|c| ids[c]).collect();
        let (a, b) = (tokens.len() * 90 / 100, tokens.len() * 95 / 100);
        Ok(Corpus {
            vocab: vocab.iter().map(|c| c.to_string()).collect(),
            train: tokens[..a].to_vec(),
            valid: tokens[a..b].to_vec(),
            test: tokens[b..].to_vec(),
            unit: "characters",
        })
    }

    /// `929,589 / 73,760 / 82,430 words, vocabulary 10,000`.
    pub fn summary(&self) -> String {
        format!(
            "{} / {} / {} {} (train / valid / test), vocabulary {}",
            thousands(self.train.len()),
            thousands(self.valid.len()),
            thousands(self.test.len()),
            self.unit,
            thousands(self.vocab.len())
        )
    }
}
