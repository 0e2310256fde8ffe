//! The issuers' typed error.

use std::path::PathBuf;

/// Why an issuer could not do what was asked. `is_retryable` tells whether trying again
/// later can help.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IssuerError {
    /// A file of the issuer's state could not be read or written.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The issuer's stored state is damaged.
    #[error("{}: {reason}", .path.display())]
    BadState {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The certificate signing request is unacceptable.
    #[error("bad CSR: {0}")]
    BadCsr(String),
    /// Key generation or signing failed.
    #[error("crypto: {0}")]
    Crypto(String),
}

impl IssuerError {
    /// Whether retrying the same request later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Io { .. })
    }
}
