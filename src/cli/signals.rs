//! `certresponder scan` and `certresponder signals [suppress]`.

use std::path::Path;
use std::process::ExitCode;

use chrono::{DateTime, NaiveDate, Utc};
use clap::Subcommand;
use serde_json::json;

use super::inventory::open_store;
use super::table::{Cell, Tone, render};
use super::{CliError, input_error, load_config};
use crate::policy::vocab::{self, CheckInfo};
use crate::signals::scan::scan;
use crate::signals::{Confidence, Finding, Signal, SignalState};
use crate::store::{Store, StoreError};

/// Exit status of `scan` when open signals remain.
pub(crate) const OPEN_SIGNALS: u8 = 3;

#[derive(Debug, Subcommand)]
pub(crate) enum SignalsAction {
    /// Silence a known false positive until a date
    Suppress {
        /// Signal id (or a unique prefix of it)
        id: String,
        /// Last day of the suppression (YYYY-MM-DD, UTC) or an RFC 3339 time
        #[arg(long)]
        until: String,
        /// Why
        #[arg(long)]
        reason: String,
    },
}

fn tone(s: &Signal, now: DateTime<Utc>) -> Tone {
    if !s.is_open(now) {
        Tone::Plain
    } else if s.confidence >= Confidence::High {
        Tone::Alert
    } else {
        Tone::Warn
    }
}

fn table(signals: &[&Signal], now: DateTime<Utc>) -> String {
    let rows: Vec<Vec<Cell>> = signals
        .iter()
        .map(|s| {
            let t = tone(s, now);
            vec![
                Cell::plain(s.id.clone()),
                Cell::plain(s.subject.clone()),
                Cell::toned(s.check.clone(), t),
                Cell::toned(format!("{:?}", s.confidence).to_lowercase(), t),
                Cell::plain(match (&s.handled, s.state_name(now)) {
                    (Some(h), "open") => match h.action.as_str() {
                        "escalate" => "open (escalated)".to_string(),
                        "ignore" => "open (ignored)".to_string(),
                        "blocked" => "open (escalated: cannot act)".to_string(),
                        other => format!("open ({other})"),
                    },
                    (_, state) => state.to_string(),
                }),
                Cell::plain(s.detected_at.format("%Y-%m-%d %H:%M").to_string()),
                Cell::plain(s.message.clone()),
            ]
        })
        .collect();
    render(
        &[
            "ID",
            "CERT",
            "CHECK",
            "CONFIDENCE",
            "STATE",
            "DETECTED",
            "MESSAGE",
        ],
        &rows,
    )
}

pub(crate) fn run_scan(
    config: Option<&Path>,
    json: bool,
    no_ca: bool,
) -> Result<ExitCode, CliError> {
    let cfg = load_config(config)?;
    if super::remote::daemon_running(&cfg) {
        let jobs: &[&str] = if no_ca {
            &["scan"]
        } else {
            &["scan", "ca_check"]
        };
        return super::remote::run_jobs(&cfg, jobs, json);
    }
    let store = open_store(&cfg)?;
    let now = Utc::now();
    let mut report = scan(&store, &cfg, now)?;
    let ca = if no_ca {
        None
    } else {
        Some(ca_pass(&cfg, &store, now)?)
    };
    if let Some(ca) = &ca {
        report.new.extend(ca.signals.new.iter().cloned());
        report
            .seen_again
            .extend(ca.signals.seen_again.iter().cloned());
        report.resolved.extend(ca.signals.resolved.iter().cloned());
    }
    let open = report.open(now);
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "scanned": report.scanned,
                "new": report.new,
                "seen_again": report.seen_again,
                "resolved": report.resolved,
                "open": open.len(),
                "ca_checked": ca.as_ref().map(|c| c.checked),
                "ca_problems": ca.as_ref().map(|c| &c.problems),
                "renewals_scheduled": ca.as_ref().map(|c| &c.scheduled),
            }))?
        );
    } else {
        println!(
            "scanned {} certificate{}: {} new signal{}, {} seen again, {} resolved",
            report.scanned,
            if report.scanned == 1 { "" } else { "s" },
            report.new.len(),
            if report.new.len() == 1 { "" } else { "s" },
            report.seen_again.len(),
            report.resolved.len()
        );
        if let Some(ca) = &ca {
            for p in &ca.problems {
                println!(
                    "{}: {} could not be checked: {}",
                    p.cert, p.check, p.message
                );
            }
            for s in &ca.scheduled {
                println!(
                    "{}: renewal scheduled for {} (the CA's window: {} to {})",
                    s.cert,
                    s.renew_at.format("%Y-%m-%d %H:%M UTC"),
                    s.window_start.format("%Y-%m-%d %H:%M UTC"),
                    s.window_end.format("%Y-%m-%d %H:%M UTC")
                );
            }
        }
        if !open.is_empty() {
            print!("{}", table(&open, now));
        }
    }
    Ok(if open.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(OPEN_SIGNALS)
    })
}

/// The CA-side checks (revocation, ARI) over the registered certificates, through the
/// configured issuers. An issuer that cannot be set up is reported and its certificates are
/// checked by their CRLs alone.
pub(crate) fn ca_pass(
    cfg: &crate::config::Config,
    store: &crate::store::SledStore,
    now: DateTime<Utc>,
) -> Result<crate::signals::ca::CaReport, CliError> {
    let mut issuers = std::collections::BTreeMap::new();
    for spec in &cfg.issuers {
        // An internal CA not created yet has signed nothing; asking it would create it.
        if let certresponder_issuers::config::IssuerKind::InternalCa(c) = &spec.kind
            && !c.dir.join("ca.pem").exists()
        {
            continue;
        }
        match crate::issuers::build_one(cfg, spec, store) {
            Ok(i) => {
                issuers.insert(spec.id.clone(), i);
            }
            Err(e) => eprintln!(
                "issuer `{}` cannot be set up, so its status and renewal information are not asked: {e}",
                spec.id
            ),
        }
    }
    let rt = super::respond::runtime()?;
    Ok(rt.block_on(crate::signals::ca::run(store, &issuers, now))?)
}

fn parse_until(s: &str) -> Result<DateTime<Utc>, CliError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(23, 59, 59))
        .map(|t| t.and_utc())
        .ok_or_else(|| {
            input_error(format!(
                "--until `{s}`: expected YYYY-MM-DD or an RFC 3339 time"
            ))
        })
}

/// The stored signals `signals` lists: all but the resolved ones (with `all`, every one),
/// highest confidence first, then oldest first.
pub(crate) fn listed(store: &dyn Store, all: bool) -> Result<Vec<Signal>, StoreError> {
    let mut shown: Vec<Signal> = store
        .list_signals()?
        .into_iter()
        .filter(|s| all || !matches!(s.state, SignalState::Resolved { .. }))
        .collect();
    shown.sort_by(|a, b| {
        b.confidence
            .cmp(&a.confidence)
            .then(a.detected_at.cmp(&b.detected_at))
    });
    Ok(shown)
}

fn print_list(
    shown: &[Signal],
    all: bool,
    json: bool,
    now: DateTime<Utc>,
) -> Result<ExitCode, CliError> {
    if json {
        println!("{}", serde_json::to_string_pretty(&shown)?);
    } else if shown.is_empty() {
        println!(
            "no signals{}",
            if all {
                ""
            } else {
                " (resolved ones are shown with --all)"
            }
        );
    } else {
        let refs: Vec<&Signal> = shown.iter().collect();
        print!("{}", table(&refs, now));
    }
    Ok(ExitCode::SUCCESS)
}

/// A signal reported from outside: a person, a SIEM or a secret scanner (the control
/// socket's `POST /v1/signals`), already checked against the inventory and the vocabulary.
#[derive(Debug, Clone)]
pub(crate) struct Reported {
    /// The certificate's inventory name.
    pub cert: String,
    /// The check, from the finding vocabulary.
    pub check: &'static CheckInfo,
    /// How sure the reporter is.
    pub confidence: Confidence,
    /// One line for a person.
    pub message: String,
    /// What the reporter attached (kept under `details` in the signal's evidence).
    pub details: serde_json::Value,
    /// What raised it (a scanner's name, `api`).
    pub source: String,
}

/// Records a reported finding as an open signal about the certificate's current bundle,
/// with the reporter's identity; returns the signal as stored. A report of what an open,
/// unanswered signal already says counts as seeing it again; one about a signal that was
/// answered (its case failed or was denied, or it was escalated) is new evidence and gets
/// a signal of its own. A suppression a person set stays in force.
pub(crate) fn record_reported(
    store: &dyn Store,
    r: &Reported,
    reporter: &str,
) -> Result<Signal, StoreError> {
    let now = Utc::now();
    let bundles = store.bundles(&r.cert)?;
    let current = certresponder_inventory::Bundle::current_of(&bundles);
    let (reason, hours) = vocab::implied(r.check.check, r.confidence);
    let finding = Finding {
        check: r.check.check,
        confidence: r.confidence,
        message: r.message.clone(),
        revocation_reason: reason,
        deadline_hours: hours,
        evidence: json!({
            "reporter": reporter,
            "source": r.source,
            "bundle": current.map(|b| b.id.clone()),
            "details": r.details,
        }),
    };
    let fp = current.map(|b| b.fingerprints.cert_sha256.clone());
    let signal = Signal::from_finding(
        &r.cert,
        r.check.family,
        &finding,
        fp.as_deref(),
        &r.source,
        now,
    );
    store_reported(store, signal, fp.as_deref(), &r.source, now, true, reporter)
}

/// Stores a signal somebody reported about the bundle with fingerprint `fp`, from
/// `source`. When a signal with its key was already answered by a case or handled, the
/// report is new evidence and gets a key of its own; otherwise it counts as seen again
/// (keeping a suppression still running when `keep_suppression`). Recorded as `new` by
/// `reporter`.
pub(crate) fn store_reported(
    store: &dyn Store,
    mut signal: Signal,
    fp: Option<&str>,
    source: &str,
    now: DateTime<Utc>,
    keep_suppression: bool,
    reporter: &str,
) -> Result<Signal, StoreError> {
    if let Some(old) = store.get_signal(&signal.dedup_key)? {
        let answered = store
            .list_cases()?
            .iter()
            .any(|c| c.trigger.signals.contains(&old.dedup_key));
        if answered || old.handled.is_some() {
            signal.dedup_key = Signal::dedup_key(
                &signal.subject,
                &signal.check,
                Some(&format!(
                    "{}|{source}|{}",
                    fp.unwrap_or(""),
                    now.to_rfc3339()
                )),
            );
            signal.id = signal.dedup_key[..12].to_string();
        } else {
            signal.detected_at = old.detected_at;
            signal.times_seen = old.times_seen + 1;
            if keep_suppression
                && matches!(&old.state, SignalState::Suppressed { until, .. } if *until > now)
            {
                signal.state = old.state.clone();
            }
        }
    }
    store.put_signal(&signal)?;
    crate::signals::scan::record_signal(store, &signal, "new", reporter)?;
    Ok(signal)
}

pub(crate) fn run_signals(
    config: Option<&Path>,
    action: Option<SignalsAction>,
    all: bool,
    json: bool,
) -> Result<ExitCode, CliError> {
    let cfg = load_config(config)?;
    let now = Utc::now();
    if action.is_none() && super::remote::daemon_running(&cfg) {
        let path = if all {
            "/v1/signals?all=1"
        } else {
            "/v1/signals"
        };
        let shown: Vec<Signal> = super::remote::get_as(&cfg, path)?;
        return print_list(&shown, all, json, now);
    }
    let store = open_store(&cfg)?;
    match action {
        None => print_list(&listed(&store, all)?, all, json, now),
        Some(SignalsAction::Suppress { id, until, reason }) => {
            let until = parse_until(&until)?;
            if until <= now {
                return Err(input_error("--until must be in the future"));
            }
            if reason.trim().is_empty() {
                return Err(input_error("--reason must say why"));
            }
            let matches: Vec<Signal> = store
                .list_signals()?
                .into_iter()
                .filter(|s| s.id.starts_with(&id) || s.dedup_key.starts_with(&id))
                .collect();
            let mut signal = match matches.as_slice() {
                [one] => one.clone(),
                [] => {
                    return Err(input_error(format!(
                        "no signal with id `{id}` (see `certresponder signals`)"
                    )));
                }
                _ => {
                    return Err(input_error(format!(
                        "`{id}` matches {} signals; give more of the id",
                        matches.len()
                    )));
                }
            };
            signal.state = SignalState::Suppressed {
                until,
                reason: reason.clone(),
                by: super::respond::identity()?.to_string(),
                at: now,
            };
            store.put_signal(&signal)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&signal)?);
            } else {
                println!(
                    "suppressed {} ({} on {}) until {}",
                    signal.id,
                    signal.check,
                    signal.subject,
                    until.format("%Y-%m-%d %H:%M UTC")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
