//! Training: the language model around a compiled cell, its output layer, optimisers, the
//! training loop, checkpoints, and the diagnosis of a diverged run.

pub mod checkpoint;
pub mod diverge;
pub mod fit;
pub mod lm;
pub mod optim;
mod output;
