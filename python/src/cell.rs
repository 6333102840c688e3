//! `cellc.Cell`'s native half: a checked cell, its parameters and equations, its
//! initialisation, and its exported PyTorch module (the independent eager implementation the
//! tests compare the fused op with).

use cellc::bridge::{self, Framework};
use cellc::cell_arg::{self, LoadError};
use cellc::diag::{self, Diagnostic, RenderStyle};
use cellc::workspace::{CellSource, Workspace};
use pyo3::prelude::*;

use crate::CellError;

/// A checked cell.
#[pyclass(frozen, module = "cellc._native")]
pub struct Cell {
    pub cell: cellc::check::Cell,
    pub source: CellSource,
    /// Each equation as written (`h' = ...`), in source order.
    equations: Vec<String>,
    /// Each parameter's initialisation as an `init` statement writes it.
    inits: Vec<String>,
    /// Warnings the check reported, rendered.
    warnings: String,
}

/// The names of the standard cells.
#[pyfunction]
pub fn std_names() -> Vec<&'static str> {
    cellc::stdlib::names().collect()
}

/// The exception for a failed load: the rendered diagnostics, or the one-line reason.
fn load_error(ws: &Workspace, diags: &[Diagnostic], e: LoadError) -> PyErr {
    match e {
        LoadError::Invalid => {
            let errors: Vec<Diagnostic> = diags.iter().filter(|d| d.is_error()).cloned().collect();
            CellError::new_err(diag::render_all(&errors, &ws.sources, RenderStyle::PLAIN))
        }
        LoadError::Message(m) => CellError::new_err(m),
    }
}

impl Cell {
    fn new(ws: &Workspace, diags: Vec<Diagnostic>, loaded: cell_arg::Loaded) -> PyResult<Cell> {
        let (cell, source) = loaded.map_err(|e| load_error(ws, &diags, e))?;
        let equations = cell
            .equations
            .iter()
            .map(|eq| {
                let text = ws.sources.slice(eq.span);
                text.split_whitespace().collect::<Vec<_>>().join(" ")
            })
            .collect();
        let inits = cell.params.iter().map(|p| p.init.display(&cell)).collect();
        let warnings: Vec<Diagnostic> = diags.into_iter().filter(|d| !d.is_error()).collect();
        let warnings = diag::render_all(&warnings, &ws.sources, RenderStyle::PLAIN);
        Ok(Cell { cell, source, equations, inits, warnings })
    }
}

#[pymethods]
impl Cell {
    /// A cell from a `.cell` path, `PATH:NAME`, or a standard cell's name.
    #[staticmethod]
    fn load(arg: &str) -> PyResult<Cell> {
        let mut ws = Workspace::new();
        let (diags, loaded) = cell_arg::load_cell(&mut ws, arg);
        Cell::new(&ws, diags, loaded)
    }

    /// A cell from `.cell` source text (shown as `file` in reports); `name` picks one of several.
    #[staticmethod]
    #[pyo3(signature = (text, name=None, file="<string>"))]
    fn from_text(text: &str, name: Option<&str>, file: &str) -> PyResult<Cell> {
        let mut ws = Workspace::new();
        let id = ws.add(file, text);
        let (diags, loaded) = cell_arg::pick_cell(&ws, id, file, name);
        Cell::new(&ws, diags, loaded)
    }

    #[getter]
    fn name(&self) -> &str {
        &self.cell.name
    }

    /// The text of the file that defines the cell.
    #[getter]
    fn source(&self) -> &str {
        &self.source.text
    }

    #[getter]
    fn file(&self) -> &str {
        &self.source.file
    }

    #[getter]
    fn states(&self) -> Vec<String> {
        self.cell.states.iter().map(|s| s.name.clone()).collect()
    }

    /// The index of the state the cell emits each step.
    #[getter]
    fn output(&self) -> usize {
        self.cell.output
    }

    /// Whether the input size must equal the hidden size.
    #[getter]
    fn d_equals_h(&self) -> bool {
        cellc::ir::lower(&self.cell).sig.d_equals_h
    }

    /// (kind, rate, size "H" or "D") per regulariser mask (`dropout`, `vardropout`,
    /// `zoneout`), in the order the cell computes them: random in training runs, their
    /// expectation otherwise.
    #[getter]
    fn masks(&self) -> Vec<(String, f64, String)> {
        let sig = cellc::ir::lower(&self.cell).sig;
        sig.masks.iter().map(|m| (m.kind.name().to_string(), m.rate, m.dim.to_string())).collect()
    }

    #[getter]
    fn equations(&self) -> Vec<String> {
        self.equations.clone()
    }

    /// The check's warnings, rendered ("" when none).
    #[getter]
    fn warnings(&self) -> &str {
        &self.warnings
    }

    /// (name, shape in H and D such as "[H, D]", init) per parameter, in the order the kernels
    /// take them.
    #[getter]
    fn params(&self) -> Vec<(String, String, String)> {
        self.cell
            .params
            .iter()
            .zip(&self.inits)
            .map(|(p, init)| (p.name.clone(), p.kind.to_string(), init.clone()))
            .collect()
    }

    /// Each parameter's shape at hidden size `hidden` and input size `input`.
    fn param_shapes(&self, hidden: usize, input: usize) -> Vec<Vec<usize>> {
        cellc::ir::lower(&self.cell).sig.params.iter().map(|p| p.dims(hidden, input)).collect()
    }

    /// Initial values by the cell's own rules (the trainer's), flattened, one list per parameter.
    #[pyo3(signature = (hidden, input, seed, init_scale=1.0))]
    fn initialise(&self, hidden: usize, input: usize, seed: u64, init_scale: f64) -> PyResult<Vec<Vec<f64>>> {
        if hidden == 0 || input == 0 {
            return Err(pyo3::exceptions::PyValueError::new_err("hidden and input sizes must be at least 1"));
        }
        let sig = cellc::ir::lower(&self.cell).sig;
        let values = cellc::init::initialise(&sig, hidden, input, init_scale, seed);
        Ok(values.into_iter().map(|v| v.into_iter().collect()).collect())
    }

    /// The cell as a self-contained PyTorch module (what `cellc export` writes).
    fn export_torch(&self) -> String {
        bridge::cell_module(&self.cell, &self.source, Framework::Pytorch)
    }

    /// The symbolic derivative, as `cellc grad` prints it.
    fn grad_text(&self) -> String {
        let graph = cellc::ir::lower(&self.cell);
        cellc::autodiff::print::backward_text(&cellc::autodiff::grad(&graph))
    }

    fn __repr__(&self) -> String {
        format!("cellc.Cell({:?}: {})", self.cell.name, self.equations.join("; "))
    }
}
