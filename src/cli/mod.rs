//! The command line: `certresponder [--config PATH] <command>`.
//!
//! Exit status: 0 success, 1 failure, 2 usage or input error (a bad inventory, config or
//! argument).

mod analyze;
mod audit;
mod backend;
mod blocklist;
mod cases;
mod check_config;
mod ct;
pub(crate) mod distrust;
mod exposure;
mod govern;
mod ingest;
mod inventory;
mod policy;
mod quickstart;
pub(crate) mod remote;
mod respond;
mod signals;
pub mod table;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Config;

/// Certificate lifecycle responder: keeps an inventory of certificates, watches them for
/// compromise signals and answers each with a governed revoke-and-reissue.
#[derive(Debug, Parser)]
#[command(name = "certresponder", version, about, long_about = None)]
pub struct Cli {
    /// Configuration file [default: /etc/certresponder/certresponder.toml when it exists]
    #[arg(long, global = true, env = "CERTRESPONDER_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Register, list, show, remove and validate managed certificates
    #[command(subcommand)]
    Inventory(inventory::InventoryCommand),
    /// Build a self-contained demo (internal CA, sample services) and register it
    Quickstart(quickstart::QuickstartArgs),
    /// Check certificates, CSRs and keys in files for weak parameters and rule violations
    Analyze(analyze::AnalyzeArgs),
    /// Run every detector over the registered inventory and store the signals
    #[command(
        after_help = "Exit status: 0 no open signals; 3 open signals remain; 1 failure; 2 input error."
    )]
    Scan {
        /// Machine-readable output
        #[arg(long)]
        json: bool,
        /// Skip the checks that ask the CAs (revocation status, CRLs, ARI renewal windows)
        #[arg(long)]
        no_ca: bool,
    },
    /// List stored signals, or suppress one
    Signals {
        #[command(subcommand)]
        action: Option<signals::SignalsAction>,
        /// Include resolved signals
        #[arg(long)]
        all: bool,
        /// Machine-readable output
        #[arg(long)]
        json: bool,
    },
    /// Report a private key as compromised: records a confirmed signal and runs a
    /// revoke-and-reissue (keyCompromise)
    #[command(
        after_help = "Exit status: 0 the case is done; 1 it failed (see `certresponder cases show`); 2 input error."
    )]
    ReportCompromise(respond::ReportArgs),
    /// Reissue a certificate with a new key (optionally revoking the old one)
    #[command(
        after_help = "Exit status: 0 the case is done; 1 it failed (see `certresponder cases show`); 2 input error."
    )]
    Reissue(respond::ReissueArgs),
    /// Resume unfinished sequences, then act on the stored signals
    #[command(
        after_help = "Each certificate's open signals are decided by the policy (`policy` in the config; the built-in default: `certresponder policy show-default`). Cases that need approval, or that the blast-radius breaker holds, wait for `certresponder approve`.\nExit status: 0 every case that ran is done; 1 a case failed; 2 input error."
    )]
    Respond(respond::RespondArgs),
    /// Distrust a CA: replace every certificate it signed through each entry's
    /// `fallback_issuer`, earliest deadline and most critical first
    #[command(
        after_help = "The distrust is recorded, so later scans still find certificates it affects (`--list` shows every distrusted CA, `--remove` forgets one).\nExit status: 0 every affected certificate was replaced; 1 a replacement failed; 3 some wait for approval or were escalated; 2 input error."
    )]
    Distrust(distrust::DistrustArgs),
    /// Certificate Transparency: log status, one polling pass, the watch list
    #[command(subcommand)]
    Ct(ct::CtCommand),
    /// List cases, or show one with every step
    #[command(subcommand)]
    Cases(cases::CasesCommand),
    /// List a certificate's bundles, newest first, with their states
    History {
        /// The certificate's inventory name
        name: String,
        /// Machine-readable output
        #[arg(long)]
        json: bool,
    },
    /// Restore an earlier bundle to every location, reload and verify it
    Rollback(cases::RollbackArgs),
    /// Approve a case that waits for approval; it runs once it has every approval it needs
    #[command(
        after_help = "The approver is the Unix user running the command. `two_person` cases need two different users.\nExit status: 0 approved (and, if it ran, done); 1 the case failed; 2 refused or input error."
    )]
    Approve(govern::ApproveArgs),
    /// Deny a case that waits for approval: it never runs
    Deny(govern::DenyArgs),
    /// Show or reset the blast-radius breaker
    #[command(subcommand)]
    Breaker(govern::BreakerCommand),
    /// Show which policy rule applies to a certificate's signal, or check the policy file
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// Verify or export the hash-chained audit log
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Import, list and check blocklists of published private keys
    #[command(subcommand)]
    Blocklist(blocklist::BlocklistCommand),
    /// Find private keys in directories and git history, and match them to the inventory
    #[command(subcommand)]
    Exposure(exposure::ExposureCommand),
    /// Read a secret scanner's report (gitleaks, trufflehog, detect-secrets) and match the
    /// private keys in it to the inventory
    #[command(subcommand)]
    Ingest(ingest::IngestCommand),
    /// Check the configuration, the inventory, the issuers' settings and the policy (contacts no CA)
    CheckConfig {
        /// Machine-readable output
        #[arg(long)]
        json: bool,
        /// Print the systemd drop-in (`ReadWritePaths=`) that lets the service write the
        /// inventory's certificate locations
        #[arg(long)]
        systemd_dropin: bool,
    },
    /// Run the daemon: resume unfinished cases, run the scheduled jobs, act on signals,
    /// answer the control socket (systemd: Type=notify)
    Run(RunArgs),
    /// The running daemon's state: jobs, cases, breaker (through the control socket)
    Status {
        /// Machine-readable output
        #[arg(long)]
        json: bool,
    },
}

impl Cli {
    /// The log format `run` asked for; `None` for every other command.
    pub fn daemon_log_format(&self) -> Option<&str> {
        match &self.command {
            Command::Run(a) => Some(a.log_format.as_str()),
            _ => None,
        }
    }
}

/// `run` arguments.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Log format on stderr when not under journald: text or json
    #[arg(long, value_name = "FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
}

/// A command's failure, with the exit status it maps to.
#[derive(Debug)]
pub enum CliError {
    /// Bad input: exit status 2.
    Input(anyhow::Error),
    /// Anything else: exit status 1.
    Failure(anyhow::Error),
}

impl<E: Into<anyhow::Error>> From<E> for CliError {
    fn from(e: E) -> Self {
        Self::Failure(e.into())
    }
}

/// Shorthand for an input error.
pub(crate) fn input_error(msg: impl std::fmt::Display) -> CliError {
    CliError::Input(anyhow::anyhow!("{msg}"))
}

/// Loads the configuration named on the command line; a bad config is an input error.
pub(crate) fn load_config(path: Option<&std::path::Path>) -> Result<Config, CliError> {
    Config::load(path).map_err(|e| CliError::Input(e.into()))
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode, CliError> {
    match cli.command {
        Command::Inventory(cmd) => inventory::run(cmd, cli.config.as_deref()),
        Command::Quickstart(args) => quickstart::run(args),
        Command::Analyze(args) => analyze::run(args, cli.config.as_deref()),
        Command::Scan { json, no_ca } => signals::run_scan(cli.config.as_deref(), json, no_ca),
        Command::Signals { action, all, json } => {
            signals::run_signals(cli.config.as_deref(), action, all, json)
        }
        Command::CheckConfig {
            json,
            systemd_dropin,
        } => check_config::run(cli.config.as_deref(), json, systemd_dropin),
        Command::Run(_) => crate::daemon::run(cli.config.as_deref()).map_err(|e| match e {
            crate::daemon::DaemonError::Input(m) => CliError::Input(anyhow::anyhow!("{m}")),
            other => CliError::Failure(other.into()),
        }),
        Command::Status { json } => remote::run_status(cli.config.as_deref(), json),
        Command::ReportCompromise(args) => respond::run_report(args, cli.config.as_deref()),
        Command::Reissue(args) => respond::run_reissue(args, cli.config.as_deref()),
        Command::Respond(args) => respond::run_respond(args, cli.config.as_deref()),
        Command::Distrust(args) => distrust::run(args, cli.config.as_deref()),
        Command::Ct(cmd) => ct::run(cmd, cli.config.as_deref()),
        Command::Cases(cmd) => cases::run_cases(cmd, cli.config.as_deref()),
        Command::History { name, json } => cases::run_history(&name, json, cli.config.as_deref()),
        Command::Rollback(args) => cases::run_rollback(args, cli.config.as_deref()),
        Command::Approve(args) => govern::run_approve(args, cli.config.as_deref()),
        Command::Deny(args) => govern::run_deny(args, cli.config.as_deref()),
        Command::Breaker(cmd) => govern::run_breaker(cmd, cli.config.as_deref()),
        Command::Blocklist(cmd) => blocklist::run(cmd, cli.config.as_deref()),
        Command::Exposure(cmd) => exposure::run(cmd, cli.config.as_deref()),
        Command::Ingest(cmd) => ingest::run(cmd, cli.config.as_deref()),
        Command::Policy(cmd) => policy::run(cmd, cli.config.as_deref()),
        Command::Audit(cmd) => audit::run(cmd, cli.config.as_deref()),
    }
}
