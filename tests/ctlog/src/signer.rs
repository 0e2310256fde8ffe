//! The log's ECDSA P-256 key: generated on first start, stored as PKCS#8 PEM, reused after.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

/// DER prefix of a P-256 SubjectPublicKeyInfo, before the 65-byte uncompressed point.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

pub struct Signer {
    key: EcdsaKeyPair,
    rng: SystemRandom,
    /// DER SubjectPublicKeyInfo.
    pub spki: Vec<u8>,
    /// `LogID` = SHA-256 of the SPKI.
    pub log_id: [u8; 32],
    pub key_path: PathBuf,
}

impl Signer {
    /// Loads `key` if given, else `DIR/log-key.pem`, generating and writing it if missing.
    pub fn load_or_create(dir: &Path, key: Option<&Path>) -> Result<Self> {
        let path = key.map_or_else(|| dir.join("log-key.pem"), Path::to_path_buf);
        let pkcs8 = if path.exists() {
            let pem = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            pem_decode(&pem).with_context(|| format!("parsing {}", path.display()))?
        } else if key.is_some() {
            return Err(anyhow!("key file {} does not exist", path.display()));
        } else {
            let doc =
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &SystemRandom::new())
                    .map_err(|_| anyhow!("generating the log key"))?;
            let der = doc.as_ref().to_vec();
            let pem = format!(
                "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
                STANDARD.encode(&der)
            );
            std::fs::write(&path, pem).with_context(|| format!("writing {}", path.display()))?;
            der
        };
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &pkcs8)
            .map_err(|e| anyhow!("{}: not a PKCS#8 ECDSA P-256 key: {e}", path.display()))?;
        let mut spki = P256_SPKI_PREFIX.to_vec();
        spki.extend_from_slice(key.public_key().as_ref());
        let log_id = Sha256::digest(&spki).into();
        Ok(Self {
            key,
            rng: SystemRandom::new(),
            spki,
            log_id,
            key_path: path,
        })
    }

    /// DER ECDSA signature over SHA-256 of `data`.
    pub fn sign(&self, data: &[u8]) -> Result<Vec<u8>> {
        let sig = self
            .key
            .sign(&self.rng, data)
            .map_err(|_| anyhow!("ECDSA signing failed"))?;
        Ok(sig.as_ref().to_vec())
    }
}

/// Decodes the first PEM block of `pem`.
pub fn pem_decode(pem: &str) -> Result<Vec<u8>> {
    pem_blocks(pem)?
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("no PEM block"))
}

/// Decodes every PEM block of `pem`, in order.
pub fn pem_blocks(pem: &str) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let mut body: Option<String> = None;
    for line in pem.lines() {
        let line = line.trim();
        if line.starts_with("-----BEGIN ") {
            body = Some(String::new());
        } else if line.starts_with("-----END ") {
            let b = body.take().ok_or_else(|| anyhow!("END without BEGIN"))?;
            out.push(STANDARD.decode(b).context("PEM base64")?);
        } else if let Some(b) = body.as_mut() {
            b.push_str(line);
        }
    }
    Ok(out)
}
