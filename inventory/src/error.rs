//! Inventory errors: each names the file, the entry and the field it is about.

use std::fmt;
use std::path::PathBuf;

use crate::inspect::InspectError;

/// Where in the inventory an error is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The inventory file.
    pub file: PathBuf,
    /// The entry: its name when it has a valid one, else its position (`#2`).
    pub entry: Option<String>,
    /// The field, dotted for nested ones (`verify[0].address`).
    pub field: Option<String>,
}

impl Location {
    /// A location in a file, with no entry or field.
    pub fn file(file: impl Into<PathBuf>) -> Self {
        Self {
            file: file.into(),
            entry: None,
            field: None,
        }
    }

    /// The same location, narrowed to a field.
    pub fn field(&self, field: impl Into<String>) -> Self {
        Self {
            field: Some(field.into()),
            ..self.clone()
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(e) = &self.entry {
            write!(f, ": entry {e}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": field `{field}`")?;
        }
        Ok(())
    }
}

/// Something wrong with an inventory file or what it points at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InventoryError {
    /// The file cannot be read.
    #[error("{at}: cannot read the file: {reason}")]
    Read {
        /// Where.
        at: Location,
        /// The operating system's reason.
        reason: String,
    },
    /// The file is not valid TOML.
    #[error("{at}: not valid TOML: {reason}")]
    Syntax {
        /// Where.
        at: Location,
        /// The parser's message, with line and column.
        reason: String,
    },
    /// A required field is absent.
    #[error("{at}: required field is missing")]
    MissingField {
        /// Where.
        at: Location,
    },
    /// A field certresponder does not know.
    #[error("{at}: unknown field{}", match .suggestion { Some(s) => format!("; did you mean `{s}`?"), None => format!(" (known fields: {})", .known.join(", ")) })]
    UnknownField {
        /// Where.
        at: Location,
        /// The closest known field.
        suggestion: Option<String>,
        /// Every known field.
        known: Vec<String>,
    },
    /// A field has a value of the wrong type or outside what is allowed.
    #[error("{at}: {reason}")]
    InvalidValue {
        /// Where.
        at: Location,
        /// What is wrong and what is expected.
        reason: String,
    },
    /// Two entries share a name.
    #[error("{at}: the name `{name}` is already used in {}", .first.display())]
    DuplicateName {
        /// Where the second use is.
        at: Location,
        /// The name.
        name: String,
        /// The file of the first use.
        first: PathBuf,
    },
    /// A path field points at a file that cannot be read.
    #[error("{at}: cannot read {}: {reason}", .path.display())]
    UnreadablePath {
        /// Where.
        at: Location,
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        reason: String,
    },
    /// A path field points at a file that cannot be parsed.
    #[error("{at}: {}: {source}", .path.display())]
    Unparseable {
        /// Where.
        at: Location,
        /// The file.
        path: PathBuf,
        /// What is wrong with its contents.
        source: InspectError,
    },
    /// The private key is not the certificate's key.
    #[error("{at}: the key in {} does not match the certificate in {}", .key.display(), .cert.display())]
    KeyMismatch {
        /// Where.
        at: Location,
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// The entry names an issuer the configuration does not declare.
    #[error("{at}: unknown issuer `{issuer}`{}", match .suggestion { Some(s) => format!("; did you mean `{s}`?"), None if .known.is_empty() => "; the configuration declares no [[issuer]]".to_string(), None => format!(" (declared issuers: {})", .known.join(", ")) })]
    UnknownIssuer {
        /// Where.
        at: Location,
        /// The id written.
        issuer: String,
        /// The closest declared id.
        suggestion: Option<String>,
        /// Every declared id.
        known: Vec<String>,
    },
}

impl InventoryError {
    /// Where the error is.
    pub fn location(&self) -> &Location {
        match self {
            Self::Read { at, .. }
            | Self::Syntax { at, .. }
            | Self::MissingField { at }
            | Self::UnknownField { at, .. }
            | Self::InvalidValue { at, .. }
            | Self::DuplicateName { at, .. }
            | Self::UnreadablePath { at, .. }
            | Self::Unparseable { at, .. }
            | Self::KeyMismatch { at, .. }
            | Self::UnknownIssuer { at, .. } => at,
        }
    }
}
