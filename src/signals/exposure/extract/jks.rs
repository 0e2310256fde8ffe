//! Java keystores: JKS (magic `FEEDFEED`) and JCEKS (`CECECECE`), as OpenJDK's
//! `sun.security.provider.JavaKeyStore` writes them (big-endian):
//!
//! ```text
//! magic u32, version u32 (1 or 2), count u32, then per entry:
//!   tag u32 (1 private key, 2 trusted certificate, 3 JCEKS secret key), alias (u16 length,
//!   modified UTF-8), date u64,
//!   1: key (u32 length, a PKCS#8 EncryptedPrivateKeyInfo under the keystore's key
//!      protector), chain u32, then per certificate: [type (u16 length, UTF-8), version 2],
//!      u32 length, DER
//!   2: [type, version 2], u32 length, DER
//! and a SHA-1 digest (20 bytes) over the file, keyed with the keystore password.
//! ```
//!
//! Each private key entry is an encrypted key (its key protector is keyed with the keystore
//! password); its certificate chain is stored in clear, so its public half is the first
//! certificate's. A JCEKS secret key entry is a serialized Java object that cannot be
//! skipped: the entries after one are not read.

use certresponder_inventory::inspect::inspect_certificate_der;

use super::{Encrypted, Seen, encrypted};

const JKS_MAGIC: u32 = 0xfeed_feed;
const JCEKS_MAGIC: u32 = 0xcece_cece;
/// More entries or certificates than this is not a real keystore.
const MAX_ENTRIES: u32 = 100_000;
const MAX_CHAIN: u32 = 64;

/// Big-endian fields from the front of a slice.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let out = self.bytes.get(self.pos..end)?;
        self.pos = end;
        Some(out)
    }

    fn u16(&mut self) -> Option<u16> {
        self.take(2)?.try_into().ok().map(u16::from_be_bytes)
    }

    fn u32(&mut self) -> Option<u32> {
        self.take(4)?.try_into().ok().map(u32::from_be_bytes)
    }

    /// A u16-length string (an alias, a certificate type).
    fn utf(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }

    /// A u32-length byte string.
    fn data(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.u32()?).ok()?;
        self.take(n)
    }
}

/// Whether `bytes` starts like a Java keystore.
pub(super) fn is_keystore(bytes: &[u8]) -> bool {
    matches!(bytes.get(..4), Some(m) if m == JKS_MAGIC.to_be_bytes() || m == JCEKS_MAGIC.to_be_bytes())
}

/// The private key entries of a keystore, each with its byte offset; those read before a
/// truncated or unreadable entry when the file is damaged.
pub(super) fn keystore(bytes: &[u8]) -> Vec<(Seen, usize)> {
    let mut out = Vec::new();
    let mut r = Reader { bytes, pos: 0 };
    let Some(magic) = r.u32() else {
        return out;
    };
    let kind = if magic == JCEKS_MAGIC { "JCEKS" } else { "JKS" };
    let (Some(version @ (1 | 2)), Some(count)) = (r.u32(), r.u32()) else {
        return out;
    };
    for _ in 0..count.min(MAX_ENTRIES) {
        let start = r.pos;
        let Some(entry) = entry(&mut r, version, kind) else {
            break;
        };
        if let Some(seen) = entry {
            out.push((seen, start));
        }
    }
    out
}

/// One entry: `Some(Some(key))` for a private key entry, `Some(None)` for a certificate;
/// `None` when the entry cannot be read (the rest of the file cannot be either).
fn entry(r: &mut Reader<'_>, version: u32, kind: &str) -> Option<Option<Seen>> {
    let tag = r.u32()?;
    let _alias = r.utf()?;
    let _date = r.take(8)?;
    match tag {
        1 => {
            let key = r.data()?;
            let chain = r.u32()?;
            if chain > MAX_CHAIN {
                return None;
            }
            let mut first = None;
            for _ in 0..chain {
                let cert = certificate(r, version)?;
                first = first.or(Some(cert));
            }
            let scheme = encrypted::pkcs8_scheme(key)?;
            Some(Some(Seen::Encrypted(Encrypted {
                public: first
                    .and_then(|c| inspect_certificate_der(c).ok())
                    .map(|c| c.key),
                format: "jks",
                encryption: format!("{kind} keystore password ({scheme})"),
            })))
        }
        2 => {
            certificate(r, version)?;
            Some(None)
        }
        _ => None,
    }
}

/// A certificate of a chain: its type (version 2) and its DER.
fn certificate<'a>(r: &mut Reader<'a>, version: u32) -> Option<&'a [u8]> {
    if version == 2 {
        r.utf()?;
    }
    r.data()
}

#[cfg(test)]
mod tests {
    use certresponder_inventory::inspect::der;
    use rcgen::{CertificateParams, KeyPair};

    use super::*;

    /// A JKS (version 2) with one private key entry and one trusted certificate, built from
    /// the layout above; the key bytes are a stand-in EncryptedPrivateKeyInfo under Sun's
    /// protector (the scanner never decrypts them).
    fn jks(cert: &[u8]) -> Vec<u8> {
        let utf = |s: &str| {
            let mut v = u16::try_from(s.len()).unwrap().to_be_bytes().to_vec();
            v.extend_from_slice(s.as_bytes());
            v
        };
        let data = |d: &[u8]| {
            let mut v = u32::try_from(d.len()).unwrap().to_be_bytes().to_vec();
            v.extend_from_slice(d);
            v
        };
        let alg = der::encode(
            0x30,
            &[
                der::encode(0x06, encrypted::OID_JKS_PROTECTOR),
                vec![0x05, 0],
            ]
            .concat(),
        );
        let key = der::encode(0x30, &[alg, der::encode(0x04, &[9u8; 64])].concat());
        [
            JKS_MAGIC.to_be_bytes().to_vec(),
            2u32.to_be_bytes().to_vec(),
            2u32.to_be_bytes().to_vec(),
            1u32.to_be_bytes().to_vec(),
            utf("web"),
            0u64.to_be_bytes().to_vec(),
            data(&key),
            1u32.to_be_bytes().to_vec(),
            utf("X.509"),
            data(cert),
            2u32.to_be_bytes().to_vec(),
            utf("ca"),
            0u64.to_be_bytes().to_vec(),
            utf("X.509"),
            data(cert),
            vec![0u8; 20],
        ]
        .concat()
    }

    #[test]
    fn private_key_entries_carry_their_certificate_s_key() {
        let k = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["a.example".into()])
            .unwrap()
            .self_signed(&k)
            .unwrap();
        let bytes = jks(cert.der());
        assert!(is_keystore(&bytes));
        let found = keystore(&bytes);
        assert_eq!(found.len(), 1, "{found:?}");
        let (Seen::Encrypted(e), offset) = &found[0] else {
            panic!("{found:?}");
        };
        assert_eq!(*offset, 12);
        assert_eq!(e.format, "jks");
        assert_eq!(e.encryption, "JKS keystore password (JKS key protector)");
        let public = certresponder_inventory::inspect::read_private_key(&k.serialize_der())
            .unwrap()
            .public;
        assert!(e.public.as_ref().unwrap().same_public_key(&public));
        // Every truncation reads what it can and never panics.
        for n in 0..bytes.len() {
            assert!(keystore(&bytes[..n]).len() <= 1);
        }
    }
}
