//! The few big-integer operations batch GCD needs, behind one trait so the library can be
//! swapped (see the module docs for why there are two backends and which one is the default).

/// A non-negative big integer. Implemented once per backend; everything else in batch GCD is
/// written against this trait.
pub(crate) trait Nat: Clone + Ord + Send + Sync + Sized {
    /// The number whose big-endian encoding is `bytes` (leading zeros allowed; empty is zero).
    fn from_be_bytes(bytes: &[u8]) -> Self;
    /// Minimal big-endian encoding: no leading zeros, empty for zero.
    fn to_be_bytes(&self) -> Vec<u8>;
    /// One.
    fn one() -> Self;
    /// Whether this is one.
    fn is_one(&self) -> bool;
    /// Whether this is zero.
    fn is_zero(&self) -> bool;
    /// Bit length (zero has none).
    fn bits(&self) -> u64;
    /// `self * rhs`.
    fn mul(&self, rhs: &Self) -> Self;
    /// `self * self`.
    fn square(&self) -> Self;
    /// `self mod m`, `m` non-zero.
    fn rem(&self, m: &Self) -> Self;
    /// `self / d` where `d` is known to divide `self`.
    fn div_exact(&self, d: &Self) -> Self;
    /// `floor(self / d)`, `d` non-zero.
    fn div_floor(&self, d: &Self) -> Self;
    /// `self + rhs`.
    fn add(&self, rhs: &Self) -> Self;
    /// `self - rhs`, where `rhs <= self`.
    fn sub(&self, rhs: &Self) -> Self;
    /// `self * 2^n`.
    fn shl(self, n: u64) -> Self;
    /// `floor(self / 2^n)`.
    fn shr(self, n: u64) -> Self;
    /// `self mod 2^n`.
    fn low_bits(self, n: u64) -> Self;
    /// The greatest common divisor.
    fn gcd(&self, rhs: &Self) -> Self;
}

/// The backend compiled in: malachite with the `malachite` feature, dashu otherwise.
#[cfg(feature = "malachite")]
pub(crate) type Backend = malachite_nz::natural::Natural;
/// The backend compiled in: malachite with the `malachite` feature, dashu otherwise.
#[cfg(not(feature = "malachite"))]
pub(crate) type Backend = dashu_int::UBig;

/// Name of the compiled-in backend, for logs and benchmark output.
pub const BACKEND: &str = if cfg!(feature = "malachite") {
    "malachite"
} else {
    "dashu"
};
