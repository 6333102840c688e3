//! Progress for people: one status line on stderr that a terminal redraws in place (and a log
//! gets as separate lines only when asked), a bar, and a clock.

use std::io::{IsTerminal, Write};
use std::time::Instant;

/// A status line on stderr.
pub struct StatusLine {
    tty: bool,
    last_draw: Option<Instant>,
}

impl StatusLine {
    pub fn new() -> StatusLine {
        StatusLine { tty: std::io::stderr().is_terminal(), last_draw: None }
    }

    /// Whether stderr is a terminal (the line is redrawn in place).
    pub fn is_tty(&self) -> bool {
        self.tty
    }

    /// Redraws the line on a terminal, at most ten times a second; elsewhere, nothing.
    pub fn draw(&mut self, line: &str) {
        if !self.tty || self.last_draw.is_some_and(|t| t.elapsed().as_millis() < 100) {
            return;
        }
        self.last_draw = Some(Instant::now());
        self.show(line);
    }

    /// Replaces the line on a terminal now (no rate limit), cut to 160 characters.
    pub fn show(&mut self, line: &str) {
        if self.tty {
            eprint!("\r\x1b[2K{}", line.chars().take(160).collect::<String>());
            let _ = std::io::stderr().flush();
        }
    }

    /// Replaces the line on a terminal; elsewhere, prints it as a line of the log.
    pub fn show_or_log(&mut self, line: &str) {
        if self.tty {
            self.show(line);
        } else {
            eprintln!("{line}");
        }
    }

    /// Clears the line on a terminal.
    pub fn clear(&mut self) {
        if self.tty {
            eprint!("\r\x1b[2K");
            let _ = std::io::stderr().flush();
        }
    }
}

/// `[=====>      ]` for a fraction done.
pub fn bar(progress: f64, width: usize) -> String {
    let p = progress.clamp(0.0, 1.0);
    let filled = (p * width as f64) as usize;
    (0..width)
        .map(|i| {
            if i < filled {
                '='
            } else if i == filled {
                '>'
            } else {
                ' '
            }
        })
        .collect()
}

/// Seconds as `m:ss` (minutes grow past 59).
pub fn clock(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    format!("{}:{:02}", s / 60, s % 60)
}
