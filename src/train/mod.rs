//! Training: the language model around a compiled cell and its output layer, optimisers, the
//! run's configuration and state, the training loop, evaluation, checkpoints, the diagnosis of a
//! diverged run, the paper's hyperparameter grid, and [`run::Run`], the one path every command
//! trains through.

mod bidirectional;
mod by_length;
pub mod checkpoint;
pub mod config;
pub mod diverge;
mod dropout;
pub mod evaluate;
pub mod fit;
pub mod grid;
pub mod lm;
mod lm_views;
pub mod model;
pub mod optim;
mod output;
pub mod run;
pub mod sample;
pub mod schedule;
pub mod state;

pub use config::{Budget, TrainConfig};
pub use fit::Hooks;
pub use run::Run;
pub use schedule::Schedule;
pub use state::{Diverged, EvalRecord, Event, Outcome, RunEnd, RunState, Stop, Trained};
