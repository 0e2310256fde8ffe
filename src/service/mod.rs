//! The service layer: every use case of certresponder, one function each, with typed
//! arguments, a typed result and a [`ServiceError`]. The CLI and the daemon's control socket
//! are thin edges over it: the CLI parses, calls and renders; the socket parses, calls and
//! answers. Nothing here prints or knows which edge called it.
//!
//! A use case runs against a [`Service`] (the store, the configuration and the governor in
//! force) inside a [`Ctx`]: who asked, the [`Host`] it runs in (in a command's own process,
//! or in the daemon, which runs cases on its runner and delivers notifications on its
//! courier), and where progress goes. Each use case is also an [`Op`]: a name, its
//! arguments and its result as serde types, so that the CLI can have the daemon run it
//! over the control socket (`POST /v1/ops/{name}`) and render the answer exactly as it
//! renders a local run. [`dispatch`] is the one table of them.

pub mod audit;
pub mod blocklist;
pub mod cases;
pub mod ct;
pub mod distrust;
mod error;
pub mod exposure;
pub mod govern;
pub mod history;
pub mod inventory;
pub mod ops;
pub mod policy;
pub mod respond;
pub mod scan;
pub mod signals;

use std::future::Future;
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};

pub use error::ServiceError;
pub use ops::{Op, dispatch, op_names, required_role};

use crate::config::Config;
use crate::govern::{Governor, Identity};
use crate::records::case::Case;
use crate::respond::Engine;
use crate::store::Store;

/// What a use case works on: the store, the configuration and the governor (policy and
/// engine) in force.
pub struct Service {
    store: Arc<dyn Store + Send + Sync>,
    cfg: Arc<Config>,
    gov: OnceLock<Arc<Governor>>,
    missing: Option<std::path::PathBuf>,
}

impl Service {
    /// A service over an open `store` whose governor is built from `cfg` when a use case
    /// first needs it (so that reading the history builds no issuer and creates no CA).
    pub fn new(store: Arc<dyn Store + Send + Sync>, cfg: Arc<Config>) -> Self {
        Self {
            store,
            cfg,
            gov: OnceLock::new(),
            missing: None,
        }
    }

    /// A service for reading only, where there is no database yet: an empty store stands
    /// in for the one at `path`, so that reading creates nothing.
    pub fn without_database(path: std::path::PathBuf, cfg: Arc<Config>) -> Self {
        Self {
            store: Arc::new(crate::store::MemoryStore::new()),
            cfg,
            gov: OnceLock::new(),
            missing: Some(path),
        }
    }

    /// Where the database would be, when an empty store stands in for it.
    pub fn missing_database(&self) -> Option<&std::path::Path> {
        self.missing.as_deref()
    }

    /// A service over the daemon's store with the governor it has in force.
    pub fn with_governor(
        store: Arc<dyn Store + Send + Sync>,
        cfg: Arc<Config>,
        gov: Arc<Governor>,
    ) -> Self {
        let slot = OnceLock::new();
        let _ = slot.set(gov);
        Self {
            store,
            cfg,
            gov: slot,
            missing: None,
        }
    }

    /// The store.
    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The governor: the policy and the engine. Built on first use from the configuration
    /// (the policy file read, the issuer adapters built).
    pub fn governor(&self) -> Result<&Arc<Governor>, ServiceError> {
        if let Some(g) = self.gov.get() {
            return Ok(g);
        }
        let policy = self
            .cfg
            .load_policy()
            .map_err(|e| ServiceError::Input(e.to_string()))?;
        let engine = Engine::new(Arc::clone(&self.store), (*self.cfg).clone())?;
        let gov = Arc::new(Governor::new(Arc::new(engine), policy));
        Ok(self.gov.get_or_init(|| gov))
    }

    /// Brings the store in line with the inventory files (the latest entry counts) and
    /// warns about what is wrong with them: the entries of a broken file keep their last
    /// registered state, and a broken new entry is not acted on until it is fixed.
    pub fn sync_inventory(&self, ctx: &Ctx<'_>) -> Result<(), ServiceError> {
        const SHOWN: usize = 10;
        let report = self.cfg.sync_inventory(self.store(), chrono::Utc::now())?;
        for e in report.errors.iter().take(SHOWN) {
            ctx.warn(format!("inventory: {e}"));
        }
        if report.errors.len() > SHOWN {
            ctx.warn(format!(
                "inventory: {} more problems (`certresponder inventory validate` lists them all)",
                report.errors.len() - SHOWN
            ));
        }
        Ok(())
    }
}

/// Where a use case runs: in a command's own process, or in the daemon.
pub trait Host: Send + Sync {
    /// Runs cases that are open and running to their end (or to a step boundary where
    /// they stop because the daemon is stopping) and returns how each ended.
    fn run_cases(&self, svc: &Service, ids: &[u64]) -> Vec<Result<Case, String>>;

    /// Starts cases that are open and running, without waiting for them: the daemon's
    /// runner takes them, or a command runs them beside itself until it ends.
    fn start_cases(&self, svc: &Service, ids: &[u64]) -> Result<(), String>;

    /// Why case `id`, started here, could not run (its last attempt), if it could not.
    fn case_error(&self, id: u64) -> Option<String>;

    /// Gives queued notifications a short time to go out; returns how many stay queued.
    /// The daemon's courier delivers them on its own.
    fn deliver_notifications(&self, svc: &Service) -> usize;

    /// Held while a use case does what one of the daemon's jobs does (a scan, a CT poll),
    /// so that the two never overlap: the daemon's job turn. A command's own process holds
    /// the database alone and has nothing to wait for.
    fn exclusive(&self) -> Box<dyn Held + '_>;
}

/// Something held until dropped (a lock's guard).
pub trait Held {}

impl<T> Held for T {}

/// Runs a future to its end from synchronous code: on the runtime this thread belongs to
/// (the daemon's blocking pool), else on a runtime of its own (a command).
pub fn block_on<F: Future>(fut: F) -> Result<F::Output, ServiceError> {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => Ok(handle.block_on(fut)),
        Err(_) => Ok(tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ServiceError::Failed(format!("starting the runtime: {e}")))?
            .block_on(fut)),
    }
}

/// What a caller of the control socket may do. `admin` includes every other role; the
/// others are separate, so that a SIEM may report without reading, and an approver may
/// approve without operating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// List and show anything, export the audit log.
    Read,
    /// Post signals, report a compromise, hand in a scanner's findings.
    Report,
    /// Approve and deny cases.
    Approve,
    /// Reissue, respond, scan, change the inventory, roll back to a bundle that is not
    /// revoked, CT, exposure scans, blocklists, follow a distrust.
    Operate,
    /// Reset the breaker, distrust a CA and forget a distrust, force a rollback to a revoked
    /// bundle, suppress signals.
    Admin,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 5] = [
        Role::Read,
        Role::Report,
        Role::Approve,
        Role::Operate,
        Role::Admin,
    ];

    /// Its name in the configuration and in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Report => "report",
            Self::Approve => "approve",
            Self::Operate => "operate",
            Self::Admin => "admin",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The roles a caller holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Roles(pub std::collections::BTreeSet<Role>);

impl Roles {
    /// Every role: a command in its own process (its user may open the store anyway), root
    /// and the daemon's own user.
    pub fn all() -> Self {
        Self(Role::ALL.into_iter().collect())
    }

    /// Whether `role` is held (`admin` holds every role).
    pub fn has(&self, role: Role) -> bool {
        self.0.contains(&role) || self.0.contains(&Role::Admin)
    }
}

/// Progress of a long use case, for a person watching it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProgressEvent {
    /// A line of news ("case 4 (web): deploying").
    Note {
        /// The text.
        text: String,
    },
    /// A warning the command shows on stderr as it happens.
    Warning {
        /// The text.
        text: String,
    },
}

/// Where a use case's progress goes: the terminal, or the socket back to the CLI.
pub trait Progress: Send + Sync {
    /// One event.
    fn event(&self, event: ProgressEvent);
}

/// Progress nobody watches.
pub struct NoProgress;

impl Progress for NoProgress {
    fn event(&self, _: ProgressEvent) {}
}

/// Who asks, where it runs, where its progress goes.
pub struct Ctx<'a> {
    /// The person asking: this process's user, or the control socket's peer.
    pub who: Identity,
    /// The roles the caller holds (every role in a command's own process).
    pub roles: Roles,
    /// Where it runs.
    pub host: &'a dyn Host,
    /// Where progress goes.
    pub progress: &'a dyn Progress,
}

/// What a command says about the store's unreadable records, after whatever it did.
pub fn unreadable_warnings(svc: &Service) -> Vec<String> {
    svc.store()
        .unreadable()
        .into_iter()
        .map(|r| format!("a stored record cannot be read and was skipped: {r}"))
        .collect()
}

impl Ctx<'_> {
    /// A line of news, shown as it happens.
    pub fn note(&self, text: impl Into<String>) {
        self.progress
            .event(ProgressEvent::Note { text: text.into() });
    }

    /// A warning, shown as it happens.
    pub fn warn(&self, text: impl Into<String>) {
        self.progress
            .event(ProgressEvent::Warning { text: text.into() });
    }
}
