//! The language model around a compiled cell (embedding, stacked layers, softmax cross-entropy)
//! against an f64 reference built from the interpreter, with and without the per-vocabulary
//! first layer; and training that lowers the loss.

mod support;

use cellc::interp::{self, SeqInputs};
use cellc::rng::Rng;
use cellc::runtime::Engine;
use cellc::train::lm::{FirstLayer, LmParams, LmRunner, LmShape};
use ndarray::{Array2, Array3, ArrayD};

struct Reference {
    loss: f64,
    cells: Vec<Vec<Vec<f64>>>,
    /// The bidirectional layers' reverse directions.
    reverse: Vec<Vec<Vec<f64>>>,
    out_w: Vec<f64>,
    out_b: Vec<f64>,
    embed: Vec<f64>,
}

/// The loss and every gradient in f64: interpreter for the cell, loops for the rest.
/// `questions`: each example's question length for a bidirectional model (else empty).
fn reference(
    engine: &Engine,
    p: &LmParams,
    s: LmShape,
    tokens: &[u32],
    targets: &[u32],
    questions: &[usize],
) -> Reference {
    let inputs: Vec<Vec<u32>> = tokens.iter().map(|&t| vec![t]).collect();
    // Softmax cross-entropy, mean over rows.
    let rows = s.steps * s.batch;
    let softmax = |r: usize, z: &[f64]| -> (f64, Vec<f64>) {
        let m = z.iter().cloned().fold(f64::MIN, f64::max);
        let sum: f64 = z.iter().map(|zc| (zc - m).exp()).sum();
        let t = targets[r] as usize;
        let dz =
            (0..z.len()).map(|c| ((z[c] - m).exp() / sum - if c == t { 1.0 } else { 0.0 }) / rows as f64).collect();
        ((m + sum.ln() - z[t]) / rows as f64, dz)
    };
    reference_general(engine, p, s, &inputs, &softmax, questions)
}

/// As [`reference`] for music: each row reads the sum of its units' embeddings and scores 88
/// independent sigmoids against its target set (log-loss summed over outputs, mean over rows).
fn reference_frames(engine: &Engine, p: &LmParams, s: LmShape, inputs: &[Vec<u32>], targets: &[Vec<u32>]) -> Reference {
    let rows = s.steps * s.batch;
    let sigmoid = |r: usize, z: &[f64]| -> (f64, Vec<f64>) {
        let mut loss = 0.0;
        let dz = (0..z.len())
            .map(|c| {
                let y = if targets[r].contains(&(c as u32)) { 1.0 } else { 0.0 };
                let prob = 1.0 / (1.0 + (-z[c]).exp());
                loss -= y * prob.ln() + (1.0 - y) * (1.0 - prob).ln();
                (prob - y) / rows as f64
            })
            .collect();
        (loss / rows as f64, dz)
    };
    reference_general(engine, p, s, inputs, &sigmoid, &[])
}

/// A row's loss and its gradient from the row index and its logits.
type RowLoss<'a> = dyn Fn(usize, &[f64]) -> (f64, Vec<f64>) + 'a;

/// A layer's run in the reference: the forward direction's, and per example its reverse one's
/// (over its question read backwards, a batch of one; `None` without).
type LayerRun = (SeqInputs, interp::SeqOutputs, Vec<Option<(SeqInputs, interp::SeqOutputs)>>);

/// The reference for any input sets and any per-row output loss `(row, logits) -> (loss,
/// dlogits)`; the layers below the top bidirectional over `questions` when it is not empty.
fn reference_general(
    engine: &Engine,
    p: &LmParams,
    s: LmShape,
    tokens: &[Vec<u32>],
    row_loss: &RowLoss<'_>,
    questions: &[usize],
) -> Reference {
    let (h, v, rows, batch) = (s.hidden, s.vocab, s.steps * s.batch, s.batch);
    let g = &engine.forward;
    let to64 = |x: &[f32]| x.iter().map(|v| f64::from(*v)).collect::<Vec<f64>>();
    let weights = |cell: &[Vec<f32>]| -> Vec<ArrayD<f64>> {
        g.sig
            .params
            .iter()
            .zip(cell)
            .map(|(info, w)| ArrayD::from_shape_vec(info.dims(h, h), to64(w)).unwrap())
            .collect()
    };
    let zeros = |b: usize| g.sig.states.iter().map(|_| Array2::zeros((b, h))).collect::<Vec<_>>();
    // Example b's rows 0..q, last first.
    let backwards = |values: &[f64], b: usize, q: usize| -> Array3<f64> {
        let rows: Vec<f64> = (0..q).rev().flat_map(|t| values[(t * batch + b) * h..][..h].to_vec()).collect();
        Array3::from_shape_vec((q, 1, h), rows).unwrap()
    };
    let mut x: Vec<f64> = tokens
        .iter()
        .flat_map(|set| (0..h).map(move |k| set.iter().map(|&t| f64::from(p.embed[t as usize * h + k])).sum::<f64>()))
        .collect();
    let mut runs: Vec<LayerRun> = vec![];
    for l in 0..s.layers {
        let inputs = SeqInputs::new(Array3::from_shape_vec((s.steps, batch, h), x.clone()).unwrap(), zeros(batch));
        let out = interp::forward(g, &weights(&p.cells[l]), &inputs).unwrap();
        let mut y: Vec<f64> = out.y.iter().copied().collect();
        let mut reverse = vec![];
        for (b, &q) in questions.iter().enumerate().filter(|_| l < p.reverse.len()) {
            if q == 0 {
                reverse.push(None);
                continue;
            }
            let rin = SeqInputs::new(backwards(&x, b, q), zeros(1));
            let rout = interp::forward(g, &weights(&p.reverse[l]), &rin).unwrap();
            for t in 0..q {
                for k in 0..h {
                    y[((q - 1 - t) * batch + b) * h + k] += rout.y[[t, 0, k]];
                }
            }
            reverse.push(Some((rin, rout)));
        }
        x = y;
        runs.push((inputs, out, reverse));
    }
    let (ow, ob) = (to64(&p.out_w), to64(&p.out_b));
    let mut loss = 0.0;
    let mut dlogits = vec![0.0; rows * v];
    for r in 0..rows {
        let z: Vec<f64> = (0..v).map(|c| (0..h).map(|k| x[r * h + k] * ow[c * h + k]).sum::<f64>() + ob[c]).collect();
        let (l, dz) = row_loss(r, &z);
        loss += l;
        dlogits[r * v..(r + 1) * v].copy_from_slice(&dz);
    }
    let mut dy: Vec<f64> =
        (0..rows * h).map(|i| (0..v).map(|c| dlogits[(i / h) * v + c] * ow[c * h + i % h]).sum()).collect();
    let out_w = (0..v * h).map(|i| (0..rows).map(|r| dlogits[r * v + i / h] * x[r * h + i % h]).sum()).collect();
    let out_b = (0..v).map(|c| (0..rows).map(|r| dlogits[r * v + c]).sum()).collect();
    let mut cells = vec![vec![]; s.layers];
    let mut reverse: Vec<Vec<Vec<f64>>> =
        p.reverse.iter().map(|cell| cell.iter().map(|w| vec![0.0; w.len()]).collect()).collect();
    for l in (0..s.layers).rev() {
        let (inputs, out, reverse_runs) = &runs[l];
        let d = Array3::from_shape_vec((s.steps, batch, h), dy.clone()).unwrap();
        let grads = interp::backward(&engine.backward, &weights(&p.cells[l]), inputs, out, &d);
        cells[l] = grads.params.iter().map(|a| a.iter().copied().collect()).collect();
        let mut dx: Vec<f64> = grads.x.iter().copied().collect();
        for (b, run) in reverse_runs.iter().enumerate() {
            let (Some((rin, rout)), q) = (run, questions[b]) else { continue };
            let rg = interp::backward(&engine.backward, &weights(&p.reverse[l]), rin, rout, &backwards(&dy, b, q));
            for (acc, a) in reverse[l].iter_mut().zip(&rg.params) {
                acc.iter_mut().zip(a.iter()).for_each(|(acc, a)| *acc += a);
            }
            for t in 0..q {
                for k in 0..h {
                    dx[((q - 1 - t) * batch + b) * h + k] += rg.x[[t, 0, k]];
                }
            }
        }
        dy = dx;
    }
    let mut embed = vec![0.0; v * h];
    for (r, set) in tokens.iter().enumerate() {
        for &t in set {
            for k in 0..h {
                embed[t as usize * h + k] += dy[r * h + k];
            }
        }
    }
    Reference { loss, cells, reverse, out_w, out_b, embed }
}

fn rel_error(a: &[f32], b: &[f64]) -> f64 {
    let scale = b.iter().fold(1e-6f64, |m, v| m.max(v.abs()));
    a.iter().zip(b).map(|(x, y)| (f64::from(*x) - y).abs()).fold(0.0, f64::max) / scale
}

/// Every gradient of the runner within 1e-4 (relative to the largest) of the reference.
fn assert_gradients(runner: &LmRunner<'_>, want: &Reference, what: &str) {
    let mut errors = vec![
        ("out.W", rel_error(&runner.grads.out_w, &want.out_w)),
        ("out.b", rel_error(&runner.grads.out_b, &want.out_b)),
        ("embed", rel_error(&runner.dembed, &want.embed)),
    ];
    for (l, layer) in want.cells.iter().enumerate() {
        for (k, g) in layer.iter().enumerate() {
            errors.push(("cell", rel_error(&runner.grads.cells[l][k], g)));
        }
    }
    assert_eq!(runner.grads.reverse.len(), want.reverse.len(), "{what}: reverse directions");
    for (l, layer) in want.reverse.iter().enumerate() {
        for (k, g) in layer.iter().enumerate() {
            errors.push(("reverse cell", rel_error(&runner.grads.reverse[l][k], g)));
        }
    }
    for (name, e) in errors {
        assert!(e < 1e-4, "{what}: gradient of {name} off by {e:.2e}");
    }
}

/// The runner against the reference on random symbols; a bidirectional `shape` gets random
/// question lengths (0 and T among them).
fn check(cell: &str, shape: LmShape, threads: usize) {
    let ws = cellc::workspace::Workspace::new();
    let engine = Engine::compile(&ws.check_std(cell).unwrap().cells[0]).unwrap();
    let params = LmParams::init(&engine, shape, 1.0, 3);
    let mut rng = Rng::new(5);
    let rows = shape.steps * shape.batch;
    let tokens: Vec<u32> = (0..rows).map(|_| rng.below(shape.vocab as u64) as u32).collect();
    let targets: Vec<u32> = (0..rows).map(|_| rng.below(shape.vocab as u64) as u32).collect();
    let mut questions: Vec<usize> = vec![];
    if shape.bidirectional {
        questions = (0..shape.batch).map(|_| rng.below(shape.steps as u64 + 1) as usize).collect();
        (questions[0], questions[shape.batch - 1]) = (0, shape.steps);
    }
    let want = reference(&engine, &params, shape, &tokens, &targets, &questions);
    // Per token, and per vocabulary entry (forced even where V is not below T*B).
    let modes: &[FirstLayer] =
        if engine.supports_embedding() { &[FirstLayer::Full, FirstLayer::Embedded] } else { &[FirstLayer::Full] };
    for &mode in modes {
        let mut runner = LmRunner::with_first_layer(&engine, shape, threads, mode).unwrap();
        assert_eq!(runner.first_layer_embedded(), mode == FirstLayer::Embedded);
        if shape.bidirectional {
            runner.set_questions(&questions).unwrap();
        }
        let loss = runner.forward_backward(&params, &tokens, &targets, false).unwrap();
        let what = format!("{cell} {shape:?}, first layer {mode:?}, {threads} threads");
        assert!((loss - want.loss).abs() < 1e-5 * want.loss.abs().max(1.0), "{what}: loss {loss} vs {}", want.loss);
        assert_gradients(&runner, &want, &what);
    }
}

#[test]
fn gradients_match_the_f64_reference() {
    check("gru", LmShape { vocab: 7, hidden: 5, layers: 1, batch: 3, steps: 6, bidirectional: false }, 1);
    check("lstm", LmShape { vocab: 9, hidden: 6, layers: 2, batch: 2, steps: 10, bidirectional: false }, 2);
    check("mut1", LmShape { vocab: 5, hidden: 4, layers: 1, batch: 4, steps: 5, bidirectional: false }, 2);
    check("mut2", LmShape { vocab: 30, hidden: 3, layers: 1, batch: 2, steps: 3, bidirectional: false }, 1);
}

#[test]
fn bidirectional_gradients_match_the_f64_reference() {
    check("gru", LmShape { vocab: 7, hidden: 5, layers: 2, batch: 4, steps: 6, bidirectional: true }, 1);
    check("lstm", LmShape { vocab: 9, hidden: 6, layers: 3, batch: 3, steps: 7, bidirectional: true }, 2);
    check("lstm_ln", LmShape { vocab: 6, hidden: 4, layers: 2, batch: 5, steps: 5, bidirectional: true }, 2);
}

/// A weighted row (the question's last and every answer row) reads no symbol after its own: its
/// loss is the same bit for bit whatever comes later; a question row's reverse direction does
/// read the rest of its question.
#[test]
fn a_bidirectional_prediction_reads_nothing_after_its_row() {
    let ws = cellc::workspace::Workspace::new();
    let engine = Engine::compile(&ws.check_std("lstm_ln").unwrap().cells[0]).unwrap();
    let shape = LmShape { vocab: 8, hidden: 6, layers: 3, batch: 4, steps: 8, bidirectional: true };
    let (b, steps) = (shape.batch, shape.steps);
    let params = LmParams::init(&engine, shape, 1.0, 5);
    let questions = [5, 8, 3, 1];
    let weights: Vec<f32> = (0..steps * b).map(|r| if r / b + 1 >= questions[r % b] { 1.0 } else { 0.0 }).collect();
    assert_eq!(cellc::tasks::question_lengths(&weights, b), questions);
    let mut rng = Rng::new(8);
    let tokens: Vec<u32> = (0..steps * b).map(|_| rng.below(8) as u32).collect();
    let targets: Vec<u32> = (0..steps * b).map(|_| rng.below(8) as u32).collect();
    let mut runner = LmRunner::new(&engine, shape, 2).unwrap();
    runner.set_questions(&questions).unwrap();
    let mut row_losses = |tokens: &[u32], weights: &[f32]| {
        runner.evaluate(&params, tokens, &targets, Some(weights), false).unwrap();
        runner.row_results().1.to_vec()
    };
    let base = row_losses(&tokens, &weights);
    for (col, &q) in questions.iter().enumerate() {
        for t in q - 1..steps {
            let mut later = tokens.clone();
            for r in (t + 1..steps).map(|u| u * b + col) {
                later[r] = (later[r] + 1 + rng.below(7) as u32) % 8;
            }
            let moved = row_losses(&later, &weights);
            assert_eq!(moved[t * b + col].to_bits(), base[t * b + col].to_bits(), "example {col} row {t}");
        }
    }
    // Row 0 of a question of 5 changes with its question's last symbol (every row weighted).
    let all = vec![1.0; steps * b];
    let before = row_losses(&tokens, &all)[0];
    let mut last = tokens.clone();
    last[4 * b] = (last[4 * b] + 1) % 8;
    assert_ne!(row_losses(&last, &all)[0], before, "the reverse direction reads the question's end");
}

#[test]
fn music_gradients_match_the_f64_reference() {
    use cellc::tasks::{Frames, Sets};
    for (cell, threads) in [("lstm", 1), ("mut1", 2)] {
        let ws = cellc::workspace::Workspace::new();
        let engine = Engine::compile(&ws.check_std(cell).unwrap().cells[0]).unwrap();
        let shape = LmShape { vocab: 88, hidden: 6, layers: 2, batch: 3, steps: 5, bidirectional: false };
        let params = LmParams::init(&engine, shape, 1.0, 4);
        let mut rng = Rng::new(6);
        let rows = shape.steps * shape.batch;
        // Chords of 0..5 notes, some silent.
        let chord = |rng: &mut Rng| -> Vec<u32> {
            let mut c: Vec<u32> = (0..rng.below(6)).map(|_| rng.below(88) as u32).collect();
            c.sort_unstable();
            c.dedup();
            c
        };
        let inputs: Vec<Vec<u32>> = (0..rows).map(|_| chord(&mut rng)).collect();
        let targets: Vec<Vec<u32>> = (0..rows).map(|_| chord(&mut rng)).collect();
        let sets = |v: &[Vec<u32>]| {
            let mut s = Sets::default();
            for c in v {
                s.push(&c.iter().map(|&u| u as u8).collect::<Vec<_>>());
            }
            s
        };
        let frames = Frames { input: sets(&inputs), target: sets(&targets) };
        let want = reference_frames(&engine, &params, shape, &inputs, &targets);
        let mut runner = LmRunner::new(&engine, shape, threads).unwrap();
        let loss = runner.forward_backward_frames(&params, &frames, None, false, None).unwrap();
        assert!((loss - want.loss).abs() < 1e-5 * want.loss, "{cell}: loss {loss} vs {}", want.loss);
        assert_gradients(&runner, &want, cell);
    }
}

#[test]
fn training_lowers_the_loss() {
    let ws = cellc::workspace::Workspace::new();
    let engine = Engine::compile(&ws.check_std("gru").unwrap().cells[0]).unwrap();
    let shape = LmShape { vocab: 10, hidden: 16, layers: 1, batch: 8, steps: 12, bidirectional: false };
    let mut params = LmParams::init(&engine, shape, 1.0, 1);
    let mut runner = LmRunner::new(&engine, shape, 2).unwrap();
    // A deterministic stream: the next symbol is the current one plus one.
    let tokens: Vec<u32> = (0..96).map(|i| (i % 10) as u32).collect();
    let targets: Vec<u32> = tokens.iter().map(|t| (t + 1) % 10).collect();
    let first = runner.train_step(&mut params, &tokens, &targets, 0.5).unwrap();
    let mut last = first;
    for _ in 0..200 {
        last = runner.train_step(&mut params, &tokens, &targets, 0.5).unwrap();
    }
    assert!((first - 10f64.ln()).abs() < 0.3, "starts near ln(V): {first}");
    assert!(last < 0.1, "loss fell from {first} to {last}");
}

/// The directional derivative of the loss along a random direction, by the runner's gradients
/// and by central differences with the same dropout masks, for dropout (per step and
/// variational), tied embeddings and bidirectional layers.
#[test]
fn dropout_and_tied_embeddings_have_the_right_gradients() {
    let ws = cellc::workspace::Workspace::new();
    let engine = Engine::compile(&ws.check_std("lstm").unwrap().cells[0]).unwrap();
    let shape = LmShape { vocab: 11, hidden: 8, layers: 2, batch: 3, steps: 6, bidirectional: false };
    let rows = shape.steps * shape.batch;
    let mut rng = Rng::new(9);
    let tokens: Vec<u32> = (0..rows).map(|_| rng.below(11) as u32).collect();
    let targets: Vec<u32> = (0..rows).map(|_| rng.below(11) as u32).collect();
    let combos = [
        (false, false, false),
        (true, false, false),
        (false, true, false),
        (true, true, false),
        (false, false, true),
        (true, true, true),
    ];
    for (variational, tied, bidirectional) in combos {
        let shape = LmShape { bidirectional, ..shape };
        let mut params = LmParams::init(&engine, shape, 1.0, 2);
        if tied {
            params.out_w.clone_from(&params.embed);
        }
        let mut runner = LmRunner::new(&engine, shape, 1).unwrap();
        runner.variational = variational;
        runner.tied = tied;
        if bidirectional {
            runner.set_questions(&[6, 0, 4]).unwrap();
        }
        let masks = Rng::new(4);
        let loss_at = |p: &LmParams, runner: &mut LmRunner<'_>| {
            runner
                .forward_backward_weighted(p, &tokens, &targets, None, false, Some((&mut masks.clone(), 0.3)))
                .unwrap()
        };
        loss_at(&params, &mut runner);
        let what = format!("variational {variational}, tied {tied}, bidirectional {bidirectional}");
        // Dropout is on every non-recurrent connection; a variational mask repeats over steps.
        for l in 0..=shape.layers {
            let m = runner.dropout_mask(l);
            assert!(m.contains(&0.0) && m.iter().any(|&v| v > 1.0), "{what}: mask {l}");
            let per_step = shape.batch * shape.hidden;
            assert_eq!(m[..per_step] == m[per_step..2 * per_step], variational, "{what}: mask {l}");
        }
        let mut dir_rng = Rng::new(12);
        let mut direction: Vec<Vec<f32>> =
            params.tensors().iter().map(|t| t.iter().map(|_| dir_rng.uniform(-1.0, 1.0) as f32).collect()).collect();
        let n = direction.len();
        if tied {
            direction[n - 2] = direction[0].clone();
        }
        let grads: Vec<Vec<f32>> = runner.grad_tensors().iter().map(|g| g.to_vec()).collect();
        let analytic: f64 = grads
            .iter()
            .zip(&direction)
            .enumerate()
            .filter(|(i, _)| !(tied && *i == n - 2))
            .map(|(_, (g, d))| g.iter().zip(d).map(|(a, b)| f64::from(*a) * f64::from(*b)).sum::<f64>())
            .sum();
        let moved = |sign: f32| {
            let mut p = params.clone();
            for (t, d) in p.tensors_mut().into_iter().zip(&direction) {
                for (w, u) in t.iter_mut().zip(d) {
                    *w += sign * 1e-2 * u;
                }
            }
            p
        };
        let (plus, minus) = (moved(1.0), moved(-1.0));
        let numeric = (loss_at(&plus, &mut runner) - loss_at(&minus, &mut runner)) / 2e-2;
        assert!(
            (analytic - numeric).abs() < 0.02 * numeric.abs().max(1e-3),
            "{what}: gradient along a direction {analytic} vs finite differences {numeric}"
        );
    }
}

#[test]
fn training_flushes_denormals_to_zero_unless_told_not_to() {
    // Every output of this cell is subnormal (1e-40 is below f32's smallest normal, 1.2e-38).
    let cell = support::checked_cell("cell tiny {\n    state h\n    h' = 1e-40*sigm(W*x + b)\n}\n");
    let engine = Engine::compile(&cell).unwrap();
    let shape = LmShape { vocab: 5, hidden: 4, layers: 1, batch: 2, steps: 3, bidirectional: false };
    let params = LmParams::init(&engine, shape, 1.0, 1);
    let (tokens, targets) = (vec![1, 2, 3, 4, 0, 1], vec![2, 3, 4, 0, 1, 2]);
    let outputs = |flush: bool| {
        let mut runner = LmRunner::new(&engine, shape, 2).unwrap();
        runner.flush_denormals = flush;
        runner.forward_backward(&params, &tokens, &targets, false).unwrap();
        runner.layers()[0].output(&engine).to_vec()
    };
    let kept = outputs(false);
    assert!(kept.iter().all(|&y| y > 0.0 && !y.is_normal()), "without flushing: subnormal outputs {kept:?}");
    assert!(outputs(true).iter().all(|&y| y == 0.0), "training flushes them to zero");
}
