//! Saying where a NaN or infinity came from: a parameter that went bad in the last update, or
//! the first equation of the cell, in computation order, whose value stopped being finite.

use super::lm::{LmParams, LmRunner};
use crate::ir::raise::Raiser;
use crate::runtime::inspect::first_non_finite;
use crate::syntax::print;
use crate::tasks::Batch;

/// A one-line account of where the first non-finite value of the last step appeared.
pub fn origin(runner: &LmRunner<'_>, params: &LmParams, batch: &Batch) -> String {
    let e = runner.engine;
    let layout = LmParams::layout(e, runner.shape);
    for ((name, _), t) in layout.iter().zip(params.tensors()) {
        if t.iter().any(|x| !x.is_finite()) {
            return format!("parameter `{name}` is not finite (the previous update made it so; lower --lr or --clip)");
        }
    }
    if !batch.tokens.is_empty() {
        // In computation order: layer l, then its reverse direction (which layer l + 1 reads).
        let reverse = runner.reverse_layers().iter().enumerate().map(|(l, b)| (l, " (reverse direction)", b));
        let mut runs: Vec<_> = runner.layers().iter().enumerate().map(|(l, b)| (l, "", b)).chain(reverse).collect();
        runs.sort_by_key(|&(l, direction, _)| (l, !direction.is_empty()));
        for (l, direction, bufs) in runs {
            if let Some(bad) = first_non_finite(e, bufs) {
                let raiser = Raiser { g: &e.backward.graph, names: crate::autodiff::print::names(&e.backward) };
                let what = match raiser.names.get(&bad.node) {
                    Some(name) => format!("{name} = {}", print::expr(&raiser.definition(bad.node))),
                    None => print::expr(&raiser.expr(bad.node)),
                };
                let when = match bad.step {
                    Some(t) => format!("at time step {} of {}", t + 1, bufs.sizes.steps),
                    None => "in the values computed once per batch".to_string(),
                };
                return format!("`{what}` in layer {l}{direction} {when}");
            }
        }
    }
    "the output layer (logits or loss); every value of the cell was finite".to_string()
}
