//! `cellc._native`: the Rust half of the Python package. [`cell::Cell`] checks a cell and
//! describes it; [`engine::Engine`] runs it over a sequence, forward and backward, on tensor
//! memory that the Python half (`cellc/torch.py`) validates and hands over as addresses;
//! [`saved::SavedMemory`] is reused memory for the activations a forward run saves.
//! Nothing here imports PyTorch: tensors cross as (address, length) pairs.

mod cell;
mod engine;
mod memory;
mod saved;

use pyo3::prelude::*;

pyo3::create_exception!(
    _native,
    CellError,
    pyo3::exceptions::PyValueError,
    "A cell that does not check, or that cannot be found; the message is cellc's report."
);

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<cell::Cell>()?;
    m.add_class::<engine::Engine>()?;
    m.add_class::<saved::SavedMemory>()?;
    m.add_function(wrap_pyfunction!(saved::saved_memory, m)?)?;
    m.add("CellError", m.py().get_type::<CellError>())?;
    m.add_function(wrap_pyfunction!(cell::std_names, m)?)?;
    m.add_function(wrap_pyfunction!(use_openmp, m)?)?;
    m.add_function(wrap_pyfunction!(openmp_in_use, m)?)?;
    Ok(())
}

/// Runs cellc's parallel regions on the GNU OpenMP runtime at `path` (already loaded: PyTorch's),
/// or on cellc's own threads when `path` is None.
#[pyfunction]
#[pyo3(signature = (path))]
fn use_openmp(path: Option<&str>) -> PyResult<()> {
    cellc::runtime::openmp::use_library(path).map_err(pyo3::exceptions::PyOSError::new_err)
}

/// Whether cellc's parallel regions run on an OpenMP runtime.
#[pyfunction]
fn openmp_in_use() -> bool {
    cellc::runtime::openmp::in_use()
}
