//! CA-side signals: the certificate revoked at its CA (the issuer's status and a fetched,
//! signature-checked CRL), the CA's ARI renewal window open, and the CA that signed it
//! distrusted.
//!
//! Distrust needs nothing but the certificates and runs with the other detectors in
//! `scan` (`signals::scan`). Revocation and ARI ask the CAs; [`run`] does that for every
//! active certificate, a few at a time, and stores what it finds as signals from source
//! `ca`. A check that could not be made (a CA that did not answer, a CRL that did not verify)
//! leaves the signals it would have judged as they are.

pub mod ari;
pub mod crl;
pub mod distrust;
pub mod ocsp;
pub mod revoked;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use certresponder_inventory::inspect;
use certresponder_issuers::Issuer;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde::Serialize;

use super::scan::{CertFinding, ScanReport, resolve_missing, store_findings};
use crate::store::{Store, StoreError};

/// The source name of the signals this pass raises.
pub const SOURCE: &str = "ca";

/// How many certificates are checked at once.
const PARALLEL: usize = 8;

/// How long one CRL download may take.
const CRL_TIMEOUT: Duration = Duration::from_secs(30);

/// A check that could not be made.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// The certificate.
    pub cert: String,
    /// The check (`revoked_at_ca`, `renewal_window_open`).
    pub check: &'static str,
    /// What went wrong, naming the source.
    pub message: String,
}

/// A renewal planned inside its ARI window.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Scheduled {
    /// The certificate.
    pub cert: String,
    /// When it will be renewed.
    pub renew_at: DateTime<Utc>,
    /// The window's start.
    pub window_start: DateTime<Utc>,
    /// Its end.
    pub window_end: DateTime<Utc>,
}

/// What a pass found.
#[derive(Debug, Default, Serialize)]
pub struct CaReport {
    /// Certificates checked.
    pub checked: usize,
    /// The signals, as `scan` reports them.
    #[serde(flatten)]
    pub signals: ScanReport,
    /// Checks that could not be made.
    pub problems: Vec<Problem>,
    /// Renewals planned for later.
    pub scheduled: Vec<Scheduled>,
}

struct Target {
    name: String,
    fp: String,
    leaf: Vec<u8>,
    chain: Vec<Vec<u8>>,
    issuer: Option<Arc<dyn Issuer>>,
}

#[derive(Default)]
struct Outcome {
    findings: Vec<CertFinding>,
    judged: Vec<(String, &'static str)>,
    problems: Vec<Problem>,
    scheduled: Option<Scheduled>,
}

async fn check_one(store: &dyn Store, crls: &CrlFetcher, t: Target, now: DateTime<Utc>) -> Outcome {
    let mut out = Outcome::default();
    let issuer = t.issuer.as_deref();
    let r = revoked::check(store, issuer, crls, &t.leaf, &t.chain, now).await;
    if r.problems.is_empty() || r.finding.is_some() {
        out.judged.push((t.name.clone(), "revoked_at_ca"));
    }
    for message in r.problems {
        out.problems.push(Problem {
            cert: t.name.clone(),
            check: "revoked_at_ca",
            message,
        });
    }
    if let Some(f) = r.finding {
        out.findings.push((t.name.clone(), Some(t.fp.clone()), f));
    }
    if let Some(issuer) = issuer {
        match ari::check(store, issuer, &t.name, &t.leaf, &t.fp, now).await {
            Ok(outcome) => {
                out.judged.push((t.name.clone(), "renewal_window_open"));
                match outcome {
                    ari::AriOutcome::Open(f) => {
                        out.findings.push((t.name.clone(), Some(t.fp.clone()), f));
                    }
                    ari::AriOutcome::Scheduled {
                        renew_at,
                        start,
                        end,
                    } => {
                        out.scheduled = Some(Scheduled {
                            cert: t.name.clone(),
                            renew_at,
                            window_start: start,
                            window_end: end,
                        });
                    }
                    ari::AriOutcome::Unsupported => {}
                }
            }
            Err(message) => out.problems.push(Problem {
                cert: t.name.clone(),
                check: "renewal_window_open",
                message,
            }),
        }
    }
    out
}

use crl::CrlFetcher;

/// Asks the CAs about every active certificate (revocation, renewal windows) and stores the
/// signals. `issuers` are the configured adapters by id. `replaced` are certificates taken
/// out of service but not revoked yet (their case waits for the revocation): each whose CRL
/// or OCSP responder now says revoked is marked revoked in every history it is in, which
/// lets its case close.
pub async fn run(
    store: &dyn Store,
    issuers: &BTreeMap<String, Arc<dyn Issuer>>,
    replaced: &[certresponder_inventory::Bundle],
    now: DateTime<Utc>,
) -> Result<CaReport, StoreError> {
    let mut targets = Vec::new();
    for (rec, b) in crate::store::current_bundles(store)? {
        let name = rec.entry.name.to_string();
        let Some(leaf) = inspect::read_certificates(b.leaf_pem.as_bytes())
            .ok()
            .and_then(|v| v.into_iter().next())
        else {
            continue;
        };
        let chain = inspect::read_certificates(b.chain_pem.as_bytes()).unwrap_or_default();
        targets.push(Target {
            name,
            fp: b.fingerprints.cert_sha256.clone(),
            leaf,
            chain,
            issuer: rec
                .entry
                .issuer
                .as_ref()
                .and_then(|id| issuers.get(id))
                .cloned(),
        });
    }
    let crls = CrlFetcher::new(CRL_TIMEOUT);
    for old in replaced.iter().filter(|b| !b.is_revoked()) {
        let Ok(leaf) = old.leaf_der() else {
            continue;
        };
        let chain = inspect::read_certificates(old.chain_pem.as_bytes()).unwrap_or_default();
        let r = revoked::check(store, None, &crls, &leaf, &chain, now).await;
        if r.finding.is_some() {
            let marked = store.mark_revoked(&old.fingerprints.cert_sha256, now)?;
            tracing::info!(bundle = %old.id, marked, "a replaced certificate waiting for its revocation is revoked at its CA");
        }
    }
    let mut report = CaReport {
        checked: targets.len(),
        ..CaReport::default()
    };
    let outcomes: Vec<Outcome> = futures_util::stream::iter(targets)
        .map(|t| check_one(store, &crls, t, now))
        .buffer_unordered(PARALLEL)
        .collect()
        .await;
    let mut findings = Vec::new();
    let mut judged: HashSet<(String, &'static str)> = HashSet::new();
    for o in outcomes {
        findings.extend(o.findings);
        judged.extend(o.judged);
        report.problems.extend(o.problems);
        report.scheduled.extend(o.scheduled);
    }
    findings.sort_by(|a, b| a.0.cmp(&b.0));
    // What the CA revoked is revoked in every history it is in: no rollback, automatic or
    // by hand, restores it without --force.
    for (name, fp, f) in &findings {
        if f.check == "revoked_at_ca"
            && let Some(fp) = fp
        {
            let marked = store.mark_revoked(fp, now)?;
            if marked > 0 {
                tracing::info!(cert = %name, bundles = marked, "bundle marked revoked: its CA revoked it");
            }
        }
    }
    report.problems.sort_by(|a, b| a.cert.cmp(&b.cert));
    report.scheduled.sort_by_key(|s| s.renew_at);
    let seen = store_findings(store, &findings, SOURCE, now, &mut report.signals)?;
    resolve_missing(
        store,
        SOURCE,
        &seen,
        |s| judged.iter().any(|(c, k)| *c == s.subject && *k == s.check),
        now,
        &mut report.signals,
    )?;
    report.signals.scanned = report.checked;
    for p in &report.problems {
        tracing::warn!(cert = %p.cert, check = p.check, problem = %p.message, "CA-side check could not be made");
    }
    Ok(report)
}
