//! Wiener's attack (badkeys' `smalld`, after orisano/owiener): a private exponent `d` below
//! about `n^(1/4)` shows up as the denominator of a convergent `k/d` of `e/n`, because
//! `e·d − k·φ(n) = 1` makes `e/n` a close approximation of `k/d`.
//!
//! For each candidate `k/d`: `φ = e·d div k`, `s = n − φ + 1` (which is `p + q` when the
//! candidate is right), and `(s/2)² − n` must be the square `((p − q)/2)²`. Candidates are the
//! convergents and, at even indices, the mediants badkeys tests in their place (a superset of
//! badkeys). The expansion stops once the denominator passes `n^(3/4)`: a convergent `k/d`
//! satisfies `|e/n − k/d| < 1/d²`, and for the true `k/d` the error is about
//! `e·(p + q)/(n·φ)`, so with `e > 2^32` no `d` beyond `n^(3/4)` can appear.
//!
//! Only meaningful when `e` has more than 32 bits: with a small `e`, `d > φ(n)/e` is large.

use num_bigint::BigUint;

use super::arith::perfect_square_root;

/// A private exponent recovered from the public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SmallD {
    /// The private exponent.
    pub d: BigUint,
    /// The larger prime.
    pub p: BigUint,
    /// The smaller prime.
    pub q: BigUint,
}

/// Tests one candidate `k/d`.
fn try_candidate(n: &BigUint, e: &BigUint, k: &BigUint, d: &BigUint) -> Option<SmallD> {
    if *k == BigUint::ZERO || *d == BigUint::ZERO {
        return None;
    }
    let ed = e * d;
    let phi = &ed / k;
    let n_plus_1 = n + 1u32;
    if phi >= n_plus_1 {
        return None;
    }
    let s = n_plus_1 - &phi;
    if s.bit(0) {
        return None;
    }
    let half = s >> 1u32;
    let half_sq = &half * &half;
    if half_sq < *n {
        return None;
    }
    let root = perfect_square_root(&(half_sq - n))?;
    let q = &half - &root;
    if q <= BigUint::from(1u32) {
        return None;
    }
    let p = half + root;
    if &p * &q != *n {
        return None;
    }
    // e·d = k·φ + g; g is 1 when d is the exponent modulo φ(n), larger when it is modulo a
    // divisor of φ(n) such as λ(n) (badkeys reports d / g).
    let g = ed - phi * k;
    let d = if g > BigUint::from(1u32) {
        d / g
    } else {
        d.clone()
    };
    Some(SmallD { d, p, q })
}

/// Runs the continued-fraction expansion of `e/n`. Callers bound the size of `n`.
pub(super) fn wiener(n: &BigUint, e: &BigUint) -> Option<SmallD> {
    if e.bits() <= 32 || e >= n {
        return None;
    }
    let max_d_bits = n.bits() * 3 / 4 + 2;
    // Continued fraction of x/y = e/n, with convergents h/k.
    let (mut x, mut y) = (e.clone(), n.clone());
    // (h_prev, h) and (k_prev, k) start as (h₋₂, h₋₁) = (0, 1) and (k₋₂, k₋₁) = (1, 0); after
    // each step (h_prev, k_prev) is the previous convergent, which badkeys seeds with 1/0 too.
    let (mut h_prev, mut h) = (BigUint::ZERO, BigUint::from(1u32));
    let (mut k_prev, mut k) = (BigUint::from(1u32), BigUint::ZERO);
    let mut index = 0u64;
    while y != BigUint::ZERO {
        let a = &x / &y;
        let r = &x - &a * &y;
        x = y;
        y = r;
        // h_i = a·h_{i-1} + h_{i-2}; here (h, h_prev) hold (h_{i-1}, h_{i-2}).
        let h_next = &a * &h + &h_prev;
        let k_next = &a * &k + &k_prev;
        h_prev = h;
        k_prev = k;
        h = h_next;
        k = k_next;
        if k.bits() > max_d_bits {
            break;
        }
        if let Some(found) = try_candidate(n, e, &h, &k) {
            return Some(found);
        }
        if index.is_multiple_of(2) {
            let mediant_k = &h + &h_prev;
            let mediant_d = &k + &k_prev;
            if let Some(found) = try_candidate(n, e, &mediant_k, &mediant_d) {
                return Some(found);
            }
        }
        index += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_a_small_d() {
        // Two 64-bit primes and d = 101 (< n^(1/4)/3).
        let p = BigUint::from(18_446_744_073_709_551_557u64);
        let q = BigUint::from(18_446_744_073_709_551_533u64);
        let n = &p * &q;
        let phi = (&p - 1u32) * (&q - 1u32);
        let d = BigUint::from(101u32);
        let Some(e) = d.modinv(&phi) else {
            panic!("101 is invertible modulo φ");
        };
        let found = wiener(&n, &e);
        assert_eq!(found, Some(SmallD { d, p, q }));
    }

    #[test]
    fn ignores_small_exponents_and_ordinary_keys() {
        let p = BigUint::from(18_446_744_073_709_551_557u64);
        let q = BigUint::from(18_446_744_073_709_551_533u64);
        let n = &p * &q;
        assert_eq!(wiener(&n, &BigUint::from(65537u32)), None);
        // A large e whose d is large.
        let phi = (&p - 1u32) * (&q - 1u32);
        let d: BigUint = (&phi >> 1u32) + 1u32;
        if let Some(e) = d.modinv(&phi) {
            assert_eq!(wiener(&n, &e), None);
        }
        assert_eq!(wiener(&n, &(&n + 1u32)), None);
    }
}
