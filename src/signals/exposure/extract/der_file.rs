//! Files that are one whole DER object: a private key (PKCS#8, PKCS#1, SEC1, encrypted
//! PKCS#8), or a PKCS#12 (RFC 7292). The keys of a PKCS#12 that opens with the empty password
//! are exposed. One that needs a real password is looked into as far as it can be without
//! it: each shrouded key bag is an encrypted key, and a plain key bag is a key (only the
//! file's MAC needed the password); parts encrypted as a whole (where certificates usually
//! are: a truststore holds nothing else) cannot be looked into.

use std::panic::{AssertUnwindSafe, catch_unwind};

use certresponder_inventory::inspect::der::{self, TAG_OCTET_STRING, TAG_OID, TAG_SEQUENCE};
use p12_keystore::Pkcs12Archive;

use super::{Encrypted, Seen, encrypted, material};

/// PKCS#7 `data` (RFC 2315 §8).
const OID_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01];
/// PKCS#12 bag types (RFC 7292 §4.2): keyBag and pkcs8ShroudedKeyBag.
const OID_KEY_BAG: &[u8] = &[
    0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x0a, 0x01, 0x01,
];
const OID_SHROUDED_KEY_BAG: &[u8] = &[
    0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x0a, 0x01, 0x02,
];
/// A context-specific constructed `[0]`.
const TAG_CONTEXT_0: u8 = 0xa0;

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
        if version.tag == der::TAG_INTEGER && version.content == [3] && auth.tag == TAG_SEQUENCE)
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
        Ok(Err(_)) => protected(bytes),
        Err(_) => Vec::new(),
    }
}

/// The keys of a PKCS#12 that needs a password, as far as they can be seen without it; a
/// file whose parts cannot be walked is one encrypted key.
fn protected(bytes: &[u8]) -> Vec<Seen> {
    let Some(bags) = visible_bags(bytes) else {
        return vec![Encrypted::sealed("pkcs12", "PKCS#12 password")];
    };
    bags.into_iter()
        .filter_map(|(id, value)| match id {
            OID_SHROUDED_KEY_BAG => Some(Encrypted::sealed(
                "pkcs12",
                match encrypted::pkcs8_scheme(value) {
                    Some(scheme) => format!("PKCS#12 password, {scheme}"),
                    None => "PKCS#12 password".to_string(),
                },
            )),
            OID_KEY_BAG => material::private_der(value, "pkcs12"),
            _ => None,
        })
        .collect()
}

/// The `[0]` content of a `SEQUENCE { OID, [0] content, ... }` (a ContentInfo, a SafeBag).
fn typed(element: &[u8]) -> Option<(&[u8], &[u8])> {
    let fields = der::children(element).ok()?;
    match fields.as_slice() {
        [id, value, ..] if id.tag == TAG_OID && value.tag == TAG_CONTEXT_0 => {
            Some((id.content, value.content))
        }
        _ => None,
    }
}

/// The content of the one OCTET STRING that `bytes` is.
fn octets(bytes: &[u8]) -> Option<&[u8]> {
    let (o, _) = der::expect_tlv(bytes, TAG_OCTET_STRING, "").ok()?;
    Some(o.content)
}

/// The bags (type, value) of every part of a PFX that is not encrypted as a whole
/// (RFC 7292 §4.1: `AuthenticatedSafe` of `ContentInfo`s of `SafeContents`); `None` when the
/// structure cannot be walked (BER, public-key integrity mode).
fn visible_bags(bytes: &[u8]) -> Option<Vec<(&[u8], &[u8])>> {
    let (pfx, _) = der::expect_tlv(bytes, TAG_SEQUENCE, "").ok()?;
    let fields = der::children(pfx.content).ok()?;
    let (kind, content) = typed(fields.get(1)?.content)?;
    if kind != OID_DATA {
        return None;
    }
    let (safe, _) = der::expect_tlv(octets(content)?, TAG_SEQUENCE, "").ok()?;
    let mut bags = Vec::new();
    for info in der::children(safe.content).ok()? {
        let (kind, content) = typed(info.content)?;
        if kind != OID_DATA {
            // encryptedData or envelopedData: its bags are encrypted with it.
            continue;
        }
        let (contents, _) = der::expect_tlv(octets(content)?, TAG_SEQUENCE, "").ok()?;
        for bag in der::children(contents.content).ok()? {
            bags.push(typed(bag.content)?);
        }
    }
    Some(bags)
}
