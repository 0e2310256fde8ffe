//! The internal CA's certificates and CRLs, checked by OpenSSL: `openssl verify -crl_check`
//! accepts a fresh certificate and rejects it after revocation, using the CRL we publish.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use certresponder_inventory::{CertKind, KeyProfile};
use certresponder_issuers::config::InternalCaConfig;
use certresponder_issuers::{
    InternalCa, IssueRequest, MemoryStorage, RevocationReason, generate_key,
};

fn openssl_verify(dir: &Path, crl: &Path, leaf: &Path) -> (bool, String) {
    let out = Command::new("openssl")
        .arg("verify")
        .arg("-crl_check")
        .arg("-CAfile")
        .arg(dir.join("ca/ca.pem"))
        .arg("-CRLfile")
        .arg(crl)
        .arg(leaf)
        .output()
        .expect("openssl must be installed (scripts/test installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn openssl_accepts_fresh_and_rejects_revoked_with_our_crl() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = InternalCaConfig {
        dir: dir.path().join("ca"),
        common_name: "OpenSSL check CA".into(),
        validity_days: 90,
        profiles: BTreeMap::new(),
        crl_path: dir.path().join("pub/internal.crl"),
        crl_validity: Duration::from_secs(7 * 86_400),
        crl_url: None,
        allowed_names: Vec::new(),
    };
    let ca = InternalCa::open_or_create("internal", cfg, Arc::new(MemoryStorage::new())).unwrap();
    let published = ca.publish_crl().unwrap();
    assert_eq!(published.number, 1);

    let key = generate_key(KeyProfile::Rsa2048).unwrap();
    let csr = rcgen::CertificateParams::new(vec!["svc.example.test".to_string()])
        .unwrap()
        .serialize_request(&key)
        .unwrap();
    let chain = ca
        .issue_now(&IssueRequest {
            csr_der: csr.der().to_vec(),
            identifiers: Vec::new(),
            kind: CertKind::TlsServer,
            profile: None,
            replaces: None,
            request_id: None,
        })
        .unwrap();
    let leaf = dir.path().join("leaf.pem");
    std::fs::write(&leaf, &chain.leaf_pem).unwrap();

    let (ok, text) = openssl_verify(dir.path(), &published.pem_path, &leaf);
    assert!(ok, "fresh certificate should verify: {text}");

    let der = certresponder_inventory::inspect::read_certificates(chain.leaf_pem.as_bytes())
        .unwrap()
        .remove(0);
    let after = ca
        .revoke_now(&der, RevocationReason::KeyCompromise)
        .unwrap();
    assert_eq!(after.number, 2, "CRL numbers increase");
    let (ok, text) = openssl_verify(dir.path(), &after.pem_path, &leaf);
    assert!(!ok, "revoked certificate must be rejected: {text}");
    assert!(text.contains("certificate revoked"), "{text}");
    // The DER CRL says the same as the PEM one.
    let crl_text = Command::new("openssl")
        .args(["crl", "-inform", "DER", "-noout", "-text", "-in"])
        .arg(&after.der_path)
        .output()
        .unwrap();
    let crl_text = String::from_utf8_lossy(&crl_text.stdout);
    assert!(crl_text.contains("Key Compromise"), "{crl_text}");
    let info =
        certresponder_inventory::inspect::inspect_crl_der(&std::fs::read(&after.der_path).unwrap())
            .unwrap();
    assert_eq!(info.number.as_deref(), Some("2"));
}
