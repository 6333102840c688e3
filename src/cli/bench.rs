//! `cellc bench`: time full language-model training steps of a cell, as the PyTorch and JAX
//! programs in `../shared/anchors` do, and compare with the machine's GEMM rate.

use std::process::ExitCode;
use std::time::Instant;

use serde_json::json;

use super::args::{CellArg, ThreadsArg};
use super::failure::Outcome;
use super::input;
use super::ui::Ui;
use crate::runtime::Engine;
use crate::train::lm::{FirstLayer, LmParams, LmRunner, LmShape};
use crate::train::optim::{Optimizer, OptimizerKind};
use crate::workspace::Workspace;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    cell: CellArg,
    /// Batch size B.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Hidden size H (the embedding size too).
    #[arg(long, default_value_t = 128)]
    hidden: usize,
    /// Sequence length T: recurrent steps per training step.
    #[arg(long, default_value_t = 64)]
    seq: usize,
    /// Vocabulary size V of the embedding and the softmax.
    #[arg(long, default_value_t = 64)]
    vocab: usize,
    /// Stacked layers of the cell.
    #[arg(long, default_value_t = 1)]
    layers: usize,
    /// Every layer below the top also reads each example backwards (as `cellc run
    /// --bidirectional`, the question being the whole example here). Needs --layers 2 or more.
    #[arg(long)]
    bidirectional: bool,
    #[command(flatten)]
    threads: ThreadsArg,
    /// Timed training steps (the median is reported).
    #[arg(long, default_value_t = 20)]
    steps: usize,
    /// Untimed steps first.
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
    /// Also print where the time goes, phase by phase.
    #[arg(long)]
    profile: bool,
    /// How threads share the per-step phases.
    #[arg(long, value_enum, default_value_t = crate::runtime::StepMode::Auto)]
    step_mode: crate::runtime::StepMode,
    /// The first layer per token (full: the work PyTorch and JAX do), per vocabulary entry
    /// (embedded: exact, fewer flops when V is well below B*T), or embedded when 2V <= B*T (auto,
    /// what `cellc run` does).
    #[arg(long, value_enum, default_value_t = FirstLayer::Auto)]
    first_layer: FirstLayer,
    /// A variable-length batch: example lengths drawn once, uniformly from T/2 to T, longest
    /// first, as arith and memorize run; tokens/s then counts only the real tokens (the GEMM
    /// rate line is left out: the work per step depends on the lengths).
    #[arg(long)]
    ragged: bool,
    /// The update after each step (the peer programs use SGD).
    #[arg(long, value_enum, default_value_t = OptimizerKind::Sgd)]
    optimizer: OptimizerKind,
    /// Flush denormals to zero during the steps (flush: as training does) or keep them (keep: as
    /// PyTorch does by default).
    #[arg(long, value_enum, default_value_t = Denormals::Flush)]
    denormals: Denormals,
}

/// `--denormals`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
enum Denormals {
    Flush,
    Keep,
}

pub fn run(ui: &Ui, args: Args) -> Outcome {
    let mut ws = Workspace::new();
    let cell = input::load_cell(&mut ws, &args.cell.cell, ui)?;
    if [args.batch, args.hidden, args.seq, args.vocab, args.steps, args.layers].contains(&0) {
        return Err("--batch, --hidden, --seq, --vocab, --steps and --layers must be at least 1".into());
    }
    if args.bidirectional && args.layers < 2 {
        return Err("--bidirectional needs --layers 2 or more (the top layer has one direction)".into());
    }
    let threads = args.threads.get();
    let mut engine = Engine::compile(&cell).map_err(|e| format!("cannot compile `{}`: {e}", cell.name))?;
    engine.step_mode = args.step_mode;
    let shape = LmShape {
        vocab: args.vocab,
        hidden: args.hidden,
        layers: args.layers,
        batch: args.batch,
        steps: args.seq,
        bidirectional: args.bidirectional,
    };
    let mut runner = LmRunner::with_first_layer(&engine, shape, threads, args.first_layer)?;
    runner.flush_denormals = args.denormals == Denormals::Flush;
    let embedded = runner.first_layer_embedded();
    let lengths = ragged_lengths(&args);
    runner.set_lengths(lengths.as_deref())?;
    runner.set_questions(&lengths.clone().unwrap_or_else(|| vec![args.seq; args.batch]))?;
    let m = measure(&engine, &mut runner, &args)?;
    let n = lengths.as_ref().map_or(args.batch * args.seq, |l| l.iter().sum());
    let median = m.times[m.times.len() / 2];
    let (flops, peer_flops) = flops_per_step(&engine, &args, embedded);
    let gflops = flops / median / 1e9;
    let ceiling = crate::runtime::gemm::machine_rate(threads);
    let tokens_per_s = n as f64 / median;
    let first_layer = if embedded { "embedded" } else { "full" };
    if args.json {
        println!(
            "{}",
            json!({"cell": cell.name, "batch": args.batch, "hidden": args.hidden, "seq": args.seq, "vocab": args.vocab,
                   "layers": args.layers, "bidirectional": args.bidirectional,
                   "threads": threads, "first_layer": first_layer, "optimizer": args.optimizer,
                   "denormals": args.denormals,
                   "ms_per_step": median * 1e3, "ms_per_step_min": m.times[0] * 1e3,
                   "ms_per_step_max": m.times[m.times.len() - 1] * 1e3, "tokens_per_s": tokens_per_s,
                   "flops_per_step": flops, "peer_flops_per_step": peer_flops, "gflops": gflops,
                   "gemm_gflops": ceiling, "fraction_of_gemm": gflops / ceiling, "cpu_ms_per_step": m.cpu_ms,
                   "lengths": lengths})
        );
    } else {
        print_run(
            &cell.name,
            &args,
            threads,
            lengths.as_deref(),
            &m,
            n,
            first_layer,
            embedded,
            (flops, peer_flops, ceiling),
        );
    }
    if args.profile {
        print_profile(&runner, &m, ceiling);
    }
    Ok(ExitCode::SUCCESS)
}

/// The one-line result (and the embedded first layer's share of the flops).
#[allow(clippy::too_many_arguments)]
fn print_run(
    name: &str,
    args: &Args,
    threads: usize,
    lengths: Option<&[usize]>,
    m: &Measured,
    n: usize,
    first_layer: &str,
    embedded: bool,
    (flops, peer_flops, ceiling): (f64, f64, f64),
) {
    let median = m.times[m.times.len() / 2];
    let tokens_per_s = n as f64 / median;
    let gflops = flops / median / 1e9;
    let layers = match (args.layers, args.bidirectional) {
        (1, _) => String::new(),
        (l, false) => format!(" L={l}"),
        (l, true) => format!(" L={l} (bidirectional below the top)"),
    };
    let run = format!(
        "{name} B={} H={} T={} V={}{layers}, {threads} thread{}",
        args.batch,
        args.hidden,
        args.seq,
        args.vocab,
        if threads == 1 { "" } else { "s" }
    );
    if let Some(l) = lengths {
        println!(
            "{run}, ragged (lengths {}..{}, {n} real tokens of {}): {:.2} ms/step ({:.2} ms of CPU), {:.0} real tokens/s",
            l[l.len() - 1],
            l[0],
            args.batch * args.seq,
            median * 1e3,
            m.cpu_ms,
            tokens_per_s
        );
    } else {
        println!(
            "{run}, first layer {first_layer}, {:?}: {:.2} ms/step ({:.2} ms of CPU), {:.0} tokens/s, {:.1} GFLOP/s executed = {:.0}% of the measured GEMM rate ({:.1} GFLOP/s)",
            args.optimizer,
            median * 1e3,
            m.cpu_ms,
            tokens_per_s,
            gflops,
            100.0 * gflops / ceiling,
            ceiling
        );
        if embedded {
            println!(
                "  the embedded first layer executes {:.0}% of the flops of a per-token first layer (the peers' work: {:.2} GFLOP per step)",
                100.0 * flops / peer_flops,
                peer_flops / 1e9
            );
        }
    }
}

/// `--ragged`: lengths uniform in T/2..=T from a fixed seed, longest first.
fn ragged_lengths(args: &Args) -> Option<Vec<usize>> {
    if !args.ragged {
        return None;
    }
    let mut rng = crate::rng::Rng::new(2);
    let low = args.seq.div_ceil(2);
    let mut l: Vec<usize> = (0..args.batch).map(|_| rng.range(low, args.seq)).collect();
    l.sort_unstable_by(|a, b| b.cmp(a));
    Some(l)
}

/// Matrix-product flops of one training step: what cellc executes, and what a per-token first
/// layer (the peer programs) executes. The peers' count, as the anchors make it: the forward
/// products of the cell and the output layer, three times (forward, input gradient, weight
/// gradient). The embedded first layer does the products that read x alone, and their two
/// gradients, for V rows instead of B*T.
fn flops_per_step(engine: &Engine, args: &Args, embedded: bool) -> (f64, f64) {
    let n = (args.batch * args.seq) as f64;
    let stats = crate::stats::stats(&engine.forward, &engine.backward, args.hidden, args.hidden);
    // Every layer, and each reverse direction (it reads every row: the question is the example).
    let cells = (args.layers + if args.bidirectional { args.layers - 1 } else { 0 }) as f64;
    let peer = 3.0 * n * (cells * stats.forward.matmul_flops as f64 + 2.0 * (args.hidden * args.vocab) as f64);
    if !embedded {
        return (peer, peer);
    }
    let sizes = crate::runtime::Sizes { hidden: args.hidden, input: args.hidden, batch: args.batch, steps: args.seq };
    let x_only = engine.input_projection_flops(sizes) as f64;
    (peer - 3.0 * (n - args.vocab as f64) * x_only, peer)
}

/// What the timed steps measured.
struct Measured {
    /// Seconds per step, sorted.
    times: Vec<f64>,
    cpu_ms: f64,
    /// The cell's phase times before the timed steps (the runner's own times start at zero).
    cell_before: crate::runtime::PhaseTimes,
}

/// Warm-up steps, then the timed ones, on random tokens of a fixed seed.
fn measure(engine: &Engine, runner: &mut LmRunner<'_>, args: &Args) -> Result<Measured, String> {
    let mut params = LmParams::init(engine, runner.shape, 1.0, 0);
    let mut rng = crate::rng::Rng::new(1);
    let n = args.batch * args.seq;
    let tokens: Vec<u32> = (0..n).map(|_| rng.below(args.vocab as u64) as u32).collect();
    let targets: Vec<u32> = (0..n).map(|_| rng.below(args.vocab as u64) as u32).collect();
    let lr = if args.optimizer == OptimizerKind::Adam { 1e-3 } else { 0.1 };
    let mut opt = Optimizer::new(args.optimizer, &params);
    let mut draws = 0;
    let mut step = |runner: &mut LmRunner<'_>, params: &mut LmParams| {
        // A training step: the cell's regularisers draw new masks (their filling is timed).
        draws += 1;
        runner.set_cell_masks(crate::ir::MaskDraw::Seed(draws));
        runner.forward_backward(params, &tokens, &targets, false)?;
        opt.update(params, runner, lr, 0.0);
        Ok::<(), String>(())
    };
    for _ in 0..args.warmup {
        step(runner, &mut params)?;
    }
    runner.times = Default::default();
    let cell_before = runner.cell_times();
    let mut times = vec![];
    let cpu0 = crate::runtime::cpu_time();
    for _ in 0..args.steps {
        let t0 = Instant::now();
        step(runner, &mut params)?;
        times.push(t0.elapsed().as_secs_f64());
    }
    let cpu_ms = (crate::runtime::cpu_time() - cpu0).as_secs_f64() * 1e3 / args.steps as f64;
    times.sort_by(f64::total_cmp);
    Ok(Measured { times, cpu_ms, cell_before })
}

/// Where the time of the timed steps went, phase by phase.
fn print_profile(runner: &LmRunner<'_>, m: &Measured, gemm_rate: f64) {
    let (times, cell_before) = (&m.times, &m.cell_before);
    let total: f64 = times.iter().sum();
    let c = runner.cell_times();
    let l = runner.times;
    let part = |d: std::time::Duration, d0: std::time::Duration| (d - d0).as_secs_f64();
    let rows = [
        ("embedding lookup", l.embed.as_secs_f64()),
        ("weight layouts (stacked copies)", part(c.weights, cell_before.weights)),
        ("cell forward, all steps at once (input projections)", part(c.forward_pre, cell_before.forward_pre)),
        ("cell forward, step by step", part(c.forward_step, cell_before.forward_step)),
        ("output layer: logits GEMM", l.logits.as_secs_f64()),
        ("output layer: softmax + loss", l.softmax.as_secs_f64()),
        ("output layer: gradients", l.output_grads.as_secs_f64()),
        ("cell backward, step by step", part(c.backward_step, cell_before.backward_step)),
        ("cell backward, all steps at once (input gradient)", part(c.backward_post, cell_before.backward_post)),
        ("cell weight gradients (GEMMs over all steps)", part(c.weight_grads, cell_before.weight_grads)),
        ("optimiser update (and gradient norm)", l.sgd.as_secs_f64()),
    ];
    let counted: f64 = rows.iter().map(|r| r.1).sum();
    println!("where the time goes ({} steps, {:.2} ms each):", times.len(), 1e3 * total / times.len() as f64);
    for (what, secs) in rows {
        println!("  {:<54} {:>8.3} ms  {:>5.1}%", what, 1e3 * secs / times.len() as f64, 100.0 * secs / total);
    }
    println!(
        "  {:<54} {:>8.3} ms  {:>5.1}%",
        "other",
        1e3 * (total - counted) / times.len() as f64,
        100.0 * (total - counted) / total
    );
    // The output layer's three GEMMs (logits, dW_out, dh), each 2 * rows * H * V flops, over the
    // time of the whole layer (softmax and loss included).
    let shape = runner.shape;
    let rows = (shape.batch * shape.steps) as f64;
    let output_flops = 3.0 * 2.0 * rows * shape.hidden as f64 * shape.vocab as f64;
    let output_secs = (l.logits + l.softmax + l.output_grads).as_secs_f64() / times.len() as f64;
    let output_rate = output_flops / output_secs / 1e9;
    println!(
        "output layer as a whole: {:.1} GFLOP/s = {:.0}% of the measured GEMM rate ({:.1} GFLOP/s)",
        output_rate,
        100.0 * output_rate / gemm_rate,
        gemm_rate
    );
}
