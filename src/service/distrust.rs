//! Distrusting a CA: record it, raise a signal for every certificate it signed, open the
//! replacements in deadline and priority order, and report how they went.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Ctx, Op, Role, Service, ServiceError};
use crate::audit::{self, AuditEntry};
use crate::govern::{POLICY_ACTOR, Plan};
use crate::records::case::{Case, CaseState, Step, StepOutcome};
use crate::signals::ca::distrust::{self, Distrust};
use crate::signals::scan::{ScanReport, store_findings};
use crate::store::Store;

/// Exit status of `distrust` when some certificates wait for approval or were escalated.
pub const NOT_ALL_REPLACED: u8 = 3;

/// What became of one affected certificate.
#[derive(Debug, Serialize, Deserialize)]
pub struct Outcome {
    pub cert: String,
    pub priority: String,
    /// `replaced`, `failed`, `waiting`, `escalated`, `busy`.
    pub status: String,
    pub case: Option<u64>,
    pub issuer: Option<String>,
    pub deadline: Option<DateTime<Utc>>,
    /// When the new certificate was verified in place.
    pub verified_at: Option<DateTime<Utc>>,
    /// Seconds from the case's opening to the verified deployment.
    pub seconds: Option<f64>,
    pub within_deadline: Option<bool>,
    pub detail: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Summary {
    pub affected: usize,
    pub replaced: usize,
    pub within_deadline: usize,
    pub late: usize,
    pub failed: usize,
    pub waiting: usize,
    pub escalated: usize,
    pub busy: usize,
    pub elapsed_seconds: f64,
    pub p50_seconds: Option<f64>,
    pub p99_seconds: Option<f64>,
}

/// A distrust that has been acted on: what it affects, the policy's plans and the cases
/// opened. The daemon keeps these to report on them (`GET /v1/distrust/{run}`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Begun {
    /// The distrust.
    pub distrust: Distrust,
    /// The affected certificates.
    pub names: Vec<String>,
    /// The policy's plans for them, in the order the cases were opened.
    pub plans: Vec<Plan>,
    /// What was opened.
    pub applied: crate::govern::Applied,
}

/// Records the distrust (audited as `who`), raises a signal for every affected certificate,
/// and opens the cases the policy decides on, earliest deadline and most critical first.
/// The cases to run are `applied.run`, in that order.
pub fn begin(gov: &crate::govern::Governor, d: Distrust, who: &str) -> Result<Begun, ServiceError> {
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
        gov.plan_retrying_failed(&names)?
    };
    order(store, &mut plans)?;
    let applied = gov.apply(&plans, "distrust", POLICY_ACTOR, false)?;
    Ok(Begun {
        distrust: d,
        names,
        plans,
        applied,
    })
}

/// How far the replacements are.
#[derive(Debug, Default, Clone, Copy, Serialize, Deserialize)]
pub struct Progress {
    /// Cases to run.
    pub total: usize,
    /// Done.
    pub done: usize,
    /// Failed.
    pub failed: usize,
    /// Not finished yet.
    pub running: usize,
}

impl Progress {
    pub fn of(store: &dyn Store, ids: &[u64]) -> Self {
        let mut p = Self {
            total: ids.len(),
            ..Self::default()
        };
        for id in ids {
            match store.get_case(*id).ok().flatten().map(|c| c.state) {
                // Replaced: what remains is about the old certificate's revocation.
                Some(CaseState::Done | CaseState::Unconfirmed | CaseState::RevocationNeeded) => {
                    p.done += 1;
                }
                Some(CaseState::Failed) => p.failed += 1,
                _ => p.running += 1,
            }
        }
        p
    }

    pub fn line(&self, elapsed: Duration) -> String {
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
pub struct Report {
    pub distrust: Distrust,
    pub affected: usize,
    pub finished: bool,
    pub progress: Progress,
    pub summary: Summary,
    pub outcomes: Vec<Outcome>,
    /// The cases opened, without private keys.
    pub cases: Vec<serde_json::Value>,
    pub errors: Vec<String>,
}

impl Report {
    /// 0 when everything was replaced, 1 when something failed, 3 otherwise.
    pub fn exit_status(&self) -> u8 {
        if self.summary.failed > 0 || !self.errors.is_empty() {
            1
        } else if self.summary.replaced < self.summary.affected {
            NOT_ALL_REPLACED
        } else {
            0
        }
    }
}

/// The report on `run` as the store has it now, `elapsed` after it began; `errors` are the
/// cases that could not run (still `running` in the store), which count as failed.
pub fn report(
    store: &dyn Store,
    run: &Begun,
    elapsed: Duration,
    errors: &[(u64, String)],
) -> Result<Report, ServiceError> {
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
fn order(store: &dyn Store, plans: &mut [Plan]) -> Result<(), ServiceError> {
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
) -> Result<(Vec<Outcome>, Summary), ServiceError> {
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
                CaseState::Done | CaseState::Unconfirmed | CaseState::RevocationNeeded => {
                    if c.state != CaseState::Done {
                        o.detail = Some(format!(
                            "replaced; the old certificate's revocation is {}: `certresponder cases show {}`",
                            if c.state == CaseState::Unconfirmed {
                                "not confirmed yet"
                            } else {
                                "still needed"
                            },
                            c.id
                        ));
                    }
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

/// What a distrust would affect: for each certificate, its priority, the issuer it would be
/// reissued through (none without a `fallback_issuer` or `issuer`) and why it matches.
pub fn affected_listing(
    store: &dyn Store,
    d: &Distrust,
) -> Result<Vec<serde_json::Value>, ServiceError> {
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

/// `distrust CA [--issued-after DATE] [--deadline 24h] [--issuer ID] [--reason R] [--dry-run]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BeginArgs {
    /// The CA: its name, `spki:HEX` or `sha256:HEX` (a CA certificate file is read by the
    /// command and sent as `spki:`).
    pub ca: String,
    /// Only certificates issued on or after this date.
    pub issued_after: Option<String>,
    /// How long the replacements may take (`24h`, `5d`).
    pub deadline: String,
    /// The issuer to replace through instead of each entry's `fallback_issuer`.
    pub issuer: Option<String>,
    /// Why.
    pub reason: Option<String>,
    /// List what it would affect; change nothing.
    pub dry_run: bool,
}

/// What beginning a distrust did.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Begin {
    /// The dry run: what it would affect.
    DryRun {
        /// The distrust.
        distrust: Distrust,
        /// Each affected certificate: `cert`, `priority`, `issuer`, `message`.
        affected: Vec<serde_json::Value>,
    },
    /// Recorded, and the replacements started.
    Begun {
        /// What was begun; [`ReportOn`] reports on it.
        begun: Begun,
    },
}

/// Records a distrust (as the caller), raises a signal for every certificate it affects,
/// opens the replacements in deadline and priority order and starts them; or, with
/// `dry_run`, says what it would affect.
pub struct BeginDistrust;

impl Op for BeginDistrust {
    const NAME: &'static str = "distrust_begin";
    const CHANGES: bool = true;
    const ROLE: Role = Role::Admin;
    type Args = BeginArgs;
    type Output = Begin;

    fn role(args: &BeginArgs) -> Role {
        // A dry run changes nothing.
        if args.dry_run {
            Role::Operate
        } else {
            Role::Admin
        }
    }

    fn run(svc: &Service, ctx: &Ctx<'_>, args: BeginArgs) -> Result<Begin, ServiceError> {
        let cfg = svc.config();
        let ca = distrust::CaRef::parse(&args.ca).map_err(ServiceError::Input)?;
        let issued_after = args
            .issued_after
            .as_deref()
            .map(distrust::parse_date)
            .transpose()
            .map_err(|e| ServiceError::field("--issued-after", e))?;
        let deadline_hours = distrust::parse_deadline(&args.deadline)
            .map_err(|e| ServiceError::field("--deadline", e))?;
        if let Some(id) = &args.issuer
            && !cfg.issuers.iter().any(|i| &i.id == id)
        {
            return Err(ServiceError::Input(format!(
                "--issuer `{id}` is not a configured issuer (known: {})",
                cfg.issuer_ids().join(", ")
            )));
        }
        let who = ctx.who.to_string();
        let d = Distrust {
            ca,
            issued_after,
            deadline_hours,
            replace_with: args.issuer,
            reason: args.reason,
            origin: "command".into(),
            added_by: Some(who.clone()),
            added_at: Some(Utc::now()),
        };
        if args.dry_run {
            // On an in-memory copy: registering inventory changes must not touch the store.
            let copy = crate::store::MemoryStore::new();
            crate::store::copy_for_planning(svc.store(), &copy)?;
            cfg.sync_inventory(&copy, Utc::now())?;
            refuse_ambiguous(&copy, &d.ca)?;
            let affected = affected_listing(&copy, &d)?;
            return Ok(Begin::DryRun {
                distrust: d,
                affected,
            });
        }
        svc.sync_inventory(ctx)?;
        refuse_ambiguous(svc.store(), &d.ca)?;
        let begun = begin(svc.governor()?, d, &who)?;
        ctx.host.start_cases(svc, &begun.applied.run).map_err(|e| {
            ServiceError::Unavailable(format!(
                "the distrust is recorded and its cases are open, but they were not started: {e}"
            ))
        })?;
        Ok(Begin::Begun { begun })
    }
}

/// A begun distrust to report on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReportArgs {
    /// What [`BeginDistrust`] answered.
    pub begun: Begun,
    /// Milliseconds since it began.
    pub elapsed_ms: u64,
}

/// How a begun distrust stands: progress, whether it is finished, its outcomes.
pub struct ReportOn;

impl Op for ReportOn {
    const NAME: &'static str = "distrust_report";
    const CHANGES: bool = false;
    const ROLE: Role = Role::Operate;
    type Args = ReportArgs;
    type Output = Report;

    fn run(svc: &Service, ctx: &Ctx<'_>, args: ReportArgs) -> Result<Report, ServiceError> {
        let errors: Vec<(u64, String)> = args
            .begun
            .applied
            .run
            .iter()
            .filter_map(|id| ctx.host.case_error(*id).map(|e| (*id, e)))
            .collect();
        report(
            svc.store(),
            &args.begun,
            Duration::from_millis(args.elapsed_ms),
            &errors,
        )
    }
}

/// No arguments.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NoArgs {}

/// Every distrusted CA: the configuration's and those the command recorded.
pub struct ListDistrusts;

impl Op for ListDistrusts {
    const NAME: &'static str = "distrust_list";
    const CHANGES: bool = false;
    const ROLE: Role = Role::Read;
    type Args = NoArgs;
    type Output = Vec<Distrust>;

    fn run(svc: &Service, _ctx: &Ctx<'_>, _: NoArgs) -> Result<Vec<Distrust>, ServiceError> {
        Ok(distrust::all(&svc.config().distrust, svc.store())?)
    }
}

/// A CA to forget.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RemoveArgs {
    /// The CA, as [`BeginArgs::ca`].
    pub ca: String,
}

/// Forgets a distrust the command recorded (audited as the caller); answers the CA's name.
pub struct RemoveDistrust;

impl Op for RemoveDistrust {
    const NAME: &'static str = "distrust_remove";
    const CHANGES: bool = true;
    const ROLE: Role = Role::Admin;
    type Args = RemoveArgs;
    type Output = String;

    fn run(svc: &Service, ctx: &Ctx<'_>, args: RemoveArgs) -> Result<String, ServiceError> {
        let ca = distrust::CaRef::parse(&args.ca).map_err(ServiceError::Input)?;
        let store = svc.store();
        if distrust::remove(store, &ca)? == 0 {
            return Err(ServiceError::Input(format!(
                "`{}` is not recorded as distrusted{}",
                ca.written(),
                if svc.config().distrust.iter().any(|d| d.ca == ca) {
                    " by this command; it is in the configuration's [[distrust]]"
                } else {
                    ""
                }
            )));
        }
        audit::append(
            store,
            AuditEntry {
                kind: "distrust_removed",
                actor: &ctx.who.to_string(),
                cert: None,
                case: None,
                data: json!({"ca": ca}),
            },
        )?;
        Ok(ca.written())
    }
}

/// Refuses a CA named by a common name more than one CA of the inventory has.
fn refuse_ambiguous(store: &dyn Store, ca: &distrust::CaRef) -> Result<(), ServiceError> {
    match distrust::ambiguous(store, ca)? {
        None => Ok(()),
        Some(cas) => Err(ServiceError::Input(format!(
            "`{}` is the common name of {} CAs in the inventory: {}; name the one meant by its distinguished name or `spki:HEX`",
            ca.written(),
            cas.len(),
            cas.join("; ")
        ))),
    }
}
