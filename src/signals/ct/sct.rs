//! Embedded SCTs: parse them, verify each against the configured CT log keys, and count
//! them against the SCT policy, raising `sct_insufficient` when a certificate has too few.
//!
//! Wire formats are [RFC 6962]: the extension 1.3.6.1.4.1.11129.2.4.2 holds an OCTET STRING
//! whose content is a TLS `SignedCertificateTimestampList` (§3.3); each SCT signs the §3.2
//! `digitally-signed` structure over the *precertificate* entry: the SHA-256 of the issuer's
//! SubjectPublicKeyInfo and the TBSCertificate without the SCT list (and poison) extension.
//!
//! The policy is Chrome's and Apple's count: valid SCTs from **distinct logs**, at least 2
//! for a certificate whose lifetime is up to 180 days and 3 beyond, from at least 2
//! **distinct log operators**, and at least one from an **RFC 6962 log**. A log whose
//! operator is not known counts as an operator of its own. When a log list gives the log's
//! state, an SCT counts only from a qualified, usable or read-only log, or from a retired
//! one when it was issued before the retirement. Not checked: SCTs delivered by TLS or
//! OCSP.
//!
//! The caller applies this to `public` inventory certificates only; private-PKI certificates
//! carry no SCTs by design.
//!
//! [RFC 6962]: https://www.rfc-editor.org/rfc/rfc6962

use std::collections::{BTreeSet, HashMap};

use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1, RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey, VerificationAlgorithm,
};
use base64::Engine as _;
use certresponder_inventory::inspect::{der, inspect_certificate_der};
use chrono::{DateTime, Utc};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::tbs::{OID_SCT_LIST, Tbs};
use crate::ct::loglist::ListedState;
use crate::signals::{Confidence, Finding};

/// The check id this module raises.
pub const CHECK: &str = "sct_insufficient";

/// Lifetimes up to this many days need [`MIN_SCTS_SHORT`] SCTs, longer ones [`MIN_SCTS_LONG`].
pub const SHORT_LIFETIME_DAYS: i64 = 180;
/// SCTs required for a certificate valid up to 180 days.
pub const MIN_SCTS_SHORT: usize = 2;
/// SCTs required for a certificate valid longer than 180 days.
pub const MIN_SCTS_LONG: usize = 3;
/// Distinct log operators the valid SCTs must come from.
pub const MIN_OPERATORS: usize = 2;
/// RFC 6962 logs at least one valid SCT must come from.
pub const MIN_RFC6962_LOGS: usize = 1;

/// TLS `HashAlgorithm` sha256 (RFC 5246 §7.4.1.4.1).
pub const HASH_SHA256: u8 = 4;
/// TLS `SignatureAlgorithm` rsa.
pub const SIG_RSA: u8 = 1;
/// TLS `SignatureAlgorithm` ecdsa.
pub const SIG_ECDSA: u8 = 3;

const OID_EC_PUBLIC_KEY: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_RSA: &[u8] = &[
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
];

/// Why the SCTs of a certificate could not be checked at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SctError {
    /// The certificate could not be read.
    #[error("certificate: {0}")]
    Certificate(String),
    /// The issuer certificate could not be read.
    #[error("issuer certificate: {0}")]
    Issuer(String),
    /// The embedded SCT list is malformed.
    #[error("SCT list: {0}")]
    SctList(String),
    /// A configured log key is not a P-256 or RSA SubjectPublicKeyInfo.
    #[error("CT log key: {0}")]
    LogKey(String),
}

/// One SignedCertificateTimestamp (RFC 6962 §3.2), as carried in the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sct {
    /// `sct_version`; only v1 (0) is defined.
    pub version: u8,
    /// The log's id: SHA-256 of its DER SubjectPublicKeyInfo.
    pub log_id: [u8; 32],
    /// Milliseconds since the Unix epoch.
    pub timestamp: u64,
    /// `CtExtensions`, opaque.
    pub extensions: Vec<u8>,
    /// TLS hash algorithm of the signature.
    pub hash_alg: u8,
    /// TLS signature algorithm.
    pub sig_alg: u8,
    /// The signature.
    pub signature: Vec<u8>,
}

/// A cursor over TLS-encoded bytes (big-endian, length-prefixed vectors).
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], SctError> {
        if self.0.len() < n {
            return Err(SctError::SctList("truncated".into()));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn uint(&mut self, n: usize) -> Result<u64, SctError> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }

    /// A vector with an `n`-byte length prefix.
    fn vec(&mut self, n: usize) -> Result<&'a [u8], SctError> {
        let len = usize::try_from(self.uint(n)?)
            .map_err(|_| SctError::SctList("length overflow".into()))?;
        self.take(len)
    }
}

impl Sct {
    /// Parses one serialized SCT.
    pub fn parse(bytes: &[u8]) -> Result<Self, SctError> {
        let mut r = Reader(bytes);
        let version = r.take(1)?[0];
        if version != 0 {
            return Err(SctError::SctList(format!("unknown SCT version {version}")));
        }
        let mut log_id = [0u8; 32];
        log_id.copy_from_slice(r.take(32)?);
        let timestamp = r.uint(8)?;
        let extensions = r.vec(2)?.to_vec();
        let hash_alg = r.take(1)?[0];
        let sig_alg = r.take(1)?[0];
        let signature = r.vec(2)?.to_vec();
        if !r.0.is_empty() {
            return Err(SctError::SctList("trailing bytes after an SCT".into()));
        }
        Ok(Self {
            version,
            log_id,
            timestamp,
            extensions,
            hash_alg,
            sig_alg,
            signature,
        })
    }

    /// The serialized SCT (the inverse of [`Sct::parse`]).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(47 + self.extensions.len() + self.signature.len());
        out.push(self.version);
        out.extend_from_slice(&self.log_id);
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        push_u16_vec(&mut out, &self.extensions);
        out.push(self.hash_alg);
        out.push(self.sig_alg);
        push_u16_vec(&mut out, &self.signature);
        out
    }

    /// When the log saw the certificate.
    pub fn time(&self) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp_millis(i64::try_from(self.timestamp).ok()?)
    }
}

fn push_u16_vec(out: &mut Vec<u8>, bytes: &[u8]) {
    // Proven by callers' inputs: SCT fields are far below 64 KiB; saturate rather than wrap.
    let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&bytes[..usize::from(len)]);
}

/// Parses a TLS `SignedCertificateTimestampList` (RFC 6962 §3.3).
pub fn parse_sct_list(tls: &[u8]) -> Result<Vec<Sct>, SctError> {
    let mut outer = Reader(tls);
    let list = outer.vec(2)?;
    if !outer.0.is_empty() {
        return Err(SctError::SctList("trailing bytes after the list".into()));
    }
    let mut r = Reader(list);
    let mut out = Vec::new();
    while !r.0.is_empty() {
        out.push(Sct::parse(r.vec(2)?)?);
    }
    Ok(out)
}

/// Encodes SCTs as a TLS `SignedCertificateTimestampList`.
pub fn encode_sct_list(scts: &[Sct]) -> Vec<u8> {
    let mut list = Vec::new();
    for sct in scts {
        push_u16_vec(&mut list, &sct.encode());
    }
    let mut out = Vec::with_capacity(list.len() + 2);
    push_u16_vec(&mut out, &list);
    out
}

/// The SCTs embedded in a DER certificate (empty when it has no SCT list extension).
pub fn embedded_scts(cert_der: &[u8]) -> Result<Vec<Sct>, SctError> {
    let tbs = Tbs::parse(cert_der).map_err(SctError::Certificate)?;
    scts_of(&tbs)
}

fn scts_of(tbs: &Tbs<'_>) -> Result<Vec<Sct>, SctError> {
    let mut out = Vec::new();
    for value in tbs
        .extension_values(OID_SCT_LIST)
        .map_err(SctError::Certificate)?
    {
        let (octets, rest) = der::expect_tlv(
            value,
            der::TAG_OCTET_STRING,
            "the SCT list is not an OCTET STRING",
        )
        .map_err(|e| SctError::SctList(e.into()))?;
        if !rest.is_empty() {
            return Err(SctError::SctList(
                "trailing bytes after the OCTET STRING".into(),
            ));
        }
        out.extend(parse_sct_list(octets.content)?);
    }
    Ok(out)
}

/// The RFC 6962 §3.2 data an SCT over a precertificate entry signs.
pub fn precert_signed_data(
    sct: &Sct,
    issuer_key_hash: &[u8; 32],
    tbs_without_ct: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(tbs_without_ct.len() + sct.extensions.len() + 50);
    out.push(sct.version);
    out.push(0); // signature_type = certificate_timestamp
    out.extend_from_slice(&sct.timestamp.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes()); // entry_type = precert_entry
    out.extend_from_slice(issuer_key_hash);
    // opaque tbs_certificate<1..2^24-1>: a 24-bit length.
    let len = u32::try_from(tbs_without_ct.len())
        .unwrap_or(u32::MAX)
        .to_be_bytes();
    out.extend_from_slice(&len[1..]);
    out.extend_from_slice(tbs_without_ct);
    push_u16_vec(&mut out, &sct.extensions);
    out
}

/// A CT log's verification key.
#[derive(Debug, Clone)]
struct LogKey {
    sig_alg: u8,
    /// The EC point or the PKCS#1 RSAPublicKey.
    key: Vec<u8>,
    /// What else is known of the log.
    meta: LogMeta,
}

/// What is known of a log besides its key: from a log list or its `[[ct_log]]` table.
#[derive(Debug, Clone)]
pub struct LogMeta {
    /// Who operates it, when known.
    pub operator: Option<String>,
    /// Whether it is an RFC 6962 log (rather than a static-ct-api one).
    pub rfc6962: bool,
    /// Its state in a log list, and since when.
    pub state: Option<(ListedState, DateTime<Utc>)>,
}

impl Default for LogMeta {
    /// An RFC 6962 log of unknown operator and state.
    fn default() -> Self {
        Self {
            operator: None,
            rfc6962: true,
            state: None,
        }
    }
}

/// The configured CT logs' public keys, by log id.
#[derive(Debug, Clone, Default)]
pub struct LogKeys {
    keys: HashMap<[u8; 32], LogKey>,
}

impl LogKeys {
    /// No logs.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a log by its DER SubjectPublicKeyInfo (the `key` of a log list, base64-decoded);
    /// returns its log id. Accepts ECDSA P-256 and RSA keys, the two RFC 6962 allows.
    pub fn add_spki(&mut self, spki_der: &[u8]) -> Result<[u8; 32], SctError> {
        let bad = |m: &str| SctError::LogKey(m.to_string());
        let (spki, rest) =
            der::expect_tlv(spki_der, der::TAG_SEQUENCE, "not a SEQUENCE").map_err(bad)?;
        if !rest.is_empty() {
            return Err(bad("trailing bytes"));
        }
        let (alg, rest) =
            der::expect_tlv(spki.content, der::TAG_SEQUENCE, "no AlgorithmIdentifier")
                .map_err(bad)?;
        let (bits, _) = der::expect_tlv(rest, der::TAG_BIT_STRING, "no BIT STRING").map_err(bad)?;
        let key = match bits.content.split_first() {
            Some((0, key)) => key.to_vec(),
            _ => return Err(bad("the key BIT STRING has unused bits")),
        };
        let sig_alg = if alg.content == [OID_EC_PUBLIC_KEY, OID_P256].concat() {
            SIG_ECDSA
        } else if alg.content.starts_with(OID_RSA) {
            SIG_RSA
        } else {
            return Err(bad("not an ECDSA P-256 or RSA key"));
        };
        let id: [u8; 32] = Sha256::digest(spki_der).into();
        self.keys.insert(
            id,
            LogKey {
                sig_alg,
                key,
                meta: LogMeta::default(),
            },
        );
        Ok(id)
    }

    /// Adds a log with what is known of it. Adding a log already known keeps its operator
    /// and state where `meta` has none.
    pub fn add_log(&mut self, spki_der: &[u8], meta: LogMeta) -> Result<[u8; 32], SctError> {
        let known: [u8; 32] = Sha256::digest(spki_der).into();
        let before = self.keys.get(&known).map(|k| k.meta.clone());
        let id = self.add_spki(spki_der)?;
        if let Some(k) = self.keys.get_mut(&id) {
            let before = before.unwrap_or_default();
            k.meta = LogMeta {
                operator: meta
                    .operator
                    .map(|o| o.trim().to_lowercase())
                    .filter(|o| !o.is_empty())
                    .or(before.operator),
                rfc6962: meta.rfc6962,
                state: meta.state.or(before.state),
            };
        }
        Ok(id)
    }

    /// [`LogKeys::add_spki`] for a log run by `operator` (as log lists name operators;
    /// compared without regard to case or surrounding space).
    pub fn add_operated(
        &mut self,
        spki_der: &[u8],
        operator: Option<&str>,
    ) -> Result<[u8; 32], SctError> {
        self.add_log(
            spki_der,
            LogMeta {
                operator: operator.map(str::to_string),
                ..LogMeta::default()
            },
        )
    }

    /// Who operates log `id`: its configured operator, else the log itself.
    fn operator(&self, id: &[u8; 32]) -> String {
        self.keys
            .get(id)
            .and_then(|k| k.meta.operator.clone())
            .unwrap_or_else(|| format!("log:{}", hex::encode(id)))
    }

    /// Number of logs.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no log is configured.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Verifies one SCT's signature over `signed_data`.
    fn verify(&self, sct: &Sct, signed_data: &[u8]) -> SctStatus {
        let Some(log) = self.keys.get(&sct.log_id) else {
            return SctStatus::UnknownLog;
        };
        if sct.hash_alg != HASH_SHA256 || sct.sig_alg != log.sig_alg {
            return SctStatus::Invalid(format!(
                "algorithm hash={} sig={} does not match the log key",
                sct.hash_alg, sct.sig_alg
            ));
        }
        let alg: &'static dyn VerificationAlgorithm = if log.sig_alg == SIG_ECDSA {
            &ECDSA_P256_SHA256_ASN1
        } else {
            &RSA_PKCS1_2048_8192_SHA256
        };
        if UnparsedPublicKey::new(alg, &log.key)
            .verify(signed_data, &sct.signature)
            .is_err()
        {
            return SctStatus::Invalid("bad signature".into());
        }
        match log.meta.state {
            Some((state @ (ListedState::Pending | ListedState::Rejected), _)) => {
                SctStatus::NotAcceptable(format!("the log is {} in the log list", state.name()))
            }
            Some((ListedState::Retired, since)) if sct.time().is_none_or(|t| t >= since) => {
                SctStatus::NotAcceptable(format!(
                    "issued {}, not before the log retired at {}",
                    sct.time().map_or_else(
                        || "at an unreadable time".into(),
                        |t| format!("at {}", t.to_rfc3339())
                    ),
                    since.to_rfc3339()
                ))
            }
            _ => SctStatus::Valid,
        }
    }

    /// Whether log `id` is an RFC 6962 log.
    fn rfc6962(&self, id: &[u8; 32]) -> bool {
        self.keys.get(id).is_some_and(|k| k.meta.rfc6962)
    }
}

/// The outcome for one SCT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SctStatus {
    /// The signature verifies with the log's key.
    Valid,
    /// The log is known but the SCT does not verify; the reason.
    Invalid(String),
    /// No configured log has this id.
    UnknownLog,
    /// The signature verifies, but the log list says the log's SCTs do not count (then).
    NotAcceptable(String),
}

/// One SCT and its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SctVerdict {
    /// The SCT.
    pub sct: Sct,
    /// Its outcome.
    pub status: SctStatus,
}

/// The SCT check of one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SctReport {
    /// Every embedded SCT, in certificate order.
    pub scts: Vec<SctVerdict>,
    /// Distinct logs with at least one valid SCT.
    pub valid_logs: usize,
    /// Distinct operators of those logs (a log without a configured operator is its own).
    pub valid_operators: usize,
    /// Those logs that are RFC 6962 logs.
    pub rfc6962_logs: usize,
    /// How many the policy requires for this certificate's lifetime.
    pub required: usize,
    /// The certificate's lifetime (notAfter − notBefore) in whole days.
    pub lifetime_days: i64,
}

/// SCTs required for a certificate valid from `not_before` to `not_after`.
pub fn required_scts(not_before: DateTime<Utc>, not_after: DateTime<Utc>) -> usize {
    let lifetime = not_after - not_before;
    if lifetime <= chrono::Duration::days(SHORT_LIFETIME_DAYS) {
        MIN_SCTS_SHORT
    } else {
        MIN_SCTS_LONG
    }
}

/// Checks the embedded SCTs of `cert_der`, issued by `issuer_der` (the next certificate of
/// the deployed chain), against `logs`.
pub fn check_scts(
    cert_der: &[u8],
    issuer_der: &[u8],
    logs: &LogKeys,
) -> Result<SctReport, SctError> {
    let tbs = Tbs::parse(cert_der).map_err(SctError::Certificate)?;
    let issuer = Tbs::parse(issuer_der).map_err(SctError::Issuer)?;
    // Read the SCTs first: x509-parser rejects a certificate with a malformed list, and the
    // SCT error says more.
    let embedded = scts_of(&tbs)?;
    let info =
        inspect_certificate_der(cert_der).map_err(|e| SctError::Certificate(e.to_string()))?;
    let issuer_key_hash: [u8; 32] = Sha256::digest(issuer.spki().raw).into();
    let tbs_without_ct = tbs.without_ct_extensions();
    let mut valid = BTreeSet::new();
    let mut scts = Vec::new();
    for sct in embedded {
        let status = logs.verify(
            &sct,
            &precert_signed_data(&sct, &issuer_key_hash, &tbs_without_ct),
        );
        if status == SctStatus::Valid {
            valid.insert(sct.log_id);
        }
        scts.push(SctVerdict { sct, status });
    }
    let operators: BTreeSet<String> = valid.iter().map(|id| logs.operator(id)).collect();
    Ok(SctReport {
        scts,
        valid_logs: valid.len(),
        valid_operators: operators.len(),
        rfc6962_logs: valid.iter().filter(|id| logs.rfc6962(id)).count(),
        required: required_scts(info.not_before, info.not_after),
        lifetime_days: (info.not_after - info.not_before).num_days(),
    })
}

impl SctReport {
    /// Whether the certificate meets the policy.
    pub fn sufficient(&self) -> bool {
        self.valid_logs >= self.required
            && self.valid_operators >= MIN_OPERATORS
            && self.rfc6962_logs >= MIN_RFC6962_LOGS
    }

    /// The `sct_insufficient` finding when the certificate has too few valid SCTs: medium
    /// confidence, no revocation implied (browsers reject the certificate, which is an
    /// outage to fix by reissuing, not a compromise).
    pub fn finding(&self) -> Option<Finding> {
        if self.sufficient() {
            return None;
        }
        let scts: Vec<serde_json::Value> = self
            .scts
            .iter()
            .map(|v| {
                let (status, reason) = match &v.status {
                    SctStatus::Valid => ("valid", None),
                    SctStatus::Invalid(r) => ("invalid", Some(r.as_str())),
                    SctStatus::UnknownLog => ("unknown_log", None),
                    SctStatus::NotAcceptable(r) => ("not_acceptable", Some(r.as_str())),
                };
                json!({
                    "log_id": hex::encode(v.sct.log_id),
                    // As log lists write it.
                    "log_id_base64": base64::engine::general_purpose::STANDARD.encode(v.sct.log_id),
                    "timestamp": v.sct.time().map(|t| t.to_rfc3339()),
                    "status": status,
                    "reason": reason,
                })
            })
            .collect();
        Some(Finding {
            check: CHECK,
            confidence: Confidence::Medium,
            message: if self.valid_logs >= self.required && self.valid_operators < MIN_OPERATORS {
                format!(
                    "{} valid SCT(s) from distinct logs, but from {} log operator(s); at least {MIN_OPERATORS} required",
                    self.valid_logs, self.valid_operators
                )
            } else if self.valid_logs >= self.required {
                format!(
                    "{} valid SCT(s) from distinct logs, but none from an RFC 6962 log; at least {MIN_RFC6962_LOGS} required",
                    self.valid_logs
                )
            } else {
                format!(
                    "{} valid SCT(s) from distinct logs, {} required for a {}-day certificate",
                    self.valid_logs, self.required, self.lifetime_days
                )
            },
            revocation_reason: None,
            deadline_hours: None,
            evidence: json!({
                "valid_logs": self.valid_logs,
                "valid_operators": self.valid_operators,
                "required": self.required,
                "required_operators": MIN_OPERATORS,
                "rfc6962_logs": self.rfc6962_logs,
                "lifetime_days": self.lifetime_days,
                "scts": scts,
            }),
        })
    }
}
