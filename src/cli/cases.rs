//! `certresponder cases {list,show}`, `history NAME` and `rollback NAME`.

use std::path::Path;
use std::process::ExitCode;

use certresponder_inventory::BundleState;
use chrono::{DateTime, Utc};
use clap::Subcommand;
use serde_json::json;

use super::backend::Backend;
use super::table::{Cell, Tone, render};
use super::{CliError, load_config};
use crate::audit::AuditRecord;
use crate::govern::{human_duration, rule_place};
use crate::records::case::{Case, CaseState, StepOutcome};
use crate::service::cases::{self as ops, within_deadline};
use crate::signals::Signal;

#[derive(Debug, Subcommand)]
pub(crate) enum CasesCommand {
    /// Run a case again: a failed case from the step that failed, a revocation that is
    /// waiting to be tried again now, or the revocation of a `revocation_needed` case
    Retry {
        /// Case number
        case: u64,
        /// Machine-readable output
        #[arg(long)]
        json: bool,
    },
    /// Revoke the old certificate of a case that could not (`revocation_needed`, or a failed
    /// revocation), through the named issuer; the case then confirms and closes
    RevokeOld {
        /// Case number
        case: u64,
        /// The issuer to revoke through: one configured for the CA that issued the old
        /// certificate (default: the certificate's entry's issuer)
        #[arg(long, value_name = "ID")]
        issuer: Option<String>,
        /// Machine-readable output
        #[arg(long)]
        json: bool,
    },
    /// List cases (running and failed first)
    List {
        /// Machine-readable output
        #[arg(long)]
        json: bool,
    },
    /// Show one case with every step, its timestamps and outcome
    Show {
        /// Case number
        case: u64,
        /// Machine-readable output
        #[arg(long)]
        json: bool,
    },
}

fn state_cell(c: &Case) -> Cell {
    let tone = match c.state {
        CaseState::Done => Tone::Plain,
        CaseState::Running | CaseState::AwaitingApproval | CaseState::Unconfirmed => Tone::Warn,
        CaseState::Failed | CaseState::Denied | CaseState::RevocationNeeded => Tone::Alert,
    };
    let text = if c.rolled_back {
        format!("{} (rolled back)", c.state)
    } else if let Some(at) = c.retry_at.filter(|_| c.state == CaseState::Running) {
        format!(
            "{} (revocation retried at {})",
            c.state,
            at.format("%H:%M:%S")
        )
    } else {
        c.state.to_string()
    };
    Cell::toned(text, tone)
}

/// One line per case.
pub(crate) fn summary_table(cases: &[Case]) -> String {
    let rows: Vec<Vec<Cell>> = cases
        .iter()
        .map(|c| {
            let last = c
                .journal
                .iter()
                .rev()
                .find(|r| r.outcome != StepOutcome::Started)
                .map(|r| format!("{}: {}", r.step, r.detail))
                .unwrap_or_default();
            vec![
                Cell::plain(c.id.to_string()),
                Cell::plain(c.cert.clone()),
                Cell::plain(c.kind.to_string()),
                state_cell(c),
                Cell::plain(match (&c.state, &c.approval) {
                    (CaseState::AwaitingApproval, Some(a)) => {
                        format!("approval ({} of {})", a.approvals.len(), a.needed.max(1))
                    }
                    _ => c.next.map(|s| s.to_string()).unwrap_or_default(),
                }),
                Cell::plain(c.created_at.format("%Y-%m-%d %H:%M").to_string()),
                Cell::plain(match (&c.error, &c.approval) {
                    (Some(e), _) => e.clone(),
                    (None, Some(a)) if c.state == CaseState::AwaitingApproval => a.why.clone(),
                    (None, Some(a)) if c.state == CaseState::Denied => a
                        .denied
                        .as_ref()
                        .map(|d| format!("denied by {}: {}", d.by, d.reason))
                        .unwrap_or_default(),
                    _ => last,
                }),
            ]
        })
        .collect();
    render(
        &[
            "CASE", "CERT", "SEQUENCE", "STATE", "NEXT", "OPENED", "LAST",
        ],
        &rows,
    )
}

pub(crate) fn run_cases(cmd: CasesCommand, config: Option<&Path>) -> Result<ExitCode, CliError> {
    let backend = Backend::choose(load_config(config)?);
    match cmd {
        CasesCommand::List { json } => {
            let list = backend.call::<ops::List>(ops::NoArgs {})?;
            print_case_list(&list.cases, json)?;
            Ok(ExitCode::SUCCESS)
        }
        CasesCommand::Retry { case, json } => {
            let out = backend.call::<ops::Retry>(ops::CaseArgs { case })?;
            print_rerun(&out, json)
        }
        CasesCommand::RevokeOld { case, issuer, json } => {
            let out = backend.call::<ops::RevokeOld>(ops::RevokeOldArgs { case, issuer })?;
            print_rerun(&out, json)
        }
        CasesCommand::Show { case, json } => {
            let detail = backend.call::<ops::Show>(ops::CaseArgs { case })?;
            if detail.unreadable > 0 {
                eprintln!(
                    "warning: {} audit record{} cannot be read; run `certresponder audit verify`",
                    detail.unreadable,
                    if detail.unreadable == 1 { "" } else { "s" }
                );
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&detail.json())?);
            } else {
                print!(
                    "{}",
                    evidence_text(&detail.case, &detail.signals, &detail.records)
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// How a case run again ended; exit 0 when it is done.
fn print_rerun(out: &crate::service::respond::Outcome, json: bool) -> Result<ExitCode, CliError> {
    if !json {
        super::respond::print_pending(out.notifications_pending);
    }
    print_results(&out.cases, &out.errors, json)
}

/// `rollback` arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct RollbackArgs {
    /// The certificate's inventory name
    name: String,
    /// The bundle to restore (an id or a unique prefix; default: the latest earlier bundle
    /// that is not revoked)
    #[arg(long, value_name = "BUNDLE")]
    to: Option<String>,
    /// Restore even a revoked bundle
    #[arg(long)]
    force: bool,
    /// Machine-readable output
    #[arg(long)]
    json: bool,
}

/// `certresponder rollback NAME [--to BUNDLE] [--force]`: exit 0 when the bundle was
/// restored, reloaded and verified, 1 otherwise.
pub(crate) fn run_rollback(
    args: RollbackArgs,
    config: Option<&Path>,
) -> Result<ExitCode, CliError> {
    let backend = Backend::choose(load_config(config)?);
    let done = backend.call::<ops::Rollback>(ops::RollbackArgs {
        cert: args.name,
        to: args.to,
        force: args.force,
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&done)?);
    } else if done.ok {
        println!("{}: {}", done.cert, done.detail);
    } else {
        eprintln!("{}: {}", done.cert, done.detail);
    }
    Ok(if done.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Prints `cases list`: the table, or the cases as JSON without their keys.
fn print_case_list(cases: &[Case], json: bool) -> Result<(), CliError> {
    if json {
        let shown: Vec<serde_json::Value> = cases.iter().map(Case::public_json).collect();
        println!("{}", serde_json::to_string_pretty(&shown)?);
    } else if cases.is_empty() {
        println!("no cases");
    } else {
        print!("{}", summary_table(cases));
    }
    Ok(())
}

/// Prints how cases ended (`approve`, `reissue`, `report-compromise`): the table and each
/// failure, or JSON. Exit 0 when all are done, 1 otherwise.
pub(crate) fn print_results(
    cases: &[Case],
    errors: &[String],
    json: bool,
) -> Result<ExitCode, CliError> {
    if json {
        let shown: Vec<serde_json::Value> = cases.iter().map(Case::public_json).collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"cases": shown, "errors": errors}))?
        );
    } else {
        print!("{}", summary_table(cases));
        for c in cases.iter().filter(|c| c.state == CaseState::Failed) {
            eprintln!(
                "case {} ({}) failed: {}",
                c.id,
                c.cert,
                c.error.as_deref().unwrap_or("")
            );
        }
        for c in cases
            .iter()
            .filter(|c| c.state == CaseState::RevocationNeeded)
        {
            eprintln!(
                "case {} ({}) needs its old certificate revoked: {}",
                c.id,
                c.cert,
                c.error.as_deref().unwrap_or("")
            );
        }
        for c in cases.iter().filter(|c| c.state == CaseState::Unconfirmed) {
            eprintln!(
                "case {} ({}) revoked the old certificate, but its CA still reports it good; each CA check (`certresponder scan`, the daemon's ca_check) asks again and closes the case once it is seen revoked",
                c.id, c.cert
            );
        }
        for c in cases.iter().filter(|c| c.state == CaseState::Running) {
            if let Some(at) = c.retry_at {
                let why = c
                    .journal
                    .iter()
                    .rev()
                    .find(|r| r.outcome == StepOutcome::Failed)
                    .map(|r| r.detail.as_str())
                    .unwrap_or("");
                eprintln!(
                    "case {} ({}) tries its revocation again at {} (or now with `certresponder cases retry {}`): {why}",
                    c.id,
                    c.cert,
                    at.format("%Y-%m-%d %H:%M:%S UTC"),
                    c.id
                );
            }
        }
        for e in errors {
            eprintln!("error: {e}");
        }
    }
    Ok(
        if errors.is_empty() && cases.iter().all(|c| c.state == CaseState::Done) {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        },
    )
}

/// "12m after detection" / "3h before the deadline".
fn against(
    t: DateTime<Utc>,
    detected: Option<DateTime<Utc>>,
    deadline: Option<DateTime<Utc>>,
) -> String {
    let mut parts = Vec::new();
    if let Some(d) = detected {
        parts.push(format!("+{}", human_duration(t - d)));
    }
    if let Some(dl) = deadline {
        if t <= dl {
            parts.push(format!("{} left", human_duration(dl - t)));
        } else {
            parts.push(format!("{} LATE", human_duration(t - dl)));
        }
    }
    parts.join(", ")
}

/// The evidence bundle of a case, in the NIST CSF 2.0 Respond functions: incident
/// management (RS.MA), analysis (RS.AN) and mitigation (RS.MI).
fn evidence_text(c: &Case, signals: &[Signal], records: &[AuditRecord]) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    let detected = signals.iter().map(|s| s.detected_at).min();
    let _ = writeln!(
        o,
        "case {}: {} of `{}`{}",
        c.id,
        c.kind,
        c.cert,
        if c.owner.is_empty() {
            String::new()
        } else {
            format!(" (owner {})", c.owner)
        }
    );
    let _ = writeln!(o, "\nRS.MA incident management");
    let _ = writeln!(
        o,
        "  state:      {}{}",
        c.state,
        if c.rolled_back { " (rolled back)" } else { "" }
    );
    let _ = writeln!(
        o,
        "  opened:     {}",
        c.created_at.format("%Y-%m-%d %H:%M:%S UTC")
    );
    let _ = writeln!(
        o,
        "  trigger:    {} by {}: {}",
        c.trigger.source, c.trigger.by, c.trigger.why
    );
    if let Some(d) = &c.decision {
        let _ = writeln!(
            o,
            "  decision:   {} (approval {}) by rule `{}` ({})",
            d.action.as_str(),
            d.approval.as_str(),
            d.rule.name,
            rule_place(&d.rule)
        );
    }
    if let Some(r) = c.reason {
        let _ = writeln!(
            o,
            "  revoke:     {r}{}",
            if c.contain_first {
                ", contain first (before deploying)"
            } else {
                ""
            }
        );
    }
    if let Some(dl) = c.deadline {
        let _ = writeln!(
            o,
            "  deadline:   {}{}",
            dl.format("%Y-%m-%d %H:%M:%S UTC"),
            match within_deadline(c) {
                Some(true) => " (met)",
                Some(false) => " (MISSED)",
                None => "",
            }
        );
        if let Some(t) = c.reescalated_at {
            let _ = writeln!(
                o,
                "              escalated again as the deadline neared, at {}",
                t.format("%Y-%m-%d %H:%M:%S UTC")
            );
        }
    }
    if let Some(a) = &c.approval {
        let _ = writeln!(o, "  approval:   {} needed: {}", a.needed, a.why);
        for r in &a.approvals {
            let _ = writeln!(
                o,
                "    approved by {} (uid {}) at {}",
                r.by,
                r.uid,
                r.at.format("%Y-%m-%d %H:%M:%S UTC")
            );
        }
        if let Some(d) = &a.denied {
            let _ = writeln!(
                o,
                "    DENIED by {} (uid {}) at {}: {}",
                d.by,
                d.uid,
                d.at.format("%Y-%m-%d %H:%M:%S UTC"),
                d.reason
            );
        }
        if let Some(t) = a.reescalated_at {
            let _ = writeln!(
                o,
                "    escalated again near the deadline at {}",
                t.format("%Y-%m-%d %H:%M:%S UTC")
            );
        }
    }
    let _ = writeln!(o, "\nRS.AN analysis");
    if signals.is_empty() {
        let _ = writeln!(o, "  no signal: the case was opened by hand");
    }
    for s in signals {
        let _ = writeln!(
            o,
            "  signal {} {} ({}, {}) from {}, detected {}: {}",
            s.id,
            s.check,
            format!("{:?}", s.confidence).to_lowercase(),
            s.family,
            s.source,
            s.detected_at.format("%Y-%m-%d %H:%M:%S UTC"),
            s.message
        );
        if !s.evidence.is_null() {
            let _ = writeln!(o, "    evidence: {}", s.evidence);
        }
        if let Some(m) = c
            .decision
            .as_ref()
            .and_then(|d| d.matches.iter().find(|m| m.signal == s.dedup_key))
        {
            let _ = writeln!(
                o,
                "    rule:     `{}` ({}) -> {}",
                m.rule.name,
                rule_place(&m.rule),
                m.action.as_str()
            );
        }
    }
    let _ = writeln!(o, "\nRS.MI mitigation");
    let _ = writeln!(
        o,
        "  old bundle: {}",
        c.old_bundle.as_deref().unwrap_or("-")
    );
    let _ = writeln!(
        o,
        "  new bundle: {}",
        c.new_bundle.as_deref().unwrap_or("-")
    );
    let _ = writeln!(o, "  issued:     {} certificate(s)", c.issued_count);
    for orphan in &c.orphans {
        let _ = writeln!(
            o,
            "  not deployed: serial {} from `{}` ({}): {}; TBS hash {} in the CT ledger",
            orphan.serial,
            orphan.issuer,
            orphan.why,
            orphan.state,
            &orphan.tbs_sha256[..orphan.tbs_sha256.len().min(16)]
        );
    }
    if let Some(e) = &c.error {
        let _ = writeln!(o, "  error:      {e}");
    }
    let rows: Vec<Vec<Cell>> = c
        .journal
        .iter()
        .map(|r| {
            let tone = match r.outcome {
                StepOutcome::Failed => Tone::Alert,
                StepOutcome::Started => Tone::Warn,
                _ => Tone::Plain,
            };
            vec![
                Cell::plain(r.step.to_string()),
                Cell::plain(r.started_at.format("%H:%M:%S%.3f").to_string()),
                Cell::plain(
                    r.finished_at
                        .map(|t| t.format("%H:%M:%S%.3f").to_string())
                        .unwrap_or_default(),
                ),
                Cell::plain(
                    r.finished_at
                        .map(|t| against(t, detected, c.deadline))
                        .unwrap_or_default(),
                ),
                Cell::toned(r.outcome.to_string(), tone),
                Cell::plain(r.detail.clone()),
            ]
        })
        .collect();
    if !rows.is_empty() {
        o.push_str(&render(
            &[
                "STEP",
                "STARTED",
                "FINISHED",
                "VS DEADLINE",
                "OUTCOME",
                "DETAIL",
            ],
            &rows,
        ));
    }
    let _ = writeln!(
        o,
        "\naudit: {} record{} about this case and its signals (`certresponder audit export --case {}` lists the case's own)",
        records.len(),
        if records.len() == 1 { "" } else { "s" },
        c.id
    );
    o
}

pub(crate) fn run_history(
    name: &str,
    json: bool,
    config: Option<&Path>,
) -> Result<ExitCode, CliError> {
    let backend = Backend::choose(load_config(config)?);
    let bundles =
        backend.call::<crate::service::history::History>(crate::service::history::HistoryArgs {
            name: name.to_string(),
        })?;
    if json {
        let shown: Vec<serde_json::Value> = bundles
            .iter()
            .map(|b| {
                json!({
                    "id": b.id,
                    "state": b.state,
                    "revoked_at": b.revoked_at,
                    "serial": b.serial,
                    "issuer": b.issuer,
                    "not_after": b.not_after,
                    "created_at": b.created_at,
                    "origin": b.origin,
                    "cert_sha256": b.cert_sha256,
                    "spki_sha256": b.spki_sha256,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&shown)?);
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<Cell>> = bundles
        .iter()
        .rev()
        .map(|b| {
            let tone = if b.is_revoked() {
                Tone::Alert
            } else {
                Tone::Plain
            };
            vec![
                Cell::plain(b.id.clone()),
                Cell::toned(
                    if b.state != BundleState::Revoked && b.is_revoked() {
                        format!("{} (revoked)", b.state)
                    } else {
                        b.state.to_string()
                    },
                    tone,
                ),
                Cell::plain(b.serial.clone()),
                Cell::plain(b.not_after.format("%Y-%m-%d").to_string()),
                Cell::plain(b.created_at.format("%Y-%m-%d %H:%M").to_string()),
                Cell::plain(b.origin.clone()),
            ]
        })
        .collect();
    print!(
        "{}",
        render(
            &["BUNDLE", "STATE", "SERIAL", "EXPIRES", "RECORDED", "ORIGIN"],
            &rows
        )
    );
    Ok(ExitCode::SUCCESS)
}
