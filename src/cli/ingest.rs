//! `certresponder ingest` (being built).

use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;

use super::CliError;

/// `ingest` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum IngestCommand {
    /// (being built)
    Placeholder,
}

pub(crate) fn run(_cmd: IngestCommand, _config: Option<&Path>) -> Result<ExitCode, CliError> {
    Ok(ExitCode::SUCCESS)
}
