//! The training tasks: generators of batches of symbol sequences, and their metrics.
//!
//! Every task is next-symbol prediction over a small alphabet. A [`Batch`] is T steps by B
//! examples, row `t*B + b` (the runtime's layout), with a loss weight per row: sequence tasks
//! (arith, memorize) weight only the answer and pad short examples at the end with weight 0;
//! the stream task (xml) weights every row and continues its B streams from batch to batch, so
//! training carries the state across batches (truncated BPTT).
//!
//! Data sets are drawn from seeds: training, validation and test use disjoint streams of the run's
//! seed (see [`Split`]), so a validation example is never a training example's draw.

pub mod arith;
pub mod corpus;
pub mod memorize;
pub mod music;
pub mod xml;

use std::collections::VecDeque;

use crate::rng::Rng;

/// A batch: `tokens[r]` is read at row r and `targets[r]` predicted; `weights[r]` (0 or 1) says
/// whether row r counts in the loss and the headline metric; `classes[r]` marks rows of the
/// task's secondary metric (closing-tag characters for xml).
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    pub steps: usize,
    pub batch: usize,
    pub tokens: Vec<u32>,
    pub targets: Vec<u32>,
    pub weights: Vec<f32>,
    pub classes: Vec<bool>,
    /// For sequence tasks, each column's example ends inside the batch and the state starts from
    /// zero; a stream batch continues the previous one.
    pub stream: bool,
    /// Music: the notes read and predicted at each row (then `tokens` and `targets` are unused).
    pub frames: Option<Box<Frames>>,
}

/// Sets of units, one per row: row r's are `units[offsets[r]..offsets[r + 1]]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Sets {
    pub offsets: Vec<u32>,
    pub units: Vec<u8>,
}

impl Default for Sets {
    fn default() -> Sets {
        Sets { offsets: vec![0], units: vec![] }
    }
}

impl Sets {
    pub fn push(&mut self, units: &[u8]) {
        self.units.extend_from_slice(units);
        self.offsets.push(self.units.len() as u32);
    }

    pub fn row(&self, r: usize) -> &[u8] {
        &self.units[self.offsets[r] as usize..self.offsets[r + 1] as usize]
    }

    pub fn rows(&self) -> usize {
        self.offsets.len() - 1
    }
}

/// Multi-hot rows of a music batch: the frame read and the frame to predict.
#[derive(Clone, Debug, PartialEq)]
pub struct Frames {
    pub input: Sets,
    pub target: Sets,
}

impl Batch {
    /// An all-padding batch of T x B rows.
    pub fn padded(steps: usize, batch: usize, pad: u32) -> Batch {
        let n = steps * batch;
        Batch {
            steps,
            batch,
            tokens: vec![pad; n],
            targets: vec![pad; n],
            weights: vec![0.0; n],
            classes: vec![false; n],
            stream: false,
            frames: None,
        }
    }

    /// Places one example (its symbols, and the answer mask over its targets) in column `b`.
    /// `symbols[i]` is read at step i and `symbols[i + 1]` is its target.
    pub fn put_example(&mut self, b: usize, symbols: &[u32], answer_from: usize) {
        for i in 0..symbols.len() - 1 {
            let r = i * self.batch + b;
            self.tokens[r] = symbols[i];
            self.targets[r] = symbols[i + 1];
            self.weights[r] = if i + 1 >= answer_from { 1.0 } else { 0.0 };
        }
    }
}

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

/// Running totals of a task's metrics over evaluated batches.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Tally {
    /// Weighted rows and those predicted right (the headline metric).
    pub rows: f64,
    pub correct: f64,
    /// Rows of the secondary class and those predicted right.
    pub class_rows: f64,
    pub class_correct: f64,
    /// Whole examples and those with every weighted row right (sequence tasks).
    pub examples: f64,
    pub exact: f64,
    /// Sum of the weighted rows' cross-entropy (nats).
    pub loss_sum: f64,
    /// Music: notes predicted sounding that do, that do not, and sounding notes missed.
    pub true_pos: f64,
    pub false_pos: f64,
    pub false_neg: f64,
}

impl Tally {
    /// Adds one batch given whether each row's top prediction equals its target and each row's
    /// cross-entropy.
    pub fn add(&mut self, batch: &Batch, right: &[bool], losses: &[f32]) {
        let (t_max, b_max) = (batch.steps, batch.batch);
        for b in 0..b_max {
            let mut any = false;
            let mut all_right = true;
            for t in 0..t_max {
                let r = t * b_max + b;
                if batch.weights[r] > 0.0 {
                    any = true;
                    self.rows += 1.0;
                    self.loss_sum += f64::from(losses[r]);
                    if right[r] {
                        self.correct += 1.0;
                    } else {
                        all_right = false;
                    }
                }
                if batch.classes[r] {
                    self.class_rows += 1.0;
                    self.class_correct += f64::from(u8::from(right[r]));
                }
            }
            if any && !batch.stream {
                self.examples += 1.0;
                self.exact += f64::from(u8::from(all_right));
            }
        }
    }

    /// Music: adds each weighted row's (true positives, false positives, false negatives).
    pub fn add_hits(&mut self, batch: &Batch, hits: &[[u32; 3]]) {
        for (h, &w) in hits.iter().zip(&batch.weights) {
            if w > 0.0 {
                self.true_pos += f64::from(h[0]);
                self.false_pos += f64::from(h[1]);
                self.false_neg += f64::from(h[2]);
            }
        }
    }

    /// Music's frame-level accuracy (Bay et al. 2009): TP / (TP + FP + FN), notes predicted
    /// sounding when their probability is above 1/2.
    pub fn frame_accuracy(&self) -> Option<f64> {
        let all = self.true_pos + self.false_pos + self.false_neg;
        (all > 0.0).then(|| self.true_pos / all)
    }

    pub fn accuracy(&self) -> f64 {
        if self.rows > 0.0 { self.correct / self.rows } else { 0.0 }
    }

    pub fn class_accuracy(&self) -> Option<f64> {
        (self.class_rows > 0.0).then(|| self.class_correct / self.class_rows)
    }

    pub fn exact_match(&self) -> Option<f64> {
        (self.examples > 0.0).then(|| self.exact / self.examples)
    }

    /// Mean cross-entropy per weighted row.
    pub fn loss(&self) -> f64 {
        if self.rows > 0.0 { self.loss_sum / self.rows } else { 0.0 }
    }
}

/// A task and its knobs as chosen on the command line and saved in checkpoints.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TaskConfig {
    /// `arith`, `xml` or `memorize`.
    pub name: String,
    /// arith: digits per operand, 1..=max_digits in training.
    pub max_digits: usize,
    /// arith: also test on numbers of max_digits+1..=eval_max_digits digits.
    pub eval_max_digits: Option<usize>,
    /// arith: mean distractor letters after each input character.
    pub distractors: f64,
    /// xml: iterations after which every open tag is closed.
    pub max_depth: usize,
    /// xml: parallel streams (the batch size) and characters per stream in an evaluation.
    pub streams: usize,
    pub eval_chars: usize,
    /// memorize: symbols to remember.
    pub length: usize,
    /// arith: train with a curriculum over the number of digits (see [`arith`]).
    #[serde(default)]
    pub curriculum: bool,
    /// ptb: the data directory; text: the text file (absolute, so a resumed run finds it).
    #[serde(default)]
    pub data: Option<std::path::PathBuf>,
    /// ptb, text: validate and test on about this many tokens from the start of each set instead
    /// of all of it (the search's short runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_tokens: Option<usize>,
}

impl TaskConfig {
    /// A task's defaults.
    pub fn named(name: &str) -> TaskConfig {
        TaskConfig {
            name: name.to_string(),
            max_digits: 8,
            eval_max_digits: None,
            distractors: 1.0,
            max_depth: 50,
            streams: 32,
            eval_chars: 2048,
            length: 5,
            curriculum: false,
            data: None,
            eval_tokens: None,
        }
    }

    /// The usual batch and unroll for the task: 20 x 35 for PTB (Zaremba et al.), 16 pieces x
    /// 100 frames for music, 64 x 64 otherwise.
    pub fn default_shape(&self) -> (usize, usize) {
        match self.name.as_str() {
            "ptb" => (20, 35),
            m if m.starts_with("music:") => (16, 100),
            _ => (64, 64),
        }
    }

    pub fn build(&self) -> Result<Task, String> {
        match self.name.as_str() {
            "arith" => {
                if !(1..=18).contains(&self.max_digits) {
                    return Err(format!("--max-digits must be in 1..=18, not {}", self.max_digits));
                }
                if self.eval_max_digits.is_some_and(|e| e <= self.max_digits || e > 18) {
                    return Err("--eval-max-digits must be above --max-digits and at most 18".into());
                }
                if !(0.0..=8.0).contains(&self.distractors) {
                    return Err("--distractors must be in 0..=8".into());
                }
                Ok(Task::Arith(arith::Arith {
                    min_digits: 1,
                    max_digits: self.max_digits,
                    distractors: self.distractors,
                    level: self.max_digits,
                }))
            }
            "xml" => {
                if self.max_depth == 0 || self.streams == 0 || self.eval_chars == 0 {
                    return Err("xml needs a positive --max-depth, batch and evaluation length".into());
                }
                Ok(Task::Xml(xml::Xml {
                    streams: self.streams,
                    eval_chars: self.eval_chars,
                    max_depth: self.max_depth,
                }))
            }
            "memorize" => {
                if self.length == 0 {
                    return Err("memorize needs at least one symbol".into());
                }
                Ok(Task::Memorize(memorize::Memorize { length: self.length }))
            }
            name if name.starts_with("music:") => {
                let set = &name["music:".len()..];
                let Some(i) = crate::data::MUSIC_SETS.iter().position(|(n, _)| *n == set) else {
                    return Err(format!("unknown music set `{set}` (nottingham, piano-midi, jsb, musedata)"));
                };
                let file = crate::data::MUSIC_SETS[i].1;
                let dir = self.data.as_deref().ok_or("music needs the data directory (--data)")?;
                let music = crate::data::music::Music::load(&dir.join("polyphonic").join(file))?;
                if self.streams == 0 {
                    return Err("music needs at least one piece per batch".into());
                }
                Ok(Task::Music(music::MusicTask {
                    set: MUSIC_NAMES[i],
                    music: std::sync::Arc::new(music),
                    pieces: self.streams,
                }))
            }
            "ptb" | "text" => {
                let path = self.data.as_deref().ok_or("this task needs its data (--data)")?;
                let (corpus, unit) = if self.name == "ptb" {
                    (crate::data::corpus::Corpus::ptb(path)?, corpus::Unit::Words)
                } else {
                    (crate::data::corpus::Corpus::text(path)?, corpus::Unit::Characters)
                };
                if self.streams == 0 || corpus::batches_per_epoch(&corpus.train, self.streams, 1) == 0 {
                    return Err(format!("the training text is too short for {} parallel streams", self.streams));
                }
                Ok(Task::Corpus(corpus::CorpusTask {
                    unit,
                    corpus: std::sync::Arc::new(corpus),
                    streams: self.streams,
                    eval_tokens: self.eval_tokens,
                }))
            }
            other => Err(format!("unknown task `{other}` (the tasks: arith, xml, memorize, ptb, text)")),
        }
    }

    /// Arithmetic's length-generalisation task: numbers longer than in training.
    pub fn long_task(&self) -> Option<Task> {
        let e = self.eval_max_digits?;
        (self.name == "arith").then(|| {
            Task::Arith(arith::Arith {
                min_digits: self.max_digits + 1,
                max_digits: e,
                distractors: self.distractors,
                level: e,
            })
        })
    }

    /// The curriculum's first level (arith with a curriculum), and the task at a level: what
    /// the curriculum trains on and checks before it moves up.
    pub fn first_level(&self) -> Option<usize> {
        (self.name == "arith" && self.curriculum && self.max_digits > 1).then_some(1)
    }

    pub fn at_level(&self, level: usize) -> Option<Task> {
        (self.name == "arith").then_some(Task::Arith(arith::Arith {
            min_digits: 1,
            max_digits: level,
            distractors: self.distractors,
            level,
        }))
    }
}

/// Task names of the music sets, in the order of `data::MUSIC_SETS`.
const MUSIC_NAMES: [&str; 4] = ["music:nottingham", "music:piano-midi", "music:jsb", "music:musedata"];

/// The tasks, with their knobs.
#[derive(Clone, Debug, PartialEq)]
pub enum Task {
    Arith(arith::Arith),
    Xml(xml::Xml),
    Memorize(memorize::Memorize),
    Corpus(corpus::CorpusTask),
    Music(music::MusicTask),
}

impl Task {
    pub fn name(&self) -> &'static str {
        match self {
            Task::Arith(_) => "arith",
            Task::Xml(_) => "xml",
            Task::Memorize(_) => "memorize",
            Task::Corpus(c) => match c.unit {
                corpus::Unit::Words => "ptb",
                corpus::Unit::Characters => "text",
            },
            Task::Music(m) => m.set,
        }
    }

    /// Symbol i as text.
    pub fn symbol(&self, i: u32) -> String {
        let byte = |a: &[u8]| (a[i as usize] as char).to_string();
        match self {
            Task::Arith(_) => byte(arith::ALPHABET),
            Task::Xml(_) => byte(xml::ALPHABET),
            Task::Memorize(_) => byte(memorize::ALPHABET),
            Task::Corpus(c) => c.corpus.vocab[i as usize].clone(),
            Task::Music(_) => format!("[note {}]", i + u32::from(crate::data::music::LOWEST)),
        }
    }

    /// Symbols, the padding symbol of the generated tasks included.
    pub fn vocab(&self) -> usize {
        match self {
            Task::Arith(_) => arith::ALPHABET.len(),
            Task::Xml(_) => xml::ALPHABET.len(),
            Task::Memorize(_) => memorize::ALPHABET.len(),
            Task::Corpus(c) => c.corpus.vocab.len(),
            Task::Music(_) => music::VOCAB,
        }
    }

    /// Parallel streams of a stream task (its batch size).
    pub fn streams(&self) -> Option<usize> {
        match self {
            Task::Xml(x) => Some(x.streams),
            Task::Corpus(c) => Some(c.streams),
            Task::Music(m) => Some(m.pieces),
            _ => None,
        }
    }

    /// Whether a larger headline metric is better (accuracy), or a smaller (perplexity, bits).
    pub fn higher_is_better(&self) -> bool {
        !matches!(self, Task::Corpus(_) | Task::Music(_))
    }

    /// The padding symbol.
    pub fn pad(&self) -> u32 {
        self.vocab() as u32 - 1
    }

    /// Whether batches continue each other (state carried), rather than hold whole examples.
    pub fn is_stream(&self) -> bool {
        matches!(self, Task::Xml(_) | Task::Corpus(_) | Task::Music(_))
    }

    /// What the headline metric and the secondary ones are called in reports.
    pub fn metric_names(&self) -> (&'static str, Option<&'static str>) {
        match self {
            Task::Arith(_) => ("answer character accuracy", Some("exact match")),
            Task::Xml(_) => ("character accuracy", Some("closing-tag accuracy")),
            Task::Memorize(_) => ("symbol accuracy", Some("exact match")),
            Task::Corpus(c) => match c.unit {
                corpus::Unit::Words => ("perplexity", Some("next-word accuracy")),
                corpus::Unit::Characters => ("bits per character", Some("character accuracy")),
            },
            Task::Music(_) => ("NLL per frame", Some("frame accuracy")),
        }
    }
}

/// One example of a sequence task: `symbols[i]` is read at step i and predicts `symbols[i + 1]`;
/// targets from index `answer_from` on are the answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Example {
    pub symbols: Vec<u32>,
    pub answer_from: usize,
}

/// Examples drawn at once and sorted by length before they are cut into batches, so a batch
/// holds examples of about one length and pads little.
const POOL_BATCHES: usize = 16;

/// Makes batches of one split of a task. Sequence tasks draw fresh examples each time; the
/// stream task keeps B generator states running.
pub struct Source {
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

impl Source {
    pub fn new(task: &Task, split: Split, seed: u64) -> Source {
        let mut rng = split.rng(seed);
        let streams = match task {
            Task::Xml(x) => (0..x.streams).map(|i| xml::Stream::new(rng.fork(i as u64), x.max_depth)).collect(),
            _ => vec![],
        };
        rng = rng.fork(u64::MAX);
        Source {
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

    /// Sequence-task examples side by side in `batch` columns (the rest empty), padded at the
    /// end to the longest.
    fn pack(&self, examples: &[Example], batch: usize) -> Batch {
        let steps = examples.iter().map(|e| e.symbols.len() - 1).max().unwrap_or(1);
        let mut b = Batch::padded(steps, batch, self.task.pad());
        for (i, e) in examples.iter().enumerate() {
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
        let mut src = Source::new(task, split, seed);
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

    /// Restores [`Source::state`].
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

/// Text of a row range for people: symbols of one column, as characters.
pub fn column_text(task: &Task, batch: &Batch, b: usize) -> String {
    (0..batch.steps).map(|t| task.symbol(batch.tokens[t * batch.batch + b])).collect()
}
