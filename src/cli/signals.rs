//! `certresponder scan` and `certresponder signals [suppress]`.

use std::path::Path;
use std::process::ExitCode;

use chrono::{DateTime, NaiveDate, Utc};
use clap::Subcommand;
use serde_json::json;

use super::backend::Backend;
use super::table::{Cell, Tone, render};
use super::{CliError, input_error, load_config};
use crate::service::scan::ScanArgs;
use crate::service::signals as sig;
use crate::signals::{Confidence, Signal};

/// Exit status of `scan` when open signals remain.
pub(crate) const OPEN_SIGNALS: u8 = 3;

#[derive(Debug, Subcommand)]
pub(crate) enum SignalsAction {
    /// Silence a known false positive until a date
    Suppress {
        /// Signal id (or a unique prefix of it)
        id: String,
        /// Last day of the suppression (YYYY-MM-DD, UTC) or an RFC 3339 time
        #[arg(long)]
        until: String,
        /// Why
        #[arg(long)]
        reason: String,
    },
}

fn tone(s: &Signal, now: DateTime<Utc>) -> Tone {
    if !s.is_open(now) {
        Tone::Plain
    } else if s.confidence >= Confidence::High {
        Tone::Alert
    } else {
        Tone::Warn
    }
}

fn table(signals: &[&Signal], now: DateTime<Utc>) -> String {
    let rows: Vec<Vec<Cell>> = signals
        .iter()
        .map(|s| {
            let t = tone(s, now);
            vec![
                Cell::plain(s.id.clone()),
                Cell::plain(s.subject.clone()),
                Cell::toned(s.check.clone(), t),
                Cell::toned(format!("{:?}", s.confidence).to_lowercase(), t),
                Cell::plain(match (&s.handled, s.state_name(now)) {
                    (Some(h), "open") => match h.action.as_str() {
                        "escalate" => "open (escalated)".to_string(),
                        "ignore" => "open (ignored)".to_string(),
                        "blocked" => "open (escalated: cannot act)".to_string(),
                        other => format!("open ({other})"),
                    },
                    (_, state) => state.to_string(),
                }),
                Cell::plain(s.detected_at.format("%Y-%m-%d %H:%M").to_string()),
                Cell::plain(s.message.clone()),
            ]
        })
        .collect();
    render(
        &[
            "ID",
            "CERT",
            "CHECK",
            "CONFIDENCE",
            "STATE",
            "DETECTED",
            "MESSAGE",
        ],
        &rows,
    )
}

pub(crate) fn run_scan(
    config: Option<&Path>,
    json: bool,
    no_ca: bool,
) -> Result<ExitCode, CliError> {
    let backend = Backend::choose(load_config(config)?);
    let report = backend.call::<crate::service::scan::Scan>(ScanArgs { no_ca })?;
    let now = Utc::now();
    let open = report.open();
    let ca = report.ca.as_ref();
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "scanned": report.scanned,
                "new": report.new,
                "seen_again": report.seen_again,
                "resolved": report.resolved,
                "open": open.len(),
                "ca_checked": ca.map(|c| c.checked),
                "ca_problems": ca.map(|c| &c.problems),
                "renewals_scheduled": ca.map(|c| &c.scheduled),
                "revocations_confirmed": ca.map(|c| &c.confirmed),
            }))?
        );
    } else {
        println!(
            "scanned {} certificate{}: {} new signal{}, {} seen again, {} resolved",
            report.scanned,
            if report.scanned == 1 { "" } else { "s" },
            report.new.len(),
            if report.new.len() == 1 { "" } else { "s" },
            report.seen_again.len(),
            report.resolved.len()
        );
        if let Some(ca) = ca {
            for p in &ca.problems {
                println!(
                    "{}: {} could not be checked: {}",
                    p.cert, p.check, p.message
                );
            }
            for s in &ca.scheduled {
                println!(
                    "{}: renewal scheduled for {} (the CA's window: {} to {})",
                    s.cert,
                    s.renew_at.format("%Y-%m-%d %H:%M UTC"),
                    s.window_start.format("%Y-%m-%d %H:%M UTC"),
                    s.window_end.format("%Y-%m-%d %H:%M UTC")
                );
            }
            for id in &ca.confirmed {
                println!("case {id}: the CA now reports the old certificate revoked; closed");
            }
        }
        if !open.is_empty() {
            print!("{}", table(&open, now));
        }
    }
    Ok(if open.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(OPEN_SIGNALS)
    })
}

fn parse_until(s: &str) -> Result<DateTime<Utc>, CliError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(23, 59, 59))
        .map(|t| t.and_utc())
        .ok_or_else(|| {
            input_error(format!(
                "--until `{s}`: expected YYYY-MM-DD or an RFC 3339 time"
            ))
        })
}

fn print_list(
    shown: &[Signal],
    all: bool,
    json: bool,
    now: DateTime<Utc>,
) -> Result<ExitCode, CliError> {
    if json {
        println!("{}", serde_json::to_string_pretty(&shown)?);
    } else if shown.is_empty() {
        println!(
            "no signals{}",
            if all {
                ""
            } else {
                " (resolved ones are shown with --all)"
            }
        );
    } else {
        let refs: Vec<&Signal> = shown.iter().collect();
        print!("{}", table(&refs, now));
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn run_signals(
    config: Option<&Path>,
    action: Option<SignalsAction>,
    all: bool,
    json: bool,
) -> Result<ExitCode, CliError> {
    let backend = Backend::choose(load_config(config)?);
    let now = Utc::now();
    match action {
        None => {
            let shown = backend.call::<sig::List>(sig::ListArgs { all })?;
            print_list(&shown, all, json, now)
        }
        Some(SignalsAction::Suppress { id, until, reason }) => {
            let until = parse_until(&until)?;
            if until <= now {
                return Err(input_error("--until must be in the future"));
            }
            if reason.trim().is_empty() {
                return Err(input_error("--reason must say why"));
            }
            let signal = backend.call::<sig::Suppress>(sig::SuppressArgs { id, until, reason })?;
            if json {
                println!("{}", serde_json::to_string_pretty(&signal)?);
            } else {
                println!(
                    "suppressed {} ({} on {}) until {}",
                    signal.id,
                    signal.check,
                    signal.subject,
                    until.format("%Y-%m-%d %H:%M UTC")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
