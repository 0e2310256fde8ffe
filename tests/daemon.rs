//! End-to-end tests of `certresponder run`, the real binary, with the real internal CA and
//! certificates it issued:
//!
//! - the systemd notify protocol under a test-owned `NOTIFY_SOCKET`: READY, WATCHDOG pings at
//!   half of `WATCHDOG_USEC`, RELOADING/READY on SIGHUP (a good configuration taken, a bad
//!   configuration or inventory refused with the old one kept), STOPPING and exit 0 on
//!   SIGTERM in the middle of a sequence, which resumes on the next start;
//! - the CLI against the running daemon over its control socket: a posted signal opens a
//!   case that waits for approval, `approve` runs it, `deny` stops another, `rollback`
//!   restores the previous bundle byte for byte, `cases list`, `inventory list`, `signals`;
//! - a cron job (`scan` every minute) fires at the start of the minute and the policy opens
//!   and runs a case for what it found.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod live_support;

use std::io::{Read, Write};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use certresponder_inventory::inspect;
use chrono::{DateTime, Timelike, Utc};
use common::{Home, chown_tree, text};
use live_support::{Guard, run_bounded, signal};
use serde_json::{Value, json};

/// How long a CLI command may take.
const CLI_LIMIT: Duration = Duration::from_secs(60);

/// The reload command of every entry: records the entry and the bundle it reloads, then
/// sleeps as many seconds as the file `reload-delay` says (none when it is absent).
const RELOAD_SCRIPT: &str = r#"#!/bin/sh
echo "$2 $CERTRESPONDER_BUNDLE_ID" >> "$1/reload.log"
sleep "$(cat "$1/reload-delay" 2>/dev/null || echo 0)"
"#;

// ---------------------------------------------------------------------------------------
// The home
// ---------------------------------------------------------------------------------------

/// A certresponder installation in a temporary directory, with the internal CA, a control
/// socket of its own and entries reloaded by [`RELOAD_SCRIPT`].
struct DaemonHome {
    home: Home,
}

impl DaemonHome {
    fn new() -> Self {
        let d = Self { home: Home::new() };
        std::fs::write(d.path("reload.sh"), RELOAD_SCRIPT).unwrap();
        d.write_config("", "");
        d
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.home.path(rel)
    }

    fn socket(&self) -> PathBuf {
        self.path("control.sock")
    }

    /// The configuration text: `top` goes before the tables, `tail` after them.
    fn config_text(&self, top: &str, tail: &str) -> String {
        format!(
            "state_dir = \"state\"\ninventory_dir = \"inventory\"\n{top}\n\
             [respond]\nreload_window_ms = 0\nretry_base_ms = 10\nconfirm_timeout_secs = 5\n\n\
             [daemon]\ncontrol_socket = \"{}\"\ncontrol_group = \"\"\n\n\
             [[issuer]]\nid = \"internal\"\ntype = \"internal-ca\"\ndir = \"ca\"\n\n{tail}",
            self.socket().display()
        )
    }

    fn write_config(&self, top: &str, tail: &str) {
        std::fs::write(self.home.config(), self.config_text(top, tail)).unwrap();
    }

    /// An entry `name` (with `tags`) on a placeholder certificate under `srv/name/`, reloaded
    /// by [`RELOAD_SCRIPT`], written to `inventory/name.toml`.
    fn add_entry(&self, name: &str, tags: &[&str]) -> (PathBuf, PathBuf) {
        let (cert, key) = self.home.make_cert(name, &format!("{name}.example.test"));
        self.write_entry(name, tags, &cert, &key);
        (cert, key)
    }

    fn write_entry(&self, name: &str, tags: &[&str], cert: &Path, key: &Path) {
        let tags: Vec<String> = tags.iter().map(|t| format!("\"{t}\"")).collect();
        std::fs::write(
            self.path(&format!("inventory/{name}.toml")),
            format!(
                "[[cert]]\nname = \"{name}\"\nowner = \"team-{name}@example.com\"\ntags = [{}]\nissuer = \"internal\"\ncert = \"{}\"\nkey = \"{}\"\nreload = \"sh {} {} {name}\"\n",
                tags.join(", "),
                cert.display(),
                key.display(),
                self.path("reload.sh").display(),
                self.home.dir.path().display(),
            ),
        )
        .unwrap();
    }

    /// Puts a certificate of the internal CA in place of `name`'s placeholder, with a
    /// `reissue` run before the daemon starts (the daemon holds the store while it runs).
    fn reissue(&self, name: &str) {
        let v = self.json(&["reissue", name, "--json"], 0);
        assert_eq!(v["cases"][0]["state"], "done", "{v:#}");
    }

    /// An RSA-1024 certificate for `name.example.test`, valid 90 days, signed by the internal
    /// CA (which must exist), under `srv/name/`; returns (cert, key).
    fn ca_signed_rsa1024(&self, name: &str) -> (PathBuf, PathBuf) {
        let dir = self.path(&format!("srv/{name}"));
        std::fs::create_dir_all(&dir).unwrap();
        let (cert, key, csr, ext) = (
            dir.join("cert.pem"),
            dir.join("key.pem"),
            dir.join("csr.pem"),
            dir.join("ext.cnf"),
        );
        let s = |p: &Path| p.to_str().unwrap().to_string();
        let subj = format!("/CN={name}.example.test");
        openssl(&[
            "req",
            "-new",
            "-nodes",
            "-newkey",
            "rsa:1024",
            "-keyout",
            &s(&key),
            "-out",
            &s(&csr),
            "-subj",
            &subj,
        ]);
        std::fs::write(
            &ext,
            format!("subjectAltName=DNS:{name}.example.test\nbasicConstraints=critical,CA:FALSE\n"),
        )
        .unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            &s(&csr),
            "-CA",
            &s(&self.path("ca/ca.pem")),
            "-CAkey",
            &s(&self.path("ca/ca.key")),
            "-set_serial",
            "0x1d41c3a5",
            "-days",
            "90",
            "-extfile",
            &s(&ext),
            "-out",
            &s(&cert),
        ]);
        std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        (cert, key)
    }

    /// A certificate command line with this home's configuration.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_certresponder"));
        cmd.arg("--config")
            .arg(self.home.config())
            .args(args)
            .env("NO_COLOR", "1")
            .env_remove("CERTRESPONDER_FAULT")
            .env_remove("CERTRESPONDER_CONFIG")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .env_remove("WATCHDOG_PID")
            .env_remove("JOURNAL_STREAM");
        cmd
    }

    /// Runs the CLI to completion (bounded).
    fn run(&self, args: &[&str]) -> Output {
        run_bounded(self.command(args), CLI_LIMIT)
    }

    /// Runs the CLI, asserting the exit status.
    fn status(&self, args: &[&str], status: i32) -> Output {
        let out = self.run(args);
        assert_eq!(out.status.code(), Some(status), "{args:?}: {}", text(&out));
        out
    }

    /// Runs the CLI, asserting the exit status, and parses its JSON output.
    fn json(&self, args: &[&str], status: i32) -> Value {
        let out = self.status(args, status);
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {}", text(&out)))
    }

    /// `cases show N --json`.
    fn case(&self, id: u64) -> Value {
        self.json(&["cases", "show", &id.to_string(), "--json"], 0)
    }

    /// `cases list --json`.
    fn cases(&self) -> Vec<Value> {
        self.json(&["cases", "list", "--json"], 0)
            .as_array()
            .unwrap()
            .clone()
    }

    /// The lines of the reload log: `NAME BUNDLE` for each reload.
    fn reloads(&self) -> Vec<String> {
        std::fs::read_to_string(self.path("reload.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Starts the daemon with notifications going to `notify` and `env` set (such as
    /// `WATCHDOG_USEC`). Its log (JSON lines) goes to `daemon-N.log`.
    fn start(&self, notify: &Notify, env: &[(&str, &str)]) -> Daemon {
        let n = std::fs::read_dir(self.home.dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("daemon-")
            })
            .count();
        let log = self.path(&format!("daemon-{n}.log"));
        let mut cmd = self.command(&["run", "--log-format", "json"]);
        cmd.env("NOTIFY_SOCKET", &notify.path)
            .env("CERTRESPONDER_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::from(std::fs::File::create(&log).unwrap()))
            .stderr(Stdio::from(
                std::fs::File::options().append(true).open(&log).unwrap(),
            ));
        cmd.envs(env.iter().copied());
        let child = cmd.spawn().unwrap();
        Daemon {
            guard: Guard {
                child,
                graceful: Some("TERM"),
            },
            log,
            socket: self.socket(),
        }
    }
}

/// A running daemon, stopped (SIGTERM, then SIGKILL) when dropped.
struct Daemon {
    guard: Guard,
    log: PathBuf,
    socket: PathBuf,
}

impl Daemon {
    fn pid(&self) -> u32 {
        self.guard.child.id()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The log's JSON lines.
    fn log_lines(&self) -> Vec<Value> {
        self.log()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Waits for the process to exit, failing with its log after `limit`.
    fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.guard.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the daemon still runs {} s after SIGTERM; log:\n{}",
                limit.as_secs(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// One HTTP/1.1 request over the control socket; returns the status and the JSON body
    /// (`Null` when empty).
    fn http(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let body = body.map(Value::to_string).unwrap_or_default();
        let mut s = UnixStream::connect(&self.socket).unwrap_or_else(|e| {
            panic!(
                "control socket {}: {e}; log:\n{}",
                self.socket.display(),
                self.log()
            )
        });
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, rest) = text
            .split_once("\r\n\r\n")
            .unwrap_or_else(|| panic!("{method} {path}: no HTTP response: {text}"));
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{method} {path}: bad status line: {head}"));
        let chunked = head.lines().any(|l| {
            l.to_ascii_lowercase()
                .starts_with("transfer-encoding: chunked")
        });
        let body = if chunked {
            dechunk(rest)
        } else {
            rest.to_string()
        };
        let value = if body.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&body)
                .unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {body}"))
        };
        (status, value)
    }
}

/// The body of a chunked HTTP/1.1 response.
fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n").unwrap();
        let size = usize::from_str_radix(size.split(';').next().unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.push_str(&after[..size]);
        rest = &after[size + 2..];
    }
}

/// The test's end of `NOTIFY_SOCKET`: every datagram the daemon sends, in order. A thread
/// reads them as they come, as the service manager does (a receive queue left full makes
/// the sender's next datagram wait).
struct Notify {
    path: PathBuf,
    rx: mpsc::Receiver<String>,
}

impl Notify {
    fn bind(path: PathBuf) -> Self {
        let _ = std::fs::remove_file(&path);
        let sock = UnixDatagram::bind(&path).unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = sock.recv(&mut buf) {
                if tx
                    .send(String::from_utf8_lossy(&buf[..n]).into_owned())
                    .is_err()
                {
                    return;
                }
            }
        });
        Self { path, rx }
    }

    /// The next datagram within `timeout`.
    fn recv(&self, timeout: Duration) -> Option<String> {
        self.rx.recv_timeout(timeout).ok()
    }

    /// The next datagram other than a `WATCHDOG=1` ping; fails with the daemon's log after
    /// `limit`.
    fn next_state(&self, daemon: &Daemon, limit: Duration, waiting_for: &str) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "no {waiting_for} notification within {} s; log:\n{}",
                limit.as_secs(),
                daemon.log()
            );
            if let Some(m) = self.recv(left)
                && m != "WATCHDOG=1"
            {
                return m;
            }
        }
    }

    /// What has come so far and not been read.
    fn drain(&self) -> Vec<String> {
        self.rx.try_iter().collect()
    }
}

/// The value of `KEY=` in a notification.
fn field<'a>(message: &'a str, key: &str) -> Option<&'a str> {
    message
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
}

/// CLOCK_MONOTONIC in microseconds, as systemd's `MONOTONIC_USEC=` is.
fn monotonic_usec() -> u128 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    u128::try_from(t.tv_sec).unwrap() * 1_000_000 + u128::try_from(t.tv_nsec).unwrap() / 1_000
}

/// Polls `probe` every 100 ms until it returns something, failing with `what` and the
/// daemon's log after `limit`.
fn wait_for<T>(
    daemon: &Daemon,
    limit: Duration,
    what: &str,
    mut probe: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {} s; log:\n{}",
            limit.as_secs(),
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn time(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("not a time: {v}")))
        .unwrap()
        .with_timezone(&Utc)
}

/// The journal records of a case, as `(step, outcome)`.
fn journal(case: &Value) -> Vec<(String, String)> {
    case["journal"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["step"].as_str().unwrap().to_string(),
                r["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------------------

#[test]
fn notify_protocol_reload_and_a_stop_in_the_middle_of_a_sequence() {
    let d = DaemonHome::new();
    let (cert, _) = d.add_entry("svc", &["prod"]);
    d.reissue("svc");
    let before = std::fs::read(&cert).unwrap();
    let notify = Notify::bind(d.path("notify.sock"));

    // READY once it serves, with a status line.
    let mut daemon = d.start(&notify, &[("WATCHDOG_USEC", "400000")]);
    let ready = notify.next_state(&daemon, Duration::from_secs(30), "READY");
    assert_eq!(field(&ready, "READY"), Some("1"), "{ready}");
    let status = field(&ready, "STATUS").unwrap_or_default();
    assert!(
        status.contains("running") && status.contains("0 scheduled jobs"),
        "{ready}"
    );
    assert!(
        d.socket().exists(),
        "READY before the control socket exists"
    );
    let st = d.json(&["status", "--json"], 0);
    assert_eq!(st["jobs"], json!({}), "{st:#}");
    let loaded_at = st["config"]["loaded_at"].clone();

    // WATCHDOG=1 every WATCHDOG_USEC/2 = 200 ms: about ten in two seconds.
    notify.drain();
    let start = Instant::now();
    let mut pings = 0;
    let mut other = Vec::new();
    while let Some(m) = notify.recv(Duration::from_secs(2).saturating_sub(start.elapsed())) {
        if start.elapsed() > Duration::from_secs(2) {
            break;
        }
        if m == "WATCHDOG=1" {
            pings += 1;
        } else {
            other.push(m);
        }
    }
    assert!(
        (6..=14).contains(&pings),
        "{pings} WATCHDOG=1 in 2 s at WATCHDOG_USEC=400000 (expected about 10)"
    );
    assert!(other.is_empty(), "unexpected notifications: {other:?}");

    // A bad configuration: RELOADING, then READY saying it was refused and why; the old
    // configuration stays in force and the daemon keeps serving.
    let good = std::fs::read_to_string(d.home.config()).unwrap();
    d.write_config("reload_everything = true", "");
    let reload = |what: &str| {
        let t0 = monotonic_usec();
        signal(daemon.pid(), "HUP");
        let reloading = notify.next_state(&daemon, Duration::from_secs(20), "RELOADING");
        let t1 = monotonic_usec();
        assert_eq!(
            field(&reloading, "RELOADING"),
            Some("1"),
            "{what}: {reloading}"
        );
        let usec: u128 = field(&reloading, "MONOTONIC_USEC")
            .unwrap_or_else(|| panic!("{what}: no MONOTONIC_USEC: {reloading}"))
            .parse()
            .unwrap();
        assert!(
            t0 <= usec && usec <= t1,
            "{what}: MONOTONIC_USEC={usec} is not CLOCK_MONOTONIC between {t0} and {t1}"
        );
        let ready = notify.next_state(&daemon, Duration::from_secs(20), "READY after RELOADING");
        assert_eq!(field(&ready, "READY"), Some("1"), "{what}: {ready}");
        field(&ready, "STATUS").unwrap_or_default().to_string()
    };
    let status = reload("bad configuration");
    assert!(
        status.contains("reload refused") && status.contains("reload_everything"),
        "{status}"
    );
    // (The CLI cannot read the bad file either, so this asks the socket directly.)
    let (code, st) = daemon.http("GET", "/v1/status", None);
    assert_eq!(code, 200, "{st:#}");
    assert_eq!(st["config"]["loaded_at"], loaded_at, "{st:#}");
    let (code, listed) = daemon.http("GET", "/v1/inventory", None);
    assert_eq!(code, 200, "{listed:#}");
    assert_eq!(
        listed["certificates"].as_array().unwrap().len(),
        1,
        "{listed:#}"
    );

    // A bad inventory is refused with the configuration that brings it.
    std::fs::write(d.home.config(), &good).unwrap();
    std::fs::write(
        d.path("inventory/broken.toml"),
        "[[cert]]\nname = \"broken\"\nowner = \"x@example.com\"\nissuer = \"nowhere\"\ncert = \"/nonexistent.pem\"\n",
    )
    .unwrap();
    let status = reload("bad inventory");
    assert!(
        status.contains("reload refused") && status.contains("nowhere"),
        "{status}"
    );
    let st = d.json(&["status", "--json"], 0);
    assert_eq!(st["config"]["loaded_at"], loaded_at, "{st:#}");
    let listed = d.json(&["inventory", "list", "--json"], 0);
    assert_eq!(
        listed["certificates"].as_array().unwrap().len(),
        1,
        "{listed:#}"
    );
    std::fs::remove_file(d.path("inventory/broken.toml")).unwrap();

    // A good change is taken: a scheduled job appears.
    d.write_config("", "[schedule]\ncrl_publish = \"0 0 1 JAN *\"\n");
    let status = reload("good configuration");
    assert!(
        status.contains("reloaded") && status.contains("1 scheduled job"),
        "{status}"
    );
    let st = d.json(&["status", "--json"], 0);
    assert_ne!(st["config"]["loaded_at"], loaded_at, "{st:#}");
    assert_eq!(
        st["jobs"]["crl_publish"]["schedule"], "0 0 1 JAN *",
        "{st:#}"
    );
    let next = time(&st["jobs"]["crl_publish"]["next_run"]);
    assert_eq!(
        next.format("%m-%d %H:%M:%S").to_string(),
        "01-01 00:00:00",
        "{st:#}"
    );

    // A posted key exposure starts a revoke-and-reissue at once; SIGTERM while its reload
    // runs (three seconds) stops it at the next step boundary and the daemon exits 0.
    std::fs::write(d.path("reload-delay"), "3").unwrap();
    let reloads_before = d.reloads().len();
    let (code, posted) = daemon.http(
        "POST",
        "/v1/signals",
        Some(&json!({
            "cert": "svc",
            "check": "key_exposed",
            "confidence": "confirmed",
            "message": "private key pasted in a chat",
        })),
    );
    assert_eq!(code, 200, "{posted:#}");
    assert_eq!(posted["signal"]["check"], "key_exposed", "{posted:#}");
    let started = posted["applied"]["run"].as_array().unwrap();
    assert_eq!(
        started.len(),
        1,
        "the posted signal started no case: {posted:#}"
    );
    let id = started[0].as_u64().unwrap();
    let case = d.case(id);
    assert_eq!(
        (&case["cert"], &case["kind"]),
        (&json!("svc"), &json!("revoke_reissue")),
        "{case:#}"
    );
    wait_for(
        &daemon,
        Duration::from_secs(30),
        "the reload step started",
        || {
            journal(&d.case(id))
                .contains(&("reload".into(), "started".into()))
                .then_some(())
        },
    );
    signal(daemon.pid(), "TERM");
    let stopping = notify.next_state(&daemon, Duration::from_secs(10), "STOPPING");
    assert_eq!(field(&stopping, "STOPPING"), Some("1"), "{stopping}");
    let exit = daemon.wait_exit(Duration::from_secs(15));
    assert!(exit.success(), "exit {exit:?}; log:\n{}", daemon.log());
    assert!(
        !d.socket().exists(),
        "the control socket outlived the daemon"
    );
    let out = d.status(&["status"], 1);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not running"),
        "{}",
        text(&out)
    );

    // Without the daemon, the CLI reads the journal itself: the reload finished, nothing
    // after it ran, and the case is still running, next at verify.
    let case = d.case(id);
    assert_eq!(case["state"], "running", "{case:#}");
    let steps = journal(&case);
    let reload_at = steps
        .iter()
        .position(|r| *r == ("reload".to_string(), "ok".to_string()))
        .unwrap_or_else(|| panic!("the reload did not finish before the stop: {case:#}"));
    // (The engine journals the next step as started when it finishes one, so a `verify`
    // record may follow, but it must not have run.)
    for rec in &case["journal"].as_array().unwrap()[reload_at + 1..] {
        assert_eq!(
            (&rec["outcome"], &rec["finished_at"]),
            (&json!("started"), &Value::Null),
            "a step ran after the stop: {case:#}"
        );
    }
    assert_eq!(case["next"], "verify", "{case:#}");
    assert_eq!(d.reloads().len(), reloads_before + 1, "{:?}", d.reloads());
    let checkpoint = daemon
        .log_lines()
        .into_iter()
        .find(|l| {
            l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("stopping between steps"))
        })
        .unwrap_or_else(|| {
            panic!(
                "the log does not say where the case stopped:\n{}",
                daemon.log()
            )
        });
    assert_eq!(checkpoint["fields"]["case"], id, "{checkpoint}");
    drop(daemon);

    // On the next start the case resumes where it stopped and ends done.
    std::fs::write(d.path("reload-delay"), "0").unwrap();
    // A watchdog meant for another process (WATCHDOG_PID) is not this one's to ping.
    notify.drain();
    let daemon = d.start(
        &notify,
        &[("WATCHDOG_USEC", "400000"), ("WATCHDOG_PID", "1")],
    );
    let ready = notify.next_state(&daemon, Duration::from_secs(30), "READY");
    let ready_at = Instant::now();
    assert!(
        field(&ready, "STATUS").is_some_and(|s| s.contains("1 case resumed")),
        "{ready}"
    );
    let case = wait_for(
        &daemon,
        Duration::from_secs(30),
        "the resumed case done",
        || {
            let c = d.case(id);
            (c["state"] != "running").then_some(c)
        },
    );
    assert_eq!(case["state"], "done", "{case:#}");
    let steps = journal(&case);
    assert_eq!(
        steps
            .iter()
            .filter(|(s, o)| s == "reload" && o == "ok")
            .count(),
        1,
        "the finished reload ran again: {case:#}"
    );
    for step in ["verify", "revoke", "confirm", "close"] {
        assert!(
            steps.contains(&(step.to_string(), "ok".to_string())),
            "{step} did not run: {case:#}"
        );
    }
    assert_eq!(d.reloads().len(), reloads_before + 1, "{:?}", d.reloads());
    assert_ne!(
        std::fs::read(&cert).unwrap(),
        before,
        "the certificate was not replaced"
    );
    std::thread::sleep(Duration::from_secs(1).saturating_sub(ready_at.elapsed()));
    let sent = notify.drain();
    assert!(
        !sent.iter().any(|m| m == "WATCHDOG=1"),
        "WATCHDOG=1 sent though WATCHDOG_PID names another process: {sent:?}"
    );
    stop(daemon, &notify);
}

/// SIGTERM: STOPPING=1, then exit 0.
fn stop(mut daemon: Daemon, notify: &Notify) {
    signal(daemon.pid(), "TERM");
    let stopping = notify.next_state(&daemon, Duration::from_secs(10), "STOPPING");
    assert_eq!(field(&stopping, "STOPPING"), Some("1"), "{stopping}");
    let exit = daemon.wait_exit(Duration::from_secs(15));
    assert!(exit.success(), "exit {exit:?}; log:\n{}", daemon.log());
}

/// A rule placed before the default ones: certificates tagged `hold` wait for their owner.
const HOLD_RULE: &str = "[[rule]]
name = \"hold-for-owner\"
tags = [\"hold\"]
action = \"reissue\"
approval = \"owner\"

";

#[test]
fn cli_through_the_socket_and_a_scheduled_scan() {
    let d = DaemonHome::new();
    let mut policy = String::from_utf8(d.status(&["policy", "show-default"], 0).stdout).unwrap();
    let first_rule = policy.find("[[rule]]").unwrap();
    policy.insert_str(first_rule, HOLD_RULE);
    std::fs::write(d.path("policy.toml"), policy).unwrap();
    d.write_config(
        "policy = \"policy.toml\"",
        "[schedule]\nscan = \"* * * * *\"\n",
    );
    d.status(&["policy", "check"], 0);
    let (alpha_cert, alpha_key) = d.add_entry("alpha", &["prod", "hold"]);
    let (beta_cert, beta_key) = d.add_entry("beta", &["prod", "hold"]);
    d.reissue("alpha");
    d.reissue("beta");
    let (weak_cert, weak_key) = d.ca_signed_rsa1024("weak");
    d.write_entry("weak", &["prod"], &weak_cert, &weak_key);
    let files = |c: &Path, k: &Path| (std::fs::read(c).unwrap(), std::fs::read(k).unwrap());
    let alpha_before = files(&alpha_cert, &alpha_key);
    let beta_before = files(&beta_cert, &beta_key);
    let weak_before = std::fs::read(&weak_cert).unwrap();

    let notify = Notify::bind(d.path("notify.sock"));
    let started = Utc::now();
    let daemon = d.start(&notify, &[]);
    let ready = notify.next_state(&daemon, Duration::from_secs(30), "READY");
    assert!(
        field(&ready, "STATUS").is_some_and(|s| s.contains("1 scheduled job")),
        "{ready}"
    );

    // The daemon holds the database, so everything below goes through its socket.
    let listed = d.json(&["inventory", "list", "--json"], 0);
    let mut names: Vec<&str> = listed["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["alpha", "beta", "weak"], "{listed:#}");

    // A signal posted to the socket opens a case that waits for the owner.
    let post = |cert: &str| {
        let (code, v) = daemon.http(
            "POST",
            "/v1/signals",
            Some(&json!({
                "cert": cert,
                "check": "key_exposed",
                "confidence": "confirmed",
                "message": format!("the key of {cert} was found in a backup"),
            })),
        );
        assert_eq!(code, 200, "{v:#}");
        let waiting = v["applied"]["waiting"].as_array().unwrap();
        assert_eq!(waiting.len(), 1, "{cert}: no case waits: {v:#}");
        let id = waiting[0].as_u64().unwrap();
        let listed = d.cases();
        let case = listed.iter().find(|c| c["id"] == id).unwrap();
        assert_eq!(case["state"], "awaiting_approval", "{case:#}");
        assert_eq!(case["cert"], cert, "{case:#}");
        id
    };
    let alpha_case = post("alpha");
    let shown = d.case(alpha_case);
    assert_eq!(shown["kind"], "reissue", "{shown:#}");
    assert_eq!(
        shown["decision"]["rule"]["name"], "hold-for-owner",
        "{shown:#}"
    );
    assert_eq!(files(&alpha_cert, &alpha_key), alpha_before);
    let st = d.json(&["status", "--json"], 0);
    assert_eq!(st["waiting"], json!([alpha_case]), "{st:#}");
    let out = text(&d.status(&["status"], 0));
    assert!(
        out.contains(&format!("waiting:  case {alpha_case}")),
        "{out}"
    );
    // The tables for people, read from the daemon's answers.
    let out = text(&d.status(&["cases", "list"], 0));
    assert!(out.contains("alpha") && out.contains("awaiting"), "{out}");
    let out = text(&d.status(&["cases", "show", &alpha_case.to_string()], 0));
    assert!(out.contains("hold-for-owner"), "{out}");

    // `approve` through the daemon runs it and waits for it: done, new bundle deployed.
    let out = d.status(&["approve", &alpha_case.to_string()], 0);
    let listed = d.cases();
    let c = listed.iter().find(|c| c["id"] == alpha_case).unwrap();
    assert_eq!(c["state"], "done", "{}\n{listed:#?}", text(&out));
    let alpha_after = files(&alpha_cert, &alpha_key);
    assert_ne!(
        alpha_after.0, alpha_before.0,
        "approve did not replace alpha"
    );
    assert_ne!(
        alpha_after.1, alpha_before.1,
        "approve did not replace alpha's key"
    );
    assert!(
        d.reloads()
            .iter()
            .any(|l| l.starts_with("alpha ")
                && c["new_bundle"].as_str().is_some_and(|b| l.ends_with(b))),
        "alpha's new bundle was not reloaded: {:?}\n{c:#}",
        d.reloads()
    );

    // `rollback` through the daemon restores the previous bundle, byte for byte (a reissue
    // does not revoke, so no --force).
    let out = d.json(&["rollback", "alpha", "--json"], 0);
    assert_eq!(out["ok"], true, "{out:#}");
    assert_eq!(files(&alpha_cert, &alpha_key), alpha_before);

    // `deny` through the daemon: the case never runs.
    let beta_case = post("beta");
    let out = d.json(
        &[
            "deny",
            &beta_case.to_string(),
            "--reason",
            "the backup was encrypted",
            "--json",
        ],
        0,
    );
    assert_eq!(out["state"], "denied", "{out:#}");
    assert_eq!(d.case(beta_case)["state"], "denied");
    assert_eq!(files(&beta_cert, &beta_key), beta_before);

    // The scan job fires at the start of a minute; the policy answers the RSA-1024 key with
    // a revoke-and-reissue.
    let job = wait_for(
        &daemon,
        Duration::from_secs(75),
        "the scheduled scan",
        || {
            let (code, st) = daemon.http("GET", "/v1/status", None);
            assert_eq!(code, 200, "{st:#}");
            let job = st["jobs"]["scan"].clone();
            (job["runs"].as_u64().unwrap_or(0) >= 1).then_some(job)
        },
    );
    let at = time(&job["last_started"]);
    assert!(at > started, "{job:#}");
    let past_minute = Duration::from_secs(u64::from(at.second()))
        + Duration::from_nanos(u64::from(at.nanosecond()));
    assert!(
        past_minute < Duration::from_secs(5),
        "the scan started {past_minute:?} after the minute: {job:#}"
    );
    assert_eq!(job["schedule"], "* * * * *", "{job:#}");
    assert_eq!(job["last_failed"], false, "{job:#}");
    let signals = d.json(&["signals", "--all", "--json"], 0);
    assert!(
        signals
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["subject"] == "weak" && s["check"] == "rsa_modulus_small"),
        "{signals:#}"
    );
    let weak = wait_for(
        &daemon,
        Duration::from_secs(30),
        "the weak key's case done",
        || {
            d.cases()
                .into_iter()
                .find(|c| c["cert"] == "weak" && c["state"] != "running")
        },
    );
    assert_eq!(weak["state"], "done", "{weak:#}");
    assert_eq!(weak["kind"], "revoke_reissue", "{weak:#}");
    assert_eq!(weak["trigger"]["source"], "policy", "{weak:#}");
    assert_ne!(std::fs::read(&weak_cert).unwrap(), weak_before);

    // The scan's policy pass did not answer alpha and beta again: one case each besides
    // the `reissue` that put their first certificate in place (and a rollback by hand).
    let cases = d.cases();
    for cert in ["alpha", "beta", "weak"] {
        assert_eq!(
            cases
                .iter()
                .filter(|c| c["cert"] == cert
                    && c["trigger"]["source"] != "manual"
                    && c["kind"] != "rollback")
                .count(),
            1,
            "{cert}: {cases:#?}"
        );
    }
    stop(daemon, &notify);
}

fn openssl(args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl is installed (the README's test command installs it)");
    assert!(out.status.success(), "openssl {args:?}: {}", text(&out));
}

/// `distrust` while the daemon runs: the CLI cannot open the database, so the daemon
/// records the distrust, opens the replacements and runs them; the CLI follows the run
/// and prints the same summary. The API refuses a bad request naming the field.
#[test]
fn distrust_through_the_daemon() {
    let d = DaemonHome::new();
    d.write_config(
        "",
        "[[issuer]]\nid = \"next\"\ntype = \"internal-ca\"\ndir = \"ca-next\"\ncommon_name = \"Next Internal CA\"\n",
    );
    let mut files = Vec::new();
    for name in ["alpha", "beta"] {
        let (cert, _) = d.add_entry(name, &["prod"]);
        d.reissue(name);
        let mut inv = std::fs::read_to_string(d.path(&format!("inventory/{name}.toml"))).unwrap();
        inv.push_str("fallback_issuer = \"next\"\n");
        std::fs::write(d.path(&format!("inventory/{name}.toml")), inv).unwrap();
        files.push(cert);
    }
    let old_issuer = |cert: &Path| {
        let der = inspect::read_certificates(&std::fs::read(cert).unwrap())
            .unwrap()
            .remove(0);
        inspect::inspect_certificate_der(&der).unwrap().issuer
    };
    let before: Vec<String> = files.iter().map(|c| old_issuer(c)).collect();

    let (notify, daemon) = d.start_ready();

    let ca = d.path("ca/ca.pem");
    let ca = ca.to_str().unwrap();
    let cases_before = d.cases().len();
    let dry = d.json(&["distrust", ca, "--dry-run", "--json"], 0);
    let listed: Vec<(&str, &str)> = dry["affected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["cert"].as_str().unwrap(), a["issuer"].as_str().unwrap()))
        .collect();
    assert_eq!(listed, [("alpha", "next"), ("beta", "next")], "{dry:#}");
    assert_eq!(d.cases().len(), cases_before, "a dry run opened cases");

    let (code, v) = daemon.http(
        "POST",
        "/v1/distrust",
        Some(&json!({"ca": "spki:00", "deadline": "1d"})),
    );
    assert_eq!(code, 400, "{v:#}");
    assert!(v["error"].as_str().unwrap().contains("`ca`"), "{v:#}");
    let (code, v) = daemon.http(
        "POST",
        "/v1/distrust",
        Some(&json!({"ca": "Some CA", "issuer": "nope"})),
    );
    assert_eq!(code, 400, "{v:#}");
    assert!(v["error"].as_str().unwrap().contains("`issuer`"), "{v:#}");

    let report = d.json(&["distrust", ca, "--deadline", "2h", "--json"], 0);
    assert_eq!(report["finished"], true, "{report:#}");
    assert_eq!(report["affected"], 2, "{report:#}");
    assert_eq!(report["summary"]["replaced"], 2, "{report:#}");
    assert_eq!(report["summary"]["within_deadline"], 2, "{report:#}");
    for o in report["outcomes"].as_array().unwrap() {
        assert_eq!(o["status"], "replaced", "{report:#}");
        assert_eq!(o["issuer"], "next", "{report:#}");
    }
    for (cert, old) in files.iter().zip(&before) {
        let now = old_issuer(cert);
        assert_ne!(&now, old, "{} still from the distrusted CA", cert.display());
        assert!(now.contains("Next Internal CA"), "{now}");
    }

    // `scan` while the daemon runs: the daemon scans (waiting for a job it runs, if any)
    // and answers as `scan` does on its own, CA checks included.
    let scanned = d.json(&["scan", "--json"], 0);
    assert_eq!(scanned["scanned"], 2, "{scanned:#}");
    assert_eq!(scanned["ca_checked"], 2, "{scanned:#}");
    let (code, v) = daemon.http("POST", "/v1/jobs/nope/run", None);
    assert_eq!(code, 404, "{v:#}");
    assert!(v["error"].as_str().unwrap().contains("ct_poll"), "{v:#}");

    let list = d.json(&["distrust", "--list", "--json"], 0);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list:#}");
    d.status(&["distrust", ca, "--remove"], 0);
    let list = d.json(&["distrust", "--list", "--json"], 0);
    assert!(list.as_array().unwrap().is_empty(), "{list:#}");
    stop(daemon, &notify);
}

// ---------------------------------------------------------------------------------------
// The same commands with and without the daemon
// ---------------------------------------------------------------------------------------

/// A command's output with what differs between two runs of the same story taken out: the
/// home's path, every word with a digit in it (case numbers, serials, hashes, times) and
/// the widths of table columns.
fn masked(out: &str, home: &Path) -> String {
    let mut out = out.replace(&home.display().to_string(), "HOME");
    // PEM blocks (certificates in a case's JSON) differ whole.
    while let Some(start) = out.find("-----BEGIN") {
        let Some(end) = out[start..].find("-----END").map(|e| start + e) else {
            break;
        };
        let close = out[end + 8..]
            .find("-----")
            .map_or(out.len(), |c| end + 8 + c + 5);
        out.replace_range(start..close, "PEM");
    }
    let mut o = String::new();
    for line in out.lines() {
        let words: Vec<String> = line
            .split_whitespace()
            .map(|w| {
                let mut m = String::new();
                let mut run = String::new();
                let flush = |run: &mut String, m: &mut String| {
                    if run.chars().any(|c| c.is_ascii_digit()) {
                        m.push('#');
                    } else {
                        m.push_str(run);
                    }
                    run.clear();
                };
                for c in w.chars() {
                    if c.is_ascii_alphanumeric() {
                        run.push(c);
                    } else {
                        flush(&mut run, &mut m);
                        m.push(c);
                    }
                }
                flush(&mut run, &mut m);
                m
            })
            .collect();
        // A cell cut to its width ends in `…` wherever the digits before it made it end:
        // the cut word says nothing.
        let mut words = words;
        if let Some(last) = words.last_mut()
            && last.ends_with('…')
        {
            *last = "…".into();
        }
        o.push_str(&words.join(" "));
        o.push('\n');
    }
    o
}

/// What one command did: its arguments, exit status, and masked stdout and stderr.
type Seen = (String, Option<i32>, String, String);

/// What a run of [`INCIDENT`] did: each command, which certificate files changed, the
/// audit records as (kind, actor, cert), and the reasons of the internal CA's CRL entries.
type Story = (
    Vec<Seen>,
    Vec<bool>,
    Vec<(String, String, String)>,
    Vec<String>,
);

/// The incident commands an operator runs, in order, with the exit status each must have.
const INCIDENT: &[(&[&str], i32)] = &[
    (&["scan", "--no-ca"], 3),
    (&["scan", "--json"], 3),
    (
        &["report-compromise", "alpha", "--evidence", "key in a paste"],
        0,
    ),
    (&["history", "alpha"], 0),
    (&["history", "alpha", "--json"], 0),
    (&["reissue", "beta", "--why", "rotation"], 0),
    (&["reissue", "beta", "--revoke", "superseded", "--json"], 0),
    (&["reissue", "nosuch"], 2),
    (&["reissue", "beta", "--revoke", "nonsense"], 2),
    (&["report-compromise", "alpha", "--evidence", " "], 2),
    (&["report-compromise", "nosuch", "--evidence", "seen"], 2),
    (&["history", "nosuch"], 2),
    (&["respond", "--dry-run"], 0),
    (&["respond", "--dry-run", "--json"], 0),
    (&["respond"], 0),
    (&["respond", "--json"], 0),
    (&["breaker", "status"], 0),
    (&["breaker", "status", "--json"], 0),
    (&["breaker", "reset"], 0),
    (&["audit", "verify"], 0),
    (&["audit", "verify", "--head", "nonsense"], 2),
    (&["audit", "export", "--cert", "beta"], 0),
    (
        &["report-compromise", "held", "--evidence", "seen in a log"],
        0,
    ),
    (&["approve", "{waiting}"], 0),
    (&["approve", "{waiting}"], 2),
    (
        &[
            "report-compromise",
            "held",
            "--evidence",
            "seen again",
            "--json",
        ],
        0,
    ),
    (
        &["deny", "{waiting}", "--reason", "a false alarm", "--json"],
        0,
    ),
    (&["deny", "{waiting}", "--reason", "twice"], 2),
    (&["cases", "list"], 0),
    (&["cases", "list", "--json"], 0),
    (&["cases", "show", "{last}"], 0),
    (&["cases", "show", "{last}", "--json"], 0),
    (&["cases", "show", "999"], 2),
    (&["rollback", "gamma"], 0),
    (&["rollback", "beta", "--json"], 0),
    (&["rollback", "nosuch", "--json"], 2),
    (&["signals"], 0),
    (&["signals", "--all", "--json"], 0),
    (
        &[
            "signals",
            "suppress",
            "{signal}",
            "--until",
            "2099-01-01",
            "--reason",
            "known",
        ],
        0,
    ),
    (&["inventory", "list"], 0),
    (&["inventory", "list", "--all", "--json"], 0),
    (&["inventory", "add", "{home}/new/delta.toml"], 0),
    (&["inventory", "add", "{home}/new/delta.toml", "--json"], 0),
    (&["inventory", "add", "{home}/new/bad.toml"], 2),
    (&["inventory", "add", "{home}/new/missing.toml"], 2),
    (&["inventory", "remove", "gamma"], 0),
    (&["inventory", "remove", "gamma", "--json"], 2),
    (&["history", "delta", "--json"], 0),
    (
        &[
            "blocklist",
            "import",
            "{home}/new/known.txt",
            "--format",
            "spki",
        ],
        0,
    ),
    (&["blocklist", "import", "{home}/new/nosuch.txt"], 2),
    (&["blocklist", "list"], 0),
    (&["blocklist", "remove", "known"], 0),
    (&["blocklist", "remove", "known", "--json"], 2),
    (&["inventory", "show", "delta"], 0),
    (&["inventory", "show", "delta", "--json"], 0),
    (&["inventory", "show", "nosuch"], 2),
    (&["policy", "explain", "delta", "key_exposed"], 0),
    (&["policy", "explain", "delta", "fermat", "--json"], 0),
    (&["policy", "explain", "nosuch", "fermat"], 2),
    (
        &[
            "analyze",
            "{home}/certs/delta/cert.pem",
            "--against-inventory",
        ],
        0,
    ),
    (&["ct", "watch", "add", "example.test"], 0),
    (&["ct", "watch", "add", "example.test"], 0),
    (&["ct", "watch", "list"], 0),
    (&["ct", "watch", "list", "--json"], 0),
    (&["ct", "watch", "remove", "example.test"], 0),
    (&["ct", "watch", "remove", "example.test"], 2),
    (&["ct", "status"], 0),
    (&["ct", "poll"], 2),
    (&["exposure", "scan", "{home}/leak"], 3),
    (&["exposure", "scan", "{home}/leak", "--json"], 3),
    (&["exposure", "scan", "{home}/nosuch"], 2),
    (&["signals", "--json"], 0),
];

/// Runs [`INCIDENT`] in a new home, through a running daemon or not; returns what each
/// command did, the certificate files afterwards, and the audit records as (kind, actor,
/// cert).
fn incident(through_daemon: bool) -> Story {
    let d = DaemonHome::new();
    let mut policy = String::from_utf8(d.status(&["policy", "show-default"], 0).stdout).unwrap();
    let first_rule = policy.find("[[rule]]").unwrap();
    policy.insert_str(
        first_rule,
        &HOLD_RULE.replace("action = \"reissue\"", "action = \"revoke_reissue\""),
    );
    std::fs::write(d.path("policy.toml"), policy).unwrap();
    d.write_config("policy = \"policy.toml\"", "");
    let entries: Vec<(PathBuf, PathBuf)> = ["alpha", "beta", "gamma"]
        .iter()
        .map(|n| d.add_entry(n, &["prod"]))
        .collect();
    d.add_entry("held", &["hold"]);
    for n in ["alpha", "beta", "gamma", "held"] {
        d.reissue(n);
    }
    // An RSA-1024 key the scan finds and `respond` replaces.
    let (weak_cert, weak_key) = d.ca_signed_rsa1024("weak");
    d.write_entry("weak", &["prod"], &weak_cert, &weak_key);
    let before: Vec<Vec<u8>> = entries
        .iter()
        .map(|(c, _)| std::fs::read(c).unwrap())
        .collect();
    // Files to add, outside the inventory directory: a good one and one without an owner.
    std::fs::create_dir_all(d.path("new")).unwrap();
    d.add_entry("delta", &[]);
    std::fs::rename(d.path("inventory/delta.toml"), d.path("new/delta.toml")).unwrap();
    let delta = std::fs::read_to_string(d.path("new/delta.toml")).unwrap();
    std::fs::write(
        d.path("new/bad.toml"),
        delta
            .replace("name = \"delta\"", "name = \"bad\"")
            .lines()
            .filter(|l| !l.starts_with("owner"))
            .collect::<Vec<_>>()
            .join("\n"),
    )
    .unwrap();
    std::fs::write(d.path("new/known.txt"), format!("{}\n", "ab".repeat(32))).unwrap();
    // delta's key, left where it should not be.
    std::fs::create_dir_all(d.path("leak")).unwrap();
    std::fs::copy(d.path("certs/delta/key.pem"), d.path("leak/backup.pem")).unwrap();
    let notify = Notify::bind(d.path("notify.sock"));
    let daemon = through_daemon.then(|| {
        let daemon = d.start(&notify, &[]);
        notify.next_state(&daemon, Duration::from_secs(30), "READY");
        daemon
    });
    let mut seen = Vec::new();
    let home = d.home.dir.path().display().to_string();
    for (args, status) in INCIDENT {
        let cases = d.cases();
        let newest = |pick: &dyn Fn(&Value) -> bool| {
            cases
                .iter()
                .filter(|c| pick(c))
                .map(|c| c["id"].as_u64().unwrap())
                .max()
                .map_or_else(|| "0".to_string(), |id| id.to_string())
        };
        let waiting = newest(&|c| c["state"] == "awaiting_approval");
        let last = newest(&|_| true);
        let signal = d.json(&["signals", "--all", "--json"], 0)[0]["id"]
            .as_str()
            .unwrap_or("none")
            .to_string();
        let args: Vec<String> = args
            .iter()
            .map(|a| {
                a.replace("{home}", &home)
                    .replace("{waiting}", &waiting)
                    .replace("{last}", &last)
                    .replace("{signal}", &signal)
            })
            .collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = d.run(&args);
        assert_eq!(
            out.status.code(),
            Some(*status),
            "{args:?} (through the daemon: {through_daemon}): {}{}",
            text(&out),
            daemon.as_ref().map(Daemon::log).unwrap_or_default()
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        // Log lines are the process's own (the daemon logs to its journal instead).
        let stderr: String = String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter(|l| !l.contains(" WARN certresponder") && !l.contains(" INFO certresponder"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert!(!stderr.contains("in use by"), "{args:?} refused: {stderr}");
        seen.push((
            masked(&args.join(" "), d.home.dir.path())
                .trim()
                .to_string(),
            out.status.code(),
            masked(&stdout, d.home.dir.path()),
            masked(&stderr, d.home.dir.path()),
        ));
    }
    let changed = entries
        .iter()
        .zip(&before)
        .map(|((c, _), b)| std::fs::read(c).unwrap() != *b)
        .collect();
    let records = d
        .json(&["audit", "export", "--json"], 0)
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["kind"].as_str().unwrap().to_string(),
                r["actor"].as_str().unwrap().to_string(),
                r["cert"].as_str().unwrap_or("-").to_string(),
            )
        })
        .collect();
    let crl = Command::new("openssl")
        .args(["crl", "-inform", "DER", "-noout", "-text", "-in"])
        .arg(d.path("ca/crl.der"))
        .output()
        .unwrap();
    assert!(crl.status.success(), "{}", text(&crl));
    let mut reasons: Vec<String> = String::from_utf8_lossy(&crl.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| {
            l.starts_with("Key Compromise")
                || l.starts_with("Superseded")
                || l.starts_with("Unspecified")
        })
        .map(str::to_string)
        .collect();
    reasons.sort();
    if let Some(daemon) = daemon {
        stop(daemon, &notify);
    }
    (seen, changed, records, reasons)
}

#[test]
fn incident_commands_do_the_same_with_and_without_the_daemon() {
    let (local, daemon) = std::thread::scope(|s| {
        let local = s.spawn(|| incident(false));
        let daemon = s.spawn(|| incident(true));
        (local.join().unwrap(), daemon.join().unwrap())
    });
    // The compromised key was replaced; beta was reissued, then rolled back to where it
    // started; gamma was rolled back to its first certificate.
    assert_eq!(local.1, [true, false, true]);
    assert_eq!(daemon.1, local.1);
    for (l, r) in local.0.iter().zip(&daemon.0) {
        assert_eq!(
            l, r,
            "the same command printed otherwise through the daemon"
        );
    }
    // The first report revoked alpha's old certificate for keyCompromise.
    let history = &local
        .0
        .iter()
        .find(|s| s.0 == "history alpha --json")
        .unwrap()
        .2;
    assert!(history.contains("\"revoked\""), "{history}");
    // The daemon also audits each request that changed something, with the role that
    // allowed it; the rest is the same.
    let requests = |s: &Story| s.2.iter().filter(|r| r.0 == "control_request").count();
    assert_eq!(requests(&local), 0);
    assert!(requests(&daemon) > 10, "{:?}", daemon.2);
    let same: Vec<_> = daemon
        .2
        .iter()
        .filter(|r| r.0 != "control_request")
        .cloned()
        .collect();
    assert_eq!(local.2, same, "the audit records differ");
    // The CRL the internal CA published lists the same revocations: the compromised keys
    // (alpha, and held once approved) and beta's superseded certificate.
    assert!(
        local
            .3
            .iter()
            .filter(|r| r.starts_with("Key Compromise"))
            .count()
            >= 2
            && local.3.iter().any(|r| r.starts_with("Superseded")),
        "{:?}",
        local.3
    );
    assert_eq!(local.3, daemon.3, "the CRLs differ");
    assert!(
        local
            .2
            .iter()
            .any(|(kind, _, cert)| kind == "breaker_reset" || cert == "alpha"),
        "{:?}",
        local.2
    );
}

#[test]
fn a_record_that_cannot_be_read_is_reported_and_skipped() {
    let d = DaemonHome::new();
    d.add_entry("alpha", &["prod"]);
    d.add_entry("beta", &["prod"]);
    d.reissue("alpha");
    d.reissue("beta");
    // Case 1 (alpha's reissue) is damaged on disk.
    {
        let db = sled::open(d.path("state/db")).unwrap();
        let cases = db.open_tree("cases").unwrap();
        assert!(cases.get(1u64.to_be_bytes()).unwrap().is_some());
        cases
            .insert(1u64.to_be_bytes(), b"\x01{\"id\": 1, \"cert\": ".to_vec())
            .unwrap();
        db.flush().unwrap();
    }
    let check = |through: &str| {
        let out = d.status(&["cases", "list", "--json"], 0);
        let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
        let ids: Vec<u64> = listed
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_u64().unwrap())
            .collect();
        assert!(
            !ids.contains(&1) && ids.contains(&2),
            "{through}: {ids:?} {}",
            text(&out)
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("cannot be read") && err.contains("tree `cases`, key `1`"),
            "{through}: {err}"
        );
        // The policy pass and resume go on past it.
        d.status(&["respond"], 0);
        d.status(&["reissue", "beta"], 0);
    };
    check("without the daemon");
    let (notify, daemon) = d.start_ready();
    check("through the daemon");
    let st = d.json(&["status", "--json"], 0);
    let bad = st["unreadable_records"].as_array().unwrap();
    assert_eq!(bad.len(), 1, "{st:#}");
    assert!(bad[0].as_str().unwrap().contains("cases"), "{st:#}");
    let out = text(&d.status(&["status"], 0));
    assert!(out.contains("1 record cannot be read"), "{out}");
    let records = d.json(&["audit", "export", "--json"], 0);
    let reported: Vec<&Value> = records
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "record_unreadable")
        .collect();
    assert_eq!(
        reported.len(),
        1,
        "once, however often it is met: {records:#}"
    );
    assert!(
        daemon.log().contains("a stored record cannot be read"),
        "{}",
        daemon.log()
    );
    stop(daemon, &notify);
}

// ---------------------------------------------------------------------------------------
// Roles on the control socket
// ---------------------------------------------------------------------------------------

/// The account the role tests act as: `nobody`, in its own group `nogroup`, by number.
const NOBODY: u32 = 65_534;

/// A home whose control socket belongs to `nogroup` and whose roles are `roles` (the body of
/// `[daemon.roles]`), with `policy` as its policy; readable by `nobody`.
fn roles_home(roles: &str, policy: &str) -> DaemonHome {
    let d = DaemonHome::new();
    std::fs::write(d.path("policy.toml"), policy).unwrap();
    let text = d
        .config_text(
            "policy = \"policy.toml\"",
            &format!("[daemon.roles]\n{roles}\n"),
        )
        .replace("control_group = \"\"", "control_group = \"nogroup\"");
    std::fs::write(d.home.config(), text).unwrap();
    std::fs::set_permissions(
        d.home.dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    d
}

impl DaemonHome {
    /// Starts the daemon and waits for its READY.
    fn start_ready(&self) -> (Notify, Daemon) {
        let notify = Notify::bind(self.path("notify.sock"));
        let daemon = self.start(&notify, &[]);
        notify.next_state(&daemon, Duration::from_secs(30), "READY");
        (notify, daemon)
    }

    /// Reports `cert` compromised (as root), whose case waits for approval; returns it.
    fn report_waits(&self, cert: &str) -> u64 {
        let v = self.json(
            &[
                "report-compromise",
                cert,
                "--evidence",
                "in a paste",
                "--json",
            ],
            0,
        );
        v["waiting"][0]["id"]
            .as_u64()
            .unwrap_or_else(|| panic!("no case waits: {v:#}"))
    }

    /// The CLI as `nobody` (numeric ids, no other group), bounded.
    fn as_nobody(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new("setpriv");
        cmd.arg(format!("--reuid={NOBODY}"))
            .arg(format!("--regid={NOBODY}"))
            .arg("--clear-groups")
            .arg(env!("CARGO_BIN_EXE_certresponder"))
            .arg("--config")
            .arg(self.home.config())
            .args(args)
            .env("NO_COLOR", "1")
            .env_remove("CERTRESPONDER_CONFIG")
            .env_remove("NOTIFY_SOCKET")
            .current_dir(self.home.dir.path());
        run_bounded(cmd, CLI_LIMIT)
    }
}

/// The policy's default with `rules` in front and `limits` instead of its own.
fn policy_with(d: &DaemonHome, rules: &str, limits: Option<&str>) -> String {
    let mut policy = String::from_utf8(d.status(&["policy", "show-default"], 0).stdout).unwrap();
    let first_rule = policy.find("[[rule]]").unwrap();
    policy.insert_str(first_rule, rules);
    if let Some(l) = limits {
        let start = policy.find("[limits]").unwrap();
        let end = start + policy[start..].find("\n\n").unwrap();
        policy.replace_range(start..end, l);
    }
    policy
}

#[test]
fn each_account_does_what_its_roles_allow_and_nothing_else() {
    let probe = DaemonHome::new();
    let policy = policy_with(&probe, HOLD_RULE, None);
    let d = roles_home(
        "read = [\"group:nogroup\"]\napprove = [\"user:nobody\"]",
        &policy,
    );
    let (alpha_cert, _) = d.add_entry("alpha", &["hold"]);
    let (beta_cert, _) = d.add_entry("beta", &["prod"]);
    d.reissue("alpha");
    d.reissue("beta");
    let (notify, daemon) = d.start_ready();
    // Root reports alpha (held for its owner by the policy).
    let id = d.report_waits("alpha");
    let alpha_before = std::fs::read(&alpha_cert).unwrap();
    let beta_before = std::fs::read(&beta_cert).unwrap();
    let cases_before = d.cases().len();

    // `read` (through the group): listings work.
    let out = d.as_nobody(&["cases", "list", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // What needs another role is refused, naming it, and changes nothing.
    for (args, role) in [
        (&["reissue", "beta"][..], "operate"),
        (&["respond"], "operate"),
        (&["breaker", "reset"], "admin"),
        (&["rollback", "beta", "--force"], "admin"),
        (
            &[
                "signals",
                "suppress",
                "abc",
                "--until",
                "2099-01-01",
                "--reason",
                "x",
            ],
            "admin",
        ),
        (
            &["report-compromise", "beta", "--evidence", "seen"],
            "report",
        ),
        (&["distrust", "CN=Nobody CA"], "admin"),
    ] {
        let out = d.as_nobody(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("needs the `{role}` role")) && err.contains("uid 65534"),
            "{args:?}: {err}"
        );
    }
    assert_eq!(std::fs::read(&alpha_cert).unwrap(), alpha_before);
    assert_eq!(std::fs::read(&beta_cert).unwrap(), beta_before);
    assert_eq!(
        d.cases().len(),
        cases_before,
        "a refused request opened a case"
    );
    let refusals = daemon
        .log_lines()
        .iter()
        .filter(|l| l["fields"]["message"] == "control request refused: role not held")
        .count();
    assert!(refusals >= 7, "refusals are logged: {}", daemon.log());

    // `approve` (by user): the case runs.
    let out = d.as_nobody(&["approve", &id.to_string()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let c = d.case(id);
    assert_eq!(c["state"], "done");
    // Without a login session, the account stands for the person, and the record says so.
    if std::fs::read_to_string("/proc/self/loginuid").is_ok_and(|l| l.trim() == "4294967295") {
        assert_eq!(
            c["approval"]["approvals"][0]["basis"], "account: no login uid",
            "{c:#}"
        );
    }
    assert_ne!(std::fs::read(&alpha_cert).unwrap(), alpha_before);
    // The approval is audited with who asked and the role that allowed it.
    let records = d.json(&["audit", "export", "--json"], 0);
    let allowed = records
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "control_request" && r["data"]["role"] == "approve")
        .unwrap_or_else(|| panic!("{records:#}"));
    assert!(
        allowed["actor"].as_str().unwrap().contains("65534") || allowed["data"]["uid"] == NOBODY,
        "{allowed:#}"
    );
    stop(daemon, &notify);
}

#[test]
fn a_report_without_operate_is_counted_by_the_breaker_and_cannot_contain_first() {
    let probe = DaemonHome::new();
    let policy = policy_with(
        &probe,
        "",
        Some("[limits]\nmax_revocations = 1\nmax_revocations_per_owner = 1\nwindow = \"1h\""),
    );
    let d = roles_home(
        "report = [\"user:nobody\"]\nread = [\"user:nobody\"]",
        &policy,
    );
    for n in ["alpha", "beta"] {
        d.add_entry(n, &["prod"]);
        d.reissue(n);
    }
    let (notify, daemon) = d.start_ready();

    let out = d.as_nobody(&[
        "report-compromise",
        "alpha",
        "--evidence",
        "x",
        "--contain-first",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("--contain-first needs the `operate` role"),
        "{}",
        text(&out)
    );

    // The first report uses the one automatic revocation the window allows ...
    let out = d.as_nobody(&[
        "report-compromise",
        "alpha",
        "--evidence",
        "in a paste",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["cases"][0]["state"], "done", "{v:#}");
    let signal = d.json(&["signals", "--all", "--json"], 0);
    let alpha = signal
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["subject"] == "alpha" && s["check"] == "key_exposed")
        .unwrap();
    assert_eq!(alpha["confidence"], "high", "capped: {alpha:#}");
    // ... and the breaker holds the second, as it would a detector's.
    let out = d.as_nobody(&[
        "report-compromise",
        "beta",
        "--evidence",
        "in a paste",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["cases"].as_array().unwrap().is_empty(), "{v:#}");
    assert_eq!(v["breaker_opened"], true, "{v:#}");
    assert_eq!(v["waiting"][0]["cert"], "beta", "{v:#}");
    stop(daemon, &notify);
}

/// A rule placed before the default ones: certificates tagged `pair` need two people.
const PAIR_RULE: &str = "[[rule]]
name = \"two-people\"
tags = [\"pair\"]
action = \"revoke_reissue\"
approval = \"two_person\"

";

impl DaemonHome {
    /// `approve CASE` from a process whose login uid is `login` (as a login session sets it),
    /// as root or, with `nobody`, as the account `nobody`.
    fn approve_as_login(&self, case: u64, login: u32, nobody: bool) -> Output {
        let bin = env!("CARGO_BIN_EXE_certresponder");
        let config = self.home.config();
        let run = if nobody {
            format!(
                "exec setpriv --reuid={NOBODY} --regid={NOBODY} --clear-groups {bin} --config {} approve {case}",
                config.display()
            )
        } else {
            format!("exec {bin} --config {} approve {case}", config.display())
        };
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(format!("echo {login} > /proc/self/loginuid && {run}"))
            .env("NO_COLOR", "1")
            .env_remove("CERTRESPONDER_CONFIG")
            .current_dir(self.home.dir.path());
        run_bounded(cmd, CLI_LIMIT)
    }
}

#[test]
fn two_accounts_of_one_login_are_one_person() {
    let probe = DaemonHome::new();
    let policy = policy_with(&probe, PAIR_RULE, None);
    let d = roles_home(
        "approve = [\"user:nobody\"]\nread = [\"user:nobody\"]",
        &policy,
    );
    let (cert, _) = d.add_entry("alpha", &["pair"]);
    d.reissue("alpha");
    let (notify, daemon) = d.start_ready();
    let id = d.report_waits("alpha");
    let before = std::fs::read(&cert).unwrap();

    // One person (login uid 4242) as root, then as nobody: the second is the same person.
    let out = d.approve_as_login(id, 4242, false);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = d.approve_as_login(id, 4242, true);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("already approved"), "{}", text(&out));
    assert_eq!(d.case(id)["state"], "awaiting_approval");
    assert_eq!(std::fs::read(&cert).unwrap(), before);

    // Another person (login uid 4343), through the same account: the case runs.
    let out = d.approve_as_login(id, 4343, true);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let c = d.case(id);
    assert_eq!(c["state"], "done", "{c:#}");
    let uids: Vec<u64> = c["approval"]["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["uid"].as_u64().unwrap())
        .collect();
    assert_eq!(uids, [4242, 4343], "{c:#}");
    assert_ne!(std::fs::read(&cert).unwrap(), before);
    stop(daemon, &notify);
}

#[test]
fn approvals_that_count_people_are_refused_when_proc_is_hidden() {
    let probe = DaemonHome::new();
    let policy = policy_with(&probe, PAIR_RULE, None);
    let d = roles_home("", &policy);
    let (cert, _) = d.add_entry("alpha", &["pair"]);
    d.reissue("alpha");
    let id = d.report_waits("alpha");
    let before = std::fs::read(&cert).unwrap();
    // The daemon runs as `nobody` (owning its files) in a mount namespace whose /proc hides
    // other users' processes, as ProtectProc=invisible would.
    chown_tree(d.home.dir.path(), NOBODY);
    let notify = Notify::bind(d.path("notify.sock"));
    std::fs::set_permissions(
        d.path("notify.sock"),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let log = d.path("daemon-hidden.log");
    let script = format!(
        "mount -t proc -o hidepid=invisible proc /proc && exec setpriv --reuid={NOBODY} --regid={NOBODY} --clear-groups {} --config {} run --log-format json",
        env!("CARGO_BIN_EXE_certresponder"),
        d.home.config().display()
    );
    let child = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .env("NOTIFY_SOCKET", &notify.path)
        .env("CERTRESPONDER_LOG", "info")
        .env("NO_COLOR", "1")
        .env_remove("CERTRESPONDER_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::from(std::fs::File::create(&log).unwrap()))
        .stderr(Stdio::from(
            std::fs::File::options().append(true).open(&log).unwrap(),
        ))
        .spawn()
        .unwrap();
    let daemon = Daemon {
        guard: Guard {
            child,
            graceful: Some("TERM"),
        },
        log,
        socket: d.socket(),
    };
    notify.next_state(&daemon, Duration::from_secs(30), "READY");
    // Root holds every role, but the daemon cannot read its login uid.
    let out = d.run(&["approve", &id.to_string()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("cannot be told apart from other people")
            && text(&out).contains("hidden from the daemon"),
        "{}",
        text(&out)
    );
    assert_eq!(d.case(id)["state"], "awaiting_approval");
    assert_eq!(std::fs::read(&cert).unwrap(), before);
    stop(daemon, &notify);
}

// ---------------------------------------------------------------------------------------
// The engine's history of bundles
// ---------------------------------------------------------------------------------------

/// A rule placed before the default ones: certificates tagged `retire` are revoked, not
/// replaced.
const RETIRE_RULE: &str = "[[rule]]
name = \"retire\"
tags = [\"retire\"]
checks = [\"key_exposed\"]
min_confidence = \"high\"
action = \"revoke\"

";

#[test]
fn a_revoked_bundle_stays_revoked_and_once_in_the_history() {
    let d = DaemonHome::new();
    let policy = policy_with(&d, RETIRE_RULE, None);
    std::fs::write(d.path("policy.toml"), policy).unwrap();
    d.write_config("policy = \"policy.toml\"", "");
    let (cert, _) = d.add_entry("old", &["retire"]);
    d.reissue("old");
    let v = d.json(
        &[
            "report-compromise",
            "old",
            "--evidence",
            "in a paste",
            "--json",
        ],
        0,
    );
    assert_eq!(v["cases"][0]["kind"], "revoke", "{v:#}");
    assert_eq!(v["cases"][0]["state"], "done", "{v:#}");
    let serial = inspect::inspect_certificates(&std::fs::read(&cert).unwrap())
        .unwrap()
        .remove(0)
        .serial;
    // Every command that reads the inventory again (here: `inventory list`, `history`) finds
    // the same files: the revoked bundle, which must stay one entry, revoked.
    d.status(&["inventory", "list"], 0);
    let history = d.json(&["history", "old", "--json"], 0);
    let bundles = history.as_array().unwrap();
    let ids: Vec<&str> = bundles.iter().map(|b| b["id"].as_str().unwrap()).collect();
    let mut unique = ids.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(ids.len(), unique.len(), "a bundle twice: {history:#}");
    let deployed = bundles
        .iter()
        .find(|b| b["serial"] == serial.as_str())
        .unwrap();
    assert!(!deployed["revoked_at"].is_null(), "{history:#}");
    // A rollback names it once, and refuses it without --force: it is revoked.
    let id = deployed["id"].as_str().unwrap();
    let out = d.run(&["rollback", "old", "--to", id]);
    assert!(!text(&out).contains("matches 2 bundles"), "{}", text(&out));
    // The CA's CRL lists it.
    let crl = crl_text(&d.path("ca/crl.der"));
    assert!(crl.contains(&serial.to_uppercase()), "{crl}");
}

#[test]
fn a_certificate_revoked_anywhere_is_not_rolled_back_to() {
    let d = DaemonHome::new();
    let policy = policy_with(&d, RETIRE_RULE, None);
    std::fs::write(d.path("policy.toml"), policy).unwrap();
    d.write_config("policy = \"policy.toml\"", "");
    let (web_cert, web_key) = d.add_entry("web", &["prod"]);
    d.reissue("web");
    let a = inspect::inspect_certificates(&std::fs::read(&web_cert).unwrap())
        .unwrap()
        .remove(0);
    // The same certificate and key also serve a second entry, which is retired.
    let (copy_cert, copy_key) = d.add_entry("copy", &["retire"]);
    std::fs::copy(&web_cert, &copy_cert).unwrap();
    std::fs::copy(&web_key, &copy_key).unwrap();
    d.reissue("web");
    let v = d.json(
        &[
            "report-compromise",
            "copy",
            "--evidence",
            "in a paste",
            "--json",
        ],
        0,
    );
    assert_eq!(v["cases"][0]["kind"], "revoke", "{v:#}");
    assert_eq!(v["cases"][0]["state"], "done", "{v:#}");
    // `web`'s earlier bundle is that certificate, revoked at the CA by the other case: a
    // rollback by hand does not restore it without --force.
    let history = d.json(&["history", "web", "--json"], 0);
    let earlier = history
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["serial"] == a.serial.as_str())
        .unwrap_or_else(|| panic!("{history:#}"));
    assert!(!earlier["revoked_at"].is_null(), "{history:#}");
    let id = earlier["id"].as_str().unwrap();
    let before = std::fs::read(&web_cert).unwrap();
    let out = d.run(&["rollback", "web", "--to", id]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("was revoked at its CA"),
        "{}",
        text(&out)
    );
    assert_eq!(std::fs::read(&web_cert).unwrap(), before);
    // The default target skips it as well.
    let out = d.json(&["rollback", "web", "--json"], 0);
    assert_ne!(out["bundle"], id, "{out:#}");
}

#[test]
fn a_case_acts_only_on_the_certificate_it_was_opened_for() {
    let d = DaemonHome::new();
    let rule = HOLD_RULE.replace("action = \"reissue\"", "action = \"revoke_reissue\"");
    let policy = policy_with(&d, &rule, None);
    std::fs::write(d.path("policy.toml"), policy).unwrap();
    d.write_config("policy = \"policy.toml\"", "");
    let (alpha_cert, alpha_key) = d.add_entry("alpha", &["hold"]);
    let (beta_cert, beta_key) = d.add_entry("beta", &["prod"]);
    d.reissue("alpha");
    d.reissue("beta");
    let id = d.report_waits("alpha");
    // While the case waits, another service's certificate (same CA) is put in alpha's place.
    std::fs::copy(&beta_cert, &alpha_cert).unwrap();
    std::fs::copy(&beta_key, &alpha_key).unwrap();
    let beta = inspect::inspect_certificates(&std::fs::read(&beta_cert).unwrap())
        .unwrap()
        .remove(0);
    let before = std::fs::read(&alpha_cert).unwrap();

    let out = d.run(&["approve", &id.to_string()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let case = d.case(id);
    assert_eq!(case["state"], "failed", "{case:#}");
    let error = case["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("not the certificate the case was opened for"),
        "{case:#}"
    );
    // Nothing changed: not the files, and beta's certificate is not revoked.
    assert_eq!(std::fs::read(&alpha_cert).unwrap(), before);
    let crl = Command::new("openssl")
        .args(["crl", "-inform", "DER", "-noout", "-text", "-in"])
        .arg(d.path("ca/crl.der"))
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&crl.stdout)
            .to_uppercase()
            .contains(&beta.serial.to_uppercase()),
        "beta's certificate was revoked: {}",
        text(&crl)
    );
    // The report stays open.
    let signals = d.json(&["signals", "--json"], 0);
    assert!(
        signals
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["subject"] == "alpha" && s["check"] == "key_exposed"),
        "{signals:#}"
    );
}

#[test]
fn a_case_answers_only_the_signals_whose_action_it_carries_out() {
    let d = DaemonHome::new();
    d.add_entry("web", &["prod"]);
    d.reissue("web");
    let (notify, daemon) = d.start_ready();
    // A certificate for web's names that nobody ordered: the policy sends it to a person.
    let (code, v) = daemon.http(
        "POST",
        "/v1/signals",
        Some(&json!({
            "cert": "web",
            "check": "ct_unauthorized_issuance",
            "message": "a certificate for web.example.test from another CA",
        })),
    );
    assert_eq!(code, 200, "{v:#}");
    let ct = v["signal"]["dedup_key"].as_str().unwrap().to_string();
    // Then web's key is reported compromised: a revoke-and-reissue runs.
    let out = d.json(
        &[
            "report-compromise",
            "web",
            "--evidence",
            "in a paste",
            "--json",
        ],
        0,
    );
    let case = &out["cases"][0];
    assert_eq!(case["kind"], "revoke_reissue", "{out:#}");
    assert_eq!(case["state"], "done", "{out:#}");
    assert!(
        !case["trigger"]["signals"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == ct.as_str()),
        "the case took the CT signal: {case:#}"
    );
    // The CT signal is not closed by the reissue: still open, escalated to a person.
    let signals = d.json(&["signals", "--all", "--json"], 0);
    let s = signals
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["dedup_key"] == ct.as_str())
        .unwrap();
    assert_eq!(s["state"]["state"], "open", "{s:#}");
    assert_eq!(s["handled"]["action"], "escalate", "{s:#}");
    stop(daemon, &notify);
}

/// The lines of `openssl crl -text` for the CRL at `path` (DER).
fn crl_text(path: &Path) -> String {
    let out = Command::new("openssl")
        .args(["crl", "-inform", "DER", "-noout", "-text", "-in"])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout).to_uppercase()
}

#[test]
fn a_failed_revocation_never_closes_a_compromise() {
    let d = DaemonHome::new();
    // Two CAs: `legacy` issued the certificate deployed now, and the entry has since moved
    // to `internal`, which cannot revoke what `legacy` issued.
    d.write_config(
        "",
        "[[issuer]]\nid = \"legacy\"\ntype = \"internal-ca\"\ndir = \"legacy-ca\"\n",
    );
    let (cert, _) = d.add_entry("web", &["prod"]);
    let entry = d.path("inventory/web.toml");
    let on = |issuer: &str| {
        let text = std::fs::read_to_string(&entry).unwrap();
        let line = text.lines().find(|l| l.starts_with("issuer = ")).unwrap();
        let text = text.replace(line, &format!("issuer = \"{issuer}\""));
        std::fs::write(&entry, text).unwrap();
    };
    on("legacy");
    d.reissue("web");
    on("internal");
    let old = inspect::inspect_certificates(&std::fs::read(&cert).unwrap())
        .unwrap()
        .remove(0);
    let (notify, daemon) = d.start_ready();

    // The compromise is answered: replaced, but the old certificate cannot be revoked.
    let report = [
        "report-compromise",
        "web",
        "--evidence",
        "in a paste",
        "--json",
    ];
    let v = d.json(&report, 1);
    let case = &v["cases"][0];
    let id = case["id"].as_u64().unwrap();
    assert_eq!(case["state"], "revocation_needed", "{v:#}");
    let error = case["error"].as_str().unwrap();
    assert!(
        error.contains(&old.serial) && error.contains(&format!("cases revoke-old {id}")),
        "{error}"
    );
    let new = inspect::inspect_certificates(&std::fs::read(&cert).unwrap())
        .unwrap()
        .remove(0);
    assert_ne!(new.serial, old.serial, "not replaced");
    let key_signal = |d: &DaemonHome| {
        let all = d.json(&["signals", "--all", "--json"], 0);
        all.as_array()
            .unwrap()
            .iter()
            .find(|s| s["check"] == "key_exposed" && s["subject"] == "web")
            .cloned()
            .unwrap_or_else(|| panic!("{all:#}"))
    };
    // A policy pass does not close the compromise because another certificate is deployed.
    d.run(&["respond", "--json"]);
    assert_eq!(key_signal(&d)["state"]["state"], "open");
    assert_eq!(d.case(id)["state"], "revocation_needed");
    // A second report of the same compromise is refused: it would revoke the replacement.
    let out = d.run(&report);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("revoke-old"), "{}", text(&out));
    assert!(
        !d.path("ca/crl.der").exists()
            || !crl_text(&d.path("ca/crl.der")).contains(&new.serial.to_uppercase()),
        "the replacement was revoked"
    );
    // Retried through the entry's issuer, it still cannot be revoked.
    let v = d.json(&["cases", "retry", &id.to_string(), "--json"], 1);
    assert_eq!(v["cases"][0]["state"], "revocation_needed", "{v:#}");
    // Through the CA that issued it, it is; the case confirms and closes the compromise.
    let v = d.json(
        &[
            "cases",
            "revoke-old",
            &id.to_string(),
            "--issuer",
            "legacy",
            "--json",
        ],
        0,
    );
    assert_eq!(v["cases"][0]["state"], "done", "{v:#}");
    let crl = crl_text(&d.path("legacy-ca/crl.der"));
    let at = crl
        .find(&format!("SERIAL NUMBER: {}", old.serial.to_uppercase()))
        .unwrap_or_else(|| panic!("serial {} not in the CRL: {crl}", old.serial));
    assert!(crl[at..].contains("KEY COMPROMISE"), "{crl}");
    assert_eq!(key_signal(&d)["state"]["state"], "resolved");
    // The case's evidence records the signal's resolution when the case closed.
    let shown = d.case(id);
    assert!(
        shown["evidence"]["audit"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["kind"] == "signal" && r["data"]["state"] == "resolved"),
        "{shown:#}"
    );
    let history = d.json(&["history", "web", "--json"], 0);
    let was = history
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["serial"] == old.serial.as_str())
        .unwrap();
    assert!(!was["revoked_at"].is_null(), "{history:#}");
    stop(daemon, &notify);
}

#[test]
fn a_revocation_that_fails_for_a_while_is_tried_again_by_the_daemon() {
    let d = DaemonHome::new();
    // One try per run, so that each failure reaches the case at once.
    let config = std::fs::read_to_string(d.home.config())
        .unwrap()
        .replace("[respond]\n", "[respond]\nissue_attempts = 1\n");
    std::fs::write(d.home.config(), config).unwrap();
    let (cert, _) = d.add_entry("web", &["prod"]);
    d.reissue("web");
    let old = inspect::inspect_certificates(&std::fs::read(&cert).unwrap())
        .unwrap()
        .remove(0);
    // The CA cannot publish its CRL for a while: a directory stands where the CRL goes.
    let crl = d.path("ca/crl.der");
    let _ = std::fs::remove_file(&crl);
    std::fs::create_dir_all(crl.join("in-the-way")).unwrap();
    let (notify, daemon) = d.start_ready();

    let v = d.json(
        &[
            "report-compromise",
            "web",
            "--evidence",
            "in a paste",
            "--json",
        ],
        1,
    );
    let case = &v["cases"][0];
    let id = case["id"].as_u64().unwrap();
    assert_eq!(case["state"], "running", "{v:#}");
    assert_eq!(case["next"], "revoke", "{v:#}");
    assert!(case["retry_at"].is_string(), "{v:#}");
    let new = inspect::inspect_certificates(&std::fs::read(&cert).unwrap())
        .unwrap()
        .remove(0);
    assert_ne!(new.serial, old.serial, "not replaced");
    // A policy pass meanwhile leaves the compromise open.
    d.run(&["respond", "--json"]);
    let signals = d.json(&["signals", "--json"], 0);
    assert!(
        signals
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["check"] == "key_exposed" && s["subject"] == "web"),
        "{signals:#}"
    );
    // The CA recovers; the daemon tries again on its own and the case ends.
    std::fs::remove_dir_all(&crl).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let case = loop {
        let case = d.case(id);
        if case["state"] != "running" || Instant::now() > deadline {
            break case;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(case["state"], "done", "{case:#}; log:\n{}", daemon.log());
    let failed = case["journal"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["step"] == "revoke" && r["outcome"] == "failed")
        .count();
    assert!(failed >= 1, "{case:#}");
    let listed = crl_text(&crl);
    assert!(
        listed.contains(&format!("SERIAL NUMBER: {}", old.serial.to_uppercase())),
        "{listed}"
    );
    assert!(
        !listed.contains(&format!("SERIAL NUMBER: {}", new.serial.to_uppercase())),
        "{listed}"
    );
    stop(daemon, &notify);
}

#[test]
fn the_daemon_escalates_a_stuck_case_near_its_deadline_without_a_respond_job() {
    let d = DaemonHome::new();
    // A compromise due in 20 seconds; no jobs scheduled at all; deadlines looked at every
    // second.
    std::fs::write(
        d.path("policy.toml"),
        policy_with(
            &d,
            "[[rule]]\nname = \"fast\"\nchecks = [\"key_exposed\"]\nmin_confidence = \"high\"\naction = \"revoke_reissue\"\nreason = \"keyCompromise\"\ndeadline = \"20s\"\n\n",
            None,
        )
        // Three quarters of the time comes before this margin.
        .replace("escalate_before_deadline = \"6h\"", "escalate_before_deadline = \"2s\""),
    )
    .unwrap();
    let config = d
        .config_text("policy = \"policy.toml\"", "")
        .replace("[respond]\n", "[respond]\nissue_attempts = 1\n")
        .replace("[daemon]\n", "[daemon]\ndeadline_check_secs = 1\n");
    assert!(!config.contains("[schedule]"));
    std::fs::write(d.home.config(), config).unwrap();
    d.add_entry("web", &["prod"]);
    d.reissue("web");
    // The CA cannot publish its CRL: the revocation keeps failing, the case stays open.
    let crl = d.path("ca/crl.der");
    let _ = std::fs::remove_file(&crl);
    std::fs::create_dir_all(crl.join("in-the-way")).unwrap();
    let (notify, daemon) = d.start_ready();
    let v = d.json(
        &[
            "report-compromise",
            "web",
            "--evidence",
            "in a paste",
            "--json",
        ],
        1,
    );
    let id = v["cases"][0]["id"].as_u64().unwrap();
    let case = wait_for(&daemon, Duration::from_secs(40), "escalated again", || {
        let c = d.case(id);
        c["reescalated_at"].is_string().then_some(c)
    });
    let at = time(&case["reescalated_at"]);
    let deadline = time(&case["deadline"]);
    let created = time(&case["created_at"]);
    assert!(
        at >= created + (deadline - created) * 3 / 4 && at < deadline,
        "escalated at {at}, opened {created}, due {deadline}"
    );
    let audit = d.json(&["audit", "export", "--json"], 0);
    let escalations = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "escalation" && r["case"] == id)
        .count();
    assert_eq!(escalations, 1, "{audit:#}");
    stop(daemon, &notify);
}

#[test]
fn a_reload_in_the_middle_of_a_storm_lets_no_more_revocations_through() {
    let d = DaemonHome::new();
    let policy = policy_with(
        &d,
        "",
        Some("[limits]\nmax_revocations = 3\nmax_revocations_per_owner = 3\nwindow = \"1h\""),
    );
    std::fs::write(d.path("policy.toml"), policy).unwrap();
    d.write_config("policy = \"policy.toml\"", "");
    let names: Vec<String> = (0..12).map(|i| format!("s{i}")).collect();
    for n in &names {
        d.add_entry(n, &["prod"]);
        d.reissue(n);
    }
    let (notify, daemon) = d.start_ready();
    // Twelve keys reported exposed at once by a scanner, and the configuration reloaded
    // (a new governor and engine) while the reports are being decided.
    std::thread::scope(|s| {
        for n in &names {
            let daemon = &daemon;
            s.spawn(move || {
                let (code, v) = daemon.http(
                    "POST",
                    "/v1/signals",
                    Some(&json!({"cert": n, "check": "key_exposed", "message": "in a paste"})),
                );
                assert_eq!(code, 200, "{v:#}");
            });
        }
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(30));
            signal(daemon.pid(), "HUP");
        });
    });
    notify.next_state(&daemon, Duration::from_secs(30), "RELOADING");
    notify.next_state(&daemon, Duration::from_secs(30), "READY");
    let cases = wait_for(
        &daemon,
        Duration::from_secs(60),
        "the storm settled",
        || {
            let cases = d.cases();
            let opened = cases
                .iter()
                .filter(|c| c["kind"] == "revoke_reissue")
                .count();
            (opened == names.len() && cases.iter().all(|c| c["state"] != "running"))
                .then_some(cases)
        },
    );
    let ran: Vec<&Value> = cases
        .iter()
        .filter(|c| c["kind"] == "revoke_reissue" && c["state"] != "awaiting_approval")
        .collect();
    assert_eq!(ran.len(), 3, "the limit is 3: {ran:#?}");
    let held = cases
        .iter()
        .filter(|c| c["state"] == "awaiting_approval")
        .count();
    assert_eq!(held, names.len() - 3, "{cases:#?}");
    stop(daemon, &notify);
}

#[test]
fn posted_signals_are_limited_per_identity_and_in_size() {
    let d = DaemonHome::new();
    let config = std::fs::read_to_string(d.home.config())
        .unwrap()
        .replace("[daemon]\n", "[daemon]\nsignals_per_minute = 3\n");
    std::fs::write(d.home.config(), config).unwrap();
    d.add_entry("web", &["prod"]);
    d.reissue("web");
    let (notify, daemon) = d.start_ready();
    let post = |evidence: Value| {
        daemon.http(
            "POST",
            "/v1/signals",
            Some(&json!({
                "cert": "web",
                "check": "expiring",
                "message": "seen by the scanner",
                "evidence": evidence,
            })),
        )
    };
    // Evidence larger than a signal keeps is refused, naming the field.
    let (code, v) = post(json!({"blob": "x".repeat(70 * 1024)}));
    assert_eq!(code, 400, "{v:#}");
    assert!(v.to_string().contains("evidence"), "{v:#}");
    for i in 1..=2 {
        let (code, v) = post(json!({"n": i}));
        assert_eq!(code, 200, "post {i}: {v:#}");
    }
    // The refused one counted too: the fourth post of the minute is one too many.
    let (code, v) = post(json!({"n": 3}));
    assert_eq!(code, 429, "{v:#}");
    assert!(v.to_string().contains("signals_per_minute"), "{v:#}");
    stop(daemon, &notify);
}
