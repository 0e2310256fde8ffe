//! Reading a log from a saved position to its latest verified tree head: the tree head's
//! signature, consistency with the saved tree, every entry hashed into the frontier and
//! handed to the caller in order, and the recomputed root checked against the signed one.

use std::collections::HashMap;
use std::sync::Mutex;

use futures_util::StreamExt;

use super::entry::{Entry, MalformedEntry};
use super::fetch::Fetcher;
use super::merkle::{self, Hash};
use super::{CtError, LogKind, LogSpec, Misbehaviour, Position, Sth};
use crate::http_client::HttpClient;

/// One leaf read from the log: its hash (always) and its parsed entry (or why not).
pub(super) struct Leaf {
    pub(super) hash: Hash,
    pub(super) parsed: Result<Entry, MalformedEntry>,
}

/// Reads one log. Holds the HTTP client, the log's rate limit and (static-ct-api) the
/// issuers fetched so far.
#[derive(Debug)]
pub struct Monitor {
    pub(super) spec: LogSpec,
    pub(super) fetcher: Fetcher,
    pub(super) issuers: Mutex<HashMap<Hash, Vec<u8>>>,
}

/// The outcome of a successful [`Monitor::update`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    /// The new position, at the verified tree head; store it.
    pub position: Position,
    /// The verified tree head.
    pub sth: Sth,
    /// How many entries were handed to the callback.
    pub entries: u64,
}

impl Monitor {
    /// A monitor for `spec`, using `http` for its requests.
    pub fn new(spec: LogSpec, http: HttpClient) -> Self {
        let fetcher = Fetcher::new(http, spec.rate_per_sec);
        Self {
            spec,
            fetcher,
            issuers: Mutex::new(HashMap::new()),
        }
    }

    /// The log's spec.
    pub fn spec(&self) -> &LogSpec {
        &self.spec
    }

    /// The log's URL with one trailing slash, for joining paths.
    pub(super) fn base(url: &str) -> String {
        format!("{}/", url.trim_end_matches('/'))
    }

    /// The latest tree head, its signature verified against the log's key.
    pub async fn latest_sth(&self) -> Result<Sth, CtError> {
        match &self.spec.kind {
            LogKind::Rfc6962 => self.rfc6962_sth().await,
            LogKind::StaticCt { monitoring_url } => self.checkpoint(monitoring_url).await,
        }
    }

    /// Reads the log from `saved` to its latest tree head: verifies the head's signature and
    /// its consistency with `saved`, downloads the new entries in batches (several at once
    /// when `parallel` > 1), hands each to `on_entry` in index order (a malformed entry as
    /// an error carrying its index) and checks the root recomputed from them. Only then is
    /// the new position returned; on any error the caller keeps `saved`, and the entries
    /// since are delivered again on the next call.
    ///
    /// Entries reach `on_entry` before the root over them is checked: treat them as
    /// unverified until this returns `Ok` (certspotter does the same).
    pub async fn update<F>(&self, saved: &Position, on_entry: F) -> Result<Update, CtError>
    where
        F: FnMut(Result<Entry, MalformedEntry>),
    {
        self.update_with_progress(saved, on_entry, |_| {}, 0).await
    }

    /// [`Monitor::update`], also reporting verified intermediate positions, so that a long
    /// backlog is not read again from the start after an interruption. After at least
    /// `every` (> 0) further entries the root recomputed so far is proven to be a prefix of
    /// the signed tree (RFC 6962: by a `get-sth-consistency` proof; static-ct-api: by the
    /// hash tiles covering the rest of the tree), and that position is handed to
    /// `on_progress` to store. A proof that fails is [`Misbehaviour::Inconsistent`].
    pub async fn update_with_progress<F, P>(
        &self,
        saved: &Position,
        mut on_entry: F,
        mut on_progress: P,
        every: u64,
    ) -> Result<Update, CtError>
    where
        F: FnMut(Result<Entry, MalformedEntry>),
        P: FnMut(&Position),
    {
        let log = self.spec.url.clone();
        if saved.frontier.size() != saved.tree_size || saved.frontier.root() != saved.root_hash {
            return Err(CtError::BadPosition {
                log,
                reason: format!(
                    "its frontier (size {}) does not give its root for size {}",
                    saved.frontier.size(),
                    saved.tree_size
                ),
            });
        }
        let sth = self.latest_sth().await?;
        if sth.tree_size < saved.tree_size {
            return Err(Misbehaviour::Shrunk {
                log,
                verified: saved.tree_size,
                latest: sth.tree_size,
            }
            .into());
        }
        if sth.tree_size == saved.tree_size {
            if sth.root_hash != saved.root_hash {
                return Err(Misbehaviour::Inconsistent {
                    log,
                    first: saved.tree_size,
                    second: sth.tree_size,
                    reason: "two different roots for the same size".into(),
                }
                .into());
            }
            return Ok(Update {
                position: saved.clone(),
                sth,
                entries: 0,
            });
        }
        if saved.tree_size > 0 {
            match &self.spec.kind {
                LogKind::Rfc6962 => {
                    let proof = self
                        .rfc6962_consistency(saved.tree_size, sth.tree_size)
                        .await?;
                    merkle::verify_consistency(
                        saved.tree_size,
                        sth.tree_size,
                        &saved.root_hash,
                        &sth.root_hash,
                        &proof,
                    )
                    .map_err(|e| Misbehaviour::Inconsistent {
                        log: log.clone(),
                        first: saved.tree_size,
                        second: sth.tree_size,
                        reason: e.to_string(),
                    })?;
                }
                LogKind::StaticCt { monitoring_url } => {
                    self.static_prefix(monitoring_url, &saved.frontier, &sth)
                        .await?;
                }
            }
        }
        let mut frontier = saved.frontier.clone();
        let mut entries = 0u64;
        let parallel = self.spec.parallel.max(1);
        let ranges = self.ranges(saved.tree_size, sth.tree_size);
        let size = sth.tree_size;
        let mut batches = futures_util::stream::iter(ranges)
            .map(|(start, end)| self.fetch_range(start, end, size))
            .buffered(parallel);
        let checkpoints = every > 0;
        let mut reported = saved.tree_size;
        while let Some(batch) = batches.next().await {
            for leaf in batch? {
                frontier.push(leaf.hash);
                entries += 1;
                on_entry(leaf.parsed);
            }
            let m = frontier.size();
            if checkpoints && m - reported >= every && m < sth.tree_size {
                let root = frontier.root();
                match &self.spec.kind {
                    LogKind::Rfc6962 => {
                        let proof = self.rfc6962_consistency(m, sth.tree_size).await?;
                        merkle::verify_consistency(m, sth.tree_size, &root, &sth.root_hash, &proof)
                            .map_err(|e| Misbehaviour::Inconsistent {
                                log: log.clone(),
                                first: m,
                                second: sth.tree_size,
                                reason: format!(
                                    "the root recomputed from the entries up to {m} is not a prefix of the signed tree: {e}"
                                ),
                            })?;
                    }
                    LogKind::StaticCt { monitoring_url } => {
                        self.static_prefix(monitoring_url, &frontier, &sth).await?;
                    }
                }
                reported = m;
                on_progress(&Position {
                    tree_size: m,
                    root_hash: root,
                    frontier: frontier.clone(),
                });
            }
        }
        drop(batches);
        let computed = frontier.root();
        if frontier.size() != sth.tree_size || computed != sth.root_hash {
            return Err(Misbehaviour::RootMismatch {
                log,
                from: saved.tree_size,
                tree_size: sth.tree_size,
                signed: hex::encode(sth.root_hash),
                computed: hex::encode(computed),
            }
            .into());
        }
        tracing::debug!(log = %self.spec.url, from = saved.tree_size, to = sth.tree_size, "verified log entries");
        Ok(Update {
            position: Position {
                tree_size: sth.tree_size,
                root_hash: sth.root_hash,
                frontier,
            },
            sth,
            entries,
        })
    }

    /// The batches `[start, end)` that cover `from..to`: of `max_batch` entries for RFC 6962
    /// logs, one per data tile for static-ct-api logs.
    /// Lazy, so that a backlog of millions of batches costs no memory up front.
    fn ranges(&self, from: u64, to: u64) -> impl Iterator<Item = (u64, u64)> + use<> {
        let step = match self.spec.kind {
            LogKind::Rfc6962 => self.spec.max_batch.max(1),
            LogKind::StaticCt { .. } => super::static_ct::TILE_WIDTH,
        };
        // Aligned to the step, so that tiles (and certspotter-style jobs) are whole.
        let next = move |s: u64| (s, (s / step).saturating_add(1).saturating_mul(step).min(to));
        std::iter::successors((from < to).then(|| next(from)), move |&(_, e)| {
            (e < to).then(|| next(e))
        })
    }

    /// The leaves `start..end` of the tree of `tree_size`, in order.
    async fn fetch_range(
        &self,
        start: u64,
        end: u64,
        tree_size: u64,
    ) -> Result<Vec<Leaf>, CtError> {
        match &self.spec.kind {
            LogKind::Rfc6962 => self.rfc6962_entries(start, end).await,
            LogKind::StaticCt { monitoring_url } => {
                self.static_tile(monitoring_url, start, end, tree_size)
                    .await
            }
        }
    }
}
