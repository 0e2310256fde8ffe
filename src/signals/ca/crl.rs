//! Certificate revocation lists for the `revoked_at_ca` detector: fetched from a
//! certificate's CRL distribution point over HTTP or HTTPS, checked against the issuing CA
//! certificate (signature and issuer name, RFC 5280 §6.3.3) and cached in the store until
//! their nextUpdate (RFC 5280 §5.1.2.5).
//!
//! A CRL that does not verify is never used nor cached. One whose nextUpdate has passed is
//! still returned (the revocations it lists remain facts) but not cached. Redirects are not
//! followed: CRL distribution points are expected to serve the CRL itself.

use std::time::Duration;

use bytes::Bytes;
use certresponder_inventory::inspect::{
    CrlInfo, crl_signed_by, inspect_certificate_der, inspect_crl_der, read_crl,
};
use chrono::{DateTime, Utc};
use http::{Method, Uri, header};
use sha2::{Digest, Sha256};

use crate::http_client::{ExchangeError, HttpClient};
use crate::store::{Store, StoreError};

/// The largest CRL read, in bytes. Real CRLs of large public CAs stay well below this.
pub const MAX_CRL_BYTES: usize = 32 * 1024 * 1024;

/// Why a CRL could not be had. Every message names the CRL's URL.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CrlError {
    /// The distribution point uses a scheme other than `http` or `https` (such as `ldap`).
    #[error(
        "CRL {url}: the `{scheme}` scheme is not supported; only http and https CRLs are fetched"
    )]
    UnsupportedScheme {
        /// The CRL's URL.
        url: String,
        /// Its scheme.
        scheme: String,
    },
    /// The URL cannot be parsed.
    #[error("CRL {url}: not a valid URL: {reason}")]
    BadUrl {
        /// The CRL's URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// No answer: the connection, TLS or the transfer failed.
    #[error("CRL {url}: cannot fetch: {reason}")]
    Fetch {
        /// The CRL's URL.
        url: String,
        /// The error with its causes.
        reason: String,
    },
    /// The whole request (connect to last body byte) took longer than allowed.
    #[error("CRL {url}: no complete answer within {timeout:?}")]
    Timeout {
        /// The CRL's URL.
        url: String,
        /// The time allowed.
        timeout: Duration,
    },
    /// The server answered with a status other than 2xx. Redirects (3xx) are not followed.
    #[error("CRL {url}: the server answered HTTP {status}{}", redirect_note(*.status, .location.as_deref()))]
    Status {
        /// The CRL's URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The `Location` of a redirect.
        location: Option<String>,
    },
    /// The CRL is larger than the limit.
    #[error("CRL {url}: larger than the {limit}-byte limit")]
    TooLarge {
        /// The CRL's URL.
        url: String,
        /// The limit, in bytes.
        limit: usize,
    },
    /// The answer is not a CRL in PEM or DER.
    #[error("CRL {url}: the answer is not a CRL: {reason}")]
    Unparseable {
        /// The CRL's URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The issuing CA certificate given to check the CRL against cannot be read.
    #[error("CRL {url}: the issuing CA certificate cannot be read: {reason}")]
    BadIssuer {
        /// The CRL's URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The CRL's signature does not verify against the issuing CA's key.
    #[error(
        "CRL {url}: rejected, not trusted: its signature does not verify against the issuing CA certificate `{ca_subject}`"
    )]
    BadSignature {
        /// The CRL's URL.
        url: String,
        /// The subject of the CA certificate it was checked against.
        ca_subject: String,
    },
    /// The CRL is signed by the CA's key but names another issuer.
    #[error(
        "CRL {url}: rejected, not trusted: issued by `{crl_issuer}`, not by the issuing CA `{ca_subject}`"
    )]
    IssuerMismatch {
        /// The CRL's URL.
        url: String,
        /// The issuer named in the CRL.
        crl_issuer: String,
        /// The subject of the CA certificate.
        ca_subject: String,
    },
    /// Reading or writing the cache failed.
    #[error("CRL {url}: the cache in the store failed: {source}")]
    Store {
        /// The CRL's URL.
        url: String,
        /// The store's error.
        source: StoreError,
    },
}

fn redirect_note(status: u16, location: Option<&str>) -> String {
    if !(300..400).contains(&status) {
        return String::new();
    }
    match location {
        Some(to) => format!(", a redirect to {to}, which is not followed"),
        None => ", a redirect, which is not followed".into(),
    }
}

/// A CRL that verified against its issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// What the CRL says.
    pub info: CrlInfo,
    /// Whether it came from the store's cache rather than the network.
    pub from_cache: bool,
}

/// Fetches CRLs over HTTP or HTTPS, checks each against its issuer, caches them in the store.
/// Asks OCSP responders the same way (see [`super::ocsp`]).
#[derive(Debug, Clone)]
pub struct CrlFetcher {
    http: HttpClient,
    timeout: Duration,
    limit: usize,
}

impl CrlFetcher {
    /// A fetcher whose requests time out after `timeout` (whole request, connect to body).
    pub fn new(timeout: Duration) -> Self {
        Self {
            http: HttpClient::new(),
            timeout,
            limit: MAX_CRL_BYTES,
        }
    }

    /// The HTTP client its requests go through.
    pub(super) fn http(&self) -> &HttpClient {
        &self.http
    }

    /// How long one request may take.
    pub(super) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The CRL at `url`, signed by the CA certificate `issuer_der` (DER). A cached copy is
    /// used while `now` is before its nextUpdate and it verifies against `issuer_der`;
    /// otherwise it is fetched, parsed (PEM or DER), checked and, if good, cached.
    pub async fn get(
        &self,
        store: &dyn Store,
        url: &str,
        issuer_der: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Fetched, CrlError> {
        let uri = check_url(url)?;
        let key = cache_key(url);
        let store_err = |source| CrlError::Store {
            url: url.to_owned(),
            source,
        };
        if let Some(cached) = store.get_blob(&key).map_err(store_err)? {
            match verify(url, &cached, issuer_der) {
                Ok(info) if info.next_update.is_some_and(|n| now < n) => {
                    return Ok(Fetched {
                        info,
                        from_cache: true,
                    });
                }
                Ok(_) => tracing::debug!(url = %url, "cached CRL past its nextUpdate; refetching"),
                Err(e) => tracing::warn!(url = %url, error = %e, "cached CRL ignored; refetching"),
            }
        }
        let body = self.fetch(url, uri).await?;
        let der = read_crl(&body).map_err(|e| CrlError::Unparseable {
            url: url.to_owned(),
            reason: e.to_string(),
        })?;
        let info = verify(url, &der, issuer_der)?;
        match info.next_update {
            Some(next) if now < next => store.put_blob(&key, &der).map_err(store_err)?,
            Some(next) => tracing::warn!(
                url = %url,
                next_update = %next,
                "the CRL's nextUpdate has passed; using it but not caching it"
            ),
            None => {
                tracing::warn!(url = %url, "the CRL has no nextUpdate; using it but not caching it")
            }
        }
        Ok(Fetched {
            info,
            from_cache: false,
        })
    }

    /// GETs the URL and reads the body, within the timeout and the size limit.
    async fn fetch(&self, url: &str, uri: Uri) -> Result<Bytes, CrlError> {
        let answer = crate::http_client::request(
            Method::GET,
            uri,
            &[(header::ACCEPT, "application/pkix-crl, */*")],
            Bytes::new(),
        );
        let answer = match answer {
            Ok(req) => self.http.exchange(req, self.limit, self.timeout).await,
            Err(e) => Err(e),
        };
        let answer = answer.map_err(|e| match e {
            ExchangeError::Timeout(timeout) => CrlError::Timeout {
                url: url.to_owned(),
                timeout,
            },
            ExchangeError::TooLarge(limit) => CrlError::TooLarge {
                url: url.to_owned(),
                limit,
            },
            ExchangeError::Fetch(reason) => CrlError::Fetch {
                url: url.to_owned(),
                reason,
            },
        })?;
        if !answer.status.is_success() {
            return Err(CrlError::Status {
                url: url.to_owned(),
                status: answer.status.as_u16(),
                location: answer
                    .headers
                    .get(header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
            });
        }
        Ok(answer.body)
    }
}

/// The URL, when it is http or https.
fn check_url(url: &str) -> Result<Uri, CrlError> {
    let scheme = url
        .split_once(':')
        .map(|(s, _)| s.to_ascii_lowercase())
        .unwrap_or_default();
    if scheme != "http" && scheme != "https" {
        return Err(if scheme.is_empty() {
            CrlError::BadUrl {
                url: url.to_owned(),
                reason: "no scheme".into(),
            }
        } else {
            CrlError::UnsupportedScheme {
                url: url.to_owned(),
                scheme,
            }
        });
    }
    url.parse::<Uri>().map_err(|e| CrlError::BadUrl {
        url: url.to_owned(),
        reason: e.to_string(),
    })
}

/// The store blob holding the cached DER of the CRL at `url`.
fn cache_key(url: &str) -> String {
    format!("crl-cache/{}", hex::encode(Sha256::digest(url.as_bytes())))
}

/// Parses a DER CRL and checks it against the issuing CA certificate: signature by its key,
/// and its name as the CRL's issuer (RFC 5280 §6.3.3 (b) and (f)).
fn verify(url: &str, der: &[u8], issuer_der: &[u8]) -> Result<CrlInfo, CrlError> {
    let info = inspect_crl_der(der).map_err(|e| CrlError::Unparseable {
        url: url.to_owned(),
        reason: e.to_string(),
    })?;
    let bad_issuer = |reason: String| CrlError::BadIssuer {
        url: url.to_owned(),
        reason,
    };
    let ca = inspect_certificate_der(issuer_der).map_err(|e| bad_issuer(e.to_string()))?;
    // The CRL parsed above, so an error here is about the CA certificate.
    if !crl_signed_by(der, issuer_der).map_err(|e| bad_issuer(e.to_string()))? {
        return Err(CrlError::BadSignature {
            url: url.to_owned(),
            ca_subject: ca.subject,
        });
    }
    if info.issuer != ca.subject {
        return Err(CrlError::IssuerMismatch {
            url: url.to_owned(),
            crl_issuer: info.issuer,
            ca_subject: ca.subject,
        });
    }
    Ok(info)
}

#[cfg(test)]
pub(super) mod tests {
    use std::collections::HashMap;
    use std::convert::Infallible;
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use chrono::TimeDelta;
    use http::Request;
    use http_body_util::Full;
    use hyper::body::Incoming;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    use rcgen::{
        BasicConstraints, CertificateParams, CertificateRevocationList,
        CertificateRevocationListParams, DnType, IsCa, Issuer, KeyIdMethod, KeyPair,
        KeyUsagePurpose, RevokedCertParams, SerialNumber,
    };

    use super::*;
    use crate::store::MemoryStore;

    #[derive(Clone)]
    pub(crate) struct Route {
        pub(crate) status: u16,
        pub(crate) body: Vec<u8>,
        pub(crate) location: Option<String>,
        pub(crate) delay: Duration,
    }

    pub(crate) fn ok(body: impl Into<Vec<u8>>) -> Route {
        Route {
            status: 200,
            body: body.into(),
            location: None,
            delay: Duration::ZERO,
        }
    }

    /// An HTTP server on 127.0.0.1 answering each path with its route (404 otherwise),
    /// counting requests; stopped on drop.
    pub(crate) struct Server {
        addr: SocketAddr,
        hits: Arc<AtomicUsize>,
        routes: Arc<Mutex<HashMap<String, Route>>>,
        task: tokio::task::JoinHandle<()>,
    }

    impl Drop for Server {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    impl Server {
        pub(crate) async fn start() -> Self {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let hits = Arc::new(AtomicUsize::new(0));
            let routes = Arc::new(Mutex::new(HashMap::<String, Route>::new()));
            let (h, r) = (hits.clone(), routes.clone());
            let task = tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let (hits, routes) = (h.clone(), r.clone());
                    let svc = service_fn(move |req: Request<Incoming>| {
                        hits.fetch_add(1, Ordering::SeqCst);
                        let route = routes.lock().unwrap().get(req.uri().path()).cloned();
                        async move {
                            let route = route.unwrap_or_else(|| Route {
                                status: 404,
                                ..ok("not here")
                            });
                            tokio::time::sleep(route.delay).await;
                            let mut rsp = http::Response::builder().status(route.status);
                            if let Some(l) = route.location {
                                rsp = rsp.header(header::LOCATION, l);
                            }
                            Ok::<_, Infallible>(
                                rsp.body(Full::new(Bytes::from(route.body))).unwrap(),
                            )
                        }
                    });
                    tokio::spawn(async move {
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), svc)
                            .await;
                    });
                }
            });
            Self {
                addr,
                hits,
                routes,
                task,
            }
        }

        pub(crate) fn route(&self, path: &str, route: Route) -> String {
            self.routes.lock().unwrap().insert(path.into(), route);
            format!("http://{}{path}", self.addr)
        }

        pub(crate) fn hits(&self) -> usize {
            self.hits.load(Ordering::SeqCst)
        }
    }

    pub(crate) struct Ca {
        pub(crate) issuer: Issuer<'static, KeyPair>,
        pub(crate) der: Vec<u8>,
        pub(crate) key_pem: String,
    }

    fn ca_params(cn: &str) -> CertificateParams {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params
    }

    pub(crate) fn new_ca(cn: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let params = ca_params(cn);
        let der = params.self_signed(&key).unwrap().der().to_vec();
        Ca {
            key_pem: key.serialize_pem(),
            issuer: Issuer::new(params, key),
            der,
        }
    }

    fn ts(t: DateTime<Utc>) -> time::OffsetDateTime {
        time::OffsetDateTime::from_unix_timestamp(t.timestamp()).unwrap()
    }

    fn crl(
        issuer: &Issuer<'_, KeyPair>,
        serials: &[u64],
        this_update: DateTime<Utc>,
        next_update: DateTime<Utc>,
    ) -> CertificateRevocationList {
        CertificateRevocationListParams {
            this_update: ts(this_update),
            next_update: ts(next_update),
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: serials
                .iter()
                .map(|s| RevokedCertParams {
                    serial_number: SerialNumber::from(*s),
                    revocation_time: ts(this_update),
                    reason_code: None,
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        }
        .signed_by(issuer)
        .unwrap()
    }

    pub(crate) fn fetcher() -> CrlFetcher {
        CrlFetcher::new(Duration::from_secs(5))
    }

    #[tokio::test]
    async fn fetched_verified_cached_until_next_update() {
        let server = Server::start().await;
        let ca = new_ca("Test CA");
        let now = Utc::now();
        let next = now + TimeDelta::days(7);
        let c = crl(&ca.issuer, &[0x0abc, 0x1234], now, next);
        let url = server.route("/ca.crl", ok(c.der().to_vec()));
        let store = MemoryStore::new();
        let f = fetcher();

        let got = f.get(&store, &url, &ca.der, now).await.unwrap();
        assert!(!got.from_cache);
        assert!(got.info.find("0ABC").is_some());
        assert!(got.info.find("ffff").is_none());
        assert_eq!(server.hits(), 1);
        assert_eq!(
            store.get_blob(&cache_key(&url)).unwrap().as_deref(),
            Some(c.der().as_ref())
        );

        let again = f
            .get(&store, &url, &ca.der, now + TimeDelta::days(6))
            .await
            .unwrap();
        assert!(again.from_cache);
        assert!(again.info.find("1234").is_some());
        assert_eq!(server.hits(), 1);

        let later = f
            .get(&store, &url, &ca.der, next + TimeDelta::seconds(1))
            .await
            .unwrap();
        assert!(!later.from_cache);
        assert_eq!(server.hits(), 2);
    }

    #[tokio::test]
    async fn forged_crl_rejected_and_not_cached() {
        let server = Server::start().await;
        let ca = new_ca("Test CA");
        let impostor = new_ca("Test CA");
        let now = Utc::now();
        let forged = crl(&impostor.issuer, &[7], now, now + TimeDelta::days(7));
        let url = server.route("/ca.crl", ok(forged.der().to_vec()));
        let store = MemoryStore::new();

        let err = fetcher().get(&store, &url, &ca.der, now).await.unwrap_err();
        assert!(matches!(err, CrlError::BadSignature { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains(&url) && msg.contains("rejected") && msg.contains("not trusted"),
            "{msg}"
        );
        assert_eq!(store.get_blob(&cache_key(&url)).unwrap(), None);
    }

    #[tokio::test]
    async fn cached_copy_that_no_longer_verifies_is_refetched() {
        let server = Server::start().await;
        let ca = new_ca("Test CA");
        let other = new_ca("Other CA");
        let now = Utc::now();
        let c = crl(&ca.issuer, &[7], now, now + TimeDelta::days(7));
        let url = server.route("/ca.crl", ok(c.der().to_vec()));
        let store = MemoryStore::new();
        let f = fetcher();
        f.get(&store, &url, &ca.der, now).await.unwrap();
        let err = f.get(&store, &url, &other.der, now).await.unwrap_err();
        assert!(matches!(err, CrlError::BadSignature { .. }), "{err:?}");
        assert_eq!(server.hits(), 2);

        // A corrupted cache entry is ignored too.
        store.put_blob(&cache_key(&url), b"garbage").unwrap();
        let got = f.get(&store, &url, &ca.der, now).await.unwrap();
        assert!(!got.from_cache);
        assert_eq!(server.hits(), 3);
    }

    #[tokio::test]
    async fn same_key_other_issuer_name_rejected() {
        let server = Server::start().await;
        let ca = new_ca("Test CA");
        let key = KeyPair::from_pem(&ca.key_pem).unwrap();
        let renamed = Issuer::new(ca_params("Renamed CA"), key);
        let now = Utc::now();
        let c = crl(&renamed, &[7], now, now + TimeDelta::days(7));
        let url = server.route("/ca.crl", ok(c.der().to_vec()));
        let store = MemoryStore::new();
        let err = fetcher().get(&store, &url, &ca.der, now).await.unwrap_err();
        assert!(matches!(err, CrlError::IssuerMismatch { .. }), "{err:?}");
        assert!(err.to_string().contains("Renamed CA"), "{err}");
        assert_eq!(store.get_blob(&cache_key(&url)).unwrap(), None);
    }

    #[tokio::test]
    async fn pem_accepted() {
        let server = Server::start().await;
        let ca = new_ca("Test CA");
        let now = Utc::now();
        let c = crl(&ca.issuer, &[0x42], now, now + TimeDelta::days(1));
        let url = server.route("/ca.pem", ok(c.pem().unwrap()));
        let store = MemoryStore::new();
        let got = fetcher().get(&store, &url, &ca.der, now).await.unwrap();
        assert!(got.info.find("42").is_some());
        // The DER is what is cached.
        assert_eq!(
            store.get_blob(&cache_key(&url)).unwrap().as_deref(),
            Some(c.der().as_ref())
        );
    }

    #[tokio::test]
    async fn stale_crl_returned_but_not_cached() {
        let server = Server::start().await;
        let ca = new_ca("Test CA");
        let now = Utc::now();
        let c = crl(
            &ca.issuer,
            &[9],
            now - TimeDelta::days(8),
            now - TimeDelta::days(1),
        );
        let url = server.route("/ca.crl", ok(c.der().to_vec()));
        let store = MemoryStore::new();
        let got = fetcher().get(&store, &url, &ca.der, now).await.unwrap();
        assert!(!got.from_cache && got.info.find("9").is_some());
        assert_eq!(store.get_blob(&cache_key(&url)).unwrap(), None);
    }

    #[tokio::test]
    async fn http_failures_are_clear() {
        let server = Server::start().await;
        let ca = new_ca("Test CA");
        let store = MemoryStore::new();
        let now = Utc::now();
        let f = fetcher();

        let missing = format!("http://{}/missing.crl", server.addr);
        let err = f.get(&store, &missing, &ca.der, now).await.unwrap_err();
        assert!(
            matches!(err, CrlError::Status { status: 404, .. }),
            "{err:?}"
        );
        assert!(
            err.to_string().contains(&missing) && err.to_string().contains("404"),
            "{err}"
        );

        let html = server.route("/page", ok("<html>hello</html>"));
        let err = f.get(&store, &html, &ca.der, now).await.unwrap_err();
        assert!(matches!(err, CrlError::Unparseable { .. }), "{err:?}");
        assert!(err.to_string().contains(&html), "{err}");

        let moved = server.route(
            "/moved",
            Route {
                status: 301,
                body: Vec::new(),
                location: Some("http://elsewhere.example/ca.crl".into()),
                delay: Duration::ZERO,
            },
        );
        let err = f.get(&store, &moved, &ca.der, now).await.unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(&moved)
                && msg.contains("301")
                && msg.contains("elsewhere.example")
                && msg.contains("not followed"),
            "{msg}"
        );
    }

    #[tokio::test]
    async fn timeout_and_size_limit() {
        let server = Server::start().await;
        let ca = new_ca("Test CA");
        let store = MemoryStore::new();
        let now = Utc::now();
        let slow = server.route(
            "/slow",
            Route {
                delay: Duration::from_secs(10),
                ..ok("x")
            },
        );
        let f = CrlFetcher::new(Duration::from_millis(200));
        let err = f.get(&store, &slow, &ca.der, now).await.unwrap_err();
        assert!(matches!(err, CrlError::Timeout { .. }), "{err:?}");
        assert!(err.to_string().contains(&slow), "{err}");

        let c = crl(&ca.issuer, &[1, 2, 3], now, now + TimeDelta::days(1));
        let big = server.route("/big", ok(c.der().to_vec()));
        let small = CrlFetcher {
            limit: 100,
            ..fetcher()
        };
        let err = small.get(&store, &big, &ca.der, now).await.unwrap_err();
        assert!(
            matches!(err, CrlError::TooLarge { limit: 100, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains(&big), "{err}");
    }

    #[tokio::test]
    async fn connection_refused_names_the_url() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/ca.crl", listener.local_addr().unwrap());
        drop(listener);
        let ca = new_ca("Test CA");
        let err = fetcher()
            .get(&MemoryStore::new(), &url, &ca.der, Utc::now())
            .await
            .unwrap_err();
        assert!(matches!(err, CrlError::Fetch { .. }), "{err:?}");
        assert!(err.to_string().contains(&url), "{err}");
    }

    #[tokio::test]
    async fn ldap_unsupported() {
        let ca = new_ca("Test CA");
        let url = "ldap:///CN=Test%20CA,CN=CDP,DC=example,DC=com?certificateRevocationList";
        let err = fetcher()
            .get(&MemoryStore::new(), url, &ca.der, Utc::now())
            .await
            .unwrap_err();
        assert!(matches!(err, CrlError::UnsupportedScheme { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains(url) && msg.contains("ldap") && msg.contains("not supported"),
            "{msg}"
        );
    }
}
