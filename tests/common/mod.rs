//! Shared fixtures for the end-to-end tests: a temporary certresponder home with a config,
//! an inventory directory, and certificates made by rcgen.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Output;

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

/// A temporary certresponder installation.
pub struct Home {
    pub dir: tempfile::TempDir,
}

impl Home {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let home = Self { dir };
        std::fs::create_dir_all(home.path("inventory")).unwrap();
        std::fs::write(
            home.config(),
            "state_dir = \"state\"\ninventory_dir = \"inventory\"\n\n[[issuer]]\nid = \"internal\"\ntype = \"internal-ca\"\ndir = \"ca\"\n",
        )
        .unwrap();
        home
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn config(&self) -> PathBuf {
        self.path("certresponder.toml")
    }

    /// Runs the binary with this home's config.
    pub fn run(&self, args: &[&str]) -> Output {
        std::process::Command::new(env!("CARGO_BIN_EXE_certresponder"))
            .arg("--config")
            .arg(self.config())
            .args(args)
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    }

    /// Runs and parses JSON stdout, asserting the exit status.
    pub fn json(&self, args: &[&str], status: i32) -> serde_json::Value {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(status),
            "{args:?}: stdout {} stderr {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{args:?}: not JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// Makes a certificate and key for `dns` under `certs/<name>/`; returns (cert, key).
    pub fn make_cert(&self, name: &str, dns: &str) -> (PathBuf, PathBuf) {
        let dir = self.path(&format!("certs/{name}"));
        std::fs::create_dir_all(&dir).unwrap();
        let (leaf, key) = issue(dns);
        let cert = dir.join("cert.pem");
        let keyp = dir.join("key.pem");
        std::fs::write(&cert, leaf).unwrap();
        std::fs::write(&keyp, key).unwrap();
        // Private keys are 0600, as a deployment keeps them (a readable one is a finding).
        std::fs::set_permissions(&keyp, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        (cert, keyp)
    }
}

/// Issues a leaf for `dns` from a fresh CA; returns (fullchain PEM, key PEM).
pub fn issue(dns: &str) -> (String, String) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let params = CertificateParams::new(vec![dns.to_string()]).unwrap();
    let leaf = params.signed_by(&key, &issuer).unwrap();
    (
        format!("{}{}", leaf.pem(), ca_cert.pem()),
        key.serialize_pem(),
    )
}

/// One `[[cert]]` entry.
pub fn entry(name: &str, cert: &Path, key: &Path) -> String {
    format!(
        "[[cert]]\nname = \"{name}\"\nowner = \"team-{name}@example.com\"\ntags = [\"prod\"]\nissuer = \"internal\"\ncert = \"{}\"\nkey = \"{}\"\n\n",
        cert.display(),
        key.display()
    )
}

/// A self-signed RSA leaf for `dns` (its CN and only SAN) made by OpenSSL, written to `cert`
/// with its key (0600) in `key`.
pub fn openssl_rsa_leaf(cert: &Path, key: &Path, dns: &str, bits: u32, days: u32) {
    let subject = format!("/CN={dns}");
    let san = format!("subjectAltName=DNS:{dns}");
    let args = [
        "req",
        "-x509",
        "-newkey",
        &format!("rsa:{bits}"),
        "-nodes",
        "-keyout",
        key.to_str().unwrap(),
        "-out",
        cert.to_str().unwrap(),
        "-subj",
        &subject,
        "-days",
        &days.to_string(),
        "-addext",
        &san,
        // A leaf: OpenSSL marks self-signed certificates as CAs unless told otherwise.
        "-addext",
        "basicConstraints=critical,CA:FALSE",
    ];
    let out = std::process::Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl must be installed (scripts/test installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::set_permissions(key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
}

/// A finished command's status and output, for assertion messages.
pub fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout {}\nstderr {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Gives `dir` and everything under it to `uid` (and the group of the same number).
pub fn chown_tree(dir: &Path, uid: u32) {
    std::os::unix::fs::lchown(dir, Some(uid), Some(uid)).unwrap();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if std::fs::symlink_metadata(&p).unwrap().is_dir() {
            chown_tree(&p, uid);
        } else {
            std::os::unix::fs::lchown(&p, Some(uid), Some(uid)).unwrap();
        }
    }
}

/// The test venv (`CERTRESPONDER_TEST_VENV`, default `target/test-venv`), which
/// `scripts/test` makes with badkeys and Python `cryptography`.
pub fn venv() -> PathBuf {
    std::env::var_os("CERTRESPONDER_TEST_VENV").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-venv"),
        PathBuf::from,
    )
}

/// Runs `tests/fixtures/SCRIPT OUT` with the venv's Python; fails the test, saying why,
/// when the venv is missing or the script fails.
pub fn python_fixture(script: &str, out: &Path) {
    let python = venv().join("bin/python");
    assert!(
        python.is_file(),
        "{} is missing: run scripts/test, which makes the test venv",
        python.display()
    );
    let run = std::process::Command::new(&python)
        .arg(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures")
                .join(script),
        )
        .arg(out)
        .output()
        .unwrap();
    assert!(run.status.success(), "{script}: {}", text(&run));
}
