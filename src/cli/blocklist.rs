//! `certresponder blocklist {import,list,check,remove}`: lists of published and predictable
//! private keys (badkeys' `blocklist.dat`, Debian's openssl-blacklist, SPKI SHA-256 lists),
//! kept in the state directory, which `scan` and `analyze` check every key against.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use certresponder_inventory::inspect::{self, Object};
use clap::Subcommand;
use serde::Serialize;
use serde_json::json;

use base64::Engine as _;

use super::analyze::FINDINGS_FOUND;
use super::backend::Backend;
use super::table::{Cell, render};
use super::{CliError, input_error, load_config};
use crate::service::blocklist as ops;
use crate::signals::Finding;
use crate::signals::exposure::blocklist::{
    self, BlocklistError, Blocklists, Format, Hit, object_key,
};
use crate::signals::exposure::identity::KeyIds;

/// `blocklist` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum BlocklistCommand {
    /// Import a list (or replace the list of the same name)
    #[command(
        after_help = "Formats: badkeys (blocklist.dat: sorted 16-byte records, BKHASH120 and a source id), \
debian (openssl-blacklist: one 20-hex-digit suffix per line), spki (one SPKI SHA-256 per line, 64 hex digits). \
Without --format the format is told from the content.\nExit status: 0 imported; 2 the file is not a valid list; 1 another failure."
    )]
    Import {
        /// The list file
        file: PathBuf,
        /// The list's format [default: detected]
        #[arg(long, value_parser = ["badkeys", "debian", "spki", "badkeys-primes"])]
        format: Option<String>,
        /// The list's name [default: from the file name]
        #[arg(long)]
        name: Option<String>,
        /// Machine-readable output
        #[arg(long)]
        json: bool,
    },
    /// List the imported lists
    List {
        /// Machine-readable output
        #[arg(long)]
        json: bool,
    },
    /// Print the identities of the keys in files (certificates, CSRs, public or private keys)
    /// and the lists they are on
    #[command(
        after_help = "Exit status: 0 no key is on a list; 3 a key is on a list; 2 a file could not be read \
(the other files are still checked); 1 another failure (an imported list could not be loaded)."
    )]
    Check {
        /// Files to check (PEM or DER)
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Machine-readable output
        #[arg(long)]
        json: bool,
    },
    /// Remove an imported list
    Remove {
        /// The list's name
        name: String,
        /// Machine-readable output
        #[arg(long)]
        json: bool,
    },
}

pub(crate) fn run(cmd: BlocklistCommand, config: Option<&Path>) -> Result<ExitCode, CliError> {
    let cfg = load_config(config)?;
    match cmd {
        BlocklistCommand::Import {
            file,
            format,
            name,
            json,
        } => {
            let format = format
                .map(|f| f.parse::<Format>().map_err(input_error))
                .transpose()?;
            // Read here, with the caller's permissions; whoever owns the state directory
            // (the daemon, while it runs) stores it.
            let bytes = std::fs::read(&file).map_err(|source| {
                input_error(BlocklistError::Io {
                    path: file.clone(),
                    source,
                })
            })?;
            let source = std::path::absolute(&file).unwrap_or_else(|_| file.clone());
            let imported = Backend::choose(cfg).call::<ops::Import>(ops::ImportArgs {
                source,
                content_b64: base64::engine::general_purpose::STANDARD.encode(bytes),
                format,
                name,
            })?;
            if json {
                println!("{}", serde_json::to_string_pretty(&imported)?);
            } else {
                let l = &imported.list;
                println!(
                    "{} `{}` ({}{}, {} record{}) from {}",
                    if imported.replaced {
                        "replaced"
                    } else {
                        "imported"
                    },
                    l.name,
                    l.format,
                    if imported.detected { ", detected" } else { "" },
                    grouped(l.records),
                    if l.records == 1 { "" } else { "s" },
                    file.display()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        BlocklistCommand::List { json } => {
            let lists = blocklist::list(&cfg.blocklist_dir())?;
            if json {
                println!("{}", serde_json::to_string_pretty(&lists)?);
            } else if lists.is_empty() {
                println!("no blocklists imported (certresponder blocklist import FILE)");
            } else {
                let rows: Vec<Vec<Cell>> = lists
                    .iter()
                    .map(|l| {
                        vec![
                            Cell::plain(l.name.clone()),
                            Cell::plain(l.format.name()),
                            Cell::plain(grouped(l.records)),
                            Cell::plain(l.imported_at.format("%Y-%m-%d %H:%M").to_string()),
                            Cell::plain(l.source.clone()),
                        ]
                    })
                    .collect();
                print!(
                    "{}",
                    render(&["NAME", "FORMAT", "RECORDS", "IMPORTED", "SOURCE"], &rows)
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        BlocklistCommand::Remove { name, json } => {
            let removed =
                Backend::choose(cfg.clone()).call::<ops::Remove>(ops::RemoveArgs { name })?;
            if json {
                println!("{}", serde_json::to_string_pretty(&removed)?);
            } else {
                println!(
                    "removed `{}` ({}, {} records)",
                    removed.name,
                    removed.format,
                    grouped(removed.records)
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        BlocklistCommand::Check { files, json } => {
            let lists = blocklist::load_all(&cfg.blocklist_dir())?;
            check(&files, &lists, json)
        }
    }
}

/// `1234567` as `1,234,567`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// One key checked.
#[derive(Debug, Serialize)]
struct Checked {
    #[serde(rename = "type")]
    kind: &'static str,
    description: String,
    key: String,
    ids: KeyIds,
    hits: Vec<Hit>,
    findings: Vec<Finding>,
}

/// One file checked.
#[derive(Debug, Serialize)]
struct FileChecked {
    path: PathBuf,
    error: Option<String>,
    objects: Vec<Checked>,
}

fn describe(obj: &Object) -> (&'static str, String) {
    match obj {
        Object::Certificate(c) => ("certificate", c.subject.clone()),
        Object::PrivateKey(k) => ("private-key", format!("{:?} private key", k.format)),
        Object::PublicKey(_) => ("public-key", "public key".into()),
        Object::Csr(c) => ("csr", c.subject.clone()),
        _ => ("object", String::new()),
    }
}

fn check_file(path: &Path, lists: &Blocklists) -> FileChecked {
    let objects = std::fs::read(path)
        .map_err(|e| format!("cannot read: {e}"))
        .and_then(|bytes| inspect::inspect_any(&bytes).map_err(|e| e.to_string()));
    match objects {
        Ok(objects) => FileChecked {
            path: path.to_path_buf(),
            error: None,
            objects: objects
                .iter()
                .filter_map(|o| {
                    let key = object_key(o)?;
                    let (kind, description) = describe(o);
                    let ids = KeyIds::of(key);
                    let hits = lists.hits(&ids);
                    let mut findings = blocklist::findings(&hits, &key.describe());
                    if let inspect::KeyInfo::Rsa { modulus, bits, .. } = key {
                        findings.extend(lists.known_primes(modulus, *bits));
                    }
                    Some(Checked {
                        kind,
                        description,
                        key: key.describe(),
                        ids,
                        hits,
                        findings,
                    })
                })
                .collect(),
        },
        Err(e) => FileChecked {
            path: path.to_path_buf(),
            error: Some(e),
            objects: Vec::new(),
        },
    }
}

fn check(files: &[PathBuf], lists: &Blocklists, json: bool) -> Result<ExitCode, CliError> {
    let results: Vec<FileChecked> = files.iter().map(|p| check_file(p, lists)).collect();
    let unreadable = results.iter().filter(|r| r.error.is_some()).count();
    let keys = results.iter().map(|r| r.objects.len()).sum::<usize>();
    let on_lists = results
        .iter()
        .flat_map(|r| &r.objects)
        .filter(|o| !o.findings.is_empty())
        .count();
    let names: Vec<&str> = lists.lists().map(|l| l.name.as_str()).collect();
    let problems: Vec<String> = lists.problems().iter().map(ToString::to_string).collect();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if json {
        let doc = json!({
            "files": results,
            "lists": names,
            "lists_unreadable": problems,
            "summary": {
                "files": results.len(),
                "unreadable": unreadable,
                "keys": keys,
                "on_lists": on_lists,
            },
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
    } else {
        for r in &results {
            if let Some(e) = &r.error {
                writeln!(out, "{}: ! unreadable: {e}", r.path.display())?;
                continue;
            }
            for (i, o) in r.objects.iter().enumerate() {
                let label = super::analyze::object_label(&r.path, i, r.objects.len());
                writeln!(out, "{label}: {} {} ({})", o.kind, o.description, o.key)?;
                let ids = [
                    ("spki_sha256", o.ids.spki_sha256.clone()),
                    ("spki_sha256_alt", o.ids.spki_sha256_alt.clone()),
                    ("bkhash", o.ids.bkhash_hex()),
                    ("number_sha256", o.ids.number_sha256.clone()),
                    ("modulus_sha256", o.ids.modulus_sha256.clone()),
                    ("debian_suffix", o.ids.debian_suffix.clone()),
                ];
                for (name, value) in ids {
                    if let Some(v) = value {
                        writeln!(out, "  {name:<16} {v}")?;
                    }
                }
                for f in &o.findings {
                    let act = match (f.revocation_reason, f.deadline_hours) {
                        (Some(r), Some(h)) => format!(" -> revoke ({r}) within {h} h"),
                        _ => String::new(),
                    };
                    writeln!(
                        out,
                        "  ! [{:?}] {}: {}{act}",
                        f.confidence, f.check, f.message
                    )?;
                }
            }
        }
        for p in &problems {
            writeln!(out, "! not checked: {p}")?;
        }
        writeln!(
            out,
            "{} file{}, {keys} key{}, {on_lists} on a blocklist; {} list{} checked{}",
            results.len(),
            if results.len() == 1 { "" } else { "s" },
            if keys == 1 { "" } else { "s" },
            names.len(),
            if names.len() == 1 { "" } else { "s" },
            if unreadable > 0 {
                format!(", {unreadable} file(s) unreadable")
            } else {
                String::new()
            }
        )?;
    }
    out.flush()?;
    // A key on a list outranks an unreadable file in the exit code: say so on stderr too,
    // so that the unreadable file is not lost.
    for r in &results {
        if let Some(e) = &r.error {
            eprintln!("certresponder: {}: unreadable: {e}", r.path.display());
        }
    }
    Ok(ExitCode::from(check_status(
        unreadable,
        on_lists,
        !problems.is_empty(),
    )))
}

/// The exit status of `blocklist check`: a key on a list (3) wins over an unreadable file
/// (2), which wins over unreadable lists (1).
fn check_status(unreadable: usize, on_lists: usize, list_problems: bool) -> u8 {
    if on_lists > 0 {
        FINDINGS_FOUND
    } else if unreadable > 0 {
        2
    } else if list_problems {
        1
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_on_a_list_wins_over_an_unreadable_file() {
        assert_eq!(check_status(1, 1, true), FINDINGS_FOUND);
        assert_eq!(check_status(1, 0, true), 2);
        assert_eq!(check_status(0, 0, true), 1);
        assert_eq!(check_status(0, 0, false), 0);
    }

    #[test]
    fn numbers_are_grouped_by_thousands() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(3_900_000), "3,900,000");
    }
}
