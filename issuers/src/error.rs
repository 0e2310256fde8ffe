//! The issuers' typed error.

use std::path::PathBuf;
use std::time::Duration;

/// Why an issuer could not do what was asked. [`IssuerError::is_retryable`] tells whether
/// trying the same request again later can help.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IssuerError {
    /// The CA asked us to slow down (HTTP 429, ACME `rateLimited`).
    #[error("rate limited{}: {detail}", match .retry_after { Some(d) => format!(" (retry after {}s)", d.as_secs()), None => String::new() })]
    RateLimited {
        /// How long the CA asked us to wait, when it said.
        retry_after: Option<Duration>,
        /// The CA's words.
        detail: String,
    },
    /// The CA could not be reached.
    #[error("network: {0}")]
    Network(String),
    /// The CA failed on its side (HTTP 5xx, ACME `serverInternal`).
    #[error("CA server error: {0}")]
    Server(String),
    /// A TLS connection to the CA failed in a way trying again cannot mend (its certificate
    /// is not trusted, no common protocol): the message names the fix.
    #[error("TLS: {0}")]
    Tls(String),
    /// The CA's name does not resolve.
    #[error("DNS: {0}")]
    Dns(String),
    /// Took longer than allowed.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The CA refused our credentials or authority (ACME `unauthorized`, `accountDoesNotExist`).
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// The certificate signing request is unacceptable.
    #[error("bad CSR: {0}")]
    BadCsr(String),
    /// The issuer may not issue for a requested name (ACME `rejectedIdentifier`).
    #[error("not allowed: {0}")]
    NotAllowed(String),
    /// The certificate is already revoked.
    #[error("already revoked: {0}")]
    AlreadyRevoked(String),
    /// The request itself is malformed (garbage certificate, unknown profile...).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The issuer does not offer this operation (such as ARI on a CA without renewalInfo).
    #[error("unsupported by this issuer: {0}")]
    Unsupported(String),
    /// The CA's answer could not be understood.
    #[error("protocol: {0}")]
    Protocol(String),
    /// An external issuer command failed.
    #[error("issuer command failed ({status}): {stderr}")]
    Command {
        /// Exit status, or how it ended.
        status: String,
        /// What it wrote to stderr (trimmed).
        stderr: String,
    },
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
        /// The file or storage key.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The issuer's configuration is wrong.
    #[error("issuer `{issuer}`: field `{field}`: {message}")]
    Config {
        /// Issuer id.
        issuer: String,
        /// The field.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The adapter's storage failed.
    #[error("issuer storage: {0}")]
    Storage(String),
    /// Key generation or signing failed.
    #[error("crypto: {0}")]
    Crypto(String),
}

impl IssuerError {
    /// Whether retrying the same request later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::RateLimited { .. }
                | Self::Network(_)
                | Self::Server(_)
                | Self::Timeout(_)
                | Self::Io { .. }
                | Self::Storage(_)
        )
    }
}
