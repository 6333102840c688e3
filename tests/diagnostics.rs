//! Golden tests of rendered diagnostics: every `tests/data/diag/NAME.cell` is checked and all its
//! diagnostics, rendered in the fixed plain style (no colour, width 80), must equal `NAME.txt`.
//! Bless changes with `UPDATE_EXPECT=1 cargo test --test diagnostics`.

mod support;

use expect_test::expect_file;

#[test]
fn rendered_diagnostics_match_goldens() {
    let cases = support::fixtures("tests/data/diag", "cell");
    assert!(cases.len() >= 30, "fixtures missing: {}", cases.len());
    for (name, path) in cases {
        let text = std::fs::read_to_string(&path).unwrap();
        let (ws, checked) = support::check_text(&format!("tests/data/diag/{name}.cell"), &text);
        assert!(!checked.diagnostics.is_empty(), "{name}: expected at least one diagnostic");
        expect_file![path.with_extension("txt")].assert_eq(&support::render(&ws, &checked));
    }
}

/// Every error kind the checker promises has at least one golden case.
#[test]
fn every_error_code_is_covered() {
    let mut seen = std::collections::BTreeSet::new();
    for (name, path) in support::fixtures("tests/data/diag", "cell") {
        let text = std::fs::read_to_string(&path).unwrap();
        let (_, checked) = support::check_text(&name, &text);
        seen.extend(checked.diagnostics.iter().map(|d| d.code));
    }
    for code in [
        "cellc::syntax",
        "cellc::too_deep",
        "cellc::unknown_function",
        "cellc::undefined_name",
        "cellc::function_as_value",
        "cellc::missing_next_state",
        "cellc::undeclared_state",
        "cellc::no_state",
        "cellc::duplicate",
        "cellc::cycle",
        "cellc::shape_conflict",
        "cellc::matrix_elementwise",
        "cellc::unused",
        "cellc::maybe_typo",
        "cellc::reserved_name",
        "cellc::state_without_prime",
        "cellc::unknown_base",
        "cellc::unknown_equation",
        "cellc::derived_state",
        "cellc::bad_init",
    ] {
        assert!(seen.contains(code), "no golden case produces {code}");
    }
}

/// A syntax error in one cell does not hide the other cells: the good one still checks.
#[test]
fn one_syntax_error_per_cell() {
    let text = std::fs::read_to_string("tests/data/diag/syntax_one_error_per_cell.cell").unwrap();
    let (_, checked) = support::check_text("x.cell", &text);
    let syntax = checked.diagnostics.iter().filter(|d| d.code == "cellc::syntax").count();
    assert_eq!(syntax, 2);
    assert_eq!(checked.cells.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["good"]);
}
