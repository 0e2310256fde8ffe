//! `certresponder inventory {add,list,show,remove,validate}`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use certresponder_inventory::{InventoryError, LoadOptions, inventory_files, load_files};
use chrono::Utc;
use clap::Subcommand;
use serde_json::json;

use super::backend::Backend;
use super::table::{Cell, Tone, render};
use super::{CliError, input_error, load_config};
use crate::config::Config;
use crate::service::inventory::{self as ops, days_left};
use crate::store::SledStore;

#[derive(Debug, Subcommand)]
pub(crate) enum InventoryCommand {
    /// Validate an inventory file and install it in the inventory directory
    Add {
        /// The inventory file (TOML with one or more [[cert]] entries)
        file: PathBuf,
        /// Overwrite a file of the same name already in the inventory directory
        #[arg(long)]
        replace: bool,
        /// Machine-readable output
        #[arg(long)]
        json: bool,
    },
    /// List managed certificates with their expiry and state
    List {
        /// Include certificates removed from the inventory (their history is kept)
        #[arg(long)]
        all: bool,
        /// Machine-readable output
        #[arg(long)]
        json: bool,
    },
    /// Show one certificate: entry, live certificate, bundle history, events
    Show {
        /// Inventory name
        name: String,
        /// Machine-readable output
        #[arg(long)]
        json: bool,
    },
    /// Take a certificate out of the inventory; its history stays in the store
    Remove {
        /// Inventory name
        name: String,
        /// Machine-readable output
        #[arg(long)]
        json: bool,
    },
    /// Check inventory files (default: the whole inventory directory)
    Validate {
        /// Files to check together with the rest of the inventory directory
        files: Vec<PathBuf>,
        /// Machine-readable output
        #[arg(long)]
        json: bool,
    },
}

pub(crate) fn run(cmd: InventoryCommand, config: Option<&Path>) -> Result<ExitCode, CliError> {
    let cfg = load_config(config)?;
    match cmd {
        InventoryCommand::Add {
            file,
            replace,
            json,
        } => add(&cfg, &file, replace, json),
        InventoryCommand::List { all, json } => list(&cfg, all, json),
        InventoryCommand::Show { name, json } => show(&cfg, &name, json),
        InventoryCommand::Remove { name, json } => remove(&cfg, &name, json),
        InventoryCommand::Validate { files, json } => validate(&cfg, &files, json),
    }
}

/// Opens the database. While the daemon runs it holds the database (sled locks it), and
/// the commands that need it say so plainly instead of repeating the lock error.
pub(crate) fn open_store(cfg: &Config) -> Result<SledStore, CliError> {
    match SledStore::open(&cfg.db_path()) {
        Ok(store) => Ok(store),
        Err(e @ crate::store::StoreError::Open { .. })
            if e.to_string().contains("in use by") && super::remote::daemon_running(cfg) =>
        {
            Err(CliError::Failure(anyhow::anyhow!(
                "the database is in use by the running daemon and this command needs it itself; stop the daemon to run it (report-compromise, reissue, respond, scan, approve, deny, rollback, history, breaker, audit, inventory add and remove, blocklist import and remove go through the daemon)"
            )))
        }
        Err(e) => Err(e.into()),
    }
}

fn full_checks(cfg: &Config) -> LoadOptions {
    LoadOptions {
        check_files: true,
        known_issuers: Some(cfg.issuer_ids()),
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Files of the inventory directory that are not among `given`.
fn other_inventory_files(cfg: &Config, given: &[PathBuf]) -> Vec<PathBuf> {
    if !cfg.inventory_dir.is_dir() {
        return Vec::new();
    }
    inventory_files(&cfg.inventory_dir)
        .unwrap_or_default()
        .into_iter()
        .filter(|f| !given.iter().any(|g| same_file(f, g)))
        .collect()
}

fn print_errors(errors: &[InventoryError]) {
    for e in errors {
        eprintln!("error: {e}");
    }
}

fn add(cfg: &Config, file: &Path, replace: bool, json: bool) -> Result<ExitCode, CliError> {
    // Read here, with the caller's permissions; the daemon is sent the content.
    let bytes = std::fs::read(file)
        .map_err(|e| input_error(format!("{}: cannot read the file: {e}", file.display())))?;
    let Some(file_name) = file
        .file_name()
        .filter(|_| file.extension().is_some_and(|e| e == "toml"))
        .and_then(|n| n.to_str())
    else {
        return Err(input_error(format!(
            "{}: inventory files must end in .toml",
            file.display()
        )));
    };
    let content = String::from_utf8(bytes)
        .map_err(|_| input_error(format!("{}: not UTF-8 text", file.display())))?;
    let backend = Backend::choose(cfg.clone());
    let added = backend.call::<ops::Add>(ops::AddArgs {
        shown_as: file.to_path_buf(),
        file_name: file_name.to_string(),
        content,
        replace,
    })?;
    let (dest, entries, registered, updated) = match added {
        ops::Added::Rejected { errors } => {
            for e in &errors {
                eprintln!("error: {e}");
            }
            eprintln!(
                "{}: not added ({} error{})",
                file.display(),
                errors.len(),
                if errors.len() == 1 { "" } else { "s" }
            );
            return Ok(ExitCode::from(2));
        }
        ops::Added::Added {
            installed_as,
            entries,
            registered,
            updated,
        } => (installed_as, entries, registered, updated),
    };
    if json {
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "file": file,
                "installed_as": dest,
                "entries": names,
                "registered": registered,
                "updated": updated,
                "new_bundles": entries.iter().filter_map(|e| e.bundle.as_ref().map(|b| json!({"name": e.name, "bundle": b}))).collect::<Vec<_>>(),
            }))?
        );
    } else {
        println!(
            "added {} as {} ({} certificate{})",
            file.display(),
            dest.display(),
            entries.len(),
            if entries.len() == 1 { "" } else { "s" }
        );
        for e in &entries {
            let bundle = e
                .bundle
                .as_ref()
                .map(|b| format!(", bundle {b} recorded"))
                .unwrap_or_default();
            println!("  {}: {}{bundle}", e.name, e.state);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn list(cfg: &Config, all: bool, json: bool) -> Result<ExitCode, CliError> {
    let listing = Backend::choose(cfg.clone()).call::<ops::List>(ops::ListArgs { all })?;
    print_listing(&listing, json)
}

/// Prints the listing: the table (with notes and errors) or `--json`.
fn print_listing(listing: &ops::Listing, json: bool) -> Result<ExitCode, CliError> {
    if json {
        let items: Vec<&serde_json::Value> = listing.certificates.iter().map(|c| &c.item).collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "certificates": items,
                "inventory_errors": listing.inventory_errors,
            }))?
        );
        return Ok(ExitCode::SUCCESS);
    }
    if listing.certificates.is_empty() {
        println!(
            "no certificates registered; add an inventory file with `certresponder inventory add FILE` (inventory directory: {})",
            listing.inventory_dir.display()
        );
    } else {
        let rows: Vec<Vec<Cell>> = listing
            .certificates
            .iter()
            .map(|c| {
                let tone = tone(c.tone);
                let last = c.row.len().saturating_sub(2);
                c.row
                    .iter()
                    .enumerate()
                    .map(|(i, text)| {
                        if i >= last {
                            Cell::toned(text.clone(), tone)
                        } else {
                            Cell::plain(text.clone())
                        }
                    })
                    .collect()
            })
            .collect();
        print!(
            "{}",
            render(
                &[
                    "NAME", "OWNER", "KIND", "TRUST", "ISSUER", "KEY", "EXPIRES", "DAYS", "STATUS"
                ],
                &rows
            )
        );
    }
    for name in &listing.removed {
        println!("note: {name} is no longer in the inventory; marked removed (history kept)");
    }
    if !listing.inventory_errors.is_empty() {
        eprintln!("inventory errors (affected certificates keep their last registered entry):");
        for e in &listing.inventory_errors {
            eprintln!("error: {e}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// How a standing shows in a table.
fn tone(s: ops::Standing) -> Tone {
    match s {
        ops::Standing::Plain => Tone::Plain,
        ops::Standing::Warn => Tone::Warn,
        ops::Standing::Alert => Tone::Alert,
    }
}

fn show(cfg: &Config, name: &str, json: bool) -> Result<ExitCode, CliError> {
    let shown = Backend::choose(cfg.clone()).call::<ops::Show>(ops::ShowArgs {
        name: name.to_string(),
    })?;
    if json {
        println!("{}", serde_json::to_string_pretty(&shown.json)?);
        return Ok(ExitCode::SUCCESS);
    }
    let (rec, status, bundles, events) =
        (&shown.record, &shown.status, &shown.bundles, &shown.events);
    let e = &rec.entry;
    let opt = |p: &Option<PathBuf>| {
        p.as_ref()
            .map_or_else(|| "-".to_string(), |p| p.display().to_string())
    };
    println!("name:         {}", e.name);
    println!("status:       {status}");
    println!("owner:        {}", e.owner);
    println!("kind:         {}", e.kind);
    println!("trust:        {}", e.trust);
    println!("issuer:       {}", e.issuer.as_deref().unwrap_or("-"));
    println!(
        "key profile:  {}",
        e.key_profile.map_or_else(
            || "(same type as the current key)".to_string(),
            |p| p.to_string()
        )
    );
    println!(
        "tags:         {}",
        if e.tags.is_empty() {
            "-".into()
        } else {
            e.tags.join(", ")
        }
    );
    println!("cert:         {}", e.paths.cert.display());
    println!("key:          {}", opt(&e.paths.key));
    println!("chain:        {}", opt(&e.paths.chain));
    println!("fullchain:    {}", opt(&e.paths.fullchain));
    println!("reload:       {}", e.reload.as_deref().unwrap_or("-"));
    for v in &e.verify {
        println!(
            "verify:       {} (SNI {})",
            v.address,
            v.sni.as_deref().unwrap_or("none")
        );
    }
    println!("inventory:    {}", e.source.display());
    println!(
        "registered:   {}",
        rec.registered_at.format("%Y-%m-%d %H:%M:%S UTC")
    );
    if let Some(c) = &shown.live {
        let days = days_left((c.not_after - Utc::now()).num_seconds());
        println!("certificate:");
        println!("  subject:    {}", c.subject);
        println!("  issuer:     {}", c.issuer);
        println!("  serial:     {}", c.serial);
        println!(
            "  names:      {}",
            if c.names.is_empty() {
                "-".into()
            } else {
                c.names.join(", ")
            }
        );
        println!("  key:        {}", c.key);
        println!("  signature:  {}", c.signature);
        println!(
            "  not before: {}",
            c.not_before.format("%Y-%m-%d %H:%M:%S UTC")
        );
        println!(
            "  not after:  {} ({days} days left)",
            c.not_after.format("%Y-%m-%d %H:%M:%S UTC")
        );
        println!("  SCTs:       {}", c.scts);
        println!("  SHA-256:    {}", c.sha256);
        println!("  SPKI:       {}", c.spki);
        println!("  TBS hash:   {}", c.tbs);
    }
    for p in &shown.problems {
        println!("problem:      {p}");
    }
    println!(
        "history ({} bundle{}):",
        bundles.len(),
        if bundles.len() == 1 { "" } else { "s" }
    );
    let rows: Vec<Vec<Cell>> = bundles
        .iter()
        .rev()
        .map(|b| {
            vec![
                Cell::plain(b.id.clone()),
                Cell::plain(b.state.to_string()),
                Cell::plain(b.origin.clone()),
                Cell::plain(b.serial.clone()),
                Cell::plain(b.not_after.format("%Y-%m-%d").to_string()),
                Cell::plain(b.created_at.format("%Y-%m-%d %H:%M").to_string()),
            ]
        })
        .collect();
    for line in render(
        &["BUNDLE", "STATE", "ORIGIN", "SERIAL", "EXPIRES", "RECORDED"],
        &rows,
    )
    .lines()
    {
        println!("  {line}");
    }
    println!("events:");
    for ev in events.iter().rev().take(10).rev() {
        println!(
            "  {}  {:<16} {}",
            ev.at.format("%Y-%m-%d %H:%M:%S"),
            ev.kind,
            ev.detail
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn remove(cfg: &Config, name: &str, json: bool) -> Result<ExitCode, CliError> {
    let backend = Backend::choose(cfg.clone());
    let r = backend.call::<ops::Remove>(ops::RemoveArgs {
        name: name.to_string(),
    })?;
    let (source, remaining, kept) = (&r.file, usize::from(!r.file_deleted), r.bundles_kept);
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "removed": name,
                "file": source,
                "file_deleted": remaining == 0,
                "bundles_kept": kept,
                "marked_removed": r.marked_removed,
            }))?
        );
    } else {
        println!(
            "removed {name} from {}{}; its history ({kept} bundle{}) is kept in the store",
            source.display(),
            if remaining == 0 {
                " (file deleted: it held no other entry)"
            } else {
                ""
            },
            if kept == 1 { "" } else { "s" }
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn validate(cfg: &Config, files: &[PathBuf], json: bool) -> Result<ExitCode, CliError> {
    let mut all = Vec::new();
    if files.is_empty() {
        if !cfg.inventory_dir.is_dir() {
            return Err(input_error(format!(
                "{}: the inventory directory does not exist",
                cfg.inventory_dir.display()
            )));
        }
        all = inventory_files(&cfg.inventory_dir)
            .with_context(|| format!("reading {}", cfg.inventory_dir.display()))?;
    } else {
        for f in files {
            if !f.is_file() {
                return Err(input_error(format!("{}: no such file", f.display())));
            }
        }
        all.extend(other_inventory_files(cfg, files));
        all.extend(files.iter().cloned());
    }
    let report = load_files(&all, &full_checks(cfg));
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "valid": report.is_valid(),
                "files": report.files,
                "entries": report.entries.len(),
                "errors": report.errors.iter().map(|e| {
                    let at = e.location();
                    json!({"file": at.file, "entry": at.entry, "field": at.field, "message": e.to_string()})
                }).collect::<Vec<_>>(),
            }))?
        );
    } else {
        for f in &report.files {
            if !report.errors.iter().any(|e| &e.location().file == f) {
                let n = report.entries.iter().filter(|e| &e.source == f).count();
                println!(
                    "{}: ok ({n} certificate{})",
                    f.display(),
                    if n == 1 { "" } else { "s" }
                );
            }
        }
        print_errors(&report.errors);
        if !report.errors.is_empty() {
            eprintln!(
                "{} error{} found",
                report.errors.len(),
                if report.errors.len() == 1 { "" } else { "s" }
            );
        }
    }
    Ok(if report.is_valid() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}
