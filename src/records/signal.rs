//! Signals: findings tied to a managed certificate (or a domain, for CT), stored durably and
//! deduplicated, with a state an operator can change (suppress a known false positive).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// How sure a detector is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Confidence {
    /// A warning: worth a look, never acted on automatically.
    Low,
    /// Probably a problem.
    Medium,
    /// A rule violation.
    High,
    /// Proven: the key is factored or known to be broken.
    Confirmed,
}

/// Where a signal stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum SignalState {
    /// Detected and not yet dealt with.
    Open,
    /// Silenced until a date, by a person, for a reason.
    Suppressed {
        /// Until when.
        until: DateTime<Utc>,
        /// Why (a known false positive, an accepted risk).
        reason: String,
        /// Who, as the operating system names them.
        by: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// The finding is gone (the certificate was replaced or fixed).
    Resolved {
        /// When it was last seen absent.
        at: DateTime<Utc>,
    },
}

/// A stored signal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signal {
    /// Short id for the CLI: the first 12 hex digits of the dedup key.
    pub id: String,
    /// Deduplication key: SHA-256 over subject, check and the certificate fingerprint.
    pub dedup_key: String,
    /// The certificate's inventory name, or a domain for CT signals.
    pub subject: String,
    /// Detector family: `weak`, `exposure`, `ct`, `ca`.
    pub family: String,
    /// Check id.
    pub check: String,
    /// Confidence.
    pub confidence: Confidence,
    /// One line for a person.
    pub message: String,
    /// Implied revocation reason (RFC 5280 name).
    pub revocation_reason: Option<String>,
    /// BR deadline in hours.
    pub deadline_hours: Option<u32>,
    /// Structured evidence.
    pub evidence: serde_json::Value,
    /// SHA-256 fingerprint of the certificate it is about, when there is one.
    pub cert_sha256: Option<String>,
    /// What raised it (`scan`, `analyze`, a scanner name).
    pub source: String,
    /// First detection.
    pub detected_at: DateTime<Utc>,
    /// Latest detection.
    pub last_seen: DateTime<Utc>,
    /// How many scans have seen it.
    pub times_seen: u64,
    /// State.
    pub state: SignalState,
    /// The policy answered the signal without a case (escalated to a person, or ignored).
    #[serde(default)]
    pub handled: Option<Handled>,
}

/// How the policy answered a signal that opens no case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handled {
    /// `escalate` or `ignore`.
    pub action: String,
    /// The rule that said so.
    pub rule: String,
    /// Why, in words (for an escalation that could not act: what stopped it).
    pub why: String,
    /// When.
    pub at: DateTime<Utc>,
    /// When the decision's response was due (a revoking action that could not run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<DateTime<Utc>>,
    /// When it was escalated again because that deadline is near (once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reescalated_at: Option<DateTime<Utc>>,
}

impl Signal {
    /// The dedup key for a finding about `subject` (and the certificate it is about).
    pub fn dedup_key(subject: &str, check: &str, cert_sha256: Option<&str>) -> String {
        let mut h = Sha256::new();
        for part in [subject, check, cert_sha256.unwrap_or("")] {
            h.update(part.as_bytes());
            h.update([0]);
        }
        hex::encode(h.finalize())
    }

    /// Whether it is open now (suppression lapses at its date).
    pub fn is_open(&self, now: DateTime<Utc>) -> bool {
        match &self.state {
            SignalState::Open => true,
            SignalState::Suppressed { until, .. } => *until <= now,
            SignalState::Resolved { .. } => false,
        }
    }

    /// The state's name, with suppression lapsed at its date.
    pub fn state_name(&self, now: DateTime<Utc>) -> &'static str {
        match &self.state {
            SignalState::Open => "open",
            SignalState::Suppressed { until, .. } if *until <= now => "open",
            SignalState::Suppressed { .. } => "suppressed",
            SignalState::Resolved { .. } => "resolved",
        }
    }
}
