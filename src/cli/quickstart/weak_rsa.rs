//! The demo's deliberately weak key: a 1024-bit RSA key for the `legacy-api` service, so that
//! the scan has a real `rsa_modulus_small` finding to answer.
//!
//! The cryptography library refuses to generate RSA keys this small, so the key is made here:
//! two random 512-bit primes (checked with the weak-key detectors' Miller–Rabin test),
//! `e = 65537` and the CRT values of RFC 8017 §3.2, written as PKCS#8 (RFC 5958) with a small
//! DER writer. It is a demo key, never a key to use.

use anyhow::{Context as _, bail};
use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
use num_bigint::BigUint;

use crate::signals::weak::rsa::arith::is_probable_prime;

/// Modulus size.
const BITS: u64 = 1024;
/// The public exponent.
const E: u32 = 65_537;
/// Miller–Rabin rounds: a composite passes with probability below 4^-32.
const ROUNDS: u32 = 32;
/// rsaEncryption (RFC 8017 Appendix C), DER-encoded OID.
const RSA_ENCRYPTION: &[u8] = &[
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
];

/// A generated key: the private key as PKCS#8 PEM, and its public key as a DER
/// SubjectPublicKeyInfo (for the CA).
pub(super) struct WeakRsaKey {
    /// `-----BEGIN PRIVATE KEY-----`.
    pub(super) pkcs8_pem: String,
    /// SubjectPublicKeyInfo, DER.
    pub(super) spki_der: Vec<u8>,
}

/// Generates a 1024-bit RSA key.
pub(super) fn generate() -> anyhow::Result<WeakRsaKey> {
    let rng = SystemRandom::new();
    let e = BigUint::from(E);
    let one = BigUint::from(1u32);
    let p = random_prime(&rng, BITS / 2)?;
    // |p - q| well above 2^(bits/2 - 100) (FIPS 186-5 A.1.3), so that the demo key is weak
    // by its size alone, not also to Fermat's method.
    let min_gap = BigUint::from(1u32) << (BITS / 2 - 100);
    let q = loop {
        let q = random_prime(&rng, BITS / 2)?;
        let gap = if q > p { &q - &p } else { &p - &q };
        if gap > min_gap {
            break q;
        }
    };
    let n = &p * &q;
    if n.bits() != BITS {
        bail!("generated a {}-bit modulus, expected {BITS}", n.bits());
    }
    let (p1, q1) = (&p - &one, &q - &one);
    let phi = &p1 * &q1;
    let d = e
        .modinv(&phi)
        .context("the public exponent is not invertible modulo phi(n)")?;
    let qinv = q.modinv(&p).context("q is not invertible modulo p")?;
    // The key works: m^(ed) = m mod n.
    let m = BigUint::from(0x00c0_ffeeu32);
    if m.modpow(&e, &n).modpow(&d, &n) != m {
        bail!("the generated RSA key does not decrypt what it encrypts");
    }
    let rsa_private = seq(&[
        integer(&BigUint::from(0u32)),
        integer(&n),
        integer(&e),
        integer(&d),
        integer(&p),
        integer(&q),
        integer(&(&d % &p1)),
        integer(&(&d % &q1)),
        integer(&qinv),
    ]);
    let algorithm = seq(&[RSA_ENCRYPTION.to_vec(), vec![0x05, 0x00]]);
    let pkcs8 = seq(&[
        integer(&BigUint::from(0u32)),
        algorithm.clone(),
        tlv(0x04, &rsa_private),
    ]);
    let rsa_public = seq(&[integer(&n), integer(&e)]);
    let mut bits = vec![0u8];
    bits.extend_from_slice(&rsa_public);
    let spki_der = seq(&[algorithm, tlv(0x03, &bits)]);
    Ok(WeakRsaKey {
        pkcs8_pem: certresponder_inventory::inspect::encode_pem("PRIVATE KEY", &pkcs8),
        spki_der,
    })
}

/// A random prime of exactly `bits` bits (the top two set, so that two of them multiply to
/// `2 * bits` bits) with `p - 1` coprime to `e`.
fn random_prime(rng: &SystemRandom, bits: u64) -> anyhow::Result<BigUint> {
    let len = usize::try_from(bits / 8).context("prime size")?;
    let mut bytes = vec![0u8; len];
    let e = BigUint::from(E);
    let one = BigUint::from(1u32);
    loop {
        rng.fill(&mut bytes)
            .map_err(|_| anyhow::anyhow!("the system random generator failed"))?;
        if let Some(top) = bytes.first_mut() {
            *top |= 0xc0;
        }
        if let Some(low) = bytes.last_mut() {
            *low |= 1;
        }
        let candidate = BigUint::from_bytes_be(&bytes);
        // e is prime, so gcd(e, p - 1) = 1 unless p = 1 mod e.
        if &candidate % &e != one && is_probable_prime(&candidate, ROUNDS) {
            return Ok(candidate);
        }
    }
}

/// A DER TLV with a definite length (X.690 §8.1.3).
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    match u8::try_from(content.len()) {
        Ok(short) if short < 0x80 => out.push(short),
        _ => {
            let bytes = content.len().to_be_bytes();
            let skip = bytes.iter().take_while(|&&b| b == 0).count();
            let long = &bytes[skip..];
            // At most eight octets, so the count always fits the low seven bits.
            out.push(0x80 | u8::try_from(long.len()).unwrap_or(0x7f));
            out.extend_from_slice(long);
        }
    }
    out.extend_from_slice(content);
    out
}

/// A SEQUENCE of already encoded elements.
fn seq(parts: &[Vec<u8>]) -> Vec<u8> {
    tlv(0x30, &parts.concat())
}

/// A non-negative INTEGER: minimal big-endian, with a zero octet in front when the top bit
/// is set (X.690 §8.3).
fn integer(n: &BigUint) -> Vec<u8> {
    let mut bytes = n.to_bytes_be();
    if bytes.first().is_some_and(|&b| b & 0x80 != 0) {
        bytes.insert(0, 0);
    }
    tlv(0x02, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use certresponder_inventory::inspect::{self, KeyInfo};

    use crate::signals::weak::{KeyPolicy, check_key};

    #[test]
    fn der_lengths_and_integers_are_minimal() {
        assert_eq!(tlv(0x04, &[1, 2]), [0x04, 2, 1, 2]);
        assert_eq!(&tlv(0x04, &[0; 0x80])[..3], [0x04, 0x81, 0x80]);
        assert_eq!(&tlv(0x04, &[0; 0x1234])[..4], [0x04, 0x82, 0x12, 0x34]);
        assert_eq!(integer(&BigUint::from(0u32)), [0x02, 1, 0]);
        assert_eq!(integer(&BigUint::from(0x7fu32)), [0x02, 1, 0x7f]);
        assert_eq!(integer(&BigUint::from(0x80u32)), [0x02, 2, 0, 0x80]);
        assert_eq!(integer(&BigUint::from(65_537u32)), [0x02, 3, 1, 0, 1]);
    }

    #[test]
    fn the_key_reads_back_as_rsa_1024_and_is_weak_only_by_its_size() {
        let key = generate().unwrap();
        let private = inspect::read_private_key(key.pkcs8_pem.as_bytes()).unwrap();
        assert_eq!(private.format, inspect::KeyFormat::Pkcs8);
        let public = inspect::read_public_key(&key.spki_der).unwrap();
        assert!(private.public.same_public_key(&public));
        let KeyInfo::Rsa { bits, exponent, .. } = &public else {
            panic!("not RSA: {public:?}");
        };
        assert_eq!((*bits, exponent.as_str()), (1024, "65537"));
        let checks: Vec<&str> = check_key(&public, &KeyPolicy::default())
            .iter()
            .map(|f| f.check)
            .collect();
        assert_eq!(checks, ["rsa_modulus_small"]);
        // rcgen takes the public key as it is, for the CA to certify.
        rcgen::SubjectPublicKeyInfo::from_der(&key.spki_der).unwrap();
    }
}
