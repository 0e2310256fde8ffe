//! `certresponder ct status|poll|watch`: Certificate Transparency monitoring.

use std::path::Path;
use std::process::ExitCode;

use chrono::Utc;
use clap::Subcommand;
use serde_json::json;

use super::backend::Backend;
use super::table::{Cell, Tone, render};
use super::{CliError, input_error, load_config};
use crate::service::ct as ops;

/// Exit status when unauthorized-issuance signals are open.
const UNAUTHORIZED_OPEN: u8 = 3;

/// `ct` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum CtCommand {
    /// Each configured log: tree size, position, lag, last tree head, errors
    Status {
        /// Machine-readable output
        #[arg(long)]
        json: bool,
    },
    /// Read every log once from its saved position; match entries against the watch list
    /// and the authorization ledger
    #[command(
        after_help = "Exit status: 0 nothing unauthorized is open; 3 ct_unauthorized_issuance signals are open; 1 a log could not be read or misbehaved."
    )]
    Poll {
        /// Machine-readable output
        #[arg(long)]
        json: bool,
    },
    /// Manage watched domains besides the inventory's names and `[ct] domains`
    #[command(subcommand)]
    Watch(WatchCommand),
}

/// `ct watch` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum WatchCommand {
    /// Watch a name (`shop.example.com`) or a whole subtree (`.example.com`)
    Add {
        /// The pattern
        pattern: String,
    },
    /// List every watched pattern and where it comes from
    List {
        /// Machine-readable output
        #[arg(long)]
        json: bool,
    },
    /// Stop watching a pattern added with `ct watch add`
    Remove {
        /// The pattern
        pattern: String,
    },
}

pub(crate) fn run(cmd: CtCommand, config: Option<&Path>) -> Result<ExitCode, CliError> {
    let backend = Backend::choose(load_config(config)?);
    match cmd {
        CtCommand::Status { json } => status(&backend, json),
        CtCommand::Poll { json } => run_poll(&backend, json),
        CtCommand::Watch(w) => watch(&backend, w),
    }
}

fn status(backend: &Backend, json: bool) -> Result<ExitCode, CliError> {
    let cfg = backend.config();
    let states = backend.call::<ops::Status>(ops::NoArgs {})?;
    let now = Utc::now();
    if json {
        let v: Vec<serde_json::Value> = cfg
            .ct
            .logs
            .iter()
            .map(|l| {
                let s = &states[&l.name];
                json!({
                    "name": l.name,
                    "url": l.spec.url,
                    "tree_size": s.sth_size,
                    "position": s.position.tree_size,
                    "lag": s.sth_size.saturating_sub(s.position.tree_size),
                    "sth_time": s.sth_time,
                    "last_poll": s.last_poll,
                    "error": s.last_error,
                    "misbehaviour": s.misbehaviour,
                    "malformed": s.malformed,
                    "entries_read": s.entries_read,
                    "monitored_from": s.monitored_from,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    if cfg.ct.logs.is_empty() {
        println!("no CT log is configured (add [[ct_log]] tables to the configuration)");
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<Cell>> = cfg
        .ct
        .logs
        .iter()
        .map(|l| {
            let s = &states[&l.name];
            let lag = s.sth_size.saturating_sub(s.position.tree_size);
            vec![
                Cell::plain(l.name.clone()),
                Cell::plain(s.sth_size.to_string()),
                Cell::plain(s.position.tree_size.to_string()),
                Cell::plain(s.monitored_from.to_string()),
                Cell::toned(
                    lag.to_string(),
                    if lag > 0 { Tone::Warn } else { Tone::Plain },
                ),
                Cell::plain(
                    s.sth_time
                        .map(|t| format!("{} ago", crate::govern::human_duration(now - t)))
                        .unwrap_or_else(|| "never".into()),
                ),
                match (&s.misbehaviour, &s.last_error) {
                    (Some(m), _) => Cell::toned(format!("MISBEHAVIOUR {m}"), Tone::Alert),
                    (None, Some(e)) => Cell::toned(e.clone(), Tone::Warn),
                    (None, None) => Cell::plain(""),
                },
            ]
        })
        .collect();
    print!(
        "{}",
        render(
            &[
                "LOG", "SIZE", "POSITION", "FROM", "LAG", "LAST STH", "ERRORS"
            ],
            &rows
        )
    );
    Ok(ExitCode::SUCCESS)
}

fn run_poll(backend: &Backend, json: bool) -> Result<ExitCode, CliError> {
    if backend.config().ct.logs.is_empty() {
        return Err(input_error(
            "no CT log is configured: add [[ct_log]] tables (name, url, key) to the configuration",
        ));
    }
    let ops::Polled { report, open } = backend.call::<ops::Poll>(ops::NoArgs {})?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for w in &report.rejected_watch {
            eprintln!("warning: watch list: {w}");
        }
        let rows: Vec<Vec<Cell>> = report
            .logs
            .iter()
            .map(|l| {
                vec![
                    Cell::plain(l.name.clone()),
                    Cell::plain(match l.started_at_end {
                        Some(at) => format!("started at end {at} → {}", l.to),
                        None => format!("{} → {}", l.from, l.to),
                    }),
                    Cell::plain(l.entries.to_string()),
                    Cell::plain(l.matched.to_string()),
                    Cell::plain(l.known.to_string()),
                    Cell::toned(
                        l.unauthorized.to_string(),
                        if l.unauthorized > 0 {
                            Tone::Alert
                        } else {
                            Tone::Plain
                        },
                    ),
                    Cell::plain(l.malformed.to_string()),
                    match &l.error {
                        Some(e) if l.misbehaviour => {
                            Cell::toned(format!("MISBEHAVIOUR: {e}"), Tone::Alert)
                        }
                        Some(e) => Cell::toned(e.clone(), Tone::Warn),
                        None => Cell::plain(format!("{:.1} s", l.seconds)),
                    },
                ]
            })
            .collect();
        print!(
            "{}",
            render(
                &[
                    "LOG",
                    "TREE",
                    "READ",
                    "MATCHED",
                    "OURS",
                    "UNAUTHORIZED",
                    "MALFORMED",
                    "RESULT"
                ],
                &rows
            )
        );
        for s in &report.new_signals {
            println!("{}: {}", s.subject, s.message);
        }
    }
    Ok(if report.logs.iter().any(|l| l.error.is_some()) {
        ExitCode::FAILURE
    } else if open > 0 {
        ExitCode::from(UNAUTHORIZED_OPEN)
    } else {
        ExitCode::SUCCESS
    })
}

fn watch(backend: &Backend, cmd: WatchCommand) -> Result<ExitCode, CliError> {
    match cmd {
        WatchCommand::Add { pattern } => {
            let already = backend.call::<ops::WatchAdd>(ops::PatternArgs {
                pattern: pattern.clone(),
            })?;
            if already {
                println!("`{pattern}` is already watched");
            } else {
                println!("watching `{pattern}`");
            }
        }
        WatchCommand::Remove { pattern } => {
            backend.call::<ops::WatchRemove>(ops::PatternArgs {
                pattern: pattern.clone(),
            })?;
            println!("no longer watching `{pattern}`");
        }
        WatchCommand::List { json } => {
            let ops::Watched { rows, rejected } = backend.call::<ops::WatchList>(ops::NoArgs {})?;
            if json {
                let v: Vec<serde_json::Value> = rows
                    .iter()
                    .map(|(p, from)| json!({"pattern": p, "from": from}))
                    .collect();
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({"watched": v, "rejected": rejected}))?
                );
            } else {
                let table: Vec<Vec<Cell>> = rows
                    .into_iter()
                    .map(|(p, from)| vec![Cell::plain(p), Cell::plain(from)])
                    .collect();
                print!("{}", render(&["PATTERN", "FROM"], &table));
                for r in rejected {
                    eprintln!("warning: not watched: {r}");
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
