//! OCSP for the `revoked_at_ca` detector: a certificate's responder (from its Authority
//! Information Access) is asked over HTTP or HTTPS (RFC 6960 Appendix A: a POST of the DER
//! request), the answer is checked against the issuing CA (its signature, or a delegated
//! responder the CA authorized) and cached in the store until its nextUpdate.
//!
//! An answer that does not verify is rejected, never believed nor cached. A `good` answer
//! past its nextUpdate (or, without one, more than [`MAX_AGE_WITHOUT_NEXT_UPDATE_DAYS`] days
//! old) proves nothing and is reported; a `revoked` one stays a fact whatever its age.

use bytes::Bytes;
use certresponder_inventory::inspect::{
    InspectError, OcspAnswer, OcspCertStatus, OcspProblem, ocsp_request, read_ocsp_response,
};
use chrono::{DateTime, TimeDelta, Utc};
use http::{Method, Uri, header};
use sha2::{Digest, Sha256};

use super::crl::CrlFetcher;
use crate::http_client::ExchangeError;
use crate::store::{Store, StoreError};

/// The largest OCSP answer read, in bytes.
pub const MAX_OCSP_BYTES: usize = 64 * 1024;
/// How old a `good` answer without nextUpdate may be and still count.
pub const MAX_AGE_WITHOUT_NEXT_UPDATE_DAYS: i64 = 4;
/// How far ahead of our clock an answer's thisUpdate may be.
const CLOCK_SKEW: TimeDelta = TimeDelta::minutes(5);

/// Why a responder's answer could not be had or believed. Every message names the URL.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OcspError {
    /// The URL is not an http(s) URL.
    #[error("OCSP {url}: not an http(s) URL that can be asked: {reason}")]
    BadUrl {
        /// The responder's URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// No answer: the connection, TLS or the transfer failed, or it took too long.
    #[error("OCSP {url}: {reason}")]
    Exchange {
        /// The responder's URL.
        url: String,
        /// What went wrong.
        reason: ExchangeError,
    },
    /// The responder answered with a non-2xx HTTP status.
    #[error("OCSP {url}: the responder answered HTTP {status}")]
    Status {
        /// The responder's URL.
        url: String,
        /// The status.
        status: u16,
    },
    /// The certificate or its issuer cannot be read to build the request.
    #[error("OCSP {url}: cannot build the request: {source}")]
    Certificate {
        /// The responder's URL.
        url: String,
        /// Why.
        source: InspectError,
    },
    /// The answer is not believed (see [`OcspProblem`]).
    #[error("OCSP {url}: {problem}")]
    Answer {
        /// The responder's URL.
        url: String,
        /// What is wrong with it.
        problem: OcspProblem,
    },
    /// A `good` answer too old to prove anything.
    #[error("OCSP {url}: the answer is stale ({why})")]
    Stale {
        /// The responder's URL.
        url: String,
        /// Its dates.
        why: String,
    },
    /// The cache in the store failed.
    #[error("OCSP {url}: the cache in the store failed: {source}")]
    Store {
        /// The responder's URL.
        url: String,
        /// The store's error.
        source: StoreError,
    },
}

/// A verified answer and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asked {
    /// What the responder said.
    pub answer: OcspAnswer,
    /// Whether it came from the store's cache rather than the network.
    pub from_cache: bool,
}

/// The store blob holding the cached answer to `request` at `url`.
fn cache_key(url: &str, request: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(url.as_bytes());
    h.update([0]);
    h.update(request);
    format!("ocsp-cache/{}", hex::encode(h.finalize()))
}

/// Whether a `good` answer still proves something at `now`; the reason when it does not.
fn staleness(a: &OcspAnswer, now: DateTime<Utc>) -> Option<String> {
    if a.this_update > now + CLOCK_SKEW {
        return Some(format!(
            "its thisUpdate {} is in the future",
            a.this_update.to_rfc3339()
        ));
    }
    match a.next_update {
        Some(next) if next <= now => {
            Some(format!("its nextUpdate {} has passed", next.to_rfc3339()))
        }
        Some(_) => None,
        None if now - a.this_update > TimeDelta::days(MAX_AGE_WITHOUT_NEXT_UPDATE_DAYS) => {
            Some(format!(
                "no nextUpdate, and its thisUpdate {} is more than {MAX_AGE_WITHOUT_NEXT_UPDATE_DAYS} days old",
                a.this_update.to_rfc3339()
            ))
        }
        None => None,
    }
}

impl CrlFetcher {
    /// Asks the responder at `url` about `leaf_der`, issued by the CA certificate
    /// `issuer_der`. A cached answer is used while `now` is before its nextUpdate and it
    /// still verifies; otherwise the responder is asked, and a verified answer with a
    /// nextUpdate ahead is cached.
    pub async fn ocsp(
        &self,
        store: &dyn Store,
        url: &str,
        leaf_der: &[u8],
        issuer_der: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Asked, OcspError> {
        let uri = match url.parse::<Uri>() {
            Ok(u) if matches!(u.scheme_str(), Some("http" | "https")) => u,
            Ok(_) => {
                return Err(OcspError::BadUrl {
                    url: url.to_owned(),
                    reason: "only http and https responders are asked".into(),
                });
            }
            Err(e) => {
                return Err(OcspError::BadUrl {
                    url: url.to_owned(),
                    reason: e.to_string(),
                });
            }
        };
        let request =
            ocsp_request(leaf_der, issuer_der).map_err(|source| OcspError::Certificate {
                url: url.to_owned(),
                source,
            })?;
        let read = |der: &[u8]| -> Result<OcspAnswer, OcspError> {
            read_ocsp_response(der, leaf_der, issuer_der, now)
                .map_err(|source| OcspError::Certificate {
                    url: url.to_owned(),
                    source,
                })?
                .map_err(|problem| OcspError::Answer {
                    url: url.to_owned(),
                    problem,
                })
        };
        let key = cache_key(url, &request);
        let store_err = |source| OcspError::Store {
            url: url.to_owned(),
            source,
        };
        if let Some(cached) = store.get_blob(&key).map_err(store_err)? {
            match read(&cached) {
                Ok(answer) if answer.next_update.is_some_and(|n| now < n) => {
                    return Ok(Asked {
                        answer,
                        from_cache: true,
                    });
                }
                Ok(_) => {
                    tracing::debug!(url = %url, "cached OCSP answer past its nextUpdate; asking again")
                }
                Err(e) => {
                    tracing::warn!(url = %url, error = %e, "cached OCSP answer ignored; asking again")
                }
            }
        }
        let exchange_err = |reason| OcspError::Exchange {
            url: url.to_owned(),
            reason,
        };
        let req = crate::http_client::request(
            Method::POST,
            uri,
            &[
                (header::CONTENT_TYPE, "application/ocsp-request"),
                (header::ACCEPT, "application/ocsp-response"),
            ],
            Bytes::from(request),
        )
        .map_err(exchange_err)?;
        let got = self
            .http()
            .exchange(req, MAX_OCSP_BYTES, self.timeout())
            .await
            .map_err(exchange_err)?;
        if !got.status.is_success() {
            return Err(OcspError::Status {
                url: url.to_owned(),
                status: got.status.as_u16(),
            });
        }
        let answer = read(&got.body)?;
        if answer.status == OcspCertStatus::Good
            && let Some(why) = staleness(&answer, now)
        {
            return Err(OcspError::Stale {
                url: url.to_owned(),
                why,
            });
        }
        if answer.next_update.is_some_and(|n| now < n) {
            store.put_blob(&key, &got.body).map_err(store_err)?;
        }
        Ok(Asked {
            answer,
            from_cache: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::process::Command;

    use certresponder_inventory::inspect::encode_pem;
    use rcgen::{
        CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair, KeyUsagePurpose, SerialNumber,
    };

    use super::*;
    use crate::signals::ca::crl::tests::{Ca, Route, Server, fetcher, new_ca, ok};
    use crate::store::MemoryStore;

    /// A CA, a leaf it issued (serial 1234), and a directory for openssl's files.
    struct Pki {
        dir: tempfile::TempDir,
        ca: Ca,
        leaf: Vec<u8>,
    }

    impl Pki {
        fn new() -> Self {
            let ca = new_ca("OCSP Test CA");
            let key = KeyPair::generate().unwrap();
            let mut p = CertificateParams::new(vec!["ocsp.example.test".to_string()]).unwrap();
            p.serial_number = Some(SerialNumber::from(0x1234u64));
            let leaf = p.signed_by(&key, &ca.issuer).unwrap().der().to_vec();
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(
                dir.path().join("ca.pem"),
                encode_pem("CERTIFICATE", &ca.der),
            )
            .unwrap();
            std::fs::write(dir.path().join("ca.key"), &ca.key_pem).unwrap();
            Self { dir, ca, leaf }
        }

        fn path(&self, name: &str) -> PathBuf {
            self.dir.path().join(name)
        }

        /// A certificate `name` signed by the CA (an OCSP responder when `ocsp_signing`),
        /// written as `name.pem` and `name.key`.
        fn responder(&self, name: &str, ocsp_signing: bool) -> (PathBuf, PathBuf) {
            self.responder_valid(name, ocsp_signing, None)
        }

        /// [`Pki::responder`], valid only from `valid.0` to `valid.1` when given.
        fn responder_valid(
            &self,
            name: &str,
            ocsp_signing: bool,
            valid: Option<(DateTime<Utc>, DateTime<Utc>)>,
        ) -> (PathBuf, PathBuf) {
            let key = KeyPair::generate().unwrap();
            let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
            if let Some((from, to)) = valid {
                let ts = |t: DateTime<Utc>| {
                    time::OffsetDateTime::from_unix_timestamp(t.timestamp()).unwrap()
                };
                p.not_before = ts(from);
                p.not_after = ts(to);
            }
            p.distinguished_name.push(DnType::CommonName, name);
            p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            if ocsp_signing {
                p.extended_key_usages = vec![ExtendedKeyUsagePurpose::OcspSigning];
            }
            let der = p.signed_by(&key, &self.ca.issuer).unwrap().der().to_vec();
            self.write(name, &der, &key.serialize_pem())
        }

        fn write(&self, name: &str, der: &[u8], key_pem: &str) -> (PathBuf, PathBuf) {
            let (cert, key) = (
                self.path(&format!("{name}.pem")),
                self.path(&format!("{name}.key")),
            );
            std::fs::write(&cert, encode_pem("CERTIFICATE", der)).unwrap();
            std::fs::write(&key, key_pem).unwrap();
            (cert, key)
        }

        /// openssl's answer to our request for the leaf, from the CA database `index`
        /// (openssl `ca` format), signed with `signer` (certificate, key).
        fn answer(&self, index: &str, signer: (&Path, &Path)) -> Vec<u8> {
            std::fs::write(self.path("index.txt"), index).unwrap();
            std::fs::write(
                self.path("req.der"),
                ocsp_request(&self.leaf, &self.ca.der).unwrap(),
            )
            .unwrap();
            let out = Command::new("openssl")
                .arg("ocsp")
                .arg("-index")
                .arg(self.path("index.txt"))
                .arg("-CA")
                .arg(self.path("ca.pem"))
                .arg("-rsigner")
                .arg(signer.0)
                .arg("-rkey")
                .arg(signer.1)
                .arg("-reqin")
                .arg(self.path("req.der"))
                .arg("-respout")
                .arg(self.path("resp.der"))
                .args(["-ndays", "1"])
                .output()
                .expect("openssl must be installed");
            assert!(out.status.success(), "openssl ocsp: {out:?}");
            std::fs::read(self.path("resp.der")).unwrap()
        }

        fn ca_signer(&self) -> (PathBuf, PathBuf) {
            (self.path("ca.pem"), self.path("ca.key"))
        }
    }

    /// A PKI, a responder server, a store and a fetcher.
    struct Bench {
        pki: Pki,
        server: Server,
        store: MemoryStore,
        f: CrlFetcher,
        now: DateTime<Utc>,
    }

    impl Bench {
        async fn new() -> Self {
            Self {
                pki: Pki::new(),
                server: Server::start().await,
                store: MemoryStore::new(),
                f: fetcher(),
                now: Utc::now(),
            }
        }

        /// Asks the responder at `url` about the leaf, at `at`.
        async fn ask(&self, url: &str, at: DateTime<Utc>) -> Result<Asked, OcspError> {
            self.f
                .ocsp(&self.store, url, &self.pki.leaf, &self.pki.ca.der, at)
                .await
        }
    }

    fn assert_untrusted(err: &OcspError) {
        assert!(
            matches!(
                err,
                OcspError::Answer {
                    problem: OcspProblem::Untrusted(_),
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("rejected, not trusted"), "{err}");
    }

    const VALID: &str = "V\t301231235959Z\t\t1234\tunknown\t/CN=ocsp.example.test\n";
    const REVOKED: &str =
        "R\t301231235959Z\t261101120000Z,keyCompromise\t1234\tunknown\t/CN=ocsp.example.test\n";
    const OTHER: &str = "V\t301231235959Z\t\t9999\tunknown\t/CN=other.example.test\n";

    #[tokio::test]
    async fn good_revoked_and_unknown_answers_are_read_and_cached_until_next_update() {
        let b = Bench::new().await;
        let (pki, server, now) = (&b.pki, &b.server, b.now);
        let (cert, key) = pki.ca_signer();

        let url = server.route("/good", ok(pki.answer(VALID, (&cert, &key))));
        let asked = b.ask(&url, now).await.unwrap();
        assert_eq!(asked.answer.status, OcspCertStatus::Good);
        assert!(!asked.from_cache);
        assert!(
            asked.answer.signer.contains("OCSP Test CA"),
            "{}",
            asked.answer.signer
        );
        assert!(asked.answer.next_update.is_some_and(|n| n > now));
        let again = b.ask(&url, now).await.unwrap();
        assert!(again.from_cache);
        assert_eq!(
            server.hits(),
            1,
            "the cached answer is used until its nextUpdate"
        );

        let url = server.route("/revoked", ok(pki.answer(REVOKED, (&cert, &key))));
        let asked = b.ask(&url, now).await.unwrap();
        assert_eq!(
            asked.answer.status,
            OcspCertStatus::Revoked {
                at: "2026-11-01T12:00:00Z".parse().unwrap(),
                reason: Some(1),
            }
        );
        // A revocation stays a fact after the answer's nextUpdate.
        let later = now + TimeDelta::days(3);
        let asked = b.ask(&url, later).await.unwrap();
        assert!(matches!(
            asked.answer.status,
            OcspCertStatus::Revoked { .. }
        ));

        let url = server.route("/unknown", ok(pki.answer(OTHER, (&cert, &key))));
        let asked = b.ask(&url, now).await.unwrap();
        assert_eq!(asked.answer.status, OcspCertStatus::Unknown);
    }

    #[tokio::test]
    async fn only_the_ca_or_a_responder_it_authorized_is_believed() {
        let b = Bench::new().await;
        let (pki, server, store, now) = (&b.pki, &b.server, &b.store, b.now);

        let delegated = pki.responder("Delegated OCSP Responder", true);
        let url = server.route(
            "/delegated",
            ok(pki.answer(REVOKED, (&delegated.0, &delegated.1))),
        );
        let asked = b.ask(&url, now).await.unwrap();
        assert!(matches!(
            asked.answer.status,
            OcspCertStatus::Revoked { .. }
        ));
        assert!(asked.answer.signer.contains("Delegated OCSP Responder"));

        // A responder certificate that has expired.
        let expired = pki.responder_valid(
            "Retired OCSP Responder",
            true,
            Some((now - TimeDelta::days(30), now - TimeDelta::days(1))),
        );
        let url = server.route("/expired", ok(pki.answer(VALID, (&expired.0, &expired.1))));
        let err = b.ask(&url, now).await.unwrap_err();
        assert_untrusted(&err);

        // Signed by a certificate of the CA that is not an OCSP responder.
        let plain = pki.responder("Some Server", false);
        let url = server.route("/plain", ok(pki.answer(REVOKED, (&plain.0, &plain.1))));
        let err = b.ask(&url, now).await.unwrap_err();
        assert_untrusted(&err);

        // Signed by an impostor CA of the same name.
        let impostor = new_ca("OCSP Test CA");
        let (cert, key) = pki.write("impostor", &impostor.der, &impostor.key_pem);
        let url = server.route("/impostor", ok(pki.answer(VALID, (&cert, &key))));
        let err = b.ask(&url, now).await.unwrap_err();
        assert_untrusted(&err);
        assert!(
            store
                .get_blob(&cache_key(
                    &url,
                    &ocsp_request(&pki.leaf, &pki.ca.der).unwrap()
                ))
                .unwrap()
                .is_none(),
            "a rejected answer is not cached"
        );
    }

    #[tokio::test]
    async fn errors_stale_answers_and_http_failures_name_the_responder() {
        let b = Bench::new().await;
        let (pki, server, now) = (&b.pki, &b.server, b.now);
        let (cert, key) = pki.ca_signer();

        // OCSPResponse { responseStatus tryLater }.
        let url = server.route("/later", ok(vec![0x30, 0x03, 0x0a, 0x01, 0x03]));
        let err = b.ask(&url, now).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("OCSP {url}: the responder answered `tryLater`")
        );

        let url = server.route("/junk", ok(b"<html>no</html>".to_vec()));
        let err = b.ask(&url, now).await.unwrap_err();
        assert!(err.to_string().contains("is not an OCSP response"), "{err}");

        let url = server.route(
            "/down",
            Route {
                status: 503,
                ..ok("")
            },
        );
        let err = b.ask(&url, now).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("OCSP {url}: the responder answered HTTP 503")
        );

        // A good answer past its nextUpdate proves nothing.
        let url = server.route("/stale", ok(pki.answer(VALID, (&cert, &key))));
        let err = b.ask(&url, now + TimeDelta::days(2)).await.unwrap_err();
        assert!(matches!(err, OcspError::Stale { .. }), "{err}");
        assert!(err.to_string().contains("nextUpdate"), "{err}");

        let err = b.ask("ldap://ocsp.example.test/", now).await.unwrap_err();
        assert!(matches!(err, OcspError::BadUrl { .. }), "{err}");
    }
}
