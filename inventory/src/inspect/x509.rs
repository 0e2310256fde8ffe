//! X.509 inspection: the only module that uses x509-parser. Turns certificates, public keys
//! and CSRs into owned summaries with the fingerprints the rest of certresponder keys on.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension};
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::x509::SubjectPublicKeyInfo;

use super::der;
use super::error::InspectError;
use super::key::{KeyInfo, curve_name};
use super::tbs::tbs_hash;

const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_RSA_PSS: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a];
const OID_EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];
const OID_ED448: &[u8] = &[0x2b, 0x65, 0x71];
const OID_SCT_LIST: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0xd6, 0x79, 0x02, 0x04, 0x02];
/// id-ad-ocsp, 1.3.6.1.5.5.7.48.1.
const OID_AD_OCSP: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01];
const OID_POISON: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0xd6, 0x79, 0x02, 0x04, 0x03];

/// The fingerprints certresponder identifies a certificate by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Fingerprints {
    /// SHA-256 of the whole DER certificate (what `openssl x509 -fingerprint -sha256` prints).
    pub cert_sha256: String,
    /// SHA-256 of the DER SubjectPublicKeyInfo: identifies the key across certificates.
    pub spki_sha256: String,
    /// RFC 6962 §3.2 TBS hash: equal for a certificate and its precertificate.
    pub tbs_sha256: String,
}

/// One embedded Signed Certificate Timestamp (RFC 6962 §3.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SctInfo {
    /// The log's id: SHA-256 of its public key, hex.
    pub log_id: String,
    /// When the log promised to include the certificate.
    pub timestamp: DateTime<Utc>,
    /// The raw signature bytes, for later verification against the log key.
    #[serde(skip)]
    pub signature: Vec<u8>,
}

/// RSASSA-PSS signature parameters (RFC 4055 §3.1), with the defaults filled in: a missing
/// hash or mask generation hash is SHA-1, a missing salt length 20, a missing trailer 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PssParams {
    /// Hash algorithm OID, dotted.
    pub hash_oid: String,
    /// Mask generation function OID, dotted (id-mgf1 is `1.2.840.113549.1.1.8`).
    pub mgf_oid: String,
    /// The hash the mask generation function uses, dotted OID.
    pub mgf_hash_oid: String,
    /// Salt length in bytes.
    pub salt_length: u32,
    /// Trailer field (RFC 4055 requires 1).
    pub trailer_field: u32,
}

/// The extended key usages a certificate names (RFC 5280 §4.2.1.12).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ExtKeyUsage {
    /// anyExtendedKeyUsage.
    pub any: bool,
    /// id-kp-serverAuth: a TLS server.
    pub server_auth: bool,
    /// id-kp-clientAuth: a TLS client.
    pub client_auth: bool,
    /// id-kp-codeSigning.
    pub code_signing: bool,
    /// id-kp-emailProtection: S/MIME.
    pub email_protection: bool,
    /// id-kp-timeStamping.
    pub time_stamping: bool,
    /// id-kp-OCSPSigning.
    pub ocsp_signing: bool,
    /// Any other purpose, dotted OIDs.
    pub other: Vec<String>,
}

/// Everything certresponder reads from a certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertInfo {
    /// Subject distinguished name, RFC 4514 style.
    pub subject: String,
    /// Every common name in the subject.
    pub subject_cns: Vec<String>,
    /// Issuer distinguished name.
    pub issuer: String,
    /// Serial number, lower-case hex of the DER integer content.
    pub serial: String,
    /// Start of validity.
    pub not_before: DateTime<Utc>,
    /// End of validity.
    pub not_after: DateTime<Utc>,
    /// DNS names from the subjectAltName extension.
    pub dns_names: Vec<String>,
    /// IP addresses from the subjectAltName extension.
    pub ip_addresses: Vec<IpAddr>,
    /// The subject public key.
    pub key: KeyInfo,
    /// Signature algorithm name (such as `sha256WithRSAEncryption`) or dotted OID.
    pub signature_algorithm: String,
    /// Signature algorithm OID, dotted (such as `1.2.840.113549.1.1.11`).
    pub signature_algorithm_oid: String,
    /// The certificate's signature `AlgorithmIdentifier`, DER, for byte-exact comparison with
    /// the encodings the Baseline Requirements permit (§7.1.3.2).
    #[serde(skip)]
    pub signature_algorithm_der: Vec<u8>,
    /// RSASSA-PSS parameters when the signature algorithm is RSASSA-PSS and they can be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature_pss: Option<PssParams>,
    /// Embedded SCTs.
    pub scts: Vec<SctInfo>,
    /// Authority key identifier, hex.
    pub authority_key_id: Option<String>,
    /// Subject key identifier, hex.
    pub subject_key_id: Option<String>,
    /// CRL distribution point URLs.
    pub crl_urls: Vec<String>,
    /// OCSP responder URLs from the Authority Information Access extension.
    pub ocsp_urls: Vec<String>,
    /// Whether basicConstraints says CA.
    pub is_ca: bool,
    /// The extended key usages, when the certificate has that extension.
    pub ext_key_usage: Option<ExtKeyUsage>,
    /// Whether this is an RFC 6962 precertificate (carries the poison extension).
    pub is_precertificate: bool,
    /// Fingerprints.
    pub fingerprints: Fingerprints,
}

impl CertInfo {
    /// The validity period in seconds as the Baseline Requirements count it: from notBefore
    /// to notAfter, both included (§1.6.1 "Validity Period").
    pub fn validity_secs(&self) -> i64 {
        (self.not_after - self.not_before).num_seconds() + 1
    }

    /// Whether it is a short-lived subscriber certificate in the Baseline Requirements'
    /// sense (§1.6.1), whose revocation is optional (§4.9.1.1): a validity period of at
    /// most 7 days (604,800 s) when issued on or after 2026-03-15, at most 10 days
    /// (864,000 s) when issued from 2024-03-15 (the BRs had no such certificates before).
    pub fn is_short_lived(&self) -> bool {
        let day = |s: &str| {
            DateTime::parse_from_rfc3339(s)
                .map(|d| d.with_timezone(&Utc))
                .unwrap_or(DateTime::<Utc>::MAX_UTC)
        };
        let limit = if self.not_before >= day("2026-03-15T00:00:00Z") {
            604_800
        } else if self.not_before >= day("2024-03-15T00:00:00Z") {
            864_000
        } else {
            return false;
        };
        (1..=limit).contains(&self.validity_secs())
    }

    /// Seconds until the certificate expires (negative once expired).
    pub fn seconds_left(&self, now: DateTime<Utc>) -> i64 {
        (self.not_after - now).num_seconds()
    }

    /// Whether the certificate is self-issued (subject equals issuer).
    pub fn is_self_issued(&self) -> bool {
        self.subject == self.issuer
    }
}

fn hex_sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn time(t: x509_parser::time::ASN1Time) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Inspects one DER certificate.
pub fn inspect_certificate_der(der: &[u8]) -> Result<CertInfo, InspectError> {
    let bad = |reason: String| InspectError::unparseable("certificate", reason);
    let (rest, cert) = X509Certificate::from_der(der).map_err(|e| bad(format!("{e}")))?;
    if !rest.is_empty() {
        return Err(bad(format!(
            "{} trailing bytes after the certificate",
            rest.len()
        )));
    }
    let tbs = &cert.tbs_certificate;
    // RFC 5280 §4.1.2.1: v1, v2 or v3 (0, 1 or 2); anything else is not a certificate that
    // any verifier accepts, whatever the rest of it says.
    if tbs.version.0 > 2 {
        return Err(bad(format!(
            "invalid version {} (RFC 5280 §4.1.2.1 allows 0 to 2, for v1 to v3)",
            tbs.version.0
        )));
    }
    if tbs.version.0 < 2 && !tbs.extensions().is_empty() {
        return Err(bad(format!(
            "version {} (v{}) with extensions, which only v3 may carry (RFC 5280 §4.1.2.9)",
            tbs.version.0,
            tbs.version.0 + 1
        )));
    }
    let key = key_info_from_spki(&tbs.subject_pki)?;

    let mut dns_names = Vec::new();
    let mut ip_addresses = Vec::new();
    let mut scts = Vec::new();
    let mut authority_key_id = None;
    let mut subject_key_id = None;
    let mut is_precertificate = false;
    let mut crl_urls = Vec::new();
    let mut ocsp_urls = Vec::new();
    for ext in tbs.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::SubjectAlternativeName(san) => {
                for name in &san.general_names {
                    match name {
                        GeneralName::DNSName(d) => dns_names.push((*d).to_string()),
                        GeneralName::IPAddress(ip) => {
                            if let Some(ip) = ip_from_bytes(ip) {
                                ip_addresses.push(ip);
                            } else {
                                return Err(bad(format!(
                                    "subjectAltName holds an IP address of {} bytes",
                                    ip.len()
                                )));
                            }
                        }
                        _ => {}
                    }
                }
            }
            ParsedExtension::SCT(list) => {
                for sct in list {
                    scts.push(SctInfo {
                        log_id: hex::encode(sct.id.key_id),
                        timestamp: DateTime::from_timestamp_millis(
                            i64::try_from(sct.timestamp).unwrap_or(i64::MAX),
                        )
                        .unwrap_or(DateTime::<Utc>::MAX_UTC),
                        signature: sct.signature.data.to_vec(),
                    });
                }
            }
            ParsedExtension::AuthorityKeyIdentifier(aki) => {
                authority_key_id = aki.key_identifier.as_ref().map(|k| hex::encode(k.0));
            }
            ParsedExtension::SubjectKeyIdentifier(ski) => {
                subject_key_id = Some(hex::encode(ski.0));
            }
            ParsedExtension::CRLDistributionPoints(points) => {
                for p in points.iter() {
                    if let Some(DistributionPointName::FullName(names)) = &p.distribution_point {
                        crl_urls.extend(names.iter().filter_map(|n| match n {
                            GeneralName::URI(u) => Some((*u).to_string()),
                            _ => None,
                        }));
                    }
                }
            }
            ParsedExtension::AuthorityInfoAccess(aia) => {
                for d in &aia.accessdescs {
                    if d.access_method.as_bytes() == OID_AD_OCSP
                        && let GeneralName::URI(u) = d.access_location
                    {
                        ocsp_urls.push(u.to_string());
                    }
                }
            }
            ParsedExtension::ParseError { error } => {
                return Err(bad(format!("extension {}: {error}", ext.oid)));
            }
            _ => {
                let oid = ext.oid.as_bytes();
                if oid == OID_POISON {
                    is_precertificate = true;
                } else if oid == OID_SCT_LIST {
                    return Err(bad("the embedded SCT list is malformed".into()));
                }
            }
        }
    }

    let tbs_sha = tbs_hash(tbs.as_ref()).map_err(|e| bad(e.to_string()))?;
    let signature_alg_der = signature_algorithm_der(der);
    let subject_cns = tbs
        .subject
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok().map(str::to_string))
        .collect();
    Ok(CertInfo {
        subject: tbs.subject.to_string(),
        subject_cns,
        issuer: tbs.issuer.to_string(),
        serial: hex::encode(der::strip_leading_zeros(tbs.raw_serial())),
        not_before: time(tbs.validity.not_before),
        not_after: time(tbs.validity.not_after),
        dns_names,
        ip_addresses,
        key,
        signature_algorithm: algorithm_name(&cert.signature_algorithm.algorithm),
        signature_algorithm_oid: cert.signature_algorithm.algorithm.to_id_string(),
        signature_pss: if cert.signature_algorithm.algorithm.as_bytes() == OID_RSA_PSS {
            signature_alg_der
                .as_deref()
                .and_then(|d| parse_pss_params(d).ok())
        } else {
            None
        },
        signature_algorithm_der: signature_alg_der.unwrap_or_default(),
        scts,
        authority_key_id,
        subject_key_id,
        crl_urls,
        ocsp_urls,
        is_ca: cert.is_ca(),
        ext_key_usage: tbs.extended_key_usage().ok().flatten().map(|e| {
            let e = e.value;
            ExtKeyUsage {
                any: e.any,
                server_auth: e.server_auth,
                client_auth: e.client_auth,
                code_signing: e.code_signing,
                email_protection: e.email_protection,
                time_stamping: e.time_stamping,
                ocsp_signing: e.ocsp_signing,
                other: e.other.iter().map(|o| o.to_id_string()).collect(),
            }
        }),
        is_precertificate,
        fingerprints: Fingerprints {
            cert_sha256: hex_sha256(der),
            spki_sha256: hex_sha256(tbs.subject_pki.raw),
            tbs_sha256: hex::encode(tbs_sha),
        },
    })
}

/// The raw second element of `Certificate ::= SEQUENCE { tbs, signatureAlgorithm, signature }`.
fn signature_algorithm_der(cert_der: &[u8]) -> Option<Vec<u8>> {
    let (cert, _) = der::expect_tlv(cert_der, der::TAG_SEQUENCE, "").ok()?;
    let (_tbs, rest) = der::read_tlv(cert.content).ok()?;
    let (alg, _) = der::expect_tlv(rest, der::TAG_SEQUENCE, "").ok()?;
    Some(alg.raw.to_vec())
}

const OID_SHA1: &str = "1.3.14.3.2.26";
const OID_MGF1: &str = "1.2.840.113549.1.1.8";

/// Dotted OID at the front of an `AlgorithmIdentifier`'s content, and what follows it.
fn alg_oid(alg_content: &[u8]) -> Result<(String, &[u8]), der::DerError> {
    let (oid, rest) = der::expect_tlv(alg_content, der::TAG_OID, "algorithm OID missing")?;
    let oid = x509_parser::der_parser::oid::Oid::new(oid.content.into()).to_id_string();
    Ok((oid, rest))
}

/// A small non-negative DER INTEGER.
fn small_uint(content: &[u8]) -> Result<u32, der::DerError> {
    if content.first().is_some_and(|b| b & 0x80 != 0) {
        return Err("negative INTEGER");
    }
    let v = der::strip_leading_zeros(content);
    if v.is_empty() || v.len() > 4 {
        return Err("INTEGER out of range");
    }
    Ok(v.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b)))
}

/// Reads `RSASSA-PSS-params` (RFC 4055 §3.1) from a signature `AlgorithmIdentifier`.
fn parse_pss_params(alg_der: &[u8]) -> Result<PssParams, der::DerError> {
    let (alg, _) = der::expect_tlv(alg_der, der::TAG_SEQUENCE, "not a SEQUENCE")?;
    let (_, rest) = alg_oid(alg.content)?;
    let (params, _) = der::expect_tlv(rest, der::TAG_SEQUENCE, "RSASSA-PSS parameters missing")?;
    let mut out = PssParams {
        hash_oid: OID_SHA1.into(),
        mgf_oid: OID_MGF1.into(),
        mgf_hash_oid: OID_SHA1.into(),
        salt_length: 20,
        trailer_field: 1,
    };
    for field in der::children(params.content)? {
        match field.tag {
            0xa0 => {
                let (hash, _) = der::expect_tlv(field.content, der::TAG_SEQUENCE, "bad hash")?;
                out.hash_oid = alg_oid(hash.content)?.0;
            }
            0xa1 => {
                let (mgf, _) = der::expect_tlv(field.content, der::TAG_SEQUENCE, "bad MGF")?;
                let (mgf_oid, rest) = alg_oid(mgf.content)?;
                let (hash, _) = der::expect_tlv(rest, der::TAG_SEQUENCE, "MGF hash missing")?;
                out.mgf_oid = mgf_oid;
                out.mgf_hash_oid = alg_oid(hash.content)?.0;
            }
            0xa2 | 0xa3 => {
                let (int, _) = der::expect_tlv(field.content, der::TAG_INTEGER, "not an INTEGER")?;
                let v = small_uint(int.content)?;
                if field.tag == 0xa2 {
                    out.salt_length = v;
                } else {
                    out.trailer_field = v;
                }
            }
            _ => return Err("unknown RSASSA-PSS parameter"),
        }
    }
    Ok(out)
}

fn ip_from_bytes(b: &[u8]) -> Option<IpAddr> {
    match b.len() {
        4 => <[u8; 4]>::try_from(b).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(b).ok().map(IpAddr::from),
        _ => None,
    }
}

fn algorithm_name(oid: &x509_parser::der_parser::oid::Oid<'_>) -> String {
    x509_parser::objects::oid2sn(oid, x509_parser::objects::oid_registry())
        .map(str::to_string)
        .unwrap_or_else(|_| oid.to_id_string())
}

/// Builds the key summary of a DER SubjectPublicKeyInfo.
pub(crate) fn key_info_from_spki(spki: &SubjectPublicKeyInfo<'_>) -> Result<KeyInfo, InspectError> {
    let bad = |reason: &str| InspectError::unparseable("public key", reason.to_string());
    let alg = spki.algorithm.algorithm.as_bytes();
    let bits = spki.subject_public_key.data.as_ref();
    if alg == OID_RSA || alg == OID_RSA_PSS {
        let (seq, _) = der::expect_tlv(bits, der::TAG_SEQUENCE, "RSA public key is not a SEQUENCE")
            .map_err(bad)?;
        let (n, rest) =
            der::expect_tlv(seq.content, der::TAG_INTEGER, "RSA modulus missing").map_err(bad)?;
        let (e, _) =
            der::expect_tlv(rest, der::TAG_INTEGER, "RSA exponent missing").map_err(bad)?;
        return Ok(KeyInfo::rsa(n.content, e.content));
    }
    if alg == OID_EC {
        let params = spki.algorithm.parameters.as_ref();
        let curve = match params {
            // `Any::as_oid` does not look at the tag, so check it first: an explicit
            // `ECParameters` SEQUENCE would otherwise be read as a (nonsense) OID.
            Some(p) => match (p.header.tag().0, p.as_oid()) {
                (6, Ok(oid)) => curve_name(oid.as_bytes()),
                (16, _) => "explicit".to_string(),
                _ => return Err(bad("EC parameters are neither a named curve nor explicit")),
            },
            None => return Err(bad("EC key without curve parameters")),
        };
        if curve == "explicit" {
            let params = spki_algorithm_params(spki.raw)
                .ok_or_else(|| bad("explicit EC parameters cannot be read"))?;
            return Ok(KeyInfo::ec_explicit(params, bits.to_vec()));
        }
        return Ok(KeyInfo::ec(curve, bits.to_vec()));
    }
    if alg == OID_ED25519 {
        if bits.len() != 32 {
            return Err(bad("Ed25519 public key is not 32 bytes"));
        }
        return Ok(KeyInfo::Ed25519 {
            public: bits.to_vec(),
        });
    }
    if alg == OID_ED448 {
        return Ok(KeyInfo::Ed448 {
            public: bits.to_vec(),
        });
    }
    if alg == super::key::OID_DSA {
        let params = spki_algorithm_params(spki.raw)
            .ok_or_else(|| bad("DSA key without its domain parameters (p, q, g)"))?;
        let (p, q, g) = super::key::dss_params(&params).map_err(|e| bad(e.as_str()))?;
        let (y, _) = der::expect_tlv(bits, der::TAG_INTEGER, "DSA public value is not an INTEGER")
            .map_err(bad)?;
        return Ok(KeyInfo::dsa(p, q, g, y.content));
    }
    if let Some(k) = super::key::raw_public_key(alg, bits).map_err(|e| bad(e.as_str()))? {
        return Ok(k);
    }
    Ok(KeyInfo::Other {
        oid: spki.algorithm.algorithm.to_id_string(),
    })
}

/// The raw parameters element of `SubjectPublicKeyInfo.algorithm`.
fn spki_algorithm_params(spki_der: &[u8]) -> Option<Vec<u8>> {
    let (spki, _) = der::expect_tlv(spki_der, der::TAG_SEQUENCE, "").ok()?;
    let (alg, _) = der::expect_tlv(spki.content, der::TAG_SEQUENCE, "").ok()?;
    let (_oid, rest) = der::expect_tlv(alg.content, der::TAG_OID, "").ok()?;
    let (params, _) = der::read_tlv(rest).ok()?;
    Some(params.raw.to_vec())
}

/// Parses a DER SubjectPublicKeyInfo (`PUBLIC KEY`).
pub fn inspect_spki_der(der: &[u8]) -> Result<KeyInfo, InspectError> {
    let (_, spki) = SubjectPublicKeyInfo::from_der(der)
        .map_err(|e| InspectError::unparseable("public key", format!("{e}")))?;
    key_info_from_spki(&spki)
}

/// What a certificate signing request asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CsrInfo {
    /// Subject distinguished name.
    pub subject: String,
    /// Requested DNS names.
    pub dns_names: Vec<String>,
    /// Requested IP addresses.
    pub ip_addresses: Vec<IpAddr>,
    /// The key the certificate would certify.
    pub key: KeyInfo,
    /// Whether the CSR's self-signature verifies (proof of possession).
    pub signature_valid: bool,
    /// SHA-256 of the SubjectPublicKeyInfo.
    pub spki_sha256: String,
}

/// Inspects one DER PKCS#10 certificate signing request.
pub fn inspect_csr_der(der: &[u8]) -> Result<CsrInfo, InspectError> {
    let (_, csr) = X509CertificationRequest::from_der(der)
        .map_err(|e| InspectError::unparseable("CSR", format!("{e}")))?;
    let info = &csr.certification_request_info;
    // RFC 2986 §4.1: version 0 (v1) is the only one.
    if info.version.0 != 0 {
        return Err(InspectError::unparseable(
            "CSR",
            format!(
                "invalid version {} (RFC 2986 §4.1 allows only 0, for v1)",
                info.version.0
            ),
        ));
    }
    let key = key_info_from_spki(&info.subject_pki)?;
    let mut dns_names = Vec::new();
    let mut ip_addresses = Vec::new();
    if let Some(exts) = csr.requested_extensions() {
        for ext in exts {
            if let ParsedExtension::SubjectAlternativeName(san) = ext {
                for name in &san.general_names {
                    match name {
                        GeneralName::DNSName(d) => dns_names.push((*d).to_string()),
                        GeneralName::IPAddress(ip) => ip_addresses.extend(ip_from_bytes(ip)),
                        _ => {}
                    }
                }
            }
        }
    }
    Ok(CsrInfo {
        subject: info.subject.to_string(),
        dns_names,
        ip_addresses,
        key,
        signature_valid: csr.verify_signature().is_ok(),
        spki_sha256: hex_sha256(info.subject_pki.raw),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        der::push_header(&mut out, tag, content.len());
        out.extend_from_slice(content);
        out
    }

    const PSS: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a];
    const SHA256_ALG: &[u8] = &[
        0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00,
    ];

    fn pss_alg(params: &[u8]) -> Vec<u8> {
        tlv(0x30, &[tlv(0x06, PSS), tlv(0x30, params)].concat())
    }

    /// A self-signed certificate valid from `from` to `to` ((year, month, day) at midnight).
    fn valid(from: (i32, u8, u8), to: (i32, u8, u8)) -> CertInfo {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["a.example".to_string()]).unwrap();
        params.not_before = rcgen::date_time_ymd(from.0, from.1, from.2);
        params.not_after = rcgen::date_time_ymd(to.0, to.1, to.2);
        let cert = params.self_signed(&key).unwrap();
        inspect_certificate_der(cert.der()).unwrap()
    }

    #[test]
    fn short_lived_counts_the_validity_period_inclusive_and_changes_on_2026_03_15() {
        // From 2026-03-15: at most 7 days; notAfter exactly 7 days on is one second over.
        let six = valid((2026, 3, 20), (2026, 3, 26));
        assert_eq!(six.validity_secs(), 6 * 86_400 + 1);
        assert!(six.is_short_lived());
        assert!(!valid((2026, 3, 20), (2026, 3, 27)).is_short_lived());
        // Before it: at most 10 days.
        assert!(valid((2026, 3, 1), (2026, 3, 10)).is_short_lived());
        assert!(!valid((2026, 3, 1), (2026, 3, 11)).is_short_lived());
        // Nine days issued after the change: not short-lived; nor anything before 2024-03-15,
        // nor a certificate whose notAfter is before its notBefore.
        assert!(!valid((2026, 3, 16), (2026, 3, 25)).is_short_lived());
        assert!(!valid((2024, 3, 1), (2024, 3, 5)).is_short_lived());
        assert!(valid((2024, 3, 15), (2024, 3, 20)).is_short_lived());
        assert!(!valid((2026, 3, 20), (2026, 3, 19)).is_short_lived());
    }

    #[test]
    fn pss_defaults_are_sha1() {
        let p = parse_pss_params(&pss_alg(&[])).unwrap();
        assert_eq!(
            p,
            PssParams {
                hash_oid: OID_SHA1.into(),
                mgf_oid: OID_MGF1.into(),
                mgf_hash_oid: OID_SHA1.into(),
                salt_length: 20,
                trailer_field: 1,
            }
        );
    }

    #[test]
    fn pss_explicit_parameters() {
        let mgf1 = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08];
        let params = [
            tlv(0xa0, SHA256_ALG),
            tlv(
                0xa1,
                &tlv(0x30, &[tlv(0x06, &mgf1), SHA256_ALG.to_vec()].concat()),
            ),
            tlv(0xa2, &tlv(0x02, &[0x20])),
            tlv(0xa3, &tlv(0x02, &[0x01])),
        ]
        .concat();
        let p = parse_pss_params(&pss_alg(&params)).unwrap();
        assert_eq!(p.hash_oid, "2.16.840.1.101.3.4.2.1");
        assert_eq!(p.mgf_hash_oid, "2.16.840.1.101.3.4.2.1");
        assert_eq!((p.salt_length, p.trailer_field), (32, 1));
    }

    #[test]
    fn pss_garbage_is_an_error() {
        for params in [
            tlv(0xa2, &tlv(0x02, &[0x80])),
            tlv(0xa2, &tlv(0x02, &[1, 2, 3, 4, 5])),
            tlv(0xa4, &[]),
            tlv(0xa0, &[0x30, 0x05]),
        ] {
            assert!(parse_pss_params(&pss_alg(&params)).is_err());
        }
        assert!(parse_pss_params(&[]).is_err());
        assert!(parse_pss_params(&tlv(0x30, &tlv(0x06, PSS))).is_err());
    }

    #[test]
    fn signature_algorithm_is_the_second_element() {
        let cert = tlv(
            0x30,
            &[tlv(0x30, &[]), SHA256_ALG.to_vec(), tlv(0x03, &[0])].concat(),
        );
        assert_eq!(signature_algorithm_der(&cert).as_deref(), Some(SHA256_ALG));
        assert_eq!(signature_algorithm_der(&[0x30, 0x02, 0x30, 0x00]), None);
    }
}
