//! `cellc repl`: the thin terminal shell around [`crate::repl::Session`]: line editing, history,
//! completion and Ctrl-C on a terminal; a script runner when stdin is not one.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use rustyline::completion::Completer;
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Context, Editor, Helper};

use super::failure::Outcome;
use super::interrupt::{self, catch_ctrl_c};
use super::ui::Ui;
use crate::diag::RenderStyle;
use crate::repl::{Host, Session, complete};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A cell to start with: a .cell file (FILE:NAME for one of several) or a standard cell.
    #[arg(value_name = "CELL")]
    cell: Option<String>,
}

/// Prints kept lines at once and redraws a status line on stderr.
struct Terminal {
    /// Whether stderr is a terminal (status lines are drawn only there).
    tty: bool,
    status_shown: bool,
}

impl Host for Terminal {
    fn status(&mut self, line: &str) {
        if !self.tty {
            return;
        }
        eprint!("\r\x1b[2K{line}");
        let _ = std::io::stderr().flush();
        self.status_shown = true;
    }
    fn line(&mut self, line: &str) {
        if self.status_shown {
            eprint!("\r\x1b[2K");
            self.status_shown = false;
        }
        println!("{line}");
    }
    fn interrupted(&self) -> bool {
        interrupt::interrupted()
    }
}

/// Completion and multi-line input for the line editor.
struct ReplHelper {
    words: Vec<String>,
}

impl Completer for ReplHelper {
    type Candidate = String;
    fn complete(&self, line: &str, pos: usize, _: &Context<'_>) -> rustyline::Result<(usize, Vec<String>)> {
        Ok(complete::complete(line, pos, &self.words))
    }
}

impl Hinter for ReplHelper {
    type Hint = String;
}

impl Highlighter for ReplHelper {}

impl Validator for ReplHelper {
    fn validate(&self, ctx: &mut ValidationContext<'_>) -> rustyline::Result<ValidationResult> {
        Ok(if Session::needs_more(ctx.input()) { ValidationResult::Incomplete } else { ValidationResult::Valid(None) })
    }
}

impl Helper for ReplHelper {}

/// `$CELLC_HISTORY`, else `$XDG_STATE_HOME/cellc/history`, else `~/.local/state/cellc/history`.
fn history_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CELLC_HISTORY") {
        return Some(PathBuf::from(p));
    }
    let state = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local").join("state")))?;
    Some(state.join("cellc").join("history"))
}

pub fn run(ui: &Ui, args: Args) -> Outcome {
    let width = std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()).unwrap_or(100);
    let mut session = Session::new(RenderStyle { color: ui.color(), unicode: true, width });
    if std::io::stdin().is_terminal() {
        interactive(session, args.cell.as_deref())
    } else {
        let mut script = String::new();
        std::io::stdin().read_to_string(&mut script).map_err(|e| format!("cannot read the script from stdin: {e}"))?;
        if let Some(cell) = &args.cell {
            script = format!(":load {cell}\n{script}");
        }
        Ok(run_script(&mut session, &script))
    }
}

/// Runs stdin line by line; output to stdout, the first error to stderr and exit status 1.
fn run_script(session: &mut Session, script: &str) -> ExitCode {
    catch_ctrl_c();
    let mut pending = String::new();
    let mut host = Terminal { tty: std::io::stderr().is_terminal(), status_shown: false };
    for (n, line) in script.lines().enumerate() {
        pending.push_str(line);
        pending.push('\n');
        if Session::needs_more(&pending) {
            continue;
        }
        let reply = session.execute(&std::mem::take(&mut pending), &mut host);
        if reply.error {
            eprintln!("{}", reply.text);
            eprintln!("error: the script stopped at line {}", n + 1);
            return ExitCode::from(1);
        }
        if !reply.text.is_empty() {
            println!("{}", reply.text);
        }
        if reply.quit {
            return ExitCode::SUCCESS;
        }
    }
    if !pending.trim().is_empty() {
        eprintln!("error: the script ended inside a cell definition (a `}}` is missing)");
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

fn interactive(mut session: Session, cell: Option<&str>) -> Outcome {
    let config = rustyline::Config::builder()
        .max_history_size(1000)
        .and_then(|c| c.history_ignore_dups(true))
        .map(|c| c.auto_add_history(false).build());
    let editor = config.and_then(Editor::<ReplHelper, DefaultHistory>::with_config);
    let mut editor = editor.map_err(|e| format!("cannot start the line editor: {e}"))?;
    editor.set_helper(Some(ReplHelper { words: session.vocabulary() }));
    let history = history_path();
    if let Some(p) = &history {
        // A missing history file is the first session, not an error.
        let _ = editor.load_history(p);
    }
    catch_ctrl_c();
    println!("cellc {} REPL. `:help` lists commands; Tab completes; Ctrl-D leaves.", env!("CARGO_PKG_VERSION"));
    let mut host = Terminal { tty: std::io::stderr().is_terminal(), status_shown: false };
    if let Some(c) = cell {
        show(&session.execute(&format!(":load {c}"), &mut host).text);
    }
    loop {
        let line = match editor.readline(&session.prompt()) {
            Ok(l) => l,
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(format!("cannot read input: {e}").into()),
        };
        if !line.trim().is_empty() {
            let _ = editor.add_history_entry(line.as_str());
            if let Some(p) = &history {
                save_history(&mut editor, p);
            }
        }
        interrupt::clear();
        let reply = session.execute(&line, &mut host);
        if host.status_shown {
            eprint!("\r\x1b[2K");
            host.status_shown = false;
        }
        show(&reply.text);
        if reply.quit {
            break;
        }
        if let Some(h) = editor.helper_mut() {
            h.words = session.vocabulary();
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn show(text: &str) {
    if !text.is_empty() {
        println!("{text}");
    }
}

fn save_history(editor: &mut Editor<ReplHelper, DefaultHistory>, path: &std::path::Path) {
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    // History is a convenience: a read-only home must not end the session.
    let _ = editor.save_history(path);
}
