//! The dashboard's copy of the store, kept current by cheap incremental reads: done jobs never
//! change, so after the first read only the jobs not done yet, those finished lately, the
//! workers and the runs' progress are read again. It serves `ExperimentStore`'s reads from
//! memory, so the experiments' own views (`search::View`, `compare::View`, `paper::View`) load
//! from it unchanged, and refuses every write.

use std::collections::{BTreeMap, HashMap};

use crate::store::{CandidateRow, ExperimentRow, ExperimentStore, JobRow, ProgressRow, RoundRow, WorkerRow};

/// How far back a refresh reads finished jobs again, beyond the last refresh: a result stamped
/// with its worker's clock may commit later than one stamped after it (a write can wait up to a
/// minute for SQLite's lock), so the window is generous; re-read rows cost little.
const REREAD_MS: i64 = 10 * 60_000;

/// The store as last read.
pub struct Cache {
    store: Box<dyn ExperimentStore>,
    describe: String,
    experiments: Vec<ExperimentRow>,
    jobs: BTreeMap<i64, JobRow>,
    candidates: HashMap<String, Vec<CandidateRow>>,
    rounds: HashMap<String, Vec<RoundRow>>,
    workers: Vec<WorkerRow>,
    progress: Vec<ProgressRow>,
    /// The store's clock at the last refresh (`None` before the first).
    read_at: Option<i64>,
    /// Bumped whenever anything a reader could see changed; per experiment likewise.
    version: u64,
    versions: HashMap<String, u64>,
    /// Per job: the version at which its progress last changed (a run in flight's curve grows
    /// without its experiment's views being rebuilt).
    progress_versions: HashMap<i64, u64>,
}

impl Cache {
    /// Reads the whole store once.
    pub fn new(store: Box<dyn ExperimentStore>) -> Result<Cache, String> {
        let describe = store.describe();
        let mut cache = Cache {
            store,
            describe,
            experiments: vec![],
            jobs: BTreeMap::new(),
            candidates: HashMap::new(),
            rounds: HashMap::new(),
            workers: vec![],
            progress: vec![],
            read_at: None,
            version: 0,
            versions: HashMap::new(),
            progress_versions: HashMap::new(),
        };
        cache.refresh()?;
        Ok(cache)
    }

    /// Brings the copy up to date; true when anything changed.
    pub fn refresh(&mut self) -> Result<bool, String> {
        let now = self.store.now_ms()?;
        let mut changed: Vec<String> = vec![];
        let mut experiments = vec![];
        for name in self.store.experiments()? {
            if let Some(row) = self.store.experiment(&name)? {
                experiments.push(row);
            }
        }
        for row in &experiments {
            if !self.experiments.contains(row) {
                changed.push(row.name.clone());
            }
        }
        self.experiments = experiments;
        let since = self.read_at.map_or(i64::MIN, |t| t - REREAD_MS);
        let mut new_jobs: Vec<String> = vec![];
        for job in self.store.jobs_changed_since(since)? {
            match self.jobs.get(&job.id) {
                Some(old) if *old == job => continue,
                None => new_jobs.push(job.search.clone()),
                Some(_) => {}
            }
            changed.push(job.search.clone());
            self.jobs.insert(job.id, job);
        }
        // A new round brings new candidates with its jobs (one transaction): read them again.
        new_jobs
            .extend(self.experiments.iter().filter(|e| !self.candidates.contains_key(&e.name)).map(|e| e.name.clone()));
        new_jobs.sort();
        new_jobs.dedup();
        for name in new_jobs {
            self.candidates.insert(name.clone(), self.store.candidates(&name)?);
            self.rounds.insert(name.clone(), self.store.rounds(&name)?);
            changed.push(name);
        }
        let progress = self.store.progress()?;
        let moved: Vec<i64> = progress.iter().filter(|p| !self.progress.contains(p)).map(|p| p.job).collect();
        self.progress = progress;
        let workers = self.store.workers()?;
        let workers_changed = workers != self.workers;
        self.workers = workers;
        self.read_at = Some(now);
        let any = !changed.is_empty() || workers_changed || !moved.is_empty();
        if any {
            self.version += 1;
            for name in changed {
                self.versions.insert(name, self.version);
            }
            for job in moved {
                self.progress_versions.insert(job, self.version);
            }
        }
        Ok(any)
    }

    /// Changes with anything in the store.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Changes with anything of experiment `name` (its row, jobs, candidates, runs' progress).
    pub fn version_of(&self, name: &str) -> u64 {
        self.versions.get(name).copied().unwrap_or(0)
    }

    /// Changes with the progress row of job `id`.
    pub fn progress_version_of(&self, id: i64) -> u64 {
        self.progress_versions.get(&id).copied().unwrap_or(0)
    }

    /// The store's clock at the last refresh.
    pub fn read_at(&self) -> i64 {
        self.read_at.unwrap_or(0)
    }

    pub fn experiment_rows(&self) -> &[ExperimentRow] {
        &self.experiments
    }

    /// Every job, by id.
    pub fn all_jobs(&self) -> &BTreeMap<i64, JobRow> {
        &self.jobs
    }

    pub fn progress_rows(&self) -> &[ProgressRow] {
        &self.progress
    }

    /// Candidate `id` of experiment `name`.
    pub fn candidate_of(&self, name: &str, id: i64) -> Option<&CandidateRow> {
        self.candidates.get(name)?.iter().find(|c| c.id == id)
    }

    /// The workers as last read.
    pub fn workers_now(&self) -> Vec<WorkerRow> {
        self.workers.clone()
    }

    /// Where the store is (never a password).
    pub fn describe_store(&self) -> &str {
        &self.describe
    }

    pub fn candidate_rows(&self, name: &str) -> &[CandidateRow] {
        self.candidates.get(name).map_or(&[], Vec::as_slice)
    }
}

fn read_only() -> String {
    "the dashboard reads the store only".into()
}

/// Reads from the copy (as of the last refresh); writes fail.
impl ExperimentStore for Cache {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn schema_version(&mut self) -> Result<i64, String> {
        self.store.schema_version()
    }

    fn now_ms(&mut self) -> Result<i64, String> {
        Ok(self.read_at())
    }

    fn lock_experiment(&mut self, _name: &str) -> Result<(), String> {
        Err(read_only())
    }

    fn create_experiment(&mut self, _name: &str, _kind: &str, _config: &str) -> Result<(), String> {
        Err(read_only())
    }

    fn experiment(&mut self, name: &str) -> Result<Option<ExperimentRow>, String> {
        Ok(self.experiments.iter().find(|e| e.name == name).cloned())
    }

    fn experiments(&mut self) -> Result<Vec<String>, String> {
        Ok(self.experiments.iter().map(|e| e.name.clone()).collect())
    }

    fn any_running(&mut self) -> Result<bool, String> {
        Ok(self.experiments.iter().any(|e| e.state == "running"))
    }

    fn set_experiment_state(&mut self, _name: &str, _state: &str) -> Result<(), String> {
        Err(read_only())
    }

    fn rounds(&mut self, search: &str) -> Result<Vec<RoundRow>, String> {
        Ok(self.rounds.get(search).cloned().unwrap_or_default())
    }

    fn candidates(&mut self, search: &str) -> Result<Vec<CandidateRow>, String> {
        Ok(self.candidate_rows(search).to_vec())
    }

    fn jobs(&mut self, search: &str) -> Result<Vec<JobRow>, String> {
        Ok(self.jobs.values().filter(|j| j.search == search).cloned().collect())
    }

    fn job(&mut self, id: i64) -> Result<Option<JobRow>, String> {
        Ok(self.jobs.get(&id).cloned())
    }

    fn max_job_id(&mut self) -> Result<i64, String> {
        Ok(self.jobs.keys().next_back().copied().unwrap_or(0))
    }

    fn commit_round(&mut self, _: &str, _: &RoundRow, _: &[CandidateRow], _: &[JobRow]) -> Result<bool, String> {
        Err(read_only())
    }

    fn claim(&mut self, _worker: &str, _lease_ms: i64) -> Result<Option<JobRow>, String> {
        Err(read_only())
    }

    fn renew(&mut self, _job: i64, _worker: &str, _lease_ms: i64) -> Result<bool, String> {
        Err(read_only())
    }

    fn finish(&mut self, _job: i64, _worker: &str, _result: &str) -> Result<bool, String> {
        Err(read_only())
    }

    fn report_progress(&mut self, _job: i64, _worker: &str, _points: &str) -> Result<(), String> {
        Err(read_only())
    }

    fn progress(&mut self) -> Result<Vec<ProgressRow>, String> {
        Ok(self.progress.clone())
    }

    fn jobs_changed_since(&mut self, finished_after_ms: i64) -> Result<Vec<JobRow>, String> {
        let recent = |j: &&JobRow| j.state != crate::store::JobState::Done || j.finished_ms >= Some(finished_after_ms);
        Ok(self.jobs.values().filter(recent).cloned().collect())
    }

    fn requeue_dead(&mut self, _dead: &dyn Fn(&str) -> bool) -> Result<usize, String> {
        Err(read_only())
    }

    fn worker_beat(&mut self, _w: &WorkerRow) -> Result<(), String> {
        Err(read_only())
    }

    fn workers(&mut self) -> Result<Vec<WorkerRow>, String> {
        Ok(self.workers.clone())
    }
}
