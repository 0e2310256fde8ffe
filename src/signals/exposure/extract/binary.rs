//! Private keys inside binary data (firmware images, executables, libraries, keystores,
//! memory dumps), each found with its byte offset:
//!
//! - Java keystores (`jks.rs`), read as a whole;
//! - DER private keys at any offset: a SEQUENCE header directly followed by the version
//!   and the first field of PKCS#8 (RFC 5958: `INTEGER 0` or `1`, then the algorithm's
//!   SEQUENCE), PKCS#1 (RFC 8017 §A.1.2: `INTEGER 0`, then the modulus) or SEC1 (RFC 5915:
//!   `INTEGER 1`, then the scalar's OCTET STRING); and encrypted PKCS#8 keys under PBES2 or
//!   a PKCS#12 scheme (a SEQUENCE holding the scheme's AlgorithmIdentifier). Each candidate
//!   must parse as a whole key of the length its header gives, with the same checks as any
//!   found key;
//! - PEM and the other text formats, in ASCII as compiled into a binary;
//! - the same PEM text in UTF-16 (either byte order, at either byte alignment).

use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use certresponder_inventory::inspect::der;

use super::utf16::{self, Order};
use super::{Extraction, Place, Positions, Seen, encrypted, jks, material};

/// The patterns searched for in binary data, by what follows a match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Anchor {
    /// The version and first field of a plaintext key, right after its SEQUENCE header.
    Key,
    /// The scheme OID of an encrypted PKCS#8 key, right after its AlgorithmIdentifier's
    /// SEQUENCE header, itself right after the key's.
    EncryptedKey,
    /// PEM's marker in UTF-16.
    Utf16(Order),
}

/// The byte patterns and their anchors.
fn patterns() -> Vec<(Vec<u8>, Anchor)> {
    let oid = |content: &[u8]| der::encode(der::TAG_OID, content);
    let [le, be] = utf16::markers();
    vec![
        // PKCS#8 v1 and v2 (OneAsymmetricKey): version, AlgorithmIdentifier.
        (vec![0x02, 0x01, 0x00, 0x30], Anchor::Key),
        (vec![0x02, 0x01, 0x01, 0x30], Anchor::Key),
        // PKCS#1: version 0, modulus.
        (vec![0x02, 0x01, 0x00, 0x02], Anchor::Key),
        // SEC1: version 1, the private scalar.
        (vec![0x02, 0x01, 0x01, 0x04], Anchor::Key),
        (oid(encrypted::OID_PBES2), Anchor::EncryptedKey),
        // The PKCS#12 PBE arc: every scheme's OID starts so (its last arc follows).
        (
            [&[der::TAG_OID, 10][..], encrypted::OID_PKCS12_PBE].concat(),
            Anchor::EncryptedKey,
        ),
        (le, Anchor::Utf16(Order::Le)),
        (be, Anchor::Utf16(Order::Be)),
    ]
}

fn automaton() -> &'static (AhoCorasick, Vec<Anchor>) {
    static AC: OnceLock<(AhoCorasick, Vec<Anchor>)> = OnceLock::new();
    AC.get_or_init(|| {
        let (bytes, anchors): (Vec<Vec<u8>>, Vec<Anchor>) = patterns().into_iter().unzip();
        // Fixed, valid patterns: building the automaton cannot fail.
        #[allow(clippy::expect_used)]
        let ac = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostFirst)
            .kind(Some(AhoCorasickKind::DFA))
            .build(bytes)
            .expect("the binary markers are valid patterns");
        (ac, anchors)
    })
}

/// Searches binary data.
pub(super) fn search(bytes: &[u8], out: &mut Extraction) {
    if jks::is_keystore(bytes) {
        for (seen, offset) in jks::keystore(bytes) {
            out.push(seen, offset_place(offset));
        }
        return;
    }
    let mut utf16 = [false; 2];
    der_keys(bytes, out, &mut utf16);
    super::text(bytes, 0, Positions::Offsets { base: 0, stride: 1 }, out);
    // ASCII text in UTF-16 is its characters at every other byte, the zero bytes between
    // them: little-endian text at one alignment is big-endian text at the other. Each
    // alignment a marker's characters were seen at is read once, whole; offsets name the
    // byte of a key's first character.
    for (parity, seen) in utf16.into_iter().enumerate() {
        if seen {
            let narrowed = utf16::narrow(&bytes[parity.min(bytes.len())..], Order::Le);
            super::text(
                &narrowed,
                0,
                Positions::Offsets {
                    base: parity,
                    stride: 2,
                },
                out,
            );
        }
    }
}

fn offset_place(offset: usize) -> Place {
    Place {
        line: None,
        offset: Some(offset),
    }
}

/// Finds the DER keys; notes in `utf16` the alignment (the parity of the characters'
/// offsets) of each UTF-16 marker seen.
fn der_keys(bytes: &[u8], out: &mut Extraction, utf16: &mut [bool; 2]) {
    let (ac, anchors) = automaton();
    let mut consumed = 0usize;
    for m in ac.find_iter(bytes) {
        let at = m.start();
        let Some(&anchor) = anchors.get(m.pattern().as_usize()) else {
            continue;
        };
        let found = match anchor {
            Anchor::Utf16(order) => {
                let first_char = at + usize::from(order == Order::Be);
                utf16[first_char % 2] = true;
                continue;
            }
            _ if at < consumed => continue,
            // A structure that only looks like a key of a kind not read here is more likely
            // noise than a key: only keys and encrypted keys count in binary data.
            Anchor::Key => headers_before(bytes, at).find_map(|start| {
                let element = element_at(bytes, start, at)?;
                match material::private_der(element, "der")? {
                    Seen::Unsupported => None,
                    seen => Some((start, element.len(), seen)),
                }
            }),
            Anchor::EncryptedKey => headers_before(bytes, at)
                .filter(|&alg| element_at(bytes, alg, at).is_some())
                .flat_map(|alg| headers_before(bytes, alg).map(move |start| (start, alg)))
                .find_map(|(start, alg)| {
                    let element = element_at(bytes, start, alg)?;
                    encrypted::pkcs8(element, "der").map(|seen| (start, element.len(), seen))
                }),
        };
        if let Some((start, len, seen)) = found {
            out.push(seen, offset_place(start));
            consumed = start + len;
        }
    }
}

/// The starts of the SEQUENCE headers (short form, or long form of one or two length
/// bytes) that could end right before `at`.
fn headers_before(bytes: &[u8], at: usize) -> impl Iterator<Item = usize> + '_ {
    (2..=4).filter_map(move |n| {
        let start = at.checked_sub(n)?;
        (header_len(bytes, start)? == n).then_some(start)
    })
}

/// The length of the DER SEQUENCE header at `start`, in its minimal form.
fn header_len(bytes: &[u8], start: usize) -> Option<usize> {
    match bytes.get(start..)? {
        [0x30, len, ..] if *len < 0x80 => Some(2),
        [0x30, 0x81, len, ..] if *len >= 0x80 => Some(3),
        [0x30, 0x82, hi, _, ..] if *hi != 0 => Some(4),
        _ => None,
    }
}

/// The whole DER element at `start` whose content starts at `content`.
fn element_at(bytes: &[u8], start: usize, content: usize) -> Option<&[u8]> {
    let (tlv, _) = der::read_tlv(bytes.get(start..)?).ok()?;
    (tlv.raw.len() - tlv.content.len() == content - start).then_some(tlv.raw)
}

#[cfg(test)]
mod tests {
    use rcgen::KeyPair;

    use super::super::keys_in;
    use super::*;

    #[test]
    fn headers_are_read_in_their_minimal_forms() {
        let b = [
            0x30, 0x10, 0x30, 0x81, 0x90, 0x30, 0x82, 0x01, 0x00, 0x30, 0x82, 0x00, 0x10,
        ];
        assert_eq!(header_len(&b, 0), Some(2));
        assert_eq!(header_len(&b, 2), Some(3));
        assert_eq!(header_len(&b, 5), Some(4));
        // `30 82 00 10` is not DER (the short form says it).
        assert_eq!(header_len(&b, 9), None);
        assert_eq!(header_len(&b, 12), None);
    }

    /// Binary data full of what starts a key: each must finish (the suite would hang
    /// otherwise) and find nothing.
    #[test]
    fn hostile_binary_inputs_finish() {
        let size = 1 << 20;
        let pbes2 = der::encode(der::TAG_OID, encrypted::OID_PBES2);
        let [le, _] = utf16::markers();
        let mut nested = Vec::new();
        for _ in 0..2000 {
            // PKCS#8 shapes nested in each other's key OCTET STRING.
            let alg = der::encode(0x30, &der::encode(der::TAG_OID, &[0x2a, 0x86]));
            nested = der::encode(
                0x30,
                &[vec![2, 1, 0], alg, der::encode(0x04, &nested)].concat(),
            );
        }
        let units: Vec<Vec<u8>> = vec![
            vec![0x30, 0x82, 0xff, 0xff, 0x02, 0x01, 0x00, 0x30],
            vec![0x02, 0x01, 0x00, 0x30, 0x00],
            vec![0x02, 0x01, 0x01, 0x04, 0x00, 0x30, 0x81, 0xff],
            [&[0x30, 0x82, 0x10, 0x00, 0x30, 0x7f][..], &pbes2].concat(),
            [&[0u8, 0][..], &le].concat(),
            nested,
        ];
        for unit in units {
            let mut bytes = vec![0u8];
            while bytes.len() < size {
                bytes.extend_from_slice(&unit);
            }
            let started = std::time::Instant::now();
            let e = keys_in(&bytes);
            assert!(e.keys.is_empty() && e.encrypted.is_empty(), "{e:?}");
            assert!(
                started.elapsed() < std::time::Duration::from_secs(20),
                "{:02x?}: {:?}",
                &unit[..unit.len().min(8)],
                started.elapsed()
            );
        }
    }

    #[test]
    fn keys_at_odd_offsets_in_noise() {
        let k = KeyPair::generate().unwrap();
        let mut bytes: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 253) as u8).collect();
        bytes[0] = 0x7f;
        bytes[1] = 0;
        bytes.splice(1001..1001, k.serialize_der());
        let e = keys_in(&bytes);
        assert!(e.binary);
        assert_eq!(e.keys.len(), 1, "{e:?}");
        assert_eq!(e.keys[0].offset, Some(1001));
        assert_eq!(e.keys[0].line, None);
        // Cut short by one byte: not a key.
        let der = k.serialize_der();
        let mut cut = bytes[..1001].to_vec();
        cut.extend_from_slice(&der[..der.len() - 1]);
        assert!(keys_in(&cut).keys.is_empty());
    }
}
