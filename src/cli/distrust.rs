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
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use clap::Args;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::inventory::open_store;
use super::respond::{govern_error, governor, identity, print_waiting, run_notifying};
use super::table::{Cell, Tone, render};
use super::{CliError, input_error, load_config};
use crate::audit::{self, AuditEntry};
use crate::govern::{POLICY_ACTOR, Plan};
use crate::respond::case::{Case, CaseState, Step, StepOutcome};
use crate::respond::settings::Rate;
use crate::signals::ca::distrust::{self, CaRef, Distrust};
use crate::signals::scan::{ScanReport, store_findings};
use crate::store::Store;

/// Exit status when nothing failed but some certificates are not replaced yet (waiting for
/// approval, escalated, busy).
const NOT_ALL_REPLACED: u8 = 3;

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

/// What became of one affected certificate.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Outcome {
    cert: String,
    priority: String,
    /// `replaced`, `failed`, `waiting`, `escalated`, `busy`.
    status: String,
    case: Option<u64>,
    issuer: Option<String>,
    deadline: Option<DateTime<Utc>>,
    /// When the new certificate was verified in place.
    verified_at: Option<DateTime<Utc>>,
    /// Seconds from the case's opening to the verified deployment.
    seconds: Option<f64>,
    within_deadline: Option<bool>,
    detail: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Summary {
    affected: usize,
    replaced: usize,
    within_deadline: usize,
    late: usize,
    failed: usize,
    waiting: usize,
    escalated: usize,
    busy: usize,
    elapsed_seconds: f64,
    p50_seconds: Option<f64>,
    p99_seconds: Option<f64>,
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
    if super::remote::daemon_running(&cfg) {
        return through_daemon(&cfg, &args);
    }
    if args.list {
        return list(&cfg, args.json);
    }
    let Some(ca_arg) = args.ca.as_deref() else {
        return Err(input_error("name the CA to distrust"));
    };
    let ca = parse_ca(ca_arg)?;
    if args.remove {
        let store = open_store(&cfg)?;
        let n = distrust::remove(&store, &ca)?;
        if n == 0 {
            return Err(input_error(format!(
                "`{}` is not recorded as distrusted{}",
                ca.written(),
                if cfg.distrust.iter().any(|d| d.ca == ca) {
                    " by this command; it is in the configuration's [[distrust]]"
                } else {
                    ""
                }
            )));
        }
        audit::append(
            &store,
            AuditEntry {
                kind: "distrust_removed",
                actor: &identity()?.to_string(),
                cert: None,
                case: None,
                data: json!({"ca": ca}),
            },
        )?;
        println!("{} is no longer recorded as distrusted", ca.written());
        return Ok(ExitCode::SUCCESS);
    }
    let issued_after = args
        .issued_after
        .as_deref()
        .map(distrust::parse_date)
        .transpose()
        .map_err(|e| input_error(format!("--issued-after: {e}")))?;
    let deadline_hours = distrust::parse_deadline(&args.deadline)
        .map_err(|e| input_error(format!("--deadline: {e}")))?;
    if let Some(id) = &args.issuer
        && !cfg.issuers.iter().any(|i| &i.id == id)
    {
        return Err(input_error(format!(
            "--issuer `{id}` is not a configured issuer (known: {})",
            cfg.issuer_ids().join(", ")
        )));
    }
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
    let who = identity()?.to_string();
    let d = Distrust {
        ca,
        issued_after,
        deadline_hours,
        replace_with: args.issuer.clone(),
        reason: args.reason.clone(),
        origin: "command".into(),
        added_by: Some(who.clone()),
        added_at: Some(Utc::now()),
    };
    if args.dry_run {
        return dry_run(&cfg, &d, args.json);
    }
    let started = Instant::now();
    let gov = governor(&cfg)?;
    let engine = Arc::clone(gov.engine());
    let run = begin(&gov, d, &who)?;
    if !args.json {
        announce(&run.distrust, run.names.len());
    }
    let ids = run.applied.run.clone();
    let rt = super::respond::runtime()?;
    let show_progress = !args.no_progress && !args.json;
    let results = rt.block_on(async {
        let ticker = progress(Arc::clone(&engine), ids.clone(), show_progress);
        tokio::select! {
            r = run_notifying(&engine, &ids) => r,
            () = ticker => Vec::new(),
        }
    });
    if show_progress && std::io::stderr().is_terminal() {
        eprintln!();
    }
    let errors: Vec<(u64, String)> = ids
        .iter()
        .zip(&results)
        .filter_map(|(id, r)| r.as_ref().err().map(|e| (*id, e.to_string())))
        .collect();
    let report = report(engine.store(), &run, started.elapsed(), &errors)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_summary(&report.outcomes, &report.summary);
        let waiting: Vec<Case> = run
            .applied
            .waiting
            .iter()
            .filter_map(|id| engine.store().get_case(*id).ok().flatten())
            .collect();
        print_waiting(&waiting, run.applied.breaker_opened);
        for e in &report.errors {
            eprintln!("error: {e}");
        }
    }
    Ok(report.exit_code())
}

/// `distrust` while the daemon runs (and holds the database): the same, done by the daemon
/// through its control socket; this command follows the run and prints its summary. The
/// replacements run under the daemon's `[respond] concurrency` and `replacement_rate`.
fn through_daemon(cfg: &crate::config::Config, args: &DistrustArgs) -> Result<ExitCode, CliError> {
    use super::remote::{get_as, post_as};
    if args.list {
        let all: Vec<Distrust> = get_as(cfg, "/v1/distrust")?;
        return print_list(&all, args.json);
    }
    let Some(ca_arg) = args.ca.as_deref() else {
        return Err(input_error("name the CA to distrust"));
    };
    // A CA certificate file is read here: the daemon may not see this path.
    let ca = parse_ca(ca_arg)?.written();
    if args.remove {
        let _: serde_json::Value =
            post_as(cfg, "/v1/distrust", &json!({"ca": ca, "remove": true}))?;
        println!("{ca} is no longer recorded as distrusted");
        return Ok(ExitCode::SUCCESS);
    }
    if args.concurrency.is_some() || args.rate.is_some() {
        eprintln!(
            "note: the daemon runs the replacements under its own [respond] concurrency and replacement_rate; --concurrency and --rate apply only when it does not run"
        );
    }
    let body = json!({
        "ca": ca,
        "issued_after": args.issued_after,
        "deadline": args.deadline,
        "issuer": args.issuer,
        "reason": args.reason,
        "dry_run": args.dry_run,
    });
    let begun: serde_json::Value = post_as(cfg, "/v1/distrust", &body)?;
    let d: Distrust = serde_json::from_value(begun["distrust"].clone())
        .map_err(|e| CliError::Failure(anyhow::anyhow!("the daemon's answer: {e}")))?;
    if args.dry_run {
        let listed = begun["affected"].as_array().cloned().unwrap_or_default();
        return print_dry_run(&d, &listed, args.json);
    }
    if let Some(why) = begun["not_started"].as_str() {
        return Err(CliError::Failure(anyhow::anyhow!(
            "the distrust is recorded and its cases are open, but they were not started: {why}"
        )));
    }
    let Some(run) = begun["run"].as_u64() else {
        return Err(CliError::Failure(anyhow::anyhow!(
            "the daemon's answer names no distrust run: {begun}"
        )));
    };
    if !args.json {
        announce(
            &d,
            usize::try_from(begun["affected"].as_u64().unwrap_or(0)).unwrap_or(0),
        );
    }
    let tty = std::io::stderr().is_terminal();
    let show = !args.no_progress && !args.json;
    let every = Duration::from_secs(if tty { 1 } else { 10 });
    let started = Instant::now();
    let mut shown = Instant::now();
    let report: Report = loop {
        let r: Report = get_as(cfg, &format!("/v1/distrust/{run}"))?;
        if r.distrust.ca.written() != ca {
            return Err(CliError::Failure(anyhow::anyhow!(
                "distrust run {run} is now about {}, not {ca}: the daemon restarted; see `certresponder cases list`",
                r.distrust.ca.written()
            )));
        }
        if r.finished {
            break r;
        }
        if show && shown.elapsed() >= every {
            show_line(&r.progress.line(started.elapsed()), tty);
            shown = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    if show && tty {
        eprintln!();
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_summary(&report.outcomes, &report.summary);
        for e in &report.errors {
            eprintln!("error: {e}");
        }
    }
    Ok(report.exit_code())
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

/// A distrust that has been acted on: what it affects, the policy's plans and the cases
/// opened. The daemon keeps these to report on them (`GET /v1/distrust/{run}`).
#[derive(Debug, Clone)]
pub(crate) struct Begun {
    /// The distrust.
    pub(crate) distrust: Distrust,
    /// The affected certificates.
    pub(crate) names: Vec<String>,
    /// The policy's plans for them, in the order the cases were opened.
    pub(crate) plans: Vec<Plan>,
    /// What was opened.
    pub(crate) applied: crate::govern::Applied,
}

/// Records the distrust (audited as `who`), raises a signal for every affected certificate,
/// and opens the cases the policy decides on, earliest deadline and most critical first.
/// The cases to run are `applied.run`, in that order.
pub(crate) fn begin(
    gov: &crate::govern::Governor,
    d: Distrust,
    who: &str,
) -> Result<Begun, CliError> {
    let store = gov.engine().store();
    distrust::record(store, d.clone())?;
    audit::append(
        store,
        AuditEntry {
            kind: "distrust",
            actor: who,
            cert: None,
            case: None,
            data: json!({"distrust": d}),
        },
    )?;
    let now = Utc::now();
    let findings = distrust::affected(store, std::slice::from_ref(&d))?;
    let mut scan_report = ScanReport::default();
    store_findings(store, &findings, "scan", now, &mut scan_report)?;
    let names: Vec<String> = findings.iter().map(|(n, _, _)| n.clone()).collect();
    let (mut plans, _) = if names.is_empty() {
        (Vec::new(), Vec::new())
    } else {
        gov.plan_retrying_failed(&names).map_err(govern_error)?
    };
    order(store, &mut plans)?;
    let applied = gov
        .apply(&plans, "distrust", POLICY_ACTOR, false)
        .map_err(govern_error)?;
    Ok(Begun {
        distrust: d,
        names,
        plans,
        applied,
    })
}

/// How far the replacements are.
#[derive(Debug, Default, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct Progress {
    /// Cases to run.
    pub(crate) total: usize,
    /// Done.
    pub(crate) done: usize,
    /// Failed.
    pub(crate) failed: usize,
    /// Not finished yet.
    pub(crate) running: usize,
}

impl Progress {
    fn of(store: &dyn Store, ids: &[u64]) -> Self {
        let mut p = Self {
            total: ids.len(),
            ..Self::default()
        };
        for id in ids {
            match store.get_case(*id).ok().flatten().map(|c| c.state) {
                Some(CaseState::Done) => p.done += 1,
                Some(CaseState::Failed) => p.failed += 1,
                _ => p.running += 1,
            }
        }
        p
    }

    fn line(&self, elapsed: Duration) -> String {
        format!(
            "replaced {}/{} · failed {} · in progress {} · {}s",
            self.done,
            self.total,
            self.failed,
            self.running,
            elapsed.as_secs()
        )
    }
}

/// What a distrust came to (so far): `finished` once no case it started is still running.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Report {
    distrust: Distrust,
    affected: usize,
    finished: bool,
    progress: Progress,
    summary: Summary,
    outcomes: Vec<Outcome>,
    /// The cases opened, without private keys.
    cases: Vec<serde_json::Value>,
    errors: Vec<String>,
}

impl Report {
    /// 0 when everything was replaced, 1 when something failed, 3 otherwise.
    fn exit_code(&self) -> ExitCode {
        if self.summary.failed > 0 || !self.errors.is_empty() {
            ExitCode::FAILURE
        } else if self.summary.replaced < self.summary.affected {
            ExitCode::from(NOT_ALL_REPLACED)
        } else {
            ExitCode::SUCCESS
        }
    }
}

/// The report on `run` as the store has it now, `elapsed` after it began; `errors` are the
/// cases that could not run (still `running` in the store), which count as failed.
pub(crate) fn report(
    store: &dyn Store,
    run: &Begun,
    elapsed: Duration,
    errors: &[(u64, String)],
) -> Result<Report, CliError> {
    let mut progress = Progress::of(store, &run.applied.run);
    for (id, _) in errors {
        let state = store.get_case(*id)?.map(|c| c.state);
        if run.applied.run.contains(id)
            && !matches!(state, Some(CaseState::Done | CaseState::Failed))
        {
            progress.running = progress.running.saturating_sub(1);
            progress.failed += 1;
        }
    }
    let errors: Vec<String> = errors
        .iter()
        .map(|(id, e)| format!("case {id} could not run: {e}"))
        .collect();
    let (outcomes, summary) = summarise(store, &run.names, &run.plans, &run.applied, elapsed)?;
    let cases = outcomes
        .iter()
        .filter_map(|o| o.case)
        .filter_map(|id| store.get_case(id).ok().flatten())
        .map(|c| c.public_json())
        .collect();
    Ok(Report {
        distrust: run.distrust.clone(),
        affected: run.names.len(),
        finished: progress.running == 0,
        progress,
        summary,
        outcomes,
        cases,
        errors,
    })
}

/// Earliest deadline first; among equal deadlines, the most critical first; then by name.
fn order(store: &dyn Store, plans: &mut [Plan]) -> Result<(), CliError> {
    let mut rank = std::collections::HashMap::new();
    for p in plans.iter() {
        let r = store
            .get_cert(&p.cert)?
            .map_or(u8::MAX, |c| c.entry.priority.rank());
        rank.insert(p.cert.clone(), r);
    }
    plans.sort_by(|a, b| {
        let da = a.decision.deadline.unwrap_or(DateTime::<Utc>::MAX_UTC);
        let db = b.decision.deadline.unwrap_or(DateTime::<Utc>::MAX_UTC);
        da.cmp(&db)
            .then(rank[&a.cert].cmp(&rank[&b.cert]))
            .then(a.cert.cmp(&b.cert))
    });
    Ok(())
}

/// Prints how far the replacements are, every second on a terminal (one line, rewritten),
/// every ten seconds otherwise. Never returns.
async fn progress(engine: Arc<crate::respond::Engine>, ids: Vec<u64>, show: bool) {
    let tty = std::io::stderr().is_terminal();
    let every = if tty { 1 } else { 10 };
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(every));
    tick.tick().await;
    loop {
        tick.tick().await;
        if !show || ids.is_empty() {
            continue;
        }
        show_line(
            &Progress::of(engine.store(), &ids).line(started.elapsed()),
            tty,
        );
    }
}

/// One progress line: rewritten in place on a terminal.
fn show_line(line: &str, tty: bool) {
    if tty {
        eprint!("\r{line}   ");
    } else {
        eprintln!("{line}");
    }
}

/// When a case's new certificate was verified in place (or deployed, when nothing verifies).
fn verified_at(case: &Case) -> Option<DateTime<Utc>> {
    [Step::Verify, Step::Deploy].iter().find_map(|step| {
        case.journal
            .iter()
            .rev()
            .find(|r| r.step == *step && r.outcome == StepOutcome::Ok)
            .and_then(|r| r.finished_at)
    })
}

fn summarise(
    store: &dyn Store,
    names: &[String],
    plans: &[Plan],
    applied: &crate::govern::Applied,
    elapsed: Duration,
) -> Result<(Vec<Outcome>, Summary), CliError> {
    let mut outcomes = Vec::new();
    let cases = store.list_cases()?;
    let opened: Vec<u64> = applied
        .run
        .iter()
        .chain(&applied.waiting)
        .copied()
        .collect();
    for name in names {
        let priority = store
            .get_cert(name)?
            .map_or("normal", |c| c.entry.priority.as_str())
            .to_string();
        let plan = plans.iter().find(|p| &p.cert == name);
        let case = cases
            .iter()
            .find(|c| &c.cert == name && opened.contains(&c.id));
        let mut o = Outcome {
            cert: name.clone(),
            priority,
            status: "escalated".into(),
            case: case.map(|c| c.id),
            issuer: case.and_then(|c| c.issuer.clone()),
            deadline: case
                .and_then(|c| c.deadline)
                .or_else(|| plan.and_then(|p| p.decision.deadline)),
            verified_at: None,
            seconds: None,
            within_deadline: None,
            detail: None,
        };
        match case {
            Some(c) => match c.state {
                CaseState::Done => {
                    o.status = "replaced".into();
                    o.verified_at = verified_at(c);
                    let end = o.verified_at.unwrap_or(c.updated_at);
                    o.seconds = Some((end - c.created_at).num_milliseconds() as f64 / 1000.0);
                    o.within_deadline = Some(o.deadline.is_none_or(|d| end <= d));
                }
                CaseState::Failed => {
                    o.status = "failed".into();
                    o.detail = c.error.clone();
                }
                CaseState::AwaitingApproval => {
                    o.status = "waiting".into();
                    o.detail = c.approval.as_ref().map(|a| a.why.clone());
                }
                _ => {
                    o.status = "failed".into();
                    o.detail = Some(format!("case {} is {}", c.id, c.state));
                }
            },
            None if applied.busy.contains(name) => {
                o.status = "busy".into();
                o.detail = Some(
                    "another case is open for it; it is decided again once that one ends".into(),
                );
            }
            None => {
                o.detail = plan.map(|p| {
                    p.blocked
                        .clone()
                        .unwrap_or_else(|| format!("{}: {}", p.decision.action, p.decision.why))
                });
            }
        }
        outcomes.push(o);
    }
    let mut s = Summary {
        affected: names.len(),
        elapsed_seconds: elapsed.as_secs_f64(),
        ..Summary::default()
    };
    let mut times: Vec<f64> = Vec::new();
    for o in &outcomes {
        match o.status.as_str() {
            "replaced" => {
                s.replaced += 1;
                if o.within_deadline == Some(false) {
                    s.late += 1;
                } else {
                    s.within_deadline += 1;
                }
                times.extend(o.seconds);
            }
            "failed" => s.failed += 1,
            "waiting" => s.waiting += 1,
            "busy" => s.busy += 1,
            _ => s.escalated += 1,
        }
    }
    times.sort_by(f64::total_cmp);
    let pick = |q: f64| {
        (!times.is_empty()).then(|| {
            let i = ((times.len() as f64 * q).ceil() as usize).clamp(1, times.len()) - 1;
            times[i]
        })
    };
    s.p50_seconds = pick(0.50);
    s.p99_seconds = pick(0.99);
    Ok((outcomes, s))
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

fn dry_run(cfg: &crate::config::Config, d: &Distrust, json: bool) -> Result<ExitCode, CliError> {
    // On an in-memory copy: registering inventory changes here must not touch the database.
    let copy = crate::store::MemoryStore::new();
    if cfg.db_path().exists() {
        let store = open_store(cfg)?;
        crate::store::copy_for_planning(&store, &copy)?;
    }
    crate::registry::sync(&copy, cfg, Utc::now())?;
    let listed = affected_listing(&copy, d)?;
    print_dry_run(d, &listed, json)
}

/// What a distrust would affect: for each certificate, its priority, the issuer it would be
/// reissued through (none without a `fallback_issuer` or `issuer`) and why it matches.
pub(crate) fn affected_listing(
    store: &dyn Store,
    d: &Distrust,
) -> Result<Vec<serde_json::Value>, CliError> {
    let findings = distrust::affected(store, std::slice::from_ref(d))?;
    let mut listed = Vec::new();
    for (name, _, f) in &findings {
        let entry = store.get_cert(name)?.map(|c| c.entry);
        let via = d
            .replace_with
            .clone()
            .or_else(|| entry.as_ref().and_then(|e| e.fallback_issuer.clone()));
        let priority = entry.as_ref().map_or("normal", |e| e.priority.as_str());
        listed.push(json!({
            "cert": name,
            "priority": priority,
            "issuer": via,
            "message": f.message,
        }));
    }
    Ok(listed)
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

fn list(cfg: &crate::config::Config, json: bool) -> Result<ExitCode, CliError> {
    let all = if cfg.db_path().exists() {
        distrust::all(&cfg.distrust, &open_store(cfg)?)?
    } else {
        cfg.distrust.clone()
    };
    print_list(&all, json)
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
