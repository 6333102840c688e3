//! The task generators and metrics: arithmetic answers are the true results, XML tags close in
//! order, memorization reproduces its symbols, batches are laid out as the runtime reads them,
//! splits are disjoint and seeds reproducible, and the tallies count what they claim.

use cellc::rng::Rng;
use cellc::tasks::arith::{self, Arith};
use cellc::tasks::memorize::Memorize;
use cellc::tasks::xml;
use cellc::tasks::{Batch, BatchStream, Split, Tally, Task, TaskConfig, TaskKind};

fn text(alphabet: &[u8], symbols: &[u32]) -> String {
    symbols.iter().map(|&s| alphabet[s as usize] as char).collect()
}

/// `a+b=` or `a-b=` with signed operands, and the answer, parsed back from clean text.
fn check_arith(clean: &str) {
    let (question, answer) = clean.split_once('=').expect("an `=`");
    let answer = answer.strip_suffix('.').expect("the answer ends with `.`");
    // The operator is the first + or - after the first operand's digits.
    let bytes = question.as_bytes();
    let start = usize::from(bytes[0] == b'-');
    let op_at = start + question[start..].find(['+', '-']).expect("an operator");
    let a: i64 = question[..op_at].parse().unwrap();
    let b: i64 = question[op_at + 1..].parse().unwrap();
    let want = if bytes[op_at] == b'+' { a + b } else { a - b };
    assert_eq!(answer.parse::<i64>().unwrap(), want, "{clean}");
    assert_eq!(answer, want.to_string(), "{clean}: the answer is written canonically");
}

#[test]
fn arithmetic_answers_are_the_true_results() {
    let mut rng = Rng::new(3);
    let task = Arith::default();
    let mut digits_seen = [false; 9];
    let mut total_distractors = 0usize;
    let mut inputs = 0usize;
    for _ in 0..20_000 {
        let e = task.example(&mut rng);
        let full = text(arith::ALPHABET, &e.symbols);
        let clean = arith::clean_text(&e.symbols);
        check_arith(&clean);
        // The answer starts right after `=`, and only the answer is after it.
        assert_eq!(arith::ALPHABET[e.symbols[e.answer_from - 1] as usize], b'=', "{full}");
        assert!(!full[e.answer_from..].bytes().any(|c| c.is_ascii_lowercase()), "{full}");
        let q = &clean[..clean.find('=').unwrap()];
        for part in q.split(['+', '-']).filter(|p| !p.is_empty()) {
            assert!(part.len() <= 8 && (part.len() == 1 || !part.starts_with('0')), "{clean}");
            digits_seen[part.len()] = true;
        }
        total_distractors += full[..e.answer_from].bytes().filter(u8::is_ascii_lowercase).count();
        inputs += q.len();
    }
    assert!(digits_seen[1..].iter().all(|&d| d), "every length 1..=8 occurs");
    // Geometric with mean 1 after each input character but `=` (capped at 8).
    let mean = total_distractors as f64 / inputs as f64;
    assert!((mean - 1.0).abs() < 0.05, "mean distractors per input character {mean}");
}

#[test]
fn a_curriculum_level_draws_half_its_examples_short() {
    let mut rng = Rng::new(4);
    let task = Arith { level: 2, ..Arith::default() };
    let n = 4000;
    let short = (0..n)
        .filter(|_| {
            let clean = arith::clean_text(&task.example(&mut rng).symbols);
            check_arith(&clean);
            let q = &clean[..clean.find('=').unwrap()];
            q.split(['+', '-']).filter(|p| !p.is_empty()).all(|p| p.len() <= 2)
        })
        .count() as f64
        / n as f64;
    // 1/2 from 1..=2 digits, plus the full range's share with both operands short (1/16).
    let want = 0.5 + 0.5 / 16.0;
    assert!((short - want).abs() < 0.03, "{short} of examples have both operands of <= 2 digits, want {want}");
}

#[test]
fn the_papers_example_is_an_arith_example() {
    let symbols: Vec<u32> = b"3e36d9-h1h39f94eeh43keg3c=-13991064."
        .iter()
        .map(|c| arith::ALPHABET.iter().position(|a| a == c).unwrap() as u32)
        .collect();
    assert_eq!(arith::clean_text(&symbols), "3369-13994433=-13991064.");
    check_arith(&arith::clean_text(&symbols));
}

#[test]
fn xml_tags_close_in_order_and_the_classes_mark_closing_tags() {
    let task = Task::Xml(xml::Xml { streams: 3, eval_chars: 100, max_depth: 50 });
    let mut src = BatchStream::new(&task, Split::Train, 5);
    let mut stream: Vec<Vec<(u8, bool)>> = vec![vec![]; 3];
    for _ in 0..200 {
        let b = src.next(3, 50);
        assert!(b.stream && b.weights.iter().all(|&w| w == 1.0));
        for t in 0..b.steps {
            for (col, s) in stream.iter_mut().enumerate() {
                let r = t * 3 + col;
                if t + 1 < b.steps {
                    assert_eq!(b.targets[r], b.tokens[r + 3], "a target is the next row's token");
                }
                s.push((xml::ALPHABET[b.targets[r] as usize], b.classes[r]));
            }
        }
    }
    for s in &stream {
        let text: String = s.iter().map(|&(c, _)| c as char).collect();
        let docs: Vec<&str> = text.split('\n').collect();
        assert!(docs.len() > 20, "many documents");
        // Every complete document (between newlines) is balanced.
        for doc in &docs[..docs.len() - 1] {
            assert!(!doc.is_empty(), "empty documents are skipped");
            let mut open = vec![];
            let mut rest = *doc;
            while let Some(stripped) = rest.strip_prefix('<') {
                let end = stripped.find('>').unwrap();
                let tag = &stripped[..end];
                if let Some(name) = tag.strip_prefix('/') {
                    assert_eq!(open.pop(), Some(name), "{doc}");
                } else {
                    assert!((2..=10).contains(&tag.len()) && tag.bytes().all(|c| c.is_ascii_lowercase()), "{tag}");
                    open.push(tag);
                }
                rest = &stripped[end + 1..];
            }
            assert!(rest.is_empty() && open.is_empty(), "{doc}");
        }
        // Classes: exactly the name and `>` of each closing tag.
        let mut in_close = false;
        for (i, &(c, class)) in s.iter().enumerate() {
            let after_slash = i >= 2 && s[i - 1].0 == b'/' && s[i - 2].0 == b'<';
            if after_slash {
                in_close = true;
            }
            assert_eq!(class, in_close, "position {i} of {text:.80}");
            if c == b'>' {
                in_close = false;
            }
        }
    }
}

#[test]
fn memorize_reproduces_its_symbols() {
    let mut rng = Rng::new(1);
    let m = Memorize::default();
    for _ in 0..1000 {
        let e = m.example(&mut rng);
        assert_eq!(e.symbols.len(), 11);
        assert_eq!(e.answer_from, 6);
        assert_eq!(e.symbols[5], 26, "the marker");
        assert_eq!(e.symbols[..5], e.symbols[6..]);
    }
}

#[test]
fn sequence_batches_are_step_major_with_answer_weights() {
    let task = TaskConfig::new(TaskKind::parse("arith").unwrap()).build().unwrap();
    let mut src = BatchStream::new(&task, Split::Train, 9);
    let pad = task.pad();
    for _ in 0..40 {
        let b = src.next(16, 0);
        assert!(!b.stream);
        for col in 0..16 {
            let rows: Vec<usize> = (0..b.steps).map(|t| t * 16 + col).collect();
            let ends = rows.iter().rposition(|&r| b.tokens[r] != pad).unwrap();
            // Each column: the example's symbols, then padding of weight 0.
            let symbols: Vec<u32> = rows[..=ends].iter().map(|&r| b.tokens[r]).chain([b.targets[rows[ends]]]).collect();
            check_arith(&arith::clean_text(&symbols));
            let answer: String = rows
                .iter()
                .filter(|&&r| b.weights[r] > 0.0)
                .map(|&r| arith::ALPHABET[b.targets[r] as usize] as char)
                .collect();
            let clean = arith::clean_text(&symbols);
            assert_eq!(answer, clean[clean.find('=').unwrap() + 1..], "the weights mark the answer");
            assert!(rows[ends + 1..].iter().all(|&r| b.weights[r] == 0.0 && b.tokens[r] == pad));
        }
        // Sorted pools: a batch's examples have similar lengths, so padding is small.
        let lens: Vec<usize> = (0..16).map(|c| (0..b.steps).filter(|t| b.tokens[t * 16 + c] != pad).count()).collect();
        let spread = lens.iter().max().unwrap() - lens.iter().min().unwrap();
        assert!(spread <= 12, "lengths {lens:?}");
    }
}

#[test]
fn seeds_reproduce_and_splits_differ() {
    for name in ["arith", "xml", "memorize"] {
        let task = TaskConfig::new(TaskKind::parse(name).unwrap()).build().unwrap();
        let batch = if name == "xml" { 32 } else { 8 };
        let draw = |split, seed| {
            let mut s = BatchStream::new(&task, split, seed);
            (0..5).map(|_| s.next(batch, 20)).collect::<Vec<Batch>>()
        };
        assert_eq!(draw(Split::Train, 4), draw(Split::Train, 4), "{name}: a seed repeats");
        assert_ne!(draw(Split::Train, 4), draw(Split::Valid, 4), "{name}: splits differ");
        assert_ne!(draw(Split::Valid, 4), draw(Split::Test, 4), "{name}: splits differ");
        assert_ne!(draw(Split::Train, 4), draw(Split::Train, 5), "{name}: seeds differ");
    }
    // No validation example is a training example (arith has ~10^17 of them).
    let task = TaskConfig::new(TaskKind::parse("arith").unwrap()).build().unwrap();
    let texts = |split| {
        let mut s = BatchStream::new(&task, split, 1);
        let mut out = std::collections::HashSet::new();
        for _ in 0..50 {
            let b = s.next(32, 0);
            for c in 0..32 {
                out.insert(cellc::tasks::column_text(&task, &b, c));
            }
        }
        out
    };
    let (train, valid) = (texts(Split::Train), texts(Split::Valid));
    let shared = train.intersection(&valid).filter(|t| t.len() > 12).count();
    assert_eq!(shared, 0, "validation examples are not training examples");
}

#[test]
fn a_source_restored_from_its_state_continues_identically() {
    for name in ["arith", "xml"] {
        let task = TaskConfig::new(TaskKind::parse(name).unwrap()).build().unwrap();
        let batch = if name == "xml" { 32 } else { 8 };
        let mut a = BatchStream::new(&task, Split::Train, 2);
        for _ in 0..7 {
            a.next(batch, 16);
        }
        let state = a.state();
        let mut b = BatchStream::new(&task, Split::Train, 2);
        b.restore(&serde_json::from_str(&state.to_string()).unwrap()).unwrap();
        for _ in 0..30 {
            assert_eq!(a.next(batch, 16), b.next(batch, 16), "{name}");
        }
    }
}

#[test]
fn tallies_count_answers_exact_matches_and_classes() {
    // Two columns of three steps; column 0 answers on rows t=1,2; column 1 on t=2 only.
    let mut b = Batch::padded(3, 2, 0);
    for (t, c) in [(1, 0), (2, 0), (2, 1)] {
        b.weights[t * 2 + c] = 1.0;
    }
    b.classes[0] = true;
    let right = [true, false, true, false, false, true];
    let losses = [9.0, 9.0, 1.0, 9.0, 3.0, 2.0];
    let mut t = Tally::default();
    t.add(&b, &right, &losses);
    assert_eq!(t.accuracy(), 2.0 / 3.0);
    assert_eq!(t.exact_match(), Some(0.5), "column 0 misses t=2; column 1 is all right");
    assert_eq!(t.class_accuracy(), Some(1.0));
    assert_eq!(t.loss(), 2.0);
}
