//! Batch streams: the batches of one split of a task, drawn from the run's seed (training, and the
//! fixed validation and test sets), and their state for checkpoints.
//!
//! Sequence tasks (arith, memorize) draw pools of examples and sort them by length so a batch
//! pads little; stream tasks (xml, a corpus, music) continue their B streams from batch to batch.
//! Training, validation and test use disjoint streams of the run's seed (see [`Split`]), so a
//! validation example is never a training example's draw.

use std::collections::VecDeque;

use super::{Batch, Example, Task, corpus, music, xml};
use crate::rng::Rng;

/// Which data set a batch is drawn for; each has its own random stream of the run's seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    Train,
    Valid,
    Test,
}

impl Split {
    /// The stream of `seed` this split draws from.
    pub fn rng(self, seed: u64) -> Rng {
        let stream = match self {
            Split::Train => 0x7261_696e,
            Split::Valid => 0x7661_6c69,
            Split::Test => 0x7465_7374,
        };
        Rng::new(seed).fork(stream)
    }
}

/// Examples drawn at once and sorted by length before they are cut into batches, so a batch
/// holds examples of about one length and pads little.
const POOL_BATCHES: usize = 16;

/// The batches of one split of a task, in order. Sequence tasks draw fresh examples each time; the
/// stream task keeps B generator states running.
pub struct BatchStream {
    task: Task,
    rng: Rng,
    streams: Vec<xml::Stream>,
    /// Sequence tasks: batches drawn but not yet handed out, next first.
    queue: VecDeque<Batch>,
    /// Corpus tasks: the next batch's index in the current pass.
    position: usize,
    /// Music: the RNG state the queued pool was drawn from, and how many of its batches are
    /// out (a checkpoint redraws the pool instead of storing it).
    pool_rng: [u64; 4],
    pool_steps: usize,
    served: usize,
}

impl BatchStream {
    pub fn new(task: &Task, split: Split, seed: u64) -> BatchStream {
        let mut rng = split.rng(seed);
        let streams = match task {
            Task::Xml(x) => (0..x.streams).map(|i| xml::Stream::new(rng.fork(i as u64), x.max_depth)).collect(),
            _ => vec![],
        };
        rng = rng.fork(u64::MAX);
        BatchStream {
            task: task.clone(),
            pool_rng: rng.state(),
            rng,
            streams,
            queue: VecDeque::new(),
            position: 0,
            served: 0,
            pool_steps: 1,
        }
    }

    fn example(&mut self) -> Example {
        match &self.task {
            Task::Arith(a) => a.example(&mut self.rng),
            Task::Memorize(m) => m.example(&mut self.rng),
            Task::Xml(_) | Task::Corpus(_) | Task::Music(_) => unreachable!("not a sequence task"),
        }
    }

    /// The curriculum level of an arith source (its most digits in the easy share).
    pub fn level(&self) -> Option<usize> {
        if let Task::Arith(a) = &self.task { Some(a.level) } else { None }
    }

    /// Moves an arith source's curriculum to `level` (batches already queued keep theirs).
    pub fn set_level(&mut self, level: usize) {
        if let Task::Arith(a) = &mut self.task {
            a.level = level.min(a.max_digits);
        }
    }

    /// The next training batch: `batch` examples (a sequence task) or the next `steps`
    /// characters of each stream (the stream task, whose batch size is its stream count).
    pub fn next(&mut self, batch: usize, steps: usize) -> Batch {
        match &self.task {
            Task::Xml(_) => return xml::batch(&mut self.streams, steps),
            Task::Corpus(c) => loop {
                // `build` checked that a pass has at least one batch.
                if let Some(b) = corpus::batch(&c.corpus.train, c.streams, steps, self.position) {
                    self.position += 1;
                    return b;
                }
                self.position = 0;
            },
            Task::Music(m) => {
                if self.queue.is_empty() {
                    self.pool_rng = self.rng.state();
                    self.pool_steps = steps;
                    self.served = 0;
                    self.queue.extend(music::training_pool(&m.music.train, &mut self.rng, m.pieces, steps));
                }
                self.served += 1;
                return self.queue.pop_front().expect("a pool has batches");
            }
            _ => {}
        }
        if self.queue.is_empty() {
            let mut pool: Vec<Example> = (0..POOL_BATCHES * batch).map(|_| self.example()).collect();
            // Stable: equal lengths keep their draw order, so the cut is the same on every run.
            pool.sort_by_key(|e| e.symbols.len());
            let mut batches: Vec<Batch> = pool.chunks(batch).map(|c| self.pack(c, batch)).collect();
            self.rng.shuffle(&mut batches);
            self.queue.extend(batches);
        }
        self.queue.pop_front().expect("the pool is never empty")
    }

    /// Sequence-task examples (sorted shortest first) side by side in `batch` columns, longest
    /// first (a variable-length run needs that order; the rest empty), padded at the end to the
    /// longest.
    fn pack(&self, examples: &[Example], batch: usize) -> Batch {
        let steps = examples.iter().map(|e| e.symbols.len() - 1).max().unwrap_or(1);
        let mut b = Batch::padded(steps, batch, self.task.pad());
        for (i, e) in examples.iter().rev().enumerate() {
            b.put_example(i, &e.symbols, e.answer_from);
        }
        b
    }

    /// A fixed evaluation set: `examples` examples in batches of `batch` (sequence tasks), or the
    /// task's `eval_chars` characters of each stream in chunks of `steps` (xml), or the whole
    /// split in chunks of `steps` (a corpus).
    pub fn eval_set(task: &Task, split: Split, seed: u64, examples: usize, batch: usize, steps: usize) -> Vec<Batch> {
        if let Task::Music(m) = task {
            let pieces = match split {
                Split::Train => &m.music.train,
                Split::Valid => &m.music.valid,
                Split::Test => &m.music.test,
            };
            return music::eval_batches(pieces, m.pieces, steps);
        }
        if let Task::Corpus(c) = task {
            let tokens = match split {
                Split::Train => &c.corpus.train,
                Split::Valid => &c.corpus.valid,
                Split::Test => &c.corpus.test,
            };
            let batches = (0..).map_while(|i| corpus::batch(tokens, c.streams, steps, i));
            return match c.eval_tokens {
                Some(n) => batches.take(n.div_ceil(c.streams * steps).max(1)).collect(),
                None => batches.collect(),
            };
        }
        let mut src = BatchStream::new(task, split, seed);
        if let Task::Xml(x) = task {
            return (0..x.eval_chars.div_ceil(steps)).map(|_| xml::batch(&mut src.streams, steps)).collect();
        }
        let mut pool: Vec<Example> = (0..examples).map(|_| src.example()).collect();
        pool.sort_by_key(|e| e.symbols.len());
        pool.chunks(batch).map(|c| src.pack(c, batch)).collect()
    }

    /// The generator state, for checkpoints: the RNG, each stream's state, the queued batches.
    pub fn state(&self) -> serde_json::Value {
        serde_json::json!({
            "rng": self.rng.state(),
            "streams": self.streams.iter().map(xml::Stream::state).collect::<Vec<_>>(),
            "queue": self.queue.iter().map(batch_state).collect::<Vec<_>>(),
            "level": self.level(),
            "position": self.position,
            "pool_rng": self.pool_rng,
            "served": self.served,
            "pool_steps": self.pool_steps,
        })
    }

    /// Restores [`BatchStream::state`].
    pub fn restore(&mut self, state: &serde_json::Value) -> Result<(), String> {
        let rng: [u64; 4] =
            serde_json::from_value(state["rng"].clone()).map_err(|e| format!("data generator state: {e}"))?;
        self.rng = Rng::from_state(rng);
        let streams = state["streams"].as_array().ok_or("data generator state: no streams")?;
        if streams.len() != self.streams.len() {
            return Err(format!("data generator state has {} streams, this run {}", streams.len(), self.streams.len()));
        }
        for (s, v) in self.streams.iter_mut().zip(streams) {
            *s = xml::Stream::restore(v)?;
        }
        let queue = state["queue"].as_array().ok_or("data generator state: no queue")?;
        self.queue = queue.iter().map(|v| restore_batch(v, self.task.vocab())).collect::<Result<_, _>>()?;
        self.position = state["position"].as_u64().unwrap_or(0) as usize;
        if let Task::Music(m) = &self.task {
            // Redraw the pool the run was in, and skip what it had handed out.
            let pool: [u64; 4] =
                serde_json::from_value(state["pool_rng"].clone()).map_err(|e| format!("data generator state: {e}"))?;
            let served = state["served"].as_u64().unwrap_or(0) as usize;
            self.pool_rng = pool;
            self.served = served;
            self.queue.clear();
            if served > 0 {
                let mut rng = Rng::from_state(pool);
                let steps = (state["pool_steps"].as_u64().unwrap_or(1) as usize).max(1);
                self.pool_steps = steps;
                self.queue.extend(music::training_pool(&m.music.train, &mut rng, m.pieces, steps));
                self.queue.drain(..served.min(self.queue.len()));
                self.rng = rng;
            }
        }
        if let Some(level) = state["level"].as_u64() {
            self.set_level(level as usize);
        }
        Ok(())
    }
}

/// A queued batch as JSON (tokens, targets and weights; sequence tasks have no classes).
fn batch_state(b: &Batch) -> serde_json::Value {
    serde_json::json!({ "steps": b.steps, "batch": b.batch, "tokens": b.tokens, "targets": b.targets,
        "weights": b.weights.iter().map(|&w| w > 0.0).collect::<Vec<_>>() })
}

fn restore_batch(v: &serde_json::Value, vocab: usize) -> Result<Batch, String> {
    let bad = || "data generator state: a malformed queued batch".to_string();
    let steps = v["steps"].as_u64().ok_or_else(bad)? as usize;
    let batch = v["batch"].as_u64().ok_or_else(bad)? as usize;
    let tokens: Vec<u32> = serde_json::from_value(v["tokens"].clone()).map_err(|_| bad())?;
    let targets: Vec<u32> = serde_json::from_value(v["targets"].clone()).map_err(|_| bad())?;
    let weights: Vec<bool> = serde_json::from_value(v["weights"].clone()).map_err(|_| bad())?;
    let n = steps * batch;
    if tokens.len() != n || targets.len() != n || weights.len() != n {
        return Err(bad());
    }
    if tokens.iter().chain(&targets).any(|&t| t as usize >= vocab) {
        return Err(bad());
    }
    let weights = weights.into_iter().map(|w| if w { 1.0 } else { 0.0 }).collect();
    Ok(Batch { steps, batch, tokens, targets, weights, classes: vec![false; n], stream: false, frames: None })
}
