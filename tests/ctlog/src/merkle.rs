//! Merkle tree hashing and proofs, RFC 6962 §2.1.
//!
//! Every full, aligned subtree hash is kept in memory (`levels[h][i]` is the hash of leaves
//! `i*2^h .. (i+1)*2^h`), so any `MTH(D[a:b])` the RFC's recursion asks for costs
//! O(log n): the left half of every split is such a full subtree.

use sha2::{Digest, Sha256};

pub type Hash = [u8; 32];

/// `SHA256(0x00 ‖ leaf_input)`.
pub fn leaf_hash(leaf_input: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(leaf_input);
    h.finalize().into()
}

/// `SHA256(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// Largest power of two strictly smaller than `n` (n >= 2).
fn split(n: u64) -> u64 {
    let mut k = 1u64;
    while k << 1 < n {
        k <<= 1;
    }
    k
}

/// The tree, as levels of full subtree hashes.
#[derive(Default)]
pub struct Tree {
    levels: Vec<Vec<Hash>>,
}

impl Tree {
    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    pub fn push(&mut self, leaf: Hash) {
        if self.levels.is_empty() {
            self.levels.push(Vec::new());
        }
        self.levels[0].push(leaf);
        let mut h = 0;
        while self.levels[h].len().is_multiple_of(2) {
            let n = self.levels[h].len();
            let parent = node_hash(&self.levels[h][n - 2], &self.levels[h][n - 1]);
            if self.levels.len() == h + 1 {
                self.levels.push(Vec::new());
            }
            self.levels[h + 1].push(parent);
            h += 1;
        }
    }

    pub fn leaf(&self, index: u64) -> Option<Hash> {
        self.levels
            .first()?
            .get(usize::try_from(index).ok()?)
            .copied()
    }

    /// Hash of the full subtree at `height` and `index` (leaves `index*2^height ..`), if complete.
    pub fn full_subtree(&self, height: usize, index: u64) -> Option<Hash> {
        self.levels
            .get(height)?
            .get(usize::try_from(index).ok()?)
            .copied()
    }

    /// `MTH(D[start:start+n])`; callers keep `start + n <= size` and `start` aligned as in the RFC.
    fn mth(&self, start: u64, n: u64) -> Hash {
        if n == 0 {
            return Sha256::digest([]).into();
        }
        if n.is_power_of_two() && start.is_multiple_of(n) {
            let height = n.trailing_zeros() as usize;
            if let Some(h) = self.full_subtree(height, start >> height) {
                return h;
            }
        }
        let k = split(n);
        node_hash(&self.mth(start, k), &self.mth(start + k, n - k))
    }

    /// Root of the tree of the first `size` leaves.
    pub fn root(&self, size: u64) -> Hash {
        self.mth(0, size.min(self.size()))
    }

    /// Audit path for leaf `m` in the tree of size `n` (RFC 6962 §2.1.1, `PATH(m, D[n])`).
    pub fn inclusion_proof(&self, m: u64, n: u64) -> Vec<Hash> {
        let mut out = Vec::new();
        self.path(m, 0, n, &mut out);
        out
    }

    fn path(&self, m: u64, start: u64, n: u64, out: &mut Vec<Hash>) {
        if n <= 1 {
            return;
        }
        let k = split(n);
        if m < k {
            self.path(m, start, k, out);
            out.push(self.mth(start + k, n - k));
        } else {
            self.path(m - k, start + k, n - k, out);
            out.push(self.mth(start, k));
        }
    }

    /// Consistency proof between sizes `m <= n` (RFC 6962 §2.1.2, `PROOF(m, D[n])`).
    pub fn consistency_proof(&self, m: u64, n: u64) -> Vec<Hash> {
        let mut out = Vec::new();
        if m > 0 && m < n {
            self.subproof(m, 0, n, true, &mut out);
        }
        out
    }

    fn subproof(&self, m: u64, start: u64, n: u64, b: bool, out: &mut Vec<Hash>) {
        if m == n {
            if !b {
                out.push(self.mth(start, n));
            }
            return;
        }
        let k = split(n);
        if m <= k {
            self.subproof(m, start, k, b, out);
            out.push(self.mth(start + k, n - k));
        } else {
            self.subproof(m - k, start + k, n - k, false, out);
            out.push(self.mth(start, k));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => Sha256::digest([]).into(),
            1 => leaves[0],
            n => {
                let k = split(n as u64) as usize;
                node_hash(&naive(&leaves[..k]), &naive(&leaves[k..]))
            }
        }
    }

    #[test]
    fn roots_match_the_recursive_definition() {
        let mut t = Tree::default();
        let mut leaves = Vec::new();
        for i in 0u32..70 {
            let l = leaf_hash(&i.to_be_bytes());
            leaves.push(l);
            t.push(l);
            for s in 0..=leaves.len() {
                assert_eq!(t.root(s as u64), naive(&leaves[..s]), "size {s}");
            }
        }
    }
}
