//! How the ACME adapter fails when the server cannot be used: a TLS certificate it does not
//! trust (a real Pebble behind the wrong `trust_root`), a name that does not resolve, a
//! server that accepts and never answers (a TCP listener), one that completes TLS and never
//! answers HTTP (`openssl s_server`), and an answer larger than allowed. Each fails with a
//! message that names the cause and the setting, the permanent ones at once and not retried,
//! the stalled ones at their limit.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use certresponder_inventory::{CertKind, KeyProfile};
use certresponder_issuers::config::{AcmeConfig, Challenge};
use certresponder_issuers::{
    AcmeIssuer, Identifier, IssueRequest, Issuer, IssuerError, MemoryStorage, generate_key,
};
use support::{Guard, Pebble, PebbleOptions, free_port};

fn config(directory: &str, trust_root: Option<&Path>, timeout: u64, connect: u64) -> AcmeConfig {
    AcmeConfig {
        directory: directory.to_string(),
        contact: vec!["mailto:pki@example.test".into()],
        account_file: None,
        trust_root: trust_root.map(Path::to_path_buf),
        challenge: Challenge::Http01Listen(format!("127.0.0.1:{}", free_port()).parse().unwrap()),
        eab: None,
        profile: None,
        timeout: Duration::from_secs(timeout),
        connect_timeout: Duration::from_secs(connect),
    }
}

fn request() -> IssueRequest {
    let key = generate_key(KeyProfile::EcdsaP256).unwrap();
    let csr = rcgen::CertificateParams::new(vec!["www.example.test".to_string()])
        .unwrap()
        .serialize_request(&key)
        .unwrap();
    IssueRequest {
        csr_der: csr.der().to_vec(),
        identifiers: vec![Identifier::Dns("www.example.test".into())],
        kind: CertKind::TlsServer,
        profile: None,
        replaces: None,
        request_id: None,
    }
}

/// Orders through `cfg`; returns the error and how long it took.
async fn order(cfg: AcmeConfig) -> (IssuerError, Duration) {
    let acme = AcmeIssuer::new("acme", cfg, Arc::new(MemoryStorage::new())).unwrap();
    let started = Instant::now();
    let e = acme.issue(&request()).await.unwrap_err();
    (e, started.elapsed())
}

/// A CA certificate (PEM) and an issuer for it, and a server certificate for 127.0.0.1
/// and localhost signed by it, written to `dir` as `ca.pem`, `server.pem`, `server.key`.
fn tls_files(dir: &Path, cn: &str) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name.push(rcgen::DnType::CommonName, cn);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let leaf =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
    std::fs::write(dir.join("server.pem"), leaf.pem()).unwrap();
    std::fs::write(dir.join("server.key"), key.serialize_pem()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_certificate_that_is_not_trusted_fails_at_once_naming_trust_root() {
    let pebble = Pebble::start(PebbleOptions::default());
    let dir = tempfile::tempdir().unwrap();
    tls_files(dir.path(), "Some Other CA");
    let (e, took) = order(config(
        &pebble.directory_url,
        Some(&dir.path().join("ca.pem")),
        60,
        10,
    ))
    .await;
    let text = e.to_string();
    assert!(matches!(e, IssuerError::Tls(_)), "{e:?}");
    assert!(!e.is_retryable(), "{e:?}");
    assert!(
        text.contains("the ACME server's certificate is not trusted")
            && text.contains("trust_root"),
        "{text}"
    );
    assert!(took < Duration::from_secs(10), "took {took:?}: {text}");
    // The right root works (the failure was the trust, nothing else).
    let acme = AcmeIssuer::new(
        "acme",
        config(&pebble.directory_url, Some(&pebble.tls_root), 60, 10),
        Arc::new(MemoryStorage::new()),
    )
    .unwrap();
    acme.issue(&request()).await.unwrap();
}

#[tokio::test]
async fn a_name_that_does_not_resolve_is_permanent() {
    let (e, _) = order(config(
        "https://acme.does-not-exist.invalid/dir",
        None,
        60,
        10,
    ))
    .await;
    let text = e.to_string();
    assert!(matches!(e, IssuerError::Dns(_)), "{e:?}");
    assert!(!e.is_retryable());
    assert!(
        text.contains("cannot be resolved") && text.contains("acme.does-not-exist.invalid"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_accepts_and_never_answers_fails_at_the_connect_limit() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accepts every connection and holds it, saying nothing.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming() {
            held.push(s);
        }
    });
    let (e, took) = order(config(
        &format!("https://127.0.0.1:{port}/dir"),
        None,
        30,
        2,
    ))
    .await;
    let text = e.to_string();
    assert!(matches!(e, IssuerError::Timeout(_)), "{e:?}");
    assert!(e.is_retryable());
    assert!(
        text.contains("no connection to the ACME server within 2 s")
            && text.contains("connect_timeout_secs"),
        "{text}"
    );
    // Retried within the call's own limit (30 s) as a network failure would be, never
    // waiting past it.
    assert!(took >= Duration::from_secs(2), "{took:?}");
    assert!(took < Duration::from_secs(40), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_completes_tls_and_never_answers_fails_at_the_call_limit() {
    let dir = tempfile::tempdir().unwrap();
    tls_files(dir.path(), "Stall CA");
    let port = free_port();
    // `openssl s_server` completes the handshake, then prints what it gets and never answers.
    let mut child = Command::new("openssl")
        .args(["s_server", "-quiet", "-accept"])
        .arg(port.to_string())
        .arg("-cert")
        .arg(dir.path().join("server.pem"))
        .arg("-key")
        .arg(dir.path().join("server.key"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _stdin = child.stdin.take();
    let _guard = Guard(child);
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "s_server did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let (e, took) = order(config(
        &format!("https://localhost:{port}/dir"),
        Some(&dir.path().join("ca.pem")),
        5,
        2,
    ))
    .await;
    let text = e.to_string();
    assert!(matches!(e, IssuerError::Timeout(_)), "{e:?}");
    assert!(
        text.contains("within 5 s") && text.contains("timeout_secs"),
        "{text}"
    );
    assert!(took >= Duration::from_secs(5), "{took:?}");
    assert!(took < Duration::from_secs(20), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_larger_than_allowed_is_refused() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Plain HTTP (allowed for a directory configured as http://): a 2 MiB "directory".
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(mut s) = s else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let body = vec![b' '; 2 << 20];
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(&body);
        }
    });
    let (e, _) = order(config(&format!("http://127.0.0.1:{port}/dir"), None, 30, 5)).await;
    let text = e.to_string();
    assert!(matches!(e, IssuerError::Protocol(_)), "{e:?}");
    assert!(text.contains("larger than 1048576 bytes"), "{text}");
}
