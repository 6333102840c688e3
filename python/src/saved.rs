//! Memory for the activations a forward run saves for its backward run, reused across steps.
//!
//! A layer's saved activations are one large block per call (50 MB for an LN-LSTM at T=64, B=32,
//! H=128). Allocated by PyTorch, a block that large is a fresh `mmap` every step, and the kernels
//! then pay a page fault per 4 KiB on first touch (measured: the layer's forward took twice as
//! long). Here a block is a Python object exposing its bytes through the buffer protocol; the
//! tensor `torch.frombuffer` makes of it holds the object for as long as PyTorch holds the
//! tensor (autograd's saved tensors included), and when the last reference goes the memory
//! returns to a small pool for the next forward run of the same size.

use std::ffi::{c_int, c_void};
use std::sync::Mutex;

use pyo3::exceptions::PyBufferError;
use pyo3::ffi;
use pyo3::prelude::*;

/// Blocks kept for reuse: one step's forward usually waits while the previous one is freed.
const POOLED_BLOCKS: usize = 2;

static POOL: Mutex<Vec<Vec<f32>>> = Mutex::new(Vec::new());

/// A block of f32 values for saved activations (contents unspecified until the forward run
/// writes them).
#[pyclass(module = "cellc._native")]
pub struct SavedMemory {
    data: Vec<f32>,
}

/// A block of `len` f32 values: a pooled one of that size, or a new one.
#[pyfunction]
pub fn saved_memory(len: usize) -> SavedMemory {
    let reused = {
        let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
        pool.iter().position(|b| b.len() == len).map(|i| pool.swap_remove(i))
    };
    SavedMemory { data: reused.unwrap_or_else(|| vec![0.0; len]) }
}

impl Drop for SavedMemory {
    fn drop(&mut self) {
        let block = std::mem::take(&mut self.data);
        let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
        if pool.len() == POOLED_BLOCKS {
            pool.remove(0); // the oldest goes back to the system
        }
        pool.push(block);
    }
}

#[pymethods]
impl SavedMemory {
    /// The bytes, writable, one-dimensional (`torch.frombuffer(block, dtype=torch.float32)`).
    unsafe fn __getbuffer__(slf: Bound<'_, Self>, view: *mut ffi::Py_buffer, flags: c_int) -> PyResult<()> {
        if view.is_null() {
            return Err(PyBufferError::new_err("no buffer view to fill"));
        }
        let (buf, len) = {
            let mut this = slf.borrow_mut();
            (this.data.as_mut_ptr() as *mut c_void, (this.data.len() * std::mem::size_of::<f32>()) as isize)
        };
        // SAFETY: `view` is the caller's Py_buffer (checked non-null); it holds a reference to
        // `slf`, which owns the bytes, until `__releasebuffer__`; the block never moves or
        // resizes while it exists.
        unsafe {
            (*view).obj = slf.into_any().into_ptr();
            (*view).buf = buf;
            (*view).len = len;
            (*view).readonly = 0;
            (*view).itemsize = 1;
            (*view).format = if flags & ffi::PyBUF_FORMAT == ffi::PyBUF_FORMAT {
                c"B".as_ptr() as *mut _
            } else {
                std::ptr::null_mut()
            };
            (*view).ndim = 1;
            (*view).shape =
                if flags & ffi::PyBUF_ND == ffi::PyBUF_ND { &mut (*view).len } else { std::ptr::null_mut() };
            (*view).strides = if flags & ffi::PyBUF_STRIDES == ffi::PyBUF_STRIDES {
                &mut (*view).itemsize
            } else {
                std::ptr::null_mut()
            };
            (*view).suboffsets = std::ptr::null_mut();
            (*view).internal = std::ptr::null_mut();
        }
        Ok(())
    }

    unsafe fn __releasebuffer__(&self, _view: *mut ffi::Py_buffer) {}
}
