//! The default backend: dashu-int (MIT OR Apache-2.0), with Karatsuba, Toom-3 and NTT
//! multiplication and divide-and-conquer division.

use dashu_int::UBig;
use dashu_int::ops::{BitTest, Gcd};

use super::nat::Nat;

impl Nat for UBig {
    fn from_be_bytes(bytes: &[u8]) -> Self {
        UBig::from_be_bytes(bytes)
    }

    fn to_be_bytes(&self) -> Vec<u8> {
        UBig::to_be_bytes(self).into_vec()
    }

    fn one() -> Self {
        UBig::ONE
    }

    fn is_one(&self) -> bool {
        *self == UBig::ONE
    }

    fn is_zero(&self) -> bool {
        *self == UBig::ZERO
    }

    fn bits(&self) -> u64 {
        self.bit_len() as u64
    }

    fn mul(&self, rhs: &Self) -> Self {
        self * rhs
    }

    fn square(&self) -> Self {
        self.sqr()
    }

    fn rem(&self, m: &Self) -> Self {
        self % m
    }

    fn div_exact(&self, d: &Self) -> Self {
        self / d
    }

    fn div_floor(&self, d: &Self) -> Self {
        self / d
    }

    fn add(&self, rhs: &Self) -> Self {
        self + rhs
    }

    fn sub(&self, rhs: &Self) -> Self {
        self - rhs
    }

    fn shl(self, n: u64) -> Self {
        self << bit_count(n)
    }

    fn shr(self, n: u64) -> Self {
        self >> bit_count(n)
    }

    fn low_bits(mut self, n: u64) -> Self {
        self.clear_high_bits(bit_count(n));
        self
    }

    fn gcd(&self, rhs: &Self) -> Self {
        Gcd::gcd(self, rhs)
    }
}

/// dashu counts bits in `usize`; on 64-bit targets this is lossless, and elsewhere no number
/// this large fits in memory anyway.
fn bit_count(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}
