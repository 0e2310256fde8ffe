//! The audit record of a policy decision: one shape wherever a decision is made (the
//! governor's pass, a case opened by the engine, a report folded into a waiting case).

use chrono::{DateTime, Utc};
use serde_json::json;

use super::Decision;
use crate::audit::AuditEntry;

/// The actor named in audit records for what the policy does on its own.
pub const POLICY_ACTOR: &str = "certresponder (policy)";

/// What a decision came to for its certificate: the reason, contain first and deadline the
/// case carries, and why in words.
pub struct Decided<'a> {
    /// The revocation reason.
    pub reason: Option<certresponder_issuers::RevocationReason>,
    /// Revoke before deploying.
    pub contain_first: bool,
    /// When the response must be complete.
    pub deadline: Option<DateTime<Utc>>,
    /// Why, in words.
    pub why: &'a str,
}

/// The one shape of a `decision` audit record (the decision, its rule and matches, what it
/// came to), with `extra`'s fields added (why it waits, what it replaced...).
pub fn decision_audit<'a>(
    cert: &'a str,
    case: Option<u64>,
    d: &Decision,
    decided: Decided<'_>,
    extra: serde_json::Value,
) -> AuditEntry<'a> {
    let mut data = json!({
        "action": d.action,
        "approval": d.approval,
        "reason": decided.reason.map(|r| r.name()),
        "contain_first": decided.contain_first,
        "deadline": decided.deadline,
        "rule": d.rule,
        "why": decided.why,
        "matches": d.matches,
    });
    if let (Some(obj), serde_json::Value::Object(more)) = (data.as_object_mut(), extra) {
        obj.extend(more);
    }
    AuditEntry {
        kind: "decision",
        actor: POLICY_ACTOR,
        cert: Some(cert),
        case,
        data,
    }
}
