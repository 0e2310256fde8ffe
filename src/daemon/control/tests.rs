//! The control socket over a real Unix socket in a temporary directory, against a daemon's
//! shared state on the in-memory store with a real internal CA and real files: routing,
//! validation, the peer as the acting person, a posted signal starting a case, approvals
//! refused to the same person twice, rollback, and the socket's own file.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use certresponder_inventory::{Bundle, SecretPem};
use http::Method;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinHandle;

use super::*;
use crate::govern::Governor;
use crate::policy::Policy;
use crate::records::case::{CaseState, SequenceKind, Trigger};
use crate::respond::engine::tests::{Fixture, fixture};
use crate::store::Store as _;

/// Every key exposure waits for two people.
pub(crate) const TWO_PERSON: &str = r#"
[[rule]]
name = "hold"
checks = ["key_exposed"]
min_confidence = "high"
action = "revoke_reissue"
approval = "two_person"
"#;

pub(crate) struct Daemon {
    pub(crate) f: Fixture,
    pub(crate) shared: Arc<Shared>,
    runner: UnboundedReceiver<Vec<u64>>,
    socket: PathBuf,
    pub(crate) server: JoinHandle<()>,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Daemon {
    /// A daemon's shared state with `policy` (the built-in one when `None`), answering a
    /// socket in the fixture's directory.
    pub(crate) async fn start(policy: Option<&str>) -> Self {
        let f = fixture("");
        let engine = f.engine();
        let policy = policy.map_or_else(Policy::builtin, |text| {
            Policy::parse(Path::new("test-policy.toml"), text).unwrap()
        });
        let mut cfg = f.cfg.clone();
        cfg.daemon.control_socket = f.path("run/certresponder/control.sock");
        cfg.daemon.control_group = None;
        let listener = bind(&cfg.daemon).unwrap();
        let socket = cfg.daemon.control_socket.clone();
        let (shared, runner) = Shared::new(
            f.store.clone(),
            Loaded {
                cfg,
                gov: Arc::new(Governor::new(engine, policy)),
                loaded_at: Utc::now(),
            },
        );
        let server = tokio::spawn(serve(Arc::clone(&shared), listener));
        Self {
            f,
            shared,
            runner,
            socket,
            server,
        }
    }

    pub(crate) async fn register(&self, name: &str) -> certresponder_inventory::ManagedCert {
        let engine = self.shared.loaded().gov.engine().clone();
        self.f.register(&engine, name, None).await
    }

    async fn call(&self, method: Method, path: &str, body: &str) -> (StatusCode, Value) {
        let (status, bytes) =
            client::send(&self.socket, method, path, Bytes::from(body.to_string()))
                .await
                .unwrap();
        let v = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{path}: {e}: {}", String::from_utf8_lossy(&bytes)));
        (status, v)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, "").await
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, &body.to_string()).await
    }

    /// Posts a key exposure about `cert`.
    pub(crate) async fn expose(&self, cert: &str) -> (StatusCode, Value) {
        self.post(
            "/v1/signals",
            json!({
                "cert": cert,
                "check": "key_exposed",
                "message": format!("the key of {cert} was pasted in a chat"),
                "evidence": {"channel": "#ops"},
                "source": "siem",
            }),
        )
        .await
    }
}

/// Writes `bytes` to the socket as they are and returns what comes back until the server
/// closes the connection (which it may do before reading everything: then the write
/// fails, and the answer is still there to read).
async fn raw(socket: &Path, bytes: &[u8]) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut s = tokio::net::UnixStream::connect(socket).await.unwrap();
    let _ = s.write_all(bytes).await;
    // The server may close while this side still sends: the answer already read is kept
    // when the connection is then reset.
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let read_all = async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read_all)
        .await
        .unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

/// Asserts a 400-class answer whose reason contains every one of `says`.
fn refused(answer: &(StatusCode, Value), status: StatusCode, says: &[&str]) {
    assert_eq!(answer.0, status, "{:#}", answer.1);
    let reason = answer.1["error"].as_str().unwrap_or_default();
    for s in says {
        assert!(reason.contains(s), "`{reason}` does not say `{s}`");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_paths_wrong_methods_and_bad_queries_are_refused() {
    let d = Daemon::start(None).await;
    refused(
        &d.get("/v1/nothing").await,
        StatusCode::NOT_FOUND,
        &["/v1/nothing"],
    );
    refused(&d.get("/v2/status").await, StatusCode::NOT_FOUND, &[]);
    refused(&d.get("/v1/cases/").await, StatusCode::NOT_FOUND, &[]);
    refused(&d.get("/v1/cases/1/2/3").await, StatusCode::NOT_FOUND, &[]);
    refused(
        &d.get("/v1/cases/12").await,
        StatusCode::NOT_FOUND,
        &["no case 12"],
    );
    refused(
        &d.get("/v1/cases/twelve").await,
        StatusCode::BAD_REQUEST,
        &["`twelve`"],
    );
    refused(
        &d.get("/v1/signals?every=1").await,
        StatusCode::BAD_REQUEST,
        &["`every`"],
    );
    refused(
        &d.get("/v1/signals?all=maybe").await,
        StatusCode::BAD_REQUEST,
        &["`maybe`"],
    );
    refused(
        &d.get("/v1/status?all=1").await,
        StatusCode::BAD_REQUEST,
        &["`all`"],
    );
    let (status, bytes) = client::send(
        &d.socket,
        Method::POST,
        "/v1/status",
        Bytes::from_static(b"{}"),
    )
    .await
    .unwrap();
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(String::from_utf8_lossy(&bytes).contains("takes GET"));
    refused(
        &d.get("/v1/rollback").await,
        StatusCode::METHOD_NOT_ALLOWED,
        &["takes POST"],
    );
    refused(
        &d.call(Method::DELETE, "/v1/signals", "").await,
        StatusCode::METHOD_NOT_ALLOWED,
        &["GET, POST"],
    );
    // The listings answer.
    for path in [
        "/v1/inventory",
        "/v1/inventory?all=1",
        "/v1/signals?all",
        "/v1/cases",
    ] {
        let (status, v) = d.get(path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {v:#}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_signals_get_a_400_naming_the_field() {
    let d = Daemon::start(None).await;
    d.register("web").await;
    let ok = || {
        json!({
            "cert": "web",
            "check": "key_exposed",
            "message": "seen",
        })
    };
    let with = |k: &str, v: Value| {
        let mut b = ok();
        b[k] = v;
        b
    };
    let bad = StatusCode::BAD_REQUEST;
    refused(
        &d.call(Method::POST, "/v1/signals", "{\"cert\": ").await,
        bad,
        &["malformed JSON"],
    );
    refused(
        &d.call(Method::POST, "/v1/signals", "").await,
        bad,
        &["JSON object"],
    );
    refused(
        &d.call(Method::POST, "/v1/signals", "[1]").await,
        bad,
        &["JSON object"],
    );
    refused(
        &d.post("/v1/signals", with("severity", json!(9))).await,
        bad,
        &["`severity`"],
    );
    refused(
        &d.post("/v1/signals", json!({"cert": "web", "message": "x"}))
            .await,
        bad,
        &["missing field `check`"],
    );
    refused(
        &d.post("/v1/signals", with("cert", json!("nope"))).await,
        bad,
        &["field `cert`", "`nope`"],
    );
    refused(
        &d.post("/v1/signals", with("cert", json!(7))).await,
        bad,
        &["field `cert`"],
    );
    refused(
        &d.post("/v1/signals", with("check", json!("astrology")))
            .await,
        bad,
        &["field `check`", "`astrology`", "key_exposed"],
    );
    refused(
        &d.post("/v1/signals", with("confidence", json!("certain")))
            .await,
        bad,
        &["field `confidence`", "low, medium, high, confirmed"],
    );
    refused(
        &d.post("/v1/signals", with("confidence", json!(3))).await,
        bad,
        &["field `confidence`"],
    );
    refused(
        &d.post("/v1/signals", with("message", json!("  "))).await,
        bad,
        &["field `message`"],
    );
    refused(
        &d.post("/v1/signals", with("evidence", json!("a string")))
            .await,
        bad,
        &["field `evidence`"],
    );
    refused(
        &d.post("/v1/signals", with("source", json!("a b/c"))).await,
        bad,
        &["field `source`"],
    );
    // Past 1 MiB: announced, or found while reading a chunked body.
    let head = format!(
        "POST /v1/signals HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n{{\"cert\": ",
        MAX_BODY + 1
    );
    let answer = raw(&d.socket, head.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("larger than"), "{answer}");
    let mut chunked =
        b"POST /v1/signals HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
    let chunk = 64 * 1024;
    for _ in 0..=MAX_BODY / chunk {
        chunked.extend_from_slice(format!("{chunk:x}\r\n").as_bytes());
        chunked.extend(std::iter::repeat_n(b' ', chunk));
        chunked.extend_from_slice(b"\r\n");
    }
    let answer = raw(&d.socket, &chunked).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    // Nothing was recorded, and nothing started.
    assert!(d.f.store.list_signals().unwrap().is_empty());
    assert!(d.f.store.list_cases().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_posted_signal_starts_a_case_as_the_policy_says() {
    let mut d = Daemon::start(None).await;
    d.register("web").await;
    let (status, v) = d.expose("web").await;
    assert_eq!(status, StatusCode::OK, "{v:#}");
    let signal = &v["signal"];
    assert_eq!(signal["check"], "key_exposed");
    assert_eq!(
        signal["confidence"], "confirmed",
        "the vocabulary's confidence"
    );
    assert_eq!(signal["source"], "siem");
    assert_eq!(signal["evidence"]["details"]["channel"], "#ops");
    let me = Identity::current().unwrap();
    assert_eq!(signal["evidence"]["reporter"], me.to_string(), "{v:#}");
    let run = v["applied"]["run"].as_array().unwrap();
    assert_eq!(run.len(), 1, "{v:#}");
    let id = run[0].as_u64().unwrap();
    assert_eq!(
        d.runner.recv().await,
        Some(vec![id]),
        "handed to the runner"
    );
    let case = d.f.store.get_case(id).unwrap().unwrap();
    assert_eq!(case.cert, "web");
    assert_eq!(case.kind, SequenceKind::RevokeReissue);
    assert_eq!(case.state, CaseState::Running);
    assert_eq!(
        case.trigger.signals,
        [signal["dedup_key"].as_str().unwrap()]
    );
    // The signal is on record and in the audit log, as posted by the peer.
    let (_, listed) = d.get("/v1/signals").await;
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed:#}");
    let (records, _) = crate::audit::readable_records(d.f.store.as_ref()).unwrap();
    assert!(
        records
            .iter()
            .any(|r| r.kind == "signal" && r.actor == me.to_string()),
        "{records:#?}"
    );
    // The same report again, while its case runs, is new evidence: it gets its own signal,
    // and the policy waits for the running case.
    let (status, again) = d.expose("web").await;
    assert_eq!(status, StatusCode::OK, "{again:#}");
    assert_ne!(again["signal"]["dedup_key"], signal["dedup_key"]);
    assert_eq!(again["applied"]["run"], json!([]), "{again:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn approvals_are_the_peers_and_refused_twice() {
    let mut d = Daemon::start(Some(TWO_PERSON)).await;
    d.register("web").await;
    d.register("api").await;
    let (status, v) = d.expose("web").await;
    assert_eq!(status, StatusCode::OK, "{v:#}");
    let waiting = v["applied"]["waiting"].as_array().unwrap();
    assert_eq!(waiting.len(), 1, "{v:#}");
    let id = waiting[0].as_u64().unwrap();
    let me = Identity::current().unwrap();

    let (status, v) = d.post(&format!("/v1/cases/{id}/approve"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{v:#}");
    assert_eq!(v["runnable"], false, "{v:#}");
    assert_eq!(v["still_needed"], 1, "{v:#}");
    assert_eq!(v["by"], me.to_string());
    // The same person again: refused, with the reason; the case still waits.
    refused(
        &d.call(Method::POST, &format!("/v1/cases/{id}/approve"), "")
            .await,
        StatusCode::FORBIDDEN,
        &["already approved"],
    );
    let case = d.f.store.get_case(id).unwrap().unwrap();
    assert_eq!(case.state, CaseState::AwaitingApproval);
    assert_eq!(case.approval.unwrap().approvals[0].uid, me.uid);
    assert!(d.runner.try_recv().is_err(), "nothing was started");

    refused(
        &d.post(&format!("/v1/cases/{id}/approve"), json!({"as": "root"}))
            .await,
        StatusCode::BAD_REQUEST,
        &["unknown field `as`"],
    );
    refused(
        &d.post("/v1/cases/99/approve", json!({})).await,
        StatusCode::NOT_FOUND,
        &["no case 99"],
    );
    refused(
        &d.post(&format!("/v1/cases/{id}/deny"), json!({"reason": " "}))
            .await,
        StatusCode::BAD_REQUEST,
        &["field `reason`"],
    );
    refused(
        &d.post(&format!("/v1/cases/{id}/deny"), json!({})).await,
        StatusCode::BAD_REQUEST,
        &["missing field `reason`"],
    );
    let (status, v) = d
        .post(
            &format!("/v1/cases/{id}/deny"),
            json!({"reason": "a test key"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v:#}");
    assert_eq!(v["state"], "denied", "{v:#}");
    assert_eq!(v["approval"]["denied"]["uid"], me.uid);
    refused(
        &d.post(&format!("/v1/cases/{id}/approve"), json!({})).await,
        StatusCode::FORBIDDEN,
        &["was denied"],
    );

    // Once a second person has approved (recorded here directly: this process is one
    // person), the peer's approval makes it run.
    let (_, v) = d.expose("api").await;
    let id = v["applied"]["waiting"][0].as_u64().unwrap();
    let gov = &d.shared.loaded().gov;
    let other = Identity {
        name: "someone-else".into(),
        uid: me.uid.wrapping_add(1),
        basis: Default::default(),
    };
    gov.approve(id, &other, Utc::now()).unwrap();
    let (status, v) = d.post(&format!("/v1/cases/{id}/approve"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{v:#}");
    assert_eq!(v["runnable"], true, "{v:#}");
    assert_eq!(v["not_started"], Value::Null, "{v:#}");
    assert_eq!(d.runner.recv().await, Some(vec![id]));
}

#[tokio::test(flavor = "multi_thread")]
async fn rollback_restores_the_previous_bundle_and_refuses_what_is_not_allowed() {
    let d = Daemon::start(None).await;
    let entry = d.register("web").await;
    let files = || {
        (
            std::fs::read(&entry.paths.cert).unwrap(),
            std::fs::read(entry.paths.key.as_ref().unwrap()).unwrap(),
        )
    };
    d.f.store
        .append_bundle(&Bundle::read_current(&entry, Utc::now()).unwrap())
        .unwrap();
    let before = files();
    d.register("web").await;
    d.f.store
        .append_bundle(&Bundle::read_current(&entry, Utc::now()).unwrap())
        .unwrap();
    assert_ne!(files(), before);

    let bad = StatusCode::BAD_REQUEST;
    refused(
        &d.post("/v1/rollback", json!({})).await,
        bad,
        &["missing field `cert`"],
    );
    refused(
        &d.post("/v1/rollback", json!({"cert": "nope"})).await,
        bad,
        &["field `cert`", "`nope`"],
    );
    refused(
        &d.post("/v1/rollback", json!({"cert": "web", "force": "yes"}))
            .await,
        bad,
        &["field `force`"],
    );
    refused(
        &d.post("/v1/rollback", json!({"cert": "web", "dry_run": true}))
            .await,
        bad,
        &["unknown field `dry_run`"],
    );
    refused(
        &d.post("/v1/rollback", json!({"cert": "web", "to": "zzzz"}))
            .await,
        bad,
        &["no bundle `zzzz`"],
    );
    let current = Bundle::current_of(&d.f.store.bundles("web").unwrap())
        .unwrap()
        .id
        .clone();
    refused(
        &d.post("/v1/rollback", json!({"cert": "web", "to": current}))
            .await,
        StatusCode::FORBIDDEN,
        &["already the current bundle"],
    );

    let (status, v) = d.post("/v1/rollback", json!({"cert": "web"})).await;
    assert_eq!(status, StatusCode::OK, "{v:#}");
    assert_eq!(v["ok"], true, "{v:#}");
    let me = Identity::current().unwrap();
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .starts_with(&format!("by {me}")),
        "{v:#}"
    );
    assert_eq!(files(), before, "the earlier bundle is deployed again");

    // Not while a case runs for the certificate.
    d.shared
        .loaded()
        .gov
        .engine()
        .open_case("web", SequenceKind::Reissue, false, None, trigger())
        .unwrap();
    refused(
        &d.post("/v1/rollback", json!({"cert": "web"})).await,
        StatusCode::FORBIDDEN,
        &["running"],
    );
}

fn trigger() -> Trigger {
    Trigger {
        source: "manual".into(),
        by: "test".into(),
        why: "test".into(),
        signals: Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn cases_are_shown_without_their_keys() {
    let d = Daemon::start(None).await;
    d.register("web").await;
    let engine = d.shared.loaded().gov.engine().clone();
    let mut case = engine
        .open_case("web", SequenceKind::Reissue, false, None, trigger())
        .unwrap();
    case.new_key = Some(SecretPem::new(
        "-----BEGIN PRIVATE KEY-----\nsecret\n-----END PRIVATE KEY-----\n".into(),
    ));
    d.f.store.put_case(&case).unwrap();
    let (status, list) = d.get("/v1/cases").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list[0]["id"], case.id, "{list:#}");
    let (status, one) = d.get(&format!("/v1/cases/{}", case.id)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["cert"], "web");
    assert!(one["evidence"]["audit"].is_array(), "{one:#}");
    for v in [&list, &one] {
        let text = v.to_string();
        assert!(
            !text.contains("PRIVATE KEY") && !text.contains("new_key"),
            "{text}"
        );
    }
    // What the CLI reads back is the case as stored, less its key.
    let detail = crate::service::cases::CaseDetail::try_from(one).unwrap();
    case.new_key = None;
    assert_eq!(detail.case, case);
}

#[tokio::test(flavor = "multi_thread")]
async fn status_tells_what_the_daemon_does_and_stopping_refuses_changes() {
    let d = Daemon::start(Some(TWO_PERSON)).await;
    d.register("web").await;
    d.expose("web").await;
    d.shared.job_started("scan");
    d.shared
        .job_finished("scan", Ok("scanned 1".into()), Some(Utc::now()));
    let (status, v) = d.get("/v1/status").await;
    assert_eq!(status, StatusCode::OK, "{v:#}");
    let st: Status = serde_json::from_value(v).unwrap();
    assert!(!st.stopping);
    assert_eq!(st.pid, std::process::id());
    assert_eq!(st.cases.get("awaiting_approval"), Some(&1), "{st:#?}");
    assert_eq!(st.waiting.len(), 1);
    assert_eq!(st.signals_open, 1);
    assert!(st.breaker.open.is_none());
    assert_eq!(st.jobs["scan"].runs, 1);
    assert_eq!(st.jobs["scan"].last_result.as_deref(), Some("scanned 1"));

    d.shared.stop();
    refused(
        &d.expose("web").await,
        StatusCode::SERVICE_UNAVAILABLE,
        &["stopping"],
    );
    let (status, v) = d.get("/v1/status").await;
    assert_eq!(status, StatusCode::OK, "reading still works");
    assert_eq!(v["stopping"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_socket_is_0660_replaces_a_stale_one_and_never_a_live_one() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = crate::config::DaemonConfig {
        control_socket: dir.path().join("run/sub/control.sock"),
        control_group: None,
        metrics_listen: None,
        roles: None,
        signals_per_minute: 60,
        deadline_check_secs: 60,
    };
    let first = bind(&cfg).unwrap();
    let path = &cfg.control_socket;
    let mode = std::fs::metadata(path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o660);
    let err = bind(&cfg).unwrap_err();
    assert!(err.contains("another daemon is running"), "{err}");
    drop(first);
    assert!(path.exists(), "a dropped listener leaves its file behind");
    let second = bind(&cfg).unwrap();
    drop(second);
    unbind(&cfg);
    assert!(!path.exists());

    std::fs::write(path, "not a socket").unwrap();
    let err = bind(&cfg).unwrap_err();
    assert!(err.contains("is not a socket"), "{err}");
    assert_eq!(std::fs::read_to_string(path).unwrap(), "not a socket");
    std::fs::remove_file(path).unwrap();

    let cfg = crate::config::DaemonConfig {
        control_group: Some("certresponder-no-such-group".into()),
        ..cfg
    };
    let err = bind(&cfg).unwrap_err();
    assert!(err.contains("`certresponder-no-such-group`"), "{err}");
}

#[test]
fn a_type_error_names_its_field() {
    let e = parse_body::<RollbackBody>(br#"{"cert": "web", "to": 5}"#, false).unwrap_err();
    assert!(e.message.starts_with("field `to`:"), "{}", e.message);
    let e = parse_body::<RollbackBody>(br#"{"cert": ["web"]}"#, false).unwrap_err();
    assert!(e.message.starts_with("field `cert`:"), "{}", e.message);
    let b = parse_body::<RollbackBody>(br#"{"cert": "web"}"#, false).unwrap();
    assert_eq!((b.cert.as_str(), b.to, b.force), ("web", None, false));
    parse_body::<ApproveBody>(b"", true).unwrap();
    parse_body::<ApproveBody>(b" {} ", true).unwrap();
}
