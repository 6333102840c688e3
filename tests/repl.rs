//! The REPL's logic driven by transcript files, without a terminal: `tests/repl/*.txt` hold the
//! input lines (after `> `, continuations after `. `) and the output expected after each.
//! `UPDATE_EXPECT=1 cargo test --test repl` rewrites them after a deliberate change; review the diff.
//! Also `cellc repl < script` as a user runs it: exit status and where it stops.

use std::io::Write;
use std::process::{Command, Stdio};

use cellc::diag::RenderStyle;
use cellc::repl::Session;

/// The input lines of a transcript.
fn inputs(transcript: &str) -> String {
    transcript
        .lines()
        .filter_map(|l| l.strip_prefix("> ").or(l.strip_prefix(". ")).or((l == ">" || l == ".").then_some("")))
        .map(|l| format!("{l}\n"))
        .collect()
}

fn check(name: &str, stop_on_error: bool, expect: expect_test::ExpectFile) {
    let path = format!("{}/tests/repl/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    // Paths in a transcript are relative to a scratch directory.
    let dir = std::env::temp_dir().join(format!("cellc-repl-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let cwd = std::env::current_dir().expect("cwd");
    let mut session = Session::new(RenderStyle::PLAIN);
    session.threads = 1;
    std::env::set_current_dir(&dir).expect("cd scratch");
    let (got, _) = session.transcript(&inputs(&text), stop_on_error);
    std::env::set_current_dir(cwd).expect("cd back");
    let _ = std::fs::remove_dir_all(&dir);
    expect.assert_eq(&got);
}

// One test function: the transcripts change the working directory, which is per process.
#[test]
fn transcripts() {
    check("explore.txt", true, expect_test::expect_file!["repl/explore.txt"]);
    check("sketch.txt", true, expect_test::expect_file!["repl/sketch.txt"]);
    check("errors.txt", false, expect_test::expect_file!["repl/errors.txt"]);
    check("train.txt", true, expect_test::expect_file!["repl/train.txt"]);
}

fn script(stdin: &str) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cellc"))
        .args(["repl", "--color", "never"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run cellc");
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("write script");
    let out = child.wait_with_output().expect("wait");
    let s = |b: Vec<u8>| String::from_utf8(b).expect("utf-8");
    (out.status.code().unwrap_or(-1), s(out.stdout), s(out.stderr))
}

#[test]
fn a_script_runs_to_the_end_or_stops_at_the_first_error() {
    let (code, out, err) = script(":load gru\nlet H = 2\n:eval\n");
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("h' = ["), "{out}");

    let (code, out, err) = script(":load gru\n:nope\n:eval\n");
    assert_eq!(code, 1);
    assert!(err.contains("no command `:nope`") && err.contains("stopped at line 2"), "{err}");
    assert!(!out.contains("h' = ["), "ran past the error: {out}");

    let (code, _, err) = script("cell a {\n state h\n");
    assert_eq!(code, 1);
    assert!(err.contains("a `}` is missing"), "{err}");

    let (code, out, _) = script("h' = tanh(W*x + U*h)\n:quit\n:nope\n");
    assert_eq!(code, 0, ":quit ends the script before the bad line");
    assert!(out.contains("sketch: state h"), "{out}");
}
