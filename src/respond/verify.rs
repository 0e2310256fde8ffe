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

/// Pause between the matching handshakes that settle an endpoint (see
/// [`VerifyOptions::consecutive`]).
pub const SETTLE_INTERVAL: Duration = Duration::from_millis(50);

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
    /// Handshakes in a row, [`SETTLE_INTERVAL`] apart (or `interval` when shorter), that must
    /// present the new leaf before an endpoint passes (at least 1). A reloading server briefly runs old and new workers side
    /// by side (nginx keeps the old ones for about 100 ms), so one matching handshake does
    /// not prove the old certificate is no longer served.
    pub consecutive: u32,
}

impl Default for VerifyOptions {
    /// 30 s in total, an attempt every 100 ms, 5 s per attempt, 3 matches in a row.
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            interval: Duration::from_millis(100),
            connect_timeout: Duration::from_secs(5),
            consecutive: 3,
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
    /// The last handshakes presented the new certificate, but fewer in a row than required
    /// when the time ran out.
    Settling {
        /// Matching handshakes in a row.
        matched: u32,
    },
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
            LastSeen::Settling { matched } => out.push_str(&format!(
                "{} served the new certificate only {matched} time(s) in a row before the time ran out ({attempts} attempt{plural} in {secs:.1} s)",
                label(&f.address, &f.sni)
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
    let mut matched: u32 = 0;
    loop {
        attempt = attempt.saturating_add(1);
        let last = match handshake(&target, opts.connect_timeout).await {
            Ok(der) if *der == *expected && matched.saturating_add(1) < opts.consecutive => {
                matched += 1;
                tracing::debug!(endpoint = %endpoint, attempt, matched, "endpoint serves the new certificate; checking again");
                LastSeen::Settling { matched }
            }
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
                matched = 0;
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
                matched = 0;
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
        // While settling, check again sooner: the old and new workers of a reloading server
        // overlap for about 100 ms, which `consecutive` checks SETTLE_INTERVAL apart outlast.
        let pause = if matched > 0 {
            opts.interval.min(SETTLE_INTERVAL)
        } else {
            opts.interval
        };
        tokio::time::sleep(pause).await;
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
mod tests;
