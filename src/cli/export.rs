//! `cellc export`: a cell, or a trained model from a checkpoint, as one Python file for PyTorch
//! or JAX.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::failure::Outcome;
use super::input;
use super::ui::Ui;
use crate::bridge::{self, Framework, ModelInfo};
use crate::tensors::TensorSet;
use crate::train::checkpoint;
use crate::workspace::Workspace;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A .cell file (FILE:NAME for one of several cells) or a standard cell name; with
    /// --checkpoint, the checkpoint's cell by default.
    #[arg(value_name = "CELL")]
    cell: Option<String>,
    /// The framework: an `nn.Module` (pytorch) or pure `init`/`step`/`apply` functions (jax).
    #[arg(long, value_enum)]
    to: Framework,
    /// Where to write the file (default: stdout).
    #[arg(long, value_name = "FILE.py")]
    out: Option<PathBuf>,
    /// Also export the whole model trained in this checkpoint directory (`cellc run --save`):
    /// embedding, stacked layers, output layer, and a loader for its `model.safetensors`.
    #[arg(long, value_name = "DIR")]
    checkpoint: Option<PathBuf>,
}

pub fn run(ui: &Ui, a: Args) -> Outcome {
    let mut ws = Workspace::new();
    let text = match &a.checkpoint {
        None => {
            let arg = a.cell.as_deref().ok_or("name a cell to export, or give --checkpoint DIR")?;
            let (cell, source) = input::load_cell_source(&mut ws, arg, ui)?;
            bridge::cell_module(&cell, &source, a.to)
        }
        Some(dir) => {
            let (source, config) = checkpoint::peek(dir)?;
            if let Some(arg) = &a.cell {
                let (cell, _) = input::load_cell_source(&mut ws, arg, ui)?;
                if cell.name != source.name {
                    return Err(
                        format!("{} holds a model of `{}`, not `{}`", dir.display(), source.name, cell.name).into()
                    );
                }
            }
            let cell = source.checked()?;
            let info = model_info(dir, &config)?;
            bridge::model_module(&cell, &source, &info, a.to)
        }
    };
    match &a.out {
        Some(path) => crate::io::write_atomic(path, text.as_bytes())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?,
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// The exported model's sizes, from the shapes in the checkpoint's `model.safetensors`.
fn model_info(dir: &Path, config: &crate::train::TrainConfig) -> Result<ModelInfo, String> {
    let path = dir.join("model.safetensors");
    let bytes = std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let set = TensorSet::decode(&bytes, &path.display().to_string())?;
    let embed = set.tensors.get("embed").ok_or_else(|| format!("{}: no tensor `embed`", path.display()))?;
    let (vocab, hidden) = (embed.shape()[0], embed.shape()[1]);
    let layers = (0..).take_while(|l| set.tensors.keys().any(|k| k.starts_with(&format!("layer{l}.")))).count();
    let bidirectional = set.tensors.keys().any(|k| k.starts_with("layer0.reverse."));
    let kind = config.task.kind;
    Ok(ModelInfo {
        vocab,
        hidden,
        layers,
        bidirectional,
        music: matches!(kind, crate::tasks::TaskKind::Music(_)),
        task: kind.name().into(),
    })
}
