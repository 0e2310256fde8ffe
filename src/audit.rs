//! The hash-chained audit log (being built).

use crate::store::{Store, StoreError};

/// What to append.
#[derive(Debug, Clone)]
pub struct AuditEntry<'a> {
    /// `signal`, `decision`, `approval`, `step`, `outcome`, ...
    pub kind: &'a str,
    /// Who: the operating-system identity, or `certresponder` for the engine itself.
    pub actor: &'a str,
    /// The certificate, if the record is about one.
    pub cert: Option<&'a str>,
    /// The case, if the record is about one.
    pub case: Option<u64>,
    /// The record's content.
    pub data: serde_json::Value,
}

/// Appends a record; returns its sequence number.
pub fn append(_store: &dyn Store, _entry: AuditEntry<'_>) -> Result<u64, StoreError> {
    Ok(0)
}
