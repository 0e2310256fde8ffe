//! DSA public-key checks.
//!
//! `dsa_sparse` (confirmed): the 1024-bit prime `p` has the sparse structure of a flawed
//! generator (badkeys' `dsasparse`): its top 24 bits are `0x800000`, and above bit 168 every
//! 32-bit word, once the top bit is taken out, has bits 4 to 23 clear. Keys on such
//! parameters are recoverable, so the finding is a compromise.
//!
//! DSA keys also go through the blocklists (by the badkeys hash of `y`), like every key.

use serde_json::json;

use crate::signals::Finding;

/// Every DSA check for a key with prime `p` (big-endian bytes; `q`, `g`, `y` are not used
/// by any check yet).
pub fn check_dsa(p: &[u8]) -> Vec<Finding> {
    let p = crate::signals::exposure::identity::min_bytes(p);
    if is_sparse(p) {
        vec![Finding::compromised(
            "dsa_sparse",
            "DSA prime p has the sparse structure of a flawed key generator (badkeys dsasparse): \
             keys on these parameters are recoverable",
            json!({ "p_bits": 1024 }),
        )]
    } else {
        Vec::new()
    }
}

/// The sparse structure, on `p` as minimal big-endian bytes.
fn is_sparse(p: &[u8]) -> bool {
    // 1024 bits, starting 0x80 0x00 0x00 (bits 1000..1023 = 0x800000).
    if p.len() != 128 || p[..3] != [0x80, 0x00, 0x00] {
        return false;
    }
    // Bits 168 and up, as 32-bit words from the low end: bytes 0..107 of the big-endian
    // form, whose last 21 bytes (168 bits) are dropped. The top bit (1023, bit 855 of the
    // shifted value) is set by the first test and ignored here.
    let upper = &p[..128 - 21];
    let mut words = Vec::with_capacity(upper.len().div_ceil(4));
    let mut end = upper.len();
    while end > 0 {
        let start = end.saturating_sub(4);
        let w = upper[start..end]
            .iter()
            .fold(0u32, |acc, &b| (acc << 8) | u32::from(b));
        words.push(w);
        end = start;
    }
    if let Some(top) = words.last_mut() {
        // Bit 855 of the shifted value: bit 23 of word 26 (855 = 26 · 32 + 23).
        *top &= !(1 << 23);
    }
    words.iter().all(|w| w & 0x00ff_fff0 == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sparse() -> Vec<u8> {
        let mut p = vec![0u8; 128];
        p[0] = 0x80;
        // Above bit 168: only bits 0..3 and 24..31 of each word set.
        for (i, b) in p.iter_mut().enumerate().take(107).skip(3) {
            // Byte i of the big-endian form; its position within a 32-bit word counted
            // from the low end of the shifted value (which ends at byte 106).
            let from_low = 106 - i;
            *b = match from_low % 4 {
                0 => 0x0f,
                3 => 0xa5,
                _ => 0,
            };
        }
        for b in &mut p[107..] {
            *b = 0x5a;
        }
        p
    }

    #[test]
    fn the_sparse_structure_is_found_and_a_dense_prime_is_not() {
        assert!(is_sparse(&sparse()));
        assert_eq!(check_dsa(&sparse())[0].check, "dsa_sparse");
        let mut dense = sparse();
        dense[50] = 0xff;
        assert!(!is_sparse(&dense));
        let mut other_top = sparse();
        other_top[1] = 1;
        assert!(!is_sparse(&other_top));
        assert!(!is_sparse(&sparse()[1..]));
        assert!(check_dsa(&[]).is_empty());
    }
}
