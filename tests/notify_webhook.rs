//! Webhook notifications against a real HTTP receiver on 127.0.0.1: signed POSTs, retries
//! after a failure, and a receiver that never answers.
// Test helpers may panic: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lc_rs::hmac;
use bytes::Bytes;
use certresponder::notify::{
    self, DeliveryReport, Notification, NotifyConfig, NotifyEvent, QueuedNotification,
};
use certresponder::store::{MemoryStore, SledStore, Store};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

const SECRET: &str = "webhook-test-key-8c1f";

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
struct Seen {
    at: Instant,
    headers: http::HeaderMap,
    body: Vec<u8>,
}

/// An HTTP/1.1 receiver that answers the n-th request with `statuses[n]` (the last one
/// repeated), and records every request.
async fn receiver(statuses: Vec<(u16, Option<&'static str>)>) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let log = Arc::clone(&seen);
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let log = Arc::clone(&log);
            let statuses = statuses.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                    let log = Arc::clone(&log);
                    let statuses = statuses.clone();
                    async move {
                        let at = Instant::now();
                        let (parts, body) = req.into_parts();
                        let body = body.collect().await?.to_bytes().to_vec();
                        let n = {
                            let mut log = log.lock().unwrap();
                            log.push(Seen {
                                at,
                                headers: parts.headers,
                                body,
                            });
                            log.len() - 1
                        };
                        let (status, retry_after) = statuses[n.min(statuses.len() - 1)];
                        let mut rsp = Response::builder().status(status);
                        if let Some(r) = retry_after {
                            rsp = rsp.header("retry-after", r);
                        }
                        Ok::<_, hyper::Error>(rsp.body(Full::new(Bytes::from("busy"))).unwrap())
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    (format!("http://{addr}/hooks/certresponder?token=abc"), seen)
}

fn config(dir: &Path, url: &str, extra: &str) -> NotifyConfig {
    let key = dir.join("webhook.secret");
    std::fs::write(&key, format!("{SECRET}\n")).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let text = format!("{extra}\n[webhook]\nurl = \"{url}\"\nsecret_file = \"webhook.secret\"\n");
    let table: toml::Table = toml::from_str(&text).unwrap();
    NotifyConfig::parse(&table, dir).unwrap()
}

fn sign(body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, SECRET.as_bytes());
    format!("sha256={}", hex::encode(hmac::sign(&key, body).as_ref()))
}

fn header<'a>(seen: &'a Seen, name: &str) -> &'a str {
    seen.headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

#[tokio::test]
async fn signed_post_is_retried_after_a_503_and_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let (url, seen) = receiver(vec![(503, Some("1")), (200, None)]).await;
    let cfg = config(
        dir.path(),
        &url,
        "attempts = 4\nretry_base_ms = 50\ntimeout_secs = 5",
    );
    let store = SledStore::open(&dir.path().join("db")).unwrap();

    let mut n = Notification::new(NotifyEvent::ApprovalNeeded, "case 12 waits for approval");
    n.owner = Some("team-web@example.com".into());
    n.cert = Some("www-example".into());
    n.case = Some(12);
    n.deadline = Some(n.created_at + chrono::TimeDelta::hours(4));
    n.details = serde_json::json!({"action": "revoke_reissue", "approval": "owner"});
    assert!(notify::enqueue(&store, &cfg, &n).unwrap());
    let queued = store.outbox_list().unwrap();
    assert_eq!(queued.len(), 1);
    let delivery_id = QueuedNotification::decode(&queued[0].1)
        .unwrap()
        .delivery_id;

    let report = notify::deliver_until(&store, &cfg, Duration::from_secs(20)).await;
    assert_eq!(
        report,
        DeliveryReport {
            delivered: 1,
            failed: 1,
            ..DeliveryReport::default()
        }
    );
    assert!(store.outbox_list().unwrap().is_empty());

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "one failed attempt, then the delivery");
    // The receiver's Retry-After (1 s) outweighed the 50 ms backoff.
    assert!(seen[1].at - seen[0].at >= Duration::from_millis(900));
    for (i, req) in seen.iter().enumerate() {
        assert_eq!(header(req, "content-type"), "application/json");
        assert_eq!(header(req, "x-certresponder-event"), "approval_needed");
        assert_eq!(header(req, "x-certresponder-delivery"), delivery_id);
        assert_eq!(header(req, "x-certresponder-signature"), sign(&req.body));
        let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
        assert_eq!(body["id"], delivery_id.as_str());
        assert_eq!(body["attempt"], i + 1);
        assert_eq!(body["event"], "approval_needed");
        assert_eq!(body["cert"], "www-example");
        assert_eq!(body["case"], 12);
        assert_eq!(body["details"]["approval"], "owner");
        let back: Notification = serde_json::from_value(body).unwrap();
        assert_eq!(back, n);
    }

    // The delivery is audited; neither the key nor the URL's token is.
    let records = store.audit_records().unwrap();
    let audited: Vec<serde_json::Value> = records
        .iter()
        .map(|(_, b)| serde_json::from_slice(b).unwrap())
        .filter(|r: &serde_json::Value| r["kind"] == "notification")
        .collect();
    assert_eq!(audited.len(), 1, "{audited:?}");
    assert_eq!(audited[0]["data"]["outcome"], "delivered");
    assert_eq!(audited[0]["data"]["attempts"], 2);
    assert_eq!(audited[0]["data"]["target"], "webhook");
    assert_eq!(audited[0]["case"], 12);
    for (_, bytes) in &records {
        let text = String::from_utf8_lossy(bytes);
        assert!(
            !text.contains(SECRET) && !text.contains("token=abc"),
            "{text}"
        );
    }
}

/// Accepts connections and never answers.
async fn silent_receiver() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            held.push(tcp);
        }
    });
    format!("http://{addr}/")
}

#[tokio::test]
async fn a_receiver_that_never_answers_is_abandoned_within_the_budget() {
    let dir = tempfile::tempdir().unwrap();
    let url = silent_receiver().await;
    let cfg = config(
        dir.path(),
        &url,
        "attempts = 2\nretry_base_ms = 100\ntimeout_secs = 1",
    );
    let store = MemoryStore::new();
    let n = Notification::new(NotifyEvent::BreakerOpen, "the breaker opened");
    assert!(notify::enqueue(&store, &cfg, &n).unwrap());

    let started = Instant::now();
    let report = notify::deliver_until(&store, &cfg, Duration::from_secs(30)).await;
    let took = started.elapsed();
    // Two attempts of one second each, 100 ms apart.
    assert!(took >= Duration::from_secs(2), "{took:?}");
    assert!(took < Duration::from_secs(4), "{took:?}");
    assert_eq!(
        report,
        DeliveryReport {
            failed: 1,
            abandoned: 1,
            ..DeliveryReport::default()
        }
    );
    assert!(store.outbox_list().unwrap().is_empty());
}

#[tokio::test]
async fn a_run_stops_at_its_budget_and_leaves_the_rest_queued() {
    let dir = tempfile::tempdir().unwrap();
    let url = silent_receiver().await;
    let cfg = config(
        dir.path(),
        &url,
        "attempts = 5\nretry_base_ms = 100\ntimeout_secs = 1",
    );
    let store = MemoryStore::new();
    let n = Notification::new(NotifyEvent::Escalation, "a low-confidence signal");
    assert!(notify::enqueue(&store, &cfg, &n).unwrap());

    let budget = Duration::from_millis(1500);
    let started = Instant::now();
    let report = notify::deliver_until(&store, &cfg, budget).await;
    let took = started.elapsed();
    // No pass starts past the budget; one in flight may finish (one attempt timeout).
    assert!(
        took < budget + cfg.timeout() + Duration::from_secs(1),
        "{took:?}"
    );
    assert_eq!(report.pending, 1);
    assert_eq!(report.delivered + report.abandoned, 0);
    let left = store.outbox_list().unwrap();
    let item = QueuedNotification::decode(&left[0].1).unwrap();
    assert_eq!(item.attempts as usize, report.failed);
    assert!(item.attempts >= 1);
    let error = item.last_error.unwrap();
    assert!(error.contains("no answer within"), "{error}");
}
