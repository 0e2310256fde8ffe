//! Weak-parameter detection: key checks (RSA, EC), shared primes across the inventory by
//! batch GCD, and certificate rules (signature algorithm, validity, SANs, expiry).

pub mod batch_gcd;
pub mod cert;
pub mod dsa;
pub mod ec;
pub mod rsa;

use certresponder_inventory::ExpiryThreshold;
use certresponder_inventory::Trust;
use certresponder_inventory::inspect::KeyInfo;

use super::{Confidence, Finding};

/// The `[checks]` table: what the weak-parameter and expiry checks accept.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ChecksConfig {
    /// Smallest acceptable RSA modulus in bits (default 2048, the BR minimum).
    pub rsa_min_bits: usize,
    /// Curves that pass `ec_curve_disallowed` (default P-256, P-384, P-521).
    pub allowed_curves: Vec<String>,
    /// When a certificate counts as expiring, unless its inventory entry says otherwise.
    pub expiring: ExpiryThreshold,
}

impl Default for ChecksConfig {
    fn default() -> Self {
        Self {
            rsa_min_bits: 2048,
            allowed_curves: vec!["P-256".into(), "P-384".into(), "P-521".into()],
            expiring: ExpiryThreshold::default(),
        }
    }
}

/// What the key checks accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPolicy {
    /// Smallest acceptable RSA modulus, in bits (BR: 2048).
    pub rsa_min_bits: usize,
    /// Curves that pass `ec_curve_disallowed`.
    pub allowed_curves: Vec<String>,
    /// Fermat rounds (BR: at least 100).
    pub fermat_rounds: u32,
    /// Also test every RSA modulus (up to 8192 bits) for primality: milliseconds per key
    /// instead of microseconds (see [`rsa::check_rsa_thorough`]). `scan`, new keys and an
    /// `analyze` of up to 1,000 files do.
    pub thorough: bool,
}

impl Default for KeyPolicy {
    fn default() -> Self {
        Self {
            rsa_min_bits: 2048,
            allowed_curves: vec!["P-256".into(), "P-384".into(), "P-521".into()],
            fermat_rounds: 100,
            thorough: false,
        }
    }
}

impl KeyPolicy {
    /// The policy the configuration's `[checks]` table sets.
    pub fn from_checks(checks: &ChecksConfig) -> Self {
        Self {
            rsa_min_bits: checks.rsa_min_bits,
            allowed_curves: checks.allowed_curves.clone(),
            thorough: true,
            ..Self::default()
        }
    }
}

/// The key checks for an entry of `trust`: for a private PKI the rules that exist only in the
/// Baseline Requirements (a modulus size not a multiple of 8, a named curve other than P-256,
/// P-384 and P-521) are low-confidence warnings that imply no revocation; broken keys and
/// explicit curve parameters (CVE-2020-0601) keep their confidence whatever the trust.
pub fn check_key_for(key: &KeyInfo, policy: &KeyPolicy, trust: Trust) -> Vec<Finding> {
    let mut findings = check_key(key, policy);
    if trust == Trust::Private {
        for f in &mut findings {
            let br_only = match f.check {
                "rsa_modulus_not_multiple_of_8" => true,
                "ec_curve_disallowed" => f.evidence["curve"] != ec::EXPLICIT,
                _ => false,
            };
            if br_only && f.confidence > Confidence::Low {
                f.confidence = Confidence::Low;
                f.revocation_reason = None;
                f.deadline_hours = None;
                f.message = format!(
                    "{} (a Baseline Requirements rule; this certificate is privately trusted)",
                    f.message
                );
            }
        }
    }
    findings
}

/// Every key check that applies to `key`.
pub fn check_key(key: &KeyInfo, policy: &KeyPolicy) -> Vec<Finding> {
    match key {
        KeyInfo::Rsa {
            modulus,
            exponent_bytes,
            ..
        } if policy.thorough => rsa::check_rsa_thorough(modulus, exponent_bytes, policy),
        KeyInfo::Rsa {
            modulus,
            exponent_bytes,
            ..
        } => rsa::check_rsa(modulus, exponent_bytes, policy),
        KeyInfo::Ec {
            curve,
            point,
            params,
        } => ec::check_ec_with_params(curve, point, params.as_deref(), policy),
        KeyInfo::Dsa { p, .. } => dsa::check_dsa(p),
        _ => Vec::new(),
    }
}
