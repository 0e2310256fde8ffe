//! Files that are one whole DER object: a private key (PKCS#8, PKCS#1, SEC1), or a
//! PKCS#12 (RFC 7292) whose keys open with the empty password. A PKCS#12 that needs a real
//! password protects its keys: it is counted as encrypted, not exposed.

use std::panic::{AssertUnwindSafe, catch_unwind};

use certresponder_inventory::inspect::der;
use p12_keystore::Pkcs12Archive;

use super::{Seen, material};

/// Whether `bytes` is exactly one DER element (a SEQUENCE, checked by the caller).
pub(super) fn is_whole_der(bytes: &[u8]) -> bool {
    der::read_tlv(bytes).is_ok_and(|(_, rest)| rest.is_empty())
}

/// PFX (RFC 7292 §4): SEQUENCE { version INTEGER (3), authSafe ContentInfo, macData? }.
fn is_pfx(bytes: &[u8]) -> bool {
    let Ok((seq, _)) = der::read_tlv(bytes) else {
        return false;
    };
    let Ok(fields) = der::children(seq.content) else {
        return false;
    };
    matches!(fields.as_slice(), [version, auth, ..]
        if version.tag == der::TAG_INTEGER && version.content == [3] && auth.tag == der::TAG_SEQUENCE)
}

/// What a whole-DER file holds.
pub(super) fn der_file(bytes: &[u8]) -> Vec<Seen> {
    if is_pfx(bytes) {
        return pkcs12(bytes);
    }
    material::private_der(bytes, "der").into_iter().collect()
}

fn pkcs12(bytes: &[u8]) -> Vec<Seen> {
    // The archive parser is third-party code reading hostile input: a panic in it must not
    // end the scan.
    let opened = catch_unwind(AssertUnwindSafe(|| Pkcs12Archive::from_pkcs12(bytes, "")));
    match opened {
        Ok(Ok(archive)) => archive
            .keys
            .iter()
            .filter_map(|bag| material::private_der(bag.key.as_der(), "pkcs12"))
            .collect(),
        // A wrong MAC or a failed decryption: a password protects it.
        Ok(Err(_)) => vec![Seen::Encrypted],
        Err(_) => Vec::new(),
    }
}
