//! Argument groups several commands share (flattened into their clap structs), so a flag means
//! the same thing and reads the same in every `--help`; and the `--task` value parser, whose
//! values and their help come from `TaskKind::ALL`.

use std::path::PathBuf;

use clap::builder::{PossibleValue, TypedValueParser};

use crate::tasks::TaskKind;

/// One cell.
#[derive(clap::Args, Debug)]
pub struct CellArg {
    /// A .cell file (FILE:NAME for one of several cells) or a standard cell name (`cellc list`).
    #[arg(value_name = "CELL")]
    pub cell: String,
}

/// Where the real data sets are.
#[derive(clap::Args, Debug, Default)]
pub struct DataArg {
    /// The data directory (default: $CELLC_DATA, then ../shared/data beside the checkout); for
    /// the text task, a UTF-8 text file also works (default: tiny-shakespeare in the directory).
    #[arg(long, value_name = "PATH")]
    pub data: Option<PathBuf>,
}

/// Threads of a run.
#[derive(clap::Args, Debug, Default)]
pub struct ThreadsArg {
    /// Threads (default: all cores). The same seed and thread count give the same numbers.
    #[arg(long)]
    pub threads: Option<usize>,
}

impl ThreadsArg {
    /// The thread count: the flag, else every core.
    pub fn get(&self) -> usize {
        self.threads.unwrap_or_else(cores).max(1)
    }
}

/// The machine's cores.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A cell's sizes.
#[derive(clap::Args, Debug)]
pub struct ShapeArgs {
    /// Hidden size H.
    #[arg(long)]
    pub hidden: usize,
    /// Input size D (default: H).
    #[arg(long)]
    pub input: Option<usize>,
}

/// Parses `--task` values: the task names, each listed with its one-line description.
#[derive(Clone, Debug)]
pub struct TaskParser;

impl TypedValueParser for TaskParser {
    type Value = TaskKind;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<TaskKind, clap::Error> {
        let name = value.to_string_lossy();
        TaskKind::parse(&name).map_err(|_| {
            let mut err = clap::Error::new(clap::error::ErrorKind::InvalidValue).with_cmd(cmd);
            let flag = arg.map_or("--task".to_string(), |a| a.to_string());
            err.insert(clap::error::ContextKind::InvalidArg, clap::error::ContextValue::String(flag));
            err.insert(clap::error::ContextKind::InvalidValue, clap::error::ContextValue::String(name.to_string()));
            let all = TaskKind::ALL.iter().map(|k| k.name().to_string()).collect();
            err.insert(clap::error::ContextKind::ValidValue, clap::error::ContextValue::Strings(all));
            err
        })
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(TaskKind::ALL.into_iter().map(|k| PossibleValue::new(k.name()).help(k.about()))))
    }
}

/// A length of time given to `flag`: seconds, or a number with a unit (90s, 5m, 1h).
pub fn parse_duration(flag: &str, s: &str) -> Result<f64, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let v: f64 =
        num.trim().parse().map_err(|_| format!("{flag} `{s}`: expected seconds or a number with s, m or h"))?;
    let mult = match unit {
        "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => return Err(format!("{flag} `{s}`: unknown unit `{unit}` (use s, m or h)")),
    };
    if v.is_nan() || v <= 0.0 {
        return Err(format!("{flag} `{s}` must be positive"));
    }
    Ok(v * mult)
}
