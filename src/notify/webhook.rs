//! Webhook delivery: the notification JSON POSTed to a URL, signed with HMAC-SHA256.
//!
//! Headers sent:
//! - `Content-Type: application/json`
//! - `X-Certresponder-Event`: the event (`approval_needed`, `breaker_open`, ...)
//! - `X-Certresponder-Delivery`: the delivery id, the same on every attempt
//! - `X-Certresponder-Signature: sha256=<hex>`: HMAC-SHA256 (RFC 2104, FIPS 180-4) of the
//!   exact body bytes under the key in `secret_file`, lowercase hex; only when a key is
//!   configured. A receiver recomputes it over the raw body and compares in constant time.
//!
//! A 2xx answer means delivered. Anything else (another status, a network error, no answer
//! within the timeout) is a failed attempt, retried later; a `Retry-After` in seconds or as
//! an HTTP date (RFC 9110 §10.2.3) is honoured, up to [`MAX_BACKOFF`](super::config::MAX_BACKOFF).

use std::path::Path;
use std::time::Duration;

use aws_lc_rs::hmac;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};

use super::NotifyEvent;
use super::config::{MAX_BACKOFF, WebhookTarget};
use crate::http_client::HttpClient;

/// The event header.
pub const EVENT_HEADER: &str = "x-certresponder-event";
/// The delivery id header.
pub const DELIVERY_HEADER: &str = "x-certresponder-delivery";
/// The signature header: `sha256=<lowercase hex HMAC-SHA256(key, body)>`.
pub const SIGNATURE_HEADER: &str = "x-certresponder-signature";

/// How much of a receiver's answer is read, and how much of it an error quotes.
const ANSWER_LIMIT: usize = 16 * 1024;
const ANSWER_QUOTE: usize = 200;

/// A failed attempt: why, and when the receiver asked to be tried again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptError {
    /// What went wrong, for logs and the outbox; never holds the key.
    pub message: String,
    /// The receiver's `Retry-After`, if it sent one.
    pub retry_after: Option<Duration>,
    /// The HTTP status, when the receiver answered.
    pub status: Option<u16>,
}

impl AttemptError {
    fn new(message: String) -> Self {
        Self {
            message,
            retry_after: None,
            status: None,
        }
    }
}

/// The `X-Certresponder-Signature` value for `body` under `key`.
pub fn signature(key: &[u8], body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    format!("sha256={}", hex::encode(hmac::sign(&key, body).as_ref()))
}

/// Reads an HMAC key file: its contents, without a trailing newline.
pub async fn read_secret(path: &Path) -> Result<Vec<u8>, String> {
    let mut key = tokio::fs::read(path)
        .await
        .map_err(|e| format!("cannot read the signing key {}: {e}", path.display()))?;
    while key.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        key.pop();
    }
    if key.is_empty() {
        return Err(format!("the signing key {} is empty", path.display()));
    }
    Ok(key)
}

/// The URL without path, query or credentials, for logs and errors: webhook URLs often
/// carry a token in their path.
pub fn redacted_url(url: &str) -> String {
    match url.parse::<http::Uri>() {
        Ok(uri) => {
            format!(
                "{}://{}",
                uri.scheme_str().unwrap_or("?"),
                uri.host().unwrap_or("?")
            ) + &uri.port_u16().map(|p| format!(":{p}")).unwrap_or_default()
        }
        Err(_) => "(invalid URL)".into(),
    }
}

/// The HTTP clients used for one delivery pass: HTTPS verified against the platform's
/// roots (rustls with aws-lc-rs), and plain HTTP.
pub type Http = HttpClient;

/// POSTs `body` (the delivery JSON) to the webhook, signed when it has a key. Gives up
/// after `timeout` (connecting, sending and reading the answer together).
pub async fn post(
    http: &Http,
    target: &WebhookTarget,
    event: NotifyEvent,
    delivery_id: &str,
    body: Vec<u8>,
    timeout: Duration,
) -> Result<(), AttemptError> {
    let key = match &target.secret_file {
        Some(path) => Some(read_secret(path).await.map_err(AttemptError::new)?),
        None => None,
    };
    let mut req = Request::builder()
        .method(Method::POST)
        .uri(target.url.as_str())
        .header(header::CONTENT_TYPE, "application/json")
        .header(
            header::USER_AGENT,
            concat!("certresponder/", env!("CARGO_PKG_VERSION")),
        )
        .header(EVENT_HEADER, event.as_str())
        .header(DELIVERY_HEADER, delivery_id);
    if let Some(key) = &key {
        req = req.header(SIGNATURE_HEADER, signature(key, &body));
    }
    drop(key);
    let req = req
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| AttemptError::new(format!("cannot build the request: {e}")))?;
    let sent = async {
        let rsp = http
            .request(req)
            .await
            .map_err(|e| AttemptError::new(e.to_string()))?;
        let status = rsp.status();
        let retry_after = parse_retry_after(rsp.headers(), Utc::now());
        // Read the answer so the connection ends cleanly; it matters only for errors.
        let answer = Limited::new(rsp.into_body(), ANSWER_LIMIT)
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        Ok::<_, AttemptError>((status, retry_after, answer))
    };
    let (status, retry_after, answer) = tokio::time::timeout(timeout, sent)
        .await
        .map_err(|_| AttemptError::new(format!("no answer within {timeout:?}")))??;
    if status.is_success() {
        return Ok(());
    }
    let mut message = format!("the receiver answered {status}");
    let quoted = quote(&answer);
    if !quoted.is_empty() {
        message.push_str(": ");
        message.push_str(&quoted);
    }
    Err(AttemptError {
        message,
        retry_after: retry_after.map(|d| d.min(MAX_BACKOFF)),
        status: Some(status.as_u16()),
    })
}

/// Whether a status means the receiver itself rejects what we send (a person must fix its
/// configuration), as opposed to being busy or down.
pub fn is_rejection(status: u16) -> bool {
    StatusCode::from_u16(status)
        .is_ok_and(|s| s.is_client_error() && s != StatusCode::TOO_MANY_REQUESTS)
}

/// `Retry-After` as seconds or an HTTP date (RFC 9110 §10.2.3).
fn parse_retry_after(h: &http::HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let v = h.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = DateTime::parse_from_rfc2822(v).ok()?;
    Some(
        (when.with_timezone(&Utc) - now)
            .to_std()
            .unwrap_or_default(),
    )
}

/// The start of an answer body, on one line and printable.
fn quote(answer: &[u8]) -> String {
    let text = String::from_utf8_lossy(answer);
    let mut out: String = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .filter(|c| !c.is_control())
        .take(ANSWER_QUOTE)
        .collect();
    if text.chars().count() > ANSWER_QUOTE && !out.is_empty() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_sha256_rfc4231_case_2() {
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[tokio::test]
    async fn secret_file_newline_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        std::fs::write(&p, "Jefe\r\n").unwrap();
        assert_eq!(read_secret(&p).await.unwrap(), b"Jefe");
        std::fs::write(&p, "\n").unwrap();
        assert!(read_secret(&p).await.unwrap_err().contains("empty"));
    }

    #[test]
    fn retry_after_forms() {
        let now = Utc::now();
        let mut h = http::HeaderMap::new();
        assert_eq!(parse_retry_after(&h, now), None);
        h.insert(header::RETRY_AFTER, "120".parse().unwrap());
        assert_eq!(parse_retry_after(&h, now), Some(Duration::from_secs(120)));
        let later = (now + chrono::TimeDelta::seconds(30)).to_rfc2822();
        h.insert(header::RETRY_AFTER, later.parse().unwrap());
        let d = parse_retry_after(&h, now).unwrap();
        assert!(
            d <= Duration::from_secs(30) && d >= Duration::from_secs(29),
            "{d:?}"
        );
        h.insert(header::RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(parse_retry_after(&h, now), None);
    }

    #[test]
    fn urls_are_shown_without_path_or_query() {
        assert_eq!(
            redacted_url("https://hooks.example.com/services/T0/B0/token?x=1"),
            "https://hooks.example.com"
        );
        assert_eq!(
            redacted_url("http://127.0.0.1:8080/x"),
            "http://127.0.0.1:8080"
        );
    }

    #[test]
    fn statuses() {
        assert!(is_rejection(400) && is_rejection(404));
        assert!(!is_rejection(429) && !is_rejection(503) && !is_rejection(200));
        assert_eq!(quote(b"  bad\n  payload "), "bad payload");
        assert_eq!(quote(&[b'x'; 300]).chars().count(), ANSWER_QUOTE + 1);
    }
}
