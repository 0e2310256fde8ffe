//! Merkle tree hashing for CT logs (RFC 6962 §2.1; RFC 9162 §2.1): leaf and node hashes,
//! a compact range that recomputes a tree's root from a stream of leaf hashes in O(log n)
//! memory, and verification of consistency and inclusion proofs.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A SHA-256 hash of a Merkle tree node.
pub type Hash = [u8; 32];

/// The root of the empty tree: `SHA-256("")`.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The hash of a leaf: `SHA-256(0x00 ‖ leaf_input)`.
pub fn leaf_hash(leaf_input: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(leaf_input);
    h.finalize().into()
}

/// The hash of an inner node: `SHA-256(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of the complete subtree over `hashes` (a power of two of them, at least one).
pub fn subtree_root(hashes: &[Hash]) -> Hash {
    match hashes {
        [] => empty_root(),
        [one] => *one,
        _ => {
            let (left, right) = hashes.split_at(hashes.len() / 2);
            node_hash(&subtree_root(left), &subtree_root(right))
        }
    }
}

/// The left edge of a log up to `size` leaves, kept as one subtree root per set bit of
/// `size` (largest subtree first): enough to append further leaves and to compute the root
/// of every later size, in O(log n) memory. certspotter calls this a collapsed tree.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Frontier {
    size: u64,
    /// The subtree roots, largest first.
    nodes: Vec<Hash>,
}

/// A frontier whose node count does not match the set bits of its size.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a frontier of size {size} needs {expected} node hashes, not {found}")]
pub struct BadFrontier {
    /// The claimed size.
    pub size: u64,
    /// The node count that size needs.
    pub expected: u32,
    /// The node count given.
    pub found: usize,
}

impl Frontier {
    /// The frontier of the empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// A frontier from its parts, checked for shape (one node per set bit of `size`).
    pub fn from_parts(size: u64, nodes: Vec<Hash>) -> Result<Self, BadFrontier> {
        if nodes.len() != size.count_ones() as usize {
            return Err(BadFrontier {
                size,
                expected: size.count_ones(),
                found: nodes.len(),
            });
        }
        Ok(Self { size, nodes })
    }

    /// The frontier of a tree of `size` leaves rebuilt from its last leaf alone: `leaf` is
    /// the hash of leaf `size - 1` and `path` its RFC 6962 audit path (§2.1.1, deepest
    /// first). Every hash of that path is a left sibling: first the ones inside the
    /// smallest complete subtree (as many as `size` has trailing zero bits), whose root
    /// they give with the leaf, then the roots of the larger subtrees, smallest first.
    /// Check the result's [`Frontier::root`] against the signed root: that is the
    /// inclusion proof's check.
    pub fn from_last_leaf(size: u64, leaf: &Hash, path: &[Hash]) -> Result<Self, ProofError> {
        if size == 0 {
            return Err(ProofError::BadSizes(
                "the empty tree has no last leaf".into(),
            ));
        }
        let inner = size.trailing_zeros() as usize;
        let expected = inner + size.count_ones() as usize - 1;
        if path.len() != expected {
            return Err(ProofError::WrongLength {
                expected,
                found: path.len(),
            });
        }
        let smallest = path[..inner]
            .iter()
            .fold(*leaf, |acc, left| node_hash(left, &acc));
        let mut nodes: Vec<Hash> = path[inner..].iter().rev().copied().collect();
        nodes.push(smallest);
        Ok(Self { size, nodes })
    }

    /// The number of leaves appended so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The subtree roots, largest (leftmost) first.
    pub fn nodes(&self) -> &[Hash] {
        &self.nodes
    }

    /// Appends the leaf whose hash is `leaf`.
    pub fn push(&mut self, leaf: Hash) {
        let mut h = leaf;
        let mut s = self.size;
        while s & 1 == 1 {
            // Shape invariant: one node per set bit of `size`, so a set bit has its node.
            let Some(left) = self.nodes.pop() else { break };
            h = node_hash(&left, &h);
            s >>= 1;
        }
        self.nodes.push(h);
        self.size += 1;
    }

    /// Appends a complete subtree of `2^height` leaves whose root is `node`. The subtree
    /// must start where the frontier ends and be aligned to its own size (the frontier's
    /// size a multiple of `2^height`); `None` if it is not.
    pub fn push_subtree(&mut self, height: u32, node: Hash) -> Option<()> {
        let width = 1u64.checked_shl(height)?;
        if !self.size.is_multiple_of(width) {
            return None;
        }
        let size = self.size.checked_add(width)?;
        let mut h = node;
        let mut s = self.size >> height;
        while s & 1 == 1 {
            let left = self.nodes.pop()?;
            h = node_hash(&left, &h);
            s >>= 1;
        }
        self.nodes.push(h);
        self.size = size;
        Some(())
    }

    /// The root of the tree of `size()` leaves (MTH, RFC 6962 §2.1).
    pub fn root(&self) -> Hash {
        let mut it = self.nodes.iter().rev();
        let Some(last) = it.next() else {
            return empty_root();
        };
        it.fold(*last, |acc, left| node_hash(left, &acc))
    }
}

/// Why a proof did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// The sizes make no sense together (first > second, index ≥ size, size 0).
    #[error("bad sizes: {0}")]
    BadSizes(String),
    /// The proof has the wrong number of hashes for these sizes.
    #[error("the proof has {found} hashes, not the {expected} these sizes need")]
    WrongLength {
        /// The hashes needed.
        expected: usize,
        /// The hashes given.
        found: usize,
    },
    /// The proof does not lead to the given roots.
    #[error("the proof does not lead to the given root")]
    RootMismatch,
}

/// The number of hashes in an inclusion path for `index` in a tree of `size` leaves: the
/// inner part (the bit length of `index ^ (size - 1)`) plus the right border (the set bits
/// of `index` above it), as in RFC 9162 §2.1.3.2 implementations.
fn inclusion_len(index: u64, size: u64) -> usize {
    let inner = 64 - (index ^ (size - 1)).leading_zeros();
    let border = index.checked_shr(inner).unwrap_or(0).count_ones();
    (inner + border) as usize
}

/// Verifies that `leaf` is at `index` in the tree of `size` leaves whose root is `root`,
/// by the audit path `path` (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    path: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::BadSizes(format!(
            "index {index} is not within size {size}"
        )));
    }
    let expected = inclusion_len(index, size);
    if path.len() != expected {
        return Err(ProofError::WrongLength {
            expected,
            found: path.len(),
        });
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in path {
        if s == 0 {
            return Err(ProofError::RootMismatch);
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    if s == 0 && r == *root {
        Ok(())
    } else {
        Err(ProofError::RootMismatch)
    }
}

/// Verifies that the tree of `first` leaves with root `first_root` is a prefix of the tree
/// of `second` leaves with root `second_root`, by the consistency proof `proof`
/// (RFC 9162 §2.1.4.2, which RFC 6962 §2.1.2 defines the proofs for).
pub fn verify_consistency(
    first: u64,
    second: u64,
    first_root: &Hash,
    second_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if first > second {
        return Err(ProofError::BadSizes(format!(
            "the first size {first} is larger than the second {second}"
        )));
    }
    if first == second {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength {
                expected: 0,
                found: proof.len(),
            });
        }
        return if first_root == second_root {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        };
    }
    if first == 0 {
        // Every tree extends the empty tree; RFC 9162 gives no proof for it.
        return if proof.is_empty() {
            Ok(())
        } else {
            Err(ProofError::WrongLength {
                expected: 0,
                found: proof.len(),
            })
        };
    }
    if proof.is_empty() {
        return Err(ProofError::WrongLength {
            expected: 1,
            found: 0,
        });
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if first.is_power_of_two() {
        path.push(*first_root);
    }
    path.extend_from_slice(proof);
    let (mut f, mut s) = (first - 1, second - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if s == 0 {
            return Err(ProofError::RootMismatch);
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    if s == 0 && fr == *first_root && sr == *second_root {
        Ok(())
    } else {
        Err(ProofError::RootMismatch)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Reference MTH, straight from RFC 6962 §2.1.
    pub(crate) fn mth(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split(n);
                node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }

    fn split(n: usize) -> usize {
        let mut k = 1;
        while k << 1 < n {
            k <<= 1;
        }
        k
    }

    /// Reference PATH(m, D[n]) from RFC 6962 §2.1.1.
    pub(crate) fn path(m: usize, leaves: &[Hash]) -> Vec<Hash> {
        let n = leaves.len();
        if n <= 1 {
            return vec![];
        }
        let k = split(n);
        if m < k {
            let mut p = path(m, &leaves[..k]);
            p.push(mth(&leaves[k..]));
            p
        } else {
            let mut p = path(m - k, &leaves[k..]);
            p.push(mth(&leaves[..k]));
            p
        }
    }

    /// Reference PROOF(m, D[n]) from RFC 6962 §2.1.2.
    pub(crate) fn proof(m: usize, leaves: &[Hash]) -> Vec<Hash> {
        subproof(m, leaves, true)
    }

    fn subproof(m: usize, leaves: &[Hash], b: bool) -> Vec<Hash> {
        let n = leaves.len();
        if m == n {
            return if b { vec![] } else { vec![mth(leaves)] };
        }
        let k = split(n);
        if m <= k {
            let mut p = subproof(m, &leaves[..k], b);
            p.push(mth(&leaves[k..]));
            p
        } else {
            let mut p = subproof(m - k, &leaves[k..], false);
            p.push(mth(&leaves[..k]));
            p
        }
    }

    /// The leaves of the test tree used by RFC 6962's reference implementations and Go's
    /// `merkle` package: inputs "", 0x00, 0x10, 0x2021, 0x3031, 0x40414243, ...
    fn test_leaves() -> Vec<Vec<u8>> {
        [
            "",
            "00",
            "10",
            "2021",
            "3031",
            "40414243",
            "5051525354555657",
            "606162636465666768696a6b6c6d6e6f",
        ]
        .iter()
        .map(|h| hex::decode(h).unwrap())
        .collect()
    }

    #[test]
    fn known_roots_of_the_reference_tree() {
        // Roots for sizes 1..=8 from RFC 6962's test vectors (certificate-transparency-go
        // merkle/testonly).
        let expected = [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
            "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
            "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
        ];
        assert_eq!(
            hex::encode(empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let mut f = Frontier::new();
        for (i, input) in test_leaves().iter().enumerate() {
            f.push(leaf_hash(input));
            assert_eq!(hex::encode(f.root()), expected[i], "size {}", i + 1);
            assert_eq!(f.nodes().len(), f.size().count_ones() as usize);
        }
    }

    #[test]
    fn frontier_matches_the_reference_for_many_sizes_and_round_trips() {
        let leaves: Vec<Hash> = (0u32..300).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let mut f = Frontier::new();
        for n in 1..=leaves.len() {
            f.push(leaves[n - 1]);
            assert_eq!(f.root(), mth(&leaves[..n]), "size {n}");
        }
        let json = serde_json::to_string(&f).unwrap();
        let back: Frontier = serde_json::from_str(&json).unwrap();
        assert_eq!(back, f);
        assert!(Frontier::from_parts(3, vec![[0; 32]]).is_err());
    }

    #[test]
    fn a_frontier_rebuilt_from_the_last_leaf_is_the_one_built_leaf_by_leaf() {
        let leaves: Vec<Hash> = (0u32..300).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let mut f = Frontier::new();
        for n in 1..=leaves.len() {
            f.push(leaves[n - 1]);
            let p = path(n - 1, &leaves[..n]);
            let rebuilt = Frontier::from_last_leaf(n as u64, &leaves[n - 1], &p)
                .unwrap_or_else(|e| panic!("size {n}: {e}"));
            assert_eq!(rebuilt, f, "size {n}");
            if !p.is_empty() {
                let mut bad = p.clone();
                bad[p.len() - 1][0] ^= 1;
                let wrong = Frontier::from_last_leaf(n as u64, &leaves[n - 1], &bad).unwrap();
                assert_ne!(wrong.root(), f.root(), "size {n}");
                assert!(
                    Frontier::from_last_leaf(n as u64, &leaves[n - 1], &p[1..]).is_err(),
                    "size {n}: a short path"
                );
            }
        }
        assert!(Frontier::from_last_leaf(0, &leaves[0], &[]).is_err());
    }

    #[test]
    fn pushing_aligned_subtrees_is_pushing_their_leaves() {
        let leaves: Vec<Hash> = (0u32..300).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        for (start, end) in [
            (0, 300),
            (0, 256),
            (1, 300),
            (37, 298),
            (256, 299),
            (128, 129),
        ] {
            let mut f = Frontier::new();
            for l in &leaves[..start] {
                f.push(*l);
            }
            // Greedy: at each point the largest aligned subtree that fits.
            let mut p = start as u64;
            while p < end as u64 {
                let mut h = if p == 0 { 63 } else { p.trailing_zeros() };
                while p + (1u64 << h) > end as u64 {
                    h -= 1;
                }
                let w = 1usize << h;
                f.push_subtree(h, subtree_root(&leaves[p as usize..p as usize + w]))
                    .unwrap();
                p += w as u64;
            }
            assert_eq!(f.size(), end as u64);
            assert_eq!(f.root(), mth(&leaves[..end]), "{start}..{end}");
        }
        let mut f = Frontier::new();
        f.push(leaves[0]);
        assert!(f.push_subtree(1, leaves[1]).is_none(), "not aligned");
    }

    #[test]
    fn consistency_proofs_from_the_reference_verify_and_tampered_ones_fail() {
        let leaves: Vec<Hash> = (0u32..70).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        for n in 1..=leaves.len() {
            let second_root = mth(&leaves[..n]);
            for m in 0..=n {
                let first_root = mth(&leaves[..m]);
                let p = if m == 0 {
                    vec![]
                } else {
                    proof(m, &leaves[..n])
                };
                verify_consistency(m as u64, n as u64, &first_root, &second_root, &p)
                    .unwrap_or_else(|e| panic!("{m}->{n}: {e}"));
                if m > 0 && m < n {
                    let mut bad = p.clone();
                    bad[0][0] ^= 1;
                    assert!(
                        verify_consistency(m as u64, n as u64, &first_root, &second_root, &bad)
                            .is_err()
                    );
                    let mut wrong = first_root;
                    wrong[5] ^= 1;
                    assert!(
                        verify_consistency(m as u64, n as u64, &wrong, &second_root, &p).is_err()
                    );
                }
            }
        }
    }

    #[test]
    fn inclusion_proofs_from_the_reference_verify_and_wrong_indices_fail() {
        let leaves: Vec<Hash> = (0u32..40).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        for n in 1..=leaves.len() {
            let root = mth(&leaves[..n]);
            for m in 0..n {
                let p = path(m, &leaves[..n]);
                verify_inclusion(&leaves[m], m as u64, n as u64, &p, &root)
                    .unwrap_or_else(|e| panic!("{m} in {n}: {e}"));
                if n > 1 {
                    let other = (m + 1) % n;
                    assert!(
                        verify_inclusion(&leaves[m], other as u64, n as u64, &p, &root).is_err()
                    );
                }
            }
        }
    }
}
