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

pub mod autodiff;
pub mod check;
pub mod cli;
pub mod codegen;
pub mod data;
pub mod diag;
pub mod eval;
pub mod init;
pub mod interp;
pub mod io;
pub mod ir;
pub mod paper;
pub mod plot;
pub mod repl;
pub mod rng;
pub mod runtime;
pub mod schedule;
pub mod search;
pub mod stats;
pub mod stdlib;
pub mod store;
pub mod syntax;
pub mod tasks;
pub mod tensors;
pub mod train;
pub mod workspace;
