//! The test CT log (`certresponder-test-ctlog`, a workspace binary) for the end-to-end
//! tests: built on demand, run as a child process on a free port, submitted to.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

/// `certresponder-test-ctlog`, built on demand next to the certresponder binary.
pub fn ctlog_bin() -> PathBuf {
    let bin =
        Path::new(env!("CARGO_BIN_EXE_certresponder")).with_file_name("certresponder-test-ctlog");
    if !bin.exists() {
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args(["build", "-p", "certresponder-test-ctlog"])
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        if bin.parent().and_then(Path::file_name) == Some("release".as_ref()) {
            cmd.arg("--release");
        }
        assert!(cmd.status().unwrap().success(), "building the test log");
    }
    assert!(bin.exists(), "{} is missing", bin.display());
    bin
}

/// A running test log (killed on drop) and what it printed when it started.
pub struct TestLog {
    child: Child,
    /// The JSON line it printed: `url`, `static_url`, `public_key_der`, `log_list_path`, ...
    pub info: Value,
    /// Its RFC 6962 URL.
    pub url: String,
    /// Its static-ct-api monitoring prefix.
    pub static_url: String,
    /// Its key, base64 DER.
    pub key: String,
}

impl Drop for TestLog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl TestLog {
    /// An RFC 6962 log, well behaved, keeping its entries in `dir`.
    pub fn start(dir: &Path) -> Self {
        Self::start_with(dir, "rfc6962", None)
    }

    /// A log serving `mode` (`rfc6962`, `static` or `both`), with `fault` (a `--fault`
    /// value) when given.
    pub fn start_with(dir: &Path, mode: &str, fault: Option<&str>) -> Self {
        let mut cmd = Command::new(ctlog_bin());
        cmd.args(["--listen", "127.0.0.1:0", "--mode", mode, "--dir"])
            .arg(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(f) = fault {
            cmd.args(["--fault", f]);
        }
        let mut child = cmd.spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let info: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("test log printed {line:?}: {e}"));
        let text = |k: &str| info[k].as_str().unwrap().to_string();
        Self {
            url: text("url"),
            static_url: text("static_url"),
            key: text("public_key_der"),
            info,
            child,
        }
    }

    /// The log list (v3 JSON) it wrote naming itself.
    pub fn log_list_path(&self) -> PathBuf {
        PathBuf::from(self.info["log_list_path"].as_str().unwrap())
    }

    /// `POST /ct/v1/<endpoint>` (`add-chain`, `add-pre-chain`) with the chain; returns the
    /// SCT.
    pub fn submit(&self, endpoint: &str, chain: &[&[u8]]) -> Value {
        let body = json!({"chain": chain.iter().map(|c| STANDARD.encode(c)).collect::<Vec<_>>()})
            .to_string();
        let hostport = self.url.trim_start_matches("http://").trim_end_matches('/');
        let mut s = TcpStream::connect(hostport).unwrap();
        write!(
            s,
            "POST /ct/v1/{endpoint} HTTP/1.1\r\nHost: {hostport}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        let (head, body) = resp.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200"), "{endpoint}: {resp}");
        let sct: Value = serde_json::from_str(body).unwrap();
        assert!(sct["signature"].is_string(), "{sct}");
        sct
    }
}
