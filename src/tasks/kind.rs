//! What a task is: its name, what it is about, the data it needs and where that is found, its
//! usual batch shape, and its metrics (which one is the headline, which way is better, which one a
//! study or a search compares). Every list of tasks in cellc derives from [`TaskKind::ALL`], so
//! adding a task is one variant here and its generator.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::data::music::MusicSet;

/// A task, by kind (its knobs are in [`super::TaskConfig`], its loaded data in [`super::Task`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TaskKind {
    Arith,
    Xml,
    Memorize,
    Ptb,
    Text,
    Music(MusicSet),
}

/// The data a task reads from disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataNeed {
    /// None: the task generates its examples from the seed.
    Generated,
    /// The data directory (Penn Treebank under `ptb/`, music under `polyphonic/`).
    Directory,
    /// One UTF-8 text file (by default tiny-shakespeare in the data directory).
    TextFile,
}

/// The paper's use of a task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaperRole {
    /// A column of Table 1, scored by accuracy; the search scores cells on these.
    Table1,
    /// Held out from the search; the paper reports its negative log-likelihood.
    HeldOut,
    /// Not in the paper's results (the memorisation filter, text).
    None,
}

/// Which of a run's two metrics a study or a search compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scored {
    Headline,
    Secondary,
}

impl TaskKind {
    /// Every task, in the order help texts list them.
    pub const ALL: [TaskKind; 9] = [
        TaskKind::Arith,
        TaskKind::Xml,
        TaskKind::Memorize,
        TaskKind::Ptb,
        TaskKind::Text,
        TaskKind::Music(MusicSet::Nottingham),
        TaskKind::Music(MusicSet::PianoMidi),
        TaskKind::Music(MusicSet::Jsb),
        TaskKind::Music(MusicSet::Musedata),
    ];

    /// The name users type (`--task arith`, `music:jsb`) and stores keep.
    pub fn name(self) -> &'static str {
        match self {
            TaskKind::Arith => "arith",
            TaskKind::Xml => "xml",
            TaskKind::Memorize => "memorize",
            TaskKind::Ptb => "ptb",
            TaskKind::Text => "text",
            TaskKind::Music(MusicSet::Nottingham) => "music:nottingham",
            TaskKind::Music(MusicSet::PianoMidi) => "music:piano-midi",
            TaskKind::Music(MusicSet::Jsb) => "music:jsb",
            TaskKind::Music(MusicSet::Musedata) => "music:musedata",
        }
    }

    /// The task called `name`, or an error listing every task.
    pub fn parse(name: &str) -> Result<TaskKind, String> {
        TaskKind::ALL.into_iter().find(|k| k.name() == name).ok_or_else(|| {
            let all: Vec<&str> = TaskKind::ALL.iter().map(|k| k.name()).collect();
            format!("unknown task `{name}` (the tasks: {})", all.join(", "))
        })
    }

    /// One line on what the task is, for `--help`.
    pub fn about(self) -> &'static str {
        match self {
            TaskKind::Arith => "Addition and subtraction of up to 8-digit numbers, read among distractor letters.",
            TaskKind::Xml => "Next character of a synthetic XML stream (tags must be closed in order).",
            TaskKind::Memorize => "Read 5 of 26 symbols, then reproduce them.",
            TaskKind::Ptb => "Penn Treebank word-level language modelling (10,000 words; perplexity), from --data.",
            TaskKind::Text => {
                "Character-level language modelling of a UTF-8 text file (bits per character): --data FILE, \
                 by default tiny-shakespeare from the data directory."
            }
            TaskKind::Music(MusicSet::Nottingham) => {
                "Polyphonic music, Nottingham folk tunes: the next 88-key frame (NLL per frame)."
            }
            TaskKind::Music(MusicSet::PianoMidi) => "Polyphonic music, Piano-midi.de classical piano.",
            TaskKind::Music(MusicSet::Jsb) => "Polyphonic music, JSB Chorales.",
            TaskKind::Music(MusicSet::Musedata) => "Polyphonic music, MuseData.",
        }
    }

    pub fn data(self) -> DataNeed {
        match self {
            TaskKind::Arith | TaskKind::Xml | TaskKind::Memorize => DataNeed::Generated,
            TaskKind::Ptb | TaskKind::Music(_) => DataNeed::Directory,
            TaskKind::Text => DataNeed::TextFile,
        }
    }

    /// The one rule for where a task's data is: `arg` (a `--data` flag), else `$CELLC_DATA`, else
    /// `../shared/data` beside the checkout; for text, a file given directly or tiny-shakespeare
    /// in the directory. The path is checked to exist and made absolute (a resumed run or a
    /// worker started elsewhere finds it). `None` for a generated task.
    pub fn locate_data(self, arg: Option<&Path>) -> Result<Option<PathBuf>, String> {
        let path = match self.data() {
            DataNeed::Generated => return Ok(None),
            DataNeed::Directory => crate::data::data_dir(arg),
            DataNeed::TextFile => match arg {
                Some(file) if file.is_file() => (file.to_path_buf(), "--data"),
                _ => {
                    let (dir, from) = crate::data::data_dir(arg);
                    (dir.join("tinyshakespeare").join("input.txt"), from)
                }
            },
        };
        let (path, from) = path;
        if !path.exists() {
            return Err(format!(
                "{} does not exist (from {from}); {} needs its data: give --data or set {}",
                path.display(),
                self.name(),
                crate::data::DATA_VAR
            ));
        }
        std::fs::canonicalize(&path).map(Some).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Where `cellc data` looks for this task's data under the data directory `dir`.
    pub fn data_in(self, dir: &Path) -> Option<PathBuf> {
        match self {
            TaskKind::Ptb => Some(dir.join("ptb")),
            TaskKind::Text => Some(dir.join("tinyshakespeare").join("input.txt")),
            TaskKind::Music(set) => Some(set.path_in(dir)),
            _ => None,
        }
    }

    /// The usual batch and unroll: 20 x 35 for PTB (Zaremba et al.), 16 pieces x 100 frames for
    /// music, 64 x 64 otherwise.
    pub fn default_shape(self) -> (usize, usize) {
        match self {
            TaskKind::Ptb => (20, 35),
            TaskKind::Music(_) => (16, 100),
            _ => (64, 64),
        }
    }

    /// Whether batches continue each other (state carried), rather than hold whole examples.
    pub fn is_stream(self) -> bool {
        matches!(self, TaskKind::Xml | TaskKind::Ptb | TaskKind::Text | TaskKind::Music(_))
    }

    /// The headline metric's name.
    pub fn metric(self) -> &'static str {
        match self {
            TaskKind::Arith => "answer character accuracy",
            TaskKind::Xml => "character accuracy",
            TaskKind::Memorize => "symbol accuracy",
            TaskKind::Ptb => "perplexity",
            TaskKind::Text => "bits per character",
            TaskKind::Music(_) => "NLL per frame",
        }
    }

    /// The headline metric's name on a progress line: `accuracy`, `perplexity`, `bpc`, `NLL`.
    pub fn metric_short(self) -> &'static str {
        match self {
            TaskKind::Text => "bpc",
            TaskKind::Music(_) => "NLL",
            TaskKind::Ptb => "perplexity",
            _ => "accuracy",
        }
    }

    /// The secondary metric's name.
    pub fn secondary(self) -> &'static str {
        match self {
            TaskKind::Arith | TaskKind::Memorize => "exact match",
            TaskKind::Xml => "closing-tag accuracy",
            TaskKind::Ptb => "next-word accuracy",
            TaskKind::Text => "character accuracy",
            TaskKind::Music(_) => "frame accuracy",
        }
    }

    /// Whether a larger headline metric is better (accuracy), or a smaller (perplexity, bits, NLL).
    pub fn higher_is_better(self) -> bool {
        !matches!(self, TaskKind::Ptb | TaskKind::Text | TaskKind::Music(_))
    }

    /// The metric a study or a search compares runs by: accuracy wherever the task has one (the
    /// next-word or character accuracy of a corpus, as the paper's Table 1), else the headline.
    pub fn scored(self) -> Scored {
        match self {
            TaskKind::Ptb | TaskKind::Text => Scored::Secondary,
            _ => Scored::Headline,
        }
    }

    /// The compared metric's name.
    pub fn scored_name(self) -> &'static str {
        match self.scored() {
            Scored::Headline => self.metric(),
            Scored::Secondary => self.secondary(),
        }
    }

    /// Whether the compared metric is an accuracy (higher is better): the tasks a search can
    /// score cells on.
    pub fn scored_by_accuracy(self) -> bool {
        self.scored() == Scored::Secondary || self.higher_is_better()
    }

    pub fn paper_role(self) -> PaperRole {
        match self {
            TaskKind::Arith | TaskKind::Xml | TaskKind::Ptb => PaperRole::Table1,
            TaskKind::Music(MusicSet::Nottingham | MusicSet::PianoMidi) => PaperRole::HeldOut,
            _ => PaperRole::None,
        }
    }

    /// The tasks with a paper role other than `None`, in [`TaskKind::ALL`]'s order.
    pub fn in_paper() -> Vec<TaskKind> {
        TaskKind::ALL.into_iter().filter(|k| k.paper_role() != PaperRole::None).collect()
    }

    /// The names of `kinds`, comma-separated.
    pub fn names(kinds: &[TaskKind]) -> String {
        kinds.iter().map(|k| k.name()).collect::<Vec<_>>().join(", ")
    }
}

impl fmt::Display for TaskKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl serde::Serialize for TaskKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for TaskKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<TaskKind, D::Error> {
        let name = String::deserialize(d)?;
        TaskKind::parse(&name).map_err(serde::de::Error::custom)
    }
}

/// A data set a task reads, as `cellc data` lists it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Found {
    /// The `--task` value that uses it.
    pub task: String,
    pub path: PathBuf,
    /// What it holds, in words (`929,589 / 73,760 / 82,430 tokens, vocabulary 10,000`), or why
    /// it cannot be used.
    pub summary: String,
    pub ok: bool,
    pub seconds: f64,
}

/// Every task's data set under `dir`, loaded to check it and count it.
pub fn survey(dir: &Path) -> Vec<Found> {
    use crate::data::corpus::Corpus;
    use crate::data::music::Music;
    let mut found = vec![];
    for kind in TaskKind::ALL {
        let Some(path) = kind.data_in(dir) else { continue };
        let t0 = std::time::Instant::now();
        let loaded = match kind {
            TaskKind::Ptb => Corpus::ptb(&path).map(|c| c.summary()),
            TaskKind::Text => Corpus::text(&path).map(|c| c.summary()),
            _ => Music::load(&path).map(|m| m.summary()),
        };
        let (summary, ok) = match loaded {
            Ok(s) => (s, true),
            Err(e) => (e, false),
        };
        found.push(Found { task: kind.name().into(), path, summary, ok, seconds: t0.elapsed().as_secs_f64() });
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_and_serialize_as_strings() {
        for k in TaskKind::ALL {
            assert_eq!(TaskKind::parse(k.name()), Ok(k));
            let json = serde_json::to_string(&k).unwrap();
            assert_eq!(json, format!("\"{}\"", k.name()));
            assert_eq!(serde_json::from_str::<TaskKind>(&json).unwrap(), k);
        }
        assert!(TaskKind::parse("nope").unwrap_err().contains("arith, xml, memorize, ptb, text, music:nottingham"));
    }

    #[test]
    fn the_paper_and_search_lists_derive_from_the_kinds() {
        assert_eq!(TaskKind::names(&TaskKind::in_paper()), "arith, xml, ptb, music:nottingham, music:piano-midi");
        let scored: Vec<TaskKind> = TaskKind::ALL.into_iter().filter(|k| k.scored_by_accuracy()).collect();
        assert_eq!(TaskKind::names(&scored), "arith, xml, memorize, ptb, text");
    }
}
