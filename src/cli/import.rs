//! `cellc import`: PyTorch `nn.LSTM`/`nn.GRU` weights (a `state_dict` saved as safetensors) to
//! cellc weights for `lstm`/`gru_torch`.

use std::path::PathBuf;
use std::process::ExitCode;

use super::failure::Outcome;
use super::ui::Ui;
use crate::bridge::import::{self, Source};
use crate::tensors::TensorSet;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The state dict: `safetensors.torch.save_file(module.state_dict(), FILE)`.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// The module it comes from.
    #[arg(long, value_enum)]
    from: Source,
    /// Where to write the cellc weights (`cellc eval`'s contract; with several layers, each
    /// parameter as `layer<L>.<name>`: `cellc eval --layer L` reads one).
    #[arg(long, value_name = "W.safetensors")]
    out: PathBuf,
}

pub fn run(_ui: &Ui, a: Args) -> Outcome {
    let what = a.file.display().to_string();
    let bytes = std::fs::read(&a.file).map_err(|e| format!("cannot read {what}: {e}"))?;
    let dict = TensorSet::decode(&bytes, &what)?;
    let imported = import::import(dict, a.from, &what)?;
    crate::io::write_atomic(&a.out, &imported.weights.encode())
        .map_err(|e| format!("cannot write {}: {e}", a.out.display()))?;
    eprintln!(
        "{}: {} layer{} of `{}` (H = {}, D = {}) to {}",
        what,
        imported.layers,
        if imported.layers == 1 { "" } else { "s" },
        a.from.cell(),
        imported.hidden,
        imported.input,
        a.out.display()
    );
    Ok(ExitCode::SUCCESS)
}
