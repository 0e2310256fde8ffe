//! `certresponder quickstart`: the whole loop on a self-contained demo, using nothing outside
//! its directory.
//!
//! It builds the demo (an internal CA, sample services, an inventory, a policy), then runs
//! the responder over it: one service is reported compromised and the scan finds the others'
//! problems (detect); the policy decides each (decide); what may run now runs, what needs
//! approval waits, what is uncertain goes to a person (act); the new bundles are verified on
//! disk (verify). It ends with what happened to each service and the commands to try next.
//!
//! Running it again on the same directory reuses everything and says what it found: nothing
//! is reported or decided twice.

mod demo_files;
mod services;
mod summary;
mod weak_rsa;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use certresponder_inventory::fs::{create_dir_with_mode, write_atomic};
use certresponder_issuers::InternalCa;
use certresponder_issuers::config::IssuerKind;
use chrono::Utc;
use clap::Args;

use super::CliError;
use super::respond::{
    finish, govern_error, governor, identity, print_decisions, record_report, respond_error,
};
use crate::config::Config;
use crate::govern::{Applied, Governor, POLICY_ACTOR};
use crate::signals::Confidence;
use crate::signals::scan::scan;
use crate::store::{SledStore, Store};
use services::{REPORTED, SERVICES};

#[derive(Debug, Args)]
pub(crate) struct QuickstartArgs {
    /// Directory for the demo (created if missing; reused if it holds an earlier demo)
    #[arg(long, default_value = "certresponder-demo")]
    dir: PathBuf,
}

/// What the demo says was seen when it reports `payments-client`.
const EVIDENCE: &str = "demo: private key pasted in a public chat";

pub(crate) fn run(args: QuickstartArgs) -> Result<ExitCode, CliError> {
    let dir = std::path::absolute(&args.dir)
        .with_context(|| format!("resolving {}", args.dir.display()))?;
    let (config_path, cfg) = set_up(&dir)?;
    println!();
    super::inventory::run(
        super::inventory::InventoryCommand::List {
            all: false,
            json: false,
        },
        Some(&config_path),
    )?;
    let gov = governor(&cfg)?;
    println!();
    detect(&gov, &cfg)?;
    println!();
    let code = decide_and_act(&gov)?;
    println!();
    summary::print(&gov, &config_path)?;
    Ok(code)
}

/// Writes what is missing of the demo: configuration, CA, service bundles, policy and
/// inventory. Returns the configuration's path and the configuration.
fn set_up(dir: &Path) -> Result<(PathBuf, Config), CliError> {
    create_dir_with_mode(dir, 0o700).with_context(|| format!("creating {}", dir.display()))?;
    println!("set up the demo in {}", dir.display());
    let config_path = dir.join("certresponder.toml");
    write_if_missing(&config_path, demo_files::CONFIG, "configuration", "")?;
    let cfg = Config::from_file(&config_path).map_err(|e| CliError::Input(e.into()))?;
    let (issuer_id, ca_cfg) = cfg
        .issuers
        .iter()
        .find_map(|i| match &i.kind {
            IssuerKind::InternalCa(c) => Some((i.id.clone(), c.clone())),
            _ => None,
        })
        .context("the demo configuration declares no internal-ca issuer")?;
    let mut inventory = String::from(
        "# Demo inventory written by `certresponder quickstart`.\n# Each [[cert]] is one managed certificate; see the README for every field.\n",
    );
    {
        // The store is closed again before the listing below opens it.
        let store = SledStore::open(&cfg.db_path())?;
        let ca = InternalCa::open_or_create(
            &issuer_id,
            ca_cfg.clone(),
            store.issuer_storage(&issuer_id),
        )?;
        println!("  internal CA:   {}", ca_cfg.dir.join("ca.pem").display());
        for svc in SERVICES {
            let svc_dir = dir.join("services").join(svc.name);
            if svc.ensure(&ca, &svc_dir)? {
                println!("  issued:        {}", svc.issued_line());
            }
            inventory.push_str(&svc.entry_toml(&svc_dir, &issuer_id));
        }
        ca.refresh_crl_if_due(Duration::from_secs(86_400))?;
    }
    match &cfg.policy {
        Some(path) => write_if_missing(
            path,
            &demo_files::policy(),
            "policy",
            &format!(
                ": the built-in default with the demo rule `{}` in front",
                demo_files::DEMO_RULE
            ),
        )?,
        None => println!(
            "  policy:        the built-in default ({} names no policy file)",
            config_path.display()
        ),
    }
    create_dir_with_mode(&cfg.inventory_dir, 0o755)
        .with_context(|| format!("creating {}", cfg.inventory_dir.display()))?;
    write_if_missing(
        &cfg.inventory_dir.join("demo.toml"),
        &inventory,
        "inventory",
        "",
    )?;
    println!("  database:      {}", cfg.db_path().display());
    Ok((config_path, cfg))
}

/// Writes a demo file unless it exists (an earlier run wrote it, or someone edited it), and
/// says which.
fn write_if_missing(path: &Path, text: &str, what: &str, note: &str) -> Result<(), CliError> {
    let label = format!("{what}:");
    if path.exists() {
        println!("  {label:<14} {} (kept)", path.display());
    } else {
        write_atomic(path, text.as_bytes(), 0o644)
            .with_context(|| format!("writing {}", path.display()))?;
        println!("  {label:<14} {} (written{note})", path.display());
    }
    Ok(())
}

/// Reports `payments-client` compromised (once per demo) and scans every service.
fn detect(gov: &Governor, cfg: &Config) -> Result<(), CliError> {
    println!("detect");
    let store = gov.engine().store();
    let reported = store
        .list_signals()?
        .iter()
        .any(|s| s.subject == REPORTED && s.source == "report");
    if reported {
        println!("  {REPORTED} was reported compromised by an earlier run; not reported again");
    } else {
        let reporter = identity()?.to_string();
        record_report(store, REPORTED, &reporter, EVIDENCE)?;
        println!("  reported:  {REPORTED} compromised, by {reporter}: \"{EVIDENCE}\"");
    }
    let report = scan(store, &cfg.scan_settings(), Utc::now())?;
    println!(
        "  scanned:   {} certificates: {} new signal{}, {} seen before, {} resolved",
        report.scanned,
        report.new.len(),
        if report.new.len() == 1 { "" } else { "s" },
        report.seen_again.len(),
        report.resolved.len()
    );
    for s in &report.new {
        println!(
            "    {:<16} {} ({} confidence): {}",
            s.subject,
            s.check,
            confidence(s.confidence),
            s.message
        );
    }
    Ok(())
}

/// Decides every open signal, opens the cases, and runs those that may run now, all in one
/// go. The report is decided first, as the person who reported it; the scan's signals as
/// the policy. Exit status as `respond`'s: 0 when every case that ran is done.
fn decide_and_act(gov: &Governor) -> Result<ExitCode, CliError> {
    println!("decide and act");
    // Cases an interrupted earlier run left running are resumed with the new ones.
    let resume = gov.engine().unfinished().map_err(respond_error)?;
    let reporter = identity()?.to_string();
    let (mut plans, _) = gov
        .plan(Some(&[REPORTED.to_string()]))
        .map_err(govern_error)?;
    let mut applied = gov
        .apply(&plans, "report", &reporter, false)
        .map_err(govern_error)?;
    let (policy_plans, unmatched) = gov.plan(None).map_err(govern_error)?;
    let by_policy = gov
        .apply(&policy_plans, "policy", POLICY_ACTOR, false)
        .map_err(govern_error)?;
    plans.extend(policy_plans);
    merge(&mut applied, by_policy);
    if plans.is_empty() && resume.is_empty() {
        println!("  nothing new to decide: every signal already has its answer");
    }
    print_decisions(&plans, &resume, &unmatched);
    finish(gov, &applied, &plans, resume, false)
}

fn merge(into: &mut Applied, more: Applied) {
    into.run.extend(more.run);
    into.waiting.extend(more.waiting);
    into.escalated.extend(more.escalated);
    into.ignored.extend(more.ignored);
    into.busy.extend(more.busy);
    into.breaker_opened |= more.breaker_opened;
}

fn confidence(c: Confidence) -> &'static str {
    match c {
        Confidence::Low => "low",
        Confidence::Medium => "medium",
        Confidence::High => "high",
        Confidence::Confirmed => "confirmed",
    }
}
