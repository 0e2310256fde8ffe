//! `certresponder blocklist` (being built).

use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;

use super::CliError;

/// `blocklist` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum BlocklistCommand {
    /// (being built)
    Placeholder,
}

pub(crate) fn run(_cmd: BlocklistCommand, _config: Option<&Path>) -> Result<ExitCode, CliError> {
    Ok(ExitCode::SUCCESS)
}
