//! Behaviour of `check_rsa` on generated keys: a positive for every check, no findings on
//! healthy keys from rcgen and openssl, and bounded work on hostile input.
//!
//! Key generation is slow in debug builds (num-bigint's modular exponentiation runs
//! unoptimized), so weak fixtures mostly use 512-bit primes. The healthy sets are 50 rcgen
//! RSA-2048 keys, 20 openssl RSA-3072 keys, and 1,000 RSA-2048 moduli formed from pairs of the
//! rcgen keys' primes; the corpus-scale no-false-positive test across key types is an
//! integration test.

mod fixtures;

use std::time::Instant;

use num_bigint::BigUint;
use rand_chacha::rand_core::Rng;
use serde_json::Value;

use super::small_factor::scan;
use super::{KeyPolicy, MAX_FACTORING_BITS, check_rsa, check_rsa_thorough};
use crate::signals::{Confidence, Finding};
use fixtures::*;

const F4: [u8; 3] = [1, 0, 1];

fn ids(findings: &[Finding]) -> Vec<&'static str> {
    findings.iter().map(|f| f.check).collect()
}

fn only<'a>(findings: &'a [Finding], check: &str) -> &'a Finding {
    let matching: Vec<&Finding> = findings.iter().filter(|f| f.check == check).collect();
    assert_eq!(
        matching.len(),
        1,
        "one `{check}` finding expected in {findings:#?}"
    );
    matching[0]
}

/// No factor, `d` or other private value appears in any message or evidence.
fn assert_no_secrets(findings: &[Finding], secrets: &[&BigUint]) {
    for f in findings {
        let text = serde_json::to_string(f).unwrap_or_default().to_lowercase();
        for s in secrets {
            for shown in [s.to_str_radix(10), s.to_str_radix(16)] {
                if shown.len() >= 5 {
                    assert!(!text.contains(&shown), "private value leaked in {text}");
                }
            }
        }
    }
}

fn evidence<'a>(f: &'a Finding, key: &str) -> &'a Value {
    f.evidence.get(key).unwrap_or(&Value::Null)
}

fn policy() -> KeyPolicy {
    KeyPolicy::default()
}

/// A policy accepting 1024-bit moduli, so that 512-bit-prime fixtures show only the finding
/// under test.
fn policy_1024() -> KeyPolicy {
    KeyPolicy {
        rsa_min_bits: 1024,
        ..KeyPolicy::default()
    }
}

#[test]
fn healthy_rcgen_keys_and_the_moduli_of_their_primes_have_no_findings() {
    let keys = rcgen_keys(50);
    let mut primes = Vec::new();
    for (pem, der) in &keys {
        let (n, e) = rsa_public(pem.as_bytes());
        assert_eq!(n.len(), 256);
        let findings = check_rsa(&n, &e, &policy());
        assert!(findings.is_empty(), "rcgen key flagged: {findings:#?}");
        let (p, q) = pkcs8_primes(der);
        assert_eq!(BigUint::from_bytes_be(&n), &p * &q);
        primes.push(p);
        primes.push(q);
    }
    // 1,000 healthy 2048-bit moduli: products of primes from different keys.
    let mut moduli = Vec::new();
    'pairs: for i in 0..primes.len() {
        for j in (i + 1)..primes.len() {
            if i / 2 == j / 2 {
                continue;
            }
            moduli.push(be(&(&primes[i] * &primes[j])));
            if moduli.len() == 1000 {
                break 'pairs;
            }
        }
    }
    assert_eq!(moduli.len(), 1000);
    let start = Instant::now();
    for n in &moduli {
        let findings = check_rsa(n, &F4, &policy());
        assert!(
            findings.is_empty(),
            "healthy modulus flagged: {findings:#?}"
        );
    }
    let per_key = start.elapsed() / 1000;
    eprintln!("check_rsa on 1,000 healthy RSA-2048 moduli: {per_key:?} per key");
}

#[test]
fn healthy_openssl_3072_keys_have_no_findings() {
    for pem in openssl_keys(20, 3072) {
        let (n, e) = rsa_public(&pem);
        assert_eq!(n.len(), 384);
        let findings = check_rsa(&n, &e, &policy());
        assert!(findings.is_empty(), "openssl key flagged: {findings:#?}");
    }
}

#[test]
fn close_primes_are_factored_by_fermat() {
    let mut rng = rng(1);
    let p = random_prime(&mut rng, 512);
    let q = next_prime(&(&p + (BigUint::from(1u32) << 40u32)));
    let n = &p * &q;
    let findings = check_rsa(&be(&n), &F4, &policy_1024());
    assert_eq!(ids(&findings), ["fermat"]);
    let f = only(&findings, "fermat");
    assert_eq!(f.confidence, Confidence::Confirmed);
    assert_eq!(f.deadline_hours, Some(24));
    assert_eq!(evidence(f, "rounds_used"), 1);
    assert_eq!(evidence(f, "p_bits"), 512);
    assert_eq!(evidence(f, "q_bits"), 512);
    assert_eq!(evidence(f, "difference_bits"), (&q - &p).bits());
    assert_eq!(evidence(f, "subtest"), &Value::Null);
    assert_no_secrets(&findings, &[&p, &q]);
}

#[test]
fn fermat_rounds_follow_the_policy() {
    // |p − q| ≈ 2^262 for 512-bit primes: Fermat needs about (p−q)²/(8·√n) ≈ 512 rounds.
    let mut rng = rng(2);
    let p = random_prime(&mut rng, 512);
    let q = next_prime(&(&p + (BigUint::from(1u32) << 262u32)));
    let n = be(&(&p * &q));
    assert!(check_rsa(&n, &F4, &policy_1024()).is_empty());
    let generous = KeyPolicy {
        fermat_rounds: 5000,
        ..policy_1024()
    };
    let findings = check_rsa(&n, &F4, &generous);
    let f = only(&findings, "fermat");
    let used = evidence(f, "rounds_used").as_u64().unwrap_or(0);
    assert!((100..=5000).contains(&used), "{used}");
    assert_eq!(evidence(f, "rounds_limit"), 5000);
    // With exactly that many rounds it is found, with one fewer it is not.
    let exact = KeyPolicy {
        fermat_rounds: used as u32,
        ..policy_1024()
    };
    assert_eq!(ids(&check_rsa(&n, &F4, &exact)), ["fermat"]);
    let short = KeyPolicy {
        fermat_rounds: used as u32 - 1,
        ..policy_1024()
    };
    assert!(check_rsa(&n, &F4, &short).is_empty());
}

#[test]
fn a_square_modulus_is_fermat_square() {
    let mut rng = rng(3);
    let p = random_prime(&mut rng, 512);
    let findings = check_rsa(&be(&(&p * &p)), &F4, &policy_1024());
    assert_eq!(ids(&findings), ["fermat"]);
    let f = only(&findings, "fermat");
    assert_eq!(evidence(f, "subtest"), "square");
    assert_eq!(evidence(f, "rounds_used"), 0);
    assert_eq!(evidence(f, "difference_bits"), 0);
    assert_no_secrets(&findings, &[&p]);
}

#[test]
fn roca_structured_primes_are_detected() {
    let mut rng = rng(4);
    let p = roca_prime(&mut rng, 512);
    let q = roca_prime(&mut rng, 512);
    let n = &p * &q;
    let findings = check_rsa(&be(&n), &F4, &policy_1024());
    assert_eq!(ids(&findings), ["roca"]);
    let f = only(&findings, "roca");
    assert_eq!(f.confidence, Confidence::Confirmed);
    assert_eq!(evidence(f, "test"), "discrete_log");
    assert_no_secrets(&findings, &[&p, &q]);

    // One RSALib prime and one ordinary prime: not the fingerprint.
    let r = random_prime(&mut rng, 512);
    assert!(check_rsa(&be(&(&p * &r)), &F4, &policy_1024()).is_empty());
}

#[test]
fn small_factors_are_found_up_to_65537_and_labelled() {
    let mut rng = rng(5);
    let q = random_prime(&mut rng, 512);
    for small in [3u32, 65521, 65537] {
        let n = &q * small;
        let findings = check_rsa(&be(&n), &F4, &policy_1024());
        assert!(
            ids(&findings).contains(&"rsa_small_factor"),
            "{small}: {findings:#?}"
        );
        let f = only(&findings, "rsa_small_factor");
        assert_eq!(f.confidence, Confidence::Confirmed);
        assert_eq!(evidence(f, "factor_bits"), u64::from(small.ilog2() + 1));
        assert_eq!(evidence(f, "cofactor_bits"), 512);
        assert_eq!(evidence(f, "cofactor_prime"), true);
        assert_eq!(evidence(f, "subtest"), "valid");
        assert_no_secrets(&findings, &[&q]);
    }
    // Several small primes and a composite cofactor: `corrupt`.
    let n = &q * 3u32 * 5u32 * 7919u32;
    let findings = check_rsa(&be(&n), &F4, &policy_1024());
    let f = only(&findings, "rsa_small_factor");
    assert_eq!(evidence(f, "small_prime_factors"), 3);
    assert_eq!(evidence(f, "subtest"), "corrupt");
    // 65539 is the first prime above the limit: nothing to report.
    let n = &q * 65539u32;
    let findings = check_rsa(&be(&n), &F4, &policy_1024());
    assert!(
        !ids(&findings).contains(&"rsa_small_factor"),
        "{findings:#?}"
    );
}

#[test]
fn a_small_private_exponent_is_recovered() {
    let mut rng = rng(6);
    let (p, q) = prime_pair(&mut rng, 512);
    let n = &p * &q;
    let phi = (&p - 1u32) * (&q - 1u32);
    let (d, e) = loop {
        let d = random_bits(&mut rng, 200) | BigUint::from(1u32);
        if let Some(e) = d.modinv(&phi) {
            break (d, e);
        }
    };
    let findings = check_rsa(&be(&n), &be(&e), &policy_1024());
    let f = only(&findings, "rsa_small_d");
    assert_eq!(f.confidence, Confidence::Confirmed);
    assert_eq!(evidence(f, "d_bits"), d.bits());
    // The large exponent is also outside the range the BRs recommend: a warning.
    assert_eq!(
        only(&findings, "rsa_exponent_bad").confidence,
        Confidence::Low
    );
    assert_no_secrets(&findings, &[&p, &q, &d]);

    // A large random exponent with an ordinary (large) d: no small-d finding.
    let e = loop {
        let e = BigUint::from(rng.next_u64() | 1);
        if e.modinv(&phi).is_some() {
            break e;
        }
    };
    let findings = check_rsa(&be(&n), &be(&e), &policy_1024());
    assert_eq!(ids(&findings), ["rsa_exponent_bad"]);
    assert_eq!(findings[0].confidence, Confidence::Low);
}

#[test]
fn structurally_invalid_keys_are_rsa_invalid() {
    let mut rng = rng(7);
    let (p, q) = prime_pair(&mut rng, 512);
    let n = &p * &q;

    let reason = |findings: &[Finding]| -> (Confidence, String) {
        let f = only(findings, "rsa_invalid");
        (
            f.confidence,
            evidence(f, "reason")
                .as_str()
                .unwrap_or_default()
                .to_string(),
        )
    };

    let even = check_rsa(&be(&(&n + 1u32)), &F4, &policy_1024());
    assert_eq!(
        reason(&even),
        (Confidence::Confirmed, "modulus_even".into())
    );

    // A prime modulus below the policy minimum is tested by `check_rsa`; at or above it only
    // `check_rsa_thorough` tests it.
    let prime = check_rsa(&be(&p), &F4, &policy());
    assert_eq!(
        reason(&prime),
        (Confidence::Confirmed, "modulus_prime".into())
    );
    let at_minimum = KeyPolicy {
        rsa_min_bits: 512,
        ..policy()
    };
    assert!(check_rsa(&be(&p), &F4, &at_minimum).is_empty());
    let prime = check_rsa_thorough(&be(&p), &F4, &at_minimum);
    assert_eq!(ids(&prime), ["rsa_invalid"]);
    assert_eq!(
        reason(&prime),
        (Confidence::Confirmed, "modulus_prime".into())
    );
    // A small prime modulus is caught by the small-factor pass.
    let tiny = check_rsa(&[0xff, 0xf1], &[3], &policy());
    assert_eq!(
        reason(&tiny),
        (Confidence::Confirmed, "modulus_prime".into())
    );

    let e1 = check_rsa(&be(&n), &[1], &policy_1024());
    assert_eq!(reason(&e1), (Confidence::Confirmed, "exponent_one".into()));
    assert_eq!(ids(&e1), ["rsa_invalid"]);
    let e0 = check_rsa(&be(&n), &[], &policy_1024());
    assert_eq!(reason(&e0), (Confidence::High, "exponent_zero".into()));
    let big_e = check_rsa(&be(&n), &be(&(&n + 2u32)), &policy_1024());
    assert_eq!(
        reason(&big_e),
        (Confidence::High, "exponent_not_below_modulus".into())
    );

    let zero = check_rsa(&[], &F4, &policy());
    assert_eq!(reason(&zero), (Confidence::High, "modulus_zero".into()));
    assert_eq!(ids(&zero), ["rsa_invalid"]);
    let one = check_rsa(&[0, 0, 1], &F4, &policy());
    assert_eq!(reason(&one), (Confidence::Confirmed, "modulus_one".into()));
    assert_no_secrets(&even, &[&p, &q]);
}

#[test]
fn exponent_rules() {
    let mut rng = rng(8);
    let (p, q) = prime_pair(&mut rng, 512);
    let n = be(&(&p * &q));
    let bad = |e: &BigUint| -> Vec<(Confidence, Value)> {
        check_rsa(&n, &be(e), &policy_1024())
            .into_iter()
            .filter(|f| f.check == "rsa_exponent_bad")
            .map(|f| (f.confidence, f.evidence))
            .collect()
    };
    assert!(bad(&BigUint::from(65537u32)).is_empty());
    let e3 = bad(&BigUint::from(3u32));
    assert_eq!(e3.len(), 1);
    assert_eq!(e3[0].0, Confidence::Low);
    assert_eq!(e3[0].1["reason"], "exponent_3");
    assert_eq!(e3[0].1["exponent"], "3");
    let e17 = bad(&BigUint::from(17u32));
    assert_eq!(e17[0].0, Confidence::Low);
    assert_eq!(e17[0].1["reason"], "exponent_not_65537");
    let even = bad(&BigUint::from(65536u32));
    assert_eq!(even[0].0, Confidence::High);
    assert_eq!(even[0].1["reasons"], serde_json::json!(["even"]));
    let two = bad(&BigUint::from(2u32));
    assert_eq!(two[0].1["reasons"], serde_json::json!(["even", "below_3"]));
    // Above 2^256-1 is a BR "SHOULD": a warning, whatever the trust.
    let huge = bad(&((BigUint::from(1u32) << 256u32) + 1u32));
    assert_eq!(huge[0].0, Confidence::Low);
    assert_eq!(huge[0].1["reasons"], serde_json::json!(["above_2^256-1"]));
    assert_eq!(huge[0].1["exponent"], Value::Null);
    assert_eq!(huge[0].1["exponent_bits"], 257);
    let top = bad(&((BigUint::from(1u32) << 256u32) - 1u32));
    assert_eq!(top[0].0, Confidence::Low);
}

#[test]
fn modulus_size_rules() {
    let mut rng = rng(9);
    let (p, q) = prime_pair(&mut rng, 512);
    let findings = check_rsa(&be(&(&p * &q)), &F4, &policy());
    assert_eq!(ids(&findings), ["rsa_modulus_small"]);
    let f = &findings[0];
    assert_eq!(f.confidence, Confidence::High);
    assert_eq!(f.deadline_hours, Some(120));
    assert_eq!(evidence(f, "bits"), 1024);
    assert_eq!(evidence(f, "minimum"), 2048);

    let pem = openssl_keys(1, 2050).remove(0);
    let (n, e) = rsa_public(&pem);
    let findings = check_rsa(&n, &e, &policy());
    assert_eq!(ids(&findings), ["rsa_modulus_not_multiple_of_8"]);
    assert_eq!(evidence(&findings[0], "bits"), 2050);
}

#[test]
fn zero_chunk_moduli_are_detected() {
    let mut rng = rng(10);
    // Nautilus: primes that are polynomials in 2^64 with 6-bit coefficients; the product's
    // coefficients stay below 2^16, so every 128-bit chunk has bits 16..63 clear.
    let p = polynomial_prime(&mut rng, 64, 8, 6);
    let q = polynomial_prime(&mut rng, 64, 8, 6);
    let n = &p * &q;
    assert!(n.bits() >= 500);
    let findings = check_rsa(
        &be(&n),
        &F4,
        &KeyPolicy {
            rsa_min_bits: 512,
            ..policy()
        },
    );
    let f = only(&findings, "rsa_invalid");
    assert_eq!(f.confidence, Confidence::Confirmed);
    assert_eq!(evidence(f, "pattern"), "zero_chunks");
    assert_eq!(evidence(f, "variant"), "nautilus");
    assert_no_secrets(&findings, &[&p, &q]);

    // CompleteFTP: polynomials in 2^32 with 6-bit coefficients: 32-bit chunks keep bits
    // 20..29 clear.
    let p = polynomial_prime(&mut rng, 32, 9, 6);
    let q = polynomial_prime(&mut rng, 32, 9, 6);
    let n = &p * &q;
    assert!(n.bits() >= 500, "{}", n.bits());
    let findings = check_rsa(
        &be(&n),
        &F4,
        &KeyPolicy {
            rsa_min_bits: 512,
            ..policy()
        },
    );
    let f = only(&findings, "rsa_invalid");
    assert_eq!(evidence(f, "variant"), "completeftp");
}

#[test]
fn hostile_sizes_do_not_panic_or_hang() {
    let mut rng = rng(11);
    let policy = policy();
    let start = Instant::now();
    assert!(!check_rsa(&[], &[], &policy).is_empty());
    assert!(!check_rsa(&[7], &[1], &policy).is_empty());
    assert!(!check_rsa(&[0], &[0], &policy).is_empty());
    let mut huge = be(&random_bits(&mut rng, 800_000));
    if let Some(last) = huge.last_mut() {
        *last |= 1;
    }
    assert_eq!(huge.len(), 100_000);
    let findings = check_rsa(&huge, &F4, &policy);
    assert!(
        ids(&findings).contains(&"fermat") || ids(&findings).contains(&"rsa_small_factor"),
        "{findings:#?}"
    );
    if let Some(f) = findings.iter().find(|f| f.check == "fermat") {
        assert_eq!(f.confidence, Confidence::Low);
        assert_eq!(evidence(f, "limit"), MAX_FACTORING_BITS);
    }
    // A huge exponent with the huge modulus, and all-ones bytes.
    let _ = check_rsa(&huge, &huge, &policy);
    let _ = check_rsa(&vec![0xff; 100_000], &vec![0xff; 100_000], &policy);
    // Just above the factoring limit, with no small factor and a large e: both skips are
    // reported.
    let mut n = random_bits(&mut rng, MAX_FACTORING_BITS + 8) | BigUint::from(1u32);
    while !scan(&n.to_u64_digits(), 0).divisors.is_empty() {
        n += 2u32;
    }
    let e = be(&(random_bits(&mut rng, 64) | BigUint::from(1u32)));
    let findings = check_rsa(&be(&n), &e, &policy);
    assert_eq!(
        ids(&findings),
        ["rsa_exponent_bad", "fermat", "rsa_small_d"]
    );
    assert!(findings.iter().all(|f| f.confidence == Confidence::Low));
    eprintln!("hostile inputs checked in {:?}", start.elapsed());
}
