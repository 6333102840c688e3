//! Memorization, the search's filter: read 5 symbols of 26, then `=`, then reproduce them in order.
//!
//! An example is `qwert=qwert`; the 5 symbols after `=` are the answer (loss and accuracy), each
//! predicted from the one before it with teacher forcing, so the cell must hold all 5 in its state
//! across the marker.

use super::Example;
use crate::rng::Rng;

/// Symbols: the 26 letters, the marker `=`, and padding (`_`).
pub const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz=_";

#[derive(Clone, Debug, PartialEq)]
pub struct Memorize {
    /// Symbols to remember (5 in the paper).
    pub length: usize,
}

impl Default for Memorize {
    fn default() -> Self {
        Memorize { length: 5 }
    }
}

impl Memorize {
    pub fn example(&self, rng: &mut Rng) -> Example {
        let seq: Vec<u32> = (0..self.length).map(|_| rng.below(26) as u32).collect();
        let mut symbols = seq.clone();
        symbols.push(26);
        let answer_from = symbols.len();
        symbols.extend(&seq);
        Example { symbols, answer_from }
    }
}
