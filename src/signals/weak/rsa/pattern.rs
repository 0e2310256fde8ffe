//! badkeys' `rsapoly`: moduli built as products of sparse, polynomial-structured primes
//! (seen in Nautilus- and CompleteFTP-generated keys), which factor in polynomial time.
//!
//! Exactly badkeys' rule: the modulus has at least 500 bits, fewer than 40% of its bits set and
//! fewer than 40% of its lower half's, and no factor up to 65537 (the caller checks that). Then
//! every chunk of the modulus except the lowest is tested against a forced-zero mask:
//! `nautilus` for 128-bit chunks with bits 16..63 clear, `completeftp` for 32-bit chunks with
//! bits 20..29 clear; a second all-zero chunk means a false positive. A low-density modulus
//! that matches neither is badkeys' untyped `rsapoly` finding.

use num_bigint::BigUint;

/// Which structure matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PolyVariant {
    /// 128-bit chunks, bits 16..63 zero.
    Nautilus,
    /// 32-bit chunks, bits 20..29 zero.
    CompleteFtp,
    /// Low bit density in both halves, no known mask.
    Unidentified,
}

impl PolyVariant {
    /// badkeys' subtest name.
    pub fn name(self) -> Option<&'static str> {
        match self {
            Self::Nautilus => Some("nautilus"),
            Self::CompleteFtp => Some("completeftp"),
            Self::Unidentified => None,
        }
    }
}

/// A low-density modulus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PolyPattern {
    /// The structure.
    pub variant: PolyVariant,
    /// Set bits, in percent of the bit length (rounded down, as badkeys).
    pub bit_percent: u64,
}

/// Chunk `index` of `width` bits (32 or 128) of `n`, from its little-endian limbs.
fn chunk(limbs: &[u64], width: u32, index: u64) -> u128 {
    let word = |i: u64| -> u128 {
        usize::try_from(i)
            .ok()
            .and_then(|i| limbs.get(i))
            .map_or(0, |&w| u128::from(w))
    };
    if width == 128 {
        word(2 * index) | (word(2 * index + 1) << 64)
    } else {
        (word(index / 2) >> (32 * (index % 2))) & 0xffff_ffff
    }
}

/// badkeys' `_checkbits`: chunks 1.. all clear under `mask`, and none of chunks 2..top zero.
fn check_bits(limbs: &[u64], bits: u64, width: u32, mask: u128) -> bool {
    let chunks = bits.div_ceil(u64::from(width));
    if chunks < 2 {
        return true;
    }
    let mut set = 0u128;
    for c in 1..chunks {
        let value = chunk(limbs, width, c);
        set |= value & mask;
        if c >= 2 && value == 0 {
            // With the terminal zero badkeys always counts, this is its second zero chunk.
            return false;
        }
    }
    set == 0
}

fn bit_percent(set: u64, bits: u64) -> u64 {
    (set * 100).checked_div(bits).unwrap_or(0)
}

/// badkeys' `rsapoly` for a modulus with no factor up to 65537.
pub(super) fn rsapoly(n: &BigUint, limbs: &[u64]) -> Option<PolyPattern> {
    let bits = n.bits();
    let pct = bit_percent(n.count_ones(), bits);
    if pct >= 40 || bits < 500 {
        return None;
    }
    let half = bits / 2;
    // The lower half as badkeys sees it: `n mod 2^(bits/2)`, measured against its own length.
    let mut lower_set = 0u64;
    let mut lower_bits = 0u64;
    for (i, &w) in limbs.iter().enumerate() {
        let start = i as u64 * 64;
        if start >= half {
            break;
        }
        let keep = (half - start).min(64);
        let w = if keep == 64 {
            w
        } else {
            w & ((1u64 << keep) - 1)
        };
        if w != 0 {
            lower_set += u64::from(w.count_ones());
            lower_bits = start + 64 - u64::from(w.leading_zeros());
        }
    }
    if bit_percent(lower_set, lower_bits) >= 40 {
        return None;
    }
    let variant = if check_bits(limbs, bits, 128, 0xffff_ffff_ffff_0000) {
        PolyVariant::Nautilus
    } else if check_bits(limbs, bits, 32, 0x3ff0_0000) {
        PolyVariant::CompleteFtp
    } else {
        PolyVariant::Unidentified
    };
    Some(PolyPattern {
        variant,
        bit_percent: pct,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number(limbs: &[u64]) -> BigUint {
        BigUint::from_slice(
            &limbs
                .iter()
                .flat_map(|d| [*d as u32, (*d >> 32) as u32])
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn masks_select_the_variant() {
        // Every 64-bit word holds a small nonzero value: 128-bit chunks have bits 16..63 clear.
        let limbs: Vec<u64> = (0..10).map(|i| 0x1235 + i).collect();
        let n = number(&limbs);
        let found = rsapoly(&n, &limbs);
        assert_eq!(found.map(|f| f.variant), Some(PolyVariant::Nautilus));

        // Values in bits 0..19 and 30..31 of every 32-bit half-word.
        let limbs: Vec<u64> = (0..10)
            .map(|i| ((0x8001_0033u64 + i) << 32) | (0x0004_0105 + i))
            .collect();
        let n = number(&limbs);
        let found = rsapoly(&n, &limbs);
        assert_eq!(found.map(|f| f.variant), Some(PolyVariant::CompleteFtp));

        // Sparse but without either mask.
        let limbs: Vec<u64> = (0..10).map(|i| 0x0101_0000_1000_0001 << (i % 3)).collect();
        let n = number(&limbs);
        assert_eq!(
            rsapoly(&n, &limbs).map(|f| f.variant),
            Some(PolyVariant::Unidentified)
        );
    }

    #[test]
    fn zero_chunks_and_dense_moduli_are_not_patterns() {
        // A zero 128-bit chunk in the middle: badkeys' false-positive guard, both masks fail.
        let mut limbs: Vec<u64> = (0..10).map(|i| 0x1235 + i).collect();
        limbs[4] = 0;
        limbs[5] = 0;
        let n = number(&limbs);
        assert_eq!(
            rsapoly(&n, &limbs).map(|f| f.variant),
            Some(PolyVariant::Unidentified)
        );

        let dense: Vec<u64> = (0..32)
            .map(|i| 0x5555_5555_5555_5555 ^ (i * 0x0101))
            .collect();
        assert_eq!(rsapoly(&number(&dense), &dense), None);
        // Too short.
        let short: Vec<u64> = (0..7).map(|i| 0x1235 + i).collect();
        assert_eq!(rsapoly(&number(&short), &short), None);
    }
}
