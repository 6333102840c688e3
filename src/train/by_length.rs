//! Sequence batches run by length: each example only for its own steps (the runtime's
//! variable-length runs), unless the run asks for padded batches; a bidirectional model's
//! reverse directions read each example's question.

use super::lm::LmRunner;
use crate::tasks::Batch;

impl LmRunner<'_> {
    /// Makes the next passes run `b`: its steps, and each example for its own length (a batch of
    /// whole examples longest first, unless `padded`), or every example every step.
    pub fn set_batch(&mut self, b: &Batch, pad: u32) -> Result<(), String> {
        self.set_steps(b.steps)?;
        let lengths = if self.padded { None } else { b.lengths(pad) };
        self.set_lengths(lengths.as_deref())?;
        if self.shape.bidirectional {
            self.set_questions(&b.question_lengths())?;
        }
        Ok(())
    }

    /// Each example's length for the next passes, longest first (`None`: every example every
    /// step).
    pub fn set_lengths(&mut self, lengths: Option<&[usize]>) -> Result<(), String> {
        self.layers.iter_mut().try_for_each(|layer| layer.set_lengths(lengths))
    }
}
