//! A report of key compromise about a certificate whose case waits for approval: the report
//! must not be lost, nor answered on the slower clock of the case already waiting. The
//! waiting case is decided again with every signal it answers plus the new ones (typically
//! `revoke_reissue` for keyCompromise within 24 hours instead of superseded within 5 days),
//! and runs at once when the new decision needs no approval.

use chrono::Utc;
use serde_json::json;

use super::{GovernError, Governor};
use crate::audit;
use crate::policy::Approval;
use crate::records::case::{Case, CaseState};
use crate::signals::Signal;

/// A waiting case decided again: the decision, what the case was (sequence, reason,
/// deadline), whether it now runs without approval, and its sequence.
type Refolded = (
    crate::policy::Decision,
    (
        crate::records::case::SequenceKind,
        Option<certresponder_issuers::RevocationReason>,
        Option<chrono::DateTime<Utc>>,
    ),
    bool,
    crate::records::case::SequenceKind,
);

impl Governor {
    /// Folds the certificate's open, unanswered signals (the report just recorded) into its
    /// waiting case `id`, decided again by the policy. A report is a person's decision, so
    /// the breaker does not hold it; an approval the new rule requires still applies.
    pub fn fold_into_waiting(
        &self,
        id: u64,
        reporter: &str,
        contain_first: bool,
    ) -> Result<Case, GovernError> {
        let store = self.engine.store();
        // Decided on the case as stored and written by compare-and-swap: an approval or a
        // denial made meanwhile is read again, never overwritten.
        let (case, decided) =
            self.update_case(id, |case| self.refold(case, reporter, contain_first))?;
        let Some((d, before, runs, kind)) = decided else {
            return Ok(case);
        };
        let entry = crate::policy::audit::decision_audit(
            &case.cert,
            Some(id),
            &d,
            crate::policy::audit::Decided {
                reason: case.reason,
                contain_first: case.contain_first,
                deadline: case.deadline,
                why: &case.trigger.why,
            },
            json!({
                "decided_again": {
                    "reported_by": reporter,
                    "was": {"sequence": before.0, "reason": before.1.map(|r| r.name()), "deadline": before.2},
                },
                "state": case.state,
            }),
        );
        audit::append(store, entry)?;
        self.engine.event(
            &case.cert,
            "case_decided_again",
            format!(
                "case {id}: decided again after a report by {reporter}: {}{}",
                kind,
                case.reason
                    .map(|r| format!(", reason {r}"))
                    .unwrap_or_default()
            ),
        )?;
        if !runs {
            let held = case.approval.as_ref().is_some_and(|a| a.held_by_breaker);
            self.approval_needed(&case, held);
        }
        Ok(case)
    }

    /// Decides waiting case `case` again with its signals and the fresh ones (see
    /// [`Governor::fold_into_waiting`]); `None` when the policy would not act.
    fn refold(
        &self,
        case: &mut Case,
        reporter: &str,
        contain_first: bool,
    ) -> Result<Option<Refolded>, GovernError> {
        let store = self.engine.store();
        let id = case.id;
        if case.state != CaseState::AwaitingApproval {
            return Err(GovernError::Refused(format!(
                "case {id} is not waiting for approval"
            )));
        }
        let entry = self.engine.entry(&case.cert)?;
        let now = Utc::now();
        let answered: Vec<String> = store
            .list_cases()?
            .into_iter()
            .flat_map(|c| c.trigger.signals)
            .collect();
        let mut signals: Vec<Signal> = Vec::new();
        for s in store.list_signals()? {
            let ours = case.trigger.signals.contains(&s.dedup_key);
            let fresh = s.subject == case.cert
                && s.is_open(now)
                && s.handled.is_none()
                && !answered.contains(&s.dedup_key);
            if ours || fresh {
                signals.push(s);
            }
        }
        let refs: Vec<&Signal> = signals.iter().collect();
        let d = self.policy.decide(&refs, &entry);
        let Some(kind) = d.action.sequence() else {
            // The policy would not act on the report: the case stays as it was.
            return Ok(None);
        };
        self.engine
            .check_actionable_via(&entry, kind, case.issuer.as_deref())?;
        let before = (case.kind, case.reason, case.deadline);
        case.kind = kind;
        case.contain_first = (d.contain_first || contain_first) && kind.revokes() && kind.issues();
        case.reason = if kind.revokes() {
            d.reason.or(case.reason)
        } else {
            None
        };
        case.deadline = match (d.deadline, case.deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        case.next = kind.steps(case.contain_first).first().copied();
        case.trigger.signals = d.signals.clone();
        case.trigger.why = format!("{} (reported by {reporter})", d.why);
        let runs = d.approval == Approval::Auto;
        if let Some(a) = case.approval.as_mut() {
            if runs {
                a.why = format!(
                    "{}; superseded by the report of {reporter}, which rule `{}` answers without approval",
                    a.why, d.rule.name
                );
            } else {
                a.required = a.required.max(d.approval);
                a.needed = a.needed.max(d.approval.needed());
                a.why = super::rule_requires(&d.rule, a.required);
            }
        }
        if runs {
            case.state = CaseState::Running;
        }
        case.decision = Some(d.clone());
        case.updated_at = now;
        Ok(Some((d, before, runs, kind)))
    }
}
