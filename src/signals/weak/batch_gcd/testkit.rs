//! Reproducible RSA-shaped fixtures for the tests and `benches/batch_gcd.rs` (which includes
//! this file by path): random primes from a seeded ChaCha8 generator, sieved by small primes
//! and confirmed by Miller–Rabin. Fixtures only; not a key generator.

use dashu_int::UBig;
use dashu_int::fast_div::ConstDivisor;
use dashu_int::ops::BitTest;
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};

/// A seeded generator: the same seed gives the same fixtures on every machine.
pub fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// Odd primes below 2000, for the sieve.
fn small_primes() -> Vec<u64> {
    (3..2000u64)
        .step_by(2)
        .filter(|&p| {
            (3..)
                .step_by(2)
                .take_while(|d| d * d <= p)
                .all(|d| p % d != 0)
        })
        .collect()
}

fn residue(bytes: &[u8], p: u64) -> u64 {
    bytes.iter().fold(0, |r, &b| (r * 256 + u64::from(b)) % p)
}

/// A random prime of exactly `bits` bits (a multiple of 8, at least 64) whose top two bits
/// are set, so the product of two such primes has exactly `2 * bits` bits.
pub fn random_prime(rng: &mut ChaCha8Rng, bits: usize) -> UBig {
    assert!(
        bits.is_multiple_of(8) && bits >= 64,
        "fixture primes are whole bytes"
    );
    let primes = small_primes();
    loop {
        let mut bytes = vec![0u8; bits / 8];
        rng.fill_bytes(&mut bytes);
        bytes[0] |= 0xc0;
        let last = bytes.len() - 1;
        bytes[last] |= 1;
        let start = UBig::from_be_bytes(&bytes);
        let mut residues: Vec<u64> = primes.iter().map(|&p| residue(&bytes, p)).collect();
        // Walk odd numbers up from `start`, testing only those with no factor below 2000.
        for step in 0..(4 * bits as u64) {
            let clear = residues.iter().all(|&r| r != 0);
            if clear {
                let candidate = &start + UBig::from(2 * step);
                if candidate.bit_len() == bits && miller_rabin(&candidate, rng, 12) {
                    return candidate;
                }
            }
            for (r, &p) in residues.iter_mut().zip(&primes) {
                *r = (*r + 2) % p;
            }
        }
    }
}

/// Miller–Rabin with `rounds` random bases; `n` odd and above 3.
pub fn miller_rabin(n: &UBig, rng: &mut ChaCha8Rng, rounds: usize) -> bool {
    let n_minus_1 = n - UBig::ONE;
    let s = n_minus_1.trailing_zeros().unwrap_or(0);
    let d = &n_minus_1 >> s;
    let ring = ConstDivisor::new(n.clone());
    let one = ring.reduce(UBig::ONE);
    let minus_one = ring.reduce(n_minus_1.clone());
    let len = n.bit_len().div_ceil(8) + 8;
    'bases: for _ in 0..rounds {
        let mut raw = vec![0u8; len];
        rng.fill_bytes(&mut raw);
        let a = UBig::from_be_bytes(&raw) % (n - UBig::from(3u8)) + UBig::from(2u8);
        let mut x = ring.reduce(a).pow(&d);
        if x == one || x == minus_one {
            continue;
        }
        for _ in 1..s {
            x = x.sqr();
            if x == minus_one {
                continue 'bases;
            }
        }
        return false;
    }
    true
}

/// `p * q` as big-endian bytes.
pub fn modulus(p: &UBig, q: &UBig) -> Vec<u8> {
    (p * q).to_be_bytes().into_vec()
}
