//! `certresponder run`: the daemon. It owns the store, resumes unfinished sequences, runs
//! the jobs on their schedules, acts on signals as the policy says, and answers the control
//! socket and the metrics endpoint. It speaks the systemd notify protocol.
//!
//! [`Shared`] is what the parts have in common: the store, the loaded configuration and
//! governor (replaced whole on reload), the state of every job, and a way to hand cases to
//! the runner.

pub mod control;
pub mod metrics;
pub mod notify;
pub mod schedule;

pub(crate) mod run;

pub use run::{DaemonError, run};

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::config::Config;
use crate::govern::Governor;
use crate::store::Store;

/// The configuration, policy and engine in force; a reload replaces it whole.
pub struct Loaded {
    /// The configuration.
    pub cfg: Config,
    /// The governor (policy and engine) built from it.
    pub gov: Arc<Governor>,
    /// When it was loaded.
    pub loaded_at: DateTime<Utc>,
}

/// What is known about one scheduled job.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct JobStatus {
    /// The cron expression.
    pub schedule: String,
    /// When it runs next.
    pub next_run: Option<DateTime<Utc>>,
    /// When it last started.
    pub last_started: Option<DateTime<Utc>>,
    /// When it last ended.
    pub last_finished: Option<DateTime<Utc>>,
    /// How it last ended: a summary, or the error.
    pub last_result: Option<String>,
    /// Whether the last run failed.
    pub last_failed: bool,
    /// Runs so far.
    pub runs: u64,
}

/// The daemon's state, shared by the scheduler, the case runner, the control socket and the
/// metrics endpoint.
pub struct Shared {
    /// The store the daemon owns.
    pub store: Arc<dyn Store + Send + Sync>,
    loaded: RwLock<Arc<Loaded>>,
    /// When the daemon started.
    pub started_at: DateTime<Utc>,
    stopping: AtomicBool,
    /// Every scheduled job by name.
    pub jobs: Mutex<BTreeMap<String, JobStatus>>,
    cases: mpsc::UnboundedSender<Vec<u64>>,
    /// The distrusts begun through the control socket, newest last (the last
    /// [`DISTRUST_RUNS_KEPT`]), to report on.
    distrusts: Mutex<Vec<DistrustRun>>,
    /// Held while a job runs: jobs never overlap.
    job_lock: tokio::sync::Mutex<()>,
    /// Why a case handed to the runner could not run (its last attempt), by case.
    case_errors: Mutex<std::collections::HashMap<u64, String>>,
    /// Counts the cases the runner has seen end, so that a request can wait for its own.
    case_ended: tokio::sync::watch::Sender<u64>,
    /// The unreadable records already written to the audit log.
    unreadable_audited: Mutex<std::collections::HashSet<String>>,
    /// When each identity (by uid) posted its signals in the last minute.
    pub(crate) signal_posts:
        Mutex<std::collections::HashMap<u32, std::collections::VecDeque<std::time::Instant>>>,
}

/// How many distrust runs the daemon remembers.
pub const DISTRUST_RUNS_KEPT: usize = 32;

/// A distrust begun through the control socket.
#[derive(Debug, Clone)]
pub struct DistrustRun {
    /// Its number.
    pub id: u64,
    /// What it affected and opened.
    pub(crate) begun: crate::service::distrust::Begun,
    /// When it began.
    pub started: std::time::Instant,
}

impl Shared {
    /// Shared state over `store` with `loaded` in force; returns the receiving end of the
    /// case queue for the runner.
    pub fn new(
        store: Arc<dyn Store + Send + Sync>,
        loaded: Loaded,
    ) -> (Arc<Self>, mpsc::UnboundedReceiver<Vec<u64>>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Arc::new(Self {
                store,
                loaded: RwLock::new(Arc::new(loaded)),
                started_at: Utc::now(),
                stopping: AtomicBool::new(false),
                jobs: Mutex::new(BTreeMap::new()),
                cases: tx,
                distrusts: Mutex::new(Vec::new()),
                job_lock: tokio::sync::Mutex::new(()),
                case_errors: Mutex::new(std::collections::HashMap::new()),
                case_ended: tokio::sync::watch::channel(0).0,
                unreadable_audited: Mutex::new(std::collections::HashSet::new()),
                signal_posts: Mutex::new(std::collections::HashMap::new()),
            }),
            rx,
        )
    }

    /// The configuration and governor in force.
    pub fn loaded(&self) -> Arc<Loaded> {
        match self.loaded.read() {
            Ok(l) => Arc::clone(&l),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Puts a newly loaded configuration in force.
    pub fn replace(&self, loaded: Loaded) {
        let new = Arc::new(loaded);
        match self.loaded.write() {
            Ok(mut l) => *l = new,
            Err(poisoned) => *poisoned.into_inner() = new,
        }
    }

    /// Remembers a distrust begun through the control socket; returns its number.
    pub(crate) fn add_distrust(&self, begun: crate::service::distrust::Begun) -> u64 {
        let mut runs = self.distrusts.lock().unwrap_or_else(|p| p.into_inner());
        // Milliseconds since the epoch (one more than the last when that is not later), so
        // that a number is not given again after a restart.
        let now = u64::try_from(Utc::now().timestamp_millis()).unwrap_or(0);
        let id = runs.last().map_or(now, |r| now.max(r.id + 1));
        runs.push(DistrustRun {
            id,
            begun,
            started: std::time::Instant::now(),
        });
        let excess = runs.len().saturating_sub(DISTRUST_RUNS_KEPT);
        runs.drain(..excess);
        id
    }

    /// The distrust run `id`, if remembered.
    pub fn distrust_run(&self, id: u64) -> Option<DistrustRun> {
        let runs = self.distrusts.lock().unwrap_or_else(|p| p.into_inner());
        runs.iter().find(|r| r.id == id).cloned()
    }

    /// Records why case `id` could not run (`None`: it ran).
    pub fn note_case_error(&self, id: u64, error: Option<String>) {
        let mut errors = self.case_errors.lock().unwrap_or_else(|p| p.into_inner());
        match error {
            Some(e) => {
                errors.insert(id, e);
            }
            None => {
                errors.remove(&id);
            }
        }
    }

    /// Writes each stored record that listings found unreadable (and skip) to the audit log,
    /// once per record while the daemon runs: a damaged record is reported, never a reason
    /// to stop.
    pub fn audit_unreadable(&self) {
        let found = self.store.unreadable();
        if found.is_empty() {
            return;
        }
        let mut audited = self
            .unreadable_audited
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for record in found {
            if audited.contains(&record) {
                continue;
            }
            let entry = crate::audit::AuditEntry {
                kind: "record_unreadable",
                actor: "certresponder (daemon)",
                cert: None,
                case: None,
                data: serde_json::json!({ "record": record }),
            };
            match crate::audit::append(self.store.as_ref(), entry) {
                Ok(_) => {
                    audited.insert(record);
                }
                Err(e) => tracing::warn!(error = %e, "the audit log cannot take a record"),
            }
        }
    }

    /// Told each time a case the runner ran has ended (however it ended).
    pub fn case_endings(&self) -> tokio::sync::watch::Receiver<u64> {
        self.case_ended.subscribe()
    }

    /// Says that a case the runner ran has ended.
    pub fn case_ended(&self) {
        self.case_ended.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Why case `id` could not run, if its last attempt failed so.
    pub fn case_error(&self, id: u64) -> Option<String> {
        let errors = self.case_errors.lock().unwrap_or_else(|p| p.into_inner());
        errors.get(&id).cloned()
    }

    /// Has the runner look at its queue again (after a reload that may allow more cases at
    /// once).
    pub fn nudge_runner(&self) {
        let _ = self.cases.send(Vec::new());
    }

    /// Waits for the running job, if any, to end; jobs run while this is held.
    pub async fn job_turn(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.job_lock.lock().await
    }

    /// Waits for the running job, if any, to end, from a thread outside the runtime's
    /// tasks (the blocking pool); jobs wait while this is held.
    pub fn job_lock_blocking(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.job_lock.blocking_lock()
    }

    /// Whether the daemon is stopping: no new work is taken.
    pub fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Stops taking work.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    /// Hands cases (already open and running) to the runner. Refused while stopping; the
    /// cases stay journaled and resume on the next start.
    pub fn run_cases(&self, ids: Vec<u64>) -> Result<(), String> {
        if ids.is_empty() {
            return Ok(());
        }
        if self.stopping() {
            return Err("the daemon is stopping; the cases resume when it starts again".into());
        }
        self.cases
            .send(ids)
            .map_err(|_| "the case runner has stopped".to_string())
    }

    /// Decides every open signal by the policy and starts what it says (the same as
    /// `certresponder respond`, without the resume). Returns what was done.
    pub fn act(&self) -> Result<crate::govern::Applied, crate::govern::GovernError> {
        let loaded = self.loaded();
        let (plans, _) = loaded.gov.plan(None)?;
        let applied = loaded
            .gov
            .apply(&plans, "policy", crate::govern::POLICY_ACTOR, false)?;
        if let Err(e) = self.run_cases(applied.run.clone()) {
            tracing::warn!(error = %e, "cases not started");
        }
        Ok(applied)
    }

    /// Records the start of a job run.
    pub fn job_started(&self, name: &str) {
        if let Ok(mut jobs) = self.jobs.lock() {
            let j = jobs.entry(name.to_string()).or_default();
            j.last_started = Some(Utc::now());
        }
    }

    /// Records how a job run ended and when it runs next.
    pub fn job_finished(
        &self,
        name: &str,
        result: Result<String, String>,
        next: Option<DateTime<Utc>>,
    ) {
        if let Ok(mut jobs) = self.jobs.lock() {
            let j = jobs.entry(name.to_string()).or_default();
            j.last_finished = Some(Utc::now());
            j.runs += 1;
            j.last_failed = result.is_err();
            j.last_result = Some(match result {
                Ok(s) | Err(s) => s,
            });
            j.next_run = next;
        }
    }
}
