//! `certresponder approve`, `deny` and `breaker {status,reset}`: the people's side of
//! governance. The acting person is the Unix user running the command.

use std::path::Path;
use std::process::ExitCode;

use chrono::Utc;
use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::respond::{deliver_pending, govern_error, governor, identity, run_and_print, runtime};
use super::table::{Cell, Tone, render};
use super::{CliError, input_error, load_config};
use crate::config::Config;
use crate::govern::approvals::Approved;
use crate::govern::human_duration;
use crate::respond::case::Case;
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
    let cfg = load_config(config)?;
    if super::remote::daemon_running(&cfg) {
        return approve_remote(&cfg, &args);
    }
    let gov = governor(&cfg)?;
    let who = identity()?;
    let approved = gov
        .approve(args.case, &who, Utc::now())
        .map_err(govern_error)?;
    if !approved.runnable {
        print_approved(
            &ApprovedReply::new(&approved, who.to_string(), None),
            args.json,
        )?;
        let rt = runtime()?;
        rt.block_on(deliver_pending(gov.engine()));
        return Ok(ExitCode::SUCCESS);
    }
    if !args.json {
        println!("case {}: approved by {who}; running it", approved.case);
    }
    run_and_print(gov.engine(), &[approved.case], args.json)
}

/// What the control socket answers to an approval: [`Approved`]'s fields, who approved,
/// and whether the daemon could start a case that became runnable.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ApprovedReply {
    /// The case.
    pub case: u64,
    /// Whether the case may now run (every approval it needs is in).
    pub runnable: bool,
    /// Approvals still needed.
    pub still_needed: usize,
    /// Who approved, as the daemon knows them.
    pub by: String,
    /// Why the daemon did not start a runnable case (it is stopping): the case resumes
    /// when it starts again.
    #[serde(default)]
    pub not_started: Option<String>,
}

impl ApprovedReply {
    /// The reply for `approved`, by `by`.
    pub(crate) fn new(approved: &Approved, by: String, not_started: Option<String>) -> Self {
        Self {
            case: approved.case,
            runnable: approved.runnable,
            still_needed: approved.still_needed,
            by,
            not_started,
        }
    }
}

/// `approve` through the running daemon: it records the approval as the user at the other
/// end of its socket and runs the case; this waits for the case to end, as `approve` does
/// when it runs the case itself.
fn approve_remote(cfg: &Config, args: &ApproveArgs) -> Result<ExitCode, CliError> {
    let reply: ApprovedReply =
        super::remote::post_as(cfg, &format!("/v1/cases/{}/approve", args.case), &json!({}))?;
    if !reply.runnable {
        print_approved(&reply, args.json)?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(why) = &reply.not_started {
        return Err(CliError::Failure(anyhow::anyhow!(
            "case {}: approved by {}, but the daemon did not start it: {why}",
            reply.case,
            reply.by
        )));
    }
    if !args.json {
        println!("case {}: approved by {}; running it", reply.case, reply.by);
    }
    let case = super::remote::wait_for_case(cfg, reply.case)?;
    super::cases::print_results(&[case], &[], args.json)
}

/// Prints an approval after which the case still waits.
fn print_approved(a: &ApprovedReply, json: bool) -> Result<(), CliError> {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "case": a.case,
                "runnable": a.runnable,
                "still_needed": a.still_needed,
            }))?
        );
    } else {
        println!(
            "case {}: approved by {}; {} more approval{} from a different person needed",
            a.case,
            a.by,
            a.still_needed,
            if a.still_needed == 1 { "" } else { "s" }
        );
    }
    Ok(())
}

pub(crate) fn run_deny(args: DenyArgs, config: Option<&Path>) -> Result<ExitCode, CliError> {
    if args.reason.trim().is_empty() {
        return Err(input_error("--reason must say why the case is denied"));
    }
    let cfg = load_config(config)?;
    if super::remote::daemon_running(&cfg) {
        let shown: serde_json::Value = super::remote::post_as(
            &cfg,
            &format!("/v1/cases/{}/deny", args.case),
            &json!({"reason": args.reason.trim()}),
        )?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&shown)?);
        } else {
            let case: Case = serde_json::from_value(shown)
                .map_err(|e| anyhow::anyhow!("the daemon's case cannot be read: {e}"))?;
            print_denied(&case);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let gov = governor(&cfg)?;
    let who = identity()?;
    let case = gov
        .deny(args.case, &who, args.reason.trim(), Utc::now())
        .map_err(govern_error)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&case.public_json())?);
    } else {
        print_denied(&case);
    }
    let rt = runtime()?;
    rt.block_on(deliver_pending(gov.engine()));
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
    let backend = super::backend::Backend::choose(load_config(config)?);
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
