//! Trial division of the modulus by every odd prime up to 65537: badkeys' `smallfactors`
//! (`gcd(n, ∏ p ≤ 65537) ≠ 1`), computed without the big gcd.
//!
//! The 6542 odd primes are packed greedily into about 1,660 moduli `m < 2^63` (products of 3
//! to 15 consecutive primes). `n` is cut into 63-bit limbs `y`, and a table holds
//! `x_i = 2^(63·i + 128) mod m`, so `Σ x_i·y_i ≡ 2^128·n (mod m)`, which a two-word Montgomery
//! reduction turns into a word-sized value `≡ n (mod m)`. Whether a prime `p | m` divides `n` is
//! then one multiply and compare (`x · p⁻¹ mod 2^64 <= (2^64 − 1)/p`).
//!
//! The dot product uses Winograd's pairing, `Σ x_i·y_i = Σ_k (x_2k + y_2k+1)·(x_2k+1 + y_2k)
//! − Σ_k x_2k·x_2k+1 − Σ_k y_2k·y_2k+1`: the first correction depends only on the table row
//! (stored, already reduced), the second only on `n` (computed once per key), so each
//! modulus costs one 64×64→128-bit multiply per *two* limbs. The 63-bit limbs and moduli keep
//! the pair sums within a word. Two moduli are reduced per pass over the limbs.
//!
//! That is about 28,000 multiplies for a 2048-bit modulus — this is the floor's neighbourhood
//! for reducing 2 kbit by 94 kbit of moduli with schoolbook arithmetic (a remainder tree or a
//! gcd with the primorial costs as much or more without sub-quadratic multiplication).
//!
//! Moduli longer than one 68-limb block (4284 bits) are reduced block by block from the top,
//! Horner's rule folded into the same dot product, so any length costs time linear in it.

use std::sync::OnceLock;

use super::arith::small_primes;

/// 63-bit limbs per block: a 4096-bit modulus is one block.
const BLOCK: usize = 68;
const PAIRS: usize = BLOCK / 2;
/// Table words per modulus: `BLOCK` powers, the block-to-block carry power, then for each
/// pair count `P` in `1..=PAIRS` the correction `m − (Σ_{k<P} x_2k·x_2k+1)·2^-128 mod m`.
const ROW: usize = BLOCK + 1 + PAIRS;
const LIMB_BITS: u32 = 63;
const LIMB_MASK: u64 = (1 << LIMB_BITS) - 1;
/// Moduli stay below this so that `2m + 64 < 2^64` (the reduction needs no final subtraction).
const MODULUS_BOUND: u128 = (1 << 63) - 64;

/// A word-sized product of consecutive small odd primes.
struct PackedModulus {
    m: u64,
    /// `-m⁻¹ mod 2^64`, for Montgomery reduction.
    neg_inv: u64,
    /// The primes of `m`, as a range of [`Table::primes`].
    first_prime: u32,
    end_prime: u32,
}

/// Divisibility test for one odd prime: `p | x ⟺ x · inv mod 2^64 <= limit`.
struct PrimeTest {
    p: u32,
    inv: u64,
    limit: u64,
}

struct Table {
    moduli: Vec<PackedModulus>,
    rows: Vec<u64>,
    primes: Vec<PrimeTest>,
}

impl Table {
    fn row(&self, j: usize) -> &[u64] {
        self.rows.get(j * ROW..(j + 1) * ROW).unwrap_or_default()
    }
}

/// `m⁻¹ mod 2^64` for odd `m` (Newton: each step doubles the correct low bits).
fn inverse_mod_2_64(m: u64) -> u64 {
    // m·m ≡ 1 (mod 8) for odd m: three correct bits to start.
    let mut x = m;
    for _ in 0..5 {
        x = x.wrapping_mul(2u64.wrapping_sub(m.wrapping_mul(x)));
    }
    x
}

/// Montgomery reduction of `hi·2^128 + lo` by `2^128`: a value `≡ (hi·2^128 + lo)·2^-128
/// (mod m)` below `2m + 64` (so below `2^64`), for `m < 2^63 − 64` and `hi < 2^63 + 64`.
#[inline(always)]
fn redc2(lo: u128, hi: u64, m: u64, neg_inv: u64) -> u64 {
    let m = u128::from(m);
    // Step 1: add t0·m to clear the low word, then shift it out. lo0 + (t0·m mod 2^64) is
    // 0 mod 2^64, so it carries exactly when lo0 != 0.
    let lo0 = lo as u64;
    let t0 = lo0.wrapping_mul(neg_inv);
    let p0 = u128::from(t0) * m;
    let t1 = (u128::from(hi) << 64) + (lo >> 64) + (p0 >> 64) + u128::from(lo0 != 0);
    // Step 2: the same on the new low word. t1 >> 64 <= hi + 2 and p1 >> 64 < m.
    let lo1 = t1 as u64;
    let t = lo1.wrapping_mul(neg_inv);
    let p1 = u128::from(t) * m;
    ((t1 >> 64) + (p1 >> 64) + u128::from(lo1 != 0)) as u64
}

/// Adds a 128-bit product into a three-word accumulator `(lo, hi)`.
#[inline(always)]
fn accumulate(lo: &mut u128, hi: &mut u64, product: u128) {
    let (sum, carry) = lo.overflowing_add(product);
    *lo = sum;
    *hi += u64::from(carry);
}

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(build_table)
}

fn build_table() -> Table {
    let odd_primes: Vec<u32> = small_primes().iter().copied().filter(|&p| p != 2).collect();
    let mut packed = Vec::new();
    let mut start = 0usize;
    let mut product: u128 = 1;
    for (i, &p) in odd_primes.iter().enumerate() {
        if product * u128::from(p) >= MODULUS_BOUND {
            packed.push((product as u64, start, i));
            start = i;
            product = 1;
        }
        product *= u128::from(p);
    }
    packed.push((product as u64, start, odd_primes.len()));

    let mut moduli = Vec::with_capacity(packed.len());
    let mut rows = Vec::with_capacity(packed.len() * ROW);
    for &(m, first, end) in &packed {
        let neg_inv = inverse_mod_2_64(m).wrapping_neg();
        let m128 = u128::from(m);
        // 2^128 mod m, then successive multiplications by 2^63.
        let mut r = (((1u128 << 64) % m128) << 64) % m128;
        let row_start = rows.len();
        for _ in 0..=BLOCK {
            rows.push(r as u64);
            r = (r << LIMB_BITS) % m128;
        }
        let (mut lo, mut hi) = (0u128, 0u64);
        for k in 0..PAIRS {
            let x0 = u128::from(rows[row_start + 2 * k]);
            let x1 = u128::from(rows[row_start + 2 * k + 1]);
            accumulate(&mut lo, &mut hi, x0 * x1);
            rows.push(m - redc2(lo, hi, m, neg_inv) % m);
        }
        moduli.push(PackedModulus {
            m,
            neg_inv,
            first_prime: first as u32,
            end_prime: end as u32,
        });
    }
    let primes = odd_primes
        .iter()
        .map(|&p| PrimeTest {
            p,
            inv: inverse_mod_2_64(u64::from(p)),
            limit: u64::MAX / u64::from(p),
        })
        .collect();
    Table {
        moduli,
        rows,
        primes,
    }
}

/// `n` cut for the dot product: 63-bit limbs in blocks, most significant block first, each of
/// even length, with its `Σ y_2k·y_2k+1`.
struct Prepared {
    blocks: Vec<(Vec<u64>, u128, u64)>,
}

impl Prepared {
    fn new(limbs: &[u64]) -> Self {
        let mut limbs63 = Vec::with_capacity(limbs.len() * 64 / 63 + 2);
        let mut acc: u128 = 0;
        let mut have = 0u32;
        for &word in limbs {
            acc |= u128::from(word) << have;
            have += 64;
            while have >= LIMB_BITS {
                limbs63.push(acc as u64 & LIMB_MASK);
                acc >>= LIMB_BITS;
                have -= LIMB_BITS;
            }
        }
        if have > 0 {
            limbs63.push(acc as u64);
        }
        while limbs63.last() == Some(&0) {
            limbs63.pop();
        }
        let blocks = limbs63
            .chunks(BLOCK)
            .rev()
            .map(|block| {
                let mut block = block.to_vec();
                if block.len() % 2 == 1 {
                    block.push(0);
                }
                let (mut lo, mut hi) = (0u128, 0u64);
                for pair in block.chunks_exact(2) {
                    accumulate(&mut lo, &mut hi, u128::from(pair[0]) * u128::from(pair[1]));
                }
                (block, lo, hi)
            })
            .collect();
        Self { blocks }
    }

    /// Values `≡ n` modulo the moduli of rows `a` and `b`, each below `2^64`.
    #[inline(never)]
    fn residues(&self, a: (&[u64], u64, u64), b: (&[u64], u64, u64)) -> [u64; 2] {
        let (row_a, m_a, inv_a) = a;
        let (row_b, m_b, inv_b) = b;
        let (Some(&carry_a), Some(&carry_b)) = (row_a.get(BLOCK), row_b.get(BLOCK)) else {
            return [0, 0];
        };
        let mut prev = [0u64; 2];
        for (block, y_lo, y_hi) in &self.blocks {
            let pairs = block.len() / 2;
            let (mut lo_a, mut hi_a) = (u128::from(prev[0]) * u128::from(carry_a), 0u64);
            let (mut lo_b, mut hi_b) = (u128::from(prev[1]) * u128::from(carry_b), 0u64);
            let limb_pairs = block.chunks_exact(2);
            let x_pairs = row_a.chunks_exact(2).zip(row_b.chunks_exact(2));
            for (y, (xa, xb)) in limb_pairs.zip(x_pairs) {
                // (x_2k + y_2k+1)·(x_2k+1 + y_2k): every term below 2^63, sums below 2^64.
                let pa = u128::from(xa[0] + y[1]) * u128::from(xa[1] + y[0]);
                let pb = u128::from(xb[0] + y[1]) * u128::from(xb[1] + y[0]);
                accumulate(&mut lo_a, &mut hi_a, pa);
                accumulate(&mut lo_b, &mut hi_b, pb);
            }
            // Subtract Σ y_2k·y_2k+1 (the sum stays non-negative: it equals Σ x·y plus the
            // row correction plus the carry term), add the row's reduced correction.
            let fix_a = row_a.get(BLOCK + pairs).copied().unwrap_or(0);
            let fix_b = row_b.get(BLOCK + pairs).copied().unwrap_or(0);
            let (lo_a, borrow_a) = lo_a.overflowing_sub(*y_lo);
            let hi_a = hi_a - y_hi - u64::from(borrow_a) + fix_a;
            let (lo_b, borrow_b) = lo_b.overflowing_sub(*y_lo);
            let hi_b = hi_b - y_hi - u64::from(borrow_b) + fix_b;
            prev = [redc2(lo_a, hi_a, m_a, inv_a), redc2(lo_b, hi_b, m_b, inv_b)];
        }
        prev
    }
}

/// The small-prime facts about one modulus.
pub(super) struct Scan {
    /// The odd primes up to 65537 dividing `n`, ascending. (2 is left to the caller: an even
    /// modulus is reported on its own.)
    pub divisors: Vec<u32>,
    /// `(m, x ≡ n mod m)` for the packed moduli holding the primes up to `low_limit`.
    low: Vec<(u64, u64)>,
}

impl Scan {
    /// `n mod p` for an odd prime `p` up to the `low_limit` given to [`scan`].
    pub fn residue(&self, p: u32) -> Option<u64> {
        let p = u64::from(p);
        self.low
            .iter()
            .find(|(m, _)| p > 1 && m % p == 0)
            .map(|(_, x)| x % p)
    }
}

/// Divides `n` (little-endian 64-bit limbs) by every odd prime up to 65537, keeping the exact
/// residues by the primes up to `low_limit` (for ROCA's prefilter).
pub(super) fn scan(limbs: &[u64], low_limit: u32) -> Scan {
    let table = table();
    let prepared = Prepared::new(limbs);
    let mut divisors = Vec::new();
    let mut low = Vec::new();
    let count = table.moduli.len();
    for j in (0..count).step_by(2) {
        // An odd count reduces the last modulus twice: cheaper than a second code path.
        let k = (j + 1).min(count - 1);
        let (ma, mb) = (&table.moduli[j], &table.moduli[k]);
        let xs = prepared.residues(
            (table.row(j), ma.m, ma.neg_inv),
            (table.row(k), mb.m, mb.neg_inv),
        );
        for (modulus, x) in [(ma, xs[0]), (mb, xs[1])].into_iter().take(k + 1 - j) {
            let range = modulus.first_prime as usize..modulus.end_prime as usize;
            let tests = table.primes.get(range).unwrap_or_default();
            if tests.first().is_some_and(|t| t.p <= low_limit) {
                low.push((modulus.m, x));
            }
            for test in tests {
                if x.wrapping_mul(test.inv) <= test.limit {
                    divisors.push(test.p);
                }
            }
        }
    }
    Scan { divisors, low }
}

#[cfg(test)]
mod tests {
    use num_bigint::BigUint;

    use super::*;

    fn from_limbs(limbs: &[u64]) -> BigUint {
        BigUint::from_slice(
            &limbs
                .iter()
                .flat_map(|d| [*d as u32, (*d >> 32) as u32])
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn packing_covers_every_odd_prime_once() {
        let t = table();
        assert_eq!(t.primes.len(), 6542);
        let mut next = 0u32;
        for m in &t.moduli {
            assert_eq!(m.first_prime, next);
            assert!(m.end_prime > m.first_prime);
            let product: u128 = t.primes[m.first_prime as usize..m.end_prime as usize]
                .iter()
                .map(|p| u128::from(p.p))
                .product();
            assert_eq!(product, u128::from(m.m));
            assert!(u128::from(m.m) < MODULUS_BOUND);
            assert_eq!(m.m.wrapping_mul(m.neg_inv), u64::MAX, "-m⁻¹·m ≡ -1");
            next = m.end_prime;
        }
        assert_eq!(next as usize, t.primes.len());
        assert!(t.moduli.len() < 1700, "{} moduli", t.moduli.len());
    }

    #[test]
    fn residues_match_big_integer_remainders_for_every_length() {
        let t = table();
        let mut state = 0x1234_5678_9abc_def0u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        // Lengths around one and two 68×63-bit blocks (67 and 135 words).
        for len in [
            0usize, 1, 2, 31, 32, 33, 48, 63, 64, 66, 67, 68, 69, 128, 134, 135, 136, 300,
        ] {
            let mut limbs: Vec<u64> = (0..len).map(|_| next()).collect();
            if len > 3 {
                // Saturated words exercise the carry bounds.
                limbs[1] = u64::MAX;
                limbs[2] = u64::MAX;
                limbs[len - 1] = u64::MAX;
            }
            let n = from_limbs(&limbs);
            let prepared = Prepared::new(&limbs);
            let last = t.moduli.len() - 1;
            for j in (0..last).step_by(61).chain([last - 1]) {
                let (a, b) = (&t.moduli[j], &t.moduli[j + 1]);
                let got =
                    prepared.residues((t.row(j), a.m, a.neg_inv), (t.row(j + 1), b.m, b.neg_inv));
                assert_eq!(
                    BigUint::from(got[0]) % a.m,
                    &n % a.m,
                    "len {len}, modulus {j}"
                );
                assert_eq!(
                    BigUint::from(got[1]) % b.m,
                    &n % b.m,
                    "len {len}, modulus {}",
                    j + 1
                );
            }
        }
    }

    #[test]
    fn finds_each_small_prime_and_no_other() {
        let primes = small_primes();
        // 2^2047 + 1 has small factors (3, 179, ...): compare with direct remainders.
        let base = (BigUint::from(1u32) << 2047u32) + 1u32;
        let want: Vec<u32> = primes
            .iter()
            .copied()
            .filter(|&p| p != 2 && (&base % p) == BigUint::ZERO)
            .collect();
        assert!(!want.is_empty());
        assert_eq!(scan(&base.to_u64_digits(), 0).divisors, want);
        let q = BigUint::from(65539u32) * BigUint::from(4_294_967_291u64);
        for &p in &[3u32, 5, 7, 53, 59, 167, 173, 65519, 65521, 65537] {
            let n = &q * p;
            assert_eq!(scan(&n.to_u64_digits(), 0).divisors, vec![p]);
        }
        // 65539 is the first prime above the limit: not reported.
        assert!(scan(&q.to_u64_digits(), 0).divisors.is_empty());
        assert!(
            scan(&[], 0).divisors.len() == primes.len() - 1,
            "0 is divisible by all"
        );
    }

    #[test]
    fn low_residues_are_exact() {
        let n = (BigUint::from(1u32) << 3000u32) + 12345u32;
        let s = scan(&n.to_u64_digits(), 167);
        for p in [3u32, 5, 7, 11, 53, 59, 61, 101, 163, 167] {
            assert_eq!(
                BigUint::from(s.residue(p).unwrap_or(u64::MAX)),
                &n % p,
                "p = {p}"
            );
        }
        assert_eq!(s.residue(2), None);
        assert_eq!(s.residue(65537), None);
    }
}
