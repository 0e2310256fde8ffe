//! Approvals and denials of waiting cases, and closing the breaker. Each records the
//! identity the operating system gives the person acting, and is audited.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;

use super::identity::Basis;
use super::{BreakerState, GovernError, Governor, Identity};
use crate::audit::{self, AuditEntry};
use crate::notify::{Notification, NotifyEvent};
use crate::records::case::{ApprovalRecord, Case, CaseState, Denial};

/// What an approval did.
#[derive(Debug, Clone, Serialize)]
pub struct Approved {
    /// The case after the approval.
    pub case: u64,
    /// Whether the case may now run (every approval it needs is in).
    pub runnable: bool,
    /// Approvals still needed.
    pub still_needed: usize,
}

/// The breaker as `breaker status` shows it.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct BreakerStatus {
    /// The stored state.
    pub state: BreakerState,
    /// Automatic revocations in the current window.
    pub in_window: usize,
    /// The limit for all owners.
    pub max_revocations: u32,
    /// The limit per owner.
    pub max_revocations_per_owner: u32,
    /// The window, in seconds.
    pub window_secs: i64,
    /// Cases the breaker holds for approval.
    pub held: Vec<u64>,
}

/// How many times an update by compare-and-swap is tried when other writers keep changing
/// the case.
const CAS_ATTEMPTS: usize = 100;

impl Governor {
    /// Reads case `id`, lets `change` check and update it, and writes it by compare-and-swap.
    /// When another writer changed the case in between (a concurrent approval, a denial,
    /// the engine), it is read again and `change` asked again, and may now refuse: two
    /// updates never both apply to the same version, so a denial is never overwritten.
    pub(crate) fn update_case<T>(
        &self,
        id: u64,
        mut change: impl FnMut(&mut Case) -> Result<T, GovernError>,
    ) -> Result<(Case, T), GovernError> {
        let store = self.engine.store();
        for _ in 0..CAS_ATTEMPTS {
            let mut case = store.get_case(id)?.ok_or_else(|| {
                GovernError::Refused(format!(
                    "there is no case {id} (see `certresponder cases list`)"
                ))
            })?;
            let out = change(&mut case)?;
            if store.swap_case(&mut case)? {
                return Ok((case, out));
            }
        }
        Err(GovernError::Refused(format!(
            "case {id} kept changing while it was being updated; try again"
        )))
    }

    /// Refuses a case that is not waiting for approval, saying why.
    fn check_waiting(case: &Case) -> Result<(), GovernError> {
        let id = case.id;
        match case.state {
            CaseState::AwaitingApproval => Ok(()),
            CaseState::Denied => {
                let by = case
                    .approval
                    .as_ref()
                    .and_then(|a| a.denied.as_ref())
                    .map(|d| {
                        format!(
                            " by {} (uid {}) at {}: {}",
                            d.by,
                            d.uid,
                            d.at.format("%Y-%m-%d %H:%M:%SZ"),
                            d.reason
                        )
                    })
                    .unwrap_or_default();
                Err(GovernError::Refused(format!(
                    "case {id} was denied{by}; a denied case never runs (open a new one with `certresponder reissue`)"
                )))
            }
            other => Err(GovernError::Refused(format!(
                "case {id} is {other}, not waiting for approval"
            ))),
        }
    }

    /// Records `who`'s approval of case `id`. When the case has every approval it needs it
    /// becomes running (the caller runs it). Refuses a person not among the owner's
    /// approvers, and the same person approving twice.
    pub fn approve(
        &self,
        id: u64,
        who: &Identity,
        now: DateTime<Utc>,
    ) -> Result<Approved, GovernError> {
        let store = self.engine.store();
        let (case, (runnable, have, needed)) = self.update_case(id, |case| {
            Self::check_waiting(case)?;
            let Some(approval) = case.approval.as_mut() else {
                return Err(GovernError::Refused(format!(
                    "case {id} has no approval record"
                )));
            };
            if let Basis::Unverified(why) = &who.basis
                && (approval.needed > 1 || !approval.approvers.is_empty())
            {
                return Err(GovernError::Refused(format!(
                    "{who} cannot be told apart from other people ({why}); case {id} needs {}, which counts people, so the approval is refused. Approve from a login session on a host whose /proc the daemon can read (the shipped unit has ProtectProc=default)",
                    if approval.needed > 1 {
                        format!("{} different people", approval.needed)
                    } else {
                        format!("one of the approvers of owner `{}`", case.owner)
                    }
                )));
            }
            if !approval.approvers.is_empty() && !approval.approvers.contains(&who.name) {
                return Err(GovernError::Refused(format!(
                    "{who} is not an approver for owner `{}` (approvers: {})",
                    case.owner,
                    approval.approvers.join(", ")
                )));
            }
            if let Some(prev) = approval.approvals.iter().find(|a| a.uid == who.uid) {
                return Err(GovernError::Refused(format!(
                    "{who} already approved case {id} at {}; {} needs {} different people",
                    prev.at.format("%Y-%m-%d %H:%M:%SZ"),
                    approval.required.as_str(),
                    approval.needed
                )));
            }
            let basis = match &who.basis {
                Basis::Login => None,
                Basis::Account => Some("account: no login uid".to_string()),
                Basis::Unverified(why) => Some(format!("unverified: {why}")),
            };
            approval.approvals.push(ApprovalRecord {
                by: who.name.clone(),
                uid: who.uid,
                at: now,
                basis: basis.clone(),
            });
            let have = approval.approvals.len();
            let needed = approval.needed.max(1);
            let runnable = have >= needed;
            if runnable {
                case.state = CaseState::Running;
            }
            case.updated_at = now;
            // Audited before it takes effect: a crash (or a concurrent change) in between
            // leaves an approval on record that did not count, never a case that runs
            // without one.
            audit::append(
                store,
                AuditEntry {
                    kind: "approval",
                    actor: &who.to_string(),
                    cert: Some(&case.cert),
                    case: Some(id),
                    data: json!({
                        "by": who.name,
                        "uid": who.uid,
                        "identified_by": basis.as_deref().unwrap_or("login uid"),
                        "approvals": have,
                        "needed": needed,
                        "runnable": runnable,
                    }),
                },
            )?;
            Ok((runnable, have, needed))
        })?;
        self.engine.event(
            &case.cert,
            "case_approved",
            format!(
                "case {id}: approved by {who} ({have} of {needed}){}",
                if runnable { "; it runs" } else { "" }
            ),
        )?;
        Ok(Approved {
            case: id,
            runnable,
            still_needed: needed.saturating_sub(have),
        })
    }

    /// Denies case `id`: it never runs. The signals it answered stay answered by it.
    pub fn deny(
        &self,
        id: u64,
        who: &Identity,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<Case, GovernError> {
        let store = self.engine.store();
        let (case, ()) = self.update_case(id, |case| {
            Self::check_waiting(case)?;
            if let Some(a) = case.approval.as_ref()
                && !a.approvers.is_empty()
                && !a.approvers.contains(&who.name)
            {
                return Err(GovernError::Refused(format!(
                    "{who} is not an approver for owner `{}` and cannot deny its cases (approvers: {})",
                    case.owner,
                    a.approvers.join(", ")
                )));
            }
            if let Some(approval) = case.approval.as_mut() {
                approval.denied = Some(Denial {
                    by: who.name.clone(),
                    uid: who.uid,
                    at: now,
                    reason: reason.to_string(),
                });
            }
            case.state = CaseState::Denied;
            case.next = None;
            case.updated_at = now;
            audit::append(
                store,
                AuditEntry {
                    kind: "denial",
                    actor: &who.to_string(),
                    cert: Some(&case.cert),
                    case: Some(id),
                    data: json!({"by": who.name, "uid": who.uid, "reason": reason}),
                },
            )?;
            Ok(())
        })?;
        self.engine.event(
            &case.cert,
            "case_denied",
            format!("case {id}: denied by {who}: {reason}"),
        )?;
        self.engine.notify(Notification {
            event: NotifyEvent::Denied,
            owner: Some(case.owner.clone()),
            cert: Some(case.cert.clone()),
            case: Some(id),
            summary: format!(
                "case {id} ({} of `{}`) was denied by {who}: {reason}",
                case.kind, case.cert
            ),
            deadline: case.deadline,
            details: json!({"reason": reason}),
            created_at: now,
        });
        Ok(case)
    }

    /// The breaker's state, limits and the cases it holds.
    pub fn breaker_status(&self, now: DateTime<Utc>) -> Result<BreakerStatus, GovernError> {
        let store = self.engine.store();
        let mut state = BreakerState::load(store)?;
        state.prune(&self.policy.limits, now);
        let held = store
            .list_cases()?
            .into_iter()
            .filter(|c| {
                c.state == CaseState::AwaitingApproval
                    && c.approval.as_ref().is_some_and(|a| a.held_by_breaker)
            })
            .map(|c| c.id)
            .collect();
        Ok(BreakerStatus {
            in_window: state.admitted.len(),
            state,
            max_revocations: self.policy.limits.max_revocations,
            max_revocations_per_owner: self.policy.limits.max_revocations_per_owner,
            window_secs: self.policy.limits.window.num_seconds(),
            held,
        })
    }

    /// Closes the breaker; the window's revocations still count. Cases it held still wait
    /// for approval. Returns whether it was open.
    pub fn breaker_reset(&self, who: &Identity) -> Result<bool, GovernError> {
        let _guard = super::BREAKER_LOCK
            .lock()
            .map_err(|_| GovernError::Refused("the breaker lock is poisoned".into()))?;
        let store = self.engine.store();
        let mut state = BreakerState::load(store)?;
        let before = state.clone();
        let was_open = state.reset();
        state.save(store)?;
        audit::append(
            store,
            AuditEntry {
                kind: "breaker_reset",
                actor: &who.to_string(),
                cert: None,
                case: None,
                data: json!({
                    "was_open": was_open,
                    "open": before.open,
                    "open_owners": before.open_owners,
                    "admitted_in_window": before.admitted.len(),
                }),
            },
        )?;
        tracing::warn!(by = %who, was_open, "the blast-radius breaker was reset");
        Ok(was_open)
    }
}
