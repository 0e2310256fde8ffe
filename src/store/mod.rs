//! The store: certresponder's durable state (registered certificates, their bundle
//! history, events). [`Store`] is the interface; [`sled_store`] is the only code that touches
//! sled, and [`memory`] is a second backend that proves the interface is backend-neutral.
//!
//! Every value carries a format version so that a newer release can migrate older data.
//! Writes are flushed before they are acknowledged (design invariant 8).

pub mod memory;
pub mod sled_store;

use certresponder_inventory::{Bundle, BundleState, ManagedCert};
use certresponder_issuers::IssuerStorage;

use crate::records::case::{Case, LedgerEntry};
use crate::records::signal::Signal;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use memory::MemoryStore;
pub use sled_store::SledStore;

/// Format version written with every value.
pub const FORMAT_VERSION: u8 = 1;

/// Whether a registered certificate is still in the inventory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CertStatus {
    /// In the inventory.
    Active,
    /// Taken out of the inventory; its history is kept.
    Removed,
}

/// A registered certificate as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertRecord {
    /// The inventory entry as last registered.
    pub entry: ManagedCert,
    /// Active or removed.
    pub status: CertStatus,
    /// First registration.
    pub registered_at: DateTime<Utc>,
    /// Last change to the record.
    pub updated_at: DateTime<Utc>,
}

/// Something that happened to a certificate, for `history` and audits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Position in the event log (assigned by the store).
    pub seq: u64,
    /// When.
    pub at: DateTime<Utc>,
    /// The certificate's inventory name.
    pub cert: String,
    /// `registered`, `updated`, `removed`, `bundle_recorded`...
    pub kind: String,
    /// Human-readable detail.
    pub detail: String,
}

/// A store failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database cannot be opened.
    #[error("cannot open the database at {path}: {reason}")]
    Open {
        /// The database directory.
        path: String,
        /// Why.
        reason: String,
    },
    /// The backend failed.
    #[error("database error: {0}")]
    Backend(String),
    /// A bundle is already in the certificate's history: a bundle is recorded once.
    #[error("bundle {bundle} is already in the history of `{cert}`")]
    DuplicateBundle {
        /// The certificate.
        cert: String,
        /// The bundle id.
        bundle: String,
    },
    /// A stored value cannot be decoded.
    #[error("database tree `{tree}`, key `{key}`: {reason}")]
    Corrupt {
        /// The tree.
        tree: &'static str,
        /// The key, printable.
        key: String,
        /// What is wrong.
        reason: String,
    },
}

/// Builds an audit record from the last one: see [`Store::audit_append`].
pub type AuditMaker<'a> =
    dyn FnMut(Option<(u64, &[u8])>) -> Result<(u64, Vec<u8>), StoreError> + 'a;

/// certresponder's durable state. Implementations flush before returning from a write.
pub trait Store {
    /// Inserts or replaces a certificate record.
    fn put_cert(&self, rec: &CertRecord) -> Result<(), StoreError>;
    /// One certificate record.
    fn get_cert(&self, name: &str) -> Result<Option<CertRecord>, StoreError>;
    /// Every certificate record, active and removed, by name.
    fn list_certs(&self) -> Result<Vec<CertRecord>, StoreError>;
    /// Appends a bundle to its certificate's history. A new `current` bundle turns the
    /// previous `current` into `previous` in the same atomic write.
    fn append_bundle(&self, bundle: &Bundle) -> Result<u64, StoreError>;
    /// A certificate's bundles, oldest first.
    fn bundles(&self, name: &str) -> Result<Vec<Bundle>, StoreError>;
    /// Appends an event; the store assigns its sequence number.
    fn append_event(&self, event: Event) -> Result<u64, StoreError>;
    /// Events, oldest first, for one certificate or all.
    fn events(&self, name: Option<&str>) -> Result<Vec<Event>, StoreError>;
    /// Inserts or replaces a signal (keyed by its dedup key).
    fn put_signal(&self, signal: &Signal) -> Result<(), StoreError>;
    /// A signal by dedup key.
    fn get_signal(&self, dedup_key: &str) -> Result<Option<Signal>, StoreError>;
    /// Every signal, by dedup key.
    fn list_signals(&self) -> Result<Vec<Signal>, StoreError>;
    /// Stores a named blob of derived state (such as the batch-GCD product index).
    fn put_blob(&self, name: &str, bytes: &[u8]) -> Result<(), StoreError>;
    /// A named blob.
    fn get_blob(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Compare-and-swap of a named blob: writes `new` only if the blob is still `expected`
    /// (`None`: absent). Returns false, writing nothing, when it changed.
    fn swap_blob(
        &self,
        name: &str,
        expected: Option<&[u8]>,
        new: &[u8],
    ) -> Result<bool, StoreError>;
    /// The storage an issuer adapter keeps its state in, scoped to its id.
    fn issuer_storage(&self, issuer_id: &str) -> std::sync::Arc<dyn IssuerStorage>;
    /// Sets the state of one bundle of a certificate. Making a bundle `current` turns the
    /// other `current` one into `previous` in the same atomic write. Returns whether the
    /// bundle exists.
    fn set_bundle_state(
        &self,
        name: &str,
        bundle_id: &str,
        state: BundleState,
    ) -> Result<bool, StoreError>;
    /// Deletes the oldest bundles of a certificate until at most `keep` remain, never the
    /// `current` one nor those in `protect`. Returns the ids deleted.
    fn prune_bundles(
        &self,
        name: &str,
        keep: usize,
        protect: &[String],
    ) -> Result<Vec<String>, StoreError>;
    /// Assigns the next case number (1, 2, ...), durably.
    fn next_case_id(&self) -> Result<u64, StoreError>;
    /// Inserts or replaces a case (its journal is written whole), as it is. The engine
    /// writes a running case so, under the certificate's lock; everyone else updates a case
    /// with [`Store::swap_case`].
    fn put_case(&self, case: &Case) -> Result<(), StoreError>;
    /// Compare-and-swap: writes `case` with its version one higher only if the stored case
    /// still has `case.version` (a new case: none stored, version 0). Returns false, writing
    /// nothing, when another writer changed it first; on success `case.version` is the
    /// version written.
    fn swap_case(&self, case: &mut Case) -> Result<bool, StoreError>;
    /// One case.
    fn get_case(&self, id: u64) -> Result<Option<Case>, StoreError>;
    /// Every case, oldest first.
    fn list_cases(&self) -> Result<Vec<Case>, StoreError>;
    /// Marks every bundle of every certificate whose leaf has SHA-256 `cert_sha256` as
    /// revoked at `at` (its state unchanged; one already marked keeps its time): a
    /// certificate revoked at its CA is revoked wherever it is in the histories. Returns how
    /// many bundles were marked.
    fn mark_revoked(&self, cert_sha256: &str, at: DateTime<Utc>) -> Result<usize, StoreError> {
        let mut marked = 0;
        for rec in self.list_certs()? {
            let name = rec.entry.name.to_string();
            for b in self.bundles(&name)? {
                if b.fingerprints.cert_sha256 == cert_sha256 && b.revoked_at.is_none() {
                    self.set_bundle_revoked_at(&name, &b.id, at)?;
                    marked += 1;
                }
            }
        }
        Ok(marked)
    }
    /// Sets one bundle's `revoked_at`, its state unchanged.
    fn set_bundle_revoked_at(
        &self,
        name: &str,
        bundle_id: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// The records that listings found undecodable and skipped, each described with its
    /// tree, key and what is wrong (none for a backend that cannot hold such records).
    fn unreadable(&self) -> Vec<String> {
        Vec::new()
    }
    /// Records a certificate in the CT authorization ledger, keyed by its TBS hash.
    fn put_ledger(&self, entry: &LedgerEntry) -> Result<(), StoreError>;
    /// A ledger record by TBS hash (hex).
    fn get_ledger(&self, tbs_sha256: &str) -> Result<Option<LedgerEntry>, StoreError>;
    /// Appends one record to the audit log under the store's append lock, so that records
    /// are chained in the order they are stored. `make` is given the last record (its
    /// sequence number and bytes; `None` for an empty log) and returns the new record's
    /// sequence number and bytes. Returns that sequence number. With `flush` false the
    /// record is durable only with the next flushed write (which the caller makes at once).
    fn audit_append(&self, make: &mut AuditMaker<'_>, flush: bool) -> Result<u64, StoreError>;
    /// The audit log as stored, in key order: (key, bytes). Verification reads it raw so
    /// that a damaged record is reported rather than refused.
    fn audit_records(&self) -> Result<Vec<(u64, Vec<u8>)>, StoreError>;
    /// Replaces (`Some`) or deletes (`None`) one stored audit record, bypassing the chain.
    /// For repair tools and tamper tests only: `audit verify` reports what it did.
    #[doc(hidden)]
    fn audit_raw_put(&self, seq: u64, bytes: Option<&[u8]>) -> Result<(), StoreError>;
    /// Queues a notification (encoded by `notify`); returns its outbox number.
    fn outbox_push(&self, bytes: &[u8]) -> Result<u64, StoreError>;
    /// Queued notifications, oldest first.
    fn outbox_list(&self) -> Result<Vec<(u64, Vec<u8>)>, StoreError>;
    /// Replaces a queued notification (its delivery attempts).
    fn outbox_put(&self, id: u64, bytes: &[u8]) -> Result<(), StoreError>;
    /// Removes a delivered (or abandoned) notification.
    fn outbox_remove(&self, id: u64) -> Result<(), StoreError>;
}

/// Every active certificate with its current bundle; certificates without one are left out.
pub fn current_bundles(store: &dyn Store) -> Result<Vec<(CertRecord, Bundle)>, StoreError> {
    let mut out = Vec::new();
    for rec in store.list_certs()? {
        if rec.status != CertStatus::Active {
            continue;
        }
        let bundles = store.bundles(&rec.entry.name.to_string())?;
        if let Some(b) = Bundle::current_of(&bundles) {
            let b = b.clone();
            out.push((rec, b));
        }
    }
    Ok(out)
}

/// Copies what deciding needs (certificates, bundles, signals, cases, the breaker's state)
/// from one store into another: `respond --dry-run` plans on an in-memory copy, so that
/// registering inventory changes and resolving stale signals touch nothing on disk.
pub fn copy_for_planning(from: &dyn Store, to: &dyn Store) -> Result<(), StoreError> {
    for rec in from.list_certs()? {
        for b in from.bundles(&rec.entry.name.to_string())? {
            match to.append_bundle(&b) {
                // A history an earlier release recorded a bundle twice in: once is enough.
                Ok(_) | Err(StoreError::DuplicateBundle { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        to.put_cert(&rec)?;
    }
    for s in from.list_signals()? {
        to.put_signal(&s)?;
    }
    for c in from.list_cases()? {
        to.put_case(&c)?;
    }
    for blob in ["breaker"] {
        if let Some(b) = from.get_blob(blob)? {
            to.put_blob(blob, &b)?;
        }
    }
    Ok(())
}

pub(crate) fn restate(bundles: &mut [Bundle], id: &str, state: BundleState) -> Option<Vec<usize>> {
    if !bundles.iter().any(|b| b.id == id) {
        return None;
    }
    let mut changed = Vec::new();
    for (i, b) in bundles.iter_mut().enumerate() {
        if b.id == id {
            b.state = state;
            if state == BundleState::Revoked && b.revoked_at.is_none() {
                b.revoked_at = Some(Utc::now());
            }
        } else if state == BundleState::Current && b.state == BundleState::Current {
            b.state = BundleState::Previous;
        } else {
            continue;
        }
        changed.push(i);
    }
    Some(changed)
}

/// The ids of the bundles to delete so that at most `keep` remain, oldest first, sparing the
/// `current` bundle and those in `protect`.
pub(crate) fn prune_plan(bundles: &[Bundle], keep: usize, protect: &[String]) -> Vec<String> {
    let mut excess = bundles.len().saturating_sub(keep);
    let mut out = Vec::new();
    for b in bundles {
        if excess == 0 {
            break;
        }
        if b.state != BundleState::Current && !protect.contains(&b.id) {
            out.push(b.id.clone());
            excess -= 1;
        }
    }
    out
}

/// Encodes a value with its format version.
pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    let mut out = vec![FORMAT_VERSION];
    serde_json::to_writer(&mut out, value).map_err(|e| StoreError::Backend(e.to_string()))?;
    Ok(out)
}

/// A key for a person: a sequence number for the 8-byte big-endian keys (cases, events),
/// else its text with the NUL separator shown as `/`.
fn printable_key(key: &[u8]) -> String {
    match <[u8; 8]>::try_from(key) {
        Ok(b) if std::str::from_utf8(key).is_err() || key.iter().any(|c| *c < 0x20) => {
            u64::from_be_bytes(b).to_string()
        }
        _ => String::from_utf8_lossy(key).replace('\0', "/"),
    }
}

/// Decodes a versioned value.
pub(crate) fn decode<T: for<'de> Deserialize<'de>>(
    tree: &'static str,
    key: &[u8],
    bytes: &[u8],
) -> Result<T, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        tree,
        key: printable_key(key),
        reason,
    };
    match bytes.split_first() {
        Some((&FORMAT_VERSION, body)) => {
            serde_json::from_slice(body).map_err(|e| corrupt(format!("undecodable value: {e}")))
        }
        Some((&v, _)) => Err(corrupt(format!(
            "format version {v} is not one this release reads ({FORMAT_VERSION}); use the release that wrote it"
        ))),
        None => Err(corrupt("empty value".into())),
    }
}

/// Key of a bundle: the name, a NUL, then the big-endian sequence number, so that a prefix
/// scan returns a certificate's bundles in order.
pub(crate) fn bundle_key(name: &str, seq: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(name.len() + 9);
    k.extend_from_slice(name.as_bytes());
    k.push(0);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// Prefix of all bundle keys of a certificate.
pub(crate) fn bundle_prefix(name: &str) -> Vec<u8> {
    let mut k = name.as_bytes().to_vec();
    k.push(0);
    k
}

#[cfg(test)]
pub(crate) mod contract {
    //! The behaviour every backend must have; each backend's tests run it.
    use super::*;
    use certresponder_inventory::{Fingerprints, SecretPem};

    pub(crate) fn bundle(name: &str, id: &str) -> Bundle {
        Bundle {
            id: id.to_string(),
            cert_id: name.to_string(),
            leaf_pem: String::new(),
            chain_pem: String::new(),
            key_pem: Some(SecretPem::new("k".into())),
            fingerprints: Fingerprints {
                cert_sha256: id.to_string(),
                spki_sha256: String::new(),
                tbs_sha256: String::new(),
            },
            serial: "01".into(),
            issuer: "CN=x".into(),
            not_after: Utc::now(),
            created_at: Utc::now(),
            origin: "registered".into(),
            state: BundleState::Current,
            revoked_at: None,
        }
    }

    pub(crate) fn run(store: &dyn Store) {
        // Names that share a prefix must not see each other's bundles.
        store.append_bundle(&bundle("web", "a")).unwrap();
        store.append_bundle(&bundle("web", "b")).unwrap();
        store.append_bundle(&bundle("web-2", "c")).unwrap();
        let web = store.bundles("web").unwrap();
        assert_eq!(
            web.iter().map(|b| b.id.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(web[0].state, BundleState::Previous);
        assert_eq!(web[1].state, BundleState::Current);
        assert_eq!(store.bundles("web-2").unwrap().len(), 1);
        assert!(store.bundles("we").unwrap().is_empty());
        // A bundle is recorded once; the same id again is refused, whatever its state.
        let mut again = bundle("web", "a");
        again.state = BundleState::Revoked;
        assert!(matches!(
            store.append_bundle(&again),
            Err(StoreError::DuplicateBundle { .. })
        ));
        assert_eq!(store.bundles("web").unwrap().len(), 2);
        // Marking a bundle revoked leaves its state alone and keeps the first time.
        let at = Utc::now();
        assert!(store.set_bundle_revoked_at("web", "a", at).unwrap());
        assert!(
            store
                .set_bundle_revoked_at("web", "a", at + chrono::Duration::hours(1))
                .unwrap()
        );
        assert!(!store.set_bundle_revoked_at("web", "zz", at).unwrap());
        let web = store.bundles("web").unwrap();
        assert_eq!(
            (web[0].state, web[0].revoked_at, web[1].revoked_at),
            (BundleState::Previous, Some(at), None)
        );
        for i in 0..3 {
            let seq = store
                .append_event(Event {
                    seq: 0,
                    at: Utc::now(),
                    cert: if i == 1 { "other".into() } else { "web".into() },
                    kind: "registered".into(),
                    detail: format!("{i}"),
                })
                .unwrap();
            assert!(seq > 0 || i == 0);
        }
        let a = store.issuer_storage("a");
        let ab = store.issuer_storage("ab");
        a.put("cert/01", b"one").unwrap();
        a.put("cert/02", b"two").unwrap();
        ab.put("cert/03", b"three").unwrap();
        assert_eq!(a.get("cert/01").unwrap().as_deref(), Some(&b"one"[..]));
        assert_eq!(
            a.scan("cert/").unwrap().len(),
            2,
            "issuers do not see each other's keys"
        );
        assert_eq!(ab.scan("").unwrap()[0].0, "cert/03");
        let dedup_key = Signal::dedup_key("web", "expiring", Some("ab"));
        let now = Utc::now();
        let sig = Signal {
            id: dedup_key[..12].to_string(),
            dedup_key,
            subject: "web".into(),
            family: "weak".into(),
            check: "expiring".into(),
            confidence: crate::records::signal::Confidence::Low,
            message: "soon".into(),
            revocation_reason: None,
            deadline_hours: None,
            evidence: serde_json::json!({}),
            cert_sha256: Some("ab".into()),
            source: "scan".into(),
            detected_at: now,
            last_seen: now,
            times_seen: 1,
            state: crate::records::signal::SignalState::Open,
            handled: None,
        };
        store.put_signal(&sig).unwrap();
        assert_eq!(store.get_signal(&sig.dedup_key).unwrap().unwrap(), sig);
        assert_eq!(store.list_signals().unwrap().len(), 1);
        store.put_blob("gcd-index", b"xyz").unwrap();
        assert_eq!(
            store.get_blob("gcd-index").unwrap().as_deref(),
            Some(&b"xyz"[..])
        );
        let ev = store.events(Some("web")).unwrap();
        assert_eq!(
            ev.iter().map(|e| e.detail.as_str()).collect::<Vec<_>>(),
            ["0", "2"]
        );
        assert_eq!(store.events(None).unwrap().len(), 3);
        assert!(store.get_cert("nope").unwrap().is_none());

        // Bundle states and pruning.
        assert!(
            store
                .set_bundle_state("web", "a", BundleState::Current)
                .unwrap()
        );
        let web = store.bundles("web").unwrap();
        assert_eq!(web[0].state, BundleState::Current);
        assert_eq!(web[1].state, BundleState::Previous);
        assert!(
            !store
                .set_bundle_state("web", "zz", BundleState::Revoked)
                .unwrap()
        );
        store.append_bundle(&bundle("web", "d")).unwrap();
        store
            .set_bundle_state("web", "b", BundleState::Revoked)
            .unwrap();
        assert_eq!(
            store.prune_bundles("web", 1, &["a".to_string()]).unwrap(),
            ["b"]
        );
        assert_eq!(
            store
                .bundles("web")
                .unwrap()
                .iter()
                .map(|b| b.id.as_str())
                .collect::<Vec<_>>(),
            ["a", "d"]
        );
        assert_eq!(store.bundles("web-2").unwrap().len(), 1);

        // Cases and the ledger.
        let first = store.next_case_id().unwrap();
        let second = store.next_case_id().unwrap();
        assert!(first >= 1 && second == first + 1);
        let trigger = crate::records::case::Trigger {
            source: "manual".into(),
            by: "t".into(),
            why: "w".into(),
            signals: Vec::new(),
        };
        for (id, name) in [(second, "web"), (first, "web-2")] {
            let mut c = Case::new(
                name,
                crate::records::case::SequenceKind::Reissue,
                false,
                None,
                trigger.clone(),
                Utc::now(),
            );
            c.id = id;
            store.put_case(&c).unwrap();
        }
        let cases = store.list_cases().unwrap();
        assert_eq!(
            cases.iter().map(|c| c.id).collect::<Vec<_>>(),
            [first, second],
            "cases list in number order"
        );
        assert_eq!(store.get_case(second).unwrap().unwrap().cert, "web");
        assert!(store.get_case(999).unwrap().is_none());
        // Compare-and-swap: the version read wins once; a second writer of it loses.
        let mut a = store.get_case(second).unwrap().unwrap();
        let mut b = a.clone();
        a.error = Some("a".into());
        b.error = Some("b".into());
        assert!(store.swap_case(&mut a).unwrap());
        assert_eq!(a.version, b.version + 1);
        assert!(!store.swap_case(&mut b).unwrap());
        let stored = store.get_case(second).unwrap().unwrap();
        assert_eq!(
            (stored.error.as_deref(), stored.version),
            (Some("a"), a.version)
        );
        assert!(store.swap_blob("counts", None, b"1").unwrap());
        assert!(!store.swap_blob("counts", None, b"2").unwrap());
        assert!(!store.swap_blob("counts", Some(b"0"), b"2").unwrap());
        assert!(store.swap_blob("counts", Some(b"1"), b"2").unwrap());
        assert_eq!(
            store.get_blob("counts").unwrap().as_deref(),
            Some(&b"2"[..])
        );
        let entry = LedgerEntry {
            tbs_sha256: "ab".repeat(32),
            cert: "web".into(),
            serial: "01".into(),
            issuer: "CN=x".into(),
            case: Some(second),
            origin: "issued".into(),
            logged: Vec::new(),
            recorded_at: Utc::now(),
        };
        store.put_ledger(&entry).unwrap();
        assert_eq!(store.get_ledger(&"ab".repeat(32)).unwrap(), Some(entry));
        assert!(store.get_ledger("00").unwrap().is_none());
    }
}
