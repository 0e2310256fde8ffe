//! Moduli that factor by no known method but that no honest key generator makes: the
//! badkeys warnings and extras, each under its own check id.
//!
//! * `rsa_bias` (low): the share of one bits in the modulus is far from one half (outside
//!   50 ± 10 percent above 2000 bits, ± 12 above 1000, ± 17 below), which random primes
//!   essentially never give. When the lower half of the modulus is balanced all the same,
//!   the top was chosen on purpose: a "vanity" modulus (subtest `vanity`). Moduli with a
//!   small factor, and sparse ones in both halves (the zero-chunk pattern's domain), are left
//!   to those checks. This is badkeys' `rsabias`.
//! * `rsa_pattern` (medium): sixteen equal bytes in a row in the modulus (badkeys'
//!   `pattern`), the mark of a hand-made or corrupted modulus.
//! * `xz_backdoor` (high): the modulus carries the xz-utils backdoor's command payload
//!   (CVE-2024-3094): with the modulus as its DER INTEGER bytes (a leading zero when the top
//!   bit is set), `a · b + c` taken modulo 2^64 is at most 3, where `a` and `b` are the first
//!   two little-endian 32-bit words and `c` the next 64-bit one. The backdoor accepted only
//!   such moduli, so a certificate carrying one was made to deliver a command.

use num_bigint::BigUint;
use serde_json::json;

use crate::signals::{Confidence, Finding};

/// Set bits in percent of `bits`, rounded down.
fn percent(set: u64, bits: u64) -> u64 {
    (set * 100).checked_div(bits).unwrap_or(0)
}

/// `rsa_bias`, for a modulus with no factor up to 65537 (the caller checks that).
pub(super) fn bias(n: &BigUint) -> Option<Finding> {
    let bits = n.bits();
    let pct = percent(n.count_ones(), bits);
    let spread = match bits {
        b if b > 2000 => 10,
        b if b > 1000 => 12,
        _ => 17,
    };
    let balanced = |p: u64| p > 50 - spread && p <= 50 + spread;
    if balanced(pct) {
        return None;
    }
    // The lower half, `n mod 2^(bits/2)`, counted on the words themselves.
    let half = bits / 2;
    let lower_set: u64 = n
        .iter_u64_digits()
        .enumerate()
        .map(|(i, w)| {
            let start = i as u64 * 64;
            if start + 64 <= half {
                u64::from(w.count_ones())
            } else if start < half {
                u64::from((w & ((1u64 << (half - start)) - 1)).count_ones())
            } else {
                0
            }
        })
        .sum();
    let lower_pct = percent(lower_set, half);
    if pct < 40 && lower_pct < 40 {
        return None;
    }
    let vanity = balanced(lower_pct);
    Some(Finding::warning(
        "rsa_bias",
        if vanity {
            format!(
                "RSA modulus has {pct}% of its bits set, but its lower half is balanced: a \
                 \"vanity\" modulus whose top was chosen rather than random"
            )
        } else {
            format!(
                "RSA modulus has {pct}% of its bits set, far from the half that random primes give"
            )
        },
        json!({
            "bit_percent": pct,
            "lower_half_percent": lower_pct,
            "bits": bits,
            "subtest": vanity.then_some("vanity"),
        }),
    ))
}

/// `rsa_pattern`: sixteen equal bytes in a row.
pub(super) fn pattern(bytes: &[u8]) -> Option<Finding> {
    let mut run = 1usize;
    for w in bytes.windows(2) {
        // badkeys' `(.)\1{15}` does not match a newline byte.
        run = if w[0] == w[1] && w[0] != b'\n' {
            run + 1
        } else {
            1
        };
        if run == 16 {
            return Some(Finding {
                confidence: Confidence::Medium,
                revocation_reason: None,
                deadline_hours: None,
                ..Finding::warning(
                    "rsa_pattern",
                    format!(
                        "RSA modulus holds the byte {:#04x} sixteen times in a row, which no random \
                         prime product does: it was made by hand or corrupted",
                        w[0]
                    ),
                    json!({ "byte": w[0], "bits": bytes.len() * 8 - bytes.first().map_or(0, |b| b.leading_zeros() as usize) }),
                )
            });
        }
    }
    None
}

/// `xz_backdoor`: the backdoor's payload test on the modulus.
pub(super) fn xz_backdoor(n: &[u8]) -> Option<Finding> {
    // The modulus as its DER INTEGER content: a leading zero when the top bit is set.
    let zero = n.first().is_some_and(|b| b & 0x80 != 0);
    let at = |i: usize| -> u8 {
        if zero {
            if i == 0 { 0 } else { n[i - 1] }
        } else {
            n[i]
        }
    };
    if n.len() + usize::from(zero) < 16 {
        return None;
    }
    let word =
        |r: std::ops::Range<usize>| r.rev().fold(0u64, |acc, i| (acc << 8) | u64::from(at(i)));
    let (a, b, c) = (word(0..4), word(4..8), word(8..16));
    let value = a.wrapping_mul(b).wrapping_add(c);
    (value <= 3).then(|| Finding {
        confidence: Confidence::High,
        ..Finding::violation(
            "xz_backdoor",
            "RSA modulus carries the xz-utils backdoor's command payload (CVE-2024-3094): it is \
             not a key but a message to the backdoor",
            json!({ "cve": "CVE-2024-3094", "selector": value, "bits": n.len() * 8 }),
        )
    })
}
