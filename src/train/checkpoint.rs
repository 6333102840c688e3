//! Checkpoints of a training run, in a directory:
//!
//! - `model.safetensors`: the best parameters so far (validation), named `embed`,
//!   `layer<l>.<param>`, `layer<l>.reverse.<param>` (bidirectional layers), `out.W`, `out.b`, with the run's description as JSON in the file's
//!   metadata (key `cellc`). `cellc test DIR` reads it. (No `model.json` beside it any more: a
//!   second copy nothing reads could be damaged unnoticed.)
//! - `state.safetensors`: everything a resumed run needs to continue exactly: the current
//!   parameters (`param.*`), Adam's moments (`adam.m.*`, `adam.v.*`), the best parameters
//!   (`best.*`), carried stream states (`carry.layer<l>.<state>`), and as metadata the step, the
//!   learning rate, every random generator's state and the metric history.
//!
//! Both files are written to temporary names first and renamed only when both are written, so a
//! crash or a full disk leaves the previous complete checkpoint. Every file carries SHA-256 digests of its tensors and metadata
//! (`tensors::DIGEST_KEY`); loading verifies them, refuses a non-finite weight and any tensor
//! missing or extra, and names the file and the tensor. Files of format 1 (before digests) still
//! load, unverified.

use std::collections::BTreeMap;
use std::path::Path;

use ndarray::ArrayD;
use serde_json::{Value, json};

use super::config::TrainConfig;
use super::lm::{LmParams, LmShape};
use super::optim::Optimizer;
use super::state::{EvalRecord, RunState};
use crate::rng::Rng;
use crate::runtime::Engine;
use crate::tasks::{BatchStream, Metrics, Split, Task};
use crate::tensors::TensorSet;
use crate::workspace::CellSource;

/// Written now: with digests. Format 1 files (no digests) are still read.
const FORMAT: &str = "cellc-checkpoint-2";
const FORMAT_1: &str = "cellc-checkpoint-1";

fn tensor(v: &[f32], shape: &[usize]) -> ArrayD<f32> {
    ArrayD::from_shape_vec(shape.to_vec(), v.to_vec()).expect("layout shapes match tensor lengths")
}

/// The run's description (the model file's metadata).
fn describe(cell: &CellSource, config: &TrainConfig, state: &RunState) -> Value {
    let best = state.best.as_ref().map(|(m, step, _)| json!({ "step": step, "valid": m }));
    json!({
        "format": FORMAT,
        "cell": cell,
        "config": config,
        "step": state.step,
        "best": best,
        "history": state.history,
    })
}

/// Writes both checkpoint files for `state`, a run of `cell` whose model has `shape`.
pub fn save(dir: &Path, engine: &Engine, shape: LmShape, cell: &CellSource, state: &RunState) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let layout = LmParams::layout(engine, shape);
    let meta = describe(cell, &state.config, state);
    let mut files = vec![];
    if let Some((_, _, best)) = &state.best {
        let mut model = TensorSet::default();
        for ((name, dims), t) in layout.iter().zip(best.tensors()) {
            model.tensors.insert(name.clone(), tensor(t, dims));
        }
        model.metadata.insert("cellc".into(), meta.to_string());
        files.push(("model.safetensors", model.encode()));
    }
    let mut full = TensorSet::default();
    for (i, ((name, dims), t)) in layout.iter().zip(state.params.tensors()).enumerate() {
        full.tensors.insert(format!("param.{name}"), tensor(t, dims));
        if !state.opt.m.is_empty() {
            full.tensors.insert(format!("adam.m.{name}"), tensor(&state.opt.m[i], dims));
            full.tensors.insert(format!("adam.v.{name}"), tensor(&state.opt.v[i], dims));
        }
    }
    if let Some((_, _, best)) = &state.best {
        for ((name, dims), t) in layout.iter().zip(best.tensors()) {
            full.tensors.insert(format!("best.{name}"), tensor(t, dims));
        }
    }
    let sig = &engine.forward.sig;
    for (l, layer) in state.carried.iter().flatten().enumerate() {
        for (s, v) in layer.iter().enumerate() {
            full.tensors.insert(format!("carry.layer{l}.{}", sig.states[s]), tensor(v, &[shape.batch, shape.hidden]));
        }
    }
    let run = json!({
        "format": FORMAT,
        "cell": cell,
        "config": state.config,
        "step": state.step,
        "tokens": state.tokens,
        "lr": state.lr,
        "seconds": state.seconds,
        "optimizer_steps": state.opt.step,
        "train_source": state.train.state(),
        "dropout_rng": state.dropout_rng.state(),
        "carried": state.carried.is_some(),
        "history": state.history,
        "best": state.best.as_ref().map(|(m, step, _)| json!({ "valid": m, "step": step })),
        "since_best": state.since_best,
        "since_decay": state.since_decay,
        "loss_sum": state.loss_sum,
        "loss_count": state.loss_count,
    });
    full.metadata.insert("cellc".into(), run.to_string());
    files.push(("state.safetensors", full.encode()));
    // Both or neither: a full disk leaves the previous pair as it was.
    let paths: Vec<_> = files.iter().map(|(name, _)| dir.join(name)).collect();
    let pairs: Vec<(&Path, &[u8])> = paths.iter().zip(&files).map(|(p, (_, b))| (p.as_path(), b.as_slice())).collect();
    crate::io::write_atomic_all(&pairs)
        .map_err(|e| format!("cannot write the checkpoint in {}: {e} (the previous checkpoint is kept)", dir.display()))
}

/// Reads and verifies a checkpoint file: digests (required from format 2), metadata, and every
/// weight finite.
fn read_set(path: &Path) -> Result<(TensorSet, Value), String> {
    let what = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {what}: {e}"))?;
    read_bytes(&bytes, &what)
}

/// [`read_set`] of a file's bytes, and the run's cell and config from its metadata (what every
/// loader reads first); `what` names the file. The fuzzer's entry point.
pub fn read_bytes_described(bytes: &[u8], what: &str) -> Result<(TensorSet, CellSource, TrainConfig), String> {
    let (set, meta) = read_bytes(bytes, what)?;
    Ok((set, field(&meta, "cell", what)?, field(&meta, "config", what)?))
}

fn read_bytes(bytes: &[u8], what: &str) -> Result<(TensorSet, Value), String> {
    let what = what.to_string();
    let (set, digested) = TensorSet::decode_checked(bytes, &what)?;
    let meta = set.metadata.get("cellc").ok_or_else(|| format!("{what}: not a cellc checkpoint"))?;
    let meta: Value = serde_json::from_str(meta).map_err(|e| format!("{what}: damaged metadata ({e})"))?;
    match meta["format"].as_str() {
        Some(FORMAT) if !digested => return Err(format!("{what}: damaged (its digests are missing)")),
        Some(FORMAT | FORMAT_1) => {}
        _ => return Err(format!("{what}: unknown checkpoint format {}", meta["format"])),
    }
    set.check_finite(&what)?;
    Ok((set, meta))
}

fn field<T: serde::de::DeserializeOwned>(meta: &Value, key: &str, what: &str) -> Result<T, String> {
    serde_json::from_value(meta[key].clone()).map_err(|e| format!("{what}: bad `{key}` ({e})"))
}

/// Reads one set of parameters (`prefix` + layout name) from a tensor set.
fn params_from(
    set: &mut TensorSet,
    prefix: &str,
    layout: &[(String, Vec<usize>)],
    shape: LmShape,
    what: &str,
) -> Result<LmParams, String> {
    let mut tensors = vec![];
    for (name, dims) in layout {
        let labels: Vec<String> = dims.iter().map(usize::to_string).collect();
        let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
        let t = set.take(&format!("{prefix}{name}"), dims, &labels, what)?;
        tensors.push(t.iter().copied().collect::<Vec<f32>>());
    }
    let mut it = tensors.into_iter();
    let embed = it.next().unwrap_or_default();
    let per_layer = (layout.len() - 3) / (shape.layers + shape.reverse_layers()).max(1);
    let mut layers =
        |n: usize| -> Vec<Vec<Vec<f32>>> { (0..n).map(|_| it.by_ref().take(per_layer).collect()).collect() };
    let cells = layers(shape.layers);
    let reverse = layers(shape.reverse_layers());
    let out_w = it.next().unwrap_or_default();
    let out_b = it.next().unwrap_or_default();
    Ok(LmParams { embed, cells, reverse, out_w, out_b })
}

/// A saved model: its description and best parameters (`cellc test`).
pub struct Model {
    pub cell: CellSource,
    pub config: TrainConfig,
    pub best_step: u64,
    pub valid: Option<Metrics>,
    pub params: LmParams,
}

/// The cell and config of a checkpoint directory, before an engine exists to read the rest.
pub fn peek(dir: &Path) -> Result<(CellSource, TrainConfig), String> {
    let path = dir.join("state.safetensors");
    let path = if path.exists() { path } else { dir.join("model.safetensors") };
    let (_, meta) = read_set(&path)?;
    let what = path.display().to_string();
    Ok((field(&meta, "cell", &what)?, field(&meta, "config", &what)?))
}

/// Loads `model.safetensors`, a model for the built `task`.
pub fn load_model(dir: &Path, engine: &Engine, task: &Task) -> Result<Model, String> {
    let path = dir.join("model.safetensors");
    let what = path.display().to_string();
    let (mut set, meta) = read_set(&path)?;
    let cell: CellSource = field(&meta, "cell", &what)?;
    let config: TrainConfig = field(&meta, "config", &what)?;
    let shape = config.model_shape(task);
    let layout = LmParams::layout(engine, shape);
    let params = params_from(&mut set, "", &layout, shape, &what)?;
    set.expect_empty(&what, "not part of this model")?;
    let best_step = meta["best"]["step"].as_u64().unwrap_or(meta["step"].as_u64().unwrap_or(0));
    let valid = serde_json::from_value(meta["best"]["valid"].clone()).ok();
    Ok(Model { cell, config, best_step, valid, params })
}

/// Loads `state.safetensors` into a run state that continues exactly where it was saved; `task`
/// is the run's task, built from the saved config.
pub fn load_state(dir: &Path, engine: &Engine, task: &Task) -> Result<RunState, String> {
    let path = dir.join("state.safetensors");
    let what = path.display().to_string();
    let (mut set, meta) = read_set(&path)?;
    let config: TrainConfig = field(&meta, "config", &what)?;
    let shape = config.model_shape(task);
    let layout = LmParams::layout(engine, shape);
    let params = params_from(&mut set, "param.", &layout, shape, &what)?;
    let mut opt = Optimizer::new(config.optimizer, &params);
    opt.step = field(&meta, "optimizer_steps", &what)?;
    if !opt.m.is_empty() {
        let m = params_from(&mut set, "adam.m.", &layout, shape, &what)?;
        let v = params_from(&mut set, "adam.v.", &layout, shape, &what)?;
        opt.m = m.tensors().into_iter().cloned().collect();
        opt.v = v.tensors().into_iter().cloned().collect();
    }
    let best = match meta["best"].as_object() {
        Some(b) => {
            let metrics: Metrics = serde_json::from_value(b["valid"].clone()).map_err(|e| format!("{what}: {e}"))?;
            let step = b["step"].as_u64().ok_or_else(|| format!("{what}: bad best step"))?;
            Some((metrics, step, params_from(&mut set, "best.", &layout, shape, &what)?))
        }
        None => None,
    };
    let carried = if meta["carried"] == true {
        let sig = &engine.forward.sig;
        let mut layers = vec![];
        for l in 0..shape.layers {
            let mut states = vec![];
            for st in &sig.states {
                let t = set.take(&format!("carry.layer{l}.{st}"), &[shape.batch, shape.hidden], &["B", "H"], &what)?;
                states.push(t.iter().copied().collect());
            }
            layers.push(states);
        }
        Some(layers)
    } else {
        None
    };
    set.expect_empty(&what, "not part of this run's state")?;
    let mut train = BatchStream::new(task, Split::Train, config.seed);
    train.restore(&meta["train_source"])?;
    let history: Vec<EvalRecord> = field(&meta, "history", &what)?;
    let mut extra = BTreeMap::new();
    for key in ["since_best", "since_decay"] {
        extra.insert(key, field::<u32>(&meta, key, &what)?);
    }
    Ok(RunState {
        params,
        opt,
        step: field(&meta, "step", &what)?,
        tokens: field(&meta, "tokens", &what)?,
        lr: field(&meta, "lr", &what)?,
        seconds: field(&meta, "seconds", &what)?,
        train,
        dropout_rng: Rng::from_state(field(&meta, "dropout_rng", &what)?),
        carried,
        history,
        best,
        since_best: extra["since_best"],
        since_decay: extra["since_decay"],
        loss_sum: field(&meta, "loss_sum", &what)?,
        loss_count: field(&meta, "loss_count", &what)?,
        config,
    })
}
