//! HTTP GETs for one log: a per-log rate limit, bounded retries that honour `429` and `503`
//! with `Retry-After` (seconds or an HTTP date), a timeout and a body size limit.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, StatusCode, header};
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::CtError;
use crate::http_client::{ExchangeError, HttpClient};

/// How a log is fetched from.
#[derive(Debug, Clone)]
pub(crate) struct Fetcher {
    http: HttpClient,
    timeout: Duration,
    limit: usize,
    /// At most this many retries after 429/503 answers.
    max_retries: u32,
    /// The longest wait honoured for one `Retry-After`.
    max_wait: Duration,
    /// The time between requests the rate limit allows, and when the next may start.
    pace: Option<(Duration, Arc<Mutex<Instant>>)>,
}

/// The largest answer read, in bytes (a get-entries batch of 1000 large entries fits).
pub(crate) const MAX_BODY: usize = 64 * 1024 * 1024;

impl Fetcher {
    pub(crate) fn new(http: HttpClient, rate_per_sec: Option<f64>) -> Self {
        let pace = rate_per_sec.filter(|r| r.is_finite() && *r > 0.0).map(|r| {
            (
                Duration::from_secs_f64(1.0 / r),
                Arc::new(Mutex::new(Instant::now())),
            )
        });
        Self {
            http,
            timeout: Duration::from_secs(60),
            limit: MAX_BODY,
            max_retries: 6,
            max_wait: Duration::from_secs(120),
            pace,
        }
    }

    /// Waits for the rate limit's next slot.
    async fn pace(&self) {
        let Some((interval, next)) = &self.pace else {
            return;
        };
        let at = {
            let mut next = next.lock().await;
            let at = (*next).max(Instant::now());
            *next = at + *interval;
            at
        };
        tokio::time::sleep_until(at).await;
    }

    /// GETs `url` and returns the body of a 2xx answer, retrying 429 and 503 answers after
    /// their `Retry-After` (or a doubling backoff from one second) up to the retry bound.
    pub(crate) async fn get(&self, url: &str) -> Result<Bytes, CtError> {
        let mut backoff = Duration::from_secs(1);
        let mut attempt = 0u32;
        loop {
            self.pace().await;
            match self.get_once(url).await? {
                Ok(body) => return Ok(body),
                Err((status, retry_after)) => {
                    let retryable = status == StatusCode::TOO_MANY_REQUESTS
                        || status == StatusCode::SERVICE_UNAVAILABLE;
                    if !retryable {
                        return Err(CtError::Status {
                            url: url.to_owned(),
                            status: status.as_u16(),
                        });
                    }
                    if attempt >= self.max_retries {
                        return Err(CtError::RateLimited {
                            url: url.to_owned(),
                            attempts: attempt + 1,
                        });
                    }
                    attempt += 1;
                    let wait = retry_after.unwrap_or(backoff).min(self.max_wait);
                    tracing::info!(url = %url, status = status.as_u16(), wait_ms = wait.as_millis() as u64, attempt, "log asked to slow down; waiting");
                    tokio::time::sleep(wait).await;
                    backoff = (backoff * 2).min(self.max_wait);
                }
            }
        }
    }

    /// One GET: the body, or the non-2xx status with its `Retry-After`.
    async fn get_once(
        &self,
        url: &str,
    ) -> Result<Result<Bytes, (StatusCode, Option<Duration>)>, CtError> {
        let fetch_err = |reason: String| CtError::Fetch {
            url: url.to_owned(),
            reason,
        };
        let too_large = || CtError::TooLarge {
            url: url.to_owned(),
            limit: self.limit,
        };
        let uri: http::Uri = url
            .parse()
            .map_err(|e| fetch_err(format!("not a valid URL: {e}")))?;
        let answer = match crate::http_client::request(
            Method::GET,
            uri,
            // static-ct-api tiles are often stored gzip-compressed and served as they are.
            &[(header::ACCEPT_ENCODING, "gzip, identity")],
            Bytes::new(),
        ) {
            Ok(req) => self.http.exchange(req, self.limit, self.timeout).await,
            Err(e) => Err(e),
        };
        let answer = answer.map_err(|e| match e {
            ExchangeError::Timeout(timeout) => CtError::Timeout {
                url: url.to_owned(),
                timeout,
            },
            ExchangeError::TooLarge(_) => too_large(),
            ExchangeError::Fetch(reason) => fetch_err(reason),
        })?;
        if !answer.status.is_success() {
            let retry_after = answer
                .headers
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after);
            return Ok(Err((answer.status, retry_after)));
        }
        let encoding = answer
            .headers
            .get(header::CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .map(|e| e.trim().to_ascii_lowercase())
            .filter(|e| e != "identity");
        match encoding.as_deref() {
            None => Ok(Ok(answer.body)),
            Some("gzip" | "x-gzip") => match gunzip(&answer.body, self.limit) {
                Ok(Some(b)) => Ok(Ok(b)),
                Ok(None) => Err(too_large()),
                Err(e) => Err(fetch_err(format!(
                    "the gzip-encoded answer cannot be decoded: {e}"
                ))),
            },
            Some(enc) => Err(fetch_err(format!(
                "the answer is `{enc}`-encoded, which is not supported (gzip is)"
            ))),
        }
    }
}

/// Decompresses a gzip body; `None` when it inflates beyond `limit` bytes.
fn gunzip(bytes: &[u8], limit: usize) -> std::io::Result<Option<Bytes>> {
    use std::io::Read as _;
    let mut out = Vec::new();
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    flate2::read::GzDecoder::new(bytes)
        .take(cap)
        .read_to_end(&mut out)?;
    Ok((out.len() <= limit).then(|| Bytes::from(out)))
}

/// A `Retry-After` value: delay-seconds or an HTTP date (RFC 9110 §10.2.3).
fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let delta = at.signed_duration_since(chrono::Utc::now());
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_answers_are_inflated_within_the_limit() {
        use std::io::Write as _;
        let data = vec![7u8; 10_000];
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&data).unwrap();
        let gz = enc.finish().unwrap();
        assert_eq!(gunzip(&gz, 10_000).unwrap().unwrap().as_ref(), &data[..]);
        // A bomb: a small body that inflates past the limit is refused, not inflated.
        assert!(gunzip(&gz, 9_999).unwrap().is_none());
        assert!(gunzip(b"not gzip", 100).is_err());
    }

    #[test]
    fn retry_after_takes_seconds_and_dates() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }
}
