//! The DNS names a certificate or precertificate is for, normalised for matching.
//!
//! Names come from every subjectAltName dNSName and every subject common name (a CA may still
//! put a name only in the CN, and a mis-issued certificate is exactly the one that might).
//! Normalisation, as certspotter does it: `http://`/`https://` prefixes and a trailing dot
//! removed, lower case, Unicode labels to their punycode `xn--` form ([RFC 3492]).
//!
//! Fail safe: a name is never dropped because it is odd. A label that is not printable ASCII
//! and not Unicode text becomes [`UNPARSABLE`], which the watch list matches against any label;
//! a name with a NUL byte yields both the name cut at the NUL and the whole name (the
//! null-prefix attack); only DER that cannot be read at all is an error.
//!
//! Not done: full UTS #46 mapping (NFC, width folding); Unicode labels are lower-cased
//! with Rust's `to_lowercase` and encoded as they are.
//!
//! [RFC 3492]: https://www.rfc-editor.org/rfc/rfc3492

use certresponder_inventory::inspect::der::{self, Tlv};

use super::punycode;
use super::tbs::{OID_SAN, Tbs};

/// The label a certificate name gets where its bytes cannot be read as a DNS label. It
/// matches any watched label, so an unreadable name is reported rather than missed.
pub const UNPARSABLE: &str = "<unparsable>";

/// DER of the OID 2.5.4.3 (commonName).
const OID_CN: &[u8] = &[0x06, 0x03, 0x55, 0x04, 0x03];

/// The normalised DNS names of a DER certificate or DER TBSCertificate: subjectAltName
/// dNSNames first, then every subject CN, without duplicates.
pub fn names_of(cert_or_tbs_der: &[u8]) -> Result<Vec<String>, String> {
    let tbs = Tbs::parse(cert_or_tbs_der)?;
    let mut raw: Vec<Vec<u8>> = Vec::new();
    for value in tbs.extension_values(OID_SAN)? {
        let (seq, _) =
            der::expect_tlv(value, der::TAG_SEQUENCE, "subjectAltName is not a SEQUENCE")
                .map_err(str::to_string)?;
        for name in der::children(seq.content).map_err(str::to_string)? {
            // dNSName [2] IMPLICIT IA5String.
            if name.tag == 0x82 {
                raw.push(name.content.to_vec());
            }
        }
    }
    raw.extend(subject_cns(tbs.subject())?);
    let mut out: Vec<String> = Vec::new();
    for bytes in &raw {
        for name in normalize_cert_name(bytes) {
            if !out.contains(&name) {
                out.push(name);
            }
        }
    }
    Ok(out)
}

/// Every common name in a subject Name, as UTF-8 bytes where the string type allows (bytes
/// that are not valid UTF-8 end up as [`UNPARSABLE`] labels).
fn subject_cns(subject: Tlv<'_>) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    for rdn in der::children(subject.content).map_err(str::to_string)? {
        for atv in der::children(rdn.content).map_err(str::to_string)? {
            let Some(rest) = atv.content.strip_prefix(OID_CN) else {
                continue;
            };
            let (value, _) = der::read_tlv(rest).map_err(str::to_string)?;
            out.push(string_bytes(value));
        }
    }
    Ok(out)
}

/// The text of a DirectoryString as UTF-8 bytes; BMPString and UniversalString are decoded,
/// the single-byte types passed through.
fn string_bytes(value: Tlv<'_>) -> Vec<u8> {
    let invalid = || vec![0xff];
    match value.tag {
        // BMPString: UTF-16BE.
        0x1e => {
            if !value.content.len().is_multiple_of(2) {
                return invalid();
            }
            let units = value
                .content
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]));
            char::decode_utf16(units)
                .collect::<Result<String, _>>()
                .map_or_else(|_| invalid(), String::into_bytes)
        }
        // UniversalString: UTF-32BE.
        0x1c => {
            if !value.content.len().is_multiple_of(4) {
                return invalid();
            }
            value
                .content
                .chunks_exact(4)
                .map(|c| char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
                .collect::<Option<String>>()
                .map_or_else(invalid, String::into_bytes)
        }
        _ => value.content.to_vec(),
    }
}

/// Normalises a name as a certificate carries it; never fails (see the module docs). Returns
/// two names when the bytes hold a NUL.
pub fn normalize_cert_name(bytes: &[u8]) -> Vec<String> {
    let mut out = Vec::with_capacity(1);
    if let Some(nul) = bytes.iter().position(|&b| b == 0) {
        out.push(normalize_lenient(&bytes[..nul]));
    }
    let whole = normalize_lenient(bytes);
    if !out.contains(&whole) {
        out.push(whole);
    }
    out
}

fn normalize_lenient(bytes: &[u8]) -> String {
    let bytes = bytes.trim_ascii();
    let bytes = strip_scheme(bytes);
    let bytes = bytes.strip_suffix(b".").unwrap_or(bytes);
    let mut out = String::with_capacity(bytes.len());
    for (i, label) in bytes.split(|&b| b == b'.').enumerate() {
        if i > 0 {
            out.push('.');
        }
        match std::str::from_utf8(label) {
            Ok(s) if s.bytes().all(|b| b.is_ascii_graphic()) => {
                out.extend(s.chars().map(|c| c.to_ascii_lowercase()));
            }
            Ok(s) if !s.is_ascii() && !s.chars().any(char::is_control) => match unicode_label(s) {
                Some(encoded) => out.push_str(&encoded),
                None => out.push_str(UNPARSABLE),
            },
            _ => out.push_str(UNPARSABLE),
        }
    }
    out
}

fn strip_scheme(bytes: &[u8]) -> &[u8] {
    for scheme in [&b"https://"[..], b"http://"] {
        if bytes.len() >= scheme.len() && bytes[..scheme.len()].eq_ignore_ascii_case(scheme) {
            return &bytes[scheme.len()..];
        }
    }
    bytes
}

/// A Unicode label in its ASCII form: lower-cased, then `xn--` and its punycode.
fn unicode_label(label: &str) -> Option<String> {
    let lower = label.to_lowercase();
    if lower.is_ascii() {
        return Some(lower);
    }
    punycode::encode(&lower).map(|p| format!("xn--{p}"))
}

/// Normalises a configured or inventory name strictly: trims spaces, a scheme and a trailing
/// dot, lower-cases, encodes Unicode labels as punycode, and rejects what is not a DNS name
/// (empty labels, labels over 63 octets, names over 253, characters other than letters,
/// digits, `-` and `_`, a `*` anywhere but as the whole first label).
pub fn normalize_name(raw: &str) -> Result<String, String> {
    let trimmed = raw.trim();
    let s = std::str::from_utf8(strip_scheme(trimmed.as_bytes())).map_err(|e| e.to_string())?;
    let s = s.strip_suffix('.').unwrap_or(s);
    if s.is_empty() {
        return Err(format!("`{raw}` is empty"));
    }
    let mut out = String::with_capacity(s.len());
    for (i, label) in s.split('.').enumerate() {
        if label.is_empty() {
            return Err(format!("`{raw}` has an empty label"));
        }
        let label = if label.is_ascii() {
            label.to_ascii_lowercase()
        } else {
            unicode_label(label)
                .ok_or_else(|| format!("`{raw}`: label `{label}` cannot be encoded"))?
        };
        let ok = (label == "*" && i == 0)
            || label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok {
            return Err(format!("`{raw}`: label `{label}` is not a DNS label"));
        }
        if label.len() > 63 {
            return Err(format!("`{raw}`: label `{label}` is longer than 63 octets"));
        }
        if i > 0 {
            out.push('.');
        }
        out.push_str(&label);
    }
    if out.len() > 253 {
        return Err(format!("`{raw}` is longer than 253 octets"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(sans: &[&str], cns: &[&str]) -> Vec<u8> {
        let mut p = rcgen::CertificateParams::new(
            sans.iter().map(|s| (*s).to_string()).collect::<Vec<_>>(),
        )
        .unwrap();
        for cn in cns {
            p.distinguished_name.push(rcgen::DnType::CommonName, *cn);
        }
        let key = rcgen::KeyPair::generate().unwrap();
        p.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn cert_names_are_lowercased_trimmed_and_deduplicated() {
        let der = cert(
            &["WWW.Example.COM.", "*.Shop.example.com", "www.example.com"],
            &["Example.com"],
        );
        assert_eq!(
            names_of(&der).unwrap(),
            ["www.example.com", "*.shop.example.com", "example.com"]
        );
    }

    /// A TBS whose subject holds several CNs (rcgen keeps one per attribute type), of
    /// several string types.
    fn tbs_with_cns(cns: &[(u8, &[u8])]) -> Vec<u8> {
        let der = cert(&["a.example"], &[]);
        let tbs = Tbs::parse(&der).unwrap();
        let rdns: Vec<u8> = cns
            .iter()
            .flat_map(|(tag, value)| {
                let atv = der::encode(
                    der::TAG_SEQUENCE,
                    &[OID_CN, &der::encode(*tag, value)].concat(),
                );
                der::encode(0x31, &atv)
            })
            .collect();
        let subject = der::encode(der::TAG_SEQUENCE, &rdns);
        let body: Vec<u8> = tbs
            .fields
            .iter()
            .map(|f| {
                if f.raw == tbs.subject().raw {
                    &subject[..]
                } else {
                    f.raw
                }
            })
            .flat_map(|b| b.iter().copied())
            .collect();
        der::encode(der::TAG_SEQUENCE, &body)
    }

    #[test]
    fn every_common_name_counts() {
        let bmp: Vec<u8> = "D.example"
            .encode_utf16()
            .flat_map(u16::to_be_bytes)
            .collect();
        let tbs = tbs_with_cns(&[
            (0x0c, b"b.example"),
            (0x13, b"C.example"),
            (0x1e, &bmp),
            (0x0c, b"a.example"),
        ]);
        assert_eq!(
            names_of(&tbs).unwrap(),
            ["a.example", "b.example", "c.example", "d.example"]
        );
    }

    #[test]
    fn a_tbs_alone_is_read_too() {
        let der = cert(&["a.example"], &["b.example"]);
        let tbs = Tbs::parse(&der).unwrap().raw.to_vec();
        assert_eq!(names_of(&tbs).unwrap(), names_of(&der).unwrap());
    }

    #[test]
    fn unicode_names_become_punycode() {
        // A CN is a UTF8String, so it may carry Unicode.
        let der = cert(&[], &["Bücher.Example"]);
        assert_eq!(names_of(&der).unwrap(), ["xn--bcher-kva.example"]);
        assert_eq!(
            normalize_name("例え.テスト").unwrap(),
            "xn--r8jz45g.xn--zckzah"
        );
        assert_eq!(
            normalize_name(" https://MÜNCHEN.de. ").unwrap(),
            "xn--mnchen-3ya.de"
        );
    }

    #[test]
    fn unreadable_labels_are_kept_as_unparsable() {
        assert_eq!(
            normalize_cert_name(b"a\xff.example.com"),
            ["<unparsable>.example.com"]
        );
        assert_eq!(
            normalize_cert_name(b"a\tb.example.com"),
            ["<unparsable>.example.com"]
        );
        assert_eq!(
            normalize_cert_name(b"bank.example\0.evil.test"),
            ["bank.example", "bank.<unparsable>.evil.test"]
        );
    }

    #[test]
    fn garbage_der_is_an_error() {
        assert!(names_of(&[]).is_err());
        assert!(names_of(&[0x30, 0x03, 0x02, 0x01]).is_err());
        assert!(names_of(&[0x30, 0x03, 0x02, 0x01, 0x05]).is_err());
    }

    #[test]
    fn strict_normalisation_rejects_non_names() {
        assert_eq!(normalize_name("Example.COM.").unwrap(), "example.com");
        assert_eq!(normalize_name("*.example.com").unwrap(), "*.example.com");
        for bad in [
            "",
            ".",
            "a..b",
            "a b.example",
            "a.*.example",
            "x@example.com",
        ] {
            assert!(normalize_name(bad).is_err(), "{bad}");
        }
        assert!(normalize_name(&format!("{}.example", "a".repeat(64))).is_err());
    }
}
