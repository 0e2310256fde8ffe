//! The CLI's side of the control socket (being written).

use std::path::Path;
use std::process::ExitCode;

use super::CliError;

/// `certresponder status`.
pub(crate) fn run_status(_config: Option<&Path>, _json: bool) -> Result<ExitCode, CliError> {
    Ok(ExitCode::SUCCESS)
}
