//! The log: accepts chains, sequences them at once (a null merge delay, as static-ct-api
//! requires), signs SCTs and tree heads, and answers the read endpoints of both APIs.

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use x509_parser::prelude::{FromDer, ParsedExtension, X509Certificate};

use crate::der::{FinalIssuer, precert_tbs};
use crate::merkle::Hash;
use crate::signer::Signer;
use crate::store::{Entry, Store};
use crate::tls::{self, EntryType, SignedEntry};

/// Most entries one `get-entries` call returns; real logs cap the batch too.
pub const MAX_BATCH: u64 = 256;

/// Precertificate Signing Certificate EKU (RFC 6962 §3.1).
const PRECERT_SIGNING_EKU: &str = "1.3.6.1.4.1.11129.2.4.4";

/// Deliberate misbehaviour, to exercise a client's verification paths.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Fault {
    /// The STH and checkpoint carry a root hash that does not match the entries (validly signed).
    WrongRoot,
    /// The STH and checkpoint signatures do not verify.
    BadSthSignature,
    /// `get-entries` returns the last entry of each batch with its `leaf_input` cut short.
    TruncatedEntry,
}

/// A signed tree head.
pub struct Sth {
    pub tree_size: u64,
    pub timestamp: u64,
    pub root: Hash,
    /// TLS `DigitallySigned` over the `TreeHeadSignature`.
    pub signature: Vec<u8>,
}

pub struct Log {
    pub store: Store,
    pub signer: Signer,
    /// Accepted roots (DER); empty means any chain is accepted.
    pub roots: Vec<Vec<u8>>,
    pub fault: Option<Fault>,
    /// The static-ct-api origin line (submission prefix without scheme or trailing slash).
    pub origin: String,
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn parse(der: &[u8]) -> Result<X509Certificate<'_>> {
    let (_, c) = X509Certificate::from_der(der).map_err(|e| anyhow!("bad certificate: {e}"))?;
    Ok(c)
}

fn is_precert_signer(c: &X509Certificate<'_>) -> bool {
    matches!(c.extended_key_usage(), Ok(Some(eku))
        if eku.value.other.iter().any(|o| o.to_id_string() == PRECERT_SIGNING_EKU))
}

fn subject_key_id<'a>(c: &X509Certificate<'a>) -> Option<&'a [u8]> {
    c.extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0),
            _ => None,
        })
}

impl Log {
    /// Checks a submitted chain and completes it with the matching root if it stops short.
    fn check_chain(&self, mut chain: Vec<Vec<u8>>) -> Result<Vec<Vec<u8>>> {
        if chain.is_empty() {
            bail!("empty chain");
        }
        {
            let certs = chain.iter().map(|d| parse(d)).collect::<Result<Vec<_>>>()?;
            for (i, pair) in certs.windows(2).enumerate() {
                pair[0]
                    .verify_signature(Some(pair[1].public_key()))
                    .map_err(|e| anyhow!("chain[{i}] is not signed by chain[{}]: {e}", i + 1))?;
            }
        }
        if self.roots.is_empty() {
            return Ok(chain);
        }
        let last_der = chain.last().cloned().unwrap_or_default();
        if self.roots.contains(&last_der) {
            return Ok(chain);
        }
        let last = parse(&last_der)?;
        for root in &self.roots {
            let r = parse(root)?;
            if r.subject().as_raw() == last.issuer().as_raw()
                && last.verify_signature(Some(r.public_key())).is_ok()
            {
                chain.push(root.clone());
                return Ok(chain);
            }
        }
        bail!("chain does not end in an accepted root")
    }

    /// `add-chain` / `add-pre-chain`: logs the chain and returns the SCT as JSON (RFC 6962 §4.1).
    pub fn add(&mut self, chain: Vec<Vec<u8>>, precert: bool) -> Result<Value> {
        let chain = self.check_chain(chain)?;
        let leaf = &chain[0];
        let timestamp = now_ms();
        let index = self.store.size();
        let extensions = tls::leaf_index_extension(index);
        let (signed_data, leaf_input) = if precert {
            let issuer_der = chain.get(1).context("a precertificate needs its issuer")?;
            let issuer = parse(issuer_der)?;
            let (key_source, final_issuer) = if is_precert_signer(&issuer) {
                let fin = parse(
                    chain
                        .get(2)
                        .context("a precert signing certificate needs its issuer")?,
                )?;
                (fin.public_key().raw.to_vec(), Some(fin))
            } else {
                (issuer.public_key().raw.to_vec(), None)
            };
            let fi = final_issuer.as_ref().map(|f| FinalIssuer {
                subject: f.subject().as_raw(),
                key_id: subject_key_id(f),
            });
            let (tbs, poisoned) = precert_tbs(leaf, fi.as_ref())?;
            if !poisoned {
                bail!("add-pre-chain: the leaf has no poison extension");
            }
            let entry = SignedEntry::Precert {
                issuer_key_hash: Sha256::digest(&key_source).into(),
                tbs: &tbs,
            };
            (
                tls::sct_signed_data(timestamp, &entry, &extensions),
                tls::merkle_tree_leaf(&tls::timestamped_entry(timestamp, &entry, &extensions)),
            )
        } else {
            if precert_tbs(leaf, None)?.1 {
                bail!("add-chain: the leaf is a precertificate");
            }
            let entry = SignedEntry::X509(leaf);
            (
                tls::sct_signed_data(timestamp, &entry, &extensions),
                tls::merkle_tree_leaf(&tls::timestamped_entry(timestamp, &entry, &extensions)),
            )
        };
        let signature = self.signer.sign(&signed_data)?;
        let mut fps = Vec::new();
        for der in &chain[1..] {
            fps.push(self.store.put_issuer(der)?);
        }
        self.store.append(&Entry {
            entry_type: if precert {
                EntryType::Precert
            } else {
                EntryType::X509
            },
            leaf_input,
            pre_certificate: if precert { leaf.clone() } else { Vec::new() },
            chain: fps,
        })?;
        self.store.flush()?;
        Ok(json!({
            "sct_version": 0,
            "id": STANDARD.encode(self.signer.log_id),
            "timestamp": timestamp,
            "extensions": STANDARD.encode(&extensions),
            "signature": STANDARD.encode(tls::digitally_signed(&signature)),
        }))
    }

    /// A freshly signed tree head over every entry (with the configured fault applied).
    pub fn sth(&self) -> Result<Sth> {
        let tree_size = self.store.size();
        let mut root = self.store.tree.root(tree_size);
        if self.fault == Some(Fault::WrongRoot) {
            root[0] ^= 0x80;
        }
        let timestamp = now_ms();
        let mut sig = self
            .signer
            .sign(&tls::tree_head_signed_data(timestamp, tree_size, &root))?;
        if self.fault == Some(Fault::BadSthSignature)
            && let Some(b) = sig.last_mut()
        {
            *b ^= 0x01;
        }
        Ok(Sth {
            tree_size,
            timestamp,
            root,
            signature: tls::digitally_signed(&sig),
        })
    }

    pub fn get_sth(&self) -> Result<Value> {
        let s = self.sth()?;
        Ok(json!({
            "tree_size": s.tree_size,
            "timestamp": s.timestamp,
            "sha256_root_hash": STANDARD.encode(s.root),
            "tree_head_signature": STANDARD.encode(&s.signature),
        }))
    }

    pub fn get_consistency(&self, first: u64, second: u64) -> Result<Value> {
        if first > second || second > self.store.size() {
            bail!("need first <= second <= tree size {}", self.store.size());
        }
        let proof = self.store.tree.consistency_proof(first, second);
        Ok(json!({ "consistency": proof.iter().map(|h| STANDARD.encode(h)).collect::<Vec<_>>() }))
    }

    pub fn get_proof_by_hash(&self, hash: &[u8], tree_size: u64) -> Result<Value> {
        if tree_size > self.store.size() {
            bail!("tree_size beyond the tree");
        }
        let index = (0..tree_size)
            .find(|&i| self.store.tree.leaf(i).is_some_and(|h| h == hash))
            .context("no leaf with that hash in the tree of that size")?;
        let path = self.store.tree.inclusion_proof(index, tree_size);
        Ok(json!({
            "leaf_index": index,
            "audit_path": path.iter().map(|h| STANDARD.encode(h)).collect::<Vec<_>>(),
        }))
    }

    pub fn get_entry_and_proof(&self, index: u64, tree_size: u64) -> Result<Value> {
        if index >= tree_size || tree_size > self.store.size() {
            bail!("need leaf_index < tree_size <= tree size");
        }
        let e = self.store.read(index)?;
        let path = self.store.tree.inclusion_proof(index, tree_size);
        Ok(json!({
            "leaf_input": STANDARD.encode(&e.leaf_input),
            "extra_data": STANDARD.encode(self.store.extra_data(&e)?),
            "audit_path": path.iter().map(|h| STANDARD.encode(h)).collect::<Vec<_>>(),
        }))
    }

    pub fn get_entries(&self, start: u64, end: u64) -> Result<Value> {
        let size = self.store.size();
        if start > end || start >= size {
            bail!("need start <= end and start < tree size {size}");
        }
        let end = end.min(size - 1).min(start + MAX_BATCH - 1);
        let mut out = Vec::new();
        for i in start..=end {
            let e = self.store.read(i)?;
            let mut leaf = e.leaf_input.clone();
            if i == end && self.fault == Some(Fault::TruncatedEntry) {
                leaf.truncate(leaf.len() / 2);
            }
            out.push(json!({
                "leaf_input": STANDARD.encode(&leaf),
                "extra_data": STANDARD.encode(self.store.extra_data(&e)?),
            }));
        }
        Ok(json!({ "entries": out }))
    }

    pub fn get_roots(&self) -> Value {
        json!({ "certificates": self.roots.iter().map(|r| STANDARD.encode(r)).collect::<Vec<_>>() })
    }
}
