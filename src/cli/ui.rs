//! Terminal output: diagnostics rendering (colour and width), one-line failures, the panic banner.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use crate::diag::{self, Diagnostic, RenderStyle, Sources};

/// `--color`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// How this run prints.
pub struct Ui {
    color: bool,
    width: usize,
}

impl Ui {
    pub fn new(choice: ColorChoice) -> Ui {
        let color = match choice {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        };
        let width = std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()).unwrap_or(100);
        Ui { color, width }
    }

    /// Whether diagnostics are coloured.
    pub fn color(&self) -> bool {
        self.color
    }

    /// Prints diagnostics to stderr as miette reports.
    pub fn diagnostics(&self, sources: &Sources, diags: &[Diagnostic]) {
        let style = RenderStyle { color: self.color, unicode: true, width: self.width };
        let mut err = std::io::stderr().lock();
        for d in diags {
            let _ = write!(err, "{}", diag::render(d, sources, style));
        }
    }

    /// Prints `error: message` to stderr and returns exit code 1.
    pub fn fail(&self, message: impl std::fmt::Display) -> ExitCode {
        self.error(message);
        ExitCode::from(1)
    }

    /// Prints `error: message` to stderr.
    pub fn error(&self, message: impl std::fmt::Display) {
        let _ = writeln!(std::io::stderr(), "error: {message}");
    }
}

/// Turns a panic into an "internal error" banner that asks for a report, instead of a bare trace.
pub fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        eprintln!("\ninternal error: cellc crashed. This is a bug in cellc, not in your input.");
        eprintln!("Please report it with the command you ran and the files it read.\n");
        default(info);
    }));
}
