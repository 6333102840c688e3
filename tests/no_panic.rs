//! No input crashes the front end. 104,000 generated inputs (random bytes, token soup,
//! mutated valid cells, random valid cells) go through decode, parse, check, diagnostic rendering
//! and the formatter, inside `catch_unwind`; any panic fails with the seed and the input.
//! Inputs that parse must also format idempotently and keep their meaning.

mod support;

use std::panic::{AssertUnwindSafe, catch_unwind};

use cellc::diag::{self, RenderStyle};
use cellc::rng::Rng;
use cellc::stdlib;
use cellc::syntax::{self, guard, print};
use cellc::workspace::Workspace;

/// Runs the whole front end on `bytes`, as `cellc check` and `cellc fmt` would.
fn front_end(ws: &mut Workspace, bytes: &[u8]) {
    let Ok(text) = guard::decode(bytes) else { return };
    let file = ws.add("fuzz.cell", text);
    let checked = ws.check(file);
    for d in &checked.diagnostics {
        let rendered = diag::render(d, &ws.sources, RenderStyle::PLAIN);
        assert!(!rendered.is_empty());
    }
    let parsed_cleanly = !checked.diagnostics.iter().any(|d| d.code == "cellc::syntax" || d.code == "cellc::too_deep");
    if parsed_cleanly {
        let formatted = print::file(&checked.ast);
        let file2 = ws.add("fuzz-formatted.cell", &formatted);
        let rechecked = ws.check(file2);
        assert!(
            !rechecked.diagnostics.iter().any(|d| d.code == "cellc::syntax"),
            "formatted text does not parse:\n{formatted}"
        );
        assert_eq!(print::file(&rechecked.ast), formatted, "fmt is not idempotent");
        let before: Vec<_> = checked.cells.iter().map(|c| c.without_spans()).collect();
        let after: Vec<_> = rechecked.cells.iter().map(|c| c.without_spans()).collect();
        assert_eq!(before, after, "formatting changed the checked cells:\n{formatted}");
    }
}

fn run_cases(kind: &str, seed: u64, n: usize, mut generate: impl FnMut(&mut Rng) -> Vec<u8>) {
    let mut ws = Workspace::new();
    let mut rng = Rng::new(seed);
    for case in 0..n {
        // A fresh workspace now and then keeps the source map small.
        if case % 5_000 == 0 {
            ws = Workspace::new();
        }
        let input = generate(&mut rng);
        let result = catch_unwind(AssertUnwindSafe(|| front_end(&mut ws, &input)));
        if result.is_err() {
            panic!(
                "{kind} case {case} (seed {seed}) crashed the front end on input:\n{:?}",
                String::from_utf8_lossy(&input)
            );
        }
    }
}

const TOKENS: &[&str] = &[
    "cell",
    "state",
    "output",
    "init",
    "with",
    "{",
    "}",
    "(",
    ")",
    "=",
    "'",
    ",",
    ";",
    "+",
    "-",
    "*",
    "/",
    "\n",
    "\n",
    " ",
    "x",
    "h",
    "c",
    "h'",
    "c'",
    "W",
    "W_xh",
    "b_f",
    "r",
    "z",
    "tanh",
    "sigm",
    "sigmoid",
    "relu",
    "exp",
    "abs",
    "softplus",
    "sqrt",
    "mean",
    "sum",
    "id",
    "1",
    "0.5",
    "1e-3",
    ".5",
    "2.",
    "///",
    "// c",
    "lstm",
    "gru",
    "uniform",
    "chrono(35)",
    "ugi",
    "diag(0.9)",
    "orthogonal",
    "-b_f",
    "tahn",
    "Q",
    "_",
    "9",
    "é",
    "\t",
    "\r\n",
];

#[test]
fn random_bytes_never_panic() {
    run_cases("random bytes", 1, 40_000, |rng| {
        let len = rng.range(0, 120);
        let printable = rng.chance(0.7);
        (0..len)
            .map(|_| if printable { *rng.pick(b" \n(){}=+-*/'.,;_abchxyzWb019/#") } else { rng.below(256) as u8 })
            .collect()
    });
}

#[test]
fn token_soup_never_panics() {
    run_cases("token soup", 2, 36_000, |rng| {
        let n = rng.range(1, 60);
        let mut s = if rng.chance(0.5) { String::from("cell a {\nstate h\n") } else { String::new() };
        for _ in 0..n {
            s.push_str(TOKENS[rng.below(TOKENS.len() as u64) as usize]);
            if rng.chance(0.3) {
                s.push(' ');
            }
        }
        if rng.chance(0.5) {
            s.push_str("\n}\n");
        }
        s.into_bytes()
    });
}

#[test]
fn mutated_valid_cells_never_panic() {
    let sources: Vec<&str> = stdlib::STD_CELLS.iter().map(|(_, s)| *s).collect();
    run_cases("mutated cell", 3, 20_000, |rng| {
        let mut bytes = rng.pick(&sources).as_bytes().to_vec();
        for _ in 0..rng.range(1, 4) {
            if bytes.is_empty() {
                break;
            }
            let at = rng.below(bytes.len() as u64) as usize;
            match rng.below(5) {
                0 => {
                    let end = (at + rng.range(1, 12)).min(bytes.len());
                    bytes.drain(at..end);
                }
                1 => {
                    let end = (at + rng.range(1, 12)).min(bytes.len());
                    let piece = bytes[at..end].to_vec();
                    bytes.splice(at..at, piece);
                }
                2 => {
                    let tok = rng.pick(TOKENS).as_bytes().to_vec();
                    bytes.splice(at..at, tok);
                }
                3 => bytes[at] = rng.below(128) as u8,
                _ => {
                    let other = rng.below(bytes.len() as u64) as usize;
                    bytes.swap(at, other);
                }
            }
        }
        bytes
    });
}

#[test]
fn random_valid_cells_check_and_round_trip() {
    let mut rng = Rng::new(4);
    let mut ws = Workspace::new();
    for case in 0..8_000 {
        let text = support::random_cell(&mut rng, &format!("r{case}"), support::CellGen::default());
        let file = ws.add("random.cell", &text);
        let checked = ws.check(file);
        assert!(!checked.has_errors(), "generated cell {case} has errors:\n{text}\n{:?}", checked.diagnostics);
        front_end(&mut ws, text.as_bytes());
    }
}

#[test]
fn pathological_inputs_get_clean_errors() {
    let mut ws = Workspace::new();
    let deep = format!("cell a {{\n state h\n h' = {}h{}\n}}\n", "(".repeat(10_000), ")".repeat(10_000));
    let deep_calls = format!("cell a {{\n state h\n h' = {}h{}\n}}\n", "tanh(".repeat(10_000), ")".repeat(10_000));
    let minus = format!("cell a {{\n state h\n h' = {}h\n}}\n", "-".repeat(100_000));
    let long_sum = format!("cell a {{\n state h\n h' = h{}\n}}\n", " + h".repeat(100_000));
    let long_name = format!("cell a {{\n state h\n h' = {}\n}}\n", "b".repeat(500_000));
    let many_cells: String = (0..5_000).map(|i| format!("cell c{i} {{ state h; h' = tanh(W*h) }}\n")).collect();
    let braces = "{".repeat(200_000);
    for (what, text) in [
        ("10,000 nested parentheses", deep.as_str()),
        ("10,000 nested calls", deep_calls.as_str()),
        ("100,000 minus signs", minus.as_str()),
        ("100,000-term sum", long_sum.as_str()),
        ("500,000-character name", long_name.as_str()),
        ("5,000 cells", many_cells.as_str()),
        ("200,000 open braces", braces.as_str()),
        ("NUL bytes", "cell a {\0 state h\0 }"),
        ("only a doc comment", "/// doc"),
        ("empty", ""),
    ] {
        let result = catch_unwind(AssertUnwindSafe(|| front_end(&mut ws, text.as_bytes())));
        assert!(result.is_ok(), "{what} crashed the front end");
    }
    let file = ws.add("deep.cell", &deep);
    assert_eq!(ws.check(file).diagnostics[0].code, "cellc::too_deep");
    assert!(guard::decode(&vec![b'a'; guard::MAX_SOURCE_BYTES + 1]).is_err(), "huge file accepted");
    assert!(guard::decode(b"cell \xc3\x28 {}").is_err(), "invalid UTF-8 accepted");
    let _ = syntax::parse(cellc::diag::FileId(0), "");
}
