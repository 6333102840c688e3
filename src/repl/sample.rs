//! The REPL's `:sample`: generation from the model the last `:train` made (its best parameters),
//! a short sample at the session's seed.

use super::{Reply, Session};
use crate::check::Cell;
use crate::tasks::TaskKind;
use crate::train::TrainConfig;
use crate::train::lm::LmParams;
use crate::train::sample::{Generator, Input, Options, generate};

/// Symbols (or frames) `:sample` generates.
const LENGTH: usize = 80;

/// What `:train` leaves for `:sample`.
pub struct TrainedModel {
    pub cell: Cell,
    pub config: TrainConfig,
    pub params: LmParams,
}

pub fn sample(s: &mut Session, prime: &str) -> Reply {
    let Some(m) = &s.trained else {
        return Reply::err("error: no model yet: `:train TASK` first, then `:sample`");
    };
    match run(m, prime, s.values.seed) {
        Ok(text) => Reply::ok(text),
        Err(e) => Reply::err(format!("error: {e}")),
    }
}

fn run(m: &TrainedModel, prime: &str, seed: u64) -> Result<String, String> {
    let task = m.config.task.build()?;
    let engine =
        crate::runtime::Engine::compile(&m.cell).map_err(|e| format!("cannot compile `{}`: {e}", m.cell.name))?;
    let mut g = Generator::new(&engine, &m.params, m.config.model_shape(&task))?;
    let kind = task.kind();
    let start: Vec<Input> = match kind {
        TaskKind::Music(_) => vec![],
        _ if prime.is_empty() => return Err("give a prime: `:sample 12+345=` (arith), `:sample the` (ptb)".into()),
        _ => task.encode(prime)?.into_iter().map(Input::Symbol).collect(),
    };
    let o = Options { length: LENGTH, temperature: 1.0, top_k: 0, seed };
    let out = generate(&mut g, &task, &start, &o)?;
    let text: Vec<String> = out
        .iter()
        .map(|i| match i {
            Input::Symbol(t) => task.symbol(*t),
            Input::Notes(n) => format!("{n:?}\n"),
        })
        .collect();
    let sep = if kind == TaskKind::Ptb { " " } else { "" };
    Ok(format!("{prime}{sep}{}", text.join(sep)))
}
