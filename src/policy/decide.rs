//! One decision per certificate: every open signal is matched to its rule, and the strongest
//! action among them answers them all in one case.

use certresponder_inventory::ManagedCert;
use certresponder_issuers::RevocationReason;
use chrono::{DateTime, Duration, Utc};

use super::vocab::confidence_name;
use super::{Action, Approval, Decision, Policy, Rule, RuleRef, SignalMatch};
use crate::signals::Signal;

/// A signal with the rule that matched it (and the rule's position) or none.
struct Matched<'a> {
    signal: &'a Signal,
    rule: Option<(usize, &'a Rule)>,
}

impl Matched<'_> {
    fn action(&self) -> Action {
        self.rule.map_or(Action::Escalate, |(_, r)| r.action)
    }

    fn approval(&self) -> Approval {
        self.rule.map_or(Approval::Auto, |(_, r)| r.approval)
    }

    /// The rule's deadline, else the finding's Baseline Requirements deadline, from when the
    /// signal was first detected.
    fn deadline(&self) -> Option<DateTime<Utc>> {
        let after = self.rule.and_then(|(_, r)| r.deadline).or_else(|| {
            self.signal
                .deadline_hours
                .map(|h| Duration::hours(i64::from(h)))
        })?;
        self.signal.detected_at.checked_add_signed(after)
    }

    fn implied_reason(&self) -> Option<RevocationReason> {
        self.signal
            .revocation_reason
            .as_deref()
            .and_then(RevocationReason::parse)
    }
}

impl Policy {
    fn matched<'a>(&'a self, signal: &'a Signal, entry: &ManagedCert) -> Matched<'a> {
        let rule = self
            .rules
            .iter()
            .enumerate()
            .find(|(_, r)| r.matches(&signal.check, &signal.family, signal.confidence, entry));
        Matched { signal, rule }
    }

    fn rule_ref_of(&self, m: &Matched<'_>) -> RuleRef {
        m.rule
            .map_or_else(|| self.no_rule(), |(_, r)| r.rule_ref(&self.source))
    }

    fn describe(&self, m: &Matched<'_>) -> String {
        let head = format!(
            "{} ({})",
            m.signal.check,
            confidence_name(m.signal.confidence)
        );
        match m.rule {
            Some(_) => format!("{head}: {}", self.rule_ref_of(m).describe()),
            None => format!("{head}: no rule matched, escalated"),
        }
    }

    /// The decision for one certificate's open signals (the list is not empty). Each signal
    /// is matched to the first rule that matches it (none: escalate). The strongest action
    /// wins; among the signals asking for it: the strictest approval, contain first if any
    /// rule says so, the reason (a rule's, else keyCompromise if a signal implies it, else
    /// the signal's, else superseded; revoking actions only) and the earliest deadline.
    pub fn decide(&self, signals: &[&Signal], entry: &ManagedCert) -> Decision {
        let all: Vec<Matched<'_>> = signals.iter().map(|s| self.matched(s, entry)).collect();
        let action = all
            .iter()
            .map(Matched::action)
            .max_by_key(|a| a.strength())
            .unwrap_or(Action::Escalate);
        let winners: Vec<&Matched<'_>> = all.iter().filter(|m| m.action() == action).collect();
        let approval = winners
            .iter()
            .map(|m| m.approval())
            .max()
            .unwrap_or(Approval::Auto);
        let contain_first = winners
            .iter()
            .any(|m| m.rule.is_some_and(|(_, r)| r.contain_first));
        let revoke_short_lived = winners
            .iter()
            .any(|m| m.rule.is_none_or(|(_, r)| r.revoke_short_lived));
        let reason = action.revokes().then(|| {
            let from_rules: Vec<RevocationReason> = winners
                .iter()
                .filter_map(|m| m.rule.and_then(|(_, r)| r.reason))
                .collect();
            let implied: Vec<RevocationReason> =
                winners.iter().filter_map(|m| m.implied_reason()).collect();
            if from_rules.contains(&RevocationReason::KeyCompromise) {
                RevocationReason::KeyCompromise
            } else if let Some(r) = from_rules.first() {
                *r
            } else if implied.contains(&RevocationReason::KeyCompromise) {
                RevocationReason::KeyCompromise
            } else {
                implied
                    .first()
                    .copied()
                    .unwrap_or(RevocationReason::Superseded)
            }
        });
        let deadline = if action == Action::Ignore {
            None
        } else {
            winners.iter().filter_map(|m| m.deadline()).min()
        };
        let lead = winners
            .iter()
            .min_by_key(|m| m.rule.map_or(usize::MAX, |(i, _)| i))
            .map_or_else(|| self.no_rule(), |m| self.rule_ref_of(m));
        let mut why = winners
            .iter()
            .map(|m| self.describe(m))
            .collect::<Vec<_>>()
            .join(", ");
        let answered: Vec<String> = all
            .iter()
            .filter(|m| m.action() != action && action.answers(m.action()))
            .map(|m| format!("{} -> {}", m.signal.check, m.action()))
            .collect();
        if !answered.is_empty() {
            why.push_str(&format!(
                "; {action} answers these too ({})",
                answered.join(", ")
            ));
        }
        let own: Vec<String> = all
            .iter()
            .filter(|m| !action.answers(m.action()))
            .map(|m| format!("{} -> {}", m.signal.check, m.action()))
            .collect();
        if !own.is_empty() {
            why.push_str(&format!("; answered on their own: {}", own.join(", ")));
        }
        let matches = all
            .iter()
            .map(|m| SignalMatch {
                signal: m.signal.dedup_key.clone(),
                check: m.signal.check.clone(),
                confidence: m.signal.confidence,
                rule: self.rule_ref_of(m),
                action: m.action(),
            })
            .collect();
        Decision {
            action,
            approval,
            reason,
            contain_first,
            revoke_short_lived,
            deadline,
            rule: lead,
            why,
            // The signals this decision answers; the others are answered on their own.
            signals: all
                .iter()
                .filter(|m| action.answers(m.action()))
                .map(|m| m.signal.dedup_key.clone())
                .collect(),
            matches,
        }
    }
}
