//! The built-in response to stored signals, used by `certresponder respond` until a policy
//! file says otherwise. It follows the Baseline Requirements' split:
//!
//! | signals on a certificate | action |
//! |---|---|
//! | a confirmed finding implying keyCompromise (`key_exposed`, `fermat`, `roca`, ...) | `revoke_reissue`, keyCompromise |
//! | a high or medium finding implying revocation (weak parameters, rule violations) | `revoke_reissue`, superseded (or the finding's reason) |
//! | `expiring`, `expired`, `renewal_window_open` | `reissue` (no revocation) |
//! | anything else (low confidence, CT, permissions) | `escalate`: shown, never acted on |
//!
//! The strongest applicable row wins; one case answers every signal of a certificate.

use certresponder_issuers::RevocationReason;
use serde::Serialize;

use super::case::SequenceKind;
use crate::signals::{Confidence, Signal};

/// Checks whose answer is a plain reissue.
pub const RENEWAL_CHECKS: &[&str] = &["expiring", "expired", "renewal_window_open"];

/// What to do about a certificate's open signals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// `revoke_reissue`, `reissue`, `revoke`, or `None` for escalate (tell a person).
    pub action: Option<SequenceKind>,
    /// The revocation reason, for actions that revoke.
    pub reason: Option<RevocationReason>,
    /// Why, in words.
    pub why: String,
    /// Dedup keys of the signals the decision answers.
    pub signals: Vec<String>,
}

/// The built-in decision for one certificate's open signals.
pub fn decide(signals: &[&Signal]) -> Decision {
    let keys = signals.iter().map(|s| s.dedup_key.clone()).collect();
    let reason_of = |s: &Signal| {
        s.revocation_reason
            .as_deref()
            .and_then(RevocationReason::parse)
    };
    let compromise = signals.iter().find(|s| {
        s.confidence == Confidence::Confirmed
            && reason_of(s) == Some(RevocationReason::KeyCompromise)
    });
    if let Some(s) = compromise {
        return Decision {
            action: Some(SequenceKind::RevokeReissue),
            reason: Some(RevocationReason::KeyCompromise),
            why: format!("{}: {} (key compromise)", s.check, s.message),
            signals: keys,
        };
    }
    let violation = signals.iter().find(|s| {
        s.confidence >= Confidence::Medium
            && reason_of(s).is_some()
            && !RENEWAL_CHECKS.contains(&s.check.as_str())
    });
    if let Some(s) = violation {
        return Decision {
            action: Some(SequenceKind::RevokeReissue),
            reason: Some(reason_of(s).unwrap_or(RevocationReason::Superseded)),
            why: format!("{}: {}", s.check, s.message),
            signals: keys,
        };
    }
    if let Some(s) = signals
        .iter()
        .find(|s| RENEWAL_CHECKS.contains(&s.check.as_str()))
    {
        return Decision {
            action: Some(SequenceKind::Reissue),
            reason: None,
            why: format!("{}: {}", s.check, s.message),
            signals: keys,
        };
    }
    Decision {
        action: None,
        reason: None,
        why: signals
            .iter()
            .map(|s| format!("{} ({:?})", s.check, s.confidence).to_lowercase())
            .collect::<Vec<_>>()
            .join(", "),
        signals: keys,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signals::Finding;
    use chrono::Utc;
    use serde_json::json;

    fn sig(f: Finding) -> Signal {
        Signal::from_finding("web", "weak", &f, Some("fp"), "scan", Utc::now())
    }

    #[test]
    fn strongest_signal_wins() {
        let fermat = sig(Finding::compromised("fermat", "close primes", json!({})));
        let small = sig(Finding::violation(
            "rsa_modulus_small",
            "1024 bits",
            json!({}),
        ));
        let expiring = sig(Finding::warning("expiring", "soon", json!({})));
        let perms = sig(Finding::warning("key_file_permissions", "0644", json!({})));

        let d = decide(&[&expiring, &small, &fermat]);
        assert_eq!(d.action, Some(SequenceKind::RevokeReissue));
        assert_eq!(d.reason, Some(RevocationReason::KeyCompromise));
        assert_eq!(d.signals.len(), 3);

        let d = decide(&[&expiring, &small]);
        assert_eq!(d.action, Some(SequenceKind::RevokeReissue));
        assert_eq!(d.reason, Some(RevocationReason::Superseded));

        let d = decide(&[&expiring, &perms]);
        assert_eq!(d.action, Some(SequenceKind::Reissue));
        assert_eq!(d.reason, None);

        let d = decide(&[&perms]);
        assert_eq!(
            d.action, None,
            "low confidence is escalated, never acted on"
        );
    }
}
