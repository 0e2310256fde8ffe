//! Base64 in its looser real-world forms: lenient decoding of repaired PEM bodies, PEM that
//! was base64-encoded once more (Kubernetes secrets, CI variables: `LS0tLS1CRUdJTi...` is
//! `-----BEGIN`), and bare base64 DER private keys in a `.env` value or a config string.

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use zeroize::Zeroizing;

use super::{Block, Extraction, Seen, material};

/// `-----BEGIN` base64-encoded from the start of a run.
pub(super) const PEM_IN_BASE64: &str = "LS0tLS1CRUdJTi";

/// The first bytes of common DER private keys as they appear in base64 from the start of
/// the key: PKCS#8 RSA (`30 82 .. .. 02 01 00 30 0d 06 09 2a 86 48 86 f7 0d 01 01 01 05 00`),
/// PKCS#8 EC on P-256 (with and without the public key) and P-384, PKCS#8 Ed25519 (v1 and
/// v2), PKCS#1 RSA-2048/3072/4096, SEC1 P-256 and P-384, and an encrypted PKCS#8 key under
/// PBES2 (`30 82 .. .. 30 .. 06 09 2a 86 48 86 f7 0d 01 05 0d 30`, RFC 8018). Each names bytes
/// that a certificate or a public key never starts with.
pub(super) const BARE_DER_MARKERS: &[&str] = &[
    "ADANBgkqhkiG9w0BAQEFAAS",
    "AgEAMBMGByqGSM49AgEGCCqGSM49AwEH",
    "AQAwEwYHKoZIzj0CAQYIKoZIzj0DAQc",
    "AgEAMBAGByqGSM49AgEGBSuBBAAi",
    "wBQYDK2VwBCIEI",
    "IBAAKCAQEA",
    "IBAAKCAYEA",
    "IBAAKCAgEA",
    "MHcCAQEEI",
    "MIGkAgEBBDA",
    "BgkqhkiG9w0BBQ0w",
];

/// How far before a bare-DER marker the key may start (`MIIEvQIB` before `ADAN...`).
const MAX_MARKER_OFFSET: usize = 12;
/// The longest base64 run read (a PEM RSA-16384 key, base64-encoded again, is about 17 KiB).
const MAX_RUN: usize = 64 * 1024;

const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Whether `b` is in the standard base64 alphabet (padding included).
pub(super) fn is_base64(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'='
}

/// Whether `b` is a base64 data character (padding excluded): what may precede the start
/// of a run is anything else, `=` included (`KEY=MIIE...`).
fn is_base64_data(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'+' || b == b'/'
}

/// Decodes base64 text, padded or not; the result is wiped when dropped.
pub(super) fn decode(text: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    // Padding may only end the text; anything after it is not one base64 string.
    let text = match text.iter().position(|&b| b == b'=') {
        Some(i) if text[i..].iter().any(|&b| b != b'=') => return None,
        Some(i) => &text[..i],
        None => text,
    };
    let mut out = Zeroizing::new(Vec::with_capacity(text.len() / 4 * 3 + 3));
    LENIENT.decode_vec(text, &mut out).ok()?;
    Some(out)
}

/// The base64 run starting at `start`: contiguous base64 characters, continued over line
/// breaks when a line has a usual wrap width (64 or 76, as `base64` and PEM tools wrap);
/// returns the run's end and its text.
fn run_from(bytes: &[u8], start: usize) -> (usize, Zeroizing<Vec<u8>>) {
    let mut text = Zeroizing::new(Vec::new());
    let mut i = start;
    let limit = bytes.len().min(start + MAX_RUN);
    loop {
        let line_start = i;
        while i < limit && is_base64(bytes[i]) {
            i += 1;
        }
        text.extend_from_slice(&bytes[line_start..i]);
        let width = i - line_start;
        let next = match bytes.get(i..) {
            Some([b'\r', b'\n', ..]) => i + 2,
            Some([b'\n', ..]) => i + 1,
            _ => break,
        };
        let continues = (width == 64 || width == 76)
            && !text.ends_with(b"=")
            && bytes.get(next).is_some_and(|&b| is_base64(b));
        if !continues {
            break;
        }
        i = next;
    }
    (i, text)
}

/// PEM that was base64-encoded again, at `hit` (the start of a run): the decoded text is
/// searched as text.
pub(super) fn pem_in_base64_at(bytes: &[u8], hit: usize, depth: u8) -> Option<Block> {
    if hit > 0 && is_base64_data(bytes[hit - 1]) {
        return None;
    }
    let (end, text) = run_from(bytes, hit);
    let Some(decoded) = decode(&text) else {
        return Some(nothing_in(hit, end));
    };
    let mut inner = Extraction::default();
    super::text(&decoded, depth + 1, super::Positions::Lines, &mut inner);
    let seen: Vec<Seen> = inner.into_seen();
    if seen.is_empty() {
        return Some(nothing_in(hit, end));
    }
    Some(Block {
        start: hit,
        end,
        seen,
    })
}

/// A block without keys over a base64 run that yielded nothing, from the marker at `hit`:
/// the scan skips the later markers inside the run (every wrapped line of a run may start
/// like a key, and each would read the whole run again). A run holds only base64 and line
/// breaks, where no other marker can match.
fn nothing_in(hit: usize, end: usize) -> Block {
    Block {
        start: hit,
        end: end.max(hit),
        seen: Vec::new(),
    }
}

/// A bare base64 DER private key around the marker at `hit`.
pub(super) fn bare_der_at(bytes: &[u8], hit: usize) -> Option<Block> {
    let from = hit.saturating_sub(MAX_MARKER_OFFSET);
    let back = bytes[from..hit]
        .iter()
        .rev()
        .take_while(|&&b| is_base64_data(b))
        .count();
    let start = hit - back;
    // A DER SEQUENCE (0x30) starts with `M` in base64, and the run must start there.
    if bytes.get(start) != Some(&b'M') || (start > 0 && is_base64_data(bytes[start - 1])) {
        return None;
    }
    let (end, text) = run_from(bytes, start);
    let Some(seen) = decode(&text).and_then(|der| material::private_der(&der, "base64")) else {
        return Some(nothing_in(hit, end));
    };
    Some(Block {
        start,
        end,
        seen: vec![seen],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_is_lenient_about_padding_only() {
        assert_eq!(decode(b"QUJD").unwrap().as_slice(), b"ABC");
        assert_eq!(decode(b"QUI").unwrap().as_slice(), b"AB");
        assert_eq!(decode(b"QUI=").unwrap().as_slice(), b"AB");
        assert!(decode(b"QUI=QUI=").is_none());
        assert_eq!(PEM_IN_BASE64.len() % 4, 2);
        assert!(
            LENIENT
                .decode(format!("{PEM_IN_BASE64}AA"))
                .unwrap()
                .starts_with(b"-----BEGIN")
        );
    }

    #[test]
    fn a_run_that_yields_nothing_is_skipped_whole() {
        // Every 64-column line starts like a SEC1 key; none is one.
        let line = format!("MHcCAQEEI{}\n", "A".repeat(55));
        let text = line.repeat(100);
        let b = bare_der_at(text.as_bytes(), 0).unwrap();
        assert!(b.seen.is_empty());
        assert_eq!(b.end, text.len() - 1, "the whole run is skipped");
        let line = format!("{PEM_IN_BASE64}{}\n", "A".repeat(64 - PEM_IN_BASE64.len()));
        let text = line.repeat(100);
        let b = pem_in_base64_at(text.as_bytes(), 0, 0).unwrap();
        assert!(b.seen.is_empty());
        assert_eq!(b.end, text.len() - 1);
    }

    #[test]
    fn runs_continue_over_wrapped_lines_only() {
        let wrapped = format!("{}\n{}\nxyz", "A".repeat(76), "B".repeat(10));
        let (end, text) = run_from(wrapped.as_bytes(), 0);
        assert_eq!(text.len(), 86);
        assert_eq!(end, 87);
        let short = "AAAA\nBBBB";
        assert_eq!(run_from(short.as_bytes(), 0).1.len(), 4);
    }
}
