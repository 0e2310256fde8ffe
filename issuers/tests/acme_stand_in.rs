//! The ACME adapter against a minimal in-process ACME directory: the one stand-in in the
//! issuer tests, because Debian's Pebble 2.4.0 has neither ARI (RFC 9773 `renewalInfo`) nor
//! rate limits. The directory answers just enough of RFC 8555 (nonces, account creation) for
//! the adapter to reach `renewalInfo`, and refuses the first account creation with a 429 and a
//! `Retry-After`, which the adapter must honour.
//!
//! The same server also publishes an internal CA's CRL over HTTP, so that the adapter's
//! CRL-based status (fetch, signature check, cache until nextUpdate) is exercised for real.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use certresponder_inventory::inspect;
use certresponder_inventory::{CertKind, KeyProfile};
use certresponder_issuers::config::{AcmeConfig, Challenge, InternalCaConfig};
use certresponder_issuers::{
    AcmeIssuer, CertStatus, InternalCa, IssueRequest, Issuer, IssuerStorage, MemoryStorage,
    RevocationReason, generate_key,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[derive(Default)]
struct Seen {
    account_posts: AtomicUsize,
    crl_gets: AtomicUsize,
    ari_paths: Mutex<Vec<String>>,
}

struct Server {
    addr: SocketAddr,
    seen: Arc<Seen>,
}

fn response(status: &str, headers: &[(&str, String)], body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

async fn start(crl_file: PathBuf) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let state = seen.clone();
    tokio::spawn(async move {
        let nonce = Arc::new(AtomicUsize::new(0));
        loop {
            let (mut s, _) = listener.accept().await.unwrap();
            let seen = state.clone();
            let nonce = nonce.clone();
            let crl_file = crl_file.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Head, then as much body as Content-Length says.
                loop {
                    let n = s.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                        let len = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + len {
                            break;
                        }
                    }
                }
                let head = String::from_utf8_lossy(&buf).to_string();
                let mut first = head.lines().next().unwrap_or_default().split_whitespace();
                let (method, path) = (
                    first.next().unwrap_or_default(),
                    first.next().unwrap_or_default(),
                );
                let base = format!("http://{addr}");
                let n = nonce.fetch_add(1, Ordering::SeqCst);
                let nonce_h = ("Replay-Nonce", format!("nonce{n}"));
                let out = match (method, path) {
                    ("GET", "/dir") => response(
                        "200 OK",
                        &[("Content-Type", "application/json".into())],
                        serde_json::json!({
                            "newNonce": format!("{base}/nonce"),
                            "newAccount": format!("{base}/account"),
                            "newOrder": format!("{base}/order"),
                            "revokeCert": format!("{base}/revoke"),
                            "keyChange": format!("{base}/key"),
                            "renewalInfo": format!("{base}/ari"),
                        })
                        .to_string()
                        .as_bytes(),
                    ),
                    ("HEAD" | "GET", "/nonce") => response("200 OK", &[nonce_h], b""),
                    ("POST", "/account") => {
                        if seen.account_posts.fetch_add(1, Ordering::SeqCst) == 0 {
                            response(
                                "429 Too Many Requests",
                                &[nonce_h, ("Retry-After", "1".into()), ("Content-Type", "application/problem+json".into())],
                                br#"{"type":"urn:ietf:params:acme:error:rateLimited","detail":"slow down","status":429}"#,
                            )
                        } else {
                            response(
                                "201 Created",
                                &[
                                    nonce_h,
                                    ("Location", format!("{base}/account/1")),
                                    ("Content-Type", "application/json".into()),
                                ],
                                br#"{"status":"valid"}"#,
                            )
                        }
                    }
                    ("GET", p) if p.starts_with("/ari/") => {
                        seen.ari_paths
                            .lock()
                            .unwrap()
                            .push(p["/ari/".len()..].to_string());
                        response(
                            "200 OK",
                            &[("Retry-After", "21600".into()), ("Content-Type", "application/json".into())],
                            br#"{"suggestedWindow":{"start":"2027-01-10T00:00:00Z","end":"2027-01-12T00:00:00Z"},"explanationURL":"https://ca.example.test/incident-42"}"#,
                        )
                    }
                    ("GET", "/ca.crl") => {
                        seen.crl_gets.fetch_add(1, Ordering::SeqCst);
                        response(
                            "200 OK",
                            &[("Content-Type", "application/pkix-crl".into())],
                            &std::fs::read(&crl_file).unwrap(),
                        )
                    }
                    _ => response("404 Not Found", &[], b""),
                };
                let _ = s.write_all(&out).await;
                let _ = s.shutdown().await;
            });
        }
    });
    Server { addr, seen }
}

fn acme(server: &Server, storage: Arc<dyn IssuerStorage>) -> AcmeIssuer {
    let cfg = AcmeConfig {
        directory: format!("http://{}/dir", server.addr),
        contact: Vec::new(),
        account_file: None,
        trust_root: None,
        challenge: Challenge::Http01Listen("127.0.0.1:0".parse().unwrap()),
        eab: None,
        profile: None,
        timeout: Duration::from_secs(30),
    };
    AcmeIssuer::new("stand-in", cfg, storage).unwrap()
}

fn internal_ca(dir: &std::path::Path, crl_url: String) -> InternalCa {
    let cfg = InternalCaConfig {
        dir: dir.join("ca"),
        common_name: "Stand-in CA".into(),
        validity_days: 30,
        profiles: BTreeMap::new(),
        crl_path: dir.join("ca.crl"),
        crl_validity: Duration::from_secs(86_400),
        crl_url: Some(crl_url),
        allowed_names: Vec::new(),
    };
    InternalCa::open_or_create("internal", cfg, Arc::new(MemoryStorage::new())).unwrap()
}

fn issue(ca: &InternalCa) -> (String, Vec<u8>) {
    let key = generate_key(KeyProfile::EcdsaP256).unwrap();
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
        })
        .unwrap();
    let der = inspect::read_certificates(chain.leaf_pem.as_bytes())
        .unwrap()
        .remove(0);
    (chain.fullchain_pem(), der)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewal_info_honours_retry_after_and_sends_the_rfc9773_id() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path().join("ca.crl")).await;
    let ca = internal_ca(dir.path(), format!("http://{}/ca.crl", server.addr));
    let (_, der) = issue(&ca);
    let adapter = acme(&server, Arc::new(MemoryStorage::new()));
    let started = Instant::now();
    let window = adapter.renewal_info(&der).await.unwrap().unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "the 429's Retry-After was honoured"
    );
    assert_eq!(server.seen.account_posts.load(Ordering::SeqCst), 2);
    assert_eq!(window.start.to_rfc3339(), "2027-01-10T00:00:00+00:00");
    assert_eq!(window.end.to_rfc3339(), "2027-01-12T00:00:00+00:00");
    assert_eq!(
        window.explanation_url.as_deref(),
        Some("https://ca.example.test/incident-42")
    );
    assert!(window.retry_after > Duration::from_secs(21_000));
    // RFC 9773 §4.1: base64url(AKI keyIdentifier) "." base64url(serial DER content).
    let info = inspect::inspect_certificate_der(&der).unwrap();
    let expected = format!(
        "{}.{}",
        B64.encode(hex::decode(info.authority_key_id.unwrap()).unwrap()),
        B64.encode(hex::decode(&info.serial).unwrap())
    );
    assert_eq!(server.seen.ari_paths.lock().unwrap().as_slice(), [expected]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reads_the_signed_crl_and_caches_it_until_next_update() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path().join("ca.crl")).await;
    let ca = internal_ca(dir.path(), format!("http://{}/ca.crl", server.addr));
    ca.publish_crl().unwrap();
    let (chain, der) = issue(&ca);
    let serial = inspect::inspect_certificate_der(&der).unwrap().serial;
    // What the adapter keeps of a certificate it obtained: the chain, by serial.
    let storage = Arc::new(MemoryStorage::new());
    storage
        .put(&format!("issued/{serial}"), chain.as_bytes())
        .unwrap();
    let adapter = acme(&server, storage.clone());
    assert_eq!(adapter.status(&der).await.unwrap(), CertStatus::Good);
    assert_eq!(adapter.status(&der).await.unwrap(), CertStatus::Good);
    assert_eq!(
        server.seen.crl_gets.load(Ordering::SeqCst),
        1,
        "cached until nextUpdate"
    );

    ca.revoke_now(&der, RevocationReason::KeyCompromise)
        .unwrap();
    let fresh = Arc::new(MemoryStorage::new());
    fresh
        .put(&format!("issued/{serial}"), chain.as_bytes())
        .unwrap();
    let status = acme(&server, fresh).status(&der).await.unwrap();
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

    // A CRL signed by someone else is refused, not believed.
    let other_dir = tempfile::tempdir().unwrap();
    let other = internal_ca(other_dir.path(), "http://unused.example.test/".into());
    let forged = other.publish_crl().unwrap();
    std::fs::copy(&forged.der_path, dir.path().join("ca.crl")).unwrap();
    let victim = Arc::new(MemoryStorage::new());
    victim
        .put(&format!("issued/{serial}"), chain.as_bytes())
        .unwrap();
    let err = acme(&server, victim).status(&der).await.unwrap_err();
    assert!(
        err.to_string().contains("signature does not verify"),
        "{err}"
    );
}
