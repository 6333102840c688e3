//! `cellc search`'s confirmation stage: the best cells found, trained again beside the GRU on
//! fresh paired seeds until decided (`search::confirm`), with a progress line.

use std::time::{Duration, Instant};

use super::interrupt;
use super::progress::{StatusLine, clock};
use super::workers::LocalWorkers;
use crate::compare;
use crate::experiment::Ended;
use crate::search::View;
use crate::search::confirm;
use crate::store::ExperimentStore;

/// Runs the confirmation of `view`'s best cells with `workers` local worker processes (0: only
/// plan, while remote workers train). Returns how it ended.
pub fn run(
    store: &mut dyn ExperimentStore,
    store_url: &str,
    view: &View,
    workers: usize,
    lease: f64,
) -> Result<Ended, String> {
    let configs = confirm::comparisons(view)?;
    if configs.is_empty() {
        eprintln!("confirmation: no cell to confirm (none scored besides the seed cells)");
        return Ok(Ended::Done);
    }
    let cells: Vec<&str> = configs[0].cells[1..].iter().map(|c| c.name.as_str()).collect();
    let plan = confirm::plan(view);
    eprintln!(
        "confirmation: {} against {} on {} task{}, paired seeds from {} until decided ({} to {} seeds, 5% per difference)",
        cells.join(", "),
        configs[0].cells[0].name,
        configs.len(),
        if configs.len() == 1 { "" } else { "s" },
        confirm::FIRST_SEED,
        plan.min_seeds,
        plan.max_seeds
    );
    interrupt::catch_ctrl_c();
    let local = LocalWorkers::spawn(workers, store_url, lease, view.config.data.as_deref())?;
    let mut line = StatusLine::new();
    let started = Instant::now();
    let stop = || interrupt::interrupted() || local.all_gone();
    for (i, c) in configs.iter().enumerate() {
        let name = compare::open(store, c)?;
        let task = c.config.task.kind;
        let mut observe = |v: &compare::View| {
            let done = v.jobs.iter().filter(|j| j.result.is_some()).count();
            line.show_or_log(&format!(
                "confirmation {}/{} ({task}): {} seeds complete, {done}/{} runs, {}",
                i + 1,
                configs.len(),
                v.complete_seeds(),
                v.jobs.len(),
                clock(started.elapsed().as_secs_f64())
            ));
        };
        let ended = compare::drive(
            store,
            &name,
            confirm::seeds(view),
            compare::Metric::Scored,
            Duration::from_millis(500),
            &stop,
            &mut observe,
        )?;
        if !interrupt::interrupted() && local.all_gone() {
            return Err("every worker process exited (their errors are above); run the same command to continue".into());
        }
        if ended != Ended::Done {
            if line.is_tty() {
                eprintln!();
            }
            return Ok(ended);
        }
    }
    if line.is_tty() {
        eprintln!();
    }
    Ok(Ended::Done)
}
