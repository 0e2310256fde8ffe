//! What the policy decided about a certificate, as a case stores it: the action, the
//! approval it needs, the rule behind it and how each signal was matched.

use std::fmt;
use std::path::Path;

use certresponder_issuers::RevocationReason;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::case::SequenceKind;
use super::signal::Confidence;

/// How decisions and errors name the built-in default policy.
pub const BUILTIN_SOURCE: &str = "built-in default policy";

/// The rule name decisions carry for a signal that no rule matched (it is escalated).
pub const NO_RULE: &str = "no rule matched";

/// What a rule does about the signals it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// New key and certificate, deployed and verified, then the old certificate revoked.
    RevokeReissue,
    /// New key and certificate; the old one is left to expire.
    Reissue,
    /// Revoke the current certificate, nothing else.
    Revoke,
    /// Tell a person; nothing is done automatically.
    Escalate,
    /// Nothing: the signal is expected (an accepted risk written down in the policy).
    Ignore,
}

impl Action {
    /// Every spelling, strongest first.
    pub const NAMES: &'static [&'static str] =
        &["revoke_reissue", "revoke", "reissue", "escalate", "ignore"];

    /// The snake_case name used in policies, the CLI and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RevokeReissue => "revoke_reissue",
            Self::Reissue => "reissue",
            Self::Revoke => "revoke",
            Self::Escalate => "escalate",
            Self::Ignore => "ignore",
        }
    }

    /// Parses the snake_case name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "revoke_reissue" => Some(Self::RevokeReissue),
            "reissue" => Some(Self::Reissue),
            "revoke" => Some(Self::Revoke),
            "escalate" => Some(Self::Escalate),
            "ignore" => Some(Self::Ignore),
            _ => None,
        }
    }

    /// The sequence that carries the action out; `None` for escalate and ignore.
    pub fn sequence(self) -> Option<SequenceKind> {
        match self {
            Self::RevokeReissue => Some(SequenceKind::RevokeReissue),
            Self::Reissue => Some(SequenceKind::Reissue),
            Self::Revoke => Some(SequenceKind::Revoke),
            Self::Escalate | Self::Ignore => None,
        }
    }

    /// Whether the action revokes the current certificate.
    pub fn revokes(self) -> bool {
        matches!(self, Self::RevokeReissue | Self::Revoke)
    }

    /// How strong the action is when several signals of one certificate disagree:
    /// revoke_reissue > revoke > reissue > escalate > ignore.
    /// Whether carrying out this action answers a signal whose rule says `other`: the same
    /// action, or a revoke-and-reissue for a signal that asks to reissue or to revoke. A
    /// signal whose rule says escalate or ignore is answered on its own, never by a case.
    pub fn answers(self, other: Action) -> bool {
        self == other
            || (self == Self::RevokeReissue && matches!(other, Self::Reissue | Self::Revoke))
    }

    /// How strong an action is: the strongest any signal asks for is the decision's.
    pub fn strength(self) -> u8 {
        match self {
            Self::RevokeReissue => 4,
            Self::Revoke => 3,
            Self::Reissue => 2,
            Self::Escalate => 1,
            Self::Ignore => 0,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who must agree before an action runs. Ordered from least to most strict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Approval {
    /// Nobody: the action runs on its own (within the blast-radius limits).
    Auto,
    /// One approver for the certificate's owner.
    Owner,
    /// Two different approvers.
    TwoPerson,
}

impl Approval {
    /// Every spelling.
    pub const NAMES: &'static [&'static str] = &["auto", "owner", "two_person"];

    /// The snake_case name used in policies, the CLI and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Owner => "owner",
            Self::TwoPerson => "two_person",
        }
    }

    /// Parses the snake_case name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "auto" => Some(Self::Auto),
            "owner" => Some(Self::Owner),
            "two_person" => Some(Self::TwoPerson),
            _ => None,
        }
    }

    /// How many distinct approvals the action needs: 0, 1 or 2.
    pub fn needed(self) -> usize {
        match self {
            Self::Auto => 0,
            Self::Owner => 1,
            Self::TwoPerson => 2,
        }
    }
}

impl fmt::Display for Approval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Names the rule behind a decision, so a case can say which line of which policy made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleRef {
    /// The rule's name ([`NO_RULE`] when no rule matched).
    pub name: String,
    /// The line of its `[[rule]]` header (0 when no rule matched).
    pub line: usize,
    /// The policy file, or [`BUILTIN_SOURCE`].
    pub source: String,
}

impl RuleRef {
    /// `rule `name` (policy.toml line 12)`, or `no rule matched` for the implicit escalation.
    pub fn describe(&self) -> String {
        if self.line == 0 {
            return self.name.clone();
        }
        let short = if self.source == BUILTIN_SOURCE {
            self.source.as_str()
        } else {
            Path::new(&self.source)
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or(&self.source)
        };
        format!("rule `{}` ({short} line {})", self.name, self.line)
    }
}

/// How one signal was matched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignalMatch {
    /// The signal's dedup key.
    pub signal: String,
    /// Its check id.
    pub check: String,
    /// Its confidence.
    pub confidence: Confidence,
    /// The rule that matched it (the implicit escalation when none did).
    pub rule: RuleRef,
    /// What that rule says to do.
    pub action: Action,
}

/// What to do about one certificate's open signals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// The strongest action any signal's rule asks for.
    pub action: Action,
    /// The strictest approval among the signals with that action.
    pub approval: Approval,
    /// The RFC 5280 reason, for actions that revoke.
    pub reason: Option<RevocationReason>,
    /// Revoke the old certificate before deploying the new one.
    pub contain_first: bool,
    /// Revoke the old certificate also when it is short-lived (false only when every rule
    /// behind the action says `revoke_short_lived = false`).
    #[serde(default = "yes")]
    pub revoke_short_lived: bool,
    /// When the action must be done: the earliest deadline among the signals with that
    /// action.
    pub deadline: Option<DateTime<Utc>>,
    /// The rule that set the action.
    pub rule: RuleRef,
    /// One line for a person: which signals, which rules.
    pub why: String,
    /// Dedup keys of the signals the decision answers: those whose rule's action it carries
    /// out (see [`Action::answers`]); the others are in `matches` and answered on their own.
    pub signals: Vec<String>,
    /// How each signal was matched, in the order given.
    pub matches: Vec<SignalMatch>,
}

fn yes() -> bool {
    true
}
