//! `certresponder audit {verify,export}`: check the hash-chained audit log and write it out.
//! Both only read: they open the database without syncing the inventory, so nothing is
//! appended while the log is examined.

use std::path::Path;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::json;

use super::backend::Backend;
use super::table::{Cell, Tone, render};
use super::{CliError, input_error, load_config};
use crate::audit::{AuditRecord, Head, ProblemKind};
use crate::service::audit as ops;

/// `audit` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// Check that every record is intact, in place and linked to the one before it
    #[command(
        after_help = "A head (SEQ:HASH) is printed here and written to the service log with every record appended (fields audit_seq and audit_head); keep one and pass it with --head later to detect records removed from the end.\nExit status: 0 the log is intact; 1 a record was changed, removed, reordered or unreadable, the noted head is gone, or another failure; 2 usage or input error."
    )]
    Verify(VerifyArgs),
    /// Write the records out (a JSON array with --json, else a table)
    #[command(
        after_help = "Exit status: 0 written; 1 failure (such as an unreadable record: see `certresponder audit verify`); 2 usage or input error."
    )]
    Export(ExportArgs),
}

/// `audit verify` arguments.
#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// A head noted earlier (from the service log or an earlier `audit verify`): the chain
    /// must still contain it
    #[arg(long, value_name = "HASH|SEQ:HASH")]
    head: Option<String>,
    /// Machine-readable output
    #[arg(long)]
    json: bool,
}

/// `audit export` arguments.
#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// Write a JSON array of records
    #[arg(long)]
    json: bool,
    /// Only records from this sequence number on
    #[arg(long, value_name = "SEQ")]
    since: Option<u64>,
    /// Only records about this case
    #[arg(long, value_name = "N")]
    case: Option<u64>,
    /// Only records about this certificate (its inventory name)
    #[arg(long, value_name = "NAME")]
    cert: Option<String>,
}

/// Runs an `audit` subcommand.
pub(crate) fn run(cmd: AuditCommand, config: Option<&Path>) -> Result<ExitCode, CliError> {
    let backend = Backend::choose(load_config(config)?);
    match cmd {
        AuditCommand::Verify(args) => run_verify(&backend, args),
        AuditCommand::Export(args) => run_export(&backend, args),
    }
}

fn run_verify(backend: &Backend, args: VerifyArgs) -> Result<ExitCode, CliError> {
    if let Some(h) = &args.head {
        Head::parse(h).map_err(input_error)?;
    }
    let report = backend.call::<ops::Verify>(ops::VerifyArgs {
        head: args.head.clone(),
    })?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "intact": report.intact(),
                "length": report.length,
                "head": report.head.as_ref().map(|(seq, hash)| json!({
                    "seq": seq,
                    "hash": hash,
                    "head": format!("{seq}:{hash}"),
                })),
                "problems": report.problems,
            }))?
        );
    } else if report.intact() {
        let records = if report.length == 1 {
            "record"
        } else {
            "records"
        };
        match &report.head {
            Some((seq, hash)) => println!(
                "audit log intact: {} {records}, head {seq}:{hash}",
                report.length
            ),
            None => println!("audit log intact: {} {records}", report.length),
        }
        if let Some(h) = &args.head {
            println!("it contains the noted head {h}");
        }
    } else {
        let n = report.problems.len();
        println!(
            "audit log NOT intact: {n} problem{} in {} stored record{}",
            if n == 1 { "" } else { "s" },
            report.length,
            if report.length == 1 { "" } else { "s" },
        );
        for p in &report.problems {
            println!("  {}", p.what);
        }
        if let Some((seq, hash)) = &report.head {
            println!("last stored record: {seq}:{hash}");
        }
        if report
            .problems
            .iter()
            .all(|p| matches!(p.kind, ProblemKind::Truncated))
        {
            println!("(every record present is intact and linked; records are gone from the end)");
        }
    }
    Ok(if report.intact() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn run_export(backend: &Backend, args: ExportArgs) -> Result<ExitCode, CliError> {
    let records = backend.call::<ops::Export>(ops::ExportArgs {
        since: args.since,
        case: args.case,
        cert: args.cert.clone(),
    })?;
    let selected: Vec<&AuditRecord> = records.iter().collect();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&selected)?);
    } else {
        print!("{}", table(&selected));
    }
    Ok(ExitCode::SUCCESS)
}

fn table(records: &[&AuditRecord]) -> String {
    let rows: Vec<Vec<Cell>> = records
        .iter()
        .map(|r| {
            let state = r.data.get("state").and_then(|s| s.as_str());
            let tone = match (r.kind.as_str(), state) {
                ("signal", Some("new" | "reopened")) => Tone::Warn,
                _ => Tone::Plain,
            };
            vec![
                Cell::plain(r.seq.to_string()),
                Cell::plain(r.at.format("%Y-%m-%d %H:%M:%S").to_string()),
                Cell::toned(r.kind.clone(), tone),
                Cell::plain(r.actor.clone()),
                Cell::plain(r.cert.clone().unwrap_or_else(|| "-".into())),
                Cell::plain(r.case.map_or_else(|| "-".into(), |c| c.to_string())),
                Cell::plain(summary(&r.data)),
            ]
        })
        .collect();
    render(
        &["SEQ", "AT", "KIND", "ACTOR", "CERT", "CASE", "DATA"],
        &rows,
    )
}

/// Longest data summary shown in the table, in characters.
const SUMMARY_MAX: usize = 100;

/// Fields shown first in a summary, when present.
const SUMMARY_FIRST: &[&str] = &[
    "state",
    "check",
    "action",
    "rule",
    "approval",
    "step",
    "outcome",
    "confidence",
    "reason",
    "message",
];

/// The top-level scalar fields of a record's data as `key=value` (the telling ones first,
/// long identifiers left out), shortened to fit a table row.
fn summary(data: &serde_json::Value) -> String {
    use serde_json::Value;
    let scalar = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    let text = match data {
        Value::Object(map) => {
            let first = SUMMARY_FIRST.iter().filter_map(|k| map.get_key_value(*k));
            let rest = map.iter().filter(|(k, _)| {
                !SUMMARY_FIRST.contains(&k.as_str())
                    && !["key", "hash", "sha256", "fingerprint"]
                        .iter()
                        .any(|w| k.contains(w))
            });
            first
                .chain(rest)
                .filter_map(|(k, v)| scalar(v).map(|v| format!("{k}={v}")))
                .collect::<Vec<_>>()
                .join(" ")
        }
        Value::Null => String::new(),
        other => other.to_string(),
    };
    let text = text.replace(['\n', '\r', '\t'], " ");
    if text.chars().count() > SUMMARY_MAX {
        let cut: String = text.chars().take(SUMMARY_MAX - 1).collect();
        format!("{cut}…")
    } else {
        text
    }
}
