//! TLS presentation-language encoding (RFC 5246 §4) of the RFC 6962 §3 structures.

/// Appends a big-endian length prefix of `width` bytes and then `data`.
pub fn put_vec(out: &mut Vec<u8>, width: usize, data: &[u8]) {
    let len = data.len() as u64;
    out.extend_from_slice(&len.to_be_bytes()[8 - width..]);
    out.extend_from_slice(data);
}

/// `LogEntryType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryType {
    X509 = 0,
    Precert = 1,
}

/// The signed entry of a `TimestampedEntry`.
pub enum SignedEntry<'a> {
    /// `ASN.1Cert` of the leaf.
    X509(&'a [u8]),
    /// `PreCert { issuer_key_hash; tbs_certificate }`.
    Precert {
        issuer_key_hash: [u8; 32],
        tbs: &'a [u8],
    },
}

impl SignedEntry<'_> {
    pub fn entry_type(&self) -> EntryType {
        match self {
            SignedEntry::X509(_) => EntryType::X509,
            SignedEntry::Precert { .. } => EntryType::Precert,
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&(self.entry_type() as u16).to_be_bytes());
        match self {
            SignedEntry::X509(cert) => put_vec(out, 3, cert),
            SignedEntry::Precert {
                issuer_key_hash,
                tbs,
            } => {
                out.extend_from_slice(issuer_key_hash);
                put_vec(out, 3, tbs);
            }
        }
    }
}

/// `CtExtensions` with the static-ct-api `leaf_index(0)` extension (a uint40).
pub fn leaf_index_extension(index: u64) -> Vec<u8> {
    let mut out = vec![0u8];
    put_vec(&mut out, 2, &index.to_be_bytes()[3..]);
    out
}

/// `TimestampedEntry`.
pub fn timestamped_entry(timestamp: u64, entry: &SignedEntry<'_>, extensions: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&timestamp.to_be_bytes());
    entry.encode(&mut out);
    put_vec(&mut out, 2, extensions);
    out
}

/// `MerkleTreeLeaf` = version v1, leaf type timestamped_entry, then the entry.
pub fn merkle_tree_leaf(timestamped_entry: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8, 0u8];
    out.extend_from_slice(timestamped_entry);
    out
}

/// The data an SCT signature covers (RFC 6962 §3.2).
pub fn sct_signed_data(timestamp: u64, entry: &SignedEntry<'_>, extensions: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8, 0u8]; // v1, certificate_timestamp
    out.extend_from_slice(&timestamp.to_be_bytes());
    entry.encode(&mut out);
    put_vec(&mut out, 2, extensions);
    out
}

/// The data an STH signature covers (`TreeHeadSignature`, RFC 6962 §3.5).
pub fn tree_head_signed_data(timestamp: u64, tree_size: u64, root: &[u8; 32]) -> Vec<u8> {
    let mut out = vec![0u8, 1u8]; // v1, tree_hash
    out.extend_from_slice(&timestamp.to_be_bytes());
    out.extend_from_slice(&tree_size.to_be_bytes());
    out.extend_from_slice(root);
    out
}

/// `DigitallySigned` with SHA-256 and ECDSA.
pub fn digitally_signed(signature: &[u8]) -> Vec<u8> {
    let mut out = vec![4u8, 3u8];
    put_vec(&mut out, 2, signature);
    out
}
