//! The teaching examples cannot rot: each checks with no diagnostic at all, is in canonical form,
//! and is walked through in `examples/README.md`.

mod support;

use cellc::syntax::{self, print};

#[test]
fn examples_check_cleanly_are_canonical_and_documented() {
    let readme = std::fs::read_to_string("examples/README.md").unwrap();
    let examples = support::fixtures("examples", "cell");
    assert!(examples.len() >= 5, "expected at least five examples");
    for (name, path) in examples {
        let text = std::fs::read_to_string(&path).unwrap();
        let (ws, checked) = support::check_text(&format!("examples/{name}.cell"), &text);
        assert!(checked.diagnostics.is_empty(), "{name}:\n{}", support::render(&ws, &checked));
        assert!(!checked.cells.is_empty(), "{name}: no cells");
        let (ast, _) = syntax::parse(checked.file, &text);
        assert_eq!(print::file(&ast), text, "examples/{name}.cell is not in canonical form (run cellc fmt --write)");
        assert!(readme.contains(&format!("`{name}.cell`")), "examples/README.md does not mention {name}.cell");
    }
}
