//! Project rules that code review would otherwise have to remember.

use std::collections::BTreeSet;
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
        assert!(lines <= 600, "{} has {lines} lines; split it by responsibility", path.display());
    }
}

/// `text` with comments, strings and character literals blanked out (newlines kept), so braces
/// and `crate::` paths can be counted in code alone.
fn code_only(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = b.to_vec();
    let wipe = |from: usize, to: usize, out: &mut Vec<u8>| {
        for c in &mut out[from..to.min(b.len())] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
    };
    let mut i = 0;
    while i < b.len() {
        let rest = &text[i..];
        let end = if rest.starts_with("//") {
            i + rest.find('\n').unwrap_or(rest.len())
        } else if rest.starts_with("/*") {
            i + rest.find("*/").map_or(rest.len(), |e| e + 2)
        } else if let Some(hashes) = rest.strip_prefix('r').map(|r| r.len() - r.trim_start_matches('#').len())
            && rest[1 + hashes..].starts_with('"')
            && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_'))
        {
            let close = format!("\"{}", "#".repeat(hashes));
            i + 2 + hashes + rest[2 + hashes..].find(&close).map_or(rest.len(), |e| e + close.len())
        } else if b[i] == b'"' {
            let mut j = i + 1;
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            j + 1
        } else if b[i] == b'\'' {
            // A character literal ('x', '\n', '\u{..}'), not a lifetime ('a).
            let close = if rest[1..].starts_with('\\') { rest[2..].find('\'').map(|e| e + 2) } else { Some(2) };
            match close {
                Some(c) if rest.as_bytes().get(c) == Some(&b'\'') => i + c + 1,
                _ => i + 1,
            }
        } else {
            i + 1
        };
        if end > i + 1 || b[i] == b'"' {
            wipe(i, end, &mut out);
        }
        i = end.max(i + 1);
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Functions over 100 lines: (lines, file, name). Emitters (`emit*` in codegen), which write
/// one Cranelift function top to bottom, are exempt.
fn long_functions() -> Vec<(usize, PathBuf, String)> {
    let mut long = vec![];
    for (path, text) in sources("src") {
        let code = code_only(&text);
        let lines: Vec<&str> = code.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let Some(name) = fn_name(line) else { continue };
            if path.starts_with("src/codegen") && name.starts_with("emit") {
                continue;
            }
            let (mut depth, mut started, mut end) = (0i64, false, i);
            for (j, l) in lines.iter().enumerate().skip(i) {
                if !started && l.contains(';') && !l.contains('{') {
                    break; // a declaration without a body
                }
                depth += l.matches('{').count() as i64 - l.matches('}').count() as i64;
                started |= l.contains('{');
                end = j;
                if started && depth <= 0 {
                    break;
                }
            }
            if end + 1 - i > 100 {
                long.push((end + 1 - i, path.clone(), name));
            }
        }
    }
    long
}

/// The name of the function a line declares, if it does.
fn fn_name(line: &str) -> Option<String> {
    let mut words = line.split_whitespace().peekable();
    while let Some(w) = words.next() {
        match w {
            "pub" | "const" | "unsafe" | "async" | "extern" | "\"C\"" => continue,
            w if w.starts_with("pub(") => continue,
            "fn" => {
                let name = words.next()?;
                return Some(name.split(['(', '<']).next()?.to_string());
            }
            _ => return None,
        }
    }
    None
}

#[test]
fn functions_stay_short() {
    let long = long_functions();
    assert!(long.is_empty(), "functions over 100 lines (split them into named steps): {long:?}");
}

/// Every top-level module and the modules it may import (`crate::x`), in the order lib.rs lists
/// them: a module imports only modules above it, so data flows one way, down the pipeline.
const LAYERS: &[(&str, &[&str])] = &[
    ("diag", &[]),
    ("io", &[]),
    ("rng", &[]),
    ("syntax", &["diag"]),
    ("check", &["diag", "syntax"]),
    ("stdlib", &[]),
    ("workspace", &["diag", "syntax", "check", "stdlib"]),
    ("cell_arg", &["diag", "syntax", "check", "stdlib", "workspace"]),
    ("ir", &["diag", "syntax", "check"]),
    ("autodiff", &["syntax", "check", "ir"]),
    ("init", &["rng", "check", "ir"]),
    ("interp", &["rng", "ir", "autodiff", "init"]),
    ("schedule", &["syntax", "check", "ir", "autodiff"]),
    ("codegen", &["syntax", "check", "ir", "schedule"]),
    ("runtime", &["check", "ir", "autodiff", "schedule", "codegen"]),
    ("tensors", &[]),
    ("eval", &["check", "ir", "autodiff", "interp", "runtime", "tensors"]),
    ("stats", &["check", "ir", "autodiff"]),
    ("data", &[]),
    ("tasks", &["rng", "data"]),
    ("train", &["io", "rng", "syntax", "check", "workspace", "ir", "autodiff", "init", "runtime", "tensors", "tasks"]),
    ("plot", &["io"]),
    ("store", &[]),
    ("experiment", &["rng", "workspace", "tasks", "train", "store"]),
    ("compare", &["workspace", "tasks", "train", "plot", "store", "experiment"]),
    ("paper", &["workspace", "data", "tasks", "train", "plot", "store", "experiment"]),
    (
        "search",
        &[
            "io",
            "rng",
            "syntax",
            "check",
            "stdlib",
            "workspace",
            "ir",
            "tasks",
            "train",
            "plot",
            "store",
            "experiment",
            "compare",
        ],
    ),
    ("dashboard", &["io", "workspace", "ir", "autodiff", "train", "store", "experiment", "compare", "paper", "search"]),
    ("bridge", &["syntax", "check", "workspace", "tensors"]),
    (
        "repl",
        &[
            "diag",
            "io",
            "rng",
            "syntax",
            "check",
            "stdlib",
            "workspace",
            "ir",
            "autodiff",
            "init",
            "interp",
            "schedule",
            "codegen",
            "runtime",
            "stats",
            "data",
            "tasks",
            "train",
        ],
    ),
    ("cli", &["*"]),
];

/// The top-level modules `text` (a file of module `own`) names as `crate::x`.
fn imports(text: &str, own: &str) -> BTreeSet<String> {
    let code = code_only(text);
    let mut found = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `use crate::{a, b::c}`: the first segment of each item.
            let items = &group[..group.find('}').unwrap_or(group.len())];
            found.extend(items.split(',').filter_map(|it| it.trim().split("::").next()).map(str::to_string));
        } else {
            let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            found.insert(name);
        }
    }
    found.retain(|m| !m.is_empty() && m != own);
    found
}

#[test]
fn modules_import_only_what_the_layer_table_allows() {
    for (path, text) in sources("src") {
        let rel = path.strip_prefix("src").unwrap();
        let own = rel.iter().next().unwrap().to_string_lossy().trim_end_matches(".rs").to_string();
        if own == "lib" || own == "main" {
            continue;
        }
        let Some((_, allowed)) = LAYERS.iter().find(|(m, _)| *m == own) else {
            panic!("src/{own} is not in tests/tidy.rs's LAYERS table: say what it may import");
        };
        if allowed == &["*"] {
            continue;
        }
        for m in imports(&text, &own) {
            assert!(
                allowed.contains(&m.as_str()),
                "{}: `{own}` imports `crate::{m}`, which LAYERS does not allow (an arrow against the pipeline?)",
                path.display()
            );
        }
    }
}

#[test]
fn the_layer_table_follows_lib_rs_order() {
    let lib = std::fs::read_to_string("src/lib.rs").unwrap();
    let order: Vec<&str> = lib.lines().filter_map(|l| l.strip_prefix("pub mod ")?.strip_suffix(';')).collect();
    let table: Vec<&str> = LAYERS.iter().map(|(m, _)| *m).collect();
    assert_eq!(order, table, "lib.rs lists its modules in pipeline order; LAYERS follows it");
    for (i, (m, allowed)) in LAYERS.iter().enumerate() {
        for a in allowed.iter().filter(|a| **a != "*") {
            let at = table.iter().position(|t| t == a).unwrap_or_else(|| panic!("{m} allows unknown {a}"));
            assert!(at < i, "`{m}` may import `{a}`, which lib.rs lists after it");
        }
    }
}

#[test]
fn every_source_file_is_in_the_code_map() {
    let arch = std::fs::read_to_string("ARCHITECTURE.md").unwrap();
    let start = arch.find("## Code map").expect("ARCHITECTURE.md has a code map");
    let map = &arch[start..];
    let map = &map[..map[3..].find("\n## ").map_or(map.len(), |e| e + 3)];
    // The bullet of each `src/<dir>/`: from its line to the next top-level bullet.
    let bullet = |dir: &str| -> Option<&str> {
        let at = map.find(&format!("- `src/{dir}/`"))?;
        let rest = &map[at + 2..];
        Some(&rest[..rest.find("\n- ").unwrap_or(rest.len())])
    };
    for (path, _) in sources("src") {
        let rel = path.strip_prefix("src").unwrap();
        let parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().to_string()).collect();
        let file = parts.last().unwrap();
        let mentioned = match parts.len() {
            1 => file == "lib.rs" || file == "main.rs" || map.contains(&format!("`src/{file}`")),
            _ => bullet(&parts[0]).is_some_and(|b| file == "mod.rs" || b.contains(&format!("`{file}`"))),
        };
        assert!(mentioned, "{} is not in ARCHITECTURE.md's code map", path.display());
    }
}

#[test]
fn unsafe_code_stays_in_codegen_and_runtime() {
    let unsafe_kw = ["uns", "afe"].concat();
    for (path, text) in sources("src") {
        // The Ctrl-C handler is a libc call; its file says why it is safe.
        if path.starts_with("src/codegen") || path.starts_with("src/runtime") || path.ends_with("src/cli/interrupt.rs")
        {
            continue;
        }
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            // The keyword, not a word inside a string (a CSP header's 'unsafe-inline').
            let keyword = code.match_indices(&unsafe_kw).any(|(at, _)| {
                let next = code[at + unsafe_kw.len()..].chars().next();
                next.is_none_or(|c| c == ' ' || c == '{' || c == '(')
            });
            assert!(
                !keyword,
                "{}:{}: keep unsafe code in src/codegen or src/runtime behind a safe API",
                path.display(),
                i + 1
            );
        }
    }
}
