"""Runs code that `cellc export` wrote in real PyTorch and real JAX, and compares it with what
cellc computed (tests/bridge.rs prepares the cases and reads the verdict).

    python check_export.py MANIFEST.json

The manifest lists cases of three kinds:

- "cell": an exported cell (`torch`, `jax`: the two modules), the weights and inputs given to
  `cellc eval --engine interp --grad` and what it wrote (`expected`). Both frameworks run the
  sequence layer in float64 with loss = sum(dy * y) and must match every output and gradient.
- "model": an exported trained model (`torch`, `jax` written with `--checkpoint`), the checkpoint's
  `model.safetensors`, a batch (`inputs`, `targets`, `weights`) and the loss `cellc test --batch`
  printed.
- "torch_rnn": writes an `nn.LSTM`/`nn.GRU` (seeded, `layers` layers) as a safetensors state dict
  with an input and PyTorch's outputs, for `cellc import` to be checked against.

Prints one line per case and a last line `ok N` or `failed N`; exits 1 when any case fails.
"""

import importlib.util
import json
import os
import sys
import tempfile
import traceback

import numpy as np

import jax

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402  (after x64 is switched on)
import torch  # noqa: E402
from safetensors.numpy import load_file, save_file  # noqa: E402

TOLERANCE = 1e-5


def load_module(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def worst_error(got, want):
    """Largest |got - want| relative to max(1, |want|)."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    if got.shape != want.shape:
        raise AssertionError(f"shape {got.shape}, expected {want.shape}")
    if got.size == 0:
        return 0.0
    return float(np.max(np.abs(got - want) / np.maximum(1.0, np.abs(want))))


def compare(what, got, expected):
    """Every expected tensor against `got` (a dict of the same names); returns the worst error."""
    worst = 0.0
    for name, want in expected.items():
        if name not in got:
            raise AssertionError(f"{what}: no `{name}` computed")
        e = worst_error(got[name], want)
        if not e <= TOLERANCE:
            raise AssertionError(f"{what}: `{name}` differs by {e:.3g} (relative)")
        worst = max(worst, e)
    return worst


def layer_class(module):
    classes = [
        c
        for c in vars(module).values()
        if isinstance(c, type) and issubclass(c, torch.nn.Module) and c.__name__.endswith("Layer")
    ]
    if len(classes) != 1:
        raise AssertionError(f"expected one Layer class, found {[c.__name__ for c in classes]}")
    return classes[0]


def replayed_masks(expected):
    """The masks `cellc eval --mask-seed` used (`mask.<k>`, [T, B, size]), taken out of
    `expected`; None when it used their expectation."""
    masks = []
    while f"mask.{len(masks)}" in expected:
        masks.append(expected.pop(f"mask.{len(masks)}"))
    return masks or None


def cell_torch(case, weights, inputs, expected, module, masks):
    x = inputs["x"]
    layer = layer_class(module)(x.shape[2], case["hidden"]).double()
    if masks is None:
        layer.eval()  # a cell's regularisers at their expectation, as `cellc eval` without a seed
    params = dict(layer.cell.named_parameters())
    if sorted(params) != sorted(weights):
        raise AssertionError(f"parameters {sorted(params)}, cellc has {sorted(weights)}")
    with torch.no_grad():
        for name, p in params.items():
            p.copy_(torch.from_numpy(weights[name].astype(np.float64)))
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    states = [torch.tensor(inputs[s], dtype=torch.float64, requires_grad=True) for s in module.STATES]
    extra = {}
    if masks is not None:
        extra["masks"] = [torch.from_numpy(m.astype(np.float64)) for m in masks]
    if "lengths" in inputs:
        extra["lengths"] = torch.from_numpy(inputs["lengths"].astype(np.int64))
    ys, final = layer(xt, states, **extra)
    loss = (ys * torch.from_numpy(inputs["dy"].astype(np.float64))).sum()
    if loss.requires_grad:  # a cell whose output is a constant has no gradients at all
        loss.backward()
    # A tensor the loss does not depend on has no gradient: it is zero.
    grad = lambda t: np.zeros(t.shape) if t.grad is None else t.grad.numpy()  # noqa: E731
    got = {"y": ys.detach().numpy(), "grad.x": grad(xt)}
    for s, v, g in zip(module.STATES, final, states):
        got[s] = v.detach().numpy()
        got[f"grad.{s}"] = grad(g)
    for name, p in params.items():
        got[f"grad.{name}"] = grad(p)
    return compare("pytorch", got, expected)


def cell_jax(case, weights, inputs, expected, module, masks):
    params = {k: jnp.asarray(v, jnp.float64) for k, v in weights.items()}
    if sorted(module.PARAMS) != sorted(weights):
        raise AssertionError(f"PARAMS {sorted(module.PARAMS)}, cellc has {sorted(weights)}")
    xs = jnp.asarray(inputs["x"], jnp.float64)
    states = tuple(jnp.asarray(inputs[s], jnp.float64) for s in module.STATES)
    dy = jnp.asarray(inputs["dy"], jnp.float64)

    replay = {} if masks is None else {"masks": tuple(jnp.asarray(m, jnp.float64) for m in masks)}
    if "lengths" in inputs:
        replay["lengths"] = jnp.asarray(inputs["lengths"].astype(np.int64))

    def loss(params, xs, states):
        ys, _ = module.apply(params, xs, states, **replay)
        return jnp.sum(dy * ys)

    ys, final = module.apply(params, xs, states, **replay)
    g_params, g_x, g_states = jax.grad(loss, argnums=(0, 1, 2))(params, xs, states)
    got = {"y": ys, "grad.x": g_x}
    for s, v, g in zip(module.STATES, final, g_states):
        got[s] = v
        got[f"grad.{s}"] = g
    for name, g in g_params.items():
        got[f"grad.{name}"] = g
    return compare("jax", got, expected)


def check_cell(case, i):
    weights = load_file(case["weights"])
    inputs = load_file(case["inputs"])
    expected = load_file(case["expected"])
    masks = replayed_masks(expected)
    t = cell_torch(case, weights, inputs, expected, load_module(case["torch"], f"torch_cell_{i}"), masks)
    j = cell_jax(case, weights, inputs, expected, load_module(case["jax"], f"jax_cell_{i}"), masks)
    return f"pytorch {t:.1e}, jax {j:.1e}"


def check_model(case, i):
    batch = load_file(case["batch"])
    music = batch["inputs"].ndim == 3
    want = case["loss"]
    tm = load_module(case["torch"], f"torch_model_{i}")
    model = tm.load(case["checkpoint"], dtype=torch.float64)
    if music:
        inputs = torch.from_numpy(batch["inputs"].astype(np.float64))
        targets = torch.from_numpy(batch["targets"].astype(np.float64))
    else:
        inputs = torch.from_numpy(batch["inputs"].astype(np.int64))
        targets = torch.from_numpy(batch["targets"].astype(np.int64))
    weights = torch.from_numpy(batch["weights"].astype(np.float64)) if "weights" in batch else None
    with torch.no_grad():
        t = float(tm.Model.loss(model, inputs, targets, weights))
    jm = load_module(case["jax"], f"jax_model_{i}")
    jmodel = jm.load(case["checkpoint"], dtype=jnp.float64)
    cast = jnp.float64 if music else jnp.int64
    j = float(
        jm.model_loss(
            jmodel,
            jnp.asarray(batch["inputs"], cast),
            jnp.asarray(batch["targets"], cast),
            None if weights is None else jnp.asarray(batch["weights"], jnp.float64),
        )
    )
    # cellc computes in f32: its loss carries f32 rounding (about 1e-7 relative per operation).
    for name, got in (("pytorch", t), ("jax", j)):
        if not abs(got - want) <= 1e-4 * max(1.0, abs(want)):
            raise AssertionError(f"{name} loss {got:.7f}, cellc test {want:.7f}")
    check_damage_is_refused(case["checkpoint"], tm, jm)
    return f"loss cellc {want:.6f}, pytorch {t:.6f}, jax {j:.6f}, damage refused"


def check_damage_is_refused(path, tm, jm):
    """A flipped bit in the last weight of a copy: both loaders refuse it, naming the tensor."""
    data = bytearray(open(path, "rb").read())
    data[-1] ^= 0x01
    with tempfile.TemporaryDirectory() as d:
        damaged = os.path.join(d, "model.safetensors")
        open(damaged, "wb").write(bytes(data))
        for name, load in (("pytorch", tm.load), ("jax", jm.load)):
            try:
                load(damaged)
            except ValueError as e:
                if "is damaged" not in str(e) or damaged not in str(e):
                    raise AssertionError(f"{name}: the wrong error for a damaged file: {e}")
            else:
                raise AssertionError(f"{name}: a damaged model.safetensors loaded without an error")


def write_torch_rnn(case, i):
    torch.manual_seed(case["seed"])
    kind = {"nn.LSTM": torch.nn.LSTM, "nn.GRU": torch.nn.GRU}[case["module"]]
    rnn = kind(case["input"], case["hidden"], num_layers=case["layers"])
    x = torch.randn(case["steps"], case["batch"], case["input"])
    with torch.no_grad():
        y, final = rnn(x)
    state_dict = {k: v.detach().contiguous().numpy() for k, v in rnn.state_dict().items()}
    save_file(state_dict, case["state_dict"])
    out = {"x": x.numpy(), "y": y.numpy()}
    if case["module"] == "nn.LSTM":
        out["h_n"], out["c_n"] = final[0].numpy(), final[1].numpy()
    else:
        out["h_n"] = final.numpy()
    save_file(out, case["outputs"])
    return f"wrote {case['state_dict']}"


CHECKS = {"cell": check_cell, "model": check_model, "torch_rnn": write_torch_rnn}


def main():
    cases = json.load(open(sys.argv[1]))
    failed = 0
    for i, case in enumerate(cases):
        try:
            print(f"ok    {case['name']}: {CHECKS[case['kind']](case, i)}", flush=True)
        except Exception as e:  # one failing case must not hide the others
            failed += 1
            print(f"FAIL  {case['name']}: {e}", flush=True)
            traceback.print_exc(file=sys.stdout)
    print(f"failed {failed}" if failed else f"ok {len(cases)}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
