//! Text to AST. Knows nothing about meaning: names are unresolved, shapes unknown.
//!
//! [`parse`] parses a file cell by cell, so one syntax error per cell is reported and the other
//! cells still parse; [`print`] is the one printer that turns an AST back into canonical text.

pub mod ast;
mod comments;
mod error;
mod functions;
pub mod guard;
mod parser;
pub mod print;

pub use functions::{Func, Reduction, Stochastic, builtin_names, is_builtin};

use std::sync::Once;

use crate::diag::{Diagnostic, FileId};
use parser::{Builder, Rule, parse_rule};

/// Parses a whole file. Returns the cells that parsed and a diagnostic for each that did not.
pub fn parse(file: FileId, text: &str) -> (ast::File, Vec<Diagnostic>) {
    enable_error_detail();
    let mut out = ast::File { cells: vec![], trailing_comments: vec![] };
    if let Err(d) = guard::check_nesting(file, text, 0) {
        return (out, vec![d]);
    }
    let mut diags = vec![];
    for (start, end) in cell_chunks(text) {
        let chunk = &text[start..end];
        let builder = Builder { file, offset: start };
        match parse_rule(Rule::file, chunk) {
            Ok(mut pairs) => out.cells.extend(builder.cells(pairs.next().expect("pest: file pair"))),
            Err(e) => diags.push(error::syntax_error(&e, file, chunk, start)),
        }
    }
    comments::attach(&mut out, text);
    (out, diags)
}

/// Parses one statement, as typed at the REPL.
pub fn parse_stmt(file: FileId, text: &str) -> Result<ast::Stmt, Diagnostic> {
    enable_error_detail();
    guard::check_nesting(file, text, 0)?;
    let mut pairs = parse_rule(Rule::stmt_only, text).map_err(|e| error::syntax_error(&e, file, text, 0))?;
    let stmt_only = pairs.next().expect("pest: stmt_only pair");
    let stmt = stmt_only.into_inner().next().expect("grammar: statement");
    Ok(Builder { file, offset: 0 }.stmt(stmt))
}

/// Parses one expression, as typed at the REPL.
pub fn parse_expr(file: FileId, text: &str) -> Result<ast::Expr, Diagnostic> {
    enable_error_detail();
    guard::check_nesting(file, text, 0)?;
    let mut pairs = parse_rule(Rule::expr_only, text).map_err(|e| error::syntax_error(&e, file, text, 0))?;
    let expr_only = pairs.next().expect("pest: expr_only pair");
    Ok(Builder { file, offset: 0 }.expr(expr_only.into_inner().next().expect("grammar: expression")))
}

/// Whether `text` is a start of a cell definition whose braces are not yet balanced, so a REPL
/// should read another line before parsing.
pub fn is_incomplete(text: &str) -> bool {
    let mut depth = 0i64;
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        depth += code.matches('{').count() as i64 - code.matches('}').count() as i64;
    }
    depth > 0
}

/// Pest's detailed error tracking gives the literal tokens it expected (`}`, `=`), not just rules.
fn enable_error_detail() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| pest::set_error_detail(true));
}

/// Splits a file into pieces that each hold one cell (with its doc and comment lines above it).
/// `cell` is a keyword, so a line starting with it always starts a new cell: the split needs no
/// brace matching and still works when an earlier cell is missing its `}`.
fn cell_chunks(text: &str) -> Vec<(usize, usize)> {
    let mut starts = vec![0];
    let mut run_start: Option<usize> = None; // start of the doc/comment/blank lines just above
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        let t = line.trim_start();
        let starts_cell =
            t.strip_prefix("cell").is_some_and(|r| !r.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_'));
        if starts_cell {
            let at = run_start.unwrap_or(pos);
            if at > 0 {
                starts.push(at);
            }
            run_start = None;
        } else if t.is_empty() || t.starts_with("//") {
            run_start.get_or_insert(pos);
        } else {
            run_start = None;
        }
        pos += line.len();
    }
    starts.dedup();
    let ends = starts.iter().skip(1).copied().chain(std::iter::once(text.len()));
    starts.iter().copied().zip(ends).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_start_at_cells_and_keep_docs_above() {
        let text = "// intro\ncell a { state h }\n\n/// doc\ncell b { state h\ncell c {}\n";
        let chunks: Vec<&str> = cell_chunks(text).into_iter().map(|(s, e)| &text[s..e]).collect();
        assert_eq!(chunks, ["// intro\ncell a { state h }\n", "\n/// doc\ncell b { state h\n", "cell c {}\n"]);
    }

    #[test]
    fn incomplete_while_braces_open() {
        assert!(is_incomplete("cell a {\n state h"));
        assert!(!is_incomplete("cell a {\n state h }"));
        assert!(!is_incomplete("r = sigm(h) // {"));
    }
}
