//! Cases: one response to one certificate, with its durable step journal.
//!
//! A case is stored whole after every transition (the store flushes before it returns), so
//! the journal on disk always says which step was started last and whether it finished. On
//! resume, a step that was started but not finished runs again; every step is written to be
//! idempotent (see `respond::engine`).

use std::fmt;

use certresponder_inventory::SecretPem;
use certresponder_issuers::RevocationReason;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What a sequence does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SequenceKind {
    /// New key and certificate, deployed and verified, then the old certificate revoked.
    RevokeReissue,
    /// New key and certificate, deployed and verified; the old one is left to expire
    /// (expiry, ARI renewal windows).
    Reissue,
    /// Revoke the current certificate, nothing else.
    Revoke,
    /// Restore an earlier bundle by hand (`rollback`): journaled like any case, so that a
    /// crash in the middle resumes it.
    Rollback,
}

impl SequenceKind {
    /// The snake_case name used in the CLI, JSON and policies.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RevokeReissue => "revoke_reissue",
            Self::Reissue => "reissue",
            Self::Revoke => "revoke",
            Self::Rollback => "rollback",
        }
    }

    /// The steps of the sequence, in order. "Contain first" revokes the old certificate as
    /// soon as the new one is in hand and checked, before it is deployed (invariant 2).
    pub fn steps(self, contain_first: bool) -> &'static [Step] {
        use Step::*;
        match (self, contain_first) {
            (Self::RevokeReissue, false) => &[
                Snapshot, NewKey, Issue, Check, Record, Deploy, Reload, Verify, Revoke, Confirm,
                Close,
            ],
            (Self::RevokeReissue, true) => &[
                Snapshot, NewKey, Issue, Check, Record, Revoke, Deploy, Reload, Verify, Confirm,
                Close,
            ],
            (Self::Reissue, _) => &[
                Snapshot, NewKey, Issue, Check, Record, Deploy, Reload, Verify, Close,
            ],
            (Self::Revoke, _) => &[Snapshot, Revoke, Confirm, Close],
            (Self::Rollback, _) => &[Rollback, Close],
        }
    }

    /// Whether the sequence revokes the old certificate.
    pub fn revokes(self) -> bool {
        matches!(self, Self::RevokeReissue | Self::Revoke)
    }

    /// Whether the sequence issues a new certificate.
    pub fn issues(self) -> bool {
        matches!(self, Self::RevokeReissue | Self::Reissue)
    }
}

impl fmt::Display for SequenceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One step of a sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Record the bundle deployed now as the rollback target (invariant 1).
    Snapshot,
    /// Generate a new private key of the entry's key profile.
    NewKey,
    /// Issue a certificate for the new key through the entry's issuer.
    Issue,
    /// Check the new bundle: parses, key matches, names cover the old ones, key checks pass.
    Check,
    /// Record the new certificate's TBS hash (the CT authorization ledger).
    Record,
    /// Write the new bundle to every location; it becomes `current` in the store.
    Deploy,
    /// Run the reload command.
    Reload,
    /// Check that the endpoints serve the new certificate (or re-read the files).
    Verify,
    /// Revoke the old certificate with the decided reason.
    Revoke,
    /// Read the old certificate's status back from the issuer.
    Confirm,
    /// Close the case and resolve the signals it answered.
    Close,
    /// Restore the snapshot bundle after a failed deploy, reload or verify.
    Rollback,
}

impl Step {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Snapshot => "snapshot",
            Self::NewKey => "new_key",
            Self::Issue => "issue",
            Self::Check => "check",
            Self::Record => "record",
            Self::Deploy => "deploy",
            Self::Reload => "reload",
            Self::Verify => "verify",
            Self::Revoke => "revoke",
            Self::Confirm => "confirm",
            Self::Close => "close",
            Self::Rollback => "rollback",
        }
    }

    /// Parses the snake_case name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Snapshot,
            Self::NewKey,
            Self::Issue,
            Self::Check,
            Self::Record,
            Self::Deploy,
            Self::Reload,
            Self::Verify,
            Self::Revoke,
            Self::Confirm,
            Self::Close,
            Self::Rollback,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a journaled step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepOutcome {
    /// Started and not (yet) finished; after a crash, it runs again.
    Started,
    /// Done.
    Ok,
    /// Nothing to do (no reload command, key already generated...).
    Skipped,
    /// Failed.
    Failed,
}

impl fmt::Display for StepOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Started => "started",
            Self::Ok => "ok",
            Self::Skipped => "skipped",
            Self::Failed => "failed",
        })
    }
}

/// One journal record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRecord {
    /// The step.
    pub step: Step,
    /// When it was started.
    pub started_at: DateTime<Utc>,
    /// When it finished.
    pub finished_at: Option<DateTime<Utc>>,
    /// How it ended.
    pub outcome: StepOutcome,
    /// What happened, for a person (never key material).
    pub detail: String,
}

/// Where a case stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseState {
    /// Opened, waiting for the approvals its rule (or the open breaker) asks for; nothing has
    /// run yet.
    AwaitingApproval,
    /// Denied by a person: it never runs.
    Denied,
    /// Steps remain; resumed on start.
    Running,
    /// Closed: every step succeeded.
    Done,
    /// Stopped by a failure; `error` says why and what was left deployed.
    Failed,
    /// Replaced, but the old certificate is still valid: its issuer could not revoke it (a
    /// certificate of another CA, as after a migration), or kept failing until the deadline.
    /// Its signals stay open until the old certificate is revoked (`cases revoke-old`, or
    /// seen revoked by the CA checks) or has expired; then the case closes.
    RevocationNeeded,
    /// Revoked, but the issuer still reported the old certificate good when the case
    /// confirmed it (a CRL or OCSP responder lagging the revocation). Each CA check asks
    /// again; the case closes once the revocation is seen, and is escalated near its
    /// deadline meanwhile. Its signals stay open.
    Unconfirmed,
}

impl fmt::Display for CaseState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::AwaitingApproval => "awaiting_approval",
            Self::Denied => "denied",
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
            Self::RevocationNeeded => "revocation_needed",
            Self::Unconfirmed => "unconfirmed",
        })
    }
}

/// What started a case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trigger {
    /// `report` (report-compromise), `manual` (reissue), `respond` (from stored signals).
    pub source: String,
    /// Who, as the operating system names them.
    pub by: String,
    /// Why, in words (the report's evidence, the signal's message).
    pub why: String,
    /// Dedup keys of the signals the case answers.
    pub signals: Vec<String>,
}

/// One approval, by the identity the operating system gave the approver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRecord {
    /// The user name.
    pub by: String,
    /// The numeric user id.
    pub uid: u32,
    /// When.
    pub at: DateTime<Utc>,
    /// How the person was told, when not by a login uid: `account` (no login session set
    /// one) or `unverified: WHY`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basis: Option<String>,
}

/// A denial.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Denial {
    /// The user name.
    pub by: String,
    /// The numeric user id.
    pub uid: u32,
    /// When.
    pub at: DateTime<Utc>,
    /// Why, as the person gave it.
    pub reason: String,
}

/// What a case waits for before it may run, and who has answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalState {
    /// `owner` or `two_person`: the rule's approval, raised to at least `owner` when the
    /// breaker held the case.
    pub required: super::decision::Approval,
    /// How many distinct approvers are needed.
    pub needed: usize,
    /// Why approval is needed (the rule, the open breaker).
    pub why: String,
    /// Whether the blast-radius breaker held an automatic action.
    pub held_by_breaker: bool,
    /// User names allowed to approve (from the policy's owners); empty: any user.
    pub approvers: Vec<String>,
    /// Approvals so far.
    pub approvals: Vec<ApprovalRecord>,
    /// The denial, if any.
    pub denied: Option<Denial>,
    /// When the case was escalated again for nearing its deadline.
    pub reescalated_at: Option<DateTime<Utc>>,
}

impl ApprovalState {
    /// A case that waits for `needed` approvals of kind `required`, none given yet.
    pub fn waiting(
        required: super::decision::Approval,
        needed: usize,
        why: String,
        held_by_breaker: bool,
        approvers: Vec<String>,
    ) -> Self {
        Self {
            required,
            needed,
            why,
            held_by_breaker,
            approvers,
            approvals: Vec::new(),
            denied: None,
            reescalated_at: None,
        }
    }
}

/// An issue request journaled before the issuer is asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issuing {
    /// The id the issuer knows the request by (the same on every retry).
    pub request_id: String,
    /// The issuer asked.
    pub issuer: String,
    /// The CSR sent, PEM (public: it carries the new key's public half).
    pub csr_pem: String,
    /// When it was first sent.
    pub at: DateTime<Utc>,
}

/// A certificate a case obtained and did not deploy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Orphan {
    /// Its serial, hex.
    pub serial: String,
    /// Its RFC 6962 TBS hash, recorded in the CT ledger.
    pub tbs_sha256: String,
    /// The issuer that issued it (and revokes it).
    pub issuer: String,
    /// The leaf, PEM.
    pub leaf_pem: String,
    /// Why it was not deployed.
    pub why: String,
    /// `pending` (to be revoked), `revoked`, or `not revoked: WHY`.
    pub state: String,
    /// When it was set aside.
    pub at: DateTime<Utc>,
}

/// A certificate chain an issuer returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedPem {
    /// The leaf, PEM.
    pub leaf_pem: String,
    /// Intermediates, PEM.
    pub chain_pem: String,
}

/// One response to one certificate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Case {
    /// Case number, assigned by the store.
    pub id: u64,
    /// The certificate's inventory name.
    pub cert: String,
    /// The sequence.
    pub kind: SequenceKind,
    /// Revoke before deploying (confirmed key compromise).
    pub contain_first: bool,
    /// The revocation reason, for sequences that revoke.
    pub reason: Option<RevocationReason>,
    /// What started it.
    pub trigger: Trigger,
    /// State.
    pub state: CaseState,
    /// The step to run next (journaled as started before it runs).
    pub next: Option<Step>,
    /// The journal, oldest first.
    pub journal: Vec<StepRecord>,
    /// The bundle deployed when the case started: the rollback target.
    pub old_bundle: Option<String>,
    /// The new private key, kept until it is deployed. Never shown.
    pub new_key: Option<SecretPem>,
    /// What the issuer returned.
    pub issued: Option<IssuedPem>,
    /// The new bundle's id, once built.
    pub new_bundle: Option<String>,
    /// Certificates issued by this case (a crash between issuing and journaling can issue
    /// one more; this counts what the journal saw).
    pub issued_count: u32,
    /// Why it failed, and what is deployed as a result.
    pub error: Option<String>,
    /// Whether the snapshot bundle was restored after a failure.
    pub rolled_back: bool,
    /// The certificate's owner when the case was opened.
    #[serde(default)]
    pub owner: String,
    /// The policy decision that opened the case (with the matched rule), if one did.
    #[serde(default)]
    pub decision: Option<super::decision::Decision>,
    /// When the response must be complete (the Baseline Requirements clock).
    #[serde(default)]
    pub deadline: Option<DateTime<Utc>>,
    /// The approvals the case waits for or got.
    #[serde(default)]
    pub approval: Option<ApprovalState>,
    /// The issuer the new certificate is ordered from instead of the entry's `issuer` (a
    /// distrusted CA's replacement: the entry's `fallback_issuer`, or one named by hand).
    #[serde(default)]
    pub issuer: Option<String>,
    /// The issuer the old certificate is revoked through instead of the entry's `issuer`
    /// (`cases revoke-old --issuer`: the CA that issued it, after a migration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoke_via: Option<String>,
    /// A running case whose revocation failed for a reason that may pass (the CA
    /// unreachable, rate limited, failing on its side) is tried again at this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_at: Option<DateTime<Utc>>,
    /// How many times the revocation failed so far (the back-off doubles with each).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub revoke_failures: u32,
    /// The issue request in flight, journaled before the issuer is asked: a retry or a
    /// resume asks the issuer what it issued for it instead of ordering again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuing: Option<Issuing>,
    /// Certificates the case obtained and did not deploy (a failed check, a rollback, a
    /// restart): recorded in the CT ledger and revoked (superseded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub orphans: Vec<Orphan>,
    /// When the case was escalated again because its deadline is near (once per case).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reescalated_at: Option<DateTime<Utc>>,
    /// Bumped by every write: an update made by compare-and-swap (approvals, denials,
    /// deadline escalations, reports folded in) succeeds only on the version it read.
    #[serde(default)]
    pub version: u64,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last journaled.
    pub updated_at: DateTime<Utc>,
}

impl Case {
    /// A new case, ready to run its first step.
    pub fn new(
        cert: &str,
        kind: SequenceKind,
        contain_first: bool,
        reason: Option<RevocationReason>,
        trigger: Trigger,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            id: 0,
            cert: cert.to_string(),
            kind,
            contain_first: contain_first && kind.revokes() && kind.issues(),
            reason: if kind.revokes() {
                Some(reason.unwrap_or(RevocationReason::Superseded))
            } else {
                None
            },
            trigger,
            state: CaseState::Running,
            next: kind.steps(contain_first).first().copied(),
            journal: Vec::new(),
            old_bundle: None,
            new_key: None,
            issued: None,
            new_bundle: None,
            issued_count: 0,
            error: None,
            rolled_back: false,
            owner: String::new(),
            decision: None,
            deadline: None,
            approval: None,
            issuer: None,
            revoke_via: None,
            retry_at: None,
            revoke_failures: 0,
            issuing: None,
            orphans: Vec::new(),
            reescalated_at: None,
            version: 0,
            created_at: now,
            updated_at: now,
        }
    }

    /// The step after `step` in this case's sequence.
    pub fn step_after(&self, step: Step) -> Option<Step> {
        let steps = self.kind.steps(self.contain_first);
        let i = steps.iter().position(|s| *s == step)?;
        steps.get(i + 1).copied()
    }

    /// The step after `step` as this case stands. Contain-first revokes before deploying;
    /// when that revocation failed, the replacement is deployed all the same and the
    /// revocation is tried again once the new bundle is verified.
    pub fn next_after(&self, step: Step) -> Option<Step> {
        if self.contain_first {
            let settled = self.journal.iter().any(|r| {
                r.step == Step::Revoke
                    && matches!(r.outcome, StepOutcome::Ok | StepOutcome::Skipped)
            });
            if step == Step::Verify && !settled {
                return Some(Step::Revoke);
            }
            if step == Step::Revoke && self.deployed_new() {
                return Some(Step::Confirm);
            }
        }
        self.step_after(step)
    }

    /// Whether this case deployed its new bundle.
    pub fn deployed_new(&self) -> bool {
        self.journal
            .iter()
            .any(|r| r.step == Step::Deploy && r.outcome == StepOutcome::Ok)
    }

    /// Whether the old certificate has been revoked by this case.
    pub fn revoked_old(&self) -> bool {
        self.journal
            .iter()
            .any(|r| r.step == Step::Revoke && r.outcome == StepOutcome::Ok)
    }

    /// The case as JSON for people and scripts: everything but the private key.
    pub fn public_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        if let Some(obj) = v.as_object_mut() {
            obj.remove("new_key");
        }
        v
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The CT authorization ledger's record of a certificate we obtained or registered: its
/// RFC 6962 TBS hash (precertificate and final certificate share it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// SHA-256 over the TBSCertificate without SCT and poison extensions, hex.
    pub tbs_sha256: String,
    /// The inventory name.
    pub cert: String,
    /// The leaf's serial, hex.
    pub serial: String,
    /// The leaf's issuer DN.
    pub issuer: String,
    /// Where CT monitoring saw it logged (`log#index`, the first few): our certificate is
    /// public as it should be.
    #[serde(default)]
    pub logged: Vec<String>,
    /// The case that obtained it, if it was issued by one.
    pub case: Option<u64>,
    /// `issued` or `registered`.
    pub origin: String,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trigger() -> Trigger {
        Trigger {
            source: "manual".into(),
            by: "t".into(),
            why: "test".into(),
            signals: Vec::new(),
        }
    }

    #[test]
    fn sequences_revoke_after_verify_unless_contain_first() {
        let normal = SequenceKind::RevokeReissue.steps(false);
        let pos = |s: &[Step], x| s.iter().position(|y| *y == x).unwrap();
        assert!(pos(normal, Step::Verify) < pos(normal, Step::Revoke));
        assert!(pos(normal, Step::Record) < pos(normal, Step::Deploy));
        let contain = SequenceKind::RevokeReissue.steps(true);
        assert!(pos(contain, Step::Revoke) < pos(contain, Step::Deploy));
        assert!(pos(contain, Step::Check) < pos(contain, Step::Revoke));
        assert!(!SequenceKind::Reissue.steps(false).contains(&Step::Revoke));
        let c = Case::new(
            "web",
            SequenceKind::Reissue,
            true,
            Some(RevocationReason::KeyCompromise),
            trigger(),
            Utc::now(),
        );
        assert!(!c.contain_first && c.reason.is_none());
        assert_eq!(c.next, Some(Step::Snapshot));
        assert_eq!(c.step_after(Step::Verify), Some(Step::Close));
        for s in normal {
            assert_eq!(Step::parse(s.as_str()), Some(*s));
        }
    }

    #[test]
    fn public_json_withholds_the_key() {
        let mut c = Case::new(
            "web",
            SequenceKind::RevokeReissue,
            false,
            None,
            trigger(),
            Utc::now(),
        );
        c.new_key = Some(SecretPem::new("-----BEGIN PRIVATE KEY-----".into()));
        let text = c.public_json().to_string();
        assert!(!text.contains("PRIVATE KEY"), "{text}");
        assert!(!format!("{c:?}").contains("PRIVATE KEY"));
        assert_eq!(c.reason, Some(RevocationReason::Superseded));
    }
}
