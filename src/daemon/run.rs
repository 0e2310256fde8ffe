//! The daemon's main loop.

/// Runs the daemon until SIGTERM.
pub fn run(
    _args: crate::cli::RunArgs,
    _config: Option<&std::path::Path>,
) -> Result<std::process::ExitCode, crate::cli::CliError> {
    Ok(std::process::ExitCode::SUCCESS)
}
