//! The experiment-level views: a search (leaderboard with the confirmed intervals, every
//! candidate with why it was kept or dropped, the best score over time, the family tree of the
//! best cells), one candidate cell (source, derivative, runs), a study (its table beside the
//! paper's numbers, with the claims' verdicts) and a comparison (its paired differences). Each
//! starts from the JSON the matching `--json` command prints.

use serde_json::{Value, json};

use super::cache::Cache;
use crate::compare::{self, Seeds};
use crate::experiment::stats::Sequential;
use crate::search::view::Status;
use crate::search::{self, View};
use crate::store::ExperimentStore;

/// Why a candidate stands where it does, in words.
fn status_text(view: &View, id: i64) -> (String, &'static str) {
    let first = view.config.tasks.first().map_or("", |t| t.name());
    match view.status(id) {
        Status::Running => ("being trained".into(), "running"),
        Status::Filtered(a) => (format!("dropped: memorisation filter, accuracy {a:.3}"), "dropped"),
        Status::NeedsFirst => ("passed the filter; waiting for its first task".into(), "waiting"),
        Status::Weak(r) => (format!("dropped: {r:.2} of the GRU on {first}, below the gate"), "dropped"),
        Status::NeedsRest => ("passed the gate; waiting for the other tasks".into(), "waiting"),
        Status::Evaluated(s) => (format!("scored {s:.3}"), "scored"),
    }
}

/// A search: `cellc search report --json` plus the candidates, score history, family tree,
/// rounds and the runs in flight.
pub fn search(cache: &mut Cache, name: &str) -> Result<Value, String> {
    let view = View::load(cache, name)?;
    let confirmed = search::confirm::confirmed(cache, &view)?;
    let mut doc = search::report::json(&view, None, confirmed.as_ref().map(|(c, _)| c.as_slice()));
    let candidates: Vec<Value> = view
        .candidates
        .iter()
        .map(|c| {
            let (why, status) = status_text(&view, c.id);
            json!({"id": c.id, "name": c.name, "parent": c.parent, "mutation": c.mutation, "round": c.round,
                "status": status, "why": why, "score": view.score(c.id)})
        })
        .collect();
    let tree = search::report::family_tree(&view, 5);
    let nodes: Vec<Value> = tree
        .nodes
        .iter()
        .map(|n| {
            let id = view.candidates.iter().find(|c| c.name == n.label).map(|c| c.id);
            json!({"id": id, "name": n.label, "detail": n.detail, "mutation": n.edge, "parent": n.parent,
                "best": n.highlight})
        })
        .collect();
    let extra = json!({"kind": search::KIND, "state": view.state, "created_ms": view.created_ms,
        "tasks": view.config.tasks.iter().map(|t| t.name()).collect::<Vec<_>>(),
        "candidates": candidates, "score_history": search::report::score_history(&view),
        "confirmed_at_hours": confirmed.as_ref().map(|(_, t)| *t), "tree": nodes, "rounds": view.rounds});
    if let (Some(doc), Value::Object(extra)) = (doc.as_object_mut(), extra) {
        doc.extend(extra);
    }
    Ok(doc)
}

/// Candidate `id` of search `name`: its source, its derivative as `cellc grad` prints it, its
/// standing and runs (`None`: no such candidate).
pub fn cell(cache: &mut Cache, name: &str, id: i64) -> Result<Option<Value>, String> {
    let view = View::load(cache, name)?;
    let Some(c) = view.candidate(id) else { return Ok(None) };
    let source =
        crate::workspace::CellSource { name: c.name.clone(), file: format!("{}.cell", c.name), text: c.source.clone() };
    let grad = source.checked().map(|cell| {
        let backward = crate::autodiff::grad(&crate::ir::lower(&cell));
        crate::autodiff::print::backward_text(&backward)
    });
    let (why, status) = status_text(&view, id);
    let tasks: Vec<Value> = view
        .config
        .tasks
        .iter()
        .map(|t| {
            json!({"task": t.name(), "best_valid": view.best(id, t.name()).map(|(_, r)| r.valid),
            "relative": view.relative(id, t.name())})
        })
        .collect();
    let runs: Vec<Value> = view
        .jobs_of(id)
        .map(|j| {
            let r = view.results.get(&j.id);
            json!({"run": j.id, "task": j.task, "stage": j.stage, "setting": j.setting, "state": j.state,
                "valid": r.map(|r| r.valid), "test": r.map(|r| r.test), "outcome": r.map(|r| r.outcome.to_string())})
        })
        .collect();
    let parent = c.parent.and_then(|p| view.candidate(p)).map(|p| json!({"id": p.id, "name": p.name}));
    Ok(Some(json!({"search": name, "id": id, "name": c.name, "hash": c.hash, "parent": parent,
        "mutation": c.mutation, "round": c.round, "source": c.source, "grad": grad.as_ref().ok(),
        "grad_error": grad.err(), "status": status, "why": why, "score": view.score(id), "tasks": tasks,
        "runs": runs})))
}

/// A study: `cellc paper --json` (without `out`) plus its state and stages.
pub fn study(cache: &mut Cache, name: &str) -> Result<Value, String> {
    let view = crate::paper::View::load(cache, name)?;
    let study = &view.study;
    let names: Vec<String> = study.cells.iter().map(|c| c.name.clone()).collect();
    let table =
        crate::paper::report::Table::build(&view.records, &names, &study.tasks, &study.profile.seed_plan(study.seed));
    let mut doc = crate::paper::report::json(&table, &view.records);
    let stages: serde_json::Map<String, Value> = crate::paper::stage_counts(&view)
        .into_iter()
        .map(|(stage, (planned, done))| (stage.to_string(), json!({"runs": planned, "done": done})))
        .collect();
    doc["name"] = json!(name);
    doc["kind"] = json!(crate::paper::KIND);
    doc["state"] = json!(view.state);
    doc["stages"] = Value::Object(stages);
    Ok(doc)
}

/// A comparison: `cellc compare --json` at the plan the store implies (a search's confirmation
/// plan for its own comparisons; otherwise 95% intervals over the seeds every cell has, since
/// the command's `--seeds` plan is not stored).
pub fn comparison(cache: &mut Cache, name: &str) -> Result<Value, String> {
    let mut view = compare::View::load(cache, name)?;
    let (seeds, plan) = match confirmation_plan(cache, name)? {
        Some(plan) => {
            view.metric = compare::Metric::Scored;
            (Seeds::UntilDecided(plan), "the search's confirmation plan")
        }
        None => (Seeds::Fixed(view.complete_seeds().max(2)), "95% over every complete seed"),
    };
    let n = compare::stopping_point(&view, &seeds);
    let mut doc = compare::report::json(&view, &view.analyse(n, &seeds), &seeds);
    let state = cache.experiment(name)?.map(|e| e.state);
    doc["name"] = json!(name);
    doc["kind"] = json!(compare::KIND);
    doc["state"] = json!(state);
    doc["plan_from"] = json!(plan);
    doc["runs"] = json!(view.jobs.len());
    doc["done"] = json!(view.jobs.iter().filter(|j| j.result.is_some()).count());
    Ok(doc)
}

/// The sequential plan of a search's confirmation comparison `name`, if it is one.
fn confirmation_plan(cache: &mut Cache, name: &str) -> Result<Option<Sequential>, String> {
    let searches: Vec<String> =
        cache.experiment_rows().iter().filter(|e| e.kind == search::KIND).map(|e| e.name.clone()).collect();
    for s in searches {
        let view = View::load(cache, &s)?;
        if search::confirm::comparisons(&view)?.iter().any(|c| c.name() == name) {
            return Ok(Some(search::confirm::plan(&view)));
        }
    }
    Ok(None)
}
