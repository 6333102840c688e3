//! `cellc eval`, `cellc init` and `cellc stats`: the commands that put numbers on a cell.

use std::path::PathBuf;
use std::process::ExitCode;

use super::input;
use super::ui::Ui;
use crate::data::thousands;
use crate::eval::{self, Engine, Request};
use crate::tensors::TensorSet;
use crate::workspace::Workspace;

#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    /// A .cell file (FILE:NAME for one of several cells) or a standard cell name.
    #[arg(value_name = "CELL")]
    cell: String,
    /// Weights: one f32 tensor per parameter, named as in the cell; matrices [rows, cols].
    #[arg(long, value_name = "W.safetensors")]
    weights: PathBuf,
    /// Inputs: `x` [T, B, D], one [B, H] tensor per state, and `dy` [T, B, H] with --grad.
    #[arg(long, value_name = "IN.safetensors")]
    inputs: PathBuf,
    /// Where to write `y` [T, B, H], the final states, and with --grad the `grad.*` tensors.
    #[arg(long, value_name = "OUT.safetensors")]
    out: PathBuf,
    /// Also compute gradients of L = sum(dy * y) for x, the initial states and every parameter.
    #[arg(long)]
    grad: bool,
    /// Which evaluator computes the numbers.
    #[arg(long, value_enum, default_value_t = Engine::Jit)]
    engine: Engine,
}

pub fn run_eval(ui: &Ui, args: EvalArgs) -> ExitCode {
    let mut ws = Workspace::new();
    let cell = match input::load_cell(&mut ws, &args.cell, ui) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let read = |p: &PathBuf| -> Result<TensorSet, String> {
        let name = p.display().to_string();
        let bytes = std::fs::read(p).map_err(|e| format!("cannot read `{name}`: {e}"))?;
        TensorSet::decode(&bytes, &name)
    };
    let (weights, inputs) = match (read(&args.weights), read(&args.inputs)) {
        (Ok(w), Ok(i)) => (w, i),
        (Err(e), _) | (_, Err(e)) => return ui.fail(e),
    };
    let fwd = crate::ir::lower(&cell);
    let bwd = crate::autodiff::grad(&fwd);
    let req = Request {
        weights,
        weights_name: args.weights.display().to_string(),
        inputs,
        inputs_name: args.inputs.display().to_string(),
        grad: args.grad,
    };
    let out = match eval::evaluate(&fwd, &bwd, req, args.engine) {
        Ok(o) => o,
        Err(e) => return ui.fail(e),
    };
    if let Err(e) = crate::io::write_atomic(&args.out, &out.encode()) {
        return ui.fail(format!("cannot write `{}`: {e}", args.out.display()));
    }
    ExitCode::SUCCESS
}

#[derive(clap::Args, Debug)]
pub struct InitArgs {
    /// A .cell file (FILE:NAME for one of several cells) or a standard cell name.
    #[arg(value_name = "CELL")]
    cell: String,
    /// Hidden size H.
    #[arg(long)]
    hidden: usize,
    /// Input size D (default: H).
    #[arg(long)]
    input: Option<usize>,
    /// Random seed; the same seed gives the same weights.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Scale of the default law, uniform in ±scale/sqrt(fan-in).
    #[arg(long, default_value_t = 1.0)]
    init_scale: f64,
    /// Where to write the weights.
    #[arg(long, value_name = "W.safetensors")]
    out: PathBuf,
}

pub fn run_init(ui: &Ui, args: InitArgs) -> ExitCode {
    let mut ws = Workspace::new();
    let cell = match input::load_cell(&mut ws, &args.cell, ui) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let (h, d) = (args.hidden, args.input.unwrap_or(args.hidden));
    if h == 0 || d == 0 {
        return ui.fail("--hidden and --input must be at least 1");
    }
    let fwd = crate::ir::lower(&cell);
    if fwd.sig.d_equals_h && d != h {
        return ui.fail(format!("cell `{}` needs --input equal to --hidden (D = H)", cell.name));
    }
    let values = crate::init::initialise(&fwd.sig, h, d, args.init_scale, args.seed);
    let mut set = TensorSet::default();
    for (p, v) in fwd.sig.params.iter().zip(values) {
        set.tensors.insert(p.name.clone(), v.mapv(|x| x as f32));
    }
    for (k, v) in [
        ("cell", cell.name.clone()),
        ("hidden", h.to_string()),
        ("input", d.to_string()),
        ("seed", args.seed.to_string()),
    ] {
        set.metadata.insert(k.into(), v);
    }
    if let Err(e) = crate::io::write_atomic(&args.out, &set.encode()) {
        return ui.fail(format!("cannot write `{}`: {e}", args.out.display()));
    }
    ExitCode::SUCCESS
}

#[derive(clap::Args, Debug)]
pub struct StatsArgs {
    /// A .cell file (FILE:NAME for one of several cells) or a standard cell name.
    #[arg(value_name = "CELL")]
    cell: String,
    /// Hidden size H.
    #[arg(long)]
    hidden: usize,
    /// Input size D (default: H).
    #[arg(long)]
    input: Option<usize>,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

pub fn run_stats(ui: &Ui, args: StatsArgs) -> ExitCode {
    let mut ws = Workspace::new();
    let cell = match input::load_cell(&mut ws, &args.cell, ui) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let fwd = crate::ir::lower(&cell);
    let (h, d) = (args.hidden, if fwd.sig.d_equals_h { args.hidden } else { args.input.unwrap_or(args.hidden) });
    let bwd = crate::autodiff::grad(&fwd);
    let s = crate::stats::stats(&fwd, &bwd, h, d);
    if args.json {
        let mut v = serde_json::to_value(&s).unwrap_or_default();
        v["cell"] = serde_json::Value::String(cell.name.clone());
        println!("{v}");
        return ExitCode::SUCCESS;
    }
    println!("{} at H = {h}, D = {d}: {} parameters", cell.name, thousands(s.params));
    println!("flops per step per example   matrix products   element-wise (of which transcendental)   total");
    for (what, c) in [("forward", s.forward), ("backward", s.backward)] {
        println!(
            "  {what:<27}{:>16}   {:>12} ({:>12})   {:>12}",
            thousands(c.matmul_flops as usize),
            thousands(c.elementwise_flops as usize),
            thousands(c.transcendental as usize),
            thousands(c.total() as usize)
        );
    }
    ExitCode::SUCCESS
}
