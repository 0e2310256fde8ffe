//! The RFC 6962 §3.2 TBS hash: SHA-256 over the TBSCertificate with the embedded SCT list
//! (1.3.6.1.4.1.11129.2.4.2) and the precertificate poison (1.3.6.1.4.1.11129.2.4.3)
//! extensions removed. A certificate and the precertificate it was issued from share it, so
//! it identifies "this issuance" across CT logs, as certspotter's authorization does.

use sha2::{Digest, Sha256};

use super::der::{self, Tlv};

/// DER of the OID 1.3.6.1.4.1.11129.2.4.2 (embedded SCT list), tag and length included.
const OID_SCT_LIST: &[u8] = &[
    0x06, 0x0a, 0x2b, 0x06, 0x01, 0x04, 0x01, 0xd6, 0x79, 0x02, 0x04, 0x02,
];
/// DER of the OID 1.3.6.1.4.1.11129.2.4.3 (precertificate poison).
const OID_POISON: &[u8] = &[
    0x06, 0x0a, 0x2b, 0x06, 0x01, 0x04, 0x01, 0xd6, 0x79, 0x02, 0x04, 0x03,
];

/// Computes the TBS hash of a DER TBSCertificate.
pub(crate) fn tbs_hash(tbs: &[u8]) -> Result<[u8; 32], &'static str> {
    let stripped = strip_ct_extensions(tbs)?;
    let bytes = stripped.as_deref().unwrap_or(tbs);
    Ok(Sha256::digest(bytes).into())
}

/// Returns the re-encoded TBSCertificate without the CT extensions, or `None` when it has
/// none (the common case, hashed as is).
fn strip_ct_extensions(tbs: &[u8]) -> Result<Option<Vec<u8>>, &'static str> {
    let (seq, _) = der::expect_tlv(tbs, der::TAG_SEQUENCE, "TBSCertificate is not a SEQUENCE")?;
    let fields = der::children(seq.content)?;
    // extensions [3] EXPLICIT Extensions, always the last field when present.
    let Some(ext_field) = fields.iter().find(|f| f.tag == 0xa3) else {
        return Ok(None);
    };
    let (exts, _) = der::expect_tlv(
        ext_field.content,
        der::TAG_SEQUENCE,
        "extensions are not a SEQUENCE",
    )?;
    let exts = der::children(exts.content)?;
    let is_ct =
        |e: &Tlv<'_>| e.content.starts_with(OID_SCT_LIST) || e.content.starts_with(OID_POISON);
    if !exts.iter().any(is_ct) {
        return Ok(None);
    }
    let kept: Vec<u8> = exts
        .iter()
        .filter(|e| !is_ct(e))
        .flat_map(|e| e.raw.iter().copied())
        .collect();
    let mut body = Vec::with_capacity(seq.content.len());
    for f in &fields {
        if f.tag == 0xa3 {
            if kept.is_empty() {
                continue;
            }
            let mut inner = Vec::with_capacity(kept.len() + 6);
            der::push_header(&mut inner, der::TAG_SEQUENCE, kept.len());
            inner.extend_from_slice(&kept);
            der::push_header(&mut body, 0xa3, inner.len());
            body.extend_from_slice(&inner);
        } else {
            body.extend_from_slice(f.raw);
        }
    }
    let mut out = Vec::with_capacity(body.len() + 6);
    der::push_header(&mut out, der::TAG_SEQUENCE, body.len());
    out.extend_from_slice(&body);
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext(oid: &[u8], value: &[u8]) -> Vec<u8> {
        let mut inner = oid.to_vec();
        der::push_header(&mut inner, der::TAG_OCTET_STRING, value.len());
        inner.extend_from_slice(value);
        let mut out = Vec::new();
        der::push_header(&mut out, der::TAG_SEQUENCE, inner.len());
        out.extend_from_slice(&inner);
        out
    }

    fn tbs(exts: &[Vec<u8>]) -> Vec<u8> {
        let serial = [0x02, 0x01, 0x05];
        let all: Vec<u8> = exts.concat();
        let mut seq = Vec::new();
        der::push_header(&mut seq, der::TAG_SEQUENCE, all.len());
        seq.extend_from_slice(&all);
        let mut tagged = Vec::new();
        der::push_header(&mut tagged, 0xa3, seq.len());
        tagged.extend_from_slice(&seq);
        let mut body = serial.to_vec();
        if !exts.is_empty() {
            body.extend_from_slice(&tagged);
        }
        let mut out = Vec::new();
        der::push_header(&mut out, der::TAG_SEQUENCE, body.len());
        out.extend_from_slice(&body);
        out
    }

    #[test]
    fn sct_and_poison_are_removed() {
        let other = ext(&[0x06, 0x03, 0x55, 0x1d, 0x0f], &[0x03, 0x02, 0x05, 0xa0]);
        let plain = tbs(std::slice::from_ref(&other));
        let with_sct = tbs(&[other.clone(), ext(OID_SCT_LIST, &[0x04, 0x01, 0x00])]);
        let with_poison = tbs(&[ext(OID_POISON, &[0x05, 0x00]), other]);
        let h = tbs_hash(&plain).unwrap();
        assert_eq!(tbs_hash(&with_sct).unwrap(), h);
        assert_eq!(tbs_hash(&with_poison).unwrap(), h);
        assert_eq!(h, <[u8; 32]>::from(Sha256::digest(&plain)));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(tbs_hash(&[0x30, 0x03, 0xa3, 0x05]).is_err());
        assert!(tbs_hash(&[]).is_err());
    }
}
