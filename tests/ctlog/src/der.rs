//! Just enough DER to turn a precertificate into the `tbs_certificate` RFC 6962 §3.2 signs:
//! the TBSCertificate with the poison extension removed (and, when a Precertificate Signing
//! Certificate issued it, the issuer name and authority key identifier of the final issuer).

use anyhow::{Result, anyhow, bail};

/// Encoded OID 1.3.6.1.4.1.11129.2.4.3, the precertificate poison.
const POISON_OID: &[u8] = &[
    0x06, 0x0a, 0x2b, 0x06, 0x01, 0x04, 0x01, 0xd6, 0x79, 0x02, 0x04, 0x03,
];
/// Encoded OID 2.5.29.35, authorityKeyIdentifier.
const AKI_OID: &[u8] = &[0x06, 0x03, 0x55, 0x1d, 0x23];

/// One TLV: its tag, its contents, and the whole encoding.
#[derive(Clone, Copy)]
pub struct Tlv<'a> {
    pub tag: u8,
    pub content: &'a [u8],
    pub raw: &'a [u8],
}

/// Reads one TLV from the front of `data`, returning it and the rest.
pub fn read_tlv(data: &[u8]) -> Result<(Tlv<'_>, &[u8])> {
    let (&tag, rest) = data.split_first().ok_or_else(|| anyhow!("DER: empty"))?;
    let (&first, mut rest) = rest
        .split_first()
        .ok_or_else(|| anyhow!("DER: no length"))?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            bail!("DER: bad length");
        }
        let mut l = 0usize;
        for &b in &rest[..n] {
            l = (l << 8) | usize::from(b);
        }
        rest = &rest[n..];
        l
    };
    if rest.len() < len {
        bail!("DER: truncated");
    }
    let header = data.len() - rest.len();
    let tlv = Tlv {
        tag,
        content: &rest[..len],
        raw: &data[..header + len],
    };
    Ok((tlv, &rest[len..]))
}

/// All TLVs in `data`.
pub fn children(mut data: &[u8]) -> Result<Vec<Tlv<'_>>> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let (t, rest) = read_tlv(data)?;
        out.push(t);
        data = rest;
    }
    Ok(out)
}

/// Encodes a TLV.
pub fn encode(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = (len as u64).to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (8 - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// The TBSCertificate TLV of a certificate.
pub fn tbs_of(cert: &[u8]) -> Result<Tlv<'_>> {
    let (outer, _) = read_tlv(cert)?;
    let (tbs, _) = read_tlv(outer.content)?;
    Ok(tbs)
}

/// Replacement issuer data for precertificates issued by a Precertificate Signing Certificate.
pub struct FinalIssuer<'a> {
    /// DER Name of the final issuer.
    pub subject: &'a [u8],
    /// Its subject key identifier, if it has one.
    pub key_id: Option<&'a [u8]>,
}

/// The precert TBS with the poison removed; whether a poison was found.
pub fn precert_tbs(cert: &[u8], final_issuer: Option<&FinalIssuer<'_>>) -> Result<(Vec<u8>, bool)> {
    let tbs = tbs_of(cert)?;
    let mut found = false;
    let mut body = Vec::new();
    // Field positions: [0] version (optional), serial, signature, issuer, ...
    let fields = children(tbs.content)?;
    let issuer_pos = if fields.first().map(|f| f.tag) == Some(0xa0) {
        3
    } else {
        2
    };
    for (i, f) in fields.iter().enumerate() {
        if i == issuer_pos
            && let Some(fi) = final_issuer
        {
            body.extend_from_slice(fi.subject);
        } else if f.tag == 0xa3 {
            let (seq, _) = read_tlv(f.content)?;
            let mut exts = Vec::new();
            for ext in children(seq.content)? {
                let oid = read_tlv(ext.content)?.0.raw;
                if oid == POISON_OID {
                    found = true;
                } else if oid == AKI_OID
                    && let Some(FinalIssuer {
                        key_id: Some(kid), ..
                    }) = final_issuer
                {
                    let aki = encode(0x30, &encode(0x80, kid));
                    let mut e = AKI_OID.to_vec();
                    e.extend(encode(0x04, &aki));
                    exts.extend(encode(0x30, &e));
                } else {
                    exts.extend_from_slice(ext.raw);
                }
            }
            if !exts.is_empty() {
                body.extend(encode(0xa3, &encode(0x30, &exts)));
            }
        } else {
            body.extend_from_slice(f.raw);
        }
    }
    Ok((encode(0x30, &body), found))
}
