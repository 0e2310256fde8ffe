//! Key components (from a JWK, an OpenSSH or a PuTTY key) to a public key. Wherever the
//! private part allows it, the public key is derived from it by the inventory's own parser
//! (so that a file whose public half was edited cannot name someone else's key), and RSA
//! components are checked to belong together. Buffers holding private parts are wiped.

use certresponder_inventory::inspect::der::{self, TAG_INTEGER, TAG_OCTET_STRING, TAG_SEQUENCE};
use certresponder_inventory::inspect::{InspectError, KeyInfo, inspect_spki_der, read_private_key};
use num_bigint::BigUint;
use zeroize::Zeroizing;

use super::Seen;

/// DER content of the OIDs used below.
const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];
/// P-256, P-384, P-521 (RFC 5480 §2.1.1.1).
pub(super) const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
pub(super) const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
pub(super) const OID_P521: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x23];

/// The size in bytes of a curve's scalars and coordinates.
fn field_len(curve: &[u8]) -> Option<usize> {
    match curve {
        OID_P256 => Some(32),
        OID_P384 => Some(48),
        OID_P521 => Some(66),
        _ => None,
    }
}

/// A DER INTEGER holding the unsigned big-endian `v`.
fn unsigned_integer(v: &[u8]) -> Vec<u8> {
    let v = der::strip_leading_zeros(v);
    let mut content = Vec::with_capacity(v.len() + 1);
    if v.first().is_some_and(|b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(v);
    der::encode(TAG_INTEGER, &content)
}

/// What a private key DER parsed to, as the inventory's parser sees it.
fn seen_of(
    result: Result<certresponder_inventory::inspect::PrivateKeyInfo, InspectError>,
    format: &'static str,
) -> Option<Seen> {
    match result {
        Ok(k) => Some(Seen::Key(k.public, format)),
        Err(InspectError::EncryptedKey) => Some(Seen::Encrypted),
        Err(InspectError::Unsupported { .. }) => Some(Seen::Unsupported),
        Err(_) => None,
    }
}

/// A private key in DER (PKCS#8, PKCS#1 or SEC1), reduced to its public half.
pub(super) fn private_der(der_bytes: &[u8], format: &'static str) -> Option<Seen> {
    seen_of(read_private_key(der_bytes), format)
}

/// An RSA public key from its modulus and exponent (RFC 8017 §A.1.1 in an RFC 5280 SPKI).
pub(super) fn rsa_public(n: &[u8], e: &[u8]) -> Option<KeyInfo> {
    let rsa_key = der::encode(
        TAG_SEQUENCE,
        &[unsigned_integer(n), unsigned_integer(e)].concat(),
    );
    let mut bits = vec![0u8];
    bits.extend_from_slice(&rsa_key);
    let alg = der::encode(
        TAG_SEQUENCE,
        &[der::encode(der::TAG_OID, OID_RSA), vec![0x05, 0x00]].concat(),
    );
    let spki = der::encode(
        TAG_SEQUENCE,
        &[alg, der::encode(der::TAG_BIT_STRING, &bits)].concat(),
    );
    inspect_spki_der(&spki).ok()
}

fn big(v: &[u8]) -> BigUint {
    BigUint::from_bytes_be(v)
}

/// An RSA key whose primes are known: kept only when `p * q == n`.
pub(super) fn rsa_with_primes(
    n: &[u8],
    e: &[u8],
    p: &[u8],
    q: &[u8],
    format: &'static str,
) -> Option<Seen> {
    let (n_, p, q) = (big(n), big(p), big(q));
    let one = BigUint::from(1u8);
    if p <= one || q <= one || &p * &q != n_ {
        return None;
    }
    rsa_public(n, e).map(|k| Seen::Key(k, format))
}

/// An RSA key given as `n`, `e` and `d` only: kept only when `d` inverts `e`, checked as
/// `(2^e)^d = 2 (mod n)`.
pub(super) fn rsa_with_exponent(
    n: &[u8],
    e: &[u8],
    d: &[u8],
    format: &'static str,
) -> Option<Seen> {
    let (n_, e_, d_) = (big(n), big(e), big(d));
    let two = BigUint::from(2u8);
    if n_ <= two || e_ <= BigUint::from(1u8) || d_ <= BigUint::from(1u8) || n_.bits() > 16384 {
        return None;
    }
    if two.modpow(&e_, &n_).modpow(&d_, &n_) != two {
        return None;
    }
    rsa_public(n, e).map(|k| Seen::Key(k, format))
}

/// An EC private scalar on a named curve (`curve` is the OID's DER content): the public
/// point is derived from the scalar (RFC 5915 `ECPrivateKey`).
pub(super) fn ec_scalar(curve: &[u8], d: &[u8], format: &'static str) -> Option<Seen> {
    let len = field_len(curve)?;
    let d = der::strip_leading_zeros(d);
    if d.len() > len || d.iter().all(|&b| b == 0) {
        return None;
    }
    let mut scalar = Zeroizing::new(vec![0u8; len - d.len()]);
    scalar.extend_from_slice(d);
    let body = Zeroizing::new(
        [
            vec![TAG_INTEGER, 1, 1],
            der::encode(TAG_OCTET_STRING, &scalar),
            der::encode(0xa0, &der::encode(der::TAG_OID, curve)),
        ]
        .concat(),
    );
    let sec1 = Zeroizing::new(der::encode(TAG_SEQUENCE, &body));
    private_der(&sec1, format)
}

/// An Ed25519 seed (RFC 8032 §5.1.5): the public key is derived from it (RFC 8410 PKCS#8).
pub(super) fn ed25519_seed(seed: &[u8], format: &'static str) -> Option<Seen> {
    if seed.len() != 32 {
        return None;
    }
    let inner = Zeroizing::new(der::encode(TAG_OCTET_STRING, seed));
    let body = Zeroizing::new(
        [
            vec![TAG_INTEGER, 1, 0],
            der::encode(TAG_SEQUENCE, &der::encode(der::TAG_OID, OID_ED25519)),
            der::encode(TAG_OCTET_STRING, &inner),
        ]
        .concat(),
    );
    let pkcs8 = Zeroizing::new(der::encode(TAG_SEQUENCE, &body));
    private_der(&pkcs8, format)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rsa_components_must_agree() {
        // n = 3233 = 61 * 53, e = 17, d = 2753 (the textbook example).
        let n = 3233u32.to_be_bytes();
        let e = [17u8];
        let d = 2753u32.to_be_bytes();
        assert!(rsa_with_primes(&n, &e, &[61], &[53], "jwk").is_some());
        assert!(rsa_with_primes(&n, &e, &[61], &[59], "jwk").is_none());
        assert!(rsa_with_exponent(&n, &e, &d, "jwk").is_some());
        assert!(rsa_with_exponent(&n, &e, &2754u32.to_be_bytes(), "jwk").is_none());
    }

    #[test]
    fn ec_scalar_out_of_range_is_not_a_key() {
        assert!(ec_scalar(OID_P256, &[0u8; 32], "jwk").is_none());
        assert!(ec_scalar(OID_P256, &[0xffu8; 32], "jwk").is_none());
        assert!(ec_scalar(OID_P256, &[1u8; 33], "jwk").is_none());
    }
}
