//! The outbound HTTP(S) client shared by everything that talks HTTP: webhook notifications
//! (`notify::webhook`), CRL and OCSP requests (`signals::ca`) and CT logs (`ct`). HTTPS is
//! verified against the platform's roots (rustls with aws-lc-rs); plain HTTP is plain hyper.
//! [`HttpClient::exchange`] bounds an exchange's time and body size; callers name the URL
//! in their own errors.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

type TlsClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;
type PlainClient = Client<HttpConnector, Full<Bytes>>;

/// Why a request got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// TLS could not be set up (no usable roots), so HTTPS requests cannot be made.
    #[error("cannot set up TLS: {0}")]
    Tls(String),
    /// Connecting, sending or receiving the answer's head failed; the error with its causes.
    #[error("{0}")]
    Request(String),
}

/// An HTTPS client verified against the platform's roots and a plain HTTP client; requests
/// go to one or the other by the URL's scheme. Cloning is cheap and shares connections.
#[derive(Clone)]
pub struct HttpClient {
    tls: Result<TlsClient, String>,
    plain: PlainClient,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient").finish_non_exhaustive()
    }
}

impl HttpClient {
    /// Builds the clients. Should TLS not be set up (no usable roots), HTTPS requests fail
    /// with that error while HTTP still works.
    pub fn new() -> Self {
        // Without TCP_NODELAY, small requests can stall on delayed ACKs.
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        let tls = HttpsConnectorBuilder::new()
            .with_provider_and_platform_verifier(rustls::crypto::aws_lc_rs::default_provider())
            .map(|b| {
                let connector = b.https_only().enable_http1().wrap_connector(tcp.clone());
                Client::builder(TokioExecutor::new()).build(connector)
            })
            .map_err(|e| format!("{e}"));
        let mut plain_tcp = HttpConnector::new();
        plain_tcp.set_nodelay(true);
        Self {
            tls,
            plain: Client::builder(TokioExecutor::new()).build(plain_tcp),
        }
    }

    /// Sends `req` over HTTPS when its URL says `https`, else over plain HTTP (which refuses
    /// any scheme but `http`). Returns once the answer's head has arrived; no timeout.
    pub async fn request(
        &self,
        req: Request<Full<Bytes>>,
    ) -> Result<Response<Incoming>, HttpError> {
        let sent = if req.uri().scheme_str() == Some("https") {
            let client = self.tls.as_ref().map_err(|e| HttpError::Tls(e.clone()))?;
            client.request(req).await
        } else {
            self.plain.request(req).await
        };
        sent.map_err(|e| HttpError::Request(error_chain(&e)))
    }
}

/// An answer read by [`HttpClient::exchange`].
#[derive(Debug)]
pub struct Answer {
    /// Its status.
    pub status: StatusCode,
    /// Its headers.
    pub headers: HeaderMap,
    /// Its body, read only for a 2xx status (empty otherwise).
    pub body: Bytes,
}

/// Why an exchange got no usable answer. The caller adds the URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExchangeError {
    /// The request could not be sent or the answer not read; the error with its causes.
    #[error("cannot fetch: {0}")]
    Fetch(String),
    /// The whole exchange took longer than allowed.
    #[error("no complete answer within {0:?}")]
    Timeout(Duration),
    /// The body is larger than the limit (declared or read).
    #[error("larger than the {0}-byte limit")]
    TooLarge(usize),
}

impl HttpClient {
    /// Sends `req` and, for a 2xx answer, reads its body up to `limit` bytes, all within
    /// `timeout`. A non-2xx answer is returned with its status and headers, unread.
    pub async fn exchange(
        &self,
        req: Request<Full<Bytes>>,
        limit: usize,
        timeout: Duration,
    ) -> Result<Answer, ExchangeError> {
        let work = async {
            let rsp = self
                .request(req)
                .await
                .map_err(|e| ExchangeError::Fetch(e.to_string()))?;
            let status = rsp.status();
            let headers = rsp.headers().clone();
            if !status.is_success() {
                return Ok(Answer {
                    status,
                    headers,
                    body: Bytes::new(),
                });
            }
            let declared = headers
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if declared.is_some_and(|n| n > limit as u64) {
                return Err(ExchangeError::TooLarge(limit));
            }
            let body = Limited::new(rsp.into_body(), limit)
                .collect()
                .await
                .map(http_body_util::Collected::to_bytes)
                .map_err(|e| {
                    if e.downcast_ref::<LengthLimitError>().is_some() {
                        ExchangeError::TooLarge(limit)
                    } else {
                        ExchangeError::Fetch(format!("reading the answer: {}", error_chain(&*e)))
                    }
                })?;
            Ok(Answer {
                status,
                headers,
                body,
            })
        };
        tokio::time::timeout(timeout, work)
            .await
            .map_err(|_| ExchangeError::Timeout(timeout))?
    }
}

/// A request from certresponder: `method` to `uri` with `body`, its user agent and
/// `headers`.
pub fn request(
    method: http::Method,
    uri: http::Uri,
    headers: &[(header::HeaderName, &str)],
    body: Bytes,
) -> Result<Request<Full<Bytes>>, ExchangeError> {
    let mut b = Request::builder().method(method).uri(uri).header(
        header::USER_AGENT,
        concat!("certresponder/", env!("CARGO_PKG_VERSION")),
    );
    for (k, v) in headers {
        b = b.header(k, *v);
    }
    b.body(Full::new(body))
        .map_err(|e| ExchangeError::Fetch(format!("cannot build the request: {e}")))
}

impl Default for HttpClient {
    fn default() -> Self {
        Self::new()
    }
}

/// An error with its causes, `: `-separated (the client's own message alone says little).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}
