//! `GET /v1/status`: what the daemon is doing.

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ApiError;
use crate::daemon::{JobStatus, Loaded, Shared};
use crate::govern::breaker::Opened;
use crate::records::case::CaseState;

/// What the daemon is doing (`GET /v1/status`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    /// When the daemon started.
    pub started_at: DateTime<Utc>,
    /// Its process id.
    pub pid: u32,
    /// Its release.
    pub version: String,
    /// Whether it is stopping (it takes no new work).
    pub stopping: bool,
    /// The configuration in force.
    pub config: ConfigStatus,
    /// Scheduled jobs by name.
    pub jobs: BTreeMap<String, JobStatus>,
    /// Cases by state (`running`, `awaiting_approval`, `done`, ...).
    pub cases: BTreeMap<String, usize>,
    /// The cases that wait for approval.
    pub waiting: Vec<u64>,
    /// Open signals.
    pub signals_open: usize,
    /// The blast-radius breaker.
    pub breaker: BreakerSummary,
    /// Stored records that cannot be read and are skipped, each with its tree, key and
    /// what is wrong.
    #[serde(default)]
    pub unreadable_records: Vec<String>,
}

/// The configuration in force.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConfigStatus {
    /// The file it was read from (`None`: built-in defaults).
    pub source: Option<PathBuf>,
    /// When it was loaded (at start or on the last reload).
    pub loaded_at: DateTime<Utc>,
}

/// The breaker, as `breaker status` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BreakerSummary {
    /// Open for every owner: since when and why.
    pub open: Option<Opened>,
    /// Owners it is open for (their own limit was reached).
    pub open_owners: Vec<String>,
    /// Automatic revocations in the window.
    pub in_window: usize,
    /// The limit for all owners.
    pub max_revocations: u32,
    /// The limit per owner.
    pub max_revocations_per_owner: u32,
    /// The window, in seconds.
    pub window_secs: i64,
    /// Cases it holds for approval.
    pub held: Vec<u64>,
}

/// The status of the daemon behind `shared`.
pub(super) fn status(shared: &Shared, loaded: &Loaded) -> Result<Value, ApiError> {
    let store = shared.store.as_ref();
    let now = Utc::now();
    let mut cases: BTreeMap<String, usize> = BTreeMap::new();
    let mut waiting = Vec::new();
    for c in store.list_cases()? {
        *cases.entry(c.state.to_string()).or_default() += 1;
        if c.state == CaseState::AwaitingApproval {
            waiting.push(c.id);
        }
    }
    let signals_open = store
        .list_signals()?
        .iter()
        .filter(|s| s.is_open(now))
        .count();
    let b = loaded.gov.breaker_status(now)?;
    let jobs = match shared.jobs.lock() {
        Ok(j) => j.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        Err(poisoned) => poisoned
            .into_inner()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    };
    let st = Status {
        started_at: shared.started_at,
        pid: std::process::id(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        stopping: shared.stopping(),
        config: ConfigStatus {
            source: loaded.cfg.source.clone(),
            loaded_at: loaded.loaded_at,
        },
        jobs,
        cases,
        waiting,
        signals_open,
        breaker: BreakerSummary {
            open: b.state.open.clone(),
            open_owners: b.state.open_owners.keys().cloned().collect(),
            in_window: b.in_window,
            max_revocations: b.max_revocations,
            max_revocations_per_owner: b.max_revocations_per_owner,
            window_secs: b.window_secs,
            held: b.held,
        },
        unreadable_records: store.unreadable(),
    };
    serde_json::to_value(st).map_err(ApiError::internal)
}
