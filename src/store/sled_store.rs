//! The sled backend: the only code in certresponder that imports sled.
//!
//! Trees: `certs` (name -> CertRecord), `bundles` (name NUL seq -> Bundle), `events`
//! (seq -> Event), `signals` (dedup key -> Signal), `blobs` (name -> derived state),
//! `issuer_state` (issuer id NUL key -> adapter state), `cases` (case number -> Case),
//! `ledger` (TBS hash -> LedgerEntry), `audit` (seq -> hash-chained record), `outbox`
//! (seq -> queued notification), `meta` (`schema` -> format version, `case_seq` ->
//! the last case number). Keys are big-endian so that sled's
//! byte order is numeric order. Every write is flushed before it returns.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use certresponder_issuers::{IssuerError, IssuerStorage};

use crate::records::case::{Case, LedgerEntry};
use crate::records::signal::Signal;

use certresponder_inventory::fs::create_dir_with_mode;
use certresponder_inventory::{Bundle, BundleState};

use super::{
    CertRecord, Event, FORMAT_VERSION, Store, StoreError, bundle_key, bundle_prefix, decode, encode,
};

/// A store on a sled database directory.
pub struct SledStore {
    db: sled::Db,
    issuer_state: sled::Tree,
    signals: sled::Tree,
    blobs: sled::Tree,
    certs: sled::Tree,
    bundles: sled::Tree,
    events: sled::Tree,
    cases: sled::Tree,
    ledger: sled::Tree,
    audit: sled::Tree,
    outbox: sled::Tree,
    meta: sled::Tree,
    /// Serializes appends that derive a sequence number from the last key.
    append_lock: std::sync::Mutex<()>,
    /// Records a listing found undecodable and skipped, by what they are about.
    unreadable: std::sync::Mutex<std::collections::BTreeMap<String, String>>,
}

fn backend(e: sled::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

impl SledStore {
    /// Opens (creating, mode 0700) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let open_err = |reason: String| StoreError::Open {
            path: path.display().to_string(),
            reason,
        };
        create_dir_with_mode(path, 0o700).map_err(|e| open_err(e.to_string()))?;
        // The database holds private keys: a directory others may enter is refused.
        let mode = std::fs::metadata(path)
            .map_err(|e| open_err(e.to_string()))?
            .permissions()
            .mode()
            & 0o777;
        if mode & 0o077 != 0 {
            return Err(open_err(format!(
                "the directory is open to its group or to others (mode {mode:04o}), and it holds private keys; run `chmod 700 {}`",
                path.display()
            )));
        }
        let db = sled::Config::new().path(path).open().map_err(|e| {
            let msg = e.to_string();
            if msg.contains("lock") || msg.contains("WouldBlock") || msg.contains("temporarily unavailable") {
                open_err(
                    "it is in use by another certresponder process (the daemon owns the database while it runs)".into(),
                )
            } else {
                open_err(msg)
            }
        })?;
        let tree = |name: &str| db.open_tree(name).map_err(backend);
        let meta = tree("meta")?;
        match meta.get(b"schema").map_err(backend)? {
            None => {
                meta.insert(b"schema", &[FORMAT_VERSION]).map_err(backend)?;
            }
            Some(v) if v.as_ref() == [FORMAT_VERSION] => {}
            Some(v) => {
                return Err(open_err(format!(
                    "the database has schema version {:?}; this release reads {FORMAT_VERSION}",
                    v.as_ref()
                )));
            }
        }
        let store = Self {
            certs: tree("certs")?,
            bundles: tree("bundles")?,
            events: tree("events")?,
            issuer_state: tree("issuer_state")?,
            signals: tree("signals")?,
            blobs: tree("blobs")?,
            cases: tree("cases")?,
            ledger: tree("ledger")?,
            audit: tree("audit")?,
            outbox: tree("outbox")?,
            append_lock: std::sync::Mutex::new(()),
            unreadable: std::sync::Mutex::new(std::collections::BTreeMap::new()),
            meta,
            db,
        };
        store.flush()?;
        Ok(store)
    }

    /// Every record of `tree` that decodes, in key order. One that does not is skipped,
    /// remembered (see [`Store::unreadable`]) and logged the first time it is seen: one
    /// damaged record must not hide the others or stop a listing.
    fn readable<T: for<'de> serde::Deserialize<'de>>(
        &self,
        name: &'static str,
        tree: &sled::Tree,
    ) -> Result<Vec<T>, StoreError> {
        let mut out = Vec::new();
        for kv in tree.iter() {
            let (k, v) = kv.map_err(backend)?;
            match decode(name, &k, &v) {
                Ok(t) => out.push(t),
                Err(e) => {
                    let mut seen = self
                        .unreadable
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    let what = match &e {
                        StoreError::Corrupt { tree, key, .. } => format!("{tree}/{key}"),
                        other => other.to_string(),
                    };
                    if seen.insert(what.clone(), e.to_string()).is_none() {
                        tracing::warn!(record = %what, problem = %e, "a stored record cannot be read; it is skipped");
                    }
                }
            }
        }
        Ok(out)
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, ()>, StoreError> {
        self.append_lock
            .lock()
            .map_err(|_| StoreError::Backend("store append lock poisoned".into()))
    }

    /// The last key of a tree of 8-byte big-endian sequence numbers, with its value.
    fn last_seq(
        tree: &sled::Tree,
        name: &'static str,
    ) -> Result<Option<(u64, sled::IVec)>, StoreError> {
        match tree.last().map_err(backend)? {
            None => Ok(None),
            Some((k, v)) => {
                let b: [u8; 8] = k.as_ref().try_into().map_err(|_| StoreError::Corrupt {
                    tree: name,
                    key: format!("{:?}", k.as_ref()),
                    reason: "key is not an 8-byte sequence number".into(),
                })?;
                Ok(Some((u64::from_be_bytes(b), v)))
            }
        }
    }

    /// Every (sequence number, value) of a tree keyed by 8-byte big-endian numbers.
    fn seq_entries(
        tree: &sled::Tree,
        name: &'static str,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        tree.iter()
            .map(|kv| {
                let (k, v) = kv.map_err(backend)?;
                let b: [u8; 8] = k.as_ref().try_into().map_err(|_| StoreError::Corrupt {
                    tree: name,
                    key: format!("{:?}", k.as_ref()),
                    reason: "key is not an 8-byte sequence number".into(),
                })?;
                Ok((u64::from_be_bytes(b), v.to_vec()))
            })
            .collect()
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map(|_| ()).map_err(backend)
    }

    /// A certificate's bundles with their keys, oldest first.
    fn keyed_bundles(&self, name: &str) -> Result<Vec<(sled::IVec, Bundle)>, StoreError> {
        self.bundles
            .scan_prefix(bundle_prefix(name))
            .map(|kv| {
                let (k, v) = kv.map_err(backend)?;
                let b = decode("bundles", &k, &v)?;
                Ok((k, b))
            })
            .collect()
    }
}

/// One issuer's slice of the `issuer_state` tree: keys are `issuer id NUL key`.
struct SledIssuerStorage {
    db: sled::Db,
    tree: sled::Tree,
    prefix: Vec<u8>,
}

fn storage_err(e: sled::Error) -> IssuerError {
    IssuerError::Storage(e.to_string())
}

impl IssuerStorage for SledIssuerStorage {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, IssuerError> {
        let mut k = self.prefix.clone();
        k.extend_from_slice(key.as_bytes());
        Ok(self.tree.get(k).map_err(storage_err)?.map(|v| v.to_vec()))
    }

    fn put(&self, key: &str, value: &[u8]) -> Result<(), IssuerError> {
        let mut k = self.prefix.clone();
        k.extend_from_slice(key.as_bytes());
        self.tree.insert(k, value).map_err(storage_err)?;
        self.db.flush().map(|_| ()).map_err(storage_err)
    }

    fn scan(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, IssuerError> {
        let mut p = self.prefix.clone();
        p.extend_from_slice(prefix.as_bytes());
        self.tree
            .scan_prefix(p)
            .map(|kv| {
                let (k, v) = kv.map_err(storage_err)?;
                let key = String::from_utf8_lossy(&k[self.prefix.len()..]).into_owned();
                Ok((key, v.to_vec()))
            })
            .collect()
    }
}

impl Store for SledStore {
    fn put_signal(&self, signal: &Signal) -> Result<(), StoreError> {
        self.signals
            .insert(signal.dedup_key.as_bytes(), encode(signal)?)
            .map_err(backend)?;
        self.flush()
    }

    fn get_signal(&self, dedup_key: &str) -> Result<Option<Signal>, StoreError> {
        self.signals
            .get(dedup_key.as_bytes())
            .map_err(backend)?
            .map(|v| decode("signals", dedup_key.as_bytes(), &v))
            .transpose()
    }

    fn list_signals(&self) -> Result<Vec<Signal>, StoreError> {
        self.readable("signals", &self.signals)
    }

    fn put_blob(&self, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let mut v = vec![FORMAT_VERSION];
        v.extend_from_slice(bytes);
        self.blobs.insert(name.as_bytes(), v).map_err(backend)?;
        self.flush()
    }

    fn swap_blob(
        &self,
        name: &str,
        expected: Option<&[u8]>,
        new: &[u8],
    ) -> Result<bool, StoreError> {
        let framed = |b: &[u8]| {
            let mut v = vec![FORMAT_VERSION];
            v.extend_from_slice(b);
            v
        };
        let old = expected.map(framed);
        let swapped = self
            .blobs
            .compare_and_swap(name.as_bytes(), old, Some(framed(new)))
            .map_err(backend)?;
        if swapped.is_err() {
            return Ok(false);
        }
        self.flush()?;
        Ok(true)
    }

    fn get_blob(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match self.blobs.get(name.as_bytes()).map_err(backend)? {
            None => Ok(None),
            Some(v) => match v.split_first() {
                Some((&FORMAT_VERSION, rest)) => Ok(Some(rest.to_vec())),
                _ => Err(StoreError::Corrupt {
                    tree: "blobs",
                    key: name.to_string(),
                    reason: "unknown format version".into(),
                }),
            },
        }
    }

    fn issuer_storage(&self, issuer_id: &str) -> Arc<dyn IssuerStorage> {
        let mut prefix = issuer_id.as_bytes().to_vec();
        prefix.push(0);
        Arc::new(SledIssuerStorage {
            db: self.db.clone(),
            tree: self.issuer_state.clone(),
            prefix,
        })
    }

    fn put_cert(&self, rec: &CertRecord) -> Result<(), StoreError> {
        self.certs
            .insert(rec.entry.name.as_str().as_bytes(), encode(rec)?)
            .map_err(backend)?;
        self.flush()
    }

    fn get_cert(&self, name: &str) -> Result<Option<CertRecord>, StoreError> {
        self.certs
            .get(name.as_bytes())
            .map_err(backend)?
            .map(|v| decode("certs", name.as_bytes(), &v))
            .transpose()
    }

    fn list_certs(&self) -> Result<Vec<CertRecord>, StoreError> {
        self.readable("certs", &self.certs)
    }

    fn append_bundle(&self, bundle: &Bundle) -> Result<u64, StoreError> {
        let prefix = bundle_prefix(&bundle.cert_id);
        let mut batch = sled::Batch::default();
        let mut next = 0u64;
        if self
            .keyed_bundles(&bundle.cert_id)?
            .iter()
            .any(|(_, b)| b.id == bundle.id)
        {
            return Err(StoreError::DuplicateBundle {
                cert: bundle.cert_id.clone(),
                bundle: bundle.id.clone(),
            });
        }
        for kv in self.bundles.scan_prefix(&prefix) {
            let (k, v) = kv.map_err(backend)?;
            let seq_bytes: [u8; 8] =
                k[prefix.len()..]
                    .try_into()
                    .map_err(|_| StoreError::Corrupt {
                        tree: "bundles",
                        key: String::from_utf8_lossy(&k).into_owned(),
                        reason: "bundle key does not end in an 8-byte sequence number".into(),
                    })?;
            next = u64::from_be_bytes(seq_bytes) + 1;
            if bundle.state == BundleState::Current {
                let mut old: Bundle = decode("bundles", &k, &v)?;
                if old.state == BundleState::Current {
                    old.state = BundleState::Previous;
                    batch.insert(k.as_ref(), encode(&old)?);
                }
            }
        }
        batch.insert(bundle_key(&bundle.cert_id, next), encode(bundle)?);
        self.bundles.apply_batch(batch).map_err(backend)?;
        self.flush()?;
        Ok(next)
    }

    fn bundles(&self, name: &str) -> Result<Vec<Bundle>, StoreError> {
        Ok(self
            .keyed_bundles(name)?
            .into_iter()
            .map(|(_, b)| b)
            .collect())
    }

    fn append_event(&self, mut event: Event) -> Result<u64, StoreError> {
        let _guard = self.lock()?;
        let seq = match self.events.last().map_err(backend)? {
            Some((k, _)) => {
                let b: [u8; 8] = k.as_ref().try_into().map_err(|_| StoreError::Corrupt {
                    tree: "events",
                    key: format!("{:?}", k.as_ref()),
                    reason: "event key is not an 8-byte sequence number".into(),
                })?;
                u64::from_be_bytes(b) + 1
            }
            None => 0,
        };
        event.seq = seq;
        self.events
            .insert(seq.to_be_bytes(), encode(&event)?)
            .map_err(backend)?;
        self.flush()?;
        Ok(seq)
    }

    fn set_bundle_state(
        &self,
        name: &str,
        bundle_id: &str,
        state: BundleState,
    ) -> Result<bool, StoreError> {
        let (keys, mut bundles): (Vec<sled::IVec>, Vec<Bundle>) =
            self.keyed_bundles(name)?.into_iter().unzip();
        let Some(changed) = super::restate(&mut bundles, bundle_id, state) else {
            return Ok(false);
        };
        let mut batch = sled::Batch::default();
        for i in changed {
            batch.insert(keys[i].as_ref(), encode(&bundles[i])?);
        }
        self.bundles.apply_batch(batch).map_err(backend)?;
        self.flush()?;
        Ok(true)
    }

    fn set_bundle_revoked_at(
        &self,
        name: &str,
        bundle_id: &str,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, StoreError> {
        for (k, mut b) in self.keyed_bundles(name)? {
            if b.id == bundle_id {
                if b.revoked_at.is_none() {
                    b.revoked_at = Some(at);
                    self.bundles.insert(k, encode(&b)?).map_err(backend)?;
                    self.flush()?;
                }
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn prune_bundles(
        &self,
        name: &str,
        keep: usize,
        protect: &[String],
    ) -> Result<Vec<String>, StoreError> {
        let all = self.keyed_bundles(name)?;
        let bundles: Vec<Bundle> = all.iter().map(|(_, b)| b.clone()).collect();
        let doomed = super::prune_plan(&bundles, keep, protect);
        if doomed.is_empty() {
            return Ok(doomed);
        }
        let mut batch = sled::Batch::default();
        for (k, b) in &all {
            if doomed.contains(&b.id) {
                batch.remove(k.as_ref());
            }
        }
        self.bundles.apply_batch(batch).map_err(backend)?;
        self.flush()?;
        Ok(doomed)
    }

    fn next_case_id(&self) -> Result<u64, StoreError> {
        let next = self
            .meta
            .update_and_fetch(b"case_seq", |old| {
                let n = old
                    .and_then(|v| <[u8; 8]>::try_from(v).ok())
                    .map_or(0, u64::from_be_bytes);
                Some((n + 1).to_be_bytes().to_vec())
            })
            .map_err(backend)?;
        let id = next
            .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
            .map(u64::from_be_bytes)
            .ok_or_else(|| StoreError::Corrupt {
                tree: "meta",
                key: "case_seq".into(),
                reason: "the case counter is not an 8-byte number".into(),
            })?;
        self.flush()?;
        Ok(id)
    }

    fn put_case(&self, case: &Case) -> Result<(), StoreError> {
        self.cases
            .insert(case.id.to_be_bytes(), encode(case)?)
            .map_err(backend)?;
        self.flush()
    }

    fn swap_case(&self, case: &mut Case) -> Result<bool, StoreError> {
        let key = case.id.to_be_bytes();
        let old = self.cases.get(key).map_err(backend)?;
        let stored_version = match &old {
            Some(v) => decode::<Case>("cases", &key, v)?.version,
            None => 0,
        };
        if stored_version != case.version {
            return Ok(false);
        }
        let mut next = case.clone();
        next.version = case.version + 1;
        let swapped = self
            .cases
            .compare_and_swap(key, old, Some(encode(&next)?))
            .map_err(backend)?;
        if swapped.is_err() {
            return Ok(false);
        }
        self.flush()?;
        case.version = next.version;
        Ok(true)
    }

    fn get_case(&self, id: u64) -> Result<Option<Case>, StoreError> {
        let key = id.to_be_bytes();
        self.cases
            .get(key)
            .map_err(backend)?
            .map(|v| decode("cases", &key, &v))
            .transpose()
    }

    fn list_cases(&self) -> Result<Vec<Case>, StoreError> {
        self.readable("cases", &self.cases)
    }

    fn unreadable(&self) -> Vec<String> {
        self.unreadable
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }

    fn put_ledger(&self, entry: &LedgerEntry) -> Result<(), StoreError> {
        self.ledger
            .insert(entry.tbs_sha256.as_bytes(), encode(entry)?)
            .map_err(backend)?;
        self.flush()
    }

    fn get_ledger(&self, tbs_sha256: &str) -> Result<Option<LedgerEntry>, StoreError> {
        self.ledger
            .get(tbs_sha256.as_bytes())
            .map_err(backend)?
            .map(|v| decode("ledger", tbs_sha256.as_bytes(), &v))
            .transpose()
    }

    fn audit_append(
        &self,
        make: &mut super::AuditMaker<'_>,
        flush: bool,
    ) -> Result<u64, StoreError> {
        let _guard = self.lock()?;
        let last = Self::last_seq(&self.audit, "audit")?;
        let (seq, bytes) = make(last.as_ref().map(|(n, v)| (*n, v.as_ref())))?;
        self.audit
            .insert(seq.to_be_bytes(), bytes)
            .map_err(backend)?;
        if flush {
            self.flush()?;
        }
        Ok(seq)
    }

    fn audit_records(&self) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        Self::seq_entries(&self.audit, "audit")
    }

    fn audit_raw_put(&self, seq: u64, bytes: Option<&[u8]>) -> Result<(), StoreError> {
        match bytes {
            Some(b) => self.audit.insert(seq.to_be_bytes(), b).map(|_| ()),
            None => self.audit.remove(seq.to_be_bytes()).map(|_| ()),
        }
        .map_err(backend)?;
        self.flush()
    }

    fn outbox_push(&self, bytes: &[u8]) -> Result<u64, StoreError> {
        let _guard = self.lock()?;
        let seq = Self::last_seq(&self.outbox, "outbox")?.map_or(1, |(n, _)| n + 1);
        self.outbox
            .insert(seq.to_be_bytes(), bytes)
            .map_err(backend)?;
        self.flush()?;
        Ok(seq)
    }

    fn outbox_list(&self) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        Self::seq_entries(&self.outbox, "outbox")
    }

    fn outbox_put(&self, id: u64, bytes: &[u8]) -> Result<(), StoreError> {
        self.outbox
            .insert(id.to_be_bytes(), bytes)
            .map_err(backend)?;
        self.flush()
    }

    fn outbox_remove(&self, id: u64) -> Result<(), StoreError> {
        self.outbox.remove(id.to_be_bytes()).map_err(backend)?;
        self.flush()
    }

    fn events(&self, name: Option<&str>) -> Result<Vec<Event>, StoreError> {
        let all: Vec<Event> = self.readable("events", &self.events)?;
        Ok(all
            .into_iter()
            .filter(|e| name.is_none_or(|n| n == e.cert))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn contract_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        {
            let store = SledStore::open(&path).unwrap();
            super::super::contract::run(&store);
        }
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        let store = SledStore::open(&path).unwrap();
        assert_eq!(store.bundles("web").unwrap().len(), 2);
        assert_eq!(store.events(None).unwrap().len(), 3);
    }

    #[test]
    fn a_database_directory_open_to_others_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db");
        std::fs::create_dir(&db).unwrap();
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o755)).unwrap();
        let e = SledStore::open(&db).err().unwrap().to_string();
        assert!(
            e.contains("mode 0755") && e.contains(&format!("chmod 700 {}", db.display())),
            "{e}"
        );
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o700)).unwrap();
        SledStore::open(&db).unwrap();
    }

    #[test]
    fn unknown_format_version_is_reported_not_panicked() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(&dir.path().join("db")).unwrap();
        store.certs.insert(b"web", &[9u8, b'{', b'}'][..]).unwrap();
        let err = store.get_cert("web").unwrap_err().to_string();
        assert!(err.contains("format version 9"), "{err}");
    }
}
