//! Batches: T steps by B examples, row `t*B + b` (the runtime's layout), with a loss weight per
//! row; music rows are sets of notes. A sequence task's example is placed in a column of a batch.

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

    /// Each column's length for a variable-length run: the steps before its padding, when the
    /// batch holds whole examples (not streams) longest first; `None` otherwise.
    pub fn lengths(&self, pad: u32) -> Option<Vec<usize>> {
        if self.stream || self.frames.is_some() {
            return None;
        }
        let lengths: Vec<usize> = (0..self.batch)
            .map(|b| (0..self.steps).take_while(|t| self.tokens[t * self.batch + b] != pad).count())
            .collect();
        lengths.windows(2).all(|w| w[0] >= w[1]).then_some(lengths)
    }

    /// Each column's question length: the rows before its first answer target and that row
    /// (the one predicting the answer's first symbol); 0 for a column with no answer.
    pub fn question_lengths(&self) -> Vec<usize> {
        question_lengths(&self.weights, self.batch)
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

/// [`Batch::question_lengths`] from a batch's row weights ([T, B]).
pub fn question_lengths(weights: &[f32], batch: usize) -> Vec<usize> {
    let steps = weights.len() / batch.max(1);
    (0..batch).map(|b| (0..steps).find(|t| weights[t * batch + b] != 0.0).map_or(0, |t| t + 1)).collect()
}

/// One example of a sequence task: `symbols[i]` is read at step i and predicts `symbols[i + 1]`;
/// targets from index `answer_from` on are the answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Example {
    pub symbols: Vec<u32>,
    pub answer_from: usize,
}
