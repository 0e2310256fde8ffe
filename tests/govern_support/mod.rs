//! The test home of the governance tests: a temporary certresponder installation with the
//! internal CA, services on certificates made by OpenSSL and signed by that CA, an exec hook
//! that keeps every notification, and readers for what the binary reports.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering};

use certresponder_inventory::inspect::{self, CertInfo, CrlInfo};
use chrono::{DateTime, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The key a test certificate gets, as `openssl req -newkey` arguments.
#[derive(Clone, Copy, Debug)]
pub enum KeySpec {
    /// RSA-1024: `rsa_modulus_small` at high confidence.
    Rsa1024,
    /// RSA-2048 with public exponent 3: `rsa_exponent_bad` at low confidence.
    Rsa2048E3,
    /// A healthy P-256 key (fast to make).
    P256,
}

impl KeySpec {
    pub fn args(self) -> &'static [&'static str] {
        match self {
            Self::Rsa1024 => &["-newkey", "rsa:1024"],
            Self::Rsa2048E3 => &["-newkey", "rsa:2048", "-pkeyopt", "rsa_keygen_pubexp:3"],
            Self::P256 => &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        }
    }
}

/// One service of a test home: its inventory name and file locations.
#[derive(Clone, Debug)]
pub struct Svc {
    pub name: String,
    pub owner: String,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Svc {
    /// Its `[[cert]]` inventory entry.
    pub fn entry(&self) -> String {
        format!(
            "[[cert]]\nname = \"{}\"\nowner = \"{}\"\ntags = [\"prod\"]\nissuer = \"internal\"\ncert = \"{}\"\nkey = \"{}\"\n\n",
            self.name,
            self.owner,
            self.cert.display(),
            self.key.display()
        )
    }

    /// The deployed leaf.
    pub fn leaf(&self) -> CertInfo {
        let der = inspect::read_certificates(&std::fs::read(&self.cert).unwrap())
            .unwrap()
            .remove(0);
        inspect::inspect_certificate_der(&der).unwrap()
    }

    /// The cert and key files' bytes.
    pub fn files(&self) -> (Vec<u8>, Vec<u8>) {
        (
            std::fs::read(&self.cert).unwrap(),
            std::fs::read(&self.key).unwrap(),
        )
    }
}

/// A temporary certresponder installation whose notifications land in `notes/`, one file
/// per delivery.
pub struct Home {
    pub dir: tempfile::TempDir,
}

impl Home {
    /// A home with the default policy whose internal CA exists (made by a first dry run,
    /// which has nothing to do yet).
    pub fn new() -> Self {
        let home = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        for d in ["inventory", "notes", "srv"] {
            std::fs::create_dir_all(home.path(d)).unwrap();
        }
        let notes = home.path("notes");
        std::fs::write(
            home.config(),
            format!(
                "state_dir = \"state\"\ninventory_dir = \"inventory\"\n\n\
                 [respond]\nreload_window_ms = 0\nretry_base_ms = 10\nconfirm_timeout_secs = 5\n\n\
                 [checks]\nexpiring = \"2d\"\n\n\
                 [notify]\nattempts = 3\nretry_base_ms = 10\ntimeout_secs = 10\n\
                 [notify.exec]\ncommand = 'cat > \"{}/$CERTRESPONDER_DELIVERY.json\"'\n\n\
                 [[issuer]]\nid = \"internal\"\ntype = \"internal-ca\"\ndir = \"ca\"\n",
                notes.display()
            ),
        )
        .unwrap();
        // A dry run builds no issuer, so it creates nothing; a `respond` with nothing to do
        // creates the internal CA on first use.
        let v = home.json(&["respond", "--dry-run", "--json"], 0);
        assert_eq!(v["decisions"], serde_json::json!([]), "{v:#}");
        assert!(!home.path("ca").exists(), "a dry run created the CA");
        let v = home.json(&["respond", "--json"], 0);
        assert_eq!(v["cases"], serde_json::json!([]), "{v:#}");
        assert!(home.path("ca/ca.key").exists() && home.path("ca/ca.pem").exists());
        home
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn config(&self) -> PathBuf {
        self.path("certresponder.toml")
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_certresponder"));
        cmd.arg("--config")
            .arg(self.config())
            .args(args)
            .env("NO_COLOR", "1")
            .env_remove("CERTRESPONDER_FAULT")
            .env_remove("CERTRESPONDER_CONFIG");
        cmd
    }

    /// Runs the binary with this home's config.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Runs and asserts the exit status.
    pub fn status(&self, args: &[&str], status: i32) -> Output {
        let out = self.run(args);
        assert_eq!(out.status.code(), Some(status), "{args:?}: {}", text(&out));
        out
    }

    /// Runs, asserts the exit status and parses JSON stdout.
    pub fn json(&self, args: &[&str], status: i32) -> Value {
        let out = self.status(args, status);
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {}", text(&out)))
    }

    /// Writes a policy file `policy.toml`, the built-in default with each `(from, to)`
    /// replaced once (each must be found), and points the configuration at it.
    pub fn write_policy(&self, edits: &[(&str, &str)]) {
        let mut policy = String::from_utf8(self.status(&["policy", "show-default"], 0).stdout)
            .expect("the default policy is UTF-8");
        for (from, to) in edits {
            let at = policy
                .find(from)
                .unwrap_or_else(|| panic!("`{from}` is not in the default policy"));
            policy.replace_range(at..at + from.len(), to);
        }
        std::fs::write(self.path("policy.toml"), policy).unwrap();
        let cfg = std::fs::read_to_string(self.config()).unwrap();
        if !cfg.contains("policy = ") {
            let cfg = cfg.replacen(
                "inventory_dir = \"inventory\"\n",
                "inventory_dir = \"inventory\"\npolicy = \"policy.toml\"\n",
                1,
            );
            std::fs::write(self.config(), cfg).unwrap();
        }
        self.status(&["policy", "check"], 0);
    }

    /// Makes a certificate for `name.example.test` on a new key, signed by the internal CA,
    /// valid for `days`, under `srv/name/`. Safe to call from several threads.
    pub fn make_svc(&self, name: &str, owner: &str, key: KeySpec, days: u32) -> Svc {
        let dir = self.path(&format!("srv/{name}"));
        std::fs::create_dir_all(&dir).unwrap();
        let (keyp, csr, ext, cert) = (
            dir.join("key.pem"),
            dir.join("csr.pem"),
            dir.join("ext.cnf"),
            dir.join("cert.pem"),
        );
        let dns = format!("{name}.example.test");
        let mut args = vec!["req", "-new", "-nodes"];
        args.extend(key.args());
        args.extend([
            "-keyout",
            keyp.to_str().unwrap(),
            "-out",
            csr.to_str().unwrap(),
            "-subj",
        ]);
        let subj = format!("/CN={dns}");
        args.push(&subj);
        openssl(&args);
        std::fs::write(
            &ext,
            format!("subjectAltName=DNS:{dns}\nbasicConstraints=critical,CA:FALSE\n"),
        )
        .unwrap();
        let serial = serial();
        let days = days.to_string();
        let (ca, ca_key) = (self.path("ca/ca.pem"), self.path("ca/ca.key"));
        openssl(&[
            "x509",
            "-req",
            "-in",
            csr.to_str().unwrap(),
            "-CA",
            ca.to_str().unwrap(),
            "-CAkey",
            ca_key.to_str().unwrap(),
            "-set_serial",
            &serial,
            "-days",
            &days,
            "-extfile",
            ext.to_str().unwrap(),
            "-out",
            cert.to_str().unwrap(),
        ]);
        std::fs::set_permissions(&keyp, std::fs::Permissions::from_mode(0o600)).unwrap();
        Svc {
            name: name.to_string(),
            owner: owner.to_string(),
            cert,
            key: keyp,
        }
    }

    /// Makes several services at once, four OpenSSL pipelines at a time.
    pub fn make_many(&self, specs: &[(String, String, KeySpec, u32)]) -> Vec<Svc> {
        let next = AtomicU64::new(0);
        let made = std::sync::Mutex::new(BTreeMap::new());
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::SeqCst) as usize;
                        let Some((name, owner, key, days)) = specs.get(i) else {
                            break;
                        };
                        let svc = self.make_svc(name, owner, *key, *days);
                        made.lock().unwrap().insert(i, svc);
                    }
                });
            }
        });
        made.into_inner().unwrap().into_values().collect()
    }

    /// Registers services by writing them to `inventory/<file>`.
    pub fn register(&self, file: &str, svcs: &[&Svc]) {
        let text: String = svcs.iter().map(|s| s.entry()).collect();
        std::fs::write(self.path(&format!("inventory/{file}")), text).unwrap();
    }

    /// `cases list --json`, by case id.
    pub fn cases(&self) -> BTreeMap<u64, Value> {
        self.json(&["cases", "list", "--json"], 0)
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c["id"].as_u64().unwrap(), c.clone()))
            .collect()
    }

    /// The cases about one certificate.
    pub fn cases_of(&self, cert: &str) -> Vec<Value> {
        self.cases()
            .into_values()
            .filter(|c| c["cert"] == cert)
            .collect()
    }

    /// `cases show N --json`.
    pub fn case(&self, id: u64) -> Value {
        self.json(&["cases", "show", &id.to_string(), "--json"], 0)
    }

    /// `signals --json`.
    pub fn signals(&self) -> Vec<Value> {
        self.json(&["signals", "--json"], 0)
            .as_array()
            .unwrap()
            .clone()
    }

    /// `audit export --json`.
    pub fn audit(&self) -> Vec<Value> {
        self.json(&["audit", "export", "--json"], 0)
            .as_array()
            .unwrap()
            .clone()
    }

    /// `history NAME --json`.
    pub fn history(&self, name: &str) -> Vec<Value> {
        self.json(&["history", name, "--json"], 0)
            .as_array()
            .unwrap()
            .clone()
    }

    /// Every notification delivered so far.
    pub fn notes(&self) -> Vec<Value> {
        let mut out: Vec<Value> = std::fs::read_dir(self.path("notes"))
            .unwrap()
            .map(|e| {
                let p = e.unwrap().path();
                let bytes = std::fs::read(&p).unwrap();
                serde_json::from_slice(&bytes)
                    .unwrap_or_else(|e| panic!("{}: not JSON ({e})", p.display()))
            })
            .collect();
        out.sort_by_key(|n| n["created_at"].as_str().unwrap_or_default().to_string());
        out
    }

    /// Notifications of one event.
    pub fn notes_of(&self, event: &str) -> Vec<Value> {
        self.notes()
            .into_iter()
            .filter(|n| n["event"] == event)
            .collect()
    }

    /// The CA certificate, DER.
    pub fn ca_der(&self) -> Vec<u8> {
        inspect::read_certificates(&std::fs::read(self.path("ca/ca.pem")).unwrap())
            .unwrap()
            .remove(0)
    }

    /// The CA's published CRL, checked to be signed by the CA; `None` before the first
    /// revocation.
    pub fn crl(&self) -> Option<CrlInfo> {
        let der = std::fs::read(self.path("ca/crl.der")).ok()?;
        assert!(
            inspect::crl_signed_by(&der, &self.ca_der()).unwrap(),
            "the CRL is not signed by the CA"
        );
        Some(inspect::inspect_crl_der(&der).unwrap())
    }

    /// The serials the CRL lists (none before the first revocation).
    pub fn revoked_serials(&self) -> BTreeSet<String> {
        self.crl()
            .map(|c| c.revoked.iter().map(|r| norm_serial(&r.serial)).collect())
            .unwrap_or_default()
    }

    /// The bytes of every file outside the database (services, CA, inventory, notes).
    pub fn files(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut out = BTreeMap::new();
        for d in ["srv", "ca", "inventory", "notes"] {
            collect_files(&self.path(d), &mut out);
        }
        out
    }
}

fn collect_files(dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries {
        let p = e.unwrap().path();
        if p.is_dir() {
            collect_files(&p, out);
        } else {
            out.insert(p.clone(), std::fs::read(&p).unwrap());
        }
    }
}

pub fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout {}\nstderr {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub fn openssl(args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl is installed (the README's test command installs it)");
    assert!(out.status.success(), "openssl {args:?}: {}", text(&out));
}

/// A fresh positive 64-bit serial for `openssl x509 -set_serial`.
fn serial() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let seed = format!(
        "{}-{}-{:?}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst),
        std::time::SystemTime::now()
    );
    format!("0x4{}", &hex::encode(Sha256::digest(seed))[..15])
}

/// A serial in the form the CRL's entries use: lower-case hex, no leading zeros.
pub fn norm_serial(s: &str) -> String {
    s.trim_start_matches('0').to_ascii_lowercase()
}

pub fn time(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("not a time: {v}")))
        .unwrap()
        .to_utc()
}

pub fn checks_of(scan: &Value, subject: &str) -> Vec<(String, String)> {
    scan["new"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["subject"] == subject)
        .map(|s| {
            (
                s["check"].as_str().unwrap().to_string(),
                s["confidence"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The audit log verifies, every record carries seq/prev/hash and links to the one before
/// it, and each kind in `kinds` occurs. Returns the records.
pub fn assert_audit(home: &Home, kinds: &[&str]) -> Vec<Value> {
    home.status(&["audit", "verify"], 0);
    let records = home.audit();
    assert!(!records.is_empty());
    let mut prev = "0".repeat(64);
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r["seq"], i as u64 + 1, "{r:#}");
        assert_eq!(
            r["prev"],
            prev.as_str(),
            "record {} is not linked: {r:#}",
            i + 1
        );
        let hash = r["hash"].as_str().unwrap();
        assert_eq!(hash.len(), 64, "{r:#}");
        assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()), "{r:#}");
        prev = hash.to_string();
    }
    let seen: BTreeSet<&str> = records
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    for k in kinds {
        assert!(
            seen.contains(k),
            "no `{k}` record in the audit log: {seen:?}"
        );
    }
    for r in &records {
        assert!(
            !r.to_string().contains("PRIVATE KEY"),
            "key material in the audit log: {r:#}"
        );
    }
    records
}

/// Each service's leaf and file bytes before anything ran, by name.
pub type Before = BTreeMap<String, (CertInfo, (Vec<u8>, Vec<u8>))>;

pub fn before(svcs: &[Svc]) -> Before {
    svcs.iter()
        .map(|s| (s.name.clone(), (s.leaf(), s.files())))
        .collect()
}

/// Gives `uid` ownership of everything in the home, so it can run the binary on it.
pub fn chown_tree(path: &Path, uid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(uid)).unwrap();
    if path.is_dir() {
        for e in std::fs::read_dir(path).unwrap() {
            chown_tree(&e.unwrap().path(), uid);
        }
    }
}
