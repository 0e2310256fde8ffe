//! The ACME adapter (RFC 8555), on instant-acme: the only module that imports it.
//!
//! - The account is created once (with external account binding when configured) and its
//!   credentials kept as a 0600 file or in the issuer storage.
//! - Orders are validated by HTTP-01 (the built-in responder, or files under a web root) or
//!   DNS-01 (a hook command), finalized with our own CSR, and the chain is fetched.
//! - Requests are retried with backoff on `badNonce`, rate limits (honouring `Retry-After`)
//!   and server errors, within the configured timeout.
//! - Revocation carries an RFC 5280 reason and is signed by the account key, or, when the
//!   certificate's key is given, by that key (RFC 8555 §7.6), which proves possession.
//! - ARI (RFC 9773) `renewalInfo` and `replaces` are used where the directory offers them.
//! - Status comes from the certificate's CRL distribution point (fetched, signature-checked
//!   against the issuing certificate, cached until nextUpdate), else it is `unknown`.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use certresponder_inventory::fs::{create_dir_with_mode, write_atomic};
use certresponder_inventory::inspect::{self, encode_pem};
use chrono::{DateTime, Utc};
use http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, BodyWrapper, BytesResponse,
    CertificateIdentifier, ChallengeType, ExternalAccountKey, HttpClient, NewAccount, NewOrder,
    OrderStatus, Problem, RetryPolicy, RevocationRequest,
};
use rustls_pki_types::CertificateDer;
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use crate::IssuerError;
use crate::config::{AcmeConfig, Challenge};
use crate::http01::Http01Responder;
use crate::issuer::{
    CertStatus, Identifier, IssueRequest, IssuedChain, Issuer, RenewalWindow, RevocationReason,
    RevokeRequest,
};
use crate::jws::CertKeySigner;
use crate::storage::IssuerStorage;

type Https = HttpsConnector<HttpConnector>;
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The most an ACME answer may hold (a certificate chain is a few KiB).
const MAX_ANSWER: usize = 1 << 20;
/// The most a CRL fetched for a status check may hold.
const MAX_CRL: usize = 64 << 20;

/// The HTTPS connector with a limit on connecting: TCP and the TLS handshake together, so
/// that a server that accepts and never answers fails at the limit.
#[derive(Clone)]
struct TimedConnector {
    inner: Https,
    limit: Duration,
}

/// Connecting took longer than the limit.
#[derive(Debug)]
struct ConnectTimeout(Duration);

impl std::fmt::Display for ConnectTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no connection within {} s", self.0.as_secs())
    }
}

impl std::error::Error for ConnectTimeout {}

impl tower_service::Service<http::Uri> for TimedConnector {
    type Response = <Https as tower_service::Service<http::Uri>>::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let fut = self.inner.call(uri);
        let limit = self.limit;
        Box::pin(async move {
            match tokio::time::timeout(limit, fut).await {
                Ok(r) => r,
                Err(_) => Err(Box::new(ConnectTimeout(limit)) as BoxError),
            }
        })
    }
}

/// Why an HTTP exchange with the CA failed, sorted by whether trying again can help.
#[derive(Debug, Clone)]
enum Failure {
    /// The server's certificate is not trusted; trying again cannot help.
    Untrusted(String),
    /// Another TLS failure (no common protocol, a bad certificate); permanent.
    Tls(String),
    /// The server's name does not resolve; permanent.
    Dns(String),
    /// No connection, or no whole answer, within the limit; may pass.
    Timeout(String),
    /// The answer is larger than allowed; permanent.
    TooLarge(String),
    /// Anything else on the way (refused, reset); may pass.
    Network(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Untrusted(m)
            | Self::Tls(m)
            | Self::Dns(m)
            | Self::Timeout(m)
            | Self::TooLarge(m)
            | Self::Network(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Failure {}

impl From<Failure> for IssuerError {
    fn from(f: Failure) -> Self {
        match f {
            Failure::Untrusted(m) | Failure::Tls(m) => IssuerError::Tls(m),
            Failure::Dns(m) => IssuerError::Dns(m),
            Failure::Timeout(m) => IssuerError::Timeout(m),
            Failure::TooLarge(m) => IssuerError::Protocol(m),
            Failure::Network(m) => IssuerError::Network(m),
        }
    }
}

/// The HTTP transport, handed to instant-acme and used for the requests it does not make
/// (the directory, revocations signed by the certificate's key, CRLs): a hyper client whose
/// every exchange is limited in time and size and whose failures are classified, which
/// also remembers the `Retry-After` of the last 429 or 503 answer (instant-acme does not
/// surface it).
#[derive(Clone)]
struct Transport {
    client: HyperClient<TimedConnector, BodyWrapper<Bytes>>,
    retry_after: Arc<Mutex<Option<Duration>>>,
    /// How long one exchange (the answer's headers and body) may take.
    answer_limit: Duration,
    /// For messages: the connect limit and the configured trust root.
    connect_limit: Duration,
    trust_root: Option<PathBuf>,
}

impl HttpClient for Transport {
    fn request(
        &self,
        req: Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, instant_acme::Error>> + Send>> {
        let this = self.clone();
        Box::pin(async move {
            let (parts, body) = this
                .exchange(req, MAX_ANSWER)
                .await
                .map_err(|f| instant_acme::Error::Other(Box::new(f)))?;
            if matches!(
                parts.status,
                StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
            ) && let (Some(d), Ok(mut s)) =
                (parse_retry_after(&parts.headers), this.retry_after.lock())
            {
                *s = Some(d);
            }
            Ok(BytesResponse::from(http::Response::from_parts(
                parts,
                http_body_util::Full::new(body),
            )))
        })
    }
}

impl Transport {
    /// One request and its whole answer, at most `limit` bytes, within the answer limit.
    async fn exchange(
        &self,
        req: Request<BodyWrapper<Bytes>>,
        limit: usize,
    ) -> Result<(http::response::Parts, Bytes), Failure> {
        let url = req.uri().to_string();
        let work = async {
            let rsp = self
                .client
                .request(req)
                .await
                .map_err(|e| self.classify(&e, &url))?;
            let (parts, body) = rsp.into_parts();
            let bytes = http_body_util::Limited::new(body, limit)
                .collect()
                .await
                .map_err(|e| {
                    if e.downcast_ref::<http_body_util::LengthLimitError>()
                        .is_some()
                    {
                        Failure::TooLarge(format!(
                            "the answer from {url} is larger than {limit} bytes"
                        ))
                    } else {
                        self.classify(e.as_ref(), &url)
                    }
                })?
                .to_bytes();
            Ok((parts, bytes))
        };
        tokio::time::timeout(self.answer_limit, work)
            .await
            .unwrap_or_else(|_| {
                Err(Failure::Timeout(format!(
                    "no answer from the ACME server within {} s ({url}); `timeout_secs` sets the limit",
                    self.answer_limit.as_secs()
                )))
            })
    }

    /// Sorts a failed exchange by its causes: an untrusted certificate, another TLS
    /// failure, a name that does not resolve, a connect timeout, or the rest.
    fn classify(&self, e: &(dyn std::error::Error + 'static), url: &str) -> Failure {
        let mut words: Vec<String> = Vec::new();
        let mut tls: Option<String> = None;
        // How the server's certificate failed, when it did: None (not a certificate
        // failure), Some(true) (signed by a CA we do not trust), Some(false) (expired, for
        // another name...).
        let mut certificate: Option<bool> = None;
        let mut permanent_tls = false;
        let mut dns = false;
        let mut timed_out = false;
        let mut cur = Some(e);
        while let Some(err) = cur {
            let text = err.to_string();
            dns |= text.starts_with("dns error");
            timed_out |= err.downcast_ref::<ConnectTimeout>().is_some();
            // An I/O error hides the error it wraps from `source` (and hyper-rustls wraps
            // rustls' I/O error in another): look inside each.
            let mut candidate = Some(err);
            while let Some(c) = candidate {
                if let Some(r) = c.downcast_ref::<rustls::Error>() {
                    use rustls::CertificateError as C;
                    match r {
                        rustls::Error::InvalidCertificate(C::UnknownIssuer | C::BadSignature) => {
                            certificate = Some(true);
                        }
                        rustls::Error::InvalidCertificate(_) => certificate = Some(false),
                        // No protocol version or cipher in common, no ALPN: configuration.
                        rustls::Error::PeerIncompatible(_)
                        | rustls::Error::NoApplicationProtocol => {
                            permanent_tls = true;
                        }
                        // Alerts, a reset mid-handshake: a busy server or a restarting proxy.
                        _ => {}
                    }
                    tls = Some(r.to_string());
                }
                candidate = c
                    .downcast_ref::<std::io::Error>()
                    .and_then(|io| io.get_ref())
                    .map(|i| i as &(dyn std::error::Error + 'static));
            }
            if words.last().is_none_or(|w| !w.contains(&text)) {
                words.push(text);
            }
            cur = err.source();
        }
        let detail = words.join(": ");
        if timed_out {
            return Failure::Timeout(format!(
                "no connection to the ACME server within {} s ({url}); `connect_timeout_secs` sets the limit",
                self.connect_limit.as_secs()
            ));
        }
        if let Some(t) = tls.filter(|_| certificate.is_some() || permanent_tls) {
            if certificate == Some(false) {
                return Failure::Untrusted(format!(
                    "the ACME server's certificate is not valid: {t} ({url}); check the server's certificate and the host name in `directory`"
                ));
            }
            if certificate == Some(true) {
                let fix = match &self.trust_root {
                    Some(p) => format!(
                        "trust_root ({}) does not hold the CA that signed it: point trust_root at that CA's certificate",
                        p.display()
                    ),
                    None => "set trust_root to the certificate of the CA that signed it (a private ACME server), or add that CA to the system's trust store".into(),
                };
                return Failure::Untrusted(format!(
                    "the ACME server's certificate is not trusted: {t} ({url}); {fix}"
                ));
            }
            return Failure::Tls(format!("TLS with the ACME server failed: {t} ({url})"));
        }
        // "Temporary failure in name resolution" (EAI_AGAIN: no resolver yet, as at boot)
        // may pass; a name that does not exist does not.
        if dns && !detail.contains("Temporary failure") {
            return Failure::Dns(format!(
                "the ACME server's name cannot be resolved ({url}): {detail}; check `directory`"
            ));
        }
        Failure::Network(format!("{url}: {detail}"))
    }
}

/// `Retry-After` as seconds or an HTTP date (RFC 9110 §10.2.3).
fn parse_retry_after(h: &http::HeaderMap) -> Option<Duration> {
    let v = h.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = DateTime::parse_from_rfc2822(v).ok()?;
    (when.with_timezone(&Utc) - Utc::now()).to_std().ok()
}

/// Something provisioned for a challenge, undone when the order is finished.
enum Provisioned {
    Token(String),
    File(PathBuf),
    Dns(String, String),
}

/// An ACME issuer.
pub struct AcmeIssuer {
    id: String,
    cfg: AcmeConfig,
    storage: Arc<dyn IssuerStorage>,
    transport: Transport,
    account: OnceCell<Account>,
    responder: OnceCell<Http01Responder>,
}

impl std::fmt::Debug for AcmeIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcmeIssuer")
            .field("id", &self.id)
            .field("directory", &self.cfg.directory)
            .finish_non_exhaustive()
    }
}

fn problem_kind(p: &Problem) -> &str {
    p.r#type
        .as_deref()
        .and_then(|t| t.rsplit(':').next())
        .unwrap_or_default()
}

/// An order with `replaces` that the CA did not take: it answered without echoing
/// `replaces` (instant-acme refuses such an answer), or said the certificate was already
/// replaced (RFC 9773 `alreadyReplaced`). Either way, not worth retrying as it is: the caller
/// orders again without `replaces`.
fn replaces_refused(e: instant_acme::Error) -> instant_acme::Error {
    match &e {
        instant_acme::Error::Other(inner)
            if inner.to_string().contains("replaces field mismatch") =>
        {
            instant_acme::Error::Unsupported("`replaces` in new orders")
        }
        instant_acme::Error::Api(p) if problem_kind(p) == "alreadyReplaced" => {
            instant_acme::Error::Unsupported("`replaces` for a certificate already replaced")
        }
        _ => e,
    }
}

/// Maps an instant-acme error to ours; `retry_after` is the last remembered `Retry-After`.
fn map_acme(e: instant_acme::Error, retry_after: Option<Duration>) -> IssuerError {
    use instant_acme::Error as E;
    match e {
        E::Api(p) => {
            let detail = p.to_string();
            match problem_kind(&p) {
                "rateLimited" => IssuerError::RateLimited {
                    retry_after,
                    detail,
                },
                "badNonce" => IssuerError::Network(format!("{detail} (retried)")),
                "serverInternal" => IssuerError::Server(detail),
                "unauthorized"
                | "accountDoesNotExist"
                | "externalAccountRequired"
                | "userActionRequired" => IssuerError::Unauthorized(detail),
                "rejectedIdentifier" | "unsupportedIdentifier" | "caa" | "invalidProfile" => {
                    IssuerError::NotAllowed(detail)
                }
                "badCSR" => IssuerError::BadCsr(detail),
                "alreadyRevoked" => IssuerError::AlreadyRevoked(detail),
                // A CA that refuses a name in an order says so as `malformed` (Pebble,
                // Boulder for syntax) or `rejectedIdentifier` (policy): either way, not ours.
                "malformed" if detail.contains("identifier") => IssuerError::NotAllowed(detail),
                "malformed" | "badRevocationReason" | "badSignatureAlgorithm" | "badPublicKey" => {
                    IssuerError::BadRequest(detail)
                }
                _ => match p.status {
                    Some(429) => IssuerError::RateLimited {
                        retry_after,
                        detail,
                    },
                    Some(s) if s >= 500 => IssuerError::Server(detail),
                    _ => IssuerError::Protocol(detail),
                },
            }
        }
        E::Timeout(_) => IssuerError::Timeout("the ACME order did not complete in time".into()),
        E::Unsupported(what) => {
            IssuerError::Unsupported(format!("the ACME server does not offer {what}"))
        }
        E::Hyper(e) => IssuerError::Network(e.to_string()),
        E::Other(e) => match e.downcast_ref::<Failure>() {
            Some(f) => f.clone().into(),
            None => IssuerError::Network(e.to_string()),
        },
        E::Http(e) => IssuerError::Protocol(e.to_string()),
        E::InvalidUri(e) => IssuerError::Protocol(format!("invalid URL from the server: {e}")),
        E::Json(e) => IssuerError::Protocol(format!("unreadable answer: {e}")),
        other => IssuerError::Protocol(other.to_string()),
    }
}

fn is_bad_nonce(e: &instant_acme::Error) -> bool {
    matches!(e, instant_acme::Error::Api(p) if problem_kind(p) == "badNonce")
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> IssuerError + '_ {
    move |source| IssuerError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl AcmeIssuer {
    /// Builds the adapter. Nothing is contacted until the first request.
    pub fn new(
        id: &str,
        cfg: AcmeConfig,
        storage: Arc<dyn IssuerStorage>,
    ) -> Result<Self, IssuerError> {
        let config_err = |field: &str, message: String| IssuerError::Config {
            issuer: id.to_string(),
            field: field.to_string(),
            message,
        };
        let builder = match &cfg.trust_root {
            Some(path) => {
                let pem = std::fs::read(path).map_err(io(path))?;
                let mut roots = rustls::RootCertStore::empty();
                let certs = inspect::read_certificates(&pem)
                    .map_err(|e| config_err("trust_root", format!("{}: {e}", path.display())))?;
                for der in certs {
                    roots.add(CertificateDer::from(der)).map_err(|e| {
                        config_err("trust_root", format!("{}: {e}", path.display()))
                    })?;
                }
                let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
                    rustls::crypto::aws_lc_rs::default_provider(),
                ))
                .with_safe_default_protocol_versions()
                .map_err(|e| IssuerError::Crypto(e.to_string()))?
                .with_root_certificates(roots)
                .with_no_client_auth();
                HttpsConnectorBuilder::new().with_tls_config(tls)
            }
            None => HttpsConnectorBuilder::new()
                .try_with_platform_verifier()
                .map_err(|e| IssuerError::Crypto(e.to_string()))?,
        };
        // Plain HTTP only when the directory itself is configured as http:// (a local CA).
        // Without TCP_NODELAY, small JWS POSTs stall ~40 ms on delayed ACKs.
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(Some(cfg.connect_timeout));
        let connector = if cfg.directory.starts_with("http://") {
            builder
                .https_or_http()
                .enable_http1()
                .enable_http2()
                .wrap_connector(tcp)
        } else {
            builder
                .https_only()
                .enable_http1()
                .enable_http2()
                .wrap_connector(tcp)
        };
        let connector = TimedConnector {
            inner: connector,
            limit: cfg.connect_timeout,
        };
        Ok(Self {
            id: id.to_string(),
            transport: Transport {
                client: HyperClient::builder(TokioExecutor::new()).build(connector),
                retry_after: Arc::default(),
                answer_limit: cfg.timeout,
                connect_limit: cfg.connect_timeout,
                trust_root: cfg.trust_root.clone(),
            },
            cfg,
            storage,
            account: OnceCell::new(),
            responder: OnceCell::new(),
        })
    }

    /// Runs one call of the issuer within its `timeout_secs`: a CA that stalls fails the
    /// call at the limit (a timeout, which the case's back-off may try again).
    async fn within<T>(
        &self,
        what: &str,
        call: impl Future<Output = Result<T, IssuerError>>,
    ) -> Result<T, IssuerError> {
        tokio::time::timeout(self.cfg.timeout, call)
            .await
            .unwrap_or_else(|_| {
                Err(IssuerError::Timeout(format!(
                    "{what} at `{}` did not complete within {} s; `timeout_secs` sets the limit",
                    self.id,
                    self.cfg.timeout.as_secs()
                )))
            })
    }

    fn take_retry_after(&self) -> Option<Duration> {
        self.transport
            .retry_after
            .lock()
            .ok()
            .and_then(|mut s| s.take())
    }

    fn map(&self, e: instant_acme::Error) -> IssuerError {
        map_acme(e, self.take_retry_after())
    }

    /// Runs `op` until it succeeds, retrying what can succeed later (bad nonce, rate limits,
    /// server and network errors) with exponential backoff, within the configured timeout.
    async fn retrying<T, F, Fut>(&self, what: &str, mut op: F) -> Result<T, IssuerError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, instant_acme::Error>>,
    {
        let deadline = Instant::now() + self.cfg.timeout;
        let mut delay = Duration::from_millis(250);
        for attempt in 1u32.. {
            let e = match op().await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            let nonce = is_bad_nonce(&e);
            let err = self.map(e);
            let wait = match &err {
                IssuerError::RateLimited {
                    retry_after: Some(d),
                    ..
                } => *d,
                _ => delay,
            };
            if !(nonce || err.is_retryable()) || attempt >= 5 || Instant::now() + wait > deadline {
                return Err(err);
            }
            tracing::warn!(issuer = %self.id, step = what, attempt, error = %err, "retrying");
            tokio::time::sleep(wait).await;
            delay = (delay * 2).min(Duration::from_secs(30));
        }
        Err(IssuerError::Timeout(what.to_string()))
    }

    fn builder(&self) -> instant_acme::AccountBuilder {
        Account::builder_with_http(Box::new(self.transport.clone()))
    }

    fn load_credentials(&self) -> Result<Option<AccountCredentials>, IssuerError> {
        let raw = match &self.cfg.account_file {
            Some(p) if p.exists() => Some(std::fs::read(p).map_err(io(p))?),
            Some(_) => None,
            None => self.storage.get("account")?,
        };
        raw.map(|r| {
            serde_json::from_slice(&r).map_err(|e| IssuerError::BadState {
                path: self
                    .cfg
                    .account_file
                    .clone()
                    .unwrap_or_else(|| "account".into()),
                reason: format!("unreadable ACME account credentials: {e}"),
            })
        })
        .transpose()
    }

    fn save_credentials(&self, creds: &AccountCredentials) -> Result<(), IssuerError> {
        let bytes = serde_json::to_vec(creds).map_err(|e| IssuerError::Storage(e.to_string()))?;
        match &self.cfg.account_file {
            Some(p) => {
                if let Some(dir) = p.parent() {
                    create_dir_with_mode(dir, 0o700).map_err(io(dir))?;
                }
                write_atomic(p, &bytes, 0o600).map_err(io(p))
            }
            None => self.storage.put("account", &bytes),
        }
    }

    /// The account, created on first use.
    async fn account(&self) -> Result<&Account, IssuerError> {
        self.account
            .get_or_try_init(|| async {
                if let Some(creds) = self.load_credentials()? {
                    return self
                        .builder()
                        .from_credentials(creds)
                        .await
                        .map_err(|e| self.map(e));
                }
                let eab = match &self.cfg.eab {
                    Some((kid, path)) => {
                        let text = std::fs::read_to_string(path).map_err(io(path))?;
                        let key = base64::Engine::decode(
                            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                            text.trim().trim_end_matches('='),
                        )
                        .map_err(|e| IssuerError::Config {
                            issuer: self.id.clone(),
                            field: "eab_hmac_key_file".into(),
                            message: format!("{}: not base64url: {e}", path.display()),
                        })?;
                        Some(ExternalAccountKey::new(kid.clone(), &key))
                    }
                    None => None,
                };
                let contact: Vec<&str> = self.cfg.contact.iter().map(String::as_str).collect();
                let new = NewAccount {
                    contact: &contact,
                    terms_of_service_agreed: true,
                    only_return_existing: false,
                };
                let (account, creds) = self
                    .retrying("create account", || {
                        self.builder()
                            .create(&new, self.cfg.directory.clone(), eab.as_ref())
                    })
                    .await?;
                self.save_credentials(&creds)?;
                tracing::info!(issuer = %self.id, account = account.id(), "ACME account created");
                Ok(account)
            })
            .await
    }

    async fn responder(&self, addr: std::net::SocketAddr) -> Result<&Http01Responder, IssuerError> {
        self.responder
            .get_or_try_init(|| Http01Responder::start(addr))
            .await
    }

    /// Runs the dns-01 hook with `args` as every child runs ([`crate::process::run`]): a
    /// clean environment, its own process group killed whole past the issuer's timeout,
    /// stdout discarded and the end of stderr kept.
    async fn run_hook(&self, hook: &Path, args: &[&str]) -> Result<(), IssuerError> {
        let mut cmd = crate::process::clean_command(hook);
        cmd.args(args);
        let described = hook.display().to_string();
        let outcome = crate::process::run(cmd, &described, self.cfg.timeout)
            .await
            .map_err(io(hook))?;
        if outcome.timed_out {
            return Err(IssuerError::Timeout(format!(
                "dns-01 hook {described} gave no answer within {} s and was killed; stderr: {}",
                self.cfg.timeout.as_secs(),
                outcome.stderr
            )));
        }
        if !outcome.success() {
            return Err(IssuerError::Command {
                status: outcome.ended(),
                stderr: outcome.stderr,
            });
        }
        Ok(())
    }

    async fn provision(
        &self,
        name: &str,
        token: &str,
        ka: &instant_acme::KeyAuthorization,
    ) -> Result<Provisioned, IssuerError> {
        match &self.cfg.challenge {
            Challenge::Http01Listen(addr) => {
                check_token(token)?;
                self.responder(*addr).await?.add(token, ka.as_str());
                Ok(Provisioned::Token(token.to_string()))
            }
            Challenge::Http01Webroot(root) => {
                let path = challenge_path(root, token)?;
                // The web server reads them: world-readable whatever the umask.
                for dir in [
                    root.join(".well-known"),
                    root.join(".well-known/acme-challenge"),
                ] {
                    create_dir_with_mode(&dir, 0o755).map_err(io(&dir))?;
                }
                write_atomic(&path, ka.as_str().as_bytes(), 0o644).map_err(io(&path))?;
                Ok(Provisioned::File(path))
            }
            Challenge::Dns01Hook(hook) => {
                let record = format!("_acme-challenge.{}", name.trim_start_matches("*."));
                let value = ka.dns_value();
                self.run_hook(hook, &["set", &record, &value]).await?;
                Ok(Provisioned::Dns(record, value))
            }
        }
    }

    async fn unprovision(&self, items: Vec<Provisioned>) {
        for item in items {
            match item {
                Provisioned::Token(t) => {
                    if let Some(r) = self.responder.get() {
                        r.remove(&t);
                    }
                }
                Provisioned::File(p) => {
                    let _ = std::fs::remove_file(p);
                }
                Provisioned::Dns(record, value) => {
                    if let Challenge::Dns01Hook(hook) = &self.cfg.challenge
                        && let Err(e) = self.run_hook(hook, &["clear", &record, &value]).await
                    {
                        tracing::warn!(issuer = %self.id, error = %e, "dns-01 clean-up failed");
                    }
                }
            }
        }
    }

    async fn order(
        &self,
        req: &IssueRequest,
        ids: &[instant_acme::Identifier],
    ) -> Result<String, IssuerError> {
        let account = self.account().await?;
        let profile = req.profile.as_deref().or(self.cfg.profile.as_deref());
        let replaces = req
            .replaces
            .as_deref()
            .map(|der| CertificateIdentifier::try_from(&CertificateDer::from(der)))
            .transpose()
            .ok()
            .flatten();
        let make = || {
            let o = NewOrder::new(ids);
            match profile {
                Some(p) => o.profile(p),
                None => o,
            }
        };
        let plain = make();
        let new_order = match replaces {
            Some(r) => make().replaces(r),
            None => make(),
        };
        let mut order = match self
            .retrying("new order", || async {
                account
                    .new_order(&new_order)
                    .await
                    .map_err(replaces_refused)
            })
            .await
        {
            Err(IssuerError::Unsupported(why)) if req.replaces.is_some() => {
                // The directory has no renewalInfo, the CA did not take `replaces` (it did
                // not echo it back), or the certificate was already replaced: order without.
                tracing::warn!(issuer = %self.id, reason = %why, "ordering without `replaces`");
                self.retrying("new order", || account.new_order(&plain))
                    .await?
            }
            other => other?,
        };
        // The order's URL is kept under the request's id before anything can be issued, so
        // that a retry or a resume fetches this order instead of placing another.
        if let Some(id) = &req.request_id {
            self.storage.put(&request_key(id), order.url().as_bytes())?;
        }
        let ty = match self.cfg.challenge {
            Challenge::Dns01Hook(_) => ChallengeType::Dns01,
            _ => ChallengeType::Http01,
        };
        let mut provisioned = Vec::new();
        let result: Result<String, IssuerError> = async {
            let mut authzs = order.authorizations();
            while let Some(authz) = authzs.next().await {
                let mut authz = authz.map_err(|e| self.map(e))?;
                match authz.status {
                    AuthorizationStatus::Pending => {}
                    AuthorizationStatus::Valid => continue,
                    other => {
                        return Err(IssuerError::Protocol(format!(
                            "an authorization is {other:?}"
                        )));
                    }
                }
                let wildcard = authz.wildcard;
                let mut challenge = authz.challenge(ty.clone()).ok_or_else(|| {
                    let name = if ty == ChallengeType::Dns01 {
                        "dns-01"
                    } else {
                        "http-01"
                    };
                    let hint = if wildcard {
                        " (a wildcard name needs dns-01)"
                    } else {
                        ""
                    };
                    IssuerError::Unsupported(format!(
                        "the CA offers no {name} challenge for this name{hint}"
                    ))
                })?;
                let name = match challenge.identifier().identifier {
                    instant_acme::Identifier::Dns(d) => d.clone(),
                    other => format!("{other:?}"),
                };
                let ka = challenge.key_authorization();
                provisioned.push(self.provision(&name, &challenge.token, &ka).await?);
                challenge.set_ready().await.map_err(|e| self.map(e))?;
            }
            let policy = RetryPolicy::new()
                .initial_delay(Duration::from_millis(15))
                .backoff(1.5)
                .timeout(self.cfg.timeout);
            let status = order.poll_ready(&policy).await.map_err(|e| self.map(e))?;
            if status != OrderStatus::Ready {
                let state = order.refresh().await.map_err(|e| self.map(e))?;
                let why = state.error.clone();
                return Err(match why {
                    Some(p) => map_acme(instant_acme::Error::Api(p), None),
                    None => IssuerError::Protocol(format!("the order is {status:?}, not ready")),
                });
            }
            order
                .finalize_csr(&req.csr_der)
                .await
                .map_err(|e| self.map(e))?;
            order
                .poll_certificate(&policy)
                .await
                .map_err(|e| self.map(e))
        }
        .await;
        self.unprovision(provisioned).await;
        result
    }

    /// The chain a finalized order returned, checked and kept (so that status checks can
    /// verify the issuer's CRL signature).
    fn issued(&self, pem: &str) -> Result<IssuedChain, IssuerError> {
        let ders = inspect::read_certificates(pem.as_bytes())
            .map_err(|e| IssuerError::Protocol(format!("the CA's chain: {e}")))?;
        let (leaf, rest) = ders
            .split_first()
            .ok_or_else(|| IssuerError::Protocol("the CA returned no certificate".into()))?;
        let info = inspect::inspect_certificate_der(leaf)
            .map_err(|e| IssuerError::Protocol(format!("the CA's certificate: {e}")))?;
        let chain = IssuedChain {
            leaf_pem: encode_pem("CERTIFICATE", leaf),
            chain_pem: rest.iter().map(|d| encode_pem("CERTIFICATE", d)).collect(),
        };
        // Kept so that status checks can verify the issuer's CRL signature.
        self.storage.put(
            &format!("issued/{}", info.serial),
            chain.fullchain_pem().as_bytes(),
        )?;
        tracing::info!(issuer = %self.id, serial = %info.serial, "issued");
        Ok(chain)
    }

    /// The directory document.
    async fn directory(&self) -> Result<Value, IssuerError> {
        let (_, body) = self
            .http(Method::GET, &self.cfg.directory, None, MAX_ANSWER)
            .await?;
        serde_json::from_slice(&body).map_err(|e| IssuerError::Protocol(format!("directory: {e}")))
    }

    async fn http(
        &self,
        method: Method,
        url: &str,
        body: Option<String>,
        limit: usize,
    ) -> Result<(http::response::Parts, Bytes), IssuerError> {
        let mut req = Request::builder()
            .method(method)
            .uri(url)
            .header(header::USER_AGENT, "certresponder");
        if body.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/jose+json");
        }
        let req = req
            .body(BodyWrapper::from(
                body.map(String::into_bytes).unwrap_or_default(),
            ))
            .map_err(|e| IssuerError::Protocol(e.to_string()))?;
        Ok(self.transport.exchange(req, limit).await?)
    }

    /// Revocation signed by the certificate's own key (RFC 8555 §7.6, `jwk` header).
    async fn revoke_with_certificate_key(
        &self,
        der: &[u8],
        reason: RevocationReason,
        key_pem: &str,
    ) -> Result<(), IssuerError> {
        let signer = CertKeySigner::from_pem(key_pem)?;
        let info = inspect::inspect_certificate_der(der)
            .map_err(|e| IssuerError::BadRequest(e.to_string()))?;
        let key = inspect::read_private_key(key_pem.as_bytes())
            .map_err(|e| IssuerError::BadRequest(e.to_string()))?;
        if !key.public.same_public_key(&info.key) {
            return Err(IssuerError::BadRequest(
                "the key given is not the certificate's key".into(),
            ));
        }
        let dir = self.directory().await?;
        let url_of = |k: &str| {
            dir.get(k)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| IssuerError::Protocol(format!("the directory has no `{k}`")))
        };
        let (nonce_url, revoke_url) = (url_of("newNonce")?, url_of("revokeCert")?);
        let payload = json!({
            "certificate": base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, der),
            "reason": reason.code(),
        });
        let nonce_of = |parts: &http::response::Parts| {
            parts
                .headers
                .get("replay-nonce")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let (parts, _) = self
            .http(Method::HEAD, &nonce_url, None, MAX_ANSWER)
            .await?;
        let mut nonce =
            nonce_of(&parts).ok_or_else(|| IssuerError::Protocol("no Replay-Nonce".into()))?;
        for attempt in 1..=5 {
            let body = signer.sign(&revoke_url, &nonce, &payload)?;
            let (parts, bytes) = self
                .http(Method::POST, &revoke_url, Some(body), MAX_ANSWER)
                .await?;
            if parts.status.is_success() {
                return Ok(());
            }
            let problem: Problem = serde_json::from_slice(&bytes).map_err(|_| {
                IssuerError::Protocol(format!(
                    "revokeCert answered {} without a problem document",
                    parts.status
                ))
            })?;
            if problem_kind(&problem) == "badNonce" && attempt < 5 {
                nonce = nonce_of(&parts)
                    .ok_or_else(|| IssuerError::Protocol("no Replay-Nonce".into()))?;
                continue;
            }
            return Err(map_acme(
                instant_acme::Error::Api(problem),
                parse_retry_after(&parts.headers),
            ));
        }
        Err(IssuerError::Network(
            "revokeCert: too many bad nonces".into(),
        ))
    }

    /// Fetches (or takes from the cache) the CRL at `url`, checked against `issuer_der`.
    async fn crl(&self, url: &str, issuer_der: &[u8]) -> Result<inspect::CrlInfo, IssuerError> {
        let key = format!("crl-cache/{url}");
        if let Some(cached) = self.storage.get(&key)?
            && let Ok(info) = inspect::inspect_crl_der(&cached)
            && info.next_update.is_some_and(|n| n > Utc::now())
            && inspect::crl_signed_by(&cached, issuer_der).unwrap_or(false)
        {
            return Ok(info);
        }
        let (parts, body) = self.http(Method::GET, url, None, MAX_CRL).await?;
        if !parts.status.is_success() {
            let what = format!("CRL {url}: HTTP {}", parts.status);
            // Asking again helps with a busy or failing server, or a CRL briefly missing
            // from a CDN, not with a request the server refuses.
            let passing = [
                StatusCode::TOO_MANY_REQUESTS,
                StatusCode::NOT_FOUND,
                StatusCode::REQUEST_TIMEOUT,
            ];
            return Err(
                if parts.status.is_client_error() && !passing.contains(&parts.status) {
                    IssuerError::Protocol(what)
                } else {
                    IssuerError::Network(what)
                },
            );
        }
        let der = inspect::read_crl(&body)
            .map_err(|e| IssuerError::Protocol(format!("CRL {url}: {e}")))?;
        let info = inspect::inspect_crl_der(&der)
            .map_err(|e| IssuerError::Protocol(format!("CRL {url}: {e}")))?;
        if !inspect::crl_signed_by(&der, issuer_der)
            .map_err(|e| IssuerError::Protocol(e.to_string()))?
        {
            return Err(IssuerError::Protocol(format!(
                "CRL {url}: the signature does not verify against the issuer"
            )));
        }
        self.storage.put(&key, &der)?;
        Ok(info)
    }
}

/// Refuses a challenge token that is not what RFC 8555 §8.1 allows (base64url, here 1 to
/// 128 characters): the CA's token becomes a file name in a web root and a URL path.
fn check_token(token: &str) -> Result<(), IssuerError> {
    let ok = (1..=128).contains(&token.len())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        let shown: String = token.chars().take(40).collect();
        Err(IssuerError::Protocol(format!(
            "the CA's http-01 token {shown:?} is not base64url (RFC 8555 §8.1); nothing was written"
        )))
    }
}

/// Where the key authorization for `token` goes under the web root `root`, once the token
/// is checked.
fn challenge_path(root: &Path, token: &str) -> Result<PathBuf, IssuerError> {
    check_token(token)?;
    Ok(root.join(".well-known/acme-challenge").join(token))
}

/// The storage key of a request's order URL.
fn request_key(id: &str) -> String {
    format!("request/{id}")
}

fn acme_reason(r: RevocationReason) -> instant_acme::RevocationReason {
    use instant_acme::RevocationReason as R;
    match r {
        RevocationReason::Unspecified => R::Unspecified,
        RevocationReason::KeyCompromise => R::KeyCompromise,
        RevocationReason::CaCompromise => R::CaCompromise,
        RevocationReason::AffiliationChanged => R::AffiliationChanged,
        RevocationReason::Superseded => R::Superseded,
        RevocationReason::CessationOfOperation => R::CessationOfOperation,
        RevocationReason::CertificateHold => R::CertificateHold,
        RevocationReason::RemoveFromCrl => R::RemoveFromCrl,
        RevocationReason::PrivilegeWithdrawn => R::PrivilegeWithdrawn,
        RevocationReason::AaCompromise => R::AaCompromise,
    }
}

#[async_trait]
impl Issuer for AcmeIssuer {
    fn id(&self) -> &str {
        &self.id
    }

    async fn issue(&self, req: &IssueRequest) -> Result<IssuedChain, IssuerError> {
        let csr = inspect::inspect_csr_der(&req.csr_der)
            .map_err(|e| IssuerError::BadCsr(e.to_string()))?;
        if !csr.signature_valid {
            return Err(IssuerError::BadCsr(
                "the CSR's signature does not verify".into(),
            ));
        }
        let mut from_csr: Vec<Identifier> = csr
            .dns_names
            .iter()
            .map(|d| Identifier::Dns(d.to_ascii_lowercase()))
            .collect();
        from_csr.extend(csr.ip_addresses.iter().map(|ip| Identifier::Ip(*ip)));
        let wanted = if req.identifiers.is_empty() {
            from_csr.clone()
        } else {
            req.identifiers.clone()
        };
        let norm = |v: &[Identifier]| {
            let mut s: Vec<String> = v
                .iter()
                .map(|i| i.to_string().to_ascii_lowercase())
                .collect();
            s.sort();
            s
        };
        if norm(&wanted) != norm(&from_csr) || wanted.is_empty() {
            return Err(IssuerError::BadCsr(format!(
                "the CSR names {:?} but the request asks for {:?}",
                norm(&from_csr),
                norm(&wanted)
            )));
        }
        let ids: Vec<instant_acme::Identifier> = wanted
            .iter()
            .map(|i| match i {
                Identifier::Dns(d) => instant_acme::Identifier::Dns(d.clone()),
                Identifier::Ip(ip) => instant_acme::Identifier::Ip(*ip),
            })
            .collect();
        let pem = self.within("the order", self.order(req, &ids)).await?;
        self.issued(&pem)
    }

    async fn lookup(&self, req: &IssueRequest) -> Result<Option<IssuedChain>, IssuerError> {
        self.within("looking up an earlier order", async {
            let Some(id) = &req.request_id else {
                return Ok(None);
            };
            let Some(url) = self.storage.get(&request_key(id))? else {
                return Ok(None);
            };
            let url = String::from_utf8(url).map_err(|_| IssuerError::BadState {
                path: PathBuf::from(request_key(id)),
                reason: "the order URL is not UTF-8".into(),
            })?;
            let account = self.account().await?;
            let mut order = self
                .retrying("fetch order", || account.order(url.clone()))
                .await?;
            let policy = RetryPolicy::new()
                .initial_delay(Duration::from_millis(15))
                .backoff(1.5)
                .timeout(self.cfg.timeout);
            let status = order.state().status;
            tracing::info!(issuer = %self.id, request = %id, order = %url, ?status, "an earlier order of this request");
            let pem = match status {
                // Finalized: the certificate is (or is being) issued; fetch it.
                OrderStatus::Valid | OrderStatus::Processing => order.poll_certificate(&policy).await,
                // Validated but not finalized: finalize it with the same CSR.
                OrderStatus::Ready => match order.finalize_csr(&req.csr_der).await {
                    Ok(()) => order.poll_certificate(&policy).await,
                    Err(e) => Err(e),
                },
                // Nothing was or will be issued for it: ordering again is safe.
                OrderStatus::Pending | OrderStatus::Invalid => return Ok(None),
            }
            .map_err(|e| self.map(e))?;
            self.issued(&pem).map(Some)
        })
        .await
    }

    async fn revoke(&self, req: &RevokeRequest) -> Result<(), IssuerError> {
        self.within("the revocation", async {
            inspect::inspect_certificate_der(&req.certificate_der)
                .map_err(|e| IssuerError::BadRequest(e.to_string()))?;
            if let Some(key) = &req.certificate_key {
                return self
                    .revoke_with_certificate_key(&req.certificate_der, req.reason, key.expose())
                    .await;
            }
            let account = self.account().await?;
            let cert = CertificateDer::from(req.certificate_der.as_slice());
            let request = RevocationRequest {
                certificate: &cert,
                reason: Some(acme_reason(req.reason)),
            };
            self.retrying("revoke", || account.revoke(&request)).await
        })
        .await
    }

    async fn status(&self, certificate_der: &[u8]) -> Result<CertStatus, IssuerError> {
        self.within("the status query", async {
            let info = inspect::inspect_certificate_der(certificate_der)
                .map_err(|e| IssuerError::BadRequest(e.to_string()))?;
            if info.crl_urls.is_empty() {
                return Ok(CertStatus::Unknown {
                    why: if info.ocsp_urls.is_empty() {
                        "the certificate names no CRL distribution point or OCSP responder".into()
                    } else {
                        "the certificate names only an OCSP responder, which certresponder does not query".into()
                    },
                });
            }
            let issuer_der = self
                .storage
                .get(&format!("issued/{}", info.serial))?
                .and_then(|pem| inspect::read_certificates(&pem).ok())
                .and_then(|mut v| (v.len() > 1).then(|| v.swap_remove(1)));
            let Some(issuer_der) = issuer_der else {
                return Ok(CertStatus::Unknown {
                    why: "the issuing certificate is unknown, so its CRL cannot be checked".into(),
                });
            };
            let mut last_err = None;
            for url in &info.crl_urls {
                match self.crl(url, &issuer_der).await {
                    Ok(crl) => {
                        return Ok(match crl.find(&info.serial) {
                            Some(r) => CertStatus::Revoked {
                                reason: r.reason_code.and_then(RevocationReason::from_code),
                                revoked_at: r.revoked_at,
                            },
                            None => CertStatus::Good,
                        });
                    }
                    Err(e) => last_err = Some(e),
                }
            }
            Err(last_err.unwrap_or_else(|| IssuerError::Protocol("no CRL".into())))
        })
        .await
    }

    async fn renewal_info(
        &self,
        certificate_der: &[u8],
    ) -> Result<Option<RenewalWindow>, IssuerError> {
        self.within("the renewal information query", async {
            inspect::inspect_certificate_der(certificate_der)
                .map_err(|e| IssuerError::BadRequest(e.to_string()))?;
            let cert = CertificateDer::from(certificate_der);
            let id = CertificateIdentifier::try_from(&cert).map_err(|e| {
                IssuerError::BadRequest(format!(
                    "no ARI certificate id (the certificate needs an AKI): {e}"
                ))
            })?;
            let account = self.account().await?;
            let (info, retry) = self
                .retrying("renewal info", || account.renewal_info(&id))
                .await?;
            let t = |o: time::OffsetDateTime| {
                DateTime::from_timestamp(o.unix_timestamp(), 0).unwrap_or_default()
            };
            Ok(Some(RenewalWindow {
                start: t(info.suggested_window.start),
                end: t(info.suggested_window.end),
                explanation_url: info.explanation_url,
                retry_after: retry,
            }))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_tokens_stay_in_the_web_root() {
        let root = Path::new("/var/www/html");
        assert_eq!(
            challenge_path(root, "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0").unwrap(),
            root.join(".well-known/acme-challenge/LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0")
        );
        for bad in [
            "../../etc/cron.d/x",
            "a/b",
            "",
            ".hidden",
            "tok en",
            &"a".repeat(129),
        ] {
            let e = challenge_path(root, bad).unwrap_err().to_string();
            assert!(e.contains("not base64url"), "{bad:?}: {e}");
        }
    }
}
