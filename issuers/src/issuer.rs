//! The [`Issuer`] trait every adapter implements, and the types it speaks.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use async_trait::async_trait;
use certresponder_inventory::{CertKind, SecretPem};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::IssuerError;

/// A name a certificate is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "lowercase")]
pub enum Identifier {
    /// A DNS name.
    Dns(String),
    /// An IP address.
    Ip(IpAddr),
}

impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dns(d) => f.write_str(d),
            Self::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// What to issue.
#[derive(Debug, Clone)]
pub struct IssueRequest {
    /// The PKCS#10 request, DER. Its key is the key the certificate certifies.
    pub csr_der: Vec<u8>,
    /// The names to certify; they must match the CSR's.
    pub identifiers: Vec<Identifier>,
    /// What the certificate is for (key usages, EKUs).
    pub kind: CertKind,
    /// A named issuance profile (ACME profile, or an internal CA validity profile).
    pub profile: Option<String>,
    /// The certificate this one replaces, DER (ACME ARI `replaces`).
    pub replaces: Option<Vec<u8>>,
    /// The caller's id for this request, the same on every retry of it, so that the issuer
    /// can answer [`Issuer::lookup`] (and may refuse to issue twice for one id).
    pub request_id: Option<String>,
}

/// An issued certificate chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedChain {
    /// The leaf, PEM.
    pub leaf_pem: String,
    /// Intermediates above the leaf, PEM (may be empty).
    pub chain_pem: String,
}

impl IssuedChain {
    /// Leaf followed by the intermediates.
    pub fn fullchain_pem(&self) -> String {
        format!("{}{}", self.leaf_pem, self.chain_pem)
    }
}

/// RFC 5280 §5.3.1 CRLReason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RevocationReason {
    /// unspecified (0)
    Unspecified,
    /// keyCompromise (1)
    KeyCompromise,
    /// cACompromise (2)
    CaCompromise,
    /// affiliationChanged (3)
    AffiliationChanged,
    /// superseded (4)
    Superseded,
    /// cessationOfOperation (5)
    CessationOfOperation,
    /// certificateHold (6)
    CertificateHold,
    /// removeFromCRL (8)
    RemoveFromCrl,
    /// privilegeWithdrawn (9)
    PrivilegeWithdrawn,
    /// aACompromise (10)
    AaCompromise,
}

impl RevocationReason {
    const ALL: [(Self, u8, &'static str); 10] = [
        (Self::Unspecified, 0, "unspecified"),
        (Self::KeyCompromise, 1, "keyCompromise"),
        (Self::CaCompromise, 2, "cACompromise"),
        (Self::AffiliationChanged, 3, "affiliationChanged"),
        (Self::Superseded, 4, "superseded"),
        (Self::CessationOfOperation, 5, "cessationOfOperation"),
        (Self::CertificateHold, 6, "certificateHold"),
        (Self::RemoveFromCrl, 8, "removeFromCRL"),
        (Self::PrivilegeWithdrawn, 9, "privilegeWithdrawn"),
        (Self::AaCompromise, 10, "aACompromise"),
    ];

    /// The RFC 5280 code.
    pub fn code(self) -> u8 {
        Self::ALL
            .iter()
            .find(|(r, _, _)| *r == self)
            .map_or(0, |(_, c, _)| *c)
    }

    /// The reason for an RFC 5280 code (7 is unused).
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL
            .iter()
            .find(|(_, c, _)| *c == code)
            .map(|(r, _, _)| *r)
    }

    /// The RFC 5280 name, such as `keyCompromise`.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(r, _, _)| *r == self)
            .map_or("unspecified", |(_, _, n)| n)
    }

    /// Parses an RFC 5280 name, case-insensitively and ignoring `_` and `-`
    /// (`keyCompromise`, `key_compromise`, `key-compromise`), or a number.
    pub fn parse(s: &str) -> Option<Self> {
        if let Ok(code) = s.parse::<u8>() {
            return Self::from_code(code);
        }
        let norm = |x: &str| x.replace(['_', '-'], "").to_ascii_lowercase();
        let want = norm(s);
        Self::ALL
            .iter()
            .find(|(_, _, n)| norm(n) == want)
            .map(|(r, _, _)| *r)
    }
}

impl fmt::Display for RevocationReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What to revoke.
#[derive(Debug, Clone)]
pub struct RevokeRequest {
    /// The certificate, DER.
    pub certificate_der: Vec<u8>,
    /// Why.
    pub reason: RevocationReason,
    /// The certificate's own private key, when the revocation should prove possession of it
    /// (RFC 8555 §7.6): CAs block a compromised key only on such proof.
    pub certificate_key: Option<SecretPem>,
}

/// Revocation status as the CA publishes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum CertStatus {
    /// Not revoked.
    Good,
    /// Revoked.
    Revoked {
        /// The reason, when published.
        reason: Option<RevocationReason>,
        /// When.
        revoked_at: DateTime<Utc>,
    },
    /// The CA publishes no status we can read for it.
    Unknown {
        /// Why not.
        why: String,
    },
}

/// An ACME Renewal Information window (RFC 9773).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenewalWindow {
    /// Renew no earlier than this.
    pub start: DateTime<Utc>,
    /// Renew before this.
    pub end: DateTime<Utc>,
    /// The CA's explanation, when the window moved for an incident.
    pub explanation_url: Option<String>,
    /// When to ask again.
    pub retry_after: Duration,
}

/// A certificate authority the responder issues and revokes through.
#[async_trait]
pub trait Issuer: Send + Sync {
    /// The id from the configuration.
    fn id(&self) -> &str;

    /// Issues a certificate for a CSR.
    async fn issue(&self, req: &IssueRequest) -> Result<IssuedChain, IssuerError>;

    /// What an earlier [`Issuer::issue`] of the same request (by its `request_id`) produced,
    /// when its answer was lost (a crash, a timeout after the CA answered, a retried poll):
    /// `Ok(Some(chain))` when the CA issued it, `Ok(None)` when it issued nothing for that
    /// request, so that issuing now is safe. The default, for an issuer that keeps no such
    /// record, is `Unsupported`: the caller then issues again and deals with what that
    /// leaves behind.
    async fn lookup(&self, req: &IssueRequest) -> Result<Option<IssuedChain>, IssuerError> {
        let _ = req;
        Err(IssuerError::Unsupported(format!(
            "issuer `{}` cannot look up an earlier request",
            self.id()
        )))
    }

    /// Revokes a certificate with an RFC 5280 reason.
    async fn revoke(&self, req: &RevokeRequest) -> Result<(), IssuerError>;

    /// The certificate's revocation status as the CA publishes it.
    async fn status(&self, certificate_der: &[u8]) -> Result<CertStatus, IssuerError>;

    /// The CA's suggested renewal window, if it offers one.
    async fn renewal_info(
        &self,
        certificate_der: &[u8],
    ) -> Result<Option<RenewalWindow>, IssuerError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons() {
        assert_eq!(
            RevocationReason::parse("keyCompromise"),
            Some(RevocationReason::KeyCompromise)
        );
        assert_eq!(
            RevocationReason::parse("key_compromise"),
            Some(RevocationReason::KeyCompromise)
        );
        assert_eq!(
            RevocationReason::parse("4"),
            Some(RevocationReason::Superseded)
        );
        assert_eq!(RevocationReason::parse("7"), None);
        assert_eq!(RevocationReason::RemoveFromCrl.code(), 8);
        assert_eq!(
            RevocationReason::from_code(10),
            Some(RevocationReason::AaCompromise)
        );
    }
}
