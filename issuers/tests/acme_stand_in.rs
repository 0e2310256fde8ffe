//! The ACME adapter against a minimal in-process ACME directory: the one stand-in in the
//! issuer tests, because Debian's Pebble 2.4.0 has neither ARI (RFC 9773 `renewalInfo`) nor
//! rate limits. The directory answers just enough of RFC 8555 (nonces, account creation) for
//! the adapter to reach `renewalInfo`, and refuses the first account creation with a 429 and a
//! `Retry-After`, which the adapter must honour.
//!
//! The same server also publishes an internal CA's CRL over HTTP, so that the adapter's
//! CRL-based status (fetch, signature check, cache until nextUpdate) is exercised for real.
//!
//! For orders it goes on through the rest of RFC 8555 §7.4: newOrder, authorizations that
//! are already valid (so no challenge is needed), finalize (the CSR signed by the test's
//! internal CA) and the certificate. How it answers a newOrder carrying `replaces` is set
//! per test ([`Replaces`]), since CAs differ: reflecting it (RFC 9773 §5), ignoring it like
//! Pebble 2.4, or refusing it as `alreadyReplaced`. The JWS signatures are not checked.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use certresponder_inventory::inspect;
use certresponder_inventory::{CertKind, KeyProfile};
use certresponder_issuers::config::{AcmeConfig, Challenge, InternalCaConfig};
use certresponder_issuers::{
    AcmeIssuer, CertStatus, InternalCa, IssueRequest, IssuedChain, Issuer, IssuerStorage,
    MemoryStorage, RevocationReason, generate_key,
};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// How the stand-in answers a newOrder that carries `replaces`.
#[derive(Clone, Copy, Debug, Default)]
enum Replaces {
    /// Take it and reflect it in the order, as RFC 9773 §5 asks of a CA that accepts it.
    #[default]
    Echo,
    /// Take the order but leave `replaces` out of it, as Pebble 2.4 does.
    Ignore,
    /// Refuse the order: 409 `urn:ietf:params:acme:error:alreadyReplaced` (RFC 9773 §7.4).
    AlreadyReplaced,
}

/// An order the stand-in took.
struct StandInOrder {
    identifiers: Value,
    /// What the order reflects as `replaces`, if anything.
    replaces: Option<Value>,
    /// The full chain, once finalized.
    chain: Option<String>,
}

#[derive(Default)]
struct Seen {
    account_posts: AtomicUsize,
    crl_gets: AtomicUsize,
    ari_paths: Mutex<Vec<String>>,
    /// The decoded JWS payload of every newOrder POST, in order, taken or not.
    new_orders: Mutex<Vec<Value>>,
    /// The orders taken; an order's URL holds its index.
    orders: Mutex<Vec<StandInOrder>>,
    replaces: Mutex<Replaces>,
    /// The CA that signs finalized orders.
    ca: OnceLock<InternalCa>,
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
                let body_at = buf
                    .windows(4)
                    .position(|w| w == b"\r\n\r\n")
                    .map_or(buf.len(), |e| e + 4);
                let head = String::from_utf8_lossy(&buf[..body_at]).to_string();
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
                    ("POST", p)
                        if ["/order", "/authz/", "/finalize/", "/cert/"]
                            .iter()
                            .any(|r| p.starts_with(r)) =>
                    {
                        order_flow(&seen, &base, p, &buf[body_at..], nonce_h)
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

/// The payload of a flattened JWS (RFC 7515 §7.2.2); `Null` for a POST-as-GET.
fn jws_payload(body: &[u8]) -> Value {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|jws| B64.decode(jws["payload"].as_str()?).ok())
        .and_then(|p| serde_json::from_slice(&p).ok())
        .unwrap_or(Value::Null)
}

/// The order object (RFC 8555 §7.1.3) of order `n`.
fn order_object(base: &str, n: usize, o: &StandInOrder) -> Value {
    let mut v = json!({
        "status": if o.chain.is_some() { "valid" } else { "ready" },
        "identifiers": o.identifiers,
        "authorizations": [format!("{base}/authz/{n}")],
        "finalize": format!("{base}/finalize/{n}"),
    });
    if o.chain.is_some() {
        v["certificate"] = json!(format!("{base}/cert/{n}"));
    }
    if let Some(r) = &o.replaces {
        v["replaces"] = r.clone();
    }
    v
}

/// The ordering part of RFC 8555 (§7.4, §7.5, §7.4.2), just enough for one issuance.
fn order_flow(
    seen: &Seen,
    base: &str,
    path: &str,
    body: &[u8],
    nonce_h: (&'static str, String),
) -> Vec<u8> {
    let payload = jws_payload(body);
    let json_h = ("Content-Type", "application/json".to_string());
    let n_of = |prefix: &str| path[prefix.len()..].parse::<usize>().unwrap();
    let mut orders = seen.orders.lock().unwrap();
    if path == "/order" {
        seen.new_orders.lock().unwrap().push(payload.clone());
        let asked = payload.get("replaces").cloned();
        let mode = *seen.replaces.lock().unwrap();
        let replaces = match (mode, asked) {
            (Replaces::AlreadyReplaced, Some(_)) => {
                return response(
                    "409 Conflict",
                    &[
                        nonce_h,
                        ("Content-Type", "application/problem+json".into()),
                    ],
                    br#"{"type":"urn:ietf:params:acme:error:alreadyReplaced","detail":"the certificate has already been replaced","status":409}"#,
                );
            }
            (Replaces::Echo, asked) => asked,
            _ => None,
        };
        orders.push(StandInOrder {
            identifiers: payload["identifiers"].clone(),
            replaces,
            chain: None,
        });
        let n = orders.len() - 1;
        let order = order_object(base, n, &orders[n]);
        return response(
            "201 Created",
            &[nonce_h, json_h, ("Location", format!("{base}/order/{n}"))],
            order.to_string().as_bytes(),
        );
    }
    if path.starts_with("/order/") {
        let n = n_of("/order/");
        let order = order_object(base, n, &orders[n]);
        return response("200 OK", &[nonce_h, json_h], order.to_string().as_bytes());
    }
    if path.starts_with("/authz/") {
        let o = &orders[n_of("/authz/")];
        let authz = json!({
            "status": "valid",
            "identifier": o.identifiers[0],
            "challenges": [],
        });
        return response("200 OK", &[nonce_h, json_h], authz.to_string().as_bytes());
    }
    if path.starts_with("/finalize/") {
        let n = n_of("/finalize/");
        let csr_der = B64.decode(payload["csr"].as_str().unwrap()).unwrap();
        let chain = seen
            .ca
            .get()
            .expect("the test gave the stand-in its CA")
            .issue_now(&IssueRequest {
                csr_der,
                identifiers: Vec::new(),
                kind: CertKind::TlsServer,
                profile: None,
                replaces: None,
                request_id: None,
            })
            .unwrap();
        orders[n].chain = Some(chain.fullchain_pem());
        let order = order_object(base, n, &orders[n]);
        return response("200 OK", &[nonce_h, json_h], order.to_string().as_bytes());
    }
    let chain = orders[n_of("/cert/")].chain.clone().unwrap();
    response(
        "200 OK",
        &[
            nonce_h,
            ("Content-Type", "application/pem-certificate-chain".into()),
        ],
        chain.as_bytes(),
    )
}

/// The RFC 9773 §4.1 certificate id: base64url(AKI keyIdentifier) "." base64url(serial),
/// the serial as the content octets of its DER INTEGER.
fn ari_id(der: &[u8]) -> String {
    let info = inspect::inspect_certificate_der(der).unwrap();
    let aki = hex::decode(info.authority_key_id.unwrap()).unwrap();
    let mut serial = hex::decode(&info.serial).unwrap();
    if serial.first().is_some_and(|b| b & 0x80 != 0) {
        serial.insert(0, 0);
    }
    format!("{}.{}", B64.encode(aki), B64.encode(serial))
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
        connect_timeout: Duration::from_secs(10),
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
            request_id: None,
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

/// A renewal through the stand-in answering `replaces` as `mode`: the certificate being
/// replaced, what the adapter's `issue()` returned, the CSR's key and the stand-in's newOrders.
async fn renew(mode: Replaces) -> (Vec<u8>, IssuedChain, rcgen::KeyPair, Vec<Value>) {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path().join("ca.crl")).await;
    *server.seen.replaces.lock().unwrap() = mode;
    let ca = internal_ca(dir.path(), format!("http://{}/ca.crl", server.addr));
    let (_, old) = issue(&ca);
    assert!(server.seen.ca.set(ca).is_ok());
    let adapter = acme(&server, Arc::new(MemoryStorage::new()));
    let key = generate_key(KeyProfile::EcdsaP256).unwrap();
    let csr = rcgen::CertificateParams::new(vec!["svc.example.test".to_string()])
        .unwrap()
        .serialize_request(&key)
        .unwrap();
    let req = IssueRequest {
        csr_der: csr.der().to_vec(),
        identifiers: Vec::new(),
        kind: CertKind::TlsServer,
        profile: None,
        replaces: Some(old.clone()),
        request_id: None,
    };
    let chain = tokio::time::timeout(Duration::from_secs(20), adapter.issue(&req))
        .await
        .expect("the renewal did not finish in 20 s")
        .unwrap_or_else(|e| {
            panic!(
                "a renewal with `replaces` through a CA answering {mode:?} failed: {e}; \
                 newOrders: {:#?}",
                server.seen.new_orders.lock().unwrap()
            )
        });
    let new_orders = server.seen.new_orders.lock().unwrap().clone();
    (old, chain, key, new_orders)
}

/// The issued chain certifies the CSR's key for the name asked for, under a new serial.
fn assert_renewed(old: &[u8], chain: &IssuedChain, key: &rcgen::KeyPair) {
    let leaf = inspect::read_certificates(chain.leaf_pem.as_bytes())
        .unwrap()
        .remove(0);
    let (old, new) = (
        inspect::inspect_certificate_der(old).unwrap(),
        inspect::inspect_certificate_der(&leaf).unwrap(),
    );
    assert_eq!(new.dns_names, ["svc.example.test"]);
    assert_ne!(new.serial, old.serial);
    let csr_key = inspect::read_private_key(key.serialize_pem().as_bytes()).unwrap();
    assert!(csr_key.public.same_public_key(&new.key));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_that_reflects_replaces_is_taken_at_once() {
    let (old, chain, key, new_orders) = renew(Replaces::Echo).await;
    assert_renewed(&old, &chain, &key);
    assert_eq!(new_orders.len(), 1, "{new_orders:#?}");
    assert_eq!(new_orders[0]["replaces"], ari_id(&old).as_str());
}

/// A CA that serves renewalInfo but does not reflect `replaces` (Pebble 2.4 behind an ARI
/// front, some CAs in the field): instant-acme refuses its answer, and the adapter must
/// order once more without `replaces` instead of retrying the refused order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_that_does_not_reflect_replaces_is_placed_again_without_it() {
    let (old, chain, key, new_orders) = renew(Replaces::Ignore).await;
    assert_renewed(&old, &chain, &key);
    assert_eq!(
        new_orders.len(),
        2,
        "one newOrder with `replaces`, one without, no more: {new_orders:#?}"
    );
    assert_eq!(new_orders[0]["replaces"], ari_id(&old).as_str());
    assert!(new_orders[1].get("replaces").is_none(), "{new_orders:#?}");
    assert_eq!(new_orders[0]["identifiers"], new_orders[1]["identifiers"]);
}

/// RFC 9773 §7.4 `alreadyReplaced`: the certificate was replaced already (by another
/// client, or an earlier attempt); the renewal still goes through, without `replaces`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_already_replaced_certificate_is_renewed_without_replaces() {
    let (old, chain, key, new_orders) = renew(Replaces::AlreadyReplaced).await;
    assert_renewed(&old, &chain, &key);
    assert_eq!(
        new_orders.len(),
        2,
        "one newOrder with `replaces`, one without, no more: {new_orders:#?}"
    );
    assert_eq!(new_orders[0]["replaces"], ari_id(&old).as_str());
    assert!(new_orders[1].get("replaces").is_none(), "{new_orders:#?}");
}
