//! Bulk loading for benchmarks: appends many generated certificate entries fast.
//!
//! Signing a certificate per entry would dominate, so a bounded set of distinct leaf
//! certificates (one per name, up to [`DISTINCT`] for `--domain`) is signed in parallel,
//! batch by batch, and entries reuse them with distinct timestamps, so every leaf hash differs.

use std::path::Path;

use anyhow::{Context, Result, anyhow};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SerialNumber};

use crate::log::now_ms;
use crate::store::{Entry, Store};
use crate::tls::{self, EntryType, SignedEntry};

/// Distinct certificates generated for `--domain`.
const DISTINCT: usize = 1024;
/// Certificates signed per batch with `--names-from`.
const BATCH: usize = 8192;

/// Where the generated names come from.
pub enum Names {
    File(std::path::PathBuf),
    Domain(String),
}

/// Appends `count` entries to the log in `dir`; returns the new tree size.
pub fn fill(dir: &Path, count: u64, names: Names) -> Result<u64> {
    let mut store = Store::open(dir)?;
    let names: Vec<String> = match names {
        Names::File(p) => std::fs::read_to_string(&p)
            .with_context(|| format!("reading {}", p.display()))?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect(),
        Names::Domain(d) => (0..DISTINCT.min(count as usize))
            .map(|i| format!("host{i}.{d}"))
            .collect(),
    };
    if names.is_empty() && count > 0 {
        return Err(anyhow!("no names to generate certificates for"));
    }
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(
        DnType::CommonName,
        format!("certresponder fill CA {}", now_ms()),
    );
    let ca_cert = ca.self_signed(&ca_key)?;
    std::fs::write(dir.join("fill-ca.pem"), ca_cert.pem())?;
    let fp = store.put_issuer(ca_cert.der())?;
    let issuer = Issuer::new(ca, ca_key);
    let leaf_key = KeyPair::generate()?;
    let base_ts = now_ms();
    let threads = std::thread::available_parallelism().map_or(4, usize::from);
    let cached = if names.len() <= BATCH {
        Some(sign_parallel(&names, 0, &leaf_key, &issuer, threads)?)
    } else {
        None
    };
    let mut done = 0u64;
    while done < count {
        let n = BATCH.min((count - done) as usize);
        let signed;
        let (certs, offset) = match &cached {
            Some(c) => (c, done as usize),
            None => {
                let batch: Vec<String> = (0..n)
                    .map(|j| names[(done as usize + j) % names.len()].clone())
                    .collect();
                signed = sign_parallel(&batch, done, &leaf_key, &issuer, threads)?;
                (&signed, 0)
            }
        };
        for j in 0..n {
            let cert = &certs[(offset + j) % certs.len()];
            let index = store.size();
            let ext = tls::leaf_index_extension(index);
            let ts = base_ts + done + j as u64;
            let te = tls::timestamped_entry(ts, &SignedEntry::X509(cert), &ext);
            store.append(&Entry {
                entry_type: EntryType::X509,
                leaf_input: tls::merkle_tree_leaf(&te),
                pre_certificate: Vec::new(),
                chain: vec![fp],
            })?;
        }
        done += n as u64;
    }
    store.flush()?;
    Ok(store.size())
}

fn sign_parallel(
    names: &[String],
    serial_base: u64,
    key: &KeyPair,
    issuer: &Issuer<'_, KeyPair>,
    threads: usize,
) -> Result<Vec<Vec<u8>>> {
    let chunk = names.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = names
            .chunks(chunk)
            .enumerate()
            .map(|(c, part)| {
                s.spawn(move || -> Result<Vec<Vec<u8>>> {
                    part.iter()
                        .enumerate()
                        .map(|(i, name)| {
                            let mut p = CertificateParams::new(vec![name.clone()])?;
                            p.distinguished_name.push(DnType::CommonName, name.clone());
                            let serial = serial_base + (c * chunk + i) as u64;
                            let mut bytes = vec![0x01];
                            bytes.extend_from_slice(&serial.to_be_bytes());
                            p.serial_number = Some(SerialNumber::from_slice(&bytes));
                            Ok(p.signed_by(key, issuer)?.der().to_vec())
                        })
                        .collect()
                })
            })
            .collect();
        let mut out = Vec::new();
        for h in handles {
            out.extend(h.join().map_err(|_| anyhow!("signing thread panicked"))??);
        }
        Ok(out)
    })
}
