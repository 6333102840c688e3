//! cellc: a compiler and workbench for recurrent neural-network cells.
//!
//! The pipeline, in the order data flows (each stage a module):
//!
//! ```text
//! text ─syntax─▶ AST ─check─▶ checked Cell ─ir─▶ expression graph ─autodiff─▶ backward graph
//!      ─schedule─▶ GEMMs + fused regions ─codegen─▶ Cranelift kernels ─runtime─▶ numbers
//!      ─train / tasks / search─▶ results ─cli─▶ the user
//! ```
//!
//! `syntax` parses `.cell` text (grammar in `grammar/cell.pest`) and prints it back; `check`
//! resolves names, orders equations and infers shapes, reporting problems as [`diag::Diagnostic`]s;
//! `workspace` ties sources, the embedded standard library (`stdlib`) and checking together.
//! Only `cli` prints or exits. ARCHITECTURE.md has the map and the invariants.

// Foundations every stage uses.
pub mod diag;
pub mod io;
pub mod rng;

// The compiler, in the order data flows: text to checked cells, the expression graph and its
// derivative (with the f64 interpreter that is their specification), the plan, the kernels,
// and the runtime that executes them.
pub mod syntax;
pub mod check;
pub mod stdlib;
pub mod workspace;
pub mod cell_arg;
pub mod ir;
pub mod autodiff;
pub mod init;
pub mod interp;
pub mod schedule;
pub mod codegen;
pub mod runtime;

// Around the compiled cell: tensors on disk, the `cellc eval` contract, counts.
pub mod tensors;
pub mod eval;
pub mod stats;

// Training and experiments: data, tasks, the trainer, plots, the results store, experiments on
// its job queue (the paper's study, comparisons, the search), the REPL, and the command line.
pub mod data;
pub mod tasks;
pub mod train;
pub mod plot;
pub mod store;
pub mod experiment;
pub mod compare;
pub mod paper;
pub mod search;
pub mod dashboard;
pub mod bridge;
pub mod repl;
pub mod cli;
