//! `cellc compile`: show the plan, the Cranelift IR or the machine code of a cell, and time it.

use std::process::ExitCode;
use std::time::Instant;

use super::args::CellArg;
use super::failure::Outcome;
use super::input;
use super::ui::Ui;
use crate::workspace::Workspace;

/// What `--emit` shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Emit {
    /// Phases, GEMMs and fused kernels.
    Schedule,
    /// Cranelift IR of every kernel, annotated with the equations it implements.
    Clif,
    /// Disassembly and machine code size of every kernel.
    Asm,
    /// Nothing (with --time).
    None,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    cell: CellArg,
    /// What to print.
    #[arg(long, value_enum, default_value_t = Emit::Schedule)]
    emit: Emit,
    /// Print the time from source text to ready kernels, stage by stage.
    #[arg(long)]
    time: bool,
}

pub fn run(ui: &Ui, args: Args) -> Outcome {
    let start = Instant::now();
    let mut ws = Workspace::new();
    let cell = input::load_cell(&mut ws, &args.cell.cell, ui)?;
    let t_check = start.elapsed();
    let fwd = crate::ir::lower(&cell);
    let bwd = crate::autodiff::grad(&fwd);
    let t_ir = start.elapsed();
    let schedule = crate::schedule::plan(&bwd);
    let t_plan = start.elapsed();
    let opts = crate::codegen::Options { clif: args.emit == Emit::Clif, asm: args.emit == Emit::Asm };
    let kernels = crate::codegen::compile(&bwd.graph, &schedule, opts)
        .map_err(|e| format!("cannot compile `{}`: {e}", cell.name))?;
    let t_total = start.elapsed();
    match args.emit {
        Emit::Schedule => print!("{}", crate::schedule::describe(&schedule, &bwd)),
        Emit::Clif => {
            for text in &kernels.clif {
                println!("{text}");
            }
        }
        Emit::Asm => {
            for (k, spec) in schedule.kernels.iter().enumerate() {
                println!("; kernel {}: {} bytes of machine code\n{}", spec.name, kernels.code_bytes[k], kernels.asm[k]);
            }
            println!("; total {} bytes in {} kernels", kernels.code_bytes.iter().sum::<usize>(), kernels.fns.len());
        }
        Emit::None => {}
    }
    if args.time {
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
        println!(
            "{}: {:.2} ms from source to {} kernels ({} bytes): parse+check {:.2} ms, IR+autodiff {:.2} ms, schedule {:.2} ms, Cranelift {:.2} ms",
            cell.name,
            ms(t_total),
            kernels.fns.len(),
            kernels.code_bytes.iter().sum::<usize>(),
            ms(t_check),
            ms(t_ir - t_check),
            ms(t_plan - t_ir),
            ms(kernels.compile_time)
        );
    }
    Ok(ExitCode::SUCCESS)
}
