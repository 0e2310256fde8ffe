//! The sequence engine: opens cases and runs their steps, journaling each one in the store
//! before and after it runs, so that a crash at any point resumes where it stopped.
//!
//! The journal is written at every transition: one durable write records that a step
//! finished (with its outcome and what it produced: the new key, the issued chain) and that
//! the next one started. A step found `started` but not finished when a case is resumed ran
//! when the process died, and runs again; every step is idempotent (see `respond::steps`).
//! The one effect that cannot be undone by running again is issuance: a crash after the CA
//! answered and before the journal recorded the chain issues one more certificate on resume,
//! and no more (invariant 3).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use certresponder_inventory::{Bundle, ManagedCert};
use certresponder_issuers::{Issuer, IssuerError, RevocationReason};
use chrono::Utc;

use serde_json::json;

use super::fault;
use super::reload::Reloader;
use crate::audit::{self, AuditEntry};
use crate::config::Config;
use crate::notify::{self, Notification, NotifyEvent};
use crate::policy::Decision;
use crate::records::case::{
    ApprovalState, Case, CaseState, SequenceKind, Step, StepOutcome, StepRecord, Trigger,
};
use crate::signals::weak::KeyPolicy;
use crate::store::{CertStatus, Event, Store, StoreError};

/// Why the engine could not open or run a case (a failing step fails the case instead).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RespondError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No such certificate.
    #[error("no certificate named `{0}` is registered (see `certresponder inventory list`)")]
    UnknownCert(String),
    /// The certificate was taken out of the inventory.
    #[error("`{0}` was removed from the inventory; put it back to act on it")]
    Removed(String),
    /// No such case.
    #[error("there is no case {0} (see `certresponder cases list`)")]
    UnknownCase(u64),
    /// A case is already open (running or waiting for approval) for the certificate.
    #[error(
        "`{cert}` already has case {case} open; see `certresponder cases show {case}` (a running case resumes with `certresponder respond`, a waiting one with `certresponder approve {case}`)"
    )]
    Busy {
        /// The certificate.
        cert: String,
        /// The running case.
        case: u64,
    },
    /// The entry cannot be acted on as asked.
    #[error("`{cert}`: {reason}")]
    NotActionable {
        /// The certificate.
        cert: String,
        /// Why, and what to change in the inventory.
        reason: String,
    },
    /// An issuer adapter could not be built.
    #[error("issuer: {0}")]
    Issuer(#[from] IssuerError),
}

/// What a new case is to do, and on whose authority.
#[derive(Debug, Clone)]
pub struct Opening {
    /// The case number, when the caller took one already (`Store::next_case_id`) to record
    /// it elsewhere first; `None`: the next one.
    pub id: Option<u64>,
    /// The certificate.
    pub cert: String,
    /// The sequence.
    pub kind: SequenceKind,
    /// Revoke before deploying.
    pub contain_first: bool,
    /// The revocation reason.
    pub reason: Option<RevocationReason>,
    /// What started it.
    pub trigger: Trigger,
    /// The policy decision, with its rule.
    pub decision: Option<Decision>,
    /// When the response must be complete.
    pub deadline: Option<chrono::DateTime<Utc>>,
    /// `Some`: the case waits for these approvals before it runs.
    pub approval: Option<ApprovalState>,
    /// The issuer the new certificate is ordered from instead of the entry's own (a
    /// distrusted CA's replacement).
    pub issuer: Option<String>,
}

/// What a step did.
pub(crate) enum StepResult {
    /// Done; the detail says what happened.
    Ok(String),
    /// Nothing to do.
    Skipped(String),
    /// Failed. `rollback`: the new bundle may be deployed, so the snapshot must be restored.
    Fail {
        /// What went wrong.
        detail: String,
        /// Whether to restore the snapshot bundle.
        rollback: bool,
    },
    /// Revoked, but the issuer still reports the old certificate good: the case waits in
    /// `unconfirmed` for a CA check to see the revocation.
    Unconfirmed(String),
    /// The old certificate could not be revoked. `retryable`: the same request may succeed
    /// later (the CA unreachable, rate limited, failing on its side).
    NotRevoked {
        /// What went wrong.
        detail: String,
        /// Whether trying again later may help.
        retryable: bool,
    },
}

/// What a case does after its revocation failed.
enum AfterNotRevoked {
    /// Contain-first before deploying: the replacement goes on; the revocation is tried
    /// again once it is verified.
    GoOn,
    /// Tried again at this time (the case stays running, resumable at Revoke).
    RetryAt(chrono::DateTime<Utc>),
    /// Replaced, the old certificate still valid: `revocation_needed`, escalated.
    Needed,
    /// Nothing was replaced: the case fails with the old certificate still deployed.
    Fail,
}

/// How long a revocation that keeps failing for a reason that may pass is tried again when
/// the case has no deadline of its own.
const REVOKE_RETRY_WITHOUT_DEADLINE: chrono::TimeDelta = chrono::TimeDelta::hours(24);

/// The longest wait between two tries of a failing revocation.
const REVOKE_RETRY_MAX_WAIT: Duration = Duration::from_secs(30 * 60);

/// Set when the process is stopping: running cases stop at their next step boundary.
static STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Asks every running case to stop before its next step (the daemon's SIGTERM). Their
/// journals say where they stand; they resume on the next start.
pub fn request_stop() {
    STOP.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// Whether [`request_stop`] was called.
pub fn stop_requested() -> bool {
    STOP.load(std::sync::atomic::Ordering::SeqCst)
}

/// One lock per (store, certificate): a case runs its steps, and a rollback by hand
/// restores a bundle, only while holding its certificate's lock, so the two never write the
/// same locations at once. Process-wide, keyed by the store, because the daemon builds a new
/// engine on every reload while cases of the old one still run on the same store.
static CERT_LOCKS: std::sync::LazyLock<std::sync::Mutex<HashMap<CertKey, CertLock>>> =
    std::sync::LazyLock::new(Default::default);

/// A certificate in a store: the store's address and the certificate's name.
type CertKey = (usize, String);

/// The lock of one certificate.
type CertLock = Arc<tokio::sync::Mutex<()>>;

/// Runs sequences against a store, with the configured issuers.
pub struct Engine {
    pub(crate) store: Arc<dyn Store + Send + Sync>,
    pub(crate) cfg: Config,
    pub(crate) issuers: BTreeMap<String, Arc<dyn Issuer>>,
    pub(crate) reloader: Reloader,
    pub(crate) key_policy: KeyPolicy,
    /// Per issuer id: how many calls may be in flight at once (`issuer_concurrency`).
    issuer_slots: HashMap<String, Arc<tokio::sync::Semaphore>>,
    /// The replacement rate limit, per issuer id.
    replacement_gate: crate::respond::settings::RateGate,
}

impl Engine {
    /// An engine on `store`, building the configured issuer adapters.
    pub fn new(store: Arc<dyn Store + Send + Sync>, cfg: Config) -> Result<Self, RespondError> {
        let issuers = crate::issuers::build_all(&cfg, store.as_ref())?;
        Ok(Self::with_issuers(store, cfg, issuers))
    }

    /// An engine with the given issuer adapters (by id).
    pub fn with_issuers(
        store: Arc<dyn Store + Send + Sync>,
        cfg: Config,
        issuers: BTreeMap<String, Arc<dyn Issuer>>,
    ) -> Self {
        let reloader = Reloader::shared(cfg.respond.reload_window, cfg.respond.reload_timeout);
        let key_policy = KeyPolicy::from_checks(&cfg.checks);
        let issuer_slots = issuers
            .keys()
            .map(|id| {
                let slots = tokio::sync::Semaphore::new(cfg.respond.issuer_concurrency);
                (id.clone(), Arc::new(slots))
            })
            .collect();
        let replacement_gate =
            crate::respond::settings::RateGate::new(cfg.respond.replacement_rate);
        Self {
            store,
            cfg,
            issuers,
            reloader,
            key_policy,
            issuer_slots,
            replacement_gate,
        }
    }

    /// Waits for, and holds, `cert`'s lock (see [`CERT_LOCKS`]).
    pub(crate) async fn hold_cert(&self, cert: &str) -> tokio::sync::OwnedMutexGuard<()> {
        self.cert_lock(cert).lock_owned().await
    }

    /// The lock of `cert` in this engine's store.
    fn cert_lock(&self, cert: &str) -> CertLock {
        let key = (
            Arc::as_ptr(&self.store).cast::<()>() as usize,
            cert.to_string(),
        );
        let mut locks = CERT_LOCKS.lock().unwrap_or_else(|p| p.into_inner());
        Arc::clone(locks.entry(key).or_default())
    }

    /// `cert`'s lock if nothing holds it now (see [`CERT_LOCKS`]).
    pub(crate) fn try_hold_cert(&self, cert: &str) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        self.cert_lock(cert).try_lock_owned().ok()
    }

    /// The store.
    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The registered, active entry for `cert`.
    pub fn entry(&self, cert: &str) -> Result<ManagedCert, RespondError> {
        let rec = self
            .store
            .get_cert(cert)?
            .ok_or_else(|| RespondError::UnknownCert(cert.to_string()))?;
        if rec.status != CertStatus::Active {
            return Err(RespondError::Removed(cert.to_string()));
        }
        Ok(rec.entry)
    }

    /// The running case of a certificate, if any.
    pub fn running_case(&self, cert: &str) -> Result<Option<Case>, RespondError> {
        Ok(self
            .store
            .list_cases()?
            .into_iter()
            .find(|c| c.cert == cert && c.state == CaseState::Running))
    }

    /// Numbers of the cases that have not finished, oldest first.
    pub fn unfinished(&self) -> Result<Vec<u64>, RespondError> {
        Ok(self
            .store
            .list_cases()?
            .into_iter()
            .filter(|c| c.state == CaseState::Running)
            .map(|c| c.id)
            .collect())
    }

    /// Checks that the entry can carry out `kind`: it names a configured issuer, and a
    /// sequence that issues has somewhere to put the new key.
    pub fn check_actionable(
        &self,
        entry: &ManagedCert,
        kind: SequenceKind,
    ) -> Result<(), RespondError> {
        self.check_actionable_via(entry, kind, None)
    }

    /// [`Engine::check_actionable`] for a case that orders its new certificate from `via`
    /// (a distrust's replacement issuer) instead of the entry's `issuer`; revocation still
    /// goes to the entry's own issuer, the CA of the old certificate.
    pub fn check_actionable_via(
        &self,
        entry: &ManagedCert,
        kind: SequenceKind,
        via: Option<&str>,
    ) -> Result<(), RespondError> {
        let cert = entry.name.to_string();
        let no = |reason: String| RespondError::NotActionable {
            cert: cert.clone(),
            reason,
        };
        let mut needed: Vec<(&str, &str)> = Vec::new();
        if kind.revokes() || (kind.issues() && via.is_none()) {
            let Some(issuer) = &entry.issuer else {
                return Err(no(format!(
                    "its inventory entry ({}) names no `issuer`, so it cannot be {}",
                    entry.source.display(),
                    if kind.issues() { "reissued" } else { "revoked" }
                )));
            };
            needed.push(("issuer", issuer));
        }
        if kind.issues()
            && let Some(v) = via
        {
            needed.push(("replacement issuer", v));
        }
        for (what, issuer) in needed {
            // Configured issuers (a planning engine builds none) and those given to the engine.
            let configured = self.cfg.issuers.iter().any(|i| i.id == issuer);
            if !configured && !self.issuers.contains_key(issuer) {
                let mut known = self.cfg.issuer_ids();
                known.extend(
                    self.issuers
                        .keys()
                        .filter(|k| !known.contains(k))
                        .cloned()
                        .collect::<Vec<_>>(),
                );
                return Err(no(format!(
                    "its {what} `{issuer}` is not configured (known: {})",
                    known.join(", ")
                )));
            }
        }
        if kind.issues() && entry.paths.key.is_none() {
            return Err(no(format!(
                "its inventory entry ({}) names no `key` file, so a new key has nowhere to go",
                entry.source.display()
            )));
        }
        Ok(())
    }

    /// The open case (running or waiting for approval) of every certificate that has one.
    pub fn running_by_cert(&self) -> Result<HashMap<String, u64>, RespondError> {
        Ok(self
            .store
            .list_cases()?
            .into_iter()
            .filter(|c| matches!(c.state, CaseState::Running | CaseState::AwaitingApproval))
            .map(|c| (c.cert, c.id))
            .collect())
    }

    /// Opens a case and stores it, ready to run. Refuses when the certificate already has a
    /// running case or cannot carry out `kind`.
    pub fn open_case(
        &self,
        cert: &str,
        kind: SequenceKind,
        contain_first: bool,
        reason: Option<RevocationReason>,
        trigger: Trigger,
    ) -> Result<Case, RespondError> {
        let mut running = self.running_by_cert()?;
        self.open_case_among(cert, kind, contain_first, reason, trigger, &mut running)
    }

    /// [`Engine::open_case`] for many certificates at once: `running` is
    /// [`Engine::running_by_cert`], read once and kept up to date here.
    pub fn open_case_among(
        &self,
        cert: &str,
        kind: SequenceKind,
        contain_first: bool,
        reason: Option<RevocationReason>,
        trigger: Trigger,
        running: &mut HashMap<String, u64>,
    ) -> Result<Case, RespondError> {
        self.open(
            Opening {
                id: None,
                cert: cert.to_string(),
                kind,
                contain_first,
                reason,
                trigger,
                decision: None,
                deadline: None,
                approval: None,
                issuer: None,
            },
            running,
        )
    }

    /// Opens a case as `opening` says: running, or waiting for approval when it carries an
    /// approval state. `running` maps certificates to their open (running or waiting) case.
    pub fn open(
        &self,
        opening: Opening,
        running: &mut HashMap<String, u64>,
    ) -> Result<Case, RespondError> {
        let Opening {
            id,
            cert,
            kind,
            contain_first,
            reason,
            trigger,
            decision,
            deadline,
            approval,
            issuer,
        } = opening;
        let cert = cert.as_str();
        let entry = self.entry(cert)?;
        self.check_actionable_via(&entry, kind, issuer.as_deref())?;
        if let Some(case) = running.get(cert) {
            return Err(RespondError::Busy {
                cert: cert.to_string(),
                case: *case,
            });
        }
        let now = Utc::now();
        let mut case = Case::new(cert, kind, contain_first, reason, trigger, now);
        case.owner = entry.owner.clone();
        case.decision = decision;
        case.deadline = deadline;
        case.issuer = if kind.issues() { issuer } else { None };
        if let Some(a) = approval {
            case.state = CaseState::AwaitingApproval;
            case.approval = Some(a);
        }
        case.id = match id {
            Some(id) => id,
            None => self.store.next_case_id()?,
        };
        if let Some(d) = &case.decision {
            let entry = crate::policy::audit::decision_audit(
                cert,
                Some(case.id),
                d,
                crate::policy::audit::Decided {
                    reason: case.reason,
                    contain_first: case.contain_first,
                    deadline: d.deadline,
                    why: &d.why,
                },
                json!({"waits_for": case.approval.as_ref().map(|a| &a.why)}),
            );
            audit::append(self.store(), entry)?;
        }
        self.store.put_case(&case)?;
        running.insert(cert.to_string(), case.id);
        let waiting = case
            .approval
            .as_ref()
            .map(|a| format!(", waiting for approval: {}", a.why))
            .unwrap_or_default();
        self.event(
            cert,
            "case_opened",
            format!(
                "case {}: {}{}{} ({} by {}: {}){waiting}",
                case.id,
                kind,
                if case.contain_first {
                    ", contain first"
                } else {
                    ""
                },
                case.reason
                    .map(|r| format!(", reason {r}"))
                    .unwrap_or_default(),
                case.trigger.source,
                case.trigger.by,
                case.trigger.why
            ),
        )?;
        audit::append(
            self.store(),
            AuditEntry {
                kind: "case_opened",
                actor: &case.trigger.by,
                cert: Some(cert),
                case: Some(case.id),
                data: json!({
                    "sequence": kind,
                    "contain_first": case.contain_first,
                    "reason": case.reason.map(|r| r.name()),
                    "state": case.state,
                    "deadline": case.deadline,
                    "trigger": case.trigger,
                    "rule": case.decision.as_ref().map(|d| &d.rule),
                    "approval": case.approval,
                    "issuer": case.issuer,
                }),
            },
        )?;
        tracing::info!(case = case.id, cert, kind = %kind, state = %case.state, "case opened");
        Ok(case)
    }

    /// Runs several cases, at most `respond.concurrency` at once; each result in input order.
    pub async fn run_cases(self: &Arc<Self>, ids: &[u64]) -> Vec<Result<Case, RespondError>> {
        let sem = Arc::new(tokio::sync::Semaphore::new(self.cfg.respond.concurrency));
        let mut tasks = tokio::task::JoinSet::new();
        for (i, id) in ids.iter().copied().enumerate() {
            let engine = Arc::clone(self);
            let sem = Arc::clone(&sem);
            tasks.spawn(async move {
                let _permit = sem.acquire_owned().await;
                (i, engine.run_case(id).await)
            });
        }
        let mut out: Vec<Option<Result<Case, RespondError>>> = ids.iter().map(|_| None).collect();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((i, r)) => out[i] = Some(r),
                Err(e) => tracing::error!(error = %e, "a sequence task panicked"),
            }
        }
        out.into_iter()
            .zip(ids)
            .map(|(r, id)| r.unwrap_or(Err(RespondError::UnknownCase(*id))))
            .collect()
    }

    /// Runs a case from where its journal stands until it is done or failed.
    pub async fn run_case(&self, id: u64) -> Result<Case, RespondError> {
        let cert = self
            .store
            .get_case(id)?
            .ok_or(RespondError::UnknownCase(id))?
            .cert;
        let _held = self.hold_cert(&cert).await;
        // Read again under the lock: what held it (a rollback, another run of this case)
        // may have changed the case.
        let mut case = self
            .store
            .get_case(id)?
            .ok_or(RespondError::UnknownCase(id))?;
        if case.state == CaseState::Running
            && let Some(at) = case.retry_at
            && at > Utc::now()
        {
            // Waits for the time its failed revocation is tried again.
            return Ok(case);
        }
        let entry = match self.store.get_cert(&case.cert)? {
            Some(rec) => rec.entry,
            None => {
                self.fail(
                    &mut case,
                    "its certificate is no longer registered".into(),
                    None,
                )?;
                return Ok(case);
            }
        };
        // Whether this run wrote the `started` record of the next step itself; a `started`
        // record found otherwise was left by an interrupted run.
        let mut journaled_next = false;
        while case.state == CaseState::Running {
            if stop_requested() {
                // A checkpoint: `next` says which step runs on resume. The `started` record
                // written ahead for it is taken back, since the step never began.
                if journaled_next
                    && case.journal.last().is_some_and(|r| {
                        Some(r.step) == case.next && r.outcome == StepOutcome::Started
                    })
                {
                    case.journal.pop();
                    self.save(&mut case)?;
                }
                tracing::info!(case = case.id, cert = %case.cert, next = ?case.next, "stopping between steps; the case resumes on the next start");
                return Ok(case);
            }
            let Some(step) = case.next else {
                case.state = CaseState::Done;
                self.save(&mut case)?;
                break;
            };
            let pending = case
                .journal
                .last()
                .is_some_and(|r| r.step == step && r.outcome == StepOutcome::Started);
            let resumed = pending && !journaled_next;
            journaled_next = false;
            if resumed {
                tracing::info!(case = case.id, cert = %case.cert, step = %step, "resuming an interrupted step");
            } else if !pending {
                case.retry_at = None;
                case.journal.push(started(step));
                self.save(&mut case)?;
            }
            fault::point("before", step);
            tracing::info!(case = case.id, cert = %case.cert, step = %step, "step started");
            let result = self.run_step(&mut case, &entry, step).await;
            fault::point("after", step);
            let now = Utc::now();
            let after_not_revoked = match &result {
                StepResult::NotRevoked { retryable, .. } => {
                    Some(self.after_not_revoked(&case, *retryable, now))
                }
                _ => None,
            };
            let (outcome, mut detail) = match &result {
                StepResult::Ok(d) => (StepOutcome::Ok, d.clone()),
                StepResult::Skipped(d) => (StepOutcome::Skipped, d.clone()),
                StepResult::Unconfirmed(d) => (StepOutcome::Ok, d.clone()),
                StepResult::Fail { detail, .. } => (StepOutcome::Failed, detail.clone()),
                StepResult::NotRevoked { detail, .. } => {
                    let then = match &after_not_revoked {
                        Some(AfterNotRevoked::GoOn) => "; the replacement is deployed first and the revocation tried again once it is verified".to_string(),
                        Some(AfterNotRevoked::RetryAt(at)) => format!(
                            "; tried again at {}",
                            at.format("%Y-%m-%d %H:%M:%S UTC")
                        ),
                        _ => String::new(),
                    };
                    (StepOutcome::Failed, format!("{detail}{then}"))
                }
            };
            if resumed {
                detail = format!("{detail} (resumed after an interruption)");
            }
            tracing::info!(case = case.id, cert = %case.cert, step = %step, outcome = %outcome, detail = %detail, "step finished");
            if let Some(rec) = case.journal.last_mut() {
                rec.finished_at = Some(now);
                rec.outcome = outcome;
                rec.detail = detail;
            }
            self.audit_step(&case)?;
            if let StepResult::NotRevoked { detail, .. } = &result {
                case.revoke_failures = case.revoke_failures.saturating_add(1);
                match after_not_revoked {
                    Some(AfterNotRevoked::GoOn) => {
                        case.next = case.next_after(step);
                        if let Some(n) = case.next {
                            case.journal.push(started(n));
                            journaled_next = true;
                        }
                        self.save(&mut case)?;
                    }
                    Some(AfterNotRevoked::RetryAt(at)) => {
                        tracing::warn!(case = case.id, cert = %case.cert, retry_at = %at, error = %detail, "revocation failed; trying again later");
                        case.retry_at = Some(at);
                        case.next = Some(Step::Revoke);
                        self.save(&mut case)?;
                        return Ok(case);
                    }
                    Some(AfterNotRevoked::Needed) => {
                        self.revocation_needed(&mut case, detail.clone())?;
                    }
                    Some(AfterNotRevoked::Fail) | None => {
                        let what = self.left_deployed(&case, step);
                        self.fail(&mut case, detail.clone(), Some(what))?;
                    }
                }
                continue;
            }
            match result {
                StepResult::Fail { detail, rollback } => {
                    let can_restore =
                        rollback && step != Step::Rollback && !self.old_is_revoked(&case);
                    if can_restore {
                        case.error = Some(detail);
                        case.next = Some(Step::Rollback);
                        case.journal.push(started(Step::Rollback));
                        journaled_next = true;
                        self.save(&mut case)?;
                    } else {
                        let what = self.left_deployed(&case, step);
                        let detail = match case.error.take() {
                            Some(first) if step == Step::Rollback => {
                                format!("{first}; then the rollback failed: {detail}")
                            }
                            _ => detail,
                        };
                        self.fail(&mut case, detail, Some(what))?;
                    }
                }
                StepResult::NotRevoked { .. } => {}
                StepResult::Unconfirmed(_) => {
                    case.state = CaseState::Unconfirmed;
                    case.next = None;
                    case.new_key = None;
                    self.save(&mut case)?;
                    self.finished(&case)?;
                }
                StepResult::Ok(_) | StepResult::Skipped(_) => {
                    if step == Step::Rollback && case.kind != SequenceKind::Rollback {
                        case.rolled_back = true;
                        let first = case.error.take().unwrap_or_default();
                        self.fail(&mut case, first, None)?;
                    } else if step == Step::Close {
                        case.state = CaseState::Done;
                        case.next = None;
                        self.save(&mut case)?;
                        self.finished(&case)?;
                    } else {
                        case.next = case.next_after(step);
                        if let Some(n) = case.next {
                            case.journal.push(started(n));
                            journaled_next = true;
                        } else {
                            case.state = CaseState::Done;
                        }
                        self.save(&mut case)?;
                    }
                }
            }
        }
        self.retire_orphans(&mut case).await;
        Ok(case)
    }

    /// What a case does after its revocation failed at `now`.
    fn after_not_revoked(
        &self,
        case: &Case,
        retryable: bool,
        now: chrono::DateTime<Utc>,
    ) -> AfterNotRevoked {
        if case.contain_first && case.kind.issues() && !case.deployed_new() {
            return AfterNotRevoked::GoOn;
        }
        if retryable {
            let first_failure = case
                .journal
                .iter()
                .find(|r| r.step == Step::Revoke && r.outcome == StepOutcome::Failed)
                .map_or(now, |r| r.started_at);
            let limit = case
                .deadline
                .unwrap_or(first_failure + REVOKE_RETRY_WITHOUT_DEADLINE);
            if now < limit {
                let wait = self
                    .cfg
                    .respond
                    .retry_base
                    .saturating_mul(
                        2u32.saturating_pow(
                            self.cfg
                                .respond
                                .issue_attempts
                                .saturating_add(case.revoke_failures),
                        ),
                    )
                    .min(REVOKE_RETRY_MAX_WAIT);
                let wait = chrono::TimeDelta::from_std(wait).unwrap_or(chrono::TimeDelta::MAX);
                return AfterNotRevoked::RetryAt((now + wait).min(limit));
            }
        }
        if case.kind.issues() && case.deployed_new() {
            AfterNotRevoked::Needed
        } else {
            AfterNotRevoked::Fail
        }
    }

    /// Ends a case that replaced its certificate but could not revoke the old one:
    /// `revocation_needed`, its signals open, its owner told what to do.
    fn revocation_needed(&self, case: &mut Case, detail: String) -> Result<(), RespondError> {
        let old = case
            .old_bundle
            .as_deref()
            .and_then(|id| self.stored_bundle(&case.cert, id).ok());
        let (serial, issuer, expires) = match &old {
            Some(b) => (
                b.serial.clone(),
                super::steps::old_issuer_name(b),
                b.not_after.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            ),
            None => ("?".into(), "?".into(), "?".into()),
        };
        let message = format!(
            "{detail}; the new bundle {} is deployed, but the old certificate (serial {serial}, issued by {issuer}) is NOT revoked and stays valid until {expires}: revoke it at the CA that issued it, with `certresponder cases revoke-old {} --issuer ID` (ID: an issuer configured for that CA) or by that CA's own means; the case and its signals stay open until the certificate is seen revoked or has expired",
            case.new_bundle.as_deref().unwrap_or("?"),
            case.id
        );
        tracing::warn!(case = case.id, cert = %case.cert, error = %message, "replaced, but the old certificate is not revoked");
        case.state = CaseState::RevocationNeeded;
        case.next = None;
        case.retry_at = None;
        case.new_key = None;
        case.error = Some(message.clone());
        self.save(case)?;
        self.event(
            &case.cert,
            "revocation_needed",
            format!("case {}: {message}", case.id),
        )?;
        self.finished(case)?;
        Ok(())
    }

    /// Closes every `revocation_needed` case whose old certificate is now revoked (by
    /// `cases revoke-old`, or seen revoked by the CA checks) or has expired: its signals
    /// are resolved. Returns the cases closed.
    pub fn settle_revocations(&self, now: chrono::DateTime<Utc>) -> Result<Vec<u64>, RespondError> {
        let mut closed = Vec::new();
        for mut case in self.store.list_cases()? {
            if !matches!(
                case.state,
                CaseState::RevocationNeeded | CaseState::Unconfirmed
            ) {
                continue;
            }
            let Some(old) = case
                .old_bundle
                .as_deref()
                .and_then(|id| self.stored_bundle(&case.cert, id).ok())
            else {
                continue;
            };
            let unconfirmed = case.state == CaseState::Unconfirmed;
            let why = if let Some(at) = old.revoked_at.filter(|_| !unconfirmed) {
                format!(
                    "the old certificate (serial {}) was seen revoked at {}",
                    old.serial,
                    at.format("%Y-%m-%d %H:%M:%S UTC")
                )
            } else if old.not_after <= now {
                format!(
                    "the old certificate (serial {}) expired at {}{}",
                    old.serial,
                    old.not_after.format("%Y-%m-%d %H:%M:%S UTC"),
                    if unconfirmed {
                        "; its revocation was never confirmed by the CA"
                    } else {
                        ""
                    }
                )
            } else {
                continue;
            };
            // A case being retried or revoked by hand right now settles itself.
            let Some(_held) = self.try_hold_cert(&case.cert) else {
                continue;
            };
            // What it is now, under the lock: another pass may have closed it meanwhile.
            match self.store.get_case(case.id)? {
                Some(now_case) if now_case.state == case.state => case = now_case,
                _ => continue,
            }
            self.close_done(&mut case, Some(&why), now)?;
            tracing::info!(case = case.id, cert = %case.cert, "{why}; case closed");
            closed.push(case.id);
        }
        Ok(closed)
    }

    /// Closes a case that has no step left to run (its old certificate seen revoked or
    /// expired): runs Close, which resolves its signals, journals it (`why` first, when
    /// given) and marks the case done.
    fn close_done(
        &self,
        case: &mut Case,
        why: Option<&str>,
        now: chrono::DateTime<Utc>,
    ) -> Result<(), RespondError> {
        let mut rec = started(Step::Close);
        let closing = match self.close(case) {
            StepResult::Ok(d) | StepResult::Skipped(d) => d,
            StepResult::Unconfirmed(detail)
            | StepResult::Fail { detail, .. }
            | StepResult::NotRevoked { detail, .. } => detail,
        };
        rec.finished_at = Some(now);
        rec.outcome = StepOutcome::Ok;
        rec.detail = match why {
            Some(why) => format!("{why}; {closing}"),
            None => closing,
        };
        case.journal.push(rec);
        self.audit_step(case)?;
        case.state = CaseState::Done;
        case.error = None;
        self.save(case)?;
        self.finished(case)?;
        Ok(())
    }

    /// Asks the issuer again about the old certificate of every `unconfirmed` case (a CA
    /// check does this): one the issuer now reports revoked is confirmed and closes done.
    /// Returns the cases closed; what could not be asked is logged and asked next time.
    pub async fn reconfirm(&self) -> Result<Vec<u64>, RespondError> {
        let mut closed = Vec::new();
        for mut case in self.store.list_cases()? {
            if case.state != CaseState::Unconfirmed {
                continue;
            }
            let Some(_held) = self.try_hold_cert(&case.cert) else {
                continue;
            };
            match self.store.get_case(case.id)? {
                Some(now_case) if now_case.state == CaseState::Unconfirmed => case = now_case,
                _ => continue,
            }
            let Ok(entry) = self.entry(&case.cert) else {
                continue;
            };
            let seen = match self.revoked_status(&case, &entry).await {
                Ok(Some(seen)) => seen,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(case = case.id, cert = %case.cert, problem = %e, "the revocation could not be confirmed now");
                    continue;
                }
            };
            let now = Utc::now();
            let mut rec = started(Step::Confirm);
            rec.finished_at = Some(now);
            rec.outcome = StepOutcome::Ok;
            rec.detail = format!("{seen} (confirmed by a later CA check)");
            case.journal.push(rec);
            self.audit_step(&case)?;
            self.close_done(&mut case, None, now)?;
            tracing::info!(case = case.id, cert = %case.cert, "revocation confirmed; case closed");
            closed.push(case.id);
        }
        Ok(closed)
    }

    /// Makes case `id` runnable again, for `cases retry` (`via`: `None`) and `cases
    /// revoke-old` (`via`: `Some(issuer)`, or `Some(None)` for the entry's own): a failed
    /// case resumes at the step that failed (from its start when the failure lost what the
    /// later steps need), one waiting to try its revocation again tries now, a
    /// `revocation_needed` one revokes again. `by` is audited.
    pub fn prepare_retry(
        &self,
        id: u64,
        via: Option<Option<String>>,
        by: &str,
    ) -> Result<Case, RespondError> {
        let mut case = self
            .store
            .get_case(id)?
            .ok_or(RespondError::UnknownCase(id))?;
        let refuse = |reason: String| RespondError::NotActionable {
            cert: case.cert.clone(),
            reason,
        };
        if let Some(issuer) = via.as_ref().and_then(|v| v.as_deref())
            && !self.issuers.contains_key(issuer)
        {
            return Err(refuse(format!(
                "issuer `{issuer}` is not configured (known: {})",
                self.issuers.keys().cloned().collect::<Vec<_>>().join(", ")
            )));
        }
        if via.is_some() && !case.kind.revokes() {
            return Err(refuse(format!(
                "case {id} is a {}, which revokes nothing",
                case.kind
            )));
        }
        if via.is_some() && (case.revoked_old() || self.old_is_revoked(&case)) {
            return Err(refuse(format!(
                "the old certificate of case {id} is already revoked"
            )));
        }
        let waiting_retry = case.state == CaseState::Running && case.retry_at.is_some();
        let failed_at = case
            .journal
            .iter()
            .rev()
            .find(|r| r.outcome == StepOutcome::Failed && r.step != Step::Rollback)
            .map(|r| r.step);
        let next = match case.state {
            CaseState::RevocationNeeded => Step::Revoke,
            _ if waiting_retry => Step::Revoke,
            CaseState::Failed if via.is_some() => {
                if failed_at != Some(Step::Revoke) {
                    return Err(refuse(format!(
                        "case {id} failed at {}, not at revoking the old certificate: retry it with `certresponder cases retry {id}`",
                        failed_at.map_or("?", Step::as_str)
                    )));
                }
                Step::Revoke
            }
            CaseState::Failed => match failed_at {
                Some(s @ (Step::Revoke | Step::Confirm | Step::Close)) => s,
                _ => Step::Snapshot,
            },
            other => {
                return Err(refuse(format!(
                    "case {id} is {other}: only a failed case, one waiting to try its revocation again or one whose revocation is needed can be retried"
                )));
            }
        };
        if let Some(other) = self
            .running_by_cert()?
            .get(&case.cert)
            .filter(|c| **c != id)
        {
            return Err(RespondError::Busy {
                cert: case.cert.clone(),
                case: *other,
            });
        }
        self.entry(&case.cert)?;
        if next == Step::Snapshot {
            // Started again from the beginning: what the failed run produced is gone (the
            // key was dropped when it failed), and the files are read again. A certificate
            // it obtained is set aside, to be revoked.
            self.set_aside_issued(&mut case, "the case started over");
            case.old_bundle = None;
            case.new_bundle = None;
            case.issued = None;
            case.new_key = None;
            case.rolled_back = false;
        }
        let by_hand = via.is_some();
        if let Some(v) = via {
            case.revoke_via = v;
        }
        let was = case.state;
        case.state = CaseState::Running;
        case.next = Some(next);
        case.retry_at = None;
        case.error = None;
        self.save(&mut case)?;
        let what = match (by_hand, &case.revoke_via) {
            (true, Some(i)) => format!("the old certificate is revoked through `{i}`"),
            (true, None) => "the old certificate is revoked through the entry's issuer".into(),
            (false, _) => format!("resumed at {next}"),
        };
        self.event(
            &case.cert,
            "case_retried",
            format!("case {id} ({was}): {what}, by {by}"),
        )?;
        audit::append(
            self.store(),
            AuditEntry {
                kind: "case_retried",
                actor: by,
                cert: Some(&case.cert),
                case: Some(id),
                data: json!({"was": was, "next": next, "revoke_via": case.revoke_via}),
            },
        )?;
        Ok(case)
    }

    /// Whether the case's old bundle is revoked: by this case, or at its CA by anyone (the
    /// mark a CA-side check or another case left in the history).
    fn old_is_revoked(&self, case: &Case) -> bool {
        case.revoked_old()
            || case.old_bundle.as_deref().is_some_and(|old| {
                self.store()
                    .bundles(&case.cert)
                    .is_ok_and(|h| h.iter().any(|b| b.id == old && b.is_revoked()))
            })
    }

    /// What a failure at `step` leaves deployed, in words.
    fn left_deployed(&self, case: &Case, step: Step) -> String {
        let Some(old) = case.old_bundle.as_deref() else {
            return "nothing was changed".into();
        };
        if step == Step::Rollback {
            return format!(
                "the rollback did not complete: check the service, then run `certresponder rollback {} --to {old}`; the old certificate is NOT revoked",
                case.cert
            );
        }
        match (case.deployed_new(), self.old_is_revoked(case)) {
            (true, true) => format!(
                "the new bundle {} stays deployed; the old one ({old}) is revoked, so it was not restored",
                case.new_bundle.as_deref().unwrap_or("?")
            ),
            (true, false) => format!(
                "the new bundle {} is deployed; the old certificate ({old}) is NOT revoked",
                case.new_bundle.as_deref().unwrap_or("?")
            ),
            (false, true) => format!(
                "the old certificate ({old}) is revoked and no new bundle is deployed: act now"
            ),
            (false, false) if step == Step::Deploy || step == Step::Rollback => format!(
                "the files may be incomplete; restore bundle {old} with `certresponder rollback {} --to {old}`",
                case.cert
            ),
            (false, false) => format!("the old bundle {old} stays deployed, unrevoked"),
        }
    }

    /// Marks a case failed, with why and what it leaves deployed.
    fn fail(
        &self,
        case: &mut Case,
        detail: String,
        left: Option<String>,
    ) -> Result<(), RespondError> {
        let message = match (left, case.rolled_back) {
            (Some(left), _) => format!("{detail}; {left}"),
            (None, true) => format!(
                "{detail}; rolled back to bundle {}, which is served again; the old certificate is not revoked",
                case.old_bundle.as_deref().unwrap_or("?")
            ),
            (None, false) => detail,
        };
        tracing::warn!(case = case.id, cert = %case.cert, error = %message, "case failed");
        self.set_aside_issued(case, "the case failed before it was deployed for good");
        case.state = CaseState::Failed;
        case.next = None;
        case.new_key = None;
        case.error = Some(message.clone());
        self.save(case)?;
        self.event(
            &case.cert,
            "case_failed",
            format!("case {}: {message}", case.id),
        )?;
        self.finished(case)?;
        Ok(())
    }

    /// Audits the step just finished (the last journal record). The journal write that
    /// follows at once flushes it.
    fn audit_step(&self, case: &Case) -> Result<(), StoreError> {
        let Some(rec) = case.journal.last() else {
            return Ok(());
        };
        audit::append_deferred(
            self.store(),
            AuditEntry {
                kind: "step",
                actor: "certresponder",
                cert: Some(&case.cert),
                case: Some(case.id),
                data: json!({
                    "step": rec.step,
                    "outcome": rec.outcome,
                    "detail": rec.detail,
                    "started_at": rec.started_at,
                    "finished_at": rec.finished_at,
                }),
            },
        )
        .map(|_| ())
    }

    /// Audits how a case ended and tells its owner.
    fn finished(&self, case: &Case) -> Result<(), StoreError> {
        let within = case.deadline.map(|d| case.updated_at <= d);
        audit::append(
            self.store(),
            AuditEntry {
                kind: "outcome",
                actor: "certresponder",
                cert: Some(&case.cert),
                case: Some(case.id),
                data: json!({
                    "state": case.state,
                    "rolled_back": case.rolled_back,
                    "error": case.error,
                    "new_bundle": case.new_bundle,
                    "deadline": case.deadline,
                    "within_deadline": within,
                }),
            },
        )?;
        if case.kind == SequenceKind::Rollback {
            // A rollback by hand tells the owner itself (`rolled_back`).
            return Ok(());
        }
        let (event, summary) = match (case.state, case.rolled_back) {
            (CaseState::Unconfirmed, _) => (
                NotifyEvent::Escalation,
                format!(
                    "case {} for `{}`: replaced and revoked, but the CA still reports the old certificate good; each CA check asks again (`certresponder cases show {}`)",
                    case.id, case.cert, case.id
                ),
            ),
            (CaseState::RevocationNeeded, _) => (
                NotifyEvent::Escalation,
                format!(
                    "case {} for `{}`: replaced, but the old certificate is NOT revoked; act now: {}",
                    case.id,
                    case.cert,
                    case.error.as_deref().unwrap_or("")
                ),
            ),
            (CaseState::Done, _) => (
                NotifyEvent::Completed,
                format!(
                    "case {} for `{}` is done: {} completed{}",
                    case.id,
                    case.cert,
                    case.kind,
                    match within {
                        Some(true) => " within its deadline",
                        Some(false) => " AFTER its deadline",
                        None => "",
                    }
                ),
            ),
            (_, true) => (
                NotifyEvent::RolledBack,
                format!(
                    "case {} for `{}` failed and was rolled back: {}",
                    case.id,
                    case.cert,
                    case.error.as_deref().unwrap_or("")
                ),
            ),
            _ => (
                NotifyEvent::Failed,
                format!(
                    "case {} for `{}` failed: {}",
                    case.id,
                    case.cert,
                    case.error.as_deref().unwrap_or("")
                ),
            ),
        };
        self.notify(Notification {
            event,
            owner: Some(case.owner.clone()).filter(|o| !o.is_empty()),
            cert: Some(case.cert.clone()),
            case: Some(case.id),
            summary,
            deadline: case.deadline,
            details: json!({
                "sequence": case.kind,
                "state": case.state,
                "new_bundle": case.new_bundle,
                "old_bundle": case.old_bundle,
                "error": case.error,
            }),
            created_at: Utc::now(),
        });
        Ok(())
    }

    /// Queues a notification; a failure to queue is logged, never fatal to a sequence.
    pub fn notify(&self, n: Notification) {
        if let Err(e) = notify::enqueue(self.store(), &self.cfg.notify, &n) {
            tracing::warn!(error = %e, event = n.event.as_str(), "cannot queue a notification");
        }
    }

    /// Journals the case durably.
    pub(crate) fn save(&self, case: &mut Case) -> Result<(), RespondError> {
        // A deadline escalation made while this copy was in hand is kept (it is written by
        // compare-and-swap from elsewhere).
        if case.reescalated_at.is_none()
            && case.id != 0
            && let Ok(Some(stored)) = self.store.get_case(case.id)
        {
            case.reescalated_at = stored.reescalated_at;
        }
        case.updated_at = Utc::now();
        case.version = case.version.wrapping_add(1);
        self.store.put_case(case)?;
        Ok(())
    }

    /// Appends an event to the certificate's history.
    pub(crate) fn event(&self, cert: &str, kind: &str, detail: String) -> Result<(), StoreError> {
        self.store
            .append_event(Event {
                seq: 0,
                at: Utc::now(),
                cert: cert.to_string(),
                kind: kind.to_string(),
                detail,
            })
            .map(|_| ())
    }

    /// The bundle with this id in the certificate's history.
    pub(crate) fn stored_bundle(&self, cert: &str, id: &str) -> Result<Bundle, String> {
        self.store
            .bundles(cert)
            .map_err(|e| e.to_string())?
            .into_iter()
            .find(|b| b.id == id)
            .ok_or_else(|| format!("bundle {id} is no longer in the history of `{cert}`"))
    }

    /// Waits for the replacement rate limit of `issuer` (`[respond] replacement_rate`):
    /// mass replacements place orders at most that fast, spaced evenly.
    pub(crate) async fn replacement_turn(&self, issuer: &str) {
        self.replacement_gate.turn(issuer).await;
    }

    /// Runs one call to an issuer within its `issuer_concurrency` slots, so that a mass
    /// response does not put more requests in flight at a CA than it is configured to take.
    pub(crate) async fn with_slot<T>(&self, issuer: &str, call: impl Future<Output = T>) -> T {
        let _permit = match self.issuer_slots.get(issuer) {
            Some(slots) => slots.acquire().await.ok(),
            None => None,
        };
        call.await
    }

    /// How long to wait before attempt `attempt` (1-based) after `e`.
    pub(crate) fn backoff(&self, e: &IssuerError, attempt: u32) -> Duration {
        if let IssuerError::RateLimited {
            retry_after: Some(d),
            ..
        } = e
        {
            return (*d).min(Duration::from_secs(600));
        }
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.cfg
            .respond
            .retry_base
            .saturating_mul(factor)
            .min(Duration::from_secs(60))
    }
}

/// The old bundles of the cases that replaced their certificate but could not revoke the
/// old one (`revocation_needed`): the CA checks look for their revocation.
pub fn awaiting_revocation(store: &dyn Store) -> Result<Vec<Bundle>, StoreError> {
    let mut out = Vec::new();
    for case in store.list_cases()? {
        if case.state != CaseState::RevocationNeeded {
            continue;
        }
        let Some(id) = case.old_bundle.as_deref() else {
            continue;
        };
        if let Some(b) = store.bundles(&case.cert)?.into_iter().find(|b| b.id == id) {
            out.push(b);
        }
    }
    Ok(out)
}

fn started(step: Step) -> StepRecord {
    StepRecord {
        step,
        started_at: Utc::now(),
        finished_at: None,
        outcome: StepOutcome::Started,
        detail: String::new(),
    }
}

#[cfg(test)]
pub(crate) mod tests;
