//! Cases: list them, show one with its evidence, approve, deny, roll back by hand.

use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::respond::{Outcome, public_cases, run_only};
use super::{Ctx, Op, Role, Service, ServiceError};
use crate::audit::{self, AuditRecord};
use crate::records::case::{Case, CaseState};
use crate::respond::rollback::{self, RollbackError, RolledBack};
use crate::signals::Signal;
use crate::store::Store;

impl From<RollbackError> for ServiceError {
    fn from(e: RollbackError) -> Self {
        match e {
            RollbackError::Respond(e) => e.into(),
            RollbackError::Store(e) => e.into(),
            RollbackError::Input(m) => Self::Input(m),
            RollbackError::Refused(m) => Self::Refused(m),
        }
    }
}

/// The refusal for a case number that does not exist.
pub fn no_case(id: u64) -> ServiceError {
    ServiceError::NotFound(format!(
        "there is no case {id} (see `certresponder cases list`)"
    ))
}

/// Every case, running and failed first, then newest first.
pub fn sorted_cases(store: &dyn Store) -> Result<Vec<Case>, ServiceError> {
    let mut cases = store.list_cases()?;
    cases.sort_by_key(|c| {
        (
            matches!(c.state, CaseState::Done | CaseState::Denied),
            std::cmp::Reverse(c.id),
        )
    });
    Ok(cases)
}

/// No arguments.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NoArgs {}

/// The cases, without their keys.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaseList {
    /// Running and failed first, then newest first.
    #[serde(with = "public_cases")]
    pub cases: Vec<Case>,
}

/// `cases list`.
pub struct List;

impl Op for List {
    const NAME: &'static str = "cases_list";
    const CHANGES: bool = false;
    const ROLE: Role = Role::Read;
    type Args = NoArgs;
    type Output = CaseList;

    fn run(svc: &Service, _ctx: &Ctx<'_>, _: NoArgs) -> Result<CaseList, ServiceError> {
        Ok(CaseList {
            cases: sorted_cases(svc.store())?,
        })
    }
}

/// A case with its evidence: the signals it answers and the audit records about it and
/// them (`cases show`). On the wire it is [`CaseDetail::json`] with the count of
/// unreadable audit records beside it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(into = "serde_json::Value", try_from = "serde_json::Value")]
pub struct CaseDetail {
    /// The case.
    pub case: Case,
    /// The signals it answers.
    pub signals: Vec<Signal>,
    /// The audit records about the case and its signals.
    pub records: Vec<AuditRecord>,
    /// Audit records that cannot be read.
    pub unreadable: usize,
}

/// The field of the wire form that carries the count of unreadable audit records.
const UNREADABLE_FIELD: &str = "audit_unreadable";

impl CaseDetail {
    /// Case `id` with its evidence; `None` when there is no such case.
    pub fn load(store: &dyn Store, id: u64) -> Result<Option<Self>, ServiceError> {
        let Some(c) = store.get_case(id)? else {
            return Ok(None);
        };
        let signals: Vec<Signal> = c
            .trigger
            .signals
            .iter()
            .filter_map(|k| store.get_signal(k).ok().flatten())
            .collect();
        // The case's own records and those of the signals it answers.
        let (records, unreadable) = audit::readable_records(store)?;
        let records: Vec<AuditRecord> = records
            .into_iter()
            .filter(|r| {
                r.case == Some(c.id)
                    || r.kind == "signal"
                        && r.data["dedup_key"]
                            .as_str()
                            .is_some_and(|k| c.trigger.signals.iter().any(|s| s == k))
            })
            .collect();
        Ok(Some(Self {
            case: c,
            signals,
            records,
            unreadable,
        }))
    }

    /// `cases show --json`: the case without its key, with its evidence.
    pub fn json(&self) -> serde_json::Value {
        let mut v = self.case.public_json();
        if let Some(obj) = v.as_object_mut() {
            obj.insert(
                "evidence".into(),
                json!({
                    "signals": self.signals,
                    "audit": self.records,
                    "within_deadline": within_deadline(&self.case),
                }),
            );
        }
        v
    }
}

impl From<CaseDetail> for serde_json::Value {
    fn from(d: CaseDetail) -> Self {
        let mut v = d.json();
        if let Some(obj) = v.as_object_mut() {
            obj.insert(UNREADABLE_FIELD.into(), json!(d.unreadable));
        }
        v
    }
}

impl TryFrom<serde_json::Value> for CaseDetail {
    type Error = String;

    fn try_from(mut v: serde_json::Value) -> Result<Self, String> {
        let bad = |e: serde_json::Error| format!("the case cannot be read: {e}");
        let unreadable = v
            .as_object_mut()
            .and_then(|o| o.remove(UNREADABLE_FIELD))
            .and_then(|n| n.as_u64())
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(0);
        let evidence = v
            .as_object_mut()
            .and_then(|o| o.remove("evidence"))
            .unwrap_or_default();
        Ok(Self {
            case: serde_json::from_value(v).map_err(bad)?,
            signals: serde_json::from_value(evidence["signals"].clone()).map_err(bad)?,
            records: serde_json::from_value(evidence["audit"].clone()).map_err(bad)?,
            unreadable,
        })
    }
}

/// Whether the case finished by its deadline (`None`: no deadline, or not finished).
pub fn within_deadline(c: &Case) -> Option<bool> {
    let deadline = c.deadline?;
    matches!(c.state, CaseState::Done | CaseState::Failed).then_some(c.updated_at <= deadline)
}

/// A case number.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaseArgs {
    /// The case.
    pub case: u64,
}

/// `cases show N`.
pub struct Show;

impl Op for Show {
    const NAME: &'static str = "cases_show";
    const CHANGES: bool = false;
    const ROLE: Role = Role::Read;
    type Args = CaseArgs;
    type Output = CaseDetail;

    fn run(svc: &Service, _ctx: &Ctx<'_>, args: CaseArgs) -> Result<CaseDetail, ServiceError> {
        CaseDetail::load(svc.store(), args.case)?.ok_or_else(|| no_case(args.case))
    }
}

/// What an approval did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApproveOutcome {
    /// The case.
    pub case: u64,
    /// Whether it had every approval it needs and ran.
    pub runnable: bool,
    /// Approvals still needed.
    pub still_needed: usize,
    /// Who approved.
    pub by: String,
    /// How it ran, when it did.
    pub ran: Option<Outcome>,
    /// Notifications that could not be delivered yet (when it did not run).
    pub notifications_pending: usize,
}

/// Approves a case that waits for approval, as the caller; runs it once it has every
/// approval it needs, and says how it ended.
pub struct Approve;

impl Op for Approve {
    const NAME: &'static str = "approve";
    const CHANGES: bool = true;
    const ROLE: Role = Role::Approve;
    type Args = CaseArgs;
    type Output = ApproveOutcome;

    fn run(svc: &Service, ctx: &Ctx<'_>, args: CaseArgs) -> Result<ApproveOutcome, ServiceError> {
        if svc.store().get_case(args.case)?.is_none() {
            return Err(no_case(args.case));
        }
        let gov = svc.governor()?;
        let approved = gov.approve(args.case, &ctx.who, Utc::now())?;
        let by = ctx.who.to_string();
        if !approved.runnable {
            return Ok(ApproveOutcome {
                case: approved.case,
                runnable: false,
                still_needed: approved.still_needed,
                by,
                ran: None,
                notifications_pending: ctx.host.deliver_notifications(svc),
            });
        }
        ctx.note(format!(
            "case {}: approved by {by}; running it",
            approved.case
        ));
        Ok(ApproveOutcome {
            case: approved.case,
            runnable: true,
            still_needed: 0,
            by,
            ran: Some(run_only(svc, ctx, &[approved.case])),
            notifications_pending: 0,
        })
    }
}

/// `deny N --reason ...`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DenyArgs {
    /// The case.
    pub case: u64,
    /// Why.
    pub reason: String,
}

/// What a denial did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Denied {
    /// The denied case, without its key.
    #[serde(with = "public_case")]
    pub case: Case,
    /// Notifications that could not be delivered yet.
    pub notifications_pending: usize,
}

/// One case without its key on the wire.
pub mod public_case {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::records::case::Case;

    /// Writes the case without its key.
    pub fn serialize<S: Serializer>(case: &Case, s: S) -> Result<S::Ok, S::Error> {
        case.public_json().serialize(s)
    }

    /// Reads a case written so.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Case, D::Error> {
        Case::deserialize(d)
    }
}

/// Denies a case that waits for approval, as the caller: it never runs.
pub struct Deny;

impl Op for Deny {
    const NAME: &'static str = "deny";
    const CHANGES: bool = true;
    const ROLE: Role = Role::Approve;
    type Args = DenyArgs;
    type Output = Denied;

    fn run(svc: &Service, ctx: &Ctx<'_>, args: DenyArgs) -> Result<Denied, ServiceError> {
        let reason = args.reason.trim();
        if reason.is_empty() {
            return Err(ServiceError::field(
                "--reason",
                "must say why the case is denied",
            ));
        }
        if svc.store().get_case(args.case)?.is_none() {
            return Err(no_case(args.case));
        }
        let case = svc
            .governor()?
            .deny(args.case, &ctx.who, reason, Utc::now())?;
        Ok(Denied {
            case,
            notifications_pending: ctx.host.deliver_notifications(svc),
        })
    }
}

/// `rollback NAME [--to BUNDLE] [--force]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RollbackArgs {
    /// The certificate.
    pub cert: String,
    /// The bundle (an id or a unique prefix).
    pub to: Option<String>,
    /// Restore even a revoked bundle.
    pub force: bool,
}

/// Restores an earlier bundle to every location, reloads and verifies it, as the caller.
pub struct Rollback;

impl Op for Rollback {
    const NAME: &'static str = "rollback";
    const CHANGES: bool = true;
    const ROLE: Role = Role::Operate;
    type Args = RollbackArgs;
    type Output = RolledBack;

    fn role(args: &RollbackArgs) -> Role {
        if args.force {
            Role::Admin
        } else {
            Role::Operate
        }
    }

    fn run(svc: &Service, ctx: &Ctx<'_>, args: RollbackArgs) -> Result<RolledBack, ServiceError> {
        if args.cert.trim().is_empty() {
            return Err(ServiceError::field("cert", "names no certificate"));
        }
        // The inventory's latest entry counts.
        svc.sync_inventory(ctx)?;
        let engine = svc.governor()?.engine();
        if svc.store().get_cert(&args.cert)?.is_none() {
            return Err(ServiceError::Input(format!(
                "no certificate named `{}` is registered (see `certresponder inventory list`)",
                args.cert
            )));
        }
        let (entry, target) =
            rollback::rollback_checked(engine, &args.cert, args.to.as_deref(), args.force)?;
        let who = ctx.who.to_string();
        let done = super::block_on(rollback::rollback(engine, &entry, &target, &who))??;
        if done.ok {
            ctx.host.deliver_notifications(svc);
        }
        Ok(done)
    }
}

/// `cases revoke-old N [--issuer ID]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RevokeOldArgs {
    /// The case.
    pub case: u64,
    /// The issuer to revoke through (default: the certificate's entry's).
    pub issuer: Option<String>,
}

/// Makes case `case` runnable again as the engine's `prepare_retry` says, runs it, and says
/// how it ended.
fn rerun(
    svc: &Service,
    ctx: &Ctx<'_>,
    case: u64,
    via: Option<Option<String>>,
) -> Result<Outcome, ServiceError> {
    if svc.store().get_case(case)?.is_none() {
        return Err(no_case(case));
    }
    svc.sync_inventory(ctx)?;
    let gov = svc.governor()?;
    let prepared = gov
        .engine()
        .prepare_retry(case, via, &ctx.who.to_string())?;
    ctx.note(format!(
        "case {case}: running again from {}",
        prepared.next.map_or("?", |s| s.as_str())
    ));
    Ok(run_only(svc, ctx, &[case]))
}

/// `cases retry N`: resumes a failed case at the step that failed (from its start when the
/// failure lost what later steps need), tries a failing revocation again now, or revokes
/// the old certificate of a `revocation_needed` case again through its entry's issuer.
pub struct Retry;

impl Op for Retry {
    const NAME: &'static str = "cases_retry";
    const CHANGES: bool = true;
    const ROLE: Role = Role::Operate;
    type Args = CaseArgs;
    type Output = Outcome;

    fn run(svc: &Service, ctx: &Ctx<'_>, args: CaseArgs) -> Result<Outcome, ServiceError> {
        rerun(svc, ctx, args.case, None)
    }
}

/// `cases revoke-old N [--issuer ID]`: revokes the old certificate of a case that could
/// not (a `revocation_needed` case, a failed revocation), through the named issuer (the CA
/// that issued it, after a migration) or the entry's own; the case confirms and closes.
pub struct RevokeOld;

impl Op for RevokeOld {
    const NAME: &'static str = "cases_revoke_old";
    const CHANGES: bool = true;
    const ROLE: Role = Role::Operate;
    type Args = RevokeOldArgs;
    type Output = Outcome;

    fn run(svc: &Service, ctx: &Ctx<'_>, args: RevokeOldArgs) -> Result<Outcome, ServiceError> {
        if args.issuer.as_deref().is_some_and(|i| i.trim().is_empty()) {
            return Err(ServiceError::field("--issuer", "names no issuer"));
        }
        rerun(svc, ctx, args.case, Some(args.issuer))
    }
}
