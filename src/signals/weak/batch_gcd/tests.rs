//! Batch GCD and the product index over generated RSA-shaped moduli with planted shared primes.

use std::sync::OnceLock;

use dashu_int::UBig;

use super::testkit::{modulus, random_prime, rng};
use super::*;
use crate::signals::Confidence;

/// 64 moduli, products of two random primes (256 bits, some 320 and 384), with planted
/// sharing. Indices:
/// * 3, 17 and 20 share prime `a` (256 bits); 20 is an exact copy of 3;
/// * 8 and 40 share prime `b` (320 bits);
/// * 11, 25 and 50 share prime `c` (384 bits);
/// * 60 = d·e, where 30 = d·f and 45 = e·g: both primes of 60 are shared (gcd = n_60);
/// * 55 is an exact copy of 5.
struct Fixture {
    moduli: Vec<Vec<u8>>,
    /// Primes of the planted sharing, for building incremental-check inputs.
    a: UBig,
    /// A fresh prime that no fixture modulus contains.
    fresh: UBig,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let mut r = rng(0x5eed_0b47);
        let mut moduli: Vec<Vec<u8>> = (0..64)
            .map(|i| {
                let bits = [256, 256, 320, 384][i % 4];
                modulus(&random_prime(&mut r, bits), &random_prime(&mut r, bits))
            })
            .collect();
        let mut prime = |bits| random_prime(&mut r, bits);
        let a = prime(256);
        let b = prime(320);
        let c = prime(384);
        let (d, e) = (prime(256), prime(256));
        moduli[3] = modulus(&a, &prime(256));
        moduli[17] = modulus(&a, &prime(384));
        moduli[20] = moduli[3].clone();
        moduli[8] = modulus(&b, &prime(320));
        moduli[40] = modulus(&b, &prime(256));
        for i in [11, 25, 50] {
            moduli[i] = modulus(&c, &prime(384));
        }
        moduli[60] = modulus(&d, &e);
        moduli[30] = modulus(&d, &prime(256));
        moduli[45] = modulus(&e, &prime(320));
        moduli[55] = moduli[5].clone();
        let fresh = prime(256);
        Fixture { moduli, a, fresh }
    })
}

fn factor(indices: &[usize], factor_bits: u64) -> SharedPrime {
    SharedPrime {
        indices: indices.to_vec(),
        kind: SharedKind::SharedFactor { factor_bits },
    }
}

fn identical(indices: &[usize], modulus_bits: u64) -> SharedPrime {
    SharedPrime {
        indices: indices.to_vec(),
        kind: SharedKind::IdenticalModulus { modulus_bits },
    }
}

fn expected_groups() -> Vec<SharedPrime> {
    vec![
        factor(&[3, 17, 20], 256),
        identical(&[3, 20], 512),
        identical(&[5, 55], 512),
        factor(&[8, 40], 320),
        factor(&[11, 25, 50], 384),
        factor(&[30, 60], 256),
        factor(&[45, 60], 256),
    ]
}

#[test]
fn finds_every_planted_group_and_nothing_else() {
    let fx = fixture();
    assert_eq!(batch_gcd(&fx.moduli), expected_groups());
}

#[test]
fn one_thread_and_many_threads_agree() {
    let fx = fixture();
    assert_eq!(batch_gcd_with_threads(&fx.moduli, 1), expected_groups());
    assert_eq!(batch_gcd_with_threads(&fx.moduli, 5), expected_groups());
}

#[cfg(feature = "malachite")]
#[test]
fn both_backends_agree() {
    let fx = fixture();
    assert_eq!(
        batch_gcd_on::<UBig, _>(&fx.moduli, 2),
        batch_gcd_on::<malachite_nz::natural::Natural, _>(&fx.moduli, 2)
    );
}

#[test]
fn scaled_remainder_tree_matches_the_textbook_one() {
    let fx = fixture();
    let mut r = rng(3);
    // The fixture, plus odd-sized sets of mixed sizes (odd nodes move up alone).
    let mut sets: Vec<Vec<Vec<u8>>> = vec![fx.moduli.clone()];
    for (count, bits) in [(2, 64), (3, 128), (37, 256), (21, 96)] {
        let mut set: Vec<Vec<u8>> = (0..count)
            .map(|k| {
                let b = bits + 32 * (k % 3);
                modulus(&random_prime(&mut r, b), &random_prime(&mut r, b))
            })
            .collect();
        set.push(set[0].clone());
        sets.push(set);
    }
    for set in sets {
        let leaves: Vec<Backend> = set.iter().map(|m| Backend::from_be_bytes(m)).collect();
        let scaled = tree::shared_parts(tree::product_tree(leaves.clone(), 2, 2), 2);
        let with_root = tree::shared_parts(tree::product_tree(leaves.clone(), 1, 1), 1);
        let classic = tree::shared_parts_classic(tree::product_tree(leaves, 1, 1), 1);
        assert!(scaled == with_root, "{} moduli", set.len());
        assert!(scaled == classic, "{} moduli", set.len());
    }
}

#[test]
fn leading_zeros_and_trivial_inputs() {
    let fx = fixture();
    let mut padded = vec![0u8, 0];
    padded.extend_from_slice(&fx.moduli[8]);
    let inputs: [&[u8]; 6] = [
        fx.moduli[8].as_slice(),
        &[],
        &[0, 0],
        &[1],
        padded.as_slice(),
        fx.moduli[9].as_slice(),
    ];
    assert_eq!(batch_gcd(&inputs), vec![identical(&[0, 4], 640)]);
    assert!(batch_gcd::<&[u8]>(&[]).is_empty());
    assert!(batch_gcd(&[&fx.moduli[0]]).is_empty());
}

#[test]
fn matches_pairwise_gcd_on_small_composites() {
    // Products of three primes from a pool of 30, so sharing is common and irregular
    // (including moduli that divide others): every flagged index must really share with
    // another input, and every index that shares must be flagged.
    let pool: Vec<u64> = (1000u64..)
        .filter(|&p| (2..p).take_while(|d| d * d <= p).all(|d| p % d != 0))
        .take(30)
        .collect();
    let mut r = rng(7);
    let values: Vec<u64> = (0..200)
        .map(|_| {
            (0..3)
                .map(|_| pool[(rand_chacha::rand_core::Rng::next_u64(&mut r) % 30) as usize])
                .product()
        })
        .collect();
    let bytes: Vec<[u8; 8]> = values.iter().map(|v| v.to_be_bytes()).collect();
    let gcd = |mut x: u64, mut y: u64| {
        while y != 0 {
            (x, y) = (y, x % y);
        }
        x
    };
    let groups = batch_gcd(&bytes);
    let mut flagged = vec![false; values.len()];
    for g in &groups {
        for &i in &g.indices {
            flagged[i] = true;
        }
        for &i in &g.indices {
            for &j in &g.indices {
                assert!(
                    gcd(values[i], values[j]) > 1,
                    "{i} and {j} grouped but coprime"
                );
            }
        }
    }
    for i in 0..values.len() {
        let shares = (0..values.len()).any(|j| j != i && gcd(values[i], values[j]) > 1);
        assert_eq!(flagged[i], shares, "index {i} ({})", values[i]);
    }
}

#[test]
fn findings_name_every_member_and_never_the_factor() {
    let fx = fixture();
    let groups = batch_gcd(&fx.moduli);
    let found = findings(&groups);
    let for_index = |i: usize| -> Vec<&Finding> {
        found
            .iter()
            .filter(|(j, _)| *j == i)
            .map(|(_, f)| f)
            .collect()
    };

    // Index 60: both primes shared, one confirmed finding per partner.
    let sixty = for_index(60);
    assert_eq!(sixty.len(), 2);
    for f in &sixty {
        assert_eq!(f.check, "shared_prime");
        assert_eq!(f.confidence, Confidence::Confirmed);
        assert_eq!(f.deadline_hours, Some(24));
        assert_eq!(f.evidence["kind"], "shared_factor");
        assert_eq!(f.evidence["factor_bits"], 256);
    }
    let partners: Vec<&serde_json::Value> =
        sixty.iter().map(|f| &f.evidence["shared_with"]).collect();
    assert!(partners.contains(&&json!([30])) && partners.contains(&&json!([45])));

    // The triple: each member names the other two.
    let eleven = for_index(11);
    assert_eq!(eleven.len(), 1);
    assert_eq!(eleven[0].evidence["shared_with"], json!([25, 50]));

    // The copy of a factored key is factored too, and also told it is a copy.
    let twenty = for_index(20);
    assert_eq!(twenty.len(), 2);
    assert!(
        twenty.iter().any(|f| f.confidence == Confidence::Confirmed
            && f.evidence["shared_with"] == json!([3, 17]))
    );
    assert!(twenty.iter().any(|f| f.confidence == Confidence::Low
        && f.evidence["kind"] == "identical_modulus"
        && f.evidence["shared_with"] == json!([3])));

    // Untouched keys get nothing.
    assert!(for_index(0).is_empty() && for_index(63).is_empty());

    // The prime's value appears nowhere, in hex or decimal.
    let a_hex = fx.a.in_radix(16).to_string();
    let a_dec = fx.a.to_string();
    for (_, f) in &found {
        let text = format!("{} {}", f.message, f.evidence);
        assert!(!text.contains(&a_hex) && !text.contains(&a_dec), "{text}");
    }
}

#[test]
fn incremental_check_finds_a_new_key_sharing_a_prime() {
    let fx = fixture();
    let clean: Vec<&Vec<u8>> = fx.moduli.iter().take(16).collect();
    let index = ProductIndex::build(&clean);
    assert_eq!(index.len(), 16);

    // A new key reusing the prime of index 3.
    let mut r = rng(99);
    let weak = modulus(&fx.a, &random_prime(&mut r, 256));
    assert_eq!(
        index.check(&weak),
        Some(IndexHit::SharedFactor { factor_bits: 256 })
    );
    assert_eq!(
        shares_with(&weak, &clean),
        vec![(3, SharedKind::SharedFactor { factor_bits: 256 })]
    );

    // A clean key passes, and once inserted is found again as a whole modulus.
    let good = modulus(&fx.fresh, &random_prime(&mut r, 256));
    assert_eq!(index.check(&good), None);
    assert!(shares_with(&good, &clean).is_empty());
    let mut grown = index.clone();
    grown.insert(&good);
    assert_eq!(grown.len(), 17);
    assert_eq!(
        grown.check(&good),
        Some(IndexHit::WholeModulus { modulus_bits: 512 })
    );
    assert_eq!(
        index.check(&fx.moduli[0]),
        Some(IndexHit::WholeModulus { modulus_bits: 512 })
    );
    assert_eq!(index.check(&[1]), None);
}

#[test]
fn product_index_round_trips_through_bytes() {
    let fx = fixture();
    let index = ProductIndex::build(&fx.moduli);
    // 64 inputs, 62 distinct.
    assert_eq!(index.len(), 62);
    let bytes = index.to_bytes();
    let back = ProductIndex::from_bytes(&bytes).unwrap();
    assert_eq!(back, index);
    assert_eq!(back.to_bytes(), bytes);
    assert_eq!(back.check(&fx.moduli[9]), index.check(&fx.moduli[9]));

    let empty = ProductIndex::default();
    assert_eq!(ProductIndex::from_bytes(&empty.to_bytes()).unwrap(), empty);
    assert!(empty.is_empty() && empty.check(&fx.moduli[0]).is_none());

    let mut bad = bytes.clone();
    bad[0] ^= 1;
    assert!(matches!(
        ProductIndex::from_bytes(&bad),
        Err(ProductIndexError::BadMagic)
    ));
    assert!(matches!(
        ProductIndex::from_bytes(&bytes[..bytes.len() - 1]),
        Err(ProductIndexError::Length { .. })
    ));
    assert!(matches!(
        ProductIndex::from_bytes(&bytes[..5]),
        Err(ProductIndexError::BadMagic)
    ));
}
