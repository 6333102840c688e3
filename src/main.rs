//! The `cellc` binary: everything lives in the library's `cli` module.

fn main() -> std::process::ExitCode {
    cellc::cli::main()
}
