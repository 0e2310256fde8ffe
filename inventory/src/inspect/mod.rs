//! Inspection of certificates, chains, private keys, public keys and CSRs, in PEM or DER, and
//! of public keys in OpenSSH (`.pub`, `authorized_keys`) and JWK / JWK Set form.
//!
//! Every function takes untrusted bytes and returns a typed [`InspectError`] for anything it
//! cannot read: an empty file, truncated DER, a PEM block with the wrong label, random bytes.
//! Nothing here panics on input.

mod crl;
pub mod der;
mod error;
mod jwk;
mod key;
mod ocsp;
mod pem;
mod ssh;
mod tbs;
mod x509;

pub use crl::{CrlInfo, RevokedEntry, cert_signed_by, crl_signed_by, inspect_crl_der, read_crl};
pub use error::InspectError;
pub use key::{KeyFormat, KeyInfo, KeyWire, PrivateKeyInfo};
pub use ocsp::{OcspAnswer, OcspCertStatus, OcspProblem, ocsp_request, read_ocsp_response};
pub use pem::{PemBlock, encode_pem, looks_like_pem, parse_pem};
pub use x509::{
    CertInfo, CsrInfo, ExtKeyUsage, Fingerprints, PssParams, SctInfo, inspect_certificate_der,
    inspect_csr_der, inspect_spki_der,
};

const CERT_LABELS: &[&str] = &["CERTIFICATE", "X509 CERTIFICATE"];

fn pem_blocks(bytes: &[u8], what: &'static str) -> Result<Option<Vec<PemBlock>>, InspectError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(InspectError::unparseable(what, "the file is empty"));
    }
    if !looks_like_pem(bytes) {
        return Ok(None);
    }
    parse_pem(bytes)
        .map(Some)
        .map_err(|reason| InspectError::unparseable(what, reason))
}

fn labels(blocks: &[PemBlock]) -> String {
    let mut l: Vec<&str> = blocks.iter().map(|b| b.label.as_str()).collect();
    l.dedup();
    l.join(", ")
}

/// Reads one or more certificates (a leaf, a chain, a full chain) as DER blobs, in file order.
pub fn read_certificates(bytes: &[u8]) -> Result<Vec<Vec<u8>>, InspectError> {
    match pem_blocks(bytes, "certificate")? {
        Some(blocks) => {
            let certs: Vec<Vec<u8>> = blocks
                .iter()
                .filter(|b| CERT_LABELS.contains(&b.label.as_str()))
                .map(|b| b.der.clone())
                .collect();
            if certs.is_empty() {
                return Err(InspectError::unparseable(
                    "certificate",
                    format!(
                        "expected a PEM `CERTIFICATE` block, found `{}`",
                        labels(&blocks)
                    ),
                ));
            }
            Ok(certs)
        }
        None => Ok(vec![bytes.to_vec()]),
    }
}

/// Reads and inspects every certificate in a PEM or DER file.
pub fn inspect_certificates(bytes: &[u8]) -> Result<Vec<CertInfo>, InspectError> {
    read_certificates(bytes)?
        .iter()
        .enumerate()
        .map(|(i, der)| {
            inspect_certificate_der(der).map_err(|e| match e {
                InspectError::Unparseable { what, reason } if i > 0 => InspectError::Unparseable {
                    what,
                    reason: format!("certificate #{} in the file: {reason}", i + 1),
                },
                other => other,
            })
        })
        .collect()
}

/// Reads a single private key (PKCS#8, PKCS#1 or SEC1; PEM or DER).
pub fn read_private_key(bytes: &[u8]) -> Result<PrivateKeyInfo, InspectError> {
    let what = "private key";
    let Some(blocks) = pem_blocks(bytes, what)? else {
        return key::parse_private_key_der_any(bytes);
    };
    let mut keys = Vec::new();
    for b in &blocks {
        let format = match b.label.as_str() {
            "PRIVATE KEY" => KeyFormat::Pkcs8,
            "RSA PRIVATE KEY" => KeyFormat::Pkcs1,
            "EC PRIVATE KEY" => KeyFormat::Sec1,
            "DSA PRIVATE KEY" => KeyFormat::Dsa,
            "ENCRYPTED PRIVATE KEY" => return Err(InspectError::EncryptedKey),
            // `openssl ecparam -genkey` writes the curve before the key.
            "EC PARAMETERS" => continue,
            _ => continue,
        };
        if b.encrypted {
            return Err(InspectError::EncryptedKey);
        }
        keys.push((b, format));
    }
    match keys.as_slice() {
        [] => Err(InspectError::unparseable(
            what,
            format!(
                "expected a PEM `PRIVATE KEY`, `RSA PRIVATE KEY` or `EC PRIVATE KEY` block, found `{}`",
                labels(&blocks)
            ),
        )),
        [(b, format)] => key::parse_private_key_der(&b.der, *format),
        more => Err(InspectError::unparseable(
            what,
            format!("the file holds {} private keys; expected one", more.len()),
        )),
    }
}

/// The RFC 6962 TBS hash (lower-case hex) of a DER TBSCertificate, as a precertificate log
/// entry carries it: SHA-256 over it with the SCT list and poison extensions removed. It
/// equals the `tbs_sha256` fingerprint of the final certificate.
pub fn tbs_sha256_of_tbs(tbs_der: &[u8]) -> Result<String, InspectError> {
    tbs::tbs_hash(tbs_der)
        .map(hex::encode)
        .map_err(|e| InspectError::unparseable("TBSCertificate", e))
}

/// Reads a public key (`PUBLIC KEY` SubjectPublicKeyInfo, or PKCS#1 `RSA PUBLIC KEY`).
pub fn read_public_key(bytes: &[u8]) -> Result<KeyInfo, InspectError> {
    let what = "public key";
    let Some(blocks) = pem_blocks(bytes, what)? else {
        return inspect_spki_der(bytes).or_else(|e| rsa_public_pkcs1(bytes).map_err(|_| e));
    };
    for b in &blocks {
        match b.label.as_str() {
            "PUBLIC KEY" => return inspect_spki_der(&b.der),
            "RSA PUBLIC KEY" => return rsa_public_pkcs1(&b.der),
            _ => {}
        }
    }
    Err(InspectError::unparseable(
        what,
        format!(
            "expected a PEM `PUBLIC KEY` or `RSA PUBLIC KEY` block, found `{}`",
            labels(&blocks)
        ),
    ))
}

fn rsa_public_pkcs1(input: &[u8]) -> Result<KeyInfo, InspectError> {
    let bad = |r: &str| InspectError::unparseable("public key", r.to_string());
    let (seq, _) =
        der::expect_tlv(input, der::TAG_SEQUENCE, "RSAPublicKey is not a SEQUENCE").map_err(bad)?;
    let (n, rest) =
        der::expect_tlv(seq.content, der::TAG_INTEGER, "RSA modulus missing").map_err(bad)?;
    let (e, _) = der::expect_tlv(rest, der::TAG_INTEGER, "RSA exponent missing").map_err(bad)?;
    Ok(KeyInfo::rsa(n.content, e.content))
}

/// Reads a PKCS#10 certificate signing request (`CERTIFICATE REQUEST`, PEM or DER).
pub fn read_csr(bytes: &[u8]) -> Result<CsrInfo, InspectError> {
    let what = "CSR";
    let Some(blocks) = pem_blocks(bytes, what)? else {
        return inspect_csr_der(bytes);
    };
    let block = blocks
        .iter()
        .find(|b| b.label == "CERTIFICATE REQUEST" || b.label == "NEW CERTIFICATE REQUEST")
        .ok_or_else(|| {
            InspectError::unparseable(
                what,
                format!(
                    "expected a PEM `CERTIFICATE REQUEST` block, found `{}`",
                    labels(&blocks)
                ),
            )
        })?;
    inspect_csr_der(&block.der)
}

/// Anything certresponder can read from a file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Object {
    /// A certificate.
    Certificate(Box<CertInfo>),
    /// A private key (its public half).
    PrivateKey(PrivateKeyInfo),
    /// A public key.
    PublicKey(KeyInfo),
    /// A certificate signing request.
    Csr(Box<CsrInfo>),
}

/// Reads whatever a file holds: every PEM block by its label; a JWK or JWK Set (a JSON
/// object); every key of an OpenSSH public key or `authorized_keys` file; or one DER object of
/// any kind.
pub fn inspect_any(bytes: &[u8]) -> Result<Vec<Object>, InspectError> {
    let what = "file";
    let Some(blocks) = pem_blocks(bytes, what)? else {
        if let Some(keys) = public_key_text(bytes) {
            return Ok(keys?.into_iter().map(Object::PublicKey).collect());
        }
        let as_certificate = match inspect_certificate_der(bytes) {
            Ok(c) => return Ok(vec![Object::Certificate(Box::new(c))]),
            Err(e) => e,
        };
        match key::parse_private_key_der_any(bytes) {
            Ok(k) => return Ok(vec![Object::PrivateKey(k)]),
            Err(InspectError::EncryptedKey) => return Err(InspectError::EncryptedKey),
            Err(_) => {}
        }
        if let Ok(k) = inspect_spki_der(bytes) {
            return Ok(vec![Object::PublicKey(k)]);
        }
        let as_csr = match inspect_csr_der(bytes) {
            Ok(c) => return Ok(vec![Object::Csr(Box::new(c))]),
            Err(e) => e,
        };
        // A certificate or CSR that is whole but for its version says so.
        for e in [as_certificate, as_csr] {
            if e.to_string().contains("invalid version") {
                return Err(e);
            }
        }
        return Err(InspectError::unparseable(
            what,
            "neither PEM, a JWK, OpenSSH public keys, nor a DER certificate, private key, \
             public key or CSR",
        ));
    };
    let mut out = Vec::new();
    for b in &blocks {
        let obj = match b.label.as_str() {
            l if CERT_LABELS.contains(&l) => {
                Object::Certificate(Box::new(inspect_certificate_der(&b.der)?))
            }
            "PRIVATE KEY"
            | "RSA PRIVATE KEY"
            | "EC PRIVATE KEY"
            | "DSA PRIVATE KEY"
            | "ENCRYPTED PRIVATE KEY" => {
                let pem = encode_pem(&b.label, &b.der);
                if b.encrypted {
                    return Err(InspectError::EncryptedKey);
                }
                Object::PrivateKey(read_private_key(pem.as_bytes())?)
            }
            "PUBLIC KEY" => Object::PublicKey(inspect_spki_der(&b.der)?),
            "RSA PUBLIC KEY" => Object::PublicKey(rsa_public_pkcs1(&b.der)?),
            "CERTIFICATE REQUEST" | "NEW CERTIFICATE REQUEST" => {
                Object::Csr(Box::new(inspect_csr_der(&b.der)?))
            }
            _ => continue,
        };
        out.push(obj);
    }
    if out.is_empty() {
        return Err(InspectError::unparseable(
            what,
            format!(
                "no certificate, key or CSR among the PEM blocks `{}`",
                labels(&blocks)
            ),
        ));
    }
    Ok(out)
}

/// The public keys of a text format that is neither PEM nor DER: a JSON object (a JWK or a
/// JWK Set), or lines that start with an OpenSSH key type (after any `authorized_keys`
/// options). `None` when the bytes are neither. Neither test can take DER for text: every
/// DER object read here starts with a SEQUENCE tag (0x30), not `{`, and a key type must
/// begin a line of valid UTF-8 text.
fn public_key_text(bytes: &[u8]) -> Option<Result<Vec<KeyInfo>, InspectError>> {
    if jwk::looks_like_json(bytes) {
        return Some(jwk::parse_jwk_file(bytes));
    }
    let text = std::str::from_utf8(bytes).ok()?;
    ssh::looks_like_openssh(text).then(|| ssh::parse_openssh(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_garbage_are_errors() {
        assert!(matches!(
            read_certificates(b""),
            Err(InspectError::Unparseable { .. })
        ));
        assert!(matches!(
            read_certificates(b"  \n"),
            Err(InspectError::Unparseable { .. })
        ));
        assert!(inspect_certificates(&[0x30, 0x82, 0x05]).is_err());
        assert!(read_private_key(b"garbage").is_err());
        assert!(read_public_key(&[0u8; 100]).is_err());
        assert!(read_csr(&[0xffu8; 100]).is_err());
        assert!(inspect_any(&[1u8; 1000]).is_err());
    }

    #[test]
    fn wrong_label_is_named() {
        let pem = encode_pem("PUBLIC KEY", &[0x30, 0x00]);
        let err = inspect_certificates(pem.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(err.contains("found `PUBLIC KEY`"), "{err}");
    }

    #[test]
    fn jwk_and_openssh_text_is_read_as_public_keys() {
        use base64::Engine as _;
        let x25519 = KeyInfo::X25519 {
            public: vec![1; 32],
        };
        let jwk =
            br#" {"kty":"OKP","crv":"X25519","x":"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE"}"#;
        assert_eq!(inspect_any(jwk), Ok(vec![Object::PublicKey(x25519)]));
        let mut blob = [&[0, 0, 0, 11][..], b"ssh-ed25519", &[0, 0, 0, 32]].concat();
        blob.extend([2; 32]);
        let b64 = base64::engine::general_purpose::STANDARD.encode(blob);
        let text = format!("# two keys\nssh-ed25519 {b64} a\n\nno-pty ssh-ed25519 {b64}\n");
        let ed = Object::PublicKey(KeyInfo::Ed25519 {
            public: vec![2; 32],
        });
        assert_eq!(inspect_any(text.as_bytes()), Ok(vec![ed.clone(), ed]));
    }

    #[test]
    fn encrypted_key_is_reported() {
        let pem = encode_pem("ENCRYPTED PRIVATE KEY", &[0x30, 0x00]);
        assert_eq!(
            read_private_key(pem.as_bytes()),
            Err(InspectError::EncryptedKey)
        );
    }
}
