//! A worker: claims jobs from the store, trains them, records the results. Many workers (processes,
//! on one machine or several) share one store; the lease protocol in `store::search` makes each
//! job finish exactly once even when workers are killed.

use std::cell::{Cell, RefCell};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::job::{self as spec, JobResult, JobSpec};
use crate::store::{ExperimentStore, SCHEMA_VERSION, WorkerRow, now_ms};
use crate::train::RunEnd;

/// The shortest time between two progress reports of one run.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// How a worker behaves.
#[derive(Clone, Debug)]
pub struct WorkerOptions {
    /// How long a claimed job stays ours without a renewal.
    pub lease: Duration,
    /// Exit when this process is no longer our parent (the coordinator that started us died).
    pub parent: Option<u32>,
    /// Exit when no experiment in the store is running.
    pub exit_when_idle: bool,
    /// Where this machine keeps the data sets (overrides the path in a job's spec).
    pub data: Option<PathBuf>,
}

/// What a worker did.
#[derive(Clone, Debug, Default)]
pub struct WorkerStats {
    pub jobs: u64,
    pub busy_seconds: f64,
}

/// This process's worker id: host, pid and start time (unique, and tells a coordinator on the
/// same host whether the process is still alive).
pub fn worker_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    format!("{host}/{}/{}", std::process::id(), now_ms())
}

/// Whether a worker id names a process on this host that has exited.
pub fn is_dead_here(worker: &str) -> bool {
    let mine = worker_id();
    let host = mine.split('/').next().unwrap_or("");
    let mut parts = worker.split('/');
    match (parts.next(), parts.next().and_then(|p| p.parse::<u32>().ok())) {
        (Some(h), Some(pid)) if h == host => !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        _ => false,
    }
}

/// Runs jobs of any experiment until `stop` says so, the parent dies, or (with `exit_when_idle`)
/// no experiment is running.
/// `observe` hears each job whose result was recorded (its id, spec and result).
pub fn work(
    store: &mut dyn ExperimentStore,
    opts: &WorkerOptions,
    stop: &dyn Fn() -> bool,
    observe: &mut dyn FnMut(i64, &JobSpec, &JobResult),
) -> Result<WorkerStats, String> {
    let id = worker_id();
    let started = now_ms();
    let lease_ms = opts.lease.as_millis() as i64;
    let orphaned = || opts.parent.is_some_and(|p| std::os::unix::process::parent_id() != p);
    let mut stats = WorkerStats::default();
    // Heartbeats every few seconds, between runs and during them (`status` shows who is alive).
    let beat_every = Duration::from_secs(5);
    let beat = |store: &mut dyn ExperimentStore, stats: &WorkerStats| {
        store.worker_beat(&WorkerRow {
            id: id.clone(),
            started_ms: started,
            heartbeat_ms: now_ms(),
            jobs_done: stats.jobs as i64,
            busy_seconds: stats.busy_seconds,
        })
    };
    let mut last_beat: Option<Instant> = None;
    loop {
        if stop() || orphaned() {
            return Ok(stats);
        }
        if last_beat.is_none_or(|t| t.elapsed() > beat_every) {
            beat(store, &stats)?;
            last_beat = Some(Instant::now());
        }
        // A newer cellc may have migrated the store since we started: stop rather than write
        // tables we do not know.
        let version = store.schema_version()?;
        if version != SCHEMA_VERSION {
            return Err(format!(
                "{}: the store is now at schema version {version} and this cellc speaks {SCHEMA_VERSION} \
                 (another cellc migrated it); run the same cellc version on every machine",
                store.describe()
            ));
        }
        let Some(job) = store.claim(&id, lease_ms)? else {
            if opts.exit_when_idle && !store.any_running()? {
                return Ok(stats);
            }
            std::thread::sleep(Duration::from_millis(200));
            continue;
        };
        let spec = match spec_here(&job.spec, opts) {
            Ok(s) => s,
            Err(e) => {
                store.finish(job.id, &id, &failed(&e))?;
                continue;
            }
        };
        // The run's start, for readers (`cellc dashboard`); progress is best-effort, never fatal.
        let _ = store.report_progress(job.id, &id, "[]");
        // Renew the lease every third of its length; a lost lease cancels the run.
        let lost = Cell::new(false);
        let renewed = Cell::new(Instant::now());
        let beaten = Cell::new(Instant::now());
        let renewer = RefCell::new(&mut *store);
        let cancel = || {
            if renewed.get().elapsed() > opts.lease / 3 {
                renewed.set(Instant::now());
                if !renewer.borrow_mut().renew(job.id, &id, lease_ms).unwrap_or(false) {
                    lost.set(true);
                }
            }
            if beaten.get().elapsed() > beat_every {
                beaten.set(Instant::now());
                let _ = beat(*renewer.borrow_mut(), &stats);
            }
            lost.get() || stop() || orphaned()
        };
        let mut reporter = Reporter { job: job.id, last: Instant::now() };
        let mut progress = |points: &[crate::train::EvalRecord]| reporter.report(*renewer.borrow_mut(), &id, points);
        let t = Instant::now();
        let outcome = spec::run(&spec, &cancel, &mut progress);
        let result = match outcome {
            Ok(Some(r)) => r,
            Ok(None) => continue, // cancelled: the lease lapses or is taken over; the loop head decides
            Err(e) => JobResult { outcome: RunEnd::Failed(e), ..spec::failed_result() },
        };
        stats.busy_seconds += t.elapsed().as_secs_f64();
        let json = serde_json::to_string(&result).map_err(|e| e.to_string())?;
        if store.finish(job.id, &id, &json)? {
            stats.jobs += 1;
            observe(job.id, &spec, &result);
        }
        last_beat = None; // report the finished job at once
    }
}

/// Tells the store a run's validations so far: at most once a second, one small row that no
/// worker waits on; best-effort (a failed report never stops the run).
struct Reporter {
    job: i64,
    last: Instant,
}

impl Reporter {
    fn report(&mut self, store: &mut dyn ExperimentStore, worker: &str, points: &[crate::train::EvalRecord]) {
        if self.last.elapsed() >= PROGRESS_EVERY {
            self.last = Instant::now();
            if let Ok(json) = serde_json::to_string(points) {
                let _ = store.report_progress(self.job, worker, &json);
            }
        }
    }
}

/// A job's spec, its data found on this machine.
fn spec_here(text: &str, opts: &WorkerOptions) -> Result<JobSpec, String> {
    let mut spec: JobSpec = serde_json::from_str(text).map_err(|e| format!("bad job spec: {e}"))?;
    if let Some(dir) = &opts.data {
        spec.use_data_dir(dir)?;
    }
    Ok(spec)
}

fn failed(reason: &str) -> String {
    serde_json::to_string(&JobResult { outcome: RunEnd::Failed(reason.to_string()), ..spec::failed_result() })
        .unwrap_or_default()
}
