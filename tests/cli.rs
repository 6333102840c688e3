//! The `cellc` binary end to end: exit codes, one-line errors for bad input, fmt, list, JSON.

mod support;

use std::process::Output;
use support::{cellc, scratch};

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn write(dir: &std::path::Path, name: &str, bytes: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p.to_string_lossy().into_owned()
}

#[test]
fn check_std_cell_prints_summary_and_exits_zero() {
    let o = cellc(&["check", "gru", "mut1"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.starts_with("gru: state h | 9 params: W_xr[H,D]"), "{out}");
    assert!(out.contains("mut1: state h | 7 params") && out.contains("| D = H"), "{out}");
    assert!(stderr(&o).is_empty());
}

#[test]
fn check_errors_exit_one_with_all_diagnostics() {
    let o = cellc(&["check", "tests/data/diag/unknown_function.cell"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert_eq!(err.matches("unknown function").count(), 3, "{err}");
    assert!(err.contains("tests/data/diag/unknown_function.cell:3:10"), "{err}");
    assert!(err.contains("did you mean `tanh`?"), "{err}");
}

#[test]
fn warnings_alone_exit_zero() {
    let o = cellc(&["check", "tests/data/diag/unused_equation.cell"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("never used"));
    assert!(stdout(&o).contains("a: state h"));
}

#[test]
fn bad_inputs_get_one_line_errors() {
    let dir = scratch("bad");
    let not_utf8 = write(&dir, "bin.cell", b"cell a {\n state h \xff\xfe }");
    let huge = write(&dir, "huge.cell", &vec![b' '; 2 << 20]);
    let dir_arg = dir.to_string_lossy().into_owned();
    for (arg, expect) in [
        ("nonexistent", "no file or standard cell named `nonexistent`"),
        ("lsmt", "did you mean the standard cell `lstm`?"),
        ("missing.cell", "the file does not exist"),
        (not_utf8.as_str(), "file is not valid UTF-8: invalid byte 0xff at line 2, column 10"),
        (huge.as_str(), "file is too large for a cell file"),
        (dir_arg.as_str(), "is a directory"),
    ] {
        let o = cellc(&["check", arg]);
        assert_eq!(o.status.code(), Some(1), "{arg}");
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "{arg}: {err}");
        assert!(err.starts_with("error: ") && err.contains(expect), "{arg}: {err}");
    }
}

#[test]
fn deep_nesting_is_a_diagnostic_not_a_crash() {
    let dir = scratch("deep");
    let text = format!("cell a {{\n state h\n h' = {}h{}\n}}\n", "(".repeat(10_000), ")".repeat(10_000));
    let path = write(&dir, "deep.cell", text.as_bytes());
    let o = cellc(&["check", &path]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("parentheses nest more than 64 levels deep"));
}

#[test]
fn usage_errors_exit_two() {
    assert_eq!(cellc(&["check", "gru", "--bogus"]).status.code(), Some(2));
    assert_eq!(cellc(&["check"]).status.code(), Some(2));
    assert_eq!(cellc(&["frobnicate"]).status.code(), Some(2));
}

#[test]
fn help_teaches_the_language() {
    let o = cellc(&["--help"]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    assert!(out.contains("cellc check gru") && out.contains("h' = z*h + (1 - z)*tanh"), "{out}");
}

#[test]
fn fmt_prints_checks_and_rewrites_atomically() {
    let dir = scratch("fmt");
    let messy = "cell a{state h\n  h'=tanh(W*h+b) // keep me\n}";
    let path = write(&dir, "a.cell", messy.as_bytes());
    let canonical = "cell a {\n    state h\n    h' = tanh(W*h + b)  // keep me\n}\n";

    let o = cellc(&["fmt", &path]);
    assert_eq!((o.status.code(), stdout(&o).as_str()), (Some(0), canonical));
    assert_eq!(cellc(&["fmt", "--check", &path]).status.code(), Some(1));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), messy, "--check must not write");

    assert_eq!(cellc(&["fmt", "--write", &path]).status.code(), Some(0));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), canonical);
    assert_eq!(cellc(&["fmt", "--check", &path]).status.code(), Some(0));
    let leftovers: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 1, "temporary files left behind: {leftovers:?}");

    let broken = write(&dir, "broken.cell", b"cell a { state h\n h' = ( }");
    let o = cellc(&["fmt", "--write", &broken]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(std::fs::read_to_string(&broken).unwrap(), "cell a { state h\n h' = ( }", "a broken file was rewritten");
    assert_eq!(cellc(&["fmt", "--write", "gru"]).status.code(), Some(1), "std cells cannot be rewritten");
}

#[test]
fn list_shows_every_std_cell_with_a_description() {
    let o = cellc(&["list"]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    assert_eq!(out.lines().count(), cellc::stdlib::names().count());
    assert!(out.lines().any(|l| l.starts_with("gru ") && l.contains("gated recurrent unit")), "{out}");
    let json: serde_json::Value = serde_json::from_slice(&cellc(&["list", "--json"]).stdout).unwrap();
    assert_eq!(json.as_array().unwrap().len(), cellc::stdlib::names().count());
}

#[test]
fn check_json_reports_cells_and_diagnostics() {
    let o = cellc(&["check", "--json", "lstm_b", "tests/data/diag/cycle.cell"]);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON document");
    assert_eq!(v["ok"], false);
    let cell = &v["cells"][0];
    assert_eq!(cell["cell"], "lstm_b");
    assert_eq!(cell["states"], serde_json::json!(["h", "c"]));
    let b_f = cell["params"].as_array().unwrap().iter().find(|p| p["name"] == "b_f").unwrap();
    assert_eq!(b_f["init"], "1");
    assert_eq!(v["diagnostics"][0]["code"], "cellc::cycle");
    assert_eq!(v["diagnostics"][0]["line"], 3);
}

#[test]
fn verbose_check_explains_d_equals_h() {
    let o = cellc(&["check", "-v", "mut1"]);
    let out = stdout(&o);
    assert!(out.contains("D = H: `") && out.contains("std/mut1.cell:"), "{out}");
    assert!(out.contains("h' = tanh(W_hh*(r*h) + tanh(x) + b_h)*z + h*(1 - z)"), "{out}");
}

#[test]
fn grad_prints_the_golden_backward_step() {
    let o = cellc(&["grad", "gru"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(stdout(&o), std::fs::read_to_string("tests/data/grad/gru.grad").unwrap());
}

#[test]
fn gradcheck_and_stats_report_numbers() {
    let o = cellc(&["gradcheck", "lstm", "--seed", "3", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert!(v["worst_relative_error"].as_f64().unwrap() < 1e-5);

    let o = cellc(&["stats", "gru", "--hidden", "128", "--input", "64", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    // 3 gates x (128x64 + 128x128 + 128) parameters; forward 2 flops per matrix entry.
    assert_eq!(v["params"], 3 * (128 * 64 + 128 * 128 + 128));
    assert_eq!(v["forward"]["matmul_flops"], 2 * 3 * (128 * 64 + 128 * 128));
    assert_eq!(v["backward"]["matmul_flops"], 4 * 3 * (128 * 64 + 128 * 128));
}

/// A layer-normalised cell goes through every command: checked, differentiated, gradchecked,
/// compiled (its kernels reduce rows), trained, benchmarked.
#[test]
fn a_layer_normalised_cell_runs_through_every_command() {
    let dir = scratch("reductions");
    let cell = write(
        &dir,
        "ln.cell",
        b"cell ln {\n    state h\n    a = W*x + U*h\n    d = a - mean(a)\n    h' = tanh(d / sqrt(mean(d*d) + 0.00001) * g + b)\n}\n",
    );
    for args in [
        vec!["check", &cell],
        vec!["grad", &cell],
        vec!["gradcheck", &cell],
        vec!["stats", &cell, "--hidden", "8"],
        vec!["compile", &cell],
        vec!["compile", &cell, "--emit", "clif"],
        vec!["run", &cell, "--task", "arith", "--steps", "5"],
        vec!["bench", &cell, "--hidden", "16", "--batch", "4", "--seq", "5", "--steps", "2", "--warmup", "1"],
    ] {
        let o = cellc(&args);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
    }
    assert!(stdout(&cellc(&["grad", &cell])).contains("sum("), "the derivative sums over the vector");
    let clif = stdout(&cellc(&["compile", &cell, "--emit", "clif"]));
    assert!(clif.contains("extractlane"), "a kernel adds the lanes of a row sum:\n{clif}");
}

/// `cellc stats`: a reduction of an n-vector costs n adds, and sqrt is transcendental.
#[test]
fn stats_count_reductions_per_entry_and_sqrt_as_transcendental() {
    let dir = scratch("stats-reductions");
    for (name, body, flops, transcendental) in [("mean", "h - mean(h)", 16, 0), ("sqrt", "sqrt(h*h + 1)", 24, 8)] {
        let cell =
            write(&dir, &format!("{name}.cell"), format!("cell t {{\n    state h\n    h' = {body}\n}}\n").as_bytes());
        let o = cellc(&["stats", &cell, "--hidden", "8", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["forward"]["elementwise_flops"], flops, "{body}: {v}");
        assert_eq!(v["forward"]["transcendental"], transcendental, "{body}: {v}");
    }
}

#[test]
fn files_with_several_cells_need_a_name() {
    let o = cellc(&["grad", "examples/03_derived_ablation.cell"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("has 3 cells; name one with `examples/03_derived_ablation.cell:NAME`"),
        "{}",
        stderr(&o)
    );
    let o = cellc(&["gradcheck", "examples/03_derived_ablation.cell:gru_no_reset"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = cellc(&["grad", "examples/03_derived_ablation.cell:nope"]);
    assert!(stderr(&o).contains("has no cell `nope`"), "{}", stderr(&o));
}

#[test]
fn gradcheck_checks_variable_length_batches_and_refuses_bad_lengths() {
    let o = cellc(&["gradcheck", "lstm_ln", "--seq", "4", "--lengths", "4,2,0", "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ok"], true);
    for bad in ["1,3", "5,1"] {
        let o = cellc(&["gradcheck", "gru", "--lengths", bad]);
        assert!(!o.status.success());
        assert!(String::from_utf8_lossy(&o.stderr).contains("longest first"), "{bad}");
    }
}

#[test]
fn bench_runs_a_ragged_batch_and_counts_real_tokens() {
    let o =
        cellc(&["bench", "gru", "--ragged", "--batch", "4", "--hidden", "8", "--seq", "6", "--steps", "2", "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let lengths: Vec<u64> = v["lengths"].as_array().unwrap().iter().map(|l| l.as_u64().unwrap()).collect();
    assert_eq!(lengths.len(), 4);
    assert!(lengths.windows(2).all(|w| w[0] >= w[1]) && lengths.iter().all(|&l| (3..=6).contains(&l)), "{lengths:?}");
    let real: u64 = lengths.iter().sum();
    let per_step = v["tokens_per_s"].as_f64().unwrap() * v["ms_per_step"].as_f64().unwrap() / 1e3;
    assert!((per_step - real as f64).abs() < 1e-6 * real as f64, "tokens/s counts the real tokens");
}

#[test]
fn bench_times_bidirectional_layers_and_counts_their_flops() {
    let bench = |extra: &[&str]| {
        let args = [&["bench", "gru", "--batch", "4", "--hidden", "8", "--seq", "6", "--steps", "2", "--json"], extra];
        let o = cellc(&args.concat());
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
    };
    let full = ["--first-layer", "full", "--layers", "3"];
    let (one_way, both) = (bench(&full), bench(&[&full[..], &["--bidirectional"]].concat()));
    assert_eq!((both["layers"].as_u64(), both["bidirectional"].as_bool()), (Some(3), Some(true)));
    // Two reverse directions beside three layers: the cells' flops grow by 5/3.
    let output = 3.0 * 2.0 * 24.0 * 8.0 * 64.0;
    let cells = |v: &serde_json::Value| v["peer_flops_per_step"].as_f64().unwrap() - output;
    assert!((cells(&both) / cells(&one_way) - 5.0 / 3.0).abs() < 1e-9, "{one_way} {both}");
    let o = cellc(&["bench", "gru", "--bidirectional", "--steps", "1"]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("--layers 2"));
}
