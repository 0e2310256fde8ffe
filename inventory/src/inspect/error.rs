//! The typed error every inspection function returns.

/// Why bytes could not be inspected. Every variant maps to the `unparseable` finding,
/// except an encrypted key, which is well-formed but unusable by the responder.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InspectError {
    /// The bytes are not a valid object of the expected kind.
    #[error("unparseable {what}: {reason}")]
    Unparseable {
        /// What was expected: `certificate`, `private key`, `public key`, `CSR`.
        what: &'static str,
        /// What is wrong, in words an operator can act on.
        reason: String,
    },
    /// The private key is protected by a passphrase.
    #[error(
        "the private key is encrypted; certresponder needs the unencrypted key (kept 0600) to check and redeploy it"
    )]
    EncryptedKey,
    /// Well-formed, but of a kind certresponder cannot use.
    #[error("unsupported {what}: {reason}")]
    Unsupported {
        /// What was being read.
        what: &'static str,
        /// Why it cannot be used.
        reason: String,
    },
}

impl InspectError {
    pub(crate) fn unparseable(what: &'static str, reason: impl Into<String>) -> Self {
        Self::Unparseable {
            what,
            reason: reason.into(),
        }
    }

    /// The finding id for this error (see the finding vocabulary in the design).
    pub fn check_id(&self) -> &'static str {
        "unparseable"
    }
}
