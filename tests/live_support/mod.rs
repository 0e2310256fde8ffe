//! Real processes for the end-to-end tests: Pebble (the ACME CA), nginx (TLS endpoints with
//! SNI), `openssl s_client` (what an endpoint serves), and bounded child processes.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use certresponder_inventory::inspect;
use serde_json::Value;
use sha2::{Digest, Sha256};

// ---------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------

/// Where an installed tool lives; a missing tool fails the test, naming what installs it.
pub fn binary(name: &str) -> PathBuf {
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
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Sends `signal` to one process we started, by its id.
pub fn signal(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args(["-s", signal, &pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// A child process stopped when dropped: `graceful` first (if any), SIGKILL after 5 s.
pub struct Guard {
    pub child: Child,
    pub graceful: Option<&'static str>,
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
pub fn wait_listening(addr: SocketAddr, child: &mut Child, log: &Path) {
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
pub fn run_bounded(mut cmd: Command, limit: Duration) -> Output {
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
pub struct Pebble {
    pub dir: tempfile::TempDir,
    pub directory_url: String,
    pub mgmt_port: u16,
    /// The CA certificate of Pebble's own TLS listeners.
    pub tls_root: PathBuf,
    pub _process: Guard,
}

/// The `[[issuer]]` table of an ACME issuer `pebble` at `directory_url`, trusting
/// `tls_root` for Pebble's TLS listeners, answering HTTP-01 on a free port.
pub fn pebble_issuer_toml(directory_url: &str, tls_root: &Path) -> String {
    format!(
        "[[issuer]]
id = \"pebble\"
type = \"acme\"
directory = \"{directory_url}\"
contact = [\"mailto:pki@example.test\"]
trust_root = \"{}\"
challenge = \"http-01\"
http01_listen = \"127.0.0.1:{}\"
timeout_secs = 60
",
        tls_root.display(),
        free_port()
    )
}

/// What Pebble's management interface says about a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PebbleStatus {
    /// `Valid` or `Revoked`.
    pub status: String,
    /// The RFC 5280 reason code, when revoked with one.
    pub reason: Option<u64>,
}

impl Pebble {
    pub fn start() -> Self {
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

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pebble.log")).unwrap_or_default()
    }

    /// GET on the management interface over TLS (HTTP/1.0, so the body is not chunked).
    pub fn mgmt_get(&self, path: &str) -> (u16, String) {
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
    pub fn status(&self, der: &[u8]) -> PebbleStatus {
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
pub struct Nginx {
    pub prefix: PathBuf,
    pub conf: PathBuf,
    pub port: u16,
    pub decoy_der: Vec<u8>,
    _process: Guard,
}

/// One TLS server block: the name it answers (SNI), its certificate chain and key files.
pub type Site = (String, PathBuf, PathBuf);

impl Nginx {
    /// nginx on 127.0.0.1:`port`, one server block per site and a decoy default.
    pub fn start(prefix: &Path, port: u16, sites: &[Site]) -> Self {
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
        write_nginx_conf(prefix, &conf, port, sites);
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

    /// Rewrites the server blocks (takes effect on reload).
    pub fn write_conf(&self, sites: &[Site]) {
        write_nginx_conf(&self.prefix, &self.conf, self.port, sites);
    }

    /// The reload command an inventory entry names for this nginx.
    pub fn reload_command(&self) -> String {
        format!(
            "{} -e stderr -p {} -c {} -s reload",
            binary("nginx").display(),
            self.prefix.display(),
            self.conf.display()
        )
    }

    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.prefix.join("error.log")).unwrap_or_default()
    }
}

/// Writes nginx's configuration: a decoy default server and one block per site.
fn write_nginx_conf(prefix: &Path, conf_path: &Path, port: u16, sites: &[Site]) {
    let d = prefix.display();
    // As root, workers would otherwise switch to an unprivileged user.
    let user = if is_root() { "user root;\n" } else { "" };
    let mut blocks = String::new();
    for (name, fullchain, key) in sites {
        blocks.push_str(&format!(
            "  server {{
    listen 127.0.0.1:{port} ssl;
    server_name {name};
    ssl_certificate {};
    ssl_certificate_key {};
    return 200 \"ok\\n\";
  }}
",
            fullchain.display(),
            key.display()
        ));
    }
    let conf = format!(
        "{user}daemon off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log notice;
events {{ worker_connections 256; }}
http {{
  access_log off;
  server_names_hash_bucket_size 128;
  server_names_hash_max_size 4096;
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
{blocks}}}
"
    );
    std::fs::write(conf_path, conf).unwrap();
}

pub fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

/// The leaf certificate (DER) served on 127.0.0.1:`port`, as `openssl s_client` sees it.
pub fn served_leaf(port: u16, sni: Option<&str>) -> Result<Vec<u8>, String> {
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
pub fn wait_served(port: u16, name: &str, expected: &[u8], nginx: &Nginx) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let last = served_leaf(port, Some(name));
        if last.as_deref() == Ok(expected) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "nginx does not serve {} for {name}: it serves {:?}\nnginx log:\n{}",
            sha256_hex(expected),
            last.map(|d| sha256_hex(&d)),
            nginx.error_log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn sha256_hex(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}
