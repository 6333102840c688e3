//! A cell as a PyTorch module: `<Cell>` (one step, an `nn.Module` whose parameters are named and
//! shaped as in the cell) and `<Cell>Layer` (the step over a sequence [T, B, D]).

use super::python::{self, Dialect, class_name, dim, docstring, py_name};
use super::regularisers;
use crate::check::{Cell, Init, ParamKind};
use crate::syntax::{Func, Reduction};
use crate::workspace::CellSource;

struct Torch;

impl Dialect for Torch {
    fn call(&self, f: Func, arg: &str) -> String {
        match f {
            Func::Tanh => format!("torch.tanh({arg})"),
            Func::Sigm => format!("torch.sigmoid({arg})"),
            Func::Relu => format!("torch.relu({arg})"),
            Func::Id => format!("({arg})"),
            Func::Exp => format!("torch.exp({arg})"),
            Func::Softplus => format!("F.softplus({arg})"),
            Func::Abs => format!("torch.abs({arg})"),
            Func::Sqrt => format!("torch.sqrt({arg})"),
        }
    }
    fn reduce(&self, r: Reduction, arg: &str) -> String {
        format!("({arg}).{}(-1, keepdim=True)", r.name())
    }
    fn param(&self, name: &str) -> String {
        format!("self.{name}")
    }
    fn matvec(&self, name: &str, arg: &str) -> String {
        // Batch-major rows: (W v) for every row is v @ W^T.
        format!("({arg} @ self.{name}.T)")
    }
    fn scalar(&self, arg: &str) -> String {
        format!("torch.as_tensor({arg}, dtype=x.dtype)")
    }
    fn rows_like(&self, value: &str, like: &str) -> String {
        format!("torch.as_tensor({value}, dtype=x.dtype).expand_as({like})")
    }
}

/// The whole file for `cell`.
pub(super) fn module(cell: &Cell, source: &CellSource) -> String {
    let class = class_name(cell);
    let states: Vec<String> = cell.states.iter().map(|s| py_name(&s.name)).collect();
    let nexts = python::next_states(cell, &Torch);
    let mut out = format!(
        "\"\"\"{}: a recurrent cell for PyTorch.\n\n{}\nEquations, one Python line each below, in the order they are computed.\n\"\"\"\n\nimport math\n\nimport torch\nimport torch.nn.functional as F\nfrom torch import nn\n\n",
        cell.name,
        docstring(cell, source, "")
    );
    out.push_str(&format!("STATES = {:?}\nOUTPUT = {:?}\n", states_list(cell), cell.states[cell.output].name));
    out.push_str(&format!("D_EQUALS_H = {}\n", if cell.d_equals_h.is_some() { "True" } else { "False" }));
    out.push_str(&regularisers::table(cell));
    let masked = !cell.masks().is_empty();
    out.push_str(HOLD);
    out.push_str(
        "\n\ndef _uniform(p, scale, generator):\n    \"\"\"Uniform in +-scale/sqrt(fan-in), the fan-in being the last dimension.\"\"\"\n    bound = scale / math.sqrt(p.shape[-1])\n    p.uniform_(-bound, bound, generator=generator)\n\n\n",
    );
    out.push_str(&format!(
        "class {class}(nn.Module):\n    \"\"\"One step of `{}`: ({}) and x [B, D] to the next ({}).\n\n    Parameters are named and shaped as in the cell (a matrix [rows, cols] maps a cols-vector\n    to a rows-vector, as `nn.Linear` stores it).\n    \"\"\"\n\n",
        cell.name,
        states.join(", "),
        states.join(", ")
    ));
    out.push_str("    def __init__(self, input_size, hidden_size, init_scale=1.0, generator=None):\n");
    out.push_str("        super().__init__()\n        H, D = hidden_size, input_size\n");
    out.push_str("        if D_EQUALS_H and D != H:\n            raise ValueError(f\"this cell needs input_size == hidden_size, not {D} != {H}\")\n");
    out.push_str("        self.hidden_size, self.input_size = H, D\n");
    for p in &cell.params {
        out.push_str(&format!("        self.{} = nn.Parameter(torch.empty({}))\n", p.name, shape(p.kind)));
    }
    out.push_str("        self.reset_parameters(init_scale, generator)\n\n");
    out.push_str(&init_method(cell));
    if masked {
        out.push_str(regularisers::TORCH_METHOD);
        out.push_str(&format!(
            "    def forward(self, x, {}, masks=None):\n        \"\"\"x [B, D] and the states [B, H] to the next states (a tuple of {}); `masks` as\n        `self.masks(x)` gives them (drawn in training mode, their expectation in eval mode).\"\"\"\n        if masks is None:\n            masks = self.masks(x)\n",
            states.join(", "),
            states.len()
        ));
    } else {
        out.push_str(&format!(
            "    def forward(self, x, {}):\n        \"\"\"x [B, D] and the states [B, H] to the next states (a tuple of {}).\"\"\"\n",
            states.join(", "),
            states.len()
        ));
    }
    out.push_str(&python::equations(cell, &Torch, "        "));
    out.push_str(&format!("        return ({},)\n\n\n", nexts.join(", ")));
    out.push_str(&format!(
        "class {class}Layer(nn.Module):\n    \"\"\"`{}` over a sequence: x [T, B, D] and optional initial states ([B, H] each, zeros by\n    default) to the emitted state at every step [T, B, H] and the final states.\"\"\"\n\n",
        cell.name
    ));
    out.push_str(&format!(
        "    def __init__(self, input_size, hidden_size, init_scale=1.0, generator=None):\n        super().__init__()\n        self.cell = {class}(input_size, hidden_size, init_scale, generator)\n\n"
    ));
    let zeros = vec!["zeros"; cell.states.len()].join(", ") + ",";
    if masked {
        out.push_str(&regularisers::torch_layer_forward(&zeros, cell.output));
        return out;
    }
    out.push_str(&format!(
        "    def forward(self, x, states=None, lengths=None):\n        \"\"\"x [T, B, D] to ys [T, B, H] and the final states. {}\"\"\"\n        if states is None:\n            zeros = x.new_zeros(x.shape[1], self.cell.hidden_size)\n            states = ({})\n        states = tuple(states)\n        ys = []\n        for t in range(x.shape[0]):\n            states = _hold(self.cell(x[t], *states), states, t, lengths)\n            ys.append(states[{}])\n        return torch.stack(ys), states\n",
        LENGTHS_DOC,
        vec!["zeros"; cell.states.len()].join(", ") + ",",
        cell.output
    ));
    out
}

/// How the layer reads `lengths` (in its `forward` docstring).
pub(super) const LENGTHS_DOC: &str = "`lengths` [B]\n        (optional): example b runs its first lengths[b] steps, then its state stays as it was\n        (ys repeat it), as cellc's variable-length batches run.";

/// The layer's helper for variable-length batches.
const HOLD: &str = "\n\ndef _hold(new, old, t, lengths):\n    \"\"\"The next states, except for the examples that have ended before step t (they keep theirs).\"\"\"\n    if lengths is None:\n        return new\n    live = (t < lengths).unsqueeze(1)\n    return tuple(torch.where(live, n, o) for n, o in zip(new, old))\n";

fn states_list(cell: &Cell) -> Vec<String> {
    cell.states.iter().map(|s| s.name.clone()).collect()
}

/// `H, D` or `H` for a parameter's shape.
fn shape(kind: ParamKind) -> String {
    match kind {
        ParamKind::Matrix { rows, cols } => format!("{}, {}", dim(rows), dim(cols)),
        ParamKind::Vector { len } => dim(len).to_string(),
    }
}

/// `reset_parameters`: the cell's initialisation rules, each parameter under its rule.
fn init_method(cell: &Cell) -> String {
    let mut s = String::from(
        "    def reset_parameters(self, init_scale=1.0, generator=None):\n        \"\"\"The cell's initialisation rules; a parameter without one is uniform in\n        +-init_scale/sqrt(fan-in) (its last dimension), the paper's law.\"\"\"\n        g = generator\n        with torch.no_grad():\n",
    );
    // Copies after the parameters they copy.
    let order = (0..cell.params.len())
        .filter(|&p| !matches!(cell.params[p].init, Init::Copy { .. }))
        .chain((0..cell.params.len()).filter(|&p| matches!(cell.params[p].init, Init::Copy { .. })));
    for p in order {
        let param = &cell.params[p];
        let w = format!("self.{}", param.name);
        s.push_str(&format!("            # init {} = {}\n", param.name, param.init.display(cell)));
        let uniform = |scale: &str| format!("_uniform({w}, {scale}, g)");
        let line = match &param.init {
            Init::Default => uniform("init_scale"),
            Init::Const(v) => format!("{w}.fill_({})", python::python_float(*v)),
            Init::Uniform(sc) => uniform(&python::python_float(*sc)),
            Init::Chrono { t_max, negated } => format!(
                "{w}.copy_({}torch.log(torch.empty_like({w}).uniform_(1.0, {} - 1.0, generator=g)))",
                if *negated { "-" } else { "" },
                python::python_float(*t_max)
            ),
            Init::Ugi { negated } => format!(
                "u = torch.empty_like({w}).uniform_(1.0 / {w}.numel(), 1.0 - 1.0 / {w}.numel(), generator=g)\n            {w}.copy_({}(-torch.log(1.0 / u - 1.0)))",
                if *negated { "-" } else { "" }
            ),
            Init::Diag(a) => {
                format!("{}\n            {w}.diagonal().add_({})", uniform("init_scale"), python::python_float(*a))
            }
            Init::Orthogonal(gain) => {
                format!("nn.init.orthogonal_({w}, gain={}, generator=g)", python::python_float(*gain))
            }
            Init::Copy { param: src, negated } => {
                format!("{w}.copy_({}self.{})", if *negated { "-" } else { "" }, cell.params[*src].name)
            }
        };
        s.push_str(&format!("            {line}\n"));
    }
    if cell.params.is_empty() {
        s.push_str("            pass\n");
    }
    s.push('\n');
    s
}
