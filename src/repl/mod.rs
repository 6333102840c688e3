//! The REPL's logic: a [`Session`] and a function from (session, input) to output. No terminal
//! here: the thin shell in `cli::repl` reads lines and prints replies, and transcript tests drive
//! the same function directly.
//!
//! An input is a `:command`, `let NAME = VALUE`, a whole `cell ... { }` definition (possibly over
//! several lines), one statement of the current cell (`z = sigm(W*x)`, `state c`, `init b = 1`),
//! or an expression to evaluate on the current cell.

mod commands;
pub mod complete;
mod draft;
mod sample;
pub mod values;

use crate::check::Cell;
use crate::diag::{Diagnostic, RenderStyle};
use crate::syntax::{self, ast::CellDef, print};
use crate::workspace::Workspace;
use values::Values;

/// What the session needs from whoever runs it during a long command (`:train`).
pub trait Host {
    /// A status line that replaces the previous one (a progress bar).
    fn status(&mut self, line: &str);
    /// A line to keep (a validation result), printed as it happens.
    fn line(&mut self, line: &str);
    /// Whether the user asked to stop (Ctrl-C).
    fn interrupted(&self) -> bool;
}

/// A host that keeps kept lines in order and never interrupts: for scripts and tests.
#[derive(Default)]
pub struct Collect {
    pub lines: Vec<String>,
}

impl Host for Collect {
    fn status(&mut self, _: &str) {}
    fn line(&mut self, line: &str) {
        self.lines.push(line.to_string());
    }
    fn interrupted(&self) -> bool {
        false
    }
}

/// The answer to one input.
#[derive(Debug, Default, PartialEq)]
pub struct Reply {
    pub text: String,
    /// The input failed (a diagnostic or a one-line error); scripts stop here.
    pub error: bool,
    /// `:quit`.
    pub quit: bool,
}

impl Reply {
    fn ok(text: impl Into<String>) -> Reply {
        Reply { text: text.into(), ..Reply::default() }
    }
    fn err(text: impl Into<String>) -> Reply {
        Reply { text: text.into(), error: true, quit: false }
    }
}

/// Everything a session remembers between inputs.
pub struct Session {
    ws: Workspace,
    /// The cell being sketched, as written.
    draft: Option<CellDef>,
    /// The draft checked, when it has no errors.
    checked: Option<Cell>,
    /// Cells defined or loaded in this session, by name (a draft may derive from them).
    defs: Vec<CellDef>,
    values: Values,
    style: RenderStyle,
    /// Threads for `:train` (tests pin 1 so numbers do not depend on the machine).
    pub threads: usize,
    /// The model the last `:train` made (its best parameters), for `:sample`.
    trained: Option<sample::TrainedModel>,
}

impl Session {
    pub fn new(style: RenderStyle) -> Session {
        Session {
            ws: Workspace::new(),
            draft: None,
            checked: None,
            defs: vec![],
            values: Values::default(),
            style,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            trained: None,
        }
    }

    /// The prompt: the current cell's name, with `*` while it has errors.
    pub fn prompt(&self) -> String {
        match (&self.draft, &self.checked) {
            (None, _) => "cellc> ".into(),
            (Some(d), Some(_)) => format!("{}> ", d.name.name),
            (Some(d), None) => format!("{}*> ", d.name.name),
        }
    }

    /// Whether `text` needs more lines before it can run (a cell's braces are still open).
    pub fn needs_more(text: &str) -> bool {
        syntax::is_incomplete(text)
    }

    /// Runs one complete input (one line, or the lines of a cell definition).
    pub fn execute(&mut self, input: &str, host: &mut dyn Host) -> Reply {
        let trimmed = input.trim();
        if trimmed.is_empty() || trimmed.starts_with("//") {
            return Reply::default();
        }
        if let Some(cmd) = trimmed.strip_prefix(':') {
            return commands::run(self, cmd, host);
        }
        if let Some(rest) = trimmed.strip_prefix("let ") {
            return match self.values.assign(rest) {
                Ok(msg) => Reply::ok(msg),
                Err(e) => Reply::err(format!("error: {e}")),
            };
        }
        if starts_cell(trimmed) {
            return self.define(input);
        }
        self.statement_or_expression(input)
    }

    /// The name of a typed input in diagnostics: `[input:1:5]` is line 1, column 5 of it.
    fn source_name(&self) -> String {
        "input".into()
    }

    fn render(&self, diags: &[Diagnostic]) -> String {
        crate::diag::render_all(diags, &self.ws.sources, self.style).trim_end().to_string()
    }

    /// `cell NAME { ... }` typed in full: every cell in it is remembered, the last becomes current.
    fn define(&mut self, input: &str) -> Reply {
        let file = self.ws.add(self.source_name(), input);
        let (ast, diags) = syntax::parse(file, input);
        if !diags.is_empty() {
            return Reply::err(self.render(&diags));
        }
        let Some(last) = ast.cells.last().cloned() else {
            return Reply::err("error: no cell in that input");
        };
        for def in &ast.cells {
            self.remember(def.clone());
        }
        self.draft = Some(last);
        self.recheck(Some(input))
    }

    /// Keeps `def` among the session's cells, replacing one of the same name.
    fn remember(&mut self, def: CellDef) {
        self.defs.retain(|d| d.name.name != def.name.name);
        self.defs.push(def);
    }

    /// A statement edits the current cell; anything else is evaluated as an expression.
    fn statement_or_expression(&mut self, input: &str) -> Reply {
        let file = self.ws.add(self.source_name(), input);
        let stmt = match syntax::parse_stmt(file, input) {
            Ok(s) => s,
            Err(stmt_err) => {
                return match syntax::parse_expr(file, input) {
                    Ok(e) => commands::evaluate_expression(self, &e),
                    // An `=` means the user meant a statement: report that parse.
                    Err(expr_err) => Reply::err(self.render(&[if input.contains('=') { stmt_err } else { expr_err }])),
                };
            }
        };
        let known = self.base_states();
        let draft = self.draft.get_or_insert_with(|| draft::empty(draft::SKETCH));
        let edit = draft::apply(draft, stmt, &known);
        let mut reply = self.recheck(None);
        if reply.error {
            reply.text.push_str(
                "\n(kept in the cell: `:show` shows it; type the statement again to replace it, or `:drop NAME`)",
            );
        } else if edit == draft::Edit::Replaced {
            prefix_last_line(&mut reply.text, "replaced; ");
        }
        reply
    }

    /// The states of the draft's base cell, which the draft need not declare.
    fn base_states(&self) -> Vec<String> {
        let has_base = self.draft.as_ref().is_some_and(|d| d.base.is_some());
        match (&self.checked, has_base) {
            (Some(c), true) => c.states.iter().map(|s| s.name.clone()).collect(),
            _ => vec![],
        }
    }

    /// Checks the draft (with the session cells it derives from). `typed` is the text the user
    /// typed when it is the whole definition, so diagnostics point into what they wrote.
    fn recheck(&mut self, typed: Option<&str>) -> Reply {
        let Some(def) = self.draft.clone() else {
            self.checked = None;
            return Reply::ok("");
        };
        let text = self.file_text(&def, typed);
        let (checked, diags) = self.check_text(&text, &def.name.name);
        self.checked = checked;
        let mut out = self.render(&diags);
        let error = self.checked.is_none();
        if let Some(c) = &self.checked {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(&c.signature());
        }
        Reply { text: out, error, quit: false }
    }

    /// A file holding `def` (as typed, or printed) and the session cells it derives from.
    fn file_text(&self, def: &CellDef, typed: Option<&str>) -> String {
        let mut text = typed.map_or_else(|| print::cell(def), str::to_string);
        let mut base = def.base.as_ref().map(|b| b.name.clone());
        let mut seen = vec![def.name.name.clone()];
        while let Some(b) = base.take() {
            if seen.contains(&b) {
                break;
            }
            if let Some(d) = self.defs.iter().find(|d| d.name.name == b) {
                text.push('\n');
                text.push_str(&print::cell(d));
                base = d.base.as_ref().map(|x| x.name.clone());
            }
            seen.push(b);
        }
        text
    }

    /// Parses and checks a text; returns the cell `name` if it is valid, and the diagnostics.
    fn check_text(&mut self, text: &str, name: &str) -> (Option<Cell>, Vec<Diagnostic>) {
        // Diagnostics name the cell: `[gru:10:5]` is line 10 of what `:show` prints.
        let file = self.ws.add(name, text);
        let checked = self.ws.check(file);
        let cell = if checked.has_errors() { None } else { checked.cells.iter().find(|c| c.name == name).cloned() };
        (cell, checked.diagnostics)
    }

    /// The words completion offers beyond commands and functions: the current cell's names and
    /// the session's cells.
    pub fn vocabulary(&self) -> Vec<String> {
        let mut words: Vec<String> = self.defs.iter().map(|d| d.name.name.clone()).collect();
        if let Some(d) = &self.draft {
            words.extend(draft::names(d));
        }
        if let Some(c) = &self.checked {
            words.extend(c.params.iter().map(|p| p.name.clone()));
            words.extend(c.states.iter().map(|s| s.name.clone()));
        }
        words.sort();
        words.dedup();
        words
    }

    /// Runs a script the way `cellc repl < FILE` does and returns the transcript: each input
    /// line after `> ` (continuation lines after `. `), then its output. Stops after the first
    /// error when `stop_on_error`.
    pub fn transcript(&mut self, script: &str, stop_on_error: bool) -> (String, bool) {
        let mut out = String::new();
        let mut pending = String::new();
        let mut failed = false;
        for line in script.lines() {
            out.push_str(if pending.is_empty() { "> " } else { ". " });
            out.push_str(line);
            out.push('\n');
            pending.push_str(line);
            pending.push('\n');
            if Session::needs_more(&pending) {
                continue;
            }
            let mut host = Collect::default();
            let reply = self.execute(&std::mem::take(&mut pending), &mut host);
            for l in host.lines.iter().map(String::as_str).chain(reply.text.lines()) {
                out.push_str(l.trim_end());
                out.push('\n');
            }
            failed |= reply.error;
            if reply.quit || (reply.error && stop_on_error) {
                return (out, failed);
            }
        }
        if !pending.is_empty() {
            out.push_str("error: the input ended inside a cell definition (a `}` is missing)\n");
            failed = true;
        }
        (out, failed)
    }
}

/// Puts `prefix` before the last line of `text` (the cell's signature, after any warnings).
fn prefix_last_line(text: &mut String, prefix: &str) {
    let at = text.rfind('\n').map_or(0, |i| i + 1);
    text.insert_str(at, prefix);
}

/// `cell` as the first word.
fn starts_cell(text: &str) -> bool {
    text.strip_prefix("cell").is_some_and(|r| r.starts_with(char::is_whitespace))
}
