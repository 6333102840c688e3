//! A cell for JAX: pure functions. `init(key, input_size, hidden_size)` gives the parameters (a
//! dict named and shaped as in the cell), `step(params, states, x)` one step, and
//! `apply(params, xs, states=None)` the sequence through `jax.lax.scan`.

use super::python::{self, Dialect, dim, docstring, py_name};
use super::regularisers;
use crate::check::{Cell, Init, ParamKind};
use crate::syntax::{Func, Reduction};
use crate::workspace::CellSource;

struct Jax;

impl Dialect for Jax {
    fn call(&self, f: Func, arg: &str) -> String {
        match f {
            Func::Tanh => format!("jnp.tanh({arg})"),
            Func::Sigm => format!("jax.nn.sigmoid({arg})"),
            Func::Relu => format!("jax.nn.relu({arg})"),
            Func::Id => format!("({arg})"),
            Func::Exp => format!("jnp.exp({arg})"),
            Func::Softplus => format!("jax.nn.softplus({arg})"),
            Func::Abs => format!("jnp.abs({arg})"),
            Func::Sqrt => format!("jnp.sqrt({arg})"),
        }
    }
    fn reduce(&self, r: Reduction, arg: &str) -> String {
        format!("jnp.{}({arg}, axis=-1, keepdims=True)", r.name())
    }
    fn param(&self, name: &str) -> String {
        format!("params[\"{name}\"]")
    }
    fn matvec(&self, name: &str, arg: &str) -> String {
        format!("({arg} @ params[\"{name}\"].T)")
    }
    fn rows_like(&self, value: &str, like: &str) -> String {
        format!("jnp.broadcast_to({value}, {like}.shape)")
    }
}

/// The whole file for `cell`.
pub(super) fn module(cell: &Cell, source: &CellSource) -> String {
    let states: Vec<String> = cell.states.iter().map(|s| py_name(&s.name)).collect();
    let nexts = python::next_states(cell, &Jax);
    let names: Vec<String> = cell.states.iter().map(|s| s.name.clone()).collect();
    let mut out = format!(
        "\"\"\"{}: a recurrent cell for JAX (pure functions: `init`, `step`, `apply`).\n\n{}\nEquations, one Python line each in `step`, in the order they are computed.\n\"\"\"\n\nimport math\n\nimport jax\nimport jax.numpy as jnp\n\n",
        cell.name,
        docstring(cell, source, "")
    );
    out.push_str(&format!("STATES = {names:?}\nOUTPUT = {:?}\n", cell.states[cell.output].name));
    out.push_str(&format!("D_EQUALS_H = {}\n", if cell.d_equals_h.is_some() { "True" } else { "False" }));
    out.push_str(&format!("PARAMS = {:?}\n", cell.params.iter().map(|p| p.name.clone()).collect::<Vec<_>>()));
    out.push_str(&regularisers::table(cell));
    out.push_str("\n\n");
    out.push_str(&init_function(cell));
    out.push_str(HOLD);
    let masked = !cell.masks().is_empty();
    if masked {
        out.push_str(regularisers::JAX_FUNCTIONS);
        out.push_str(&format!(
            "def step(params, states, x, masks=None):\n    \"\"\"One step: the states (a tuple ({}), each [B, H]) and x [B, D] to the next states;\n    `masks` from `draw_masks` (training) or, by default, `expected_masks`.\"\"\"\n    {} = states\n    if masks is None:\n        masks = expected_masks(states[0].shape[1], x.shape[1], x.dtype)\n",
            states.join(", "),
            states.join(", ") + ","
        ));
    } else {
        out.push_str(&format!(
            "def step(params, states, x):\n    \"\"\"One step: the states (a tuple ({}), each [B, H]) and x [B, D] to the next states.\"\"\"\n    {} = states\n",
            states.join(", "),
            states.join(", ") + ","
        ));
    }
    out.push_str(&python::equations(cell, &Jax, "    "));
    out.push_str(&format!("    return ({},)\n\n\n", nexts.join(", ")));
    if masked {
        let zeros = vec!["zeros"; cell.states.len()].join(", ") + ",";
        out.push_str(&regularisers::jax_apply(&hidden_param(cell), &zeros, cell.output));
        return out;
    }
    out.push_str(&format!(
        "def apply(params, xs, states=None, lengths=None):\n    \"\"\"xs [T, B, D] and optional initial states ([B, H] each, zeros by default) to the\n    emitted state at every step [T, B, H] and the final states, through `jax.lax.scan`.\n    {}\"\"\"\n    if states is None:\n        H = params[{:?}].shape[0]\n        zeros = jnp.zeros((xs.shape[1], H), xs.dtype)\n        states = ({})\n\n    def body(carry, inputs):\n        t, x = inputs\n        nxt = _hold(step(params, carry, x), carry, t, lengths)\n        return nxt, nxt[{}]\n\n    final, ys = jax.lax.scan(body, tuple(states), (jnp.arange(xs.shape[0]), xs))\n    return ys, final\n",
        LENGTHS_DOC,
        hidden_param(cell),
        vec!["zeros"; cell.states.len()].join(", ") + ",",
        cell.output
    ));
    out
}

/// How `apply` reads `lengths` (in its docstring).
pub(super) const LENGTHS_DOC: &str = "`lengths` [B] (optional): example b runs its first lengths[b] steps, then its\n    state stays as it was (ys repeat it), as cellc's variable-length batches run.";

/// `apply`'s helper for variable-length batches.
const HOLD: &str = "def _hold(new, old, t, lengths):\n    \"\"\"The next states, except for the examples that have ended before step t (they keep theirs).\"\"\"\n    if lengths is None:\n        return new\n    live = (t < lengths)[:, None]\n    return tuple(jnp.where(live, n, o) for n, o in zip(new, old))\n\n\n";

/// A parameter whose first dimension is H (every cell's next state comes from one).
fn hidden_param(cell: &Cell) -> String {
    cell.params
        .iter()
        .find(|p| {
            matches!(
                p.kind,
                ParamKind::Matrix { rows: crate::check::Dim::H, .. } | ParamKind::Vector { len: crate::check::Dim::H }
            )
        })
        .map_or_else(|| "__no_parameter__".to_string(), |p| p.name.clone())
}

/// `init`: the cell's initialisation rules, one key per parameter.
fn init_function(cell: &Cell) -> String {
    let mut s = String::from(
        "def init(key, input_size, hidden_size, init_scale=1.0, dtype=jnp.float32):\n    \"\"\"The parameters, from the cell's initialisation rules; a parameter without one is\n    uniform in +-init_scale/sqrt(fan-in) (its last dimension), the paper's law.\"\"\"\n    H, D = hidden_size, input_size\n    if D_EQUALS_H and D != H:\n        raise ValueError(f\"this cell needs input_size == hidden_size, not {D} != {H}\")\n    keys = jax.random.split(key, max(len(PARAMS), 1))\n    params = {}\n",
    );
    let order = (0..cell.params.len())
        .filter(|&p| !matches!(cell.params[p].init, Init::Copy { .. }))
        .chain((0..cell.params.len()).filter(|&p| matches!(cell.params[p].init, Init::Copy { .. })));
    for p in order {
        let param = &cell.params[p];
        let shape = match param.kind {
            ParamKind::Matrix { rows, cols } => format!("({}, {})", dim(rows), dim(cols)),
            ParamKind::Vector { len } => format!("({},)", dim(len)),
        };
        let k = format!("keys[{p}]");
        let fan_in = match param.kind {
            ParamKind::Matrix { cols, .. } => dim(cols),
            ParamKind::Vector { len } => dim(len),
        };
        let uniform = |scale: &str| {
            format!(
                "jax.random.uniform({k}, {shape}, dtype, -{scale} / math.sqrt({fan_in}), {scale} / math.sqrt({fan_in}))"
            )
        };
        let value = match &param.init {
            Init::Default => uniform("init_scale"),
            Init::Const(v) => format!("jnp.full({shape}, {}, dtype)", python::python_float(*v)),
            Init::Uniform(sc) => uniform(&python::python_float(*sc)),
            Init::Chrono { t_max, negated } => format!(
                "{}jnp.log(jax.random.uniform({k}, {shape}, dtype, 1.0, {} - 1.0))",
                if *negated { "-" } else { "" },
                python::python_float(*t_max)
            ),
            Init::Ugi { negated } => format!(
                "{}(-jnp.log(1.0 / jax.random.uniform({k}, {shape}, dtype, 1.0 / math.prod({shape}), 1.0 - 1.0 / math.prod({shape})) - 1.0))",
                if *negated { "-" } else { "" }
            ),
            Init::Diag(a) => {
                format!("{} + {} * jnp.eye(*{shape}, dtype=dtype)", uniform("init_scale"), python::python_float(*a))
            }
            Init::Orthogonal(gain) => {
                format!("jax.nn.initializers.orthogonal({})({k}, {shape}, dtype)", python::python_float(*gain))
            }
            Init::Copy { param: src, negated } => {
                format!("{}params[\"{}\"]", if *negated { "-" } else { "" }, cell.params[*src].name)
            }
        };
        s.push_str(&format!(
            "    # init {} = {}\n    params[\"{}\"] = {value}\n",
            param.name,
            param.init.display(cell),
            param.name
        ));
    }
    s.push_str("    return params\n\n\n");
    s
}
