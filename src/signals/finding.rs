//! Findings: what a detector reports about one key or certificate, in the shared vocabulary
//! of check ids (see the design's finding vocabulary), with the confidence, the revocation
//! reason it implies and the Baseline Requirements deadline.

use certresponder_issuers::RevocationReason;
use serde::Serialize;

pub use crate::records::signal::Confidence;

/// One finding.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// Check id from the finding vocabulary (`fermat`, `rsa_modulus_small`, ...).
    pub check: &'static str,
    /// Confidence.
    pub confidence: Confidence,
    /// One line for a person.
    pub message: String,
    /// The RFC 5280 reason a revocation for this finding would carry.
    pub revocation_reason: Option<RevocationReason>,
    /// The Baseline Requirements deadline (§4.9.1.1) in hours: 24 for keys known or shown to
    /// be compromised, 120 (5 days) for other weak parameters and rule violations.
    pub deadline_hours: Option<u32>,
    /// Structured evidence: sizes, bit lengths, dates. Never a private value.
    pub evidence: serde_json::Value,
}

/// A finding as read back (from another process): its check id is looked up in the finding
/// vocabulary, and any other name is refused.
#[derive(serde::Deserialize)]
struct FindingRead {
    check: String,
    confidence: Confidence,
    message: String,
    revocation_reason: Option<RevocationReason>,
    deadline_hours: Option<u32>,
    evidence: serde_json::Value,
}

impl<'de> serde::Deserialize<'de> for Finding {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::try_from(FindingRead::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl TryFrom<FindingRead> for Finding {
    type Error = String;

    fn try_from(f: FindingRead) -> Result<Self, String> {
        let check = crate::policy::vocab::check_info(&f.check)
            .map(|c| c.check)
            .ok_or_else(|| format!("`{}` is not a check of the finding vocabulary", f.check))?;
        Ok(Self {
            check,
            confidence: f.confidence,
            message: f.message,
            revocation_reason: f.revocation_reason,
            deadline_hours: f.deadline_hours,
            evidence: f.evidence,
        })
    }
}

/// BR §4.9.1.1: revoke within 24 hours when the key is known or shown to be compromised.
pub const KEY_COMPROMISE_HOURS: u32 = 24;
/// BR §4.9.1.1: revoke within 5 days for other weak parameters and rule violations.
pub const RULE_VIOLATION_HOURS: u32 = 120;

impl Finding {
    /// A factorable or known-broken key: confirmed, keyCompromise, 24 hours.
    pub fn compromised(
        check: &'static str,
        message: impl Into<String>,
        evidence: serde_json::Value,
    ) -> Self {
        Self {
            check,
            confidence: Confidence::Confirmed,
            message: message.into(),
            revocation_reason: Some(RevocationReason::KeyCompromise),
            deadline_hours: Some(KEY_COMPROMISE_HOURS),
            evidence,
        }
    }

    /// A rule violation (weak parameters, over-long validity): high, superseded, 5 days.
    pub fn violation(
        check: &'static str,
        message: impl Into<String>,
        evidence: serde_json::Value,
    ) -> Self {
        Self {
            check,
            confidence: Confidence::High,
            message: message.into(),
            revocation_reason: Some(RevocationReason::Superseded),
            deadline_hours: Some(RULE_VIOLATION_HOURS),
            evidence,
        }
    }

    /// A warning: low confidence, no revocation implied.
    pub fn warning(
        check: &'static str,
        message: impl Into<String>,
        evidence: serde_json::Value,
    ) -> Self {
        Self {
            check,
            confidence: Confidence::Low,
            message: message.into(),
            revocation_reason: None,
            deadline_hours: None,
            evidence,
        }
    }
}

impl crate::records::signal::Signal {
    /// A new open signal from a finding.
    pub fn from_finding(
        subject: &str,
        family: &str,
        finding: &Finding,
        cert_sha256: Option<&str>,
        source: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Self {
        let dedup_key = Self::dedup_key(subject, finding.check, cert_sha256);
        Self {
            id: dedup_key[..12].to_string(),
            dedup_key,
            subject: subject.to_string(),
            family: family.to_string(),
            check: finding.check.to_string(),
            confidence: finding.confidence,
            message: finding.message.clone(),
            revocation_reason: finding.revocation_reason.map(|r| r.name().to_string()),
            deadline_hours: finding.deadline_hours,
            evidence: finding.evidence.clone(),
            cert_sha256: cert_sha256.map(str::to_string),
            source: source.to_string(),
            detected_at: now,
            last_seen: now,
            times_seen: 1,
            state: crate::records::signal::SignalState::Open,
            handled: None,
        }
    }
}
