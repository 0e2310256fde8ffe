//! The ACME adapter against a real Pebble (Debian's 2.4.0), started by each test: the
//! conformance suite, account persistence, revocation signed by the certificate's own key,
//! real HTTP-01 validation of the built-in responder, DNS-01 through a hook, and external
//! account binding. ARI is tested against a minimal in-process directory (Pebble 2.4.0 has
//! no renewalInfo): that directory is the one stand-in in these tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use certresponder_inventory::{CertKind, KeyProfile, SecretPem};
use certresponder_issuers::config::{AcmeConfig, Challenge};
use certresponder_issuers::conformance::{self, Options};
use certresponder_issuers::{
    AcmeIssuer, CertStatus, Identifier, IssueRequest, Issuer, IssuerError, MemoryStorage,
    RevocationReason, RevokeRequest, generate_key,
};
use support::{Nginx, Pebble, PebbleOptions, free_port};

fn acme_config(pebble: &Pebble, challenge: Challenge) -> AcmeConfig {
    AcmeConfig {
        directory: pebble.directory_url.clone(),
        contact: vec!["mailto:pki@example.test".into()],
        account_file: None,
        trust_root: Some(pebble.tls_root.clone()),
        challenge,
        eab: None,
        profile: None,
        timeout: Duration::from_secs(60),
        connect_timeout: Duration::from_secs(10),
    }
}

fn listen_any() -> Challenge {
    Challenge::Http01Listen(format!("127.0.0.1:{}", free_port()).parse().unwrap())
}

fn csr_for(names: &[&str]) -> (Vec<u8>, rcgen::KeyPair) {
    let key = generate_key(KeyProfile::EcdsaP256).unwrap();
    let csr =
        rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap()
            .serialize_request(&key)
            .unwrap();
    (csr.der().to_vec(), key)
}

fn request(csr_der: Vec<u8>, names: &[&str]) -> IssueRequest {
    IssueRequest {
        csr_der,
        identifiers: names
            .iter()
            .map(|n| Identifier::Dns(n.to_string()))
            .collect(),
        kind: CertKind::TlsServer,
        profile: None,
        replaces: None,
        request_id: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pebble_passes_the_conformance_suite() {
    let pebble = Arc::new(Pebble::start(PebbleOptions::default()));
    let acme = AcmeIssuer::new(
        "pebble",
        acme_config(&pebble, listen_any()),
        Arc::new(MemoryStorage::new()),
    )
    .unwrap();
    let oracle_pebble = pebble.clone();
    let report = conformance::run(
        &acme,
        &Options {
            names: vec!["www.example.test".into(), "api.example.test".into()],
            // Pebble 2.4.0 has no name policy; it refuses names it cannot issue for, such as
            // one with an underscore.
            forbidden_name: Some("under_score.example.test".into()),
            profile: None,
            // Pebble 2.4.0 issues for five years, whatever is asked.
            expected_validity: Some((
                Duration::from_secs(157_766_400),
                Duration::from_secs(86_400),
            )),
            oracle: Some(Box::new(move |der| {
                let p = oracle_pebble.clone();
                Box::pin(async move { p.oracle(&der).await })
            })),
        },
    )
    .await;
    assert!(report.is_ok(), "{report:?}\npebble log:\n{}", pebble.log());
    // Pebble publishes neither CRL nor OCSP: the adapter says unknown, the oracle confirms.
    let report = report.unwrap();
    assert!(!report.status_from_adapter);
    // The order of a request is kept: a look-up fetches it instead of ordering again.
    assert!(report.lookup);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_is_created_once_and_kept_0600() {
    let pebble = Pebble::start(PebbleOptions::default());
    let file = pebble.dir.path().join("acme/account.json");
    let mut cfg = acme_config(&pebble, listen_any());
    cfg.account_file = Some(file.clone());
    let first = AcmeIssuer::new("pebble", cfg.clone(), Arc::new(MemoryStorage::new())).unwrap();
    let (csr, _) = csr_for(&["one.example.test"]);
    first
        .issue(&request(csr, &["one.example.test"]))
        .await
        .unwrap();
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&file).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    let saved = std::fs::read(&file).unwrap();
    let creds: serde_json::Value = serde_json::from_slice(&saved).unwrap();
    assert!(
        creds["id"]
            .as_str()
            .unwrap()
            .starts_with("https://127.0.0.1")
    );
    // A second adapter (a restart) uses the same account and leaves the file alone.
    cfg.challenge = listen_any();
    let second = AcmeIssuer::new("pebble", cfg, Arc::new(MemoryStorage::new())).unwrap();
    let (csr, _) = csr_for(&["two.example.test"]);
    second
        .issue(&request(csr, &["two.example.test"]))
        .await
        .unwrap();
    assert_eq!(std::fs::read(&file).unwrap(), saved);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_signed_by_the_certificate_key() {
    let pebble = Pebble::start(PebbleOptions::default());
    let acme = AcmeIssuer::new(
        "pebble",
        acme_config(&pebble, listen_any()),
        Arc::new(MemoryStorage::new()),
    )
    .unwrap();
    for profile in [KeyProfile::EcdsaP256, KeyProfile::Rsa2048] {
        let key = generate_key(profile).unwrap();
        let csr = rcgen::CertificateParams::new(vec!["k.example.test".to_string()])
            .unwrap()
            .serialize_request(&key)
            .unwrap();
        let chain = acme
            .issue(&request(csr.der().to_vec(), &["k.example.test"]))
            .await
            .unwrap();
        let der = certresponder_inventory::inspect::read_certificates(chain.leaf_pem.as_bytes())
            .unwrap()
            .remove(0);
        // The wrong key is refused before anything is sent.
        let other = generate_key(profile).unwrap();
        let wrong = acme
            .revoke(&RevokeRequest {
                certificate_der: der.clone(),
                reason: RevocationReason::KeyCompromise,
                certificate_key: Some(SecretPem::new(other.serialize_pem())),
            })
            .await;
        assert!(
            matches!(wrong, Err(IssuerError::BadRequest(_))),
            "{wrong:?}"
        );
        acme.revoke(&RevokeRequest {
            certificate_der: der.clone(),
            reason: RevocationReason::KeyCompromise,
            certificate_key: Some(SecretPem::new(key.serialize_pem())),
        })
        .await
        .unwrap_or_else(|e| panic!("{profile}: {e}\n{}", pebble.log()));
        let status = pebble.oracle(&der).await.unwrap();
        assert!(
            matches!(
                status,
                CertStatus::Revoked {
                    reason: Some(RevocationReason::KeyCompromise),
                    ..
                }
            ),
            "{status:?}"
        );
        // Again, with the certificate key: the CA says it is already revoked.
        let again = acme
            .revoke(&RevokeRequest {
                certificate_der: der,
                reason: RevocationReason::KeyCompromise,
                certificate_key: Some(SecretPem::new(key.serialize_pem())),
            })
            .await;
        assert!(
            matches!(again, Err(IssuerError::AlreadyRevoked(_))),
            "{again:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pebble_validates_the_built_in_http01_responder() {
    let pebble = Pebble::start(PebbleOptions {
        real_validation: true,
        ..PebbleOptions::default()
    });
    // Pebble connects to the name (resolved to 127.0.0.1 by challtestsrv) on its httpPort.
    let challenge =
        Challenge::Http01Listen(format!("127.0.0.1:{}", pebble.http_port).parse().unwrap());
    let acme = AcmeIssuer::new(
        "pebble",
        acme_config(&pebble, challenge),
        Arc::new(MemoryStorage::new()),
    )
    .unwrap();
    let (csr, _) = csr_for(&["validated.example.test"]);
    let chain = acme.issue(&request(csr, &["validated.example.test"])).await;
    assert!(chain.is_ok(), "{chain:?}\n{}", pebble.log());
    assert!(pebble.log().contains("validated.example.test"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns01_through_a_hook_is_validated_by_pebble() {
    let pebble = Pebble::start(PebbleOptions {
        real_validation: true,
        ..PebbleOptions::default()
    });
    let mgmt = pebble
        .challtestsrv_mgmt
        .expect("challtestsrv runs with real validation");
    // A DNS hook like an operator's: publish or withdraw the TXT record, here through
    // challtestsrv's management API.
    let hook = pebble.dir.path().join("dns-hook");
    std::fs::write(
        &hook,
        format!(
            "#!/usr/bin/env python3\nimport json, sys, urllib.request\nop, name, value = sys.argv[1:4]\npath = '/set-txt' if op == 'set' else '/clear-txt'\nbody = {{'host': name + '.', 'value': value}} if op == 'set' else {{'host': name + '.'}}\nurllib.request.urlopen(urllib.request.Request('http://127.0.0.1:{mgmt}' + path, data=json.dumps(body).encode(), method='POST'))\nopen(sys.argv[0] + '.log', 'a').write(op + ' ' + name + '\\n')\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let acme = AcmeIssuer::new(
        "pebble",
        acme_config(&pebble, Challenge::Dns01Hook(hook.clone())),
        Arc::new(MemoryStorage::new()),
    )
    .unwrap();
    let (csr, _) = csr_for(&["dns.example.test"]);
    let chain = acme.issue(&request(csr, &["dns.example.test"])).await;
    assert!(chain.is_ok(), "{chain:?}\n{}", pebble.log());
    let log = std::fs::read_to_string(hook.with_extension("log")).unwrap();
    assert_eq!(
        log,
        "set _acme-challenge.dns.example.test\nclear _acme-challenge.dns.example.test\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_account_binding() {
    let key = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W";
    let pebble = Pebble::start(PebbleOptions {
        eab: Some(("kid-1".into(), key.into())),
        ..PebbleOptions::default()
    });
    let (csr, _) = csr_for(&["eab.example.test"]);
    let without = AcmeIssuer::new(
        "pebble",
        acme_config(&pebble, listen_any()),
        Arc::new(MemoryStorage::new()),
    )
    .unwrap();
    let err = without
        .issue(&request(csr.clone(), &["eab.example.test"]))
        .await
        .unwrap_err();
    assert!(matches!(err, IssuerError::Unauthorized(_)), "{err:?}");
    assert!(!err.is_retryable());
    let key_file = pebble.dir.path().join("eab.key");
    std::fs::write(&key_file, format!("{key}\n")).unwrap();
    let mut cfg = acme_config(&pebble, listen_any());
    cfg.eab = Some(("kid-1".into(), key_file));
    let with = AcmeIssuer::new("pebble", cfg, Arc::new(MemoryStorage::new())).unwrap();
    with.issue(&request(csr, &["eab.example.test"]))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewal_info_is_unsupported_on_pebble_2_4() {
    let pebble = Pebble::start(PebbleOptions::default());
    let acme = AcmeIssuer::new(
        "pebble",
        acme_config(&pebble, listen_any()),
        Arc::new(MemoryStorage::new()),
    )
    .unwrap();
    let (csr, _) = csr_for(&["ari.example.test"]);
    let chain = acme
        .issue(&request(csr.clone(), &["ari.example.test"]))
        .await
        .unwrap();
    let der = certresponder_inventory::inspect::read_certificates(chain.leaf_pem.as_bytes())
        .unwrap()
        .remove(0);
    let err = acme.renewal_info(&der).await.unwrap_err();
    assert!(matches!(err, IssuerError::Unsupported(_)), "{err:?}");
    // `replaces` on a CA without ARI: the order goes ahead without it.
    let mut req = request(csr, &["ari.example.test"]);
    req.replaces = Some(der);
    acme.issue(&req).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pebble_validates_http01_files_served_by_nginx_from_the_webroot() {
    let pebble = Pebble::start(PebbleOptions {
        real_validation: true,
        ..PebbleOptions::default()
    });
    let webroot = pebble.dir.path().join("www");
    std::fs::create_dir_all(&webroot).unwrap();
    let _nginx = Nginx::serve(&webroot, pebble.http_port);
    let acme = AcmeIssuer::new(
        "pebble",
        acme_config(&pebble, Challenge::Http01Webroot(webroot.clone())),
        Arc::new(MemoryStorage::new()),
    )
    .unwrap();
    let (csr, _) = csr_for(&["webroot.example.test"]);
    let chain = acme.issue(&request(csr, &["webroot.example.test"])).await;
    assert!(chain.is_ok(), "{chain:?}\n{}", pebble.log());
    // The challenge files are withdrawn once the order is done.
    let left: Vec<_> = std::fs::read_dir(webroot.join(".well-known/acme-challenge"))
        .unwrap()
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
