//! The finding vocabulary as the policy sees it: every check id, the detector family that
//! raises it, the confidence it usually carries and whether it implies a revocation. The
//! policy uses it to reject unknown names, to tell when `families = ["weak"]` already covers
//! `checks = ["fermat"]`, and to explain a check that has no stored signal yet.

use certresponder_issuers::RevocationReason;

use crate::signals::Confidence;
use crate::signals::Confidence::{Confirmed, High, Low, Medium};
use crate::signals::finding::{KEY_COMPROMISE_HOURS, RULE_VIOLATION_HOURS};

/// Detector families, as stored in [`Signal::family`](crate::signals::Signal::family).
pub const FAMILIES: &[&str] = &["weak", "exposure", "ct", "ca"];

/// RFC 5280 reason names a policy may give a subscriber certificate's revocation
/// (CA/B Forum Baseline Requirements §7.2.2 allows no others).
pub const REASONS: &[&str] = &[
    "unspecified",
    "keyCompromise",
    "affiliationChanged",
    "superseded",
    "cessationOfOperation",
    "privilegeWithdrawn",
];

/// Confidence names, lowest first.
pub const CONFIDENCES: &[&str] = &["low", "medium", "high", "confirmed"];

/// One check of the finding vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckInfo {
    /// Check id.
    pub check: &'static str,
    /// The detector family that raises it.
    pub family: &'static str,
    /// The confidence it usually carries.
    pub confidence: Confidence,
    /// Whether a finding of this check implies revoking the certificate (at medium
    /// confidence or above).
    pub revokes: bool,
}

const fn c(
    check: &'static str,
    family: &'static str,
    confidence: Confidence,
    revokes: bool,
) -> CheckInfo {
    CheckInfo {
        check,
        family,
        confidence,
        revokes,
    }
}

/// Every check id, in the design's order.
pub const CHECKS: &[CheckInfo] = &[
    c("rsa_modulus_small", "weak", High, true),
    c("rsa_modulus_not_multiple_of_8", "weak", High, true),
    c("rsa_exponent_bad", "weak", High, true),
    c("rsa_small_factor", "weak", Confirmed, true),
    c("fermat", "weak", Confirmed, true),
    c("roca", "weak", Confirmed, true),
    c("shared_prime", "weak", Confirmed, true),
    c("rsa_small_d", "weak", Confirmed, true),
    c("rsa_invalid", "weak", High, true),
    c("ec_curve_disallowed", "weak", High, true),
    c("ec_point_invalid", "weak", High, true),
    c("debian_weak_key", "exposure", Confirmed, true),
    c("blocklisted_key", "exposure", Confirmed, true),
    c("signature_algorithm_weak", "weak", High, true),
    c("validity_too_long", "weak", High, true),
    c("missing_san", "weak", High, true),
    c("public_client_auth", "weak", High, true),
    c("expired", "weak", High, false),
    c("expiring", "weak", Medium, false),
    c("key_exposed", "exposure", Confirmed, true),
    c("key_file_permissions", "exposure", Low, false),
    c("ct_unauthorized_issuance", "ct", High, false),
    c("sct_insufficient", "ct", Medium, false),
    c("issuer_distrusted", "ca", High, false),
    c("revoked_at_ca", "ca", Confirmed, false),
    c("renewal_window_open", "ca", High, false),
    c("unparseable", "weak", High, false),
    c("rsa_bias", "weak", Low, false),
    c("rsa_pattern", "weak", Medium, false),
    c("xz_backdoor", "weak", High, true),
    c("dsa_sparse", "weak", Confirmed, true),
    c("encrypted_key_exposed", "exposure", Low, false),
];

/// The vocabulary entry for a check id.
pub fn check_info(check: &str) -> Option<&'static CheckInfo> {
    CHECKS.iter().find(|c| c.check == check)
}

/// Every check id.
pub fn check_names() -> Vec<&'static str> {
    CHECKS.iter().map(|c| c.check).collect()
}

/// The family a check belongs to, if it is in the vocabulary.
pub fn family_of(check: &str) -> Option<&'static str> {
    check_info(check).map(|c| c.family)
}

/// Parses a confidence name.
pub fn parse_confidence(s: &str) -> Option<Confidence> {
    match s {
        "low" => Some(Low),
        "medium" => Some(Medium),
        "high" => Some(High),
        "confirmed" => Some(Confirmed),
        _ => None,
    }
}

/// A confidence's name.
pub fn confidence_name(c: Confidence) -> &'static str {
    match c {
        Low => "low",
        Medium => "medium",
        High => "high",
        Confirmed => "confirmed",
    }
}

/// What a finding of `check` at `confidence` implies when no stored signal says: the
/// revocation reason and the Baseline Requirements deadline in hours (§4.9.1.1). Confirmed
/// findings are key compromise (24 hours); other revoking findings are rule violations
/// (superseded, 5 days); low-confidence findings imply nothing.
pub fn implied(check: &str, confidence: Confidence) -> (Option<RevocationReason>, Option<u32>) {
    match check_info(check) {
        Some(info) if info.revokes && confidence == Confirmed => (
            Some(RevocationReason::KeyCompromise),
            Some(KEY_COMPROMISE_HOURS),
        ),
        Some(info) if info.revokes && confidence >= Medium => (
            Some(RevocationReason::Superseded),
            Some(RULE_VIOLATION_HOURS),
        ),
        _ => (None, None),
    }
}
