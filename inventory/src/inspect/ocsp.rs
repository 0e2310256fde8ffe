//! OCSP (RFC 6960) for the `revoked_at_ca` detector: the request for one certificate, and
//! the reading of the responder's answer, checked before anything in it is believed.
//!
//! The request names the certificate by its CertID (SHA-1 hashes of the issuer's name and
//! key, as responders expect, and the serial number). An answer is believed only when:
//! - its status is `successful` and it is a `BasicOCSPResponse`;
//! - it signs its ResponseData with the issuing CA's key, or with the key of a delegated
//!   responder certificate it carries, which the issuing CA signed and which has the
//!   `id-kp-OCSPSigning` extended key usage (RFC 6960 §4.2.2.2);
//! - it holds a SingleResponse for exactly this CertID.

use aws_lc_rs::digest::{self, SHA1_FOR_LEGACY_USE_ONLY, SHA256};
use chrono::{DateTime, NaiveDateTime, Utc};
use x509_parser::asn1_rs::{BitString, FromDer as _};
use x509_parser::certificate::X509Certificate;
use x509_parser::x509::AlgorithmIdentifier;

use super::der::{self, TAG_INTEGER, TAG_OCTET_STRING, TAG_OID, TAG_SEQUENCE, Tlv};
use super::error::InspectError;

/// id-sha1, 1.3.14.3.2.26 (content octets).
const OID_SHA1: &[u8] = &[0x2b, 0x0e, 0x03, 0x02, 0x1a];
/// id-sha256, 2.16.840.1.101.3.4.2.1 (content octets).
const OID_SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
/// id-pkix-ocsp-basic, 1.3.6.1.5.5.7.48.1.1 (content octets).
const OID_OCSP_BASIC: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x01];
/// id-kp-OCSPSigning, 1.3.6.1.5.5.7.3.9.
const OID_KP_OCSP_SIGNING: &str = "1.3.6.1.5.5.7.3.9";

/// ENUMERATED.
const TAG_ENUMERATED: u8 = 0x0a;
/// GeneralizedTime.
const TAG_GENERALIZED_TIME: u8 = 0x18;
/// NULL.
const TAG_NULL: u8 = 0x05;

/// What the responder says of the certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OcspCertStatus {
    /// Not revoked.
    Good,
    /// Revoked at `at`, for the CRLReason code `reason` when given.
    Revoked {
        /// When.
        at: DateTime<Utc>,
        /// The CRLReason code.
        reason: Option<u8>,
    },
    /// The responder does not know the certificate.
    Unknown,
}

/// A verified answer about one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OcspAnswer {
    /// The certificate's status.
    pub status: OcspCertStatus,
    /// When the status was known to be correct.
    pub this_update: DateTime<Utc>,
    /// When newer information will be available, if the responder says.
    pub next_update: Option<DateTime<Utc>>,
    /// When the responder signed the answer.
    pub produced_at: DateTime<Utc>,
    /// Who signed it: the issuing CA, or the subject of the delegated responder certificate.
    pub signer: String,
}

/// Why an OCSP answer is not believed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OcspProblem {
    /// The responder answered with an error status instead of a response.
    #[error("the responder answered `{0}`")]
    NotSuccessful(&'static str),
    /// The answer is not a well-formed OCSP response.
    #[error("the answer is not an OCSP response: {0}")]
    Unparseable(String),
    /// The signature is not the issuing CA's nor an authorized responder's.
    #[error("rejected, not trusted: {0}")]
    Untrusted(String),
    /// The answer says nothing about this certificate.
    #[error("the answer has no status for this certificate (serial {0})")]
    NotAnswered(String),
}

fn unparseable(e: impl std::fmt::Display) -> OcspProblem {
    OcspProblem::Unparseable(e.to_string())
}

/// The CertID of a certificate: its issuer's name and key hashes and its serial.
struct CertId {
    name_hash: Vec<u8>,
    key_hash: Vec<u8>,
    serial: Vec<u8>,
}

impl CertId {
    /// The CertID of `leaf` issued by `issuer`, hashed with `alg` (SHA-1 or SHA-256).
    fn new(
        leaf: &X509Certificate<'_>,
        issuer: &X509Certificate<'_>,
        alg: &'static digest::Algorithm,
    ) -> Self {
        Self {
            // The issuer's DN as the certificate carries it (RFC 6960 §4.1.1).
            name_hash: digest::digest(alg, leaf.issuer().as_raw())
                .as_ref()
                .to_vec(),
            // The issuer's subjectPublicKey BIT STRING value, without tag, length and the
            // unused-bits octet.
            key_hash: digest::digest(alg, &issuer.public_key().subject_public_key.data)
                .as_ref()
                .to_vec(),
            serial: leaf.raw_serial().to_vec(),
        }
    }
}

fn parse_pair<'a>(
    leaf_der: &'a [u8],
    issuer_der: &'a [u8],
) -> Result<(X509Certificate<'a>, X509Certificate<'a>), InspectError> {
    let (_, leaf) = X509Certificate::from_der(leaf_der)
        .map_err(|e| InspectError::unparseable("certificate", format!("{e}")))?;
    let (_, issuer) = X509Certificate::from_der(issuer_der)
        .map_err(|e| InspectError::unparseable("certificate", format!("{e}")))?;
    Ok((leaf, issuer))
}

/// The DER OCSPRequest (RFC 6960 §4.1.1) asking about `leaf_der`, issued by `issuer_der`:
/// one Request with a SHA-1 CertID, no nonce and no signature.
pub fn ocsp_request(leaf_der: &[u8], issuer_der: &[u8]) -> Result<Vec<u8>, InspectError> {
    let (leaf, issuer) = parse_pair(leaf_der, issuer_der)?;
    let id = CertId::new(&leaf, &issuer, &SHA1_FOR_LEGACY_USE_ONLY);
    let alg = der::encode(
        TAG_SEQUENCE,
        &[der::encode(TAG_OID, OID_SHA1), der::encode(TAG_NULL, &[])].concat(),
    );
    let cert_id = der::encode(
        TAG_SEQUENCE,
        &[
            alg,
            der::encode(TAG_OCTET_STRING, &id.name_hash),
            der::encode(TAG_OCTET_STRING, &id.key_hash),
            der::encode(TAG_INTEGER, &id.serial),
        ]
        .concat(),
    );
    let request = der::encode(TAG_SEQUENCE, &cert_id);
    let request_list = der::encode(TAG_SEQUENCE, &request);
    let tbs_request = der::encode(TAG_SEQUENCE, &request_list);
    Ok(der::encode(TAG_SEQUENCE, &tbs_request))
}

/// The name of an OCSPResponseStatus.
fn status_name(code: u8) -> &'static str {
    match code {
        1 => "malformedRequest",
        2 => "internalError",
        3 => "tryLater",
        5 => "sigRequired",
        6 => "unauthorized",
        _ => "an unknown status",
    }
}

/// A GeneralizedTime: `YYYYMMDDHHMMSS[.fff]Z`.
fn generalized_time(t: &Tlv<'_>) -> Result<DateTime<Utc>, OcspProblem> {
    if t.tag != TAG_GENERALIZED_TIME {
        return Err(unparseable("expected a GeneralizedTime"));
    }
    let s = std::str::from_utf8(t.content).map_err(unparseable)?;
    let s = s
        .strip_suffix('Z')
        .ok_or_else(|| unparseable(format!("the time `{s}` is not in UTC")))?;
    let whole = s.split('.').next().unwrap_or(s);
    NaiveDateTime::parse_from_str(whole, "%Y%m%d%H%M%S")
        .map(|n| n.and_utc())
        .map_err(|e| unparseable(format!("the time `{s}Z`: {e}")))
}

/// One SingleResponse, read.
struct Single<'a> {
    hash_alg: &'a [u8],
    name_hash: &'a [u8],
    key_hash: &'a [u8],
    serial: &'a [u8],
    status: OcspCertStatus,
    this_update: DateTime<Utc>,
    next_update: Option<DateTime<Utc>>,
}

fn single(content: &[u8]) -> Result<Single<'_>, OcspProblem> {
    let parts = der::children(content).map_err(unparseable)?;
    let [cert_id, status, this_update, rest @ ..] = parts.as_slice() else {
        return Err(unparseable("a SingleResponse is too short"));
    };
    let id = der::children(cert_id.content).map_err(unparseable)?;
    let [alg, name_hash, key_hash, serial] = id.as_slice() else {
        return Err(unparseable("a CertID does not have four fields"));
    };
    let (alg_oid, _) =
        der::expect_tlv(alg.content, TAG_OID, "a CertID hash algorithm").map_err(unparseable)?;
    let status = match status.tag {
        0x80 => OcspCertStatus::Good,
        0x82 => OcspCertStatus::Unknown,
        0xa1 => {
            let info = der::children(status.content).map_err(unparseable)?;
            let at = generalized_time(
                info.first()
                    .ok_or_else(|| unparseable("RevokedInfo without a time"))?,
            )?;
            let reason = match info.get(1) {
                Some(r) if r.tag == 0xa0 => {
                    let (e, _) = der::expect_tlv(r.content, TAG_ENUMERATED, "a CRLReason")
                        .map_err(unparseable)?;
                    e.content.last().copied()
                }
                _ => None,
            };
            OcspCertStatus::Revoked { at, reason }
        }
        other => return Err(unparseable(format!("unknown certStatus tag {other:#04x}"))),
    };
    let next_update = match rest.first() {
        Some(t) if t.tag == 0xa0 => {
            let (inner, _) = der::read_tlv(t.content).map_err(unparseable)?;
            Some(generalized_time(&inner)?)
        }
        _ => None,
    };
    Ok(Single {
        hash_alg: alg_oid.content,
        name_hash: name_hash.content,
        key_hash: key_hash.content,
        serial: serial.content,
        status,
        this_update: generalized_time(this_update)?,
        next_update,
    })
}

/// Whether `data` carries the signature `sig` (with `alg`, both raw DER) by `signer`'s key.
fn signed_by(data: &[u8], alg: &[u8], sig: &[u8], signer: &X509Certificate<'_>) -> bool {
    let Ok((_, alg)) = AlgorithmIdentifier::from_der(alg) else {
        return false;
    };
    let Ok((_, sig)) = BitString::from_der(sig) else {
        return false;
    };
    x509_parser::verify::verify_signature(signer.public_key(), &alg, &sig, data).is_ok()
}

/// Whether `cert` may sign OCSP answers for `issuer` at `now`: signed by it, naming it as
/// issuer, valid at `now`, and with the OCSPSigning extended key usage.
fn authorized_responder(
    cert: &X509Certificate<'_>,
    issuer: &X509Certificate<'_>,
    now: DateTime<Utc>,
) -> bool {
    let valid = x509_parser::time::ASN1Time::from_timestamp(now.timestamp())
        .is_ok_and(|t| cert.validity().is_valid_at(t));
    let signed = cert.issuer().as_raw() == issuer.subject().as_raw()
        && cert.verify_signature(Some(issuer.public_key())).is_ok();
    let ocsp_signing = cert.extended_key_usage().ok().flatten().is_some_and(|eku| {
        eku.value.ocsp_signing
            || eku
                .value
                .other
                .iter()
                .any(|o| o.to_id_string() == OID_KP_OCSP_SIGNING)
    });
    valid && signed && ocsp_signing
}

/// Reads the OCSP answer `response_der` about `leaf_der` (issued by `issuer_der`): checks
/// its status, type and signature (a delegated responder's certificate must be valid at
/// `now`), and returns the status it gives for this certificate.
pub fn read_ocsp_response(
    response_der: &[u8],
    leaf_der: &[u8],
    issuer_der: &[u8],
    now: DateTime<Utc>,
) -> Result<Result<OcspAnswer, OcspProblem>, InspectError> {
    let (leaf, issuer) = parse_pair(leaf_der, issuer_der)?;
    Ok(read(response_der, &leaf, &issuer, now))
}

fn read(
    response_der: &[u8],
    leaf: &X509Certificate<'_>,
    issuer: &X509Certificate<'_>,
    now: DateTime<Utc>,
) -> Result<OcspAnswer, OcspProblem> {
    let (outer, trailing) =
        der::expect_tlv(response_der, TAG_SEQUENCE, "not a SEQUENCE").map_err(unparseable)?;
    if !trailing.is_empty() {
        return Err(unparseable("trailing bytes after the response"));
    }
    let fields = der::children(outer.content).map_err(unparseable)?;
    let Some(status) = fields.first().filter(|t| t.tag == TAG_ENUMERATED) else {
        return Err(unparseable("no responseStatus"));
    };
    let code = status.content.last().copied().unwrap_or(u8::MAX);
    if code != 0 {
        return Err(OcspProblem::NotSuccessful(status_name(code)));
    }
    let Some(bytes) = fields.get(1).filter(|t| t.tag == 0xa0) else {
        return Err(unparseable("a successful status without responseBytes"));
    };
    let (rb, _) = der::expect_tlv(
        bytes.content,
        TAG_SEQUENCE,
        "responseBytes is not a SEQUENCE",
    )
    .map_err(unparseable)?;
    let (kind, rest) =
        der::expect_tlv(rb.content, TAG_OID, "no responseType").map_err(unparseable)?;
    if kind.content != OID_OCSP_BASIC {
        return Err(unparseable("the response is not a BasicOCSPResponse"));
    }
    let (octets, _) =
        der::expect_tlv(rest, TAG_OCTET_STRING, "no response octets").map_err(unparseable)?;
    let (basic, _) =
        der::expect_tlv(octets.content, TAG_SEQUENCE, "BasicOCSPResponse").map_err(unparseable)?;
    let parts = der::children(basic.content).map_err(unparseable)?;
    let [tbs, sig_alg, signature, rest @ ..] = parts.as_slice() else {
        return Err(unparseable("a BasicOCSPResponse is too short"));
    };

    // The signer: the issuing CA itself, or a delegated responder it certified.
    let signer = if signed_by(tbs.raw, sig_alg.raw, signature.raw, issuer) {
        issuer.subject().to_string()
    } else {
        let carried: Vec<Tlv<'_>> = match rest.first() {
            Some(t) if t.tag == 0xa0 => {
                let (seq, _) = der::expect_tlv(t.content, TAG_SEQUENCE, "certs is not a SEQUENCE")
                    .map_err(unparseable)?;
                der::children(seq.content).map_err(unparseable)?
            }
            _ => Vec::new(),
        };
        let responder = carried.iter().find_map(|c| {
            let (_, cert) = X509Certificate::from_der(c.raw).ok()?;
            (signed_by(tbs.raw, sig_alg.raw, signature.raw, &cert)
                && authorized_responder(&cert, issuer, now))
            .then(|| cert.subject().to_string())
        });
        responder.ok_or_else(|| {
            OcspProblem::Untrusted(format!(
                "it is signed neither by the issuing CA `{}` nor by a currently valid responder certificate that CA authorized for OCSP",
                issuer.subject()
            ))
        })?
    };

    let data = der::children(tbs.content).map_err(unparseable)?;
    // [0] version (optional), responderID ([1] or [2]), producedAt, responses, [1] extensions.
    let mut at = 0;
    if data.first().is_some_and(|t| t.tag == 0xa0) {
        at += 1;
    }
    if !data.get(at).is_some_and(|t| t.tag == 0xa1 || t.tag == 0xa2) {
        return Err(unparseable("no responderID"));
    }
    let produced_at = generalized_time(
        data.get(at + 1)
            .ok_or_else(|| unparseable("no producedAt"))?,
    )?;
    let responses = data
        .get(at + 2)
        .filter(|t| t.tag == TAG_SEQUENCE)
        .ok_or_else(|| unparseable("no responses"))?;
    for r in der::children(responses.content).map_err(unparseable)? {
        // An entry that cannot be read may be about another certificate: only ours counts.
        let Ok(s) = single(r.content) else {
            continue;
        };
        let alg = match s.hash_alg {
            OID_SHA1 => &SHA1_FOR_LEGACY_USE_ONLY,
            OID_SHA256 => &SHA256,
            _ => continue,
        };
        let id = CertId::new(leaf, issuer, alg);
        if der::strip_leading_zeros(s.serial) == der::strip_leading_zeros(&id.serial)
            && s.name_hash == id.name_hash
            && s.key_hash == id.key_hash
        {
            return Ok(OcspAnswer {
                status: s.status,
                this_update: s.this_update,
                next_update: s.next_update,
                produced_at,
                signer,
            });
        }
    }
    Err(OcspProblem::NotAnswered(hex::encode(leaf.raw_serial())))
}
