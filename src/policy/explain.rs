//! Why the policy answers a signal the way it does: every rule tried in order, why each
//! earlier one did not match, the rule that applies and what it decides.

use certresponder_inventory::{CertKind, ManagedCert};
use certresponder_issuers::RevocationReason;
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use super::vocab::{self, confidence_name};
use super::{Action, Approval, Policy, RuleRef, duration};
use crate::signals::{Confidence, Finding, Signal};

/// One rule tried.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleTrial {
    /// The rule's name.
    pub name: String,
    /// The line of its `[[rule]]` header.
    pub line: usize,
    /// Whether it matched (only the last rule tried can have).
    pub matched: bool,
    /// Why it did or did not match.
    pub why: String,
}

/// What the policy does about one check on one certificate, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    /// The policy file, or the built-in default.
    pub source: String,
    /// The certificate's inventory name.
    pub cert: String,
    /// Its owner.
    pub owner: String,
    /// Its tags.
    pub tags: Vec<String>,
    /// Its kind.
    pub kind: CertKind,
    /// The check explained.
    pub check: String,
    /// The signal family it was matched with.
    pub family: String,
    /// The confidence it was matched with.
    pub confidence: Confidence,
    /// The stored signal explained, when there is one (its dedup key).
    pub signal: Option<String>,
    /// Rules tried, in order, up to the one that applies.
    pub rules: Vec<RuleTrial>,
    /// The rule that applies (the implicit escalation when none does).
    pub rule: RuleRef,
    /// One line for a person.
    pub why: String,
    /// The resulting action.
    pub action: Action,
    /// Who must agree first.
    pub approval: Approval,
    /// How many approvals that is.
    pub approvals_needed: usize,
    /// Who may approve for the owner (empty: any user).
    pub approvers: Vec<String>,
    /// The revocation reason, for actions that revoke.
    pub reason: Option<RevocationReason>,
    /// Whether the old certificate is revoked before the new one is deployed.
    pub contain_first: bool,
    /// How long after first detection the action must be done.
    #[serde(serialize_with = "duration::serialize_opt")]
    pub deadline: Option<Duration>,
    /// The deadline as a time, for a stored signal.
    pub deadline_at: Option<DateTime<Utc>>,
}

impl Policy {
    /// Explains a check on `entry` as if a signal of that `family` and `confidence` were
    /// open, with the revocation reason and deadline the finding vocabulary implies for it.
    pub fn explain(
        &self,
        entry: &ManagedCert,
        check: &str,
        family: &str,
        confidence: Confidence,
    ) -> Explanation {
        let (reason, hours) = vocab::implied(check, confidence);
        let finding = Finding {
            check: "",
            confidence,
            message: String::new(),
            revocation_reason: reason,
            deadline_hours: hours,
            evidence: serde_json::Value::Null,
        };
        let mut signal = Signal::from_finding(
            entry.name.as_str(),
            family,
            &finding,
            None,
            "explain",
            Utc::now(),
        );
        signal.check = check.to_string();
        let mut e = self.explain_signal(entry, &signal);
        e.signal = None;
        e.deadline_at = None;
        e
    }

    /// Explains a stored signal on `entry`.
    pub fn explain_signal(&self, entry: &ManagedCert, signal: &Signal) -> Explanation {
        let (check, family, confidence) = (&signal.check, &signal.family, signal.confidence);
        let mut rules = Vec::new();
        for rule in &self.rules {
            let miss = rule.mismatch(check, family, confidence, entry);
            let matched = miss.is_none();
            rules.push(RuleTrial {
                name: rule.name.clone(),
                line: rule.line,
                matched,
                why: miss.unwrap_or_else(|| rule.match_reasons(check, family, confidence, entry)),
            });
            if matched {
                break;
            }
        }
        let decision = self.decide(&[signal], entry);
        let why = match self.rule_for(signal, entry) {
            Some(rule) => format!(
                "{check} ({}): {}: {}",
                confidence_name(confidence),
                decision.rule.describe(),
                rule.match_reasons(check, family, confidence, entry)
            ),
            None => format!(
                "{check} ({}): no rule matched, so it is escalated to a person",
                confidence_name(confidence)
            ),
        };
        Explanation {
            source: self.source.clone(),
            cert: entry.name.to_string(),
            owner: entry.owner.clone(),
            tags: entry.tags.clone(),
            kind: entry.kind,
            check: check.clone(),
            family: family.clone(),
            confidence,
            signal: Some(signal.dedup_key.clone()),
            rules,
            rule: decision.rule,
            why,
            action: decision.action,
            approval: decision.approval,
            approvals_needed: decision.approval.needed(),
            approvers: self.approvers(&entry.owner).to_vec(),
            reason: decision.reason,
            contain_first: decision.contain_first,
            deadline: decision.deadline.map(|d| d - signal.detected_at),
            deadline_at: decision.deadline,
        }
    }
}
