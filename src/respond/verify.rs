//! Verify: after a deployment and reload, checks that every verify endpoint actually serves
//! the new certificate.
//!
//! The check is one of identity, not of web PKI trust: an endpoint passes when the end-entity
//! certificate it presents in a TLS handshake is byte-identical to the deployed leaf. The
//! certificate may come from a private CA or a test CA such as Pebble, and need not even be
//! valid for the name sent as SNI, so the chain is not validated against any root. The
//! handshake signatures (RFC 8446 §4.4.3, RFC 5246 §7.4.3) are still verified against the
//! presented certificate, so a server that merely sends our certificate without holding its
//! private key fails the handshake.
//!
//! Reloads take effect asynchronously, so [`verify_served`] retries each endpoint until it
//! serves the new certificate or [`VerifyOptions::timeout`] passes.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use certresponder_inventory::VerifyEndpoint;
use rustls::client::Resumption;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{
    CryptoProvider, WebPkiSupportedAlgorithms, aws_lc_rs, verify_tls12_signature,
    verify_tls13_signature,
};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;

/// How long to wait for the server's reply to our close_notify after a successful check; the
/// certificate is already in hand, so this only keeps server logs free of truncation warnings.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// How long [`verify_served`] keeps trying, and how often.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifyOptions {
    /// Total time to keep retrying. No attempt starts after it has passed; an attempt already
    /// running may finish up to `connect_timeout` later. Zero means exactly one attempt.
    pub timeout: Duration,
    /// Pause between two attempts at the same endpoint.
    pub interval: Duration,
    /// Limit for one attempt: TCP connect (including name resolution) plus TLS handshake.
    pub connect_timeout: Duration,
}

impl Default for VerifyOptions {
    /// 30 s in total, an attempt every 250 ms, 5 s per attempt.
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            interval: Duration::from_millis(250),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// What an endpoint served when it passed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointResult {
    /// The endpoint address, as in the inventory (`host:port`, `[v6]:port`).
    pub address: String,
    /// The server name sent as SNI; `None` when none was sent.
    pub sni: Option<String>,
    /// Handshakes made, the successful one included.
    pub attempts: u32,
    /// Milliseconds from the start of [`verify_served`] to the successful handshake.
    pub elapsed_ms: u64,
    /// SHA-256 of the served leaf certificate (DER), lower-case hex.
    pub served_sha256: String,
}

/// The outcome of a successful [`verify_served`]: one entry per endpoint, in input order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReport {
    /// One result per verify endpoint, in the order given.
    pub endpoints: Vec<EndpointResult>,
}

/// An endpoint that still did not serve the expected certificate when time ran out.
#[derive(Debug)]
pub struct EndpointFailure {
    /// The endpoint address, as in the inventory.
    pub address: String,
    /// The server name sent as SNI; `None` when none was sent.
    pub sni: Option<String>,
    /// Handshakes attempted.
    pub attempts: u32,
    /// Time from the start of [`verify_served`] to the end of the last attempt.
    pub elapsed: Duration,
    /// What the last attempt saw.
    pub last: LastSeen,
}

/// What the last attempt at a failing endpoint saw.
#[derive(Debug)]
#[non_exhaustive]
pub enum LastSeen {
    /// The handshake succeeded but the endpoint served another certificate.
    OtherCertificate {
        /// SHA-256 of the served leaf certificate (DER), lower-case hex.
        sha256: String,
    },
    /// The attempt failed: connection, timeout or handshake error.
    Error(VerifyError),
}

/// Why an endpoint could not be checked, or did not serve the expected certificate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The address is not `host:port` or `[v6]:port`; retrying cannot help.
    #[error("verify endpoint `{address}`: {reason}")]
    InvalidAddress {
        /// The address as given.
        address: String,
        /// The server name configured for it.
        sni: Option<String>,
        /// What is wrong with it.
        reason: String,
    },
    /// The configured SNI is not a DNS name that can be sent (RFC 6066 §3).
    #[error("verify endpoint `{address}`: SNI `{sni}` {reason}")]
    InvalidServerName {
        /// The address as given.
        address: String,
        /// The server name as given.
        sni: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Name resolution or the TCP connection failed (refused, reset, unreachable).
    #[error("{}: cannot connect: {error}", label(.address, .sni))]
    Connect {
        /// The endpoint address.
        address: String,
        /// The server name sent as SNI, if any.
        sni: Option<String>,
        /// The error from the operating system or resolver.
        error: io::Error,
    },
    /// TCP connect and TLS handshake together took longer than the connect timeout.
    #[error(
        "{}: no TLS handshake within {:.1} s",
        label(.address, .sni),
        .timeout.as_secs_f64()
    )]
    Timeout {
        /// The endpoint address.
        address: String,
        /// The server name sent as SNI, if any.
        sni: Option<String>,
        /// The connect timeout that passed.
        timeout: Duration,
    },
    /// The TLS handshake failed, for example because the handshake signature does not match
    /// the presented certificate's key, or the server closed the connection.
    #[error("{}: TLS handshake failed{}: {error}", label(.address, .sni), presented(.presented_sha256))]
    Handshake {
        /// The endpoint address.
        address: String,
        /// The server name sent as SNI, if any.
        sni: Option<String>,
        /// SHA-256 (hex) of the leaf the server presented before the handshake failed, if it
        /// got that far.
        presented_sha256: Option<String>,
        /// The TLS or I/O error.
        error: io::Error,
    },
    /// The handshake completed without the server presenting a certificate.
    #[error("{}: the server presented no certificate", label(.address, .sni))]
    NoCertificate {
        /// The endpoint address.
        address: String,
        /// The server name sent as SNI, if any.
        sni: Option<String>,
    },
    /// Some endpoints still did not serve the expected certificate when time ran out.
    #[error("{}", not_served(.expected_sha256, .checked, .failures))]
    NotServed {
        /// SHA-256 (hex) of the certificate that should be served.
        expected_sha256: String,
        /// How many endpoints were checked.
        checked: usize,
        /// The endpoints that failed, in input order, with what they last showed.
        failures: Vec<EndpointFailure>,
    },
    /// The TLS client configuration could not be built (a rustls provider problem).
    #[error("TLS client configuration: {reason}")]
    Config {
        /// The rustls error.
        reason: String,
    },
    /// The check was cancelled before it finished (the runtime is shutting down).
    #[error("the endpoint check was cancelled before it finished")]
    Cancelled,
}

/// `127.0.0.1:8443 (sni www.example.test)` or `127.0.0.1:8443 (no sni)`.
struct Label<'a> {
    address: &'a str,
    sni: Option<&'a str>,
}

impl fmt::Display for Label<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.sni {
            Some(sni) => write!(f, "{} (sni {sni})", self.address),
            None => write!(f, "{} (no sni)", self.address),
        }
    }
}

fn label<'a>(address: &'a str, sni: &'a Option<String>) -> Label<'a> {
    Label {
        address,
        sni: sni.as_deref(),
    }
}

fn presented(sha256: &Option<String>) -> String {
    match sha256 {
        Some(sha) => format!(" after the server presented certificate {sha}"),
        None => String::new(),
    }
}

fn not_served(expected: &str, checked: &usize, failures: &[EndpointFailure]) -> String {
    let mut out = format!(
        "certificate {expected} is not served by {} of {checked} verify endpoint(s): ",
        failures.len()
    );
    for (i, f) in failures.iter().enumerate() {
        if i > 0 {
            out.push_str("; ");
        }
        let secs = f.elapsed.as_secs_f64();
        let attempts = f.attempts;
        let plural = if attempts == 1 { "" } else { "s" };
        match &f.last {
            LastSeen::OtherCertificate { sha256 } => out.push_str(&format!(
                "{} still serves {sha256} instead of {expected} after {attempts} attempt{plural} \
                 in {secs:.1} s",
                label(&f.address, &f.sni)
            )),
            LastSeen::Error(e) => out.push_str(&format!(
                "{e} (last of {attempts} attempt{plural} in {secs:.1} s)"
            )),
        }
    }
    out
}

/// SHA-256 of `der`, lower-case hex.
fn sha256_hex(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

/// Where to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ConnectTo {
    Ip(SocketAddr),
    Host(String, u16),
}

/// A parsed endpoint: where to connect and what name to give rustls.
#[derive(Debug, Clone)]
struct Target {
    address: String,
    sni: Option<String>,
    connect: ConnectTo,
    /// The SNI when one is configured; otherwise the host part of the address, used only
    /// internally by rustls since SNI is then disabled.
    server_name: ServerName<'static>,
}

impl Target {
    fn label(&self) -> Label<'_> {
        label(&self.address, &self.sni)
    }

    fn parse(endpoint: &VerifyEndpoint) -> Result<Self, VerifyError> {
        let address = &endpoint.address;
        let invalid = |reason: String| VerifyError::InvalidAddress {
            address: address.clone(),
            sni: endpoint.sni.clone(),
            reason,
        };
        let (host, port) = address
            .rsplit_once(':')
            .ok_or_else(|| invalid("must be host:port, such as 127.0.0.1:443".into()))?;
        let port = port
            .parse::<u16>()
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| invalid(format!("`{port}` is not a port number (1-65535)")))?;
        let (connect, host_name) = if let Some(inner) = host.strip_prefix('[') {
            let v6 = inner
                .strip_suffix(']')
                .and_then(|h| h.parse::<Ipv6Addr>().ok())
                .ok_or_else(|| invalid(format!("`{host}` is not a bracketed IPv6 address")))?;
            let ip = IpAddr::V6(v6);
            (
                ConnectTo::Ip(SocketAddr::new(ip, port)),
                ServerName::from(ip),
            )
        } else if let Ok(v4) = host.parse::<Ipv4Addr>() {
            let ip = IpAddr::V4(v4);
            (
                ConnectTo::Ip(SocketAddr::new(ip, port)),
                ServerName::from(ip),
            )
        } else if host.contains(':') {
            return Err(invalid(
                "an IPv6 address must be written in brackets, such as [::1]:443".into(),
            ));
        } else {
            match ServerName::try_from(host) {
                Ok(name @ ServerName::DnsName(_)) => {
                    (ConnectTo::Host(host.to_string(), port), name.to_owned())
                }
                _ => {
                    return Err(invalid(format!(
                        "`{host}` is not a host name or IP address"
                    )));
                }
            }
        };
        let server_name = match &endpoint.sni {
            None => host_name,
            Some(sni) => match ServerName::try_from(sni.as_str()) {
                Ok(name @ ServerName::DnsName(_)) => name.to_owned(),
                Ok(_) => {
                    return Err(VerifyError::InvalidServerName {
                        address: address.clone(),
                        sni: sni.clone(),
                        reason: "is an IP address, which cannot be sent as SNI (RFC 6066 §3)"
                            .into(),
                    });
                }
                Err(e) => {
                    return Err(VerifyError::InvalidServerName {
                        address: address.clone(),
                        sni: sni.clone(),
                        reason: format!("is not a DNS name: {e}"),
                    });
                }
            },
        };
        Ok(Self {
            address: address.clone(),
            sni: endpoint.sni.clone(),
            connect,
            server_name,
        })
    }
}

/// The aws-lc-rs provider, built once; explicit so that no process-default provider is needed.
fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(aws_lc_rs::default_provider()))
        .clone()
}

/// Accepts any certificate chain, recording the end-entity certificate, but verifies the
/// handshake signatures with the presented certificate's key, so the server must hold it.
#[derive(Debug)]
struct RecordingVerifier {
    algorithms: WebPkiSupportedAlgorithms,
    presented: Mutex<Option<CertificateDer<'static>>>,
}

impl RecordingVerifier {
    fn presented(&self) -> Option<CertificateDer<'static>> {
        // A poisoned lock only means another thread panicked while holding it; the value is
        // a plain Option and still meaningful.
        self.presented
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        *self
            .presented
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(end_entity.clone().into_owned());
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// One TLS handshake with `target`; returns the leaf certificate it presented.
async fn handshake(target: &Target, connect_timeout: Duration) -> Result<Vec<u8>, VerifyError> {
    let provider = provider();
    let verifier = Arc::new(RecordingVerifier {
        algorithms: provider.signature_verification_algorithms,
        presented: Mutex::new(None),
    });
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| VerifyError::Config {
            reason: e.to_string(),
        })?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_no_client_auth();
    config.enable_sni = target.sni.is_some();
    // Every attempt must see the certificate: a resumed session would not send one.
    config.resumption = Resumption::disabled();
    let connector = TlsConnector::from(Arc::new(config));

    let attempt = async {
        let tcp = match &target.connect {
            ConnectTo::Ip(addr) => TcpStream::connect(*addr).await,
            ConnectTo::Host(host, port) => TcpStream::connect((host.as_str(), *port)).await,
        }
        .map_err(|error| VerifyError::Connect {
            address: target.address.clone(),
            sni: target.sni.clone(),
            error,
        })?;
        connector
            .connect(target.server_name.clone(), tcp)
            .await
            .map_err(|error| VerifyError::Handshake {
                address: target.address.clone(),
                sni: target.sni.clone(),
                presented_sha256: verifier.presented().map(|c| sha256_hex(&c)),
                error,
            })
    };
    let mut tls = tokio::time::timeout(connect_timeout, attempt)
        .await
        .map_err(|_| VerifyError::Timeout {
            address: target.address.clone(),
            sni: target.sni.clone(),
            timeout: connect_timeout,
        })??;
    let leaf = verifier.presented().or_else(|| {
        tls.get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first().cloned())
    });
    // Best effort: the certificate is in hand whatever happens to the close.
    let _ = tokio::time::timeout(CLOSE_TIMEOUT.min(connect_timeout), tls.shutdown()).await;
    leaf.map(|c| c.to_vec())
        .ok_or_else(|| VerifyError::NoCertificate {
            address: target.address.clone(),
            sni: target.sni.clone(),
        })
}

/// The leaf certificate (DER) the endpoint serves, from one TLS handshake.
///
/// Sends the endpoint's SNI when it has one and none otherwise. The chain is not validated;
/// the handshake signature is. `connect_timeout` bounds TCP connect plus handshake.
pub async fn served_leaf(
    endpoint: &VerifyEndpoint,
    connect_timeout: Duration,
) -> Result<Vec<u8>, VerifyError> {
    let target = Target::parse(endpoint)?;
    handshake(&target, connect_timeout).await
}

/// Retries one endpoint until it serves `expected` or the deadline passes.
async fn check_endpoint(
    target: Target,
    expected: Arc<[u8]>,
    start: Instant,
    opts: VerifyOptions,
) -> Result<EndpointResult, EndpointFailure> {
    let deadline = start + opts.timeout;
    let endpoint = target.label().to_string();
    let mut attempt: u32 = 0;
    loop {
        attempt = attempt.saturating_add(1);
        let last = match handshake(&target, opts.connect_timeout).await {
            Ok(der) if *der == *expected => {
                let elapsed_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
                tracing::info!(
                    endpoint = %endpoint,
                    attempt,
                    elapsed_ms,
                    "endpoint serves the new certificate"
                );
                return Ok(EndpointResult {
                    address: target.address,
                    sni: target.sni,
                    attempts: attempt,
                    elapsed_ms,
                    served_sha256: sha256_hex(&der),
                });
            }
            Ok(der) => {
                let sha256 = sha256_hex(&der);
                tracing::debug!(
                    endpoint = %endpoint,
                    attempt,
                    served = %sha256,
                    "endpoint still serves another certificate"
                );
                LastSeen::OtherCertificate { sha256 }
            }
            Err(e) => {
                tracing::debug!(endpoint = %endpoint, attempt, error = %e, "attempt failed");
                LastSeen::Error(e)
            }
        };
        if Instant::now() + opts.interval > deadline {
            let failure = EndpointFailure {
                address: target.address,
                sni: target.sni,
                attempts: attempt,
                elapsed: start.elapsed(),
                last,
            };
            tracing::warn!(
                endpoint = %endpoint,
                attempt,
                "endpoint does not serve the new certificate; giving up"
            );
            return Err(failure);
        }
        tokio::time::sleep(opts.interval).await;
    }
}

/// Retries until every endpoint serves `leaf_der`, or the timeout passes.
///
/// Endpoints are checked concurrently, each retried after connection errors (refused, reset),
/// handshake failures and a different certificate, until it serves a leaf byte-identical to
/// `leaf_der`; an endpoint that passed is not checked again. A malformed address or SNI fails
/// at once, before any connection. On timeout the error names, for each failing endpoint,
/// what its last attempt saw. An empty `endpoints` passes with an empty report.
pub async fn verify_served(
    endpoints: &[VerifyEndpoint],
    leaf_der: &[u8],
    opts: &VerifyOptions,
) -> Result<VerifyReport, VerifyError> {
    let targets = endpoints
        .iter()
        .map(Target::parse)
        .collect::<Result<Vec<_>, _>>()?;
    let expected: Arc<[u8]> = Arc::from(leaf_der);
    let start = Instant::now();
    let mut tasks = JoinSet::new();
    for (i, target) in targets.into_iter().enumerate() {
        let expected = expected.clone();
        let opts = *opts;
        tasks.spawn(async move { (i, check_endpoint(target, expected, start, opts).await) });
    }
    let mut outcomes = Vec::with_capacity(endpoints.len());
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(outcome) => outcomes.push(outcome),
            // A panic in a check is a bug; let it surface as if the check ran inline.
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => return Err(VerifyError::Cancelled),
        }
    }
    outcomes.sort_by_key(|(i, _)| *i);
    let mut passed = Vec::with_capacity(outcomes.len());
    let mut failures = Vec::new();
    for (_, outcome) in outcomes {
        match outcome {
            Ok(result) => passed.push(result),
            Err(failure) => failures.push(failure),
        }
    }
    if failures.is_empty() {
        Ok(VerifyReport { endpoints: passed })
    } else {
        Err(VerifyError::NotServed {
            expected_sha256: sha256_hex(leaf_der),
            checked: endpoints.len(),
            failures,
        })
    }
}

#[cfg(test)]
mod tests {
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
        names: Mutex<Vec<Option<String>>>,
    }

    impl ResolvesServerCert for SwitchingResolver {
        fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
            self.names
                .lock()
                .unwrap()
                .push(hello.server_name().map(str::to_string));
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
        assert_eq!(o.interval, Duration::from_millis(250));
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
}
