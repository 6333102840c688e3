//! The language model around an exported cell, for `cellc export --checkpoint DIR`: the
//! embedding [V, H], the stacked layers of the cell, the output layer (a softmax over V symbols,
//! or for music 88 independent sigmoids), the loss `cellc test` reports, and a loader for the
//! checkpoint's `model.safetensors` (tensors `embed`, `layer<l>.<param>`, `out.W`, `out.b`, and
//! a bidirectional model's `layer<l>.reverse.<param>`, each question read backwards as cellc does).

use super::python::class_name;
use crate::check::Cell;

/// What the exported model needs to know about the trained one.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelInfo {
    pub vocab: usize,
    pub hidden: usize,
    pub layers: usize,
    /// Every layer below the top also reads each question backwards (`cellc run --bidirectional`).
    pub bidirectional: bool,
    /// Music: rows are sets of notes in, 88 sigmoids out.
    pub music: bool,
    /// The task, for the docstring.
    pub task: String,
}

/// The model's sizes as Python constants, first in either framework's model code.
fn constants(m: &ModelInfo) -> String {
    format!(
        "\n\nVOCAB, HIDDEN, LAYERS, MUSIC = {}, {}, {}, {}\n# Layers with a reverse direction over each question (the ones below the top when bidirectional).\nREVERSE = {}\n\n\n",
        m.vocab,
        m.hidden,
        m.layers,
        if m.music { "True" } else { "False" },
        if m.bidirectional { m.layers - 1 } else { 0 }
    )
}

/// How a bidirectional model's `questions` are read (in the forward docstrings).
const QUESTIONS_DOC: &str = "`questions` [B] (a bidirectional model): example b's question is its first\n        questions[b] rows, which the layers below the top also read backwards (their reverse\n        outputs added to the forward ones there); `question_lengths(weights)` gives them.";

/// The PyTorch model, appended to the cell's module.
pub fn pytorch(cell: &Cell, m: &ModelInfo) -> String {
    let class = class_name(cell);
    let mut s = constants(m);
    s.push_str(&format!(
        "class Model(nn.Module):\n    \"\"\"The model `cellc run` trained on {}: an embedding of the input {} to H, {} stacked\n    `{}` layer(s), and {}.\"\"\"\n\n",
        m.task,
        if m.music { "notes (a frame's embedding is the sum of its notes' rows)" } else { "symbols" },
        m.layers,
        cell.name,
        if m.music { "88 independent sigmoids (one per piano key)" } else { "a softmax over the next symbol" }
    ));
    s.push_str(&format!(
        "    def __init__(self):\n        super().__init__()\n        self.embed = nn.Parameter(torch.zeros(VOCAB, HIDDEN))\n        self.layers = nn.ModuleList([{class}Layer(HIDDEN, HIDDEN) for _ in range(LAYERS)])\n        self.reverse = nn.ModuleList([{class}Layer(HIDDEN, HIDDEN) for _ in range(REVERSE)])\n        self.out_W = nn.Parameter(torch.zeros(VOCAB, HIDDEN))\n        self.out_b = nn.Parameter(torch.zeros(VOCAB))\n\n"
    ));
    s.push_str(&format!(
        "    def forward(self, inputs, states=None, questions=None):\n        \"\"\"inputs: symbols [T, B] (int64), or for music multi-hot frames [T, B, 88] (float).\n        {QUESTIONS_DOC}\n        Returns the logits [T, B, V] and every layer's final states.\"\"\"\n        x = inputs @ self.embed if MUSIC else self.embed[inputs]\n        finals = []\n        for i, layer in enumerate(self.layers):\n            y, final = layer(x, None if states is None else states[i])\n            if i < REVERSE:\n                rows, inside = _backwards(questions, x.shape[0])\n                back, _ = self.reverse[i](torch.gather(x, 0, rows.expand_as(x)), None, questions)\n                y = y + torch.where(inside, torch.gather(back, 0, rows.expand_as(back)), 0.0)\n            x = y\n            finals.append(final)\n        return x @ self.out_W.T + self.out_b, finals\n\n",
    ));
    s.push_str(
        "    def loss(self, inputs, targets, weights=None):\n        \"\"\"The mean loss over the rows of weight 1 (every row without `weights` [T, B]): cross-entropy\n        per symbol, or for music the 88 keys' log-losses summed per frame; `cellc test` reports it.\"\"\"\n        logits, _ = self(inputs, questions=question_lengths(weights) if REVERSE else None)\n        if MUSIC:\n            rows = F.binary_cross_entropy_with_logits(logits, targets, reduction=\"none\").sum(-1)\n        else:\n            rows = F.cross_entropy(logits.reshape(-1, VOCAB), targets.reshape(-1), reduction=\"none\")\n            rows = rows.reshape(targets.shape)\n        if weights is None:\n            return rows.mean()\n        return (rows * weights).sum() / weights.sum()\n\n\n",
    );
    s.push_str(TORCH_QUESTIONS);
    s.push_str(READ_VERIFIED);
    s.push_str(
        "def load(path=\"model.safetensors\", dtype=torch.float32):\n    \"\"\"The trained model from a checkpoint's `model.safetensors` (its digests verified).\"\"\"\n    tensors = {k: torch.from_numpy(v) for k, v in _read_verified(path).items()}\n    model = Model().to(dtype)\n    with torch.no_grad():\n        model.embed.copy_(tensors.pop(\"embed\"))\n        model.out_W.copy_(tensors.pop(\"out.W\"))\n        model.out_b.copy_(tensors.pop(\"out.b\"))\n        for l, layer in enumerate(model.layers):\n            for name, p in layer.cell.named_parameters():\n                p.copy_(tensors.pop(f\"layer{l}.{name}\"))\n        for l, layer in enumerate(model.reverse):\n            for name, p in layer.cell.named_parameters():\n                p.copy_(tensors.pop(f\"layer{l}.reverse.{name}\"))\n    if tensors:\n        raise ValueError(f\"{path}: tensors this model does not have: {sorted(tensors)}\")\n    # In eval mode, as `cellc test` evaluates: a cell's regularisers use their expectation.\n    return model.eval()\n",
    );
    s
}

/// The JAX model, appended to the cell's module.
pub fn jax(cell: &Cell, m: &ModelInfo) -> String {
    let mut s = constants(m);
    s.push_str(&format!(
        "def model_apply(model, inputs, states=None, questions=None):\n    \"\"\"The model `cellc run` trained on {} ({} stacked `{}` layer(s)): inputs are symbols [T, B]\n    (ints) or music frames [T, B, 88] (floats); returns the logits [T, B, V] and every layer's\n    final states. `model` is what `load` returns. {}\"\"\"\n    x = inputs @ model[\"embed\"] if MUSIC else model[\"embed\"][inputs]\n    finals = []\n    for l in range(LAYERS):\n        y, final = apply(model[\"layers\"][l], x, None if states is None else states[l])\n        if l < REVERSE:\n            rows, inside = _backwards(questions, x.shape[0])\n            back, _ = apply(model[\"reverse\"][l], jnp.take_along_axis(x, rows, axis=0), None, questions)\n            y = y + jnp.where(inside, jnp.take_along_axis(back, rows, axis=0), 0.0)\n        x = y\n        finals.append(final)\n    return x @ model[\"out.W\"].T + model[\"out.b\"], finals\n\n\n",
        m.task,
        m.layers,
        cell.name,
        QUESTIONS_DOC.replace("\n        ", "\n    ")
    ));
    s.push_str(
        "def model_loss(model, inputs, targets, weights=None):\n    \"\"\"The mean loss over the rows of weight 1, as `cellc test` reports it.\"\"\"\n    logits, _ = model_apply(model, inputs, questions=question_lengths(weights) if REVERSE else None)\n    if MUSIC:\n        rows = (jnp.maximum(logits, 0) - logits * targets + jnp.log1p(jnp.exp(-jnp.abs(logits)))).sum(-1)\n    else:\n        logp = jax.nn.log_softmax(logits, axis=-1)\n        rows = -jnp.take_along_axis(logp, targets[..., None], axis=-1)[..., 0]\n    if weights is None:\n        return rows.mean()\n    return (rows * weights).sum() / weights.sum()\n\n\n",
    );
    s.push_str(JAX_QUESTIONS);
    s.push_str(READ_VERIFIED);
    s.push_str(
        "def load(path=\"model.safetensors\", dtype=jnp.float32):\n    \"\"\"The trained model from a checkpoint's `model.safetensors` (its digests verified), as\n    nested dicts.\"\"\"\n    t = {k: jnp.asarray(v, dtype) for k, v in _read_verified(path).items()}\n    layers = [{p: t.pop(f\"layer{l}.{p}\") for p in PARAMS} for l in range(LAYERS)]\n    reverse = [{p: t.pop(f\"layer{l}.reverse.{p}\") for p in PARAMS} for l in range(REVERSE)]\n    model = {\"embed\": t.pop(\"embed\"), \"out.W\": t.pop(\"out.W\"), \"out.b\": t.pop(\"out.b\"), \"layers\": layers,\n             \"reverse\": reverse}\n    if t:\n        raise ValueError(f\"{path}: tensors this model does not have: {sorted(t)}\")\n    return model\n",
    );
    s
}

/// A bidirectional PyTorch model's helpers: the question lengths from a batch's weights (as
/// `cellc test` finds them) and the row a question row mirrors.
const TORCH_QUESTIONS: &str = r#"def question_lengths(weights):
    """Each example's question length from a batch's row weights [T, B]: its rows before the first
    weighted one, and that one (0 for an example with no weighted row)."""
    if weights is None:
        raise ValueError("a bidirectional model needs `weights`: they mark where each question ends")
    w = weights != 0
    return torch.where(w.any(0), w.to(torch.int64).argmax(0) + 1, 0)


def _backwards(questions, steps):
    """For rows [T, B]: the row each mirrors within its example's question (q - 1 - t) as [T, B, 1]
    indices, and whether it is inside the question."""
    if questions is None:
        raise ValueError("a bidirectional model needs questions=question_lengths(weights)")
    t = torch.arange(steps, device=questions.device)[:, None]
    inside = t < questions[None, :]
    return torch.where(inside, questions[None, :] - 1 - t, t)[..., None], inside[..., None]


"#;

/// The JAX model's helpers, as [`TORCH_QUESTIONS`].
const JAX_QUESTIONS: &str = r#"def question_lengths(weights):
    """Each example's question length from a batch's row weights [T, B]: its rows before the first
    weighted one, and that one (0 for an example with no weighted row)."""
    if weights is None:
        raise ValueError("a bidirectional model needs `weights`: they mark where each question ends")
    w = weights != 0
    return jnp.where(w.any(0), jnp.argmax(w, axis=0) + 1, 0)


def _backwards(questions, steps):
    """For rows [T, B]: the row each mirrors within its example's question (q - 1 - t), and
    whether it is inside the question ([T, B, 1] each)."""
    if questions is None:
        raise ValueError("a bidirectional model needs questions=question_lengths(weights)")
    t = jnp.arange(steps)[:, None]
    inside = t < questions[None, :]
    return jnp.where(inside, questions[None, :] - 1 - t, t)[..., None], inside[..., None]


"#;

/// The generated modules' reader of `model.safetensors`: it checks the SHA-256 digests cellc
/// writes into every tensor file (`tensors::DIGEST_KEY`, the same rules as `TensorSet::decode`)
/// and that every weight is finite, so a damaged file fails in Python as it does in cellc.
const READ_VERIFIED: &str = r#"def _read_verified(path):
    """The tensors of a safetensors file cellc wrote, as numpy arrays; a tensor whose bytes do not
    match the digest written with it, a missing or extra tensor, damaged metadata or a weight
    that is not finite is a ValueError naming the file and the tensor."""
    import hashlib
    import json

    import numpy as np
    from safetensors import safe_open

    with safe_open(path, framework="numpy") as f:
        meta = dict(f.metadata() or {})
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    if "cellc.sha256" in meta:
        digests = json.loads(meta.pop("cellc.sha256"))
        h = hashlib.sha256()
        for k in sorted(meta, key=lambda k: k.encode()):
            for part in (k.encode(), meta[k].encode()):
                h.update(len(part).to_bytes(8, "little") + part)
        if digests.get("metadata") != h.hexdigest():
            raise ValueError(f"{path}: the metadata is damaged (it does not match the digest written with it)")
        listed = digests["tensors"]
        for name, a in tensors.items():
            if name not in listed:
                raise ValueError(f"{path}: tensor `{name}` was not written with this file")
            if hashlib.sha256(np.ascontiguousarray(a, dtype="<f4").tobytes()).hexdigest() != listed[name]:
                raise ValueError(f"{path}: tensor `{name}` is damaged (its bytes do not match its digest)")
        for name in listed:
            if name not in tensors:
                raise ValueError(f"{path}: tensor `{name}` is missing (the file was written with it)")
    for name, a in tensors.items():
        if not np.isfinite(a).all():
            raise ValueError(f"{path}: tensor `{name}` has a weight that is not finite")
    return tensors


"#;
