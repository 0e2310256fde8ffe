//! A minimal DER reader and writer: just enough to walk TBSCertificate, PKCS#8, PKCS#1, SEC1
//! and ECParameters structures without allocating, and to encode elements again.
//!
//! It accepts only definite lengths and single-byte tags, which is all DER allows for the
//! structures read here (X.690 §10.1); anything else is reported, never panicked on.

/// One tag-length-value element borrowed from a buffer.
#[derive(Debug, Clone, Copy)]
pub struct Tlv<'a> {
    /// The tag octet.
    pub tag: u8,
    /// The whole element, header included.
    pub raw: &'a [u8],
    /// The content octets.
    pub content: &'a [u8],
}

/// Why a DER element could not be read.
pub type DerError = &'static str;

/// Reads one element from the front of `input`, returning it and the rest.
pub fn read_tlv(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), DerError> {
    let (&tag, rest) = input.split_first().ok_or("unexpected end of DER data")?;
    if tag & 0x1f == 0x1f {
        return Err("multi-byte DER tags are not supported here");
    }
    let (&first, mut rest) = rest.split_first().ok_or("DER length missing")?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 {
            return Err("indefinite DER length");
        }
        if count > 4 {
            return Err("DER length too large");
        }
        if rest.len() < count {
            return Err("DER length truncated");
        }
        let mut len = 0usize;
        for &b in &rest[..count] {
            len = (len << 8) | usize::from(b);
        }
        rest = &rest[count..];
        len
    };
    if rest.len() < len {
        return Err("DER element truncated");
    }
    let header = input.len() - rest.len();
    let (content, after) = rest.split_at(len);
    Ok((
        Tlv {
            tag,
            raw: &input[..header + len],
            content,
        },
        after,
    ))
}

/// Reads one element with the expected tag.
pub fn expect_tlv<'a>(
    input: &'a [u8],
    tag: u8,
    what: &'static str,
) -> Result<(Tlv<'a>, &'a [u8]), DerError> {
    let (tlv, rest) = read_tlv(input)?;
    if tlv.tag != tag {
        return Err(what);
    }
    Ok((tlv, rest))
}

/// Splits the content of a constructed element into its children.
pub fn children(mut content: &[u8]) -> Result<Vec<Tlv<'_>>, DerError> {
    let mut out = Vec::new();
    while !content.is_empty() {
        let (tlv, rest) = read_tlv(content)?;
        out.push(tlv);
        content = rest;
    }
    Ok(out)
}

/// Appends a DER header for `tag` and `len` content octets.
pub fn push_header(out: &mut Vec<u8>, tag: u8, len: usize) {
    out.push(tag);
    if len < 0x80 {
        // Proven: len < 0x80 fits in one octet.
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        let significant = &bytes[skip..];
        out.push(0x80 | significant.len() as u8);
        out.extend_from_slice(significant);
    }
}

/// One element: `tag`, its definite length, then `content`.
pub fn encode(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    push_header(&mut out, tag, content.len());
    out.extend_from_slice(content);
    out
}

/// Strips the leading zero octets of an unsigned big-endian integer.
pub fn strip_leading_zeros(mut v: &[u8]) -> &[u8] {
    while let [0, rest @ ..] = v {
        if rest.is_empty() {
            break;
        }
        v = rest;
    }
    v
}

/// INTEGER.
pub const TAG_INTEGER: u8 = 0x02;
/// BIT STRING.
pub const TAG_BIT_STRING: u8 = 0x03;
/// OCTET STRING.
pub const TAG_OCTET_STRING: u8 = 0x04;
/// OBJECT IDENTIFIER.
pub const TAG_OID: u8 = 0x06;
/// SEQUENCE.
pub const TAG_SEQUENCE: u8 = 0x30;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip() {
        for len in [0usize, 1, 127, 128, 255, 256, 65535, 65536, 1 << 20] {
            let mut v = Vec::new();
            push_header(&mut v, TAG_SEQUENCE, len);
            v.extend(std::iter::repeat_n(0u8, len));
            let (tlv, rest) = read_tlv(&v).unwrap();
            assert_eq!(tlv.content.len(), len);
            assert!(rest.is_empty());
        }
    }

    #[test]
    fn truncated_is_an_error() {
        assert!(read_tlv(&[0x30, 0x05, 0x01]).is_err());
        assert!(read_tlv(&[0x30, 0x84, 0xff]).is_err());
        assert!(read_tlv(&[0x30, 0x80]).is_err());
        assert!(read_tlv(&[]).is_err());
    }

    #[test]
    fn zeros_are_stripped() {
        assert_eq!(strip_leading_zeros(&[0, 0, 1, 2]), &[1, 2]);
        assert_eq!(strip_leading_zeros(&[0]), &[0]);
    }
}
