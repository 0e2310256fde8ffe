//! Signals reported from outside the detectors: a person's report of a compromised key, a
//! SIEM's or a secret scanner's finding posted to the control socket.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::Role;
use crate::policy::vocab::{self, CheckInfo};
use crate::signals::{Confidence, Finding, Signal, SignalState};
use crate::store::{Store, StoreError};

/// A signal reported from outside: a person, a SIEM or a secret scanner (the control
/// socket's `POST /v1/signals`), already checked against the inventory and the vocabulary.
#[derive(Debug, Clone)]
pub struct Reported {
    /// The certificate's inventory name.
    pub cert: String,
    /// The check, from the finding vocabulary.
    pub check: &'static CheckInfo,
    /// How sure the reporter is.
    pub confidence: Confidence,
    /// One line for a person.
    pub message: String,
    /// What the reporter attached (kept under `details` in the signal's evidence).
    pub details: serde_json::Value,
    /// What raised it (a scanner's name, `api`).
    pub source: String,
}

/// Records a reported finding as an open signal about the certificate's current bundle,
/// with the reporter's identity; returns the signal as stored. A report of what an open,
/// unanswered signal already says counts as seeing it again; one about a signal that was
/// answered (its case failed or was denied, or it was escalated) is new evidence and gets
/// a signal of its own. A suppression a person set stays in force.
pub fn record_reported(
    store: &dyn Store,
    r: &Reported,
    reporter: &str,
) -> Result<Signal, StoreError> {
    let now = Utc::now();
    let bundles = store.bundles(&r.cert)?;
    let current = certresponder_inventory::Bundle::current_of(&bundles);
    let (reason, hours) = vocab::implied(r.check.check, r.confidence);
    let finding = Finding {
        check: r.check.check,
        confidence: r.confidence,
        message: r.message.clone(),
        revocation_reason: reason,
        deadline_hours: hours,
        evidence: json!({
            "reporter": reporter,
            "source": r.source,
            "bundle": current.map(|b| b.id.clone()),
            "details": r.details,
        }),
    };
    let fp = current.map(|b| b.fingerprints.cert_sha256.clone());
    let signal = Signal::from_finding(
        &r.cert,
        r.check.family,
        &finding,
        fp.as_deref(),
        &r.source,
        now,
    );
    crate::signals::state::report(store, signal, fp.as_deref(), now, true, reporter)
}

/// The stored signals `signals` lists: all but the resolved ones (with `all`, every one),
/// highest confidence first, then oldest first.
pub fn listed(store: &dyn Store, all: bool) -> Result<Vec<Signal>, StoreError> {
    let mut shown: Vec<Signal> = store
        .list_signals()?
        .into_iter()
        .filter(|s| all || !matches!(s.state, SignalState::Resolved { .. }))
        .collect();
    shown.sort_by(|a, b| {
        b.confidence
            .cmp(&a.confidence)
            .then(a.detected_at.cmp(&b.detected_at))
    });
    Ok(shown)
}

/// `signals [--all]`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ListArgs {
    /// Resolved signals too.
    pub all: bool,
}

/// Lists the stored signals.
pub struct List;

impl super::Op for List {
    const NAME: &'static str = "signals_list";
    const CHANGES: bool = false;
    const ROLE: Role = Role::Read;
    type Args = ListArgs;
    type Output = Vec<Signal>;

    fn run(
        svc: &super::Service,
        _ctx: &super::Ctx<'_>,
        args: ListArgs,
    ) -> Result<Vec<Signal>, super::ServiceError> {
        Ok(listed(svc.store(), args.all)?)
    }
}

/// `signals suppress ID --until T --reason R`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SuppressArgs {
    /// The signal's id, or a unique prefix of it or of its dedup key.
    pub id: String,
    /// Until when.
    pub until: DateTime<Utc>,
    /// Why.
    pub reason: String,
}

/// Silences a known false positive until a time, as the caller.
pub struct Suppress;

impl super::Op for Suppress {
    const NAME: &'static str = "signals_suppress";
    const CHANGES: bool = true;
    const ROLE: Role = Role::Admin;
    type Args = SuppressArgs;
    type Output = Signal;

    fn run(
        svc: &super::Service,
        ctx: &super::Ctx<'_>,
        args: SuppressArgs,
    ) -> Result<Signal, super::ServiceError> {
        use super::ServiceError;
        let now = Utc::now();
        if args.until <= now {
            return Err(ServiceError::field("--until", "must be in the future"));
        }
        if args.reason.trim().is_empty() {
            return Err(ServiceError::field("--reason", "must say why"));
        }
        let store = svc.store();
        let id = &args.id;
        let matches: Vec<Signal> = store
            .list_signals()?
            .into_iter()
            .filter(|s| s.id.starts_with(id.as_str()) || s.dedup_key.starts_with(id.as_str()))
            .collect();
        let mut signal = match matches.as_slice() {
            [one] => one.clone(),
            [] => {
                return Err(ServiceError::Input(format!(
                    "no signal with id `{id}` (see `certresponder signals`)"
                )));
            }
            _ => {
                return Err(ServiceError::Input(format!(
                    "`{id}` matches {} signals; give more of the id",
                    matches.len()
                )));
            }
        };
        crate::signals::state::suppress(
            store,
            &mut signal,
            args.until,
            &args.reason,
            &ctx.who.to_string(),
            now,
        )?;
        Ok(signal)
    }
}
