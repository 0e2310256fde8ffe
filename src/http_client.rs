//! The outbound HTTP(S) client shared by everything that talks HTTP: webhook notifications
//! (`notify::webhook`) and CRL fetches (`signals::ca::crl`). HTTPS is verified against the
//! platform's roots (rustls with aws-lc-rs); plain HTTP is plain hyper. Callers apply their
//! own timeouts and body limits.

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
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
