//! The RFC 6962 read API (§4.3 `get-sth`, §4.4 `get-sth-consistency`, §4.6 `get-entries`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::entry::parse_rfc6962_entry;
use super::merkle::{Hash, leaf_hash};
use super::monitor::{Leaf, Monitor};
use super::{CtError, Misbehaviour, Sth};

#[derive(Deserialize)]
struct GetSth {
    tree_size: u64,
    timestamp: u64,
    sha256_root_hash: String,
    tree_head_signature: String,
}

#[derive(Deserialize)]
struct GetConsistency {
    consistency: Vec<String>,
}

#[derive(Deserialize)]
struct GetEntries {
    entries: Vec<RawEntry>,
}

#[derive(Deserialize)]
struct RawEntry {
    leaf_input: String,
    extra_data: String,
}

fn json<T: DeserializeOwned>(url: &str, body: &Bytes) -> Result<T, CtError> {
    serde_json::from_slice(body).map_err(|e| CtError::BadResponse {
        url: url.to_owned(),
        reason: format!("not the expected JSON: {e}"),
    })
}

fn b64(url: &str, field: &str, v: &str) -> Result<Vec<u8>, CtError> {
    B64.decode(v).map_err(|e| CtError::BadResponse {
        url: url.to_owned(),
        reason: format!("`{field}` is not base64: {e}"),
    })
}

fn hash32(url: &str, field: &str, v: &str) -> Result<Hash, CtError> {
    let bytes = b64(url, field, v)?;
    <Hash>::try_from(bytes.as_slice()).map_err(|_| CtError::BadResponse {
        url: url.to_owned(),
        reason: format!("`{field}` is {} bytes, not 32", bytes.len()),
    })
}

impl Monitor {
    /// `get-sth`, its signature verified.
    pub(super) async fn rfc6962_sth(&self) -> Result<Sth, CtError> {
        let url = format!("{}ct/v1/get-sth", Self::base(&self.spec.url));
        let body = self.fetcher.get(&url).await?;
        let raw: GetSth = json(&url, &body)?;
        let sth = Sth {
            tree_size: raw.tree_size,
            timestamp: raw.timestamp,
            root_hash: hash32(&url, "sha256_root_hash", &raw.sha256_root_hash)?,
            signature: b64(&url, "tree_head_signature", &raw.tree_head_signature)?,
        };
        sth.verify(&self.spec.public_key_der)
            .map_err(|e| Misbehaviour::BadSignature {
                log: self.spec.url.clone(),
                tree_size: sth.tree_size,
                reason: e.to_string(),
            })?;
        Ok(sth)
    }

    /// `get-sth-consistency` between two sizes.
    pub(super) async fn rfc6962_consistency(
        &self,
        first: u64,
        second: u64,
    ) -> Result<Vec<Hash>, CtError> {
        let url = format!(
            "{}ct/v1/get-sth-consistency?first={first}&second={second}",
            Self::base(&self.spec.url)
        );
        let body = self.fetcher.get(&url).await?;
        let raw: GetConsistency = json(&url, &body)?;
        raw.consistency
            .iter()
            .map(|h| hash32(&url, "consistency", h))
            .collect()
    }

    /// The entries `start..end`, asking again from where the log stopped when it returns
    /// fewer than asked.
    pub(super) async fn rfc6962_entries(&self, start: u64, end: u64) -> Result<Vec<Leaf>, CtError> {
        let base = Self::base(&self.spec.url);
        let mut out = Vec::with_capacity(usize::try_from(end - start).unwrap_or(0));
        let mut next = start;
        while next < end {
            let url = format!("{base}ct/v1/get-entries?start={next}&end={}", end - 1);
            let body = self.fetcher.get(&url).await?;
            let raw: GetEntries = json(&url, &body)?;
            let bad = |reason: String| Misbehaviour::BadEntries {
                log: self.spec.url.clone(),
                index: next,
                reason,
            };
            if raw.entries.is_empty() {
                return Err(bad(format!("asked for {next}..={}, got no entries", end - 1)).into());
            }
            if raw.entries.len() as u64 > end - next {
                return Err(bad(format!(
                    "asked for {} entries, got {}",
                    end - next,
                    raw.entries.len()
                ))
                .into());
            }
            for e in raw.entries {
                let leaf_input = b64(&url, "leaf_input", &e.leaf_input)?;
                let extra = b64(&url, "extra_data", &e.extra_data)?;
                out.push(Leaf {
                    hash: leaf_hash(&leaf_input),
                    parsed: parse_rfc6962_entry(&self.spec.url, next, &leaf_input, &extra),
                });
                next += 1;
            }
        }
        Ok(out)
    }
}
