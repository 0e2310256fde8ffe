//! `certresponder ingest gitleaks|trufflehog|detect-secrets FILE`: the private keys in a
//! secret scanner's report, matched to the inventory. A match is stored as a confirmed
//! `key_exposed` signal with where the key was seen (file, line, commit), never the key.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::json;

use super::backend::Backend;
use super::table::{Cell, Tone, render};
use super::{CliError, load_config};
use crate::service::exposure::{Found, RecordArgs, RecordExposure};
use crate::signals::exposure::Location;
use crate::signals::exposure::ingest::{IngestOptions, Ingested, Scanner, read_report};
use crate::signals::exposure::record::ExposureReport;

/// Exit status when an inventory certificate's key is in the report.
const EXPOSED: u8 = 3;

const EXIT_STATUS: &str = "Exit status: 0 no inventory key in the report; 3 an inventory \
certificate's private key is in it (a confirmed key_exposed signal is stored); 2 the report \
cannot be read or is malformed; 1 another failure.";

/// `ingest` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum IngestCommand {
    /// Read a gitleaks v8 JSON report (`gitleaks git|dir --report-format json --report-path FILE`)
    #[command(after_help = format!(
        "A report written with --redact holds no keys: its private-key findings are counted \
         as unusable.\n{EXIT_STATUS}"
    ))]
    Gitleaks(ReportArgs),
    /// Read trufflehog v3 output (`trufflehog git|filesystem ... --json > FILE`), one JSON
    /// object per line
    #[command(after_help = EXIT_STATUS)]
    Trufflehog(ReportArgs),
    /// Read a detect-secrets baseline (`detect-secrets scan > .secrets.baseline`) and the
    /// flagged files it names
    #[command(after_help = format!(
        "A baseline holds only hashes: each flagged private key is read from its file, from \
         the flagged line to the END line. A file that is gone or changed is reported for \
         that finding.\n{EXIT_STATUS}"
    ))]
    DetectSecrets(BaselineArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ReportArgs {
    /// The report (`-`: standard input)
    file: PathBuf,
    /// Machine-readable output
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct BaselineArgs {
    /// The baseline (`-`: standard input)
    file: PathBuf,
    /// The directory the baseline's file names are relative to [default: the baseline's
    /// directory; the current one for standard input]
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
    /// Machine-readable output
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(cmd: IngestCommand, config: Option<&Path>) -> Result<ExitCode, CliError> {
    let (scanner, file, root, json) = match cmd {
        IngestCommand::Gitleaks(a) => (Scanner::Gitleaks, a.file, None, a.json),
        IngestCommand::Trufflehog(a) => (Scanner::Trufflehog, a.file, None, a.json),
        IngestCommand::DetectSecrets(a) => (Scanner::DetectSecrets, a.file, a.root, a.json),
    };
    let cfg = load_config(config)?;
    // The report is read before the database is opened: a malformed one changes nothing.
    let ingested = read_report(scanner, &file, &IngestOptions { root })
        .map_err(|e| CliError::Input(e.into()))?;
    let report = Backend::choose(cfg).call::<RecordExposure>(RecordArgs {
        found: ingested.keys.iter().map(Found::from).collect(),
    })?;
    let name = if file == Path::new("-") {
        "stdin".to_string()
    } else {
        file.display().to_string()
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "report": name,
                "scanner": ingested.scanner,
                "findings": ingested.findings,
                "keys_read": ingested.keys.len(),
                "exposed": report.exposed,
                "other_keys": report.unknown,
                "unusable": ingested.unusable,
                "not_private_keys": ingested.not_keys,
                "notes": ingested.notes,
            }))?
        );
    } else {
        print!("{}", text(&name, &ingested, &report));
    }
    Ok(if report.exposed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXPOSED)
    })
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `path:line (commit 0123456789ab, 2026-03-14)`.
fn place(l: &Location) -> String {
    let mut s = l.path.clone();
    if let Some(line) = l.line {
        s.push_str(&format!(":{line}"));
    }
    let mut extra = Vec::new();
    if let Some(c) = &l.commit {
        extra.push(format!("commit {}", c.chars().take(12).collect::<String>()));
    }
    if let Some(t) = l.first_seen {
        extra.push(t.format("%Y-%m-%d").to_string());
    }
    if !extra.is_empty() {
        s.push_str(&format!(" ({})", extra.join(", ")));
    }
    s
}

/// The human summary.
fn text(name: &str, got: &Ingested, report: &ExposureReport) -> String {
    let mut out = format!(
        "{} report {name}: {}: {} read, {} without a usable key, {}\n",
        got.scanner.name(),
        plural(got.findings, "finding", "findings"),
        plural(got.keys.len(), "private key", "private keys"),
        got.unusable.len(),
        plural(got.not_keys, "other secret", "other secrets"),
    );
    for n in &got.notes {
        out.push_str(&format!("note: {n}\n"));
    }
    if !report.exposed.is_empty() {
        out.push_str("\nInventory keys exposed (confirmed key_exposed signals):\n");
        let rows: Vec<Vec<Cell>> = report
            .exposed
            .iter()
            .flat_map(|e| {
                e.locations.iter().map(move |l| {
                    vec![
                        Cell::toned(e.cert.clone(), Tone::Alert),
                        Cell::plain(e.signal.chars().take(12).collect::<String>()),
                        Cell::plain(if e.new { "new" } else { "seen again" }),
                        Cell::plain(e.key.clone()),
                        Cell::plain(place(l)),
                    ]
                })
            })
            .collect();
        out.push_str(&render(
            &["CERT", "SIGNAL", "STATE", "KEY", "LOCATION"],
            &rows,
        ));
    }
    if !report.unknown.is_empty() {
        out.push_str("\nOther private keys (not in the inventory; information only):\n");
        let rows: Vec<Vec<Cell>> = report
            .unknown
            .iter()
            .flat_map(|u| {
                u.locations.iter().map(move |l| {
                    vec![
                        Cell::plain(u.key.clone()),
                        Cell::plain(
                            u.spki_sha256
                                .as_deref()
                                .map_or_else(|| "-".to_string(), |h| h.chars().take(16).collect()),
                        ),
                        Cell::plain(place(l)),
                    ]
                })
            })
            .collect();
        out.push_str(&render(&["KEY", "SPKI SHA-256", "LOCATION"], &rows));
    }
    if !got.unusable.is_empty() {
        out.push_str("\nFindings with no usable private key:\n");
        let rows: Vec<Vec<Cell>> = got
            .unusable
            .iter()
            .map(|u| {
                vec![
                    Cell::plain(u.finding.to_string()),
                    Cell::toned(place(&u.location), Tone::Warn),
                    Cell::plain(u.reason.clone()),
                ]
            })
            .collect();
        out.push_str(&render(&["FINDING", "LOCATION", "REASON"], &rows));
    }
    out.push('\n');
    if report.exposed.is_empty() {
        out.push_str("No inventory certificate's key is in the report.\n");
    } else {
        let certs: std::collections::BTreeSet<&str> =
            report.exposed.iter().map(|e| e.cert.as_str()).collect();
        out.push_str(&format!(
            "{} exposed: run `certresponder respond` to revoke and reissue (see `certresponder signals`).\n",
            plural(certs.len(), "certificate's key", "certificates' keys"),
        ));
    }
    out
}
