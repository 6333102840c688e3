//! The regularisers in exported code: the `MASKS` table (kind, rate, size per mask, in the order
//! the step computes them) and the code that draws a training step's masks or gives their
//! expectation, for PyTorch and for JAX. Emitted only for cells that use `dropout`,
//! `vardropout` or `zoneout`; the step reads mask k as `masks[k]`.

use crate::check::Cell;

/// `MASKS = [("zoneout", 0.5, "H"), ...]`, or nothing for a cell without regularisers.
pub(super) fn table(cell: &Cell) -> String {
    let masks = cell.masks();
    if masks.is_empty() {
        return String::new();
    }
    let entries: Vec<String> = masks
        .iter()
        .map(|(kind, rate, dim)| format!("({:?}, {}, \"{dim}\")", kind.name(), super::python::python_float(*rate)))
        .collect();
    format!(
        "# The regularisers' masks, in the order the step reads them (`masks[k]`): kind, rate, size.\n# Training draws dropout masks of 0 (probability rate) or 1/(1 - rate) and zoneout masks of 1\n# (keep the old value, probability rate) or 0; evaluation uses their expectation.\nMASKS = [{}]\n",
        entries.join(", ")
    )
}

/// The step module's `masks` method (PyTorch).
pub(super) const TORCH_METHOD: &str = r#"    def masks(self, x, shared=None):
        """The regularisers' masks for one step of the batch x [B, D], one per entry of MASKS:
        drawn in training mode, their expectation in eval mode. `shared`, the masks of the
        sequence's first step, supplies the `vardropout` ones (one mask per sequence)."""
        out = []
        for k, (kind, p, size) in enumerate(MASKS):
            n = self.hidden_size if size == "H" else self.input_size
            if not self.training:
                out.append(x.new_full((1, n), p if kind == "zoneout" else 1.0))
            elif kind == "vardropout" and shared is not None:
                out.append(shared[k])
            else:
                u = torch.rand(x.shape[0], n, dtype=x.dtype, device=x.device)
                out.append((u < p).to(x.dtype) if kind == "zoneout" else (u >= p).to(x.dtype) / (1.0 - p))
        return out

"#;

/// The sequence layer's `forward` for a cell with masks (PyTorch): `states_default` builds
/// zero states, `output` is the emitted state's index.
pub(super) fn torch_layer_forward(states_default: &str, output: usize) -> String {
    let lengths_doc = super::pytorch::LENGTHS_DOC;
    format!(
        r#"    def forward(self, x, states=None, lengths=None, masks=None):
        """x [T, B, D] to ys [T, B, H] and the final states. `masks`: one [T, B, size] tensor per
        entry of MASKS to replay a run's masks (`cellc eval --mask-seed` writes them); without
        it, each step draws new ones in training mode and uses their expectation in eval mode.
        {lengths_doc}"""
        if states is None:
            zeros = x.new_zeros(x.shape[1], self.cell.hidden_size)
            states = ({states_default})
        states = tuple(states)
        ys, shared = [], None
        for t in range(x.shape[0]):
            if masks is not None:
                step_masks = [m[t] for m in masks]
            else:
                step_masks = self.cell.masks(x[t], shared)
                shared = step_masks if shared is None else shared
            states = _hold(self.cell(x[t], *states, masks=step_masks), states, t, lengths)
            ys.append(states[{output}])
        return torch.stack(ys), states
"#
    )
}

/// `expected_masks` and `draw_masks` (JAX).
pub(super) const JAX_FUNCTIONS: &str = r#"def expected_masks(H, D, dtype=jnp.float32):
    """The regularisers' masks at evaluation: their expectation, one [1, size] per MASKS entry."""
    return tuple(jnp.full((1, H if size == "H" else D), rate if kind == "zoneout" else 1.0, dtype)
                 for kind, rate, size in MASKS)


def draw_masks(key, batch, H, D, dtype=jnp.float32, shared=None):
    """One training step's masks, [batch, size] per MASKS entry; `shared` (the first step's)
    supplies the `vardropout` ones (one mask per sequence)."""
    keys = jax.random.split(key, len(MASKS))
    out = []
    for k, (kind, rate, size) in enumerate(MASKS):
        if kind == "vardropout" and shared is not None:
            out.append(shared[k])
            continue
        u = jax.random.uniform(keys[k], (batch, H if size == "H" else D), dtype)
        out.append((u < rate).astype(dtype) if kind == "zoneout" else (u >= rate).astype(dtype) / (1.0 - rate))
    return tuple(out)


"#;

/// `apply` for a cell with masks (JAX): `hidden_param` names a parameter whose first dimension
/// is H, `states_default` builds zero states, `output` is the emitted state's index.
pub(super) fn jax_apply(hidden_param: &str, states_default: &str, output: usize) -> String {
    let lengths_doc = super::jax::LENGTHS_DOC;
    format!(
        r#"def apply(params, xs, states=None, lengths=None, key=None, masks=None):
    """xs [T, B, D] and optional initial states ([B, H] each, zeros by default) to the emitted
    state at every step [T, B, H] and the final states, through `jax.lax.scan`. `key` draws a
    training run's masks (new ones every step; one per sequence for `vardropout`); `masks`, one
    [T, B, size] array per MASKS entry, replays given ones (`cellc eval --mask-seed` writes them);
    with neither, the masks' expectation (evaluation).
    {lengths_doc}"""
    T, B, D = xs.shape
    if states is None:
        zeros = jnp.zeros((B, params[{hidden_param:?}].shape[0]), xs.dtype)
        states = ({states_default})
    H = states[0].shape[1]
    if masks is None and key is not None:
        first, rest = jax.random.split(key)
        shared = draw_masks(first, B, H, D, xs.dtype)
        masks = jax.vmap(lambda k: draw_masks(k, B, H, D, xs.dtype, shared))(jax.random.split(rest, T))
    elif masks is None:
        masks = tuple(jnp.broadcast_to(m, (T,) + m.shape) for m in expected_masks(H, D, xs.dtype))

    def body(carry, inputs):
        t, x, step_masks = inputs
        nxt = _hold(step(params, carry, x, step_masks), carry, t, lengths)
        return nxt, nxt[{output}]

    final, ys = jax.lax.scan(body, tuple(states), (jnp.arange(T), xs, tuple(masks)))
    return ys, final
"#
    )
}
