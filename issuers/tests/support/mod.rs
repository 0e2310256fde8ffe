//! Test support: a real Pebble ACME server (Debian's `pebble`), started by the test with a
//! TLS certificate it generates, on free ports, and killed on drop.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use certresponder_issuers::{CertStatus, RevocationReason};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// A child process killed (and reaped) when dropped.
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for(addr: SocketAddr, child: &mut Child, log: &Path) {
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
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "nothing listening on {addr} after 20 s: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

fn binary(name: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/local/bin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!("`{name}` is not installed: run scripts/test, which installs Debian's pebble package");
}

/// A running Pebble.
pub struct Pebble {
    pub dir: tempfile::TempDir,
    pub directory_url: String,
    pub mgmt: SocketAddr,
    /// The CA certificate that signs Pebble's TLS listener (trust root for the ACME client).
    pub tls_root: PathBuf,
    /// The port Pebble validates HTTP-01 on.
    pub http_port: u16,
    /// challtestsrv's management port, when validation is real.
    pub challtestsrv_mgmt: Option<u16>,
    _children: Vec<Guard>,
}

/// How to start Pebble.
#[derive(Default)]
pub struct PebbleOptions {
    /// Validate challenges for real, resolving names through pebble-challtestsrv.
    pub real_validation: bool,
    /// Require external account binding with this (kid, base64url key).
    pub eab: Option<(String, String)>,
}

impl Pebble {
    pub fn start(opts: PebbleOptions) -> Self {
        let dir = tempfile::tempdir().unwrap();
        // TLS for Pebble's listeners: a throwaway CA and a localhost certificate.
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Pebble test TLS CA");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let key = rcgen::KeyPair::generate().unwrap();
        let params =
            rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                .unwrap();
        let cert = params.signed_by(&key, &issuer).unwrap();
        let tls_root = dir.path().join("tls-root.pem");
        std::fs::write(&tls_root, ca_cert.pem()).unwrap();
        std::fs::write(dir.path().join("server.pem"), cert.pem()).unwrap();
        std::fs::write(dir.path().join("server.key"), key.serialize_pem()).unwrap();

        let (acme, mgmt, http_port, tls_port) =
            (free_port(), free_port(), free_port(), free_port());
        let mut cfg = serde_json::json!({"pebble": {
            "listenAddress": format!("127.0.0.1:{acme}"),
            "managementListenAddress": format!("127.0.0.1:{mgmt}"),
            "certificate": dir.path().join("server.pem"),
            "privateKey": dir.path().join("server.key"),
            "httpPort": http_port,
            "tlsPort": tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": opts.eab.is_some(),
        }});
        if let Some((kid, key)) = &opts.eab {
            cfg["pebble"]["externalAccountMACKeys"] = serde_json::json!({ kid: key });
        }
        let cfg_path = dir.path().join("pebble.json");
        std::fs::write(&cfg_path, cfg.to_string()).unwrap();

        let mut children = Vec::new();
        let mut challtestsrv_mgmt = None;
        let mut pebble = Command::new(binary("pebble"));
        pebble.arg("-config").arg(&cfg_path).arg("-strict");
        if opts.real_validation {
            let dns = free_port();
            let log = dir.path().join("challtestsrv.log");
            let cmgmt = free_port();
            challtestsrv_mgmt = Some(cmgmt);
            let mut c = Command::new(binary("pebble-challtestsrv"))
                .args([
                    "-dns01",
                    &format!("127.0.0.1:{dns}"),
                    "-http01",
                    "",
                    "-https01",
                    "",
                    "-tlsalpn01",
                    "",
                ])
                .args([
                    "-management",
                    &format!("127.0.0.1:{cmgmt}"),
                    "-defaultIPv4",
                    "127.0.0.1",
                    "-defaultIPv6",
                    "",
                ])
                .stdout(Stdio::from(std::fs::File::create(&log).unwrap()))
                .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
                .spawn()
                .unwrap();
            // DNS is UDP; give it a moment, then check it is still alive.
            std::thread::sleep(Duration::from_millis(300));
            assert!(
                c.try_wait().unwrap().is_none(),
                "challtestsrv died: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            children.push(Guard(c));
            pebble.arg("-dnsserver").arg(format!("127.0.0.1:{dns}"));
        } else {
            pebble.env("PEBBLE_VA_ALWAYS_VALID", "1");
        }
        let log = dir.path().join("pebble.log");
        let mut child = pebble
            .env("PEBBLE_VA_NOSLEEP", "1")
            .stdout(Stdio::from(std::fs::File::create(&log).unwrap()))
            .stderr(Stdio::from(
                std::fs::File::options().append(true).open(&log).unwrap(),
            ))
            .spawn()
            .unwrap();
        wait_for(SocketAddr::from(([127, 0, 0, 1], acme)), &mut child, &log);
        wait_for(SocketAddr::from(([127, 0, 0, 1], mgmt)), &mut child, &log);
        children.push(Guard(child));
        Self {
            directory_url: format!("https://127.0.0.1:{acme}/dir"),
            mgmt: SocketAddr::from(([127, 0, 0, 1], mgmt)),
            tls_root,
            http_port,
            challtestsrv_mgmt,
            dir,
            _children: children,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pebble.log")).unwrap_or_default()
    }

    /// GET on the management interface.
    pub async fn mgmt_get(&self, path: &str) -> (u16, Vec<u8>) {
        let pem = std::fs::read(&self.tls_root).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        for der in certresponder_inventory::inspect::read_certificates(&pem).unwrap() {
            roots
                .add(rustls_pki_types::CertificateDer::from(der))
                .unwrap();
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let conn = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only()
            .enable_http1()
            .build();
        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build(conn);
        let uri = format!("https://127.0.0.1:{}{path}", self.mgmt.port());
        let rsp = client.get(uri.parse().unwrap()).await.unwrap();
        let status = rsp.status().as_u16();
        let body = rsp.into_body().collect().await.unwrap().to_bytes().to_vec();
        (status, body)
    }

    /// The test oracle: Pebble's own view of a certificate (`/cert-status-by-serial/`).
    pub async fn oracle(&self, der: &[u8]) -> Result<CertStatus, String> {
        let info = certresponder_inventory::inspect::inspect_certificate_der(der)
            .map_err(|e| e.to_string())?;
        let (status, body) = self
            .mgmt_get(&format!("/cert-status-by-serial/{}", info.serial))
            .await;
        if status != 200 {
            return Err(format!("HTTP {status}: {}", String::from_utf8_lossy(&body)));
        }
        let v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        match v["Status"].as_str() {
            Some("Valid") => Ok(CertStatus::Good),
            Some("Revoked") => Ok(CertStatus::Revoked {
                reason: v["Reason"]
                    .as_u64()
                    .and_then(|r| RevocationReason::from_code(r as u8)),
                revoked_at: v["RevokedAt"]
                    .as_str()
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                    .map_or_else(chrono::Utc::now, |t| t.with_timezone(&chrono::Utc)),
            }),
            other => Err(format!("unexpected status {other:?} in {v}")),
        }
    }
}

/// A real nginx serving `root` on 127.0.0.1:`port`, in the foreground, killed on drop.
pub struct Nginx {
    _dir: tempfile::TempDir,
    _child: Guard,
}

impl Nginx {
    pub fn serve(root: &Path, port: u16) -> Self {
        let nginx = ["/usr/sbin/nginx", "/usr/bin/nginx"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
            .expect(
                "nginx is not installed: run scripts/test, which installs Debian's nginx package",
            );
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        // As root, workers would drop to www-data and could not read a private temp dir.
        let user = if is_root() { "user root;" } else { "" };
        let conf = format!(
            "{user}\ndaemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{ worker_connections 64; }}\nhttp {{\n  access_log {d}/access.log;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  server {{ listen 127.0.0.1:{port}; root {}; }}\n}}\n",
            root.display()
        );
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let log = dir.path().join("error.log");
        std::fs::write(&log, "").unwrap();
        let mut child = Command::new(nginx)
            .arg("-c")
            .arg(&conf_path)
            .arg("-p")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::options().append(true).open(&log).unwrap(),
            ))
            .spawn()
            .unwrap();
        wait_for(SocketAddr::from(([127, 0, 0, 1], port)), &mut child, &log);
        Self {
            _dir: dir,
            _child: Guard(child),
        }
    }
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}
