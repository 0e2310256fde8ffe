//! Key identities: the names under which published lists of compromised keys index a key.
//!
//! - SPKI SHA-256: SHA-256 of the DER `SubjectPublicKeyInfo` (RFC 5280 §4.1.2.7), the key
//!   pwnedkeys and plain fingerprint lists use. RSA keys are encoded as `rsaEncryption` with
//!   NULL parameters (RFC 3279 §2.3.1), EC keys as `id-ecPublicKey` with the named curve and
//!   the point as given (RFC 5480), Ed25519 and Ed448 as in RFC 8410. pwnedkeys indexes EC
//!   keys under both point forms, so the other form's hash is given too.
//! - The key's *number*: the RSA modulus, the EC point's x coordinate, the Ed25519/Ed448
//!   public key read as a big-endian integer; always as its minimal big-endian bytes (no
//!   leading zero octets; zero is no octets), exactly as badkeys' `int_to_bytes_min`. Its
//!   SHA-256 ignores encoding differences (point compression, odd DER) and matches found
//!   keys to inventory keys; its first 15 bytes are badkeys' BKHASH120.
//! - The Debian openssl-blacklist suffix (CVE-2008-0166): SHA-1 of
//!   `Modulus=<HEX>\n` as `openssl x509 -noout -modulus` prints it, without its first 20
//!   hex digits.
//!
//! An RSA-PSS certificate's SPKI names `id-RSASSA-PSS`; its key is hashed here as
//! `rsaEncryption`, as pwnedkeys does, so its SPKI SHA-256 differs from the certificate's
//! own SPKI fingerprint.

use certresponder_inventory::inspect::KeyInfo;
use certresponder_inventory::inspect::der::{self, TAG_BIT_STRING, TAG_INTEGER, TAG_SEQUENCE};
use num_bigint::BigUint;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// Length of badkeys' truncated hash (BKHASH120), in bytes.
pub const BKHASH_LEN: usize = 15;

/// A key's identities. Every field is `None` when it does not apply to the key's type (or
/// the key cannot be encoded: an EC point that is not a point encoding, an unknown
/// algorithm).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct KeyIds {
    /// SHA-256 of the DER SubjectPublicKeyInfo, lowercase hex (the pwnedkeys fingerprint).
    pub spki_sha256: Option<String>,
    /// EC only: SHA-256 of the SubjectPublicKeyInfo with the point in its other form
    /// (compressed for an uncompressed point and the reverse), lowercase hex.
    pub spki_sha256_alt: Option<String>,
    /// badkeys' BKHASH120: the first 15 bytes of SHA-256 of the key's number.
    #[serde(serialize_with = "hex_opt")]
    pub bkhash: Option<[u8; BKHASH_LEN]>,
    /// SHA-256 of the key's number (minimal big-endian bytes), lowercase hex.
    pub number_sha256: Option<String>,
    /// RSA only: SHA-256 of the modulus (minimal big-endian bytes), lowercase hex.
    pub modulus_sha256: Option<String>,
    /// RSA only: the Debian openssl-blacklist suffix, 20 lowercase hex digits.
    pub debian_suffix: Option<String>,
}

fn hex_opt<S: serde::Serializer>(v: &Option<[u8; BKHASH_LEN]>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(b) => s.serialize_some(&hex::encode(b)),
        None => s.serialize_none(),
    }
}

impl KeyIds {
    /// The identities of `key`.
    pub fn of(key: &KeyInfo) -> Self {
        let number = key.blocklist_bytes();
        let number_digest = number.as_deref().map(Sha256::digest);
        let (modulus_sha256, debian_suffix) = match key {
            KeyInfo::Rsa { modulus, .. } => (
                number_digest.as_ref().map(hex::encode),
                Some(debian_suffix(modulus)),
            ),
            _ => (None, None),
        };
        Self {
            spki_sha256: spki_der(key).map(|d| hex::encode(Sha256::digest(d))),
            spki_sha256_alt: alt_spki_der(key).map(|d| hex::encode(Sha256::digest(d))),
            bkhash: number_digest.as_ref().map(|d| truncate(d)),
            number_sha256: number_digest.as_ref().map(hex::encode),
            modulus_sha256,
            debian_suffix,
        }
    }

    /// The identities of a bare RSA modulus (big-endian; the exponent is unknown, so there
    /// is no SPKI hash).
    pub fn of_modulus(modulus: &[u8]) -> Self {
        let digest = Sha256::digest(min_bytes(modulus));
        Self {
            spki_sha256: None,
            spki_sha256_alt: None,
            bkhash: Some(truncate(&digest)),
            number_sha256: Some(hex::encode(digest)),
            modulus_sha256: Some(hex::encode(digest)),
            debian_suffix: Some(debian_suffix(modulus)),
        }
    }

    /// The BKHASH120 as hex (30 digits).
    pub fn bkhash_hex(&self) -> Option<String> {
        self.bkhash.map(hex::encode)
    }
}

fn truncate(digest: &[u8]) -> [u8; BKHASH_LEN] {
    let mut out = [0u8; BKHASH_LEN];
    out.copy_from_slice(&digest[..BKHASH_LEN]);
    out
}

/// `v` without its leading zero octets; zero (or nothing) is the empty slice, as badkeys'
/// `v.to_bytes((v.bit_length() + 7) // 8, "big")`.
pub fn min_bytes(v: &[u8]) -> &[u8] {
    let start = v.iter().position(|&b| b != 0).unwrap_or(v.len());
    &v[start..]
}

/// badkeys' BKHASH120 of a number given as big-endian bytes (leading zeros are ignored).
pub fn bkhash(number: &[u8]) -> [u8; BKHASH_LEN] {
    truncate(&Sha256::digest(min_bytes(number)))
}

/// The x coordinate of a SEC 1 point (uncompressed `04`, compressed `02`/`03`, hybrid
/// `06`/`07`).
fn ec_x(point: &[u8]) -> Option<&[u8]> {
    match point.split_first()? {
        (0x04 | 0x06 | 0x07, xy) if !xy.is_empty() && xy.len() % 2 == 0 => {
            Some(&xy[..xy.len() / 2])
        }
        (0x02 | 0x03, x) if !x.is_empty() => Some(x),
        _ => None,
    }
}

/// The Debian openssl-blacklist suffix of an RSA modulus: lowercase SHA-1 of
/// `Modulus=<UPPERCASE HEX>\n` (no leading zero digits, as OpenSSL prints it), without its
/// first 20 hex digits.
pub fn debian_suffix(modulus: &[u8]) -> String {
    let upper = hex::encode_upper(modulus);
    let digits = upper.trim_start_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    let text = format!("Modulus={digits}\n");
    let digest = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY,
        text.as_bytes(),
    );
    let full = hex::encode(digest.as_ref());
    full[20..].to_string()
}

// DER content octets of the object identifiers used below.
const OID_RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];
const OID_ED448: &[u8] = &[0x2b, 0x65, 0x71];
const OID_X25519: &[u8] = &[0x2b, 0x65, 0x6e];
const OID_X448: &[u8] = &[0x2b, 0x65, 0x6f];
const OID_DSA: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x01];
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
const OID_P521: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x23];
const OID_SECP256K1: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x0a];
const TAG_NULL: u8 = 0x05;

/// The DER SubjectPublicKeyInfo of `key`, or `None` when it cannot be encoded.
pub fn spki_der(key: &KeyInfo) -> Option<Vec<u8>> {
    match key {
        KeyInfo::Rsa {
            modulus,
            exponent_bytes,
            ..
        } => {
            let mut rsa_key = der_integer(modulus);
            rsa_key.extend(der_integer(exponent_bytes));
            let rsa_key = der::encode(TAG_SEQUENCE, &rsa_key);
            let mut alg = der::encode(der::TAG_OID, OID_RSA_ENCRYPTION);
            alg.extend(der::encode(TAG_NULL, &[]));
            Some(spki(&alg, &rsa_key))
        }
        KeyInfo::Ec {
            curve,
            point,
            params,
        } => ec_spki(curve, params.as_deref(), point),
        KeyInfo::Ed25519 { public } => Some(spki(&der::encode(der::TAG_OID, OID_ED25519), public)),
        KeyInfo::Ed448 { public } => Some(spki(&der::encode(der::TAG_OID, OID_ED448), public)),
        KeyInfo::X25519 { public } => Some(spki(&der::encode(der::TAG_OID, OID_X25519), public)),
        KeyInfo::X448 { public } => Some(spki(&der::encode(der::TAG_OID, OID_X448), public)),
        KeyInfo::MlDsa { level, public } => {
            let last = match level {
                44 => 0x11,
                65 => 0x12,
                _ => 0x13,
            };
            Some(spki(
                &der::encode(der::TAG_OID, &nist_oid(0x03, last)),
                public,
            ))
        }
        KeyInfo::MlKem { level, public } => {
            let last = match level {
                512 => 0x01,
                768 => 0x02,
                _ => 0x03,
            };
            Some(spki(
                &der::encode(der::TAG_OID, &nist_oid(0x04, last)),
                public,
            ))
        }
        KeyInfo::Dsa { p, q, g, y, .. } => {
            let mut params = der_integer(p);
            params.extend(der_integer(q));
            params.extend(der_integer(g));
            let mut alg = der::encode(der::TAG_OID, OID_DSA);
            alg.extend(der::encode(TAG_SEQUENCE, &params));
            Some(spki(&alg, &der_integer(y)))
        }
        _ => None,
    }
}

/// 2.16.840.1.101.3.4.`arc`.`last` (NIST's algorithm arcs: 3 signatures, 4 KEMs).
fn nist_oid(arc: u8, last: u8) -> Vec<u8> {
    vec![0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, arc, last]
}

/// EC only: the SubjectPublicKeyInfo with the point in its other form.
pub fn alt_spki_der(key: &KeyInfo) -> Option<Vec<u8>> {
    let KeyInfo::Ec {
        curve,
        point,
        params,
    } = key
    else {
        return None;
    };
    let other = other_point_form(curve, point)?;
    ec_spki(curve, params.as_deref(), &other)
}

fn ec_spki(curve: &str, params: Option<&[u8]>, point: &[u8]) -> Option<Vec<u8>> {
    let mut alg = der::encode(der::TAG_OID, OID_EC_PUBLIC_KEY);
    match params {
        // Explicit `ECParameters`, kept as they were encoded.
        Some(raw) => alg.extend_from_slice(raw),
        None => alg.extend(der::encode(der::TAG_OID, &curve_oid(curve)?)),
    }
    ec_x(point)?;
    Some(spki(&alg, point))
}

/// `SEQUENCE { SEQUENCE { alg... }, BIT STRING (0 unused bits) key }`.
fn spki(alg_content: &[u8], key: &[u8]) -> Vec<u8> {
    let mut bits = Vec::with_capacity(key.len() + 1);
    bits.push(0);
    bits.extend_from_slice(key);
    let mut content = der::encode(TAG_SEQUENCE, alg_content);
    content.extend(der::encode(TAG_BIT_STRING, &bits));
    der::encode(TAG_SEQUENCE, &content)
}

/// A DER INTEGER of an unsigned big-endian value.
fn der_integer(v: &[u8]) -> Vec<u8> {
    let v = min_bytes(v);
    let mut content = Vec::with_capacity(v.len() + 1);
    if v.first().is_none_or(|&b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(v);
    der::encode(TAG_INTEGER, &content)
}

/// The OID content octets of a named curve (`P-256`...) or of a dotted OID.
fn curve_oid(curve: &str) -> Option<Vec<u8>> {
    Some(match curve {
        "P-256" => OID_P256.to_vec(),
        "P-384" => OID_P384.to_vec(),
        "P-521" => OID_P521.to_vec(),
        "secp256k1" => OID_SECP256K1.to_vec(),
        dotted => encode_dotted_oid(dotted)?,
    })
}

/// Encodes a dotted-decimal OID (`1.2.3`) as DER content octets (X.690 §8.19).
fn encode_dotted_oid(dotted: &str) -> Option<Vec<u8>> {
    let arcs: Vec<u128> = dotted
        .split('.')
        .map(|a| a.parse().ok())
        .collect::<Option<_>>()?;
    let (&first, rest) = arcs.split_first()?;
    let (&second, rest) = rest.split_first()?;
    if first > 2 || (first < 2 && second >= 40) {
        return None;
    }
    let mut out = Vec::new();
    for arc in
        std::iter::once(first.checked_mul(40)?.checked_add(second)?).chain(rest.iter().copied())
    {
        let mut groups = vec![(arc & 0x7f) as u8];
        let mut v = arc >> 7;
        while v > 0 {
            groups.push((v & 0x7f) as u8 | 0x80);
            v >>= 7;
        }
        out.extend(groups.iter().rev());
    }
    Some(out)
}

/// Field prime and `b` of the curves whose points can be decompressed here (`a` is -3 for
/// the NIST curves, 0 for secp256k1). All have p ≡ 3 (mod 4), so a square root is one
/// exponentiation.
fn curve_field(curve: &str) -> Option<(&'static str, &'static str, bool)> {
    // (p, b, a == -3)
    Some(match curve {
        "P-256" => (
            "ffffffff00000001000000000000000000000000ffffffffffffffffffffffff",
            "5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604b",
            true,
        ),
        "P-384" => (
            "fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffe\
             ffffffff0000000000000000ffffffff",
            "b3312fa7e23ee7e4988e056be3f82d19181d9c6efe8141120314088f5013875a\
             c656398d8a2ed19d2a85c8edd3ec2aef",
            true,
        ),
        "P-521" => (
            "1fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\
             ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\
             fff",
            "51953eb9618e1c9a1f929a21a0b68540eea2da725b99b315f3b8b489918ef109\
             e156193951ec7e937b1652c0bd3bb1bf073573df883d2c34f1ef451fd46b503f\
             00",
            true,
        ),
        "secp256k1" => (
            "fffffffffffffffffffffffffffffffffffffffffffffffffffffffefffffc2f",
            "7",
            false,
        ),
        _ => return None,
    })
}

fn big_hex(s: &str) -> Option<BigUint> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    BigUint::parse_bytes(&digits, 16)
}

/// The point in its other SEC 1 form: uncompressed to compressed (any curve), compressed to
/// uncompressed (the curves of [`curve_field`]; `None` when x is not on the curve).
pub fn other_point_form(curve: &str, point: &[u8]) -> Option<Vec<u8>> {
    match point.split_first()? {
        (0x04, xy) if !xy.is_empty() && xy.len() % 2 == 0 => {
            let (x, y) = xy.split_at(xy.len() / 2);
            let mut out = Vec::with_capacity(x.len() + 1);
            out.push(0x02 | (y.last()? & 1));
            out.extend_from_slice(x);
            Some(out)
        }
        (&tag @ (0x02 | 0x03), x) if !x.is_empty() => {
            let (p, b, minus3) = curve_field(curve)?;
            let (p, b) = (big_hex(p)?, big_hex(b)?);
            let len = p.bits().div_ceil(8);
            let len = usize::try_from(len).ok()?;
            if x.len() != len {
                return None;
            }
            let xv = BigUint::from_bytes_be(x);
            if xv >= p {
                return None;
            }
            // y² = x³ + a·x + b (mod p), with a = -3 or 0.
            let x3 = xv.modpow(&BigUint::from(3u8), &p);
            let ax = if minus3 {
                (&p - (&xv * 3u8) % &p) % &p
            } else {
                BigUint::ZERO
            };
            let rhs = (x3 + ax + b) % &p;
            let exp = (&p + 1u8) >> 2;
            let mut y = rhs.modpow(&exp, &p);
            if (&y * &y) % &p != rhs {
                return None;
            }
            if y.bit(0) != (tag & 1 == 1) {
                y = (&p - &y) % &p;
            }
            let y_bytes = y.to_bytes_be();
            let mut out = Vec::with_capacity(1 + 2 * len);
            out.push(0x04);
            out.extend_from_slice(x);
            out.resize(1 + 2 * len - y_bytes.len(), 0);
            out.extend_from_slice(&y_bytes);
            Some(out)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;
    use std::process::{Command, Stdio};

    use certresponder_inventory::inspect::{
        inspect_certificates, read_private_key, read_public_key,
    };

    use super::*;

    /// Runs openssl with `input` on stdin; returns stdout.
    fn openssl(args: &[&str], input: &[u8]) -> Vec<u8> {
        let mut child = Command::new("openssl")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("openssl must be installed (scripts/test installs it)");
        child.stdin.take().unwrap().write_all(input).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    fn sha256_hex(b: &[u8]) -> String {
        hex::encode(Sha256::digest(b))
    }

    // The hard-coded vectors were computed with Python's hashlib, mirroring badkeys:
    // `hashlib.sha256(v.to_bytes((v.bit_length() + 7) // 8, "big")).digest()[:15]`, and
    // `hashlib.sha1(b"Modulus=ABC\n").hexdigest()[20:]`.
    #[test]
    fn bkhash_hashes_the_minimal_big_endian_number() {
        assert_eq!(
            hex::encode(bkhash(&[0, 0, 1])),
            "4bf5122f344554c53bde2ebb8cd2b7"
        );
        // Zero is no octets at all: SHA-256 of the empty string.
        assert_eq!(
            hex::encode(bkhash(&[0, 0])),
            "e3b0c44298fc1c149afbf4c8996fb9"
        );
        assert_eq!(hex::encode(bkhash(&[])), "e3b0c44298fc1c149afbf4c8996fb9");
        let ids = KeyIds::of_modulus(&[0, 0, 0x0a, 0xbc]);
        assert_eq!(
            ids.number_sha256.as_deref(),
            Some("1870348e36542f82a2bb6b134f9bda817cbc1f946dda37a0cce5b5221b9f0304")
        );
        assert_eq!(ids.modulus_sha256, ids.number_sha256);
        assert_eq!(
            ids.bkhash_hex().as_deref(),
            Some("1870348e36542f82a2bb6b134f9bda")
        );
        // `Modulus=ABC`: no leading zero digit, as OpenSSL prints it.
        assert_eq!(ids.debian_suffix.as_deref(), Some("5e88f10d69110483e558"));
        assert_eq!(debian_suffix(&[0x0a, 0xbc]), "5e88f10d69110483e558");
    }

    #[test]
    fn ed25519_numbers_drop_leading_zero_octets_as_badkeys_does() {
        let mut public = vec![0u8, 1];
        public.extend([0x22; 30]);
        let ids = KeyIds::of(&read_ed25519(&public));
        assert_eq!(
            ids.bkhash_hex().as_deref(),
            Some("6ff183ab7d32f18742161e6bbf3948")
        );
        assert_eq!(ids.modulus_sha256, None);
        assert_eq!(ids.debian_suffix, None);
        assert_eq!(ids.spki_sha256_alt, None);
    }

    /// An Ed25519 key through the same parser certificates go through.
    fn read_ed25519(public: &[u8]) -> KeyInfo {
        let mut der = hex::decode("302a300506032b6570032100").unwrap();
        der.extend_from_slice(public);
        read_public_key(&der).unwrap()
    }

    #[test]
    fn ec_numbers_are_the_x_coordinate_whatever_the_point_form() {
        let x = [0u8, 0, 7, 9];
        let mut uncompressed = vec![4];
        uncompressed.extend(x);
        uncompressed.extend([1, 2, 3, 5]);
        let mut compressed = vec![3];
        compressed.extend(x);
        let key = |point: Vec<u8>| KeyInfo::Ec {
            curve: "1.2.3.4".into(),
            point,
            params: None,
        };
        let a = KeyIds::of(&key(uncompressed));
        let b = KeyIds::of(&key(compressed));
        assert_eq!(a.bkhash, Some(bkhash(&[7, 9])));
        assert_eq!(a.number_sha256, b.number_sha256);
        assert_ne!(a.spki_sha256, b.spki_sha256);
        // Uncompressed to compressed needs no curve arithmetic.
        assert_eq!(a.spki_sha256_alt, b.spki_sha256);
        // Not a point encoding: no identities.
        let none = KeyIds::of(&key(vec![5, 1, 2]));
        assert_eq!(none, KeyIds::default());
    }

    #[test]
    fn dotted_oids_encode_as_der() {
        assert_eq!(encode_dotted_oid("1.2.840.10045.3.1.7").unwrap(), OID_P256);
        assert_eq!(encode_dotted_oid("1.3.132.0.34").unwrap(), OID_P384);
        assert_eq!(
            encode_dotted_oid("2.999.1").unwrap(),
            vec![0x88, 0x37, 0x01]
        );
        assert!(encode_dotted_oid("3.1").is_none());
        assert!(encode_dotted_oid("1").is_none());
        assert!(encode_dotted_oid("1.x").is_none());
    }

    fn openssl_spki_sha256(private_pem: &[u8], extra: &[&str]) -> String {
        let mut args = vec!["pkey", "-pubout", "-outform", "DER"];
        args.extend(extra);
        sha256_hex(&openssl(&args, private_pem))
    }

    #[test]
    fn spki_hashes_equal_openssl_and_the_certificate_fingerprint() {
        for (alg, opts) in [
            ("RSA", &["-pkeyopt", "rsa_keygen_bits:2048"][..]),
            (
                "RSA",
                &[
                    "-pkeyopt",
                    "rsa_keygen_bits:1024",
                    "-pkeyopt",
                    "rsa_keygen_pubexp:3",
                ][..],
            ),
            ("EC", &["-pkeyopt", "ec_paramgen_curve:P-256"][..]),
            ("EC", &["-pkeyopt", "ec_paramgen_curve:P-384"][..]),
            ("EC", &["-pkeyopt", "ec_paramgen_curve:P-521"][..]),
            ("EC", &["-pkeyopt", "ec_paramgen_curve:secp256k1"][..]),
            ("ED25519", &[][..]),
            ("ED448", &[][..]),
        ] {
            let mut args = vec!["genpkey", "-algorithm", alg];
            args.extend(opts);
            let private = openssl(&args, b"");
            let key = match read_private_key(&private) {
                Ok(k) => k.public,
                // The inventory's parser cannot derive an Ed448 public key from the private
                // key alone; openssl's public key is read instead.
                Err(_) if alg == "ED448" => {
                    read_public_key(&openssl(&["pkey", "-pubout", "-outform", "DER"], &private))
                        .unwrap()
                }
                Err(e) => panic!("{alg}: {e}"),
            };
            let ids = KeyIds::of(&key);
            let what = format!("{alg} {opts:?}");
            assert_eq!(
                ids.spki_sha256.as_deref(),
                Some(openssl_spki_sha256(&private, &[]).as_str()),
                "{what}"
            );
            // The certificate's own fingerprint of the same key.
            let cert = openssl(
                &[
                    "req",
                    "-x509",
                    "-new",
                    "-key",
                    "/dev/stdin",
                    "-subj",
                    "/CN=t",
                    "-days",
                    "1",
                ],
                &private,
            );
            let info = &inspect_certificates(&cert).unwrap()[0];
            assert_eq!(
                ids.spki_sha256.as_deref(),
                Some(info.fingerprints.spki_sha256.as_str()),
                "{what}"
            );
            assert_eq!(KeyIds::of(&info.key), ids, "{what}");
            if alg == "EC" {
                // The other point form, both ways: compressed from openssl, decompressed here.
                let compressed = openssl_spki_sha256(&private, &["-ec_conv_form", "compressed"]);
                assert_eq!(
                    ids.spki_sha256_alt.as_deref(),
                    Some(compressed.as_str()),
                    "{what}"
                );
                let der = openssl(
                    &[
                        "pkey",
                        "-pubout",
                        "-outform",
                        "DER",
                        "-ec_conv_form",
                        "compressed",
                    ],
                    &private,
                );
                let compressed_key = read_public_key(&der).unwrap();
                let back = KeyIds::of(&compressed_key);
                assert_eq!(
                    back.spki_sha256.as_deref(),
                    Some(compressed.as_str()),
                    "{what}"
                );
                assert_eq!(back.spki_sha256_alt, ids.spki_sha256, "{what}");
                assert_eq!(back.number_sha256, ids.number_sha256, "{what}");
            } else {
                assert_eq!(ids.spki_sha256_alt, None, "{what}");
            }
        }
    }

    #[test]
    fn explicit_curve_keys_keep_their_parameters_in_the_spki() {
        let private = openssl(
            &[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-pkeyopt",
                "ec_param_enc:explicit",
            ],
            b"",
        );
        let cert = openssl(
            &[
                "req",
                "-x509",
                "-new",
                "-key",
                "/dev/stdin",
                "-subj",
                "/CN=t",
                "-days",
                "1",
            ],
            &private,
        );
        let info = &inspect_certificates(&cert).unwrap()[0];
        assert!(matches!(&info.key, KeyInfo::Ec { curve, .. } if curve == "explicit"));
        let ids = KeyIds::of(&info.key);
        assert_eq!(
            ids.spki_sha256.as_deref(),
            Some(info.fingerprints.spki_sha256.as_str())
        );
        assert!(
            ids.spki_sha256_alt.is_some(),
            "uncompressed to compressed needs no curve"
        );
    }

    #[test]
    fn rsa_numbers_equal_openssl_modulus_and_debian_suffix() {
        let private = openssl(
            &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:1024",
            ],
            b"",
        );
        let ids = KeyIds::of(&read_private_key(&private).unwrap().public);
        // `Modulus=HEX\n` exactly as openssl prints it, hashed independently.
        let text = openssl(&["rsa", "-noout", "-modulus"], &private);
        let sha1 = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, &text);
        assert_eq!(ids.debian_suffix.unwrap(), hex::encode(sha1.as_ref())[20..]);
        let hex_n = String::from_utf8(text).unwrap();
        let n = hex::decode(hex_n.trim().trim_start_matches("Modulus=")).unwrap();
        assert_eq!(ids.modulus_sha256.unwrap(), sha256_hex(&n));
        assert_eq!(ids.bkhash.unwrap()[..], Sha256::digest(&n)[..15]);
    }

    #[test]
    fn decompression_rejects_x_off_the_curve_and_wrong_lengths() {
        // x = 0 on P-256: b is not a square mod p... whichever it is, the result must be a
        // point whose compressed form is the input, or nothing.
        for x0 in 0u8..8 {
            let mut point = vec![2];
            point.extend([0u8; 31]);
            point.push(x0);
            if let Some(full) = other_point_form("P-256", &point) {
                assert_eq!(full.len(), 65);
                assert_eq!(other_point_form("P-256", &full).unwrap(), point);
            }
        }
        assert!(other_point_form("P-256", &[2, 1, 2, 3]).is_none());
        assert!(other_point_form("P-224", &[2; 29]).is_none());
        assert!(other_point_form("P-256", &[]).is_none());
    }
}
