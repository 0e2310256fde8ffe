//! End-to-end tests of the audit log: `scan` records signals, then the sled database is
//! tampered with directly (changed, removed, reordered and truncated records) and
//! `audit verify` must name what happened; `audit export --json` writes the records out.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::Home;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use serde_json::Value;

/// Certificates in the demo inventory.
const CERTS: [&str; 4] = ["alpha", "bravo", "charlie", "delta"];

/// A leaf for `dns` valid for 90 days from a fresh CA: (fullchain PEM, key PEM).
fn ninety_days(dns: &str) -> (String, String) {
    let now = time::OffsetDateTime::now_utc();
    let window = |p: &mut CertificateParams| {
        p.not_before = now - time::Duration::days(1);
        p.not_after = now + time::Duration::days(90);
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "Audit Test CA");
    window(&mut ca);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec![dns.to_string()]).unwrap();
    window(&mut params);
    let leaf = params.signed_by(&key, &issuer).unwrap();
    (
        format!("{}{}", leaf.pem(), ca_cert.pem()),
        key.serialize_pem(),
    )
}

/// A home with four healthy certificates, each of which counts as expiring while the
/// configuration's `expiring` threshold is raised.
struct Demo {
    home: Home,
}

impl Demo {
    fn new() -> Self {
        let home = Home::new();
        let mut inv = String::new();
        for name in CERTS {
            let dir = home.path(&format!("certs/{name}"));
            std::fs::create_dir_all(&dir).unwrap();
            let (chain, key) = ninety_days(&format!("{name}.example.test"));
            let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
            std::fs::write(&cert_path, chain).unwrap();
            std::fs::write(&key_path, key).unwrap();
            // 0600 as deployed keys are: a readable key file is a finding of its own.
            std::fs::set_permissions(
                &key_path,
                std::os::unix::fs::PermissionsExt::from_mode(0o600),
            )
            .unwrap();
            inv.push_str(&common::entry(name, &cert_path, &key_path));
        }
        let file = home.path("certs.toml");
        std::fs::write(&file, inv).unwrap();
        let demo = Self { home };
        demo.json(&["inventory", "add", file.to_str().unwrap(), "--json"], 0);
        demo
    }

    fn config(&self) -> PathBuf {
        self.home.config()
    }

    fn db(&self) -> PathBuf {
        self.home.path("state/db")
    }

    /// Makes every certificate "expiring" (or not), so that a scan raises (or resolves) a
    /// signal for each.
    fn all_expiring(&self, on: bool) {
        let cfg = std::fs::read_to_string(self.config()).unwrap();
        let cfg = cfg.replace("[checks]\nexpiring = \"3650d\"\n\n", "");
        let cfg = if on {
            cfg.replacen(
                "[[issuer]]",
                "[checks]\nexpiring = \"3650d\"\n\n[[issuer]]",
                1,
            )
        } else {
            cfg
        };
        std::fs::write(self.config(), cfg).unwrap();
    }

    fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_certresponder"));
        cmd.arg("--config")
            .arg(self.config())
            .args(args)
            .env("NO_COLOR", "1")
            .env_remove("CERTRESPONDER_LOG");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_env(args, &[])
    }

    /// Runs, asserts the exit status, returns stdout.
    fn expect(&self, args: &[&str], status: i32) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(status),
            "{args:?}: stdout {} stderr {}",
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    fn json(&self, args: &[&str], status: i32) -> Value {
        let out = self.expect(args, status);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {out}"))
    }

    /// Opens the database directly (the CLI is not running) and changes the audit tree.
    fn tamper(&self, f: impl FnOnce(&sled::Tree)) {
        let db = sled::open(self.db()).unwrap();
        let tree = db.open_tree("audit").unwrap();
        f(&tree);
        db.flush().unwrap();
    }

    fn raw(&self) -> Vec<(u64, Vec<u8>)> {
        let db = sled::open(self.db()).unwrap();
        let tree = db.open_tree("audit").unwrap();
        tree.iter()
            .map(|kv| {
                let (k, v) = kv.unwrap();
                (
                    u64::from_be_bytes(k.as_ref().try_into().unwrap()),
                    v.to_vec(),
                )
            })
            .collect()
    }

    fn restore(&self, raw: &[(u64, Vec<u8>)]) {
        self.tamper(|t| {
            t.clear().unwrap();
            for (k, v) in raw {
                t.insert(k.to_be_bytes(), v.as_slice()).unwrap();
            }
        });
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

/// `audit verify` fails (exit 1) and says `needle`.
fn damaged(demo: &Demo, args: &[&str], needle: &str) -> String {
    let mut all = vec!["audit", "verify"];
    all.extend_from_slice(args);
    let out = demo.expect(&all, 1);
    assert!(out.contains(needle), "expected `{needle}` in:\n{out}");
    out
}

fn intact(demo: &Demo) -> String {
    demo.expect(&["audit", "verify"], 0)
}

/// Builds a demo whose audit log ends with eight signal records: four new signals, then
/// the same four resolved. Returns the demo and the number of records before them (what
/// registering the inventory recorded, if anything).
fn demo_with_records() -> (Demo, u64) {
    let demo = Demo::new();
    let base = demo.raw().len() as u64;
    let scan = demo.json(&["scan", "--json"], 0);
    assert!(scan["new"].as_array().unwrap().is_empty(), "{scan}");
    demo.all_expiring(true);
    let scan = demo.json(&["scan", "--json"], 3);
    assert_eq!(scan["new"].as_array().unwrap().len(), 4, "{scan}");
    // Seen again unchanged: nothing more is recorded.
    demo.json(&["scan", "--json"], 3);
    assert_eq!(demo.raw().len() as u64, base + 4);
    demo.all_expiring(false);
    let scan = demo.json(&["scan", "--json"], 0);
    assert_eq!(scan["resolved"].as_array().unwrap().len(), 4, "{scan}");
    assert_eq!(demo.raw().len() as u64, base + 8);
    (demo, base)
}

#[test]
fn export_writes_every_record_with_its_chain() {
    let (demo, base) = demo_with_records();
    let all = demo.json(&["audit", "export", "--json"], 0);
    let recs = all.as_array().unwrap();
    assert_eq!(recs.len() as u64, base + 8);
    for (i, r) in recs.iter().enumerate() {
        assert_eq!(r["seq"], i as u64 + 1, "{r}");
        for field in [
            "at", "kind", "actor", "cert", "case", "data", "prev", "hash",
        ] {
            assert!(r.get(field).is_some(), "no {field} in {r}");
        }
        assert_eq!(r["hash"].as_str().unwrap().len(), 64);
        let prev = if i == 0 {
            "0".repeat(64)
        } else {
            recs[i - 1]["hash"].as_str().unwrap().to_string()
        };
        assert_eq!(r["prev"], prev.as_str());
    }
    let since = (base + 1).to_string();
    let signals = demo.json(&["audit", "export", "--json", "--since", &since], 0);
    let signals = signals.as_array().unwrap();
    assert_eq!(signals.len(), 8);
    for (i, r) in signals.iter().enumerate() {
        assert_eq!(r["seq"], base + 1 + i as u64);
        assert_eq!(r["kind"], "signal");
        assert_eq!(r["actor"], "certresponder");
        assert_eq!(r["case"], Value::Null);
        assert!(CERTS.contains(&r["cert"].as_str().unwrap()), "{r}");
        assert_eq!(r["data"]["check"], "expiring");
        assert_eq!(r["data"]["family"], "weak");
        assert_eq!(r["data"]["source"], "scan");
        assert_eq!(r["data"]["confidence"], "medium");
        assert!(r["data"]["evidence"].is_object(), "{r}");
        assert!(r["data"]["message"].is_string(), "{r}");
        assert_eq!(r["data"]["state"], if i < 4 { "new" } else { "resolved" });
        assert_eq!(r["data"]["dedup_key"].as_str().unwrap().len(), 64);
    }
    let bravo = demo.json(&["audit", "export", "--json", "--cert", "bravo"], 0);
    let bravo = bravo.as_array().unwrap();
    assert_eq!(bravo.len(), 2, "{bravo:?}");
    assert!(bravo.iter().all(|r| r["cert"] == "bravo"));
    let none = demo.json(&["audit", "export", "--json", "--case", "1"], 0);
    assert!(none.as_array().unwrap().is_empty());

    let table = demo.expect(&["audit", "export", "--since", &since], 0);
    assert!(table.starts_with("SEQ"), "{table}");
    assert!(table.contains("state=resolved check=expiring"), "{table}");
    assert_eq!(table.lines().count(), 9, "{table}");
}

#[test]
fn verify_names_changed_removed_and_reordered_records() {
    let (demo, base) = demo_with_records();
    let last = base + 8;
    let out = intact(&demo);
    let head = out
        .trim()
        .strip_prefix(&format!("audit log intact: {last} records, head "))
        .unwrap_or_else(|| panic!("{out}"))
        .to_string();
    assert!(head.starts_with(&format!("{last}:")), "{head}");
    let report = demo.json(&["audit", "verify", "--json"], 0);
    assert_eq!(report["intact"], true);
    assert_eq!(report["length"], last);
    assert_eq!(report["head"]["head"], head.as_str());
    let pristine = demo.raw();
    let n = |k: u64| base + k;

    // Changed: a record's message is rewritten, its stored hash kept.
    demo.tamper(|t| {
        let mut v: Value = serde_json::from_slice(&t.get(key(n(3))).unwrap().unwrap()).unwrap();
        v["data"]["message"] = "nothing to see here".into();
        t.insert(key(n(3)), serde_json::to_vec(&v).unwrap())
            .unwrap();
    });
    damaged(&demo, &[], &format!("record {} was changed", n(3)));
    let report = demo.json(&["audit", "verify", "--json"], 1);
    assert_eq!(report["intact"], false);
    assert_eq!(report["problems"].as_array().unwrap().len(), 1, "{report}");
    assert_eq!(report["problems"][0]["seq"], n(3));
    assert_eq!(report["problems"][0]["kind"], "changed");
    demo.restore(&pristine);
    intact(&demo);

    // Removed: one in the middle.
    demo.tamper(|t| {
        t.remove(key(n(5))).unwrap();
    });
    let out = damaged(&demo, &[], &format!("record {} is missing (removed)", n(5)));
    assert!(!out.contains("changed"), "{out}");
    demo.restore(&pristine);

    // Reordered: two records trade places.
    demo.tamper(|t| {
        let a = t.get(key(n(2))).unwrap().unwrap();
        let b = t.get(key(n(6))).unwrap().unwrap();
        t.insert(key(n(2)), b).unwrap();
        t.insert(key(n(6)), a).unwrap();
    });
    let out = damaged(
        &demo,
        &[],
        &format!("records {} and {} are out of order", n(2), n(6)),
    );
    assert!(!out.contains("changed"), "a swap is not a change:\n{out}");
    demo.restore(&pristine);

    // Undecodable bytes are reported, not a crash.
    demo.tamper(|t| {
        t.insert(key(n(4)), &b"\x00\x01 not a record"[..]).unwrap();
    });
    damaged(&demo, &[], &format!("record {} cannot be read", n(4)));
    let out = demo.run(&["audit", "export", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("audit verify"),
        "{}",
        text(&out.stderr)
    );
    demo.restore(&pristine);
    intact(&demo);
}

#[test]
fn verify_with_a_noted_head_detects_a_truncated_tail() {
    let (demo, base) = demo_with_records();
    // The head as the service log shows it while records are appended: the four
    // resolved signals are re-opened.
    demo.all_expiring(true);
    let out = demo.run_env(&["scan"], &[("CERTRESPONDER_LOG", "info")]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let log = text(&out.stderr);
    let last = log
        .lines()
        .rfind(|l| l.contains("audit record appended"))
        .unwrap_or_else(|| panic!("no audit head in the service log:\n{log}"));
    let field = |name: &str| {
        let at = last.find(&format!("{name}=")).unwrap() + name.len() + 1;
        last[at..].split_whitespace().next().unwrap().to_string()
    };
    let (seq, hash) = (field("audit_seq"), field("audit_head"));
    let top = base + 12;
    assert_eq!(seq, top.to_string(), "{last}");
    let reopened = demo.json(&["audit", "export", "--json", "--since", &seq], 0);
    assert_eq!(reopened[0]["data"]["state"], "reopened");
    let head = format!("{seq}:{hash}");
    let out = intact(&demo);
    assert!(out.contains(&format!("head {head}")), "{out}");
    demo.expect(&["audit", "verify", "--head", &head], 0);
    demo.expect(&["audit", "verify", "--head", &hash], 0);

    // The last two records are cut off: the rest is consistent by itself...
    demo.tamper(|t| {
        t.remove(key(top)).unwrap();
        t.remove(key(top - 1)).unwrap();
    });
    let out = intact(&demo);
    assert!(
        out.contains(&format!("{} records, head {}:", top - 2, top - 2)),
        "{out}"
    );
    // ... but not with the head noted before.
    damaged(
        &demo,
        &["--head", &head],
        &format!("the chain ends at record {} but head {top}:", top - 2),
    );
    damaged(
        &demo,
        &["--head", &head],
        "2 records were removed from the end",
    );
    damaged(
        &demo,
        &["--head", &hash],
        &format!("the chain does not contain head {hash}"),
    );
    let report = demo.json(&["audit", "verify", "--head", &head, "--json"], 1);
    assert_eq!(report["problems"][0]["kind"], "truncated");
    assert_eq!(report["problems"][0]["seq"], top - 1);

    let bad = demo.run(&["audit", "verify", "--head", "not-a-hash"]);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad.stderr));
}

#[test]
fn verify_without_a_database_is_an_input_error() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("certresponder.toml");
    std::fs::write(
        &cfg,
        "state_dir = \"state\"\ninventory_dir = \"inventory\"\n\n[[issuer]]\nid = \"internal\"\ntype = \"internal-ca\"\ndir = \"ca\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_certresponder"))
        .arg("--config")
        .arg(&cfg)
        .args(["audit", "verify"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no database"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        !Path::new(&dir.path().join("state/db")).exists(),
        "verify creates nothing"
    );
}
