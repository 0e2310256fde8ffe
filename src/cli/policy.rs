//! `certresponder policy {explain,check,show-default}`: what the response policy does about a
//! certificate's signal and why, whether a policy file is valid, and the default to start from.

use std::path::Path;
use std::process::ExitCode;

use certresponder_inventory::did_you_mean;
use clap::Subcommand;

use super::backend::Backend;
use super::table::{Cell, Tone, render};
use super::{CliError, input_error, load_config};
use crate::policy::vocab::{self, CONFIDENCES, confidence_name};
use crate::policy::{Action, Approval, DEFAULT_POLICY, Explanation, Policy, Rule, duration};
use crate::service::policy::{PolicySubject, SubjectArgs};

/// `policy` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum PolicyCommand {
    /// Show which rule applies to a check on a registered certificate, and why
    Explain {
        /// The certificate's inventory name
        name: String,
        /// A check id from the finding vocabulary (`fermat`, `expiring`, `key_exposed`, ...)
        check: String,
        /// Explain at this confidence [default: the open signal's, else the check's usual one]
        #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(CONFIDENCES))]
        confidence: Option<String>,
        /// Machine-readable output
        #[arg(long)]
        json: bool,
    },
    /// Validate the configured policy (or the built-in default) and list its rules
    #[command(
        after_help = "Exit status: 0 the policy is valid; 2 it is not (the error names the file, line and field)."
    )]
    Check {
        /// Machine-readable output
        #[arg(long)]
        json: bool,
    },
    /// Print the built-in default policy, to start your own from
    ShowDefault,
}

/// Runs a `policy` subcommand.
pub(crate) fn run(cmd: PolicyCommand, config: Option<&Path>) -> Result<ExitCode, CliError> {
    match cmd {
        PolicyCommand::Explain {
            name,
            check,
            confidence,
            json,
        } => explain(config, &name, &check, confidence.as_deref(), json),
        PolicyCommand::Check { json } => check(config, json),
        PolicyCommand::ShowDefault => {
            print!("{DEFAULT_POLICY}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn load_policy(cfg: &crate::config::Config) -> Result<Policy, CliError> {
    cfg.load_policy().map_err(|e| CliError::Input(e.into()))
}

fn explain(
    config: Option<&Path>,
    name: &str,
    check: &str,
    confidence: Option<&str>,
    json: bool,
) -> Result<ExitCode, CliError> {
    let names = vocab::check_names();
    let Some(info) = vocab::check_info(check) else {
        let hint = did_you_mean(check, &names)
            .map(|s| format!("; did you mean `{s}`?"))
            .unwrap_or_else(|| format!(" (checks: {})", names.join(", ")));
        return Err(input_error(format!("unknown check `{check}`{hint}")));
    };
    let confidence = confidence
        .map(|c| {
            vocab::parse_confidence(c).ok_or_else(|| {
                input_error(format!(
                    "--confidence `{c}`: use one of {}",
                    CONFIDENCES.join(", ")
                ))
            })
        })
        .transpose()?;
    let cfg = load_config(config)?;
    let policy = load_policy(&cfg)?;
    let subject = Backend::choose(cfg).call::<PolicySubject>(SubjectArgs {
        name: name.to_string(),
        check: check.to_string(),
    })?;
    let entry = &subject.record.entry;
    let open = subject.signal;
    let explanation = match open {
        Some(mut signal) => {
            if let Some(c) = confidence {
                signal.confidence = c;
            }
            policy.explain_signal(entry, &signal)
        }
        None => policy.explain(
            entry,
            check,
            info.family,
            confidence.unwrap_or(info.confidence),
        ),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&explanation)?);
    } else {
        print!("{}", explanation_text(&explanation));
    }
    Ok(ExitCode::SUCCESS)
}

fn explanation_text(e: &Explanation) -> String {
    let mut out = String::new();
    let tags = if e.tags.is_empty() {
        "none".to_string()
    } else {
        e.tags.join(", ")
    };
    out.push_str(&format!(
        "certificate    {} (owner {}, kind {}, tags {tags})\n",
        e.cert, e.owner, e.kind
    ));
    let origin = match &e.signal {
        Some(key) => format!("the open signal {}", key.get(..12).unwrap_or(key)),
        None => "no open signal: the check's usual family and confidence".to_string(),
    };
    out.push_str(&format!(
        "signal         {} (family {}, confidence {}; {origin})\n",
        e.check,
        e.family,
        confidence_name(e.confidence)
    ));
    out.push_str(&format!("policy         {}\n\n", e.source));
    out.push_str("rules tried, in order:\n");
    for r in &e.rules {
        let verdict = if r.matched { "matches" } else { "no" };
        out.push_str(&format!(
            "  line {:<4} {:<28} {verdict}: {}\n",
            r.line, r.name, r.why
        ));
    }
    if e.rules.is_empty() || e.rules.iter().all(|r| !r.matched) {
        out.push_str("  no rule matched: the signal is escalated to a person\n");
    }
    out.push('\n');
    out.push_str(&format!("applies        {}\n", e.rule.describe()));
    out.push_str(&format!("why            {}\n", e.why));
    out.push_str(&format!("action         {}\n", e.action));
    let approval = match e.approval {
        Approval::Auto => "auto (no approval needed)".to_string(),
        a => {
            let who = if e.approvers.is_empty() {
                "any user".to_string()
            } else {
                e.approvers.join(", ")
            };
            format!("{a} ({} approval(s) from: {who})", a.needed())
        }
    };
    out.push_str(&format!("approval       {approval}\n"));
    out.push_str(&format!(
        "reason         {}\n",
        e.reason.map_or("-", |r| r.name())
    ));
    if e.action == Action::RevokeReissue {
        let order = if e.contain_first {
            "yes: the old certificate is revoked as soon as the new one is issued"
        } else {
            "no: the new certificate is deployed and verified before the old one is revoked"
        };
        out.push_str(&format!("contain first  {order}\n"));
    }
    let deadline = match (e.deadline, e.deadline_at) {
        (Some(d), Some(at)) => format!(
            "{} after detection ({})",
            duration::format(d),
            at.format("%Y-%m-%d %H:%M UTC")
        ),
        (Some(d), None) => format!("{} after detection", duration::format(d)),
        _ => "none".to_string(),
    };
    out.push_str(&format!("deadline       {deadline}\n"));
    out
}

fn conditions(r: &Rule) -> String {
    let mut parts = Vec::new();
    if !r.checks.is_empty() {
        parts.push(format!("checks {}", r.checks.join(",")));
    }
    if !r.families.is_empty() {
        parts.push(format!("families {}", r.families.join(",")));
    }
    if let Some(c) = r.min_confidence {
        parts.push(format!("confidence >= {}", confidence_name(c)));
    }
    if !r.tags.is_empty() {
        parts.push(format!("tags {}", r.tags.join(",")));
    }
    if !r.kinds.is_empty() {
        let kinds: Vec<&str> = r.kinds.iter().map(|k| k.as_str()).collect();
        parts.push(format!("kinds {}", kinds.join(",")));
    }
    if !r.owners.is_empty() {
        parts.push(format!("owners {}", r.owners.join(",")));
    }
    if parts.is_empty() {
        "any signal".into()
    } else {
        parts.join("; ")
    }
}

fn check(config: Option<&Path>, json: bool) -> Result<ExitCode, CliError> {
    let cfg = load_config(config)?;
    let policy = load_policy(&cfg)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&policy)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("policy: {} (valid)", policy.source);
    let l = &policy.limits;
    println!(
        "limits: at most {} automatic revocations per {} ({} per owner); cases waiting for approval are escalated again {} before their deadline",
        l.max_revocations,
        duration::format(l.window),
        l.max_revocations_per_owner,
        duration::format(policy.escalate_margin)
    );
    for (owner, approvers) in &policy.owners {
        let who = if approvers.is_empty() {
            "any user".to_string()
        } else {
            approvers.join(", ")
        };
        println!("approvers for {owner}: {who}");
    }
    println!();
    let rows: Vec<Vec<Cell>> = policy
        .rules
        .iter()
        .map(|r| {
            let tone = match (r.action.revokes(), r.approval) {
                (true, Approval::Auto) => Tone::Alert,
                (true, _) => Tone::Warn,
                _ => Tone::Plain,
            };
            vec![
                Cell::plain(r.line.to_string()),
                Cell::plain(r.name.clone()),
                Cell::toned(r.action.as_str(), tone),
                Cell::plain(r.approval.as_str()),
                Cell::plain(r.reason.map_or("-", |x| x.name())),
                Cell::plain(if r.contain_first { "yes" } else { "-" }),
                Cell::plain(r.deadline.map_or_else(|| "-".into(), duration::format)),
                Cell::plain(conditions(r)),
            ]
        })
        .collect();
    print!(
        "{}",
        render(
            &[
                "LINE", "RULE", "ACTION", "APPROVAL", "REASON", "CONTAIN", "DEADLINE", "MATCHES"
            ],
            &rows
        )
    );
    println!("signals no rule matches: escalate");
    Ok(ExitCode::SUCCESS)
}
