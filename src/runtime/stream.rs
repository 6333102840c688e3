//! Streaming inference: a cell one step at a time, its states carried from step to step (what
//! generation needs: the next input depends on the last output). The same compiled kernels as
//! training, in buffers of one step.

use super::{Buffers, Engine, Sizes};

/// A cell run step by step for `batch` sequences at once.
pub struct Stream<'e> {
    engine: &'e Engine,
    bufs: Buffers,
    threads: usize,
    /// Whether the next step starts from the last step's states (false: from the initial ones).
    started: bool,
}

impl<'e> Stream<'e> {
    /// A stream at hidden size `hidden`, input size `input`, starting from zero states.
    pub fn new(
        engine: &'e Engine,
        hidden: usize,
        input: usize,
        batch: usize,
        threads: usize,
    ) -> Result<Stream<'e>, String> {
        let mut bufs = engine.buffers(Sizes { hidden, input, batch, steps: 1 })?;
        bufs.zero_states(engine);
        Ok(Stream { engine, bufs, threads: threads.max(1), started: false })
    }

    /// Back to zero states.
    pub fn reset(&mut self) {
        self.bufs.zero_states(self.engine);
        self.started = false;
    }

    /// Sets state `s` ([batch, hidden]) for the next step.
    pub fn set_state(&mut self, s: usize, values: &[f32]) -> Result<(), String> {
        if self.started {
            self.bufs.carry_states(self.engine);
            self.started = false;
        }
        let dst = self.bufs.initial_state_mut(self.engine, s);
        if dst.len() != values.len() {
            return Err(format!("state {s} has {} values, not {}", dst.len(), values.len()));
        }
        dst.copy_from_slice(values);
        Ok(())
    }

    /// State `s` after the last step ([batch, hidden]; the initial one before any step).
    pub fn state(&self, s: usize) -> &[f32] {
        if self.started { self.bufs.final_state(self.engine, s) } else { self.bufs.initial_state(self.engine, s) }
    }

    /// One step: `x` ([batch, input]) and the carried states to the emitted state ([batch,
    /// hidden]); the new states are carried to the next step.
    pub fn step(&mut self, weights: &[Vec<f32>], x: &[f32]) -> Result<&[f32], String> {
        let e = self.engine;
        let input = self.bufs.input_mut(e);
        if input.len() != x.len() {
            return Err(format!("the input has {} values, not batch x input = {}", x.len(), input.len()));
        }
        input.copy_from_slice(x);
        if self.started {
            self.bufs.carry_states(e);
        }
        e.forward(&mut self.bufs, weights, self.threads)?;
        self.started = true;
        Ok(self.bufs.output(e))
    }
}
