//! The incremental check: a stored product of the inventory's moduli, against which one new
//! modulus is tested with `gcd(n, P mod n)`.

use std::thread;

use super::nat::{Backend, Nat};
use super::{bit_len, is_trivial, strip, tree};

/// First bytes of a serialised [`ProductIndex`]: a name and a format version.
const MAGIC: &[u8; 8] = b"crpidx\x00\x01";
/// Magic, modulus count (u64 LE), product length in bytes (u64 LE).
const HEADER_LEN: usize = 8 + 8 + 8;

/// The product of a set of distinct RSA moduli, kept so a new key can be checked against the
/// whole set with one reduction and one gcd instead of a new batch run: against 100,000
/// RSA-2048 moduli (a 24 MiB product) a check takes 120–170 ms with either backend on the
/// 2-core development VM, and building the product 3 s (malachite) to 15 s (dashu).
///
/// It answers *whether* a new modulus shares a factor with the set, not with which member:
/// on a hit, [`shares_with`](super::shares_with) over the stored moduli names them.
/// Its size is about the total size of the moduli (256 bytes per RSA-2048 key).
#[derive(Clone, PartialEq)]
pub struct ProductIndex {
    product: Backend,
    count: u64,
}

/// What [`ProductIndex::check`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IndexHit {
    /// The new modulus shares a factor of this many bits with the set.
    SharedFactor {
        /// Bit length of `gcd(n, P)` (never its value).
        factor_bits: u64,
    },
    /// The new modulus divides the product: it is already in the set, or every one of its
    /// primes is shared with some member.
    WholeModulus {
        /// Bit length of the modulus.
        modulus_bits: u64,
    },
}

/// A serialised [`ProductIndex`] that cannot be read back.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProductIndexError {
    /// The bytes do not start with the product index magic and version.
    #[error("not a product index (bad magic or unsupported version)")]
    BadMagic,
    /// The bytes are shorter or longer than their header says.
    #[error("product index length mismatch: header says {expected} bytes, got {actual}")]
    Length {
        /// Length the header implies.
        expected: u64,
        /// Length received.
        actual: u64,
    },
    /// The product is zero, or has a leading zero byte, or is not one for an empty set.
    #[error("product index holds a malformed product for {count} moduli")]
    Malformed {
        /// The modulus count in the header.
        count: u64,
    },
}

impl std::fmt::Debug for ProductIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProductIndex")
            .field("count", &self.count)
            .field("product_bits", &self.product.bits())
            .finish()
    }
}

impl Default for ProductIndex {
    fn default() -> Self {
        Self {
            product: Backend::one(),
            count: 0,
        }
    }
}

impl ProductIndex {
    /// The product of the distinct non-trivial moduli in `moduli` (big-endian bytes), built
    /// with a product tree on all available cores.
    pub fn build<M: AsRef<[u8]> + Sync>(moduli: &[M]) -> Self {
        let (unique, _) = super::dedup(moduli);
        let threads = thread::available_parallelism().map_or(1, |n| n.get());
        let leaves: Vec<Backend> =
            tree::par_map(unique.len(), threads, |i| Backend::from_be_bytes(unique[i]));
        Self {
            product: tree::product(leaves, threads),
            count: unique.len() as u64,
        }
    }

    /// An index over a product given whole (big-endian bytes), such as a published product
    /// of known-bad primes; `count` says how many factors it holds. `None` for zero.
    pub fn from_product(product: &[u8], count: u64) -> Option<Self> {
        let m = strip(product);
        if m.is_empty() {
            return None;
        }
        Some(Self {
            product: Backend::from_be_bytes(m),
            count,
        })
    }

    /// How many moduli the product holds.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// Whether the product holds no modulus.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Adds one modulus to the product (a new key that passed [`check`](Self::check)). Adding
    /// a modulus already in the set makes later checks of it a [`IndexHit::WholeModulus`],
    /// as they would be anyway. Zero and one are ignored.
    pub fn insert(&mut self, modulus: &[u8]) {
        let m = strip(modulus);
        if is_trivial(m) {
            return;
        }
        self.product = self.product.mul(&Backend::from_be_bytes(m));
        self.count += 1;
    }

    /// Whether `modulus` (big-endian bytes) shares a factor with the set: `gcd(n, P mod n)`.
    /// `None` when it shares nothing, or is zero or one.
    pub fn check(&self, modulus: &[u8]) -> Option<IndexHit> {
        let m = strip(modulus);
        if is_trivial(m) {
            return None;
        }
        let n = Backend::from_be_bytes(m);
        let r = self.product.rem(&n);
        if r.is_zero() {
            return Some(IndexHit::WholeModulus {
                modulus_bits: bit_len(m),
            });
        }
        let g = n.gcd(&r);
        (!g.is_one()).then(|| IndexHit::SharedFactor {
            factor_bits: g.bits(),
        })
    }

    /// The index as bytes, for the store: magic and version, the modulus count and the
    /// product's length (both u64 little-endian), then the product big-endian.
    pub fn to_bytes(&self) -> Vec<u8> {
        let product = self.product.to_be_bytes();
        let mut out = Vec::with_capacity(HEADER_LEN + product.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.count.to_le_bytes());
        out.extend_from_slice(&(product.len() as u64).to_le_bytes());
        out.extend_from_slice(&product);
        out
    }

    /// Reads back what [`to_bytes`](Self::to_bytes) wrote.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ProductIndexError> {
        let (header, product) = bytes
            .split_at_checked(HEADER_LEN)
            .ok_or(ProductIndexError::BadMagic)?;
        let (magic, rest) = header.split_at(MAGIC.len());
        if magic != MAGIC {
            return Err(ProductIndexError::BadMagic);
        }
        let (count, len) = rest.split_at(8);
        let count = u64::from_le_bytes(count.try_into().map_err(|_| ProductIndexError::BadMagic)?);
        let len = u64::from_le_bytes(len.try_into().map_err(|_| ProductIndexError::BadMagic)?);
        if product.len() as u64 != len {
            return Err(ProductIndexError::Length {
                expected: HEADER_LEN as u64 + len,
                actual: bytes.len() as u64,
            });
        }
        let well_formed = match product.first() {
            None => false,
            Some(0) => false,
            Some(_) => count > 0 || product == [1],
        };
        if !well_formed {
            return Err(ProductIndexError::Malformed { count });
        }
        Ok(Self {
            product: Backend::from_be_bytes(product),
            count,
        })
    }
}
