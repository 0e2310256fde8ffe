//! The internal certificate authority, built on rcgen.
//!
//! Its key (0600) and certificate live as files in the configured directory; the CA is
//! created there on first use. It records every certificate it issues and revokes in the
//! issuer storage, and after each revocation (and when the current CRL nears its nextUpdate)
//! publishes a signed CRL, DER at `crl_path` and PEM beside it, with an increasing cRLNumber.
//!
//! Certificates are issued from a CSR with sanitised parameters: the CSR contributes only its
//! key, subject and subject alternative names. CA status, key usages, EKUs, validity and the
//! serial are set here, so a CSR asking to be a CA does not get to be one. A caller that
//! holds the key itself can instead have a public key certified directly
//! ([`InternalCa::issue_for_public_key`]), through the same checks and records.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use certresponder_inventory::fs::{create_dir_with_mode, write_atomic};
use certresponder_inventory::{CertKind, inspect};
use chrono::{DateTime, Utc};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams,
    CertificateSigningRequestParams, CrlDistributionPoint, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer as RcgenIssuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    RevokedCertParams, SanType, SerialNumber,
};
use serde::{Deserialize, Serialize};

use crate::IssuerError;
use crate::config::InternalCaConfig;
use crate::issuer::{
    CertStatus, Identifier, IssueRequest, IssuedChain, Issuer, RenewalWindow, RevocationReason,
    RevokeRequest,
};
use crate::storage::IssuerStorage;

const CA_KEY: &str = "ca.key";
const CA_CERT: &str = "ca.pem";
/// Validity of the CA certificate created on first use: ten years.
const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// What the CA remembers of a certificate it issued.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    serial: String,
    names: Vec<String>,
    not_after: DateTime<Utc>,
    issued_at: DateTime<Utc>,
    revoked: Option<Revocation>,
    /// The caller's request id, when it gave one: [`Issuer::lookup`] finds the certificate
    /// by it, and a second issue of the same request returns it instead of signing again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    request: Option<String>,
    /// The leaf, PEM, kept with a request id so that it can be handed out again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    leaf_pem: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Revocation {
    reason: RevocationReason,
    at: DateTime<Utc>,
}

/// How to sign: the certificate's kind, its profile and the caller's request id.
struct How<'a> {
    kind: CertKind,
    profile: Option<&'a str>,
    request: Option<&'a str>,
}

/// A published CRL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedCrl {
    /// Its cRLNumber.
    pub number: u64,
    /// Where the DER was written.
    pub der_path: PathBuf,
    /// Where the PEM was written.
    pub pem_path: PathBuf,
    /// Its nextUpdate.
    pub next_update: DateTime<Utc>,
}

/// The internal CA.
pub struct InternalCa {
    id: String,
    cfg: InternalCaConfig,
    issuer: RcgenIssuer<'static, KeyPair>,
    cert_pem: String,
    cert_der: Vec<u8>,
    storage: Arc<dyn IssuerStorage>,
    crl_lock: std::sync::Mutex<()>,
}

impl std::fmt::Debug for InternalCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InternalCa")
            .field("id", &self.id)
            .field("dir", &self.cfg.dir)
            .finish_non_exhaustive()
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> IssuerError + '_ {
    move |source| IssuerError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn crypto(e: rcgen::Error) -> IssuerError {
    IssuerError::Crypto(e.to_string())
}

fn random_serial() -> Result<SerialNumber, IssuerError> {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| IssuerError::Crypto("no randomness".into()))?;
    // Positive, non-zero and with no leading zero octet (RFC 5280 §4.1.2.2).
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    Ok(SerialNumber::from_slice(&bytes))
}

fn to_offset(t: DateTime<Utc>) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(t.timestamp())
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

/// Whether `name` is allowed by the patterns (`name` exact, `.suffix` subtree).
fn name_allowed(name: &str, allowed: &[String]) -> bool {
    let name = name.to_ascii_lowercase();
    allowed.is_empty()
        || allowed.iter().any(|a| match a.strip_prefix('.') {
            Some(suffix) => name.ends_with(&format!(".{suffix}")),
            None => name == *a,
        })
}

impl InternalCa {
    /// Loads the CA from its directory, creating it there when it has none.
    pub fn open_or_create(
        id: &str,
        cfg: InternalCaConfig,
        storage: Arc<dyn IssuerStorage>,
    ) -> Result<Self, IssuerError> {
        let key_path = cfg.dir.join(CA_KEY);
        let cert_path = cfg.dir.join(CA_CERT);
        if !key_path.exists() && !cert_path.exists() {
            Self::create(&cfg)?;
        }
        let key_pem = std::fs::read_to_string(&key_path).map_err(io(&key_path))?;
        let cert_pem = std::fs::read_to_string(&cert_path).map_err(io(&cert_path))?;
        let key = KeyPair::from_pem(&key_pem).map_err(|e| IssuerError::BadState {
            path: key_path.clone(),
            reason: format!("not a usable CA key: {e}"),
        })?;
        let issuer =
            RcgenIssuer::from_ca_cert_pem(&cert_pem, key).map_err(|e| IssuerError::BadState {
                path: cert_path.clone(),
                reason: format!("not a usable CA certificate: {e}"),
            })?;
        let cert_der = inspect::read_certificates(cert_pem.as_bytes())
            .ok()
            .and_then(|c| c.into_iter().next())
            .ok_or_else(|| IssuerError::BadState {
                path: cert_path.clone(),
                reason: "no certificate in the file".into(),
            })?;
        Ok(Self {
            id: id.to_string(),
            cfg,
            issuer,
            cert_pem,
            cert_der,
            storage,
            crl_lock: std::sync::Mutex::new(()),
        })
    }

    fn create(cfg: &InternalCaConfig) -> Result<(), IssuerError> {
        create_dir_with_mode(&cfg.dir, 0o700).map_err(io(&cfg.dir))?;
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).map_err(crypto)?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, cfg.common_name.as_str());
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
        let cert = params.self_signed(&key).map_err(crypto)?;
        let key_path = cfg.dir.join(CA_KEY);
        let cert_path = cfg.dir.join(CA_CERT);
        write_atomic(&key_path, key.serialize_pem().as_bytes(), 0o600).map_err(io(&key_path))?;
        write_atomic(&cert_path, cert.pem().as_bytes(), 0o644).map_err(io(&cert_path))
    }

    /// The CA certificate, PEM.
    pub fn certificate_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate, DER.
    pub fn certificate_der(&self) -> &[u8] {
        &self.cert_der
    }

    fn record_key(serial: &str) -> String {
        format!("cert/{serial}")
    }

    fn load_record(&self, serial: &str) -> Result<Option<Record>, IssuerError> {
        let key = Self::record_key(serial);
        self.storage
            .get(&key)?
            .map(|v| {
                serde_json::from_slice(&v).map_err(|e| IssuerError::BadState {
                    path: PathBuf::from(&key),
                    reason: format!("undecodable record: {e}"),
                })
            })
            .transpose()
    }

    /// Every record of an issued certificate.
    fn records(&self) -> Result<Vec<Record>, IssuerError> {
        self.storage
            .scan("cert/")?
            .into_iter()
            .map(|(key, value)| {
                serde_json::from_slice(&value).map_err(|e| IssuerError::BadState {
                    path: PathBuf::from(&key),
                    reason: format!("undecodable record: {e}"),
                })
            })
            .collect()
    }

    fn save_record(&self, r: &Record) -> Result<(), IssuerError> {
        let v = serde_json::to_vec(r).map_err(|e| IssuerError::Storage(e.to_string()))?;
        self.storage.put(&Self::record_key(&r.serial), &v)
    }

    /// Issues synchronously (the async [`Issuer::issue`] calls this).
    pub fn issue_now(&self, req: &IssueRequest) -> Result<IssuedChain, IssuerError> {
        // The same request again (a retry whose first answer was lost): what it issued.
        if let Some(chain) = self.lookup_now(req)? {
            return Ok(chain);
        }
        let csr_der = rustls_pki_der(&req.csr_der);
        let csr = CertificateSigningRequestParams::from_der(&csr_der)
            .map_err(|e| IssuerError::BadCsr(e.to_string()))?;
        let requested = csr.params;
        let mut names = Vec::new();
        for san in &requested.subject_alt_names {
            match san {
                SanType::DnsName(d) => {
                    names.push(Identifier::Dns(d.to_string().to_ascii_lowercase()))
                }
                SanType::IpAddress(ip) => names.push(Identifier::Ip(*ip)),
                other => {
                    return Err(IssuerError::BadCsr(format!(
                        "the CSR asks for a name of a kind this CA does not issue: {other:?}"
                    )));
                }
            }
        }
        if names.is_empty() {
            return Err(IssuerError::BadCsr(
                "the CSR requests no subject alternative name".into(),
            ));
        }
        if !req.identifiers.is_empty() {
            let mut want: Vec<String> = req
                .identifiers
                .iter()
                .map(|i| i.to_string().to_ascii_lowercase())
                .collect();
            let mut have: Vec<String> = names.iter().map(ToString::to_string).collect();
            want.sort();
            have.sort();
            if want != have {
                return Err(IssuerError::BadCsr(format!(
                    "the CSR names {} but the request asks for {}",
                    have.join(", "),
                    want.join(", ")
                )));
            }
        }
        self.sign(
            &csr.public_key,
            &names,
            requested.subject_alt_names,
            requested.distinguished_name,
            How {
                kind: req.kind,
                profile: req.profile.as_deref(),
                request: req.request_id.as_deref(),
            },
        )
    }

    /// The certificate issued earlier for `req`'s request id, if any (none without an id).
    pub fn lookup_now(&self, req: &IssueRequest) -> Result<Option<IssuedChain>, IssuerError> {
        let Some(id) = req.request_id.as_deref() else {
            return Ok(None);
        };
        for rec in self.records()? {
            if rec.request.as_deref() == Some(id)
                && let Some(leaf_pem) = rec.leaf_pem
            {
                return Ok(Some(IssuedChain {
                    leaf_pem,
                    chain_pem: self.cert_pem.clone(),
                }));
            }
        }
        Ok(None)
    }

    /// Issues a certificate for a public key given directly (a DER SubjectPublicKeyInfo,
    /// RFC 5280 §4.1.2.7) rather than through a CSR, for the DNS names and IP addresses in
    /// `names` (the first is also the subject's common name).
    ///
    /// Without a CSR nothing proves possession of the private key, so this is for callers
    /// that hold the key themselves; it also serves keys whose CSR signature cannot be
    /// checked here, such as RSA keys below 2048 bits, which the CSR path refuses. Otherwise
    /// it is issuance as [`issue_now`](Self::issue_now) does it: the same allowed-names
    /// check, profiles, key usages for `kind`, random serial, CRL distribution point and
    /// record kept for revocation.
    pub fn issue_for_public_key(
        &self,
        spki_der: &[u8],
        names: &[String],
        kind: CertKind,
        profile: Option<&str>,
    ) -> Result<IssuedChain, IssuerError> {
        let key = rcgen::SubjectPublicKeyInfo::from_der(spki_der).map_err(|e| {
            IssuerError::BadRequest(format!("not a usable SubjectPublicKeyInfo: {e}"))
        })?;
        let mut ids = Vec::new();
        let mut sans = Vec::new();
        for name in names {
            if let Ok(ip) = name.parse::<std::net::IpAddr>() {
                ids.push(Identifier::Ip(ip));
                sans.push(SanType::IpAddress(ip));
            } else {
                let dns = name.to_ascii_lowercase();
                let ia5 = rcgen::string::Ia5String::try_from(dns.clone()).map_err(|e| {
                    IssuerError::BadRequest(format!("`{name}` is not a usable DNS name: {e}"))
                })?;
                ids.push(Identifier::Dns(dns));
                sans.push(SanType::DnsName(ia5));
            }
        }
        let Some(first) = names.first() else {
            return Err(IssuerError::BadRequest(
                "a certificate needs at least one name".into(),
            ));
        };
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, first.as_str());
        let how = How {
            kind,
            profile,
            request: None,
        };
        self.sign(&key, &ids, sans, dn, how)
    }

    /// Signs a leaf for `public_key` after checking the names and the profile, and records
    /// it before handing it out. Every issuance goes through here.
    fn sign(
        &self,
        public_key: &impl rcgen::PublicKeyData,
        names: &[Identifier],
        subject_alt_names: Vec<SanType>,
        distinguished_name: DistinguishedName,
        how: How<'_>,
    ) -> Result<IssuedChain, IssuerError> {
        let How {
            kind,
            profile,
            request,
        } = how;
        for n in names {
            if !name_allowed(&n.to_string(), &self.cfg.allowed_names) {
                return Err(IssuerError::NotAllowed(format!(
                    "issuer `{}` may not issue for `{n}` (allowed: {})",
                    self.id,
                    self.cfg.allowed_names.join(", ")
                )));
            }
        }
        let days = match profile {
            None => self.cfg.validity_days,
            Some(p) => *self.cfg.profiles.get(p).ok_or_else(|| {
                IssuerError::BadRequest(format!(
                    "issuer `{}` has no profile `{p}` (profiles: {})",
                    self.id,
                    self.cfg
                        .profiles
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?,
        };
        let mut params = CertificateParams::default();
        params.subject_alt_names = subject_alt_names;
        params.distinguished_name = distinguished_name;
        params.is_ca = IsCa::ExplicitNoCa;
        params.use_authority_key_identifier_extension = true;
        let (key_usages, ekus) = usages_for(kind);
        params.key_usages = key_usages;
        params.extended_key_usages = ekus;
        if let Some(url) = &self.cfg.crl_url {
            params.crl_distribution_points = vec![CrlDistributionPoint {
                uris: vec![url.clone()],
            }];
        }
        let now = Utc::now();
        params.not_before = to_offset(now) - time::Duration::minutes(5);
        params.not_after = to_offset(now) + time::Duration::days(i64::from(days));
        let serial = random_serial()?;
        params.serial_number = Some(serial.clone());
        let cert = params.signed_by(public_key, &self.issuer).map_err(crypto)?;
        // Recorded durably before the certificate is handed out, so it can always be revoked
        // (and, with a request id, found again).
        self.save_record(&Record {
            serial: hex::encode(serial.as_ref()),
            names: names.iter().map(ToString::to_string).collect(),
            not_after: now + chrono::Duration::days(i64::from(days)),
            issued_at: now,
            revoked: None,
            request: request.map(str::to_string),
            leaf_pem: request.map(|_| cert.pem()),
        })?;
        tracing::info!(issuer = %self.id, serial = %hex::encode(serial.as_ref()), "issued");
        Ok(IssuedChain {
            leaf_pem: cert.pem(),
            chain_pem: self.cert_pem.clone(),
        })
    }

    /// Serial (hex) of a certificate this CA signed.
    fn own_serial(&self, der: &[u8]) -> Result<Option<String>, IssuerError> {
        let info = inspect::inspect_certificate_der(der)
            .map_err(|e| IssuerError::BadRequest(e.to_string()))?;
        let ours = inspect::cert_signed_by(der, &self.cert_der)
            .map_err(|e| IssuerError::BadRequest(e.to_string()))?;
        Ok(ours.then_some(info.serial))
    }

    /// Revokes synchronously (the async [`Issuer::revoke`] calls this).
    pub fn revoke_now(
        &self,
        der: &[u8],
        reason: RevocationReason,
    ) -> Result<PublishedCrl, IssuerError> {
        let serial = self.own_serial(der)?.ok_or_else(|| {
            IssuerError::BadRequest(format!("the certificate was not issued by `{}`", self.id))
        })?;
        let mut rec = match self.load_record(&serial)? {
            Some(r) => r,
            None => {
                // Signed by our key but unknown to the storage (restored CA): record it now.
                let info = inspect::inspect_certificate_der(der)
                    .map_err(|e| IssuerError::BadRequest(e.to_string()))?;
                Record {
                    serial: serial.clone(),
                    names: info.dns_names.clone(),
                    not_after: info.not_after,
                    issued_at: info.not_before,
                    revoked: None,
                    request: None,
                    leaf_pem: None,
                }
            }
        };
        if let Some(r) = &rec.revoked {
            // A crash between recording the revocation and publishing the CRL leaves the
            // serial out of the published CRL: publish now, so that asking again repairs it.
            if !self.published_crl_lists(&serial) {
                tracing::warn!(issuer = %self.id, serial = %serial, "revoked serial missing from the published CRL; publishing it");
                self.publish_crl()?;
            }
            return Err(IssuerError::AlreadyRevoked(format!(
                "serial {serial} was revoked at {} ({})",
                r.at.to_rfc3339(),
                r.reason
            )));
        }
        rec.revoked = Some(Revocation {
            reason,
            at: Utc::now(),
        });
        self.save_record(&rec)?;
        tracing::info!(issuer = %self.id, serial = %serial, reason = %reason, "revoked");
        self.publish_crl()
    }

    /// Whether the CRL published at `crl_path` lists `serial`.
    fn published_crl_lists(&self, serial: &str) -> bool {
        std::fs::read(&self.cfg.crl_path)
            .ok()
            .and_then(|der| inspect::inspect_crl_der(&der).ok())
            .is_some_and(|crl| crl.find(serial).is_some())
    }

    /// Signs and publishes a new CRL listing every revoked, unexpired certificate.
    pub fn publish_crl(&self) -> Result<PublishedCrl, IssuerError> {
        let _guard = self
            .crl_lock
            .lock()
            .map_err(|_| IssuerError::Storage("CRL lock poisoned".into()))?;
        let now = Utc::now();
        let number = self
            .storage
            .get("crl/number")?
            .and_then(|v| String::from_utf8(v).ok())
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0)
            + 1;
        let mut revoked_certs = Vec::new();
        for rec in self.records()? {
            let Some(rev) = rec.revoked else { continue };
            if rec.not_after < now {
                continue;
            }
            let serial = hex::decode(&rec.serial).map_err(|e| IssuerError::BadState {
                path: PathBuf::from(Self::record_key(&rec.serial)),
                reason: format!("bad serial: {e}"),
            })?;
            revoked_certs.push(RevokedCertParams {
                serial_number: SerialNumber::from_slice(&serial),
                revocation_time: to_offset(rev.at),
                reason_code: rcgen_reason(rev.reason),
                invalidity_date: None,
            });
        }
        let next_update = now
            + chrono::Duration::from_std(self.cfg.crl_validity)
                .unwrap_or(chrono::Duration::days(7));
        let crl = CertificateRevocationListParams {
            this_update: to_offset(now),
            next_update: to_offset(next_update),
            crl_number: SerialNumber::from(number),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: KeyIdMethod::Sha256,
        }
        .signed_by(&self.issuer)
        .map_err(crypto)?;
        let der_path = self.cfg.crl_path.clone();
        let pem_path = der_path.with_extension("pem");
        if let Some(parent) = der_path.parent() {
            // Published: a web server serves it at `crl_url`, whatever the umask.
            create_dir_with_mode(parent, 0o755).map_err(io(parent))?;
        }
        write_atomic(&der_path, crl.der(), 0o644).map_err(io(&der_path))?;
        write_atomic(&pem_path, crl.pem().map_err(crypto)?.as_bytes(), 0o644)
            .map_err(io(&pem_path))?;
        self.storage
            .put("crl/number", number.to_string().as_bytes())?;
        self.storage
            .put("crl/next_update", next_update.to_rfc3339().as_bytes())?;
        Ok(PublishedCrl {
            number,
            der_path,
            pem_path,
            next_update,
        })
    }

    /// Publishes a new CRL when none exists or the current one's nextUpdate is within
    /// `margin`. Returns the new CRL, if one was published.
    pub fn refresh_crl_if_due(
        &self,
        margin: Duration,
    ) -> Result<Option<PublishedCrl>, IssuerError> {
        let next = self
            .storage
            .get("crl/next_update")?
            .and_then(|v| String::from_utf8(v).ok())
            .and_then(|s| DateTime::parse_from_rfc3339(&s).ok())
            .map(|t| t.with_timezone(&Utc));
        let margin = chrono::Duration::from_std(margin).unwrap_or(chrono::Duration::hours(1));
        match next {
            Some(n) if n - margin > Utc::now() && self.cfg.crl_path.exists() => Ok(None),
            _ => self.publish_crl().map(Some),
        }
    }

    /// Status from the CA's own records.
    pub fn status_now(&self, der: &[u8]) -> Result<CertStatus, IssuerError> {
        let Some(serial) = self.own_serial(der)? else {
            return Ok(CertStatus::Unknown {
                why: format!("not issued by `{}`", self.id),
            });
        };
        Ok(match self.load_record(&serial)? {
            Some(Record {
                revoked: Some(r), ..
            }) => CertStatus::Revoked {
                reason: Some(r.reason),
                revoked_at: r.at,
            },
            Some(_) => CertStatus::Good,
            None => CertStatus::Unknown {
                why: format!("`{}` has no record of serial {serial}", self.id),
            },
        })
    }
}

/// rcgen wants `CertificateSigningRequestDer`; this keeps that type local.
fn rustls_pki_der(der: &[u8]) -> rustls_pki_types::CertificateSigningRequestDer<'static> {
    rustls_pki_types::CertificateSigningRequestDer::from(der.to_vec())
}

fn rcgen_reason(r: RevocationReason) -> Option<rcgen::RevocationReason> {
    use rcgen::RevocationReason as R;
    Some(match r {
        RevocationReason::Unspecified => return None,
        RevocationReason::KeyCompromise => R::KeyCompromise,
        RevocationReason::CaCompromise => R::CaCompromise,
        RevocationReason::AffiliationChanged => R::AffiliationChanged,
        RevocationReason::Superseded => R::Superseded,
        RevocationReason::CessationOfOperation => R::CessationOfOperation,
        RevocationReason::CertificateHold => R::CertificateHold,
        RevocationReason::RemoveFromCrl => R::RemoveFromCrl,
        RevocationReason::PrivilegeWithdrawn => R::PrivilegeWithdrawn,
        RevocationReason::AaCompromise => R::AaCompromise,
    })
}

#[async_trait]
impl Issuer for InternalCa {
    fn id(&self) -> &str {
        &self.id
    }

    async fn issue(&self, req: &IssueRequest) -> Result<IssuedChain, IssuerError> {
        self.issue_now(req)
    }

    async fn lookup(&self, req: &IssueRequest) -> Result<Option<IssuedChain>, IssuerError> {
        self.lookup_now(req)
    }

    async fn revoke(&self, req: &RevokeRequest) -> Result<(), IssuerError> {
        self.revoke_now(&req.certificate_der, req.reason)
            .map(|_| ())
    }

    async fn status(&self, certificate_der: &[u8]) -> Result<CertStatus, IssuerError> {
        self.status_now(certificate_der)
    }

    async fn renewal_info(&self, _: &[u8]) -> Result<Option<RenewalWindow>, IssuerError> {
        Ok(None)
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
    use crate::storage::MemoryStorage;
    use std::collections::BTreeMap;

    fn cfg(dir: &Path) -> InternalCaConfig {
        InternalCaConfig {
            dir: dir.join("ca"),
            common_name: "Test CA".into(),
            validity_days: 90,
            profiles: BTreeMap::from([("short".to_string(), 1)]),
            crl_path: dir.join("crl/ca.crl"),
            crl_validity: Duration::from_secs(3600),
            crl_url: Some("http://crl.example.test/ca.crl".into()),
            allowed_names: vec![".example.test".into()],
        }
    }

    fn csr(names: &[&str], as_ca: bool) -> Vec<u8> {
        let key = crate::generate_key(certresponder_inventory::KeyProfile::EcdsaP256).unwrap();
        let mut p = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap();
        if as_ca {
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        }
        p.serialize_request(&key).unwrap().der().to_vec()
    }

    fn req(csr_der: Vec<u8>, profile: Option<&str>) -> IssueRequest {
        IssueRequest {
            csr_der,
            identifiers: Vec::new(),
            kind: CertKind::TlsServer,
            profile: profile.map(str::to_string),
            replaces: None,
            request_id: None,
        }
    }

    #[test]
    fn sanitises_records_revokes_and_publishes_increasing_crls() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Arc::new(MemoryStorage::new());
        let ca = InternalCa::open_or_create("internal", cfg(dir.path()), storage.clone()).unwrap();
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(dir.path().join("ca").join(CA_KEY))
                .unwrap()
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
        let chain = ca
            .issue_now(&req(csr(&["a.example.test"], true), Some("short")))
            .unwrap();
        let leaf = &inspect::inspect_certificates(chain.leaf_pem.as_bytes()).unwrap()[0];
        assert!(!leaf.is_ca, "a CSR asking for CA must not get it");
        assert_eq!(leaf.crl_urls, ["http://crl.example.test/ca.crl"]);
        assert!((leaf.not_after - leaf.not_before).num_hours() <= 25);
        let der = inspect::read_certificates(chain.leaf_pem.as_bytes())
            .unwrap()
            .remove(0);
        assert_eq!(ca.status_now(&der).unwrap(), CertStatus::Good);
        let crl = ca
            .revoke_now(&der, RevocationReason::KeyCompromise)
            .unwrap();
        assert_eq!(crl.number, 1);
        let info = inspect::inspect_crl_der(&std::fs::read(&crl.der_path).unwrap()).unwrap();
        assert_eq!(info.find(&leaf.serial).unwrap().reason_code, Some(1));
        assert!(
            inspect::crl_signed_by(&std::fs::read(&crl.der_path).unwrap(), ca.certificate_der())
                .unwrap()
        );
        assert!(matches!(
            ca.revoke_now(&der, RevocationReason::KeyCompromise),
            Err(IssuerError::AlreadyRevoked(_))
        ));
        // A crash between recording a revocation and publishing the CRL: asking again
        // publishes a CRL that lists the serial.
        std::fs::remove_file(&crl.der_path).unwrap();
        assert!(matches!(
            ca.revoke_now(&der, RevocationReason::KeyCompromise),
            Err(IssuerError::AlreadyRevoked(_))
        ));
        let info = inspect::inspect_crl_der(&std::fs::read(&crl.der_path).unwrap()).unwrap();
        assert!(info.find(&leaf.serial).is_some());
        assert!(matches!(
            ca.status_now(&der).unwrap(),
            CertStatus::Revoked {
                reason: Some(RevocationReason::KeyCompromise),
                ..
            }
        ));
        // Not due yet: nothing published. Due (margin beyond the hour of validity): number 3.
        assert!(
            ca.refresh_crl_if_due(Duration::from_secs(60))
                .unwrap()
                .is_none()
        );
        assert_eq!(
            ca.refresh_crl_if_due(Duration::from_secs(7200))
                .unwrap()
                .unwrap()
                .number,
            3
        );
        // Names outside allowed_names, unknown profiles and garbage are typed errors.
        assert!(matches!(
            ca.issue_now(&req(csr(&["evil.example.com"], false), None)),
            Err(IssuerError::NotAllowed(_))
        ));
        assert!(matches!(
            ca.issue_now(&req(csr(&["b.example.test"], false), Some("nope"))),
            Err(IssuerError::BadRequest(_))
        ));
        assert!(matches!(
            ca.issue_now(&req(vec![0x30, 0x03, 1, 2, 3], None)),
            Err(IssuerError::BadCsr(_))
        ));
        // The shared conformance suite.
        let conf = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(crate::conformance::run(
                &ca,
                &crate::conformance::Options {
                    names: vec!["c.example.test".into(), "d.example.test".into()],
                    forbidden_name: Some("evil.example.com".into()),
                    profile: Some("short".into()),
                    expected_validity: Some((
                        Duration::from_secs(86_400),
                        Duration::from_secs(600),
                    )),
                    oracle: None,
                },
            ));
        let conf = conf.unwrap();
        assert!(conf.status_from_adapter && conf.lookup);
        // Reloading gives the same CA.
        let again = InternalCa::open_or_create("internal", cfg(dir.path()), storage).unwrap();
        assert_eq!(again.certificate_pem(), ca.certificate_pem());
    }

    #[test]
    fn issues_for_a_public_key_with_the_csr_paths_checks_and_records() {
        let dir = tempfile::tempdir().unwrap();
        let ca =
            InternalCa::open_or_create("internal", cfg(dir.path()), Arc::new(MemoryStorage::new()))
                .unwrap();
        let key = crate::generate_key(certresponder_inventory::KeyProfile::EcdsaP256).unwrap();
        let spki = rcgen::PublicKeyData::subject_public_key_info(&key);
        let chain = ca
            .issue_for_public_key(
                &spki,
                &["Svc.example.test".into(), "alt.example.test".into()],
                CertKind::TlsClient,
                Some("short"),
            )
            .unwrap();
        let leaf = &inspect::inspect_certificates(chain.leaf_pem.as_bytes()).unwrap()[0];
        assert!(
            leaf.key
                .same_public_key(&inspect::read_public_key(&spki).unwrap())
        );
        assert_eq!(leaf.dns_names, ["svc.example.test", "alt.example.test"]);
        assert_eq!(leaf.subject_cns, ["Svc.example.test"]);
        assert!(!leaf.is_ca);
        assert_eq!(leaf.crl_urls, ["http://crl.example.test/ca.crl"]);
        assert!((leaf.not_after - leaf.not_before).num_hours() <= 25);
        assert_eq!(chain.chain_pem, ca.certificate_pem());
        let der = inspect::read_certificates(chain.leaf_pem.as_bytes())
            .unwrap()
            .remove(0);
        assert!(inspect::cert_signed_by(&der, ca.certificate_der()).unwrap());
        // Recorded like any issuance: known to the CA, and revocable.
        assert_eq!(ca.status_now(&der).unwrap(), CertStatus::Good);
        ca.revoke_now(&der, RevocationReason::Superseded).unwrap();
        assert!(matches!(
            ca.status_now(&der).unwrap(),
            CertStatus::Revoked { .. }
        ));
        // The same refusals as the CSR path, and no certificate for garbage or no names.
        let names = |n: &str| vec![n.to_string()];
        assert!(matches!(
            ca.issue_for_public_key(&spki, &names("evil.example.com"), CertKind::TlsServer, None),
            Err(IssuerError::NotAllowed(_))
        ));
        assert!(matches!(
            ca.issue_for_public_key(
                &spki,
                &names("b.example.test"),
                CertKind::TlsServer,
                Some("nope")
            ),
            Err(IssuerError::BadRequest(_))
        ));
        assert!(matches!(
            ca.issue_for_public_key(
                &[0x30, 0x03, 1, 2, 3],
                &names("b.example.test"),
                CertKind::TlsServer,
                None
            ),
            Err(IssuerError::BadRequest(_))
        ));
        assert!(matches!(
            ca.issue_for_public_key(&spki, &[], CertKind::TlsServer, None),
            Err(IssuerError::BadRequest(_))
        ));
    }
}
