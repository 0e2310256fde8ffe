//! One pass over every configured CT log: read what is new since the saved position, match
//! each entry's names against the watch list, and check each match against the
//! authorization ledger.
//!
//! - The watch list is the inventory's names (from each current certificate), `[ct]
//!   domains`, and what `certresponder ct watch add` recorded.
//! - A match whose TBS hash is in the ledger is ours: the ledger records where it was
//!   logged. One that is not is a `ct_unauthorized_issuance` signal (high) naming the log,
//!   index, issuer, serial, names and notBefore. A precertificate and its certificate share
//!   the TBS hash, so they make one signal. When `[ct.allowed_issuers]` restricts the
//!   matched domain and the issuer is not allowed, the signal says so and carries a 24-hour
//!   deadline.
//! - Each log's position is kept in the store (`ct/log/<name>`) and advances only to tree
//!   sizes whose root was verified. Matches are recorded when their entries are verified.
//! - A log that misbehaves (bad signature, inconsistent tree, wrong root) raises an alert:
//!   logged, audited and sent to the default receivers. The other logs go on.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::config::CtConfig;
use super::config::{CtLog, Start};
use super::{CtError, EntryKind, Monitor, Position};
use crate::http_client::HttpClient;
use crate::notify::NotifyConfig;
use crate::signals::ct::{WatchList, names_of};
use crate::signals::state::{self, Evidence};
use crate::signals::{Confidence, Finding, Signal};
use crate::store::{Store, StoreError};

/// The check this module raises.
pub const CHECK: &str = "ct_unauthorized_issuance";
/// The signals' source.
pub const SOURCE: &str = "ct";
/// Blob holding the patterns `ct watch add` recorded.
const WATCH_BLOB: &str = "ct/watch";
/// The most matches a report lists; the rest are counted (signals are raised for all).
const MATCHES_LISTED: usize = 1_000;
/// How often, in entries, a long read proves and saves its progress.
const PROGRESS_EVERY: u64 = 100_000;

/// What is known about one log.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LogState {
    /// The log's URL when the state was written.
    pub url: String,
    /// Verified position.
    pub position: Position,
    /// The size of the newest verified tree head.
    pub sth_size: u64,
    /// Its timestamp.
    pub sth_time: Option<DateTime<Utc>>,
    /// When it was last polled.
    pub last_poll: Option<DateTime<Utc>>,
    /// The last error, if the last poll failed.
    pub last_error: Option<String>,
    /// The last misbehaviour seen, with when.
    pub misbehaviour: Option<String>,
    /// Entries that could not be parsed (index and reason), the most recent few.
    pub malformed: Vec<String>,
    /// Entries read so far.
    pub entries_read: u64,
    /// The first entry read: 0, or the tree size at which the log was started at its end
    /// (`start = "end"`); entries before it were never read.
    #[serde(default)]
    pub monitored_from: u64,
}

fn state_key(name: &str) -> String {
    format!("ct/log/{name}")
}

/// The stored state of a log.
pub fn load_state(store: &dyn Store, name: &str) -> Result<Option<LogState>, StoreError> {
    let key = state_key(name);
    match store.get_blob(&key)? {
        None => Ok(None),
        Some(b) => crate::store::decode("blobs", key.as_bytes(), &b).map(Some),
    }
}

fn save_state(store: &dyn Store, name: &str, s: &LogState) -> Result<(), StoreError> {
    store.put_blob(&state_key(name), &crate::store::encode(s)?)
}

/// The patterns `ct watch add` recorded.
pub fn recorded_watch(store: &dyn Store) -> Result<Vec<String>, StoreError> {
    match store.get_blob(WATCH_BLOB)? {
        None => Ok(Vec::new()),
        Some(b) => crate::store::decode("blobs", WATCH_BLOB.as_bytes(), &b),
    }
}

/// Replaces the recorded patterns.
pub fn save_watch(store: &dyn Store, list: &[String]) -> Result<(), StoreError> {
    store.put_blob(WATCH_BLOB, &crate::store::encode(&list)?)
}

/// One watched certificate seen in a log.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Match {
    /// The log's name.
    pub log: String,
    /// The entry's index.
    pub index: u64,
    /// Its names.
    pub names: Vec<String>,
    /// The watched pattern it matched.
    pub pattern: String,
    /// RFC 6962 TBS hash.
    pub tbs_sha256: String,
    /// The issuer DN.
    pub issuer: String,
    /// The serial, hex.
    pub serial: String,
    /// notBefore.
    pub not_before: Option<DateTime<Utc>>,
    /// A precertificate entry.
    pub precert: bool,
    /// In the authorization ledger: ours.
    pub known: bool,
    /// The issuer may issue for the pattern (always, when `[ct.allowed_issuers]` does not
    /// restrict it).
    pub authorized_ca: bool,
    /// The inventory certificate it concerns, if one has the name.
    pub cert: Option<String>,
}

/// What one log's pass did.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LogReport {
    /// The log's name.
    pub name: String,
    /// Its URL.
    pub url: String,
    /// Tree size before.
    pub from: u64,
    /// Tree size after (verified).
    pub to: u64,
    /// Entries read.
    pub entries: u64,
    /// Entries matching the watch list.
    pub matched: u64,
    /// Distinct certificates among them (by TBS hash: a precertificate and its certificate
    /// are one).
    pub certificates: u64,
    #[serde(skip)]
    tbs_seen: std::collections::HashSet<String>,
    /// Of which in the ledger.
    pub known: u64,
    /// Of which not.
    pub unauthorized: u64,
    /// Entries that could not be parsed.
    pub malformed: u64,
    /// Why the pass stopped, if it failed.
    pub error: Option<String>,
    /// Whether the failure is the log's misbehaviour.
    pub misbehaviour: bool,
    /// Seconds taken.
    pub seconds: f64,
    /// The tree size at which the log was first read, when this pass started it at its end
    /// (`start = "end"`): entries before it were not read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at_end: Option<u64>,
}

/// What a pass did.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct PollReport {
    /// Per log.
    pub logs: Vec<LogReport>,
    /// The matches (verified entries only), the first [`MATCHES_LISTED`].
    pub matches: Vec<Match>,
    /// Matches not listed, beyond the first [`MATCHES_LISTED`].
    pub matches_not_listed: u64,
    /// Signals raised for the first time.
    pub new_signals: Vec<Signal>,
    /// Watch-list entries that could not be used.
    pub rejected_watch: Vec<String>,
}

/// The watch list and where its names come from.
pub struct Watch {
    /// The list.
    pub list: WatchList,
    /// Inventory certificate by name.
    pub owner_of: HashMap<String, String>,
    /// Entries that could not be used, with why.
    pub rejected: Vec<String>,
}

/// The watch list: inventory names, configured domains, recorded patterns.
pub fn watch_list(store: &dyn Store, ct: &CtConfig) -> Result<Watch, StoreError> {
    let mut entries: Vec<String> = Vec::new();
    let mut owner_of: HashMap<String, String> = HashMap::new();
    for (rec, b) in crate::store::current_bundles(store)? {
        let name = rec.entry.name.to_string();
        if let Ok(der) = b.leaf_der()
            && let Ok(names) = names_of(&der)
        {
            for n in names {
                owner_of.entry(n.clone()).or_insert_with(|| name.clone());
                entries.push(n);
            }
        }
    }
    entries.extend(ct.domains.iter().cloned());
    entries.extend(recorded_watch(store)?);
    let (list, rejected) = WatchList::build(entries);
    Ok(Watch {
        list,
        owner_of,
        rejected: rejected
            .into_iter()
            .map(|r| format!("{}: {}", r.entry, r.reason))
            .collect(),
    })
}

/// `[ct.allowed_issuers]`, each domain as a pattern.
struct AllowRules(Vec<(String, WatchList, Vec<String>)>);

impl AllowRules {
    fn new(ct: &CtConfig) -> Self {
        Self(
            ct
                .allowed_issuers
                .iter()
                .filter_map(|(domain, list)| {
                    let mut w = WatchList::new();
                    match w.add(domain) {
                        Ok(()) => Some((domain.clone(), w, list.clone())),
                        Err(e) => {
                            tracing::warn!(domain = %domain, problem = %e, "[ct.allowed_issuers] entry not usable");
                            None
                        }
                    }
                })
                .collect(),
        )
    }

    /// Whether the issuer (DN) or the issuing CA (its SPKI SHA-256) may issue for `names`: the most
    /// specific domain of the allow list that covers one of the names decides, as CAA's
    /// closest record does; a name no domain covers is unrestricted.
    fn allowed(&self, names: &[String], issuer: &str, ca_spki: Option<&str>) -> bool {
        let Some((_, _, list)) = self
            .0
            .iter()
            .filter(|(_, w, _)| w.matches_any(names).is_some())
            .max_by_key(|(d, _, _)| d.trim_start_matches('.').split('.').count())
        else {
            return true;
        };
        let issuer_lc = issuer.to_lowercase();
        list.iter().any(|a| match a.strip_prefix("spki:") {
            Some(h) => ca_spki == Some(&h.to_lowercase()[..]),
            None => issuer_lc.contains(&a.to_lowercase()),
        })
    }
}

/// RFC 6962 §3.1: the extended key usage of a Precertificate Signing Certificate
/// (1.3.6.1.4.1.11129.2.4.4), as DER (tag, length, value).
const PRECERT_SIGNING_EKU: &[u8] = &[
    0x06, 0x0a, 0x2b, 0x06, 0x01, 0x04, 0x01, 0xd6, 0x79, 0x02, 0x04, 0x04,
];

/// The CA that issues the final certificate of an entry: the first certificate of its
/// chain, or the one after it when the first is a Precertificate Signing Certificate.
fn issuing_ca(entry: &super::Entry) -> Option<&[u8]> {
    let first = entry.chain.first()?;
    let is_signer = matches!(entry.kind, EntryKind::Precert { .. })
        && first
            .windows(PRECERT_SIGNING_EKU.len())
            .any(|w| w == PRECERT_SIGNING_EKU);
    if is_signer {
        entry.chain.get(1).map(Vec::as_slice)
    } else {
        Some(first.as_slice())
    }
}

/// A candidate match before the ledger is consulted.
struct Seen {
    index: u64,
    names: Vec<String>,
    pattern: String,
    tbs: String,
    issuer: String,
    serial: String,
    not_before: Option<DateTime<Utc>>,
    precert: bool,
    /// The issuing CA's SPKI SHA-256 (hex), kept instead of its certificate.
    ca_spki: Option<String>,
}

fn examine(entry: &super::Entry, watch: &WatchList) -> Option<Result<Seen, String>> {
    let (der_for_names, precert) = match &entry.kind {
        EntryKind::X509 { cert_der } => (cert_der.as_slice(), false),
        EntryKind::Precert { tbs_der, .. } => (tbs_der.as_slice(), true),
    };
    let names = match names_of(der_for_names) {
        Ok(n) => n,
        Err(e) => return Some(Err(format!("entry {}: names unreadable: {e}", entry.index))),
    };
    let (_, pattern) = watch.matches_any(&names)?;
    let pattern = pattern.to_string();
    let full = match &entry.kind {
        EntryKind::X509 { cert_der } => Some(cert_der.as_slice()),
        EntryKind::Precert { precert_der, .. } => precert_der.as_deref(),
    };
    let info = full.and_then(|d| certresponder_inventory::inspect::inspect_certificate_der(d).ok());
    let tbs = match &entry.kind {
        EntryKind::Precert { tbs_der, .. } => {
            certresponder_inventory::inspect::tbs_sha256_of_tbs(tbs_der).ok()
        }
        EntryKind::X509 { .. } => info.as_ref().map(|i| i.fingerprints.tbs_sha256.clone()),
    };
    let tbs = tbs.unwrap_or_else(|| hex::encode(Sha256::digest(der_for_names)));
    let ca = issuing_ca(entry)
        .and_then(|d| certresponder_inventory::inspect::inspect_certificate_der(d).ok());
    // A precertificate may be signed by a Precertificate Signing Certificate; the final
    // certificate's issuer is the CA above it (the log rewrote the TBS to say so).
    let issuer = match (&entry.kind, &ca) {
        (EntryKind::Precert { .. }, Some(ca)) => ca.subject.clone(),
        _ => info.as_ref().map(|i| i.issuer.clone()).unwrap_or_default(),
    };
    Some(Ok(Seen {
        index: entry.index,
        names,
        pattern,
        tbs,
        issuer,
        serial: info.as_ref().map(|i| i.serial.clone()).unwrap_or_default(),
        not_before: info.as_ref().map(|i| i.not_before),
        precert,
        ca_spki: ca.map(|c| c.fingerprints.spki_sha256),
    }))
}

/// Records verified matches: ledger confirmations and unauthorized-issuance signals.
/// What recording matches needs.
struct Ctx<'a> {
    store: &'a dyn Store,
    log: &'a CtLog,
    owner_of: &'a HashMap<String, String>,
    allow: &'a AllowRules,
    now: DateTime<Utc>,
}

fn record(
    ctx: &Ctx<'_>,
    seen: Vec<Seen>,
    report: &mut PollReport,
    lr: &mut LogReport,
) -> Result<(), StoreError> {
    let Ctx {
        store,
        log,
        owner_of,
        now,
        ..
    } = *ctx;
    for s in seen {
        let cert = s.names.iter().find_map(|n| owner_of.get(n).cloned());
        let authorized_ca = ctx.allow.allowed(&s.names, &s.issuer, s.ca_spki.as_deref());
        let known = match store.get_ledger(&s.tbs)? {
            Some(mut l) => {
                let at = format!("{}#{}", log.name, s.index);
                if !l.logged.contains(&at) && l.logged.len() < 16 {
                    l.logged.push(at);
                    store.put_ledger(&l)?;
                }
                true
            }
            None => false,
        };
        lr.matched += 1;
        if lr.tbs_seen.insert(s.tbs.clone()) {
            lr.certificates += 1;
        }
        if known {
            lr.known += 1;
        } else {
            lr.unauthorized += 1;
            let subject = cert.clone().unwrap_or_else(|| format!("ct:{}", s.pattern));
            let finding = Finding {
                check: CHECK,
                confidence: Confidence::High,
                message: format!(
                    "{} for {} logged in `{}` (entry {}) by {}; it is not in the authorization ledger{}",
                    if s.precert {
                        "a precertificate"
                    } else {
                        "a certificate"
                    },
                    s.names.join(", "),
                    log.name,
                    s.index,
                    if s.issuer.is_empty() {
                        "an unknown issuer"
                    } else {
                        &s.issuer
                    },
                    if authorized_ca {
                        String::new()
                    } else {
                        format!(", and its CA may not issue for {}", s.pattern)
                    }
                ),
                revocation_reason: None,
                deadline_hours: (!authorized_ca).then_some(24),
                evidence: serde_json::json!({
                    "log": log.name,
                    "log_url": log.spec.url,
                    "index": s.index,
                    "issuer": s.issuer,
                    "serial": s.serial,
                    "names": s.names,
                    "not_before": s.not_before,
                    "tbs_sha256": s.tbs,
                    "precert": s.precert,
                    "pattern": s.pattern,
                    "authorized_ca": authorized_ca,
                }),
            };
            let mut signal = Signal::from_finding(&subject, "ct", &finding, None, SOURCE, now);
            signal.dedup_key = Signal::dedup_key(&subject, CHECK, Some(&s.tbs));
            signal.id = signal.dedup_key[..12].to_string();
            // A logged entry does not change: seen again, its first evidence stays.
            let (stored, seen) = state::observe(store, signal, Evidence::Keep, now)?;
            if seen == state::Seen::New {
                report.new_signals.push(stored);
            }
        }
        if report.matches.len() >= MATCHES_LISTED {
            report.matches_not_listed += 1;
            continue;
        }
        report.matches.push(Match {
            log: log.name.clone(),
            index: s.index,
            names: s.names,
            pattern: s.pattern,
            tbs_sha256: s.tbs,
            issuer: s.issuer,
            serial: s.serial,
            not_before: s.not_before,
            precert: s.precert,
            known,
            authorized_ca,
            cert,
        });
    }
    Ok(())
}

/// Polls every configured log once.
pub async fn poll(
    store: &dyn Store,
    ct: &CtConfig,
    notify: &NotifyConfig,
    now: DateTime<Utc>,
) -> Result<PollReport, StoreError> {
    let Watch {
        list: watch,
        owner_of,
        rejected,
    } = watch_list(store, ct)?;
    let mut report = PollReport {
        rejected_watch: rejected,
        ..PollReport::default()
    };
    let allow = AllowRules::new(ct);
    let http = HttpClient::new();
    for log in &ct.logs {
        let started = Instant::now();
        let mut state = load_state(store, &log.name)?.unwrap_or_default();
        if !state.url.is_empty() && state.url != log.spec.url {
            // A different log under the same name: start over rather than mix trees.
            state = LogState::default();
        }
        // Nothing read from this log yet (new, renamed to another URL, or every pass so far
        // failed before its first entry).
        let first_read = state.position.tree_size == 0 && state.entries_read == 0;
        state.url.clone_from(&log.spec.url);
        let monitor = Monitor::new(log.spec.clone(), http.clone());
        let mut started_at_end = None;
        if first_read && ct.start_of(log) == Start::End {
            match monitor.start_at_end().await {
                Ok((position, sth)) => {
                    tracing::info!(log = %log.name, tree_size = position.tree_size, "CT log first read at its end; earlier entries are not read");
                    crate::audit::append(
                        store,
                        crate::audit::AuditEntry {
                            kind: "ct_log_started_at_end",
                            actor: "certresponder",
                            cert: None,
                            case: None,
                            data: serde_json::json!({
                                "log": log.name,
                                "url": log.spec.url,
                                "tree_size": position.tree_size,
                                "root_hash": hex::encode(position.root_hash),
                            }),
                        },
                    )?;
                    started_at_end = Some(position.tree_size);
                    state.monitored_from = position.tree_size;
                    state.position = position;
                    state.sth_size = sth.tree_size;
                    state.sth_time = DateTime::from_timestamp_millis(
                        i64::try_from(sth.timestamp).unwrap_or(i64::MAX),
                    );
                    save_state(store, &log.name, &state)?;
                }
                Err(e) => {
                    // No position is saved: the next pass tries to start at the end again.
                    let text = format!("starting at the end: {e}");
                    let misbehaviour = matches!(e, CtError::Misbehaviour(_));
                    if misbehaviour {
                        alert(store, notify, log, &text, now)?;
                        state.misbehaviour = Some(format!("{}: {text}", now.to_rfc3339()));
                    } else {
                        tracing::warn!(log = %log.name, error = %text, "CT log could not be read");
                    }
                    state.last_poll = Some(now);
                    state.last_error = Some(text.clone());
                    save_state(store, &log.name, &state)?;
                    report.logs.push(LogReport {
                        name: log.name.clone(),
                        url: log.spec.url.clone(),
                        error: Some(text),
                        misbehaviour,
                        seconds: started.elapsed().as_secs_f64(),
                        ..LogReport::default()
                    });
                    continue;
                }
            }
        }
        let mut lr = LogReport {
            name: log.name.clone(),
            url: log.spec.url.clone(),
            from: state.position.tree_size,
            to: state.position.tree_size,
            started_at_end,
            ..LogReport::default()
        };
        let ctx = Ctx {
            store,
            log,
            owner_of: &owner_of,
            allow: &allow,
            now,
        };
        // Matches wait here until their entries are verified: at a proven checkpoint (every
        // PROGRESS_EVERY entries) or at the end. Recording them at each checkpoint keeps the
        // memory a pass holds bounded by one checkpoint's matches, whatever the log's size.
        let pending: RefCell<Vec<Seen>> = RefCell::new(Vec::new());
        let reports = RefCell::new((std::mem::take(&mut report), std::mem::take(&mut lr)));
        let failed: RefCell<Option<StoreError>> = RefCell::new(None);
        let flush = |upto: &Position| {
            let ready: Vec<Seen> = pending
                .borrow_mut()
                .extract_if(.., |s| s.index < upto.tree_size)
                .collect();
            let mut r = reports.borrow_mut();
            let (rep, l) = &mut *r;
            if let Err(e) = record(&ctx, ready, rep, l) {
                failed.borrow_mut().get_or_insert(e);
                return;
            }
            l.to = upto.tree_size;
        };
        let mut malformed: Vec<String> = Vec::new();
        let mut entries = 0u64;
        let result = monitor
            .update_with_progress(
                &state.position,
                |e| {
                    entries += 1;
                    match e {
                        Ok(entry) => match examine(&entry, &watch) {
                            None => {}
                            Some(Ok(seen)) => pending.borrow_mut().push(seen),
                            Some(Err(why)) => malformed.push(why),
                        },
                        Err(m) => malformed.push(format!("entry {}: {}", m.index, m.reason)),
                    }
                },
                |p| {
                    flush(p);
                    let mut at = state.clone();
                    at.position = p.clone();
                    if let Err(e) = save_state(store, &log.name, &at) {
                        failed.borrow_mut().get_or_insert(e);
                    }
                },
                PROGRESS_EVERY,
            )
            .await;
        // The matches of the last, unproven stretch wait for the next pass, which reads
        // them again.
        if let Ok(u) = &result {
            flush(&u.position);
        }
        if let Some(e) = failed.into_inner() {
            return Err(e);
        }
        (report, lr) = reports.into_inner();
        state.position = match &result {
            Ok(u) => u.position.clone(),
            // The last checkpoint saved, if any.
            Err(_) => load_state(store, &log.name)?
                .filter(|s| s.url == state.url)
                .map_or_else(|| state.position.clone(), |s| s.position),
        };
        lr.to = state.position.tree_size;
        lr.entries = entries;
        lr.malformed = malformed.len() as u64;
        for m in &malformed {
            tracing::warn!(log = %log.name, problem = %m, "CT entry could not be read; it is reported, not dropped");
        }
        state.malformed.extend(malformed);
        let keep = state.malformed.len().saturating_sub(20);
        state.malformed.drain(..keep);
        state.last_poll = Some(now);
        state.entries_read += entries;
        match result {
            Ok(u) => {
                state.sth_size = u.sth.tree_size;
                state.sth_time = DateTime::from_timestamp_millis(
                    i64::try_from(u.sth.timestamp).unwrap_or(i64::MAX),
                );
                state.last_error = None;
            }
            Err(e) => {
                let text = e.to_string();
                lr.misbehaviour = matches!(e, CtError::Misbehaviour(_));
                if lr.misbehaviour {
                    alert(store, notify, log, &text, now)?;
                    state.misbehaviour = Some(format!("{}: {text}", now.to_rfc3339()));
                } else {
                    tracing::warn!(log = %log.name, error = %text, "CT log could not be read");
                }
                state.last_error = Some(text.clone());
                lr.error = Some(text);
            }
        }
        save_state(store, &log.name, &state)?;
        lr.seconds = started.elapsed().as_secs_f64();
        report.logs.push(lr);
    }
    Ok(report)
}

/// A log misbehaved: log it, audit it, tell the default receivers.
fn alert(
    store: &dyn Store,
    notify: &NotifyConfig,
    log: &CtLog,
    what: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    tracing::error!(log = %log.name, url = %log.spec.url, problem = %what, "CT log misbehaviour");
    crate::audit::append(
        store,
        crate::audit::AuditEntry {
            kind: "ct_log_misbehaviour",
            actor: "certresponder",
            cert: None,
            case: None,
            data: serde_json::json!({"log": log.name, "url": log.spec.url, "problem": what}),
        },
    )?;
    crate::notify::enqueue(
        store,
        notify,
        &crate::notify::Notification {
            event: crate::notify::NotifyEvent::Escalation,
            owner: None,
            cert: None,
            case: None,
            summary: format!("CT log `{}` misbehaved: {what}", log.name),
            deadline: None,
            details: serde_json::json!({"log": log.name, "url": log.spec.url}),
            created_at: now,
        },
    )?;
    Ok(())
}

/// Per log: the state, for `ct status`.
pub fn status(store: &dyn Store, ct: &CtConfig) -> Result<BTreeMap<String, LogState>, StoreError> {
    let mut out = BTreeMap::new();
    for log in &ct.logs {
        out.insert(
            log.name.clone(),
            load_state(store, &log.name)?.unwrap_or_default(),
        );
    }
    Ok(out)
}
