//! `certresponder report-compromise`, `reissue` and `respond`: the commands that start and
//! resume sequences.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use certresponder_issuers::RevocationReason;
use chrono::Utc;
use clap::Args;
use serde_json::json;

use super::inventory::open_store;
use super::table::{Cell, Tone, render};
use super::{CliError, input_error, load_config};
use crate::config::Config;
use crate::registry::sync;
use crate::respond::case::{Case, CaseState, SequenceKind, Trigger};
use crate::respond::decide::decide;
use crate::respond::{Engine, RespondError};
use crate::signals::{Finding, Signal, current_user};
use crate::store::{CertStatus, Store};

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

/// A multi-threaded runtime for the sequences.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// Opens the store, brings it in line with the inventory and builds the engine.
pub(crate) fn engine(cfg: &Config) -> Result<Arc<Engine>, CliError> {
    let store = open_store(cfg)?;
    sync(&store, cfg, Utc::now())?;
    let store: Arc<dyn Store + Send + Sync> = Arc::new(store);
    Ok(Arc::new(Engine::new(store, cfg.clone())?))
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
    let cfg = load_config(config)?;
    let engine = engine(&cfg)?;
    // Check every name before acting on any.
    let mut seen = std::collections::HashSet::new();
    let mut running = engine.running_by_cert().map_err(respond_error)?;
    for name in &args.names {
        if !seen.insert(name) {
            return Err(input_error(format!("`{name}` is named twice")));
        }
        let entry = engine.entry(name).map_err(respond_error)?;
        engine
            .check_actionable(&entry, SequenceKind::RevokeReissue)
            .map_err(respond_error)?;
        if let Some(case) = running.get(name) {
            return Err(respond_error(RespondError::Busy {
                cert: name.clone(),
                case: *case,
            }));
        }
    }
    let reporter = current_user();
    let mut ids = Vec::new();
    for name in &args.names {
        let signal = record_report(engine.store(), name, &reporter, &args.evidence)?;
        let case = engine
            .open_case_among(
                name,
                SequenceKind::RevokeReissue,
                args.contain_first,
                Some(RevocationReason::KeyCompromise),
                Trigger {
                    source: "report".into(),
                    by: reporter.clone(),
                    why: args.evidence.clone(),
                    signals: vec![signal],
                },
                &mut running,
            )
            .map_err(respond_error)?;
        ids.push(case.id);
    }
    run_and_print(&engine, &ids, args.json)
}

/// Records a reported key compromise as a confirmed `key_exposed` signal about the current
/// bundle, with the reporter's identity; returns its dedup key.
fn record_report(
    store: &dyn Store,
    name: &str,
    reporter: &str,
    evidence: &str,
) -> Result<String, CliError> {
    let bundles = store.bundles(name)?;
    let current = certresponder_inventory::Bundle::current_of(&bundles);
    let finding = Finding::compromised(
        "key_exposed",
        format!("key reported compromised by {reporter}: {evidence}"),
        json!({
            "reporter": reporter,
            "evidence": evidence,
            "bundle": current.as_ref().map(|b| b.id.clone()),
        }),
    );
    let fp = current.as_ref().map(|b| b.fingerprints.cert_sha256.clone());
    let mut signal = Signal::from_finding(
        name,
        "exposure",
        &finding,
        fp.as_deref(),
        "report",
        Utc::now(),
    );
    if let Some(old) = store.get_signal(&signal.dedup_key)? {
        signal.detected_at = old.detected_at;
        signal.times_seen = old.times_seen + 1;
    }
    store.put_signal(&signal)?;
    Ok(signal.dedup_key)
}

pub(crate) fn run_reissue(args: ReissueArgs, config: Option<&Path>) -> Result<ExitCode, CliError> {
    let reason = args.revoke.as_deref().map(parse_reason).transpose()?;
    let cfg = load_config(config)?;
    let engine = engine(&cfg)?;
    let kind = if reason.is_some() {
        SequenceKind::RevokeReissue
    } else {
        SequenceKind::Reissue
    };
    let case = engine
        .open_case(
            &args.name,
            kind,
            args.contain_first,
            reason,
            Trigger {
                source: "manual".into(),
                by: current_user(),
                why: args.why.clone(),
                signals: Vec::new(),
            },
        )
        .map_err(respond_error)?;
    run_and_print(&engine, &[case.id], args.json)
}

pub(crate) fn run_respond(args: RespondArgs, config: Option<&Path>) -> Result<ExitCode, CliError> {
    let cfg = load_config(config)?;
    let engine = engine(&cfg)?;
    let store = engine.store();
    let now = Utc::now();
    let unfinished = engine.unfinished().map_err(respond_error)?;
    let cases = store.list_cases()?;
    let answered: std::collections::HashSet<&str> = cases
        .iter()
        .flat_map(|c| c.trigger.signals.iter().map(String::as_str))
        .collect();
    let busy: std::collections::HashSet<&str> = cases
        .iter()
        .filter(|c| c.state == CaseState::Running)
        .map(|c| c.cert.as_str())
        .collect();
    let signals = store.list_signals()?;
    let mut by_cert: BTreeMap<&str, Vec<&Signal>> = BTreeMap::new();
    for s in &signals {
        if s.is_open(now) && !answered.contains(s.dedup_key.as_str()) {
            by_cert.entry(s.subject.as_str()).or_default().push(s);
        }
    }
    let mut decisions = Vec::new();
    let mut to_open = Vec::new();
    for (cert, sigs) in &by_cert {
        let d = decide(sigs);
        let active = matches!(store.get_cert(cert)?, Some(r) if r.status == CertStatus::Active);
        let blocked = if !active {
            Some("not a registered, active certificate".to_string())
        } else if busy.contains(cert) {
            Some("a case is already running for it".to_string())
        } else if let Some(kind) = d.action {
            engine
                .entry(cert)
                .and_then(|e| engine.check_actionable(&e, kind))
                .err()
                .map(|e| e.to_string())
        } else {
            None
        };
        if blocked.is_none() && d.action.is_some() {
            to_open.push((cert.to_string(), d.clone()));
        }
        decisions.push(json!({
            "cert": cert,
            "action": d.action.map_or("escalate", SequenceKind::as_str),
            "reason": d.reason.map(|r| r.name()),
            "why": d.why,
            "signals": d.signals.len(),
            "blocked": blocked,
        }));
    }
    if args.dry_run {
        if args.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({
                    "resume": unfinished,
                    "decisions": decisions,
                }))?
            );
        } else if decisions.is_empty() && unfinished.is_empty() {
            println!("nothing to do: no unfinished cases and no open signals without a case");
        } else {
            print_decisions(&decisions, &unfinished);
        }
        return Ok(ExitCode::SUCCESS);
    }
    if !args.json {
        print_decisions(&decisions, &unfinished);
    }
    let mut ids = unfinished;
    let who = current_user();
    let mut running = engine.running_by_cert().map_err(respond_error)?;
    for (cert, d) in to_open {
        let Some(kind) = d.action else { continue };
        let case = engine
            .open_case_among(
                &cert,
                kind,
                false,
                d.reason,
                Trigger {
                    source: "respond".into(),
                    by: who.clone(),
                    why: d.why.clone(),
                    signals: d.signals.clone(),
                },
                &mut running,
            )
            .map_err(respond_error)?;
        ids.push(case.id);
    }
    if ids.is_empty() {
        if !args.json {
            println!("nothing to do");
        } else {
            println!("{}", json!({"decisions": decisions, "cases": []}));
        }
        return Ok(ExitCode::SUCCESS);
    }
    run_and_print(&engine, &ids, args.json)
}

fn print_decisions(decisions: &[serde_json::Value], resume: &[u64]) {
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
    if decisions.is_empty() {
        return;
    }
    let rows: Vec<Vec<Cell>> = decisions
        .iter()
        .map(|d| {
            let s = |k: &str| d[k].as_str().unwrap_or("").to_string();
            let blocked = d["blocked"].as_str();
            vec![
                Cell::plain(s("cert")),
                Cell::toned(
                    s("action"),
                    if s("action") == "escalate" {
                        Tone::Warn
                    } else {
                        Tone::Alert
                    },
                ),
                Cell::plain(s("reason")),
                Cell::plain(match blocked {
                    Some(b) => format!("not started: {b}"),
                    None if s("action") == "escalate" => "needs a person".into(),
                    None => "starting".into(),
                }),
                Cell::plain(s("why")),
            ]
        })
        .collect();
    print!(
        "{}",
        render(&["CERT", "ACTION", "REASON", "STATUS", "WHY"], &rows)
    );
}

/// Runs the cases and prints how each ended. Exit 0 when all are done, 1 otherwise.
fn run_and_print(engine: &Arc<Engine>, ids: &[u64], json: bool) -> Result<ExitCode, CliError> {
    let rt = runtime()?;
    let results = rt.block_on(engine.run_cases(ids));
    let mut cases: Vec<Case> = Vec::new();
    let mut errors = Vec::new();
    for r in results {
        match r {
            Ok(c) => cases.push(c),
            Err(e) => errors.push(e.to_string()),
        }
    }
    let all_done = errors.is_empty() && cases.iter().all(|c| c.state == CaseState::Done);
    if json {
        let shown: Vec<serde_json::Value> = cases.iter().map(Case::public_json).collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"cases": shown, "errors": errors}))?
        );
    } else {
        print!("{}", super::cases::summary_table(&cases));
        for c in cases.iter().filter(|c| c.state == CaseState::Failed) {
            eprintln!(
                "case {} ({}) failed: {}",
                c.id,
                c.cert,
                c.error.as_deref().unwrap_or("")
            );
        }
        for e in &errors {
            eprintln!("error: {e}");
        }
    }
    Ok(if all_done {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
