//! `certresponder check-config`: validates the configuration, the inventory, every issuer's
//! settings and the response policy together, without contacting a CA or changing anything.

use std::path::Path;
use std::process::ExitCode;

use certresponder_inventory::{LoadOptions, load_dir};
use serde_json::json;

use super::{CliError, load_config};

pub(crate) fn run(
    config: Option<&Path>,
    json: bool,
    _systemd_dropin: bool,
) -> Result<ExitCode, CliError> {
    let cfg = load_config(config)?;
    let mut problems: Vec<String> = Vec::new();
    let inventory = if cfg.inventory_dir.is_dir() {
        let report = load_dir(
            &cfg.inventory_dir,
            &LoadOptions {
                check_files: true,
                known_issuers: Some(cfg.issuer_ids()),
            },
        );
        problems.extend(report.errors.iter().map(ToString::to_string));
        Some((report.entries.len(), report.files.len()))
    } else {
        problems.push(format!(
            "{}: the inventory directory does not exist",
            cfg.inventory_dir.display()
        ));
        None
    };
    let mut issuers = Vec::new();
    for spec in &cfg.issuers {
        let found = crate::issuers::check(spec);
        problems.extend(found.iter().map(|p| format!("issuer `{}`: {p}", spec.id)));
        issuers.push((spec.id.clone(), spec.type_name(), found));
    }
    let policy = match crate::policy::Policy::load(&cfg) {
        Ok(p) => Some((p.source.clone(), p.rules.len())),
        Err(e) => {
            problems.push(format!("policy: {e}"));
            None
        }
    };
    let source = cfg.source.as_ref().map_or_else(
        || "(built-in defaults)".to_string(),
        |p| p.display().to_string(),
    );
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "config": source,
                "valid": problems.is_empty(),
                "state_dir": cfg.state_dir,
                "inventory_dir": cfg.inventory_dir,
                "certificates": inventory.map(|(n, _)| n),
                "policy": policy.as_ref().map(|(src, n)| json!({"source": src, "rules": n})),
                "issuers": issuers.iter().map(|(id, ty, p)| json!({"id": id, "type": ty, "problems": p})).collect::<Vec<_>>(),
                "problems": problems,
            }))?
        );
    } else {
        println!("config:     {source}");
        println!("state:      {}", cfg.state_dir.display());
        match inventory {
            Some((n, files)) => println!(
                "inventory:  {} ({n} certificate{} in {files} file{})",
                cfg.inventory_dir.display(),
                if n == 1 { "" } else { "s" },
                if files == 1 { "" } else { "s" }
            ),
            None => println!("inventory:  {} (missing)", cfg.inventory_dir.display()),
        }
        match &policy {
            Some((src, n)) => println!("policy:     {src} ({n} rules)"),
            None => println!("policy:     PROBLEMS"),
        }
        for (id, ty, found) in &issuers {
            println!(
                "issuer:     {id} ({ty}): {}",
                if found.is_empty() { "ok" } else { "PROBLEMS" }
            );
        }
        for p in &problems {
            eprintln!("error: {p}");
        }
        println!(
            "{}",
            if problems.is_empty() {
                "configuration is valid".to_string()
            } else {
                format!(
                    "{} problem{} found",
                    problems.len(),
                    if problems.len() == 1 { "" } else { "s" }
                )
            }
        );
    }
    Ok(if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}
