//! `cellc search report`: the leaderboard, where the time went, the confirmation of the best
//! cells against the GRU, the best cells as `.cell` files, and two plots: the best score over
//! time (with the confirmed intervals) and the family tree of the best cells.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use super::confirm::Confirmed;
use super::view::{BASELINE, Counts, Status, View};
use crate::plot::tree::{Tree, TreeNode};
use crate::plot::{COLORS, Figure, Panel, Series};
use crate::store::JobState;
use crate::tasks::TaskKind;

/// One row of the leaderboard.
#[derive(Clone, Debug, Serialize)]
pub struct Entry {
    pub id: i64,
    pub name: String,
    pub score: f64,
    /// Per task: best validation accuracy and that relative to the GRU's.
    pub accuracy: Vec<Option<f64>>,
    pub relative: Vec<Option<f64>>,
    pub parent: Option<String>,
    pub parent_id: Option<i64>,
    pub mutation: String,
    pub runs: usize,
}

/// Every evaluated candidate, best first.
pub fn leaderboard(view: &View) -> Vec<Entry> {
    let mut entries: Vec<Entry> = view
        .candidates
        .iter()
        .filter_map(|c| {
            let Status::Evaluated(score) = view.status(c.id) else { return None };
            Some(Entry {
                id: c.id,
                name: c.name.clone(),
                score,
                accuracy: view.config.tasks.iter().map(|t| view.best(c.id, t.name()).map(|(_, r)| r.valid)).collect(),
                relative: view.config.tasks.iter().map(|t| view.relative(c.id, t.name())).collect(),
                parent: c.parent.and_then(|p| view.candidate(p)).map(|p| p.name.clone()),
                parent_id: c.parent,
                mutation: c.mutation.clone(),
                runs: view.jobs_of(c.id).filter(|j| j.state == JobState::Done).count(),
            })
        })
        .collect();
    entries.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
    entries
}

/// Where the CPU time went, and how many candidates it bought.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Throughput {
    pub runs: u64,
    /// Sum over finished runs, in seconds.
    pub cpu_seconds: f64,
    pub compile_seconds: f64,
    pub train_seconds: f64,
    pub eval_seconds: f64,
    /// From the search's creation to its last finished run.
    pub wall_seconds: f64,
    /// Mutants with at least one finished run (filtered ones included), and mutants scored on
    /// every task.
    pub mutants_tried: u64,
    pub mutants_evaluated: u64,
    pub tried_per_cpu_hour: f64,
    pub evaluated_per_cpu_hour: f64,
    pub runs_per_hour: f64,
    /// Worker processes that reported, their time alive and the share of it spent training.
    pub workers: u64,
    pub worker_seconds: f64,
    pub busy_share: f64,
}

pub fn throughput(view: &View) -> Throughput {
    let mut t = Throughput::default();
    // In job order: sums over a hash map's order would differ in the last bits between reads.
    for r in view.jobs.iter().filter_map(|j| view.results.get(&j.id)) {
        t.runs += 1;
        t.cpu_seconds += r.seconds * view.config.threads as f64;
        t.compile_seconds += r.compile_seconds;
        t.train_seconds += r.train_seconds;
        t.eval_seconds += r.eval_seconds;
    }
    let last = view.jobs.iter().filter_map(|j| j.finished_ms).max().unwrap_or(view.created_ms);
    t.wall_seconds = (last - view.created_ms).max(0) as f64 / 1000.0;
    for c in view.candidates.iter().filter(|c| c.parent.is_some()) {
        if view.jobs_of(c.id).any(|j| view.results.contains_key(&j.id)) {
            t.mutants_tried += 1;
        }
        if matches!(view.status(c.id), Status::Evaluated(_)) {
            t.mutants_evaluated += 1;
        }
    }
    let cpu_hours = t.cpu_seconds / 3600.0;
    if cpu_hours > 0.0 {
        t.tried_per_cpu_hour = t.mutants_tried as f64 / cpu_hours;
        t.evaluated_per_cpu_hour = t.mutants_evaluated as f64 / cpu_hours;
    }
    if t.wall_seconds > 0.0 {
        t.runs_per_hour = t.runs as f64 * 3600.0 / t.wall_seconds;
    }
    t.workers = view.workers.len() as u64;
    t.worker_seconds = view.workers.iter().map(|w| (w.heartbeat_ms - w.started_ms).max(0) as f64 / 1000.0).sum();
    let busy: f64 = view.workers.iter().map(|w| w.busy_seconds).sum();
    if t.worker_seconds > 0.0 {
        t.busy_share = (busy / t.worker_seconds).min(1.0);
    }
    t
}

fn pct(part: f64, whole: f64) -> String {
    if whole > 0.0 { format!("{:.1}%", 100.0 * part / whole) } else { "-".into() }
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.digits$}"))
}

/// The report as Markdown: counts, throughput, the top `top` cells, and the confirmation.
pub fn markdown(view: &View, top: usize, confirmed: Option<&[Confirmed]>) -> String {
    let counts: Counts = view.counts();
    let t = throughput(view);
    let entries = leaderboard(view);
    let mut s = String::new();
    let _ = writeln!(s, "# Search `{}`\n", view.name);
    let _ = writeln!(
        s,
        "Tasks {} (the first gates the rest), H = {}, {} settings per task, population {}, seed {}.\n",
        TaskKind::names(&view.config.tasks),
        view.config.hidden,
        view.config.settings,
        view.config.population,
        view.config.seed
    );
    let _ = writeln!(
        s,
        "- Mutants drawn: {}; rejected as invalid: {}; skipped as duplicates of a cell already seen: {}.",
        counts.generated, counts.rejected, counts.duplicates
    );
    let _ = writeln!(
        s,
        "- Candidates (seed cells included): {} filtered out by {} (< {}), {} below {} of the GRU on {}, {} scored on every task, {} in progress.",
        counts.filtered,
        view.config.filter_task,
        view.config.filter,
        counts.weak,
        view.config.gate,
        view.config.tasks[0],
        counts.evaluated,
        counts.running
    );
    let _ = writeln!(
        s,
        "- Runs: {} finished ({} stopped early by the validation curve), {:.0} runs per hour over {:.1} h of wall time.",
        t.runs,
        counts.stopped_early,
        t.runs_per_hour,
        t.wall_seconds / 3600.0
    );
    let _ = writeln!(
        s,
        "- CPU time: {:.2} h; compile {}, train {}, evaluate {}, other (data, setup) {}.",
        t.cpu_seconds / 3600.0,
        pct(t.compile_seconds, t.cpu_seconds),
        pct(t.train_seconds, t.cpu_seconds),
        pct(t.eval_seconds, t.cpu_seconds),
        pct((t.cpu_seconds - t.compile_seconds - t.train_seconds - t.eval_seconds).max(0.0), t.cpu_seconds)
    );
    let _ = writeln!(
        s,
        "- Mutants tried per CPU-hour: {:.1}; scored on every task per CPU-hour: {:.1}.",
        t.tried_per_cpu_hour, t.evaluated_per_cpu_hour
    );
    if t.workers > 0 {
        let _ = writeln!(
            s,
            "- Workers: {} process{} over the store's life, training {} of their time (the rest: waiting at round ends, claiming).",
            t.workers,
            if t.workers == 1 { "" } else { "es" },
            pct(t.busy_share, 1.0)
        );
    }
    let best = entries.iter().find(|e| e.id != BASELINE);
    if let Some(b) = best {
        let _ = writeln!(
            s,
            "- Best cell in the search: `{}` with score {:.3} (the best of its runs' validation results, so biased \
             upwards; the GRU scores 1 by definition). Whether it beats the GRU is the confirmation's answer below.",
            b.name, b.score
        );
    }
    let _ = writeln!(
        s,
        "\n| rank | cell | score | {} | parent | runs | mutation |",
        view.config.tasks.iter().map(|t| t.name()).collect::<Vec<_>>().join(" | ")
    );
    let _ = writeln!(s, "|---|---|---|{}---|---|---|", "---|".repeat(view.config.tasks.len()));
    for (i, e) in entries.iter().take(top).enumerate() {
        let per_task: Vec<String> =
            e.relative.iter().zip(&e.accuracy).map(|(r, a)| format!("{} ({})", opt(*r, 3), opt(*a, 3))).collect();
        let _ = writeln!(
            s,
            "| {} | {} | {:.3} | {} | {} | {} | {} |",
            i + 1,
            e.name,
            e.score,
            per_task.join(" | "),
            e.parent.as_deref().unwrap_or("(seed)"),
            e.runs,
            e.mutation.replace('|', "\\|")
        );
    }
    let _ = writeln!(s, "\nPer task: accuracy relative to the GRU's best (the best validation accuracy itself).");
    confirmation_markdown(&mut s, view, confirmed);
    s
}

/// What a confirmed interval says of a cell against the GRU.
pub fn verdict(c: &Confirmed) -> &'static str {
    if c.beats_gru {
        "beats the GRU"
    } else if c.high < 1.0 {
        "worse than the GRU"
    } else {
        "inconclusive"
    }
}

fn confirmation_markdown(s: &mut String, view: &View, confirmed: Option<&[Confirmed]>) {
    let _ = writeln!(s, "\n## Confirmation against the GRU\n");
    let Some(confirmed) = confirmed.filter(|c| !c.is_empty()) else {
        let _ = writeln!(
            s,
            "Not confirmed yet (`cellc search --resume` runs the confirmation when the search stops): no cell is \
             claimed to beat the GRU."
        );
        return;
    };
    let plan = super::confirm::plan(view);
    let _ = writeln!(
        s,
        "The best {} cells trained again beside the GRU on fresh seeds ({} and up, shared by every cell: paired), the \
         default setting, one comparison per task, seeds added from {} to at most {} until every difference is \
         decided (each look's level {:.2}%, so at most 5% error per difference). Per task: the mean over seeds of \
         the cell's test accuracy over the GRU's, with its interval; score: the minimum over tasks, its interval \
         [min of the lows, min of the highs]. A cell **beats the GRU** only when every task's interval lies above 1.\n",
        confirmed.len(),
        super::confirm::FIRST_SEED,
        plan.min_seeds,
        plan.max_seeds,
        100.0 * plan.level()
    );
    let _ = writeln!(
        s,
        "| cell | confirmed score | interval | {} | verdict |",
        view.config.tasks.iter().map(|t| t.name()).collect::<Vec<_>>().join(" | ")
    );
    let _ = writeln!(s, "|---|---|---|{}---|", "---|".repeat(view.config.tasks.len()));
    for c in confirmed {
        let per_task: Vec<String> = c
            .ratios
            .iter()
            .map(|(_, r)| format!("{:.3} [{:.3}, {:.3}] ({} seeds)", r.mean, r.low(), r.high(), r.n))
            .collect();
        let _ = writeln!(
            s,
            "| {} | {:.3} | [{:.3}, {:.3}] | {} | {} |",
            c.name,
            c.score,
            c.low,
            c.high,
            per_task.join(" | "),
            verdict(c)
        );
    }
    let beating = confirmed.iter().filter(|c| c.beats_gru).count();
    let widest = confirmed.iter().map(|c| c.high).fold(f64::NEG_INFINITY, f64::max);
    let _ = if beating == 0 {
        writeln!(
            s,
            "\nNo cell is confirmed to beat the GRU; the highest upper end of a confirmed score's interval is {widest:.3}."
        )
    } else {
        writeln!(s, "\n{beating} cell{} confirmed to beat the GRU.", if beating == 1 { " is" } else { "s are" })
    };
}

/// The best mutant's score as it stood after each finished run, in hours since the search began.
/// One pass over the runs in the order they finished: a candidate's score only grows with its
/// own runs, so only the GRU's runs (which lower every ratio) need every score again.
pub fn score_history(view: &View) -> Vec<(f64, f64)> {
    let tasks: Vec<&str> = view.config.tasks.iter().map(|t| t.name()).collect();
    let mut runs: Vec<(i64, i64, usize, f64)> = view
        .jobs
        .iter()
        .filter(|j| j.stage != "filter")
        .filter_map(|j| {
            let task = tasks.iter().position(|&t| t == j.task)?;
            Some((j.finished_ms?, j.candidate, task, view.results.get(&j.id)?.valid))
        })
        .collect();
    runs.sort_by_key(|r| (r.0, r.1));
    let mutant: std::collections::HashSet<i64> =
        view.candidates.iter().filter(|c| c.parent.is_some()).map(|c| c.id).collect();
    let mut best: HashMap<i64, Vec<Option<f64>>> = HashMap::new();
    let score = |mine: &[Option<f64>], base: &[Option<f64>]| {
        mine.iter().zip(base).try_fold(f64::INFINITY, |m, (&a, &b)| {
            let (a, b) = (a?, b?);
            Some(m.min(if b > 0.0 { a / b } else { 0.0 }))
        })
    };
    let mut top: Option<f64> = None;
    let mut out: Vec<(f64, f64)> = vec![];
    let mut i = 0;
    while i < runs.len() {
        let t = runs[i].0;
        let mut base_moved = false;
        let mut touched = vec![];
        while i < runs.len() && runs[i].0 == t {
            let (_, c, task, valid) = runs[i];
            let slot = &mut best.entry(c).or_insert_with(|| vec![None; tasks.len()])[task];
            if slot.is_none_or(|b| valid > b) {
                *slot = Some(valid);
                base_moved |= c == BASELINE;
                touched.push(c);
            }
            i += 1;
        }
        let base = best.get(&BASELINE).cloned().unwrap_or_else(|| vec![None; tasks.len()]);
        let candidates: Vec<i64> = if base_moved { best.keys().copied().collect() } else { touched };
        if base_moved {
            top = None;
        }
        for c in candidates.into_iter().filter(|c| mutant.contains(c)) {
            if let Some(s) = score(&best[&c], &base) {
                top = Some(top.map_or(s, |m: f64| m.max(s)));
            }
        }
        let Some(now) = top else { continue };
        let hours = (t - view.created_ms) as f64 / 3.6e6;
        match out.last() {
            Some(&(_, b)) if b == now => {}
            // A step: the old best holds until the moment the new one appears.
            Some(&(_, b)) => out.extend([(hours, b), (hours, now)]),
            None => out.push((hours, now)),
        }
    }
    if let (Some(&(_, b)), Some(last)) = (out.last(), view.jobs.iter().filter_map(|j| j.finished_ms).max()) {
        out.push(((last - view.created_ms) as f64 / 3.6e6, b));
    }
    out
}

/// The best mutant's search score as it stood over time (best-of-runs validation, unconfirmed),
/// and, at the time the confirmation finished, each confirmed cell's score interval as a vertical
/// bar.
pub fn score_figure(view: &View, confirmed: Option<(&[Confirmed], f64)>) -> Figure {
    let best = score_history(view);
    let end = confirmed.map_or(best.last().map_or(0.0, |b| b.0), |(c, t)| t * (1.0 + 0.01 * c.len() as f64));
    let mut series = vec![
        Series { label: "best, unconfirmed".into(), points: best, color: COLORS[0] },
        Series { label: "GRU = 1".into(), points: vec![(0.0, 1.0), (end, 1.0)], color: COLORS[1] },
    ];
    if let Some((cells, hours)) = confirmed {
        for (i, c) in cells.iter().enumerate() {
            // Side by side, a little apart, so that overlapping intervals stay visible.
            let x = hours * (1.0 + 0.01 * i as f64);
            series.push(Series {
                label: format!("confirmed {}", c.name),
                points: vec![(x, c.low), (x, c.high)],
                color: COLORS[(2 + i) % COLORS.len()],
            });
        }
    }
    Figure {
        title: format!("Search `{}`: GRU-relative score (min over {})", view.name, TaskKind::names(&view.config.tasks)),
        panels: vec![Panel {
            title: "best score over time; confirmed intervals at the end".into(),
            x_label: "hours since the search began".into(),
            y_label: "score".into(),
            series,
            bars: vec![],
        }],
    }
}

/// The family tree of the best `n` cells: their ancestors back to the seed cells.
pub fn family_tree(view: &View, n: usize) -> Tree {
    let top: Vec<i64> = leaderboard(view).iter().filter(|e| e.id != BASELINE).take(n).map(|e| e.id).collect();
    let mut ids: Vec<i64> = vec![];
    for &id in &top {
        let mut at = Some(id);
        while let Some(c) = at {
            if !ids.contains(&c) {
                ids.push(c);
            }
            at = view.candidate(c).and_then(|c| c.parent);
        }
    }
    ids.sort_unstable(); // parents have smaller ids than their children
    let nodes = ids
        .iter()
        .filter_map(|&id| {
            let c = view.candidate(id)?;
            let detail = match view.status(id) {
                Status::Evaluated(s) => format!("score {s:.3}"),
                Status::Weak(r) => format!("{} {r:.2} of GRU", view.config.tasks[0]),
                Status::Filtered(a) => format!("filtered ({a:.2})"),
                _ => "running".into(),
            };
            Some(TreeNode {
                label: c.name.clone(),
                detail,
                edge: c.mutation.clone(),
                parent: c.parent.and_then(|p| ids.iter().position(|&q| q == p)),
                highlight: top.first() == Some(&id),
            })
        })
        .collect();
    Tree { title: format!("Search `{}`: ancestry of the best {} cells", view.name, top.len()), nodes }
}

/// The search as JSON (`leaderboard.json`, `cellc search report --json`, the end of `cellc search
/// --json` with the best 10, and `cellc dashboard`): counts, throughput, the leaderboard (the best
/// `top`, or all) and the confirmation's results.
pub fn json(view: &View, top: Option<usize>, confirmed: Option<&[Confirmed]>) -> serde_json::Value {
    let board: Vec<Entry> = leaderboard(view).into_iter().take(top.unwrap_or(usize::MAX)).collect();
    serde_json::json!({
        "search": view.name,
        "counts": view.counts(),
        "throughput": throughput(view),
        "leaderboard": board,
        "confirmed": confirmed,
    })
}

/// Writes `report.md`, `leaderboard.json`, the top cells as `.cell` files and the plots to `dir`.
/// `confirmed`: the confirmation's results and when it finished (hours since the search began).
pub fn write(
    view: &View,
    dir: &Path,
    top: usize,
    confirmed: Option<(&[Confirmed], f64)>,
) -> Result<Vec<std::path::PathBuf>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut written = vec![];
    let mut put = |name: &str, bytes: &[u8]| -> Result<(), String> {
        let path = dir.join(name);
        crate::io::write_atomic(&path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        written.push(path);
        Ok(())
    };
    put("report.md", markdown(view, top, confirmed.map(|c| c.0)).as_bytes())?;
    let json = json(view, None, confirmed.map(|c| c.0));
    put("leaderboard.json", serde_json::to_string_pretty(&json).unwrap_or_default().as_bytes())?;
    for (rank, e) in leaderboard(view).iter().take(top).enumerate() {
        let Some(c) = view.candidate(e.id) else { continue };
        let header = format!(
            "// Search `{}`, rank {}: score {:.3}; parent {}; mutation: {}\n",
            view.name,
            rank + 1,
            e.score,
            e.parent.as_deref().unwrap_or("(seed)"),
            if e.mutation.is_empty() { "-" } else { &e.mutation }
        );
        put(&format!("{:02}_{}.cell", rank + 1, e.name), (header + &c.source).as_bytes())?;
    }
    for ext in ["svg", "png"] {
        let path = dir.join(format!("score.{ext}"));
        crate::plot::write(&score_figure(view, confirmed), &path)?;
        written.push(path);
        let path = dir.join(format!("family.{ext}"));
        crate::plot::tree::write_tree(&family_tree(view, 5), &path)?;
        written.push(path);
    }
    Ok(written)
}
