//! `cellc._native.Engine`: a cell compiled once, run over whole sequences. float32 runs the JIT's
//! fused kernels; float64 runs the reference interpreter (the specification the JIT is tested
//! against), so that `torch.autograd.gradcheck` can check the op in double precision.
//!
//! Layouts (all row-major, contiguous): x [T, B, D]; states stacked [S, B, H]; y [T, B, H];
//! parameters as the cell declares them ([rows, cols] matrices, as `nn.Linear` stores them).
//! A float32 forward run also writes `saved`, the activations its backward run reads
//! ([`cellc::runtime::Engine::saved_buffers`]): the runtime's buffers for them are the `saved`
//! tensor's memory itself (attached for the call), so nothing is copied out or back in; x is
//! read and dx written in place the same way. What is still copied per call: the initial
//! states in, y and the final states out (the op's outputs may not alias `saved`), the weights
//! into the runtime's vectors and the weight gradients out (a few hundred KB at H 128).

use std::sync::Mutex;

use cellc::interp::{self, SeqInputs};
use cellc::ir::MaskDraw;
use cellc::runtime::{self, Buffers, Sizes};
use cellc::schedule::Blocks;
use ndarray::{Array2, Array3, ArrayD};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::cell::Cell;
use crate::memory::{Addr, input, output};

/// Buffers for one size, with the weight and gradient vectors the runtime's API takes: kept
/// between calls so that a training step allocates nothing after the first.
struct Slot {
    bufs: Buffers,
    weights: Vec<Vec<f32>>,
    grads: Vec<Vec<f32>>,
}

/// The most slots kept (one per size seen recently; forward and backward of one step share).
const POOL: usize = 4;

#[pyclass(frozen, module = "cellc._native")]
pub struct Engine {
    engine: runtime::Engine,
    pool: Mutex<Vec<Slot>>,
}

const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<runtime::Engine>();
};

/// Lengths for the interpreter, checked as the runtime checks them (one per example, longest
/// first).
fn checked_lengths(lengths: Option<Vec<usize>>, s: Sizes) -> PyResult<Option<Vec<usize>>> {
    if let Some(l) = &lengths {
        if l.len() != s.batch {
            return Err(err(format!("{} lengths for a batch of {}", l.len(), s.batch)));
        }
        if l.windows(2).any(|w| w[0] < w[1]) {
            return Err(err("lengths must come longest first (sort the batch's examples by length)".into()));
        }
    }
    Ok(lengths)
}

/// A training run's masks drawn from `seed`, or (`None`) the masks' expectation.
fn masks(seed: Option<u64>) -> MaskDraw {
    seed.map_or(MaskDraw::Expected, MaskDraw::Seed)
}

fn err(e: String) -> PyErr {
    PyValueError::new_err(e)
}

impl Engine {
    fn sizes(&self, (steps, batch, hidden, input): (usize, usize, usize, usize)) -> PyResult<Sizes> {
        let sig = &self.engine.forward.sig;
        if steps == 0 || batch == 0 || hidden == 0 || input == 0 {
            return Err(err(format!("sizes T={steps}, B={batch}, H={hidden}, D={input}: each must be at least 1")));
        }
        if sig.d_equals_h && input != hidden {
            return Err(err(format!("cell `{}` needs input size D equal to hidden size H", sig.name)));
        }
        Ok(Sizes { hidden, input, batch, steps })
    }

    /// A slot for `sizes`, from the pool when one fits.
    fn take(&self, sizes: Sizes) -> Result<Slot, String> {
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        let fits = |s: &Slot| {
            let b = s.bufs.sizes;
            (b.hidden, b.input, b.batch) == (sizes.hidden, sizes.input, sizes.batch)
                && s.bufs.capacity_steps() >= sizes.steps
        };
        let mut slot = match pool.iter().position(fits) {
            Some(i) => pool.swap_remove(i),
            None => {
                drop(pool);
                let lens = self.engine.param_lens(sizes);
                Slot {
                    bufs: self.engine.buffers(sizes)?,
                    weights: lens.iter().map(|&n| vec![0.0; n]).collect(),
                    grads: lens.iter().map(|&n| vec![0.0; n]).collect(),
                }
            }
        };
        slot.bufs.set_steps(sizes.steps)?;
        Ok(slot)
    }

    fn give_back(&self, slot: Slot) {
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() >= POOL {
            pool.remove(0);
        }
        pool.push(slot);
    }

    /// Copies the caller's weights into the slot (the runtime takes `&[Vec<f32>]`).
    fn read_weights(&self, slot: &mut Slot, weights: &[Addr]) -> PyResult<()> {
        check_count(weights.len(), slot.weights.len(), "weights")?;
        for ((w, &addr), p) in slot.weights.iter_mut().zip(weights).zip(&self.engine.forward.sig.params) {
            let n = w.len();
            w.copy_from_slice(input::<f32>(addr, n, &p.name)?);
        }
        Ok(())
    }

    /// The weights as the interpreter takes them (f64 arrays of the parameters' shapes).
    fn weights64(&self, s: Sizes, weights: &[Addr]) -> PyResult<Vec<ArrayD<f64>>> {
        let params = &self.engine.forward.sig.params;
        check_count(weights.len(), params.len(), "weights")?;
        params
            .iter()
            .zip(weights)
            .map(|(p, &addr)| {
                let values = input::<f64>(addr, p.len(s.hidden, s.input), &p.name)?.to_vec();
                ArrayD::from_shape_vec(p.dims(s.hidden, s.input), values).map_err(|e| err(e.to_string()))
            })
            .collect()
    }

    fn inputs64(&self, s: Sizes, x: Addr, h0: Addr) -> PyResult<SeqInputs> {
        let n_states = self.engine.forward.sig.states.len();
        let x = input::<f64>(x, s.steps * s.batch * s.input, "x")?.to_vec();
        let x = Array3::from_shape_vec((s.steps, s.batch, s.input), x).map_err(|e| err(e.to_string()))?;
        let h0 = input::<f64>(h0, n_states * s.batch * s.hidden, "states")?;
        let states = h0
            .chunks(s.batch * s.hidden)
            .map(|c| Array2::from_shape_vec((s.batch, s.hidden), c.to_vec()).map_err(|e| err(e.to_string())))
            .collect::<PyResult<_>>()?;
        Ok(SeqInputs::new(x, states))
    }
}

fn check_count(got: usize, want: usize, what: &str) -> PyResult<()> {
    if got != want {
        return Err(err(format!("{got} {what} given, the cell has {want}")));
    }
    Ok(())
}

type Dims = (usize, usize, usize, usize);

#[pymethods]
impl Engine {
    #[new]
    fn new(cell: &Cell) -> PyResult<Engine> {
        let engine = runtime::Engine::compile(&cell.cell).map_err(err)?;
        Ok(Engine { engine, pool: Mutex::new(vec![]) })
    }

    /// The saved activations' layout: per buffer, (columns per H, columns per D, rows), rows
    /// being "steps" (T*B), "states" ((T+1)*B) or "once" (1). Their sum of columns times rows is
    /// the length of `saved`, computed in Python so that it works on symbolic sizes.
    fn saved_layout(&self) -> Vec<(u32, u32, &'static str)> {
        self.engine
            .saved_buffers()
            .map(|b| {
                let rows = match b.blocks {
                    Blocks::Steps => "steps",
                    Blocks::StatesPlusOne => "states",
                    Blocks::Broadcast => "once",
                    // Only the backward pass writes per-part sums; they are never saved.
                    Blocks::Parts => "parts",
                };
                (b.width.h, b.width.d, rows)
            })
            .collect()
    }

    /// The number of values of `saved` at sizes (T, B, H, D).
    fn saved_len(&self, dims: Dims) -> PyResult<usize> {
        Ok(self.engine.saved_len(self.sizes(dims)?))
    }

    /// float32 forward over a sequence: x, h0 and the weights to y, the final states and (when
    /// `saved` is given) the saved activations.
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (dims, x, h0, weights, y, h_final, saved, threads, mask_seed=None, lengths=None))]
    fn forward(
        &self,
        py: Python<'_>,
        dims: Dims,
        x: Addr,
        h0: Addr,
        weights: Vec<Addr>,
        y: Addr,
        h_final: Addr,
        saved: Option<Addr>,
        threads: usize,
        mask_seed: Option<u64>,
        lengths: Option<Vec<usize>>,
    ) -> PyResult<()> {
        let s = self.sizes(dims)?;
        let e = &self.engine;
        let n_states = e.forward.sig.states.len();
        let block = s.batch * s.hidden;
        let x = input::<f32>(x, s.steps * s.batch * s.input, "x")?;
        let h0 = input::<f32>(h0, n_states * block, "states")?;
        let y = output::<f32>(y, s.steps * block, "y")?;
        let h_final = output::<f32>(h_final, n_states * block, "final states")?;
        let saved = saved.map(|a| output::<f32>(a, e.saved_len(s), "saved")).transpose()?;
        let mut slot = self.take(s).map_err(err)?;
        self.read_weights(&mut slot, &weights)?;
        // The masks land in `saved`, so the backward run reads the same ones.
        slot.bufs.set_masks(masks(mask_seed));
        let lengths = slot.bufs.set_lengths(lengths.as_deref());
        if let Err(e) = lengths {
            self.give_back(slot);
            return Err(err(e));
        }
        let slot = py.detach(move || -> Result<Slot, String> {
            // x is read in place; the run's activations go straight into `saved`.
            // SAFETY: x and `saved` are tensors of this call, alive until it returns, x only
            // read and `saved` fresh; we detach before returning.
            unsafe { slot.bufs.attach_input(e, x.as_ptr(), x.len()) }?;
            if let Some(saved) = saved {
                unsafe { slot.bufs.attach_saved(e, saved.as_mut_ptr(), saved.len()) }?;
            }
            for (st, values) in h0.chunks(block).enumerate() {
                slot.bufs.initial_state_mut(e, st).copy_from_slice(values);
            }
            if let Err(failed) = e.forward(&mut slot.bufs, &slot.weights, threads.max(1)) {
                slot.bufs.detach();
                return Err(failed);
            }
            y.copy_from_slice(slot.bufs.output(e));
            for (st, dst) in h_final.chunks_mut(block).enumerate() {
                dst.copy_from_slice(slot.bufs.final_state(e, st));
            }
            slot.bufs.detach();
            Ok(slot)
        });
        self.give_back(slot.map_err(err)?);
        Ok(())
    }

    /// float32 backward from what `forward` saved: dy [T, B, H] and the final states' gradients
    /// [S, B, H] to the gradients of x, of the initial states and of every weight.
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (dims, x, saved, weights, dy, dh_final, dx, dh0, dweights, threads, lengths=None))]
    fn backward(
        &self,
        py: Python<'_>,
        dims: Dims,
        x: Addr,
        saved: Addr,
        weights: Vec<Addr>,
        dy: Addr,
        dh_final: Addr,
        dx: Addr,
        dh0: Addr,
        dweights: Vec<Addr>,
        threads: usize,
        lengths: Option<Vec<usize>>,
    ) -> PyResult<()> {
        let s = self.sizes(dims)?;
        let e = &self.engine;
        let n_states = e.forward.sig.states.len();
        let block = s.batch * s.hidden;
        // Checked like every address, then used as raw memory: the runtime reads it in place.
        let saved_len = input::<f32>(saved, e.saved_len(s), "saved")?.len();
        let saved = saved.0;
        let dy = input::<f32>(dy, s.steps * block, "dy")?;
        let dh_final = input::<f32>(dh_final, n_states * block, "final-state gradients")?;
        let x = input::<f32>(x, s.steps * s.batch * s.input, "x")?;
        let dx = output::<f32>(dx, s.steps * s.batch * s.input, "dx")?;
        let dh0 = output::<f32>(dh0, n_states * block, "initial-state gradients")?;
        check_count(dweights.len(), e.forward.sig.params.len(), "weight gradients")?;
        let dweights = e
            .forward
            .sig
            .params
            .iter()
            .zip(&dweights)
            .map(|(p, &a)| output::<f32>(a, p.len(s.hidden, s.input), &p.name))
            .collect::<PyResult<Vec<_>>>()?;
        let mut slot = self.take(s).map_err(err)?;
        self.read_weights(&mut slot, &weights)?;
        if let Err(e) = slot.bufs.set_lengths(lengths.as_deref()) {
            self.give_back(slot);
            return Err(err(e));
        }
        let slot = py.detach(move || -> Result<Slot, String> {
            let d_final: Vec<&[f32]> = dh_final.chunks(block).collect();
            let Slot { bufs, weights, grads } = &mut slot;
            // SAFETY: `saved` is alive until this call returns and the backward run only reads
            // it (`backward_final` refuses a cell whose backward pass would write it); we
            // detach before returning.
            // x is read in place and dx written in place, as `saved` is read.
            unsafe {
                bufs.attach_saved(e, saved as *mut f32, saved_len)?;
                bufs.attach_input(e, x.as_ptr(), x.len())?;
                bufs.attach_input_grad(e, dx.as_mut_ptr(), dx.len())?;
            }
            e.prepare_weights(bufs, weights);
            let run = e.backward_final(bufs, weights, dy, &d_final, grads, threads.max(1));
            bufs.detach();
            run?;
            for (st, dst) in dh0.chunks_mut(block).enumerate() {
                dst.copy_from_slice(bufs.initial_state_grad(e, st));
            }
            for (dst, g) in dweights.into_iter().zip(grads.iter()) {
                dst.copy_from_slice(g);
            }
            Ok(slot)
        });
        self.give_back(slot.map_err(err)?);
        Ok(())
    }

    /// float64 forward by the reference interpreter: x, h0 and the weights to y and the final
    /// states.
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (dims, x, h0, weights, y, h_final, mask_seed=None, lengths=None))]
    fn forward64(
        &self,
        py: Python<'_>,
        dims: Dims,
        x: Addr,
        h0: Addr,
        weights: Vec<Addr>,
        y: Addr,
        h_final: Addr,
        mask_seed: Option<u64>,
        lengths: Option<Vec<usize>>,
    ) -> PyResult<()> {
        let s = self.sizes(dims)?;
        let n_states = self.engine.forward.sig.states.len();
        let inputs =
            SeqInputs { masks: masks(mask_seed), lengths: checked_lengths(lengths, s)?, ..self.inputs64(s, x, h0)? };
        let weights = self.weights64(s, &weights)?;
        let y = output::<f64>(y, s.steps * s.batch * s.hidden, "y")?;
        let h_final = output::<f64>(h_final, n_states * s.batch * s.hidden, "final states")?;
        let out = py.detach(|| interp::forward(&self.engine.forward, &weights, &inputs)).map_err(err)?;
        y.iter_mut().zip(out.y.iter()).for_each(|(d, v)| *d = *v);
        h_final.iter_mut().zip(out.states.iter().flat_map(|a| a.iter())).for_each(|(d, v)| *d = *v);
        Ok(())
    }

    /// float64 backward by the interpreter (it runs the forward pass again: this path is for
    /// checking, not speed).
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (dims, x, h0, weights, dy, dh_final, dx, dh0, dweights, mask_seed=None, lengths=None))]
    fn backward64(
        &self,
        py: Python<'_>,
        dims: Dims,
        x: Addr,
        h0: Addr,
        weights: Vec<Addr>,
        dy: Addr,
        dh_final: Addr,
        dx: Addr,
        dh0: Addr,
        dweights: Vec<Addr>,
        mask_seed: Option<u64>,
        lengths: Option<Vec<usize>>,
    ) -> PyResult<()> {
        let s = self.sizes(dims)?;
        let e = &self.engine;
        let n_states = e.forward.sig.states.len();
        let block = s.batch * s.hidden;
        let inputs =
            SeqInputs { masks: masks(mask_seed), lengths: checked_lengths(lengths, s)?, ..self.inputs64(s, x, h0)? };
        let weights = self.weights64(s, &weights)?;
        let dy = input::<f64>(dy, s.steps * block, "dy")?.to_vec();
        let dy = Array3::from_shape_vec((s.steps, s.batch, s.hidden), dy).map_err(|e| err(e.to_string()))?;
        let d_final = input::<f64>(dh_final, n_states * block, "final-state gradients")?
            .chunks(block)
            .map(|c| Array2::from_shape_vec((s.batch, s.hidden), c.to_vec()).map_err(|e| err(e.to_string())))
            .collect::<PyResult<Vec<_>>>()?;
        let dx = output::<f64>(dx, s.steps * s.batch * s.input, "dx")?;
        let dh0 = output::<f64>(dh0, n_states * block, "initial-state gradients")?;
        check_count(dweights.len(), e.forward.sig.params.len(), "weight gradients")?;
        let grads = py
            .detach(|| {
                let out = interp::forward(&e.forward, &weights, &inputs)?;
                Ok(interp::backward_final(&e.backward, &weights, &inputs, &out, &dy, &d_final))
            })
            .map_err(err)?;
        dx.iter_mut().zip(grads.x.iter()).for_each(|(d, v)| *d = *v);
        dh0.iter_mut().zip(grads.states.iter().flat_map(|a| a.iter())).for_each(|(d, v)| *d = *v);
        for ((p, &addr), g) in e.forward.sig.params.iter().zip(&dweights).zip(&grads.params) {
            let dst = output::<f64>(addr, p.len(s.hidden, s.input), &p.name)?;
            dst.iter_mut().zip(g.iter()).for_each(|(d, v)| *d = *v);
        }
        Ok(())
    }
}
