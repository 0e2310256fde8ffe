//! Key identities (being built).

use certresponder_inventory::inspect::KeyInfo;

/// A key's identities.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyIds {
    /// SHA-256 of the DER SubjectPublicKeyInfo, hex.
    pub spki_sha256: Option<String>,
    /// SHA-256 of the key's number, hex.
    pub number_sha256: Option<String>,
}

impl KeyIds {
    /// The identities of `key`.
    pub fn of(_key: &KeyInfo) -> Self {
        Self::default()
    }
}
