//! Blocklists: imported lists of keys known to be compromised (published private keys,
//! Debian's predictable keys of CVE-2008-0166), and the check of a key against them.
//!
//! Three formats are read ([`Format`]): badkeys' `blocklist.dat` (matched by the key's
//! BKHASH120), Debian's openssl-blacklist files (matched by the SHA-1 suffix of the RSA
//! modulus) and lists of SPKI SHA-256 fingerprints (matched by the SPKI hash, for EC keys
//! in either point form). See [`identity`](super::identity) for how each is computed.
//!
//! A key on a list is a confirmed compromise: `debian_weak_key` when the list is Debian's or
//! badkeys' `debianssl` source, `blocklisted_key` otherwise; revocation for keyCompromise
//! within 24 hours (CA/B Forum Baseline Requirements §4.9.1.1, and §6.1.1.3 for Debian weak
//! keys). A finding names the list and the source, never key material.

mod format;
mod store;
mod table;

use std::path::{Path, PathBuf};

use certresponder_inventory::inspect::{KeyInfo, Object};
use serde::Serialize;
use serde_json::json;

pub use format::{Format, detect, parse};
pub use store::{
    Imported, ListInfo, check_name, default_name, import, import_bytes, list, load, remove,
};
pub use table::{Table, TableError};

use super::identity::KeyIds;
use crate::signals::Finding;

/// A blocklist error: names the file (and line) or the list it is about.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BlocklistError {
    /// A file cannot be read or written.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A text list has a bad line.
    #[error("{}: {}{message}", .path.display(), match .line { Some(l) => format!("line {l}: "), None => String::new() })]
    Malformed {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: Option<usize>,
        /// What is wrong.
        message: String,
    },
    /// A list's records are not whole or not sorted.
    #[error("{}: not a valid {format} list: {source}", .path.display())]
    Table {
        /// The file.
        path: PathBuf,
        /// The format it was read as.
        format: Format,
        /// What is wrong.
        source: TableError,
    },
    /// The format could not be told from the content.
    #[error("{}: cannot tell the list's format: {message}; give --format", .path.display())]
    Detect {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The index of imported lists cannot be read.
    #[error("{}: {message}", .path.display())]
    Index {
        /// The index file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A bad list name.
    #[error("`{name}`: {message}")]
    Name {
        /// The name.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// No list has this name.
    #[error("no blocklist named `{name}`{}", if .known.is_empty() { " (none imported)".to_string() } else { format!(" (imported: {})", .known.join(", ")) })]
    NotFound {
        /// The name.
        name: String,
        /// The names there are.
        known: Vec<String>,
    },
    /// An imported list's stored records are damaged.
    #[error("blocklist `{name}` ({}): {message}; import it again", .path.display())]
    Stored {
        /// The list.
        name: String,
        /// Its stored file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// badkeys' source ids and names (blocklistmaker's `badkeysdata.json`).
const BADKEYS_SOURCES: &[(u8, &str)] = &[
    (1, "debianssl"),
    (2, "keypair"),
    (3, "ransomware"),
    (4, "documentation"),
    (5, "firmware"),
    (6, "localhostcert"),
    (7, "localroot"),
    (8, "misc"),
    (9, "softwaretests"),
    (10, "testvectors"),
    (11, "rfc"),
    (12, "web"),
    (13, "git"),
    (14, "forti"),
    (15, "pkg"),
    (16, "firmwares"),
    (99, "new"),
];

/// badkeys' source id for Debian's weak keys.
const DEBIANSSL: u8 = 1;

/// The name of a badkeys source id; unknown ids are `id<N>`, as badkeys prints them.
pub fn badkeys_source(id: u8) -> String {
    BADKEYS_SOURCES
        .iter()
        .find(|(i, _)| *i == id)
        .map_or_else(|| format!("id{id}"), |(_, n)| (*n).to_string())
}

/// A key found on a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hit {
    /// The check it is a finding of: `debian_weak_key` or `blocklisted_key`.
    pub check: &'static str,
    /// The list's name.
    pub list: String,
    /// The list's format.
    pub format: Format,
    /// The identity that matched: `bkhash`, `debian_suffix`, `spki_sha256` or
    /// `spki_sha256_alt` (the other EC point form).
    pub matched: &'static str,
    /// badkeys lists: the source id of the record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_id: Option<u8>,
    /// badkeys lists: the source's name (`debianssl`, `rfc`...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// badkeys lists: BKHASH64 (the first 8 bytes of the hash, hex), which finds the
    /// published key in badkeys' `lookup.txt`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lookup: Option<String>,
}

impl Hit {
    /// `` `name` (source `debianssl`, lookup 0123...) `` for messages.
    fn describe(&self) -> String {
        let mut s = format!("`{}` ({}", self.list, self.format);
        if let Some(src) = &self.source {
            s.push_str(&format!(", source `{src}`"));
        }
        if let Some(l) = &self.lookup {
            s.push_str(&format!(", lookup {l}"));
        }
        s.push(')');
        s
    }
}

/// One loaded list.
#[derive(Debug)]
struct Loaded {
    info: ListInfo,
    table: Table,
}

/// One loaded product of known-bad primes.
#[derive(Debug)]
struct Primes {
    info: ListInfo,
    key_bits: u32,
    product: crate::signals::weak::batch_gcd::ProductIndex,
}

/// The imported lists, loaded for checking.
#[derive(Debug, Default)]
pub struct Blocklists {
    lists: Vec<Loaded>,
    primes: Vec<Primes>,
    problems: Vec<BlocklistError>,
}

/// Loads every imported list. A list whose stored records cannot be read is left out and
/// reported (a `tracing` warning, and [`Blocklists::problems`]); an unreadable index is an
/// error. With nothing imported, the result is empty.
pub fn load_all(dir: &Path) -> Result<Blocklists, BlocklistError> {
    let mut out = Blocklists::default();
    for info in list(dir)? {
        if let (Format::BadkeysPrimes, Some(key_bits)) = (info.format, info.key_bits) {
            match store::load_primes(dir, &info) {
                Ok(product) => out.primes.push(Primes {
                    info,
                    key_bits,
                    product,
                }),
                Err(e) => {
                    tracing::warn!(list = %info.name, error = %e, "blocklist skipped");
                    out.problems.push(e);
                }
            }
            continue;
        }
        match load(dir, &info) {
            Ok(table) => out.lists.push(Loaded { info, table }),
            Err(e) => {
                tracing::warn!(list = %info.name, error = %e, "blocklist skipped");
                out.problems.push(e);
            }
        }
    }
    Ok(out)
}

impl Blocklists {
    /// Lists built from tables in memory (for tests and benchmarks).
    pub fn from_tables(lists: Vec<(ListInfo, Table)>) -> Self {
        Self {
            lists: lists
                .into_iter()
                .map(|(info, table)| Loaded { info, table })
                .collect(),
            primes: Vec::new(),
            problems: Vec::new(),
        }
    }

    /// The loaded lists.
    pub fn lists(&self) -> impl Iterator<Item = &ListInfo> {
        self.lists
            .iter()
            .map(|l| &l.info)
            .chain(self.primes.iter().map(|p| &p.info))
    }

    /// Whether no list is loaded.
    pub fn is_empty(&self) -> bool {
        self.lists.is_empty() && self.primes.is_empty()
    }

    /// The lists that could not be loaded.
    pub fn problems(&self) -> &[BlocklistError] {
        &self.problems
    }

    /// Every list `ids` is on.
    pub fn hits(&self, ids: &KeyIds) -> Vec<Hit> {
        let mut out = Vec::new();
        let debian = ids.debian_suffix.as_deref().and_then(|s| {
            let mut b = [0u8; 10];
            hex::decode_to_slice(s, &mut b).ok().map(|()| b)
        });
        let hex32 = |s: &Option<String>| {
            s.as_deref().and_then(|s| {
                let mut b = [0u8; 32];
                hex::decode_to_slice(s, &mut b).ok().map(|()| b)
            })
        };
        let spki = [
            ("spki_sha256", hex32(&ids.spki_sha256)),
            ("spki_sha256_alt", hex32(&ids.spki_sha256_alt)),
        ];
        for l in &self.lists {
            let hit = |check, matched, source_id: Option<u8>, lookup| Hit {
                check,
                list: l.info.name.clone(),
                format: l.info.format,
                matched,
                source_id,
                source: source_id.map(badkeys_source),
                lookup,
            };
            match l.info.format {
                Format::Badkeys => {
                    let Some(h) = &ids.bkhash else { continue };
                    if let Some(rec) = l.table.find(h) {
                        let id = rec[15];
                        let check = if id == DEBIANSSL {
                            "debian_weak_key"
                        } else {
                            "blocklisted_key"
                        };
                        out.push(hit(check, "bkhash", Some(id), Some(hex::encode(&h[..8]))));
                    }
                }
                Format::Debian => {
                    if let Some(s) = &debian
                        && l.table.find(s).is_some()
                    {
                        out.push(hit("debian_weak_key", "debian_suffix", None, None));
                    }
                }
                Format::BadkeysPrimes => {}
                Format::Spki => {
                    if let Some((matched, _)) = spki
                        .iter()
                        .find(|(_, h)| h.is_some_and(|h| l.table.find(&h).is_some()))
                    {
                        out.push(hit("blocklisted_key", matched, None, None));
                    }
                }
            }
        }
        out
    }

    /// The findings for `key`: one per check (`debian_weak_key`, `blocklisted_key`) with
    /// every list it is on.
    pub fn check(&self, key: &KeyInfo) -> Vec<Finding> {
        if self.is_empty() {
            return Vec::new();
        }
        let mut out = if self.lists.is_empty() {
            Vec::new()
        } else {
            self.check_ids(&KeyIds::of(key), &key.describe())
        };
        if let KeyInfo::Rsa { modulus, bits, .. } = key {
            out.extend(self.known_primes(modulus, *bits));
        }
        out
    }

    /// `shared_prime` when an RSA modulus of `bits` bits has a factor in common with an
    /// imported product of known-bad primes for that size (badkeys' `sharedprimes`).
    pub fn known_primes(&self, modulus: &[u8], bits: usize) -> Option<Finding> {
        let on: Vec<(&Primes, u64)> = self
            .primes
            .iter()
            .filter(|p| usize::try_from(p.key_bits).is_ok_and(|b| b == bits))
            .filter_map(|p| {
                let factor_bits = match p.product.check(modulus)? {
                    crate::signals::weak::batch_gcd::IndexHit::SharedFactor { factor_bits } => {
                        factor_bits
                    }
                    crate::signals::weak::batch_gcd::IndexHit::WholeModulus { modulus_bits } => {
                        modulus_bits
                    }
                };
                Some((p, factor_bits))
            })
            .collect();
        let (first, factor_bits) = on.first()?;
        let names: Vec<&str> = on.iter().map(|(p, _)| p.info.name.as_str()).collect();
        Some(Finding::compromised(
            "shared_prime",
            format!(
                "RSA-{bits} modulus shares a {factor_bits}-bit prime with keys found in internet scans (the known-bad primes of `{}`): anyone with that list factors it",
                names.join("`, `")
            ),
            json!({
                "source": "known_bad_primes",
                "lists": names,
                "factor_bits": factor_bits,
                "key_bits": first.key_bits,
            }),
        ))
    }

    /// The findings for a key known by its identities; `key` describes it (`RSA-2048`).
    pub fn check_ids(&self, ids: &KeyIds, key: &str) -> Vec<Finding> {
        findings(&self.hits(ids), key)
    }
}

/// Turns hits into findings: one per check, naming every list.
pub fn findings(hits: &[Hit], key: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    for check in ["debian_weak_key", "blocklisted_key"] {
        let these: Vec<&Hit> = hits.iter().filter(|h| h.check == check).collect();
        if these.is_empty() {
            continue;
        }
        let on = these
            .iter()
            .map(|h| h.describe())
            .collect::<Vec<_>>()
            .join(", ");
        let lists = if these.len() == 1 {
            "blocklist"
        } else {
            "blocklists"
        };
        let message = if check == "debian_weak_key" {
            format!(
                "the key ({key}) is a Debian weak key (CVE-2008-0166, predictable OpenSSL keys): on the {lists} {on}"
            )
        } else {
            format!("the key ({key}) is on the {lists} {on} of published private keys")
        };
        out.push(Finding::compromised(
            check,
            message,
            json!({"key": key, "lists": these}),
        ));
    }
    out
}

/// The key an inspected object holds (a certificate's, a CSR's, a key's public half).
pub fn object_key(obj: &Object) -> Option<&KeyInfo> {
    match obj {
        Object::Certificate(c) => Some(&c.key),
        Object::PrivateKey(k) => Some(&k.public),
        Object::PublicKey(k) => Some(k),
        Object::Csr(c) => Some(&c.key),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
