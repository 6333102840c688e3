//! `cellc data`: the real data sets cellc can find, their sizes, and where they were found.

use std::process::ExitCode;

use super::args::DataArg;
use super::failure::Outcome;
use super::ui::Ui;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    data: DataArg,
    /// Print one JSON object: the directory and each data set.
    #[arg(long)]
    json: bool,
}

pub fn run(_ui: &Ui, args: Args) -> Outcome {
    let (dir, from) = crate::data::data_dir(args.data.data.as_deref());
    if !dir.is_dir() {
        return Err(format!("no data directory at {} (from {from}); give one with --data DIR", dir.display()).into());
    }
    let found = crate::tasks::survey(&dir);
    if args.json {
        println!("{}", serde_json::json!({"dir": dir, "from": from, "sets": found}));
    } else {
        println!("data directory {} (from {from})", dir.display());
        let width = found.iter().map(|f| f.task.len()).max().unwrap_or(0);
        for f in &found {
            let mark = if f.ok { "ok     " } else { "missing" };
            let ms = if f.ok { format!("  [{:.0} ms]", f.seconds * 1000.0) } else { String::new() };
            println!("{mark} {:width$}  {}{ms}", f.task, f.summary);
        }
    }
    Ok(ExitCode::SUCCESS)
}
