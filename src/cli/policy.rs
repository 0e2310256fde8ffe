//! `certresponder policy` (being built).

use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;

use super::CliError;

/// `policy` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum PolicyCommand {
    /// Validate the policy
    Check,
}

pub(crate) fn run(_cmd: PolicyCommand, _config: Option<&Path>) -> Result<ExitCode, CliError> {
    Ok(ExitCode::SUCCESS)
}
