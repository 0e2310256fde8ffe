//! Analysis of keys and certificates read from files (`certresponder analyze`), the same
//! checks `scan` runs over the inventory.

use certresponder_inventory::Trust;
use certresponder_inventory::inspect::{KeyInfo, Object};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::Finding;
use super::exposure::identity::spki_der;
use super::weak::cert::{CertPolicy, check_certificate};
use super::weak::{KeyPolicy, check_key_for};

/// What the analysis applies.
#[derive(Debug, Clone)]
pub struct AnalyzeOptions {
    /// Key checks' policy.
    pub key_policy: KeyPolicy,
    /// Certificate checks' policy.
    pub cert_policy: CertPolicy,
    /// Whether certificates are held to the public (Baseline Requirements) rules.
    pub trust: Trust,
    /// The time expiry is judged against.
    pub now: DateTime<Utc>,
}

/// One analysed object.
#[derive(Debug, Clone, Serialize)]
pub struct Analyzed {
    /// `certificate`, `private-key`, `public-key`, `csr` or `modulus`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Subject or key description.
    pub description: String,
    /// The key, as `RSA-2048`, `ECDSA P-256`...
    pub key: String,
    /// SHA-256 of the certificate, when it is one.
    pub cert_sha256: Option<String>,
    /// SHA-256 of the key's DER SubjectPublicKeyInfo, lowercase hex, encoded from the key
    /// itself (see [`spki_der`]), so that one key read in any form (certificate, PEM, DER,
    /// OpenSSH, JWK) has the same value; `None` for a key type it has no encoding for and for
    /// a bare modulus.
    pub spki_sha256: Option<String>,
    /// Findings.
    pub findings: Vec<Finding>,
    /// The RSA modulus, for the shared-prime check across everything analysed.
    #[serde(skip)]
    pub rsa_modulus: Option<Vec<u8>>,
}

fn spki_sha256(key: &KeyInfo) -> Option<String> {
    spki_der(key).map(|d| hex::encode(Sha256::digest(d)))
}

fn modulus(key: &KeyInfo) -> Option<Vec<u8>> {
    match key {
        KeyInfo::Rsa { modulus, .. } => Some(modulus.clone()),
        _ => None,
    }
}

/// Runs every applicable check on one object.
pub fn analyze_object(obj: &Object, opts: &AnalyzeOptions) -> Analyzed {
    match obj {
        Object::Certificate(c) => {
            let mut findings = check_key_for(&c.key, &opts.key_policy, opts.trust);
            findings.extend(check_certificate(
                c,
                opts.trust,
                opts.now,
                &opts.cert_policy,
            ));
            Analyzed {
                kind: "certificate",
                description: c.subject.clone(),
                key: c.key.describe(),
                cert_sha256: Some(c.fingerprints.cert_sha256.clone()),
                spki_sha256: spki_sha256(&c.key),
                findings,
                rsa_modulus: modulus(&c.key),
            }
        }
        Object::PrivateKey(k) => Analyzed {
            kind: "private-key",
            description: format!("{:?} private key", k.format),
            key: k.public.describe(),
            cert_sha256: None,
            spki_sha256: spki_sha256(&k.public),
            findings: check_key_for(&k.public, &opts.key_policy, opts.trust),
            rsa_modulus: modulus(&k.public),
        },
        Object::PublicKey(k) => Analyzed {
            kind: "public-key",
            description: "public key".into(),
            key: k.describe(),
            cert_sha256: None,
            spki_sha256: spki_sha256(k),
            findings: check_key_for(k, &opts.key_policy, opts.trust),
            rsa_modulus: modulus(k),
        },
        Object::Csr(c) => Analyzed {
            kind: "csr",
            description: c.subject.clone(),
            key: c.key.describe(),
            cert_sha256: None,
            spki_sha256: spki_sha256(&c.key),
            findings: check_key_for(&c.key, &opts.key_policy, opts.trust),
            rsa_modulus: modulus(&c.key),
        },
        _ => Analyzed {
            kind: "other",
            description: "unsupported object".into(),
            key: "-".into(),
            cert_sha256: None,
            spki_sha256: None,
            findings: Vec::new(),
            rsa_modulus: None,
        },
    }
}

/// Reads a file of hex RSA moduli, one per line (blank lines and `#` comments skipped; an
/// optional `0x` prefix), as badkeys' `--moduli` does, and checks each with e = 65537.
pub fn analyze_moduli(text: &str, opts: &AnalyzeOptions) -> Result<Vec<Analyzed>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let hexpart = line.trim_start_matches("0x").trim_start_matches("0X");
        let padded = if hexpart.len() % 2 == 1 {
            format!("0{hexpart}")
        } else {
            hexpart.to_string()
        };
        let n =
            hex::decode(&padded).map_err(|e| format!("line {}: not a hex modulus: {e}", i + 1))?;
        let n_stripped: Vec<u8> = n.iter().copied().skip_while(|&b| b == 0).collect();
        let findings = super::weak::rsa::check_rsa(&n_stripped, &[1, 0, 1], &opts.key_policy);
        let bits = n_stripped.first().map_or(0, |&top| {
            n_stripped.len() * 8 - top.leading_zeros() as usize
        });
        out.push(Analyzed {
            kind: "modulus",
            description: format!("modulus on line {}", i + 1),
            key: format!("RSA-{bits}"),
            cert_sha256: None,
            spki_sha256: None,
            findings,
            rsa_modulus: Some(n_stripped),
        });
    }
    Ok(out)
}
