//! Real data: the shared data sets load with the published counts (CI has them in
//! `../shared/data`; a missing set fails the test with its path, it is not skipped), damaged
//! copies made here give one-line errors with the file and line, corpus batches are laid out as
//! Zaremba et al. batch PTB, and the command line finds, lists and rejects data.

mod support;

use std::path::{Path, PathBuf};

use cellc::data::corpus::Corpus;
use cellc::data::music::Music;
use cellc::tasks::corpus::{batch, batches_per_epoch};
use cellc::tasks::{BatchStream, Split, TaskConfig, TaskKind};

fn shared() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
    assert!(dir.join("ptb").is_dir(), "the shared data sets are expected at {}", dir.display());
    dir
}

#[test]
fn penn_treebank_has_its_published_counts() {
    let c = Corpus::ptb(&shared()).unwrap();
    assert_eq!((c.train.len(), c.valid.len(), c.test.len()), (929_589, 73_760, 82_430));
    assert_eq!(c.vocab.len(), 10_000);
    let eos = c.vocab.iter().position(|w| w == "<eos>").unwrap() as u32;
    assert_eq!(c.train.iter().filter(|&&t| t == eos).count(), 42_068, "one <eos> per line");
    // Ordered by falling count: `the` is the commonest word.
    assert_eq!(c.vocab[0], "the");
    let unk = c.vocab.iter().position(|w| w == "<unk>").unwrap() as u32;
    assert_eq!(c.train.iter().filter(|&&t| t == unk).count(), 45_020);
}

#[test]
fn music_sets_have_their_published_counts() {
    let dir = shared().join("polyphonic");
    let n = Music::load(&dir.join("Nottingham.json")).unwrap();
    assert_eq!((n.train.len(), n.valid.len(), n.test.len()), (694, 173, 170));
    assert_eq!(n.train.iter().map(Vec::len).sum::<usize>(), 176_561);
    let p = Music::load(&dir.join("Piano_midi.json")).unwrap();
    assert_eq!((p.train.len(), p.valid.len(), p.test.len()), (87, 12, 25));
    assert_eq!(p.test.iter().map(Vec::len).sum::<usize>(), 19_036);
    let notes: usize = n.train.iter().flatten().map(Vec::len).sum();
    assert!((notes as f64 / 176_561.0 - 3.96).abs() < 0.01, "mean notes per frame");
    assert!(n.train.iter().flatten().flatten().all(|&u| u < 88));
}

#[test]
fn tiny_shakespeare_splits_by_character() {
    let c = Corpus::text(&shared().join("tinyshakespeare/input.txt")).unwrap();
    assert_eq!(c.vocab.len(), 65);
    assert_eq!(c.train.len() + c.valid.len() + c.test.len(), 1_115_394);
    assert_eq!(c.train.len(), 1_115_394 * 90 / 100);
}

/// Copies the PTB files into a temp dir, letting `damage` change one of them.
fn damaged_ptb(name: &str, file: &str, damage: impl Fn(Vec<u8>) -> Vec<u8>) -> PathBuf {
    let dir = support::scratch(name);
    for split in ["train", "valid", "test"] {
        let f = format!("ptb.{split}.txt");
        let bytes = std::fs::read(shared().join("ptb").join(&f)).unwrap();
        let bytes = if f == file { damage(bytes) } else { bytes };
        std::fs::write(dir.join(&f), bytes).unwrap();
    }
    dir
}

fn one_line(err: &str) {
    assert!(!err.contains('\n') && !err.is_empty(), "one line: {err}");
}

#[test]
fn damaged_ptb_files_name_the_file_and_line() {
    let truncated = damaged_ptb("trunc", "ptb.train.txt", |b| b[..b.len() / 2].to_vec());
    let err = Corpus::ptb(&truncated).unwrap_err();
    one_line(&err);
    assert!(err.contains("ptb.train.txt:") && err.contains("truncated"), "{err}");

    let binary = damaged_ptb("binary", "ptb.valid.txt", |mut b| {
        let at = b.iter().enumerate().filter(|(_, c)| **c == b'\n').nth(9).unwrap().0 + 3;
        b[at] = 0xff;
        b
    });
    let err = Corpus::ptb(&binary).unwrap_err();
    one_line(&err);
    assert!(err.contains("ptb.valid.txt:11:") && err.contains("non-ASCII"), "{err}");

    let unknown = damaged_ptb("oov", "ptb.test.txt", |b| {
        let mut s = String::from_utf8(b).unwrap();
        s.insert_str(s.find('\n').unwrap() + 1, " zyzzyva ");
        s.into_bytes()
    });
    let err = Corpus::ptb(&unknown).unwrap_err();
    one_line(&err);
    assert!(err.contains("ptb.test.txt:2:") && err.contains("`zyzzyva`"), "{err}");

    let missing = damaged_ptb("missing", "", |b| b);
    std::fs::remove_file(missing.join("ptb.test.txt")).unwrap();
    let err = Corpus::ptb(&missing).unwrap_err();
    assert!(err.contains("ptb.test.txt"), "{err}");
    let err = Corpus::ptb(Path::new("/nonexistent")).unwrap_err();
    assert!(err.contains("/nonexistent") && err.contains("--data"), "{err}");
}

#[test]
fn damaged_music_and_text_files_are_errors() {
    let dir = support::scratch("music");
    let bytes = std::fs::read(shared().join("polyphonic/JSB_Chorales.json")).unwrap();
    let cut = dir.join("cut.json");
    std::fs::write(&cut, &bytes[..bytes.len() - 100]).unwrap();
    let err = Music::load(&cut).unwrap_err();
    one_line(&err);
    assert!(err.contains("cut.json") && err.contains("line 1"), "{err}");
    let off = dir.join("off.json");
    std::fs::write(&off, r#"{"train": [[[60, 200]]], "valid": [[[60]]], "test": [[[61]]]}"#).unwrap();
    let err = Music::load(&off).unwrap_err();
    assert!(err.contains("note 200") && err.contains("train piece 0, frame 0"), "{err}");
    let empty = dir.join("empty.json");
    std::fs::write(&empty, r#"{"train": [], "valid": [[[60]]], "test": [[[61]]]}"#).unwrap();
    assert!(Music::load(&empty).unwrap_err().contains("no pieces"));

    let text = dir.join("bad.txt");
    let mut t = "a line of text\n".repeat(20).into_bytes();
    t[40] = 0xc3;
    t[41] = b'x';
    std::fs::write(&text, &t).unwrap();
    let err = Corpus::text(&text).unwrap_err();
    one_line(&err);
    assert!(err.contains("bad.txt:3:") && err.contains("UTF-8"), "{err}");
    std::fs::write(&text, "too short").unwrap();
    assert!(Corpus::text(&text).unwrap_err().contains("too little"));
}

#[test]
fn corpus_batches_cut_the_split_into_contiguous_streams() {
    let tokens: Vec<u32> = (0..103).collect();
    // 4 streams of 25 tokens; 24 predictions per stream in batches of 10, 10, 4.
    assert_eq!(batches_per_epoch(&tokens, 4, 10), 3);
    let b0 = batch(&tokens, 4, 10, 0).unwrap();
    assert!(!b0.stream, "a pass starts from zero states");
    assert_eq!((b0.steps, b0.batch), (10, 4));
    for s in 0..4 {
        for t in 0..10 {
            assert_eq!(b0.tokens[t * 4 + s], (s * 25 + t) as u32);
            assert_eq!(b0.targets[t * 4 + s], (s * 25 + t + 1) as u32);
        }
    }
    let b2 = batch(&tokens, 4, 10, 2).unwrap();
    assert!(b2.stream && b2.steps == 4);
    assert_eq!(b2.targets[3 * 4 + 3], 99, "the last target of the last stream");
    assert!(batch(&tokens, 4, 10, 3).is_none());
    // Every prediction of a pass appears once.
    let mut seen: Vec<(u32, u32)> = (0..3)
        .flat_map(|i| {
            let b = batch(&tokens, 4, 10, i).unwrap();
            b.tokens.into_iter().zip(b.targets).collect::<Vec<_>>()
        })
        .collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 4 * 24);
}

#[test]
fn a_corpus_source_wraps_to_a_new_epoch_and_restores() {
    let mut cfg = TaskConfig::new(TaskKind::parse("text").unwrap());
    cfg.data = Some(shared().join("tinyshakespeare/input.txt"));
    cfg.streams = 500;
    let task = cfg.build().unwrap();
    let per_epoch = {
        let cellc::tasks::Task::Corpus(c) = &task else { panic!("a corpus task") };
        batches_per_epoch(&c.corpus.train, 500, 1000)
    };
    let mut src = BatchStream::new(&task, Split::Train, 1);
    let first = src.next(500, 1000);
    for _ in 1..per_epoch {
        assert!(src.next(500, 1000).stream);
    }
    let state = src.state();
    let again = src.next(500, 1000);
    assert_eq!(again, first, "the next epoch starts over, from zero states");
    let mut restored = BatchStream::new(&task, Split::Train, 1);
    restored.restore(&state).unwrap();
    assert_eq!(restored.next(500, 1000), first);
    let valid = BatchStream::eval_set(&task, Split::Valid, 1, 0, 500, 1000);
    let predictions: usize = valid.iter().map(|b| b.steps * b.batch).sum();
    assert_eq!(predictions, (55_770 / 500 - 1) * 500, "the whole validation split, once");
}

#[test]
fn the_command_line_finds_lists_and_rejects_data() {
    let out = support::cellc(&["data", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let sets = v["sets"].as_array().unwrap();
    assert_eq!(sets.len(), 6);
    assert!(sets.iter().all(|s| s["ok"] == true), "{v}");
    // A short character-level run learns well below the uniform 6 bits per character.
    let out = support::cellc(&[
        "run",
        "gru",
        "--task",
        "text",
        "--steps",
        "150",
        "--eval-every",
        "150",
        // The full rate throughout: this checks the data path, not the schedule.
        "--schedule",
        "constant",
        "--hidden",
        "64",
        "--bptt",
        "32",
        "--batch",
        "32",
        "--json",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let last: serde_json::Value =
        serde_json::from_str(String::from_utf8(out.stdout).unwrap().lines().last().unwrap()).unwrap();
    assert_eq!(last["metric"], "bits per character");
    assert!(last["test"].as_f64().unwrap() < 3.5, "{last}");
    let empty = support::scratch("cli");
    for args in [
        &["run", "gru", "--task", "ptb", "--data", "/nonexistent"][..],
        &["run", "gru", "--task", "ptb", "--data", empty.to_str().unwrap()],
        &["run", "gru", "--task", "arith", "--data", empty.to_str().unwrap()],
        &["data", "--data", "/nonexistent"],
    ] {
        let o = support::cellc(args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8(o.stderr).unwrap();
        assert!(err.starts_with("error: ") && err.lines().count() == 1, "{args:?}: {err}");
    }
}

#[test]
fn music_batches_read_each_piece_once_from_a_silent_start() {
    use cellc::tasks::music::{eval_batches, group_batches};
    let a: Vec<Vec<u8>> = vec![vec![1, 5], vec![], vec![7], vec![2], vec![3]];
    let b: Vec<Vec<u8>> = vec![vec![9], vec![8]];
    let batches = group_batches(&[&a, &b], 3, 2);
    assert_eq!(batches.len(), 3, "5 frames in chunks of 2");
    assert!(!batches[0].stream && batches[1].stream && batches[2].stream);
    let f0 = batches[0].frames.as_ref().unwrap();
    // Row t*3 + col: piece a in column 0, b in 1, column 2 empty.
    assert_eq!(f0.input.row(0), &[] as &[u8], "the first frame is predicted from silence");
    assert_eq!(f0.target.row(0), &[1, 5]);
    assert_eq!(f0.input.row(3), &[1, 5], "then frame t is read to predict t+1");
    assert_eq!(f0.target.row(3), &[] as &[u8]);
    assert_eq!(batches[0].weights, vec![1.0, 1.0, 0.0, 1.0, 1.0, 0.0]);
    assert_eq!(batches[1].weights, vec![1.0, 0.0, 0.0, 1.0, 0.0, 0.0], "b ended: padding");
    assert_eq!(batches[2].steps, 1);
    assert_eq!(batches[2].frames.as_ref().unwrap().target.row(0), &[3]);
    // An evaluation counts every frame of every piece once.
    let music = Music::load(&shared().join("polyphonic/JSB_Chorales.json")).unwrap();
    let set = eval_batches(&music.valid, 16, 50);
    let counted: f64 = set.iter().flat_map(|b| b.weights.iter()).map(|&w| f64::from(w)).sum();
    assert_eq!(counted as usize, 4_602);
}

#[test]
fn music_trains_resumes_and_reports_nll() {
    let mut cfg = TaskConfig::new(TaskKind::parse("music:jsb").unwrap());
    cfg.data = Some(shared());
    cfg.streams = 8;
    let task = cfg.build().unwrap();
    assert_eq!(task.name(), "music:jsb");
    assert_eq!(task.vocab(), 88);
    let mut a = BatchStream::new(&task, Split::Train, 3);
    for _ in 0..5 {
        a.next(8, 40);
    }
    let state = a.state();
    let mut b = BatchStream::new(&task, Split::Train, 3);
    b.restore(&serde_json::from_str(&state.to_string()).unwrap()).unwrap();
    for _ in 0..40 {
        assert_eq!(a.next(8, 40), b.next(8, 40), "a restored music source continues identically");
    }
    let out = support::cellc(&[
        "run",
        "lstm",
        "--task",
        "music:jsb",
        "--steps",
        "60",
        "--eval-every",
        "30",
        "--schedule",
        "constant",
        "--hidden",
        "32",
        "--bptt",
        "40",
        "--json",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["metric"], "NLL per frame");
    // Chance (every note at 1/2) is 88 ln 2 = 61 nats per frame; a short run is far below.
    let nll = last["test"].as_f64().unwrap();
    assert!(nll < 15.0, "{last}");
    let o = support::cellc(&["run", "lstm", "--task", "music:bach"]);
    assert_eq!(o.status.code(), Some(2), "an unknown task is a usage error");
}
