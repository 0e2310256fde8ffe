//! `certresponder quickstart`: a self-contained demo state directory with an internal CA and
//! sample services, registered and listed, using nothing outside the directory.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use certresponder_inventory::fs::{create_dir_with_mode, write_atomic};
use certresponder_inventory::{CertKind, KeyProfile, inspect};
use certresponder_issuers::config::IssuerKind;
use certresponder_issuers::{InternalCa, IssueRequest, generate_key};
use clap::Args;

use super::CliError;
use crate::config::Config;
use crate::store::{SledStore, Store};

#[derive(Debug, Args)]
pub(crate) struct QuickstartArgs {
    /// Directory for the demo (created if missing; reused if it holds an earlier demo)
    #[arg(long, default_value = "certresponder-demo")]
    dir: PathBuf,
}

struct Service {
    name: &'static str,
    owner: &'static str,
    kind: CertKind,
    profile: KeyProfile,
    days: u64,
    profile_name: Option<&'static str>,
    dns: &'static str,
    tags: &'static [&'static str],
    verify: Option<&'static str>,
}

const SERVICES: &[Service] = &[
    Service {
        name: "web-frontend",
        owner: "team-web@example.com",
        kind: CertKind::TlsServer,
        profile: KeyProfile::EcdsaP256,
        days: 90,
        profile_name: None,
        dns: "www.demo.internal",
        tags: &["prod", "edge"],
        verify: None,
    },
    Service {
        name: "api-gateway",
        owner: "team-platform@example.com",
        kind: CertKind::TlsServer,
        profile: KeyProfile::Rsa3072,
        days: 90,
        profile_name: None,
        dns: "api.demo.internal",
        tags: &["prod"],
        verify: None,
    },
    Service {
        name: "payments-client",
        owner: "team-payments@example.com",
        kind: CertKind::TlsClient,
        profile: KeyProfile::EcdsaP384,
        days: 60,
        profile_name: Some("long"),
        dns: "payments.demo.internal",
        tags: &["prod", "pci"],
        verify: None,
    },
    Service {
        name: "reports-svc",
        owner: "team-data@example.com",
        kind: CertKind::ServiceAccount,
        profile: KeyProfile::Rsa2048,
        days: 45,
        profile_name: Some("medium"),
        dns: "reports.demo.internal",
        tags: &["batch"],
        verify: None,
    },
    Service {
        name: "build-agent",
        owner: "team-ci@example.com",
        kind: CertKind::Agent,
        profile: KeyProfile::Ed25519,
        days: 7,
        profile_name: Some("short"),
        dns: "ci-agent-01.demo.internal",
        tags: &["ci"],
        verify: None,
    },
];

const CONFIG: &str = r#"# certresponder demo configuration, written by `certresponder quickstart`.
# Relative paths are relative to this file.
state_dir = "state"
inventory_dir = "inventory"
expiry_warning_days = 30

[[issuer]]
id = "internal"
type = "internal-ca"
dir = "ca"
common_name = "certresponder demo CA"
validity_days = 90
profiles = { short = 7, medium = 45, long = 60 }
crl_path = "ca/crl.der"
"#;

pub(crate) fn run(args: QuickstartArgs) -> Result<ExitCode, CliError> {
    let dir = std::path::absolute(&args.dir)
        .with_context(|| format!("resolving {}", args.dir.display()))?;
    create_dir_with_mode(&dir, 0o700).with_context(|| format!("creating {}", dir.display()))?;
    let config_path = dir.join("certresponder.toml");
    if !config_path.exists() {
        write_atomic(&config_path, CONFIG.as_bytes(), 0o644)
            .with_context(|| format!("writing {}", config_path.display()))?;
    }
    let cfg = Config::from_file(&config_path).map_err(|e| CliError::Input(e.into()))?;
    let (issuer_id, ca_cfg) = cfg
        .issuers
        .iter()
        .find_map(|i| match &i.kind {
            IssuerKind::InternalCa(c) => Some((i.id.clone(), c.clone())),
            _ => None,
        })
        .context("the demo configuration declares no internal-ca issuer")?;
    let mut inventory = String::from(
        "# Demo inventory written by `certresponder quickstart`.\n# Each [[cert]] is one managed certificate; see the README for every field.\n",
    );
    {
        // The store is closed again before the listing below opens it.
        let store = SledStore::open(&cfg.db_path())?;
        let ca = InternalCa::open_or_create(
            &issuer_id,
            ca_cfg.clone(),
            store.issuer_storage(&issuer_id),
        )?;
        println!("internal CA:  {}", ca_cfg.dir.join("ca.pem").display());
        for svc in SERVICES {
            let svc_dir = dir.join("services").join(svc.name);
            if ensure_service(&ca, svc, &svc_dir)? {
                println!(
                    "issued:       {} ({}, {} days)",
                    svc.name, svc.profile, svc.days
                );
            }
            inventory.push_str(&entry_toml(svc, &svc_dir, &issuer_id));
        }
        ca.refresh_crl_if_due(Duration::from_secs(86_400))?;
    }
    create_dir_with_mode(&cfg.inventory_dir, 0o755)
        .with_context(|| format!("creating {}", cfg.inventory_dir.display()))?;
    let inv_path = cfg.inventory_dir.join("demo.toml");
    if !inv_path.exists() {
        write_atomic(&inv_path, inventory.as_bytes(), 0o644)
            .with_context(|| format!("writing {}", inv_path.display()))?;
    }
    println!("inventory:    {}", inv_path.display());
    println!("database:     {}", cfg.db_path().display());
    println!();
    let code = super::inventory::run(
        super::inventory::InventoryCommand::List {
            all: false,
            json: false,
        },
        Some(&config_path),
    )?;
    println!();
    println!(
        "next: certresponder --config {} inventory show web-frontend",
        config_path.display()
    );
    println!(
        "      certresponder --config {} scan",
        config_path.display()
    );
    Ok(code)
}

/// Issues the service's bundle unless a valid one is already there. Returns whether it issued.
fn ensure_service(ca: &InternalCa, svc: &Service, dir: &Path) -> Result<bool, CliError> {
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
    let key = generate_key(svc.profile)?;
    let mut params =
        rcgen::CertificateParams::new(vec![svc.dns.to_string()]).context("building the request")?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, svc.dns);
    let csr = params
        .serialize_request(&key)
        .context("serialising the CSR")?;
    let issued = ca.issue_now(&IssueRequest {
        csr_der: csr.der().to_vec(),
        identifiers: Vec::new(),
        kind: svc.kind,
        profile: svc.profile_name.map(str::to_string),
        replaces: None,
    })?;
    write_atomic(&key_path, key.serialize_pem().as_bytes(), 0o600)
        .with_context(|| format!("writing {}", key_path.display()))?;
    write_atomic(&cert_path, issued.leaf_pem.as_bytes(), 0o644)
        .with_context(|| format!("writing {}", cert_path.display()))?;
    let chain = dir.join("chain.pem");
    write_atomic(&chain, issued.chain_pem.as_bytes(), 0o644)
        .with_context(|| format!("writing {}", chain.display()))?;
    let full = dir.join("fullchain.pem");
    write_atomic(
        &full,
        format!("{}{}", issued.leaf_pem, issued.chain_pem).as_bytes(),
        0o644,
    )
    .with_context(|| format!("writing {}", full.display()))?;
    Ok(true)
}

fn entry_toml(svc: &Service, dir: &Path, issuer: &str) -> String {
    let q = |p: &str| toml::Value::String(p.to_string()).to_string();
    let path = |f: &str| q(&dir.join(f).display().to_string());
    let tags: Vec<String> = svc.tags.iter().map(|t| q(t)).collect();
    let mut s = format!(
        "\n[[cert]]\nname = {}\nowner = {}\ntags = [{}]\nkind = {}\ntrust = \"private\"\nissuer = {}\nkey_profile = {}\ncert = {}\nkey = {}\nchain = {}\nfullchain = {}\n",
        q(svc.name),
        q(svc.owner),
        tags.join(", "),
        q(svc.kind.as_str()),
        q(issuer),
        q(svc.profile.as_str()),
        path("cert.pem"),
        path("key.pem"),
        path("chain.pem"),
        path("fullchain.pem"),
    );
    if let Some(addr) = svc.verify {
        s.push_str(&format!(
            "verify = [{{ address = {}, sni = {} }}]\n",
            q(addr),
            q(svc.dns)
        ));
    }
    s
}
