//! The key-exposure family: private keys seen where they must not be. A key whose public
//! half is an inventory certificate's is a confirmed compromise (`key_exposed`); the
//! Baseline Requirements' 24-hour clock starts when it is first seen.
//!
//! - [`identity`]: every key's identities (SPKI SHA-256, the badkeys hash, SHA-256 of the
//!   RSA modulus, the Debian openssl-blacklist suffix);
//! - [`blocklist`]: imported lists of published keys (`blocklisted_key`, `debian_weak_key`);
//! - [`extract`]: private keys found in bytes (PEM, also indented or escaped, DER, PKCS#12,
//!   JWK, OpenSSH); [`sources`]: the files of directories and every commit of git
//!   repositories; [`ingest`]: secret scanners' reports;
//! - [`record`]: matching what was found to the inventory and storing the signals.
//!
//! Nothing here keeps, copies or logs a private key: a found key is reduced to its public
//! half where it is found.

pub mod blocklist;
pub mod extract;
pub mod identity;
pub mod ingest;
pub mod record;
pub mod sources;

use certresponder_inventory::inspect::KeyInfo;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// A private key found somewhere, reduced to its public half.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FoundKey {
    /// The public key (no secret material).
    pub public: KeyInfo,
    /// How it was encoded where it was found: `pem`, `der`, `pkcs12`, `jwk`, `openssh`,
    /// `putty`, `base64` (base64 of a PEM or DER key, as in Kubernetes secrets).
    pub format: &'static str,
    /// Where.
    pub location: Location,
}

/// Where a key was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Location {
    /// The file (inside the repository, for a git repository), or the report's location.
    pub path: String,
    /// The repository, when the key was found in git history.
    pub repository: Option<String>,
    /// The commit that first added it (the full hash).
    pub commit: Option<String>,
    /// 1-based line of the key's first line, when the format has lines.
    pub line: Option<usize>,
    /// When it was first seen: the commit's time, or the report's.
    pub first_seen: Option<DateTime<Utc>>,
    /// What found it: `exposure-scan`, `gitleaks`, `trufflehog`, `detect-secrets`.
    pub source: String,
}
