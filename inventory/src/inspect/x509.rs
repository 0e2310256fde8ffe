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
    /// Whether this is an RFC 6962 precertificate (carries the poison extension).
    pub is_precertificate: bool,
    /// Fingerprints.
    pub fingerprints: Fingerprints,
}

impl CertInfo {
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
        scts,
        authority_key_id,
        subject_key_id,
        crl_urls,
        ocsp_urls,
        is_ca: cert.is_ca(),
        is_precertificate,
        fingerprints: Fingerprints {
            cert_sha256: hex_sha256(der),
            spki_sha256: hex_sha256(tbs.subject_pki.raw),
            tbs_sha256: hex::encode(tbs_sha),
        },
    })
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
            Some(p) => match p.as_oid() {
                Ok(oid) => curve_name(oid.as_bytes()),
                Err(_) if p.header.tag().0 == 16 => "explicit".to_string(),
                Err(_) => return Err(bad("EC parameters are neither a named curve nor explicit")),
            },
            None => return Err(bad("EC key without curve parameters")),
        };
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
    Ok(KeyInfo::Other {
        oid: spki.algorithm.algorithm.to_id_string(),
    })
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
