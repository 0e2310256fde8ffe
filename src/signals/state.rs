//! The one owner of signal state: every insert, re-detection, merge of evidence, report,
//! resolution, answer and suppression of a stored signal goes through this module, by the
//! same rules, whoever detected it (scan, exposure scans and ingested scanner reports, CT
//! monitoring, the CA checks, people's reports, the governor, a case closing).
//!
//! The rules:
//!
//! 1. **Identity.** A signal is keyed by its subject, its check and the certificate it is
//!    about (SHA-256 over the three; CT keys its signals by the logged certificate's TBS
//!    hash instead). A finding with a known key is the same signal seen again: its
//!    `last_seen` moves, `times_seen` counts up, and its first detection is kept (the
//!    earliest `detected_at`).
//! 2. **Evidence.** A detector says how a re-detection's evidence combines with what is
//!    stored ([`Evidence`]): the latest replaces it (scan, the CA checks: message,
//!    confidence and evidence as found now), the places a key was found are merged
//!    (exposure), or the first is kept (CT: a logged entry does not change).
//! 3. **Coming back.** A resolved signal found again is open again, and the policy decides
//!    it again (its `handled` answer is cleared); so is one a detector is now surer of.
//! 4. **Suppression** set by a person stays in force until its date, whatever finds the
//!    signal again.
//! 5. **Reports.** A person's or scanner's report of what an open, unanswered signal
//!    already says counts as seeing it again; a report about a signal that a case answered
//!    or the policy handled is new evidence, with a key of its own.
//! 6. **Resolution.** A signal is resolved when its finding is gone (a detector's pass that
//!    could judge it no longer finds it), when the certificate it is about is no longer
//!    deployed and no case holds it, or when the case that answered it closes.
//! 7. **Answers.** The policy's escalate and ignore answers are recorded on the signal
//!    (`handled`); a case's answer is the case itself.
//! 8. **Audit.** Every new, reopened and resolved signal is recorded in the audit log
//!    (`signal` records, with the actor: `certresponder`, the policy, or the reporter); a
//!    signal merely seen again is not.

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::audit::{self, AuditEntry};
use crate::records::signal::{Handled, Signal, SignalState};
use crate::store::{Store, StoreError};

/// The actor the audit log names for what detectors and cases do.
pub const ENGINE_ACTOR: &str = "certresponder";

/// How a re-detection's evidence combines with the stored signal's (rule 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evidence {
    /// The latest message, confidence and evidence replace the stored ones.
    Replace,
    /// The `locations` lists are merged (at most `max` kept), `locations_total` counts them.
    MergeLocations {
        /// How many locations are kept.
        max: usize,
    },
    /// What was first recorded stays.
    Keep,
}

/// What a detection did to the stored signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// It was not stored: recorded now.
    New,
    /// It was stored and open (or suppressed): seen again.
    Again,
    /// It was resolved and is open again.
    Reopened,
}

/// Records a detection of `fresh` (rules 1 to 4 and 8); returns the signal as stored now.
pub fn observe(
    store: &dyn Store,
    fresh: Signal,
    evidence: Evidence,
    now: DateTime<Utc>,
) -> Result<(Signal, Seen), StoreError> {
    let Some(mut old) = store.get_signal(&fresh.dedup_key)? else {
        store.put_signal(&fresh)?;
        record(store, &fresh, "new", ENGINE_ACTOR)?;
        return Ok((fresh, Seen::New));
    };
    old.last_seen = now;
    old.times_seen += 1;
    old.detected_at = old.detected_at.min(fresh.detected_at);
    let mut rose = false;
    match evidence {
        Evidence::Replace => {
            rose = fresh.confidence > old.confidence;
            old.message = fresh.message;
            old.evidence = fresh.evidence;
            old.confidence = fresh.confidence;
        }
        Evidence::MergeLocations { max } => {
            let mut all: Vec<serde_json::Value> = old.evidence["locations"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let fresh_total = fresh.evidence["locations_total"].as_u64().unwrap_or(0);
            for l in fresh.evidence["locations"].as_array().into_iter().flatten() {
                if !all.contains(l) {
                    all.push(l.clone());
                }
            }
            all.truncate(max);
            let total = (all.len() as u64).max(fresh_total);
            old.evidence["locations"] = json!(all);
            old.evidence["locations_total"] = json!(total);
        }
        Evidence::Keep => {}
    }
    let reopened = matches!(old.state, SignalState::Resolved { .. });
    if reopened {
        old.state = SignalState::Open;
    }
    if reopened || rose {
        // The answer given to the signal as it was no longer holds: decided again.
        old.handled = None;
    }
    store.put_signal(&old)?;
    if reopened {
        record(store, &old, "reopened", ENGINE_ACTOR)?;
        return Ok((old, Seen::Reopened));
    }
    Ok((old, Seen::Again))
}

/// Records a signal somebody reported about the bundle with fingerprint `fp`, from
/// `source` (rules 4, 5 and 8): new evidence with a key of its own when the stored signal
/// with its key was answered by a case or handled by the policy, else that signal seen
/// again (keeping a running suppression when `keep_suppression`). Recorded as `new` by
/// `reporter`.
pub fn report(
    store: &dyn Store,
    mut signal: Signal,
    fp: Option<&str>,
    now: DateTime<Utc>,
    keep_suppression: bool,
    reporter: &str,
) -> Result<Signal, StoreError> {
    if let Some(old) = store.get_signal(&signal.dedup_key)? {
        let answered = store
            .list_cases()?
            .iter()
            .any(|c| c.trigger.signals.contains(&old.dedup_key));
        if answered || old.handled.is_some() {
            signal.dedup_key = Signal::dedup_key(
                &signal.subject,
                &signal.check,
                Some(&format!(
                    "{}|{}|{}",
                    fp.unwrap_or(""),
                    signal.source,
                    now.to_rfc3339()
                )),
            );
            signal.id = signal.dedup_key[..12].to_string();
        } else {
            signal.detected_at = old.detected_at;
            signal.times_seen = old.times_seen + 1;
            if keep_suppression
                && matches!(&old.state, SignalState::Suppressed { until, .. } if *until > now)
            {
                signal.state = old.state.clone();
            }
        }
    }
    store.put_signal(&signal)?;
    record(store, &signal, "new", reporter)?;
    Ok(signal)
}

/// Resolves `signal` (rule 6), audited as by `actor`; a signal already resolved is left
/// as it is. Returns whether it changed.
pub fn resolve(
    store: &dyn Store,
    signal: &mut Signal,
    now: DateTime<Utc>,
    actor: &str,
) -> Result<bool, StoreError> {
    if matches!(signal.state, SignalState::Resolved { .. }) {
        return Ok(false);
    }
    signal.state = SignalState::Resolved { at: now };
    store.put_signal(signal)?;
    record(store, signal, "resolved", actor)?;
    Ok(true)
}

/// Resolves the signal with key `dedup_key` if it is open now (rule 6, a case closing);
/// returns whether it did.
pub fn resolve_key(
    store: &dyn Store,
    dedup_key: &str,
    now: DateTime<Utc>,
    actor: &str,
) -> Result<bool, StoreError> {
    match store.get_signal(dedup_key)? {
        Some(mut s) if s.is_open(now) => resolve(store, &mut s, now, actor),
        _ => Ok(false),
    }
}

/// Records the policy's answer to the signal with key `dedup_key` (rule 7). Returns false
/// when there is no such signal or it already carries that action.
pub fn mark_handled(
    store: &dyn Store,
    dedup_key: &str,
    handled: Handled,
) -> Result<bool, StoreError> {
    let Some(mut s) = store.get_signal(dedup_key)? else {
        return Ok(false);
    };
    if s.handled.as_ref().is_some_and(|h| {
        h.action == handled.action && h.rule == handled.rule && h.why == handled.why
    }) {
        return Ok(false);
    }
    s.handled = Some(handled);
    store.put_signal(&s)?;
    Ok(true)
}

/// Marks a signal whose answered decision could not run as escalated again near its
/// deadline (once). Returns whether it was marked now.
pub fn mark_reescalated(
    store: &dyn Store,
    dedup_key: &str,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let Some(mut s) = store.get_signal(dedup_key)? else {
        return Ok(false);
    };
    let Some(h) = s.handled.as_mut() else {
        return Ok(false);
    };
    if h.reescalated_at.is_some() {
        return Ok(false);
    }
    h.reescalated_at = Some(at);
    store.put_signal(&s)?;
    Ok(true)
}

/// Suppresses `signal` until `until`, by a person, for a reason (rule 4).
pub fn suppress(
    store: &dyn Store,
    signal: &mut Signal,
    until: DateTime<Utc>,
    reason: &str,
    by: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    signal.state = SignalState::Suppressed {
        until,
        reason: reason.to_string(),
        by: by.to_string(),
        at: now,
    };
    store.put_signal(signal)
}

/// Appends a `signal` record to the audit log (rule 8): the signal as stored and what
/// happened to it (`new`, `reopened` or `resolved`), by `actor`.
pub fn record(
    store: &dyn Store,
    signal: &Signal,
    state: &str,
    actor: &str,
) -> Result<u64, StoreError> {
    audit::append(
        store,
        AuditEntry {
            kind: "signal",
            actor,
            cert: Some(&signal.subject),
            case: None,
            data: json!({
                "dedup_key": signal.dedup_key,
                "check": signal.check,
                "family": signal.family,
                "confidence": signal.confidence,
                "message": signal.message,
                "evidence": signal.evidence,
                "source": signal.source,
                "state": state,
            }),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signals::Finding;
    use crate::store::MemoryStore;

    fn signal(check: &'static str, evidence: serde_json::Value, now: DateTime<Utc>) -> Signal {
        let f = Finding::compromised(check, "found", evidence);
        Signal::from_finding("web", "exposure", &f, Some("ab"), "exposure", now)
    }

    /// The `signal` audit records' states, oldest first.
    fn audited(store: &MemoryStore) -> Vec<String> {
        audit::readable_records(store)
            .unwrap()
            .0
            .into_iter()
            .filter(|r| r.kind == "signal")
            .map(|r| r.data["state"].as_str().unwrap_or("").to_string())
            .collect()
    }

    #[test]
    fn a_signal_found_again_is_counted_and_one_that_came_back_is_decided_again() {
        let store = MemoryStore::new();
        let t0 = Utc::now();
        let (s, seen) = observe(
            &store,
            signal("key_exposed", json!({}), t0),
            Evidence::Replace,
            t0,
        )
        .unwrap();
        assert_eq!(seen, Seen::New);
        let t1 = t0 + chrono::TimeDelta::minutes(1);
        let (again, seen) = observe(
            &store,
            signal("key_exposed", json!({"n": 2}), t1),
            Evidence::Replace,
            t1,
        )
        .unwrap();
        assert_eq!(seen, Seen::Again);
        assert_eq!(
            (again.times_seen, again.detected_at, again.last_seen),
            (2, t0, t1)
        );
        assert_eq!(again.evidence, json!({"n": 2}));
        // Answered by the policy, then resolved, then found again: open, decided again.
        let handled = Handled {
            action: "escalate".into(),
            rule: "r".into(),
            why: "w".into(),
            at: t1,
            deadline: None,
            reescalated_at: None,
        };
        assert!(mark_handled(&store, &s.dedup_key, handled.clone()).unwrap());
        assert!(
            !mark_handled(&store, &s.dedup_key, handled).unwrap(),
            "the same answer twice"
        );
        let mut stored = store.get_signal(&s.dedup_key).unwrap().unwrap();
        assert!(resolve(&store, &mut stored, t1, ENGINE_ACTOR).unwrap());
        assert!(!resolve(&store, &mut stored, t1, ENGINE_ACTOR).unwrap());
        let (back, seen) = observe(
            &store,
            signal("key_exposed", json!({}), t1),
            Evidence::Replace,
            t1,
        )
        .unwrap();
        assert_eq!(seen, Seen::Reopened);
        assert_eq!(back.state, SignalState::Open);
        assert!(back.handled.is_none());
        assert_eq!(audited(&store), ["new", "resolved", "reopened"]);
    }

    #[test]
    fn places_a_key_was_found_are_merged_and_a_logged_entry_is_kept() {
        let store = MemoryStore::new();
        let now = Utc::now();
        let at = |p: &str| json!({"locations": [{"path": p}], "locations_total": 1});
        let merge = Evidence::MergeLocations { max: 2 };
        observe(&store, signal("key_exposed", at("a"), now), merge, now).unwrap();
        observe(&store, signal("key_exposed", at("b"), now), merge, now).unwrap();
        let (s, _) = observe(&store, signal("key_exposed", at("c"), now), merge, now).unwrap();
        assert_eq!(
            s.evidence["locations"],
            json!([{"path": "a"}, {"path": "b"}]),
            "at most `max` kept"
        );
        let (kept, _) = observe(
            &store,
            signal("key_exposed", at("z"), now),
            Evidence::Keep,
            now,
        )
        .unwrap();
        assert_eq!(kept.evidence["locations"][0]["path"], "a");
        assert_eq!(kept.times_seen, 4);
    }

    #[test]
    fn a_report_of_an_answered_signal_is_new_evidence_and_a_suppression_holds() {
        let store = MemoryStore::new();
        let now = Utc::now();
        let first = report(
            &store,
            signal("key_exposed", json!({}), now),
            Some("ab"),
            now,
            true,
            "alice",
        )
        .unwrap();
        let mut stored = first.clone();
        suppress(
            &store,
            &mut stored,
            now + chrono::TimeDelta::days(1),
            "known",
            "bob",
            now,
        )
        .unwrap();
        // Reported again, unanswered: the same signal, still suppressed.
        let again = report(
            &store,
            signal("key_exposed", json!({}), now),
            Some("ab"),
            now,
            true,
            "carol",
        )
        .unwrap();
        assert_eq!(again.dedup_key, first.dedup_key);
        assert_eq!(again.times_seen, 2);
        assert!(matches!(again.state, SignalState::Suppressed { .. }));
        // Answered by the policy: a new report is new evidence with a key of its own.
        let handled = Handled {
            action: "ignore".into(),
            rule: "r".into(),
            why: "w".into(),
            at: now,
            deadline: None,
            reescalated_at: None,
        };
        mark_handled(&store, &first.dedup_key, handled).unwrap();
        let later = now + chrono::TimeDelta::seconds(1);
        let new = report(
            &store,
            signal("key_exposed", json!({}), later),
            Some("ab"),
            later,
            true,
            "dave",
        )
        .unwrap();
        assert_ne!(new.dedup_key, first.dedup_key);
        assert_eq!(new.state, SignalState::Open);
    }
}
