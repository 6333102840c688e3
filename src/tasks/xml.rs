//! The paper's synthetic XML, a character stream to predict one character ahead.
//!
//! A document is made by repeating: with probability 1/2, or always after 50 iterations, close
//! the most recently opened tag (`</name>`), or end the document if no tag is open; otherwise
//! open a tag `<name>` with a name of 2..=10 letters uniform in a..z. cellc's decisions: an empty
//! document is skipped (drawn again), documents are separated by a newline, and the stream is
//! endless. Accuracy counts every character (the paper's numbers imply the unpredictable ones
//! count); the secondary metric counts the characters of closing tags after `</` (the name and
//! `>`), which only a cell that remembers the open tags can predict.

use std::collections::VecDeque;

use super::Batch;
use crate::rng::Rng;

/// Symbols: the letters, the markup characters, newline, and padding (`_`, unused in streams).
pub const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz</>\n_";

#[derive(Clone, Debug, PartialEq)]
pub struct Xml {
    /// Parallel streams: the batch size of this task.
    pub streams: usize,
    /// Characters per stream in one validation or test evaluation.
    pub eval_chars: usize,
    /// Most iterations before every open tag is closed (50 in the paper); it bounds the depth.
    pub max_depth: usize,
}

impl Default for Xml {
    fn default() -> Self {
        Xml { streams: 32, eval_chars: 2048, max_depth: 50 }
    }
}

fn symbol(c: u8) -> u32 {
    ALPHABET.iter().position(|&a| a == c).expect("xml symbol") as u32
}

/// Appends one non-empty document (and its newline) to `out`: (symbol, is a closing-tag character
/// after `</`).
fn document(rng: &mut Rng, max_depth: usize, out: &mut VecDeque<(u32, bool)>) {
    loop {
        let mut open: Vec<Vec<u8>> = vec![];
        let mut text: Vec<(u8, bool)> = vec![];
        let mut iterations = 0;
        loop {
            iterations += 1;
            if rng.chance(0.5) || iterations > max_depth {
                let Some(name) = open.pop() else { break };
                text.push((b'<', false));
                text.push((b'/', false));
                text.extend(name.iter().map(|&c| (c, true)));
                text.push((b'>', true));
            } else {
                let len = rng.range(2, 10);
                let name: Vec<u8> = (0..len).map(|_| b'a' + rng.below(26) as u8).collect();
                text.push((b'<', false));
                text.extend(name.iter().map(|&c| (c, false)));
                text.push((b'>', false));
                open.push(name);
            }
        }
        if !text.is_empty() {
            out.extend(text.into_iter().map(|(c, k)| (symbol(c), k)));
            out.push_back((symbol(b'\n'), false));
            return;
        }
    }
}

/// One endless stream of documents.
#[derive(Clone, Debug, PartialEq)]
pub struct Stream {
    rng: Rng,
    max_depth: usize,
    /// The symbol to read next (the last target of the previous batch).
    current: u32,
    /// Upcoming symbols.
    ahead: VecDeque<(u32, bool)>,
}

impl Stream {
    pub fn new(rng: Rng, max_depth: usize) -> Stream {
        // Streams start at a document boundary, as if after a newline.
        Stream { rng, max_depth, current: symbol(b'\n'), ahead: VecDeque::new() }
    }

    fn next(&mut self) -> (u32, bool) {
        if self.ahead.is_empty() {
            document(&mut self.rng, self.max_depth, &mut self.ahead);
        }
        self.ahead.pop_front().expect("a document is never empty")
    }

    pub fn state(&self) -> serde_json::Value {
        let ahead: String = self.ahead.iter().map(|&(s, _)| ALPHABET[s as usize] as char).collect();
        let classes: String = self.ahead.iter().map(|&(_, k)| if k { '1' } else { '0' }).collect();
        serde_json::json!({
            "rng": self.rng.state(),
            "max_depth": self.max_depth,
            "current": self.current,
            "ahead": ahead,
            "classes": classes,
        })
    }

    pub fn restore(v: &serde_json::Value) -> Result<Stream, String> {
        let bad = |what: &str| format!("xml stream state: bad `{what}`");
        let rng: [u64; 4] = serde_json::from_value(v["rng"].clone()).map_err(|_| bad("rng"))?;
        let max_depth = v["max_depth"].as_u64().ok_or_else(|| bad("max_depth"))? as usize;
        let current = v["current"].as_u64().filter(|&c| (c as usize) < ALPHABET.len()).ok_or_else(|| bad("current"))?;
        let ahead = v["ahead"].as_str().ok_or_else(|| bad("ahead"))?;
        let classes = v["classes"].as_str().ok_or_else(|| bad("classes"))?;
        if ahead.len() != classes.len() || !ahead.bytes().all(|c| ALPHABET.contains(&c)) {
            return Err(bad("ahead"));
        }
        let ahead = ahead.bytes().zip(classes.bytes()).map(|(c, k)| (symbol(c), k == b'1')).collect();
        Ok(Stream { rng: Rng::from_state(rng), max_depth, current: current as u32, ahead })
    }
}

/// The next `steps` characters of every stream, one stream per column.
pub fn batch(streams: &mut [Stream], steps: usize) -> Batch {
    let b_max = streams.len();
    let mut batch = Batch::padded(steps, b_max, symbol(b'_'));
    batch.stream = true;
    for (b, s) in streams.iter_mut().enumerate() {
        for t in 0..steps {
            let r = t * b_max + b;
            let (next, closing) = s.next();
            batch.tokens[r] = s.current;
            batch.targets[r] = next;
            batch.weights[r] = 1.0;
            batch.classes[r] = closing;
            s.current = next;
        }
    }
    batch
}
