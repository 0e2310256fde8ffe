//! The key-exposure family: private keys seen where they must not be. A key whose public
//! half is an inventory certificate's is a confirmed compromise (`key_exposed`); the
//! Baseline Requirements' 24-hour clock starts when it is first seen.
//!
//! - [`identity`]: every key's identities (SPKI SHA-256, the badkeys hash, SHA-256 of the
//!   RSA modulus, the Debian openssl-blacklist suffix);
//! - [`blocklist`]: imported lists of published keys (`blocklisted_key`, `debian_weak_key`);
//! - [`extract`]: private keys found in bytes (PEM, also indented or escaped, DER, PKCS#12,
//!   JKS, JWK, OpenSSH; in text, UTF-16 text and binary files); [`sources`]: the files of
//!   directories and every object of git repositories; [`ingest`]: secret scanners' reports;
//! - [`record`]: matching what was found to the inventory and storing the signals.
//!
//! An encrypted private key found is a finding too (`encrypted_key_exposed`, low
//! confidence): its password protects it, but a leaked encrypted key still leaks (the
//! password may be weak, reused or leaked beside it). When its public half travels in clear
//! beside it (an OpenSSH or PuTTY key, a JKS certificate chain) it is matched to the
//! inventory like any found key; otherwise it is reported with where it was found.
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

/// A private key found somewhere, reduced to its public half; when it was encrypted there,
/// its location says by what ([`Location::encryption`]) and the public half is the one
/// stored in clear beside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FoundKey {
    /// The public key (no secret material).
    pub public: KeyInfo,
    /// How it was encoded where it was found: `pem`, `der`, `pkcs12`, `jks`, `jwk`,
    /// `openssh`, `putty`, `base64` (base64 of a PEM or DER key, as in Kubernetes secrets).
    pub format: &'static str,
    /// Where.
    pub location: Location,
}

/// An encrypted private key whose public half cannot be known without its password (an
/// encrypted PEM or PKCS#8 key, a PKCS#12 file): reported with where it was found and how
/// it is encrypted ([`Location::encryption`]), never matched to the inventory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EncryptedKey {
    /// How it was encoded: `pem`, `der`, `pkcs12`, `base64`.
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
    /// The git blob it is in, when no commit names a path for it (a blob staged and never
    /// committed, or left behind by a reset): `path` then says so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blob: Option<String>,
    /// 1-based line of the key's first line, when the format has lines.
    pub line: Option<usize>,
    /// Byte offset of the key inside a binary file or blob (a firmware image, an
    /// executable, a keystore).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// When the key was encrypted there, by what (`PBES2 aes-256-cbc`, `PEM AES-128-CBC`,
    /// `OpenSSH aes256-ctr`, `JKS keystore password`...): an `encrypted_key_exposed`
    /// finding, not `key_exposed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<String>,
    /// When it was first seen: the commit's time, or the report's.
    pub first_seen: Option<DateTime<Utc>>,
    /// What found it: `exposure-scan`, `gitleaks`, `trufflehog`, `detect-secrets`.
    pub source: String,
}
