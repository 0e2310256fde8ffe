//! End to end: the revoke-and-reissue sequence of the real binary against a real Pebble (the
//! ACME issuer) and a real nginx (the service that serves the certificate over TLS with SNI).
//!
//! Each test starts its own Pebble and nginx on free ports in its own temporary directory,
//! puts a Pebble certificate in place with `certresponder reissue` (starting from a
//! self-signed placeholder), then reports that certificate's key compromised and checks what
//! a user relies on: which certificate nginx serves (seen by `openssl s_client`, not by
//! certresponder's own TLS code), what is on disk, what Pebble says about the old certificate
//! (its management interface, by serial) and what `history` and `cases show` say.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use certresponder_inventory::inspect;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The inventory name of the certificate under test.
const NAME: &str = "shop-web";
/// The DNS name it is for, and the SNI nginx serves it under.
const DNS: &str = "www.shop.example.test";
/// Upper bound for one certresponder command; a hang fails the test instead of blocking it.
const COMMAND_LIMIT: Duration = Duration::from_secs(120);

// ---------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------

/// Where an installed tool lives; a missing tool fails the test, naming what installs it.
fn binary(name: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!(
        "`{name}` is not installed: run scripts/test, which installs it (Debian's {name} package)"
    );
}

/// A free TCP port on 127.0.0.1.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Sends `signal` to one process we started, by its id.
fn signal(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args(["-s", signal, &pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// A child process stopped when dropped: `graceful` first (if any), SIGKILL after 5 s.
struct Guard {
    child: Child,
    graceful: Option<&'static str>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(sig) = self.graceful {
            signal(self.child.id(), sig);
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if matches!(self.child.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until something listens on `addr`, failing with the log if the process exits.
fn wait_listening(addr: SocketAddr, child: &mut Child, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if TcpStream::connect(addr).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "process exited ({status}) before listening on {addr}: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!(
        "nothing listening on {addr} after 20 s: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// Runs `cmd` (stdin closed) to completion, killing it past `limit`.
fn run_bounded(mut cmd: Command, limit: Duration) -> Output {
    let what = format!("{cmd:?}");
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            signal(pid, "KILL");
            panic!("{what} still running after {} s", limit.as_secs());
        }
    }
}

// ---------------------------------------------------------------------------------------
// Pebble
// ---------------------------------------------------------------------------------------

/// A running Pebble that accepts every challenge (`PEBBLE_VA_ALWAYS_VALID`).
struct Pebble {
    dir: tempfile::TempDir,
    directory_url: String,
    mgmt_port: u16,
    /// The CA certificate of Pebble's own TLS listeners.
    tls_root: PathBuf,
    _process: Guard,
}

/// What Pebble's management interface says about a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PebbleStatus {
    /// `Valid` or `Revoked`.
    status: String,
    /// The RFC 5280 reason code, when revoked with one.
    reason: Option<u64>,
}

impl Pebble {
    fn start() -> Self {
        let pebble = binary("pebble");
        let dir = tempfile::tempdir().unwrap();
        // Pebble's TLS listeners: a throwaway CA and a certificate for 127.0.0.1.
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Pebble listener test CA");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        let tls_root = dir.path().join("tls-root.pem");
        std::fs::write(&tls_root, ca_cert.pem()).unwrap();
        std::fs::write(dir.path().join("server.pem"), cert.pem()).unwrap();
        std::fs::write(dir.path().join("server.key"), key.serialize_pem()).unwrap();

        let (acme, mgmt) = (free_port(), free_port());
        let cfg = serde_json::json!({"pebble": {
            "listenAddress": format!("127.0.0.1:{acme}"),
            "managementListenAddress": format!("127.0.0.1:{mgmt}"),
            "certificate": dir.path().join("server.pem"),
            "privateKey": dir.path().join("server.key"),
            "httpPort": free_port(),
            "tlsPort": free_port(),
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
        }});
        let cfg_path = dir.path().join("pebble.json");
        std::fs::write(&cfg_path, cfg.to_string()).unwrap();
        let log = dir.path().join("pebble.log");
        let mut child = Command::new(pebble)
            .arg("-config")
            .arg(&cfg_path)
            .arg("-strict")
            .env("PEBBLE_VA_ALWAYS_VALID", "1")
            .env("PEBBLE_VA_NOSLEEP", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::from(std::fs::File::create(&log).unwrap()))
            .stderr(Stdio::from(
                std::fs::File::options().append(true).open(&log).unwrap(),
            ))
            .spawn()
            .unwrap();
        wait_listening(SocketAddr::from(([127, 0, 0, 1], acme)), &mut child, &log);
        wait_listening(SocketAddr::from(([127, 0, 0, 1], mgmt)), &mut child, &log);
        Self {
            directory_url: format!("https://127.0.0.1:{acme}/dir"),
            mgmt_port: mgmt,
            tls_root,
            dir,
            _process: Guard {
                child,
                graceful: None,
            },
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pebble.log")).unwrap_or_default()
    }

    /// GET on the management interface over TLS (HTTP/1.0, so the body is not chunked).
    fn mgmt_get(&self, path: &str) -> (u16, String) {
        let pem = std::fs::read(&self.tls_root).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        for der in inspect::read_certificates(&pem).unwrap() {
            roots
                .add(rustls::pki_types::CertificateDer::from(der))
                .unwrap();
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let conn = rustls::ClientConnection::new(Arc::new(tls), name).unwrap();
        let tcp = TcpStream::connect(("127.0.0.1", self.mgmt_port)).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut stream = rustls::StreamOwned::new(conn, tcp);
        stream
            .write_all(
                format!(
                    "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{}\r\n\r\n",
                    self.mgmt_port
                )
                .as_bytes(),
            )
            .unwrap();
        let mut raw = Vec::new();
        match stream.read_to_end(&mut raw) {
            Ok(_) => {}
            // A server that closes without close_notify: the response is complete anyway.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
            Err(e) => panic!("management GET {path}: {e}"),
        }
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = text
            .split_once("\r\n\r\n")
            .unwrap_or_else(|| panic!("management GET {path}: no HTTP response: {text}"));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("management GET {path}: bad status line: {head}"));
        (status, body.to_string())
    }

    /// Pebble's own view of a certificate: the test oracle for revocation.
    fn status(&self, der: &[u8]) -> PebbleStatus {
        let serial = inspect::inspect_certificate_der(der).unwrap().serial;
        let (code, body) = self.mgmt_get(&format!("/cert-status-by-serial/{serial}"));
        assert_eq!(code, 200, "Pebble's status of serial {serial}: {body}");
        let v: Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("Pebble's status of serial {serial}: {e}: {body}"));
        PebbleStatus {
            status: v["Status"]
                .as_str()
                .unwrap_or_else(|| panic!("no Status in {v}"))
                .to_string(),
            reason: v["Reason"].as_u64(),
        }
    }
}

// ---------------------------------------------------------------------------------------
// nginx
// ---------------------------------------------------------------------------------------

/// A real nginx in the foreground, run from a private prefix, serving the managed certificate
/// for `DNS` (SNI) and a decoy certificate to clients that send another name or none. Stopped
/// with SIGTERM (the master stops its workers), SIGKILL as a last resort.
struct Nginx {
    prefix: PathBuf,
    conf: PathBuf,
    port: u16,
    decoy_der: Vec<u8>,
    _process: Guard,
}

impl Nginx {
    fn start(prefix: &Path, port: u16, fullchain: &Path, key: &Path) -> Self {
        let nginx = binary("nginx");
        std::fs::create_dir_all(prefix).unwrap();
        let decoy_key = rcgen::KeyPair::generate().unwrap();
        let decoy = rcgen::CertificateParams::new(vec!["decoy.example.test".to_string()])
            .unwrap()
            .self_signed(&decoy_key)
            .unwrap();
        std::fs::write(prefix.join("decoy.pem"), decoy.pem()).unwrap();
        std::fs::write(prefix.join("decoy.key"), decoy_key.serialize_pem()).unwrap();
        let conf = prefix.join("nginx.conf");
        write_nginx_conf(prefix, &conf, port, fullchain, key);
        let log = prefix.join("error.log");
        std::fs::write(&log, "").unwrap();
        let mut child = Command::new(nginx)
            .args(["-e", "stderr", "-p"])
            .arg(prefix)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::options().append(true).open(&log).unwrap(),
            ))
            .spawn()
            .unwrap();
        wait_listening(SocketAddr::from(([127, 0, 0, 1], port)), &mut child, &log);
        Self {
            prefix: prefix.to_path_buf(),
            conf,
            port,
            decoy_der: decoy.der().to_vec(),
            _process: Guard {
                child,
                graceful: Some("TERM"),
            },
        }
    }

    /// Points the managed server block at `fullchain` and `key` (takes effect on reload).
    fn write_conf(&self, fullchain: &Path, key: &Path) {
        write_nginx_conf(&self.prefix, &self.conf, self.port, fullchain, key);
    }

    /// The reload command an inventory entry names for this nginx.
    fn reload_command(&self) -> String {
        format!(
            "{} -e stderr -p {} -c {} -s reload",
            binary("nginx").display(),
            self.prefix.display(),
            self.conf.display()
        )
    }

    fn error_log(&self) -> String {
        std::fs::read_to_string(self.prefix.join("error.log")).unwrap_or_default()
    }
}

/// Writes nginx's configuration: the managed server block uses `fullchain` and `key`.
fn write_nginx_conf(prefix: &Path, conf_path: &Path, port: u16, fullchain: &Path, key: &Path) {
    let d = prefix.display();
    // As root, workers would otherwise switch to an unprivileged user.
    let user = if is_root() { "user root;\n" } else { "" };
    let conf = format!(
        "{user}daemon off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log notice;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  server {{
    listen 127.0.0.1:{port} ssl default_server;
    server_name _;
    ssl_certificate {d}/decoy.pem;
    ssl_certificate_key {d}/decoy.key;
    return 404;
  }}
  server {{
    listen 127.0.0.1:{port} ssl;
    server_name {DNS};
    ssl_certificate {};
    ssl_certificate_key {};
    return 200 \"ok\\n\";
  }}
}}
",
        fullchain.display(),
        key.display()
    );
    std::fs::write(conf_path, conf).unwrap();
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

/// The leaf certificate (DER) served on 127.0.0.1:`port`, as `openssl s_client` sees it.
fn served_leaf(port: u16, sni: Option<&str>) -> Result<Vec<u8>, String> {
    let mut cmd = Command::new(binary("openssl"));
    cmd.args(["s_client", "-connect", &format!("127.0.0.1:{port}")]);
    match sni {
        Some(name) => cmd.args(["-servername", name]),
        None => cmd.arg("-noservername"),
    };
    let out = run_bounded(cmd, Duration::from_secs(20));
    inspect::read_certificates(&out.stdout)
        .ok()
        .and_then(|certs| certs.into_iter().next())
        .ok_or_else(|| {
            format!(
                "no certificate from openssl s_client ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
        })
}

/// Handshakes until nginx serves `expected` for `DNS` (a reload's old worker may answer for a
/// moment); fails with what it served after 15 s.
fn wait_served(port: u16, expected: &[u8], nginx: &Nginx) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let last = served_leaf(port, Some(DNS));
        if last.as_deref() == Ok(expected) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "nginx does not serve {} for {DNS}: it serves {:?}\nnginx log:\n{}",
            sha256_hex(expected),
            last.map(|d| sha256_hex(&d)),
            nginx.error_log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn sha256_hex(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

// ---------------------------------------------------------------------------------------
// The world of one test
// ---------------------------------------------------------------------------------------

/// How the inventory entry reloads nginx.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reload {
    /// `nginx -s reload`.
    Nginx,
    /// A script that fails once with a message on stderr after the test arms it, and reloads
    /// nginx otherwise.
    FailOnceWhenArmed,
}

/// The message the armed reload script prints on stderr before exiting 1.
const RELOAD_FAILURE: &str = "nginx: [emerg] reload refused by the change freeze (test)";

struct World {
    home: tempfile::TempDir,
    pebble: Pebble,
    nginx: Nginx,
    cert: PathBuf,
    key: PathBuf,
    chain: PathBuf,
    fullchain: PathBuf,
    /// Every output the binary printed, to check that no private key ever appears.
    outputs: std::cell::RefCell<Vec<String>>,
}

impl World {
    /// Pebble, a self-signed placeholder at the entry's paths, nginx serving it, and then
    /// `certresponder reissue` putting a Pebble certificate in its place (the "old" one of
    /// the tests).
    fn new(reload: Reload, verify_timeout_secs: u64) -> Self {
        let home = tempfile::tempdir().unwrap();
        let pebble = Pebble::start();
        let certs = home.path().join("certs");
        std::fs::create_dir_all(&certs).unwrap();
        std::fs::create_dir_all(home.path().join("inventory")).unwrap();
        let (cert, key, chain, fullchain) = (
            certs.join("cert.pem"),
            certs.join("key.pem"),
            certs.join("chain.pem"),
            certs.join("fullchain.pem"),
        );
        let placeholder_key = rcgen::KeyPair::generate().unwrap();
        let placeholder = rcgen::CertificateParams::new(vec![DNS.to_string()])
            .unwrap()
            .self_signed(&placeholder_key)
            .unwrap();
        std::fs::write(&cert, placeholder.pem()).unwrap();
        std::fs::write(&fullchain, placeholder.pem()).unwrap();
        std::fs::write(&chain, "").unwrap();
        std::fs::write(&key, placeholder_key.serialize_pem()).unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();

        let port = free_port();
        let nginx = Nginx::start(&home.path().join("nginx"), port, &fullchain, &key);
        assert_eq!(
            served_leaf(port, Some(DNS)).unwrap(),
            placeholder.der().to_vec(),
            "nginx does not serve the placeholder: {}",
            nginx.error_log()
        );
        assert_eq!(
            served_leaf(port, None).unwrap(),
            nginx.decoy_der,
            "without SNI nginx must serve the decoy, so that SNI is what selects the certificate"
        );

        let reload_command = match reload {
            Reload::Nginx => nginx.reload_command(),
            Reload::FailOnceWhenArmed => {
                let script = home.path().join("reload.sh");
                let arm = home.path().join("fail-next-reload");
                std::fs::write(
                    &script,
                    format!(
                        "#!/bin/sh\nif [ -e '{arm}' ]; then\n  rm -f '{arm}'\n  echo '{RELOAD_FAILURE}' >&2\n  exit 1\nfi\nexec {}\n",
                        nginx.reload_command(),
                        arm = arm.display()
                    ),
                )
                .unwrap();
                std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
                script.display().to_string()
            }
        };
        std::fs::write(
            home.path().join("certresponder.toml"),
            format!(
                "state_dir = \"state\"
inventory_dir = \"inventory\"

[respond]
reload_window_ms = 0
verify_timeout_secs = {verify_timeout_secs}
verify_interval_ms = 100
confirm_timeout_secs = 5

[[issuer]]
id = \"pebble\"
type = \"acme\"
directory = \"{}\"
contact = [\"mailto:pki@example.test\"]
trust_root = \"{}\"
challenge = \"http-01\"
http01_listen = \"127.0.0.1:{}\"
timeout_secs = 60
",
                pebble.directory_url,
                pebble.tls_root.display(),
                free_port()
            ),
        )
        .unwrap();
        std::fs::write(
            home.path().join("inventory/shop.toml"),
            format!(
                "[[cert]]
name = \"{NAME}\"
owner = \"team-shop@example.test\"
kind = \"tls-server\"
issuer = \"pebble\"
key_profile = \"ecdsa-p256\"
cert = \"{}\"
key = \"{}\"
chain = \"{}\"
fullchain = \"{}\"
reload = \"{reload_command}\"
verify = [{{ address = \"127.0.0.1:{port}\", sni = \"{DNS}\" }}]
",
                cert.display(),
                key.display(),
                chain.display(),
                fullchain.display()
            ),
        )
        .unwrap();

        let world = Self {
            home,
            pebble,
            nginx,
            cert,
            key,
            chain,
            fullchain,
            outputs: std::cell::RefCell::new(Vec::new()),
        };
        // The Pebble certificate that the tests then treat as the old, deployed one.
        let (v, _) = world.json(&["reissue", NAME, "--json"], 0);
        let case = &v["cases"][0];
        assert_eq!(case["state"], "done", "initial reissue: {v:#}");
        let leaf = world.leaf_on_disk();
        let info = inspect::inspect_certificate_der(&leaf).unwrap();
        assert!(
            info.issuer.contains("Pebble"),
            "the initial reissue did not put a Pebble certificate in place: {}",
            info.issuer
        );
        wait_served(port, &leaf, &world.nginx);
        assert_eq!(world.pebble.status(&leaf).status, "Valid");
        world
    }

    fn port(&self) -> u16 {
        self.nginx.port
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
        let out = run_bounded(cmd, COMMAND_LIMIT);
        self.outputs.borrow_mut().push(format!(
            "$ certresponder {}\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
        out
    }

    /// Runs, asserts the exit status and parses stdout as JSON.
    fn json(&self, args: &[&str], status: i32) -> (Value, Output) {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(status),
            "certresponder {args:?}: stdout {} stderr {}\nnginx log:\n{}\npebble log:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.nginx.error_log(),
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

    /// The leaf in the entry's `cert` file (it holds the leaf alone: the entry has `chain`).
    fn leaf_on_disk(&self) -> Vec<u8> {
        let certs = inspect::read_certificates(&std::fs::read(&self.cert).unwrap()).unwrap();
        assert_eq!(
            certs.len(),
            1,
            "{} holds more than the leaf",
            self.cert.display()
        );
        certs.into_iter().next().unwrap()
    }

    /// Every location's bytes.
    fn files(&self) -> Vec<(PathBuf, Vec<u8>)> {
        [&self.cert, &self.key, &self.chain, &self.fullchain]
            .into_iter()
            .map(|p| (p.clone(), std::fs::read(p).unwrap()))
            .collect()
    }

    fn history(&self) -> Vec<Value> {
        let (v, _) = self.json(&["history", NAME, "--json"], 0);
        v.as_array()
            .unwrap_or_else(|| panic!("history is not a list: {v:#}"))
            .clone()
    }

    fn case(&self, id: u64) -> Value {
        self.json(&["cases", "show", &id.to_string(), "--json"], 0)
            .0
    }

    /// Asserts that no private key appears in anything the binary printed: neither a PEM
    /// block nor the private scalar of the given EC keys (hex, or base64 at any alignment,
    /// with line breaks and JSON `\n` escapes removed).
    fn assert_no_key_in_outputs(&self, keys: &[&[u8]]) {
        let fragments: Vec<String> = keys.iter().flat_map(|k| secret_fragments(k)).collect();
        for out in self.outputs.borrow().iter() {
            assert!(
                !out.contains("PRIVATE KEY"),
                "a private key was printed:\n{out}"
            );
            let flat = out.replace("\\n", "").replace(['\n', '\r'], "");
            for f in &fragments {
                assert!(
                    !flat.contains(f.as_str()),
                    "private key material was printed:\n{out}"
                );
            }
        }
    }
}

/// Encodings of an EC private key's secret scalar that would betray it in printed text.
fn secret_fragments(key_pem: &[u8]) -> Vec<String> {
    let blocks = inspect::parse_pem(key_pem).unwrap();
    let der = &blocks.first().expect("a PEM private key").der;
    // ECPrivateKey (RFC 5915): version INTEGER 1, then privateKey OCTET STRING (32 bytes for
    // P-256), here inside PKCS#8.
    let at = der
        .windows(5)
        .position(|w| w == [0x02, 0x01, 0x01, 0x04, 0x20])
        .expect("an ECDSA P-256 private key");
    let scalar = &der[at + 5..at + 5 + 32];
    let mut out = vec![hex::encode(scalar), hex::encode_upper(scalar)];
    for shift in 0..3 {
        let pem = inspect::encode_pem("X", &scalar[shift..]);
        let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        // The last group also encodes whatever follows the scalar: leave it out.
        out.push(b64[..b64.len() - 4].to_string());
    }
    out
}

/// The bundle with `id` in a history listing.
fn bundle<'a>(history: &'a [Value], id: &str) -> &'a Value {
    history
        .iter()
        .find(|b| b["id"] == id)
        .unwrap_or_else(|| panic!("bundle {id} is not in the history: {history:#?}"))
}

/// The step names of a case's journal, in order.
fn steps(case: &Value) -> Vec<String> {
    case["journal"]
        .as_array()
        .unwrap_or_else(|| panic!("no journal: {case:#}"))
        .iter()
        .map(|r| r["step"].as_str().unwrap().to_string())
        .collect()
}

/// The journal record of `step` (the last one, if it ran more than once).
fn record<'a>(case: &'a Value, step: &str) -> &'a Value {
    case["journal"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|r| r["step"] == step)
        .unwrap_or_else(|| panic!("no `{step}` in the journal: {case:#}"))
}

/// Every journal record finished, with an outcome and ordered timestamps.
fn assert_journal_complete(case: &Value) {
    let mut previous_end: Option<chrono::DateTime<chrono::Utc>> = None;
    for r in case["journal"].as_array().unwrap() {
        let outcome = r["outcome"].as_str().unwrap_or_default();
        assert!(
            ["ok", "skipped", "failed"].contains(&outcome),
            "step {} has outcome {outcome:?}: {case:#}",
            r["step"]
        );
        let at = |field: &str| {
            r[field]
                .as_str()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&chrono::Utc))
                .unwrap_or_else(|| panic!("step {} has no {field}: {r:#}", r["step"]))
        };
        let (start, end) = (at("started_at"), at("finished_at"));
        assert!(
            start <= end,
            "step {} finished before it started: {r:#}",
            r["step"]
        );
        if let Some(prev) = previous_end {
            assert!(
                prev <= start,
                "step {} started before the previous ended",
                r["step"]
            );
        }
        previous_end = Some(end);
        assert!(
            !r["detail"].as_str().unwrap_or_default().is_empty(),
            "step {} has no detail: {r:#}",
            r["step"]
        );
    }
}

/// Runs `report-compromise` and returns its only case.
fn report(world: &World, status: i32) -> Value {
    let (v, _) = world.json(
        &[
            "report-compromise",
            NAME,
            "--evidence",
            "key pasted in a public CI log (test)",
            "--json",
        ],
        status,
    );
    assert_eq!(v["errors"], serde_json::json!([]), "{v:#}");
    let cases = v["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 1, "{v:#}");
    assert!(
        cases[0].get("new_key").is_none(),
        "the case JSON carries new_key: {v:#}"
    );
    cases[0].clone()
}

// ---------------------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------------------

/// The whole revoke-and-reissue: a new key and Pebble certificate deployed, nginx serving
/// it, the old certificate revoked at Pebble for keyCompromise, and the history and journal
/// saying so without ever printing a key.
#[test]
fn report_compromise_through_pebble_and_nginx() {
    let started = Instant::now();
    let world = World::new(Reload::Nginx, 20);
    let old_leaf = world.leaf_on_disk();
    let old_key = std::fs::read(&world.key).unwrap();
    let old_id = sha256_hex(&old_leaf)[..16].to_string();

    let case = report(&world, 0);
    assert_eq!(case["state"], "done", "{case:#}");
    assert_eq!(case["kind"], "revoke_reissue");
    assert_eq!(case["reason"], "keyCompromise");
    assert_eq!(case["rolled_back"], false);
    assert_eq!(case["old_bundle"], old_id.as_str(), "{case:#}");

    // A new key and certificate are on disk, and nginx serves the new leaf for the SNI.
    let new_leaf = world.leaf_on_disk();
    let new_key = std::fs::read(&world.key).unwrap();
    assert_ne!(new_leaf, old_leaf, "the certificate file was not replaced");
    assert_ne!(new_key, old_key, "the key file was not replaced");
    let new_id = sha256_hex(&new_leaf)[..16].to_string();
    assert_eq!(case["new_bundle"], new_id.as_str(), "{case:#}");
    let new_info = inspect::inspect_certificate_der(&new_leaf).unwrap();
    let old_info = inspect::inspect_certificate_der(&old_leaf).unwrap();
    assert!(new_info.issuer.contains("Pebble"), "{}", new_info.issuer);
    assert_eq!(new_info.dns_names, vec![DNS.to_string()]);
    assert_ne!(
        new_info.fingerprints.spki_sha256, old_info.fingerprints.spki_sha256,
        "the new certificate must certify a new key"
    );
    let key_info = inspect::read_private_key(&new_key).unwrap();
    assert!(
        key_info.public.same_public_key(&new_info.key),
        "the key file does not match the new certificate"
    );
    let fullchain = inspect::read_certificates(&std::fs::read(&world.fullchain).unwrap()).unwrap();
    let chain = inspect::read_certificates(&std::fs::read(&world.chain).unwrap()).unwrap();
    assert_eq!(
        fullchain.first(),
        Some(&new_leaf),
        "fullchain does not start with the leaf"
    );
    assert_eq!(
        &fullchain[1..],
        chain.as_slice(),
        "fullchain is not leaf + chain"
    );
    assert!(
        !chain.is_empty(),
        "Pebble's intermediate is missing from the chain file"
    );
    let mode = std::fs::metadata(&world.key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "key file mode {mode:o}");

    // nginx serves the new leaf, from the first handshake after the case on. (After
    // `nginx -s reload` the old worker keeps accepting for about 100 ms; verify waits for
    // `verify_consecutive` matching handshakes in a row, so the case only ends once the old
    // worker is gone.)
    let mut served = Vec::new();
    for _ in 0..5 {
        served = served_leaf(world.port(), Some(DNS)).unwrap();
        assert_eq!(sha256_hex(&served), sha256_hex(&new_leaf));
    }

    // Pebble: the old certificate is revoked for key compromise, the new one is valid.
    let old_status = world.pebble.status(&old_leaf);
    assert_eq!(
        old_status,
        PebbleStatus {
            status: "Revoked".into(),
            reason: Some(1),
        },
        "the old certificate must be revoked for keyCompromise (1)"
    );
    assert_eq!(world.pebble.status(&new_leaf).status, "Valid");

    // history: the old bundle revoked, the new one current, matching the files and nginx.
    let history = world.history();
    let old = bundle(&history, &old_id);
    let new = bundle(&history, &new_id);
    assert_eq!(old["state"], "revoked", "{history:#?}");
    assert_eq!(new["state"], "current", "{history:#?}");
    assert_eq!(new["cert_sha256"], sha256_hex(&new_leaf).as_str());
    assert_eq!(new["cert_sha256"], sha256_hex(&served).as_str());
    assert_eq!(old["serial"], old_info.serial.as_str());
    let current: Vec<&Value> = history.iter().filter(|b| b["state"] == "current").collect();
    assert_eq!(current.len(), 1, "exactly one current bundle: {history:#?}");

    // cases show: every step of the sequence, in order, each finished with timestamps.
    let id = case["id"].as_u64().unwrap();
    let shown = world.case(id);
    assert!(shown.get("new_key").is_none(), "{shown:#}");
    assert_eq!(
        steps(&shown),
        [
            "snapshot", "new_key", "issue", "check", "record", "deploy", "reload", "verify",
            "revoke", "confirm", "close"
        ],
        "{shown:#}"
    );
    assert_journal_complete(&shown);
    for r in shown["journal"].as_array().unwrap() {
        assert_eq!(r["outcome"], "ok", "{r:#}");
    }
    assert!(
        record(&shown, "revoke")["detail"]
            .as_str()
            .unwrap()
            .contains(&old_info.serial),
        "{shown:#}"
    );
    assert!(
        record(&shown, "verify")["detail"]
            .as_str()
            .unwrap()
            .contains(&new_id),
        "{shown:#}"
    );
    assert_eq!(shown["state"], "done");
    assert_eq!(shown["issued_count"], 1);

    // The key never appears in anything printed (cases list too).
    world.json(&["cases", "list", "--json"], 0);
    world.run(&["cases", "show", &id.to_string()]);
    world.run(&["history", NAME]);
    world.assert_no_key_in_outputs(&[&old_key, &new_key]);

    let elapsed = started.elapsed();
    eprintln!("report_compromise_through_pebble_and_nginx: {elapsed:?}");
    assert!(elapsed < Duration::from_secs(90), "took {elapsed:?}");
}

/// What every rolled-back case must leave: the old files byte for byte, nginx serving the
/// old leaf, the old certificate valid at Pebble, and the old bundle current again.
fn assert_rolled_back(
    world: &World,
    case: &Value,
    before: &[(PathBuf, Vec<u8>)],
    old_leaf: &[u8],
    old_id: &str,
) {
    assert_eq!(case["state"], "failed", "{case:#}");
    assert_eq!(case["rolled_back"], true, "{case:#}");
    assert_eq!(case["old_bundle"], old_id, "{case:#}");
    let error = case["error"].as_str().unwrap_or_default();
    assert!(error.contains("not revoked"), "{error}");

    for (path, bytes) in before {
        let now = std::fs::read(path).unwrap();
        assert!(
            now == *bytes,
            "{} is not byte-identical to before the case",
            path.display()
        );
    }
    let mode = std::fs::metadata(&world.key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "key file mode {mode:o}");
    wait_served(world.port(), old_leaf, &world.nginx);
    // Stable: repeated handshakes keep serving the old leaf.
    for _ in 0..3 {
        assert_eq!(
            sha256_hex(&served_leaf(world.port(), Some(DNS)).unwrap()),
            sha256_hex(old_leaf)
        );
    }

    let status = world.pebble.status(old_leaf);
    assert_eq!(
        status.status, "Valid",
        "a rolled-back case must not revoke the certificate still in service: {status:?}"
    );

    let history = world.history();
    assert_eq!(bundle(&history, old_id)["state"], "current", "{history:#?}");
    let current: Vec<&Value> = history.iter().filter(|b| b["state"] == "current").collect();
    assert_eq!(current.len(), 1, "exactly one current bundle: {history:#?}");
    assert!(
        !history.iter().any(|b| b["state"] == "revoked"),
        "nothing was revoked: {history:#?}"
    );
    if let Some(new_id) = case["new_bundle"].as_str() {
        assert_eq!(
            bundle(&history, new_id)["state"],
            "previous",
            "{history:#?}"
        );
    }

    let id = case["id"].as_u64().unwrap();
    let shown = world.case(id);
    assert!(shown.get("new_key").is_none(), "{shown:#}");
    assert_journal_complete(&shown);
    let names = steps(&shown);
    assert!(!names.contains(&"revoke".to_string()), "{shown:#}");
    assert_eq!(
        names.last().map(String::as_str),
        Some("rollback"),
        "{shown:#}"
    );
    let rollback = record(&shown, "rollback");
    assert_eq!(rollback["outcome"], "ok", "{shown:#}");
    let detail = rollback["detail"].as_str().unwrap();
    assert!(
        detail.contains("reloaded") && detail.contains(&format!("serve bundle {old_id}")),
        "the rollback must reload and verify the old bundle: {detail}"
    );
    assert_eq!(record(&shown, "deploy")["outcome"], "ok", "{shown:#}");
}

/// The reload after deploying fails (its stderr is in the case error): the old bundle is
/// restored byte for byte, nginx keeps serving it, and it is not revoked.
#[test]
fn verify_failure_rolls_back_and_keeps_old_unrevoked() {
    let started = Instant::now();
    let world = World::new(Reload::FailOnceWhenArmed, 20);
    let old_leaf = world.leaf_on_disk();
    let old_key = std::fs::read(&world.key).unwrap();
    let old_id = sha256_hex(&old_leaf)[..16].to_string();
    let before = world.files();

    // The next reload (the one after the new bundle is deployed) fails; the rollback's
    // reload then succeeds.
    std::fs::write(world.home.path().join("fail-next-reload"), "").unwrap();
    let case = report(&world, 1);
    let error = case["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(RELOAD_FAILURE),
        "the error must carry the reload's stderr: {error}"
    );
    assert_rolled_back(&world, &case, &before, &old_leaf, &old_id);
    let shown = world.case(case["id"].as_u64().unwrap());
    assert_eq!(
        steps(&shown),
        [
            "snapshot", "new_key", "issue", "check", "record", "deploy", "reload", "rollback"
        ],
        "{shown:#}"
    );
    let reload = record(&shown, "reload");
    assert_eq!(reload["outcome"], "failed", "{shown:#}");
    assert!(
        reload["detail"].as_str().unwrap().contains(RELOAD_FAILURE),
        "{shown:#}"
    );
    assert!(
        !world.home.path().join("fail-next-reload").exists(),
        "the failing reload did not run"
    );

    // No key is printed anywhere.
    world.json(&["cases", "list", "--json"], 0);
    world.assert_no_key_in_outputs(&[&old_key]);

    let elapsed = started.elapsed();
    eprintln!("verify_failure_rolls_back_and_keeps_old_unrevoked: {elapsed:?}");
    assert!(elapsed < Duration::from_secs(90), "took {elapsed:?}");
}

/// The reload succeeds but nginx never serves the new certificate: verify gives up after
/// `verify_timeout_secs`, the old bundle is restored and stays unrevoked.
#[test]
fn verify_timeout_rolls_back() {
    let started = Instant::now();
    let world = World::new(Reload::Nginx, 3);
    let old_leaf = world.leaf_on_disk();
    let old_id = sha256_hex(&old_leaf)[..16].to_string();
    let before = world.files();

    // nginx now serves copies of the files: reloads succeed, yet it never picks up what
    // certresponder deploys to the inventory's paths.
    let served_dir = world.home.path().join("served");
    std::fs::create_dir_all(&served_dir).unwrap();
    let (copy_chain, copy_key) = (served_dir.join("fullchain.pem"), served_dir.join("key.pem"));
    std::fs::copy(&world.fullchain, &copy_chain).unwrap();
    std::fs::copy(&world.key, &copy_key).unwrap();
    world.nginx.write_conf(&copy_chain, &copy_key);
    let out = run_bounded(
        {
            let mut c = Command::new("sh");
            c.arg("-c").arg(world.nginx.reload_command());
            c
        },
        Duration::from_secs(20),
    );
    assert!(out.status.success(), "{out:?}");
    wait_served(world.port(), &old_leaf, &world.nginx);

    let t = Instant::now();
    let case = report(&world, 1);
    let took = t.elapsed();
    let error = case["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(&format!("still serves {}", sha256_hex(&old_leaf))),
        "the error must say the endpoint still serves the old certificate: {error}"
    );
    assert_rolled_back(&world, &case, &before, &old_leaf, &old_id);
    let shown = world.case(case["id"].as_u64().unwrap());
    assert_eq!(
        steps(&shown),
        [
            "snapshot", "new_key", "issue", "check", "record", "deploy", "reload", "verify",
            "rollback"
        ],
        "{shown:#}"
    );
    assert_eq!(record(&shown, "reload")["outcome"], "ok", "{shown:#}");
    assert_eq!(record(&shown, "verify")["outcome"], "failed", "{shown:#}");
    assert!(
        took < Duration::from_secs(60),
        "report-compromise took {took:?}"
    );

    let elapsed = started.elapsed();
    eprintln!("verify_timeout_rolls_back: {elapsed:?} (report-compromise {took:?})");
    assert!(elapsed < Duration::from_secs(90), "took {elapsed:?}");
}
