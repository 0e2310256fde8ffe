//! The demo's sample services: their bundles, issued by the demo's internal CA, and their
//! inventory entries. Some are planted with a problem for the responder to find.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use anyhow::Context as _;
use certresponder_inventory::fs::{create_dir_with_mode, write_atomic};
use certresponder_inventory::{CertKind, KeyProfile, inspect};
use certresponder_issuers::{InternalCa, IssueRequest, IssuedChain, generate_key};

use super::weak_rsa;
use crate::cli::CliError;

/// The key a service starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DemoKey {
    /// A key of the service's `profile`.
    Profile,
    /// A 1024-bit RSA key, below the Baseline Requirements' minimum; the inventory still
    /// asks for `profile`, so its reissue gets a strong key.
    Rsa1024,
}

/// A sample service.
pub(super) struct Service {
    pub(super) name: &'static str,
    pub(super) owner: &'static str,
    kind: CertKind,
    profile: KeyProfile,
    key: DemoKey,
    /// Mode of the key file when it is written.
    key_mode: u32,
    days: u64,
    profile_name: Option<&'static str>,
    dns: &'static str,
    tags: &'static [&'static str],
    /// What the demo planted, in a few words.
    pub(super) planted: &'static str,
}

/// The service the quickstart reports compromised.
pub(super) const REPORTED: &str = "payments-client";
/// The service with the RSA-1024 key.
pub(super) const WEAK: &str = "legacy-api";

pub(super) const SERVICES: &[Service] = &[
    Service {
        name: "web-frontend",
        owner: "team-web@example.com",
        kind: CertKind::TlsServer,
        profile: KeyProfile::EcdsaP256,
        key: DemoKey::Profile,
        key_mode: 0o600,
        days: 90,
        profile_name: None,
        dns: "www.demo.internal",
        tags: &["prod", "edge"],
        planted: "healthy",
    },
    Service {
        name: "api-gateway",
        owner: "team-platform@example.com",
        kind: CertKind::TlsServer,
        profile: KeyProfile::Rsa3072,
        key: DemoKey::Profile,
        key_mode: 0o600,
        days: 90,
        profile_name: None,
        dns: "api.demo.internal",
        tags: &["prod"],
        planted: "healthy",
    },
    Service {
        name: WEAK,
        owner: "team-legacy@example.com",
        kind: CertKind::TlsServer,
        profile: KeyProfile::Rsa2048,
        key: DemoKey::Rsa1024,
        key_mode: 0o600,
        days: 90,
        profile_name: None,
        dns: "legacy-api.demo.internal",
        tags: &["prod"],
        planted: "RSA-1024 key",
    },
    Service {
        name: REPORTED,
        owner: "team-payments@example.com",
        kind: CertKind::TlsClient,
        profile: KeyProfile::EcdsaP384,
        key: DemoKey::Profile,
        key_mode: 0o600,
        days: 60,
        profile_name: Some("long"),
        dns: "payments.demo.internal",
        tags: &["prod", "pci"],
        planted: "reported compromised",
    },
    Service {
        name: "reports-svc",
        owner: "team-data@example.com",
        kind: CertKind::ServiceAccount,
        profile: KeyProfile::Rsa2048,
        key: DemoKey::Profile,
        key_mode: 0o600,
        days: 45,
        profile_name: Some("medium"),
        dns: "reports.demo.internal",
        tags: &["batch"],
        planted: "healthy",
    },
    Service {
        name: "build-agent",
        owner: "team-ci@example.com",
        kind: CertKind::Agent,
        profile: KeyProfile::Ed25519,
        key: DemoKey::Profile,
        key_mode: 0o644,
        days: 7,
        profile_name: Some("short"),
        dns: "ci-agent-01.demo.internal",
        tags: &["ci"],
        planted: "key file readable by everyone (0644)",
    },
];

impl Service {
    /// What was issued, for the setup lines.
    pub(super) fn issued_line(&self) -> String {
        match self.key {
            DemoKey::Profile => format!("{} ({}, {} days)", self.name, self.profile, self.days),
            DemoKey::Rsa1024 => format!(
                "{} (RSA-1024 on purpose, {} days; its inventory entry asks for {})",
                self.name, self.days, self.profile
            ),
        }
    }

    /// Issues the service's bundle into `dir` unless a matching certificate and key are
    /// already there. Returns whether it issued.
    pub(super) fn ensure(&self, ca: &InternalCa, dir: &Path) -> Result<bool, CliError> {
        let cert_path = dir.join("cert.pem");
        let key_path = dir.join("key.pem");
        let existing_ok = std::fs::read(&cert_path)
            .ok()
            .and_then(|c| inspect::inspect_certificates(&c).ok())
            .zip(
                std::fs::read(&key_path)
                    .ok()
                    .and_then(|k| inspect::read_private_key(&k).ok()),
            )
            .is_some_and(|(certs, key)| {
                certs
                    .first()
                    .is_some_and(|c| key.public.same_public_key(&c.key))
            });
        if existing_ok {
            return Ok(false);
        }
        create_dir_with_mode(dir, 0o755).with_context(|| format!("creating {}", dir.display()))?;
        let (key_pem, issued) = match self.key {
            DemoKey::Profile => self.issue_with_csr(ca)?,
            DemoKey::Rsa1024 => {
                let key = weak_rsa::generate()?;
                let issued = ca.issue_for_public_key(
                    &key.spki_der,
                    &[self.dns.to_string()],
                    self.kind,
                    self.profile_name,
                )?;
                (key.pkcs8_pem, issued)
            }
        };
        write_atomic(&key_path, key_pem.as_bytes(), 0o600)
            .with_context(|| format!("writing {}", key_path.display()))?;
        if self.key_mode != 0o600 {
            std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(self.key_mode))
                .with_context(|| format!("setting the mode of {}", key_path.display()))?;
        }
        let files = [
            ("cert.pem", issued.leaf_pem.clone()),
            ("chain.pem", issued.chain_pem.clone()),
            ("fullchain.pem", issued.fullchain_pem()),
        ];
        for (file, pem) in files {
            let path = dir.join(file);
            write_atomic(&path, pem.as_bytes(), 0o644)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(true)
    }

    /// A new key of the service's profile, certified through a CSR.
    fn issue_with_csr(&self, ca: &InternalCa) -> Result<(String, IssuedChain), CliError> {
        let key = generate_key(self.profile)?;
        let mut params = rcgen::CertificateParams::new(vec![self.dns.to_string()])
            .context("building the request")?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, self.dns);
        let csr = params
            .serialize_request(&key)
            .context("serialising the CSR")?;
        let issued = ca.issue_now(&IssueRequest {
            csr_der: csr.der().to_vec(),
            identifiers: Vec::new(),
            kind: self.kind,
            profile: self.profile_name.map(str::to_string),
            replaces: None,
            request_id: None,
        })?;
        Ok((key.serialize_pem(), issued))
    }

    /// The service's inventory entry, its files in `dir`.
    pub(super) fn entry_toml(&self, dir: &Path, issuer: &str) -> String {
        let q = |p: &str| toml::Value::String(p.to_string()).to_string();
        let path = |f: &str| q(&dir.join(f).display().to_string());
        let tags: Vec<String> = self.tags.iter().map(|t| q(t)).collect();
        format!(
            "\n[[cert]]\nname = {}\nowner = {}\ntags = [{}]\nkind = {}\ntrust = \"private\"\nissuer = {}\nkey_profile = {}\ncert = {}\nkey = {}\nchain = {}\nfullchain = {}\n",
            q(self.name),
            q(self.owner),
            tags.join(", "),
            q(self.kind.as_str()),
            q(issuer),
            q(self.profile.as_str()),
            path("cert.pem"),
            path("key.pem"),
            path("chain.pem"),
            path("fullchain.pem"),
        )
    }
}
