//! Log entries: the `MerkleTreeLeaf` and `TimestampedEntry` of RFC 6962 §3.4, the chain in
//! `extra_data` (§4.6), and the static-ct-api `TileLeaf` of data tiles.

use super::merkle::{Hash, leaf_hash};
use super::tls::{Reader, Short};

/// What an entry logs: a certificate or a precertificate.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EntryKind {
    /// An X.509 certificate (`x509_entry`), DER.
    X509 {
        /// The certificate, DER.
        cert_der: Vec<u8>,
    },
    /// A precertificate (`precert_entry`): the TBSCertificate the final certificate will
    /// carry (poison removed) and the hash of its issuer's key.
    Precert {
        /// SHA-256 of the final issuer's DER SubjectPublicKeyInfo.
        issuer_key_hash: Hash,
        /// The TBSCertificate, DER.
        tbs_der: Vec<u8>,
        /// The submitted precertificate itself (DER), from `extra_data` or the tile leaf.
        precert_der: Option<Vec<u8>>,
    },
}

/// One entry of a log, as handed to the monitor's caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its index in the log.
    pub index: u64,
    /// The log's timestamp for it, in milliseconds since the Unix epoch.
    pub timestamp: u64,
    /// The certificate or precertificate.
    pub kind: EntryKind,
    /// The chain up to a root the log accepts, DER, leaf's issuer first.
    pub chain: Vec<Vec<u8>>,
    /// Its Merkle leaf hash.
    pub leaf_hash: Hash,
}

/// An entry that could not be parsed. It is still hashed into the tree (its leaf bytes are
/// what the log committed to) and handed to the caller, never dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("log {log}: entry {index} is malformed: {reason}")]
pub struct MalformedEntry {
    /// The log's URL.
    pub log: String,
    /// The entry's index.
    pub index: u64,
    /// What is wrong.
    pub reason: String,
    /// The raw `leaf_input`.
    pub leaf_input: Vec<u8>,
}

/// A `TimestampedEntry` without its extensions.
pub(crate) struct Timestamped {
    pub(crate) timestamp: u64,
    pub(crate) kind: EntryKind,
    pub(crate) extensions: Vec<u8>,
}

/// Reads a `TimestampedEntry` (RFC 6962 §3.4).
pub(crate) fn read_timestamped_entry(r: &mut Reader<'_>) -> Result<Timestamped, Short> {
    let timestamp = r.uint(8, "timestamp")?;
    let kind = match r.uint(2, "entry type")? {
        0 => EntryKind::X509 {
            cert_der: r.vec(3, "certificate")?.to_vec(),
        },
        1 => EntryKind::Precert {
            issuer_key_hash: r.hash("issuer key hash")?,
            tbs_der: r.vec(3, "TBSCertificate")?.to_vec(),
            precert_der: None,
        },
        _ => return Err(Short("a known entry type")),
    };
    let extensions = r.vec(2, "extensions")?.to_vec();
    Ok(Timestamped {
        timestamp,
        kind,
        extensions,
    })
}

/// Reads a certificate chain: a 24-bit length-prefixed list of 24-bit length-prefixed
/// certificates.
fn read_chain(r: &mut Reader<'_>) -> Result<Vec<Vec<u8>>, Short> {
    let mut list = Reader::new(r.vec(3, "certificate chain")?);
    let mut chain = Vec::new();
    while !list.is_empty() {
        chain.push(list.vec(3, "chain certificate")?.to_vec());
    }
    Ok(chain)
}

/// Parses a `get-entries` entry: `leaf_input` (a `MerkleTreeLeaf`) and `extra_data`.
pub fn parse_rfc6962_entry(
    log: &str,
    index: u64,
    leaf_input: &[u8],
    extra_data: &[u8],
) -> Result<Entry, MalformedEntry> {
    let malformed = |reason: String| MalformedEntry {
        log: log.to_owned(),
        index,
        reason,
        leaf_input: leaf_input.to_vec(),
    };
    let short = |e: Short| malformed(format!("cut short or invalid reading the {}", e.0));
    let mut r = Reader::new(leaf_input);
    let version = r.uint(1, "version").map_err(short)?;
    let leaf_type = r.uint(1, "leaf type").map_err(short)?;
    if version != 0 || leaf_type != 0 {
        return Err(malformed(format!(
            "version {version} and leaf type {leaf_type}, not v1 timestamped_entry"
        )));
    }
    let ts = read_timestamped_entry(&mut r).map_err(short)?;
    if !r.is_empty() {
        return Err(malformed("bytes after the TimestampedEntry".into()));
    }
    let mut x = Reader::new(extra_data);
    let mut kind = ts.kind;
    let chain = match &mut kind {
        EntryKind::X509 { .. } => read_chain(&mut x).map_err(short)?,
        EntryKind::Precert { precert_der, .. } => {
            *precert_der = Some(x.vec(3, "pre-certificate").map_err(short)?.to_vec());
            read_chain(&mut x).map_err(short)?
        }
    };
    if !x.is_empty() {
        return Err(malformed("bytes after the chain in extra_data".into()));
    }
    Ok(Entry {
        index,
        timestamp: ts.timestamp,
        kind,
        chain,
        leaf_hash: leaf_hash(leaf_input),
    })
}

/// A `TileLeaf` of a static-ct-api data tile, before its chain is fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TileLeaf {
    /// The `MerkleTreeLeaf` bytes it stands for: `0x00 0x00 ‖ TimestampedEntry`.
    pub leaf_input: Vec<u8>,
    /// The log's timestamp, milliseconds since the Unix epoch.
    pub timestamp: u64,
    /// The certificate or precertificate.
    pub kind: EntryKind,
    /// The `leaf_index` from the SCT extensions, when present (static-ct-api requires it).
    pub leaf_index: Option<u64>,
    /// SHA-256 fingerprints of the chain certificates, fetched from `issuer/<hex>`.
    pub chain_fingerprints: Vec<Hash>,
}

/// Parses one `TileLeaf` from `r`. A failure leaves the rest of the tile unreadable, so it is
/// reported for the whole tile.
pub(crate) fn read_tile_leaf(r: &mut Reader<'_>) -> Result<TileLeaf, Short> {
    let start = r.rest();
    let ts = read_timestamped_entry(r)?;
    let consumed = start.len() - r.rest().len();
    let mut leaf_input = Vec::with_capacity(2 + consumed);
    leaf_input.extend_from_slice(&[0, 0]);
    leaf_input.extend_from_slice(&start[..consumed]);
    let mut kind = ts.kind;
    if let EntryKind::Precert { precert_der, .. } = &mut kind {
        *precert_der = Some(r.vec(3, "pre-certificate")?.to_vec());
    }
    let mut fps = Reader::new(r.vec(2, "certificate chain fingerprints")?);
    let mut chain_fingerprints = Vec::new();
    while !fps.is_empty() {
        chain_fingerprints.push(fps.hash("fingerprint")?);
    }
    Ok(TileLeaf {
        leaf_input,
        timestamp: ts.timestamp,
        kind,
        leaf_index: leaf_index_extension(&ts.extensions),
        chain_fingerprints,
    })
}

/// The `leaf_index` (type 0, uint40) from static-ct-api `CtExtensions`.
fn leaf_index_extension(ext: &[u8]) -> Option<u64> {
    let mut r = Reader::new(ext);
    while !r.is_empty() {
        let ty = r.uint(1, "extension type").ok()?;
        let data = r.vec(2, "extension data").ok()?;
        if ty == 0 && data.len() == 5 {
            return Reader::new(data).uint(5, "leaf index").ok();
        }
    }
    None
}

/// Parses a data tile into its leaves; `expected` is the number the tile must hold.
pub fn parse_data_tile(tile: &[u8], expected: usize) -> Result<Vec<TileLeaf>, String> {
    let mut r = Reader::new(tile);
    let mut leaves = Vec::with_capacity(expected);
    while !r.is_empty() {
        let leaf = read_tile_leaf(&mut r)
            .map_err(|e| format!("leaf {} is cut short reading the {}", leaves.len(), e.0))?;
        leaves.push(leaf);
    }
    if leaves.len() != expected {
        return Err(format!(
            "the tile holds {} entries, not {expected}",
            leaves.len()
        ));
    }
    Ok(leaves)
}

#[cfg(test)]
pub(crate) mod tests {
    use rcgen::{CertificateParams, KeyPair};

    use super::*;

    fn u24(n: usize) -> [u8; 3] {
        let b = (n as u32).to_be_bytes();
        [b[1], b[2], b[3]]
    }

    /// A real certificate made by rcgen, DER.
    pub(crate) fn cert(name: &str) -> Vec<u8> {
        let key = KeyPair::generate().unwrap();
        let params = CertificateParams::new(vec![name.to_owned()]).unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    /// A `TimestampedEntry` for an x509 entry, with `ext` as its extensions.
    pub(crate) fn x509_timestamped(ts: u64, der: &[u8], ext: &[u8]) -> Vec<u8> {
        let mut out = ts.to_be_bytes().to_vec();
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&u24(der.len()));
        out.extend_from_slice(der);
        out.extend_from_slice(&(ext.len() as u16).to_be_bytes());
        out.extend_from_slice(ext);
        out
    }

    /// A `MerkleTreeLeaf` for an x509 entry.
    pub(crate) fn x509_leaf(ts: u64, der: &[u8]) -> Vec<u8> {
        let mut out = vec![0, 0];
        out.extend_from_slice(&x509_timestamped(ts, der, &[]));
        out
    }

    /// `extra_data` for an x509 entry: the chain.
    pub(crate) fn chain_data(chain: &[Vec<u8>]) -> Vec<u8> {
        let mut inner = Vec::new();
        for c in chain {
            inner.extend_from_slice(&u24(c.len()));
            inner.extend_from_slice(c);
        }
        let mut out = u24(inner.len()).to_vec();
        out.extend_from_slice(&inner);
        out
    }

    #[test]
    fn parses_an_x509_entry_with_its_chain() {
        let (leaf, ca) = (cert("leaf.example"), cert("ca.example"));
        let input = x509_leaf(1234, &leaf);
        let e =
            parse_rfc6962_entry("log", 5, &input, &chain_data(std::slice::from_ref(&ca))).unwrap();
        assert_eq!(e.index, 5);
        assert_eq!(e.timestamp, 1234);
        assert_eq!(
            e.kind,
            EntryKind::X509 {
                cert_der: leaf.clone()
            }
        );
        assert_eq!(e.chain, vec![ca]);
        assert_eq!(e.leaf_hash, leaf_hash(&input));
        let parsed = certresponder_inventory::inspect::inspect_certificate_der(&leaf);
        assert!(parsed.is_ok());
    }

    #[test]
    fn parses_a_precert_entry() {
        let tbs = b"\x30\x03\x02\x01\x01".to_vec();
        let pre = cert("pre.example");
        let mut input = vec![0, 0];
        input.extend_from_slice(&7u64.to_be_bytes());
        input.extend_from_slice(&[0, 1]);
        input.extend_from_slice(&[0xab; 32]);
        input.extend_from_slice(&u24(tbs.len()));
        input.extend_from_slice(&tbs);
        input.extend_from_slice(&[0, 0]);
        let mut extra = u24(pre.len()).to_vec();
        extra.extend_from_slice(&pre);
        extra.extend_from_slice(&chain_data(&[]));
        let e = parse_rfc6962_entry("log", 0, &input, &extra).unwrap();
        assert_eq!(
            e.kind,
            EntryKind::Precert {
                issuer_key_hash: [0xab; 32],
                tbs_der: tbs,
                precert_der: Some(pre)
            }
        );
    }

    #[test]
    fn a_malformed_entry_names_its_index() {
        let mut input = x509_leaf(1, &cert("a.example"));
        input.truncate(input.len() - 10);
        let e =
            parse_rfc6962_entry("https://log.example/", 42, &input, &chain_data(&[])).unwrap_err();
        assert_eq!(e.index, 42);
        assert_eq!(e.leaf_input, input);
        assert!(e.to_string().contains("entry 42"), "{e}");
        let mut v2 = x509_leaf(1, &cert("a.example"));
        v2[0] = 1;
        assert!(parse_rfc6962_entry("log", 1, &v2, &chain_data(&[])).is_err());
    }

    #[test]
    fn parses_a_precert_tile_leaf() {
        let tbs = b"\x30\x03\x02\x01\x07".to_vec();
        let pre = cert("pre.example");
        let mut te = 9u64.to_be_bytes().to_vec();
        te.extend_from_slice(&[0, 1]);
        te.extend_from_slice(&[0xcd; 32]);
        te.extend_from_slice(&u24(tbs.len()));
        te.extend_from_slice(&tbs);
        te.extend_from_slice(&[0, 8, 0, 0, 5, 0, 0, 0, 0, 0]);
        let mut tile = te.clone();
        tile.extend_from_slice(&u24(pre.len()));
        tile.extend_from_slice(&pre);
        tile.extend_from_slice(&[0, 0]);
        let leaves = parse_data_tile(&tile, 1).unwrap();
        let mut input = vec![0, 0];
        input.extend_from_slice(&te);
        assert_eq!(leaves[0].leaf_input, input);
        assert_eq!(leaves[0].leaf_index, Some(0));
        assert_eq!(
            leaves[0].kind,
            EntryKind::Precert {
                issuer_key_hash: [0xcd; 32],
                tbs_der: tbs,
                precert_der: Some(pre)
            }
        );
        assert!(leaves[0].chain_fingerprints.is_empty());
    }

    #[test]
    fn parses_a_data_tile_with_leaf_index_extensions() {
        let mut tile = Vec::new();
        let mut inputs = Vec::new();
        for i in 0u64..3 {
            let der = cert(&format!("n{i}.example"));
            let mut ext = vec![0, 0, 5];
            ext.extend_from_slice(&i.to_be_bytes()[3..]);
            let te = x509_timestamped(100 + i, &der, &ext);
            tile.extend_from_slice(&te);
            tile.extend_from_slice(&32u16.to_be_bytes());
            tile.extend_from_slice(&[i as u8; 32]);
            let mut li = vec![0, 0];
            li.extend_from_slice(&te);
            inputs.push(li);
        }
        let leaves = parse_data_tile(&tile, 3).unwrap();
        for (i, l) in leaves.iter().enumerate() {
            assert_eq!(l.leaf_input, inputs[i]);
            assert_eq!(l.leaf_index, Some(i as u64));
            assert_eq!(l.chain_fingerprints, vec![[i as u8; 32]]);
        }
        assert!(parse_data_tile(&tile, 4).is_err());
        assert!(parse_data_tile(&tile[..tile.len() - 1], 3).is_err());
    }
}
