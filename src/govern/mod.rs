//! Governance: turning open signals into governed cases. The policy decides each
//! certificate's action; the approval rule and the blast-radius breaker decide whether the
//! case runs now or waits for people; every decision, approval and denial is audited and
//! owners are told what needs them.
//!
//! A signal is answered once: by the case opened for it (running, waiting, denied or
//! finished), or by being escalated or ignored (`Signal::handled`).

pub mod approvals;
pub mod breaker;
pub mod identity;
mod report;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::json;

use crate::audit::{self, AuditEntry};
use crate::notify::{Notification, NotifyEvent};
use crate::policy::audit::{Decided, decision_audit};
use crate::policy::{Action, Approval, Decision, Policy};
use crate::records::case::{ApprovalState, CaseState, Trigger};
use crate::respond::engine::Opening;
use crate::respond::{Engine, RespondError};
use crate::signals::state;
use crate::signals::{Handled, Signal};
use crate::store::{CertStatus, StoreError};

pub use breaker::{Admission, BreakerState};
pub use identity::Identity;

/// `Signal::handled` action of an escalation whose decided action could not run.
pub const BLOCKED: &str = "blocked";

pub use crate::policy::audit::POLICY_ACTOR;

/// One certificate's decision, and what stands in its way.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Plan {
    /// The certificate.
    pub cert: String,
    /// Its owner.
    pub owner: String,
    /// The policy's decision.
    pub decision: Decision,
    /// Why the action cannot be carried out (no issuer, no key location, a case already
    /// open): it is escalated instead.
    pub blocked: Option<String>,
    /// Why it would wait for approval (the rule, or the breaker), if it would.
    pub approval: Option<String>,
    /// The issuer the new certificate comes from instead of the entry's own: a distrusted
    /// CA's replacement (the distrust's issuer, else the entry's `fallback_issuer`).
    pub issuer: Option<String>,
}

/// What applying plans did.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct Applied {
    /// Cases opened that run now.
    pub run: Vec<u64>,
    /// Cases opened that wait for approval.
    pub waiting: Vec<u64>,
    /// Certificates escalated to their owner (the action, or a blocked one).
    pub escalated: Vec<String>,
    /// Certificates whose signals the policy ignores.
    pub ignored: Vec<String>,
    /// Certificates skipped because a case is already open for them.
    pub busy: Vec<String>,
    /// Whether the breaker opened during this pass.
    pub breaker_opened: bool,
}

/// Signals on subjects that are not registered, active certificates (no policy applies).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Unmatched {
    /// The subject.
    pub subject: String,
    /// How many signals.
    pub signals: usize,
}

/// A governance failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GovernError {
    /// The engine or store failed.
    #[error(transparent)]
    Respond(#[from] RespondError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// What was asked is not allowed (wrong state, wrong person, approving twice).
    #[error("{0}")]
    Refused(String),
}

/// Serializes breaker decisions within this process, whichever governor makes them: the
/// daemon builds a new governor on each reload of its configuration while the old one may
/// still be deciding.
pub(crate) static BREAKER_LOCK: Mutex<()> = Mutex::new(());

/// Applies the policy through the engine.
pub struct Governor {
    engine: Arc<Engine>,
    policy: Policy,
}

impl Governor {
    /// A governor over `engine` with `policy`.
    pub fn new(engine: Arc<Engine>, policy: Policy) -> Self {
        Self { engine, policy }
    }

    /// The engine.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Decisions for every registered certificate with open signals that nothing has
    /// answered yet, and the subjects with signals that no policy can apply to. With
    /// `only`, just those certificates.
    pub fn plan(
        &self,
        only: Option<&[String]>,
    ) -> Result<(Vec<Plan>, Vec<Unmatched>), GovernError> {
        self.plan_inner(only, false)
    }

    /// [`Governor::plan`] for a person's command that asks again: signals whose case failed
    /// are decided again too (a failed case otherwise keeps its signals, so that a broken
    /// issuer is not asked again on every pass).
    pub fn plan_retrying_failed(
        &self,
        only: &[String],
    ) -> Result<(Vec<Plan>, Vec<Unmatched>), GovernError> {
        self.plan_inner(Some(only), true)
    }

    fn plan_inner(
        &self,
        only: Option<&[String]>,
        retry_failed: bool,
    ) -> Result<(Vec<Plan>, Vec<Unmatched>), GovernError> {
        let store = self.engine.store();
        let now = Utc::now();
        // A replaced certificate whose old one is now revoked or expired: its case closes
        // and resolves its signals.
        self.engine.settle_revocations(now)?;
        let cases = store.list_cases()?;
        // A finished case resolved its signals when it closed; one open again came back
        // (the old certificate is deployed again, or the finding reappeared) and is decided
        // again. Running, waiting, denied and failed cases keep theirs.
        let answered: HashSet<&str> = cases
            .iter()
            .filter(|c| c.state != CaseState::Done)
            .filter(|c| !(retry_failed && c.state == CaseState::Failed))
            .flat_map(|c| c.trigger.signals.iter().map(String::as_str))
            .collect();
        let open_case: HashMap<&str, u64> = cases
            .iter()
            .filter(|c| matches!(c.state, CaseState::Running | CaseState::AwaitingApproval))
            .map(|c| (c.cert.as_str(), c.id))
            .collect();
        // Signals a case is still answering stay open whatever is deployed now: a case
        // waiting to revoke the old certificate (or unable to) holds them until it is
        // revoked or expired.
        let held: HashSet<&str> = cases
            .iter()
            .filter(|c| {
                matches!(
                    c.state,
                    CaseState::Running
                        | CaseState::AwaitingApproval
                        | CaseState::RevocationNeeded
                        | CaseState::Unconfirmed
                )
            })
            .flat_map(|c| c.trigger.signals.iter().map(String::as_str))
            .collect();
        let mut signals = store.list_signals()?;
        self.resolve_stale(&mut signals, &held, now)?;
        let mut by_subject: BTreeMap<&str, Vec<&Signal>> = BTreeMap::new();
        for s in &signals {
            let wanted = only.is_none_or(|o| o.iter().any(|n| n == &s.subject));
            // An escalation because the action could not run is tried again: the obstacle
            // (no issuer, no key location) may have been fixed since.
            let unanswered = s.handled.as_ref().is_none_or(|h| h.action == BLOCKED);
            if wanted && s.is_open(now) && unanswered && !answered.contains(s.dedup_key.as_str()) {
                by_subject.entry(s.subject.as_str()).or_default().push(s);
            }
        }
        let mut breaker = BreakerState::load(store)?;
        let mut plans = Vec::new();
        let mut unmatched = Vec::new();
        for (subject, sigs) in by_subject {
            let entry = match store.get_cert(subject)? {
                Some(rec) if rec.status == CertStatus::Active => rec.entry,
                _ => {
                    unmatched.push(Unmatched {
                        subject: subject.to_string(),
                        signals: sigs.len(),
                    });
                    continue;
                }
            };
            let already_blocked = sigs
                .iter()
                .all(|s| s.handled.as_ref().is_some_and(|h| h.action == BLOCKED));
            let decision = self.policy.decide(&sigs, &entry);
            let replacement = replacement_issuer(&sigs, &entry);
            let issuer = replacement.clone().and_then(Result::ok);
            let blocked = match decision.action.sequence() {
                None => None,
                Some(kind) => match (open_case.get(subject), replacement) {
                    (Some(id), _) => Some(format!("case {id} is already open for it")),
                    (None, Some(Err(why))) if kind.issues() => Some(why),
                    (None, _) => self
                        .engine
                        .check_actionable_via(&entry, kind, issuer.as_deref())
                        .err()
                        .map(|e| e.to_string()),
                },
            };
            if already_blocked && blocked.is_some() {
                // Still blocked, and its owner was told: nothing new to say.
                continue;
            }
            // Predict the breaker on a copy: each admitted revocation counts toward the next.
            let approval = if blocked.is_some() {
                None
            } else {
                let a = self.approval_for(&decision, &entry.owner, &mut breaker, now, true);
                if a.is_none() && decision.action.sequence().is_some_and(|k| k.revokes()) {
                    breaker.record(&entry.owner, subject, 0, now);
                }
                a.map(|(a, _)| a.why)
            };
            plans.push(Plan {
                cert: subject.to_string(),
                owner: entry.owner.clone(),
                decision,
                blocked,
                approval,
                issuer,
            });
        }
        Ok((plans, unmatched))
    }

    /// What approval a decision needs before it runs, consulting (and, with `record`,
    /// updating) the breaker. The second value says whether this opened the breaker.
    fn approval_for(
        &self,
        decision: &Decision,
        owner: &str,
        breaker: &mut BreakerState,
        now: DateTime<Utc>,
        breaker_applies: bool,
    ) -> Option<(ApprovalState, bool)> {
        let kind = decision.action.sequence()?;
        let approvers = self.policy.approvers(owner).to_vec();
        if decision.approval != Approval::Auto {
            return Some((
                ApprovalState::waiting(
                    decision.approval,
                    decision.approval.needed(),
                    rule_requires(&decision.rule, decision.approval),
                    false,
                    approvers,
                ),
                false,
            ));
        }
        if !kind.revokes() || !breaker_applies {
            return None;
        }
        match breaker.admit(&self.policy.limits, owner, now) {
            Admission::Admit => None,
            Admission::Hold { why, opened_now } => Some((
                ApprovalState::waiting(Approval::Owner, 1, why, true, approvers),
                opened_now,
            )),
        }
    }

    /// Carries out plans: opens the cases (running or waiting for approval), escalates or
    /// ignores the rest, audits every decision and tells owners what needs them. `source`
    /// and `actor` go into the cases' triggers (`policy` for detectors, `report` for a
    /// person's report, which the breaker does not count).
    pub fn apply(
        &self,
        plans: &[Plan],
        source: &str,
        actor: &str,
        contain_first: bool,
    ) -> Result<Applied, GovernError> {
        let _guard = BREAKER_LOCK
            .lock()
            .map_err(|_| GovernError::Refused("the breaker lock is poisoned".into()))?;
        let store = self.engine.store();
        let mut breaker = BreakerState::load(store)?;
        let mut running = self.engine.running_by_cert()?;
        let mut out = Applied::default();
        for plan in plans {
            let now = Utc::now();
            let d = &plan.decision;
            let Some(kind) = d.action.sequence() else {
                self.audit_decision(plan, contain_first)?;
                let action = d.action;
                self.mark_handled(plan, action.as_str(), &d.why)?;
                if action == Action::Escalate {
                    self.escalate(plan, &d.why);
                    out.escalated.push(plan.cert.clone());
                } else {
                    out.ignored.push(plan.cert.clone());
                }
                self.answer_others(plan)?;
                continue;
            };
            if let Some(id) = running.get(&plan.cert) {
                // Decided again on the next pass, once the open case is finished.
                tracing::info!(cert = %plan.cert, case = id, "a case is already open; the decision waits");
                out.busy.push(plan.cert.clone());
                continue;
            }
            if let Some(why) = &plan.blocked {
                self.audit_decision(plan, contain_first)?;
                let why = format!("{} was decided but cannot run: {why}", kind);
                self.mark_handled(plan, BLOCKED, &why)?;
                self.escalate(plan, &why);
                out.escalated.push(plan.cert.clone());
                continue;
            }
            let counts = source != "report";
            let approval = self.approval_for(d, &plan.owner, &mut breaker, now, counts);
            let (approval, opened_now) = match approval {
                Some((a, o)) => (Some(a), o),
                None => (None, false),
            };
            if opened_now {
                // Owners are told before the state is saved: a crash in between tells them
                // twice rather than never.
                self.breaker_opened(&breaker, &plan.owner)?;
                breaker.save(store)?;
                out.breaker_opened = true;
            }
            let waiting = approval.is_some();
            let held = approval.as_ref().is_some_and(|a| a.held_by_breaker);
            // An admitted automatic revocation is counted, durably, before its case exists:
            // a crash in between counts one revocation too many, never one too few.
            let id = if !waiting && counts && kind.revokes() {
                let id = store.next_case_id()?;
                breaker.record(&plan.owner, &plan.cert, id, now);
                breaker.save(store)?;
                Some(id)
            } else {
                None
            };
            let case = self.engine.open(
                Opening {
                    id,
                    cert: plan.cert.clone(),
                    kind,
                    contain_first: d.contain_first || contain_first,
                    reason: d.reason,
                    trigger: Trigger {
                        source: source.to_string(),
                        by: actor.to_string(),
                        why: d.why.clone(),
                        signals: d.signals.clone(),
                    },
                    decision: Some(d.clone()),
                    deadline: d.deadline,
                    approval,
                    issuer: plan.issuer.clone(),
                },
                &mut running,
            )?;
            if waiting {
                out.waiting.push(case.id);
                self.approval_needed(&case, held);
            } else {
                out.run.push(case.id);
            }
            self.answer_others(plan)?;
        }
        Ok(out)
    }

    /// Answers the signals of `plan` that its decision does not: each whose rule says
    /// escalate is escalated on its own (its owner told), each whose rule says ignore is
    /// ignored; one that asks for another sequence stays open and is decided again once the
    /// certificate's case is over.
    fn answer_others(&self, plan: &Plan) -> Result<(), StoreError> {
        let d = &plan.decision;
        let store = self.engine.store();
        let mut escalated = Vec::new();
        for m in d.matches.iter().filter(|m| !d.action.answers(m.action)) {
            let (action, why) = match m.action {
                Action::Escalate => (
                    "escalate",
                    format!("{}: escalated on its own ({})", m.check, m.rule.describe()),
                ),
                Action::Ignore => (
                    "ignore",
                    format!("{}: ignored ({})", m.check, m.rule.describe()),
                ),
                _ => continue,
            };
            let handled = Handled {
                action: action.to_string(),
                rule: m.rule.name.clone(),
                why: why.clone(),
                at: Utc::now(),
                deadline: None,
                reescalated_at: None,
            };
            // Answered so already: its owner was told.
            if state::mark_handled(store, &m.signal, handled)? && m.action == Action::Escalate {
                escalated.push(why);
            }
        }
        if !escalated.is_empty() {
            self.escalate(plan, &escalated.join("; "));
        }
        Ok(())
    }

    /// Audits a decision that opens no case (the engine audits those that do, with the case).
    fn audit_decision(&self, plan: &Plan, contain_first: bool) -> Result<(), StoreError> {
        audit::append(self.engine.store(), decision_entry(plan, contain_first)).map(|_| ())
    }

    /// Resolves open signals about a certificate that is no longer deployed (their
    /// fingerprint is not the current bundle's): acting on them would revoke the certificate
    /// that replaced it.
    fn resolve_stale(
        &self,
        signals: &mut [Signal],
        held: &HashSet<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let store = self.engine.store();
        let mut current: HashMap<String, Option<String>> = HashMap::new();
        for s in signals.iter_mut() {
            let Some(fp) = s.cert_sha256.clone() else {
                continue;
            };
            if !s.is_open(now) || held.contains(s.dedup_key.as_str()) {
                continue;
            }
            if !current.contains_key(&s.subject) {
                let bundles = store.bundles(&s.subject)?;
                let fp = certresponder_inventory::Bundle::current_of(&bundles)
                    .map(|b| b.fingerprints.cert_sha256.clone());
                current.insert(s.subject.clone(), fp);
            }
            let Some(Some(now_fp)) = current.get(&s.subject) else {
                continue;
            };
            if *now_fp == fp {
                continue;
            }
            state::resolve(store, s, now, POLICY_ACTOR)?;
            tracing::info!(cert = %s.subject, check = %s.check, "signal about a certificate no longer deployed resolved");
        }
        Ok(())
    }

    /// Marks a plan's signals as answered without a case.
    fn mark_handled(&self, plan: &Plan, action: &str, why: &str) -> Result<(), StoreError> {
        let store = self.engine.store();
        for key in &plan.decision.signals {
            let handled = Handled {
                action: action.to_string(),
                rule: plan.decision.rule.name.clone(),
                why: why.to_string(),
                at: Utc::now(),
                deadline: plan.decision.deadline.filter(|_| action == BLOCKED),
                reescalated_at: None,
            };
            state::mark_handled(store, key, handled)?;
        }
        Ok(())
    }

    fn escalate(&self, plan: &Plan, why: &str) {
        self.engine.notify(Notification {
            event: NotifyEvent::Escalation,
            owner: Some(plan.owner.clone()),
            cert: Some(plan.cert.clone()),
            case: None,
            summary: format!("`{}` needs a person: {why}", plan.cert),
            deadline: plan.decision.deadline,
            details: json!({
                "rule": plan.decision.rule,
                "matches": plan.decision.matches,
            }),
            created_at: Utc::now(),
        });
    }

    fn approval_needed(&self, case: &crate::respond::Case, held: bool) {
        let why = case
            .approval
            .as_ref()
            .map(|a| a.why.clone())
            .unwrap_or_default();
        self.engine.notify(Notification {
            event: NotifyEvent::ApprovalNeeded,
            owner: Some(case.owner.clone()),
            cert: Some(case.cert.clone()),
            case: Some(case.id),
            summary: format!(
                "case {} ({} of `{}`) waits for approval: {why}; approve with `certresponder approve {}` or deny with `certresponder deny {} --reason ...`",
                case.id, case.kind, case.cert, case.id, case.id
            ),
            deadline: case.deadline,
            details: json!({
                "sequence": case.kind,
                "reason": case.reason.map(|r| r.name()),
                "held_by_breaker": held,
                "approval": case.approval,
                "rule": case.decision.as_ref().map(|d| &d.rule),
            }),
            created_at: Utc::now(),
        });
    }

    fn breaker_opened(&self, state: &BreakerState, owner: &str) -> Result<(), StoreError> {
        let opened = state.holds(owner);
        let why = opened.map(|o| o.why.clone()).unwrap_or_default();
        audit::append(
            self.engine.store(),
            AuditEntry {
                kind: "breaker_open",
                actor: POLICY_ACTOR,
                cert: None,
                case: None,
                data: json!({"why": why, "owner": owner, "global": state.open.is_some()}),
            },
        )?;
        tracing::warn!(why = %why, "the blast-radius breaker opened");
        let summary = format!(
            "the blast-radius breaker opened: {why}; further automatic revocations wait for approval until `certresponder breaker reset`"
        );
        // The owner whose action tripped it, and the default receivers when the owner has
        // targets of its own (otherwise they are the same receivers: tell them once).
        let notify = &self.engine.config().notify;
        let mut to = vec![Some(owner.to_string())];
        if notify.targets_for(Some(owner)) != notify.targets_for(None) {
            to.push(None);
        }
        for o in to {
            self.engine.notify(Notification {
                event: NotifyEvent::BreakerOpen,
                owner: o,
                cert: None,
                case: None,
                summary: summary.clone(),
                deadline: None,
                details: json!({"why": why}),
                created_at: Utc::now(),
            });
        }
        Ok(())
    }

    /// Escalates again, once each, every unfinished case (waiting for approval, running,
    /// failed, replaced but not revoked, revoked but unconfirmed) and every decision that
    /// could not run, when three quarters of the time to its deadline has passed or it is
    /// within the policy's margin of it, whichever comes first. Returns the cases
    /// escalated (a blocked decision, which has no case, is not among them).
    pub fn check_deadlines(&self, now: DateTime<Utc>) -> Result<Vec<u64>, GovernError> {
        // One pass at a time (the daemon's timer and a `respond` job can meet): a decision
        // that could not run is marked by a plain write, so two passes would both tell.
        let _one = DEADLINE_LOCK
            .lock()
            .map_err(|_| GovernError::Refused("the deadline lock is poisoned".into()))?;
        let store = self.engine.store();
        let margin = self.policy.escalate_margin;
        let mut out = Vec::new();
        for mut case in store.list_cases()? {
            let Some(deadline) = case.deadline else {
                continue;
            };
            let waiting_mark = case.approval.as_ref().and_then(|a| a.reescalated_at);
            if case.reescalated_at.is_some()
                || waiting_mark.is_some()
                || now < escalation_due(case.created_at, deadline, margin)
            {
                continue;
            }
            let Some(what) = still_open(&case) else {
                continue;
            };
            let when = due_in_words(deadline, now);
            let summary = format!(
                "case {} ({} of `{}`) {what}, and {when} ({})",
                case.id,
                case.kind,
                case.cert,
                deadline.format("%Y-%m-%d %H:%M UTC"),
            );
            case.reescalated_at = Some(now);
            if case.state == CaseState::AwaitingApproval
                && let Some(a) = case.approval.as_mut()
            {
                a.reescalated_at = Some(now);
            }
            case.updated_at = now;
            audit::append(
                store,
                AuditEntry {
                    kind: "escalation",
                    actor: POLICY_ACTOR,
                    cert: Some(&case.cert),
                    case: Some(case.id),
                    data: json!({"why": "deadline near", "state": case.state, "deadline": deadline, "margin_secs": margin.num_seconds()}),
                },
            )?;
            self.engine.notify(Notification {
                event: NotifyEvent::Escalation,
                owner: Some(case.owner.clone()),
                cert: Some(case.cert.clone()),
                case: Some(case.id),
                summary,
                deadline: Some(deadline),
                details: json!({"state": case.state, "approval": case.approval, "error": case.error}),
                created_at: now,
            });
            // Marked last: a crash before this escalates again rather than never. A case
            // changed meanwhile (approved, denied, finished) keeps what it became, and this
            // pass's mark is dropped.
            if store.swap_case(&mut case)? {
                out.push(case.id);
            }
        }
        self.blocked_near_deadline(now, margin)?;
        Ok(out)
    }

    /// Escalates again the decisions that could not run (no issuer, no key location...)
    /// near their deadline: once per certificate, naming what stopped them.
    fn blocked_near_deadline(
        &self,
        now: DateTime<Utc>,
        margin: Duration,
    ) -> Result<(), GovernError> {
        let store = self.engine.store();
        let mut by_cert: BTreeMap<String, Vec<Signal>> = BTreeMap::new();
        for s in store.list_signals()? {
            let near = s.handled.as_ref().is_some_and(|h| {
                h.action == BLOCKED
                    && h.reescalated_at.is_none()
                    && h.deadline
                        .is_some_and(|d| now >= escalation_due(s.detected_at, d, margin))
            });
            if near && s.is_open(now) {
                by_cert.entry(s.subject.clone()).or_default().push(s);
            }
        }
        for (cert, sigs) in by_cert {
            let Some(h) = sigs
                .iter()
                .filter_map(|s| s.handled.as_ref())
                .min_by_key(|h| h.deadline)
            else {
                continue;
            };
            let deadline = h.deadline.unwrap_or(now);
            let owner = store.get_cert(&cert)?.map(|r| r.entry.owner);
            audit::append(
                store,
                AuditEntry {
                    kind: "escalation",
                    actor: POLICY_ACTOR,
                    cert: Some(&cert),
                    case: None,
                    data: json!({"why": "deadline near", "blocked": h.why, "deadline": deadline, "margin_secs": margin.num_seconds()}),
                },
            )?;
            self.engine.notify(Notification {
                event: NotifyEvent::Escalation,
                owner,
                cert: Some(cert.clone()),
                case: None,
                summary: format!(
                    "`{cert}`: {}, and {} ({}): fix it, then run `certresponder respond`",
                    h.why,
                    due_in_words(deadline, now),
                    deadline.format("%Y-%m-%d %H:%M UTC")
                ),
                deadline: Some(deadline),
                details: json!({"rule": h.rule, "signals": sigs.iter().map(|s| &s.dedup_key).collect::<Vec<_>>()}),
                created_at: now,
            });
            for s in &sigs {
                state::mark_reescalated(store, &s.dedup_key, now)?;
            }
        }
        Ok(())
    }
}

/// Serializes [`Governor::check_deadlines`] within the process.
static DEADLINE_LOCK: Mutex<()> = Mutex::new(());

/// When an unfinished response is escalated again: once three quarters of the time from
/// `start` to `deadline` has passed, or `margin` before the deadline, whichever is first.
fn escalation_due(
    start: DateTime<Utc>,
    deadline: DateTime<Utc>,
    margin: Duration,
) -> DateTime<Utc> {
    let quarter = (deadline - start).max(Duration::zero()) / 4;
    (deadline - quarter).min(deadline - margin)
}

/// "is due in 5h" / "was due 2h ago".
fn due_in_words(deadline: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let left = deadline - now;
    if left > Duration::zero() {
        format!("is due in {}", human_duration(left))
    } else {
        format!("was due {} ago", human_duration(-left))
    }
}

/// What an unfinished case still needs, in words with the command that does it; `None`
/// for a case that is finished (done or denied).
fn still_open(case: &crate::respond::Case) -> Option<String> {
    let id = case.id;
    Some(match case.state {
        CaseState::Done | CaseState::Denied => return None,
        CaseState::AwaitingApproval => {
            format!("still waits for approval: approve with `certresponder approve {id}`")
        }
        CaseState::Running => match case.retry_at {
            Some(at) => format!(
                "has not revoked the old certificate yet (next attempt at {}): try now with `certresponder cases retry {id}`",
                at.format("%Y-%m-%d %H:%M:%S UTC")
            ),
            None => format!(
                "is still running (next step: {})",
                case.next.map_or("?", |s| s.as_str())
            ),
        },
        CaseState::Failed => format!(
            "failed: {}; retry with `certresponder cases retry {id}`",
            case.error.as_deref().unwrap_or("?")
        ),
        CaseState::RevocationNeeded => format!(
            "replaced the certificate, but the old one is still NOT revoked: revoke it with `certresponder cases revoke-old {id} --issuer ID`"
        ),
        CaseState::Unconfirmed => format!(
            "revoked the old certificate, but its CA still reports it good: check the revocation at the CA (each CA check asks again; `certresponder cases show {id}`)"
        ),
    })
}

/// The audit record of a plan's decision.
fn decision_entry(plan: &Plan, contain_first: bool) -> AuditEntry<'_> {
    let d = &plan.decision;
    decision_audit(
        &plan.cert,
        None,
        d,
        Decided {
            reason: d.reason,
            contain_first: d.contain_first || contain_first,
            deadline: d.deadline,
            why: &d.why,
        },
        json!({"blocked": plan.blocked, "waits_for": plan.approval}),
    )
}

/// Why a case waits for a rule's approval, in words.
pub(crate) fn rule_requires(rule: &crate::policy::RuleRef, approval: Approval) -> String {
    format!(
        "rule `{}` ({}) requires {} approval",
        rule.name,
        rule_place(rule),
        match approval {
            Approval::TwoPerson => "two-person",
            _ => "the owner's",
        }
    )
}

/// "policy.toml line 12" for a rule.
pub fn rule_place(rule: &crate::policy::RuleRef) -> String {
    if rule.line == 0 {
        rule.source.clone()
    } else {
        let file = std::path::Path::new(&rule.source)
            .file_name()
            .map_or_else(|| rule.source.clone(), |f| f.to_string_lossy().into_owned());
        format!("{file} line {}", rule.line)
    }
}

/// "2d 4h", "35m", "12s".
pub fn human_duration(d: Duration) -> String {
    let s = d.num_seconds().max(0);
    let (days, hours, mins) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60);
    match (days, hours, mins) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, 0) => format!("{h}h"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, 0, _) => format!("{d}d"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

#[cfg(test)]
mod tests;

/// Where a replacement for a distrusted CA's certificate comes from, when an
/// `issuer_distrusted` signal is among `sigs`: the issuer the distrust names, else the
/// entry's `fallback_issuer`; an error (why it cannot be replaced) when neither exists.
/// `None` when no signal is about a distrusted CA.
fn replacement_issuer(
    sigs: &[&Signal],
    entry: &certresponder_inventory::ManagedCert,
) -> Option<Result<String, String>> {
    let s = sigs.iter().find(|s| s.check == "issuer_distrusted")?;
    let named = s.evidence["replace_with"].as_str().map(str::to_string);
    Some(named.or_else(|| entry.fallback_issuer.clone()).ok_or_else(|| {
        format!(
            "its CA is distrusted and its inventory entry ({}) names no `fallback_issuer` to order the replacement from (or give one with `certresponder distrust ... --issuer ID`)",
            entry.source.display()
        )
    }))
}
