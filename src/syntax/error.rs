//! pest errors to diagnostics in the user's words: "expected an expression", not `expected atom`.

use std::collections::BTreeSet;

use pest::error::{ErrorVariant, InputLocation};

use super::parser::Rule;
use crate::diag::{Diagnostic, FileId, Span};

/// Turns a pest failure on `text` (which starts at `offset` in `file`) into one diagnostic.
pub(crate) fn syntax_error(err: &pest::error::Error<Rule>, file: FileId, text: &str, offset: usize) -> Diagnostic {
    let pos = match err.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((s, _)) => s,
    };
    let pos = err.parse_attempts().map_or(pos, |a| a.max_position.max(pos)).min(text.len());
    let rest = &text[pos..];
    let at = |len: usize| Span::new(file, offset + pos, offset + pos + len);

    let line_start = text[..pos].rfind('\n').map_or(0, |i| i + 1);
    let line = &text[line_start..];
    let indent = line.len() - line.trim_start().len();
    if line[indent..].starts_with("///") && !line[indent..].starts_with("////") {
        let start = line_start + indent;
        let len = line[indent..].find('\n').unwrap_or(line.len() - indent);
        return Diagnostic::error("cellc::syntax", "a doc comment must come right before a cell")
            .label(Span::new(file, offset + start, offset + start + len), "`///` describes the cell that follows it")
            .help("use `//` for an ordinary comment");
    }

    let expected = expected_words(err, pos);
    let expected_text = join_words(&expected);
    let Some(ch) = rest.chars().next() else {
        let mut d = Diagnostic::error("cellc::syntax", "unexpected end of file")
            .label(at(0), format!("expected {expected_text}"));
        if let Some(open) = unclosed(text, b'{', b'}') {
            d = d.label(Span::new(file, offset + open, offset + open + 1), "this `{` is never closed");
            d = d.help("add a `}` to end the cell");
        }
        return d;
    };

    if !is_language_char(ch) {
        return Diagnostic::error("cellc::syntax", format!("unexpected character `{}`", ch.escape_debug()))
            .label(at(ch.len_utf8()), "not part of the cell language")
            .help("cells are written with names, numbers, `+ - * /`, parentheses and `=`");
    }

    let token = token_at(rest);
    let shown = match token {
        "\n" | "\r" => "end of line".to_string(),
        " " | "\t" => "space".to_string(),
        t => format!("`{t}`"),
    };
    let mut d = Diagnostic::error("cellc::syntax", format!("unexpected {shown}"))
        .label(at(token.len()), format!("expected {expected_text}"));
    if expected.contains(&"`)`")
        && let Some(open) = unclosed_on_line(text, pos)
    {
        return d
            .label(Span::new(file, offset + open, offset + open + 1), "this `(` is not closed")
            .help("close it with `)`");
    }
    if let Some(help) = hint(&expected, token, &text[..pos]) {
        d = d.help(help);
    }
    d
}

/// What the parser would have accepted at `pos`, in words a user understands, likeliest first.
fn expected_words(err: &pest::error::Error<Rule>, pos: usize) -> Vec<&'static str> {
    let mut words = BTreeSet::new();
    let attempts = err.parse_attempts();
    if let Some(a) = &attempts {
        for token in a.expected_tokens() {
            // The token type is private to pest; its Display is the literal text.
            words.extend(describe_token(&token.to_string()));
        }
    }
    // pest's positives belong to its error location, which can lie before the furthest attempt.
    let location = match err.location {
        InputLocation::Pos(p) | InputLocation::Span((p, _)) => p,
    };
    if location == pos
        && let ErrorVariant::ParsingError { positives, .. } = &err.variant
    {
        words.extend(positives.iter().filter_map(|r| describe(*r)));
    }
    if words.is_empty()
        && let Some(a) = &attempts
    {
        words.extend(a.call_stacks().iter().filter_map(|s| s.deepest.get_rule().and_then(|r| describe(*r))));
    }
    let mut words: Vec<&'static str> = words.into_iter().collect();
    words.sort_by_key(|w| ORDER.iter().position(|o| o == w).unwrap_or(ORDER.len()));
    words
}

const EXPRESSION: &str = "an expression";
const STATEMENT: &str = "a statement (`state`, `output`, `init` or an equation)";
const END_OF_LINE: &str = "the end of the line";
/// Display order: the likeliest fix first.
const ORDER: &[&str] = &[
    "an operator",
    "`'`",
    "`=`",
    EXPRESSION,
    "`)`",
    "`,`",
    END_OF_LINE,
    "`{`",
    "`}`",
    STATEMENT,
    "`with`",
    "a name",
    "a number",
    "an init value (a number or a scheme such as `uniform`)",
    "`cell`",
    "end of file",
];

/// The phrase for a grammar rule, or `None` for rules too small or internal to mention.
fn describe(rule: Rule) -> Option<&'static str> {
    Some(match rule {
        Rule::expr | Rule::product | Rule::factor | Rule::paren | Rule::negations => EXPRESSION,
        Rule::add_op | Rule::mul_op | Rule::plus | Rule::minus | Rule::times | Rule::divide => "an operator",
        Rule::number => "a number",
        Rule::name | Rule::target => "a name",
        Rule::prime => "`'`",
        Rule::state_decl | Rule::output_decl | Rule::init_decl | Rule::equation => STATEMENT,
        Rule::init_value | Rule::scheme => "an init value (a number or a scheme such as `uniform`)",
        Rule::cell | Rule::kw_cell | Rule::doc => "`cell`",
        Rule::kw_with => "`with`",
        Rule::body => "`{`",
        Rule::EOI => "end of file",
        _ => return None,
    })
}

/// The phrase for a literal token the grammar tried; whitespace and name characters say nothing.
fn describe_token(token: &str) -> Option<&'static str> {
    Some(match token {
        "=" => "`=`",
        ")" => "`)`",
        "{" => "`{`",
        "}" => "`}`",
        "," => "`,`",
        "'" => "`'`",
        // A line break is also allowed around operators; `;` says a statement may end here.
        ";" => END_OF_LINE,
        "+" | "*" | "/" => "an operator",
        "with" => "`with`",
        "cell" => "`cell`",
        _ => return None,
    })
}

fn join_words(words: &[&str]) -> String {
    match words {
        [] => "something else".to_string(),
        [one] => one.to_string(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// A fix for the mistakes people make most.
fn hint(expected: &[&str], token: &str, before: &str) -> Option<String> {
    let prev_word = before.trim_end().rsplit(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).next().unwrap_or("");
    let starts_operand = token.starts_with(|c: char| c.is_alphanumeric() || c == '_' || c == '(' || c == '.');
    if token == "^" {
        return Some("there is no power operator; write `a*a`".into());
    }
    if expected.contains(&"an operator") && starts_operand {
        if super::is_builtin(prev_word) && before.ends_with(char::is_whitespace) {
            return Some(format!("call a function with parentheses: `{prev_word}(...)`"));
        }
        return Some("products need an explicit `*`: write `W*h`, not `W h`".into());
    }
    if expected.contains(&EXPRESSION) && before.trim_end().ends_with('=') {
        return Some("an equation needs a right-hand side".into());
    }
    if expected.contains(&"`{`") {
        return Some("a cell is written `cell NAME { ... }` or `cell NAME = BASE with { ... }`".into());
    }
    None
}

/// The offending token: a name or number, or one punctuation character.
fn token_at(rest: &str) -> &str {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '.';
    let end = if rest.starts_with(is_word) {
        rest.find(|c: char| !is_word(c)).unwrap_or(rest.len())
    } else {
        rest.chars().next().map_or(0, char::len_utf8)
    };
    &rest[..end]
}

/// Characters that can appear in a valid `.cell` file outside comments.
fn is_language_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c.is_ascii_whitespace() || "_+-*/(){}=,;'.".contains(c)
}

/// The innermost `(` before `pos` that nothing up to the end of the line closes. A `(` closed
/// later on the line is not the problem (`tanh(W h)` lacks a `*`, not a `)`).
fn unclosed_on_line(text: &str, pos: usize) -> Option<usize> {
    let mut open = vec![];
    let mut rest = &text[..pos];
    while let Some(p) = unclosed(rest, b'(', b')') {
        open.push(p);
        rest = &text[..p];
    }
    let line_end = text[pos..].find('\n').map_or(text.len(), |i| pos + i);
    let code = text[pos..line_end].split("//").next().unwrap_or("");
    let mut depth = 0i64;
    let mut closed = 0usize;
    for b in code.bytes() {
        match b {
            b'(' => depth += 1,
            b')' if depth > 0 => depth -= 1,
            b')' => closed += 1,
            _ => {}
        }
    }
    open.get(closed).copied()
}

/// The position of the last `open` that has no matching `close` (outside comments).
fn unclosed(text: &str, open: u8, close: u8) -> Option<usize> {
    let mut stack = vec![];
    let mut in_comment = false;
    let bytes = text.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'\n' => in_comment = false,
            _ if in_comment => {}
            b'/' if bytes.get(i + 1) == Some(&b'/') => in_comment = true,
            _ if b == open => stack.push(i),
            _ if b == close => {
                stack.pop();
            }
            _ => {}
        }
    }
    stack.pop()
}
