//! Real data sets on disk: where they are found, and their loaders (Penn Treebank and text as
//! token corpora, polyphonic music as piano rolls). Data are never copied into the repository;
//! every error names the file (and line, where there is one).

pub mod corpus;
pub mod midi;
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
