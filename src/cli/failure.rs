//! The one error type of every command: a one-line message to print, or a failure already
//! reported (diagnostics on stderr). `cli::main` turns it into `error: ...` and exit code 1.

use std::process::ExitCode;

/// Why a command failed.
#[derive(Debug)]
pub enum Failure {
    /// Printed as `error: <message>`.
    Message(String),
    /// Already reported (the cell's diagnostics are on stderr); nothing more to print.
    Reported,
}

impl From<String> for Failure {
    fn from(message: String) -> Failure {
        Failure::Message(message)
    }
}

impl From<&str> for Failure {
    fn from(message: &str) -> Failure {
        Failure::Message(message.to_string())
    }
}

/// What a command returns: its exit code (0, or 1 for "checked and found wanting", such as
/// `cellc check` on a cell with errors), or a failure.
pub type Outcome = Result<ExitCode, Failure>;
