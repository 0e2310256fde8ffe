//! Shared primes across the inventory (`shared_prime`): batch GCD over every RSA modulus, and
//! an incremental check of one new modulus against a stored product.
//!
//! Two RSA keys generated with a bad random number generator can share one prime; anyone who
//! has both public keys then factors both with one gcd. Heninger, Durumeric, Wustrow and
//! Halderman (USENIX Security 2012) found this in about 0.5% of TLS hosts by running
//! Bernstein's batch GCD over every key they could collect. This module does the same over the
//! inventory:
//!
//! * [`batch_gcd`]: identical moduli are set aside first (they would give `gcd = n`) and
//!   reported as [`SharedKind::IdenticalModulus`]. Over the distinct moduli it builds the
//!   product tree, walks a remainder tree down it to get `(P / n_i) mod n_i` at each leaf
//!   (the textbook form carries `P mod node²`), and takes `gcd((P / n_i) mod n_i, n_i)`: the
//!   part of `n_i` shared with the product of all the others. When that part is `n_i`
//!   itself (both primes shared, with two different keys), pairwise gcds within the affected
//!   moduli split it. The shared parts are refined into pairwise coprime factors and
//!   grouped, so every [`SharedPrime`] names *all* the inputs that hold one factor. The
//!   remainder tree is Bernstein's scaled variant, which replaces the long division at every
//!   node by a multiplication (see `tree.rs`). Cost: `O(M(N·b)·log N)` for `N` moduli of `b`
//!   bits, where `M` is the multiplication cost.
//! * [`ProductIndex`]: the product `P` of a set of moduli, stored as bytes, so one new key is
//!   checked with a single `gcd(n, P mod n)` instead of a new batch run. A hit says *that*
//!   the key shares a factor; [`shares_with`] then names the keys it shares with.
//! * [`findings`]: turns groups into per-input [`Finding`]s; the caller maps input indices to
//!   certificate names. Messages and evidence carry factor *sizes* and the other indices,
//!   never a factor's value.
//!
//! # Big-integer backend and licence
//!
//! The arithmetic sits behind a small internal trait (`nat::Nat`: multiply, square, rem,
//! division, shifts, gcd, bytes), so the library can be swapped without touching the trees.
//! Figures below: RSA-2048-sized moduli on the 2-core development VM, release build, while
//! other builds shared the machine (`scripts/bench-batch-gcd` reproduces them next to a
//! Python gmpy2/GMP product and remainder tree on the same moduli).
//!
//! * **Default: dashu-int** (MIT OR Apache-2.0, like this crate). It beat num-bigint, the
//!   other permissive candidate: at N = 16,384, 19–23 s against 37 s on one thread and
//!   12–16 s against 21–34 s on two (num-bigint has no sub-quadratic division). At
//!   N = 100,000 it takes about 2–3.5 minutes on two threads against gmpy2's 60 s on one:
//!   it misses the 60 s target, because its NTT multiplication is 5–7 times slower than
//!   malachite's FFT on the 1–16 Mbit operands the upper tree levels multiply.
//! * **Optional: malachite**, with the `malachite` cargo feature (off by default): pure Rust,
//!   GMP-derived FFT multiplication and sub-quadratic division. At N = 100,000: 16.8 s on two
//!   idle threads (3.6 times faster than gmpy2; 30 s when another job held the second core)
//!   and 29.5–30.2 s on one (2.0 times). But it is
//!   **LGPL-3.0-only**. Rust links crates statically, so whoever distributes a binary built
//!   with it must let users relink it against a modified malachite (ship our sources or
//!   object files); that is a choice for that distributor, not something the default build of
//!   an MIT/Apache crate should impose on everyone. It also needs Rust 1.90 (the workspace's
//!   MSRV is 1.88 without it). Results are identical with either backend (tested).
//!
//! Work is spread over the available cores: each tree level's nodes are shared out among
//! scoped threads (`std::thread::scope`), which keeps both cores of a small VM busy on every
//! level below the root's children. Peak memory is several times the moduli's total size
//! (the product tree holds `log2 N` levels of it): at N = 100,000, 1.0–1.3 GiB with
//! malachite, 2.3 GiB with dashu (its NTT buffers), 0.65 GiB for gmpy2.

mod dashu;
mod group;
mod index;
#[cfg(feature = "malachite")]
mod malachite;
mod nat;
mod tree;

#[cfg(test)]
pub(crate) mod testkit;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::thread;
use std::time::Instant;

use serde::Serialize;
use serde_json::json;

use crate::signals::Finding;

pub use index::{IndexHit, ProductIndex, ProductIndexError};
pub use nat::BACKEND;
use nat::{Backend, Nat};

/// The check id of every finding this module makes.
pub const CHECK: &str = "shared_prime";

/// A set of inputs that share something: one factor, or the whole modulus.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SharedPrime {
    /// Indices into the input slice, ascending. For a shared factor this includes every input
    /// whose modulus the factor divides, duplicates of one modulus included.
    pub indices: Vec<usize>,
    /// What they share.
    pub kind: SharedKind,
}

/// What a [`SharedPrime`] group shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum SharedKind {
    /// The inputs hold the same modulus: one key reused. Not a factorisation, but whoever holds
    /// one of these private keys holds them all.
    IdenticalModulus {
        /// Bit length of the modulus.
        modulus_bits: u64,
    },
    /// The inputs' moduli share a factor, so each of them is factored by one gcd. For two-prime
    /// RSA the factor is a prime, unless two keys share both of theirs.
    SharedFactor {
        /// Bit length of the shared factor (never its value).
        factor_bits: u64,
    },
}

/// Batch GCD over `moduli` (big-endian bytes, leading zeros allowed), on all available cores.
///
/// Returns one [`SharedPrime`] per reused modulus and per shared factor, ordered by first
/// index. Inputs that are zero or one are not moduli and are ignored.
pub fn batch_gcd<M: AsRef<[u8]> + Sync>(moduli: &[M]) -> Vec<SharedPrime> {
    batch_gcd_with_threads(moduli, available_threads())
}

/// [`batch_gcd`] on at most `threads` threads (`0` is taken as one).
pub fn batch_gcd_with_threads<M: AsRef<[u8]> + Sync>(
    moduli: &[M],
    threads: usize,
) -> Vec<SharedPrime> {
    batch_gcd_on::<Backend, M>(moduli, threads.max(1))
}

pub(crate) fn batch_gcd_on<N: Nat, M: AsRef<[u8]> + Sync>(
    moduli: &[M],
    threads: usize,
) -> Vec<SharedPrime> {
    let started = Instant::now();
    let (unique, owners) = dedup(moduli);
    let mut groups: Vec<SharedPrime> = owners
        .iter()
        .zip(&unique)
        .filter(|(owned, _)| owned.len() > 1)
        .map(|(owned, bytes)| SharedPrime {
            indices: owned.clone(),
            kind: SharedKind::IdenticalModulus {
                modulus_bits: bit_len(bytes),
            },
        })
        .collect();

    let leaves: Vec<N> = tree::par_map(unique.len(), threads, |i| N::from_be_bytes(unique[i]));
    let parts = tree::shared_parts(tree::product_tree(leaves, 2, threads), threads);
    if parts.iter().any(|p| !p.is_one()) {
        // Converted again rather than kept through the trees: this is rare, and cheap.
        let moduli: Vec<N> = unique.iter().map(|m| N::from_be_bytes(m)).collect();
        for (factor, members) in group::shared_factors(&moduli, &parts) {
            let mut indices: Vec<usize> = members
                .iter()
                .flat_map(|&u| owners[u].iter().copied())
                .collect();
            indices.sort_unstable();
            groups.push(SharedPrime {
                indices,
                kind: SharedKind::SharedFactor {
                    factor_bits: factor.bits(),
                },
            });
        }
    }
    groups.sort_by(|a, b| a.indices.cmp(&b.indices));
    tracing::debug!(
        moduli = moduli.len(),
        distinct = unique.len(),
        groups = groups.len(),
        backend = BACKEND,
        threads,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "batch gcd done"
    );
    groups
}

/// Which of `moduli` the modulus `new` shares a factor with (or equals), by one gcd each:
/// the follow-up to a [`ProductIndex::check`] hit, to name the certificates involved.
/// Returns `(index, kind)` pairs in index order; the factor is `gcd(new, moduli[index])`.
pub fn shares_with<M: AsRef<[u8]>>(new: &[u8], moduli: &[M]) -> Vec<(usize, SharedKind)> {
    let new_bytes = strip(new);
    if is_trivial(new_bytes) {
        return Vec::new();
    }
    let n = Backend::from_be_bytes(new_bytes);
    moduli
        .iter()
        .enumerate()
        .filter_map(|(i, m)| {
            let m = strip(m.as_ref());
            if is_trivial(m) {
                return None;
            }
            if m == new_bytes {
                return Some((
                    i,
                    SharedKind::IdenticalModulus {
                        modulus_bits: bit_len(m),
                    },
                ));
            }
            let g = n.gcd(&Backend::from_be_bytes(m));
            (!g.is_one()).then(|| {
                (
                    i,
                    SharedKind::SharedFactor {
                        factor_bits: g.bits(),
                    },
                )
            })
        })
        .collect()
}

/// One finding per input index per group, for the caller to attach to the certificate at that
/// index. A shared factor is a confirmed compromise (keyCompromise, 24 hours): every holder of
/// one of those public keys can factor the others. A reused modulus is a warning: it is not a
/// factorisation, but it ties the keys' fates together and breaks "a new key per certificate".
/// Evidence: `kind`, the bit length, and `shared_with` (the other input indices).
pub fn findings(groups: &[SharedPrime]) -> Vec<(usize, Finding)> {
    let mut out = Vec::new();
    for group in groups {
        for &i in &group.indices {
            let others: Vec<usize> = group.indices.iter().copied().filter(|&j| j != i).collect();
            let finding = match group.kind {
                SharedKind::SharedFactor { factor_bits } => Finding::compromised(
                    CHECK,
                    format!(
                        "RSA modulus shares a {factor_bits}-bit factor with {} other key(s) in \
                         the inventory, so it is factored",
                        others.len()
                    ),
                    json!({
                        "kind": "shared_factor",
                        "factor_bits": factor_bits,
                        "shared_with": others,
                    }),
                ),
                SharedKind::IdenticalModulus { modulus_bits } => Finding::warning(
                    CHECK,
                    format!(
                        "the same {modulus_bits}-bit RSA key is used by {} other certificate(s)",
                        others.len()
                    ),
                    json!({
                        "kind": "identical_modulus",
                        "modulus_bits": modulus_bits,
                        "shared_with": others,
                    }),
                ),
            };
            out.push((i, finding));
        }
    }
    out
}

/// The distinct non-trivial moduli (leading zeros stripped), in order of first appearance,
/// and for each the input indices that hold it.
fn dedup<M: AsRef<[u8]>>(moduli: &[M]) -> (Vec<&[u8]>, Vec<Vec<usize>>) {
    let mut position: HashMap<&[u8], usize> = HashMap::with_capacity(moduli.len());
    let mut unique = Vec::new();
    let mut owners: Vec<Vec<usize>> = Vec::new();
    for (i, m) in moduli.iter().enumerate() {
        let m = strip(m.as_ref());
        if is_trivial(m) {
            continue;
        }
        let u = *position.entry(m).or_insert_with(|| {
            unique.push(m);
            owners.push(Vec::new());
            unique.len() - 1
        });
        owners[u].push(i);
    }
    (unique, owners)
}

/// `bytes` without leading zeros.
fn strip(bytes: &[u8]) -> &[u8] {
    let zeros = bytes.iter().take_while(|&&b| b == 0).count();
    &bytes[zeros..]
}

/// Zero or one (after [`strip`]): not a modulus.
fn is_trivial(stripped: &[u8]) -> bool {
    matches!(stripped, [] | [1])
}

/// Bit length of a stripped big-endian number.
fn bit_len(stripped: &[u8]) -> u64 {
    match stripped.first() {
        None => 0,
        Some(&top) => (stripped.len() as u64 - 1) * 8 + u64::from(8 - top.leading_zeros()),
    }
}

fn available_threads() -> usize {
    thread::available_parallelism().map_or(1, |n| n.get())
}
