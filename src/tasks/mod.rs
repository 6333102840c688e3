//! The training tasks: what each is ([`TaskKind`]), its knobs and the task they build
//! ([`TaskConfig`], [`Task`]), the batches it makes ([`Batch`], [`BatchStream`]) and its metrics
//! ([`Tally`], [`Metrics`]).
//!
//! Every task is next-symbol prediction. A [`Batch`] is T steps by B examples, row `t*B + b` (the
//! runtime's layout), with a loss weight per row: sequence tasks (arith, memorize) weight only the
//! answer and pad short examples at the end with weight 0; stream tasks (xml, ptb, text, music)
//! weight every row and continue their B streams from batch to batch, so training carries the
//! state across batches (truncated BPTT).

pub mod arith;
pub mod corpus;
pub mod memorize;
pub mod music;
pub mod xml;

mod batch;
mod config;
mod kind;
mod metrics;
mod stream;

pub use batch::{Batch, Example, Frames, Sets, question_lengths};
pub use config::{Task, TaskConfig, builds_on_this_thread, column_text};
pub use kind::{DataNeed, Found, PaperRole, Scored, TaskKind, survey};
pub use metrics::{Metrics, Tally};
pub use stream::{BatchStream, Split};
