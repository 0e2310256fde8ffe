//! Bundles: a certificate chain, its private key and what certresponder knows about them.
//! The store keeps every bundle a certificate has had, so any deployment can be rolled back.

use std::fmt;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{InventoryError, Location};
use crate::inspect::{self, Fingerprints, encode_pem};
use crate::model::ManagedCert;

/// PEM text of a private key. Its `Debug` and `Display` never show the key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretPem(String);

impl SecretPem {
    /// Wraps key PEM text.
    pub fn new(pem: String) -> Self {
        Self(pem)
    }

    /// The key text, for writing to a 0600 file or handing to a crypto library.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl Drop for SecretPem {
    /// The key text is overwritten before its memory is freed, so it lingers in no freed
    /// allocation (nor, the process being non-dumpable, in a core file).
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

impl fmt::Debug for SecretPem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretPem([redacted])")
    }
}

/// Where a bundle stands in a certificate's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BundleState {
    /// Deployed now.
    Current,
    /// Deployed before; a rollback target.
    Previous,
    /// Revoked at its CA; never restored unless forced.
    Revoked,
}

impl fmt::Display for BundleState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Current => "current",
            Self::Previous => "previous",
            Self::Revoked => "revoked",
        })
    }
}

/// A certificate chain with its key and metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bundle {
    /// Stable id: the first 16 hex digits of the leaf's SHA-256 fingerprint.
    pub id: String,
    /// The inventory name it belongs to.
    pub cert_id: String,
    /// Leaf certificate, PEM.
    pub leaf_pem: String,
    /// Intermediates, PEM, leaf excluded.
    pub chain_pem: String,
    /// The private key, when the inventory names one.
    pub key_pem: Option<SecretPem>,
    /// Fingerprints of the leaf.
    pub fingerprints: Fingerprints,
    /// Leaf serial, hex.
    pub serial: String,
    /// Leaf issuer DN.
    pub issuer: String,
    /// Leaf notAfter.
    pub not_after: DateTime<Utc>,
    /// When certresponder recorded it.
    pub created_at: DateTime<Utc>,
    /// How it entered the history: `registered` (read from disk) or `issued`.
    pub origin: String,
    /// State.
    pub state: BundleState,
    /// When certresponder revoked it at its CA. It stays set if the bundle is restored by
    /// force, so that a revoked certificate is never mistaken for a plain earlier one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<DateTime<Utc>>,
}

impl Bundle {
    /// The `current` bundle of a certificate's history (oldest first), if it has one.
    pub fn current_of(history: &[Self]) -> Option<&Self> {
        history
            .iter()
            .rev()
            .find(|b| b.state == BundleState::Current)
    }

    /// Reads the bundle an entry's files hold now: the leaf from `cert`, intermediates from
    /// `chain` (else the rest of `cert`, else the rest of `fullchain`) and the key.
    pub fn read_current(entry: &ManagedCert, now: DateTime<Utc>) -> Result<Self, InventoryError> {
        let at = Location {
            file: entry.source.clone(),
            entry: Some(format!("\"{}\"", entry.name)),
            field: None,
        };
        let read = |p: &PathBuf, field: &str| {
            std::fs::read(p).map_err(|e| InventoryError::UnreadablePath {
                at: at.field(field),
                path: p.clone(),
                reason: e.to_string(),
            })
        };
        let unparseable = |p: &PathBuf, field: &str, source| InventoryError::Unparseable {
            at: at.field(field),
            path: p.clone(),
            source,
        };
        let cert_bytes = read(&entry.paths.cert, "cert")?;
        let certs = inspect::read_certificates(&cert_bytes)
            .map_err(|e| unparseable(&entry.paths.cert, "cert", e))?;
        let (leaf_der, rest) = certs
            .split_first()
            .ok_or_else(|| unparseable(&entry.paths.cert, "cert", no_cert()))?;
        let leaf = inspect::inspect_certificate_der(leaf_der)
            .map_err(|e| unparseable(&entry.paths.cert, "cert", e))?;
        let chain: Vec<Vec<u8>> = if let Some(chain) = &entry.paths.chain {
            let bytes = read(chain, "chain")?;
            if bytes.trim_ascii().is_empty() {
                // A certificate issued straight by a root has no intermediates.
                Vec::new()
            } else {
                inspect::read_certificates(&bytes).map_err(|e| unparseable(chain, "chain", e))?
            }
        } else if !rest.is_empty() {
            rest.to_vec()
        } else if let Some(full) = entry.paths.fullchain.as_ref().filter(|p| p.exists()) {
            // A fullchain location that does not exist yet (a new deployment target) has no
            // chain to tell; the next deployment writes it.
            let all = inspect::read_certificates(&read(full, "fullchain")?)
                .map_err(|e| unparseable(full, "fullchain", e))?;
            all.into_iter().skip(1).collect()
        } else {
            Vec::new()
        };
        let key_pem = match &entry.paths.key {
            Some(k) => {
                let bytes = read(k, "key")?;
                inspect::read_private_key(&bytes).map_err(|e| unparseable(k, "key", e))?;
                let text = String::from_utf8(bytes).map_err(|_| {
                    unparseable(
                        k,
                        "key",
                        inspect::InspectError::Unsupported {
                            what: "private key",
                            reason: "DER key files are read but bundles keep PEM; convert the key to PEM".into(),
                        },
                    )
                })?;
                Some(SecretPem::new(text))
            }
            None => None,
        };
        Ok(Self::from_parts(
            entry.name.as_str(),
            &leaf,
            leaf_der,
            &chain,
            key_pem,
            "registered",
            now,
        ))
    }

    /// A `current` bundle from its parts, in the normal form every bundle has: the leaf and
    /// each intermediate re-encoded as PEM from DER, so that the same certificates always give
    /// the same bytes.
    pub fn from_parts(
        cert_id: &str,
        leaf: &inspect::CertInfo,
        leaf_der: &[u8],
        chain_der: &[Vec<u8>],
        key_pem: Option<SecretPem>,
        origin: &str,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            id: leaf.fingerprints.cert_sha256[..16].to_string(),
            cert_id: cert_id.to_string(),
            leaf_pem: encode_pem("CERTIFICATE", leaf_der),
            chain_pem: chain_der
                .iter()
                .map(|c| encode_pem("CERTIFICATE", c))
                .collect(),
            key_pem,
            serial: leaf.serial.clone(),
            issuer: leaf.issuer.clone(),
            not_after: leaf.not_after,
            fingerprints: leaf.fingerprints.clone(),
            created_at: now,
            origin: origin.to_string(),
            state: BundleState::Current,
            revoked_at: None,
        }
    }

    /// Whether it has been revoked (it may have been restored since, by force).
    pub fn is_revoked(&self) -> bool {
        self.state == BundleState::Revoked || self.revoked_at.is_some()
    }

    /// The leaf certificate, DER.
    pub fn leaf_der(&self) -> Result<Vec<u8>, inspect::InspectError> {
        inspect::read_certificates(self.leaf_pem.as_bytes())?
            .into_iter()
            .next()
            .ok_or_else(no_cert)
    }
}

fn no_cert() -> inspect::InspectError {
    inspect::InspectError::Unparseable {
        what: "certificate",
        reason: "no certificate in the file".into(),
    }
}
