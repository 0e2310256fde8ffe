//! Signed tree heads: the RFC 6962 `get-sth` answer (§4.3) and the static-ct-api signed
//! checkpoint note (c2sp.org/static-ct-api, c2sp.org/signed-note), both signed over the
//! `TreeHeadSignature` structure (RFC 6962 §3.5) with ECDSA P-256 or RSA PKCS#1, SHA-256.

use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1, RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use sha2::{Digest, Sha256};

use super::merkle::Hash;
use super::tls::Reader;

/// A signed tree head: a log's commitment to the tree of `tree_size` entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sth {
    /// The number of entries in the tree.
    pub tree_size: u64,
    /// When the head was signed, in milliseconds since the Unix epoch.
    pub timestamp: u64,
    /// The Merkle tree root (MTH) of those entries.
    pub root_hash: Hash,
    /// The TLS `digitally-signed` structure: hash and signature algorithm bytes, then the
    /// 16-bit length-prefixed signature (RFC 5246 §4.7).
    pub signature: Vec<u8>,
}

/// Why a signature did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// The `digitally-signed` structure is cut short or has bytes left over.
    #[error("the digitally-signed structure is malformed: {0}")]
    Malformed(String),
    /// The hash or signature algorithm is not SHA-256 with ECDSA or RSA.
    #[error(
        "hash algorithm {hash} with signature algorithm {sig} is not allowed (RFC 6962 §2.1.4)"
    )]
    Algorithm {
        /// The hash algorithm byte (SHA-256 is 4).
        hash: u8,
        /// The signature algorithm byte (RSA is 1, ECDSA 3).
        sig: u8,
    },
    /// The signature does not verify with the log's key.
    #[error("the signature does not verify with the log's key")]
    Invalid,
}

impl Sth {
    /// The bytes the log signed: `TreeHeadSignature` (RFC 6962 §3.5).
    pub fn signed_data(&self) -> Vec<u8> {
        tree_head_signature_input(self.timestamp, self.tree_size, &self.root_hash)
    }

    /// Checks the signature with the log's public key (DER SubjectPublicKeyInfo).
    pub fn verify(&self, public_key_der: &[u8]) -> Result<(), SignatureError> {
        verify_digitally_signed(public_key_der, &self.signed_data(), &self.signature)
    }
}

/// The `TreeHeadSignature` structure: version v1, signature type tree_hash, timestamp,
/// tree size and root.
pub fn tree_head_signature_input(timestamp: u64, tree_size: u64, root: &Hash) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + 8 + 8 + 32);
    out.push(0); // v1
    out.push(1); // tree_hash
    out.extend_from_slice(&timestamp.to_be_bytes());
    out.extend_from_slice(&tree_size.to_be_bytes());
    out.extend_from_slice(root);
    out
}

/// Verifies a TLS `digitally-signed` structure over `message` with the key
/// `public_key_der` (SubjectPublicKeyInfo). Only SHA-256 with ECDSA (P-256) or RSA PKCS#1
/// is accepted, the two RFC 6962 allows.
pub fn verify_digitally_signed(
    public_key_der: &[u8],
    message: &[u8],
    digitally_signed: &[u8],
) -> Result<(), SignatureError> {
    let mut r = Reader::new(digitally_signed);
    let malformed = |e: super::tls::Short| SignatureError::Malformed(e.0.to_owned());
    let hash = r.uint(1, "hash algorithm").map_err(malformed)? as u8;
    let sig = r.uint(1, "signature algorithm").map_err(malformed)? as u8;
    let signature = r.vec(2, "signature").map_err(malformed)?;
    if !r.is_empty() {
        return Err(SignatureError::Malformed(
            "bytes after the signature".into(),
        ));
    }
    let key = match (hash, sig) {
        (4, 3) => UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, public_key_der),
        (4, 1) => UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, public_key_der),
        _ => return Err(SignatureError::Algorithm { hash, sig }),
    };
    key.verify(message, signature)
        .map_err(|_| SignatureError::Invalid)
}

/// The log ID: SHA-256 of the log's DER SubjectPublicKeyInfo (RFC 6962 §3.2).
pub fn log_id(public_key_der: &[u8]) -> Hash {
    Sha256::digest(public_key_der).into()
}

/// Why a checkpoint was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The note is not a well-formed checkpoint.
    #[error("malformed checkpoint: {0}")]
    Malformed(String),
    /// The checkpoint is for another log.
    #[error("the checkpoint's origin is `{found}`, not `{expected}`")]
    Origin {
        /// The origin expected for this log.
        expected: String,
        /// The origin in the checkpoint.
        found: String,
    },
    /// No signature line has the log's name and key ID.
    #[error("no signature by the log's key (name `{0}`)")]
    NoSignature(String),
    /// The log's signature does not verify.
    #[error(transparent)]
    Signature(#[from] SignatureError),
}

/// The signed-note key ID of an RFC 6962 note signature (c2sp.org/static-ct-api):
/// the first 4 bytes of `SHA-256(origin ‖ 0x0A ‖ 0x05 ‖ log ID)`.
pub fn note_key_id(origin: &str, log_id: &Hash) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(origin.as_bytes());
    h.update([0x0a, 0x05]);
    h.update(log_id);
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

/// Parses a static-ct-api checkpoint and verifies the log's RFC 6962 note signature on it,
/// returning the tree head it signs. Signatures by other names or keys (witness
/// cosignatures) are ignored; extension lines are refused, as the spec requires for this
/// signature type.
pub fn verify_checkpoint(
    note: &str,
    origin: &str,
    public_key_der: &[u8],
) -> Result<Sth, CheckpointError> {
    let bad = |m: &str| CheckpointError::Malformed(m.to_owned());
    let (body, sigs) = note
        .split_once("\n\n")
        .ok_or_else(|| bad("no blank line before the signatures"))?;
    let lines: Vec<&str> = body.split('\n').collect();
    let [name, size, root] = lines[..] else {
        return Err(bad(
            "the body must be exactly origin, tree size and root hash (no extension lines)",
        ));
    };
    if name != origin {
        return Err(CheckpointError::Origin {
            expected: origin.to_owned(),
            found: name.to_owned(),
        });
    }
    if size.is_empty()
        || !size.bytes().all(|b| b.is_ascii_digit())
        || (size.len() > 1 && size.starts_with('0'))
    {
        return Err(bad("the tree size is not a decimal number"));
    }
    let tree_size: u64 = size
        .parse()
        .map_err(|_| bad("the tree size is too large"))?;
    let root_hash: Hash = B64
        .decode(root)
        .ok()
        .and_then(|v| <Hash>::try_from(v.as_slice()).ok())
        .ok_or_else(|| bad("the root hash is not 32 bytes of base64"))?;
    // An RFC 6962 note signature signs the TreeHeadSignature, not the note's text.
    let key_id = note_key_id(origin, &log_id(public_key_der));
    if !sigs.ends_with('\n') {
        return Err(bad("the signature block does not end in a newline"));
    }
    for line in sigs.trim_end_matches('\n').split('\n') {
        let rest = line
            .strip_prefix("\u{2014} ")
            .ok_or_else(|| bad("a signature line does not start with an em dash"))?;
        let (sig_name, b64) = rest
            .split_once(' ')
            .ok_or_else(|| bad("a signature line has no signature"))?;
        let Ok(blob) = B64.decode(b64) else {
            return Err(bad("a signature is not base64"));
        };
        if sig_name != origin || blob.len() < 4 || blob[..4] != key_id {
            continue;
        }
        if blob.len() < 12 {
            return Err(bad("the log's signature is too short"));
        }
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&blob[4..12]);
        let sth = Sth {
            tree_size,
            timestamp: u64::from_be_bytes(ts),
            root_hash,
            signature: blob[12..].to_vec(),
        };
        sth.verify(public_key_der)?;
        return Ok(sth);
    }
    Err(CheckpointError::NoSignature(origin.to_owned()))
}

#[cfg(test)]
pub(crate) mod tests {
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};

    use super::*;

    /// An ECDSA P-256 log key: the key pair and its DER SubjectPublicKeyInfo.
    pub(crate) fn log_key() -> (EcdsaKeyPair, Vec<u8>) {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let kp = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref()).unwrap();
        let spki = kp.public_key().as_der().unwrap().as_ref().to_vec();
        (kp, spki)
    }

    /// Signs `msg` as a TLS digitally-signed structure (SHA-256, ECDSA).
    pub(crate) fn sign(kp: &EcdsaKeyPair, msg: &[u8]) -> Vec<u8> {
        let sig = kp.sign(&SystemRandom::new(), msg).unwrap();
        let sig = sig.as_ref();
        let mut out = vec![4, 3];
        out.extend_from_slice(&(sig.len() as u16).to_be_bytes());
        out.extend_from_slice(sig);
        out
    }

    /// A signed tree head for `size` and `root`.
    pub(crate) fn signed_sth(kp: &EcdsaKeyPair, size: u64, root: Hash) -> Sth {
        let ts = 1_700_000_000_000 + size;
        Sth {
            tree_size: size,
            timestamp: ts,
            root_hash: root,
            signature: sign(kp, &tree_head_signature_input(ts, size, &root)),
        }
    }

    #[test]
    fn sth_signature_verifies_and_tampering_is_caught() {
        let (kp, spki) = log_key();
        let sth = signed_sth(&kp, 10, [7; 32]);
        sth.verify(&spki).unwrap();
        let mut other = sth.clone();
        other.tree_size = 11;
        assert_eq!(other.verify(&spki), Err(SignatureError::Invalid));
        let (_, other_key) = log_key();
        assert_eq!(sth.verify(&other_key), Err(SignatureError::Invalid));
        let mut sha1 = sth.clone();
        sha1.signature[0] = 2;
        assert!(matches!(
            sha1.verify(&spki),
            Err(SignatureError::Algorithm { .. })
        ));
    }

    #[test]
    fn rsa_tree_heads_verify_too() {
        use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
        use aws_lc_rs::signature::RSA_PKCS1_SHA256;
        let kp = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
        let spki = kp.public_key().as_der().unwrap().as_ref().to_vec();
        let msg = tree_head_signature_input(5, 6, &[3; 32]);
        let mut sig = vec![0u8; kp.public_modulus_len()];
        kp.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), &msg, &mut sig)
            .unwrap();
        let mut ds = vec![4, 1];
        ds.extend_from_slice(&(sig.len() as u16).to_be_bytes());
        ds.extend_from_slice(&sig);
        let sth = Sth {
            tree_size: 6,
            timestamp: 5,
            root_hash: [3; 32],
            signature: ds.clone(),
        };
        sth.verify(&spki).unwrap();
        // Claiming ECDSA for an RSA signature fails.
        ds[1] = 3;
        let wrong = Sth {
            signature: ds,
            ..sth
        };
        assert_eq!(wrong.verify(&spki), Err(SignatureError::Invalid));
    }

    /// A checkpoint note carrying `sth`'s signature for `origin`, with a witness cosignature first.
    pub(crate) fn checkpoint(spki: &[u8], origin: &str, sth: &Sth) -> String {
        let mut blob = note_key_id(origin, &log_id(spki)).to_vec();
        blob.extend_from_slice(&sth.timestamp.to_be_bytes());
        blob.extend_from_slice(&sth.signature);
        format!(
            "{origin}\n{}\n{}\n\n\u{2014} witness.example AAAAAAAAAAAA\n\u{2014} {origin} {}\n",
            sth.tree_size,
            B64.encode(sth.root_hash),
            B64.encode(blob)
        )
    }

    #[test]
    fn checkpoint_note_verifies_and_ignores_cosignatures() {
        let (kp, spki) = log_key();
        let origin = "log.example/2026h1";
        let sth = signed_sth(&kp, 70_000, [9; 32]);
        let note = checkpoint(&spki, origin, &sth);
        assert_eq!(verify_checkpoint(&note, origin, &spki).unwrap(), sth);
        assert!(matches!(
            verify_checkpoint(&note, "other.example", &spki),
            Err(CheckpointError::Origin { .. })
        ));
        let forged = note.replacen("70000", "70001", 1);
        assert!(matches!(
            verify_checkpoint(&forged, origin, &spki),
            Err(CheckpointError::Signature(SignatureError::Invalid))
        ));
        let (_, other) = log_key();
        assert!(matches!(
            verify_checkpoint(&note, origin, &other),
            Err(CheckpointError::NoSignature(_))
        ));
        let ext = note.replacen("\n\n", "\nextension\n\n", 1);
        assert!(matches!(
            verify_checkpoint(&ext, origin, &spki),
            Err(CheckpointError::Malformed(_))
        ));
    }
}
