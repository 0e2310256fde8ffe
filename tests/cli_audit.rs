//! End-to-end tests of the audit log: `scan` records signals, then the sled database is
//! tampered with directly (changed, removed, reordered and truncated records) and
//! `audit verify` must name what happened; `audit export --json` writes the records out.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// A quickstart demo whose every certificate counts as expiring while `expiring` is set.
struct Demo {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl Demo {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("demo");
        let out = Command::new(env!("CARGO_BIN_EXE_certresponder"))
            .args(["quickstart", "--dir"])
            .arg(&root)
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        assert!(out.status.success(), "quickstart: {}", text(&out.stderr));
        Self { _dir: dir, root }
    }

    fn config(&self) -> PathBuf {
        self.root.join("certresponder.toml")
    }

    fn db(&self) -> PathBuf {
        self.root.join("state").join("db")
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

/// Builds a demo with ten audit records: five new signals, then the same five resolved.
fn demo_with_records() -> Demo {
    let demo = Demo::new();
    assert!(
        demo.json(&["audit", "export", "--json"], 0)
            .as_array()
            .unwrap()
            .is_empty(),
        "quickstart records no signal"
    );
    demo.all_expiring(true);
    let scan = demo.json(&["scan", "--json"], 3);
    assert_eq!(scan["new"].as_array().unwrap().len(), 5, "{scan}");
    // Seen again unchanged: nothing more is recorded.
    demo.json(&["scan", "--json"], 3);
    assert_eq!(demo.raw().len(), 5);
    demo.all_expiring(false);
    let scan = demo.json(&["scan", "--json"], 0);
    assert_eq!(scan["resolved"].as_array().unwrap().len(), 5, "{scan}");
    assert_eq!(demo.raw().len(), 10);
    demo
}

#[test]
fn export_writes_every_record_with_its_chain() {
    let demo = demo_with_records();
    let all = demo.json(&["audit", "export", "--json"], 0);
    let recs = all.as_array().unwrap();
    assert_eq!(recs.len(), 10);
    for (i, r) in recs.iter().enumerate() {
        assert_eq!(r["seq"], i as u64 + 1, "{r}");
        for field in [
            "at", "kind", "actor", "cert", "case", "data", "prev", "hash",
        ] {
            assert!(r.get(field).is_some(), "no {field} in {r}");
        }
        assert_eq!(r["kind"], "signal");
        assert_eq!(r["actor"], "certresponder");
        assert_eq!(r["data"]["check"], "expiring");
        assert_eq!(r["data"]["family"], "weak");
        assert_eq!(r["data"]["source"], "scan");
        assert_eq!(
            r["data"]["cert"],
            Value::Null,
            "the cert is a field of its own"
        );
        assert_eq!(r["data"]["state"], if i < 5 { "new" } else { "resolved" });
        assert_eq!(r["data"]["dedup_key"].as_str().unwrap().len(), 64);
        assert_eq!(r["hash"].as_str().unwrap().len(), 64);
        let prev = if i == 0 {
            "0".repeat(64)
        } else {
            recs[i - 1]["hash"].as_str().unwrap().to_string()
        };
        assert_eq!(r["prev"], prev.as_str());
    }
    let since = demo.json(&["audit", "export", "--json", "--since", "7"], 0);
    assert_eq!(
        since
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["seq"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [7, 8, 9, 10]
    );
    let web = demo.json(&["audit", "export", "--json", "--cert", "web-frontend"], 0);
    let web = web.as_array().unwrap();
    assert_eq!(web.len(), 2);
    assert!(web.iter().all(|r| r["cert"] == "web-frontend"));
    let none = demo.json(&["audit", "export", "--json", "--case", "1"], 0);
    assert!(none.as_array().unwrap().is_empty());

    let table = demo.expect(&["audit", "export"], 0);
    assert!(table.starts_with("SEQ"), "{table}");
    assert!(table.contains("state=resolved check=expiring"), "{table}");
    assert_eq!(table.lines().count(), 11, "{table}");
}

#[test]
fn verify_names_changed_removed_and_reordered_records() {
    let demo = demo_with_records();
    let out = intact(&demo);
    let head = out
        .trim()
        .strip_prefix("audit log intact: 10 records, head ")
        .unwrap_or_else(|| panic!("{out}"))
        .to_string();
    assert!(head.starts_with("10:"), "{head}");
    let report = demo.json(&["audit", "verify", "--json"], 0);
    assert_eq!(report["intact"], true);
    assert_eq!(report["length"], 10);
    assert_eq!(report["head"]["head"], head.as_str());
    let pristine = demo.raw();

    // Changed: record 4's message is rewritten, its stored hash kept.
    demo.tamper(|t| {
        let mut v: Value = serde_json::from_slice(&t.get(key(4)).unwrap().unwrap()).unwrap();
        v["data"]["message"] = "nothing to see here".into();
        t.insert(key(4), serde_json::to_vec(&v).unwrap()).unwrap();
    });
    damaged(&demo, &[], "record 4 was changed");
    let report = demo.json(&["audit", "verify", "--json"], 1);
    assert_eq!(report["intact"], false);
    assert_eq!(report["problems"].as_array().unwrap().len(), 1, "{report}");
    assert_eq!(report["problems"][0]["seq"], 4);
    assert_eq!(report["problems"][0]["kind"], "changed");
    demo.restore(&pristine);
    intact(&demo);

    // Removed: record 6.
    demo.tamper(|t| {
        t.remove(key(6)).unwrap();
    });
    damaged(&demo, &[], "record 6 is missing (removed)");
    demo.restore(&pristine);

    // Reordered: records 2 and 7 trade places.
    demo.tamper(|t| {
        let two = t.get(key(2)).unwrap().unwrap();
        let seven = t.get(key(7)).unwrap().unwrap();
        t.insert(key(2), seven).unwrap();
        t.insert(key(7), two).unwrap();
    });
    let out = damaged(&demo, &[], "records 2 and 7 are out of order");
    assert!(!out.contains("changed"), "a swap is not a change:\n{out}");
    demo.restore(&pristine);

    // Undecodable bytes are reported, not a crash.
    demo.tamper(|t| {
        t.insert(key(3), &b"\x00\x01 not a record"[..]).unwrap();
    });
    damaged(&demo, &[], "record 3 cannot be read");
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
    let demo = demo_with_records();
    // The head as the service log shows it while records are appended: the five
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
    assert_eq!(seq, "15", "{last}");
    let head = format!("{seq}:{hash}");
    let out = intact(&demo);
    assert!(out.contains(&format!("head {head}")), "{out}");
    demo.expect(&["audit", "verify", "--head", &head], 0);
    demo.expect(&["audit", "verify", "--head", &hash], 0);

    // The last two records are cut off: the rest is consistent by itself...
    demo.tamper(|t| {
        t.remove(key(15)).unwrap();
        t.remove(key(14)).unwrap();
    });
    let out = intact(&demo);
    assert!(out.contains("13 records, head 13:"), "{out}");
    // ... but not with the head noted before.
    damaged(
        &demo,
        &["--head", &head],
        "the chain ends at record 13 but head 15:",
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
    assert_eq!(report["problems"][0]["seq"], 14);

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
