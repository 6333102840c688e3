//! The command line: argument parsing, reading files, printing, exit codes. The only module that
//! touches stdout, stderr or `process::exit`; every command is a thin layer over the library.

mod args;
mod bench;
mod check;
mod compare;
mod compile;
mod dashboard;
mod data;
mod eval;
mod export;
mod failure;
mod fmt;
mod grad;
mod gradcheck;
mod import;
mod input;
mod interrupt;
mod list;
mod paper;
mod progress;
mod repl;
mod run;
mod sample;
mod search;
mod search_confirm;
mod search_status;
mod train_args;
mod ui;
mod workers;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use ui::ColorChoice;

const EXAMPLES: &str = "\
Examples:
  cellc list                     the standard cells and what they are
  cellc check gru                check a standard cell and print its parameters
  cellc check my.cell -v         check a file; show equations, shapes and initialisation
  cellc fmt my.cell --write      rewrite a file in canonical form
  cellc run gru --task arith     train a cell for 5 minutes; prints validation and test accuracy
  cellc compare gru lstm --task arith --until-decided     is one better? paired seeds, intervals
  cellc run my.cell --task ptb --epochs 13 --save ckpt     train on real data, keep checkpoints
  cellc data                     list the real data sets cellc can find
  cellc repl gru                 explore a cell interactively (:help inside)
  cellc paper --quick            the paper's Table 1 and claims in about 5 minutes
  cellc search --time 1h         evolve cells like the paper; `cellc search report` for results

A cell is equations over the input x and the state (see examples/README.md):

  cell mycell {
      state h
      z = sigm(W_xz*x + W_hz*h + b_z)
      h' = z*h + (1 - z)*tanh(W_xh*x + W_hh*h + b_h)
  }";

/// cellc compiles recurrent neural-network cells written as equations: it checks them,
/// differentiates them symbolically, JIT-compiles fused kernels, trains them on the paper's tasks,
/// and searches for new ones.
#[derive(Parser, Debug)]
#[command(name = "cellc", version, about, after_help = EXAMPLES, max_term_width = 100)]
pub struct Cli {
    /// When to colour diagnostics.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
// `run`'s many flags make its variant large; the enum is built once per process.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Check cells for errors; print a one-line summary of each good cell.
    ///
    /// Exits 0 when every cell is valid (warnings allowed), 1 when any has an error. All errors
    /// of a file are reported in one run.
    Check(check::Args),
    /// Print cells in canonical form, or rewrite files with --write.
    ///
    /// Formatting keeps comments and blank-line paragraphs; it is idempotent, and the result
    /// parses to the same cells.
    Fmt(fmt::Args),
    /// List the standard cells (or the cells of a file) with their descriptions.
    List(list::Args),
    /// Print a cell's backward step (its symbolic derivative) as equations.
    ///
    /// Forward values are read by name; adjoints are named after what they belong to (`dn` for
    /// `n`, `dr_pre` for the argument of `r = sigm(...)`); weight gradients are outer products.
    Grad(grad::Args),
    /// Check the symbolic derivative against finite differences (f64, central differences).
    ///
    /// Random weights, inputs and output adjoints from --seed; every parameter entry (or a sample
    /// of 8 per tensor), the input, the initial states and one random direction are checked.
    /// Prints the worst relative error; exits 1 above 1e-5.
    Gradcheck(gradcheck::Args),
    /// Run a cell on tensors from safetensors files: the interop contract.
    ///
    /// Weights are named as the cell's parameters (a matrix [rows, cols], a vector [len]); inputs
    /// are `x` [T, B, D] and one [B, H] tensor per state (plus `dy` [T, B, H] with --grad). Writes
    /// `y` [T, B, H] and the final states, and with --grad the gradients of sum(dy * y) as
    /// `grad.x`, `grad.<state>` and `grad.<param>`.
    Eval(eval::EvalArgs),
    /// Write initial weights from the cell's init rules to a safetensors file.
    Init(eval::InitArgs),
    /// A cell, or a model trained by `cellc run --save`, as one Python file for PyTorch or JAX.
    ///
    /// The code follows the cell's equations one line each (the equation as a comment above it),
    /// with parameters named and shaped as in `cellc eval`'s contract and the cell's own
    /// initialisation rules: an `nn.Module` and a sequence layer for PyTorch, pure
    /// `init`/`step`/`apply` functions (with `jax.lax.scan`) for JAX. With --checkpoint, also the
    /// whole model (embedding, layers, output layer) and a loader for its weights.
    Export(export::Args),
    /// PyTorch nn.LSTM or nn.GRU weights (a state_dict saved as safetensors) as cellc weights.
    ///
    /// nn.LSTM maps to `lstm` (PyTorch's gate order input, forget, cell, output becomes the
    /// paper's j, f, i, o; its two biases per gate are summed), nn.GRU to `gru_torch` (its reset
    /// gate acts after the recurrent product, unlike the paper's `gru`). Any number of layers.
    Import(import::Args),
    /// Parameter count and flops per step, forward and backward.
    Stats(eval::StatsArgs),
    /// Compile a cell to fused kernels; show the schedule, the Cranelift IR or the code size.
    Compile(compile::Args),
    /// Time full language-model training steps: embedding, T recurrent steps, softmax
    /// cross-entropy at every step, backpropagation through time, SGD.
    ///
    /// Prints milliseconds per step, tokens per second, GFLOP/s of matrix products (forward,
    /// input and weight gradients of the cell and the output layer, as the anchors count them)
    /// and that rate as a fraction of this machine's measured GEMM rate.
    Bench(bench::Args),
    /// Train a cell on a task: live progress, final validation and test metrics, checkpoints
    /// (--save), a plot of the curves (--plot).
    ///
    /// The model embeds input symbols to H, stacks --layers copies of the cell and predicts the
    /// next symbol with a softmax; the loss counts the answer (arith, memorize) or every symbol
    /// (xml, ptb, text). The same seed and thread count give the same numbers; --resume continues a saved
    /// run exactly.
    Run(run::Args),
    /// Sketch, inspect and train cells interactively (`:help` inside lists the commands).
    ///
    /// Type a cell or one equation and it is checked at once; type an expression to evaluate it
    /// on the current cell. With stdin not a terminal, runs it as a script and exits 1 at the
    /// first error: `cellc repl < script.txt`.
    Repl(repl::Args),
    /// Is this cell better than that one? Train cells on the same seeds; intervals, paired
    /// differences and p-values.
    ///
    /// Every cell gets the same batches, evaluation sets and (for parameters that share a name)
    /// initial values on each seed, so the paired difference from the first cell carries little
    /// noise. --until-decided adds seeds until every difference is decided. Runs are jobs on the
    /// store's queue: local workers or `cellc worker`s on other machines train them, and a run
    /// already in the store is never trained again.
    Compare(compare::Args),
    /// Reproduce the paper's Table 1: every cell on every task, a small random search, seeds.
    ///
    /// Prints the table beside the paper's numbers, GRU-relative scores and the paper's claims
    /// marked confirmed or not; writes table.md, runs.csv and charts (SVG, PNG) to --out. Every
    /// finished run is stored: run the same command again to continue an interrupted study.
    Paper(paper::Args),
    /// Evolve new cells as the paper did: mutate, filter, score against the GRU; resumable.
    ///
    /// Mutants of the best cells go through a memorisation filter, the first task (continue at
    /// 90% of the GRU) and the other tasks; the score is the minimum over tasks of accuracy
    /// relative to the GRU. Everything is kept in an SQLite store that worker processes share:
    /// kill it at any moment and `--resume` continues. `report`, `replay RUN` and `status` read it.
    Search(search::Args),
    /// Watch a store's experiments live in a browser: progress, workers, leaderboards, learning
    /// curves, study tables, comparisons.
    ///
    /// A local web server (127.0.0.1:8023 by default) reading the store read-only, so workers are
    /// never slowed or locked out; the page updates as runs finish, with no reload. Every view
    /// is also JSON under /api/ (overview, status, experiments/NAME, experiments/NAME/runs,
    /// experiments/NAME/cells/ID, runs/ID).
    Dashboard(dashboard::Args),
    /// Train runs of the searches in a store (what `cellc search` starts; run more on other
    /// machines against a shared store). On PostgreSQL a worker that loses its server waits
    /// for it and goes on, for up to CELLC_PG_RECONNECT seconds (600).
    Worker(search::WorkerArgs),
    /// List the real data sets cellc can find (Penn Treebank, music, text), with their sizes.
    Data(data::Args),
    /// Evaluate a model saved by `cellc run --save DIR` on its task's test set.
    Test(run::TestArgs),
    /// Generate from a model saved by `cellc run --save DIR`: text, the answer to an arithmetic
    /// problem, or music (a MIDI file and a piano roll).
    ///
    /// The model runs one step at a time on the compiled kernels, each output drawn at
    /// --temperature (among the --top-k likeliest) and fed back; --seed fixes every draw.
    Sample(sample::Args),
}

/// Runs the command line and returns the process exit code.
pub fn main() -> ExitCode {
    ui::install_panic_hook();
    // A PostgreSQL store that loses its server says so on stderr while it waits for it.
    crate::store::postgres::report_reconnects_with(|message| eprintln!("{message}"));
    let cli = Cli::parse();
    let ui = ui::Ui::new(cli.color);
    let outcome = match cli.command {
        Command::Check(args) => check::run(&ui, args),
        Command::Fmt(args) => fmt::run(&ui, args),
        Command::List(args) => list::run(&ui, args),
        Command::Grad(args) => grad::run(&ui, args),
        Command::Gradcheck(args) => gradcheck::run(&ui, args),
        Command::Eval(args) => eval::run_eval(&ui, args),
        Command::Init(args) => eval::run_init(&ui, args),
        Command::Export(args) => export::run(&ui, args),
        Command::Import(args) => import::run(&ui, args),
        Command::Stats(args) => eval::run_stats(&ui, args),
        Command::Compile(args) => compile::run(&ui, args),
        Command::Bench(args) => bench::run(&ui, args),
        Command::Run(args) => run::run(&ui, args),
        Command::Compare(args) => compare::run(&ui, args),
        Command::Repl(args) => repl::run(&ui, args),
        Command::Paper(args) => paper::run(&ui, args),
        Command::Search(args) => search::run(&ui, args),
        Command::Worker(args) => search::run_worker(&ui, args),
        Command::Dashboard(args) => dashboard::run(&ui, args),
        Command::Data(args) => data::run(&ui, args),
        Command::Test(args) => run::test(&ui, args),
        Command::Sample(args) => sample::run(&ui, args),
    };
    match outcome {
        Ok(code) => code,
        Err(failure::Failure::Message(message)) => ui.fail(message),
        Err(failure::Failure::Reported) => ExitCode::from(1),
    }
}
