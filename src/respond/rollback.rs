//! Rollback by hand: restores an earlier bundle of a certificate to every location,
//! reloads and verifies it. The checks (no case running, not the current bundle, not
//! revoked unless forced, a stored key where the entry has a key file) are made before, and
//! again under the certificate's lock.

use certresponder_inventory::{Bundle, BundleState, ManagedCert};
use chrono::Utc;
use serde_json::json;

use super::engine::Opening;
use super::{Engine, RespondError};
use crate::audit::{self, AuditEntry};
use crate::notify::{Notification, NotifyEvent};
use crate::records::case::{CaseState, SequenceKind, Step, Trigger};
use crate::store::StoreError;

/// Why a rollback was not made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RollbackError {
    /// The engine failed, or the certificate is unknown.
    #[error(transparent)]
    Respond(#[from] RespondError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// What was asked names no bundle, or more than one.
    #[error("{0}")]
    Input(String),
    /// It is not allowed now (a case running, a revoked bundle without force).
    #[error("{0}")]
    Refused(String),
}

/// The bundle `rollback` restores: `--to` (unique prefix) or the latest earlier one that is
/// not revoked (with `--force`, the latest earlier one).
fn rollback_target<'a>(
    bundles: &'a [Bundle],
    to: Option<&str>,
    force: bool,
    name: &str,
) -> Result<&'a Bundle, RollbackError> {
    match to {
        Some(prefix) => {
            let found: Vec<&Bundle> = bundles
                .iter()
                .filter(|b| b.id.starts_with(prefix))
                .collect();
            match found.as_slice() {
                [one] => Ok(one),
                [] => Err(RollbackError::Input(format!(
                    "`{name}` has no bundle `{prefix}` (see `certresponder history {name}`)"
                ))),
                more => Err(RollbackError::Input(format!(
                    "`{prefix}` matches {} bundles of `{name}`; give more of the id",
                    more.len()
                ))),
            }
        }
        None => {
            let current = bundles
                .iter()
                .rposition(|b| b.state == BundleState::Current);
            bundles
                .iter()
                .enumerate()
                .rev()
                .find(|(i, b)| {
                    Some(*i) != current
                        && b.state != BundleState::Current
                        && (force || !b.is_revoked())
                })
                .map(|(_, b)| b)
                .ok_or_else(|| {
                    RollbackError::Input(format!(
                        "`{name}` has no earlier bundle that is not revoked (see `certresponder history {name}`; name one with --to, and --force for a revoked one)"
                    ))
                })
        }
    }
}

/// The refusal while `name` has case `id` running.
fn busy(name: &str, id: u64) -> RollbackError {
    RollbackError::Refused(format!(
        "`{name}` has case {id} running; let it finish (`certresponder respond`) before rolling back by hand"
    ))
}

/// What `rollback` would restore to `name` (the entry and the bundle), after every check:
/// no case running, the bundle not current, not revoked unless `force`, its key stored
/// when the entry has a key file.
pub fn rollback_checked(
    engine: &Engine,
    name: &str,
    to: Option<&str>,
    force: bool,
) -> Result<(ManagedCert, Bundle), RollbackError> {
    let entry = engine.entry(name)?;
    if let Some(running) = engine.running_case(name)? {
        return Err(busy(name, running.id));
    }
    let bundles = engine.store().bundles(name)?;
    let target = rollback_target(&bundles, to, force, name)?.clone();
    if target.state == BundleState::Current {
        return Err(RollbackError::Refused(format!(
            "bundle {} is already the current bundle of `{name}`",
            target.id
        )));
    }
    if target.is_revoked() && !force {
        return Err(RollbackError::Refused(format!(
            "bundle {} of `{name}` was revoked at its CA: clients that check revocation would reject it. Restore it anyway with --force",
            target.id
        )));
    }
    if target.key_pem.is_none() && entry.paths.key.is_some() {
        return Err(RollbackError::Refused(format!(
            "bundle {} has no private key stored, so it cannot be restored to `{name}`'s key file",
            target.id
        )));
    }
    Ok((entry, target))
}

/// How a rollback went.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RolledBack {
    /// The certificate.
    pub cert: String,
    /// The bundle restored (or not).
    pub bundle: String,
    /// Whether it was restored, reloaded and verified.
    pub ok: bool,
    /// What happened, with who asked.
    pub detail: String,
}

/// Restores `target` to every location of `entry`, reloads and verifies it, and records
/// the outcome (event, audit record as `who`, the owner's notification, queued).
pub async fn rollback(
    engine: &Engine,
    entry: &ManagedCert,
    target: &Bundle,
    who: &str,
) -> Result<RolledBack, RollbackError> {
    let name = entry.name.to_string();
    // Cases run their steps under the certificate's lock. A case running now is refused at
    // once; otherwise the checks are made again under the lock, since a case may have
    // opened, or run and replaced the bundles, since they were made.
    let Some(_held) = engine.try_hold_cert(&name) else {
        return Err(RollbackError::Refused(format!(
            "`{name}` has a case running its steps right now; let it finish (`certresponder cases list`) before rolling back by hand"
        )));
    };
    let (entry, target) = rollback_checked(engine, &name, Some(&target.id), target.is_revoked())?;
    let (entry, target) = (&entry, &target);
    // Journaled like a case: a crash in the middle of the writes resumes it (`respond`, or
    // the daemon's start) until every location holds the bundle again.
    let mut running = engine.running_by_cert()?;
    let mut case = engine.open(
        Opening {
            id: None,
            cert: name.clone(),
            kind: SequenceKind::Rollback,
            contain_first: false,
            reason: None,
            trigger: Trigger {
                source: "rollback".into(),
                by: who.to_string(),
                why: format!("rollback by hand to bundle {}", target.id),
                signals: Vec::new(),
            },
            decision: None,
            deadline: None,
            approval: None,
            issuer: None,
        },
        &mut running,
    )?;
    case.old_bundle = Some(target.id.clone());
    engine.save(&mut case)?;
    drop(_held);
    let case = engine.run_case(case.id).await?;
    let ok = case.state == CaseState::Done;
    let restored = case
        .journal
        .iter()
        .rev()
        .find(|r| r.step == Step::Rollback)
        .map(|r| r.detail.clone())
        .unwrap_or_default();
    let detail = if ok {
        format!(
            "by {who}: {restored}{}",
            if target.is_revoked() {
                " (forced: the bundle is revoked)"
            } else {
                ""
            }
        )
    } else {
        format!(
            "by {who}: rollback to {} failed: {}",
            target.id,
            case.error.as_deref().unwrap_or(&restored)
        )
    };
    engine.store().append_event(crate::store::Event {
        seq: 0,
        at: Utc::now(),
        cert: name.clone(),
        kind: if ok { "rolled_back" } else { "rollback_failed" }.into(),
        detail: detail.clone(),
    })?;
    audit::append(
        engine.store(),
        AuditEntry {
            kind: "rollback",
            actor: who,
            cert: Some(&name),
            case: None,
            data: json!({
                "bundle": target.id,
                "forced": target.is_revoked(),
                "ok": ok,
                "detail": detail,
            }),
        },
    )?;
    if ok {
        engine.notify(Notification {
            event: NotifyEvent::RolledBack,
            owner: Some(entry.owner.clone()),
            cert: Some(name.clone()),
            case: None,
            summary: format!("`{name}` was rolled back {detail}"),
            deadline: None,
            details: json!({"bundle": target.id}),
            created_at: Utc::now(),
        });
    }
    Ok(RolledBack {
        cert: name,
        bundle: target.id.clone(),
        ok,
        detail,
    })
}
