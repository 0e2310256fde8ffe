//! Key components (from a JWK, an OpenSSH or a PuTTY key) to a public key. Wherever the
//! private part allows it, the public key is derived from it by the inventory's own parser
//! (so that a file whose public half was edited cannot name someone else's key), and RSA
//! components are checked to belong together. Buffers holding private parts are wiped.

use certresponder_inventory::inspect::der::{self, TAG_INTEGER, TAG_OCTET_STRING, TAG_SEQUENCE};
use certresponder_inventory::inspect::{InspectError, KeyInfo, inspect_spki_der, read_private_key};
use num_bigint::BigUint;
use zeroize::Zeroizing;

use super::{Seen, encrypted};

/// DER content of the OIDs used below.
const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];
/// id-ecPublicKey (RFC 5480 §2.1.1).
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
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

/// What a private key DER parsed to, as the inventory's parser sees it; an encrypted
/// PKCS#8 key is read for what encrypts it.
fn seen_of(der_bytes: &[u8], format: &'static str) -> Option<Seen> {
    match read_private_key(der_bytes) {
        Ok(k) => Some(Seen::Key(k.public, format)),
        Err(InspectError::EncryptedKey) => encrypted::pkcs8(der_bytes, format),
        Err(InspectError::Unsupported { .. }) => Some(Seen::Unsupported),
        Err(_) => None,
    }
}

/// A private key in DER (PKCS#8, PKCS#1 or SEC1), reduced to its public half.
///
/// Only a public half that the private part proves counts: an RSA key must have primes
/// that multiply to its modulus (and sane sizes), and a key whose public half is merely
/// stored beside the private part (Ed448, SEC1 on a curve that cannot be computed here) is
/// unsupported, since a forged file could name anyone's public key that way.
pub(super) fn private_der(der_bytes: &[u8], format: &'static str) -> Option<Seen> {
    match seen_of(der_bytes, format)? {
        Seen::Key(KeyInfo::Rsa { .. }, _) if !rsa_private_der_ok(der_bytes) => {
            Some(Seen::Unsupported)
        }
        Seen::Key(KeyInfo::Ed448 { .. }, _) => Some(Seen::Unsupported),
        Seen::Key(KeyInfo::Ec { ref curve, .. }, _)
            if !matches!(curve.as_str(), "P-256" | "P-384" | "P-521") =>
        {
            Some(Seen::Unsupported)
        }
        seen => Some(seen),
    }
}

/// The smallest and largest RSA moduli accepted, in bits.
const RSA_MIN_BITS: u64 = 512;
const RSA_MAX_BITS: u64 = 16384;

/// Whether `n` and `e` have sizes worth any arithmetic: `512 <= bits(n) <= 16384` and
/// `1 < e < 2^64`, `e < n`.
fn rsa_sizes_ok(n: &BigUint, e: &BigUint) -> bool {
    (RSA_MIN_BITS..=RSA_MAX_BITS).contains(&n.bits())
        && e.bits() <= 64
        && *e > BigUint::from(1u8)
        && e < n
}

/// Whether an RSA private key in DER (PKCS#1 `RSAPrivateKey`, or PKCS#8 wrapping one in its
/// OCTET STRING) has primes that multiply to its modulus, with sane sizes (RFC 8017 §A.1.2).
fn rsa_private_der_ok(der_bytes: &[u8]) -> bool {
    let Ok((seq, _)) = der::expect_tlv(der_bytes, TAG_SEQUENCE, "") else {
        return false;
    };
    let Ok(fields) = der::children(seq.content) else {
        return false;
    };
    // PKCS#8: version, AlgorithmIdentifier, OCTET STRING holding the RSAPrivateKey.
    let pkcs1 = match fields.as_slice() {
        [_, alg, key, ..] if alg.tag == TAG_SEQUENCE && key.tag == TAG_OCTET_STRING => {
            let Ok((inner, _)) = der::expect_tlv(key.content, TAG_SEQUENCE, "") else {
                return false;
            };
            match der::children(inner.content) {
                Ok(f) => f,
                Err(_) => return false,
            }
        }
        _ => fields,
    };
    if pkcs1.len() < 9 || pkcs1[..9].iter().any(|f| f.tag != TAG_INTEGER) {
        return false;
    }
    let (n, e, d, p, q) = (
        big(pkcs1[1].content),
        big(pkcs1[2].content),
        Zeroizing::new(pkcs1[3].content.to_vec()),
        big(pkcs1[4].content),
        big(pkcs1[5].content),
    );
    let one = BigUint::from(1u8);
    let d = big(&d);
    // Sizes before the product: primes far larger than the modulus (hostile input) would
    // cost a long multiplication.
    rsa_sizes_ok(&n, &e)
        && d > one
        && d < n
        && p > one
        && q > one
        && p.bits() + q.bits() <= n.bits() + 1
        && &p * &q == n
}

/// An RSA public key from its modulus and exponent (RFC 8017 §A.1.1 in an RFC 5280 SPKI).
pub(super) fn rsa_public(n: &[u8], e: &[u8]) -> Option<KeyInfo> {
    let rsa_key = der::encode(
        TAG_SEQUENCE,
        &[unsigned_integer(n), unsigned_integer(e)].concat(),
    );
    let alg = der::encode(
        TAG_SEQUENCE,
        &[der::encode(der::TAG_OID, OID_RSA), vec![0x05, 0x00]].concat(),
    );
    spki(alg, &rsa_key)
}

/// An RSA public key from its modulus and exponent, only when their sizes are sane (it is
/// read from a file, not derived from a private part).
pub(super) fn rsa_public_checked(n: &[u8], e: &[u8]) -> Option<KeyInfo> {
    rsa_sizes_ok(&big(n), &big(e))
        .then(|| rsa_public(n, e))
        .flatten()
}

/// An Ed25519 public key (RFC 8410 §4 SPKI).
pub(super) fn ed25519_public(public: &[u8]) -> Option<KeyInfo> {
    if public.len() != 32 {
        return None;
    }
    let alg = der::encode(TAG_SEQUENCE, &der::encode(der::TAG_OID, OID_ED25519));
    spki(alg, public)
}

/// An EC public point on a named curve (`curve` is the OID's DER content; RFC 5480 §2 SPKI).
pub(super) fn ec_public(curve: &[u8], point: &[u8]) -> Option<KeyInfo> {
    let len = field_len(curve)?;
    if point.len() != 1 + 2 * len || point.first() != Some(&4) {
        return None;
    }
    let alg = der::encode(
        TAG_SEQUENCE,
        &[
            der::encode(der::TAG_OID, OID_EC_PUBLIC_KEY),
            der::encode(der::TAG_OID, curve),
        ]
        .concat(),
    );
    spki(alg, point)
}

/// An SPKI of `alg` (an encoded AlgorithmIdentifier) and the key's bits, read back by the
/// inventory's parser (which checks the key).
fn spki(alg: Vec<u8>, key: &[u8]) -> Option<KeyInfo> {
    let mut bits = vec![0u8];
    bits.extend_from_slice(key);
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
    if !rsa_sizes_ok(&n_, &big(e)) || p <= one || q <= one || &p * &q != n_ {
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
    // Sizes first: `modpow` with an unbounded `e` or `d` costs seconds.
    if !rsa_sizes_ok(&n_, &e_) || d_ <= BigUint::from(1u8) || d_ >= n_ {
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

    /// A toy RSA key from two Mersenne primes (2^127 - 1, 2^521 - 1): n has 648 bits.
    fn toy_rsa() -> (BigUint, BigUint, BigUint, BigUint, BigUint) {
        let one = BigUint::from(1u8);
        let p = (&one << 127u32) - &one;
        let q = (&one << 521u32) - &one;
        let n = &p * &q;
        let e = BigUint::from(65537u32);
        let phi = (&p - &one) * (&q - &one);
        let d = e.modinv(&phi).unwrap();
        (n, e, d, p, q)
    }

    #[test]
    fn rsa_components_must_agree() {
        let (n, e, d, p, q) = toy_rsa();
        let (n, e, d, p, q) = (
            n.to_bytes_be(),
            e.to_bytes_be(),
            d.to_bytes_be(),
            p.to_bytes_be(),
            q.to_bytes_be(),
        );
        assert!(rsa_with_primes(&n, &e, &p, &q, "jwk").is_some());
        assert!(rsa_with_primes(&n, &e, &p, &[59], "jwk").is_none());
        assert!(rsa_with_exponent(&n, &e, &d, "jwk").is_some());
        let mut wrong = d.clone();
        *wrong.last_mut().unwrap() ^= 1;
        assert!(rsa_with_exponent(&n, &e, &wrong, "jwk").is_none());
    }

    #[test]
    fn rsa_sizes_are_bounded_before_any_arithmetic() {
        // The textbook key (n = 3233) is far too small to be anyone's key.
        let n = 3233u32.to_be_bytes();
        assert!(rsa_with_primes(&n, &[17], &[61], &[53], "jwk").is_none());
        assert!(rsa_with_exponent(&n, &[17], &2753u32.to_be_bytes(), "jwk").is_none());
        // A huge e or d is refused at once (it used to cost seconds of modpow).
        let (n, _, d, p, q) = toy_rsa();
        let n = n.to_bytes_be();
        let huge = vec![0x7fu8; 8 * 1024];
        assert!(rsa_with_exponent(&n, &huge, &d.to_bytes_be(), "jwk").is_none());
        assert!(rsa_with_exponent(&n, &[3], &huge, "jwk").is_none());
        assert!(rsa_with_primes(&n, &huge, &p.to_bytes_be(), &q.to_bytes_be(), "jwk").is_none());
        assert!(rsa_with_exponent(&n, &[1], &[3], "jwk").is_none());
        let too_big = vec![0xffu8; 16384 / 8 + 1];
        assert!(rsa_with_exponent(&too_big, &[3], &[5], "jwk").is_none());
    }

    /// A PKCS#1 `RSAPrivateKey` with the given integers (version 0, then these, then
    /// placeholder CRT values).
    fn pkcs1(n: &[u8], e: &[u8], d: &[u8], p: &[u8], q: &[u8]) -> Vec<u8> {
        let body = [
            vec![TAG_INTEGER, 1, 0],
            unsigned_integer(n),
            unsigned_integer(e),
            unsigned_integer(d),
            unsigned_integer(p),
            unsigned_integer(q),
            unsigned_integer(&[1]),
            unsigned_integer(&[1]),
            unsigned_integer(&[1]),
        ]
        .concat();
        der::encode(TAG_SEQUENCE, &body)
    }

    #[test]
    fn forged_rsa_private_keys_are_not_keys() {
        let (n, e, d, p, q) = toy_rsa();
        let (n, e, d, p, q) = (
            n.to_bytes_be(),
            e.to_bytes_be(),
            d.to_bytes_be(),
            p.to_bytes_be(),
            q.to_bytes_be(),
        );
        let real = pkcs1(&n, &e, &d, &p, &q);
        assert!(matches!(private_der(&real, "der"), Some(Seen::Key(..))));
        // Someone's modulus with d = p = q = 1.
        let forged = pkcs1(&n, &e, &[1], &[1], &[1]);
        assert!(matches!(
            private_der(&forged, "der"),
            Some(Seen::Unsupported)
        ));
        // Right primes, absurd exponent.
        let big_e = pkcs1(&n, &[0x7f; 9], &d, &p, &q);
        assert!(matches!(
            private_der(&big_e, "der"),
            Some(Seen::Unsupported)
        ));
        // The same forgery wrapped in PKCS#8.
        let alg = der::encode(
            TAG_SEQUENCE,
            &[der::encode(der::TAG_OID, OID_RSA), vec![0x05, 0x00]].concat(),
        );
        let wrap = |k: &[u8]| {
            der::encode(
                TAG_SEQUENCE,
                &[
                    vec![TAG_INTEGER, 1, 0],
                    alg.clone(),
                    der::encode(TAG_OCTET_STRING, k),
                ]
                .concat(),
            )
        };
        assert!(matches!(
            private_der(&wrap(&real), "der"),
            Some(Seen::Key(..))
        ));
        assert!(matches!(
            private_der(&wrap(&forged), "der"),
            Some(Seen::Unsupported)
        ));
    }

    #[test]
    fn stored_public_halves_are_unsupported() {
        // Ed448 PKCS#8 v2 carrying only a stored public key.
        let ed448 = der::encode(
            TAG_SEQUENCE,
            &[
                vec![TAG_INTEGER, 1, 1],
                der::encode(
                    TAG_SEQUENCE,
                    &der::encode(der::TAG_OID, &[0x2b, 0x65, 0x71]),
                ),
                der::encode(TAG_OCTET_STRING, &der::encode(TAG_OCTET_STRING, &[7u8; 57])),
                der::encode(0x81, &[[0u8].as_slice(), &[9u8; 57]].concat()),
            ]
            .concat(),
        );
        assert!(matches!(
            private_der(&ed448, "der"),
            Some(Seen::Unsupported)
        ));
        // SEC1 on secp256k1 with a stored public point.
        let secp256k1 = [0x2b, 0x81, 0x04, 0x00, 0x0a];
        let point = [[0u8, 4].as_slice(), &[5u8; 64]].concat();
        let sec1 = der::encode(
            TAG_SEQUENCE,
            &[
                vec![TAG_INTEGER, 1, 1],
                der::encode(TAG_OCTET_STRING, &[3u8; 32]),
                der::encode(0xa0, &der::encode(der::TAG_OID, &secp256k1)),
                der::encode(0xa1, &der::encode(der::TAG_BIT_STRING, &point)),
            ]
            .concat(),
        );
        assert!(matches!(private_der(&sec1, "der"), Some(Seen::Unsupported)));
    }

    #[test]
    fn ec_scalar_out_of_range_is_not_a_key() {
        assert!(ec_scalar(OID_P256, &[0u8; 32], "jwk").is_none());
        assert!(ec_scalar(OID_P256, &[0xffu8; 32], "jwk").is_none());
        assert!(ec_scalar(OID_P256, &[1u8; 33], "jwk").is_none());
    }
}
