//! The language model's shape ([`LmShape`]) and parameters ([`LmParams`]): the embedding, each
//! layer's cell parameters and the output layer, their initialisation, and the one order and
//! naming that optimisers and checkpoints use.

use crate::rng::Rng;
use crate::runtime::Engine;

/// Sizes of a language model and of one batch (`steps`: the longest batch expected).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LmShape {
    pub vocab: usize,
    pub hidden: usize,
    pub layers: usize,
    pub batch: usize,
    pub steps: usize,
    /// Layers 0..L-1 also read each example's question backwards (`train/bidirectional.rs`).
    pub bidirectional: bool,
}

impl LmShape {
    /// How many layers have a reverse direction: every one below the top when bidirectional.
    pub fn reverse_layers(&self) -> usize {
        if self.bidirectional { self.layers.saturating_sub(1) } else { 0 }
    }
}

/// The parameters of a language model.
#[derive(Clone, Debug, PartialEq)]
pub struct LmParams {
    /// [V, H]: row v is the input vector of symbol v.
    pub embed: Vec<f32>,
    /// Per layer, per cell parameter (the cell's order), row-major.
    pub cells: Vec<Vec<Vec<f32>>>,
    /// Per bidirectional layer, its reverse direction's cell parameters (empty: one direction).
    pub reverse: Vec<Vec<Vec<f32>>>,
    /// [V, H], PyTorch's `Linear` layout: logits = W h + b.
    pub out_w: Vec<f32>,
    pub out_b: Vec<f32>,
}

impl LmParams {
    /// Initial parameters: each layer from the cell's init rules (default uniform in
    /// ±scale/sqrt(fan-in); each layer its own seed stream), the output matrix uniform in
    /// ±scale/sqrt(H) and its bias zero, the embedding uniform in ±scale (a one-hot input has
    /// fan-in 1).
    pub fn init(engine: &Engine, shape: LmShape, init_scale: f64, seed: u64) -> LmParams {
        let h = shape.hidden;
        let sig = &engine.forward.sig;
        let layer = |stream: u64| -> Vec<Vec<f32>> {
            let values = crate::init::initialise(sig, h, h, init_scale, seed.wrapping_add(stream));
            values.into_iter().map(|a| a.iter().map(|v| *v as f32).collect()).collect()
        };
        let cells = (0..shape.layers as u64).map(|l| layer(1000 * l + 1)).collect();
        // Each reverse direction its own stream, apart from every forward one.
        let reverse = (0..shape.reverse_layers() as u64).map(|l| layer(1000 * l + 501)).collect();
        let mut rng = Rng::new(seed).fork(crate::init::name_hash("embed"));
        let embed = (0..shape.vocab * h).map(|_| rng.uniform(-init_scale, init_scale) as f32).collect();
        let mut rng = Rng::new(seed).fork(crate::init::name_hash("out.W"));
        let bound = init_scale / (h as f64).sqrt();
        let out_w = (0..shape.vocab * h).map(|_| rng.uniform(-bound, bound) as f32).collect();
        LmParams { embed, cells, reverse, out_w, out_b: vec![0.0; shape.vocab] }
    }

    /// Redraws every parameter uniform in ±a (Zaremba et al. 2014's initialisation), from the
    /// seed's own stream.
    pub fn init_uniform(&mut self, a: f64, seed: u64) {
        let mut rng = Rng::new(seed).fork(crate::init::name_hash("init-uniform"));
        for t in self.tensors_mut() {
            for v in t.iter_mut() {
                *v = rng.uniform(-a, a) as f32;
            }
        }
    }

    /// Every tensor in the fixed order optimisers and checkpoints use: `embed`, each layer's
    /// cell parameters, each reverse direction's, `out.W`, `out.b`.
    pub fn tensors(&self) -> Vec<&Vec<f32>> {
        let mut t = vec![&self.embed];
        t.extend(self.cells.iter().flatten());
        t.extend(self.reverse.iter().flatten());
        t.push(&self.out_w);
        t.push(&self.out_b);
        t
    }

    /// [`LmParams::tensors`], writable.
    pub fn tensors_mut(&mut self) -> Vec<&mut Vec<f32>> {
        let mut t = vec![&mut self.embed];
        t.extend(self.cells.iter_mut().flatten());
        t.extend(self.reverse.iter_mut().flatten());
        t.push(&mut self.out_w);
        t.push(&mut self.out_b);
        t
    }

    /// Names and shapes of [`LmParams::tensors`]: `embed`, `layer<l>.<param>`,
    /// `layer<l>.reverse.<param>`, `out.W`, `out.b`.
    pub fn layout(engine: &Engine, shape: LmShape) -> Vec<(String, Vec<usize>)> {
        let (v, h) = (shape.vocab, shape.hidden);
        let sig = &engine.forward.sig;
        let mut out = vec![("embed".to_string(), vec![v, h])];
        let directions = (0..shape.layers).map(|l| format!("layer{l}"));
        for prefix in directions.chain((0..shape.reverse_layers()).map(|l| format!("layer{l}.reverse"))) {
            for p in &sig.params {
                let dims = if p.kind.is_matrix() { vec![h, p.len(h, h) / h] } else { vec![p.len(h, h)] };
                out.push((format!("{prefix}.{}", p.name), dims));
            }
        }
        out.push(("out.W".to_string(), vec![v, h]));
        out.push(("out.b".to_string(), vec![v]));
        out
    }
}
