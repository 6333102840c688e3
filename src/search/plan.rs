//! Planning one round of the search: a pure function of the store's contents and the round
//! number, so a search killed at any moment plans the same rounds again when resumed, and any
//! number of workers give the same results.
//!
//! Each round (1) moves candidates whose runs have finished to their next stage (memorisation
//! filter → first task → the other tasks), then (2) fills the free slots up to `in_flight`: with
//! chance `reevaluate` a population cell gets new settings on every task, otherwise a population
//! cell is mutated into a new candidate (invalid mutants are redrawn; duplicates of any cell the
//! search has seen are skipped and counted). Round 0 also adds the seed cells as baselines.

use super::candidate::{self, Candidate};
use super::view::{BASELINE, Status, View};
use crate::experiment::{JobSpec, Round};
use crate::rng::Rng;
use crate::store::{CandidateRow, JobRow, RoundRow, now_ms};
use crate::tasks::TaskKind;
use crate::train::grid::{self, Setting};

/// How many mutants one free slot may draw before the round gives up on it.
const MAX_DRAWS: usize = 200;

/// Plans round `round`. `grow` false: only take the candidates in progress through their stages
/// (the round or candidate limit was reached). `first_job` is the id the first new job gets.
pub fn plan(view: &View, round: i64, grow: bool, first_job: i64) -> Result<Round, String> {
    let c = &view.config;
    let mut rng = Rng::new(c.seed).fork(0x5eed_0000 ^ round as u64);
    let mut out = Planner {
        view,
        round,
        next_job: first_job,
        next_candidate: view.candidates.iter().map(|c| c.id).max().unwrap_or(0) + 1,
        row: RoundRow { round, generated: 0, rejected: 0, duplicates: 0, planned_ms: now_ms() },
        candidates: vec![],
        jobs: vec![],
    };
    if round == 0 {
        for seed in &c.seeds {
            let cand = candidate::from_source(seed).map_err(|e| format!("seed cell `{}`: {e}", seed.name))?;
            let id = out.add_candidate(&cand, None, String::new(), &seed.name);
            for &task in &c.tasks {
                out.add_settings(id, task, "baseline", 0)?;
            }
        }
    }
    let mut active = 0;
    for cand in &view.candidates {
        match view.status(cand.id) {
            Status::Running => active += 1,
            Status::NeedsFirst => {
                out.add_settings(cand.id, c.tasks[0], "first", 0)?;
                active += 1;
            }
            Status::NeedsRest => {
                for &task in &c.tasks[1..] {
                    out.add_settings(cand.id, task, "rest", 0)?;
                }
                active += 1;
            }
            _ => {}
        }
    }
    active += out.candidates.len();
    if !grow {
        return Ok(out.finish());
    }
    let population = view.population();
    let busy: Vec<i64> = view
        .candidates
        .iter()
        .filter(|c| matches!(view.status(c.id), Status::Running | Status::NeedsFirst | Status::NeedsRest))
        .map(|c| c.id)
        .collect();
    let mut reevaluated = vec![];
    while active < c.in_flight {
        active += 1;
        let idle: Vec<i64> =
            population.iter().map(|p| p.0).filter(|id| !busy.contains(id) && !reevaluated.contains(id)).collect();
        if rng.chance(c.reevaluate) && !idle.is_empty() {
            let id = *rng.pick(&idle);
            reevaluated.push(id);
            for &task in &c.tasks {
                let done = view.jobs_of(id).filter(|j| j.task == task.name() && j.stage != "filter").count() as i64;
                out.add_settings(id, task, "again", done)?;
            }
            continue;
        }
        // Parents: the population, or the seed cells (and this round's) before anything is scored.
        let parents: Vec<(i64, String)> = if population.is_empty() {
            view.candidates
                .iter()
                .chain(&out.candidates)
                .filter(|c| c.parent.is_none())
                .map(|c| (c.id, c.source.clone()))
                .collect()
        } else {
            population.iter().filter_map(|p| view.candidate(p.0).map(|c| (c.id, c.source.clone()))).collect()
        };
        if parents.is_empty() {
            break;
        }
        out.mutant(&parents, &mut rng)?;
    }
    Ok(out.finish())
}

struct Planner<'v> {
    view: &'v View,
    round: i64,
    next_job: i64,
    next_candidate: i64,
    row: RoundRow,
    candidates: Vec<CandidateRow>,
    jobs: Vec<JobRow>,
}

impl Planner<'_> {
    fn finish(self) -> Round {
        Round { row: self.row, candidates: self.candidates, jobs: self.jobs }
    }

    fn add_candidate(&mut self, cand: &Candidate, parent: Option<i64>, mutation: String, name: &str) -> i64 {
        let id = self.next_candidate;
        self.next_candidate += 1;
        self.candidates.push(CandidateRow {
            id,
            hash: cand.hash.clone(),
            name: name.to_string(),
            parent,
            mutation,
            source: cand.source.text.clone(),
            round: self.round,
        });
        id
    }

    fn known(&self, hash: &str) -> bool {
        self.view.candidates.iter().chain(&self.candidates).any(|c| c.hash == hash)
    }

    /// Draws mutants of random parents until one is a valid cell not seen before; adds it with
    /// its filter run.
    fn mutant(&mut self, parents: &[(i64, String)], rng: &mut Rng) -> Result<(), String> {
        for _ in 0..MAX_DRAWS {
            let (parent, source) = rng.pick(parents).clone();
            let parent_name = self.name_of(parent);
            let cell = crate::workspace::CellSource {
                name: parent_name.clone(),
                file: format!("{parent_name}.cell"),
                text: source,
            };
            let graph = crate::ir::lower(&cell.checked()?);
            self.row.generated += 1;
            let Some((mutated, what)) = super::mutate::mutate(&graph, rng, self.view.config.normalise) else {
                self.row.rejected += 1;
                continue;
            };
            let name = format!("c{}", self.next_candidate);
            let cand = match candidate::candidate(&mutated, &name) {
                Ok(c) => c,
                Err(_) => {
                    self.row.rejected += 1;
                    continue;
                }
            };
            if self.known(&cand.hash) {
                self.row.duplicates += 1;
                continue;
            }
            let id = self.add_candidate(&cand, Some(parent), what.join("; "), &name);
            let filter = self.view.config.filter_task;
            self.add_job(id, filter, "filter", 0, grid::setting(filter, 0, 0, 1), vec![])?;
            return Ok(());
        }
        Ok(())
    }

    fn name_of(&self, id: i64) -> String {
        self.view
            .candidates
            .iter()
            .chain(&self.candidates)
            .find(|c| c.id == id)
            .map_or(format!("c{id}"), |c| c.name.clone())
    }

    fn source_of(&self, id: i64) -> Option<&str> {
        self.view.candidates.iter().chain(&self.candidates).find(|c| c.id == id).map(|c| c.source.as_str())
    }

    fn parent_of(&self, id: i64) -> Option<i64> {
        self.view.candidates.iter().chain(&self.candidates).find(|c| c.id == id).and_then(|c| c.parent)
    }

    /// `settings` runs of a candidate on a task, setting indexes from `from`. Setting 0 of a
    /// mutant is its parent's best setting on the task (transfer); the others are drawn from
    /// the paper's grid by a stream of the search seed and the candidate.
    fn add_settings(&mut self, id: i64, task: TaskKind, stage: &str, from: i64) -> Result<(), String> {
        let c = &self.view.config;
        let stop_below = if id == BASELINE || c.keep.is_empty() {
            vec![]
        } else {
            match self.view.best(BASELINE, task.name()) {
                Some((_, r)) => c.keep.iter().zip(&r.curve).map(|(k, (_, v))| k * v).collect(),
                None => vec![],
            }
        };
        for i in from..from + c.settings.max(1) as i64 {
            let setting = if i == 0 {
                self.parent_of(id)
                    .and_then(|p| self.view.best(p, task.name()))
                    .and_then(|(j, _)| self.view.spec(j).ok()?.setting)
                    .unwrap_or_else(|| grid::setting(task, 0, 0, 1))
            } else {
                grid::setting(task, i as usize, c.seed ^ (id as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15), 1)
            };
            self.add_job(id, task, stage, i, setting, stop_below.clone())?;
        }
        Ok(())
    }

    fn add_job(
        &mut self,
        id: i64,
        task: TaskKind,
        stage: &str,
        index: i64,
        setting: Setting,
        stop_below: Vec<f64>,
    ) -> Result<(), String> {
        let c = &self.view.config;
        let name = self.name_of(id);
        let text = self.source_of(id).ok_or_else(|| format!("no candidate {id}"))?.to_string();
        // Setting i trains with seed + i for every candidate: cells are compared on the same
        // initial draws and data order.
        let config = c.config(task, setting, c.seed + index as u64)?;
        let spec = JobSpec {
            cell: crate::workspace::CellSource { file: format!("{name}.cell"), name, text },
            config,
            setting: Some(setting),
            stop_below,
        };
        let job = crate::experiment::queued_job(self.next_job, &self.view.name, id, stage, index, self.round, &spec)?;
        self.jobs.push(job);
        self.next_job += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::config::{DEFAULT_STEPS, SearchConfig};
    use crate::store::Store;
    use crate::workspace::CellSource;

    fn config(seeds: &[&str], in_flight: usize) -> SearchConfig {
        SearchConfig {
            seed: 3,
            tasks: vec![TaskKind::Arith, TaskKind::Xml],
            steps: DEFAULT_STEPS.to_vec(),
            hidden: 16,
            settings: 2,
            population: 100,
            in_flight,
            reevaluate: 0.1,
            filter_task: TaskKind::Memorize,
            filter: 0.95,
            gate: 0.9,
            keep: vec![],
            threads: 1,
            max_rounds: 0,
            max_candidates: 0,
            seeds: seeds
                .iter()
                .map(|n| CellSource {
                    name: n.to_string(),
                    file: format!("{n}.cell"),
                    text: crate::stdlib::source(n).unwrap_or_default().to_string(),
                })
                .collect(),
            data: None,
            confirm_top: 5,
            confirm_seeds: 10,
            normalise: false,
            bidirectional: false,
        }
    }

    fn first_round(seeds: &[&str], in_flight: usize) -> Round {
        let mut store = Store::memory().unwrap();
        crate::search::create(&mut store, "s", &config(seeds, in_flight)).unwrap();
        let view = View::load(&mut store, "s").unwrap();
        plan(&view, 0, true, 1).unwrap()
    }

    #[test]
    fn round_zero_adds_the_baselines_and_distinct_mutants_and_counts_duplicates() {
        // A tiny seed cell has few distinct mutants: many draws repeat one already taken.
        let r = first_round(&["gru", "tanh_rnn"], 40);
        assert_eq!(r.candidates[0].name, "gru");
        let baseline_jobs = r.jobs.iter().filter(|j| j.stage == "baseline").count();
        assert_eq!(baseline_jobs, 2 * 2 * 2, "2 seeds x 2 tasks x 2 settings");
        let mut hashes: Vec<&str> = r.candidates.iter().map(|c| c.hash.as_str()).collect();
        hashes.sort_unstable();
        hashes.dedup();
        assert_eq!(hashes.len(), r.candidates.len(), "every candidate is new");
        assert!(r.row.duplicates > 0, "{:?}", r.row);
        assert_eq!(r.row.generated, r.row.rejected + r.row.duplicates + (r.candidates.len() as i64 - 2));
        // Each mutant starts with its filter run, on the filter task.
        let mutants = r.candidates.iter().filter(|c| c.parent.is_some()).count();
        assert_eq!(r.jobs.iter().filter(|j| j.stage == "filter" && j.task == "memorize").count(), mutants);
        // The first job id is the one asked for; ids are consecutive.
        assert!(r.jobs.iter().enumerate().all(|(i, j)| j.id == 1 + i as i64));
    }

    #[test]
    fn planning_is_a_function_of_the_store_and_the_round() {
        let a = first_round(&["gru", "lstm"], 8);
        let b = first_round(&["gru", "lstm"], 8);
        let key = |r: &Round| r.candidates.iter().map(|c| (c.hash.clone(), c.mutation.clone())).collect::<Vec<_>>();
        assert_eq!(key(&a), key(&b));
        assert_eq!(
            a.jobs.iter().map(|j| &j.spec).collect::<Vec<_>>(),
            b.jobs.iter().map(|j| &j.spec).collect::<Vec<_>>()
        );
    }
}
