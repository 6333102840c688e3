//! `cellc dashboard`'s library half: the store read without ever writing (`cache`), every view as
//! JSON (`runs`: the overview, run lists and single runs; `experiments`: searches, cells, studies,
//! comparisons), and the web server that serves them with the page (`server`, `assets`). The
//! page fetches only these JSON endpoints, so what it shows is what `GET /api/...` returns, and
//! where a `--json` command prints the same view, it prints the same JSON.

pub mod assets;
pub mod cache;
pub mod experiments;
pub mod runs;
pub mod server;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use cache::Cache;
use runs::Briefs;

/// A view's JSON as last built, and what building it cost.
struct Built {
    version: u64,
    doc: Value,
    at: Instant,
    cost: Duration,
}

/// A view that changed is rebuilt no sooner than this many times its last build's cost after
/// it: a view of 10,000 runs costs ~0.2 s, and rebuilding it at every finished run would take
/// CPU from the workers; this keeps the dashboard under 1/HOLD of a core per open view.
const HOLD: u32 = 20;

/// The dashboard's state: the store's copy, results parsed so far, and each view's JSON as last
/// built (rebuilt only when what it shows changed, and not more often than [`HOLD`] allows).
pub struct Dashboard {
    cache: Cache,
    briefs: Briefs,
    built: HashMap<String, Built>,
    /// When a view served out of date may be rebuilt (the pages are told to fetch it again).
    held_until: Option<Instant>,
    /// Why the last read of the store failed (the pages keep the data read before).
    store_error: Option<String>,
}

/// What a request for a view gets.
#[derive(Debug, PartialEq)]
pub enum Reply {
    Json(Value),
    /// No such experiment, run or cell (the message says which).
    NotFound(String),
}

impl Dashboard {
    /// Opens `store` (an SQLite path or a `postgres://` URL) read-only and reads it.
    pub fn open(store: &str) -> Result<Dashboard, String> {
        let store = crate::store::open_search_store(store, crate::store::Access::ReadOnly)?;
        Ok(Dashboard {
            cache: Cache::new(store)?,
            briefs: Briefs::new(),
            built: HashMap::new(),
            held_until: None,
            store_error: None,
        })
    }

    /// Reads what changed in the store; true when anything did, or when reading started or
    /// stopped failing (the overview says why: a server restarting, a file gone). A failed read
    /// is tried again at the next call.
    pub fn refresh(&mut self) -> bool {
        let (changed, error) = match self.cache.refresh() {
            Ok(changed) => (changed, None),
            Err(e) => (false, Some(e)),
        };
        let error_moved = error != self.store_error;
        self.store_error = error;
        let hold_over = self.held_until.is_some_and(|t| Instant::now() >= t);
        if hold_over {
            self.held_until = None;
        }
        changed || error_moved || hold_over
    }

    /// Changes whenever anything in the store does (the page's cue to fetch its view again).
    pub fn version(&self) -> u64 {
        self.cache.version()
    }

    /// The view at API path `path` (after `/api/`): `overview`, `status`,
    /// `experiments/NAME`, `experiments/NAME/runs`, `experiments/NAME/cells/ID`, `runs/ID`.
    pub fn view(&mut self, path: &str) -> Result<Reply, String> {
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        let missing = |what: String| Ok(Reply::NotFound(what));
        let version = match parts.as_slice() {
            ["overview"] | ["status"] => self.cache.version(),
            ["experiments", name, ..] => {
                if !self.cache.experiment_rows().iter().any(|e| e.name == *name) {
                    return missing(format!("no experiment named `{name}` in this store"));
                }
                self.cache.version_of(name)
            }
            ["runs", id] => {
                let Some(j) = id.parse::<i64>().ok().and_then(|id| self.cache.all_jobs().get(&id)) else {
                    return missing(format!("no run {id} in this store"));
                };
                self.cache.version_of(&j.search).max(self.cache.progress_version_of(j.id))
            }
            _ => return missing(format!("no view `/api/{path}`")),
        };
        let mut reply = match self.built.get(path) {
            Some(b) if b.version == version => Reply::Json(b.doc.clone()),
            Some(b) if b.at.elapsed() < b.cost * HOLD => {
                let until = b.at + b.cost * HOLD;
                self.held_until = Some(self.held_until.map_or(until, |t| t.min(until)));
                Reply::Json(b.doc.clone())
            }
            _ => {
                let started = Instant::now();
                let reply = self.build(&parts)?;
                if let Reply::Json(doc) = &reply {
                    let built = Built { version, doc: doc.clone(), at: Instant::now(), cost: started.elapsed() };
                    self.built.insert(path.to_string(), built);
                }
                reply
            }
        };
        if let (Reply::Json(doc), ["overview"]) = (&mut reply, parts.as_slice()) {
            doc["store_error"] = serde_json::json!(self.store_error);
        }
        Ok(reply)
    }

    fn build(&mut self, parts: &[&str]) -> Result<Reply, String> {
        let c = &mut self.cache;
        let doc = match parts {
            ["overview"] => runs::overview(c, &mut self.briefs),
            ["status"] => json!(crate::search::status::status(c)?),
            ["experiments", name] => {
                let kind = c.experiment_rows().iter().find(|e| e.name == *name).map(|e| e.kind.clone());
                match kind.as_deref() {
                    Some(crate::search::KIND) => experiments::search(c, name)?,
                    Some(crate::compare::KIND) => experiments::comparison(c, name)?,
                    Some(crate::paper::KIND) => experiments::study(c, name)?,
                    other => return Err(format!("experiment `{name}` is of an unknown kind {other:?}")),
                }
            }
            ["experiments", name, "runs"] => match runs::runs(c, &mut self.briefs, name) {
                Some(doc) => doc,
                None => return Ok(Reply::NotFound(format!("no experiment named `{name}`"))),
            },
            ["experiments", name, "cells", id] => {
                let found = match id.parse::<i64>() {
                    Ok(id) => experiments::cell(c, name, id)?,
                    Err(_) => None,
                };
                match found {
                    Some(doc) => doc,
                    None => return Ok(Reply::NotFound(format!("no cell {id} in `{name}`"))),
                }
            }
            ["runs", id] => match runs::run(c, id.parse().unwrap_or(-1))? {
                Some(doc) => doc,
                None => return Ok(Reply::NotFound(format!("no run {id} in this store"))),
            },
            _ => return Ok(Reply::NotFound(format!("no view `/api/{}`", parts.join("/")))),
        };
        Ok(Reply::Json(doc))
    }

    /// Whether the page at `path` (not under `/api/`) shows something that exists: `/`,
    /// `/experiments/NAME`, `/experiments/NAME/cells/ID`, `/runs/ID`.
    pub fn page_exists(&mut self, path: &str) -> bool {
        let parts: Vec<&str> = path.trim_matches('/').split('/').filter(|p| !p.is_empty()).collect();
        match parts.as_slice() {
            [] => true,
            ["experiments", _] | ["experiments", _, "cells", _] | ["runs", _] => {
                matches!(self.view(&parts.join("/")), Ok(Reply::Json(_)))
            }
            _ => false,
        }
    }
}
