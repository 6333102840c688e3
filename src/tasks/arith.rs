//! The paper's arithmetic task: read `a+b=` or `a-b=` character by character, with distractor
//! letters between the characters, then predict the answer and an end symbol.
//!
//! The laws (cellc's decisions where the paper is silent; `../shared/design/paper.md` §3):
//! - each operand has d digits, d uniform in `min_digits..=max_digits` (1..=8 by default), no
//!   leading zeros, and a sign uniform in {+, -} (a negative operand is written `-123`);
//! - the operator is uniform in {+, -};
//! - after each input character except `=`, k distractor letters uniform in a..z, with
//!   P(k) = 2^-(k+1) (geometric, mean 1), k capped at 8 (P(k > 8) = 1/512) to bound lengths;
//! - the answer is the exact result in the same notation, followed by `.`.
//!
//! Curriculum (`--curriculum`; training only, never evaluation): the generator has a `level`
//! below `max_digits`; each example then draws its digit counts from `1..=level` with
//! probability 1/2 and from `1..=max_digits` otherwise (the "combined" strategy of Zaremba &
//! Sutskever 2014, "Learning to Execute": short problems teach the carry, the long ones keep
//! the model honest). The trainer adds a digit when validation at the level reaches 0.75.
//!
//! Example: `3e36d9-h1h39f94eeh43keg3c=-13991064.` is 3369 - 13994433. Loss and accuracy are on
//! the answer characters, `.` included, predicted with teacher forcing.

use super::Example;
use crate::rng::Rng;

/// Symbols: digits, operators, `=`, the end symbol, distractor letters, and padding (`_`).
pub const ALPHABET: &[u8] = b"0123456789+-=.abcdefghijklmnopqrstuvwxyz_";

/// Most distractors after one input character.
const MAX_DISTRACTORS: usize = 8;

#[derive(Clone, Debug, PartialEq)]
pub struct Arith {
    pub min_digits: usize,
    pub max_digits: usize,
    /// Mean number of distractors after each input character (0: none).
    pub distractors: f64,
    /// Curriculum: most digits of the easy share of examples (`max_digits`: no curriculum).
    pub level: usize,
}

/// Curriculum: the share of examples drawn from the full range while the level is lower.
const FULL_SHARE: f64 = 0.5;

impl Default for Arith {
    fn default() -> Self {
        Arith { min_digits: 1, max_digits: 8, distractors: 1.0, level: 8 }
    }
}

fn symbol(c: u8) -> u32 {
    ALPHABET.iter().position(|&a| a == c).expect("arith symbol") as u32
}

/// A number with `digits` digits (no leading zero; 0 itself for one digit sometimes).
fn number(rng: &mut Rng, digits: usize) -> i64 {
    let lo = if digits == 1 { 0 } else { 10i64.pow(digits as u32 - 1) };
    let hi = 10i64.pow(digits as u32) - 1;
    lo + rng.below((hi - lo + 1) as u64) as i64
}

impl Arith {
    /// One example: its symbols and the index of the first answer symbol.
    pub fn example(&self, rng: &mut Rng) -> Example {
        // Only a curriculum draws here, so a run without one keeps the plain law's stream.
        let most = if self.level < self.max_digits && !rng.chance(FULL_SHARE) { self.level } else { self.max_digits };
        let mut operand = || {
            let d = rng.range(self.min_digits, most);
            let n = number(rng, d);
            if rng.chance(0.5) { -n } else { n }
        };
        let (a, b) = (operand(), operand());
        let plus = rng.chance(0.5);
        let question = format!("{a}{}{b}=", if plus { '+' } else { '-' });
        let answer = format!("{}.", if plus { a + b } else { a - b });
        let mut symbols = vec![];
        for &c in question.as_bytes() {
            symbols.push(symbol(c));
            if c != b'=' && self.distractors > 0.0 {
                // Geometric: stop with probability 1 / (mean + 1) before each letter.
                let stop = 1.0 / (self.distractors + 1.0);
                let mut k = 0;
                while k < MAX_DISTRACTORS && !rng.chance(stop) {
                    k += 1;
                    symbols.push(symbol(b'a' + rng.below(26) as u8));
                }
            }
        }
        let answer_from = symbols.len();
        symbols.extend(answer.bytes().map(symbol));
        Example { symbols, answer_from }
    }
}

/// The question and answer of an example with its distractors removed, e.g. `12+-5=7.`.
pub fn clean_text(symbols: &[u32]) -> String {
    symbols.iter().map(|&s| ALPHABET[s as usize] as char).filter(|c| !c.is_ascii_lowercase()).collect()
}
