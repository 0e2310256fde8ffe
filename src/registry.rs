//! Registration: keeps the store in step with the inventory directory, which is the source
//! of truth for what is managed. The store keeps the state and the bundle history.
//!
//! Reconciling never loses stored data: an entry whose file cannot be read or has errors
//! keeps its last registered record, and a certificate taken out of the inventory is marked
//! removed, with its history kept for rollback and audit.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use certresponder_inventory::inspect::{self, CertInfo};
use certresponder_inventory::{
    Bundle, BundleState, InventoryError, LoadOptions, Location, ManagedCert, check_files, load_dir,
};
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::store::{CertRecord, CertStatus, Event, Store, StoreError};

/// The live state of one entry's files.
#[derive(Debug, Clone, Serialize)]
pub struct LiveState {
    /// The leaf certificate as read now, when it parses.
    pub cert: Option<CertInfo>,
    /// Problems with the entry's files (unreadable, unparseable, key mismatch).
    pub problems: Vec<String>,
}

/// What a reconciliation did and found.
#[derive(Debug, Default, Serialize)]
pub struct SyncReport {
    /// Names registered for the first time (or again after removal).
    pub registered: Vec<String>,
    /// Names whose entry changed.
    pub updated: Vec<String>,
    /// Names taken out of the inventory.
    pub removed: Vec<String>,
    /// (name, bundle id) of bundles newly recorded.
    pub new_bundles: Vec<(String, String)>,
    /// Inventory errors; the entries they concern keep their stored record.
    #[serde(serialize_with = "errors_as_strings")]
    pub errors: Vec<InventoryError>,
    /// Live state of every entry in the inventory.
    pub live: BTreeMap<String, LiveState>,
}

fn errors_as_strings<S: serde::Serializer>(e: &[InventoryError], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(e.iter().map(ToString::to_string))
}

fn event(cert: &str, kind: &str, detail: String, now: DateTime<Utc>) -> Event {
    Event {
        seq: 0,
        at: now,
        cert: cert.to_string(),
        kind: kind.to_string(),
        detail,
    }
}

/// Brings the store in line with the inventory directory `dir`, whose entries may name the
/// issuers `issuer_ids`.
pub fn sync(
    store: &dyn Store,
    dir: &Path,
    issuer_ids: &[String],
    now: DateTime<Utc>,
) -> Result<SyncReport, StoreError> {
    let opts = LoadOptions {
        check_files: false,
        known_issuers: Some(issuer_ids.to_vec()),
    };
    let loaded = if dir.is_dir() {
        load_dir(dir, &opts)
    } else {
        certresponder_inventory::LoadReport::default()
    };
    let mut report = SyncReport {
        errors: loaded.errors,
        ..SyncReport::default()
    };
    // Files with any error: records from them are never marked removed on this pass.
    let mut doubtful: HashSet<PathBuf> = loaded.failed_files.into_iter().collect();
    doubtful.extend(report.errors.iter().map(|e| e.location().file.clone()));
    if !dir.is_dir() {
        doubtful.insert(dir.to_path_buf());
    }

    let mut present = HashSet::new();
    for entry in &loaded.entries {
        present.insert(entry.name.to_string());
        record_entry(store, entry, now, &mut report)?;
    }
    for rec in store.list_certs()? {
        let name = rec.entry.name.to_string();
        if rec.status == CertStatus::Active
            && !present.contains(&name)
            && !doubtful.contains(&rec.entry.source)
            && dir.is_dir()
        {
            let mut rec = rec;
            rec.status = CertStatus::Removed;
            rec.updated_at = now;
            store.put_cert(&rec)?;
            store.append_event(event(
                &name,
                "removed",
                format!(
                    "no longer in the inventory (was in {})",
                    rec.entry.source.display()
                ),
                now,
            ))?;
            report.removed.push(name);
        }
    }
    Ok(report)
}

fn record_entry(
    store: &dyn Store,
    entry: &ManagedCert,
    now: DateTime<Utc>,
    report: &mut SyncReport,
) -> Result<(), StoreError> {
    let name = entry.name.to_string();
    match store.get_cert(&name)? {
        None => {
            store.put_cert(&CertRecord {
                entry: entry.clone(),
                status: CertStatus::Active,
                registered_at: now,
                updated_at: now,
            })?;
            store.append_event(event(
                &name,
                "registered",
                format!("from {}", entry.source.display()),
                now,
            ))?;
            report.registered.push(name.clone());
        }
        Some(mut rec) if rec.status == CertStatus::Removed || rec.entry != *entry => {
            let kind = if rec.status == CertStatus::Removed {
                "registered"
            } else {
                "updated"
            };
            rec.entry = entry.clone();
            rec.status = CertStatus::Active;
            rec.updated_at = now;
            store.put_cert(&rec)?;
            store.append_event(event(
                &name,
                kind,
                format!("from {}", entry.source.display()),
                now,
            ))?;
            if kind == "registered" {
                report.registered.push(name.clone());
            } else {
                report.updated.push(name.clone());
            }
        }
        Some(_) => {}
    }

    // Live state and the current bundle.
    let at = Location {
        file: entry.source.clone(),
        entry: Some(format!("\"{name}\"")),
        field: None,
    };
    let problems: Vec<String> = check_files(entry, &at)
        .iter()
        .map(ToString::to_string)
        .collect();
    let cert = std::fs::read(&entry.paths.cert)
        .ok()
        .and_then(|b| inspect::inspect_certificates(&b).ok())
        .and_then(|c| c.into_iter().next());
    if problems.is_empty() {
        match Bundle::read_current(entry, now) {
            Ok(bundle) => {
                let known = store.bundles(&name)?;
                // A bundle already in the history (the same leaf) is that bundle again, never
                // recorded twice: an earlier one put back in place becomes current; a revoked
                // one stays revoked (it is deployed, and clients that check will refuse it).
                let already = known.iter().rev().find(|b| b.id == bundle.id);
                if let Some(b) = already
                    && b.state == BundleState::Previous
                    && !b.is_revoked()
                {
                    store.set_bundle_state(&name, &b.id, BundleState::Current)?;
                    store.append_event(event(
                        &name,
                        "bundle_current",
                        format!("bundle {} is in place again", b.id),
                        now,
                    ))?;
                }
                if already.is_none() {
                    store.append_bundle(&bundle)?;
                    // The CT authorization ledger knows every certificate we run, not only
                    // those certresponder obtained.
                    if store.get_ledger(&bundle.fingerprints.tbs_sha256)?.is_none() {
                        store.put_ledger(&crate::records::case::LedgerEntry {
                            tbs_sha256: bundle.fingerprints.tbs_sha256.clone(),
                            cert: name.clone(),
                            serial: bundle.serial.clone(),
                            issuer: bundle.issuer.clone(),
                            case: None,
                            origin: "registered".into(),
                            logged: Vec::new(),
                            recorded_at: now,
                        })?;
                    }
                    store.append_event(event(
                        &name,
                        "bundle_recorded",
                        format!(
                            "bundle {} (serial {}, expires {})",
                            bundle.id,
                            bundle.serial,
                            bundle.not_after.format("%Y-%m-%d")
                        ),
                        now,
                    ))?;
                    report.new_bundles.push((name.clone(), bundle.id));
                }
            }
            Err(e) => report
                .live
                .entry(name.clone())
                .or_insert_with(|| LiveState {
                    cert: None,
                    problems: Vec::new(),
                })
                .problems
                .push(e.to_string()),
        }
    }
    let live = report.live.entry(name).or_insert_with(|| LiveState {
        cert: None,
        problems: Vec::new(),
    });
    live.cert = cert;
    live.problems.extend(problems);
    Ok(())
}
