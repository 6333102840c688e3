//! `cellc gradcheck`: the symbolic derivative against finite differences, in f64.

use std::process::ExitCode;

use serde_json::json;

use super::args::CellArg;
use super::failure::Outcome;
use super::input;
use super::ui::Ui;
use crate::interp::gradcheck::{self, CheckSizes, TOLERANCE};
use crate::workspace::Workspace;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    cell: CellArg,
    /// Seed for the random weights, inputs and output adjoints.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Hidden size of the check.
    #[arg(long, default_value_t = 3)]
    hidden: usize,
    /// Input size of the check (ignored when the cell needs D = H).
    #[arg(long, default_value_t = 2)]
    input: usize,
    /// Sequence length.
    #[arg(long, default_value_t = 3)]
    seq: usize,
    /// Batch size.
    #[arg(long, default_value_t = 2)]
    batch: usize,
    /// Check a variable-length batch: one length per example, longest first (`--lengths 3,1`
    /// sets the batch size); an ended example holds its state, which y repeats.
    #[arg(long, value_delimiter = ',', value_name = "N,N,...")]
    lengths: Option<Vec<usize>>,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

pub fn run(ui: &Ui, args: Args) -> Outcome {
    let mut ws = Workspace::new();
    let cell = input::load_cell(&mut ws, &args.cell.cell, ui)?;
    if args.hidden == 0 || args.input == 0 || args.seq == 0 || args.batch == 0 {
        return Err("--hidden, --input, --seq and --batch must be at least 1".into());
    }
    let fwd = crate::ir::lower(&cell);
    let bwd = crate::autodiff::grad(&fwd);
    let batch = args.lengths.as_ref().map_or(args.batch, Vec::len);
    if let Some(l) = &args.lengths
        && (l.is_empty() || l.windows(2).any(|w| w[0] < w[1]) || l[0] > args.seq)
    {
        return Err(format!("--lengths must come longest first, each at most --seq {}", args.seq).into());
    }
    let sizes = CheckSizes { hidden: args.hidden, input: args.input, seq: args.seq, batch, per_tensor: 8 };
    let r = gradcheck::check_lengths(&fwd, &bwd, args.seed, sizes, args.lengths.clone());
    let ok = r.worst <= TOLERANCE;
    if args.json {
        println!(
            "{}",
            json!({"cell": cell.name, "seed": args.seed, "checks": r.checks, "worst_relative_error": r.worst,
                   "at": r.worst_at, "analytic": r.analytic, "numeric": r.numeric, "loss": r.loss, "ok": ok})
        );
    } else {
        println!(
            "{}: worst relative error {:.1e} at {} (analytic {:.9}, numeric {:.9}) over {} checks: {}",
            cell.name,
            r.worst,
            r.worst_at,
            r.analytic,
            r.numeric,
            r.checks,
            if ok { "ok" } else { "FAILED" }
        );
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
