//! `scan`: every detector over the registered inventory, findings stored as signals,
//! deduplicated (scanning twice does not create a second signal for the same finding), and
//! signals whose finding has gone marked resolved. Each new, re-opened and resolved signal
//! is recorded in the audit log; a signal merely seen again is not.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::ca::distrust::Distrust;
use super::state::{self, Evidence, Seen};
use super::weak::ChecksConfig;
use super::weak::cert::{CertPolicy, check_certificate};
use super::weak::{KeyPolicy, check_key_for};
use super::{Finding, Signal, SignalState};
use crate::ct::config::CtConfig;
use crate::store::{CertStatus, Store, StoreError};

/// What a scan found.
#[derive(Debug, Default, Serialize)]
pub struct ScanReport {
    /// Certificates scanned.
    pub scanned: usize,
    /// Signals raised for the first time.
    pub new: Vec<Signal>,
    /// Signals seen again (their state kept).
    pub seen_again: Vec<Signal>,
    /// Signals whose finding is gone.
    pub resolved: Vec<Signal>,
}

impl ScanReport {
    /// Signals from this scan that are open now.
    pub fn open(&self, now: DateTime<Utc>) -> Vec<&Signal> {
        self.new
            .iter()
            .chain(&self.seen_again)
            .filter(|s| s.is_open(now))
            .collect()
    }
}

/// A finding about a named certificate: (name, certificate SHA-256, finding).
pub type CertFinding = (String, Option<String>, Finding);

/// What a scan needs of the configuration, which assembles it (`Config::scan_settings`).
#[derive(Debug, Clone)]
pub struct ScanSettings<'a> {
    /// The inventory directory, read again first.
    pub inventory_dir: &'a Path,
    /// The configured issuers' ids, which entries may name.
    pub issuer_ids: Vec<String>,
    /// What the weak-parameter and expiry checks accept.
    pub checks: &'a ChecksConfig,
    /// The directory of imported blocklists.
    pub blocklists: PathBuf,
    /// The distrusted CAs the configuration lists (those recorded in the store are added).
    pub distrust: &'a [Distrust],
    /// The CT logs, whose keys verify the certificates' SCTs.
    pub ct: &'a CtConfig,
}

/// Findings for every active certificate, and how many were scanned.
pub fn inventory_findings(
    store: &dyn Store,
    cfg: &ScanSettings<'_>,
    now: DateTime<Utc>,
) -> Result<(usize, Vec<CertFinding>), StoreError> {
    let report = crate::registry::sync(store, cfg.inventory_dir, &cfg.issuer_ids, now)?;
    let key_policy = KeyPolicy::from_checks(cfg.checks);
    let mut out = Vec::new();
    let mut scanned = 0;
    let mut rsa: Vec<(String, String, Vec<u8>)> = Vec::new();
    // Blocklists: loaded once per scan; a list that cannot be read is warned about and
    // skipped, never fatal.
    let blocklists = super::exposure::blocklist::load_all(&cfg.blocklists).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "blocklists skipped");
        super::exposure::blocklist::Blocklists::default()
    });
    let distrusts = super::ca::distrust::all(cfg.distrust, store)?;
    // SCT checks need the configured logs' keys; without any, nothing can be verified.
    let mut log_keys = super::ct::LogKeys::new();
    for l in &cfg.ct.listed {
        let meta = super::ct::LogMeta {
            operator: Some(l.operator.clone()),
            rfc6962: l.rfc6962,
            state: l.state,
        };
        if let Err(e) = log_keys.add_log(&l.key_der, meta) {
            tracing::warn!(log = %l.description, error = %e, "listed CT log key not usable for SCT checks");
        }
    }
    for log in &cfg.ct.logs {
        let meta = super::ct::LogMeta {
            operator: log.operator.clone(),
            rfc6962: matches!(log.spec.kind, crate::ct::LogKind::Rfc6962),
            state: None,
        };
        if let Err(e) = log_keys.add_log(&log.spec.public_key_der, meta) {
            tracing::warn!(log = %log.name, error = %e, "CT log key not usable for SCT checks");
        }
    }
    for rec in store.list_certs()? {
        if rec.status != CertStatus::Active {
            continue;
        }
        let name = rec.entry.name.to_string();
        let Some(live) = report.live.get(&name) else {
            continue;
        };
        scanned += 1;
        let key_fp = live
            .cert
            .as_ref()
            .map(|c| c.fingerprints.cert_sha256.clone());
        for f in super::permissions::key_file_findings(&rec.entry) {
            out.push((name.clone(), key_fp.clone(), f));
        }
        let Some(cert) = &live.cert else {
            if let Some(p) = live.problems.first() {
                out.push((
                    name.clone(),
                    None,
                    Finding {
                        check: "unparseable",
                        confidence: super::Confidence::High,
                        message: p.clone(),
                        revocation_reason: None,
                        deadline_hours: None,
                        evidence: serde_json::json!({"problems": live.problems}),
                    },
                ));
            }
            continue;
        };
        let fp = cert.fingerprints.cert_sha256.clone();
        for f in check_key_for(&cert.key, &key_policy, rec.entry.trust) {
            out.push((name.clone(), Some(fp.clone()), f));
        }
        // Blocklists: the key on a list of published or Debian weak keys.
        for f in blocklists.check(&cert.key) {
            out.push((name.clone(), Some(fp.clone()), f));
        }
        let cert_policy = CertPolicy {
            expiring: rec.entry.expiring.unwrap_or(cfg.checks.expiring).into(),
        };
        for f in check_certificate(cert, rec.entry.trust, now, &cert_policy) {
            out.push((name.clone(), Some(fp.clone()), f));
        }
        if rec.entry.trust == certresponder_inventory::Trust::Public && !log_keys.is_empty() {
            match sct_finding(store, &name, &fp, &log_keys)? {
                Ok(Some(f)) => out.push((name.clone(), Some(fp.clone()), f)),
                Ok(None) => {}
                Err(why) => tracing::warn!(cert = %name, problem = %why, "SCTs not checked"),
            }
        }
        if !distrusts.is_empty() {
            let chain = deployed_chain(store, &name, &fp)?;
            if let Some(f) = super::ca::distrust::check_all(&distrusts, cert, &chain) {
                out.push((name.clone(), Some(fp.clone()), f));
            }
        }
        if let certresponder_inventory::inspect::KeyInfo::Rsa { modulus, .. } = &cert.key {
            rsa.push((name.clone(), fp.clone(), modulus.clone()));
        }
    }
    out.extend(super::shared::shared_prime_findings(store, &rsa)?);
    Ok((scanned, out))
}

/// `sct_insufficient` for the deployed certificate `fp` of `name`, when its embedded SCTs
/// that verify against the configured logs are too few; the inner error says why the check
/// could not be made (no issuer in the deployed chain, an unreadable SCT list).
fn sct_finding(
    store: &dyn Store,
    name: &str,
    fp: &str,
    logs: &super::ct::LogKeys,
) -> Result<Result<Option<Finding>, String>, StoreError> {
    let Some(b) = bundle_with(store, name, fp)? else {
        return Ok(Err("the certificate is not in the store".into()));
    };
    let Ok(leaf) = b.leaf_der() else {
        return Ok(Err("the certificate cannot be read".into()));
    };
    let chain = certresponder_inventory::inspect::read_certificates(b.chain_pem.as_bytes())
        .unwrap_or_default();
    let Some(issuer) = chain
        .iter()
        .find(|c| certresponder_inventory::inspect::cert_signed_by(&leaf, c).unwrap_or(false))
    else {
        return Ok(Err(
            "the deployed chain does not include the issuing CA, which SCT signatures cover".into(),
        ));
    };
    Ok(match super::ct::check_scts(&leaf, issuer, logs) {
        Ok(report) => Ok(report.finding()),
        Err(e) => Err(e.to_string()),
    })
}

/// The latest stored bundle of `name` whose leaf has the SHA-256 `fp`.
fn bundle_with(
    store: &dyn Store,
    name: &str,
    fp: &str,
) -> Result<Option<certresponder_inventory::Bundle>, StoreError> {
    Ok(store
        .bundles(name)?
        .into_iter()
        .rev()
        .find(|b| b.fingerprints.cert_sha256 == fp))
}

/// The CA certificates deployed above the leaf whose SHA-256 is `fp` (from its stored
/// bundle; empty when the bundle carries no chain).
pub(crate) fn deployed_chain(
    store: &dyn Store,
    name: &str,
    fp: &str,
) -> Result<Vec<certresponder_inventory::inspect::CertInfo>, StoreError> {
    let Some(b) = bundle_with(store, name, fp)? else {
        return Ok(Vec::new());
    };
    Ok(ca_chain(&b))
}

/// The CA certificates in a bundle's chain (an unreadable chain gives none).
pub(crate) fn ca_chain(
    b: &certresponder_inventory::Bundle,
) -> Vec<certresponder_inventory::inspect::CertInfo> {
    certresponder_inventory::inspect::inspect_certificates(b.chain_pem.as_bytes())
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c.is_ca)
        .collect()
}

/// Runs the scan and stores its signals.
pub fn scan(
    store: &dyn Store,
    cfg: &ScanSettings<'_>,
    now: DateTime<Utc>,
) -> Result<ScanReport, StoreError> {
    let (scanned, findings) = inventory_findings(store, cfg, now)?;
    let mut report = ScanReport {
        scanned,
        ..ScanReport::default()
    };
    let seen = store_findings(store, &findings, "scan", now, &mut report)?;
    resolve_missing(store, "scan", &seen, |_| true, now, &mut report)?;
    Ok(report)
}

/// Stores findings as signals from `source` (see [`super::state`]: new ones recorded, known
/// ones seen again with the latest evidence, and decided again when they came back or a
/// detector is surer of them). Returns the dedup keys seen.
pub(crate) fn store_findings(
    store: &dyn Store,
    findings: &[CertFinding],
    source: &str,
    now: DateTime<Utc>,
    report: &mut ScanReport,
) -> Result<HashSet<String>, StoreError> {
    let mut seen = HashSet::new();
    for (name, fp, finding) in findings {
        let family = crate::policy::vocab::check_info(finding.check).map_or("weak", |c| c.family);
        let fresh = Signal::from_finding(name, family, finding, fp.as_deref(), source, now);
        seen.insert(fresh.dedup_key.clone());
        match state::observe(store, fresh, Evidence::Replace, now)? {
            (s, Seen::New) => report.new.push(s),
            (s, Seen::Again | Seen::Reopened) => report.seen_again.push(s),
        }
    }
    Ok(seen)
}

/// Resolves the open signals from `source` that this pass did not see, among those `checked`
/// says the pass could judge (a check that failed this time proves nothing).
pub(crate) fn resolve_missing(
    store: &dyn Store,
    source: &str,
    seen: &HashSet<String>,
    checked: impl Fn(&Signal) -> bool,
    now: DateTime<Utc>,
    report: &mut ScanReport,
) -> Result<(), StoreError> {
    for mut s in store.list_signals()? {
        if s.source == source
            && !seen.contains(&s.dedup_key)
            && !matches!(s.state, SignalState::Resolved { .. })
            && checked(&s)
            && state::resolve(store, &mut s, now, state::ENGINE_ACTOR)?
        {
            report.resolved.push(s);
        }
    }
    Ok(())
}
