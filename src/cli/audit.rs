//! `certresponder audit` (being built).

use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;

use super::CliError;

/// `audit` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// Verify the chain
    Verify,
}

pub(crate) fn run(_cmd: AuditCommand, _config: Option<&Path>) -> Result<ExitCode, CliError> {
    Ok(ExitCode::SUCCESS)
}
