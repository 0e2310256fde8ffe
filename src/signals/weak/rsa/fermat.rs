//! Fermat factorization (badkeys' `fermat`, BR §6.1.1.3's "at least 100 rounds"): a modulus
//! whose primes are close, `|p − q|` small next to `n^(1/4)`, is `a² − b²` for an `a` just above
//! `sqrt(n)`.
//!
//! One integer square root, then each round is a handful of word operations: `a² − n` is kept
//! as its residues modulo 2^64 and modulo [`SQUARE_FILTER_MODULUS`], updated by adding
//! `2a + 1`, and only a value that is a square modulo 64 and modulo each of 9, 5, 7, ..., 47
//! (one non-square in about 90,000) gets an exact square-root test.
//!
//! Rounds start at `a = ceil(sqrt(n))` — badkeys starts at `floor(sqrt(n))`, whose `a² − n` is
//! negative unless `n` is a square, so `rounds` rounds here cover badkeys' 100 and zlint's.

use num_bigint::BigUint;

use super::arith::{
    SQUARE_FILTER_MODULUS, isqrt, limbs, low_u64, may_be_square_filtered, may_be_square_mod_64,
    mod_u64, perfect_square_root,
};

/// A Fermat factorization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct FermatFactors {
    /// Rounds tried, counting the successful one (0 when `n` is a perfect square).
    pub rounds_used: u64,
    /// The larger factor.
    pub p: BigUint,
    /// The smaller factor.
    pub q: BigUint,
}

impl FermatFactors {
    /// `p == q`: the modulus is a square (badkeys' subtest `square`).
    pub fn is_square(&self) -> bool {
        self.p == self.q
    }
}

fn add_mod(a: u64, b: u64, m: u64) -> u64 {
    // a, b < m < 2^63: no overflow.
    let s = a + b;
    if s >= m { s - m } else { s }
}

/// Tries `a = ceil(sqrt(n)) .. ceil(sqrt(n)) + rounds − 1`; returns the factors when some
/// `a² − n` is a square `b²` with `a − b > 1`.
pub(super) fn fermat(n: &BigUint, rounds: u64) -> Option<FermatFactors> {
    let root = isqrt(n);
    if &root * &root == *n {
        return (root > BigUint::from(1u32)).then(|| FermatFactors {
            rounds_used: 0,
            p: root.clone(),
            q: root,
        });
    }
    let a0 = root + 1u32;
    // v = a² − n and t = 2a + 1, so that the next v is v + t and the next t is t + 2.
    let v0: BigUint = &a0 * &a0 - n;
    let t0: BigUint = (&a0 << 1u32) + 1u32;
    let mut v_low = low_u64(&v0);
    let mut t_low = low_u64(&t0);
    let mut v_res = mod_u64(&limbs(&v0), SQUARE_FILTER_MODULUS);
    let mut t_res = mod_u64(&limbs(&t0), SQUARE_FILTER_MODULUS);
    for k in 0..rounds {
        if may_be_square_mod_64(v_low) && may_be_square_filtered(v_res) {
            let a = &a0 + k;
            let v: BigUint = &a * &a - n;
            if let Some(b) = perfect_square_root(&v) {
                let q = &a - &b;
                if q > BigUint::from(1u32) {
                    return Some(FermatFactors {
                        rounds_used: k + 1,
                        p: a + b,
                        q,
                    });
                }
                // a − b = 1 means n itself is prime (a = (n + 1) / 2): not a factorization.
                return None;
            }
        }
        v_low = v_low.wrapping_add(t_low);
        t_low = t_low.wrapping_add(2);
        v_res = add_mod(v_res, t_res, SQUARE_FILTER_MODULUS);
        t_res = add_mod(t_res, 2, SQUARE_FILTER_MODULUS);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factors_close_products_and_squares() {
        let p = BigUint::from(4_294_967_311u64);
        let q = BigUint::from(4_294_967_291u64);
        let hit = fermat(&(&p * &q), 100);
        assert_eq!(
            hit,
            Some(FermatFactors {
                rounds_used: 1,
                p: p.clone(),
                q: q.clone()
            })
        );
        let sq = fermat(&(&p * &p), 100);
        assert!(sq.is_some_and(|f| f.is_square() && f.p == p && f.rounds_used == 0));
    }

    #[test]
    fn counts_rounds_and_respects_the_limit() {
        // n = a² − b² with a = 2^600 + 1, b = 2^305: a is about 512 above sqrt(n). (n has other
        // factorizations, so Fermat may stop at a closer pair, never later.)
        let a = (BigUint::from(1u32) << 600u32) + 1u32;
        let b = BigUint::from(1u32) << 305u32;
        let n: BigUint = &a * &a - &b * &b;
        let latest = (&a - (isqrt(&n) + 1u32)) + 1u32;
        let Some(found) = fermat(&n, 1000) else {
            panic!("no factorization within 1000 rounds");
        };
        assert_eq!(&found.p * &found.q, n);
        assert!(BigUint::from(found.rounds_used) <= latest);
        assert!(fermat(&n, found.rounds_used - 1).is_none());
        assert_eq!(fermat(&n, found.rounds_used), Some(found));
    }

    #[test]
    fn a_prime_is_not_factored() {
        // (n + 1) / 2 is reachable for tiny primes: a − b = 1 is not a factorization.
        assert_eq!(fermat(&BigUint::from(7u32), 100), None);
        assert_eq!(fermat(&BigUint::from(65537u32), 100_000), None);
    }
}
