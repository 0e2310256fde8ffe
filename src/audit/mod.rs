//! The hash-chained audit log: every signal, decision (with the rule that matched),
//! approval, step and outcome, appended in order to the store's `audit` tree.
//!
//! Each record carries the SHA-256 of the record before it (`prev`) and its own hash over
//! every other field (see [`record_hash`] for the exact encoding), so that changing,
//! removing or reordering a stored record breaks the chain where it happened and
//! [`verify`] can say which record. Removing records from the end leaves a shorter chain
//! that is still consistent; to catch that, every append writes the new head (`audit_seq`,
//! `audit_head`) to the service log, and `audit verify --head SEQ:HASH` checks that the
//! chain still reaches a head noted earlier.
//!
//! Records are stored as JSON objects with a format version field `v`, keyed by their
//! sequence number (1, 2, ...).
//!
//! The log holds what callers put in it and is written to the service log in part: callers
//! never put key material or other secrets in a record's `data`.

mod verify;

#[cfg(test)]
mod tests;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::store::{Store, StoreError};

pub use verify::{Head, Problem, ProblemKind, VerifyReport, verify};

/// Format version written in every stored record (field `v`).
pub const RECORD_VERSION: u64 = 1;

/// The `prev` of the first record: 64 zeros.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Domain-separation prefix of the hashed encoding, so that a record hash can never be
/// mistaken for a hash of anything else certresponder computes.
const HASH_DOMAIN: &[u8] = b"certresponder audit record v1\n";

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
    /// The record's content. Never key material or other secrets.
    pub data: serde_json::Value,
}

/// One record of the audit log as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Position in the log: 1 for the first record, then one more for each.
    pub seq: u64,
    /// When it was appended.
    pub at: DateTime<Utc>,
    /// `signal`, `decision`, `approval`, `step`, `outcome`, ...
    pub kind: String,
    /// Who: the operating-system identity, or `certresponder` for the engine itself.
    pub actor: String,
    /// The certificate, if the record is about one.
    pub cert: Option<String>,
    /// The case, if the record is about one.
    pub case: Option<u64>,
    /// The record's content.
    pub data: serde_json::Value,
    /// Hex SHA-256 of the previous record ([`GENESIS`] for the first).
    pub prev: String,
    /// Hex SHA-256 of this record: [`record_hash`].
    pub hash: String,
}

impl AuditRecord {
    /// Whether `hash` is the hash of the record's other fields.
    pub fn hash_matches(&self) -> bool {
        record_hash(self) == self.hash
    }

    /// The head form a person notes and `audit verify --head` accepts: `SEQ:HASH`.
    pub fn head(&self) -> String {
        format!("{}:{}", self.seq, self.hash)
    }
}

/// The hash of a record: hex SHA-256 over a canonical, unambiguous encoding of every field
/// but `hash`:
///
/// ```text
/// "certresponder audit record v1\n"
/// u64be(seq)
/// str(at as RFC 3339 UTC with nanoseconds, e.g. 2025-01-02T03:04:05.123456789Z)
/// str(kind) str(actor)
/// 0x00 | 0x01 str(cert)          (absent | present)
/// 0x00 | 0x01 u64be(case)        (absent | present)
/// str(canonical JSON of data)
/// str(prev)
/// ```
///
/// where `str(s)` is `u64be(byte length of s)` followed by the UTF-8 bytes of `s`, and the
/// canonical JSON of `data` has object keys sorted by their UTF-8 bytes, no insignificant
/// whitespace, and strings and numbers written as `serde_json` writes them.
pub fn record_hash(rec: &AuditRecord) -> String {
    let mut h = Sha256::new();
    h.update(HASH_DOMAIN);
    h.update(rec.seq.to_be_bytes());
    let field = |h: &mut Sha256, bytes: &[u8]| {
        // usize -> u64 is lossless on every platform Rust supports.
        h.update((bytes.len() as u64).to_be_bytes());
        h.update(bytes);
    };
    field(
        &mut h,
        rec.at
            .to_rfc3339_opts(SecondsFormat::Nanos, true)
            .as_bytes(),
    );
    field(&mut h, rec.kind.as_bytes());
    field(&mut h, rec.actor.as_bytes());
    match &rec.cert {
        None => h.update([0]),
        Some(c) => {
            h.update([1]);
            field(&mut h, c.as_bytes());
        }
    }
    match rec.case {
        None => h.update([0]),
        Some(c) => {
            h.update([1]);
            h.update(c.to_be_bytes());
        }
    }
    let mut data = String::new();
    canonical_json(&rec.data, &mut data);
    field(&mut h, data.as_bytes());
    field(&mut h, rec.prev.as_bytes());
    hex::encode(h.finalize())
}

/// Writes `v` as canonical JSON: object keys sorted, no whitespace. Independent of
/// whether `serde_json` keeps maps sorted or in insertion order.
fn canonical_json(v: &serde_json::Value, out: &mut String) {
    use serde_json::Value;
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                if let Some(item) = map.get(k) {
                    canonical_json(item, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_json(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// Encodes a record for the store: its JSON object with the format version `v` added.
pub(crate) fn encode_record(rec: &AuditRecord) -> Result<Vec<u8>, StoreError> {
    let mut value = serde_json::to_value(rec).map_err(|e| StoreError::Backend(e.to_string()))?;
    if let serde_json::Value::Object(map) = &mut value {
        map.insert("v".into(), RECORD_VERSION.into());
    }
    serde_json::to_vec(&value).map_err(|e| StoreError::Backend(e.to_string()))
}

/// Decodes a stored record; the error says what is wrong with the bytes.
pub(crate) fn decode_record(bytes: &[u8]) -> Result<AuditRecord, String> {
    let mut value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("not JSON ({e})"))?;
    let serde_json::Value::Object(map) = &mut value else {
        return Err("not a JSON object".into());
    };
    match map.remove("v").and_then(|v| v.as_u64()) {
        Some(RECORD_VERSION) => {}
        Some(v) => {
            return Err(format!(
                "format version {v} is not one this release reads ({RECORD_VERSION})"
            ));
        }
        None => return Err("no format version".into()),
    }
    serde_json::from_value(value).map_err(|e| format!("not an audit record ({e})"))
}

fn corrupt(seq: u64, reason: String) -> StoreError {
    StoreError::Corrupt {
        tree: "audit",
        key: seq.to_string(),
        reason,
    }
}

/// Appends a record; returns its sequence number.
///
/// The record is chained to the last one under the store's append lock and flushed before
/// this returns. The new head goes to the service log (`audit_seq`, `audit_head`), so that
/// a later `audit verify --head SEQ:HASH` can tell whether records were cut from the end.
pub fn append(store: &dyn Store, entry: AuditEntry<'_>) -> Result<u64, StoreError> {
    append_with(store, entry, true)
}

/// [`append`] without its own flush, for a caller whose next write is flushed and follows
/// at once (the sequence engine journals the step it audits): the record is durable with
/// that write. A crash in between loses nothing the chain needs; the step runs again on
/// resume and is audited again.
pub fn append_deferred(store: &dyn Store, entry: AuditEntry<'_>) -> Result<u64, StoreError> {
    append_with(store, entry, false)
}

fn append_with(store: &dyn Store, entry: AuditEntry<'_>, flush: bool) -> Result<u64, StoreError> {
    let mut head = String::new();
    let seq = store.audit_append(
        &mut |last| {
            let (seq, prev) = match last {
                None => (1, GENESIS.to_string()),
                Some((n, bytes)) => {
                    let prev = match decode_record(bytes) {
                        Ok(rec) => rec.hash,
                        Err(reason) => {
                            // Keep recording: chain to the damaged record's raw bytes.
                            // `audit verify` reports the damage itself.
                            tracing::warn!(
                                audit_seq = n,
                                reason,
                                "the last audit record cannot be decoded; chaining to its raw bytes"
                            );
                            hex::encode(Sha256::digest(bytes))
                        }
                    };
                    let next = n.checked_add(1).ok_or_else(|| {
                        corrupt(
                            n,
                            "the last record number leaves no room for another".into(),
                        )
                    })?;
                    (next, prev)
                }
            };
            let mut rec = AuditRecord {
                seq,
                at: Utc::now(),
                kind: entry.kind.to_string(),
                actor: entry.actor.to_string(),
                cert: entry.cert.map(str::to_string),
                case: entry.case,
                data: entry.data.clone(),
                prev,
                hash: String::new(),
            };
            rec.hash = record_hash(&rec);
            let bytes = encode_record(&rec)?;
            head = rec.hash;
            Ok((seq, bytes))
        },
        flush,
    )?;
    tracing::info!(
        audit_seq = seq,
        audit_head = %head,
        kind = entry.kind,
        "audit record appended"
    );
    Ok(seq)
}

/// Every record, oldest first. A record that cannot be decoded is an error naming it;
/// `verify` reports damage without failing.
pub fn records(store: &dyn Store) -> Result<Vec<AuditRecord>, StoreError> {
    store
        .audit_records()?
        .into_iter()
        .map(|(seq, bytes)| decode_record(&bytes).map_err(|reason| corrupt(seq, reason)))
        .collect()
}

/// Every record that can be decoded, oldest first, and how many cannot (for readers such
/// as `cases show` that must work on a damaged log; `verify` says what is wrong with it).
pub fn readable_records(store: &dyn Store) -> Result<(Vec<AuditRecord>, usize), StoreError> {
    let mut out = Vec::new();
    let mut unreadable = 0;
    for (_, bytes) in store.audit_records()? {
        match decode_record(&bytes) {
            Ok(r) => out.push(r),
            Err(_) => unreadable += 1,
        }
    }
    Ok((out, unreadable))
}

/// The records about one case, oldest first.
pub fn for_case(store: &dyn Store, case: u64) -> Result<Vec<AuditRecord>, StoreError> {
    Ok(records(store)?
        .into_iter()
        .filter(|r| r.case == Some(case))
        .collect())
}

/// The last record's sequence number and hash, or `None` for an empty log.
pub fn head(store: &dyn Store) -> Result<Option<(u64, String)>, StoreError> {
    match store.audit_records()?.pop() {
        None => Ok(None),
        Some((seq, bytes)) => {
            let rec = decode_record(&bytes).map_err(|reason| corrupt(seq, reason))?;
            Ok(Some((rec.seq, rec.hash)))
        }
    }
}
