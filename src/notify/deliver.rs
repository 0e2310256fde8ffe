//! Delivering what waits in the outbox: each due item is tried once per pass, several at a
//! time; a success removes it, a failure schedules the next attempt with backoff, and the
//! last allowed failure abandons it. Both ends are written to the audit log.
//!
//! One deliverer runs at a time (the daemon, or the CLI when no daemon runs): two passes
//! over the same outbox at once could send an item twice. Receivers should drop duplicates
//! by delivery id anyway, since a success that could not be recorded is sent again.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde::Serialize;
use tokio::task::JoinSet;

use super::config::{NotifyConfig, Target, backoff};
use super::exec;
use super::outbox::QueuedNotification;
use super::webhook::{self, AttemptError, Http};
use crate::audit::{self, AuditEntry};
use crate::store::Store;

/// Attempts in flight at once.
const CONCURRENCY: usize = 8;

/// A store delivery can run against: any [`Store`], including `dyn Store` and
/// `dyn Store + Send + Sync`. With the latter (or a concrete store) the delivery future is
/// `Send`, so it can be spawned beside a running sequence.
pub trait DeliveryStore: Store {
    /// The store as a plain trait object (for the audit log).
    fn as_store(&self) -> &dyn Store;
}

impl<T: Store> DeliveryStore for T {
    fn as_store(&self) -> &dyn Store {
        self
    }
}

impl<'a> DeliveryStore for dyn Store + 'a {
    fn as_store(&self) -> &dyn Store {
        self
    }
}

impl<'a> DeliveryStore for dyn Store + Send + Sync + 'a {
    fn as_store(&self) -> &dyn Store {
        self
    }
}

/// What a delivery run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DeliveryReport {
    /// Notifications delivered (and removed from the outbox).
    pub delivered: usize,
    /// Failed attempts that will be retried.
    pub failed: usize,
    /// Notifications given up on after their last attempt, or unreadable in the outbox
    /// (removed, logged and audited).
    pub abandoned: usize,
    /// Notifications still queued when the run ended.
    pub pending: usize,
    /// Store operations that failed (each logged); the items concerned stay as they were.
    pub store_errors: usize,
}

impl DeliveryReport {
    fn add(&mut self, other: &Self) {
        self.delivered += other.delivered;
        self.failed += other.failed;
        self.abandoned += other.abandoned;
        self.store_errors += other.store_errors;
    }
}

/// One pass over the outbox: every item whose next attempt is due is tried once
/// (concurrently, a few at a time, each bounded by the configured timeout). Never panics;
/// store errors are logged and counted.
pub async fn deliver_due<S: DeliveryStore + ?Sized>(
    store: &S,
    cfg: &NotifyConfig,
) -> DeliveryReport {
    let mut report = DeliveryReport::default();
    pass(store, cfg, &mut report).await;
    if let Some((pending, _)) = outstanding(store, &mut report) {
        report.pending = pending;
    }
    report
}

/// Delivers until the outbox is empty or `budget` is spent, sleeping until the next item is
/// due between passes. It always makes one pass; it starts no further pass past the budget
/// nor sleeps past it, but a pass in flight finishes (one attempt timeout at most). What is
/// left stays queued for the next run.
pub async fn deliver_until<S: DeliveryStore + ?Sized>(
    store: &S,
    cfg: &NotifyConfig,
    budget: Duration,
) -> DeliveryReport {
    let deadline = tokio::time::Instant::now() + budget;
    let mut total = DeliveryReport::default();
    loop {
        let mut report = DeliveryReport::default();
        pass(store, cfg, &mut report).await;
        total.add(&report);
        let Some((pending, next_due)) = outstanding(store, &mut total) else {
            break;
        };
        total.pending = pending;
        // A store that fails would fail again at once: leave the rest to the next run.
        if pending == 0 || report.store_errors > 0 {
            break;
        }
        let wait = next_due
            .map(|at| (at - Utc::now()).to_std().unwrap_or_default())
            .unwrap_or_default();
        let now = tokio::time::Instant::now();
        if now >= deadline || wait > deadline - now {
            break;
        }
        tokio::time::sleep(wait).await;
    }
    total
}

/// How many items are queued and when the earliest is due (now, for an unreadable one).
fn outstanding<S: DeliveryStore + ?Sized>(
    store: &S,
    report: &mut DeliveryReport,
) -> Option<(usize, Option<chrono::DateTime<Utc>>)> {
    let items = match store.outbox_list() {
        Ok(items) => items,
        Err(e) => {
            tracing::error!(error = %e, "cannot read the notification outbox");
            report.store_errors += 1;
            return None;
        }
    };
    let next = items
        .iter()
        .map(|(_, bytes)| {
            QueuedNotification::decode(bytes).map_or_else(|_| Utc::now(), |q| q.next_attempt_at)
        })
        .min();
    Some((items.len(), next))
}

async fn pass<S: DeliveryStore + ?Sized>(
    store: &S,
    cfg: &NotifyConfig,
    report: &mut DeliveryReport,
) {
    let items = match store.outbox_list() {
        Ok(items) => items,
        Err(e) => {
            tracing::error!(error = %e, "cannot read the notification outbox");
            report.store_errors += 1;
            return;
        }
    };
    let now = Utc::now();
    let mut due = Vec::new();
    for (id, bytes) in items {
        match QueuedNotification::decode(&bytes) {
            Ok(q) if q.next_attempt_at <= now => due.push((id, q)),
            Ok(_) => {}
            Err(reason) => discard(store.as_store(), id, &reason, report),
        }
    }
    if due.is_empty() {
        return;
    }
    let http = due
        .iter()
        .any(|(_, q)| matches!(q.target, Target::Webhook(_)))
        .then(|| Arc::new(Http::new()));
    let timeout = cfg.timeout();
    let mut queue = due.into_iter();
    let mut running = JoinSet::new();
    loop {
        while running.len() < CONCURRENCY {
            let Some((id, q)) = queue.next() else {
                break;
            };
            let http = http.clone();
            running.spawn(async move {
                let result = attempt(&q, http.as_deref(), timeout).await;
                (id, q, result)
            });
        }
        let Some(joined) = running.join_next().await else {
            break;
        };
        match joined {
            Ok((id, q, result)) => record(store.as_store(), cfg, id, q, result, report),
            // The item stays as it was and is tried again on the next pass.
            Err(e) => tracing::error!(error = %e, "a notification delivery task failed"),
        }
    }
}

/// One attempt at delivering `q`.
async fn attempt(
    q: &QueuedNotification,
    http: Option<&Http>,
    timeout: Duration,
) -> Result<(), AttemptError> {
    let n = &q.notification;
    let body = n.delivery_json(&q.delivery_id, q.attempts.saturating_add(1));
    match &q.target {
        Target::Webhook(w) => {
            let fallback;
            let http = match http {
                Some(h) => h,
                None => {
                    fallback = Http::new();
                    &fallback
                }
            };
            webhook::post(http, w, n.event, &q.delivery_id, body, timeout).await
        }
        Target::Exec(e) => {
            let env = exec::environment(n, &q.delivery_id);
            exec::run(e, &env, body, timeout)
                .await
                .map_err(|message| AttemptError {
                    message,
                    retry_after: None,
                    status: None,
                })
        }
    }
}

/// Where a target delivers, for logs and audit records: the webhook's scheme and host (its
/// path may hold a token), nothing for an exec hook (its command line may hold arguments
/// the owner would rather keep out of logs).
fn receiver(target: &Target) -> String {
    match target {
        Target::Webhook(w) => webhook::redacted_url(&w.url),
        Target::Exec(_) => String::new(),
    }
}

fn record(
    store: &dyn Store,
    cfg: &NotifyConfig,
    id: u64,
    mut q: QueuedNotification,
    result: Result<(), AttemptError>,
    report: &mut DeliveryReport,
) {
    let n = &q.notification;
    let kind = q.target.kind();
    let attempts = q.attempts.saturating_add(1);
    let err = match result {
        Ok(()) => {
            report.delivered += 1;
            tracing::info!(
                event = n.event.as_str(),
                target = kind,
                receiver = %receiver(&q.target),
                delivery = %q.delivery_id,
                cert = n.cert.as_deref().unwrap_or(""),
                case = n.case,
                attempts,
                "notification delivered"
            );
            remove(store, id, report);
            audit_outcome(store, &q, attempts, "delivered", None, report);
            return;
        }
        Err(err) => err,
    };
    if attempts >= cfg.attempts {
        report.abandoned += 1;
        tracing::warn!(
            event = n.event.as_str(),
            target = kind,
            receiver = %receiver(&q.target),
            delivery = %q.delivery_id,
            cert = n.cert.as_deref().unwrap_or(""),
            case = n.case,
            attempts,
            error = %err.message,
            "notification abandoned after its last attempt"
        );
        remove(store, id, report);
        audit_outcome(store, &q, attempts, "abandoned", Some(&err.message), report);
        return;
    }
    report.failed += 1;
    if let Some(status) = err.status.filter(|s| webhook::is_rejection(*s)) {
        tracing::warn!(
            event = n.event.as_str(),
            receiver = %receiver(&q.target),
            delivery = %q.delivery_id,
            status,
            "the webhook rejects notifications; check its configuration"
        );
    }
    let wait = backoff(cfg.retry_base_ms, attempts).max(err.retry_after.unwrap_or_default());
    tracing::info!(
        event = n.event.as_str(),
        target = kind,
        receiver = %receiver(&q.target),
        delivery = %q.delivery_id,
        cert = n.cert.as_deref().unwrap_or(""),
        case = n.case,
        attempts,
        retry_in_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
        error = %err.message,
        "notification delivery failed; will retry"
    );
    q.failed(err.message, Utc::now(), wait);
    let saved = q.encode().and_then(|bytes| store.outbox_put(id, &bytes));
    if let Err(e) = saved {
        tracing::error!(error = %e, outbox = id, "cannot record a failed notification attempt");
        report.store_errors += 1;
    }
}

fn remove(store: &dyn Store, id: u64, report: &mut DeliveryReport) {
    if let Err(e) = store.outbox_remove(id) {
        tracing::error!(error = %e, outbox = id, "cannot remove a notification from the outbox");
        report.store_errors += 1;
    }
}

fn audit_outcome(
    store: &dyn Store,
    q: &QueuedNotification,
    attempts: u32,
    outcome: &str,
    error: Option<&str>,
    report: &mut DeliveryReport,
) {
    let n = &q.notification;
    let mut data = serde_json::json!({
        "event": n.event.as_str(),
        "target": q.target.kind(),
        "delivery": q.delivery_id,
        "attempts": attempts,
        "outcome": outcome,
    });
    if let (Target::Webhook(_), serde_json::Value::Object(map)) = (&q.target, &mut data) {
        map.insert("receiver".into(), receiver(&q.target).into());
    }
    if let (Some(error), serde_json::Value::Object(map)) = (error, &mut data) {
        map.insert("error".into(), error.into());
    }
    let entry = AuditEntry {
        kind: "notification",
        actor: "certresponder",
        cert: n.cert.as_deref(),
        case: n.case,
        data,
    };
    if let Err(e) = audit::append(store, entry) {
        tracing::error!(error = %e, delivery = %q.delivery_id, "cannot audit a notification");
        report.store_errors += 1;
    }
}

/// Drops an outbox item that cannot be read (damaged, or written by a newer release).
fn discard(store: &dyn Store, id: u64, reason: &str, report: &mut DeliveryReport) {
    report.abandoned += 1;
    tracing::warn!(
        outbox = id,
        reason,
        "discarding an unreadable queued notification"
    );
    remove(store, id, report);
    let entry = AuditEntry {
        kind: "notification",
        actor: "certresponder",
        cert: None,
        case: None,
        data: serde_json::json!({
            "outbox": id,
            "outcome": "discarded",
            "error": format!("unreadable queued notification: {reason}"),
        }),
    };
    if let Err(e) = audit::append(store, entry) {
        tracing::error!(error = %e, outbox = id, "cannot audit a discarded notification");
        report.store_errors += 1;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::notify::{ExecTarget, Notification, NotifyEvent, enqueue};
    use crate::store::MemoryStore;

    fn exec_cfg(command: String, attempts: u32, timeout_secs: u64) -> NotifyConfig {
        NotifyConfig {
            attempts,
            retry_base_ms: 20,
            timeout_secs,
            exec: Some(ExecTarget { command }),
            ..NotifyConfig::default()
        }
    }

    fn queued(store: &MemoryStore) -> Vec<QueuedNotification> {
        store
            .outbox_list()
            .unwrap()
            .iter()
            .map(|(_, b)| QueuedNotification::decode(b).unwrap())
            .collect()
    }

    #[tokio::test]
    async fn exec_hook_gets_the_json_on_stdin() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("got.json");
        let cfg = exec_cfg(format!("cat > '{}'", out.display()), 3, 10);
        let store = MemoryStore::new();
        let mut n = Notification::new(NotifyEvent::ApprovalNeeded, "case 4 needs approval");
        n.owner = Some("team-web@example.com".into());
        n.cert = Some("www".into());
        n.case = Some(4);
        n.deadline = Some(Utc::now() + chrono::TimeDelta::hours(4));
        assert!(enqueue(&store, &cfg, &n).unwrap());
        let delivery_id = queued(&store)[0].delivery_id.clone();

        let report = deliver_due(&store, &cfg).await;
        assert_eq!(
            report,
            DeliveryReport {
                delivered: 1,
                ..DeliveryReport::default()
            }
        );
        assert!(store.outbox_list().unwrap().is_empty());
        let got: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
        assert_eq!(got["event"], "approval_needed");
        assert_eq!(got["id"], delivery_id.as_str());
        assert_eq!(got["attempt"], 1);
        let back: Notification = serde_json::from_value(got).unwrap();
        assert_eq!(back, n);
    }

    #[tokio::test]
    async fn failing_exec_is_retried_then_abandoned() {
        let dir = tempfile::tempdir().unwrap();
        let tries = dir.path().join("tries");
        let cfg = exec_cfg(
            format!(
                "echo \"$CERTRESPONDER_EVENT\" >> '{}'; exit 1",
                tries.display()
            ),
            3,
            10,
        );
        let store = MemoryStore::new();
        let n = Notification::new(NotifyEvent::RolledBack, "rolled back");
        enqueue(&store, &cfg, &n).unwrap();

        // The first pass tries once and schedules the retry with backoff.
        let first = deliver_due(&store, &cfg).await;
        assert_eq!((first.failed, first.pending), (1, 1));
        let item = &queued(&store)[0];
        assert_eq!(item.attempts, 1);
        assert_eq!(item.last_error.as_deref(), Some("exec hook: exit status 1"));
        assert!(item.next_attempt_at > Utc::now() - chrono::TimeDelta::seconds(1));
        // Not due yet: a second pass right away leaves it alone.
        let again = deliver_due(&store, &cfg).await;
        assert_eq!((again.failed, again.pending), (0, 1));

        let rest = deliver_until(&store, &cfg, Duration::from_secs(20)).await;
        assert_eq!(
            rest,
            DeliveryReport {
                failed: 1,
                abandoned: 1,
                ..DeliveryReport::default()
            }
        );
        assert!(store.outbox_list().unwrap().is_empty());
        let lines = std::fs::read_to_string(&tries).unwrap();
        assert_eq!(lines, "rolled_back\nrolled_back\nrolled_back\n");
    }

    #[tokio::test]
    async fn a_hung_receiver_does_not_block_past_the_timeout() {
        let cfg = exec_cfg("sleep 60".into(), 5, 1);
        let store = MemoryStore::new();
        enqueue(
            &store,
            &cfg,
            &Notification::new(NotifyEvent::BreakerOpen, "breaker open"),
        )
        .unwrap();
        let started = Instant::now();
        let report = deliver_due(&store, &cfg).await;
        let took = started.elapsed();
        assert!(
            took >= Duration::from_secs(1) && took < Duration::from_secs(4),
            "{took:?}"
        );
        assert_eq!((report.failed, report.pending), (1, 1));
        let item = &queued(&store)[0];
        assert!(
            item.last_error.as_deref().unwrap().contains("timed out"),
            "{:?}",
            item.last_error
        );

        // With a budget shorter than the next backoff, a run stops instead of waiting.
        let cfg = NotifyConfig {
            retry_base_ms: 60_000,
            ..cfg
        };
        let started = Instant::now();
        let report = deliver_until(&store, &cfg, Duration::from_secs(30)).await;
        assert!(started.elapsed() < Duration::from_secs(4));
        assert_eq!(report.pending, 1);
    }

    #[tokio::test]
    async fn items_are_delivered_concurrently() {
        let cfg = exec_cfg("sleep 1".into(), 2, 10);
        let store = MemoryStore::new();
        for i in 0..6 {
            enqueue(
                &store,
                &cfg,
                &Notification::new(NotifyEvent::Completed, format!("done {i}")),
            )
            .unwrap();
        }
        let started = Instant::now();
        let report = deliver_due(&store, &cfg).await;
        assert_eq!((report.delivered, report.pending), (6, 0));
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn unreadable_items_are_discarded() {
        let cfg = exec_cfg("true".into(), 2, 10);
        let store = MemoryStore::new();
        store.outbox_push(b"{not json").unwrap();
        let report = deliver_until(&store, &cfg, Duration::from_secs(5)).await;
        assert_eq!((report.abandoned, report.pending), (1, 0));
        assert!(store.outbox_list().unwrap().is_empty());
    }
}
