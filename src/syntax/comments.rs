//! Finds `//` comments and blank lines and attaches them to the AST, so the formatter keeps them.
//!
//! The grammar skips comments; this pass recovers them from the text by position. A comment on its
//! own line leads the statement (or cell) after it; a comment at the end of a statement's last
//! line is that statement's trailing comment. An empty string in a comment list stands for one
//! blank line, so paragraphs of comments survive formatting.

use super::ast::File;

/// A `//` comment: where it starts and its text (with the slashes).
#[derive(Clone, Debug)]
struct Comment {
    start: usize,
    line: usize,
    text: String,
    /// Nothing but whitespace before it on its line.
    own_line: bool,
}

/// Attaches every comment of `text` to `file` (whose spans are offsets into `text`) and marks
/// statements that a blank line separates from the statement before.
pub fn attach(file: &mut File, text: &str) {
    let lines = LineIndex::new(text);
    // Where each statement's leading comments begin, to measure blank lines above them.
    let mut first_comment: Vec<Vec<Option<usize>>> = file.cells.iter().map(|c| vec![None; c.body.len()]).collect();
    for comment in scan(text, &lines) {
        place(file, &comment, &lines, &mut first_comment);
    }
    for (cell, firsts) in file.cells.iter_mut().zip(first_comment) {
        let mut prev_end: Option<usize> = None;
        for (stmt, first) in cell.body.iter_mut().zip(firsts) {
            let top = first.unwrap_or(stmt.span.start as usize);
            if let Some(end) = prev_end {
                stmt.blank_before = lines.blank_between(end, top);
            }
            prev_end = Some(stmt.span.end as usize);
        }
    }
}

fn scan(text: &str, lines: &LineIndex) -> Vec<Comment> {
    let mut out = vec![];
    let mut line_start = 0;
    for line in text.split_inclusive('\n') {
        // The language has no strings, so the first `//` on a line always starts a comment.
        if let Some(col) = line.find("//") {
            let body = &line[col..];
            let is_doc = body.starts_with("///") && !body.starts_with("////");
            if !is_doc {
                let start = line_start + col;
                out.push(Comment {
                    start,
                    line: lines.line_of(start),
                    text: body.trim_end().to_string(),
                    own_line: line[..col].trim().is_empty(),
                });
            }
        }
        line_start += line.len();
    }
    out
}

fn place(file: &mut File, c: &Comment, lines: &LineIndex, first_comment: &mut [Vec<Option<usize>>]) {
    let pos = c.start as u32;
    let Some(ci) = file.cells.iter().position(|cell| pos < cell.span.end) else {
        push_comment(&mut file.trailing_comments, c, lines);
        return;
    };
    let cell = &mut file.cells[ci];
    if pos < cell.span.start {
        push_comment(&mut cell.comments, c, lines);
        return;
    }
    if !c.own_line
        && let Some(stmt) =
            cell.body.iter_mut().find(|s| s.span.end <= pos && lines.line_of(s.span.end as usize) == c.line)
    {
        stmt.trailing_comment = Some(c.text.clone());
        return;
    }
    match cell.body.iter().position(|s| s.span.end > pos) {
        Some(si) => {
            first_comment[ci][si].get_or_insert(c.start);
            push_comment(&mut cell.body[si].comments, c, lines);
        }
        None => {
            // A blank line between the last statement and the closing comments is kept too.
            if cell.end_comments.is_empty() && c.line > 0 && lines.is_blank(c.line - 1) && !cell.body.is_empty() {
                cell.end_comments.push(String::new());
            }
            push_comment(&mut cell.end_comments, c, lines)
        }
    }
}

/// Appends a comment, with `""` markers for a blank line before it (between comments) and after it.
fn push_comment(list: &mut Vec<String>, c: &Comment, lines: &LineIndex) {
    let blank_above = c.line > 0 && lines.is_blank(c.line - 1);
    if blank_above && list.last().is_some_and(|l| !l.is_empty()) {
        list.push(String::new());
    }
    list.push(c.text.clone());
    if lines.is_blank(c.line + 1) {
        list.push(String::new());
    }
}

/// Line starts of a text, for offset-to-line lookups.
struct LineIndex<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    fn new(text: &'a str) -> LineIndex<'a> {
        let starts = std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
        LineIndex { text, starts }
    }

    /// 0-based line of a byte offset.
    fn line_of(&self, offset: usize) -> usize {
        self.starts.partition_point(|&s| s <= offset) - 1
    }

    /// Whether line `line` exists, is not the last (unterminated) line, and holds only whitespace.
    fn is_blank(&self, line: usize) -> bool {
        match (self.starts.get(line), self.starts.get(line + 1)) {
            (Some(&s), Some(&e)) => self.text[s..e].trim().is_empty(),
            _ => false,
        }
    }

    /// Whether a whole blank line lies strictly between the lines of two offsets.
    fn blank_between(&self, from: usize, to: usize) -> bool {
        (self.line_of(from) + 1..self.line_of(to)).any(|l| self.is_blank(l))
    }
}
