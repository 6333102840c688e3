//! Polyphonic music (Boulanger-Lewandowski et al. 2012) as piano rolls: each piece a sequence of
//! frames, each frame the set of sounding notes among the 88 piano keys (MIDI 21..=108; unit
//! `note - 21`). Read from the JSON form in `../shared/data/polyphonic`:
//! `{"train": [piece, ...], "valid": [...], "test": [...]}`, a piece a list of frames, a frame a
//! list of MIDI note numbers.

use std::path::Path;

use super::{read, thousands};

/// Keys of the piano: the width of a frame.
pub const KEYS: usize = 88;
/// MIDI number of the lowest key.
pub const LOWEST: u8 = 21;

/// The four polyphonic music sets (all in `polyphonic/` of the data directory).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MusicSet {
    Nottingham,
    PianoMidi,
    Jsb,
    Musedata,
}

impl MusicSet {
    /// Its file under `polyphonic/`.
    pub fn file(self) -> &'static str {
        match self {
            MusicSet::Nottingham => "Nottingham.json",
            MusicSet::PianoMidi => "Piano_midi.json",
            MusicSet::Jsb => "JSB_Chorales.json",
            MusicSet::Musedata => "MuseData.json",
        }
    }

    /// Its file in the data directory `dir`.
    pub fn path_in(self, dir: &Path) -> std::path::PathBuf {
        dir.join("polyphonic").join(self.file())
    }
}

/// A piece: frames in time order, each the sorted units (0..88) that sound.
pub type Piece = Vec<Vec<u8>>;

#[derive(Clone, Debug, PartialEq)]
pub struct Music {
    pub train: Vec<Piece>,
    pub valid: Vec<Piece>,
    pub test: Vec<Piece>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    train: Vec<Vec<Vec<u8>>>,
    valid: Vec<Vec<Vec<u8>>>,
    test: Vec<Vec<Vec<u8>>>,
}

fn units(path: &Path, split: &str, pieces: Vec<Vec<Vec<u8>>>) -> Result<Vec<Piece>, String> {
    if pieces.is_empty() {
        return Err(format!("{}: the {split} split has no pieces", path.display()));
    }
    pieces
        .into_iter()
        .enumerate()
        .map(|(i, piece)| {
            if piece.is_empty() {
                return Err(format!("{}: {split} piece {i} has no frames", path.display()));
            }
            piece
                .into_iter()
                .enumerate()
                .map(|(t, frame)| {
                    let mut out = Vec::with_capacity(frame.len());
                    for n in frame {
                        if !(LOWEST..LOWEST + KEYS as u8).contains(&n) {
                            return Err(format!(
                                "{}: {split} piece {i}, frame {t}: note {n} is off the piano (21..=108)",
                                path.display()
                            ));
                        }
                        out.push(n - LOWEST);
                    }
                    out.sort_unstable();
                    out.dedup();
                    Ok(out)
                })
                .collect()
        })
        .collect()
}

impl Music {
    pub fn load(path: &Path) -> Result<Music, String> {
        if !path.exists() {
            return Err(format!(
                "music data not found: no {} (give the data directory with --data DIR or ${})",
                path.display(),
                super::DATA_VAR
            ));
        }
        Music::parse(&read(path)?, path)
    }

    /// [`Music::load`] of a file's bytes; `path` names the file in errors.
    pub fn parse(bytes: &[u8], path: &Path) -> Result<Music, String> {
        let raw: Raw =
            serde_json::from_slice(bytes).map_err(|e| format!("{}: malformed music data: {e}", path.display()))?;
        Ok(Music {
            train: units(path, "train", raw.train)?,
            valid: units(path, "valid", raw.valid)?,
            test: units(path, "test", raw.test)?,
        })
    }

    /// `694 / 173 / 170 pieces, 176,561 / 45,513 / 44,463 frames`.
    pub fn summary(&self) -> String {
        let frames = |s: &[Piece]| thousands(s.iter().map(Vec::len).sum());
        format!(
            "{} / {} / {} pieces, {} / {} / {} frames (train / valid / test)",
            self.train.len(),
            self.valid.len(),
            self.test.len(),
            frames(&self.train),
            frames(&self.valid),
            frames(&self.test)
        )
    }
}
