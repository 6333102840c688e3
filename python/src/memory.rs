//! Tensor memory handed over by address: the one place that makes slices from raw pointers.
//!
//! The contract, kept by `cellc/torch.py`: every address is the `data_ptr()` of a contiguous CPU
//! tensor, passed with its element count and element size, alive for the whole call; the
//! tensors written were allocated for this call and overlap nothing else; no other thread writes
//! an input while the call runs. The count and size are checked here against what the kernels
//! will touch, so a caller that got a shape or dtype wrong gets an error, not a wild read.

use pyo3::PyResult;
use pyo3::exceptions::PyValueError;

/// A tensor as Python passes it: (address, element count, bytes per element).
pub type Addr = (usize, usize, usize);

/// Checks a tensor before it becomes a slice of `len` values of `T`.
fn check<T>((addr, numel, itemsize): Addr, len: usize, what: &str) -> PyResult<()> {
    if itemsize != std::mem::size_of::<T>() {
        return Err(PyValueError::new_err(format!(
            "{what}: {itemsize}-byte elements given, {} expected",
            std::mem::size_of::<T>()
        )));
    }
    if numel != len {
        return Err(PyValueError::new_err(format!("{what}: {numel} values given, {len} expected")));
    }
    if len > 0 && addr == 0 {
        return Err(PyValueError::new_err(format!("{what}: null tensor address")));
    }
    if len > 0 && !addr.is_multiple_of(std::mem::align_of::<T>()) {
        return Err(PyValueError::new_err(format!("{what}: tensor address {addr:#x} is not aligned")));
    }
    if len.checked_mul(std::mem::size_of::<T>()).is_none_or(|b| b > isize::MAX as usize) {
        return Err(PyValueError::new_err(format!("{what}: {len} values is too many")));
    }
    Ok(())
}

/// `len` values at `addr`, read only.
pub fn input<'a, T>(addr: Addr, len: usize, what: &str) -> PyResult<&'a [T]> {
    check::<T>(addr, len, what)?;
    if len == 0 {
        return Ok(&[]);
    }
    // SAFETY: the module contract above: a live, aligned, initialised tensor of len values (just
    // checked) that nobody writes during the call.
    Ok(unsafe { std::slice::from_raw_parts(addr.0 as *const T, len) })
}

/// `len` values at `addr`, written by this call.
pub fn output<'a, T>(addr: Addr, len: usize, what: &str) -> PyResult<&'a mut [T]> {
    check::<T>(addr, len, what)?;
    if len == 0 {
        return Ok(&mut []);
    }
    // SAFETY: the module contract above: a live, aligned tensor of len values (just checked)
    // allocated for this call, so no other slice aliases it.
    Ok(unsafe { std::slice::from_raw_parts_mut(addr.0 as *mut T, len) })
}
