//! The end of the quickstart: one line per sample service saying what happened to it, read
//! back from the store, and the commands to try next.

use std::path::Path;

use certresponder_inventory::{Bundle, inspect};

use super::CliError;
use super::services::{REPORTED, SERVICES, WEAK};
use crate::govern::Governor;
use crate::policy::Approval;
use crate::records::case::{Case, CaseState};
use crate::signals::{Signal, SignalState};
use crate::store::Store;

/// Prints what happened to each service and what to try next.
pub(super) fn print(gov: &Governor, config_path: &Path) -> Result<(), CliError> {
    let store = gov.engine().store();
    let cases = store.list_cases()?;
    let signals = store.list_signals()?;
    let latest = |name: &str| cases.iter().filter(|c| c.cert == name).max_by_key(|c| c.id);
    println!("what happened");
    let width = SERVICES.iter().map(|s| s.name.len()).max().unwrap_or(0);
    for svc in SERVICES {
        let bundles = store.bundles(svc.name)?;
        let theirs: Vec<&Signal> = signals.iter().filter(|s| s.subject == svc.name).collect();
        let what = match latest(svc.name) {
            Some(case) => case_line(case, &theirs, &bundles),
            None => signals_line(&theirs, svc.owner, &bundles),
        };
        println!("  {:<width$}  {}: {what}", svc.name, svc.planted);
    }
    println!();
    println!("try next");
    let cmd = format!(
        "certresponder --config {}",
        shell_quote(&config_path.display().to_string())
    );
    let mut tips: Vec<(String, String)> = Vec::new();
    if let Some(case) = latest(REPORTED) {
        if case.state == CaseState::AwaitingApproval {
            tips.push((
                format!("{cmd} approve {}", case.id),
                format!(
                    "approve {REPORTED}'s case as its owner would (the demo policy lets any user approve): a new key and certificate, the old one revoked for keyCompromise as soon as the new one is issued, then deployed and verified"
                ),
            ));
        } else {
            tips.push((
                format!("{cmd} cases show {}", case.id),
                format!("{REPORTED}'s case, step by step"),
            ));
        }
    }
    if let Some(case) = latest(WEAK) {
        tips.push((
            format!("{cmd} cases show {}", case.id),
            format!(
                "{WEAK}'s evidence bundle: the signal, the decision and its rule, every step with its time"
            ),
        ));
    }
    tips.push((
        format!("{cmd} history {WEAK}"),
        format!("{WEAK}'s bundles, newest first, with their states"),
    ));
    if let Some(tip) = rollback_tip(store, &cmd)? {
        tips.push(tip);
    }
    tips.push((
        format!("{cmd} audit verify"),
        "check the hash-chained audit log that recorded all of the above".into(),
    ));
    for (command, why) in tips {
        println!("  {command}");
        println!("      {why}");
    }
    Ok(())
}

/// A bundle's key, as `RSA-2048`.
fn key_of(bundle: &Bundle) -> String {
    inspect::inspect_certificates(bundle.leaf_pem.as_bytes())
        .ok()
        .and_then(|certs| certs.into_iter().next())
        .map_or_else(|| "unreadable".into(), |c| c.key.describe())
}

/// The key of bundle `id`, or of the current bundle.
fn key_in(bundles: &[Bundle], id: Option<&str>) -> String {
    let found = match id {
        Some(id) => bundles.iter().find(|b| b.id == id),
        None => Bundle::current_of(bundles),
    };
    found.map_or_else(|| "unknown".into(), key_of)
}

/// "rsa_modulus_small -> case 1, revoke_reissue (superseded), rule `weak-parameters`: done".
fn case_line(case: &Case, signals: &[&Signal], bundles: &[Bundle]) -> String {
    let checks: Vec<&str> = signals
        .iter()
        .filter(|s| case.trigger.signals.contains(&s.dedup_key))
        .map(|s| s.check.as_str())
        .collect();
    let mut how = Vec::new();
    if let Some(r) = case.reason {
        how.push(r.name().to_string());
    }
    if case.contain_first {
        how.push("contain first".into());
    }
    let rule = case
        .decision
        .as_ref()
        .map(|d| format!(", rule `{}`", d.rule.name))
        .unwrap_or_default();
    let new_key = key_in(bundles, case.new_bundle.as_deref());
    let old_key = key_in(bundles, case.old_bundle.as_deref());
    let mut state = match case.state {
        CaseState::Done if case.kind.revokes() => format!(
            "done: new {new_key} key deployed and verified, the old {old_key} certificate revoked"
        ),
        CaseState::Done => format!("done: new {new_key} key deployed and verified"),
        CaseState::AwaitingApproval => {
            let who = match case.approval.as_ref().map(|a| a.required) {
                Some(Approval::TwoPerson) => "two people's approval",
                _ => "the owner's approval",
            };
            let deadline = case
                .deadline
                .map(|d| format!(" (deadline {})", d.format("%Y-%m-%d %H:%M UTC")))
                .unwrap_or_default();
            format!(
                "waits for {who}{deadline}; nothing changed yet ({} deployed)",
                key_in(bundles, None)
            )
        }
        CaseState::Running => "still running; `respond` resumes it".into(),
        CaseState::Failed => format!("failed: {}", case.error.as_deref().unwrap_or("")),
        CaseState::RevocationNeeded => format!(
            "replaced, but the old certificate is not revoked: {}",
            case.error.as_deref().unwrap_or("")
        ),
        CaseState::Unconfirmed => {
            "revoked, but the CA still reports the old certificate good; each CA check asks again"
                .into()
        }
        CaseState::Denied => "denied; nothing changed".into(),
    };
    let current = Bundle::current_of(bundles);
    if let Some(b) = current.filter(|b| {
        case.state == CaseState::Done && case.new_bundle.as_deref() != Some(b.id.as_str())
    }) {
        state.push_str(&format!(
            "; since rolled back to the {} bundle {}{}",
            key_of(b),
            b.id,
            if b.is_revoked() { " (revoked)" } else { "" }
        ));
    }
    format!(
        "{} -> case {}, {}{}{rule}: {state}{}",
        if checks.is_empty() {
            "signal".to_string()
        } else {
            checks.join(", ")
        },
        case.id,
        case.kind,
        if how.is_empty() {
            String::new()
        } else {
            format!(" ({})", how.join(", "))
        },
        if case.rolled_back {
            " (rolled back)"
        } else {
            ""
        }
    )
}

/// What the policy did with signals that opened no case.
fn signals_line(signals: &[&Signal], owner: &str, bundles: &[Bundle]) -> String {
    if let Some(s) = signals.iter().find(|s| s.handled.is_some()) {
        let h = s
            .handled
            .as_ref()
            .map(|h| (h.action.as_str(), h.rule.as_str()));
        let (action, rule) = h.unwrap_or_default();
        let confidence = super::confidence(s.confidence);
        return if action == "escalate" {
            format!(
                "{} ({confidence} confidence) -> escalated to {owner}, rule `{rule}`; no action taken",
                s.check
            )
        } else {
            format!(
                "{} ({confidence} confidence) -> {action}, rule `{rule}`",
                s.check
            )
        };
    }
    let open: Vec<&str> = signals
        .iter()
        .filter(|s| s.state == SignalState::Open)
        .map(|s| s.check.as_str())
        .collect();
    if open.is_empty() {
        format!("no signals, untouched ({})", key_in(bundles, None))
    } else {
        format!("{}: open, not decided yet", open.join(", "))
    }
}

/// The rollback command that works for the weak-key service now, and why.
fn rollback_tip(store: &dyn Store, cmd: &str) -> Result<Option<(String, String)>, CliError> {
    let bundles = store.bundles(WEAK)?;
    let Some(current) = Bundle::current_of(&bundles) else {
        return Ok(None);
    };
    let earlier: Vec<&Bundle> = bundles.iter().filter(|b| b.id != current.id).collect();
    // The same choice `rollback` makes: the latest earlier bundle that is not revoked.
    if let Some(b) = earlier.iter().rev().find(|b| !b.is_revoked()) {
        return Ok(Some((
            format!("{cmd} rollback {WEAK}"),
            format!("restore the earlier {} bundle {}", key_of(b), b.id),
        )));
    }
    Ok(earlier.last().map(|b| {
        (
            format!("{cmd} rollback {WEAK} --force"),
            format!(
                "restore the earlier {} bundle {}: it was revoked at the CA, so `rollback {WEAK}` alone refuses (clients that check revocation would reject it); --force restores it anyway",
                key_of(b),
                b.id
            ),
        )
    }))
}

/// The argument as a shell word: quoted when it holds anything but safe characters.
fn shell_quote(s: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "/._-+=:,@%".contains(c);
    if !s.is_empty() && s.chars().all(safe) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::signals::{Finding, Handled};

    #[test]
    fn an_escalated_anomaly_says_who_was_told_and_that_nothing_was_done() {
        let finding = Finding::warning(
            "key_file_permissions",
            "the key file is readable by others",
            serde_json::json!({}),
        );
        let mut signal = Signal::from_finding(
            "build-agent",
            "exposure",
            &finding,
            None,
            "scan",
            Utc::now(),
        );
        assert_eq!(
            signals_line(&[&signal], "team-ci@example.com", &[]),
            "key_file_permissions: open, not decided yet"
        );
        signal.handled = Some(Handled {
            action: "escalate".into(),
            rule: "escalate-everything-else".into(),
            why: "low confidence".into(),
            at: Utc::now(),
            deadline: None,
            reescalated_at: None,
        });
        assert_eq!(
            signals_line(&[&signal], "team-ci@example.com", &[]),
            "key_file_permissions (low confidence) -> escalated to team-ci@example.com, rule `escalate-everything-else`; no action taken"
        );
        assert_eq!(
            signals_line(&[], "team-ci@example.com", &[]),
            "no signals, untouched (unknown)"
        );
    }

    #[test]
    fn paths_are_quoted_only_when_needed() {
        assert_eq!(shell_quote("/tmp/demo/c.toml"), "/tmp/demo/c.toml");
        assert_eq!(shell_quote("/tmp/my demo/c.toml"), "'/tmp/my demo/c.toml'");
        assert_eq!(shell_quote("/tmp/it's"), r"'/tmp/it'\''s'");
    }
}
