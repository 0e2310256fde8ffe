//! The static-ct-api read side (c2sp.org/static-ct-api): the signed checkpoint, data tiles
//! (full and partial) and issuers by fingerprint.

use sha2::{Digest, Sha256};

use super::entry::{Entry, parse_data_tile};
use super::merkle::{Hash, leaf_hash};
use super::monitor::{Leaf, Monitor};
use super::sth::{CheckpointError, verify_checkpoint};
use super::{CtError, Misbehaviour, Sth};

/// Entries per full tile.
pub(super) const TILE_WIDTH: u64 = 256;

/// The path of tile `n`: three-digit groups, every group but the last prefixed with `x`
/// (`1234067` → `x001/x234/067`).
pub fn tile_path(n: u64) -> String {
    let mut out = format!("{:03}", n % 1000);
    let mut rest = n / 1000;
    while rest > 0 {
        out = format!("x{:03}/{out}", rest % 1000);
        rest /= 1000;
    }
    out
}

/// The checkpoint origin of a log: its submission prefix without scheme or trailing slash.
pub(super) fn origin(submission_url: &str) -> &str {
    let s = submission_url
        .strip_prefix("https://")
        .or_else(|| submission_url.strip_prefix("http://"))
        .unwrap_or(submission_url);
    s.trim_end_matches('/')
}

impl Monitor {
    /// The latest checkpoint, its note signature verified.
    pub(super) async fn checkpoint(&self, monitoring_url: &str) -> Result<Sth, CtError> {
        let url = format!("{}checkpoint", Self::base(monitoring_url));
        let body = self.fetcher.get(&url).await?;
        let text = std::str::from_utf8(&body).map_err(|_| CtError::BadResponse {
            url: url.clone(),
            reason: "the checkpoint is not UTF-8".into(),
        })?;
        let origin = origin(&self.spec.url);
        verify_checkpoint(text, origin, &self.spec.public_key_der).map_err(|e| match e {
            CheckpointError::Signature(_) | CheckpointError::NoSignature(_) => {
                Misbehaviour::BadSignature {
                    log: self.spec.url.clone(),
                    tree_size: text
                        .split('\n')
                        .nth(1)
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0),
                    reason: e.to_string(),
                }
                .into()
            }
            other => CtError::BadResponse {
                url: url.clone(),
                reason: other.to_string(),
            },
        })
    }

    /// The leaves `start..end` (within one data tile) of the tree of `tree_size`. The tile is
    /// partial when the tree ends inside it; should the log no longer serve that partial
    /// tile (it has since filled up), the full tile is read instead.
    pub(super) async fn static_tile(
        &self,
        monitoring_url: &str,
        start: u64,
        end: u64,
        tree_size: u64,
    ) -> Result<Vec<Leaf>, CtError> {
        let n = start / TILE_WIDTH;
        let first = n * TILE_WIDTH;
        let width = (tree_size - first).min(TILE_WIDTH);
        let base = format!("{}tile/data/{}", Self::base(monitoring_url), tile_path(n));
        let bad = |index: u64, reason: String| -> CtError {
            Misbehaviour::BadEntries {
                log: self.spec.url.clone(),
                index,
                reason,
            }
            .into()
        };
        let (url, body, expected) = self.tile(&base, width).await?;
        let leaves = parse_data_tile(&body, expected as usize)
            .map_err(|reason| bad(first, format!("data tile {url}: {reason}")))?;
        let mut out = Vec::with_capacity((end - start) as usize);
        for (i, tl) in leaves.into_iter().enumerate() {
            let index = first + i as u64;
            if index < start {
                continue;
            }
            if index >= end {
                break;
            }
            if let Some(li) = tl.leaf_index
                && li != index
            {
                return Err(bad(index, format!("the entry says it is leaf {li}")));
            }
            let mut chain = Vec::with_capacity(tl.chain_fingerprints.len());
            for fp in &tl.chain_fingerprints {
                chain.push(self.issuer(monitoring_url, fp, index).await?);
            }
            out.push(Leaf {
                hash: leaf_hash(&tl.leaf_input),
                parsed: Ok(Entry {
                    index,
                    timestamp: tl.timestamp,
                    kind: tl.kind,
                    chain,
                    leaf_hash: leaf_hash(&tl.leaf_input),
                }),
            });
        }
        Ok(out)
    }

    /// The tile at `base` (its URL without a partial suffix) with `width` entries in the
    /// tree: the partial tile when `width` is less than a full tile, or the full tile
    /// should the log have filled it since and no longer serve the partial one. Returns the
    /// URL read, its body and the entries it holds.
    pub(super) async fn tile(
        &self,
        base: &str,
        width: u64,
    ) -> Result<(String, bytes::Bytes, u64), CtError> {
        if width < TILE_WIDTH {
            let url = format!("{base}.p/{width}");
            match self.fetcher.get(&url).await {
                Ok(body) => return Ok((url, body, width)),
                Err(CtError::Status { status: 404, .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok((base.to_owned(), self.fetcher.get(base).await?, TILE_WIDTH))
    }

    /// The issuer certificate with SHA-256 fingerprint `fp`, fetched once and checked to hash
    /// to it.
    async fn issuer(
        &self,
        monitoring_url: &str,
        fp: &Hash,
        index: u64,
    ) -> Result<Vec<u8>, CtError> {
        if let Some(der) = self.cached_issuer(fp) {
            return Ok(der);
        }
        let url = format!("{}issuer/{}", Self::base(monitoring_url), hex::encode(fp));
        let body = self.fetcher.get(&url).await?;
        let got: Hash = Sha256::digest(&body).into();
        if got != *fp {
            return Err(Misbehaviour::BadEntries {
                log: self.spec.url.clone(),
                index,
                reason: format!("the issuer at {url} hashes to {}", hex::encode(got)),
            }
            .into());
        }
        let der = body.to_vec();
        if let Ok(mut cache) = self.issuers.lock() {
            cache.insert(*fp, der.clone());
        }
        Ok(der)
    }

    fn cached_issuer(&self, fp: &Hash) -> Option<Vec<u8>> {
        self.issuers.lock().ok()?.get(fp).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tile_paths_follow_the_spec_examples() {
        assert_eq!(tile_path(1_234_067), "x001/x234/067");
        assert_eq!(tile_path(1000), "x001/000");
        assert_eq!(tile_path(1_999_001), "x001/x999/001");
        assert_eq!(tile_path(5), "005");
    }

    #[test]
    fn origin_drops_scheme_and_slash() {
        assert_eq!(origin("https://log.example/2026h1/"), "log.example/2026h1");
    }
}
