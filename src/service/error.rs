//! The service layer's one error type. Its variants say what kind of failure it is, which
//! is what the edges need: the CLI maps it to an exit status, the control socket to an HTTP
//! status, and the remote backend carries it across the socket unchanged, so a command says
//! the same thing whether or not the daemon runs it.

use serde::{Deserialize, Serialize};

use crate::govern::GovernError;
use crate::respond::RespondError;
use crate::store::StoreError;

/// A use case's failure. The message names the file, field, certificate or case at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", content = "message", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ServiceError {
    /// What was asked is malformed or names something that is not there to act on
    /// (exit status 2, HTTP 400).
    #[error("{0}")]
    Input(String),
    /// Governance or the state of things does not allow it (exit status 2, HTTP 403).
    #[error("{0}")]
    Refused(String),
    /// No such case, run or record (exit status 2, HTTP 404).
    #[error("{0}")]
    NotFound(String),
    /// Something else holds what it needs: a case already running for the certificate
    /// (exit status 2, HTTP 409).
    #[error("{0}")]
    Busy(String),
    /// The daemon is stopping, or cannot be asked (exit status 1, HTTP 503).
    #[error("{0}")]
    Unavailable(String),
    /// It was tried and failed: the store, an issuer, a file (exit status 1, HTTP 500).
    #[error("{0}")]
    Failed(String),
}

impl ServiceError {
    /// An input error about `field`: "`field`: why".
    pub fn field(field: &str, why: impl std::fmt::Display) -> Self {
        Self::Input(format!("{field}: {why}"))
    }

    /// Whether this is the caller's mistake (exit status 2) rather than a failure (1).
    pub fn is_input(&self) -> bool {
        matches!(
            self,
            Self::Input(_) | Self::Refused(_) | Self::NotFound(_) | Self::Busy(_)
        )
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        Self::Failed(e.to_string())
    }
}

impl From<RespondError> for ServiceError {
    fn from(e: RespondError) -> Self {
        match e {
            RespondError::UnknownCert(_)
            | RespondError::Removed(_)
            | RespondError::NotActionable { .. } => Self::Input(e.to_string()),
            RespondError::UnknownCase(_) => Self::NotFound(e.to_string()),
            RespondError::Busy { .. } => Self::Busy(e.to_string()),
            other => Self::Failed(other.to_string()),
        }
    }
}

impl From<GovernError> for ServiceError {
    fn from(e: GovernError) -> Self {
        match e {
            GovernError::Respond(e) => e.into(),
            GovernError::Refused(why) => Self::Refused(why),
            other => Self::Failed(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crosses_the_socket_unchanged() {
        for e in [
            ServiceError::Input("`x`: bad".into()),
            ServiceError::Busy("busy".into()),
            ServiceError::Failed("disk full".into()),
        ] {
            let wire = serde_json::to_string(&e).unwrap();
            assert_eq!(serde_json::from_str::<ServiceError>(&wire).unwrap(), e);
        }
        assert!(ServiceError::Refused("no".into()).is_input());
        assert!(!ServiceError::Unavailable("stopping".into()).is_input());
    }

    #[test]
    fn engine_errors_keep_their_kind() {
        let busy: ServiceError = RespondError::Busy {
            cert: "web".into(),
            case: 3,
        }
        .into();
        assert!(matches!(busy, ServiceError::Busy(m) if m.contains("case 3")));
        let refused: ServiceError = GovernError::Refused("twice".into()).into();
        assert_eq!(refused, ServiceError::Refused("twice".into()));
    }
}
