//! `renewal_window_open`: the CA's ACME Renewal Information (RFC 9773) says to renew.
//!
//! Each certificate's window is asked of its entry's issuer no more often than the CA's
//! `Retry-After` allows. A time inside the window is drawn at random once per window (so a
//! fleet does not renew all at once) and kept while the window stays the same; when it comes,
//! the signal is raised. A window that moves (a CA's incident pulls it into the past) draws
//! a new time. The state is kept per certificate in the store (`ari/<name>`).

use std::time::Duration;

use certresponder_issuers::{Issuer, IssuerError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::signals::{Confidence, Finding};
use crate::store::{Store, StoreError};

/// Shortest wait between two questions, whatever the CA says.
const MIN_RETRY: Duration = Duration::from_secs(60);
/// Longest wait: a week, so a window moved for an incident is seen in time.
const MAX_RETRY: Duration = Duration::from_secs(7 * 86_400);
/// How long an issuer that offers no ARI is left alone.
const UNSUPPORTED_RETRY: Duration = Duration::from_secs(86_400);

/// What is known about one certificate's renewal window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AriState {
    /// The certificate asked about (SHA-256).
    pub cert_sha256: String,
    /// The issuer adapter that answered.
    pub issuer: String,
    /// The window's start, when the CA gave one.
    pub start: Option<DateTime<Utc>>,
    /// The window's end.
    pub end: Option<DateTime<Utc>>,
    /// The CA's explanation of a moved window.
    pub explanation_url: Option<String>,
    /// The time drawn inside the window at which to renew.
    pub renew_at: Option<DateTime<Utc>>,
    /// Do not ask again before this (the CA's Retry-After).
    pub next_check: DateTime<Utc>,
    /// When the CA last answered.
    pub checked_at: DateTime<Utc>,
    /// The issuer offers no renewal information.
    pub unsupported: bool,
}

/// The outcome for one certificate.
#[derive(Debug, Clone)]
pub enum AriOutcome {
    /// Renew now.
    Open(Finding),
    /// Renewal is planned for the drawn time.
    Scheduled {
        /// When.
        renew_at: DateTime<Utc>,
        /// The window.
        start: DateTime<Utc>,
        /// Its end.
        end: DateTime<Utc>,
    },
    /// The issuer offers no ARI for it.
    Unsupported,
}

fn key(name: &str) -> String {
    format!("ari/{name}")
}

/// The stored state of a certificate, if any.
pub fn load(store: &dyn Store, name: &str) -> Result<Option<AriState>, StoreError> {
    let key = key(name);
    match store.get_blob(&key)? {
        None => Ok(None),
        // An undecodable state is forgotten: the CA is simply asked again.
        Some(b) => Ok(crate::store::decode("blobs", key.as_bytes(), &b).ok()),
    }
}

/// Whether `issuer` answered renewal information for the certificate `cert_sha256`: an order
/// that replaces it may then say so (`replaces`, RFC 9773 §5).
pub fn answered(store: &dyn Store, name: &str, cert_sha256: &str, issuer: &str) -> bool {
    load(store, name).ok().flatten().is_some_and(|s| {
        s.cert_sha256 == cert_sha256 && s.issuer == issuer && !s.unsupported && s.start.is_some()
    })
}

/// A uniformly drawn time in `[start, end)`; `start` for an empty window.
fn draw(start: DateTime<Utc>, end: DateTime<Utc>) -> DateTime<Utc> {
    let span = (end - start).num_seconds();
    if span <= 0 {
        return start;
    }
    let mut bytes = [0u8; 8];
    let random = match aws_lc_rs::rand::fill(&mut bytes) {
        Ok(()) => u64::from_le_bytes(bytes),
        Err(_) => 0,
    };
    // span > 0 here, and the remainder is below it, so it fits back in i64.
    let offset = i64::try_from(random % span.unsigned_abs()).unwrap_or(0);
    start + chrono::Duration::seconds(offset)
}

fn clamp_retry(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d.clamp(MIN_RETRY, MAX_RETRY)).unwrap_or(chrono::Duration::hours(6))
}

/// Asks (or, before the CA's Retry-After, remembers) the renewal window of the certificate
/// `der` (SHA-256 `fp`) deployed as `name`, and says whether to renew now.
pub async fn check(
    store: &dyn Store,
    issuer: &dyn Issuer,
    name: &str,
    der: &[u8],
    fp: &str,
    now: DateTime<Utc>,
) -> Result<AriOutcome, String> {
    let previous = load(store, name)
        .map_err(|e| e.to_string())?
        .filter(|s| s.cert_sha256 == fp && s.issuer == issuer.id());
    let state = match &previous {
        Some(s) if s.next_check > now => s.clone(),
        _ => {
            let answer = issuer.renewal_info(der).await;
            let mut state = AriState {
                cert_sha256: fp.to_string(),
                issuer: issuer.id().to_string(),
                start: None,
                end: None,
                explanation_url: None,
                renew_at: None,
                next_check: now + clamp_retry(UNSUPPORTED_RETRY),
                checked_at: now,
                unsupported: false,
            };
            match answer {
                // RFC 9773 §4.2: a window must end after it starts; one that does not is no
                // answer (asked again after its Retry-After), never a renewal now.
                Ok(Some(w)) if w.end <= w.start => {
                    tracing::warn!(issuer = issuer.id(), cert = name, start = %w.start, end = %w.end, "the CA's renewal window does not end after it starts; ignored");
                    state.next_check = now + clamp_retry(w.retry_after);
                }
                Ok(Some(w)) => {
                    let same_window = previous
                        .as_ref()
                        .is_some_and(|p| p.start == Some(w.start) && p.end == Some(w.end));
                    state.renew_at = match (&previous, same_window) {
                        (Some(p), true) if p.renew_at.is_some() => p.renew_at,
                        _ => Some(draw(w.start, w.end)),
                    };
                    state.start = Some(w.start);
                    state.end = Some(w.end);
                    state.explanation_url = w.explanation_url;
                    state.next_check = now + clamp_retry(w.retry_after);
                }
                Ok(None) | Err(IssuerError::Unsupported(_)) => state.unsupported = true,
                Err(e) => {
                    return Err(format!(
                        "renewal information from issuer `{}`: {e}",
                        issuer.id()
                    ));
                }
            }
            store
                .put_blob(
                    &key(name),
                    &crate::store::encode(&state).map_err(|e| e.to_string())?,
                )
                .map_err(|e| e.to_string())?;
            state
        }
    };
    let (Some(start), Some(end), Some(renew_at)) = (state.start, state.end, state.renew_at) else {
        return Ok(AriOutcome::Unsupported);
    };
    if renew_at > now {
        return Ok(AriOutcome::Scheduled {
            renew_at,
            start,
            end,
        });
    }
    // Finish by the window's end; a window already past asks for it at once.
    let hours_left = (end - now).num_hours().max(1);
    Ok(AriOutcome::Open(Finding {
        check: "renewal_window_open",
        confidence: Confidence::High,
        message: format!(
            "the CA's renewal window is open ({} to {}){}",
            start.format("%Y-%m-%d %H:%M UTC"),
            end.format("%Y-%m-%d %H:%M UTC"),
            state
                .explanation_url
                .as_deref()
                .map(|u| format!("; the CA explains: {u}"))
                .unwrap_or_default()
        ),
        revocation_reason: None,
        deadline_hours: Some(u32::try_from(hours_left).unwrap_or(u32::MAX)),
        evidence: serde_json::json!({
            "issuer": state.issuer,
            "window_start": start,
            "window_end": end,
            "renew_at": renew_at,
            "explanation_url": state.explanation_url,
            "checked_at": state.checked_at,
            "next_check": state.next_check,
        }),
    }))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use certresponder_issuers::{
        CertStatus, IssueRequest, IssuedChain, RenewalWindow, RevokeRequest,
    };

    use super::*;

    /// The CA's answers, in order, and how often it was asked.
    struct Scripted {
        answers: Mutex<Vec<Result<Option<RenewalWindow>, IssuerError>>>,
        asked: Mutex<usize>,
    }

    #[async_trait::async_trait]
    impl Issuer for Scripted {
        fn id(&self) -> &str {
            "acme"
        }
        async fn issue(&self, _: &IssueRequest) -> Result<IssuedChain, IssuerError> {
            Err(IssuerError::Unsupported("no".into()))
        }
        async fn revoke(&self, _: &RevokeRequest) -> Result<(), IssuerError> {
            Err(IssuerError::Unsupported("no".into()))
        }
        async fn status(&self, _: &[u8]) -> Result<CertStatus, IssuerError> {
            Err(IssuerError::Unsupported("no".into()))
        }
        async fn renewal_info(&self, _: &[u8]) -> Result<Option<RenewalWindow>, IssuerError> {
            *self.asked.lock().unwrap() += 1;
            self.answers.lock().unwrap().remove(0)
        }
    }

    fn window(start: DateTime<Utc>, hours: i64, retry_secs: u64) -> RenewalWindow {
        RenewalWindow {
            start,
            end: start + chrono::Duration::hours(hours),
            explanation_url: None,
            retry_after: Duration::from_secs(retry_secs),
        }
    }

    fn scripted(answers: Vec<Result<Option<RenewalWindow>, IssuerError>>) -> Scripted {
        Scripted {
            answers: Mutex::new(answers),
            asked: Mutex::new(0),
        }
    }

    #[tokio::test]
    async fn a_future_window_is_scheduled_a_past_one_opens_and_retry_after_is_kept() {
        let store = crate::store::MemoryStore::new();
        let now = Utc::now();
        let later = now + chrono::Duration::days(30);
        let ca = scripted(vec![
            Ok(Some(window(later, 48, 3600))),
            // The CA pulls the window into the past (an incident).
            Ok(Some(window(now - chrono::Duration::hours(2), 1, 3600))),
        ]);
        let AriOutcome::Scheduled {
            renew_at,
            start,
            end,
        } = check(&store, &ca, "web", b"der", "fp1", now).await.unwrap()
        else {
            panic!("a future window must be scheduled");
        };
        assert!(
            start <= renew_at && renew_at < end,
            "{renew_at} outside {start}..{end}"
        );
        // Before Retry-After: the CA is not asked again, and the drawn time is kept.
        let again = check(
            &store,
            &ca,
            "web",
            b"der",
            "fp1",
            now + chrono::Duration::minutes(30),
        )
        .await
        .unwrap();
        assert!(matches!(again, AriOutcome::Scheduled { renew_at: r, .. } if r == renew_at));
        assert_eq!(*ca.asked.lock().unwrap(), 1);
        assert!(!answered(&store, "web", "fp1", "other"));
        assert!(answered(&store, "web", "fp1", "acme"));
        // After it: asked again; the moved window is open now, finish by its end (at least 1 h).
        let t = now + chrono::Duration::hours(2);
        let AriOutcome::Open(f) = check(&store, &ca, "web", b"der", "fp1", t).await.unwrap() else {
            panic!("a window in the past must open");
        };
        assert_eq!(f.check, "renewal_window_open");
        assert_eq!(f.deadline_hours, Some(1));
        assert_eq!(*ca.asked.lock().unwrap(), 2);
    }

    #[tokio::test]
    async fn no_ari_a_new_certificate_and_errors() {
        let store = crate::store::MemoryStore::new();
        let now = Utc::now();
        let ca = scripted(vec![
            Err(IssuerError::Unsupported("no renewalInfo".into())),
            Err(IssuerError::Network("connection refused".into())),
        ]);
        assert!(matches!(
            check(&store, &ca, "web", b"der", "fp1", now).await.unwrap(),
            AriOutcome::Unsupported
        ));
        assert!(!answered(&store, "web", "fp1", "acme"));
        // A different certificate (after a reissue) is asked about at once; an error is
        // reported, not taken as "no window".
        let e = check(&store, &ca, "web", b"der", "fp2", now)
            .await
            .unwrap_err();
        assert!(e.contains("connection refused"), "{e}");
        assert_eq!(*ca.asked.lock().unwrap(), 2);
    }

    #[tokio::test]
    async fn a_window_that_does_not_end_after_it_starts_is_no_answer() {
        let store = crate::store::MemoryStore::new();
        let now = Utc::now();
        let ca = scripted(vec![
            Ok(Some(window(now - chrono::Duration::hours(1), 0, 3600))),
            Ok(Some(window(now - chrono::Duration::hours(1), -5, 3600))),
        ]);
        for (fp, what) in [("fp1", "empty"), ("fp2", "backwards")] {
            let outcome = check(&store, &ca, "web", b"der", fp, now).await.unwrap();
            assert!(
                matches!(outcome, AriOutcome::Unsupported),
                "a {what} window opened: {outcome:?}"
            );
            assert!(!answered(&store, "web", fp, "acme"), "{what}");
        }
    }

    #[test]
    fn draws_inside_the_window() {
        let start = Utc::now();
        let end = start + chrono::Duration::seconds(10);
        for _ in 0..200 {
            let t = draw(start, end);
            assert!(start <= t && t < end);
        }
        assert_eq!(draw(end, start), end);
    }
}
