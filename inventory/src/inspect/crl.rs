//! Certificate revocation lists (RFC 5280 §5) and signature checks between certificates.
//! Part of the X.509 inspection module: with `x509.rs`, the only code that uses x509-parser.

use chrono::{DateTime, Utc};
use serde::Serialize;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::revocation_list::CertificateRevocationList;

use super::der;
use super::error::InspectError;
use super::pem::{looks_like_pem, parse_pem};

/// One revoked certificate in a CRL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RevokedEntry {
    /// Serial, lower-case hex without leading zeros.
    pub serial: String,
    /// When it was revoked.
    pub revoked_at: DateTime<Utc>,
    /// The RFC 5280 reason code, when given.
    pub reason_code: Option<u8>,
}

/// What a CRL says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CrlInfo {
    /// Issuer DN.
    pub issuer: String,
    /// thisUpdate.
    pub this_update: DateTime<Utc>,
    /// nextUpdate, when present.
    pub next_update: Option<DateTime<Utc>>,
    /// The cRLNumber extension, decimal.
    pub number: Option<String>,
    /// Revoked certificates.
    pub revoked: Vec<RevokedEntry>,
}

impl CrlInfo {
    /// The entry for a serial (hex, any case, leading zeros ignored).
    pub fn find(&self, serial_hex: &str) -> Option<&RevokedEntry> {
        let want = serial_hex.trim_start_matches('0').to_ascii_lowercase();
        self.revoked
            .iter()
            .find(|r| r.serial.trim_start_matches('0') == want)
    }
}

fn time(t: x509_parser::time::ASN1Time) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Reads a CRL from PEM (`X509 CRL`) or DER bytes, returning its DER.
pub fn read_crl(bytes: &[u8]) -> Result<Vec<u8>, InspectError> {
    if bytes.is_empty() {
        return Err(InspectError::unparseable("CRL", "the file is empty"));
    }
    if !looks_like_pem(bytes) {
        return Ok(bytes.to_vec());
    }
    let blocks = parse_pem(bytes).map_err(|r| InspectError::unparseable("CRL", r))?;
    blocks
        .into_iter()
        .find(|b| b.label == "X509 CRL")
        .map(|b| b.der)
        .ok_or_else(|| InspectError::unparseable("CRL", "no PEM `X509 CRL` block"))
}

/// Parses a DER CRL.
pub fn inspect_crl_der(der_bytes: &[u8]) -> Result<CrlInfo, InspectError> {
    let (_, crl) = CertificateRevocationList::from_der(der_bytes)
        .map_err(|e| InspectError::unparseable("CRL", format!("{e}")))?;
    let revoked = crl
        .iter_revoked_certificates()
        .map(|r| RevokedEntry {
            serial: hex::encode(der::strip_leading_zeros(r.raw_serial())),
            revoked_at: time(r.revocation_date),
            reason_code: r.reason_code().map(|(_, c)| c.0),
        })
        .collect();
    Ok(CrlInfo {
        issuer: crl.issuer().to_string(),
        this_update: time(crl.last_update()),
        next_update: crl.next_update().map(time),
        number: crl.crl_number().map(ToString::to_string),
        revoked,
    })
}

/// Whether `crl_der` carries a valid signature by the key of `issuer_der`.
pub fn crl_signed_by(crl_der: &[u8], issuer_der: &[u8]) -> Result<bool, InspectError> {
    let (_, crl) = CertificateRevocationList::from_der(crl_der)
        .map_err(|e| InspectError::unparseable("CRL", format!("{e}")))?;
    let (_, issuer) = X509Certificate::from_der(issuer_der)
        .map_err(|e| InspectError::unparseable("certificate", format!("{e}")))?;
    Ok(crl.verify_signature(issuer.public_key()).is_ok())
}

/// Whether `cert_der` carries a valid signature by the key of `issuer_der` and names it as
/// its issuer.
pub fn cert_signed_by(cert_der: &[u8], issuer_der: &[u8]) -> Result<bool, InspectError> {
    let (_, cert) = X509Certificate::from_der(cert_der)
        .map_err(|e| InspectError::unparseable("certificate", format!("{e}")))?;
    let (_, issuer) = X509Certificate::from_der(issuer_der)
        .map_err(|e| InspectError::unparseable("certificate", format!("{e}")))?;
    Ok(cert.issuer().as_raw() == issuer.subject().as_raw()
        && cert.verify_signature(Some(issuer.public_key())).is_ok())
}
