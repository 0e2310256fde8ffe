//! `certresponder approve`, `deny` and `breaker {status,reset}`: the people's side of
//! governance. The acting person is the Unix user running the command.

use std::path::Path;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::json;

use super::backend::Backend;
use super::respond::print_pending;
use super::table::{Cell, Tone, render};
use super::{CliError, input_error, load_config};
use crate::govern::human_duration;
use crate::records::case::Case;
use crate::service::cases;
use crate::service::govern as ops;

/// `approve` arguments.
#[derive(Debug, Args)]
pub(crate) struct ApproveArgs {
    /// The case number (see `certresponder cases list`)
    case: u64,
    /// Machine-readable output
    #[arg(long)]
    json: bool,
}

/// `deny` arguments.
#[derive(Debug, Args)]
pub(crate) struct DenyArgs {
    /// The case number
    case: u64,
    /// Why (kept with the case and in the audit log)
    #[arg(long)]
    reason: String,
    /// Machine-readable output
    #[arg(long)]
    json: bool,
}

/// `breaker` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum BreakerCommand {
    /// Show whether the blast-radius breaker is open, the counts in the window and the
    /// cases it holds
    Status {
        /// Machine-readable output
        #[arg(long)]
        json: bool,
    },
    /// Close the breaker (held cases still wait for approval; the window's revocations still
    /// count toward the limit)
    Reset,
}

pub(crate) fn run_approve(args: ApproveArgs, config: Option<&Path>) -> Result<ExitCode, CliError> {
    let backend = Backend::choose(load_config(config)?);
    let out = backend.call::<cases::Approve>(cases::CaseArgs { case: args.case })?;
    let Some(ran) = out.ran else {
        if args.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({
                    "case": out.case,
                    "runnable": out.runnable,
                    "still_needed": out.still_needed,
                }))?
            );
        } else {
            println!(
                "case {}: approved by {}; {} more approval{} from a different person needed",
                out.case,
                out.by,
                out.still_needed,
                if out.still_needed == 1 { "" } else { "s" }
            );
        }
        print_pending(out.notifications_pending);
        return Ok(ExitCode::SUCCESS);
    };
    print_pending(ran.notifications_pending);
    super::cases::print_results(&ran.cases, &ran.errors, args.json)
}

pub(crate) fn run_deny(args: DenyArgs, config: Option<&Path>) -> Result<ExitCode, CliError> {
    if args.reason.trim().is_empty() {
        return Err(input_error("--reason must say why the case is denied"));
    }
    let backend = Backend::choose(load_config(config)?);
    let denied = backend.call::<cases::Deny>(cases::DenyArgs {
        case: args.case,
        reason: args.reason,
    })?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&denied.case.public_json())?
        );
    } else {
        print_denied(&denied.case);
    }
    print_pending(denied.notifications_pending);
    Ok(ExitCode::SUCCESS)
}

/// "case N (... of `cert`) denied by WHO: it will not run", with who as the case records
/// them.
fn print_denied(case: &Case) {
    let who = case
        .approval
        .as_ref()
        .and_then(|a| a.denied.as_ref())
        .map(|d| format!("{} (uid {})", d.by, d.uid))
        .unwrap_or_default();
    println!(
        "case {} ({} of `{}`) denied by {who}: it will not run",
        case.id, case.kind, case.cert
    );
}

pub(crate) fn run_breaker(
    cmd: BreakerCommand,
    config: Option<&Path>,
) -> Result<ExitCode, CliError> {
    let backend = Backend::choose(load_config(config)?);
    match cmd {
        BreakerCommand::Status { json } => {
            let st = backend.call::<ops::BreakerStatusOp>(ops::NoArgs {})?;
            if json {
                println!("{}", serde_json::to_string_pretty(&st)?);
                return Ok(ExitCode::SUCCESS);
            }
            let window = human_duration(chrono::Duration::seconds(st.window_secs));
            match &st.state.open {
                Some(o) => println!(
                    "breaker: OPEN since {} ({})",
                    o.at.format("%Y-%m-%d %H:%M:%S UTC"),
                    o.why
                ),
                None if st.state.open_owners.is_empty() => println!("breaker: closed"),
                None => println!("breaker: open for some owners"),
            }
            println!(
                "automatic revocations in the last {window}: {} (limit {} for all owners, {} per owner)",
                st.in_window, st.max_revocations, st.max_revocations_per_owner
            );
            if !st.state.open_owners.is_empty() {
                let rows: Vec<Vec<Cell>> = st
                    .state
                    .open_owners
                    .iter()
                    .map(|(owner, o)| {
                        vec![
                            Cell::plain(owner.clone()),
                            Cell::toned("open", Tone::Alert),
                            Cell::plain(o.at.format("%Y-%m-%d %H:%M").to_string()),
                            Cell::plain(o.why.clone()),
                        ]
                    })
                    .collect();
                print!("{}", render(&["OWNER", "STATE", "SINCE", "WHY"], &rows));
            }
            if st.held.is_empty() {
                println!("no cases held by the breaker");
            } else {
                println!(
                    "{} case{} held for approval: {}",
                    st.held.len(),
                    if st.held.len() == 1 { "" } else { "s" },
                    st.held
                        .iter()
                        .map(u64::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        BreakerCommand::Reset => {
            let reset = backend.call::<ops::BreakerReset>(ops::NoArgs {})?;
            let st = reset.status;
            let held = st.held;
            if reset.was_open {
                println!("breaker closed by {}", reset.by);
            } else {
                println!("the breaker was not open");
            }
            println!(
                "{} automatic revocation{} in the last {} still count toward the limit of {}",
                st.in_window,
                if st.in_window == 1 { "" } else { "s" },
                human_duration(chrono::Duration::seconds(st.window_secs)),
                st.max_revocations
            );
            if !held.is_empty() {
                println!(
                    "{} held case{} still wait{} for approval: `certresponder approve CASE` each",
                    held.len(),
                    if held.len() == 1 { "" } else { "s" },
                    if held.len() == 1 { "s" } else { "" }
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
