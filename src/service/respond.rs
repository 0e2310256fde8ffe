//! Starting and resuming sequences: report a compromise, reissue, respond (and its dry
//! run).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use certresponder_issuers::RevocationReason;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Ctx, Op, Role, Service, ServiceError};
use crate::govern::{Applied, Governor, POLICY_ACTOR, Plan, Unmatched};
use crate::records::case::{Case, CaseState, SequenceKind, Trigger};
use crate::respond::{Engine, RespondError};
use crate::signals::{Finding, Signal};
use crate::store::Store;

/// Cases as they cross the socket: without the new private key a running case holds.
pub mod public_cases {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::records::case::Case;

    /// Writes each case without its key.
    pub fn serialize<S: Serializer>(cases: &[Case], s: S) -> Result<S::Ok, S::Error> {
        let shown: Vec<serde_json::Value> = cases.iter().map(Case::public_json).collect();
        shown.serialize(s)
    }

    /// Reads cases written so.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Case>, D::Error> {
        Vec::<Case>::deserialize(d)
    }
}

/// A case that was waiting for approval and took a report in.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Folded {
    /// The certificate.
    pub cert: String,
    /// The case.
    pub case: u64,
    /// What it now does.
    pub kind: SequenceKind,
    /// Its revocation reason, if it revokes.
    pub reason: Option<RevocationReason>,
}

/// What a pass that decides and runs cases did.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Outcome {
    /// Waiting cases that took a report in (`report-compromise`).
    pub folded: Vec<Folded>,
    /// Unfinished cases resumed.
    pub resumed: Vec<u64>,
    /// The policy's decisions.
    pub decisions: Vec<Plan>,
    /// Open signals about subjects that are not registered certificates.
    pub unmatched: Vec<Unmatched>,
    /// Cases escalated again close to their deadline.
    pub reescalated: Vec<u64>,
    /// What applying the decisions did.
    pub applied: Applied,
    /// The cases that ran, as they ended.
    #[serde(with = "public_cases")]
    pub cases: Vec<Case>,
    /// Cases that could not run, and why.
    pub errors: Vec<String>,
    /// The cases that wait for approval.
    #[serde(with = "public_cases")]
    pub waiting: Vec<Case>,
    /// Notifications that could not be delivered yet and stay queued.
    pub notifications_pending: usize,
}

impl Outcome {
    /// Whether every case that ran is done and none failed to run.
    pub fn all_done(&self) -> bool {
        self.errors.is_empty() && self.cases.iter().all(|c| c.state == CaseState::Done)
    }
}

/// `report-compromise`: names, evidence, contain-first.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReportArgs {
    /// The certificates whose key is compromised.
    pub names: Vec<String>,
    /// What was seen, where and when.
    pub evidence: String,
    /// Revoke before deploying the new bundle.
    pub contain_first: bool,
    /// The key deployed now is compromised, even though an earlier case still waits for
    /// the certificate it replaced to be revoked.
    #[serde(default)]
    pub current: bool,
}

/// Reports a private key as compromised: a confirmed `key_exposed` signal for each
/// certificate, decided by the policy (a waiting case takes the report in), and the cases
/// run.
pub struct ReportCompromise;

impl Op for ReportCompromise {
    const NAME: &'static str = "report_compromise";
    const CHANGES: bool = true;
    const ROLE: Role = Role::Report;
    type Args = ReportArgs;
    type Output = Outcome;

    fn run(svc: &Service, ctx: &Ctx<'_>, args: ReportArgs) -> Result<Outcome, ServiceError> {
        if args.evidence.trim().is_empty() {
            return Err(ServiceError::field("--evidence", "must say what was seen"));
        }
        if args.names.is_empty() {
            return Err(ServiceError::Input(
                "name at least one certificate whose key is compromised".into(),
            ));
        }
        // A caller who may not act on certificates reports like a detector: no
        // contain-first, at most `high` confidence, and counted by the breaker.
        let operator = ctx.roles.has(Role::Operate);
        if args.contain_first && !operator {
            return Err(ServiceError::Refused(
                "--contain-first needs the `operate` role: without it a report is decided by the policy".into(),
            ));
        }
        svc.sync_inventory(ctx)?;
        let gov = svc.governor()?;
        let engine = gov.engine();
        // Check every name before acting on any. A certificate whose case waits for approval
        // takes the report into that case; one whose case is running cannot take it now.
        let mut seen = HashSet::new();
        let mut waiting = HashMap::new();
        let cases = engine.store().list_cases()?;
        for name in &args.names {
            if !seen.insert(name) {
                return Err(ServiceError::Input(format!("`{name}` is named twice")));
            }
            let entry = engine.entry(name)?;
            engine.check_actionable(&entry, SequenceKind::RevokeReissue)?;
            for c in cases.iter().filter(|c| &c.cert == name) {
                match c.state {
                    CaseState::Running => {
                        return Err(RespondError::Busy {
                            cert: name.clone(),
                            case: c.id,
                        }
                        .into());
                    }
                    CaseState::AwaitingApproval => {
                        waiting.insert(name.clone(), c.id);
                    }
                    // The report would be about the replacement, which is not what a second
                    // report of the same compromise means.
                    CaseState::RevocationNeeded if !args.current => {
                        return Err(ServiceError::Refused(format!(
                            "`{name}` was replaced by case {id}, whose old certificate is not revoked yet (see `certresponder cases show {id}`): revoke it with `certresponder cases revoke-old {id} --issuer ID`; a new report would be about the certificate deployed now, so say `--current` if its key is compromised too",
                            id = c.id
                        )));
                    }
                    _ => {}
                }
            }
        }
        let reporter = ctx.who.to_string();
        for name in &args.names {
            record_report(engine.store(), name, &reporter, &args.evidence, !operator)?;
        }
        let fresh: Vec<String> = args
            .names
            .iter()
            .filter(|n| !waiting.contains_key(*n))
            .cloned()
            .collect();
        let (plans, _) = if fresh.is_empty() {
            (Vec::new(), Vec::new())
        } else {
            gov.plan(Some(&fresh))?
        };
        // `report` is a person's report, which the breaker does not count; `reported` one by
        // a caller without `operate`, which it counts.
        let source = if operator { "report" } else { "reported" };
        let mut applied = gov.apply(&plans, source, &reporter, args.contain_first)?;
        let mut folded = Vec::new();
        for name in &args.names {
            let Some(id) = waiting.get(name) else {
                continue;
            };
            let case = gov.fold_into_waiting(*id, &reporter, args.contain_first)?;
            folded.push(Folded {
                cert: name.clone(),
                case: *id,
                kind: case.kind,
                reason: case.reason,
            });
            match case.state {
                CaseState::Running => applied.run.push(case.id),
                _ => applied.waiting.push(case.id),
            }
        }
        let mut out = finish(svc, ctx, gov, applied, plans, Vec::new());
        out.folded = folded;
        Ok(out)
    }
}

/// Records a reported key compromise as a confirmed `key_exposed` signal about the current
/// bundle (`high` when `capped`: the reporter may not act on certificates), with the
/// reporter's identity; returns its dedup key.
pub fn record_report(
    store: &dyn Store,
    name: &str,
    reporter: &str,
    evidence: &str,
    capped: bool,
) -> Result<String, ServiceError> {
    let bundles = store.bundles(name)?;
    let current = certresponder_inventory::Bundle::current_of(&bundles);
    let mut finding = Finding::compromised(
        "key_exposed",
        format!("key reported compromised by {reporter}: {evidence}"),
        json!({
            "reporter": reporter,
            "evidence": evidence,
            "bundle": current.as_ref().map(|b| b.id.clone()),
        }),
    );
    if capped {
        finding.confidence = crate::signals::Confidence::High;
    }
    let fp = current.as_ref().map(|b| b.fingerprints.cert_sha256.clone());
    let now = Utc::now();
    let signal = Signal::from_finding(name, "exposure", &finding, fp.as_deref(), "report", now);
    // An earlier report about this bundle that was answered (the case failed or was denied)
    // makes this one new evidence, with a signal of its own.
    let signal = crate::signals::state::report(store, signal, fp.as_deref(), now, false, reporter)?;
    Ok(signal.dedup_key)
}

/// `reissue`: a new key and certificate for one entry, optionally revoking the old one.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReissueArgs {
    /// The certificate.
    pub name: String,
    /// Revoke the old certificate with this RFC 5280 reason (a name, as the CLI takes it).
    pub revoke: Option<String>,
    /// With `revoke`: revoke before deploying.
    pub contain_first: bool,
    /// Why (kept with the case).
    pub why: String,
}

/// Opens a reissue (or revoke-and-reissue) case by hand and runs it.
pub struct Reissue;

/// Reads an RFC 5280 reason name.
pub fn parse_reason(s: &str) -> Result<RevocationReason, ServiceError> {
    RevocationReason::parse(s).ok_or_else(|| {
        ServiceError::Input(format!(
            "--revoke `{s}`: not an RFC 5280 reason; use keyCompromise, superseded, affiliationChanged, cessationOfOperation, privilegeWithdrawn or unspecified"
        ))
    })
}

impl Op for Reissue {
    const NAME: &'static str = "reissue";
    const CHANGES: bool = true;
    const ROLE: Role = Role::Operate;
    type Args = ReissueArgs;
    type Output = Outcome;

    fn run(svc: &Service, ctx: &Ctx<'_>, args: ReissueArgs) -> Result<Outcome, ServiceError> {
        let reason = args.revoke.as_deref().map(parse_reason).transpose()?;
        if args.contain_first && reason.is_none() {
            return Err(ServiceError::Input(
                "--contain-first goes with --revoke".into(),
            ));
        }
        svc.sync_inventory(ctx)?;
        let engine = svc.governor()?.engine();
        let kind = if reason.is_some() {
            SequenceKind::RevokeReissue
        } else {
            SequenceKind::Reissue
        };
        let case = engine.open_case(
            &args.name,
            kind,
            args.contain_first,
            reason,
            Trigger {
                source: "manual".into(),
                by: ctx.who.to_string(),
                why: args.why.clone(),
                signals: Vec::new(),
            },
        )?;
        Ok(run_only(svc, ctx, &[case.id]))
    }
}

/// Runs cases and says how they ended, with nothing decided.
pub fn run_only(svc: &Service, ctx: &Ctx<'_>, ids: &[u64]) -> Outcome {
    let (cases, errors) = split(ctx.host.run_cases(svc, ids));
    Outcome {
        cases,
        errors,
        notifications_pending: ctx.host.deliver_notifications(svc),
        ..Outcome::default()
    }
}

/// `respond`: resume unfinished cases, decide every open signal and run what the policy
/// says.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RespondArgs {}

/// Resumes, decides and runs.
pub struct Respond;

impl Op for Respond {
    const NAME: &'static str = "respond";
    const CHANGES: bool = true;
    const ROLE: Role = Role::Operate;
    type Args = RespondArgs;
    type Output = Outcome;

    fn run(svc: &Service, ctx: &Ctx<'_>, _: RespondArgs) -> Result<Outcome, ServiceError> {
        svc.sync_inventory(ctx)?;
        let gov = svc.governor()?;
        let unfinished = gov.engine().unfinished()?;
        let (plans, unmatched) = gov.plan(None)?;
        let reescalated = gov.check_deadlines(Utc::now())?;
        let applied = gov.apply(&plans, "policy", POLICY_ACTOR, false)?;
        let mut out = finish(svc, ctx, gov, applied, plans, unfinished);
        out.unmatched = unmatched;
        out.reescalated = reescalated;
        Ok(out)
    }
}

/// Runs what a pass opened (and `resume`), and gathers what waits.
fn finish(
    svc: &Service,
    ctx: &Ctx<'_>,
    gov: &Governor,
    applied: Applied,
    decisions: Vec<Plan>,
    resume: Vec<u64>,
) -> Outcome {
    let mut ids = resume.clone();
    ids.extend(&applied.run);
    let store = gov.engine().store();
    let waiting: Vec<Case> = applied
        .waiting
        .iter()
        .filter_map(|id| store.get_case(*id).ok().flatten())
        .collect();
    let (cases, errors) = split(ctx.host.run_cases(svc, &ids));
    Outcome {
        folded: Vec::new(),
        resumed: resume,
        decisions,
        unmatched: Vec::new(),
        reescalated: Vec::new(),
        applied,
        cases,
        errors,
        waiting,
        notifications_pending: ctx.host.deliver_notifications(svc),
    }
}

fn split(results: Vec<Result<Case, String>>) -> (Vec<Case>, Vec<String>) {
    let mut cases = Vec::new();
    let mut errors = Vec::new();
    for r in results {
        match r {
            Ok(c) => cases.push(c),
            Err(e) => errors.push(e),
        }
    }
    (cases, errors)
}

/// What `respond --dry-run` would do.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DryRun {
    /// Unfinished cases it would resume.
    pub resume: Vec<u64>,
    /// The decisions.
    pub decisions: Vec<Plan>,
    /// Open signals about subjects that are not registered certificates.
    pub unmatched: Vec<Unmatched>,
}

/// Decides every open signal on a copy of the store and says what would happen; changes
/// nothing.
pub struct RespondDryRun;

impl Op for RespondDryRun {
    const NAME: &'static str = "respond_dry_run";
    const CHANGES: bool = false;
    const ROLE: Role = Role::Read;
    type Args = RespondArgs;
    type Output = DryRun;

    fn run(svc: &Service, _ctx: &Ctx<'_>, _: RespondArgs) -> Result<DryRun, ServiceError> {
        let gov = planner(svc)?;
        let resume = gov.engine().unfinished()?;
        let (decisions, unmatched) = gov.plan(None)?;
        Ok(DryRun {
            resume,
            decisions,
            unmatched,
        })
    }
}

/// A governor that only plans: it builds no issuer adapter (so it creates no internal CA
/// on first use) and works on an in-memory copy of the store, so that registering
/// inventory changes, resolving stale signals and predicting the breaker change nothing.
fn planner(svc: &Service) -> Result<Governor, ServiceError> {
    let cfg = svc.config();
    let policy = cfg
        .load_policy()
        .map_err(|e| ServiceError::Input(e.to_string()))?;
    let copy = crate::store::MemoryStore::new();
    crate::store::copy_for_planning(svc.store(), &copy)?;
    cfg.sync_inventory(&copy, Utc::now())?;
    let store: Arc<dyn Store + Send + Sync> = Arc::new(copy);
    let engine = Engine::with_issuers(store, cfg.clone(), BTreeMap::new());
    Ok(Governor::new(Arc::new(engine), policy))
}
