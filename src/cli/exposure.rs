//! `certresponder exposure` (being built).

use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;

use super::CliError;

/// `exposure` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum ExposureCommand {
    /// (being built)
    Placeholder,
}

pub(crate) fn run(_cmd: ExposureCommand, _config: Option<&Path>) -> Result<ExitCode, CliError> {
    Ok(ExitCode::SUCCESS)
}
