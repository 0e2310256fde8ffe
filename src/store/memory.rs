//! An in-memory store with the same behaviour as the sled one: for tests, and as the second
//! backend that keeps the [`Store`] interface honest.

use std::collections::BTreeMap;
use std::sync::Mutex;

use certresponder_inventory::{Bundle, BundleState};

use super::{CertRecord, Event, Store, StoreError, bundle_key, bundle_prefix, decode, encode};
use crate::records::case::{Case, LedgerEntry};

/// A store that lives as long as the process. Values are kept encoded, as on disk, so the
/// format is exercised the same way.
#[derive(Default)]
pub struct MemoryStore {
    trees: Mutex<Trees>,
    issuers: Mutex<BTreeMap<String, std::sync::Arc<certresponder_issuers::MemoryStorage>>>,
}

/// Tree name -> key -> encoded value, as sled lays it out.
type Trees = BTreeMap<&'static str, BTreeMap<Vec<u8>, Vec<u8>>>;
/// Encoded key-value pairs of one tree.
type Entries = Vec<(Vec<u8>, Vec<u8>)>;

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<R>(&self, f: impl FnOnce(&mut Trees) -> R) -> Result<R, StoreError> {
        let mut guard = self
            .trees
            .lock()
            .map_err(|_| StoreError::Backend("memory store lock poisoned".into()))?;
        Ok(f(&mut guard))
    }

    fn insert_all(&self, tree: &'static str, items: Entries) -> Result<(), StoreError> {
        self.with(|t| {
            let tree = t.entry(tree).or_default();
            for (k, v) in items {
                tree.insert(k, v);
            }
        })
    }

    fn tree_entries(&self, tree: &'static str) -> Result<Entries, StoreError> {
        self.with(|t| {
            t.get(tree)
                .map(|c| c.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default()
        })
    }

    fn keyed_bundles(&self, name: &str) -> Result<Vec<(Vec<u8>, Bundle)>, StoreError> {
        let prefix = bundle_prefix(name);
        let all: Vec<(Vec<u8>, Vec<u8>)> = self.with(|t| {
            t.get("bundles")
                .map(|b| {
                    b.range(prefix.clone()..)
                        .take_while(|(k, _)| k.starts_with(&prefix))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                })
                .unwrap_or_default()
        })?;
        all.into_iter()
            .map(|(k, v)| {
                let b = decode("bundles", &k, &v)?;
                Ok((k, b))
            })
            .collect()
    }
}

impl Store for MemoryStore {
    fn put_signal(&self, signal: &crate::records::signal::Signal) -> Result<(), StoreError> {
        let v = encode(signal)?;
        self.with(|t| {
            t.entry("signals")
                .or_default()
                .insert(signal.dedup_key.as_bytes().to_vec(), v);
        })
    }

    fn get_signal(
        &self,
        dedup_key: &str,
    ) -> Result<Option<crate::records::signal::Signal>, StoreError> {
        let v = self.with(|t| {
            t.get("signals")
                .and_then(|c| c.get(dedup_key.as_bytes()).cloned())
        })?;
        v.map(|v| decode("signals", dedup_key.as_bytes(), &v))
            .transpose()
    }

    fn list_signals(&self) -> Result<Vec<crate::records::signal::Signal>, StoreError> {
        let all: Vec<(Vec<u8>, Vec<u8>)> = self.with(|t| {
            t.get("signals")
                .map(|c| c.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default()
        })?;
        all.iter().map(|(k, v)| decode("signals", k, v)).collect()
    }

    fn put_blob(&self, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.with(|t| {
            t.entry("blobs")
                .or_default()
                .insert(name.as_bytes().to_vec(), bytes.to_vec());
        })
    }

    fn get_blob(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.with(|t| t.get("blobs").and_then(|c| c.get(name.as_bytes()).cloned()))
    }

    fn swap_blob(
        &self,
        name: &str,
        expected: Option<&[u8]>,
        new: &[u8],
    ) -> Result<bool, StoreError> {
        self.with(|t| {
            let blobs = t.entry("blobs").or_default();
            if blobs.get(name.as_bytes()).map(Vec::as_slice) != expected {
                return false;
            }
            blobs.insert(name.as_bytes().to_vec(), new.to_vec());
            true
        })
    }

    fn issuer_storage(
        &self,
        issuer_id: &str,
    ) -> std::sync::Arc<dyn certresponder_issuers::IssuerStorage> {
        let mut map = match self.issuers.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        map.entry(issuer_id.to_string())
            .or_insert_with(|| std::sync::Arc::new(certresponder_issuers::MemoryStorage::new()))
            .clone()
    }

    fn put_cert(&self, rec: &CertRecord) -> Result<(), StoreError> {
        let v = encode(rec)?;
        self.with(|t| {
            t.entry("certs")
                .or_default()
                .insert(rec.entry.name.as_str().as_bytes().to_vec(), v);
        })
    }

    fn get_cert(&self, name: &str) -> Result<Option<CertRecord>, StoreError> {
        let v = self.with(|t| t.get("certs").and_then(|c| c.get(name.as_bytes()).cloned()))?;
        v.map(|v| decode("certs", name.as_bytes(), &v)).transpose()
    }

    fn list_certs(&self) -> Result<Vec<CertRecord>, StoreError> {
        let all: Vec<(Vec<u8>, Vec<u8>)> = self.with(|t| {
            t.get("certs")
                .map(|c| c.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default()
        })?;
        all.iter().map(|(k, v)| decode("certs", k, v)).collect()
    }

    fn append_bundle(&self, bundle: &Bundle) -> Result<u64, StoreError> {
        let existing = self.keyed_bundles(&bundle.cert_id)?;
        if existing.iter().any(|(_, b)| b.id == bundle.id) {
            return Err(StoreError::DuplicateBundle {
                cert: bundle.cert_id.clone(),
                bundle: bundle.id.clone(),
            });
        }
        let prefix = bundle_prefix(&bundle.cert_id);
        let next = match existing.last() {
            Some((k, _)) => {
                let seq: [u8; 8] = k[prefix.len()..]
                    .try_into()
                    .map_err(|_| StoreError::Backend("bad bundle key".into()))?;
                u64::from_be_bytes(seq) + 1
            }
            None => 0,
        };
        let mut updates = Vec::new();
        if bundle.state == BundleState::Current {
            for (k, mut old) in existing {
                if old.state == BundleState::Current {
                    old.state = BundleState::Previous;
                    updates.push((k, encode(&old)?));
                }
            }
        }
        updates.push((bundle_key(&bundle.cert_id, next), encode(bundle)?));
        self.insert_all("bundles", updates)?;
        Ok(next)
    }

    fn bundles(&self, name: &str) -> Result<Vec<Bundle>, StoreError> {
        Ok(self
            .keyed_bundles(name)?
            .into_iter()
            .map(|(_, b)| b)
            .collect())
    }

    fn set_bundle_state(
        &self,
        name: &str,
        bundle_id: &str,
        state: BundleState,
    ) -> Result<bool, StoreError> {
        let (keys, mut bundles): (Vec<Vec<u8>>, Vec<Bundle>) =
            self.keyed_bundles(name)?.into_iter().unzip();
        let Some(changed) = super::restate(&mut bundles, bundle_id, state) else {
            return Ok(false);
        };
        let mut updates = Vec::new();
        for i in changed {
            updates.push((keys[i].clone(), encode(&bundles[i])?));
        }
        self.insert_all("bundles", updates)?;
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
                    self.insert_all("bundles", vec![(k, encode(&b)?)])?;
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
        let keys: Vec<Vec<u8>> = all
            .into_iter()
            .filter(|(_, b)| doomed.contains(&b.id))
            .map(|(k, _)| k)
            .collect();
        self.with(|t| {
            let tree = t.entry("bundles").or_default();
            for k in keys {
                tree.remove(&k);
            }
        })?;
        Ok(doomed)
    }

    fn next_case_id(&self) -> Result<u64, StoreError> {
        self.with(|t| {
            let meta = t.entry("meta").or_default();
            let n = meta
                .get(&b"case_seq"[..])
                .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
                .map_or(0, u64::from_be_bytes)
                + 1;
            meta.insert(b"case_seq".to_vec(), n.to_be_bytes().to_vec());
            n
        })
    }

    fn put_case(&self, case: &Case) -> Result<(), StoreError> {
        let v = encode(case)?;
        self.insert_all("cases", vec![(case.id.to_be_bytes().to_vec(), v)])
    }

    fn swap_case(&self, case: &mut Case) -> Result<bool, StoreError> {
        let key = case.id.to_be_bytes().to_vec();
        let mut next = case.clone();
        next.version = case.version + 1;
        let bytes = encode(&next)?;
        let swapped = self.with(|t| {
            let cases = t.entry("cases").or_default();
            let stored = match cases.get(&key) {
                Some(v) => decode::<Case>("cases", &key, v).map(|c| c.version),
                None => Ok(0),
            };
            match stored {
                Ok(v) if v == case.version => {
                    cases.insert(key.clone(), bytes);
                    Ok(true)
                }
                Ok(_) => Ok(false),
                Err(e) => Err(e),
            }
        })??;
        if swapped {
            case.version = next.version;
        }
        Ok(swapped)
    }

    fn get_case(&self, id: u64) -> Result<Option<Case>, StoreError> {
        let key = id.to_be_bytes();
        let v = self.with(|t| t.get("cases").and_then(|c| c.get(&key[..]).cloned()))?;
        v.map(|v| decode("cases", &key, &v)).transpose()
    }

    fn list_cases(&self) -> Result<Vec<Case>, StoreError> {
        let all = self.tree_entries("cases")?;
        all.iter().map(|(k, v)| decode("cases", k, v)).collect()
    }

    fn put_ledger(&self, entry: &LedgerEntry) -> Result<(), StoreError> {
        let v = encode(entry)?;
        self.insert_all("ledger", vec![(entry.tbs_sha256.as_bytes().to_vec(), v)])
    }

    fn get_ledger(&self, tbs_sha256: &str) -> Result<Option<LedgerEntry>, StoreError> {
        let v = self.with(|t| {
            t.get("ledger")
                .and_then(|c| c.get(tbs_sha256.as_bytes()).cloned())
        })?;
        v.map(|v| decode("ledger", tbs_sha256.as_bytes(), &v))
            .transpose()
    }

    fn audit_append(
        &self,
        make: &mut super::AuditMaker<'_>,
        _flush: bool,
    ) -> Result<u64, StoreError> {
        let mut guard = self
            .trees
            .lock()
            .map_err(|_| StoreError::Backend("memory store lock poisoned".into()))?;
        let tree = guard.entry("audit").or_default();
        let last = tree.iter().next_back().and_then(|(k, v)| {
            <[u8; 8]>::try_from(k.as_slice())
                .ok()
                .map(|b| (u64::from_be_bytes(b), v.clone()))
        });
        let (seq, bytes) = make(last.as_ref().map(|(n, v)| (*n, v.as_slice())))?;
        tree.insert(seq.to_be_bytes().to_vec(), bytes);
        Ok(seq)
    }

    fn audit_records(&self) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        seq_entries(self.tree_entries("audit")?, "audit")
    }

    fn audit_raw_put(&self, seq: u64, bytes: Option<&[u8]>) -> Result<(), StoreError> {
        self.with(|t| {
            let tree = t.entry("audit").or_default();
            match bytes {
                Some(b) => {
                    tree.insert(seq.to_be_bytes().to_vec(), b.to_vec());
                }
                None => {
                    tree.remove(&seq.to_be_bytes()[..]);
                }
            }
        })
    }

    fn outbox_push(&self, bytes: &[u8]) -> Result<u64, StoreError> {
        self.with(|t| {
            let tree = t.entry("outbox").or_default();
            let seq = tree
                .keys()
                .next_back()
                .and_then(|k| <[u8; 8]>::try_from(k.as_slice()).ok())
                .map_or(1, |b| u64::from_be_bytes(b) + 1);
            tree.insert(seq.to_be_bytes().to_vec(), bytes.to_vec());
            seq
        })
    }

    fn outbox_list(&self) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        seq_entries(self.tree_entries("outbox")?, "outbox")
    }

    fn outbox_put(&self, id: u64, bytes: &[u8]) -> Result<(), StoreError> {
        self.insert_all("outbox", vec![(id.to_be_bytes().to_vec(), bytes.to_vec())])
    }

    fn outbox_remove(&self, id: u64) -> Result<(), StoreError> {
        self.with(|t| {
            if let Some(tree) = t.get_mut("outbox") {
                tree.remove(&id.to_be_bytes()[..]);
            }
        })
    }

    fn append_event(&self, mut event: Event) -> Result<u64, StoreError> {
        let seq = self.with(|t| t.get("events").map_or(0, |e| e.len() as u64))?;
        event.seq = seq;
        let v = encode(&event)?;
        self.with(|t| {
            t.entry("events")
                .or_default()
                .insert(seq.to_be_bytes().to_vec(), v);
        })?;
        Ok(seq)
    }

    fn events(&self, name: Option<&str>) -> Result<Vec<Event>, StoreError> {
        let all: Vec<(Vec<u8>, Vec<u8>)> = self.with(|t| {
            t.get("events")
                .map(|c| c.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default()
        })?;
        let mut out = Vec::new();
        for (k, v) in &all {
            let e: Event = decode("events", k, v)?;
            if name.is_none_or(|n| n == e.cert) {
                out.push(e);
            }
        }
        Ok(out)
    }
}

/// Decodes the 8-byte big-endian keys of a sequence-numbered tree.
fn seq_entries(entries: Entries, tree: &'static str) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
    entries
        .into_iter()
        .map(|(k, v)| {
            let b = <[u8; 8]>::try_from(k.as_slice()).map_err(|_| StoreError::Corrupt {
                tree,
                key: format!("{k:?}"),
                reason: "key is not an 8-byte sequence number".into(),
            })?;
            Ok((u64::from_be_bytes(b), v))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn contract() {
        super::super::contract::run(&super::MemoryStore::new());
    }
}
