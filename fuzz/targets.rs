//! The fuzz targets' bodies, shared by the fuzzer (`fuzz/fuzz_targets/*.rs`, run by
//! `tools/fuzz.sh`) and the corpus replay in `cargo test` (`tests/fuzz_corpus.rs`): on any input
//! each must return (an error is fine), never panic or hang.

use std::path::Path;

/// A target's body: any bytes in, nothing out.
pub type Target = fn(&[u8]);

/// Every target by name (the name of its corpus directory under `fuzz/corpus/`).
pub const TARGETS: &[(&str, Target)] = &[
    ("safetensors", safetensors),
    ("checkpoint", checkpoint),
    ("cell", cell),
    ("music", music),
    ("midi", midi),
    ("text", text),
];

/// A safetensors file: decoded, its digests verified, its weights checked, encoded again.
pub fn safetensors(data: &[u8]) {
    if let Ok((set, _)) = cellc::tensors::TensorSet::decode_checked(data, "f") {
        let _ = set.check_finite("f");
        let _ = set.encode();
    }
}

/// A checkpoint file as every loader reads it first: verified, its cell and config parsed.
pub fn checkpoint(data: &[u8]) {
    let _ = cellc::train::checkpoint::read_bytes_described(data, "f");
}

/// `.cell` text through the front end: parse, check, and every diagnostic rendered.
pub fn cell(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut ws = cellc::workspace::Workspace::new();
    let file = ws.add("f.cell", text);
    let checked = ws.check(file);
    let _ = cellc::diag::render_all(&checked.diagnostics, &ws.sources, cellc::diag::RenderStyle::PLAIN);
}

/// A music data set (JSON of piano-roll pieces).
pub fn music(data: &[u8]) {
    let _ = cellc::data::music::Music::parse(data, Path::new("f.json"));
}

/// A Standard MIDI file.
pub fn midi(data: &[u8]) {
    let _ = cellc::data::midi::read(data);
}

/// A text corpus.
pub fn text(data: &[u8]) {
    let _ = cellc::data::corpus::Corpus::text_bytes(data, "f");
}
