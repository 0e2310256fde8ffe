//! `certresponder rollback NAME [--to BUNDLE] [--force]`: restores an earlier bundle to
//! every location, reloads and verifies it. The daemon runs the same checks and the same
//! restore for its control socket's `POST /v1/rollback`.

use std::path::Path;
use std::process::ExitCode;

use certresponder_inventory::{Bundle, BundleState, ManagedCert};
use chrono::Utc;
use clap::Args;
use serde_json::json;

use crate::audit::{self, AuditEntry};
use crate::cli::respond::{deliver_pending, engine, identity, respond_error, runtime};
use crate::cli::{CliError, input_error, load_config};
use crate::govern::GovernError;
use crate::notify::{Notification, NotifyEvent};
use crate::respond::Engine;
use crate::store::Event;

/// `rollback` arguments.
#[derive(Debug, Args)]
pub(crate) struct RollbackArgs {
    /// The certificate's inventory name
    pub(super) name: String,
    /// The bundle to restore (an id or a unique prefix; default: the latest earlier bundle
    /// that is not revoked)
    #[arg(long, value_name = "BUNDLE")]
    pub(super) to: Option<String>,
    /// Restore even a revoked bundle
    #[arg(long)]
    pub(super) force: bool,
    /// Machine-readable output
    #[arg(long)]
    pub(super) json: bool,
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
    if crate::cli::remote::daemon_running(&cfg) {
        let done: RolledBack = crate::cli::remote::post_as(
            &cfg,
            "/v1/rollback",
            &json!({"cert": args.name, "to": args.to, "force": args.force}),
        )?;
        return done.print(args.json);
    }
    let engine = engine(&cfg)?;
    let (entry, target) = rollback_checked(&engine, &args.name, args.to.as_deref(), args.force)?;
    let who = identity()?.to_string();
    let rt = runtime()?;
    let done = rt.block_on(rollback(&engine, &entry, &target, &who))?;
    if done.ok {
        rt.block_on(deliver_pending(&engine));
    }
    done.print(args.json)
}

/// A refusal: what was asked is not allowed now (an input error to the CLI, 403 on the
/// control socket).
fn refused(msg: String) -> CliError {
    CliError::Input(GovernError::Refused(msg).into())
}

/// The refusal while `name` has case `id` running.
fn busy(name: &str, id: u64) -> CliError {
    refused(format!(
        "`{name}` has case {id} running; let it finish (`certresponder respond`) before rolling back by hand"
    ))
}

/// What `rollback` would restore to `name` (the entry and the bundle), after every check:
/// no case running, the bundle not current, not revoked unless `force`, its key stored
/// when the entry has a key file.
pub(crate) fn rollback_checked(
    engine: &Engine,
    name: &str,
    to: Option<&str>,
    force: bool,
) -> Result<(ManagedCert, Bundle), CliError> {
    let entry = engine.entry(name).map_err(respond_error)?;
    if let Some(running) = engine.running_case(name).map_err(respond_error)? {
        return Err(busy(name, running.id));
    }
    let bundles = engine.store().bundles(name)?;
    let target = rollback_target(&bundles, to, force, name)?.clone();
    if target.state == BundleState::Current {
        return Err(refused(format!(
            "bundle {} is already the current bundle of `{name}`",
            target.id
        )));
    }
    if target.is_revoked() && !force {
        return Err(refused(format!(
            "bundle {} of `{name}` was revoked at its CA: clients that check revocation would reject it. Restore it anyway with --force",
            target.id
        )));
    }
    if target.key_pem.is_none() && entry.paths.key.is_some() {
        return Err(refused(format!(
            "bundle {} has no private key stored, so it cannot be restored to `{name}`'s key file",
            target.id
        )));
    }
    Ok((entry, target))
}

/// How a rollback went.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct RolledBack {
    /// The certificate.
    pub cert: String,
    /// The bundle restored (or not).
    pub bundle: String,
    /// Whether it was restored, reloaded and verified.
    pub ok: bool,
    /// What happened, with who asked.
    pub detail: String,
}

impl RolledBack {
    /// Prints the outcome; exit 0 when it was restored, 1 otherwise.
    pub(crate) fn print(&self, json: bool) -> Result<ExitCode, CliError> {
        if json {
            println!("{}", serde_json::to_string_pretty(self)?);
        } else if self.ok {
            println!("{}: {}", self.cert, self.detail);
        } else {
            eprintln!("{}: {}", self.cert, self.detail);
        }
        Ok(if self.ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    }
}

/// Restores `target` to every location of `entry`, reloads and verifies it, and records
/// the outcome (event, audit record as `who`, the owner's notification, queued).
pub(crate) async fn rollback(
    engine: &Engine,
    entry: &ManagedCert,
    target: &Bundle,
    who: &str,
) -> Result<RolledBack, CliError> {
    let name = entry.name.to_string();
    // Cases run their steps under the certificate's lock. A case running now is refused at
    // once; otherwise the checks are made again under the lock, since a case may have
    // opened, or run and replaced the bundles, since they were made.
    let Some(_held) = engine.try_hold_cert(&name) else {
        return Err(refused(format!(
            "`{name}` has a case running its steps right now; let it finish (`certresponder cases list`) before rolling back by hand"
        )));
    };
    let (entry, target) = rollback_checked(engine, &name, Some(&target.id), target.is_revoked())?;
    let (entry, target) = (&entry, &target);
    let result = engine.restore(entry, target).await;
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
        cert: name.clone(),
        kind: if ok { "rolled_back" } else { "rollback_failed" }.into(),
        detail: detail.clone(),
    })?;
    audit::append(
        engine.store(),
        AuditEntry {
            kind: "rollback",
            actor: who,
            cert: Some(&name),
            case: None,
            data: json!({
                "bundle": target.id,
                "forced": target.is_revoked(),
                "ok": ok,
                "detail": detail,
            }),
        },
    )?;
    if ok {
        engine.notify(Notification {
            event: NotifyEvent::RolledBack,
            owner: Some(entry.owner.clone()),
            cert: Some(name.clone()),
            case: None,
            summary: format!("`{name}` was rolled back {detail}"),
            deadline: None,
            details: json!({"bundle": target.id}),
            created_at: Utc::now(),
        });
    }
    Ok(RolledBack {
        cert: name,
        bundle: target.id.clone(),
        ok,
        detail,
    })
}
