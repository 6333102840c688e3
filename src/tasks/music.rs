//! Polyphonic music: predict each frame's 88 notes from the frames before it.
//!
//! Each piece is a sequence: the state starts at zero at its first frame, which is predicted
//! from a silent input; frame t+1 is predicted after reading frame t, so a piece of n frames
//! gives n predictions and the metric, the negative log-likelihood per frame (the sum over the
//! 88 notes of the Bernoulli log-loss, averaged over frames), counts every frame.
//!
//! Batching: B pieces side by side, read in chunks of T frames with the state carried from chunk
//! to chunk (truncated BPTT), shorter pieces padded with weight-0 rows. Training draws pools of
//! 16 groups' worth of pieces at random (with replacement), sorts the pool by length so a group
//! wastes little on padding, shuffles the groups and hands out their chunks in order. Evaluation reads every piece of the split
//! once, sorted by length.

use std::sync::Arc;

use super::{Batch, Frames, Sets};
use crate::data::music::{KEYS, Music, Piece};
use crate::rng::Rng;

#[derive(Clone, Debug)]
pub struct MusicTask {
    pub set: crate::data::music::MusicSet,
    pub music: Arc<Music>,
    /// Pieces side by side in a batch.
    pub pieces: usize,
}

impl PartialEq for MusicTask {
    fn eq(&self, other: &Self) -> bool {
        self.set == other.set && self.pieces == other.pieces && Arc::ptr_eq(&self.music, &other.music)
    }
}

/// Groups of pieces drawn at once, sorted by length before they are cut into groups.
const POOL_GROUPS: usize = 16;

/// The chunks of one group of pieces: `steps` frames at a time; the first starts from zero
/// states, the others continue.
pub fn group_batches(group: &[&Piece], batch: usize, steps: usize) -> Vec<Batch> {
    let longest = group.iter().map(|p| p.len()).max().unwrap_or(0);
    let silent: Vec<u8> = vec![];
    (0..longest.div_ceil(steps.max(1)))
        .map(|k| {
            let start = k * steps;
            let t_len = steps.min(longest - start);
            let mut b = Batch::padded(t_len, batch, 0);
            b.stream = k > 0;
            let mut input = Sets::default();
            let mut target = Sets::default();
            for t in 0..t_len {
                for col in 0..batch {
                    let r = t * batch + col;
                    let at = start + t;
                    let (read, want): (&[u8], &[u8]) = match group.get(col) {
                        Some(p) if at < p.len() => {
                            b.weights[r] = 1.0;
                            (if at == 0 { &silent } else { &p[at - 1] }, &p[at])
                        }
                        _ => (&silent, &silent),
                    };
                    input.push(read);
                    target.push(want);
                }
            }
            b.frames = Some(Box::new(Frames { input, target }));
            b
        })
        .collect()
}

/// Every piece of a split once, longest groups last, in chunks of `steps`.
pub fn eval_batches(pieces: &[Piece], batch: usize, steps: usize) -> Vec<Batch> {
    let mut order: Vec<&Piece> = pieces.iter().collect();
    order.sort_by_key(|p| p.len());
    order.chunks(batch).flat_map(|g| group_batches(g, batch, steps)).collect()
}

/// A pool of training batches drawn with `rng`: POOL_GROUPS groups of random pieces.
pub fn training_pool(pieces: &[Piece], rng: &mut Rng, batch: usize, steps: usize) -> Vec<Batch> {
    let mut pool: Vec<&Piece> =
        (0..POOL_GROUPS * batch).map(|_| &pieces[rng.below(pieces.len() as u64) as usize]).collect();
    pool.sort_by_key(|p| p.len());
    let mut groups: Vec<&[&Piece]> = pool.chunks(batch).collect();
    rng.shuffle(&mut groups);
    groups.into_iter().flat_map(|g| group_batches(g, batch, steps)).collect()
}

/// The units of the 88 keys.
pub const VOCAB: usize = KEYS;
