//! The optional backend: malachite (LGPL-3.0-only), pure Rust with GMP-derived algorithms
//! (FFT multiplication, sub-quadratic division and gcd). Compiled only with the `malachite`
//! feature; see the module docs for the licence reasoning.

use malachite_base::num::arithmetic::traits::{DivExact, Gcd, ModPowerOf2, Square};
use malachite_base::num::logic::traits::SignificantBits;
use malachite_nz::natural::Natural;
use malachite_nz::platform::Limb;

use super::nat::Nat;

const LIMB_BYTES: usize = size_of::<Limb>();

impl Nat for Natural {
    fn from_be_bytes(bytes: &[u8]) -> Self {
        // Least significant limb first, as malachite stores them.
        let limbs = bytes
            .rchunks(LIMB_BYTES)
            .map(|chunk| {
                chunk
                    .iter()
                    .fold(0, |acc: Limb, &b| (acc << 8) | Limb::from(b))
            })
            .collect();
        Natural::from_owned_limbs_asc(limbs)
    }

    fn to_be_bytes(&self) -> Vec<u8> {
        let mut out: Vec<u8> = self
            .to_limbs_asc()
            .iter()
            .rev()
            .flat_map(|limb| limb.to_be_bytes())
            .collect();
        let leading = out.iter().take_while(|&&b| b == 0).count();
        out.drain(..leading);
        out
    }

    fn one() -> Self {
        Natural::from(1u32)
    }

    fn is_one(&self) -> bool {
        *self == 1u32
    }

    fn is_zero(&self) -> bool {
        *self == 0u32
    }

    fn bits(&self) -> u64 {
        self.significant_bits()
    }

    fn mul(&self, rhs: &Self) -> Self {
        self * rhs
    }

    fn square(&self) -> Self {
        Square::square(self)
    }

    fn rem(&self, m: &Self) -> Self {
        self % m
    }

    fn div_exact(&self, d: &Self) -> Self {
        DivExact::div_exact(self, d)
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
        self << n
    }

    fn shr(self, n: u64) -> Self {
        self >> n
    }

    fn low_bits(self, n: u64) -> Self {
        ModPowerOf2::mod_power_of_2(self, n)
    }

    fn gcd(&self, rhs: &Self) -> Self {
        Gcd::gcd(self, rhs)
    }
}
