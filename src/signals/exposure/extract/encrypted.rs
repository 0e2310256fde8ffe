//! Encrypted private keys: recognised by their structure (so that a placeholder in a README
//! is not one), and named by what encrypts them.
//!
//! - PKCS#8 `EncryptedPrivateKeyInfo` (RFC 5958 §3): the scheme is PBES2 (RFC 8018 §6.2,
//!   with its cipher), a PBES1 or PKCS#12 scheme (RFC 8018 §6.1, RFC 7292 Appendix C), or
//!   a Java keystore's key protector;
//! - PEM with RFC 1421 headers (`Proc-Type: 4,ENCRYPTED`, `DEK-Info: AES-256-CBC,<IV>`),
//!   as OpenSSL writes "traditional" encrypted keys.
//!
//! Nothing here decrypts anything: what a found encrypted key names is only what the file
//! says around it.

use certresponder_inventory::inspect::der::{self, TAG_OCTET_STRING, TAG_OID, TAG_SEQUENCE};
use memchr::memmem;

use super::{Encrypted, Seen};

/// PBES2 (RFC 8018 §A.4).
pub(super) const OID_PBES2: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0d];
/// The PKCS#12 PBE arc (RFC 7292 Appendix C), without its last arc.
pub(super) const OID_PKCS12_PBE: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x01];
/// The PKCS#5 arc (RFC 8018 Appendix A), without its last arc.
const OID_PKCS5: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05];
/// Sun's JKS key protector (1.3.6.1.4.1.42.2.17.1.1).
pub(super) const OID_JKS_PROTECTOR: &[u8] =
    &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x2a, 0x02, 0x11, 0x01, 0x01];
/// Sun's JCEKS key protector, PBEWithMD5AndTripleDES (1.3.6.1.4.1.42.2.19.1).
const OID_JCEKS_PROTECTOR: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x2a, 0x02, 0x13, 0x01];

/// The smallest encrypted content worth calling a key (one cipher block of 16 bytes).
const MIN_CIPHERTEXT: usize = 16;
/// The longest cipher name kept from a file.
const MAX_NAME: usize = 32;

/// The cipher a PBES2 encryption scheme names (RFC 8018 §B.2, NIST's AES arc).
fn cipher_name(oid: &[u8]) -> Option<&'static str> {
    const AES: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01];
    if let Some(&[last]) = oid.strip_prefix(AES) {
        return match last {
            0x02 => Some("aes-128-cbc"),
            0x16 => Some("aes-192-cbc"),
            0x2a => Some("aes-256-cbc"),
            0x06 => Some("aes-128-gcm"),
            0x1a => Some("aes-192-gcm"),
            0x2e => Some("aes-256-gcm"),
            _ => None,
        };
    }
    match oid {
        [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x03, 0x07] => Some("des-ede3-cbc"),
        [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x03, 0x02] => Some("rc2-cbc"),
        [0x2b, 0x0e, 0x03, 0x02, 0x07] => Some("des-cbc"),
        _ => None,
    }
}

/// What an `AlgorithmIdentifier` (its DER content) names as the encryption of a key.
fn scheme_name(alg: &[u8]) -> Option<String> {
    let fields = der::children(alg).ok()?;
    let oid = fields.first().filter(|f| f.tag == TAG_OID)?.content;
    if oid == OID_PBES2 {
        // PBES2-params: SEQUENCE { keyDerivationFunc, encryptionScheme }.
        let cipher = fields
            .get(1)
            .filter(|p| p.tag == TAG_SEQUENCE)
            .and_then(|p| der::children(p.content).ok())
            .and_then(|p| p.get(1).map(|s| s.content))
            .and_then(|s| der::children(s).ok())
            .and_then(|s| s.first().filter(|f| f.tag == TAG_OID).map(|f| f.content))
            .and_then(cipher_name);
        return Some(match cipher {
            Some(c) => format!("PBES2 {c}"),
            None => "PBES2".to_string(),
        });
    }
    if let Some(&[last]) = oid.strip_prefix(OID_PKCS12_PBE) {
        let cipher = match last {
            1 => "RC4-128",
            2 => "RC4-40",
            3 => "3DES",
            4 => "2-key 3DES",
            5 => "RC2-128",
            6 => "RC2-40",
            _ => return Some("PKCS#12 PBE".to_string()),
        };
        return Some(format!("PKCS#12 PBE SHA-1 {cipher}"));
    }
    if let Some(&[last]) = oid.strip_prefix(OID_PKCS5) {
        let name = match last {
            0x03 => "PBES1 MD5 DES",
            0x06 => "PBES1 MD5 RC2",
            0x0a => "PBES1 SHA-1 DES",
            0x0b => "PBES1 SHA-1 RC2",
            _ => "PBES1",
        };
        return Some(name.to_string());
    }
    Some(
        match oid {
            OID_JKS_PROTECTOR => "JKS key protector",
            OID_JCEKS_PROTECTOR => "PBEWithMD5AndTripleDES",
            _ => "an unknown scheme",
        }
        .to_string(),
    )
}

/// What encrypts the PKCS#8 `EncryptedPrivateKeyInfo` that `der_bytes` is exactly:
/// `SEQUENCE { AlgorithmIdentifier, OCTET STRING }` with at least one cipher block of
/// encrypted data; `None` when it is not one.
pub(super) fn pkcs8_scheme(der_bytes: &[u8]) -> Option<String> {
    let (seq, rest) = der::expect_tlv(der_bytes, TAG_SEQUENCE, "").ok()?;
    if !rest.is_empty() {
        return None;
    }
    let fields = der::children(seq.content).ok()?;
    let [alg, data] = fields.as_slice() else {
        return None;
    };
    if alg.tag != TAG_SEQUENCE
        || data.tag != TAG_OCTET_STRING
        || data.content.len() < MIN_CIPHERTEXT
    {
        return None;
    }
    scheme_name(alg.content)
}

/// An encrypted PKCS#8 key (`BEGIN ENCRYPTED PRIVATE KEY`, or DER).
pub(super) fn pkcs8(der_bytes: &[u8], format: &'static str) -> Option<Seen> {
    pkcs8_scheme(der_bytes).map(|s| Encrypted::sealed(format, format!("PKCS#8 {s}")))
}

/// The cipher a PEM block's `DEK-Info` header names (RFC 1421 §4.6.1.3: `DEK-Info:
/// <cipher>,<IV in hex>`), when the header is well formed.
pub(super) fn dek_info(body: &[u8]) -> Option<String> {
    let at = memmem::find(body, b"DEK-Info:")?;
    let value = body[at + 9..].trim_ascii_start();
    let name_len = value
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric() || **b == b'-')
        .count();
    let iv = value[name_len..].strip_prefix(b",")?;
    let hex = iv.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if name_len == 0 || name_len > MAX_NAME || hex < 16 || !hex.is_multiple_of(2) {
        return None;
    }
    Some(String::from_utf8_lossy(&value[..name_len]).into_owned())
}

/// Whether a legacy PEM body decodes to something a block cipher made (whole blocks of at
/// least 16 bytes).
pub(super) fn is_ciphertext(decoded: &[u8]) -> bool {
    decoded.len() >= MIN_CIPHERTEXT && decoded.len().is_multiple_of(8)
}

/// A name read from a file (a cipher), shown only if it is short printable ASCII.
pub(super) fn printable(name: &[u8]) -> String {
    if !name.is_empty() && name.len() <= MAX_NAME && name.iter().all(u8::is_ascii_graphic) {
        String::from_utf8_lossy(name).into_owned()
    } else {
        "an unknown cipher".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epki(alg: &[u8], data_len: usize) -> Vec<u8> {
        der::encode(
            TAG_SEQUENCE,
            &[
                der::encode(TAG_SEQUENCE, alg),
                der::encode(TAG_OCTET_STRING, &vec![7u8; data_len]),
            ]
            .concat(),
        )
    }

    #[test]
    fn schemes_are_named_and_shapes_checked() {
        let aes256 = der::encode(
            TAG_SEQUENCE,
            &[
                der::encode(
                    TAG_OID,
                    &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2a],
                ),
                der::encode(TAG_OCTET_STRING, &[0u8; 16]),
            ]
            .concat(),
        );
        let kdf = der::encode(TAG_SEQUENCE, &der::encode(TAG_OID, &[0x2a, 0x86]));
        let params = der::encode(TAG_SEQUENCE, &[kdf, aes256].concat());
        let pbes2 = [der::encode(TAG_OID, OID_PBES2), params].concat();
        assert_eq!(
            pkcs8_scheme(&epki(&pbes2, 32)).as_deref(),
            Some("PBES2 aes-256-cbc")
        );
        let p12 = der::encode(TAG_OID, &[OID_PKCS12_PBE, &[3]].concat());
        assert_eq!(
            pkcs8_scheme(&epki(&p12, 32)).as_deref(),
            Some("PKCS#12 PBE SHA-1 3DES")
        );
        // Too little encrypted data, a trailing byte, a third field: not keys.
        assert!(pkcs8_scheme(&epki(&pbes2, 3)).is_none());
        let mut trailing = epki(&pbes2, 32);
        trailing.push(0);
        assert!(pkcs8_scheme(&trailing).is_none());
        assert!(pkcs8_scheme(&[0x30, 0x03, 0x02, 0x01, 0x00]).is_none());
    }

    #[test]
    fn dek_info_headers() {
        let body = b"\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,00112233445566778899AABBCCDDEEFF\n\nAAAA\n";
        assert_eq!(dek_info(body).as_deref(), Some("AES-256-CBC"));
        assert!(dek_info(b"DEK-Info: AES-256-CBC,00").is_none());
        assert!(dek_info(b"DEK-Info: ...").is_none());
        assert_eq!(printable(b"aes256-ctr"), "aes256-ctr");
        assert_eq!(printable(b"a\x1b[31m"), "an unknown cipher");
    }
}
