//! UTF-16 text (Windows editors and PowerShell write it; so do resources inside executables),
//! narrowed to one byte per code unit so that the text searches read it: ASCII stays itself
//! and every other unit becomes `?`. Key material is ASCII, lines stay lines, and byte `i`
//! of the narrowed text is code unit `i` of the original, so places map back exactly.

use zeroize::Zeroizing;

/// How much of a file shows whether it is UTF-16 text without a byte order mark.
const PROBE: usize = 8192;
/// The share of code units (in percent) that must be ASCII or Latin-1 text for bytes
/// without a byte order mark to be taken for UTF-16 text.
const TEXT_PERCENT: usize = 95;
/// The fewest code units that tell.
const MIN_UNITS: usize = 16;

/// A byte order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Order {
    /// Little-endian: the low byte first.
    Le,
    /// Big-endian.
    Be,
}

/// `PRIVATE KEY-----` (the text marker) in UTF-16, little- and big-endian.
pub(super) fn markers() -> [Vec<u8>; 2] {
    let marker = super::PEM_MARKER.as_bytes();
    [
        marker.iter().flat_map(|&b| [b, 0]).collect(),
        marker.iter().flat_map(|&b| [0, b]).collect(),
    ]
}

fn unit(pair: &[u8], order: Order) -> u16 {
    match (order, pair) {
        (Order::Le, [lo, hi]) => u16::from_le_bytes([*lo, *hi]),
        (Order::Be, [hi, lo]) => u16::from_be_bytes([*hi, *lo]),
        _ => 0,
    }
}

/// Each code unit of `bytes` (read in `order`) as one byte: ASCII as itself, anything else
/// as `?`; an odd last byte is dropped.
pub(super) fn narrow(bytes: &[u8], order: Order) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(bytes.len() / 2));
    out.extend(bytes.chunks_exact(2).map(|pair| {
        u8::try_from(unit(pair, order))
            .ok()
            .filter(u8::is_ascii)
            .unwrap_or(b'?')
    }));
    out
}

/// The share of the first code units (in percent) that are text: ASCII printable characters,
/// tabs and line breaks, or Latin-1 letters; 0 when one is NUL (never in text).
fn text_percent(bytes: &[u8], order: Order) -> usize {
    let probe = &bytes[..bytes.len().min(PROBE)];
    let units = probe.len() / 2;
    let mut text = 0usize;
    for pair in probe.chunks_exact(2) {
        match unit(pair, order) {
            0 => return 0,
            0x09 | 0x0a | 0x0d | 0x20..0x7f | 0xa0..=0xff => text += 1,
            _ => {}
        }
    }
    (text * 100).checked_div(units).unwrap_or(0)
}

/// The narrowed text, when `bytes` is UTF-16 text: it starts with a byte order mark and
/// holds no NUL character, or it is `binary` (it has NUL bytes) and its first code units
/// (at least 16) are nearly all text in one byte order.
pub(super) fn text(bytes: &[u8], binary: bool) -> Option<Zeroizing<Vec<u8>>> {
    let bom = match bytes {
        [0xff, 0xfe, ..] => Some(Order::Le),
        [0xfe, 0xff, ..] => Some(Order::Be),
        _ => None,
    };
    if let Some(order) = bom {
        let rest = &bytes[2..];
        return (rest.len() < 2 || text_percent(rest, order) > 0).then(|| narrow(rest, order));
    }
    if !binary || bytes.len() < 2 * MIN_UNITS {
        return None;
    }
    [Order::Le, Order::Be]
        .into_iter()
        .find(|&order| text_percent(bytes, order) >= TEXT_PERCENT)
        .map(|order| narrow(bytes, order))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16(s: &str, order: Order, bom: bool) -> Vec<u8> {
        let mut out = Vec::new();
        if bom {
            out.extend(match order {
                Order::Le => [0xff, 0xfe],
                Order::Be => [0xfe, 0xff],
            });
        }
        for u in s.encode_utf16() {
            out.extend(match order {
                Order::Le => u.to_le_bytes(),
                Order::Be => u.to_be_bytes(),
            });
        }
        out
    }

    #[test]
    fn both_orders_with_and_without_a_mark() {
        let s = "-----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----\nnaïve €\n";
        for order in [Order::Le, Order::Be] {
            for bom in [true, false] {
                let got = text(&utf16(s, order, bom), true).unwrap();
                assert_eq!(
                    got.as_slice(),
                    b"-----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----\nna?ve ?\n",
                    "{order:?} {bom}"
                );
            }
        }
        // Plain ASCII, UTF-8 and binary data are not UTF-16 text.
        assert!(text(s.as_bytes(), false).is_none());
        let elf: Vec<u8> = (0..4096u32).map(|i| (i * 31 % 256) as u8).collect();
        assert!(text(&elf, true).is_none());
        assert!(text(&[0u8; 64], true).is_none());
        assert!(text(&[0xff, 0xfe, 0, 0, 1, 0], true).is_none());
    }
}
