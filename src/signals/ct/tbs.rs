//! Just enough TBSCertificate structure ([RFC 5280 §4.1]) for CT work, read with the
//! inventory's DER walker: it accepts a whole certificate or a TBSCertificate alone (what a
//! CT log's precert entry carries), and re-encodes the TBS without the CT extensions for the
//! RFC 6962 §3.2 signed data.
//!
//! [RFC 5280 §4.1]: https://www.rfc-editor.org/rfc/rfc5280#section-4.1

use certresponder_inventory::inspect::der::{self, Tlv};

/// DER of the OID 1.3.6.1.4.1.11129.2.4.2 (embedded SCT list), tag and length included.
pub(super) const OID_SCT_LIST: &[u8] = &[
    0x06, 0x0a, 0x2b, 0x06, 0x01, 0x04, 0x01, 0xd6, 0x79, 0x02, 0x04, 0x02,
];
/// DER of the OID 1.3.6.1.4.1.11129.2.4.3 (precertificate poison).
pub(super) const OID_POISON: &[u8] = &[
    0x06, 0x0a, 0x2b, 0x06, 0x01, 0x04, 0x01, 0xd6, 0x79, 0x02, 0x04, 0x03,
];
/// DER of the OID 2.5.29.17 (subjectAltName).
pub(super) const OID_SAN: &[u8] = &[0x06, 0x03, 0x55, 0x1d, 0x11];

/// The parts of a TBSCertificate the CT checks read, borrowed from the input.
#[derive(Debug, Clone)]
pub(super) struct Tbs<'a> {
    /// The whole TBSCertificate element.
    pub raw: &'a [u8],
    /// Its fields, in order.
    pub fields: Vec<Tlv<'a>>,
    /// Index of the serial number in `fields` (1 when the `[0]` version is present).
    first: usize,
    /// The extensions, each a whole `Extension` element; empty when there are none.
    pub extensions: Vec<Tlv<'a>>,
}

impl<'a> Tbs<'a> {
    /// Reads a DER Certificate or a DER TBSCertificate.
    pub fn parse(der_bytes: &'a [u8]) -> Result<Self, String> {
        let (outer, rest) = der::expect_tlv(der_bytes, der::TAG_SEQUENCE, "not a DER SEQUENCE")
            .map_err(str::to_string)?;
        if !rest.is_empty() {
            return Err(format!(
                "{} trailing bytes after the DER element",
                rest.len()
            ));
        }
        let kids = der::children(outer.content).map_err(str::to_string)?;
        // A Certificate starts with the TBSCertificate SEQUENCE; a TBSCertificate starts with
        // the [0] version or the serial INTEGER.
        let tbs = match kids.first() {
            Some(first) if first.tag == der::TAG_SEQUENCE => *first,
            Some(_) => outer,
            None => return Err("empty SEQUENCE".into()),
        };
        let fields = der::children(tbs.content).map_err(str::to_string)?;
        let first = usize::from(fields.first().is_some_and(|f| f.tag == 0xa0));
        // serial, signature, issuer, validity, subject, subjectPublicKeyInfo.
        if fields.len() < first + 6 {
            return Err("TBSCertificate has too few fields".into());
        }
        let mut extensions = Vec::new();
        if let Some(ext_field) = fields[first + 6..].iter().find(|f| f.tag == 0xa3) {
            let (seq, _) = der::expect_tlv(
                ext_field.content,
                der::TAG_SEQUENCE,
                "extensions are not a SEQUENCE",
            )
            .map_err(str::to_string)?;
            extensions = der::children(seq.content).map_err(str::to_string)?;
            if extensions.iter().any(|e| e.tag != der::TAG_SEQUENCE) {
                return Err("an extension is not a SEQUENCE".into());
            }
        }
        Ok(Self {
            raw: tbs.raw,
            fields,
            first,
            extensions,
        })
    }

    /// The subject Name.
    pub fn subject(&self) -> Tlv<'a> {
        self.fields[self.first + 4]
    }

    /// The SubjectPublicKeyInfo, whole element.
    pub fn spki(&self) -> Tlv<'a> {
        self.fields[self.first + 5]
    }

    /// The extnValue OCTET STRING contents of every extension with this OID (tag and length
    /// included in `oid`).
    pub fn extension_values(&self, oid: &[u8]) -> Result<Vec<&'a [u8]>, String> {
        let mut out = Vec::new();
        for ext in &self.extensions {
            let Some(rest) = ext.content.strip_prefix(oid) else {
                continue;
            };
            let (mut value, mut rest) = der::read_tlv(rest).map_err(str::to_string)?;
            if value.tag == 0x01 {
                // critical BOOLEAN
                (value, rest) = der::read_tlv(rest).map_err(str::to_string)?;
            }
            if value.tag != der::TAG_OCTET_STRING || !rest.is_empty() {
                return Err("malformed extension".into());
            }
            out.push(value.content);
        }
        Ok(out)
    }

    /// The TBSCertificate without the SCT list and poison extensions, DER: the
    /// `tbs_certificate` of RFC 6962 §3.2's PreCert. Drops the `[3]` field entirely when no
    /// other extension is left.
    pub fn without_ct_extensions(&self) -> Vec<u8> {
        let is_ct =
            |e: &Tlv<'_>| e.content.starts_with(OID_SCT_LIST) || e.content.starts_with(OID_POISON);
        if !self.extensions.iter().any(is_ct) {
            return self.raw.to_vec();
        }
        let kept: Vec<u8> = self
            .extensions
            .iter()
            .filter(|e| !is_ct(e))
            .flat_map(|e| e.raw.iter().copied())
            .collect();
        let mut body = Vec::with_capacity(self.raw.len());
        for f in &self.fields {
            if f.tag != 0xa3 {
                body.extend_from_slice(f.raw);
            } else if !kept.is_empty() {
                let inner = der::encode(der::TAG_SEQUENCE, &kept);
                body.extend_from_slice(&der::encode(0xa3, &inner));
            }
        }
        der::encode(der::TAG_SEQUENCE, &body)
    }
}
