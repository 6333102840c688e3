//! `cellc data`: the real data sets cellc can find, their sizes, and where they were found.

use std::path::PathBuf;
use std::process::ExitCode;

use super::ui::Ui;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The data directory (default: $CELLC_DATA, then ../shared/data beside the checkout).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Print one JSON object: the directory and each data set.
    #[arg(long)]
    json: bool,
}

pub fn run(ui: &Ui, args: Args) -> ExitCode {
    let (dir, from) = crate::data::data_dir(args.data.as_deref());
    if !dir.is_dir() {
        return ui.fail(format!("no data directory at {} (from {from}); give one with --data DIR", dir.display()));
    }
    let found = crate::data::survey(&dir);
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
    ExitCode::SUCCESS
}
