//! Integer helpers for the RSA checks: limbs, residues by a word-sized modulus, integer square
//! roots, a perfect-square test with a cheap residue filter, and Miller–Rabin.

use std::sync::OnceLock;

use num_bigint::BigUint;

/// The largest prime the small-factor check divides by (badkeys' `MAX_PRIME`).
pub(super) const SMALL_PRIME_LIMIT: u32 = 65537;

/// Every prime up to [`SMALL_PRIME_LIMIT`], ascending (6543 primes, from a sieve built once).
pub(super) fn small_primes() -> &'static [u32] {
    static PRIMES: OnceLock<Vec<u32>> = OnceLock::new();
    PRIMES.get_or_init(|| {
        let limit = SMALL_PRIME_LIMIT as usize;
        let mut composite = vec![false; limit + 1];
        let mut primes = Vec::with_capacity(6543);
        for i in 2..=limit {
            if composite[i] {
                continue;
            }
            primes.push(i as u32);
            let mut j = i * i;
            while j <= limit {
                composite[j] = true;
                j += i;
            }
        }
        primes
    })
}

/// Little-endian 64-bit limbs of `n` (empty for zero).
pub(super) fn limbs(n: &BigUint) -> Vec<u64> {
    n.to_u64_digits()
}

/// The lowest 64 bits of `n`.
pub(super) fn low_u64(n: &BigUint) -> u64 {
    n.iter_u64_digits().next().unwrap_or(0)
}

/// `n mod m` for little-endian limbs. `m` must not be zero (callers pass constants).
pub(super) fn mod_u64(limbs: &[u64], m: u64) -> u64 {
    let m = u128::from(m.max(1));
    let mut r: u128 = 0;
    for &limb in limbs.iter().rev() {
        r = ((r << 64) | u128::from(limb)) % m;
    }
    // r < m <= u64::MAX.
    r as u64
}

/// Bit `r` is set when `r` is a square modulo `f` (`f` <= 64).
const fn square_mask(f: u64) -> u64 {
    let mut mask = 0u64;
    let mut i = 0;
    while i < f {
        mask |= 1 << ((i * i) % f);
        i += 1;
    }
    mask
}

const SQUARES_MOD_64: u64 = square_mask(64);

/// The modulus of the square filter: 9·5·7·11·13·17·19·23·29·31·37·41·43·47 (< 2^60), so
/// that the residue of a running value fits a word and each factor's residue is one
/// multiply-by-constant away.
pub(super) const SQUARE_FILTER_MODULUS: u64 = 922_334_673_882_737_115;

#[inline(always)]
fn is_square_mod<const F: u64>(v: u64) -> bool {
    (const { square_mask(F) } >> (v % F)) & 1 == 1
}

/// Whether `v mod 64` (the low bits of a value) is a square modulo 64: 12 of 64 residues pass.
#[inline(always)]
pub(super) fn may_be_square_mod_64(low: u64) -> bool {
    (SQUARES_MOD_64 >> (low & 63)) & 1 == 1
}

/// Whether a value whose residue modulo [`SQUARE_FILTER_MODULUS`] is `v` can be a square. About
/// one non-square in 17,000 passes; together with [`may_be_square_mod_64`] one in 90,000.
#[inline(always)]
pub(super) fn may_be_square_filtered(v: u64) -> bool {
    is_square_mod::<9>(v)
        && is_square_mod::<5>(v)
        && is_square_mod::<7>(v)
        && is_square_mod::<11>(v)
        && is_square_mod::<13>(v)
        && is_square_mod::<17>(v)
        && is_square_mod::<19>(v)
        && is_square_mod::<23>(v)
        && is_square_mod::<29>(v)
        && is_square_mod::<31>(v)
        && is_square_mod::<37>(v)
        && is_square_mod::<41>(v)
        && is_square_mod::<43>(v)
        && is_square_mod::<47>(v)
}

/// `floor(sqrt(n))` (num-bigint's Newton iteration; measured faster than a recursive
/// half-precision start at RSA sizes).
pub(super) fn isqrt(n: &BigUint) -> BigUint {
    n.sqrt()
}

/// The square root of `v` when `v` is a perfect square.
pub(super) fn perfect_square_root(v: &BigUint) -> Option<BigUint> {
    if !may_be_square_mod_64(low_u64(v)) {
        return None;
    }
    if !may_be_square_filtered(mod_u64(&limbs(v), SQUARE_FILTER_MODULUS)) {
        return None;
    }
    let root = isqrt(v);
    (&root * &root == *v).then_some(root)
}

/// SplitMix64: derives Miller–Rabin bases from the number under test, so the test is
/// deterministic for a given input but its bases are not a fixed, published list.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Miller–Rabin with base 2 and then `rounds - 1` bases derived from `n`, after trial
/// division by the primes below 1000. A composite passes with probability below 4^-rounds.
///
/// Cost: one modular exponentiation per round (about 7 ms for 2048 bits with num-bigint), so
/// callers bound the size of what they test.
pub(crate) fn is_probable_prime(n: &BigUint, rounds: u32) -> bool {
    let primes = small_primes();
    if n.bits() <= 32 {
        let v = low_u64(n);
        return u32::try_from(v).is_ok_and(|v| primes.binary_search(&v).is_ok())
            || (v > u64::from(SMALL_PRIME_LIMIT) && is_prime_u64(v));
    }
    let limbs = limbs(n);
    if primes
        .iter()
        .take_while(|&&p| p < 1000)
        .any(|&p| mod_u64(&limbs, u64::from(p)) == 0)
    {
        return false;
    }
    let one = BigUint::from(1u32);
    let n_minus_1 = n - &one;
    let s = n_minus_1.trailing_zeros().unwrap_or(0);
    let d = &n_minus_1 >> s;
    let n_minus_3 = n - 3u32;
    let mut state = low_u64(n) ^ n.bits().rotate_left(32);
    'bases: for round in 0..rounds.max(1) {
        let a = if round == 0 {
            BigUint::from(2u32)
        } else {
            BigUint::from(splitmix64(&mut state)) % &n_minus_3 + 2u32
        };
        let mut x = a.modpow(&d, n);
        if x == one || x == n_minus_1 {
            continue;
        }
        for _ in 1..s {
            x = &x * &x % n;
            if x == n_minus_1 {
                continue 'bases;
            }
            if x == one {
                return false;
            }
        }
        return false;
    }
    true
}

/// Deterministic primality for 32-bit-sized values (`n < 2^33` after the callers' checks) by
/// trial division up to `sqrt(n)` with the small primes.
fn is_prime_u64(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    for &p in small_primes() {
        let p = u64::from(p);
        if p * p > n {
            return true;
        }
        if n.is_multiple_of(p) {
            return n == p;
        }
    }
    // sqrt(n) > 65537 only for n > 2^32, which callers do not pass; answer conservatively.
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_primes_are_the_primes_up_to_65537() {
        let primes = small_primes();
        assert_eq!(primes.len(), 6543);
        assert_eq!(primes.first(), Some(&2));
        assert_eq!(primes.last(), Some(&65537));
    }

    #[test]
    fn filter_modulus_is_the_product_of_its_factors() {
        let product: u64 = [9u64, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47]
            .iter()
            .product();
        assert_eq!(product, SQUARE_FILTER_MODULUS);
    }

    #[test]
    fn perfect_squares_are_recognised() {
        let mut state = 7u64;
        for bits in [1usize, 63, 64, 65, 200, 1024, 2047, 3072] {
            let words = bits.div_ceil(64);
            let digits: Vec<u32> = (0..words)
                .flat_map(|_| {
                    let d = splitmix64(&mut state);
                    [d as u32, (d >> 32) as u32]
                })
                .collect();
            let n = (BigUint::from_slice(&digits) >> (words * 64 - bits))
                | (BigUint::from(1u32) << (bits - 1));
            let sq = &n * &n;
            assert_eq!(isqrt(&sq), n);
            assert_eq!(perfect_square_root(&sq), Some(n.clone()), "bits {bits}");
            assert_eq!(perfect_square_root(&(&sq + 1u32)), None);
            assert_eq!(perfect_square_root(&(&sq + (&n << 1u32))), None);
        }
        assert_eq!(perfect_square_root(&BigUint::ZERO), Some(BigUint::ZERO));
    }

    #[test]
    fn filters_accept_every_square() {
        for i in 0u64..100_000 {
            let v = i * i;
            assert!(may_be_square_mod_64(v));
            assert!(may_be_square_filtered(v % SQUARE_FILTER_MODULUS));
        }
    }

    #[test]
    fn miller_rabin_classifies_known_numbers() {
        for &(n, prime) in &[
            (0u64, false),
            (1, false),
            (2, true),
            (3, true),
            (4, false),
            (65521, true),
            (65537, true),
            (65539, true),
            (65541, false),
            (4_294_967_291, true),
            (4_294_967_297, false),
            // Carmichael numbers and a strong pseudoprime to base 2.
            (561, false),
            (41041, false),
            (3_215_031_751, false),
        ] {
            assert_eq!(is_probable_prime(&BigUint::from(n), 8), prime, "{n}");
        }
        // 2^127 - 1 is prime; 2^128 + 1 is not.
        let m127 = (BigUint::from(1u32) << 127u32) - 1u32;
        assert!(is_probable_prime(&m127, 8));
        assert!(!is_probable_prime(
            &((BigUint::from(1u32) << 128u32) + 1u32),
            8
        ));
        // A product of two primes above 1000 (no trial-division shortcut).
        let semiprime = BigUint::from(1_000_003u64) * BigUint::from(4_294_967_291u64);
        assert!(!is_probable_prime(&semiprime, 8));
    }
}
