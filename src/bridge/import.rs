//! `cellc import`: a PyTorch `nn.LSTM` or `nn.GRU` `state_dict` (saved as safetensors) to cellc
//! weights for the matching cell: `lstm` and `gru_torch` (PyTorch's GRU applies its reset gate
//! after the recurrent product, which the paper's `gru` does not).
//!
//! PyTorch stacks the gates of layer k in `weight_ih_l{k}` [G*H, D], `weight_hh_l{k}` [G*H, H],
//! `bias_ih_l{k}` and `bias_hh_l{k}` [G*H]: LSTM gates in the order (input, forget, cell, output),
//! GRU's in (reset, update, new). Where a cell has one bias per gate, it is the sum of the two.

use ndarray::{ArrayD, Axis};

use crate::tensors::TensorSet;

/// The PyTorch module a state dict comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Source {
    /// `torch.nn.LSTM`: imported as the std cell `lstm`.
    #[value(name = "nn.LSTM")]
    Lstm,
    /// `torch.nn.GRU`: imported as the std cell `gru_torch`.
    #[value(name = "nn.GRU")]
    Gru,
}

impl Source {
    /// The std cell the weights are for.
    pub fn cell(self) -> &'static str {
        match self {
            Source::Lstm => "lstm",
            Source::Gru => "gru_torch",
        }
    }

    fn gates(self) -> usize {
        match self {
            Source::Lstm => 4,
            Source::Gru => 3,
        }
    }
}

/// What an import found.
pub struct Imported {
    /// The weights: the cell's parameter names for one layer, `layer<k>.<name>` for several
    /// (as checkpoints name them).
    pub weights: TensorSet,
    pub layers: usize,
    pub hidden: usize,
    pub input: usize,
}

/// Converts the state dict `dict` (read from `what`).
pub fn import(mut dict: TensorSet, from: Source, what: &str) -> Result<Imported, String> {
    let g = from.gates();
    let layers = (0..).take_while(|k| dict.tensors.contains_key(&format!("weight_ih_l{k}"))).count();
    if layers == 0 {
        let names: Vec<&String> = dict.tensors.keys().take(6).collect();
        return Err(format!(
            "{what}: no `weight_ih_l0`: not a state_dict of {} (it has {names:?})",
            if from == Source::Lstm { "nn.LSTM" } else { "nn.GRU" }
        ));
    }
    let first = &dict.tensors["weight_ih_l0"];
    if first.ndim() != 2 || !first.shape()[0].is_multiple_of(g) {
        return Err(format!("{what}: `weight_ih_l0` has shape {:?}, not [{g}*H, D]", first.shape()));
    }
    let (hidden, input) = (first.shape()[0] / g, first.shape()[1]);
    let mut weights = TensorSet::default();
    for k in 0..layers {
        let d = if k == 0 { input } else { hidden };
        let gh = [g * hidden];
        let w_ih = dict.take(&format!("weight_ih_l{k}"), &[g * hidden, d], &["G*H", "D"], what)?;
        let w_hh = dict.take(&format!("weight_hh_l{k}"), &[g * hidden, hidden], &["G*H", "H"], what)?;
        let b_ih = dict.take(&format!("bias_ih_l{k}"), &gh, &["G*H"], what)?;
        let b_hh = dict.take(&format!("bias_hh_l{k}"), &gh, &["G*H"], what)?;
        let rows = |a: &ArrayD<f32>, gate: usize| {
            a.slice_axis(Axis(0), (gate * hidden..(gate + 1) * hidden).into()).to_owned()
        };
        let sum = |gate: usize| &rows(&b_ih, gate) + &rows(&b_hh, gate);
        let prefix = if layers == 1 { String::new() } else { format!("layer{k}.") };
        let mut put = |name: &str, a: ArrayD<f32>| {
            weights.tensors.insert(format!("{prefix}{name}"), a);
        };
        match from {
            Source::Lstm => {
                // PyTorch (input i, forget f, cell g, output o) to the paper's (candidate i,
                // input gate j, forget f, output o).
                for (gate, x, h, b) in [
                    (2, "W_xi", "W_hi", "b_i"),
                    (0, "W_xj", "W_hj", "b_j"),
                    (1, "W_xf", "W_hf", "b_f"),
                    (3, "W_xo", "W_ho", "b_o"),
                ] {
                    put(x, rows(&w_ih, gate));
                    put(h, rows(&w_hh, gate));
                    put(b, sum(gate));
                }
            }
            Source::Gru => {
                for (gate, x, h, b) in [(0, "W_xr", "W_hr", "b_r"), (1, "W_xz", "W_hz", "b_z")] {
                    put(x, rows(&w_ih, gate));
                    put(h, rows(&w_hh, gate));
                    put(b, sum(gate));
                }
                put("W_xn", rows(&w_ih, 2));
                put("b_xn", rows(&b_ih, 2));
                put("W_hn", rows(&w_hh, 2));
                put("b_hn", rows(&b_hh, 2));
            }
        }
    }
    let rest: Vec<String> = dict.tensors.keys().cloned().collect();
    if !rest.is_empty() {
        return Err(format!(
            "{what}: tensors an nn.{} without projections does not have: {rest:?}",
            if from == Source::Lstm { "LSTM" } else { "GRU" }
        ));
    }
    for name in ["cell", "hidden", "input", "layers"] {
        let value = match name {
            "cell" => from.cell().to_string(),
            "hidden" => hidden.to_string(),
            "input" => input.to_string(),
            _ => layers.to_string(),
        };
        weights.metadata.insert(name.into(), value);
    }
    Ok(Imported { weights, layers, hidden, input })
}
