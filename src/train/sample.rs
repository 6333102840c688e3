//! Generation from a trained model: the language model run one step at a time on the streaming
//! kernels (`runtime::stream`), each step's output drawn from the model's distribution and fed
//! back. Symbols are drawn from the softmax at a temperature, optionally among the k likeliest;
//! music frames note by note from the 88 sigmoids. A seed fixes every draw.

use super::lm::{LmParams, LmShape};
use crate::rng::Rng;
use crate::runtime::Engine;
use crate::runtime::stream::Stream;
use crate::tasks::Task;

/// How to draw.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Options {
    /// Symbols (or frames) to generate after the prime.
    pub length: usize,
    /// Divides the logits: below 1 sharper, above 1 flatter; 0 picks the likeliest every time.
    pub temperature: f64,
    /// Draw among the k likeliest symbols only (0: all).
    pub top_k: usize,
    pub seed: u64,
}

/// One input of the model: a symbol, or a set of sounding notes (music).
#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    Symbol(u32),
    Notes(Vec<u8>),
}

/// A trained model ready to run one step at a time.
pub struct Generator<'e> {
    params: &'e LmParams,
    shape: LmShape,
    layers: Vec<Stream<'e>>,
    x: Vec<f32>,
}

impl<'e> Generator<'e> {
    pub fn new(engine: &'e Engine, params: &'e LmParams, shape: LmShape) -> Result<Generator<'e>, String> {
        if shape.bidirectional {
            return Err("a bidirectional model reads a whole question before answering; generation runs one symbol at a time (evaluate it with `cellc test`)".into());
        }
        let h = shape.hidden;
        let layers = (0..shape.layers).map(|_| Stream::new(engine, h, h, 1, 1)).collect::<Result<_, _>>()?;
        Ok(Generator { params, shape, layers, x: vec![0.0; h] })
    }

    /// Reads one input and returns the logits of the next ([V]).
    pub fn feed(&mut self, input: &Input) -> Result<Vec<f32>, String> {
        let (h, p) = (self.shape.hidden, self.params);
        match input {
            Input::Symbol(t) => self.x.copy_from_slice(&p.embed[*t as usize * h..(*t as usize + 1) * h]),
            Input::Notes(notes) => {
                self.x.fill(0.0);
                for &n in notes {
                    for (x, e) in self.x.iter_mut().zip(&p.embed[usize::from(n) * h..(usize::from(n) + 1) * h]) {
                        *x += e;
                    }
                }
            }
        }
        let mut y = self.x.clone();
        for (l, layer) in self.layers.iter_mut().enumerate() {
            y = layer.step(&p.cells[l], &y)?.to_vec();
        }
        Ok((0..self.shape.vocab)
            .map(|v| p.out_b[v] + p.out_w[v * h..(v + 1) * h].iter().zip(&y).map(|(w, y)| w * y).sum::<f32>())
            .collect())
    }
}

/// Draws a symbol from `logits` (see [`Options`]).
pub fn pick(logits: &[f32], o: &Options, rng: &mut Rng) -> u32 {
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
    if o.temperature <= 0.0 {
        return order[0] as u32;
    }
    let k = if o.top_k == 0 { logits.len() } else { o.top_k.min(logits.len()) };
    let top = f64::from(logits[order[0]]);
    let weights: Vec<f64> = order[..k].iter().map(|&i| ((f64::from(logits[i]) - top) / o.temperature).exp()).collect();
    let mut u = rng.f64() * weights.iter().sum::<f64>();
    for (w, &i) in weights.iter().zip(&order) {
        if u < *w {
            return i as u32;
        }
        u -= w;
    }
    order[k - 1] as u32
}

/// Draws a frame of music: each note independently, sounding with probability
/// sigmoid(logit / temperature) (temperature 0: the notes above 1/2).
pub fn pick_notes(logits: &[f32], o: &Options, rng: &mut Rng) -> Vec<u8> {
    logits
        .iter()
        .enumerate()
        .filter(|&(_, &z)| {
            if o.temperature <= 0.0 { z > 0.0 } else { rng.f64() < 1.0 / (1.0 + (-f64::from(z) / o.temperature).exp()) }
        })
        .map(|(n, _)| n as u8)
        .collect()
}

/// Generates after feeding `prime`: symbols (stopping early at the task's end symbol, if it has
/// one), or for music `length` frames after a silent one.
pub fn generate(g: &mut Generator<'_>, task: &Task, prime: &[Input], o: &Options) -> Result<Vec<Input>, String> {
    let mut rng = Rng::new(o.seed).fork(crate::init::name_hash("sample"));
    let music = matches!(task, Task::Music(_));
    let start = if prime.is_empty() && music { vec![Input::Notes(vec![])] } else { prime.to_vec() };
    if start.is_empty() {
        return Err("give a prime to start from (--prime)".into());
    }
    let mut logits = vec![];
    for input in &start {
        logits = g.feed(input)?;
    }
    let mut out = vec![];
    for _ in 0..o.length {
        let next = if music {
            Input::Notes(pick_notes(&logits, o, &mut rng))
        } else {
            Input::Symbol(pick(&logits, o, &mut rng))
        };
        let end = matches!((&next, task.end_symbol()), (Input::Symbol(s), Some(e)) if *s == e);
        logits = g.feed(&next)?;
        out.push(next);
        if end {
            break;
        }
    }
    Ok(out)
}
