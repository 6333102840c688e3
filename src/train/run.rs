//! One training run: the path every command trains through (`cellc run`, `cellc test`, the REPL's
//! `:train`, the paper's study and the search's workers). A run is made once from a checked cell
//! and a training config (ranges checked, task built, cell compiled, parameters initialised) or
//! resumed from a checkpoint, then trained by [`Run::train`].

use std::path::Path;

use super::checkpoint;
use super::config::TrainConfig;
use super::evaluate::{self, EvalSets};
use super::fit::{Hooks, fit};
use super::lm::LmRunner;
use super::state::{RunState, Trained};
use crate::check::Cell;
use crate::runtime::Engine;
use crate::tasks::{Metrics, Task};

/// A run: the compiled cell, its task (built once, with its data loaded), and its state.
pub struct Run {
    pub engine: Engine,
    pub task: Task,
    pub state: RunState,
    /// Seconds spent compiling the cell (the search reports where a run's time went).
    pub compile_seconds: f64,
}

impl Run {
    /// A fresh run of `cell` with `config`.
    pub fn start(cell: &Cell, mut config: TrainConfig) -> Result<Run, String> {
        config.validate()?;
        let task = config.task.build()?;
        config.resolve(&task);
        let (engine, compile_seconds) = compile(cell)?;
        let state = RunState::new(&engine, &task, config);
        Ok(Run { engine, task, state, compile_seconds })
    }

    /// The run saved in `dir` (a checkpoint of `cell`), continuing exactly where it stopped.
    pub fn resume(cell: &Cell, dir: &Path) -> Result<Run, String> {
        let (_, config) = checkpoint::peek(dir)?;
        let task = config.task.build()?;
        let (engine, compile_seconds) = compile(cell)?;
        let state = checkpoint::load_state(dir, &engine, &task)?;
        Ok(Run { engine, task, state, compile_seconds })
    }

    /// After [`Run::resume`]: checks the best-model file beside the state, which the state can
    /// rebuild (it holds the best parameters); a damaged one is written again from it at once.
    /// Says what was wrong and what was done, or `None` when nothing was.
    pub fn repair_model(&self, dir: &Path, cell: &crate::workspace::CellSource) -> Result<Option<String>, String> {
        let path = dir.join("model.safetensors");
        if !path.exists() && self.state.best.is_none() {
            return Ok(None);
        }
        let Err(why) = checkpoint::load_model(dir, &self.engine, &self.task) else { return Ok(None) };
        if self.state.best.is_none() {
            std::fs::remove_file(&path).map_err(|e| format!("{why}; cannot remove it: {e}"))?;
            return Ok(Some(format!("{why}; removed it (the run has no best model yet)")));
        }
        let shape = self.state.config.model_shape(&self.task);
        checkpoint::save(dir, &self.engine, shape, cell, &self.state)?;
        Ok(Some(format!("{why}; rewrote {} from state.safetensors's best parameters", path.display())))
    }

    /// Trains until the budget, early stopping, a cancel or a NaN.
    pub fn train(&mut self, hooks: Hooks<'_>) -> Result<Trained, String> {
        fit(&self.engine, &self.task, &mut self.state, hooks)
    }
}

fn compile(cell: &Cell) -> Result<(Engine, f64), String> {
    let started = std::time::Instant::now();
    let engine = Engine::compile(cell).map_err(|e| format!("cannot compile `{}`: {e}", cell.name))?;
    Ok((engine, started.elapsed().as_secs_f64()))
}

/// A saved model on its task's test set.
pub struct Tested {
    pub task: Task,
    /// The step whose parameters were saved as the best.
    pub best_step: u64,
    pub test: Metrics,
    /// Arithmetic's longer numbers, when the run was trained to be tested on them.
    pub long_test: Option<Metrics>,
}

/// Tests the best model saved in `dir` (a checkpoint of `cell`) with `threads` threads.
pub fn test_saved(cell: &Cell, dir: &Path, threads: usize) -> Result<Tested, String> {
    let (_, mut config) = checkpoint::peek(dir)?;
    config.threads = threads.max(1);
    let task = config.task.build()?;
    let (engine, _) = compile(cell)?;
    let model = checkpoint::load_model(dir, &engine, &task)?;
    let shape = config.model_shape(&task);
    let mut runner = LmRunner::new(&engine, shape, config.threads)?;
    let sets = EvalSets::new(&config, &task, shape.batch);
    let (test, long_test) = evaluate::test(&mut runner, &model.params, &config, &task, &sets)?;
    Ok(Tested { task, best_step: model.best_step, test, long_test })
}

/// The mean loss of the best model saved in `dir` on one batch of the user's, from zero states:
/// `inputs` and `targets` [T, B] symbols (as F32 numbers), or for music [T, B, 88] notes (0 or 1);
/// `weights` [T, B] optional (rows of weight 0 do not count). What an exported model's loss
/// is checked against.
pub fn loss_on_batch(cell: &Cell, dir: &Path, mut batch: crate::tensors::TensorSet, what: &str) -> Result<f64, String> {
    let (_, config) = checkpoint::peek(dir)?;
    let task = config.task.build()?;
    let (engine, _) = compile(cell)?;
    let model = checkpoint::load_model(dir, &engine, &task)?;
    let music = matches!(task, Task::Music(_));
    let labels: &[&str] = if music { &["T", "B", "V"] } else { &["T", "B"] };
    let inputs = batch.take_rank("inputs", labels, what)?;
    let (t, b) = (inputs.shape()[0], inputs.shape()[1]);
    let targets = if music {
        batch.take("targets", &[t, b, task.vocab()], &["T", "B", "V"], what)?
    } else {
        batch.take("targets", &[t, b], &["T", "B"], what)?
    };
    let weights = match batch.tensors.contains_key("weights") {
        true => Some(batch.take("weights", &[t, b], &["T", "B"], what)?.iter().copied().collect::<Vec<f32>>()),
        false => None,
    };
    batch.expect_empty(what, "the batch is `inputs`, `targets` and optionally `weights`")?;
    let shape = crate::train::lm::LmShape {
        vocab: task.vocab(),
        hidden: config.hidden,
        layers: config.layers,
        batch: b,
        steps: t,
        bidirectional: config.bidirectional,
    };
    let mut runner = LmRunner::new(&engine, shape, 1)?;
    let symbols = |a: &ndarray::ArrayD<f32>| -> Result<Vec<u32>, String> {
        a.iter()
            .map(|&v| {
                let ok = v >= 0.0 && v.fract() == 0.0 && (v as usize) < task.vocab();
                if ok {
                    Ok(v as u32)
                } else {
                    Err(format!("{what}: {v} is not a symbol of {} (0..{})", task.name(), task.vocab()))
                }
            })
            .collect()
    };
    if music {
        let sets = |a: &ndarray::ArrayD<f32>| {
            let mut s = crate::tasks::Sets::default();
            for row in a.as_slice().unwrap_or(&[]).chunks(task.vocab()) {
                let on: Vec<u8> = row.iter().enumerate().filter(|(_, v)| **v > 0.5).map(|(i, _)| i as u8).collect();
                s.push(&on);
            }
            s
        };
        if inputs.shape() != [t, b, task.vocab()] {
            return Err(format!("{what}: music `inputs` is [T, B, {}]", task.vocab()));
        }
        let frames = crate::tasks::Frames { input: sets(&inputs), target: sets(&targets) };
        return runner.evaluate_frames(&model.params, &frames, weights.as_deref(), false);
    }
    if config.bidirectional {
        // The reverse directions read each question: the rows up to the first one weighted.
        let w = weights.as_deref().ok_or_else(|| {
            format!("{what}: a bidirectional model needs `weights` (they mark where each question ends)")
        })?;
        runner.set_questions(&crate::tasks::question_lengths(w, b))?;
    }
    runner.evaluate(&model.params, &symbols(&inputs)?, &symbols(&targets)?, weights.as_deref(), false)
}
