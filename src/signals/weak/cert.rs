//! Certificate checks: the Baseline Requirements' rules for publicly trusted subscriber
//! certificates (signature algorithm, maximum validity, subjectAltName) and expiry for every
//! certificate.
//!
//! Which checks apply:
//! - `signature_algorithm_weak`, `validity_too_long` and `missing_san` apply to `public`
//!   entries only (the BRs do not bind an internal PKI; `analyze --trust private` skips
//!   them). `validity_too_long` and `missing_san` are subscriber-certificate rules, so they
//!   also skip CA certificates; a weak signature is reported on any certificate.
//! - `expired` and `expiring` apply to every entry.
//!
//! Confidence:
//! - The three BR rules are violations: high, superseded, 5 days (BR §4.9.1.1: "not issued
//!   in accordance with these Requirements"). None of them exposes the key.
//! - `expired` is high confidence but implies no revocation and no deadline: an expired
//!   certificate is not revoked, it is replaced (the action is a reissue).
//! - `expiring` is medium: the renewal window is open; reissue, no revocation.

use certresponder_inventory::Trust;
use certresponder_inventory::inspect::CertInfo;
use chrono::{DateTime, Duration, Months, TimeZone, Utc};
use serde_json::json;

use crate::signals::{Confidence, Finding};

/// When a certificate counts as expiring.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Expiring {
    /// Within this fraction of its lifetime of the end (1/3: the last third), so that a
    /// 6-day and a 398-day certificate are both renewed in time. Values outside 0..=1 are
    /// clamped; a non-finite value means the default.
    Fraction(f64),
    /// Within this long of the end.
    Fixed(Duration),
}

impl Default for Expiring {
    fn default() -> Self {
        Self::Fraction(DEFAULT_FRACTION)
    }
}

const DEFAULT_FRACTION: f64 = 1.0 / 3.0;

impl From<certresponder_inventory::ExpiryThreshold> for Expiring {
    fn from(t: certresponder_inventory::ExpiryThreshold) -> Self {
        use certresponder_inventory::ExpiryThreshold as T;
        match t {
            T::LifetimePermille(p) => Self::Fraction(f64::from(p) / 1000.0),
            T::Before(secs) => Self::Fixed(Duration::seconds(
                i64::try_from(secs).unwrap_or(i64::MAX / 1000),
            )),
        }
    }
}

/// What the certificate checks accept; set globally or per inventory entry.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CertPolicy {
    /// The expiring threshold.
    pub expiring: Expiring,
}

/// Every certificate check that applies to `cert` under `trust` at `now`.
pub fn check_certificate(
    cert: &CertInfo,
    trust: Trust,
    now: DateTime<Utc>,
    policy: &CertPolicy,
) -> Vec<Finding> {
    let mut out = Vec::new();
    if trust == Trust::Public {
        out.extend(check_signature_algorithm(cert));
        if !cert.is_ca {
            match rule_set(cert) {
                RuleSet::Tls => {
                    out.extend(check_validity(cert));
                    out.extend(check_san(cert));
                    out.extend(check_client_auth(cert));
                }
                RuleSet::Smime => out.extend(check_validity_smime(cert)),
                RuleSet::CodeSigning => out.extend(check_validity_code_signing(cert)),
                RuleSet::Other => {}
            }
        }
    }
    out.extend(check_expiry(cert, now, policy));
    out
}

/// The CA/Browser Forum rule set a publicly trusted subscriber certificate is issued under,
/// by its extended key usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleSet {
    /// The TLS Baseline Requirements: serverAuth, anyExtendedKeyUsage, or no EKU at all.
    Tls,
    /// The S/MIME Baseline Requirements: emailProtection, no serverAuth.
    Smime,
    /// The Code Signing Baseline Requirements: codeSigning, no serverAuth.
    CodeSigning,
    /// None of them (clientAuth alone, time stamping...): no subscriber rule is checked.
    Other,
}

impl RuleSet {
    /// How findings name it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Tls => "TLS Baseline Requirements",
            Self::Smime => "S/MIME Baseline Requirements",
            Self::CodeSigning => "Code Signing Baseline Requirements",
            Self::Other => "none",
        }
    }
}

/// The rule set of `cert`, from its extended key usage.
pub fn rule_set(cert: &CertInfo) -> RuleSet {
    match &cert.ext_key_usage {
        None => RuleSet::Tls,
        Some(e) if e.any || e.server_auth => RuleSet::Tls,
        Some(e) if e.email_protection => RuleSet::Smime,
        Some(e) if e.code_signing => RuleSet::CodeSigning,
        Some(_) => RuleSet::Other,
    }
}

// ---------------------------------------------------------------------------------------
// Chrome Root Program Policy v1.8 §1.3.2: serverAuth-only TLS leaves

/// From this date, Chrome's root program accepts public TLS leaves for serverAuth only.
const SERVER_AUTH_ONLY_FROM: (i32, u32, u32) = (2027, 3, 15);

/// `public_client_auth`: a public TLS leaf that is also for clientAuth. Issued on or after
/// 2027-03-15, Chrome's policy forbids it (high); before, a warning naming the date.
pub fn check_client_auth(cert: &CertInfo) -> Option<Finding> {
    let eku = cert.ext_key_usage.as_ref()?;
    if !eku.client_auth {
        return None;
    }
    let (y, m, d) = SERVER_AUTH_ONLY_FROM;
    let from = date(y, m, d)?;
    let evidence = json!({
        "not_before": cert.not_before.to_rfc3339(),
        "server_auth_only_from": format!("{y:04}-{m:02}-{d:02}"),
        "rule_set": "Chrome Root Program Policy v1.8 §1.3.2",
    });
    if cert.not_before >= from {
        Some(Finding::violation(
            "public_client_auth",
            format!(
                "a public TLS certificate issued on {} is also for clientAuth; Chrome's root program accepts serverAuth-only TLS certificates issued from {y:04}-{m:02}-{d:02} (policy v1.8 §1.3.2)",
                cert.not_before.format("%Y-%m-%d")
            ),
            evidence,
        ))
    } else {
        Some(Finding::warning(
            "public_client_auth",
            format!(
                "a public TLS certificate that is also for clientAuth: from {y:04}-{m:02}-{d:02} Chrome's root program accepts serverAuth-only ones (policy v1.8 §1.3.2); use a private CA for client certificates"
            ),
            evidence,
        ))
    }
}

// ---------------------------------------------------------------------------------------
// Maximum validity under the S/MIME and Code Signing Baseline Requirements

/// S/MIME BRs §6.3.2: subscriber certificates are valid for at most 825 days.
const SMIME_MAX_DAYS: i64 = 825;

/// `validity_too_long` for an S/MIME certificate.
pub fn check_validity_smime(cert: &CertInfo) -> Option<Finding> {
    validity_over(cert, SMIME_MAX_DAYS * DAY, RuleSet::Smime, "§6.3.2", None)
}

/// `validity_too_long` for a code-signing certificate: 460 days from 2026-03-01 (ballot
/// CSC-31), 39 months before.
pub fn check_validity_code_signing(cert: &CertInfo) -> Option<Finding> {
    let from = date(2026, 3, 1)?;
    let (max, rule_date) = if cert.not_before >= from {
        (460 * DAY, Some("2026-03-01"))
    } else {
        let end = cert.not_before.checked_add_months(Months::new(39))?;
        ((end - cert.not_before).num_seconds(), None)
    };
    validity_over(cert, max, RuleSet::CodeSigning, "§6.3.2", rule_date)
}

/// A `validity_too_long` finding when `cert` is valid longer than `max_seconds` under
/// `set`'s section `section`.
fn validity_over(
    cert: &CertInfo,
    max_seconds: i64,
    set: RuleSet,
    section: &str,
    rule_date: Option<&str>,
) -> Option<Finding> {
    let seconds = validity_seconds(cert);
    if seconds <= max_seconds {
        return None;
    }
    let validity_days = seconds.div_euclid(DAY) + i64::from(seconds.rem_euclid(DAY) != 0);
    let maximum_days = max_seconds / DAY;
    let since = rule_date
        .map(|d| format!(" issued from {d}"))
        .unwrap_or_default();
    Some(Finding::violation(
        "validity_too_long",
        format!(
            "valid for {validity_days} days; certificates{since} may be valid for at most {maximum_days} days ({} {section})",
            set.name()
        ),
        json!({
            "validity_days": validity_days,
            "validity_seconds": seconds,
            "maximum_days": maximum_days,
            "rule_set": set.name(),
            "rule_date": rule_date,
            "not_before": cert.not_before.to_rfc3339(),
            "not_after": cert.not_after.to_rfc3339(),
        }),
    ))
}

// ---------------------------------------------------------------------------------------
// Signature algorithm (BR §7.1.3.2)

/// Signature algorithms whose hash is broken: MD2, MD4, MD5, SHA-0 and SHA-1, under their
/// PKCS#1, OIW, DSA and ECDSA OIDs.
const WEAK_SIGNATURES: &[(&str, &str, &str)] = &[
    ("1.2.840.113549.1.1.2", "md2WithRSAEncryption", "MD2"),
    ("1.2.840.113549.1.1.3", "md4WithRSAEncryption", "MD4"),
    ("1.2.840.113549.1.1.4", "md5WithRSAEncryption", "MD5"),
    ("1.2.840.113549.1.1.5", "sha1WithRSAEncryption", "SHA-1"),
    ("1.3.14.3.2.2", "md4WithRSA", "MD4"),
    ("1.3.14.3.2.3", "md5WithRSA", "MD5"),
    ("1.3.14.3.2.4", "md4WithRSAEncryption", "MD4"),
    ("1.3.14.3.2.13", "dsaWithSHA", "SHA-0"),
    ("1.3.14.3.2.15", "shaWithRSASignature", "SHA-0"),
    ("1.3.14.3.2.27", "dsaWithSHA1", "SHA-1"),
    ("1.3.14.3.2.29", "sha1WithRSASignature", "SHA-1"),
    ("1.2.840.10040.4.3", "dsa-with-sha1", "SHA-1"),
    ("1.2.840.10045.4.1", "ecdsa-with-SHA1", "SHA-1"),
];

/// Hash OIDs that may appear in RSASSA-PSS parameters: (OID, name, output length, weak).
const HASHES: &[(&str, &str, u32, bool)] = &[
    ("1.2.840.113549.2.2", "MD2", 16, true),
    ("1.2.840.113549.2.5", "MD5", 16, true),
    ("1.3.14.3.2.26", "SHA-1", 20, true),
    ("2.16.840.1.101.3.4.2.4", "SHA-224", 28, false),
    ("2.16.840.1.101.3.4.2.1", "SHA-256", 32, false),
    ("2.16.840.1.101.3.4.2.2", "SHA-384", 48, false),
    ("2.16.840.1.101.3.4.2.3", "SHA-512", 64, false),
];

const OID_RSA_PSS: &str = "1.2.840.113549.1.1.10";
const OID_MGF1: &str = "1.2.840.113549.1.1.8";

/// The permitted PKCS#1 v1.5 and ECDSA encodings (BR §7.1.3.2.1 and §7.1.3.2.2): the OID
/// and the exact DER `AlgorithmIdentifier`.
const PERMITTED: &[(&str, &[u8])] = &[
    (
        "1.2.840.113549.1.1.11",
        &[
            0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05,
            0x00,
        ],
    ),
    (
        "1.2.840.113549.1.1.12",
        &[
            0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c, 0x05,
            0x00,
        ],
    ),
    (
        "1.2.840.113549.1.1.13",
        &[
            0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d, 0x05,
            0x00,
        ],
    ),
    (
        "1.2.840.10045.4.3.2",
        &[
            0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
        ],
    ),
    (
        "1.2.840.10045.4.3.3",
        &[
            0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03,
        ],
    ),
    (
        "1.2.840.10045.4.3.4",
        &[
            0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04,
        ],
    ),
];

/// The BR §7.1.3.2.1 RSASSA-PSS encoding for SHA-256 (hash and MGF1 hash SHA-256, salt 32);
/// the SHA-384 and SHA-512 ones differ in the two hash OIDs' last arc and the salt.
const PSS_SHA256: [u8; 67] = [
    0x30, 0x41, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a, 0x30, 0x34, 0xa0,
    0x0f, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00,
    0xa1, 0x1c, 0x30, 0x1a, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08, 0x30,
    0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0xa2, 0x03,
    0x02, 0x01, 0x20,
];

/// The permitted PSS encoding for a hash (`2.16.840.1.101.3.4.2.{1,2,3}`) and salt length.
fn pss_encoding(hash_arc: u8, salt: u8) -> [u8; 67] {
    let mut e = PSS_SHA256;
    e[29] = hash_arc;
    e[59] = hash_arc;
    e[66] = salt;
    e
}

/// Why a signature algorithm is refused.
enum Refusal {
    /// A broken hash.
    WeakHash(&'static str),
    /// Not on the BR list (SHA-224, DSA, Ed25519, RIPEMD-160...).
    NotPermitted,
    /// RSASSA-PSS with parameters the BRs do not allow.
    Pss(String),
    /// A permitted algorithm, encoded differently from the BRs' exact bytes.
    Encoding,
}

fn hash_info(oid: &str) -> Option<(&'static str, u32, bool)> {
    HASHES
        .iter()
        .find(|(o, ..)| *o == oid)
        .map(|&(_, name, len, weak)| (name, len, weak))
}

fn judge_pss(cert: &CertInfo) -> Option<Refusal> {
    let Some(pss) = &cert.signature_pss else {
        return Some(Refusal::Pss("parameters missing or malformed".into()));
    };
    let Some((hash, hash_len, weak)) = hash_info(&pss.hash_oid) else {
        return Some(Refusal::NotPermitted);
    };
    if weak {
        return Some(Refusal::WeakHash(hash));
    }
    let arc = match hash {
        "SHA-256" => 1,
        "SHA-384" => 2,
        "SHA-512" => 3,
        _ => return Some(Refusal::NotPermitted),
    };
    if pss.mgf_oid != OID_MGF1 {
        return Some(Refusal::Pss(format!(
            "mask generation function {} is not MGF1",
            pss.mgf_oid
        )));
    }
    if pss.mgf_hash_oid != pss.hash_oid {
        let mgf_hash = hash_info(&pss.mgf_hash_oid).map_or(pss.mgf_hash_oid.as_str(), |h| h.0);
        return Some(Refusal::Pss(format!(
            "MGF1 uses {mgf_hash} while the signature hash is {hash}"
        )));
    }
    if pss.salt_length != hash_len {
        return Some(Refusal::Pss(format!(
            "salt length {} where {hash} requires {hash_len}",
            pss.salt_length
        )));
    }
    if pss.trailer_field != 1 {
        return Some(Refusal::Pss(format!(
            "trailer field {} (must be 1)",
            pss.trailer_field
        )));
    }
    let exact = u8::try_from(hash_len).map(|salt| pss_encoding(arc, salt));
    match exact {
        Ok(e) if cert.signature_algorithm_der.is_empty() || cert.signature_algorithm_der == e => {
            None
        }
        _ => Some(Refusal::Encoding),
    }
}

fn judge(cert: &CertInfo) -> Option<Refusal> {
    let oid = cert.signature_algorithm_oid.as_str();
    if let Some(&(_, _, hash)) = WEAK_SIGNATURES.iter().find(|(o, ..)| *o == oid) {
        return Some(Refusal::WeakHash(hash));
    }
    if oid == OID_RSA_PSS {
        return judge_pss(cert);
    }
    match PERMITTED.iter().find(|(o, _)| *o == oid) {
        None => Some(Refusal::NotPermitted),
        Some((_, exact)) => {
            let der = cert.signature_algorithm_der.as_slice();
            (!der.is_empty() && der != *exact).then_some(Refusal::Encoding)
        }
    }
}

/// `signature_algorithm_weak`: MD2/MD4/MD5/SHA-0/SHA-1 signatures, RSASSA-PSS with other
/// than the BR parameters (hash SHA-256/384/512, MGF1 with the same hash, salt length equal
/// to the hash length, trailer 1), any algorithm outside the BR list, and permitted
/// algorithms whose `AlgorithmIdentifier` is not the exact BR encoding.
pub fn check_signature_algorithm(cert: &CertInfo) -> Option<Finding> {
    let refusal = judge(cert)?;
    // The inspection names what its OID registry knows; the weak table fills the gaps.
    let alg = WEAK_SIGNATURES
        .iter()
        .find(|(o, ..)| *o == cert.signature_algorithm_oid)
        .map_or(cert.signature_algorithm.as_str(), |(_, name, _)| name);
    let (reason, detail, message) = match &refusal {
        Refusal::WeakHash(hash) => (
            "weak_hash",
            (*hash).to_string(),
            format!("signed with {alg}: {hash} signatures are prohibited (BR §7.1.3.2)"),
        ),
        Refusal::NotPermitted => (
            "not_permitted",
            String::new(),
            format!("signed with {alg}, which BR §7.1.3.2 does not permit"),
        ),
        Refusal::Pss(why) => (
            "pss_parameters",
            why.clone(),
            format!("RSASSA-PSS signature with {why} (BR §7.1.3.2.1)"),
        ),
        Refusal::Encoding => (
            "encoding",
            String::new(),
            format!("{alg} AlgorithmIdentifier is not the exact encoding BR §7.1.3.2 requires"),
        ),
    };
    let mut evidence = json!({
        "algorithm": alg,
        "oid": cert.signature_algorithm_oid,
        "reason": reason,
    });
    if let Refusal::WeakHash(hash) = refusal {
        evidence["hash"] = json!(hash);
    } else if !detail.is_empty() {
        evidence["detail"] = json!(detail);
    }
    Some(Finding::violation(
        "signature_algorithm_weak",
        message,
        evidence,
    ))
}

// ---------------------------------------------------------------------------------------
// Validity (BR §6.3.2)

#[derive(Clone, Copy)]
enum Max {
    Days(i64),
    Months(u32),
}

/// The maximum validity in force from each date, newest first: SC-081's schedule, SC-31
/// (398 days from 2020-09-01), ballot 193 (825 days from 2018-03-01), and the BRs' original
/// 39 months (from 2015-04-01) and 60 months (from 2012-07-01). Certificates issued before
/// 2012-07-01 predate the BRs' limit.
const RULES: &[((i32, u32, u32), Max)] = &[
    ((2029, 3, 15), Max::Days(47)),
    ((2027, 3, 15), Max::Days(100)),
    ((2026, 3, 15), Max::Days(200)),
    ((2020, 9, 1), Max::Days(398)),
    ((2018, 3, 1), Max::Days(825)),
    ((2015, 4, 1), Max::Months(39)),
    ((2012, 7, 1), Max::Months(60)),
];

fn date(y: i32, m: u32, d: u32) -> Option<DateTime<Utc>> {
    Utc.with_ymd_and_hms(y, m, d, 0, 0, 0).single()
}

const DAY: i64 = 86_400;

/// The inclusive validity period in seconds (RFC 5280 §4.1.2.5: both ends are part of it).
fn validity_seconds(cert: &CertInfo) -> i64 {
    (cert.not_after - cert.not_before)
        .num_seconds()
        .saturating_add(1)
}

/// `validity_too_long`: the validity period against the BR maximum in force at notBefore.
/// The period is inclusive, a day is 86,400 seconds and any part of a day counts as a day.
pub fn check_validity(cert: &CertInfo) -> Option<Finding> {
    let ((y, m, d), max) = RULES
        .iter()
        .find(|((y, m, d), _)| date(*y, *m, *d).is_some_and(|from| cert.not_before >= from))?;
    let max_seconds = match *max {
        Max::Days(days) => days * DAY,
        Max::Months(months) => {
            let end = cert.not_before.checked_add_months(Months::new(months))?;
            (end - cert.not_before).num_seconds()
        }
    };
    let seconds = validity_seconds(cert);
    if seconds <= max_seconds {
        return None;
    }
    let validity_days = seconds.div_euclid(DAY) + i64::from(seconds.rem_euclid(DAY) != 0);
    let maximum_days = max_seconds / DAY;
    let rule_date = format!("{y:04}-{m:02}-{d:02}");
    Some(Finding::violation(
        "validity_too_long",
        format!(
            "valid for {validity_days} days; certificates issued from {rule_date} may be \
             valid for at most {maximum_days} days (TLS Baseline Requirements §6.3.2)"
        ),
        json!({
            "validity_days": validity_days,
            "validity_seconds": seconds,
            "maximum_days": maximum_days,
            "rule_set": RuleSet::Tls.name(),
            "rule_date": rule_date,
            "not_before": cert.not_before.to_rfc3339(),
            "not_after": cert.not_after.to_rfc3339(),
        }),
    ))
}

// ---------------------------------------------------------------------------------------
// subjectAltName (BR §7.1.2.7.12)

/// `missing_san`: no DNS name and no IP address in subjectAltName.
pub fn check_san(cert: &CertInfo) -> Option<Finding> {
    if !cert.dns_names.is_empty() || !cert.ip_addresses.is_empty() {
        return None;
    }
    Some(Finding::violation(
        "missing_san",
        "no DNS name or IP address in subjectAltName (TLS Baseline Requirements §7.1.2.7.12 require one)",
        json!({ "subject_cns": cert.subject_cns, "rule_set": RuleSet::Tls.name() }),
    ))
}

// ---------------------------------------------------------------------------------------
// Expiry

/// `expired` (after notAfter) or `expiring` (within the policy's threshold of it).
pub fn check_expiry(cert: &CertInfo, now: DateTime<Utc>, policy: &CertPolicy) -> Option<Finding> {
    let left = cert.seconds_left(now);
    let not_after = cert.not_after.to_rfc3339();
    if left < 0 {
        let ago = left.saturating_neg();
        return Some(Finding {
            check: "expired",
            confidence: Confidence::High,
            message: format!("expired {} ({} days ago)", not_after, ago / DAY),
            revocation_reason: None,
            deadline_hours: None,
            evidence: json!({
                "not_after": not_after,
                "expired_seconds": ago,
                "expired_days": ago / DAY,
            }),
        });
    }
    let (threshold, rule) = match policy.expiring {
        Expiring::Fraction(f) => {
            let f = if f.is_finite() {
                f.clamp(0.0, 1.0)
            } else {
                DEFAULT_FRACTION
            };
            let lifetime = validity_seconds(cert).max(0);
            // An f64 holds every lifetime an X.509 date can express to well under a second.
            #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
            let t = (lifetime as f64 * f).ceil() as i64;
            (t, json!({ "fraction": f, "lifetime_seconds": lifetime }))
        }
        Expiring::Fixed(d) => (d.num_seconds(), json!({ "fixed_seconds": d.num_seconds() })),
    };
    if left > threshold {
        return None;
    }
    Some(Finding {
        check: "expiring",
        confidence: Confidence::Medium,
        message: format!(
            "expires {} ({} days left, renewal threshold {} days)",
            not_after,
            left / DAY,
            threshold / DAY
        ),
        revocation_reason: None,
        deadline_hours: None,
        evidence: json!({
            "not_after": not_after,
            "seconds_left": left,
            "days_left": left / DAY,
            "threshold_seconds": threshold,
            "rule": rule,
        }),
    })
}

#[cfg(test)]
mod tests;
