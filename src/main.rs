//! The `certresponder` binary.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use certresponder::cli::{self, Cli, CliError};
use clap::Parser;

/// Logging: `CERTRESPONDER_LOG` filters (default `warn`, `info` for the daemon). The daemon
/// logs to journald when systemd connected it to the journal, else to stderr as text or
/// JSON lines (`run --log-format json`).
fn init_logging(daemon: Option<&str>) {
    use std::io::IsTerminal as _;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("CERTRESPONDER_LOG").unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new(if daemon.is_some() { "info" } else { "warn" })
        });
    let registry = tracing_subscriber::registry().with(filter);
    // Colours only for a person at a terminal: a file, a pipe or a log collector gets text.
    let ansi = std::io::stderr().is_terminal();
    let Some(format) = daemon else {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(ansi)
                    .with_writer(std::io::stderr),
            )
            .init();
        return;
    };
    // systemd sets JOURNAL_STREAM when stderr goes to the journal.
    if std::env::var_os("JOURNAL_STREAM").is_some()
        && let Ok(journald) = tracing_journald::layer()
    {
        registry
            .with(journald.with_syslog_identifier("certresponder".into()))
            .init();
        return;
    }
    if format == "json" {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr),
            )
            .init();
    } else {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(ansi)
                    .with_writer(std::io::stderr),
            )
            .init();
    }
}

fn main() -> ExitCode {
    // What this process creates is its own (files that must be readable by others are given
    // their mode explicitly), and it never leaves a core dump with key material in it.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    let dumpable =
        rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable);
    let parsed = Cli::parse();
    init_logging(parsed.daemon_log_format());
    if let Err(e) = dumpable {
        tracing::warn!(error = %e, "core dumps could not be disabled");
    }
    // `certresponder inventory list | head` closes stdout early: end quietly, as a filter
    // does, instead of reporting the write failure as a crash.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if msg.contains("failed printing to stdout") && msg.contains("Broken pipe") {
            std::process::exit(141);
        }
        default_hook(info);
    }));
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
