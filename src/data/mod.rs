//! Real data sets on disk: where they are found, and their loaders (Penn Treebank and text as
//! token corpora, polyphonic music as piano rolls). Data are never copied into the repository;
//! every error names the file (and line, where there is one).

pub mod corpus;
pub mod music;

use std::path::{Path, PathBuf};

/// The variable that names the data directory when `--data` is not given.
pub const DATA_VAR: &str = "CELLC_DATA";

/// `../shared/data` beside the checkout this binary was built from.
fn beside_checkout() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("shared").join("data")
}

/// The data directory: `--data`, else `$CELLC_DATA`, else `../shared/data` beside the checkout.
/// The second value says where it came from, for messages.
pub fn data_dir(arg: Option<&Path>) -> (PathBuf, &'static str) {
    if let Some(p) = arg {
        return (p.to_path_buf(), "--data");
    }
    match std::env::var_os(DATA_VAR) {
        Some(v) if !v.is_empty() => (PathBuf::from(v), "$CELLC_DATA"),
        _ => (beside_checkout(), "the default ../shared/data beside the checkout"),
    }
}

/// Reads a whole file, with a one-line error naming it.
pub(crate) fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// The music data sets: task name, file under `polyphonic/`.
pub const MUSIC_SETS: [(&str, &str); 4] = [
    ("nottingham", "Nottingham.json"),
    ("piano-midi", "Piano_midi.json"),
    ("jsb", "JSB_Chorales.json"),
    ("musedata", "MuseData.json"),
];

/// A data set cellc can use, as `cellc data` lists it.
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

/// Every data set under `dir`, loaded to check it and count it.
pub fn survey(dir: &Path) -> Vec<Found> {
    let mut found = vec![];
    let mut probe = |task: &str, path: PathBuf, load: &dyn Fn(&Path) -> Result<String, String>| {
        let t0 = std::time::Instant::now();
        let (summary, ok) = match load(&path) {
            Ok(s) => (s, true),
            Err(e) => (e, false),
        };
        found.push(Found { task: task.into(), path, summary, ok, seconds: t0.elapsed().as_secs_f64() });
    };
    probe("ptb", dir.join("ptb"), &|p| corpus::Corpus::ptb(p).map(|c| c.summary()));
    for (name, file) in MUSIC_SETS {
        probe(&format!("music:{name}"), dir.join("polyphonic").join(file), &|p| {
            music::Music::load(p).map(|m| m.summary())
        });
    }
    probe("text", dir.join("tinyshakespeare").join("input.txt"), &|p| corpus::Corpus::text(p).map(|c| c.summary()));
    found
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
