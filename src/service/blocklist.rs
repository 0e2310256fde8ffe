//! Blocklists of published private keys, kept in the state directory: import and remove.
//! The list travels as content, read by the command with its caller's permissions, and is
//! written by whoever owns the state directory (the daemon, while it runs).

use std::path::PathBuf;

use base64::Engine as _;
use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::{Ctx, Op, Role, Service, ServiceError};
use crate::signals::exposure::blocklist::{self, BlocklistError, Format, Imported, ListInfo};

/// `blocklist import FILE [--format F] [--name N]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImportArgs {
    /// The file as the caller named it, absolute (for messages and the index).
    pub source: PathBuf,
    /// Its content, base64.
    pub content_b64: String,
    /// Its format, when given.
    pub format: Option<Format>,
    /// The list's name, when given.
    pub name: Option<String>,
}

/// Imports a list (or replaces the list of the same name).
pub struct Import;

impl Op for Import {
    const NAME: &'static str = "blocklist_import";
    const CHANGES: bool = true;
    const ROLE: Role = Role::Operate;
    type Args = ImportArgs;
    type Output = Imported;

    fn run(svc: &Service, _ctx: &Ctx<'_>, args: ImportArgs) -> Result<Imported, ServiceError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(args.content_b64.as_bytes())
            .map_err(|e| ServiceError::field("content_b64", e))?;
        blocklist::import_bytes(
            &svc.config().blocklist_dir(),
            &args.source,
            bytes,
            args.format,
            args.name.as_deref(),
            Utc::now(),
        )
        .map_err(|e| match &e {
            // About the state directory, not the list.
            BlocklistError::Io { path, .. } | BlocklistError::Index { path, .. }
                if *path != args.source =>
            {
                ServiceError::Failed(e.to_string())
            }
            _ => ServiceError::Input(e.to_string()),
        })
    }
}

/// `blocklist remove NAME`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RemoveArgs {
    /// The list's name.
    pub name: String,
}

/// Removes an imported list.
pub struct Remove;

impl Op for Remove {
    const NAME: &'static str = "blocklist_remove";
    const CHANGES: bool = true;
    const ROLE: Role = Role::Operate;
    type Args = RemoveArgs;
    type Output = ListInfo;

    fn run(svc: &Service, _ctx: &Ctx<'_>, args: RemoveArgs) -> Result<ListInfo, ServiceError> {
        blocklist::remove(&svc.config().blocklist_dir(), &args.name).map_err(|e| match e {
            BlocklistError::NotFound { .. } => ServiceError::Input(e.to_string()),
            other => ServiceError::Failed(other.to_string()),
        })
    }
}
