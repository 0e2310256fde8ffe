//! Starting to monitor a log at its end rather than at its first entry: the frontier of
//! the latest tree is rebuilt from its right edge, so that reading goes on from there
//! without downloading the log's history (public logs hold hundreds of millions of
//! entries).
//!
//! - RFC 6962: the last entry and its audit path (`get-entry-and-proof`, or `get-entries`
//!   and `get-proof-by-hash` where the log does not offer it).
//! - static-ct-api: the rightmost (partial) hash tile at each level.
//!
//! Either way the root of the rebuilt frontier must be the signed root; a log whose answers
//! do not lead to it has misbehaved. The same hash tiles also prove that a position reached
//! while reading a static-ct-api log is a prefix of the signed tree (static-ct-api logs serve
//! no consistency proofs).

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Deserialize;

use super::merkle::{Frontier, Hash, leaf_hash, subtree_root};
use super::monitor::Monitor;
use super::static_ct::{TILE_WIDTH, tile_path};
use super::{CtError, LogKind, Misbehaviour, Position, Sth};

/// Hashes per tile level: a tile at level `l` holds the hashes of subtrees of `2^(8l)`
/// leaves.
const TILE_HEIGHT: u32 = 8;

#[derive(Deserialize)]
struct EntryAndProof {
    leaf_input: String,
    audit_path: Vec<String>,
}

#[derive(Deserialize)]
struct ProofByHash {
    leaf_index: u64,
    audit_path: Vec<String>,
}

#[derive(Deserialize)]
struct Entries {
    entries: Vec<RawEntry>,
}

#[derive(Deserialize)]
struct RawEntry {
    leaf_input: String,
}

fn bad_response(url: &str, reason: String) -> CtError {
    CtError::BadResponse {
        url: url.to_owned(),
        reason,
    }
}

fn json<T: serde::de::DeserializeOwned>(url: &str, body: &[u8]) -> Result<T, CtError> {
    serde_json::from_slice(body)
        .map_err(|e| bad_response(url, format!("not the expected JSON: {e}")))
}

fn hashes(url: &str, list: &[String]) -> Result<Vec<Hash>, CtError> {
    list.iter()
        .map(|h| {
            let bytes = B64
                .decode(h)
                .map_err(|e| bad_response(url, format!("`audit_path` is not base64: {e}")))?;
            <Hash>::try_from(bytes.as_slice()).map_err(|_| {
                bad_response(
                    url,
                    format!("an `audit_path` hash is {} bytes, not 32", bytes.len()),
                )
            })
        })
        .collect()
}

impl Monitor {
    /// The position at the log's latest tree head, its frontier rebuilt from the tree's
    /// right edge and checked against the signed root, with that tree head. Entries before
    /// it are never read.
    pub async fn start_at_end(&self) -> Result<(Position, Sth), CtError> {
        let sth = self.latest_sth().await?;
        if sth.tree_size == 0 {
            return Ok((Position::start(), sth));
        }
        let frontier = match &self.spec.kind {
            LogKind::Rfc6962 => self.rfc6962_right_edge(sth.tree_size).await?,
            LogKind::StaticCt { monitoring_url } => {
                self.static_right_edge(monitoring_url, sth.tree_size)
                    .await?
            }
        };
        let root = frontier.root();
        if root != sth.root_hash {
            return Err(Misbehaviour::RootMismatch {
                log: self.spec.url.clone(),
                from: sth.tree_size - 1,
                tree_size: sth.tree_size,
                signed: hex::encode(sth.root_hash),
                computed: hex::encode(root),
            }
            .into());
        }
        Ok((
            Position {
                tree_size: sth.tree_size,
                root_hash: root,
                frontier,
            },
            sth,
        ))
    }

    /// The frontier of the tree of `size` from its last entry and that entry's audit path.
    async fn rfc6962_right_edge(&self, size: u64) -> Result<Frontier, CtError> {
        let base = Self::base(&self.spec.url);
        let last = size - 1;
        let url = format!("{base}ct/v1/get-entry-and-proof?leaf_index={last}&tree_size={size}");
        let (leaf, path) = match self.fetcher.get(&url).await {
            Ok(body) => {
                let raw: EntryAndProof = json(&url, &body)?;
                let input = B64
                    .decode(&raw.leaf_input)
                    .map_err(|e| bad_response(&url, format!("`leaf_input` is not base64: {e}")))?;
                (leaf_hash(&input), hashes(&url, &raw.audit_path)?)
            }
            // Not every log offers get-entry-and-proof: the entry, then its proof by hash.
            Err(CtError::Status {
                status: 400 | 404 | 405 | 501,
                ..
            }) => self.rfc6962_last_by_hash(&base, last, size).await?,
            Err(e) => return Err(e),
        };
        Frontier::from_last_leaf(size, &leaf, &path).map_err(|e| {
            Misbehaviour::BadEntries {
                log: self.spec.url.clone(),
                index: last,
                reason: format!("the audit path of the last entry: {e}"),
            }
            .into()
        })
    }

    async fn rfc6962_last_by_hash(
        &self,
        base: &str,
        last: u64,
        size: u64,
    ) -> Result<(Hash, Vec<Hash>), CtError> {
        let url = format!("{base}ct/v1/get-entries?start={last}&end={last}");
        let body = self.fetcher.get(&url).await?;
        let raw: Entries = json(&url, &body)?;
        let [entry] = raw.entries.as_slice() else {
            return Err(Misbehaviour::BadEntries {
                log: self.spec.url.clone(),
                index: last,
                reason: format!("asked for entry {last}, got {} entries", raw.entries.len()),
            }
            .into());
        };
        let input = B64
            .decode(&entry.leaf_input)
            .map_err(|e| bad_response(&url, format!("`leaf_input` is not base64: {e}")))?;
        let leaf = leaf_hash(&input);
        let url = format!(
            "{base}ct/v1/get-proof-by-hash?hash={}&tree_size={size}",
            // Standard base64 in a query: `+`, `/` and `=` escaped.
            B64.encode(leaf)
                .replace('+', "%2B")
                .replace('/', "%2F")
                .replace('=', "%3D")
        );
        let body = self.fetcher.get(&url).await?;
        let raw: ProofByHash = json(&url, &body)?;
        if raw.leaf_index != last {
            // The same leaf twice in the log: the proof is for its first place.
            return Err(bad_response(
                &url,
                format!(
                    "the proof is for leaf {}, an earlier copy of entry {last}; start this log at its beginning instead",
                    raw.leaf_index
                ),
            ));
        }
        Ok((leaf, hashes(&url, &raw.audit_path)?))
    }

    /// The frontier of the tree of `size` from the hash tiles on its right edge: one
    /// subtree root per set bit of `size`, each from the hashes of one tile.
    async fn static_right_edge(
        &self,
        monitoring_url: &str,
        size: u64,
    ) -> Result<Frontier, CtError> {
        self.static_extend(monitoring_url, Frontier::new(), size)
            .await
    }

    /// Proves from hash tiles that `frontier` is a prefix of the tree `sth`: the subtrees
    /// covering the rest of the tree, read from the tiles, must give the signed root with
    /// it. That is a consistency proof for a static-ct-api log, which serves no proofs.
    pub(super) async fn static_prefix(
        &self,
        monitoring_url: &str,
        frontier: &Frontier,
        sth: &Sth,
    ) -> Result<(), CtError> {
        let whole = self
            .static_extend(monitoring_url, frontier.clone(), sth.tree_size)
            .await?;
        if whole.root() == sth.root_hash {
            Ok(())
        } else {
            Err(Misbehaviour::Inconsistent {
                log: self.spec.url.clone(),
                first: frontier.size(),
                second: sth.tree_size,
                reason: format!(
                    "the root recomputed from the entries up to {} and the hash tiles after them is not the signed root",
                    frontier.size()
                ),
            }
            .into())
        }
    }

    /// `frontier` extended to `size` leaves by the complete subtrees that cover the rest,
    /// each the largest aligned one that fits, its root computed from one hash tile.
    async fn static_extend(
        &self,
        monitoring_url: &str,
        mut frontier: Frontier,
        size: u64,
    ) -> Result<Frontier, CtError> {
        let mut tiles: HashMap<(u32, u64), Vec<Hash>> = HashMap::new();
        while frontier.size() < size {
            let at = frontier.size();
            let mut height = if at == 0 { 63 } else { at.trailing_zeros() };
            while at + (1u64 << height) > size {
                height -= 1;
            }
            // The subtree's hashes at its tile level: `2^below` of them, aligned, so in one
            // tile.
            let index = at >> height;
            let level = height / TILE_HEIGHT;
            let below = height % TILE_HEIGHT;
            let first = index << below;
            let tile = first / TILE_WIDTH;
            if let std::collections::hash_map::Entry::Vacant(v) = tiles.entry((level, tile)) {
                v.insert(self.hash_tile(monitoring_url, level, tile, size).await?);
            }
            let got = &tiles[&(level, tile)];
            let from = usize::try_from(first % TILE_WIDTH).unwrap_or(usize::MAX);
            let to = from + (1usize << below);
            let Some(part) = got.get(from..to) else {
                return Err(Misbehaviour::BadEntries {
                    log: self.spec.url.clone(),
                    index: at,
                    reason: format!(
                        "hash tile {level}/{} has {} hashes, the tree of {size} needs {to}",
                        tile_path(tile),
                        got.len()
                    ),
                }
                .into());
            };
            if frontier.push_subtree(height, subtree_root(part)).is_none() {
                return Err(CtError::BadPosition {
                    log: self.spec.url.clone(),
                    reason: format!("a subtree of height {height} does not fit at {at}"),
                });
            }
        }
        Ok(frontier)
    }

    /// The hashes of tile `n` at `level` in the tree of `size`: the partial tile where the
    /// tree ends inside it (the full tile should the log have filled it since).
    async fn hash_tile(
        &self,
        monitoring_url: &str,
        level: u32,
        n: u64,
        size: u64,
    ) -> Result<Vec<Hash>, CtError> {
        let complete = size >> (level * TILE_HEIGHT);
        let width = (complete - n * TILE_WIDTH).min(TILE_WIDTH);
        let base = format!(
            "{}tile/{level}/{}",
            Self::base(monitoring_url),
            tile_path(n)
        );
        let (url, body, expected) = self.tile(&base, width).await?;
        if body.len() as u64 != expected * 32 {
            return Err(Misbehaviour::BadEntries {
                log: self.spec.url.clone(),
                index: (n * TILE_WIDTH) << (level * TILE_HEIGHT),
                reason: format!(
                    "hash tile {url} is {} bytes, not {} ({expected} hashes)",
                    body.len(),
                    expected * 32
                ),
            }
            .into());
        }
        Ok(body
            .chunks_exact(32)
            .map(|c| <Hash>::try_from(c).unwrap_or_default())
            .collect())
    }
}
