//! Certificate Transparency log client: reads RFC 6962 logs (`get-sth`, `get-entries`,
//! `get-sth-consistency`) and static-ct-api logs (signed checkpoint, data tiles, issuers),
//! checks every signed tree head's signature, recomputes the Merkle root from the entries
//! and checks it against the tree head, and hands each entry to the caller.
//!
//! A bad signature, an inconsistent tree or a root that does not match is a
//! [`Misbehaviour`] of the log, reported as an error, never skipped. The saved [`Position`]
//! only advances to a tree size whose root was verified.

mod bootstrap;
pub mod config;
pub mod entry;
mod fetch;
pub mod loglist;
pub mod merkle;
mod monitor;
pub mod poll;
mod rfc6962;
mod static_ct;
pub mod sth;
#[cfg(test)]
mod testlog;
mod tls;

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use entry::{Entry, EntryKind, MalformedEntry, TileLeaf};
pub use merkle::{Frontier, Hash};
pub use monitor::{Monitor, Update};
pub use static_ct::tile_path;
pub use sth::{Sth, log_id};

/// Which API a log speaks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum LogKind {
    /// RFC 6962: `<url>/ct/v1/get-sth`, `get-entries`, `get-sth-consistency`.
    Rfc6962,
    /// c2sp.org/static-ct-api: `url` is the submission prefix (which names the checkpoint's
    /// origin); the checkpoint, tiles and issuers are read from `monitoring_url`.
    StaticCt {
        /// The monitoring prefix.
        monitoring_url: String,
    },
}

/// One log to monitor, as a log list describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogSpec {
    /// The log's URL (RFC 6962) or submission prefix (static-ct-api).
    pub url: String,
    /// The log's public key, DER SubjectPublicKeyInfo (ECDSA P-256 or RSA).
    pub public_key_der: Vec<u8>,
    /// Its API.
    pub kind: LogKind,
    /// The most entries asked for in one `get-entries` request (RFC 6962; tiles are 256).
    pub max_batch: u64,
    /// The most requests per second sent to this log, if limited.
    pub rate_per_sec: Option<f64>,
    /// How many batches are fetched at once; entries are still delivered in order.
    pub parallel: usize,
}

impl LogSpec {
    /// A spec with certspotter's defaults: batches of 1000, one request at a time, no rate
    /// limit.
    pub fn new(url: impl Into<String>, public_key_der: Vec<u8>, kind: LogKind) -> Self {
        Self {
            url: url.into(),
            public_key_der,
            kind,
            max_batch: 1000,
            rate_per_sec: None,
            parallel: 1,
        }
    }

    /// The log ID: SHA-256 of its key (RFC 6962 §3.2).
    pub fn log_id(&self) -> Hash {
        log_id(&self.public_key_der)
    }
}

/// How far a log has been read and verified: the tree head last verified and the frontier
/// of its tree, from which reading continues. Serializable, for the caller to store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// The verified tree size: entries `0..tree_size` have been read.
    pub tree_size: u64,
    /// The verified root of that tree.
    pub root_hash: Hash,
    /// The frontier of that tree.
    pub frontier: Frontier,
}

impl Position {
    /// The position before any entry: the empty tree.
    pub fn start() -> Self {
        Self {
            tree_size: 0,
            root_hash: merkle::empty_root(),
            frontier: Frontier::new(),
        }
    }
}

impl Default for Position {
    /// [`Position::start`].
    fn default() -> Self {
        Self::start()
    }
}

/// The log did something an honest log cannot: an alert, never skipped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Misbehaviour {
    /// A tree head's signature does not verify with the log's key.
    #[error("log {log}: the tree head for size {tree_size} has a bad signature: {reason}")]
    BadSignature {
        /// The log's URL.
        log: String,
        /// The size the head claims.
        tree_size: u64,
        /// Why it failed.
        reason: String,
    },
    /// The new tree does not extend the verified one.
    #[error(
        "log {log}: the tree of size {second} is not consistent with the verified tree of size {first}: {reason}"
    )]
    Inconsistent {
        /// The log's URL.
        log: String,
        /// The verified size.
        first: u64,
        /// The new size.
        second: u64,
        /// Why.
        reason: String,
    },
    /// The root recomputed from the entries differs from the signed one.
    #[error(
        "log {log}: the root recomputed from entries {from}..{tree_size} is {computed}, but the log signed {signed} for size {tree_size}"
    )]
    RootMismatch {
        /// The log's URL.
        log: String,
        /// The verified size the entries were read from.
        from: u64,
        /// The signed size.
        tree_size: u64,
        /// The signed root, hex.
        signed: String,
        /// The recomputed root, hex.
        computed: String,
    },
    /// The latest tree head is smaller than one already verified.
    #[error(
        "log {log}: the latest tree head has size {latest}, smaller than the verified {verified}"
    )]
    Shrunk {
        /// The log's URL.
        log: String,
        /// The verified size.
        verified: u64,
        /// The latest size.
        latest: u64,
    },
    /// The log served entries that cannot be its entries (too many, none, a wrong leaf
    /// index, a data tile that cannot be read, an issuer whose hash differs).
    #[error("log {log}: bad entries at index {index}: {reason}")]
    BadEntries {
        /// The log's URL.
        log: String,
        /// The first index concerned.
        index: u64,
        /// What is wrong.
        reason: String,
    },
}

/// Why reading a log failed. Each names the log or URL it is about.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CtError {
    /// The log misbehaved: an alert.
    #[error(transparent)]
    Misbehaviour(#[from] Misbehaviour),
    /// No answer: the connection, TLS or the transfer failed.
    #[error("{url}: cannot fetch: {reason}")]
    Fetch {
        /// The URL.
        url: String,
        /// The error with its causes.
        reason: String,
    },
    /// The request took longer than allowed.
    #[error("{url}: no complete answer within {timeout:?}")]
    Timeout {
        /// The URL.
        url: String,
        /// The time allowed.
        timeout: Duration,
    },
    /// The log answered with a non-2xx status other than a retried 429/503.
    #[error("{url}: the log answered HTTP {status}")]
    Status {
        /// The URL.
        url: String,
        /// The status.
        status: u16,
    },
    /// The log kept answering 429 or 503 after every retry.
    #[error("{url}: the log is still rate limiting or unavailable after {attempts} attempts")]
    RateLimited {
        /// The URL.
        url: String,
        /// The attempts made.
        attempts: u32,
    },
    /// The answer is larger than the limit.
    #[error("{url}: the answer is larger than {limit} bytes")]
    TooLarge {
        /// The URL.
        url: String,
        /// The limit.
        limit: usize,
    },
    /// The answer is not what the API defines (bad JSON, bad base64, a bad checkpoint).
    #[error("{url}: unexpected answer: {reason}")]
    BadResponse {
        /// The URL.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The saved position is not a valid one (its frontier does not give its root).
    #[error("log {log}: the saved position is invalid: {reason}")]
    BadPosition {
        /// The log's URL.
        log: String,
        /// Why.
        reason: String,
    },
}
