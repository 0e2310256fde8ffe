//! A notification as it waits in the store's outbox: what to send, where, and how its
//! delivery has gone so far.

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::Notification;
use super::config::Target;
use crate::store::StoreError;

/// Format version of a queued item.
const FORMAT: u8 = 1;

/// One outbox item: a notification bound for one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedNotification {
    /// Format version.
    pub v: u8,
    /// The delivery id sent with every attempt (`<created_at unix>-<random hex>`), so a
    /// receiver can drop a duplicate (an attempt that succeeded but was not recorded).
    pub delivery_id: String,
    /// What to send.
    pub notification: Notification,
    /// Where to send it.
    pub target: Target,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the next attempt is due.
    pub next_attempt_at: DateTime<Utc>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
}

impl QueuedNotification {
    /// A new item, due now.
    pub fn new(notification: Notification, target: Target) -> Self {
        let delivery_id = format!("{}-{}", notification.created_at.timestamp(), nonce());
        Self {
            v: FORMAT,
            delivery_id,
            notification,
            target,
            attempts: 0,
            next_attempt_at: Utc::now(),
            last_error: None,
        }
    }

    /// The bytes kept in the outbox.
    pub fn encode(&self) -> Result<Vec<u8>, StoreError> {
        serde_json::to_vec(self)
            .map_err(|e| StoreError::Backend(format!("cannot encode a notification: {e}")))
    }

    /// Reads an outbox item.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        let item: Self = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if item.v != FORMAT {
            return Err(format!("unknown format version {}", item.v));
        }
        Ok(item)
    }

    /// Records a failed attempt: the next one is due after `wait`.
    pub(crate) fn failed(&mut self, error: String, now: DateTime<Utc>, wait: std::time::Duration) {
        self.attempts = self.attempts.saturating_add(1);
        self.last_error = Some(error);
        let wait = TimeDelta::from_std(wait).unwrap_or(TimeDelta::MAX);
        self.next_attempt_at = now.checked_add_signed(wait).unwrap_or(now);
    }
}

/// 64 random bits in hex; falls back to the clock's nanoseconds should the system RNG fail.
fn nonce() -> String {
    use aws_lc_rs::rand::{SecureRandom, SystemRandom};
    let mut bytes = [0u8; 8];
    if SystemRandom::new().fill(&mut bytes).is_err() {
        let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default();
        bytes = nanos.to_be_bytes();
    }
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::{ExecTarget, NotifyEvent};

    #[test]
    fn round_trip_and_failure_bookkeeping() {
        let n = Notification::new(NotifyEvent::BreakerOpen, "breaker open");
        let mut item = QueuedNotification::new(
            n.clone(),
            Target::Exec(ExecTarget {
                command: "true".into(),
            }),
        );
        assert!(
            item.delivery_id
                .starts_with(&format!("{}-", n.created_at.timestamp()))
        );
        let back = QueuedNotification::decode(&item.encode().unwrap()).unwrap();
        assert_eq!(back, item);

        let now = Utc::now();
        item.failed(
            "exit status 1".into(),
            now,
            std::time::Duration::from_secs(2),
        );
        assert_eq!(item.attempts, 1);
        assert_eq!(item.next_attempt_at, now + TimeDelta::seconds(2));
        assert_eq!(item.last_error.as_deref(), Some("exit status 1"));

        assert!(QueuedNotification::decode(b"not json").is_err());
        let mut v: serde_json::Value = serde_json::from_slice(&item.encode().unwrap()).unwrap();
        v["v"] = 9.into();
        let err = QueuedNotification::decode(&serde_json::to_vec(&v).unwrap()).unwrap_err();
        assert!(err.contains("version 9"), "{err}");
    }
}
