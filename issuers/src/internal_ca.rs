//! The internal certificate authority, built on rcgen. Its key and certificate live as files
//! in the CA directory (key 0600, written atomically); it is created on first use.
//!
//! Certificates are issued from a CSR with sanitised parameters: the CSR contributes only its
//! key and subject alternative names; CA status, key usages, EKUs, validity and serial are
//! set here (a CSR asking to be a CA does not get to be one).

use std::path::{Path, PathBuf};
use std::time::Duration;

use certresponder_inventory::CertKind;
use certresponder_inventory::fs::{create_dir_with_mode, write_atomic};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SerialNumber,
};

use crate::IssuerError;

const CA_KEY: &str = "ca.key";
const CA_CERT: &str = "ca.pem";
/// Validity of the CA certificate created on first use: ten years.
const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// A certificate issued by the internal CA.
#[derive(Debug, Clone)]
pub struct IssuedCert {
    /// The leaf, PEM.
    pub leaf_pem: String,
    /// The chain above the leaf (the CA certificate), PEM.
    pub chain_pem: String,
}

/// The internal CA.
pub struct InternalCa {
    dir: PathBuf,
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
}

impl std::fmt::Debug for InternalCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InternalCa")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> IssuerError + '_ {
    move |source| IssuerError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn random_serial() -> Result<SerialNumber, IssuerError> {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| IssuerError::Crypto("no randomness".into()))?;
    // Positive and non-zero (RFC 5280 §4.1.2.2).
    bytes[0] = (bytes[0] & 0x7f) | 0x01;
    Ok(SerialNumber::from_slice(&bytes))
}

impl InternalCa {
    /// Loads the CA from `dir`, or creates it there (named `common_name`) when it has none.
    pub fn open_or_create(dir: &Path, common_name: &str) -> Result<Self, IssuerError> {
        let key_path = dir.join(CA_KEY);
        let cert_path = dir.join(CA_CERT);
        if key_path.exists() || cert_path.exists() {
            return Self::open(dir);
        }
        create_dir_with_mode(dir, 0o700).map_err(io(dir))?;
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384)
            .map_err(|e| IssuerError::Crypto(e.to_string()))?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        dn.push(DnType::OrganizationName, "certresponder internal CA");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::hours(1);
        params.not_after = now + CA_VALIDITY;
        params.serial_number = Some(random_serial()?);
        let cert = params
            .self_signed(&key)
            .map_err(|e| IssuerError::Crypto(e.to_string()))?;
        write_atomic(&key_path, key.serialize_pem().as_bytes(), 0o600).map_err(io(&key_path))?;
        write_atomic(&cert_path, cert.pem().as_bytes(), 0o644).map_err(io(&cert_path))?;
        Self::open(dir)
    }

    /// Loads an existing CA from `dir`.
    pub fn open(dir: &Path) -> Result<Self, IssuerError> {
        let key_path = dir.join(CA_KEY);
        let cert_path = dir.join(CA_CERT);
        let key_pem = std::fs::read_to_string(&key_path).map_err(io(&key_path))?;
        let cert_pem = std::fs::read_to_string(&cert_path).map_err(io(&cert_path))?;
        let key = KeyPair::from_pem(&key_pem).map_err(|e| IssuerError::BadState {
            path: key_path.clone(),
            reason: format!("not a usable CA key: {e}"),
        })?;
        let issuer =
            Issuer::from_ca_cert_pem(&cert_pem, key).map_err(|e| IssuerError::BadState {
                path: cert_path.clone(),
                reason: format!("not a usable CA certificate: {e}"),
            })?;
        Ok(Self {
            dir: dir.to_path_buf(),
            issuer,
            cert_pem,
        })
    }

    /// The CA certificate, PEM.
    pub fn certificate_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Issues a certificate for a PEM CSR, with key usages for `kind`, valid for `validity`.
    pub fn issue_from_csr(
        &self,
        csr_pem: &str,
        kind: CertKind,
        validity: Duration,
    ) -> Result<IssuedCert, IssuerError> {
        let csr = CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(|e| IssuerError::BadCsr(e.to_string()))?;
        let requested = csr.params;
        if requested.subject_alt_names.is_empty() {
            return Err(IssuerError::BadCsr(
                "the CSR requests no subject alternative name".into(),
            ));
        }
        let mut params = CertificateParams::default();
        params.subject_alt_names = requested.subject_alt_names;
        params.distinguished_name = requested.distinguished_name;
        params.is_ca = IsCa::ExplicitNoCa;
        params.use_authority_key_identifier_extension = true;
        let (key_usages, ekus) = usages_for(kind);
        params.key_usages = key_usages;
        params.extended_key_usages = ekus;
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::minutes(5);
        params.not_after = now
            + time::Duration::try_from(validity)
                .map_err(|_| IssuerError::BadCsr("validity out of range".into()))?;
        params.serial_number = Some(random_serial()?);
        let cert = params
            .signed_by(&csr.public_key, &self.issuer)
            .map_err(|e| IssuerError::Crypto(e.to_string()))?;
        Ok(IssuedCert {
            leaf_pem: cert.pem(),
            chain_pem: self.cert_pem.clone(),
        })
    }
}

/// Key usages and extended key usages for a certificate kind.
fn usages_for(kind: CertKind) -> (Vec<KeyUsagePurpose>, Vec<ExtendedKeyUsagePurpose>) {
    let ku = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    let eku = match kind {
        CertKind::TlsServer => vec![ExtendedKeyUsagePurpose::ServerAuth],
        CertKind::TlsClient | CertKind::ServiceAccount | CertKind::Agent => {
            vec![ExtendedKeyUsagePurpose::ClientAuth]
        }
        CertKind::TlsMutual => vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ],
        CertKind::CodeSigning => {
            return (
                vec![KeyUsagePurpose::DigitalSignature],
                vec![ExtendedKeyUsagePurpose::CodeSigning],
            );
        }
    };
    (ku, eku)
}

#[cfg(test)]
mod tests {
    use super::*;
    use certresponder_inventory::KeyProfile;
    use certresponder_inventory::inspect::inspect_certificates;

    #[test]
    fn issues_sanitised_leaf_and_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let ca = InternalCa::open_or_create(dir.path(), "Test CA").unwrap();
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(dir.path().join(CA_KEY))
                .unwrap()
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
        let key = crate::generate_key(KeyProfile::EcdsaP256).unwrap();
        let mut req = CertificateParams::new(vec!["svc.example".to_string()]).unwrap();
        req.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let csr = req.serialize_request(&key).unwrap().pem().unwrap();
        let issued = ca
            .issue_from_csr(&csr, CertKind::TlsServer, Duration::from_secs(86400))
            .unwrap();
        let info = &inspect_certificates(issued.leaf_pem.as_bytes()).unwrap()[0];
        assert!(!info.is_ca, "a CSR asking for CA must not get it");
        assert_eq!(info.dns_names, vec!["svc.example"]);
        assert!(info.authority_key_id.is_some());
        let days = (info.not_after - info.not_before).num_hours();
        assert!((24..=25).contains(&days));
        // Loading again gives the same CA.
        let again = InternalCa::open_or_create(dir.path(), "ignored").unwrap();
        assert_eq!(again.certificate_pem(), ca.certificate_pem());
    }
}
