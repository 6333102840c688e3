//! `cellc eval`, `cellc init` and `cellc stats`: the commands that put numbers on a cell.

use std::path::PathBuf;
use std::process::ExitCode;

use super::args::{CellArg, ShapeArgs};
use super::failure::Outcome;
use super::input;
use super::ui::Ui;
use crate::data::thousands;
use crate::eval::{self, Engine, Request};
use crate::tensors::TensorSet;
use crate::workspace::Workspace;

#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    #[command(flatten)]
    cell: CellArg,
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
    /// Read the weights of layer L of a file that holds several (`layer<L>.<param>`, as
    /// checkpoints and `cellc import` of a stacked nn.LSTM or nn.GRU name them).
    #[arg(long, value_name = "L")]
    layer: Option<usize>,
    /// Run a training step's regularisers: draw dropout and zoneout masks from this seed (and
    /// write them to OUT as `mask.<k>`) instead of using their expectation, as evaluation does.
    #[arg(long, value_name = "SEED")]
    mask_seed: Option<u64>,
}

pub fn run_eval(ui: &Ui, args: EvalArgs) -> Outcome {
    let mut ws = Workspace::new();
    let cell = input::load_cell(&mut ws, &args.cell.cell, ui)?;
    let read = |p: &PathBuf| -> Result<TensorSet, String> {
        let name = p.display().to_string();
        let bytes = std::fs::read(p).map_err(|e| format!("cannot read `{name}`: {e}"))?;
        TensorSet::decode(&bytes, &name)
    };
    let (mut weights, inputs) = (read(&args.weights)?, read(&args.inputs)?);
    if let Some(l) = args.layer {
        weights = weights.layer(l).ok_or_else(|| format!("{}: no tensors `layer{l}.*`", args.weights.display()))?;
    }
    let fwd = crate::ir::lower(&cell);
    let bwd = crate::autodiff::grad(&fwd);
    let req = Request {
        weights,
        weights_name: args.weights.display().to_string(),
        inputs,
        inputs_name: args.inputs.display().to_string(),
        grad: args.grad,
        masks: args.mask_seed.map_or(crate::ir::MaskDraw::Expected, crate::ir::MaskDraw::Seed),
    };
    let out = eval::evaluate(&fwd, &bwd, req, args.engine)?;
    crate::io::write_atomic(&args.out, &out.encode())
        .map_err(|e| format!("cannot write `{}`: {e}", args.out.display()))?;
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args, Debug)]
pub struct InitArgs {
    #[command(flatten)]
    cell: CellArg,
    #[command(flatten)]
    shape: ShapeArgs,
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

pub fn run_init(ui: &Ui, args: InitArgs) -> Outcome {
    let mut ws = Workspace::new();
    let cell = input::load_cell(&mut ws, &args.cell.cell, ui)?;
    let (h, d) = (args.shape.hidden, args.shape.input.unwrap_or(args.shape.hidden));
    if h == 0 || d == 0 {
        return Err("--hidden and --input must be at least 1".into());
    }
    let fwd = crate::ir::lower(&cell);
    if fwd.sig.d_equals_h && d != h {
        return Err(format!("cell `{}` needs --input equal to --hidden (D = H)", cell.name).into());
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
    crate::io::write_atomic(&args.out, &set.encode())
        .map_err(|e| format!("cannot write `{}`: {e}", args.out.display()))?;
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args, Debug)]
pub struct StatsArgs {
    #[command(flatten)]
    cell: CellArg,
    #[command(flatten)]
    shape: ShapeArgs,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

pub fn run_stats(ui: &Ui, args: StatsArgs) -> Outcome {
    let mut ws = Workspace::new();
    let cell = input::load_cell(&mut ws, &args.cell.cell, ui)?;
    let fwd = crate::ir::lower(&cell);
    let h = args.shape.hidden;
    let d = if fwd.sig.d_equals_h { h } else { args.shape.input.unwrap_or(h) };
    let bwd = crate::autodiff::grad(&fwd);
    let s = crate::stats::stats(&fwd, &bwd, h, d);
    if args.json {
        let mut v = serde_json::to_value(&s).unwrap_or_default();
        v["cell"] = serde_json::Value::String(cell.name.clone());
        println!("{v}");
        return Ok(ExitCode::SUCCESS);
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
    Ok(ExitCode::SUCCESS)
}
