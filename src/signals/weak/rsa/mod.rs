//! RSA public-key checks: size and exponent rules (BR §6.1.5, §6.1.6), structural validity,
//! and the factoring checks of badkeys (Fermat, ROCA, small factors, Wiener's small `d`,
//! polynomial-structured moduli), each named by a check id from the design's vocabulary.
//!
//! | check id | confidence | when |
//! |---|---|---|
//! | `rsa_invalid` | confirmed | `n = 1`, `n` even, `n` prime, `e = 1` (anyone can compute the private operation or forge); a zero-chunk modulus (`pattern: zero_chunks`, badkeys `rsapoly` `nautilus` / `completeftp`: polynomial-time factorable) |
//! | `rsa_invalid` | high | `n = 0`, `e = 0`, `e >= n`: malformed (PKCS#1 wants `3 <= e < n`), unusable rather than forgeable |
//! | `rsa_invalid` | low | a low-density modulus matching no known mask (badkeys' untyped `rsapoly`, `pattern: low_density`) |
//! | `rsa_modulus_small` | high | fewer bits than `KeyPolicy::rsa_min_bits` |
//! | `rsa_modulus_not_multiple_of_8` | high | BR §6.1.5 |
//! | `rsa_exponent_bad` | high | `e` even, below 3, or above `2^256 − 1` |
//! | `rsa_exponent_bad` | low | any other `e ≠ 65537` (e.g. 3) |
//! | `rsa_small_factor` | confirmed | a prime up to 65537 divides `n` (badkeys `smallfactors`, subtest `valid` / `corrupt`) |
//! | `fermat` | confirmed | Fermat factors `n` within `KeyPolicy::fermat_rounds` rounds (subtest `square` for `p = q`) |
//! | `roca` | confirmed | the ROCA discrete-log fingerprint (CVE-2017-15361) |
//! | `rsa_small_d` | confirmed | Wiener recovers `d` (only tried when `e` has more than 32 bits) |
//!
//! | `rsa_bias` | low | the share of one bits is far from half (badkeys `rsabias`, subtest `vanity`) |
//! | `rsa_pattern` | medium | sixteen equal bytes in a row (badkeys `pattern`) |
//! | `xz_backdoor` | high | the xz-utils backdoor's payload (CVE-2024-3094; badkeys `xzbackdoor`) |
//!
//! The vocabulary has no id for badkeys' `rsapoly`, so its findings are `rsa_invalid` with a
//! `pattern` field in the evidence. badkeys' `sharedprimes` is the batch GCD module's job
//! (across the keys given, and against the published known-bad primes).
//!
//! Evidence carries sizes and bit lengths only. Factors, `d` and anything else that would
//! reveal the private key never leave this module, in messages or evidence.
//!
//! Once the key is shown broken by its structure (`n` even, `n` prime) or by a small factor,
//! the remaining factoring checks are skipped: they cannot add anything the owner needs.
//!
//! # Cost
//!
//! Built for corpora of healthy keys. A healthy 2048-bit key costs the small-factor pass
//! (about 28,000 word multiplies, see [`small_factor`]), one integer square root plus
//! `fermat_rounds` word-sized Fermat rounds, and a ROCA prefilter over residues already in hand.
//!
//! Testing whether `n` itself is prime takes a modular exponentiation the size of `n` (about
//! 7 ms at 2048 bits), two orders of magnitude more than all the other checks together, and no
//! key generator produces a prime modulus by accident. [`check_rsa`] therefore tests it only
//! for moduli under 2048 bits that are already below the policy minimum (rare, and already
//! flagged); [`check_rsa_thorough`] tests every modulus up to 8192 bits, for single keys such
//! as a newly generated one or an `analyze` of one file.
//!
//! Work is bounded for any input: Fermat and Wiener are skipped above [`MAX_FACTORING_BITS`],
//! with a low finding saying so, and primality tests above 8192 bits; the small-factor pass
//! and ROCA are linear in the modulus length.

pub(crate) mod arith;
mod fermat;
mod oddities;
mod pattern;
mod roca;
mod small_factor;
mod wiener;

#[cfg(test)]
mod tests;

use num_bigint::BigUint;
use serde_json::json;

use super::KeyPolicy;
use crate::signals::Finding;

/// Moduli longer than this skip Fermat and Wiener (their cost grows with the square of the
/// length).
pub const MAX_FACTORING_BITS: u64 = 16_384;
/// [`check_rsa`] tests `n` for primality only up to this size (and only below the policy
/// minimum).
const PRIME_TEST_MAX_BITS: u64 = 2047;
/// [`check_rsa_thorough`] tests `n` for primality up to this size (a composite costs one
/// modular exponentiation, about 0.4 s at 8192 bits with num-bigint).
const THOROUGH_PRIME_TEST_MAX_BITS: u64 = 8192;
/// Miller–Rabin rounds before calling `n` prime: a composite passes with probability below
/// 2^-16 even if chosen against the bases, far less for any real key.
const MODULUS_PRIME_ROUNDS: u32 = 8;
/// Rounds for labelling a small factor's cofactor `valid` (prime) or `corrupt`: only a
/// label (the key is factored either way), and a composite cofactor of a corrupted modulus
/// fails the first round all but always; each round is a modular exponentiation the size of
/// the modulus, the costliest thing `analyze` does to a key.
const COFACTOR_PRIME_ROUNDS: u32 = 2;
/// Cofactors longer than this are not tested (the label is then absent).
const COFACTOR_TEST_MAX_BITS: u64 = 8192;
/// The exponent the BRs recommend and everyone uses.
const F4: u32 = 65537;

/// Every RSA check for a public key given as its modulus `n` and exponent `e` (big-endian
/// bytes; leading zeros are ignored). Never panics; work is bounded for any input.
pub fn check_rsa(n: &[u8], e: &[u8], policy: &KeyPolicy) -> Vec<Finding> {
    check(n, e, policy, false)
}

/// [`check_rsa`], plus a primality test of the modulus at any size up to 8192 bits
/// (milliseconds per key rather than microseconds): for single keys, such as a newly
/// generated one or an `analyze` of one file.
pub fn check_rsa_thorough(n: &[u8], e: &[u8], policy: &KeyPolicy) -> Vec<Finding> {
    check(n, e, policy, true)
}

fn check(n_bytes: &[u8], e: &[u8], policy: &KeyPolicy, thorough: bool) -> Vec<Finding> {
    let n = BigUint::from_bytes_be(n_bytes);
    let e = BigUint::from_bytes_be(e);
    let bits = n.bits();
    let mut findings = Vec::new();

    exponent_findings(&n, &e, &mut findings);
    let one = BigUint::from(1u32);
    if n <= one {
        findings.push(if n == one {
            Finding::compromised(
                "rsa_invalid",
                "RSA modulus is 1: every value is congruent to every other, so anyone can \
                 produce a valid signature",
                json!({ "reason": "modulus_one", "bits": bits }),
            )
        } else {
            Finding::violation(
                "rsa_invalid",
                "RSA modulus is zero: this is not a usable key",
                json!({ "reason": "modulus_zero", "bits": bits }),
            )
        });
        return findings;
    }
    size_findings(bits, policy, &mut findings);
    // On the modulus as given, without its leading zeros.
    let n_bytes = &n_bytes[n_bytes
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(n_bytes.len())..];
    findings.extend(oddities::pattern(n_bytes));
    findings.extend(oddities::xz_backdoor(n_bytes));
    if !n.bit(0) {
        findings.push(Finding::compromised(
            "rsa_invalid",
            "RSA modulus is even: 2 is one of its factors, so the key is factored",
            json!({ "reason": "modulus_even", "bits": bits }),
        ));
        return findings;
    }

    let limbs = arith::limbs(&n);
    let scan = small_factor::scan(&limbs, roca::MAX_PRIME);
    let divisors = &scan.divisors;
    if !divisors.is_empty() {
        let g: BigUint = divisors.iter().fold(one.clone(), |acc, &p| acc * p);
        if divisors.len() == 1 && g == n {
            findings.push(prime_modulus(bits));
        } else {
            findings.push(small_factor_finding(&n, &g, divisors.len()));
        }
        return findings;
    }

    let mut factored = false;
    if bits <= MAX_FACTORING_BITS {
        if let Some(found) = fermat::fermat(&n, u64::from(policy.fermat_rounds)) {
            findings.push(fermat_finding(&found, policy.fermat_rounds));
            factored = true;
        }
    } else {
        findings.push(skipped("fermat", "Fermat", bits));
    }

    if roca::is_roca(&n, &scan) {
        findings.push(Finding::compromised(
            "roca",
            "RSA modulus has the ROCA fingerprint (CVE-2017-15361): it was generated by the \
             vulnerable Infineon RSALib and can be factored",
            json!({
                "cve": "CVE-2017-15361",
                "test": "discrete_log",
                "bits": bits,
            }),
        ));
        factored = true;
    }

    if e.bits() > 32 {
        if bits <= MAX_FACTORING_BITS {
            if let Some(found) = wiener::wiener(&n, &e) {
                findings.push(Finding::compromised(
                    "rsa_small_d",
                    format!(
                        "RSA private exponent has only {} bits and is recovered from the public \
                         key by Wiener's attack",
                        found.d.bits()
                    ),
                    json!({
                        "d_bits": found.d.bits(),
                        "exponent_bits": e.bits(),
                        "bits": bits,
                    }),
                ));
                factored = true;
            }
        } else {
            findings.push(skipped("rsa_small_d", "Wiener small-d", bits));
        }
    }

    if let Some(found) = pattern::rsapoly(&n, &limbs) {
        findings.push(pattern_finding(found));
    }
    findings.extend(oddities::bias(&n));

    let test_primality = if thorough {
        bits <= THOROUGH_PRIME_TEST_MAX_BITS
    } else {
        bits <= PRIME_TEST_MAX_BITS && bits < min_bits(policy)
    };
    if !factored && test_primality && arith::is_probable_prime(&n, MODULUS_PRIME_ROUNDS) {
        findings.push(prime_modulus(bits));
    }
    findings
}

/// The exponent as decimal text when it fits a word, else `None` (its bit length says enough).
fn exponent_text(e: &BigUint) -> Option<String> {
    u64::try_from(e).ok().map(|v| v.to_string())
}

fn exponent_findings(n: &BigUint, e: &BigUint, out: &mut Vec<Finding>) {
    let e_bits = e.bits();
    let text = exponent_text(e);
    let shown = text.clone().unwrap_or_else(|| format!("({e_bits} bits)"));
    if *e == BigUint::ZERO {
        out.push(Finding::violation(
            "rsa_invalid",
            "RSA public exponent is 0: the key cannot verify anything",
            json!({ "reason": "exponent_zero" }),
        ));
        return;
    }
    if *e == BigUint::from(1u32) {
        out.push(Finding::compromised(
            "rsa_invalid",
            "RSA public exponent is 1: a signature is the message itself, so anyone can forge one",
            json!({ "reason": "exponent_one" }),
        ));
        return;
    }
    if *n > BigUint::from(1u32) && e >= n {
        out.push(Finding::violation(
            "rsa_invalid",
            "RSA public exponent is not below the modulus (PKCS#1 requires e < n)",
            json!({
                "reason": "exponent_not_below_modulus",
                "exponent_bits": e_bits,
                "bits": n.bits(),
            }),
        ));
    }
    let mut reasons = Vec::new();
    if !e.bit(0) {
        reasons.push("even");
    }
    if *e < BigUint::from(3u32) {
        reasons.push("below_3");
    }
    if e_bits > 256 {
        reasons.push("above_2^256-1");
    }
    if reasons == ["above_2^256-1"] {
        // A Baseline Requirements "SHOULD": the key works, so a warning, whatever the trust.
        out.push(Finding::warning(
            "rsa_exponent_bad",
            format!(
                "RSA public exponent {shown} is above 2^256-1, outside the range BR §6.1.6 says it should be in (2^16+1 to 2^256-1)"
            ),
            json!({ "exponent": text, "exponent_bits": e_bits, "reasons": reasons }),
        ));
    } else if !reasons.is_empty() {
        out.push(Finding::violation(
            "rsa_exponent_bad",
            format!(
                "RSA public exponent {shown} is {}: BR §6.1.6 requires an odd exponent of at \
                 least 3, in the range 2^16+1 to 2^256-1",
                reasons.join(", ").replace('_', " ")
            ),
            json!({ "exponent": text, "exponent_bits": e_bits, "reasons": reasons }),
        ));
    } else if *e != BigUint::from(F4) {
        let reason = if *e == BigUint::from(3u32) {
            "exponent_3"
        } else {
            "exponent_not_65537"
        };
        out.push(Finding::warning(
            "rsa_exponent_bad",
            format!("RSA public exponent {shown} is not 65537, the value BR §6.1.6 recommends"),
            json!({ "exponent": text, "exponent_bits": e_bits, "reason": reason }),
        ));
    }
}

/// The policy minimum as a bit count comparable with `BigUint::bits`.
fn min_bits(policy: &KeyPolicy) -> u64 {
    u64::try_from(policy.rsa_min_bits).unwrap_or(u64::MAX)
}

fn size_findings(bits: u64, policy: &KeyPolicy, out: &mut Vec<Finding>) {
    if bits < min_bits(policy) {
        out.push(Finding::violation(
            "rsa_modulus_small",
            format!(
                "RSA modulus has {bits} bits, below the {}-bit minimum",
                policy.rsa_min_bits
            ),
            json!({ "bits": bits, "minimum": policy.rsa_min_bits }),
        ));
    }
    if !bits.is_multiple_of(8) {
        out.push(Finding::violation(
            "rsa_modulus_not_multiple_of_8",
            format!("RSA modulus has {bits} bits, not a multiple of 8 (BR §6.1.5)"),
            json!({ "bits": bits }),
        ));
    }
}

fn prime_modulus(bits: u64) -> Finding {
    Finding::compromised(
        "rsa_invalid",
        "RSA modulus is prime: φ(n) = n − 1 is public, so anyone can compute the private exponent",
        json!({ "reason": "modulus_prime", "bits": bits }),
    )
}

fn small_factor_finding(n: &BigUint, g: &BigUint, count: usize) -> Finding {
    let cofactor = n / g;
    let cofactor_prime = (cofactor.bits() <= COFACTOR_TEST_MAX_BITS)
        .then(|| arith::is_probable_prime(&cofactor, COFACTOR_PRIME_ROUNDS));
    // badkeys: `valid` when both the gcd and the cofactor are prime, else `corrupt`.
    let subtest = match (count == 1, cofactor_prime) {
        (true, Some(true)) => Some("valid"),
        (false, _) | (_, Some(false)) => Some("corrupt"),
        (true, None) => None,
    };
    Finding::compromised(
        "rsa_small_factor",
        format!(
            "RSA modulus is divisible by {} up to 65537, so the key is factored{}",
            if count == 1 {
                "a prime".to_string()
            } else {
                format!("{count} distinct primes")
            },
            if subtest == Some("corrupt") {
                " (the key looks corrupted rather than generated weak)"
            } else {
                ""
            }
        ),
        json!({
            "factor_bits": g.bits(),
            "small_prime_factors": count,
            "cofactor_bits": cofactor.bits(),
            "cofactor_prime": cofactor_prime,
            "subtest": subtest,
            "bits": n.bits(),
        }),
    )
}

fn fermat_finding(found: &fermat::FermatFactors, rounds: u32) -> Finding {
    let difference = &found.p - &found.q;
    let message = if found.is_square() {
        "RSA modulus is a perfect square (p = q): the key is factored".to_string()
    } else {
        format!(
            "RSA modulus is factored by Fermat's method in {} round(s): its primes differ by a \
             {}-bit number",
            found.rounds_used,
            difference.bits()
        )
    };
    Finding::compromised(
        "fermat",
        message,
        json!({
            "rounds_used": found.rounds_used,
            "rounds_limit": rounds,
            "p_bits": found.p.bits(),
            "q_bits": found.q.bits(),
            "difference_bits": difference.bits(),
            "subtest": found.is_square().then_some("square"),
        }),
    )
}

fn pattern_finding(found: pattern::PolyPattern) -> Finding {
    match found.variant.name() {
        Some(variant) => Finding::compromised(
            "rsa_invalid",
            format!(
                "RSA modulus has the {variant} zero-chunk pattern of polynomial-structured \
                 primes (badkeys rsapoly): it factors in polynomial time"
            ),
            json!({
                "pattern": "zero_chunks",
                "variant": variant,
                "bit_percent": found.bit_percent,
            }),
        ),
        None => Finding::warning(
            "rsa_invalid",
            format!(
                "RSA modulus has only {}% of its bits set, in both halves: the mark of \
                 polynomial-structured primes (badkeys rsapoly, unidentified variant)",
                found.bit_percent
            ),
            json!({
                "pattern": "low_density",
                "variant": null,
                "bit_percent": found.bit_percent,
            }),
        ),
    }
}

fn skipped(check: &'static str, name: &str, bits: u64) -> Finding {
    Finding::warning(
        check,
        format!(
            "{name} check skipped: the modulus has {bits} bits, above the {MAX_FACTORING_BITS}-bit \
             limit for factoring checks"
        ),
        json!({ "skipped": true, "bits": bits, "limit": MAX_FACTORING_BITS }),
    )
}
