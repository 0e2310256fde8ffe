//! `certresponder cases {list,show}`, `history NAME` and `rollback NAME`.

use std::path::Path;
use std::process::ExitCode;

use certresponder_inventory::{Bundle, BundleState};
use chrono::Utc;
use clap::{Args, Subcommand};
use serde_json::json;

use super::inventory::open_store;
use super::respond::{engine, respond_error, runtime};
use super::table::{Cell, Tone, render};
use super::{CliError, input_error, load_config};
use crate::respond::case::{Case, CaseState, StepOutcome};
use crate::signals::current_user;
use crate::store::{Event, Store};

#[derive(Debug, Subcommand)]
pub(crate) enum CasesCommand {
    /// List cases (running and failed first)
    List {
        /// Machine-readable output
        #[arg(long)]
        json: bool,
    },
    /// Show one case with every step, its timestamps and outcome
    Show {
        /// Case number
        case: u64,
        /// Machine-readable output
        #[arg(long)]
        json: bool,
    },
}

/// `rollback` arguments.
#[derive(Debug, Args)]
pub(crate) struct RollbackArgs {
    /// The certificate's inventory name
    name: String,
    /// The bundle to restore (an id or a unique prefix; default: the latest earlier bundle
    /// that is not revoked)
    #[arg(long, value_name = "BUNDLE")]
    to: Option<String>,
    /// Restore even a revoked bundle
    #[arg(long)]
    force: bool,
    /// Machine-readable output
    #[arg(long)]
    json: bool,
}

fn state_cell(c: &Case) -> Cell {
    let tone = match c.state {
        CaseState::Done => Tone::Plain,
        CaseState::Running => Tone::Warn,
        CaseState::Failed => Tone::Alert,
    };
    let text = if c.rolled_back {
        format!("{} (rolled back)", c.state)
    } else {
        c.state.to_string()
    };
    Cell::toned(text, tone)
}

/// One line per case.
pub(crate) fn summary_table(cases: &[Case]) -> String {
    let rows: Vec<Vec<Cell>> = cases
        .iter()
        .map(|c| {
            let last = c
                .journal
                .iter()
                .rev()
                .find(|r| r.outcome != StepOutcome::Started)
                .map(|r| format!("{}: {}", r.step, r.detail))
                .unwrap_or_default();
            vec![
                Cell::plain(c.id.to_string()),
                Cell::plain(c.cert.clone()),
                Cell::plain(c.kind.to_string()),
                state_cell(c),
                Cell::plain(c.next.map(|s| s.to_string()).unwrap_or_default()),
                Cell::plain(c.created_at.format("%Y-%m-%d %H:%M").to_string()),
                Cell::plain(c.error.clone().unwrap_or(last)),
            ]
        })
        .collect();
    render(
        &[
            "CASE", "CERT", "SEQUENCE", "STATE", "NEXT", "OPENED", "LAST",
        ],
        &rows,
    )
}

pub(crate) fn run_cases(cmd: CasesCommand, config: Option<&Path>) -> Result<ExitCode, CliError> {
    let cfg = load_config(config)?;
    let store = open_store(&cfg)?;
    match cmd {
        CasesCommand::List { json } => {
            let mut cases = store.list_cases()?;
            cases.sort_by_key(|c| (c.state == CaseState::Done, std::cmp::Reverse(c.id)));
            if json {
                let shown: Vec<serde_json::Value> = cases.iter().map(Case::public_json).collect();
                println!("{}", serde_json::to_string_pretty(&shown)?);
            } else if cases.is_empty() {
                println!("no cases");
            } else {
                print!("{}", summary_table(&cases));
            }
            Ok(ExitCode::SUCCESS)
        }
        CasesCommand::Show { case, json } => {
            let c = store.get_case(case)?.ok_or_else(|| {
                input_error(format!(
                    "there is no case {case} (see `certresponder cases list`)"
                ))
            })?;
            if json {
                println!("{}", serde_json::to_string_pretty(&c.public_json())?);
                return Ok(ExitCode::SUCCESS);
            }
            println!("case {}: {} of {}", c.id, c.kind, c.cert);
            println!(
                "  state:    {}{}",
                c.state,
                if c.rolled_back { " (rolled back)" } else { "" }
            );
            println!(
                "  trigger:  {} by {}: {}",
                c.trigger.source, c.trigger.by, c.trigger.why
            );
            if let Some(r) = c.reason {
                println!(
                    "  revoke:   {r}{}",
                    if c.contain_first {
                        ", contain first (before deploying)"
                    } else {
                        ""
                    }
                );
            }
            println!("  old:      {}", c.old_bundle.as_deref().unwrap_or("-"));
            println!("  new:      {}", c.new_bundle.as_deref().unwrap_or("-"));
            println!("  issued:   {} certificate(s)", c.issued_count);
            if let Some(e) = &c.error {
                println!("  error:    {e}");
            }
            let rows: Vec<Vec<Cell>> = c
                .journal
                .iter()
                .map(|r| {
                    let tone = match r.outcome {
                        StepOutcome::Failed => Tone::Alert,
                        StepOutcome::Started => Tone::Warn,
                        _ => Tone::Plain,
                    };
                    vec![
                        Cell::plain(r.step.to_string()),
                        Cell::plain(r.started_at.format("%H:%M:%S%.3f").to_string()),
                        Cell::plain(
                            r.finished_at
                                .map(|t| t.format("%H:%M:%S%.3f").to_string())
                                .unwrap_or_default(),
                        ),
                        Cell::toned(r.outcome.to_string(), tone),
                        Cell::plain(r.detail.clone()),
                    ]
                })
                .collect();
            print!(
                "{}",
                render(&["STEP", "STARTED", "FINISHED", "OUTCOME", "DETAIL"], &rows)
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub(crate) fn run_history(
    name: &str,
    json: bool,
    config: Option<&Path>,
) -> Result<ExitCode, CliError> {
    let cfg = load_config(config)?;
    let store = open_store(&cfg)?;
    crate::registry::sync(&store, &cfg, Utc::now())?;
    if store.get_cert(name)?.is_none() {
        return Err(input_error(format!(
            "no certificate named `{name}` is registered (see `certresponder inventory list`)"
        )));
    }
    let bundles = store.bundles(name)?;
    if json {
        let shown: Vec<serde_json::Value> = bundles
            .iter()
            .map(|b| {
                json!({
                    "id": b.id,
                    "state": b.state,
                    "revoked_at": b.revoked_at,
                    "serial": b.serial,
                    "issuer": b.issuer,
                    "not_after": b.not_after,
                    "created_at": b.created_at,
                    "origin": b.origin,
                    "cert_sha256": b.fingerprints.cert_sha256,
                    "spki_sha256": b.fingerprints.spki_sha256,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&shown)?);
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<Cell>> = bundles
        .iter()
        .rev()
        .map(|b| {
            let tone = if b.is_revoked() {
                Tone::Alert
            } else {
                Tone::Plain
            };
            vec![
                Cell::plain(b.id.clone()),
                Cell::toned(
                    if b.state != BundleState::Revoked && b.is_revoked() {
                        format!("{} (revoked)", b.state)
                    } else {
                        b.state.to_string()
                    },
                    tone,
                ),
                Cell::plain(b.serial.clone()),
                Cell::plain(b.not_after.format("%Y-%m-%d").to_string()),
                Cell::plain(b.created_at.format("%Y-%m-%d %H:%M").to_string()),
                Cell::plain(b.origin.clone()),
            ]
        })
        .collect();
    print!(
        "{}",
        render(
            &["BUNDLE", "STATE", "SERIAL", "EXPIRES", "RECORDED", "ORIGIN"],
            &rows
        )
    );
    Ok(ExitCode::SUCCESS)
}

/// The bundle `rollback` restores: `--to` (unique prefix) or the latest earlier one that is
/// not revoked (with `--force`, the latest earlier one).
fn rollback_target<'a>(
    bundles: &'a [Bundle],
    to: Option<&str>,
    force: bool,
    name: &str,
) -> Result<&'a Bundle, CliError> {
    match to {
        Some(prefix) => {
            let found: Vec<&Bundle> = bundles
                .iter()
                .filter(|b| b.id.starts_with(prefix))
                .collect();
            match found.as_slice() {
                [one] => Ok(one),
                [] => Err(input_error(format!(
                    "`{name}` has no bundle `{prefix}` (see `certresponder history {name}`)"
                ))),
                more => Err(input_error(format!(
                    "`{prefix}` matches {} bundles of `{name}`; give more of the id",
                    more.len()
                ))),
            }
        }
        None => {
            let current = bundles
                .iter()
                .rposition(|b| b.state == BundleState::Current);
            bundles
                .iter()
                .enumerate()
                .rev()
                .find(|(i, b)| {
                    Some(*i) != current
                        && b.state != BundleState::Current
                        && (force || !b.is_revoked())
                })
                .map(|(_, b)| b)
                .ok_or_else(|| {
                    input_error(format!(
                        "`{name}` has no earlier bundle that is not revoked (see `certresponder history {name}`; name one with --to, and --force for a revoked one)"
                    ))
                })
        }
    }
}

pub(crate) fn run_rollback(
    args: RollbackArgs,
    config: Option<&Path>,
) -> Result<ExitCode, CliError> {
    let cfg = load_config(config)?;
    let engine = engine(&cfg)?;
    let entry = engine.entry(&args.name).map_err(respond_error)?;
    if let Some(running) = engine.running_case(&args.name).map_err(respond_error)? {
        return Err(input_error(format!(
            "`{}` has case {} running; let it finish (`certresponder respond`) before rolling back by hand",
            args.name, running.id
        )));
    }
    let bundles = engine.store().bundles(&args.name)?;
    let target = rollback_target(&bundles, args.to.as_deref(), args.force, &args.name)?.clone();
    if target.state == BundleState::Current {
        return Err(input_error(format!(
            "bundle {} is already the current bundle of `{}`",
            target.id, args.name
        )));
    }
    if target.is_revoked() && !args.force {
        return Err(input_error(format!(
            "bundle {} of `{}` was revoked at its CA: clients that check revocation would reject it. Restore it anyway with --force",
            target.id, args.name
        )));
    }
    if target.key_pem.is_none() && entry.paths.key.is_some() {
        return Err(input_error(format!(
            "bundle {} has no private key stored, so it cannot be restored to `{}`'s key file",
            target.id, args.name
        )));
    }
    let rt = runtime()?;
    let result = rt.block_on(engine.restore(&entry, &target));
    let who = current_user();
    let ok = result.is_ok();
    let detail = match &result {
        Ok(d) => format!(
            "by {who}: {d}{}",
            if target.is_revoked() {
                " (forced: the bundle is revoked)"
            } else {
                ""
            }
        ),
        Err(e) => format!("by {who}: rollback to {} failed: {e}", target.id),
    };
    engine.store().append_event(Event {
        seq: 0,
        at: Utc::now(),
        cert: args.name.clone(),
        kind: if ok { "rolled_back" } else { "rollback_failed" }.into(),
        detail: detail.clone(),
    })?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "cert": args.name,
                "bundle": target.id,
                "ok": ok,
                "detail": detail,
            }))?
        );
    } else if ok {
        println!("{}: {}", args.name, detail);
    } else {
        eprintln!("{}: {}", args.name, detail);
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
