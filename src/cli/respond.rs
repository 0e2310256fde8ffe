//! `certresponder report-compromise`, `reissue` and `respond`: the commands that start and
//! resume sequences.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use certresponder_issuers::RevocationReason;
use chrono::Utc;
use clap::Args;
use serde_json::json;

use super::backend::{Backend, service_error};
use super::inventory::open_store;
use super::table::{Cell, Tone, render};
use super::{CliError, input_error, load_config};
use crate::config::Config;
use crate::govern::{Applied, GovernError, Governor, Identity, Plan, Unmatched};
use crate::policy::Action;
use crate::records::case::Case;
use crate::respond::{Engine, RespondError};
use crate::service::respond as ops;
use crate::store::Store;

/// `report-compromise` arguments.
#[derive(Debug, Args)]
pub(crate) struct ReportArgs {
    /// Inventory names of the certificates whose key is compromised (several when one key
    /// was reused across services; their cases run concurrently)
    #[arg(required = true, value_name = "NAME")]
    names: Vec<String>,
    /// What was seen, where and when (kept with the signal and the case)
    #[arg(long)]
    evidence: String,
    /// Revoke the old certificate as soon as the new one is issued, before deploying it
    #[arg(long)]
    contain_first: bool,
    /// The key deployed now is compromised too, even though an earlier case that replaced
    /// the certificate still waits for its old one to be revoked (without it such a report
    /// is refused: it would be about the replacement)
    #[arg(long)]
    current: bool,
    /// Machine-readable output
    #[arg(long)]
    json: bool,
}

/// `reissue` arguments.
#[derive(Debug, Args)]
pub(crate) struct ReissueArgs {
    /// The certificate's inventory name
    name: String,
    /// Also revoke the old certificate after the new one is verified, with this RFC 5280
    /// reason (keyCompromise, superseded, affiliationChanged, cessationOfOperation...)
    #[arg(long, value_name = "REASON")]
    revoke: Option<String>,
    /// With --revoke: revoke before deploying the new bundle
    #[arg(long, requires = "revoke")]
    contain_first: bool,
    /// Why (kept with the case)
    #[arg(long, default_value = "requested by hand")]
    why: String,
    /// Machine-readable output
    #[arg(long)]
    json: bool,
}

/// `respond` arguments.
#[derive(Debug, Args)]
pub(crate) struct RespondArgs {
    /// Print each decision and the sequence it would start; change nothing
    #[arg(long)]
    dry_run: bool,
    /// Machine-readable output
    #[arg(long)]
    json: bool,
}

/// Opens the store, brings it in line with the inventory and builds the engine.
pub(crate) fn engine(cfg: &Config) -> Result<Arc<Engine>, CliError> {
    let store = open_store(cfg)?;
    let report = cfg.sync_inventory(&store, Utc::now())?;
    warn_inventory_errors(&report.errors);
    let store: Arc<dyn Store + Send + Sync> = Arc::new(store);
    Ok(Arc::new(Engine::new(store, cfg.clone())?))
}

/// Says on stderr what is wrong with the inventory: the entries of a broken file keep their
/// last registered state, and a broken new entry is not acted on until it is fixed.
pub(crate) fn warn_inventory_errors(errors: &[certresponder_inventory::InventoryError]) {
    const SHOWN: usize = 10;
    for e in errors.iter().take(SHOWN) {
        eprintln!("warning: inventory: {e}");
    }
    if errors.len() > SHOWN {
        eprintln!(
            "warning: inventory: {} more problems (`certresponder inventory validate` lists them all)",
            errors.len() - SHOWN
        );
    }
}

/// The engine with the configured policy; a bad policy file is an input error.
pub(crate) fn governor(cfg: &Config) -> Result<Governor, CliError> {
    let policy = cfg.load_policy().map_err(|e| CliError::Input(e.into()))?;
    Ok(Governor::new(engine(cfg)?, policy))
}

/// The identity of the person running the command.
pub(crate) fn identity() -> Result<Identity, CliError> {
    Identity::current().map_err(|e| CliError::Failure(anyhow::anyhow!(e)))
}

/// Refusals are input errors; the rest are failures.
pub(crate) fn govern_error(e: GovernError) -> CliError {
    match e {
        GovernError::Respond(e) => respond_error(e),
        GovernError::Refused(_) => CliError::Input(e.into()),
        other => CliError::Failure(other.into()),
    }
}

/// Errors about what was asked (unknown name, busy, nothing to act with) are input errors.
pub(crate) fn respond_error(e: RespondError) -> CliError {
    match e {
        RespondError::UnknownCert(_)
        | RespondError::Removed(_)
        | RespondError::UnknownCase(_)
        | RespondError::Busy { .. }
        | RespondError::NotActionable { .. } => CliError::Input(e.into()),
        other => CliError::Failure(other.into()),
    }
}

fn parse_reason(s: &str) -> Result<RevocationReason, CliError> {
    RevocationReason::parse(s).ok_or_else(|| {
        input_error(format!(
            "--revoke `{s}`: not an RFC 5280 reason; use keyCompromise, superseded, affiliationChanged, cessationOfOperation, privilegeWithdrawn or unspecified"
        ))
    })
}

pub(crate) fn run_report(args: ReportArgs, config: Option<&Path>) -> Result<ExitCode, CliError> {
    if args.evidence.trim().is_empty() {
        return Err(input_error("--evidence must say what was seen"));
    }
    let backend = Backend::choose(load_config(config)?);
    let out = backend.call::<ops::ReportCompromise>(ops::ReportArgs {
        names: args.names,
        evidence: args.evidence,
        contain_first: args.contain_first,
        current: args.current,
    })?;
    if !args.json {
        for f in &out.folded {
            println!(
                "{}: case {} was waiting for approval; decided again with the report: {}{}",
                f.cert,
                f.case,
                f.kind,
                f.reason.map(|r| format!(" ({r})")).unwrap_or_default()
            );
        }
        print_decisions(&out.decisions, &[], &[]);
    }
    render_outcome(&out, args.json)
}

/// Prints what a pass did: the cases that ran (or, as JSON, everything), what waits for
/// approval and what was escalated. Exit 0 when every case that ran is done, 1 otherwise.
fn render_outcome(out: &ops::Outcome, json: bool) -> Result<ExitCode, CliError> {
    let code = if out.all_done() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    };
    if json {
        let shown: Vec<serde_json::Value> = out.cases.iter().map(Case::public_json).collect();
        let waiting: Vec<serde_json::Value> = out.waiting.iter().map(Case::public_json).collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "decisions": out.decisions,
                "cases": shown,
                "waiting": waiting,
                "escalated": out.applied.escalated,
                "ignored": out.applied.ignored,
                "busy": out.applied.busy,
                "breaker_opened": out.applied.breaker_opened,
                "errors": out.errors,
            }))?
        );
        return Ok(code);
    }
    print_pending(out.notifications_pending);
    if !(out.resumed.is_empty() && out.applied.run.is_empty()) {
        super::cases::print_results(&out.cases, &out.errors, false)?;
    }
    print_waiting(&out.waiting, out.applied.breaker_opened);
    if !out.applied.escalated.is_empty() {
        println!(
            "escalated to their owners (no action taken): {}",
            out.applied.escalated.join(", ")
        );
    }
    Ok(code)
}

/// Says how many notifications stay queued.
pub(crate) fn print_pending(pending: usize) {
    if pending > 0 {
        eprintln!(
            "{pending} notification{} could not be delivered yet and stay queued",
            if pending == 1 { "" } else { "s" }
        );
    }
}

/// Records a reported key compromise (see [`ops::record_report`]).
pub(crate) fn record_report(
    store: &dyn Store,
    name: &str,
    reporter: &str,
    evidence: &str,
) -> Result<String, CliError> {
    ops::record_report(store, name, reporter, evidence, false).map_err(service_error)
}

pub(crate) fn run_reissue(args: ReissueArgs, config: Option<&Path>) -> Result<ExitCode, CliError> {
    // The reason is checked before the daemon is asked.
    args.revoke.as_deref().map(parse_reason).transpose()?;
    let backend = Backend::choose(load_config(config)?);
    let out = backend.call::<ops::Reissue>(ops::ReissueArgs {
        name: args.name,
        revoke: args.revoke,
        contain_first: args.contain_first,
        why: args.why,
    })?;
    if !args.json {
        print_pending(out.notifications_pending);
    }
    super::cases::print_results(&out.cases, &out.errors, args.json)
}

/// Runs the cases a pass opened (and `resume`) in this process, then prints what ran, what
/// waits for approval and what was escalated (`quickstart`, which works on its own demo).
pub(crate) fn finish(
    gov: &Governor,
    applied: &Applied,
    plans: &[Plan],
    resume: Vec<u64>,
    json: bool,
) -> Result<ExitCode, CliError> {
    let mut ids = resume.clone();
    ids.extend(&applied.run);
    let engine = gov.engine();
    let store = engine.store();
    let waiting: Vec<Case> = applied
        .waiting
        .iter()
        .filter_map(|id| store.get_case(*id).ok().flatten())
        .collect();
    let (cases, errors) = super::backend::run_here(engine, &ids);
    let out = ops::Outcome {
        resumed: resume,
        decisions: plans.to_vec(),
        applied: applied.clone(),
        cases,
        errors,
        waiting,
        notifications_pending: super::backend::deliver_here(store, &engine.config().notify),
        ..ops::Outcome::default()
    };
    render_outcome(&out, json)
}

/// Lists the cases that wait for approval, with the command that approves each.
pub(crate) fn print_waiting(waiting: &[Case], breaker_opened: bool) {
    if breaker_opened {
        println!(
            "the blast-radius breaker opened: automatic revocations wait for approval (see `certresponder breaker status`)"
        );
    }
    if waiting.is_empty() {
        return;
    }
    println!("waiting for approval:");
    for c in waiting {
        let why = c.approval.as_ref().map(|a| a.why.as_str()).unwrap_or("");
        let deadline = c
            .deadline
            .map(|d| format!(", deadline {}", d.format("%Y-%m-%d %H:%M UTC")))
            .unwrap_or_default();
        println!(
            "  case {} {} ({}{deadline}): {why}; `certresponder approve {}` or `certresponder deny {} --reason ...`",
            c.id, c.cert, c.kind, c.id, c.id
        );
    }
}

pub(crate) fn run_respond(args: RespondArgs, config: Option<&Path>) -> Result<ExitCode, CliError> {
    let backend = Backend::choose(load_config(config)?);
    if args.dry_run {
        let plan = backend.call::<ops::RespondDryRun>(ops::RespondArgs {})?;
        if args.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({
                    "resume": plan.resume,
                    "decisions": plan.decisions,
                    "unmatched": plan.unmatched,
                }))?
            );
        } else if plan.decisions.is_empty() && plan.resume.is_empty() && plan.unmatched.is_empty() {
            println!("nothing to do: no unfinished cases and no open signals without an answer");
        } else {
            print_decisions(&plan.decisions, &plan.resume, &plan.unmatched);
            println!("dry run: nothing was changed");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let out = backend.call::<ops::Respond>(ops::RespondArgs {})?;
    if !args.json {
        print_decisions(&out.decisions, &out.resumed, &out.unmatched);
        if !out.reescalated.is_empty() {
            println!(
                "escalated again (waiting for approval close to their deadline): case {}",
                out.reescalated
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        if out.applied.run.is_empty() && out.resumed.is_empty() && out.applied.waiting.is_empty() {
            println!("nothing to run");
        }
    }
    render_outcome(&out, args.json)
}

pub(crate) fn print_decisions(plans: &[Plan], resume: &[u64], unmatched: &[Unmatched]) {
    if !resume.is_empty() {
        println!(
            "resuming case{} {}",
            if resume.len() == 1 { "" } else { "s" },
            resume
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    for u in unmatched {
        println!(
            "{}: {} open signal{} about something that is not a registered certificate; see `certresponder signals`",
            u.subject,
            u.signals,
            if u.signals == 1 { "" } else { "s" }
        );
    }
    if plans.is_empty() {
        return;
    }
    let rows: Vec<Vec<Cell>> = plans
        .iter()
        .map(|p| {
            let d = &p.decision;
            let action = d.action;
            let status = match (&p.blocked, &p.approval, action) {
                (Some(b), _, _) => format!("cannot run, escalated: {b}"),
                (None, _, Action::Escalate) => "escalated to the owner".into(),
                (None, _, Action::Ignore) => "ignored".into(),
                (None, Some(a), _) => format!("waits for approval: {a}"),
                (None, None, _) => "starts now".into(),
            };
            let status = match &p.issuer {
                Some(via) if p.blocked.is_none() => {
                    format!("{status}; new certificate from `{via}`")
                }
                _ => status,
            };
            vec![
                Cell::plain(p.cert.clone()),
                Cell::toned(
                    action.as_str(),
                    match action {
                        Action::Escalate => Tone::Warn,
                        Action::Ignore => Tone::Plain,
                        _ => Tone::Alert,
                    },
                ),
                Cell::plain(d.reason.map(|r| r.name().to_string()).unwrap_or_default()),
                Cell::plain(format!(
                    "{} ({})",
                    d.rule.name,
                    crate::govern::rule_place(&d.rule)
                )),
                Cell::plain(
                    d.deadline
                        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                        .unwrap_or_default(),
                ),
                Cell::plain(status),
                Cell::plain(d.why.clone()),
            ]
        })
        .collect();
    print!(
        "{}",
        render(
            &[
                "CERT", "ACTION", "REASON", "RULE", "DEADLINE", "STATUS", "WHY"
            ],
            &rows
        )
    );
}
