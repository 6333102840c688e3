//! Project rules that code review would otherwise have to remember.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn sources(dir: &str) -> Vec<(PathBuf, String)> {
    let mut files = vec![];
    rust_files(Path::new(dir), &mut files);
    files.sort();
    files.into_iter().map(|p| (p.clone(), std::fs::read_to_string(&p).unwrap())).collect()
}

#[test]
fn every_module_opens_with_a_doc_line() {
    for (path, text) in sources("src").into_iter().chain(sources("tests")) {
        assert!(text.starts_with("//!"), "{} must open with a `//!` line saying what it does", path.display());
    }
}

#[test]
fn no_ignored_or_should_panic_tests() {
    let (ignore, should_panic) = (["#[", "ignore"].concat(), ["#[", "should_panic"].concat());
    for (path, text) in sources("src").into_iter().chain(sources("tests")) {
        assert!(!text.contains(&ignore), "{}: ignored tests hide failures", path.display());
        assert!(!text.contains(&should_panic), "{}: assert on the error instead", path.display());
    }
}

#[test]
fn only_the_cli_prints() {
    for (path, text) in sources("src") {
        let in_cli = path.starts_with("src/cli") || path.ends_with("main.rs");
        if in_cli {
            continue;
        }
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for banned in ["println!", "eprintln!", "print!(", "eprint!(", "process::exit"] {
                assert!(!code.contains(banned), "{}:{}: only src/cli prints or exits", path.display(), i + 1);
            }
        }
    }
}

#[test]
fn front_end_never_unwraps_user_input() {
    for (path, text) in sources("src/syntax").into_iter().chain(sources("src/check")) {
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            assert!(!code.contains(".unwrap()"), "{}:{}: return a diagnostic instead of unwrap", path.display(), i + 1);
        }
    }
}

#[test]
fn files_stay_small() {
    for (path, text) in sources("src") {
        let lines = text.lines().count();
        assert!(lines <= 700, "{} has {lines} lines; split it by responsibility", path.display());
    }
}

#[test]
fn unsafe_code_stays_in_codegen_and_runtime() {
    let unsafe_kw = ["uns", "afe"].concat();
    for (path, text) in sources("src") {
        if path.starts_with("src/codegen") || path.starts_with("src/runtime") {
            continue;
        }
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            assert!(
                !code.contains(&unsafe_kw),
                "{}:{}: keep unsafe code in src/codegen or src/runtime behind a safe API",
                path.display(),
                i + 1
            );
        }
    }
}
