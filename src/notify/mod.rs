//! Notifications: telling a certificate's owner that an approval is needed, that a case was
//! escalated, completed, rolled back, failed or denied, or that the blast-radius breaker
//! opened.
//!
//! A notification is queued durably in the store's outbox ([`enqueue`], one flushed write
//! per target) and delivered separately ([`deliver_due`], [`deliver_until`]), so a sequence
//! never waits on a receiver and a failing receiver never blocks one. Each queued item is
//! retried with exponential backoff and abandoned after the configured number of attempts;
//! deliveries and abandonments are written to the audit log.
//!
//! Targets: a webhook (a JSON POST signed with HMAC-SHA256, see [`webhook`]) and an exec
//! hook (a shell command given the JSON on stdin, see [`exec`]). Both receive the same JSON:
//! the [`Notification`] plus `id` (a delivery id, the same on every attempt, for receivers to
//! drop duplicates) and `attempt` (1, 2, ...).

pub mod config;
mod deliver;
pub mod exec;
pub mod outbox;
pub mod webhook;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::store::{Store, StoreError};

pub use config::{ExecTarget, NotifyConfig, OwnerTargets, Target, WebhookTarget};
pub use deliver::{DeliveryReport, DeliveryStore, deliver_due, deliver_until};
pub use outbox::QueuedNotification;

/// What a notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyEvent {
    /// A case waits for the owner's (or a second person's) approval.
    ApprovalNeeded,
    /// A signal was escalated to a person instead of acted upon.
    Escalation,
    /// A sequence finished: the certificate was replaced (and the old one revoked).
    Completed,
    /// A sequence failed and its deployment was rolled back.
    RolledBack,
    /// A sequence failed and needs a person.
    Failed,
    /// The blast-radius breaker opened: automatic actions wait for a person.
    BreakerOpen,
    /// An approval was denied.
    Denied,
}

impl NotifyEvent {
    /// The event's name, as serialized and sent in `X-Certresponder-Event`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ApprovalNeeded => "approval_needed",
            Self::Escalation => "escalation",
            Self::Completed => "completed",
            Self::RolledBack => "rolled_back",
            Self::Failed => "failed",
            Self::BreakerOpen => "breaker_open",
            Self::Denied => "denied",
        }
    }
}

impl std::fmt::Display for NotifyEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One notification, as queued and (with a delivery id and attempt number) as sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// What happened.
    pub event: NotifyEvent,
    /// Whom it is for: the certificate's owner; chooses the targets (see
    /// [`NotifyConfig::targets_for`]).
    pub owner: Option<String>,
    /// The certificate it is about.
    pub cert: Option<String>,
    /// The case it is about.
    pub case: Option<u64>,
    /// One line for a person.
    pub summary: String,
    /// When the owner must act by (an approval's deadline), if anything is due.
    pub deadline: Option<DateTime<Utc>>,
    /// Structured detail for the receiver (the decision, the error, the breaker's count...).
    #[serde(default)]
    pub details: serde_json::Value,
    /// When the notification was made.
    pub created_at: DateTime<Utc>,
}

impl Notification {
    /// A notification made now, with no owner, certificate, case, deadline or details.
    pub fn new(event: NotifyEvent, summary: impl Into<String>) -> Self {
        Self {
            event,
            owner: None,
            cert: None,
            case: None,
            summary: summary.into(),
            deadline: None,
            details: serde_json::Value::Null,
            created_at: Utc::now(),
        }
    }

    /// The JSON a receiver gets: the notification with the delivery `id` and `attempt`.
    pub fn delivery_json(&self, id: &str, attempt: u32) -> Vec<u8> {
        let mut value = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        if let serde_json::Value::Object(map) = &mut value {
            map.insert("id".into(), id.into());
            map.insert("attempt".into(), attempt.into());
        }
        serde_json::to_vec(&value).unwrap_or_default()
    }
}

/// Queues `n` for delivery: one outbox item per target that applies to its owner (the
/// owner's own targets when configured, else the defaults). Returns `false`, and queues
/// nothing, when no target is configured for it. Never contacts a receiver.
pub fn enqueue(
    store: &dyn Store,
    cfg: &NotifyConfig,
    n: &Notification,
) -> Result<bool, StoreError> {
    let targets = cfg.targets_for(n.owner.as_deref());
    if targets.is_empty() {
        tracing::debug!(
            event = n.event.as_str(),
            owner = n.owner.as_deref().unwrap_or(""),
            cert = n.cert.as_deref().unwrap_or(""),
            case = n.case,
            "no notification target configured; not queued"
        );
        return Ok(false);
    }
    for target in targets {
        let item = QueuedNotification::new(n.clone(), target);
        let id = store.outbox_push(&item.encode()?)?;
        tracing::debug!(
            event = n.event.as_str(),
            target = item.target.kind(),
            delivery = %item.delivery_id,
            outbox = id,
            cert = n.cert.as_deref().unwrap_or(""),
            case = n.case,
            "notification queued"
        );
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    #[test]
    fn event_names() {
        for e in [
            NotifyEvent::ApprovalNeeded,
            NotifyEvent::Escalation,
            NotifyEvent::Completed,
            NotifyEvent::RolledBack,
            NotifyEvent::Failed,
            NotifyEvent::BreakerOpen,
            NotifyEvent::Denied,
        ] {
            let json = serde_json::to_string(&e).unwrap();
            assert_eq!(json, format!("\"{}\"", e.as_str()));
            assert_eq!(serde_json::from_str::<NotifyEvent>(&json).unwrap(), e);
        }
    }

    #[test]
    fn delivery_json_adds_id_and_attempt() {
        let mut n = Notification::new(NotifyEvent::ApprovalNeeded, "approve case 7");
        n.case = Some(7);
        n.details = serde_json::json!({"action": "revoke_reissue"});
        let v: serde_json::Value = serde_json::from_slice(&n.delivery_json("1-abc", 2)).unwrap();
        assert_eq!(v["id"], "1-abc");
        assert_eq!(v["attempt"], 2);
        assert_eq!(v["event"], "approval_needed");
        assert_eq!(v["case"], 7);
        assert_eq!(v["details"]["action"], "revoke_reissue");
        let back: Notification = serde_json::from_value(v).unwrap();
        assert_eq!(back, n);
    }

    #[test]
    fn enqueue_one_item_per_target() {
        let store = MemoryStore::new();
        let n = Notification::new(NotifyEvent::Completed, "done");
        assert!(!enqueue(&store, &NotifyConfig::default(), &n).unwrap());
        assert!(store.outbox_list().unwrap().is_empty());

        let cfg = NotifyConfig {
            webhook: Some(WebhookTarget {
                url: "http://127.0.0.1:1/".into(),
                secret_file: None,
            }),
            exec: Some(ExecTarget {
                command: "true".into(),
            }),
            ..NotifyConfig::default()
        };
        assert!(enqueue(&store, &cfg, &n).unwrap());
        let items = store.outbox_list().unwrap();
        assert_eq!(items.len(), 2);
        let first = QueuedNotification::decode(&items[0].1).unwrap();
        let second = QueuedNotification::decode(&items[1].1).unwrap();
        assert_eq!(first.target.kind(), "webhook");
        assert_eq!(second.target.kind(), "exec");
        assert_eq!(first.notification, n);
        assert_eq!(first.attempts, 0);
        assert_ne!(first.delivery_id, second.delivery_id);
    }
}
