//! `certresponder distrust CA`: a CA is no longer trusted; replace everything it signed.
//!
//! The distrust is recorded (so that later scans keep finding what was missed), every
//! affected certificate gets an `issuer_distrusted` signal with the deadline, the policy
//! decides each (by default: reissue, automatically), and the reissues run through each
//! entry's `fallback_issuer` (or `--issuer`), earliest deadline and most critical first, a
//! bounded number at a time, at most `replacement_rate` orders per issuer. A progress line
//! shows how far it is; the summary says what met the deadline and what did not.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::json;

use super::backend::Backend;
use super::respond::print_waiting;
use super::table::{Cell, Tone, render};
use super::{CliError, input_error, load_config};
use crate::records::case::Case;
use crate::respond::settings::Rate;
use crate::service::distrust::{self as ops, Outcome, Summary};
use crate::signals::ca::distrust::{self, CaRef, Distrust};

/// `distrust` arguments.
#[derive(Debug, Args)]
pub(crate) struct DistrustArgs {
    /// The CA: the path to its certificate (matched by its SPKI SHA-256), `spki:HEX`,
    /// `sha256:HEX` (the CA certificate's SHA-256), or its name (the distinguished name or
    /// the common name)
    #[arg(required_unless_present = "list", value_name = "CA")]
    ca: Option<String>,
    /// Only certificates issued (notBefore) on or after this date, YYYY-MM-DD or RFC 3339
    #[arg(long, value_name = "DATE")]
    issued_after: Option<String>,
    /// When the replacements must be done, from now: 24h, 5d, 90m
    #[arg(long, value_name = "DURATION", default_value = "24h")]
    deadline: String,
    /// Order every replacement from this issuer instead of each entry's `fallback_issuer`
    #[arg(long, value_name = "ID")]
    issuer: Option<String>,
    /// Why (the browser announcement, the CA's incident report)
    #[arg(long)]
    reason: Option<String>,
    /// Replacements running at once (default: `[respond] concurrency`)
    #[arg(long, value_name = "N")]
    concurrency: Option<usize>,
    /// Orders per issuer: 10/s, 300/m, 5000/h (default: `[respond] replacement_rate`)
    #[arg(long, value_name = "RATE")]
    rate: Option<String>,
    /// List the affected certificates and where each would be reissued; change nothing
    #[arg(long)]
    dry_run: bool,
    /// List the distrusted CAs (from the configuration and recorded by this command)
    #[arg(long, conflicts_with_all = ["dry_run", "remove"])]
    list: bool,
    /// Forget a CA recorded by this command (one from the configuration is removed there)
    #[arg(long, conflicts_with = "dry_run")]
    remove: bool,
    /// No progress line
    #[arg(long)]
    no_progress: bool,
    /// Machine-readable output
    #[arg(long)]
    json: bool,
}

fn parse_ca(s: &str) -> Result<CaRef, CliError> {
    let p = Path::new(s);
    if p.is_file() {
        return distrust::ca_from_file(p).map_err(input_error);
    }
    CaRef::parse(s).map_err(input_error)
}

pub(crate) fn run(args: DistrustArgs, config: Option<&Path>) -> Result<ExitCode, CliError> {
    let mut cfg = load_config(config)?;
    // The replacements' pace, where they run in this process.
    if let Some(n) = args.concurrency {
        if n == 0 {
            return Err(input_error("--concurrency must be at least 1"));
        }
        cfg.respond.concurrency = n;
    }
    if let Some(r) = &args.rate {
        cfg.respond.replacement_rate =
            Some(Rate::parse(r).map_err(|e| input_error(format!("--rate: {e}")))?);
    }
    let backend = Backend::choose(cfg);
    if args.list {
        let all = backend.call::<ops::ListDistrusts>(ops::NoArgs {})?;
        return print_list(&all, args.json);
    }
    let Some(ca_arg) = args.ca.as_deref() else {
        return Err(input_error("name the CA to distrust"));
    };
    // A CA certificate file is read here, with the caller's permissions.
    let ca = parse_ca(ca_arg)?.written();
    if args.remove {
        let written = backend.call::<ops::RemoveDistrust>(ops::RemoveArgs { ca })?;
        println!("{written} is no longer recorded as distrusted");
        return Ok(ExitCode::SUCCESS);
    }
    if backend.is_remote() && (args.concurrency.is_some() || args.rate.is_some()) {
        eprintln!(
            "note: the daemon runs the replacements under its own [respond] concurrency and replacement_rate; --concurrency and --rate apply only when it does not run"
        );
    }
    let started = Instant::now();
    let begun = backend.call::<ops::BeginDistrust>(ops::BeginArgs {
        ca,
        issued_after: args.issued_after.clone(),
        deadline: args.deadline.clone(),
        issuer: args.issuer.clone(),
        reason: args.reason.clone(),
        dry_run: args.dry_run,
    })?;
    let begun = match begun {
        ops::Begin::DryRun { distrust, affected } => {
            return print_dry_run(&distrust, &affected, args.json);
        }
        ops::Begin::Begun { begun } => begun,
    };
    if !args.json {
        announce(&begun.distrust, begun.names.len());
    }
    let tty = std::io::stderr().is_terminal();
    let show = !args.no_progress && !args.json;
    let every = Duration::from_secs(if tty { 1 } else { 10 });
    let mut shown = Instant::now();
    let report = loop {
        let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let r = backend.call::<ops::ReportOn>(ops::ReportArgs {
            begun: begun.clone(),
            elapsed_ms,
        })?;
        if r.finished {
            break r;
        }
        if show && shown.elapsed() >= every {
            show_line(&r.progress.line(started.elapsed()), tty);
            shown = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    if show && tty {
        eprintln!();
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_summary(&report.outcomes, &report.summary);
        let waiting: Vec<Case> = report
            .cases
            .iter()
            .filter_map(|c| serde_json::from_value::<Case>(c.clone()).ok())
            .filter(|c| begun.applied.waiting.contains(&c.id))
            .collect();
        print_waiting(&waiting, begun.applied.breaker_opened);
        for e in &report.errors {
            eprintln!("error: {e}");
        }
    }
    Ok(ExitCode::from(report.exit_status()))
}

/// Prints what was distrusted and how many certificates it affects.
fn announce(d: &Distrust, affected: usize) {
    println!(
        "{} distrusted{}: {} certificate{} affected",
        d.ca.written(),
        d.issued_after
            .map(|t| format!(
                " for certificates issued on or after {}",
                t.format("%Y-%m-%d")
            ))
            .unwrap_or_default(),
        affected,
        if affected == 1 { "" } else { "s" }
    );
}

/// One progress line: rewritten in place on a terminal.
fn show_line(line: &str, tty: bool) {
    if tty {
        eprint!("\r{line}   ");
    } else {
        eprintln!("{line}");
    }
}

fn print_summary(outcomes: &[Outcome], s: &Summary) {
    let rows: Vec<Vec<Cell>> = outcomes
        .iter()
        .filter(|o| o.status != "replaced" || o.within_deadline == Some(false))
        .map(|o| {
            let tone = if o.status == "replaced" {
                Tone::Warn
            } else {
                Tone::Alert
            };
            vec![
                Cell::plain(o.cert.clone()),
                Cell::plain(o.priority.clone()),
                Cell::toned(
                    if o.status == "replaced" {
                        "replaced late"
                    } else {
                        o.status.as_str()
                    },
                    tone,
                ),
                Cell::plain(o.case.map(|c| c.to_string()).unwrap_or_default()),
                Cell::plain(
                    o.deadline
                        .map(|d| d.format("%Y-%m-%d %H:%M").to_string())
                        .unwrap_or_default(),
                ),
                Cell::plain(o.detail.clone().unwrap_or_default()),
            ]
        })
        .collect();
    if !rows.is_empty() {
        print!(
            "{}",
            render(
                &["CERT", "PRIORITY", "STATUS", "CASE", "DEADLINE", "DETAIL"],
                &rows
            )
        );
    }
    let secs = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |x| format!("{x:.1} s"));
    println!(
        "{} affected: {} replaced ({} within the deadline, {} late), {} failed, {} waiting for approval, {} escalated, {} busy; {:.1} s in all, per certificate p50 {} p99 {}",
        s.affected,
        s.replaced,
        s.within_deadline,
        s.late,
        s.failed,
        s.waiting,
        s.escalated,
        s.busy,
        s.elapsed_seconds,
        secs(s.p50_seconds),
        secs(s.p99_seconds)
    );
}

fn print_dry_run(
    d: &Distrust,
    listed: &[serde_json::Value],
    json: bool,
) -> Result<ExitCode, CliError> {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"distrust": d, "affected": listed}))?
        );
        return Ok(ExitCode::SUCCESS);
    }
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
    let rows: Vec<Vec<Cell>> = listed
        .iter()
        .map(|l| {
            vec![
                Cell::plain(text(&l["cert"])),
                Cell::plain(text(&l["priority"])),
                match l["issuer"].as_str() {
                    Some(v) => Cell::plain(v.to_string()),
                    None => Cell::toned("none: no fallback_issuer", Tone::Alert),
                },
                Cell::plain(text(&l["message"])),
            ]
        })
        .collect();
    if !rows.is_empty() {
        print!(
            "{}",
            render(&["CERT", "PRIORITY", "REISSUE THROUGH", "WHY"], &rows)
        );
    }
    println!(
        "{} certificate{} affected; dry run: nothing was changed",
        listed.len(),
        if listed.len() == 1 { "" } else { "s" }
    );
    Ok(ExitCode::SUCCESS)
}

fn print_list(all: &[Distrust], json: bool) -> Result<ExitCode, CliError> {
    if json {
        println!("{}", serde_json::to_string_pretty(&all)?);
        return Ok(ExitCode::SUCCESS);
    }
    if all.is_empty() {
        println!("no CA is distrusted");
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<Cell>> = all
        .iter()
        .map(|d| {
            vec![
                Cell::plain(d.ca.written()),
                Cell::plain(
                    d.issued_after
                        .map(|t| t.format("%Y-%m-%d").to_string())
                        .unwrap_or_else(|| "all".into()),
                ),
                Cell::plain(format!("{}h", d.deadline_hours)),
                Cell::plain(d.replace_with.clone().unwrap_or_default()),
                Cell::plain(match (&d.origin[..], &d.added_by) {
                    ("command", Some(by)) => format!("command, by {by}"),
                    (o, _) => o.to_string(),
                }),
                Cell::plain(d.reason.clone().unwrap_or_default()),
            ]
        })
        .collect();
    print!(
        "{}",
        render(
            &[
                "CA",
                "ISSUED AFTER",
                "DEADLINE",
                "ISSUER",
                "ORIGIN",
                "REASON"
            ],
            &rows
        )
    );
    Ok(ExitCode::SUCCESS)
}
