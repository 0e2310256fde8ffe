//! `certresponder exposure scan PATH...`: finds private keys in files, directories and the
//! whole history of git repositories, and matches them to the inventory.
//!
//! The inventory is synced first, so that the keys matched are the ones deployed now. A
//! found key that is an inventory certificate's is a confirmed compromise: a `key_exposed`
//! signal is stored on that certificate (or the existing one gets the new locations), and
//! `certresponder respond` acts on it. An encrypted private key found is an
//! `encrypted_key_exposed` finding (low confidence): on the certificate whose public key it
//! carries in clear (OpenSSH, PuTTY, a JKS certificate chain), a signal the policy
//! escalates; otherwise information with where it was found. Other private keys are listed
//! as information only. No private key is printed, stored or logged; keys are named by
//! their type and SPKI SHA-256.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, Subcommand};
use serde_json::json;

use super::backend::Backend;
use super::{CliError, input_error, load_config};
use crate::service::exposure::{Found, RecordArgs, RecordExposure};
use crate::signals::exposure::Location;
use crate::signals::exposure::record::{self, ExposureReport, Unknown};
use crate::signals::exposure::sources::{self, DEFAULT_MAX_FILE_SIZE, ScanOptions, ScanOutcome};

/// Exit status of `exposure scan` when an inventory key was found.
pub(crate) const KEY_EXPOSED: u8 = 3;
/// How many skipped paths the text output lists.
const MAX_LISTED: usize = 10;

/// `exposure` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum ExposureCommand {
    /// Search files, directories and git history for private keys; an inventory key found
    /// is stored as a confirmed `key_exposed` signal on its certificate (found encrypted: a
    /// low-confidence `encrypted_key_exposed` signal)
    #[command(
        after_help = "Formats: PEM private keys (PKCS#8, PKCS#1, SEC1, OpenSSH), also \
indented, escaped in source strings, commented or base64-encoded again; bare base64 DER keys; \
JWK/JWKS with private members; PuTTY .ppk; whole DER key files; PKCS#12; Java keystores (JKS, \
JCEKS); UTF-16 text; DER keys, PEM and UTF-16 PEM inside binary files (firmware, executables).\n\
Encrypted keys (encrypted PKCS#8, Proc-Type PEM, OpenSSH and PuTTY ciphers, PKCS#12 with a \
password, JKS private key entries) are encrypted_key_exposed findings (low confidence): matched \
to the inventory when their public key is stored in clear beside them (OpenSSH, PuTTY, JKS), \
else listed with where they were found.\n\
A directory holding `.git` (or a bare repository) is read as files and across every object of \
its database, unreachable ones included; each key found in history names the commit that first \
added it (or the blob, when no commit holds it).\n\
Exit status: 0 no inventory key found; 3 an inventory key was found (a key_exposed or \
encrypted_key_exposed signal, new or seen again); 1 failure (also: a repository's history could \
not be read and no inventory key was found); 2 input error (a PATH that does not exist, a bad \
config)."
    )]
    Scan(ScanArgs),
}

/// `exposure scan` arguments.
#[derive(Debug, Args)]
pub(crate) struct ScanArgs {
    /// Files, directories and git repositories to search
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Machine-readable output
    #[arg(long)]
    json: bool,
    /// Skip files and blobs larger than this, in bytes (suffixes K, M, G: powers of 1024)
    #[arg(long, value_name = "BYTES", value_parser = parse_size,
          default_value_t = DEFAULT_MAX_FILE_SIZE)]
    max_file_size: u64,
    /// Read only the working files of git repositories, not their history
    #[arg(long)]
    no_history: bool,
}

/// `50M`, `512K`, `1G` or a plain number of bytes.
fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    let digits = lower
        .trim_end_matches("ib")
        .trim_end_matches('b')
        .trim_end();
    let (number, unit) = match digits.char_indices().last() {
        Some((i, 'k')) => (&digits[..i], 1u64 << 10),
        Some((i, 'm')) => (&digits[..i], 1 << 20),
        Some((i, 'g')) => (&digits[..i], 1 << 30),
        _ => (digits, 1),
    };
    number
        .trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .ok_or_else(|| format!("`{s}` is not a size (bytes, or a number with K, M or G)"))
}

pub(crate) fn run(cmd: ExposureCommand, config: Option<&Path>) -> Result<ExitCode, CliError> {
    match cmd {
        ExposureCommand::Scan(args) => scan(args, config),
    }
}

fn scan(args: ScanArgs, config: Option<&Path>) -> Result<ExitCode, CliError> {
    for p in &args.paths {
        if let Err(e) = std::fs::symlink_metadata(p) {
            return Err(input_error(format!("{}: {e}", p.display())));
        }
    }
    let cfg = load_config(config)?;
    let opts = ScanOptions {
        max_file_size: args.max_file_size,
        history: !args.no_history,
        threads: 0,
    };
    let started = Instant::now();
    // Read here, with the caller's permissions; only the public halves of the keys found
    // go to whoever holds the store.
    let outcome = sources::scan(&args.paths, &opts);
    let seconds = started.elapsed().as_secs_f64();
    // Chosen after the scan: run as root on the service's state directory, the command
    // becomes the service's user only to record what it found.
    let backend = Backend::choose(cfg);
    let report = backend.call::<RecordExposure>(RecordArgs {
        found: outcome.found.iter().map(Found::from).collect(),
    })?;
    for p in &outcome.failed_repositories {
        eprintln!("error: {}: {}", p.path, p.reason);
    }
    // Encrypted keys whose public half is not known never reach the store: information.
    let sealed = record::encrypted_unknown(&outcome.encrypted_keys);
    if args.json {
        print_json(&report, &sealed, &outcome, seconds)?;
    } else {
        print_text(&report, &sealed, &outcome, seconds, args.max_file_size);
    }
    Ok(
        if !report.exposed.is_empty() || !report.encrypted.is_empty() {
            ExitCode::from(KEY_EXPOSED)
        } else if !outcome.failed_repositories.is_empty() {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        },
    )
}

fn print_json(
    report: &ExposureReport,
    sealed: &[Unknown],
    outcome: &ScanOutcome,
    seconds: f64,
) -> Result<(), CliError> {
    let with_ids = |list: &[record::Exposed]| -> Vec<serde_json::Value> {
        list.iter()
            .map(|e| {
                let mut v = json!(e);
                v["signal_id"] = json!(short(&e.signal));
                v
            })
            .collect()
    };
    let unknown: Vec<&Unknown> = report.unknown.iter().chain(sealed).collect();
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({
            "exposed": with_ids(&report.exposed),
            "encrypted_exposed": with_ids(&report.encrypted),
            "unknown": unknown,
            "found": report.found,
            "encrypted": outcome.encrypted,
            "unsupported": outcome.unsupported,
            "files": outcome.files,
            "blobs": outcome.blobs,
            "bytes": outcome.bytes,
            "binary": outcome.binary,
            "too_large": outcome.too_large,
            "unreadable": outcome.unreadable,
            "repositories": outcome.repositories,
            "failed_repositories": outcome.failed_repositories,
            "seconds": (seconds * 1000.0).round() / 1000.0,
        }))?
    );
    Ok(())
}

/// The short signal id (`signals suppress` takes it): the first 12 hex digits.
fn short(s: &str) -> &str {
    &s[..s.len().min(12)]
}

/// `path:line`, with the repository, and the commit and its time for history.
fn place(l: &Location) -> String {
    let mut s = match &l.repository {
        Some(r) => format!("{}/{}", r.trim_end_matches('/'), l.path),
        None => l.path.clone(),
    };
    if let Some(line) = l.line {
        s.push_str(&format!(":{line}"));
    }
    if let Some(offset) = l.offset {
        s.push_str(&format!(" at byte {offset}"));
    }
    match (&l.repository, &l.commit, &l.blob) {
        (_, Some(c), _) => {
            s.push_str(&format!("  commit {}", short(c)));
            if let Some(t) = l.first_seen {
                s.push_str(&format!(" ({})", t.format("%Y-%m-%d %H:%M UTC")));
            }
        }
        (_, None, Some(b)) => s.push_str(&format!("  blob {b}")),
        (Some(_), None, None) => s.push_str("  (working tree)"),
        (None, None, None) => {}
    }
    if let Some(e) = &l.encryption {
        s.push_str(&format!("  encrypted: {e}"));
    }
    s
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn mib(bytes: u64) -> String {
    // Display only: precision is not needed.
    #[allow(clippy::cast_precision_loss)]
    let m = bytes as f64 / 1_048_576.0;
    format!("{m:.1} MiB")
}

/// Each exposed certificate with its signal and where its key was seen.
fn print_exposed(list: &[record::Exposed]) {
    for e in list {
        println!(
            "  {}  {}  signal {}{}",
            e.cert,
            e.key,
            short(&e.signal),
            if e.new { " (new)" } else { " (seen before)" }
        );
        for l in &e.locations {
            println!("    {}", place(l));
        }
    }
}

fn print_text(
    report: &ExposureReport,
    sealed: &[Unknown],
    outcome: &ScanOutcome,
    seconds: f64,
    max: u64,
) {
    let repos = if outcome.repositories.is_empty() {
        String::new()
    } else {
        format!(
            " and {} from the history of {}",
            plural(
                usize::try_from(outcome.blobs).unwrap_or(usize::MAX),
                "blob",
                "blobs"
            ),
            plural(outcome.repositories.len(), "repository", "repositories")
        )
    };
    println!(
        "searched {}{repos} ({}) in {seconds:.2} s",
        plural(
            usize::try_from(outcome.files).unwrap_or(usize::MAX),
            "file",
            "files"
        ),
        mib(outcome.bytes),
    );
    if report.exposed.is_empty() && report.encrypted.is_empty() {
        println!("no inventory key found");
    }
    if !report.exposed.is_empty() {
        println!(
            "\nEXPOSED: {} of the inventory found (confirmed key compromise):",
            plural(report.exposed.len(), "key", "keys")
        );
        print_exposed(&report.exposed);
        println!(
            "  next: `certresponder respond` acts on these signals (see `certresponder signals`)"
        );
    }
    if !report.encrypted.is_empty() {
        println!(
            "\nENCRYPTED: {} of the inventory found encrypted (encrypted_key_exposed, low \
             confidence: for a person to judge):",
            plural(report.encrypted.len(), "key", "keys")
        );
        print_exposed(&report.encrypted);
    }
    let (plain, encrypted): (Vec<&Unknown>, Vec<&Unknown>) = report
        .unknown
        .iter()
        .chain(sealed)
        .partition(|u| u.check.is_none());
    for (list, title) in [
        (
            plain,
            "other private keys (not in the inventory; information)",
        ),
        (
            encrypted,
            "other encrypted private keys (encrypted_key_exposed, low confidence; not in the \
             inventory, or their public key is not readable without the password; information)",
        ),
    ] {
        if list.is_empty() {
            continue;
        }
        println!("\n{title}: {}", list.len());
        for u in list {
            let spki = u
                .spki_sha256
                .as_deref()
                .map(|h| format!("  spki sha256 {h}"))
                .unwrap_or_default();
            println!("  {}{spki}", u.key);
            for l in &u.locations {
                println!("    {}", place(l));
            }
        }
    }
    let mut skipped = Vec::new();
    if outcome.unsupported > 0 {
        skipped.push(plural(
            outcome.unsupported,
            "key of an unsupported kind (DSA, hardware-bound)",
            "keys of unsupported kinds (DSA, hardware-bound)",
        ));
    }
    if !outcome.unreadable.is_empty() {
        skipped.push(plural(
            outcome.unreadable.len(),
            "unreadable path",
            "unreadable paths",
        ));
    }
    if !outcome.too_large.is_empty() {
        skipped.push(format!(
            "{} over {}",
            plural(outcome.too_large.len(), "file", "files"),
            mib(max)
        ));
    }
    if !skipped.is_empty() {
        println!("\nskipped: {}", skipped.join(", "));
        let listed = outcome
            .unreadable
            .iter()
            .map(|p| format!("unreadable: {}: {}", p.path, p.reason))
            .chain(outcome.too_large.iter().map(|p| format!("too large: {p}")));
        let total = outcome.unreadable.len() + outcome.too_large.len();
        for line in listed.take(MAX_LISTED) {
            println!("  {line}");
        }
        if total > MAX_LISTED {
            println!(
                "  ... and {} more (--json lists them all)",
                total - MAX_LISTED
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("50M"), Ok(50 << 20));
        assert_eq!(parse_size("2k"), Ok(2048));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("3 MB"), Ok(3 << 20));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("-1").is_err());
    }
}
