//! Tests of `respond::verify`.
use super::*;

use rustls::ServerConfig;
use rustls::pki_types::PrivateKeyDer;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::{CertifiedKey, SigningKey};
use rustls::version::{TLS12, TLS13};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

/// A certificate and the signing key that goes with it.
struct TestCert {
    der: CertificateDer<'static>,
    key: Arc<dyn SigningKey>,
}

impl TestCert {
    fn self_signed(name: &str) -> Self {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec![name.to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        Self {
            der: cert.der().clone(),
            key: signing_key(&key),
        }
    }

    fn sha256(&self) -> String {
        sha256_hex(&self.der)
    }

    /// This certificate with its own key.
    fn certified(&self) -> Arc<CertifiedKey> {
        Arc::new(CertifiedKey::new(vec![self.der.clone()], self.key.clone()))
    }
}

fn signing_key(key: &rcgen::KeyPair) -> Arc<dyn SigningKey> {
    provider()
        .key_provider
        .load_private_key(PrivateKeyDer::Pkcs8(key.serialize_der().into()))
        .unwrap()
}

/// A leaf issued by a private CA, served with its chain.
fn ca_issued(name: &str) -> (TestCert, Arc<CertifiedKey>) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec![name.to_string()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    let cert = TestCert {
        der: leaf.der().clone(),
        key: signing_key(&leaf_key),
    };
    let chain = Arc::new(CertifiedKey::new(
        vec![cert.der.clone(), ca_cert.der().clone()],
        cert.key.clone(),
    ));
    (cert, chain)
}

/// Serves whatever certificate is current and records the SNI of every ClientHello.
#[derive(Debug)]
struct SwitchingResolver {
    current: Mutex<Arc<CertifiedKey>>,
    /// When set, every other handshake gets this one instead: two workers, old and new.
    alternate: Mutex<Option<Arc<CertifiedKey>>>,
    names: Mutex<Vec<Option<String>>>,
}

impl ResolvesServerCert for SwitchingResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let mut names = self.names.lock().unwrap();
        names.push(hello.server_name().map(str::to_string));
        if names.len().is_multiple_of(2)
            && let Some(other) = self.alternate.lock().unwrap().clone()
        {
            return Some(other);
        }
        Some(self.current.lock().unwrap().clone())
    }
}

/// A real TLS server on 127.0.0.1, stopped (with its connections) on drop.
struct TestServer {
    addr: SocketAddr,
    resolver: Arc<SwitchingResolver>,
    task: JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    async fn start(serving: Arc<CertifiedKey>) -> Self {
        Self::start_with(serving, &[&TLS13, &TLS12]).await
    }

    async fn start_with(
        serving: Arc<CertifiedKey>,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> Self {
        let resolver = Arc::new(SwitchingResolver {
            current: Mutex::new(serving),
            alternate: Mutex::new(None),
            names: Mutex::new(Vec::new()),
        });
        let config = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(versions)
            .unwrap()
            .with_no_client_auth()
            .with_cert_resolver(resolver.clone());
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                connections.spawn(async move {
                    if let Ok(mut tls) = acceptor.accept(tcp).await {
                        let mut buf = [0u8; 64];
                        let _ = tls.read(&mut buf).await;
                    }
                });
                while connections.try_join_next().is_some() {}
            }
        });
        Self {
            addr,
            resolver,
            task,
        }
    }

    fn serve(&self, cert: Arc<CertifiedKey>) {
        *self.resolver.current.lock().unwrap() = cert;
    }

    fn names(&self) -> Vec<Option<String>> {
        self.resolver.names.lock().unwrap().clone()
    }

    fn endpoint(&self, sni: Option<&str>) -> VerifyEndpoint {
        VerifyEndpoint {
            address: self.addr.to_string(),
            sni: sni.map(str::to_string),
        }
    }
}

fn quick(timeout_ms: u64) -> VerifyOptions {
    VerifyOptions {
        timeout: Duration::from_millis(timeout_ms),
        interval: Duration::from_millis(50),
        connect_timeout: Duration::from_secs(5),
        consecutive: 1,
    }
}

/// An address on which nothing listens: a port just released.
async fn closed_address() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    addr.to_string()
}

/// Generous upper bound for calls that must not hang.
async fn bounded<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .expect("the check did not finish within 60 s")
}

#[test]
fn default_options() {
    let o = VerifyOptions::default();
    assert_eq!(o.timeout, Duration::from_secs(30));
    assert_eq!(o.interval, Duration::from_millis(100));
    assert_eq!(o.connect_timeout, Duration::from_secs(5));
}

#[test]
fn parses_addresses() {
    let parse = |a: &str| {
        Target::parse(&VerifyEndpoint {
            address: a.into(),
            sni: None,
        })
    };
    let t = parse("127.0.0.1:8443").unwrap();
    assert_eq!(t.connect, ConnectTo::Ip("127.0.0.1:8443".parse().unwrap()));
    assert_eq!(
        t.server_name,
        ServerName::from(IpAddr::from([127, 0, 0, 1]))
    );
    let t = parse("[::1]:443").unwrap();
    assert_eq!(t.connect, ConnectTo::Ip("[::1]:443".parse().unwrap()));
    assert_eq!(
        t.server_name,
        ServerName::from(IpAddr::V6(Ipv6Addr::LOCALHOST))
    );
    let t = parse("www.example.test:443").unwrap();
    assert_eq!(t.connect, ConnectTo::Host("www.example.test".into(), 443));
    assert_eq!(
        t.server_name,
        ServerName::try_from("www.example.test").unwrap()
    );
}

#[tokio::test]
async fn malformed_addresses_are_errors() {
    for bad in [
        "",
        "nohost",
        "host:",
        ":443",
        "host:https",
        "host:0",
        "host:70000",
        "::1:443",
        "[::1]443",
        "[::1:443",
        "[not-an-ip]:443",
        "[127.0.0.1]:443",
        "ho st:443",
        "host/x:443",
    ] {
        let endpoint = VerifyEndpoint {
            address: bad.into(),
            sni: Some("www.example.test".into()),
        };
        let err = served_leaf(&endpoint, Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, VerifyError::InvalidAddress { address, .. } if address == bad),
            "{bad}: {err:?}"
        );
        assert!(err.to_string().contains(&format!("`{bad}`")), "{err}");
        // Not retried: fails at once although the timeout is an hour.
        let opts = VerifyOptions {
            timeout: Duration::from_secs(3600),
            ..VerifyOptions::default()
        };
        let err = bounded(verify_served(&[endpoint], b"leaf", &opts))
            .await
            .unwrap_err();
        assert!(
            matches!(err, VerifyError::InvalidAddress { .. }),
            "{bad}: {err:?}"
        );
    }
}

#[tokio::test]
async fn invalid_sni_is_an_error() {
    for (sni, says) in [
        ("not a name", "not a DNS name"),
        ("127.0.0.1", "IP address"),
    ] {
        let endpoint = VerifyEndpoint {
            address: "127.0.0.1:443".into(),
            sni: Some(sni.into()),
        };
        let err = served_leaf(&endpoint, Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(
            matches!(err, VerifyError::InvalidServerName { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains(says), "{err}");
    }
}

#[tokio::test]
async fn the_right_leaf_passes_whatever_its_issuer_and_names() {
    // Self-signed, and valid for another name than the SNI: identity is what counts.
    let cert = TestCert::self_signed("www.example.test");
    let server = TestServer::start(cert.certified()).await;
    let endpoint = server.endpoint(Some("other.example.test"));
    assert_eq!(
        served_leaf(&endpoint, Duration::from_secs(5))
            .await
            .unwrap(),
        cert.der.to_vec()
    );
    let report = bounded(verify_served(
        std::slice::from_ref(&endpoint),
        &cert.der,
        &quick(5_000),
    ))
    .await
    .unwrap();
    assert_eq!(report.endpoints.len(), 1);
    let r = &report.endpoints[0];
    assert_eq!(r.address, endpoint.address);
    assert_eq!(r.sni.as_deref(), Some("other.example.test"));
    assert_eq!(r.attempts, 1);
    assert_eq!(r.served_sha256, cert.sha256());

    // Issued by a private CA and served with its chain: the leaf is what is compared.
    let (leaf, chain) = ca_issued("api.example.test");
    let server = TestServer::start(chain).await;
    let report = bounded(verify_served(
        &[server.endpoint(Some("api.example.test"))],
        &leaf.der,
        &quick(5_000),
    ))
    .await
    .unwrap();
    assert_eq!(report.endpoints[0].served_sha256, leaf.sha256());
}

#[tokio::test]
async fn a_different_leaf_fails_after_the_timeout_naming_both_fingerprints() {
    let old = TestCert::self_signed("www.example.test");
    let new = TestCert::self_signed("www.example.test");
    let server = TestServer::start(old.certified()).await;
    let endpoint = server.endpoint(Some("www.example.test"));
    let err = bounded(verify_served(
        std::slice::from_ref(&endpoint),
        &new.der,
        &quick(600),
    ))
    .await
    .unwrap_err();
    let message = err.to_string();
    let VerifyError::NotServed {
        expected_sha256,
        checked,
        failures,
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(expected_sha256, &new.sha256());
    assert_eq!(*checked, 1);
    assert_eq!(failures.len(), 1);
    let f = &failures[0];
    assert!(f.attempts > 1, "retried: {f:?}");
    assert!(f.elapsed >= Duration::from_millis(500), "{f:?}");
    assert!(
        matches!(&f.last, LastSeen::OtherCertificate { sha256 } if *sha256 == old.sha256()),
        "{f:?}"
    );
    assert!(message.contains(&old.sha256()), "{message}");
    assert!(message.contains(&new.sha256()), "{message}");
    assert!(
        message.contains(&format!(
            "{} (sni www.example.test) still serves",
            endpoint.address
        )),
        "{message}"
    );
}

#[tokio::test]
async fn a_server_switching_to_the_new_leaf_passes_within_the_window() {
    let old = TestCert::self_signed("www.example.test");
    let new = TestCert::self_signed("www.example.test");
    let server = Arc::new(TestServer::start(old.certified()).await);
    let switch = {
        let server = server.clone();
        let new = new.certified();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            server.serve(new);
        })
    };
    let report = bounded(verify_served(
        &[server.endpoint(Some("www.example.test"))],
        &new.der,
        &quick(30_000),
    ))
    .await
    .unwrap();
    switch.await.unwrap();
    let r = &report.endpoints[0];
    assert!(r.attempts >= 2, "the old certificate was seen first: {r:?}");
    assert_eq!(r.served_sha256, new.sha256());
}

#[tokio::test]
async fn sni_is_sent_only_when_configured() {
    let cert = TestCert::self_signed("www.example.test");
    let server = TestServer::start(cert.certified()).await;
    served_leaf(
        &server.endpoint(Some("www.example.test")),
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    assert_eq!(server.names(), vec![Some("www.example.test".to_string())]);

    served_leaf(&server.endpoint(None), Duration::from_secs(5))
        .await
        .unwrap();
    // By host name, rustls would send `localhost` if SNI were left enabled.
    let by_name = VerifyEndpoint {
        address: format!("localhost:{}", server.addr.port()),
        sni: None,
    };
    served_leaf(&by_name, Duration::from_secs(5)).await.unwrap();
    assert_eq!(
        server.names(),
        vec![Some("www.example.test".to_string()), None, None]
    );
}

#[tokio::test]
async fn nothing_listening_is_a_connection_error() {
    let endpoint = VerifyEndpoint {
        address: closed_address().await,
        sni: None,
    };
    let err = served_leaf(&endpoint, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, VerifyError::Connect { error, .. }
            if error.kind() == io::ErrorKind::ConnectionRefused),
        "{err:?}"
    );

    let err = bounded(verify_served(
        std::slice::from_ref(&endpoint),
        b"leaf",
        &quick(300),
    ))
    .await
    .unwrap_err();
    let message = err.to_string();
    let VerifyError::NotServed { failures, .. } = err else {
        panic!("{err:?}");
    };
    assert!(failures[0].attempts > 1, "{:?}", failures[0]);
    assert!(
        matches!(
            failures[0].last,
            LastSeen::Error(VerifyError::Connect { .. })
        ),
        "{:?}",
        failures[0]
    );
    assert!(
        message.contains(&format!("{} (no sni): cannot connect", endpoint.address)),
        "{message}"
    );
}

#[tokio::test]
async fn a_silent_server_times_out() {
    // Accepts TCP connections and never answers the ClientHello.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = VerifyEndpoint {
        address: listener.local_addr().unwrap().to_string(),
        sni: None,
    };
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            held.push(tcp);
        }
    });
    let err = bounded(served_leaf(&endpoint, Duration::from_millis(300)))
        .await
        .unwrap_err();
    hold.abort();
    assert!(matches!(err, VerifyError::Timeout { .. }), "{err:?}");
    assert!(
        err.to_string().contains("no TLS handshake within 0.3 s"),
        "{err}"
    );
}

/// A server presenting our certificate while signing with another key must fail the
/// handshake, in TLS 1.3 (CertificateVerify) and TLS 1.2 (ServerKeyExchange) alike.
/// rustls' `with_single_cert` would refuse such a pair, but `CertifiedKey::new` does not
/// check consistency, so the resolver can serve it.
#[tokio::test]
async fn our_certificate_without_its_key_fails_the_handshake() {
    let ours = TestCert::self_signed("www.example.test");
    let other = TestCert::self_signed("www.example.test");
    let forged = Arc::new(CertifiedKey::new(vec![ours.der.clone()], other.key.clone()));
    assert!(forged.keys_match().is_err());
    for version in [&TLS13, &TLS12] {
        let server = TestServer::start_with(forged.clone(), &[version]).await;
        let endpoint = server.endpoint(Some("www.example.test"));
        let err = served_leaf(&endpoint, Duration::from_secs(5))
            .await
            .unwrap_err();
        let VerifyError::Handshake {
            presented_sha256,
            error,
            ..
        } = &err
        else {
            panic!("{version:?}: {err:?}");
        };
        assert_eq!(presented_sha256.as_deref(), Some(ours.sha256().as_str()));
        let tls_error = error
            .get_ref()
            .and_then(|e| e.downcast_ref::<rustls::Error>());
        assert!(
            matches!(
                tls_error,
                Some(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::BadSignature
                ))
            ),
            "{version:?}: {error:?}"
        );

        let err = bounded(verify_served(&[endpoint], &ours.der, &quick(200)))
            .await
            .unwrap_err();
        let VerifyError::NotServed { failures, .. } = &err else {
            panic!("{err:?}");
        };
        assert!(
            matches!(
                failures[0].last,
                LastSeen::Error(VerifyError::Handshake { .. })
            ),
            "{version:?}: {err}"
        );

        // The same server with the matching key passes: the check is not vacuous.
        server.serve(ours.certified());
        let report = bounded(verify_served(
            &[server.endpoint(Some("www.example.test"))],
            &ours.der,
            &quick(5_000),
        ))
        .await
        .unwrap();
        assert_eq!(report.endpoints[0].served_sha256, ours.sha256());
    }
}

#[tokio::test]
async fn every_endpoint_must_pass_and_only_failures_are_reported() {
    let new = TestCert::self_signed("www.example.test");
    let old = TestCert::self_signed("www.example.test");
    let good = TestServer::start(new.certified()).await;
    let stale = TestServer::start(old.certified()).await;
    let endpoints = [
        good.endpoint(Some("www.example.test")),
        stale.endpoint(None),
    ];
    let err = bounded(verify_served(&endpoints, &new.der, &quick(300)))
        .await
        .unwrap_err();
    let message = err.to_string();
    let VerifyError::NotServed {
        checked, failures, ..
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(*checked, 2);
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].address, stale.addr.to_string());
    assert!(message.contains("not served by 1 of 2"), "{message}");
    assert!(!message.contains(&good.addr.to_string()), "{message}");

    stale.serve(new.certified());
    let report = bounded(verify_served(&endpoints, &new.der, &quick(5_000)))
        .await
        .unwrap();
    let addresses: Vec<_> = report.endpoints.iter().map(|r| r.address.clone()).collect();
    assert_eq!(addresses, [good.addr.to_string(), stale.addr.to_string()]);

    let empty = bounded(verify_served(&[], &new.der, &quick(5_000)))
        .await
        .unwrap();
    assert!(empty.endpoints.is_empty());
}

#[tokio::test]
async fn old_and_new_workers_side_by_side_do_not_pass_until_only_the_new_one_serves() {
    let old = TestCert::self_signed("old.example.test");
    let new = TestCert::self_signed("new.example.test");
    let server = TestServer::start(new.certified()).await;
    *server.resolver.alternate.lock().unwrap() = Some(old.certified());
    let endpoint = server.endpoint(Some("www.example.test"));
    let opts = VerifyOptions {
        consecutive: 2,
        ..quick(600)
    };
    let err = bounded(verify_served(
        std::slice::from_ref(&endpoint),
        &new.der,
        &opts,
    ))
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains(&old.sha256()) || err.contains("only 1 time(s) in a row"),
        "{err}"
    );
    // The old worker exits: three handshakes in a row now present the new leaf.
    *server.resolver.alternate.lock().unwrap() = None;
    let opts = VerifyOptions {
        consecutive: 3,
        ..quick(5_000)
    };
    let report = bounded(verify_served(&[endpoint], &new.der, &opts))
        .await
        .unwrap();
    assert!(report.endpoints[0].attempts >= 3, "{report:?}");
}
