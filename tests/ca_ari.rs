//! End to end: ACME Renewal Information (RFC 9773) from `scan` to `respond`, with the real
//! binary and a real Pebble.
//!
//! Debian's Pebble 2.4 has no `renewalInfo`, so the test puts an in-process HTTPS front
//! before it: every request is passed to Pebble unchanged (with its `Host`, so the URLs
//! Pebble writes and the JWS `url` headers all name the front), the directory gains a
//! `renewalInfo` URL, and `GET /ari/<certid>` is answered by the test with a window it sets
//! per certificate. The front records the ARI ids asked for and the payload of every
//! newOrder, so the test sees what the CA saw: whether the order said which certificate it
//! `replaces`. It also does the CA's other ARI duty, which Pebble 2.4 lacks: an order that
//! `replaces` a certificate reflects the field (RFC 9773 §5), as instant-acme requires.
//! That reflecting can be switched off, so that the front serves renewalInfo while orders
//! come back as Pebble 2.4 writes them, without `replaces`, as some CAs in the field do.
//!
//! The scenario: two entries get Pebble certificates with `certresponder reissue`; the CA's
//! window for `due` lies in the past and for `later` a month ahead; `scan` raises
//! `renewal_window_open` for `due` alone and schedules `later` inside its window, and asks
//! again for neither before the CA's Retry-After; `respond` reissues `due` (new key, new
//! serial, newOrder carrying `replaces`) and leaves `later` alone. Through a front that does
//! not reflect `replaces`, the same renewal of `due` still ends `done`, in seconds: one
//! newOrder with `replaces`, which the client cannot use, then one without.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod live_support;

use std::collections::HashMap;
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use bytes::Bytes;
use certresponder_inventory::inspect;
use chrono::{DateTime, SecondsFormat, Utc};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use live_support::*;
use serde_json::{Value, json};

/// Upper bound for one certresponder command; a hang fails the test instead of blocking it.
const COMMAND_LIMIT: Duration = Duration::from_secs(120);
/// The Retry-After the front sends with every renewal window, in seconds.
const RETRY_AFTER_SECS: u64 = 3600;
/// Where the CA explains its windows.
const EXPLANATION: &str = "https://ca.example.test/ari-incident-7";

// ---------------------------------------------------------------------------------------
// The ARI front before Pebble
// ---------------------------------------------------------------------------------------

/// A suggested renewal window (RFC 9773 §4.2).
#[derive(Clone, Copy, Debug)]
struct Window {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

/// What the front was asked, and the windows it answers with.
#[derive(Default)]
struct Seen {
    /// The certificate ids of every `GET /ari/<id>`, in order.
    ari: Mutex<Vec<String>>,
    /// The decoded JWS payload of every newOrder POST the CA accepted (201), in order.
    orders: Mutex<Vec<Value>>,
    /// The `replaces` of each order the front reflects, by the order's finalize URL.
    replaced: Mutex<HashMap<String, Value>>,
    /// The window per certificate id; an id without one is answered 404.
    windows: Mutex<HashMap<String, Window>>,
    /// Orders are passed on as Pebble 2.4 writes them, without reflecting `replaces`.
    no_reflect: AtomicBool,
}

struct Ctx {
    upstream: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    /// `https://127.0.0.1:PORT` of Pebble's ACME listener.
    pebble: String,
    /// `https://127.0.0.1:PORT` of the front.
    base: String,
    /// The path of Pebble's newOrder resource.
    new_order_path: String,
    seen: Arc<Seen>,
}

/// The HTTPS front: a tokio runtime of its own, stopped (with its connections) on drop.
struct AriFront {
    directory_url: String,
    seen: Arc<Seen>,
    rt: tokio::runtime::Runtime,
}

fn respond_with(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut rsp = Response::new(Full::new(body.into()));
    *rsp.status_mut() = status;
    rsp
}

fn roots_of(pem_file: &Path) -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    for der in inspect::read_certificates(&std::fs::read(pem_file).unwrap()).unwrap() {
        roots
            .add(rustls::pki_types::CertificateDer::from(der))
            .unwrap();
    }
    roots
}

impl AriFront {
    /// Starts the front before `pebble`, serving TLS with Pebble's own listener certificate
    /// (for 127.0.0.1), so that the configured `trust_root` (Pebble's `tls_root`) covers both.
    fn start(pebble: &Pebble) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let certs = inspect::read_certificates(
            &std::fs::read(pebble.dir.path().join("server.pem")).unwrap(),
        )
        .unwrap()
        .into_iter()
        .map(rustls::pki_types::CertificateDer::from)
        .collect();
        let key_blocks =
            inspect::parse_pem(&std::fs::read(pebble.dir.path().join("server.key")).unwrap())
                .unwrap();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(
            key_blocks.into_iter().next().unwrap().der.into(),
        );
        let mut server_tls = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        server_tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_tls));

        let client_tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots_of(&pebble.tls_root))
            .with_no_client_auth();
        let connector = HttpsConnectorBuilder::new()
            .with_tls_config(client_tls)
            .https_only()
            .enable_http1()
            .build();
        let pebble_base = pebble
            .directory_url
            .strip_suffix("/dir")
            .expect("Pebble's directory is at /dir")
            .to_string();

        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let base = format!("https://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Seen::default());
        let ctx = Arc::new(Ctx {
            upstream: Client::builder(TokioExecutor::new()).build(connector),
            pebble: pebble_base,
            base: base.clone(),
            new_order_path: "/order-plz".into(),
            seen: seen.clone(),
        });
        rt.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let (acceptor, ctx) = (acceptor.clone(), ctx.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = service_fn(move |req| handle(req, ctx.clone()));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        let front = Self {
            directory_url: format!("{base}/dir"),
            seen,
            rt,
        };
        // The path of newOrder is Pebble's to choose: take it from its directory.
        let dir = front.get_directory(pebble);
        let new_order = dir["newOrder"].as_str().unwrap();
        assert!(
            new_order.ends_with("/order-plz"),
            "Pebble's newOrder moved: {dir:#}"
        );
        assert_eq!(
            dir["renewalInfo"],
            format!("{base}/ari").as_str(),
            "the front's directory offers no renewalInfo: {dir:#}"
        );
        front
    }

    /// The directory as a client of the front sees it.
    fn get_directory(&self, pebble: &Pebble) -> Value {
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots_of(&pebble.tls_root))
        .with_no_client_auth();
        let connector = HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only()
            .enable_http1()
            .build();
        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build(connector);
        let url = self.directory_url.clone();
        self.rt.block_on(async move {
            let rsp = client
                .get(url.parse().unwrap())
                .await
                .unwrap_or_else(|e| panic!("GET {url}: {e:?}"));
            assert_eq!(rsp.status(), StatusCode::OK);
            let body = rsp.into_body().collect().await.unwrap().to_bytes();
            serde_json::from_slice(&body).unwrap()
        })
    }

    fn set_window(&self, id: &str, w: Window) {
        self.seen.windows.lock().unwrap().insert(id.to_string(), w);
    }

    /// Whether orders reflect the `replaces` they were placed with (RFC 9773 §5).
    fn reflect_replaces(&self, on: bool) {
        self.seen.no_reflect.store(!on, Ordering::SeqCst);
    }

    fn ari_requests(&self) -> Vec<String> {
        self.seen.ari.lock().unwrap().clone()
    }

    fn orders(&self) -> Vec<Value> {
        self.seen.orders.lock().unwrap().clone()
    }
}

/// One request to the front: renewal information answered here, everything else passed to
/// Pebble as it came (the directory with `renewalInfo` added).
async fn handle(
    req: Request<Incoming>,
    ctx: Arc<Ctx>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_string();
    if let Some(id) = path.strip_prefix("/ari/") {
        ctx.seen.ari.lock().unwrap().push(id.to_string());
        let window = ctx.seen.windows.lock().unwrap().get(id).copied();
        let Some(w) = window else {
            return Ok(respond_with(StatusCode::NOT_FOUND, "no such certificate"));
        };
        let body = json!({
            "suggestedWindow": {
                "start": w.start.to_rfc3339_opts(SecondsFormat::Secs, true),
                "end": w.end.to_rfc3339_opts(SecondsFormat::Secs, true),
            },
            "explanationURL": EXPLANATION,
        });
        let mut rsp = respond_with(StatusCode::OK, body.to_string());
        rsp.headers_mut()
            .insert("content-type", "application/json".parse().unwrap());
        rsp.headers_mut()
            .insert("retry-after", RETRY_AFTER_SECS.to_string().parse().unwrap());
        return Ok(rsp);
    }

    let (parts, body) = req.into_parts();
    let mut replaces = None;
    let mut new_order = None;
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return Ok(respond_with(StatusCode::BAD_REQUEST, e.to_string())),
    };
    if parts.method == hyper::Method::POST && path == ctx.new_order_path {
        let jws: Value = serde_json::from_slice(&body).unwrap_or_default();
        let payload = jws["payload"]
            .as_str()
            .and_then(|p| B64.decode(p).ok())
            .and_then(|p| serde_json::from_slice(&p).ok())
            .unwrap_or(Value::Null);
        replaces = payload.get("replaces").cloned();
        new_order = Some(payload);
    }
    let uri = format!(
        "{}{}",
        ctx.pebble,
        parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
    );
    let mut upstream = Request::builder().method(parts.method.clone()).uri(uri);
    for (k, v) in &parts.headers {
        // `Host` stays the front's: Pebble writes its URLs, and checks the JWS `url`, with it.
        upstream = upstream.header(k, v);
    }
    let upstream = upstream.body(Full::new(body)).unwrap();
    let rsp = match ctx.upstream.request(upstream).await {
        Ok(r) => r,
        Err(e) => return Ok(respond_with(StatusCode::BAD_GATEWAY, format!("{e:?}"))),
    };
    let (rparts, rbody) = rsp.into_parts();
    // Only orders the CA took count: Pebble refuses a share of nonces at random
    // (`badNonce`), and the client sends such a request again with a fresh nonce.
    if let Some(payload) = new_order
        && rparts.status == StatusCode::CREATED
    {
        ctx.seen.orders.lock().unwrap().push(payload);
    }
    let mut rbody = match rbody.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return Ok(respond_with(StatusCode::BAD_GATEWAY, e.to_string())),
    };
    if parts.method == hyper::Method::GET && path == "/dir" && rparts.status == StatusCode::OK {
        let mut dir: Value = serde_json::from_slice(&rbody).unwrap();
        dir["renewalInfo"] = json!(format!("{}/ari", ctx.base));
        rbody = Bytes::from(dir.to_string());
    }
    // RFC 9773 §5: a CA that accepts `replaces` reflects it in the order, in the answer to
    // newOrder and later. Pebble 2.4 ignores the field; the front does the reflecting, keyed
    // by the order's finalize URL, unless switched off.
    if !ctx.seen.no_reflect.load(Ordering::SeqCst)
        && let Ok(mut order) = serde_json::from_slice::<Value>(&rbody)
        && let Some(finalize) = order.get("finalize").and_then(Value::as_str)
    {
        let mut reflected = ctx.seen.replaced.lock().unwrap();
        if let Some(r) = replaces {
            reflected.insert(finalize.to_string(), r);
        }
        if let Some(r) = reflected.get(finalize) {
            order["replaces"] = r.clone();
            rbody = Bytes::from(order.to_string());
        }
    }
    let mut out = respond_with(rparts.status, rbody);
    for (k, v) in &rparts.headers {
        if !["content-length", "transfer-encoding", "connection"].contains(&k.as_str()) {
            out.headers_mut().append(k, v.clone());
        }
    }
    Ok(out)
}

/// The RFC 9773 §4.1 certificate id: base64url(AKI keyIdentifier) "." base64url(serial),
/// the serial as the content octets of its DER INTEGER.
fn ari_id(der: &[u8]) -> String {
    let info = inspect::inspect_certificate_der(der).unwrap();
    let aki = hex::decode(
        info.authority_key_id
            .expect("Pebble certificates carry an AKI"),
    )
    .unwrap();
    let mut serial = hex::decode(&info.serial).unwrap();
    // A serial whose first bit is set takes a leading zero octet to stay positive.
    if serial.first().is_some_and(|b| b & 0x80 != 0) {
        serial.insert(0, 0);
    }
    format!("{}.{}", B64.encode(aki), B64.encode(serial))
}

// ---------------------------------------------------------------------------------------
// The world of the test
// ---------------------------------------------------------------------------------------

/// The files of one inventory entry.
struct Entry {
    name: &'static str,
    dns: &'static str,
    cert: PathBuf,
    key: PathBuf,
    chain: PathBuf,
    fullchain: PathBuf,
}

impl Entry {
    fn leaf(&self) -> Vec<u8> {
        let certs = inspect::read_certificates(&std::fs::read(&self.cert).unwrap()).unwrap();
        assert_eq!(
            certs.len(),
            1,
            "{} holds more than the leaf",
            self.cert.display()
        );
        certs.into_iter().next().unwrap()
    }

    fn files(&self) -> Vec<Vec<u8>> {
        [&self.cert, &self.key, &self.chain, &self.fullchain]
            .into_iter()
            .map(|p| std::fs::read(p).unwrap())
            .collect()
    }
}

struct World {
    home: tempfile::TempDir,
    front: AriFront,
    pebble: Pebble,
    due: Entry,
    later: Entry,
}

impl World {
    /// Pebble, the front, two entries with self-signed placeholders, then a Pebble
    /// certificate for each by `certresponder reissue`.
    fn new() -> Self {
        let home = tempfile::tempdir().unwrap();
        let pebble = Pebble::start();
        let front = AriFront::start(&pebble);
        std::fs::create_dir_all(home.path().join("inventory")).unwrap();
        let entry = |name: &'static str, dns: &'static str| {
            let dir = home.path().join("certs").join(name);
            std::fs::create_dir_all(&dir).unwrap();
            let e = Entry {
                name,
                dns,
                cert: dir.join("cert.pem"),
                key: dir.join("key.pem"),
                chain: dir.join("chain.pem"),
                fullchain: dir.join("fullchain.pem"),
            };
            let key = rcgen::KeyPair::generate().unwrap();
            let placeholder = rcgen::CertificateParams::new(vec![dns.to_string()])
                .unwrap()
                .self_signed(&key)
                .unwrap();
            std::fs::write(&e.cert, placeholder.pem()).unwrap();
            std::fs::write(&e.fullchain, placeholder.pem()).unwrap();
            std::fs::write(&e.chain, "").unwrap();
            std::fs::write(&e.key, key.serialize_pem()).unwrap();
            std::fs::set_permissions(&e.key, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .unwrap();
            e
        };
        let due = entry("due", "due.shop.example.test");
        let later = entry("later", "later.shop.example.test");
        std::fs::write(
            home.path().join("certresponder.toml"),
            format!(
                "state_dir = \"state\"
inventory_dir = \"inventory\"

[respond]
reload_window_ms = 0
verify_timeout_secs = 10
verify_interval_ms = 100
confirm_timeout_secs = 5

{}",
                pebble_issuer_toml(&front.directory_url, &pebble.tls_root)
            ),
        )
        .unwrap();
        let mut inventory = String::new();
        for e in [&due, &later] {
            inventory.push_str(&format!(
                "[[cert]]
name = \"{}\"
owner = \"team-shop@example.test\"
kind = \"tls-server\"
issuer = \"pebble\"
key_profile = \"ecdsa-p256\"
cert = \"{}\"
key = \"{}\"
chain = \"{}\"
fullchain = \"{}\"

",
                e.name,
                e.cert.display(),
                e.key.display(),
                e.chain.display(),
                e.fullchain.display()
            ));
        }
        std::fs::write(home.path().join("inventory/shop.toml"), inventory).unwrap();

        let world = Self {
            home,
            front,
            pebble,
            due,
            later,
        };
        for e in [&world.due, &world.later] {
            let (v, _) = world.json(&["reissue", e.name, "--json"], 0);
            assert_eq!(v["cases"][0]["state"], "done", "initial reissue: {v:#}");
            let info = inspect::inspect_certificate_der(&e.leaf()).unwrap();
            assert!(
                info.issuer.contains("Pebble"),
                "the initial reissue of {} did not put a Pebble certificate in place: {}",
                e.name,
                info.issuer
            );
            assert_eq!(info.dns_names, vec![e.dns.to_string()]);
        }
        world
    }

    /// Runs the binary with this world's configuration.
    fn run(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_certresponder"));
        cmd.arg("--config")
            .arg(self.home.path().join("certresponder.toml"))
            .args(args)
            .env("NO_COLOR", "1")
            .env_remove("CERTRESPONDER_CONFIG")
            .env_remove("CERTRESPONDER_FAULT");
        run_bounded(cmd, COMMAND_LIMIT)
    }

    /// Runs, asserts the exit status and returns stdout.
    fn text(&self, args: &[&str], status: i32) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(status),
            "certresponder {args:?}: stdout {} stderr {}\npebble log:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.pebble.log()
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs, asserts the exit status and parses stdout as JSON.
    fn json(&self, args: &[&str], status: i32) -> (Value, Output) {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(status),
            "certresponder {args:?}: stdout {} stderr {}\npebble log:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.pebble.log()
        );
        let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "certresponder {args:?}: not JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        });
        (v, out)
    }
}

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| panic!("not an RFC 3339 time: {v}"))
}

/// The `renewal_window_open` signals of a list, by certificate.
fn window_signals(list: &Value) -> Vec<&Value> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list:#}"))
        .iter()
        .filter(|s| s["check"] == "renewal_window_open")
        .collect()
}

fn minute(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// The identifiers (DNS names) an order asks for.
fn order_names(order: &Value) -> Vec<String> {
    order["identifiers"]
        .as_array()
        .unwrap_or_else(|| panic!("an order without identifiers: {order:#}"))
        .iter()
        .map(|i| i["value"].as_str().unwrap().to_string())
        .collect()
}

// ---------------------------------------------------------------------------------------
// The test
// ---------------------------------------------------------------------------------------

/// A window in the past raises `renewal_window_open` and `respond` reissues with `replaces`;
/// a window a month ahead schedules the renewal inside it; the CA's Retry-After is honoured.
#[test]
fn ari_window_in_the_past_reissues_and_one_ahead_is_scheduled() {
    let started = Instant::now();
    let world = World::new();
    let orders_before = world.front.orders();
    // One newOrder per initial reissue (sent again when Pebble refuses a nonce).
    let mut ordered: Vec<String> = orders_before.iter().flat_map(order_names).collect();
    ordered.dedup();
    assert_eq!(
        ordered,
        [world.due.dns, world.later.dns],
        "the initial reissues' orders: {orders_before:#?}"
    );
    for o in &orders_before {
        assert!(
            o.get("replaces").is_none(),
            "no renewal information was asked yet, so no order may say `replaces`: {o:#}"
        );
    }
    assert!(world.front.ari_requests().is_empty());

    let due_leaf = world.due.leaf();
    let later_leaf = world.later.leaf();
    let later_files = world.later.files();
    let (due_id, later_id) = (ari_id(&due_leaf), ari_id(&later_leaf));
    let now = DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap();
    let days = chrono::Duration::days;
    let due_window = Window {
        start: now - days(3),
        end: now - days(1),
    };
    let later_window = Window {
        start: now + days(30),
        end: now + days(32),
    };
    world.front.set_window(&due_id, due_window);
    world.front.set_window(&later_id, later_window);

    // --- scan: the signal for `due`, a schedule for `later`, each asked once by its id.
    let (scan, _) = world.json(&["scan", "--json"], 3);
    let mut asked = world.front.ari_requests();
    asked.sort();
    let mut expected = vec![due_id.clone(), later_id.clone()];
    expected.sort();
    assert_eq!(asked, expected, "the ARI ids asked for (RFC 9773 §4.1)");
    assert_eq!(scan["ca_problems"], json!([]), "{scan:#}");
    assert_eq!(scan["ca_checked"], 2, "{scan:#}");
    let raised = window_signals(&scan["new"]);
    assert_eq!(raised.len(), 1, "one renewal_window_open signal: {scan:#}");
    let signal = raised[0];
    assert_eq!(signal["subject"], "due", "{scan:#}");
    assert_eq!(signal["confidence"], "high", "{signal:#}");
    assert_eq!(signal["source"], "ca", "{signal:#}");
    let evidence = &signal["evidence"];
    assert_eq!(
        time(&evidence["window_start"]),
        due_window.start,
        "{signal:#}"
    );
    assert_eq!(time(&evidence["window_end"]), due_window.end, "{signal:#}");
    assert_eq!(evidence["explanation_url"], EXPLANATION, "{signal:#}");
    let renew_at = time(&evidence["renew_at"]);
    assert!(
        due_window.start <= renew_at && renew_at <= due_window.end,
        "the drawn time lies inside the window: {signal:#}"
    );
    assert!(
        signal["message"].as_str().unwrap().contains(EXPLANATION),
        "{signal:#}"
    );
    let scheduled = scan["renewals_scheduled"].as_array().unwrap();
    assert_eq!(scheduled.len(), 1, "{scan:#}");
    let s = &scheduled[0];
    assert_eq!(s["cert"], "later", "{scan:#}");
    assert_eq!(time(&s["window_start"]), later_window.start, "{s:#}");
    assert_eq!(time(&s["window_end"]), later_window.end, "{s:#}");
    let later_renew_at = time(&s["renew_at"]);
    assert!(
        later_window.start <= later_renew_at && later_renew_at < later_window.end,
        "renew_at outside the CA's window: {s:#}"
    );

    // --- a second scan at once: the CA said to ask again in an hour, so nothing is asked;
    // the signal is seen again and the same time is still planned for `later`.
    let text = world.text(&["scan"], 3);
    assert_eq!(
        world.front.ari_requests().len(),
        2,
        "a scan before the CA's Retry-After asked again: {:?}",
        world.front.ari_requests()
    );
    let line = format!(
        "later: renewal scheduled for {} (the CA's window: {} to {})",
        minute(later_renew_at),
        minute(later_window.start),
        minute(later_window.end)
    );
    assert!(text.contains(&line), "no `{line}` in:\n{text}");
    assert!(
        text.contains("renewal_window_open"),
        "the open signal is not listed:\n{text}"
    );
    let (signals, _) = world.json(&["signals", "--json"], 0);
    let open = window_signals(&signals);
    assert_eq!(open.len(), 1, "{signals:#}");
    assert_eq!(open[0]["subject"], "due");
    assert_eq!(open[0]["times_seen"], 2, "{signals:#}");

    // --- respond: one reissue for `due`, ordered with `replaces`; `later` untouched.
    let (v, _) = world.json(&["respond", "--json"], 0);
    assert_eq!(v["errors"], json!([]), "{v:#}");
    let cases = v["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 1, "one case: {v:#}");
    let case = &cases[0];
    assert_eq!(case["cert"], "due", "{case:#}");
    assert_eq!(case["kind"], "reissue", "{case:#}");
    assert_eq!(case["state"], "done", "{case:#}");

    let new_leaf = world.due.leaf();
    assert_ne!(
        new_leaf, due_leaf,
        "the certificate of `due` was not replaced"
    );
    let (old_info, new_info) = (
        inspect::inspect_certificate_der(&due_leaf).unwrap(),
        inspect::inspect_certificate_der(&new_leaf).unwrap(),
    );
    assert!(new_info.issuer.contains("Pebble"), "{}", new_info.issuer);
    assert_eq!(new_info.dns_names, vec![world.due.dns.to_string()]);
    assert_ne!(new_info.serial, old_info.serial, "a new serial");
    assert_ne!(
        new_info.fingerprints.spki_sha256, old_info.fingerprints.spki_sha256,
        "the new certificate must certify a new key"
    );
    let key = inspect::read_private_key(&std::fs::read(&world.due.key).unwrap()).unwrap();
    assert!(
        key.public.same_public_key(&new_info.key),
        "the key file does not match the new certificate"
    );
    assert!(
        world.later.files() == later_files,
        "the files of `later` changed"
    );

    // What Pebble received: the order for `due` names the certificate it replaces.
    let orders = world.front.orders();
    let new_orders = &orders[orders_before.len()..];
    assert!(!new_orders.is_empty(), "respond sent no newOrder");
    for o in new_orders {
        assert_eq!(
            order_names(o),
            vec![world.due.dns.to_string()],
            "respond ordered for something else: {o:#}"
        );
        assert_eq!(
            o["replaces"],
            due_id.as_str(),
            "the renewal order must say which certificate it replaces (RFC 9773 §5): {o:#}"
        );
    }
    assert_eq!(
        world.pebble.status(&new_leaf).status,
        "Valid",
        "Pebble does not know the new certificate"
    );
    assert_eq!(
        world.pebble.status(&due_leaf).status,
        "Valid",
        "a renewal does not revoke the certificate it replaces"
    );
    let id = case["id"].as_u64().unwrap();
    let (shown, _) = world.json(&["cases", "show", &id.to_string(), "--json"], 0);
    let issue = shown["journal"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["step"] == "issue")
        .unwrap_or_else(|| panic!("no issue step: {shown:#}"));
    assert_eq!(issue["outcome"], "ok", "{shown:#}");
    assert!(
        issue["detail"].as_str().unwrap().contains(&new_info.serial),
        "{shown:#}"
    );
    assert!(
        !shown["journal"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["step"] == "revoke"),
        "a renewal revokes nothing: {shown:#}"
    );

    // --- a scan after the renewal: the new `due` certificate is asked about (its own id),
    // `later` still not before the Retry-After; nothing stays open.
    let new_id = ari_id(&new_leaf);
    let new_window = Window {
        start: now + days(60),
        end: now + days(62),
    };
    world.front.set_window(&new_id, new_window);
    let (scan, _) = world.json(&["scan", "--json"], 0);
    assert_eq!(
        world.front.ari_requests()[2..],
        [new_id],
        "after the renewal only the new certificate is asked about"
    );
    assert_eq!(scan["ca_problems"], json!([]), "{scan:#}");
    assert_eq!(scan["open"], 0, "{scan:#}");
    assert!(window_signals(&scan["new"]).is_empty(), "{scan:#}");
    let scheduled = scan["renewals_scheduled"].as_array().unwrap();
    let by_cert = |name: &str| {
        scheduled
            .iter()
            .find(|s| s["cert"] == name)
            .unwrap_or_else(|| panic!("{name} is not scheduled: {scan:#}"))
    };
    assert_eq!(
        time(&by_cert("later")["renew_at"]),
        later_renew_at,
        "{scan:#}"
    );
    let due_at = time(&by_cert("due")["renew_at"]);
    assert!(
        new_window.start <= due_at && due_at < new_window.end,
        "{scan:#}"
    );

    let elapsed = started.elapsed();
    eprintln!("ari_window_in_the_past_reissues_and_one_ahead_is_scheduled: {elapsed:?}");
    assert!(elapsed < Duration::from_secs(120), "took {elapsed:?}");
}

/// A CA that serves renewalInfo but does not reflect `replaces` in its orders (Pebble 2.4
/// itself; some CAs in the field): the client cannot use the order placed with `replaces`,
/// orders once more without it, and the renewal of the due certificate ends `done` in
/// seconds rather than failing after retries.
#[test]
fn ari_renewal_through_a_ca_that_does_not_reflect_replaces_orders_again_without_it() {
    let world = World::new();
    world.front.reflect_replaces(false);
    let due_leaf = world.due.leaf();
    let due_id = ari_id(&due_leaf);
    let later_files = world.later.files();
    let now = DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap();
    let days = chrono::Duration::days;
    let window = |from, to| Window {
        start: now + days(from),
        end: now + days(to),
    };
    world.front.set_window(&due_id, window(-3, -1));
    world
        .front
        .set_window(&ari_id(&world.later.leaf()), window(30, 32));
    let (scan, _) = world.json(&["scan", "--json"], 3);
    let raised = window_signals(&scan["new"]);
    assert_eq!(raised.len(), 1, "{scan:#}");
    assert_eq!(raised[0]["subject"], "due", "{scan:#}");

    let orders_before = world.front.orders().len();
    let started = Instant::now();
    let (v, _) = world.json(&["respond", "--json"], 0);
    let took = started.elapsed();
    assert_eq!(v["errors"], json!([]), "{v:#}");
    let cases = v["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 1, "one case: {v:#}");
    assert_eq!(cases[0]["cert"], "due", "{v:#}");
    assert_eq!(cases[0]["state"], "done", "{v:#}");

    let new_leaf = world.due.leaf();
    assert_ne!(
        new_leaf, due_leaf,
        "the certificate of `due` was not replaced"
    );
    let new_info = inspect::inspect_certificate_der(&new_leaf).unwrap();
    assert!(new_info.issuer.contains("Pebble"), "{}", new_info.issuer);
    assert_eq!(new_info.dns_names, vec![world.due.dns.to_string()]);
    assert!(
        world.later.files() == later_files,
        "the files of `later` changed"
    );

    // What the CA received: the order with `replaces`, refused by the client because it
    // came back without, then the same order without `replaces`; nothing more.
    let orders = world.front.orders();
    let new_orders = &orders[orders_before..];
    assert_eq!(
        new_orders.len(),
        2,
        "one newOrder with `replaces`, one without: {new_orders:#?}"
    );
    for o in new_orders {
        assert_eq!(order_names(o), vec![world.due.dns.to_string()], "{o:#}");
    }
    assert_eq!(
        new_orders[0]["replaces"],
        due_id.as_str(),
        "{new_orders:#?}"
    );
    assert!(
        new_orders[1].get("replaces").is_none(),
        "the second order must not say `replaces`: {new_orders:#?}"
    );
    assert_eq!(world.pebble.status(&new_leaf).status, "Valid");

    eprintln!("respond through a front that does not reflect `replaces`: {took:?}");
    assert!(
        took < Duration::from_secs(10),
        "the renewal took {took:?}: the refused order was retried"
    );
}
