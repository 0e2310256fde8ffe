//! Changing the inventory: add a file to the inventory directory, take an entry out. The
//! caller's file travels as content (read with the caller's permissions), so the daemon is
//! never handed a path to read on someone else's behalf.

use std::path::{Path, PathBuf};

use certresponder_inventory::{LoadOptions, did_you_mean, inventory_files, load_files};
use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::{Ctx, Op, Role, Service, ServiceError};
use certresponder_inventory::Bundle;
use serde_json::json;

use crate::config::Config;
use crate::registry::{LiveState, SyncReport};
use crate::store::{CertRecord, CertStatus, Store};

/// `inventory add FILE [--replace]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AddArgs {
    /// The file as the caller named it (for messages).
    pub shown_as: PathBuf,
    /// Its name in the inventory directory (ends in `.toml`).
    pub file_name: String,
    /// Its content.
    pub content: String,
    /// Overwrite a different file of the same name.
    pub replace: bool,
}

/// A certificate of an added file, and what registering it did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AddedEntry {
    /// The inventory name.
    pub name: String,
    /// `registered`, `updated` or `unchanged`.
    pub state: String,
    /// The bundle recorded from its files, if a new one was.
    pub bundle: Option<String>,
}

/// What adding a file did.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Added {
    /// Installed and registered.
    Added {
        /// Where it was installed.
        installed_as: PathBuf,
        /// Its entries.
        entries: Vec<AddedEntry>,
        /// Names registered for the first time (by the whole sync).
        registered: Vec<String>,
        /// Names whose entry changed.
        updated: Vec<String>,
    },
    /// Not added: what is wrong with it, each naming the file, entry and field.
    Rejected {
        /// The errors.
        errors: Vec<String>,
    },
}

/// Validates a file against the rest of the inventory and installs it.
pub struct Add;

fn full_checks(svc: &Service) -> LoadOptions {
    LoadOptions {
        check_files: true,
        known_issuers: Some(svc.config().issuer_ids()),
    }
}

impl Op for Add {
    const NAME: &'static str = "inventory_add";
    const CHANGES: bool = true;
    const ROLE: Role = Role::Operate;
    type Args = AddArgs;
    type Output = Added;

    fn run(svc: &Service, _ctx: &Ctx<'_>, args: AddArgs) -> Result<Added, ServiceError> {
        let cfg = svc.config();
        let name = Path::new(&args.file_name);
        if name.components().count() != 1
            || name.extension().is_none_or(|e| e != "toml")
            || args.file_name.starts_with('.')
        {
            return Err(ServiceError::Input(format!(
                "{}: inventory files must end in .toml",
                args.shown_as.display()
            )));
        }
        let dir = &cfg.inventory_dir;
        certresponder_inventory::fs::create_dir_with_mode(dir, 0o755)
            .map_err(|e| ServiceError::Failed(format!("creating {}: {e}", dir.display())))?;
        let dest = dir.join(name);
        // The candidate is checked beside the other files under a hidden name, which the
        // loader and a reload pass over.
        let candidate = dir.join(format!(".{}.adding-{}", args.file_name, std::process::id()));
        certresponder_inventory::fs::write_atomic(&candidate, args.content.as_bytes(), 0o600)
            .map_err(|e| ServiceError::Failed(format!("writing {}: {e}", candidate.display())))?;
        let mut files: Vec<PathBuf> = inventory_files(dir)
            .unwrap_or_default()
            .into_iter()
            .filter(|f| f != &dest)
            .collect();
        files.push(candidate.clone());
        let report = load_files(&files, &full_checks(svc));
        let _ = std::fs::remove_file(&candidate);
        let shown = args.shown_as.display().to_string();
        let errors: Vec<String> = report
            .errors
            .iter()
            .filter(|e| e.location().file == candidate)
            .map(|e| {
                e.to_string()
                    .replace(&candidate.display().to_string(), &shown)
            })
            .collect();
        if !errors.is_empty() {
            return Ok(Added::Rejected { errors });
        }
        let names: Vec<String> = report
            .entries
            .iter()
            .filter(|e| e.source == candidate)
            .map(|e| e.name.to_string())
            .collect();
        let existing = std::fs::read(&dest).ok();
        if existing.is_some()
            && !args.replace
            && existing.as_deref() != Some(args.content.as_bytes())
        {
            return Err(ServiceError::Input(format!(
                "{} already exists in the inventory directory; pass --replace to overwrite it",
                dest.display()
            )));
        }
        if existing.as_deref() != Some(args.content.as_bytes()) {
            certresponder_inventory::fs::write_atomic(&dest, args.content.as_bytes(), 0o644)
                .map_err(|e| ServiceError::Failed(format!("installing {}: {e}", dest.display())))?;
        }
        let r = cfg.sync_inventory(svc.store(), Utc::now())?;
        let entries = names
            .iter()
            .map(|n| AddedEntry {
                name: n.clone(),
                state: if r.registered.contains(n) {
                    "registered"
                } else if r.updated.contains(n) {
                    "updated"
                } else {
                    "unchanged"
                }
                .into(),
                bundle: r
                    .new_bundles
                    .iter()
                    .find(|(b, _)| b == n)
                    .map(|(_, b)| b.clone()),
            })
            .collect();
        Ok(Added::Added {
            installed_as: dest,
            entries,
            registered: r.registered,
            updated: r.updated,
        })
    }
}

/// `inventory remove NAME`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RemoveArgs {
    /// The inventory name.
    pub name: String,
}

/// What taking an entry out did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Removed {
    /// The name.
    pub removed: String,
    /// The file it was in.
    pub file: PathBuf,
    /// Whether the file was deleted (it held no other entry).
    pub file_deleted: bool,
    /// Bundles kept in the store.
    pub bundles_kept: usize,
    /// Whether the store marked it removed.
    pub marked_removed: bool,
}

/// "no certificate named `x` is registered", with a suggestion.
pub fn unknown_name(store: &dyn Store, name: &str) -> ServiceError {
    let names: Vec<String> = store
        .list_certs()
        .unwrap_or_default()
        .into_iter()
        .map(|r| r.entry.name.to_string())
        .collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let hint = did_you_mean(name, &refs)
        .map(|s| format!("; did you mean `{s}`?"))
        .unwrap_or_default();
    ServiceError::Input(format!("no certificate named `{name}` is registered{hint}"))
}

/// Takes an entry out of its inventory file; its history stays in the store.
pub struct Remove;

impl Op for Remove {
    const NAME: &'static str = "inventory_remove";
    const CHANGES: bool = true;
    const ROLE: Role = Role::Operate;
    type Args = RemoveArgs;
    type Output = Removed;

    fn run(svc: &Service, _ctx: &Ctx<'_>, args: RemoveArgs) -> Result<Removed, ServiceError> {
        let (store, cfg, name) = (svc.store(), svc.config(), args.name.as_str());
        cfg.sync_inventory(store, Utc::now())?;
        let rec = match store.get_cert(name)? {
            Some(r) if r.status == CertStatus::Active => r,
            Some(_) => {
                return Err(ServiceError::Input(format!(
                    "`{name}` is already removed from the inventory"
                )));
            }
            None => return Err(unknown_name(store, name)),
        };
        let source = rec.entry.source.clone();
        let at = source.display();
        let text = std::fs::read_to_string(&source)
            .map_err(|e| ServiceError::Failed(format!("reading {at}: {e}")))?;
        let mut doc: toml_edit::DocumentMut = text
            .parse()
            .map_err(|e| ServiceError::Input(format!("{at}: not valid TOML: {e}")))?;
        let remaining = {
            let certs = doc
                .get_mut("cert")
                .and_then(|c| c.as_array_of_tables_mut())
                .ok_or_else(|| ServiceError::Input(format!("{at}: has no [[cert]] entries")))?;
            let index = certs
                .iter()
                .position(|t| t.get("name").and_then(|n| n.as_str()) == Some(name))
                .ok_or_else(|| {
                    ServiceError::Input(format!("{at}: no [[cert]] entry named `{name}`"))
                })?;
            certs.remove(index);
            certs.len()
        };
        if remaining == 0 {
            std::fs::remove_file(&source)
                .map_err(|e| ServiceError::Failed(format!("removing {at}: {e}")))?;
        } else {
            certresponder_inventory::fs::write_atomic(&source, doc.to_string().as_bytes(), 0o644)
                .map_err(|e| ServiceError::Failed(format!("rewriting {at}: {e}")))?;
        }
        let report = cfg.sync_inventory(store, Utc::now())?;
        Ok(Removed {
            removed: name.to_string(),
            bundles_kept: store.bundles(name)?.len(),
            marked_removed: report.removed.iter().any(|n| n == name),
            file: source,
            file_deleted: remaining == 0,
        })
    }
}

/// How a value stands out for a person: as it is, as a warning, as an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Standing {
    /// Nothing to see.
    Plain,
    /// Worth a look.
    Warn,
    /// Needs action.
    Alert,
}

/// `inventory list [--all]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ListArgs {
    /// Removed certificates too.
    pub all: bool,
}

/// Reconciles the store with the inventory and lists the certificates.
pub struct List;

impl Op for List {
    const NAME: &'static str = "inventory_list";
    const CHANGES: bool = true;
    const ROLE: Role = Role::Read;
    type Args = ListArgs;
    type Output = Listing;

    fn run(svc: &Service, _ctx: &Ctx<'_>, args: ListArgs) -> Result<Listing, ServiceError> {
        listing(svc.store(), svc.config(), args.all)
    }
}

/// `inventory list` as computed where the store is (in this process, or in the daemon for
/// its control socket) and printed by the CLI.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Listing {
    /// One per certificate.
    pub certificates: Vec<Listed>,
    /// Inventory errors, as text.
    pub inventory_errors: Vec<String>,
    /// Names found no longer in the inventory by this listing's reconciliation.
    pub removed: Vec<String>,
    /// The inventory directory (named when it holds nothing).
    pub inventory_dir: PathBuf,
}

/// One certificate of a [`Listing`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Listed {
    /// What `inventory list --json` shows about it.
    pub item: serde_json::Value,
    /// The table row's cells: NAME to STATUS.
    pub row: Vec<String>,
    /// How DAYS and STATUS stand out.
    pub tone: Standing,
}

/// Reconciles the store with the inventory and lists the certificates (with `all`, the
/// removed ones too).
pub fn listing(store: &dyn Store, cfg: &Config, all: bool) -> Result<Listing, ServiceError> {
    let report = cfg.sync_inventory(store, Utc::now())?;
    let bad_files = error_files(&report);
    let now = Utc::now();
    let mut certificates = Vec::new();
    for rec in store
        .list_certs()?
        .into_iter()
        .filter(|r| all || r.status == CertStatus::Active)
    {
        let name = rec.entry.name.to_string();
        let live = report.live.get(&name);
        let (status, tone) = status_of(&rec, live, bad_files.contains(&rec.entry.source), cfg);
        let cert = live.and_then(|l| l.cert.as_ref());
        let bundles = store.bundles(&name)?;
        let current = Bundle::current_of(&bundles);
        let item = json!({
            "name": name,
            "owner": rec.entry.owner,
            "tags": rec.entry.tags,
            "kind": rec.entry.kind,
            "trust": rec.entry.trust,
            "issuer": rec.entry.issuer,
            "record": rec.status,
            "status": status.trim_start_matches("! ").to_lowercase().replace(' ', "_"),
            "key": cert.map(|c| c.key.describe()),
            "not_after": cert.map(|c| c.not_after),
            "days_left": cert.map(|c| days_left(c.seconds_left(now))),
            "problems": live.map(|l| l.problems.clone()).unwrap_or_default(),
            "bundles": bundles.len(),
            "current_bundle": current.map(|b| b.id.clone()),
        });
        // Without a readable certificate (removed, broken), the stored current bundle
        // still tells when it expires.
        let not_after = cert
            .map(|c| c.not_after)
            .or_else(|| current.map(|b| b.not_after));
        let days = not_after.map(|t| days_left((t - now).num_seconds()));
        let row = vec![
            name,
            rec.entry.owner.clone(),
            rec.entry.kind.as_str().to_string(),
            rec.entry.trust.as_str().to_string(),
            rec.entry.issuer.clone().unwrap_or_else(|| "-".into()),
            cert.map_or_else(|| "-".into(), |c| c.key.describe()),
            not_after.map_or_else(|| "-".into(), |t| t.format("%Y-%m-%d").to_string()),
            days.map_or_else(|| "-".into(), |d| d.to_string()),
            status,
        ];
        certificates.push(Listed { item, row, tone });
    }
    Ok(Listing {
        certificates,
        inventory_errors: report.errors.iter().map(ToString::to_string).collect(),
        removed: report.removed,
        inventory_dir: cfg.inventory_dir.clone(),
    })
}

pub fn status_of(
    rec: &CertRecord,
    live: Option<&LiveState>,
    in_error: bool,
    cfg: &Config,
) -> (String, Standing) {
    if rec.status == CertStatus::Removed {
        return ("removed".into(), Standing::Plain);
    }
    let Some(live) = live else {
        let text = if in_error {
            "! INVALID ENTRY"
        } else {
            "! NOT CHECKED"
        };
        return (text.into(), Standing::Alert);
    };
    if let Some(p) = live.problems.first() {
        let text = if p.contains("does not match") {
            "! KEY MISMATCH"
        } else if p.contains("cannot read") {
            "! UNREADABLE"
        } else {
            "! UNPARSEABLE"
        };
        return (text.into(), Standing::Alert);
    }
    match &live.cert {
        Some(c) => {
            let left = c.seconds_left(Utc::now());
            if left <= 0 {
                ("! EXPIRED".into(), Standing::Alert)
            } else if left < i64::from(cfg.expiry_warning_days) * 86_400 {
                ("! EXPIRING".into(), Standing::Warn)
            } else {
                ("ok".into(), Standing::Plain)
            }
        }
        None => ("! UNPARSEABLE".into(), Standing::Alert),
    }
}

/// Whole days left, counting a started day: a certificate issued for 90 days shows 90.
pub fn days_left(seconds: i64) -> i64 {
    if seconds > 0 {
        (seconds + 86_399) / 86_400
    } else {
        seconds.div_euclid(86_400)
    }
}

pub fn error_files(report: &SyncReport) -> Vec<PathBuf> {
    report
        .errors
        .iter()
        .map(|e| e.location().file.clone())
        .collect()
}

/// `inventory show NAME`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShowArgs {
    /// The inventory name.
    pub name: String,
}

/// The live certificate as `inventory show` prints it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LiveCert {
    /// Subject DN.
    pub subject: String,
    /// Issuer DN.
    pub issuer: String,
    /// Serial, hex.
    pub serial: String,
    /// DNS names and IP addresses.
    pub names: Vec<String>,
    /// The key, described.
    pub key: String,
    /// The signature algorithm.
    pub signature: String,
    /// notBefore.
    pub not_before: chrono::DateTime<Utc>,
    /// notAfter.
    pub not_after: chrono::DateTime<Utc>,
    /// Embedded SCTs.
    pub scts: usize,
    /// SHA-256, SPKI SHA-256 and RFC 6962 TBS hash, hex.
    pub sha256: String,
    /// SPKI SHA-256, hex.
    pub spki: String,
    /// TBS hash, hex.
    pub tbs: String,
}

/// One certificate, whole: its entry, state, live certificate, bundles and events.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Shown {
    /// `inventory show --json`.
    pub json: serde_json::Value,
    /// The record.
    pub record: CertRecord,
    /// The status (`ok`, `! EXPIRING`...).
    pub status: String,
    /// The certificate at its location now, when it parses.
    pub live: Option<LiveCert>,
    /// Problems with the entry's files.
    pub problems: Vec<String>,
    /// The bundles, oldest first.
    pub bundles: Vec<super::history::BundleSummary>,
    /// The events, oldest first.
    pub events: Vec<crate::store::Event>,
}

/// Shows one certificate (the inventory brought into the store first).
pub struct Show;

impl Op for Show {
    const NAME: &'static str = "inventory_show";
    const CHANGES: bool = true;
    const ROLE: Role = Role::Read;
    type Args = ShowArgs;
    type Output = Shown;

    fn run(svc: &Service, _ctx: &Ctx<'_>, args: ShowArgs) -> Result<Shown, ServiceError> {
        let (store, cfg, name) = (svc.store(), svc.config(), args.name.as_str());
        let report = cfg.sync_inventory(store, Utc::now())?;
        let Some(rec) = store.get_cert(name)? else {
            return Err(unknown_name(store, name));
        };
        let bundles = store.bundles(name)?;
        let events = store.events(Some(name))?;
        let live = report.live.get(name);
        let (status, _) = status_of(
            &rec,
            live,
            error_files(&report).contains(&rec.entry.source),
            cfg,
        );
        let bundles_json: Vec<_> = bundles
            .iter()
            .map(|b| {
                json!({
                    "id": b.id, "state": b.state, "origin": b.origin, "serial": b.serial,
                    "issuer": b.issuer, "not_after": b.not_after, "created_at": b.created_at,
                    "fingerprints": b.fingerprints, "has_key": b.key_pem.is_some(),
                })
            })
            .collect();
        let cert = live.and_then(|l| l.cert.as_ref());
        let shown_json = json!({
            "entry": rec.entry,
            "record": rec.status,
            "registered_at": rec.registered_at,
            "updated_at": rec.updated_at,
            "status": status.trim_start_matches("! ").to_lowercase().replace(' ', "_"),
            "certificate": cert,
            "problems": live.map(|l| l.problems.clone()).unwrap_or_default(),
            "bundles": bundles_json,
            "events": events,
        });
        Ok(Shown {
            json: shown_json,
            status,
            live: cert.map(|c| LiveCert {
                subject: c.subject.clone(),
                issuer: c.issuer.clone(),
                serial: c.serial.clone(),
                names: c
                    .dns_names
                    .iter()
                    .cloned()
                    .chain(c.ip_addresses.iter().map(ToString::to_string))
                    .collect(),
                key: c.key.describe(),
                signature: c.signature_algorithm.clone(),
                not_before: c.not_before,
                not_after: c.not_after,
                scts: c.scts.len(),
                sha256: c.fingerprints.cert_sha256.clone(),
                spki: c.fingerprints.spki_sha256.clone(),
                tbs: c.fingerprints.tbs_sha256.clone(),
            }),
            problems: live.map(|l| l.problems.clone()).unwrap_or_default(),
            bundles: bundles
                .iter()
                .map(super::history::BundleSummary::of)
                .collect(),
            record: rec,
            events,
        })
    }
}
