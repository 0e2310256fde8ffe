//! Reading a policy file: TOML with spans (so every error names its line), every field
//! checked against the finding vocabulary, then the whole rule list checked for rules that
//! can never apply.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::Path;

use certresponder_inventory::{CertKind, Trust, did_you_mean};
use certresponder_issuers::RevocationReason;
use chrono::Duration;
use toml_edit::{Item, TableLike, Value};

use super::vocab::{self, CHECKS, CONFIDENCES, FAMILIES, REASONS};
use super::{
    Action, Approval, DEFAULT_ESCALATE_MARGIN_HOURS, Limits, Policy, PolicyError, Rule, duration,
};
use crate::signals::Confidence;

const TOP_FIELDS: &[&str] = &["limits", "approvals", "owners", "rule"];
const LIMIT_FIELDS: &[&str] = &["max_revocations", "max_revocations_per_owner", "window"];
const APPROVAL_FIELDS: &[&str] = &["escalate_before_deadline"];
const OWNER_FIELDS: &[&str] = &["approvers"];
const RULE_FIELDS: &[&str] = &[
    "name",
    "checks",
    "families",
    "min_confidence",
    "tags",
    "kinds",
    "owners",
    "action",
    "approval",
    "reason",
    "contain_first",
    "deadline",
    "trust",
    "revoke_short_lived",
];

/// Where errors point: the file, and the text to turn spans into line numbers.
struct Src<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Src<'_> {
    fn line(&self, span: Option<Range<usize>>) -> Option<usize> {
        let start = span?.start.min(self.text.len());
        let before = self.text.get(..start)?;
        Some(before.matches('\n').count() + 1)
    }

    fn err(
        &self,
        line: Option<usize>,
        rule: Option<&str>,
        field: Option<&str>,
        message: impl Into<String>,
    ) -> PolicyError {
        PolicyError {
            file: self.path.to_path_buf(),
            line,
            rule: rule.map(str::to_string),
            field: field.map(str::to_string),
            message: message.into(),
        }
    }

    /// The line of `key` in `table`: its key, or failing that its value.
    fn key_line(&self, table: &dyn TableLike, key: &str) -> Option<usize> {
        let (k, item) = table.get_key_value(key)?;
        self.line(k.span().or_else(|| item.span()))
    }
}

/// "unknown field; did you mean `x`?" or the list of known names.
fn unknown(what: &str, name: &str, known: &[&str]) -> String {
    match did_you_mean(name, known) {
        Some(s) => format!("unknown {what} `{name}`; did you mean `{s}`?"),
        None => format!("unknown {what} `{name}` (known: {})", known.join(", ")),
    }
}

fn string(item: &Item) -> Result<String, String> {
    match item.as_str() {
        Some(s) if !s.trim().is_empty() => Ok(s.to_string()),
        Some(_) => Err("must not be empty".into()),
        None => Err(format!("must be a string, found {}", item.type_name())),
    }
}

fn string_list(item: &Item) -> Result<Vec<String>, String> {
    let Some(array) = item.as_array() else {
        return Err(format!(
            "must be an array of strings such as [\"a\", \"b\"], found {}",
            item.type_name()
        ));
    };
    let mut out = Vec::new();
    for v in array.iter() {
        match v.as_str() {
            Some(s) if !s.trim().is_empty() => {
                if !out.iter().any(|o| o == s) {
                    out.push(s.to_string());
                }
            }
            Some(_) => return Err("must not contain an empty string".into()),
            None => {
                return Err(format!(
                    "must be an array of strings, found an element of type {}",
                    v.type_name()
                ));
            }
        }
    }
    Ok(out)
}

fn count(item: &Item) -> Result<u32, String> {
    match item.as_integer() {
        Some(n) => u32::try_from(n)
            .map_err(|_| format!("must be a whole number from 0 to {}, found {n}", u32::MAX)),
        None => Err(format!(
            "must be a whole number, found {}",
            item.type_name()
        )),
    }
}

fn positive_duration(item: &Item) -> Result<Duration, String> {
    let d = duration::parse(&string(item)?)?;
    if d <= Duration::zero() {
        return Err("must be longer than zero".into());
    }
    Ok(d)
}

/// A table-like item (a `[table]`, an inline table or dotted keys), or an error.
fn table<'a>(item: &'a Item, written: &str) -> Result<&'a dyn TableLike, String> {
    item.as_table_like()
        .ok_or_else(|| format!("must be a table, written {written}"))
}

/// Parses and validates a policy.
pub(super) fn parse(path: &Path, text: &str) -> Result<Policy, PolicyError> {
    let src = Src { path, text };
    let doc = toml_edit::Document::parse(text).map_err(|e| {
        src.err(
            src.line(e.span()),
            None,
            None,
            format!("not valid TOML: {}", e.message().trim().replace('\n', " ")),
        )
    })?;
    let root = doc.as_table();
    for (key, _) in root.iter() {
        if !TOP_FIELDS.contains(&key) {
            return Err(src.err(
                src.key_line(root, key),
                None,
                Some(key),
                unknown("field", key, TOP_FIELDS),
            ));
        }
    }
    let limits = match root.get("limits") {
        None => Limits::default(),
        Some(item) => parse_limits(&src, root, item)?,
    };
    let escalate_margin = match root.get("approvals") {
        None => Duration::hours(DEFAULT_ESCALATE_MARGIN_HOURS),
        Some(item) => parse_approvals(&src, root, item)?,
    };
    let owners = match root.get("owners") {
        None => BTreeMap::new(),
        Some(item) => parse_owners(&src, root, item)?,
    };
    let rules = parse_rules(&src, root)?;
    Ok(Policy {
        source: path.display().to_string(),
        rules,
        limits,
        escalate_margin,
        owners,
    })
}

fn parse_limits(src: &Src<'_>, root: &dyn TableLike, item: &Item) -> Result<Limits, PolicyError> {
    let t = table(item, "[limits]")
        .map_err(|m| src.err(src.key_line(root, "limits"), None, Some("limits"), m))?;
    let mut limits = Limits::default();
    for (key, value) in t.iter() {
        let field = format!("limits.{key}");
        let at = |m: String| src.err(src.key_line(t, key), None, Some(&field), m);
        match key {
            "max_revocations" => limits.max_revocations = count(value).map_err(at)?,
            "max_revocations_per_owner" => {
                limits.max_revocations_per_owner = count(value).map_err(at)?;
            }
            "window" => limits.window = positive_duration(value).map_err(at)?,
            _ => return Err(at(unknown("field", key, LIMIT_FIELDS))),
        }
    }
    Ok(limits)
}

fn parse_approvals(
    src: &Src<'_>,
    root: &dyn TableLike,
    item: &Item,
) -> Result<Duration, PolicyError> {
    let t = table(item, "[approvals]")
        .map_err(|m| src.err(src.key_line(root, "approvals"), None, Some("approvals"), m))?;
    let mut margin = Duration::hours(DEFAULT_ESCALATE_MARGIN_HOURS);
    for (key, value) in t.iter() {
        let field = format!("approvals.{key}");
        let at = |m: String| src.err(src.key_line(t, key), None, Some(&field), m);
        match key {
            "escalate_before_deadline" => {
                margin = string(value)
                    .and_then(|s| duration::parse(&s))
                    .map_err(at)?;
            }
            _ => return Err(at(unknown("field", key, APPROVAL_FIELDS))),
        }
    }
    Ok(margin)
}

fn parse_owners(
    src: &Src<'_>,
    root: &dyn TableLike,
    item: &Item,
) -> Result<BTreeMap<String, Vec<String>>, PolicyError> {
    let t = table(item, "[owners.\"team@example.com\"]")
        .map_err(|m| src.err(src.key_line(root, "owners"), None, Some("owners"), m))?;
    let mut owners = BTreeMap::new();
    for (owner, value) in t.iter() {
        let field = format!("owners.\"{owner}\"");
        let line = src.key_line(t, owner);
        let o = table(value, &format!("[owners.\"{owner}\"]"))
            .map_err(|m| src.err(line, None, Some(&field), m))?;
        let mut approvers = Vec::new();
        for (key, v) in o.iter() {
            let sub = format!("{field}.{key}");
            let at = |m: String| src.err(src.key_line(o, key).or(line), None, Some(&sub), m);
            match key {
                "approvers" => {
                    approvers = string_list(v).map_err(at)?;
                    if approvers.is_empty() {
                        return Err(at(
                            "must name at least one user; to let any user approve this owner's cases, leave the owner out".into(),
                        ));
                    }
                }
                _ => return Err(at(unknown("field", key, OWNER_FIELDS))),
            }
        }
        if owners
            .keys()
            .any(|k: &String| k.eq_ignore_ascii_case(owner))
        {
            return Err(src.err(
                line,
                None,
                Some(&field),
                "is listed twice (owners are matched ignoring case)".to_string(),
            ));
        }
        owners.insert(owner.to_string(), approvers);
    }
    Ok(owners)
}

fn parse_rules(src: &Src<'_>, root: &dyn TableLike) -> Result<Vec<Rule>, PolicyError> {
    let no_rules = || {
        src.err(
            None,
            None,
            None,
            "the policy has no rules: add at least one [[rule]] (end with a catch-all rule with action = \"escalate\")",
        )
    };
    let Some(item) = root.get("rule") else {
        return Err(no_rules());
    };
    let mut tables: Vec<(Option<usize>, &dyn TableLike)> = Vec::new();
    match item {
        Item::ArrayOfTables(aot) => {
            for t in aot.iter() {
                tables.push((src.line(t.span()), t as &dyn TableLike));
            }
        }
        Item::Value(Value::Array(a)) => {
            for (i, v) in a.iter().enumerate() {
                let Some(t) = v.as_inline_table() else {
                    return Err(src.err(
                        src.line(v.span()),
                        None,
                        Some(&format!("rule[{i}]")),
                        "must be a table, written [[rule]]",
                    ));
                };
                tables.push((src.line(t.span()), t as &dyn TableLike));
            }
        }
        _ => {
            return Err(src.err(
                src.key_line(root, "rule"),
                None,
                Some("rule"),
                "must be an array of tables, written [[rule]]",
            ));
        }
    }
    if tables.is_empty() {
        return Err(no_rules());
    }
    let mut rules: Vec<Rule> = Vec::new();
    for (line, t) in tables {
        let rule = parse_rule(src, line, t)?;
        if let Some(other) = rules.iter().find(|r| r.name == rule.name) {
            return Err(src.err(
                src.key_line(t, "name").or(line),
                Some(&rule.name),
                Some("name"),
                format!(
                    "the name is already used by the rule at line {}; rule names must be unique",
                    other.line
                ),
            ));
        }
        if let Some(earlier) = rules.iter().find(|r| covers(r, &rule)) {
            return Err(src.err(
                line,
                Some(&rule.name),
                None,
                format!(
                    "can never apply: rule `{}` (line {}) comes first and matches every signal this one matches; move `{}` above `{}` or narrow `{}`",
                    earlier.name, earlier.line, rule.name, earlier.name, earlier.name
                ),
            ));
        }
        rules.push(rule);
    }
    Ok(rules)
}

/// Parses one `[[rule]]` table whose header is on `line`.
fn parse_rule(src: &Src<'_>, line: Option<usize>, t: &dyn TableLike) -> Result<Rule, PolicyError> {
    let name = match t.get("name") {
        None => {
            return Err(src.err(
                line,
                None,
                Some("name"),
                "missing: every rule needs a unique name",
            ));
        }
        Some(v) => {
            string(v).map_err(|m| src.err(src.key_line(t, "name"), None, Some("name"), m))?
        }
    };
    let field_line = |key: &str| src.key_line(t, key).or(line);
    let at = |key: &str, m: String| src.err(field_line(key), Some(&name), Some(key), m);
    for (key, _) in t.iter() {
        if !RULE_FIELDS.contains(&key) {
            return Err(at(key, unknown("field", key, RULE_FIELDS)));
        }
    }
    let list = |key: &str, known: &[&str], what: &str| -> Result<Vec<String>, PolicyError> {
        let Some(v) = t.get(key) else {
            return Ok(Vec::new());
        };
        let items = string_list(v).map_err(|m| at(key, m))?;
        if items.is_empty() && !known.is_empty() {
            return Err(at(
                key,
                "an empty list matches nothing; remove the field to match any".into(),
            ));
        }
        if !known.is_empty()
            && let Some(bad) = items.iter().find(|i| !known.contains(&i.as_str()))
        {
            return Err(at(key, unknown(what, bad, known)));
        }
        Ok(items)
    };
    let check_names = vocab::check_names();
    let checks = list("checks", &check_names, "check")?;
    let families = list("families", FAMILIES, "family")?;
    let kinds = list("kinds", CertKind::NAMES, "certificate kind")?
        .iter()
        .filter_map(|k| CertKind::parse(k))
        .collect::<Vec<_>>();
    let tags = list("tags", &[], "tag")?;
    let owners = match t.get("owners") {
        None => Vec::new(),
        Some(v) => {
            let o = string_list(v).map_err(|m| at("owners", m))?;
            if o.is_empty() {
                return Err(at(
                    "owners",
                    "an empty list matches nothing; remove the field to match any".into(),
                ));
            }
            o
        }
    };
    let min_confidence = match t.get("min_confidence") {
        None => None,
        Some(v) => {
            let s = string(v).map_err(|m| at("min_confidence", m))?;
            Some(
                vocab::parse_confidence(&s)
                    .ok_or_else(|| at("min_confidence", unknown("confidence", &s, CONFIDENCES)))?,
            )
        }
    };
    let action = match t.get("action") {
        None => {
            return Err(src.err(
                line,
                Some(&name),
                Some("action"),
                format!(
                    "missing: say what the rule does ({})",
                    Action::NAMES.join(", ")
                ),
            ));
        }
        Some(v) => {
            let s = string(v).map_err(|m| at("action", m))?;
            Action::parse(&s).ok_or_else(|| at("action", unknown("action", &s, Action::NAMES)))?
        }
    };
    let approval = match t.get("approval") {
        None => Approval::Auto,
        Some(v) => {
            let s = string(v).map_err(|m| at("approval", m))?;
            Approval::parse(&s)
                .ok_or_else(|| at("approval", unknown("approval", &s, Approval::NAMES)))?
        }
    };
    let reason = match t.get("reason") {
        None => None,
        Some(v) => {
            let s = string(v).map_err(|m| at("reason", m))?;
            let r = RevocationReason::parse(&s)
                .ok_or_else(|| at("reason", unknown("revocation reason", &s, REASONS)))?;
            if !REASONS.contains(&r.name()) {
                return Err(at(
                    "reason",
                    format!(
                        "`{}` is not a reason a subscriber certificate may be revoked for (CA/B Forum Baseline Requirements §7.2.2); use one of {}",
                        r.name(),
                        REASONS.join(", ")
                    ),
                ));
            }
            Some(r)
        }
    };
    let contain_first = match t.get("contain_first") {
        None => false,
        Some(v) => v.as_bool().ok_or_else(|| {
            at(
                "contain_first",
                format!("must be true or false, found {}", v.type_name()),
            )
        })?,
    };
    let revoke_short_lived = match t.get("revoke_short_lived") {
        None => true,
        Some(v) => v.as_bool().ok_or_else(|| {
            at(
                "revoke_short_lived",
                format!("must be true or false, found {}", v.type_name()),
            )
        })?,
    };
    let deadline = match t.get("deadline") {
        None => None,
        Some(v) => Some(positive_duration(v).map_err(|m| at("deadline", m))?),
    };
    let trust = match t.get("trust") {
        None => None,
        Some(v) => {
            let s = string(v).map_err(|m| at("trust", m))?;
            Some(
                Trust::parse(&s)
                    .ok_or_else(|| at("trust", unknown("trust", &s, &["public", "private"])))?,
            )
        }
    };

    // Contradictions within the rule.
    if reason.is_some() && !action.revokes() {
        return Err(at(
            "reason",
            format!(
                "a revocation reason on a rule whose action `{action}` revokes nothing; remove it or use revoke_reissue or revoke"
            ),
        ));
    }
    if contain_first && action != Action::RevokeReissue {
        return Err(at(
            "contain_first",
            format!(
                "contain_first only applies to revoke_reissue (revoke the old certificate before deploying the new one), not to `{action}`"
            ),
        ));
    }
    if !revoke_short_lived && !action.revokes() {
        return Err(at(
            "revoke_short_lived",
            format!(
                "revoke_short_lived only applies to rules that revoke (revoke_reissue, revoke), not to `{action}`"
            ),
        ));
    }
    if approval != Approval::Auto && matches!(action, Action::Escalate | Action::Ignore) {
        return Err(at(
            "approval",
            format!("`{action}` runs nothing, so there is nothing to approve; remove `approval`"),
        ));
    }
    if deadline.is_some() && action == Action::Ignore {
        return Err(at(
            "deadline",
            "`ignore` does nothing, so it has no deadline; remove `deadline`".into(),
        ));
    }
    if !checks.is_empty()
        && !families.is_empty()
        && let Some(c) = checks
            .iter()
            .find(|c| vocab::family_of(c).is_some_and(|f| !families.iter().any(|x| x == f)))
    {
        return Err(at(
            "checks",
            format!(
                "check `{c}` is raised by the `{}` family, which `families` leaves out, so the rule could never match it",
                vocab::family_of(c).unwrap_or("?")
            ),
        ));
    }
    // The Baseline Requirements' clock (§4.9.1.1) binds publicly trusted certificates: a
    // rule that revokes them may not give itself longer.
    if action.revokes()
        && trust != Some(Trust::Private)
        && let Some(d) = deadline
    {
        let key_compromise = match reason {
            Some(r) => r == RevocationReason::KeyCompromise,
            // Without a reason of its own, a signal's implied one: keyCompromise for the
            // checks that prove a key compromised.
            None => CHECKS
                .iter()
                .filter(|c| checks.is_empty() || checks.iter().any(|x| x == c.check))
                .filter(|c| families.is_empty() || families.iter().any(|f| f == c.family))
                .any(|c| c.revokes && c.confidence == Confidence::Confirmed),
        };
        let (max, why) = if key_compromise {
            (Duration::hours(24), "24 hours for a compromised key")
        } else {
            (Duration::days(5), "5 days")
        };
        if d > max {
            return Err(at(
                "deadline",
                format!(
                    "{} is longer than the Baseline Requirements allow for revoking a publicly trusted certificate ({why}, §4.9.1.1); shorten it, or add trust = \"private\" if the rule is for a private PKI",
                    duration::format(d)
                ),
            ));
        }
    }
    if action.revokes()
        && approval == Approval::Auto
        && min_confidence.is_none_or(|c| c <= Confidence::Low)
    {
        return Err(src.err(
            line,
            Some(&name),
            None,
            format!(
                "`{action}` without approval could match low-confidence signals; low confidence must never act on its own: set min_confidence = \"medium\" or higher, or require approval"
            ),
        ));
    }
    Ok(Rule {
        name,
        line: line.unwrap_or(0),
        checks,
        families,
        min_confidence,
        tags,
        kinds,
        owners,
        action,
        approval,
        reason,
        contain_first,
        deadline,
        trust,
        revoke_short_lived,
    })
}

/// The checks a rule can match, by the vocabulary; `None` when it matches any signal at all
/// (no `checks` and no `families`).
fn check_set(rule: &Rule) -> Option<BTreeSet<&'static str>> {
    if rule.checks.is_empty() && rule.families.is_empty() {
        return None;
    }
    Some(
        CHECKS
            .iter()
            .filter(|c| rule.checks.is_empty() || rule.checks.iter().any(|x| x == c.check))
            .filter(|c| rule.families.is_empty() || rule.families.iter().any(|f| f == c.family))
            .map(|c| c.check)
            .collect(),
    )
}

/// Whether `a` matches every signal `b` matches, on every dimension, so that `b` placed
/// after `a` can never apply.
fn covers(a: &Rule, b: &Rule) -> bool {
    let checks = match (check_set(a), check_set(b)) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(sa), Some(sb)) => sb.is_subset(&sa),
    };
    let confidence =
        a.min_confidence.unwrap_or(Confidence::Low) <= b.min_confidence.unwrap_or(Confidence::Low);
    let tags = a.tags.iter().all(|t| b.tags.contains(t));
    let kinds =
        a.kinds.is_empty() || (!b.kinds.is_empty() && b.kinds.iter().all(|k| a.kinds.contains(k)));
    let owners = a.owners.is_empty()
        || (!b.owners.is_empty() && b.owners.iter().all(|o| a.owners.contains(o)));
    let trust = a.trust.is_none() || a.trust == b.trust;
    checks && confidence && tags && kinds && owners && trust
}
