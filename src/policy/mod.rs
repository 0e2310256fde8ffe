//! The response policy: ordered rules that turn each signal into an action, an approval
//! rule, a revocation reason and a deadline, plus the blast-radius limits and who may approve
//! each owner's cases.
//!
//! A policy is a TOML file (see `config/policy.toml`, the built-in default, for the full
//! format). The first rule that matches a signal decides it; a signal no rule matches is
//! escalated to a person. A file that is ambiguous is rejected when it is loaded, with its
//! line: an unknown field, check, family or kind, a rule an earlier one always shadows, a
//! rule that contradicts itself, or one that would revoke on low confidence without approval.
//! The default follows the CA/B Forum Baseline Requirements §4.9.1.1 (24 hours for keys
//! known or shown to be compromised, 5 days for other weak parameters and rule violations).

pub mod audit;
mod decide;
pub mod duration;
mod explain;
mod parse;
pub mod vocab;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use certresponder_inventory::{CertKind, ManagedCert, Trust};
use certresponder_issuers::RevocationReason;
use chrono::Duration;
use serde::Serialize;

use crate::signals::{Confidence, Signal};

pub use crate::records::decision::{
    Action, Approval, BUILTIN_SOURCE, Decision, NO_RULE, RuleRef, SignalMatch,
};
pub use explain::{Explanation, RuleTrial};

/// The text of the built-in default policy, which operators can start their own from.
pub const DEFAULT_POLICY: &str = include_str!("../../config/policy.toml");

/// One `[[rule]]`: which signals it matches and what it does about them. An absent
/// condition (an empty list, no `min_confidence`) matches anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rule {
    /// Unique name.
    pub name: String,
    /// Line of the `[[rule]]` header.
    pub line: usize,
    /// Check ids, any of.
    pub checks: Vec<String>,
    /// Signal families, any of.
    pub families: Vec<String>,
    /// The lowest confidence it matches.
    pub min_confidence: Option<Confidence>,
    /// Tags the certificate must all carry.
    pub tags: Vec<String>,
    /// Certificate kinds, any of.
    pub kinds: Vec<CertKind>,
    /// Certificate owners, any of.
    pub owners: Vec<String>,
    /// What to do.
    pub action: Action,
    /// Who must agree first.
    pub approval: Approval,
    /// The RFC 5280 reason a revocation carries (revoking actions only).
    pub reason: Option<RevocationReason>,
    /// Revoke the old certificate before deploying the new one (revoke_reissue only): for
    /// confirmed key compromise, where every minute the old key is trusted counts.
    pub contain_first: bool,
    /// How long after the signal was first detected the action must be done.
    #[serde(serialize_with = "duration::serialize_opt")]
    pub deadline: Option<Duration>,
    /// Only certificates of this trust (`public`, `private`); `None`: either.
    pub trust: Option<Trust>,
    /// Whether to revoke an old certificate that is short-lived in the Baseline
    /// Requirements' sense (§1.6.1; revoking it is optional, §4.9.1.1). Default true; a
    /// CA's refusal to revoke one does not fail the case either way.
    pub revoke_short_lived: bool,
}

impl Rule {
    /// Why the rule does not match a signal of `check`, `family` and `confidence` on
    /// `entry`: the first condition that fails, or `None` when it matches.
    pub fn mismatch(
        &self,
        check: &str,
        family: &str,
        confidence: Confidence,
        entry: &ManagedCert,
    ) -> Option<String> {
        if !self.checks.is_empty() && !self.checks.iter().any(|c| c == check) {
            return Some(if self.checks.len() > 4 {
                format!(
                    "check `{check}` is not among its {} checks",
                    self.checks.len()
                )
            } else {
                format!(
                    "check `{check}` is not among its checks ({})",
                    self.checks.join(", ")
                )
            });
        }
        if !self.families.is_empty() && !self.families.iter().any(|f| f == family) {
            return Some(format!(
                "family `{family}` is not among its families ({})",
                self.families.join(", ")
            ));
        }
        if let Some(min) = self.min_confidence
            && confidence < min
        {
            return Some(format!(
                "confidence {} is below its min_confidence {}",
                vocab::confidence_name(confidence),
                vocab::confidence_name(min)
            ));
        }
        if let Some(missing) = self.tags.iter().find(|t| !entry.tags.contains(t)) {
            return Some(format!("the certificate lacks the tag `{missing}`"));
        }
        if !self.kinds.is_empty() && !self.kinds.contains(&entry.kind) {
            let kinds: Vec<&str> = self.kinds.iter().map(|k| k.as_str()).collect();
            return Some(format!(
                "kind `{}` is not among its kinds ({})",
                entry.kind,
                kinds.join(", ")
            ));
        }
        if !self.owners.is_empty() && !self.owners.contains(&entry.owner) {
            return Some(format!(
                "owner `{}` is not among its owners ({})",
                entry.owner,
                self.owners.join(", ")
            ));
        }
        if let Some(t) = self.trust
            && entry.trust != t
        {
            return Some(format!(
                "trust `{}` is not its trust `{}`",
                entry.trust.as_str(),
                t.as_str()
            ));
        }
        None
    }

    /// Whether the rule matches a signal of `check`, `family` and `confidence` on `entry`.
    pub fn matches(
        &self,
        check: &str,
        family: &str,
        confidence: Confidence,
        entry: &ManagedCert,
    ) -> bool {
        self.mismatch(check, family, confidence, entry).is_none()
    }

    /// The conditions a matching signal met, in words (`check `fermat` is listed; ...`).
    pub fn match_reasons(
        &self,
        check: &str,
        family: &str,
        confidence: Confidence,
        entry: &ManagedCert,
    ) -> String {
        let mut met = Vec::new();
        if !self.checks.is_empty() {
            met.push(format!("check `{check}` is among its checks"));
        }
        if !self.families.is_empty() {
            met.push(format!("family `{family}` is among its families"));
        }
        if let Some(min) = self.min_confidence {
            met.push(format!(
                "confidence {} is at least {}",
                vocab::confidence_name(confidence),
                vocab::confidence_name(min)
            ));
        }
        if !self.tags.is_empty() {
            met.push(format!(
                "the certificate carries the tags {}",
                self.tags.join(", ")
            ));
        }
        if !self.kinds.is_empty() {
            met.push(format!("kind `{}` is among its kinds", entry.kind));
        }
        if !self.owners.is_empty() {
            met.push(format!("owner `{}` is among its owners", entry.owner));
        }
        if let Some(t) = self.trust {
            met.push(format!("trust is `{}`", t.as_str()));
        }
        if met.is_empty() {
            "it has no conditions: it matches every signal that reaches it".into()
        } else {
            met.join("; ")
        }
    }

    /// A reference to this rule in a policy from `source`.
    pub fn rule_ref(&self, source: &str) -> RuleRef {
        RuleRef {
            name: self.name.clone(),
            line: self.line,
            source: source.to_string(),
        }
    }
}

/// The blast-radius breaker: at most this many automatic revocations in a window (design
/// invariant 7). Past it, actions wait for a person and owners are told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Limits {
    /// Automatic revocations per window, all owners together (0: every one waits).
    pub max_revocations: u32,
    /// Automatic revocations per window for one owner.
    pub max_revocations_per_owner: u32,
    /// The sliding window.
    #[serde(serialize_with = "duration::serialize")]
    pub window: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_revocations: 10,
            max_revocations_per_owner: 5,
            window: Duration::hours(1),
        }
    }
}

/// A loaded, validated policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Policy {
    /// The file it was read from, or [`BUILTIN_SOURCE`].
    pub source: String,
    /// Rules in file order; the first that matches a signal decides it.
    pub rules: Vec<Rule>,
    /// The blast-radius breaker.
    pub limits: Limits,
    /// A case waiting for approval this close to its deadline is escalated again.
    #[serde(serialize_with = "duration::serialize")]
    pub escalate_margin: Duration,
    /// Owner -> the Unix user names that may approve that owner's cases.
    pub owners: BTreeMap<String, Vec<String>>,
}

/// The default margin before a deadline at which a waiting case is escalated again.
pub const DEFAULT_ESCALATE_MARGIN_HOURS: i64 = 6;

/// A policy file that cannot be used, naming the file, the line, the rule and the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    /// The policy file.
    pub file: PathBuf,
    /// The line (1-based) the problem is on, when it is about one.
    pub line: Option<usize>,
    /// The rule's name, when the problem is inside a rule.
    pub rule: Option<String>,
    /// The field, when the problem is about one (`action`, `limits.window`).
    pub field: Option<String>,
    /// What is wrong, and what to write instead.
    pub message: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        f.write_str(": ")?;
        match (&self.rule, &self.field) {
            (Some(r), Some(field)) => write!(f, "rule `{r}` field `{field}`: ")?,
            (Some(r), None) => write!(f, "rule `{r}`: ")?,
            (None, Some(field)) => write!(f, "field `{field}`: ")?,
            (None, None) => {}
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for PolicyError {}

impl Policy {
    /// The built-in default policy (`config/policy.toml`).
    pub fn builtin() -> Self {
        // The default file ships with the binary and a unit test parses it, so this cannot
        // fail at run time.
        #[allow(clippy::expect_used)]
        let mut policy = Self::parse(Path::new(BUILTIN_SOURCE), DEFAULT_POLICY)
            .expect("the built-in default policy is valid");
        policy.source = BUILTIN_SOURCE.to_string();
        policy
    }

    /// Parses and validates policy text; `path` names the file in errors and decisions.
    pub fn parse(path: &Path, text: &str) -> Result<Self, PolicyError> {
        parse::parse(path, text)
    }

    /// Reads and validates a policy file.
    pub fn from_file(path: &Path) -> Result<Self, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|e| PolicyError {
            file: path.to_path_buf(),
            line: None,
            rule: None,
            field: None,
            message: format!("cannot read the policy: {e}"),
        })?;
        Self::parse(path, &text)
    }

    /// The configured policy file, or the built-in default when none is configured.
    pub fn load(path: Option<&Path>) -> Result<Self, PolicyError> {
        match path {
            Some(path) => Self::from_file(path),
            None => Ok(Self::builtin()),
        }
    }

    /// The first rule that matches `signal` on `entry`.
    pub fn rule_for(&self, signal: &Signal, entry: &ManagedCert) -> Option<&Rule> {
        self.rules
            .iter()
            .find(|r| r.matches(&signal.check, &signal.family, signal.confidence, entry))
    }

    /// The Unix user names that may approve `owner`'s cases; empty means any user.
    pub fn approvers(&self, owner: &str) -> &[String] {
        self.owners
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(owner))
            .map_or(&[], |(_, v)| v.as_slice())
    }

    /// The reference decisions carry for a signal no rule matched.
    pub fn no_rule(&self) -> RuleRef {
        RuleRef {
            name: NO_RULE.to_string(),
            line: 0,
            source: self.source.clone(),
        }
    }
}
