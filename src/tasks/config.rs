//! A task's knobs ([`TaskConfig`], chosen on the command line and saved in checkpoints) and the
//! task they build ([`Task`]: the generator's parameters, or the loaded corpus or music set).

use std::cell::Cell;
use std::sync::Arc;

use super::{Batch, TaskKind, arith, corpus, memorize, music, xml};
use crate::data::corpus::Corpus;

/// A task and its knobs as chosen on the command line and saved in checkpoints.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TaskConfig {
    /// Which task (saved under the key `name`, as before kinds were a type).
    #[serde(rename = "name")]
    pub kind: TaskKind,
    /// arith: digits per operand, 1..=max_digits in training.
    pub max_digits: usize,
    /// arith: also test on numbers of max_digits+1..=eval_max_digits digits.
    pub eval_max_digits: Option<usize>,
    /// arith: mean distractor letters after each input character.
    pub distractors: f64,
    /// xml: iterations after which every open tag is closed.
    pub max_depth: usize,
    /// xml: parallel streams (the batch size) and characters per stream in an evaluation.
    pub streams: usize,
    pub eval_chars: usize,
    /// memorize: symbols to remember.
    pub length: usize,
    /// arith: train with a curriculum over the number of digits (see [`arith`]).
    #[serde(default)]
    pub curriculum: bool,
    /// ptb: the data directory; text: the text file (absolute, so a resumed run finds it).
    #[serde(default)]
    pub data: Option<std::path::PathBuf>,
    /// ptb, text: validate and test on about this many tokens from the start of each set instead
    /// of all of it (the search's short runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_tokens: Option<usize>,
}

impl TaskConfig {
    /// A task's defaults.
    pub fn new(kind: TaskKind) -> TaskConfig {
        TaskConfig {
            kind,
            max_digits: 8,
            eval_max_digits: None,
            distractors: 1.0,
            max_depth: 50,
            streams: 32,
            eval_chars: 2048,
            length: 5,
            curriculum: false,
            data: None,
            eval_tokens: None,
        }
    }

    /// Builds the task: checks the knobs and, for real data, loads and tokenises it (once per
    /// run: callers pass the built task down).
    pub fn build(&self) -> Result<Task, String> {
        BUILDS.with(|b| b.set(b.get() + 1));
        match self.kind {
            TaskKind::Arith => {
                if !(1..=18).contains(&self.max_digits) {
                    return Err(format!("--max-digits must be in 1..=18, not {}", self.max_digits));
                }
                if self.eval_max_digits.is_some_and(|e| e <= self.max_digits || e > 18) {
                    return Err("--eval-max-digits must be above --max-digits and at most 18".into());
                }
                if !(0.0..=8.0).contains(&self.distractors) {
                    return Err("--distractors must be in 0..=8".into());
                }
                Ok(Task::Arith(arith::Arith {
                    min_digits: 1,
                    max_digits: self.max_digits,
                    distractors: self.distractors,
                    level: self.max_digits,
                }))
            }
            TaskKind::Xml => {
                if self.max_depth == 0 || self.streams == 0 || self.eval_chars == 0 {
                    return Err("xml needs a positive --max-depth, batch and evaluation length".into());
                }
                Ok(Task::Xml(xml::Xml {
                    streams: self.streams,
                    eval_chars: self.eval_chars,
                    max_depth: self.max_depth,
                }))
            }
            TaskKind::Memorize => {
                if self.length == 0 {
                    return Err("memorize needs at least one symbol".into());
                }
                Ok(Task::Memorize(memorize::Memorize { length: self.length }))
            }
            TaskKind::Music(set) => {
                let dir = self.data.as_deref().ok_or("music needs the data directory (--data)")?;
                let music = crate::data::music::Music::load(&set.path_in(dir))?;
                if self.streams == 0 {
                    return Err("music needs at least one piece per batch".into());
                }
                Ok(Task::Music(music::MusicTask { set, music: Arc::new(music), pieces: self.streams }))
            }
            TaskKind::Ptb | TaskKind::Text => {
                let path = self.data.as_deref().ok_or("this task needs its data (--data)")?;
                let (corpus, unit) = if self.kind == TaskKind::Ptb {
                    (Corpus::ptb(path)?, corpus::Unit::Words)
                } else {
                    (Corpus::text(path)?, corpus::Unit::Characters)
                };
                if self.streams == 0 || corpus::batches_per_epoch(&corpus.train, self.streams, 1) == 0 {
                    return Err(format!("the training text is too short for {} parallel streams", self.streams));
                }
                Ok(Task::Corpus(corpus::CorpusTask {
                    unit,
                    corpus: Arc::new(corpus),
                    streams: self.streams,
                    eval_tokens: self.eval_tokens,
                }))
            }
        }
    }

    /// Arithmetic's length-generalisation task: numbers longer than in training.
    pub fn long_task(&self) -> Option<Task> {
        let e = self.eval_max_digits?;
        (self.kind == TaskKind::Arith).then(|| {
            Task::Arith(arith::Arith {
                min_digits: self.max_digits + 1,
                max_digits: e,
                distractors: self.distractors,
                level: e,
            })
        })
    }

    /// The curriculum's first level (arith with a curriculum), and the task at a level: what
    /// the curriculum trains on and checks before it moves up.
    pub fn first_level(&self) -> Option<usize> {
        (self.kind == TaskKind::Arith && self.curriculum && self.max_digits > 1).then_some(1)
    }

    pub fn at_level(&self, level: usize) -> Option<Task> {
        (self.kind == TaskKind::Arith).then_some(Task::Arith(arith::Arith {
            min_digits: 1,
            max_digits: level,
            distractors: self.distractors,
            level,
        }))
    }
}

/// The tasks, with their knobs.
#[derive(Clone, Debug, PartialEq)]
pub enum Task {
    Arith(arith::Arith),
    Xml(xml::Xml),
    Memorize(memorize::Memorize),
    Corpus(corpus::CorpusTask),
    Music(music::MusicTask),
}

impl Task {
    /// Which task this is.
    pub fn kind(&self) -> TaskKind {
        match self {
            Task::Arith(_) => TaskKind::Arith,
            Task::Xml(_) => TaskKind::Xml,
            Task::Memorize(_) => TaskKind::Memorize,
            Task::Corpus(c) => match c.unit {
                corpus::Unit::Words => TaskKind::Ptb,
                corpus::Unit::Characters => TaskKind::Text,
            },
            Task::Music(m) => TaskKind::Music(m.set),
        }
    }

    pub fn name(&self) -> &'static str {
        self.kind().name()
    }

    /// Symbol i as text.
    pub fn symbol(&self, i: u32) -> String {
        let byte = |a: &[u8]| (a[i as usize] as char).to_string();
        match self {
            Task::Arith(_) => byte(arith::ALPHABET),
            Task::Xml(_) => byte(xml::ALPHABET),
            Task::Memorize(_) => byte(memorize::ALPHABET),
            Task::Corpus(c) => c.corpus.vocab[i as usize].clone(),
            Task::Music(_) => format!("[note {}]", i + u32::from(crate::data::music::LOWEST)),
        }
    }

    /// `text` as the task's symbols (what a prime for generation is read as): characters for the
    /// generated tasks and text, whitespace-separated words for PTB (an unknown word is `<unk>`).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, String> {
        let byte = |alphabet: &[u8], c: char| {
            alphabet.iter().position(|&a| char::from(a) == c).map(|i| i as u32).ok_or_else(|| {
                let shown: String = alphabet.iter().map(|&a| char::from(a)).filter(|c| !c.is_whitespace()).collect();
                format!("`{c}` is not a symbol of {} (its symbols: {shown})", self.name())
            })
        };
        match self {
            Task::Arith(_) => text.chars().map(|c| byte(arith::ALPHABET, c)).collect(),
            Task::Xml(_) => text.chars().map(|c| byte(xml::ALPHABET, c)).collect(),
            Task::Memorize(_) => text.chars().map(|c| byte(memorize::ALPHABET, c)).collect(),
            Task::Corpus(c) if c.unit == corpus::Unit::Words => {
                let find = |w: &str| c.corpus.vocab.iter().position(|v| v == w).map(|i| i as u32);
                text.split_whitespace()
                    .map(|w| find(w).or_else(|| find("<unk>")).ok_or_else(|| format!("`{w}` is not in the vocabulary")))
                    .collect()
            }
            Task::Corpus(c) => text
                .chars()
                .map(|ch| {
                    let s = ch.to_string();
                    c.corpus
                        .vocab
                        .iter()
                        .position(|v| *v == s)
                        .map(|i| i as u32)
                        .ok_or_else(|| format!("`{ch}` is not in the text's characters"))
                })
                .collect(),
            Task::Music(_) => Err("music is primed with silence, not text".into()),
        }
    }

    /// The symbol that ends an example (arith's answer ends with `.`), where there is one.
    pub fn end_symbol(&self) -> Option<u32> {
        match self {
            Task::Arith(_) => arith::ALPHABET.iter().position(|&a| a == b'.').map(|i| i as u32),
            _ => None,
        }
    }

    /// Symbols, the padding symbol of the generated tasks included.
    pub fn vocab(&self) -> usize {
        match self {
            Task::Arith(_) => arith::ALPHABET.len(),
            Task::Xml(_) => xml::ALPHABET.len(),
            Task::Memorize(_) => memorize::ALPHABET.len(),
            Task::Corpus(c) => c.corpus.vocab.len(),
            Task::Music(_) => music::VOCAB,
        }
    }

    /// Parallel streams of a stream task (its batch size).
    pub fn streams(&self) -> Option<usize> {
        match self {
            Task::Xml(x) => Some(x.streams),
            Task::Corpus(c) => Some(c.streams),
            Task::Music(m) => Some(m.pieces),
            _ => None,
        }
    }

    /// The padding symbol.
    pub fn pad(&self) -> u32 {
        self.vocab() as u32 - 1
    }
}

thread_local! {
    static BUILDS: Cell<u64> = const { Cell::new(0) };
}

/// How many tasks this thread has built so far: a test counts them (building a real-data task
/// reads and tokenises its corpus, so a run builds its task once and passes it down).
pub fn builds_on_this_thread() -> u64 {
    BUILDS.with(Cell::get)
}

/// Text of a row range for people: symbols of one column, as characters.
pub fn column_text(task: &Task, batch: &Batch, b: usize) -> String {
    (0..batch.steps).map(|t| task.symbol(batch.tokens[t * batch.batch + b])).collect()
}
