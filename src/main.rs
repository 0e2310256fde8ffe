//! The `certresponder` binary.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use certresponder::cli::{self, Cli, CliError};
use clap::Parser;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CERTRESPONDER_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let parsed = Cli::parse();
    match cli::run(parsed) {
        Ok(code) => code,
        Err(CliError::Input(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
        Err(CliError::Failure(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
