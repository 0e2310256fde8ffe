//! End-to-end tests of `ingest`: secret scanners' reports read by the binary, their private
//! keys matched to a real inventory (keys made by OpenSSL and rcgen) in a real sled database.
//! detect-secrets runs for real, from a venv (`CERTRESPONDER_TEST_VENV`, as scripts/test
//! prepares it, or one made here); gitleaks and trufflehog reports are written as those tools
//! write them.
//!
//! Every command's output, and the database, is checked for the keys' text: a report's
//! secrets are reduced to public keys and never kept.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::Home;
use serde_json::{Value, json};

fn openssl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl must be installed (scripts/test installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn private(path: &Path) {
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
}

/// A home with two inventory certificates: `web` (RSA-2048, OpenSSL) and `api` (ECDSA,
/// rcgen), and a key that is no inventory certificate's (`other`, OpenSSL, SEC1).
struct Fixture {
    home: Home,
    /// `web`'s key, PKCS#8 as OpenSSL wrote it.
    web_pem: String,
    /// The same key as PKCS#1 (`BEGIN RSA PRIVATE KEY`).
    web_pkcs1: String,
    /// The unrelated key.
    other_pem: String,
    /// The unrelated key, DER.
    other_der: Vec<u8>,
}

impl Fixture {
    fn new() -> Self {
        let home = Home::new();
        let dir = home.path("certs/web");
        std::fs::create_dir_all(&dir).unwrap();
        let cert = dir.join("cert.pem");
        let key = dir.join("key.pem");
        common::openssl_rsa_leaf(&cert, &key, "web.example.test", 2048, 90);
        let (api_cert, api_key) = home.make_cert("api", "api.example.test");
        let inv = home.path("inventory/services.toml");
        std::fs::write(
            &inv,
            format!(
                "{}{}",
                common::entry("web", &cert, &key),
                common::entry("api", &api_cert, &api_key)
            ),
        )
        .unwrap();
        let web_pem = std::fs::read_to_string(&key).unwrap();
        let web_pkcs1 = String::from_utf8(openssl(&[
            "pkey",
            "-in",
            key.to_str().unwrap(),
            "-traditional",
        ]))
        .unwrap();
        assert!(web_pkcs1.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
        let other = home.path("other.key");
        openssl(&[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            other.to_str().unwrap(),
        ]);
        private(&other);
        let other_pem = std::fs::read_to_string(&other).unwrap();
        let other_der = openssl(&["pkey", "-in", other.to_str().unwrap(), "-outform", "DER"]);
        let fx = Self {
            home,
            web_pem,
            web_pkcs1,
            other_pem,
            other_der,
        };
        let listed = fx.json(&["inventory", "list", "--json"], 0);
        assert_eq!(
            listed["certificates"].as_array().unwrap().len(),
            2,
            "{listed}"
        );
        fx
    }

    /// The base64 lines of every key: none may appear in any output.
    fn secret_lines(&self) -> Vec<String> {
        [&self.web_pem, &self.web_pkcs1, &self.other_pem]
            .iter()
            .flat_map(|pem| pem.lines())
            .filter(|l| !l.starts_with("-----") && l.len() >= 16)
            .map(str::to_string)
            .collect()
    }

    fn assert_clean(&self, what: &str, text: &str) {
        for l in self.secret_lines() {
            assert!(!text.contains(&l), "{what} shows private key text");
        }
    }

    /// Runs the binary; checks its outputs hold no key.
    fn run(&self, args: &[&str]) -> Output {
        let out = self.home.run(args);
        self.assert_clean(&format!("{args:?}"), &String::from_utf8_lossy(&out.stdout));
        self.assert_clean(&format!("{args:?}"), &String::from_utf8_lossy(&out.stderr));
        out
    }

    fn json(&self, args: &[&str], status: i32) -> Value {
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

    /// Runs and returns (status, stderr).
    fn fails(&self, args: &[&str]) -> (Option<i32>, String) {
        let out = self.run(args);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn signals(&self) -> Vec<Value> {
        self.json(&["signals", "--json"], 0)
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["check"] == "key_exposed")
            .cloned()
            .collect()
    }

    /// Every other output that could carry evidence, and the database files, hold no key
    /// text; the database (which keeps the inventory's own bundles) holds nothing of the
    /// unrelated key.
    fn assert_no_secrets_kept(&self) {
        let _ = self.json(&["signals", "--all", "--json"], 0);
        let _ = self.json(&["respond", "--dry-run", "--json"], 0);
        let _ = self.json(&["audit", "export", "--json"], 0);
        let text: String = self
            .other_pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        let mut files = vec![self.home.path("state")];
        let mut checked = 0;
        while let Some(p) = files.pop() {
            if p.is_dir() {
                files.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
                continue;
            }
            checked += 1;
            let bytes = std::fs::read(&p).unwrap();
            for w in self.other_der.windows(24).step_by(12) {
                assert!(
                    !bytes.windows(w.len()).any(|b| b == w),
                    "{} holds the unrelated key",
                    p.display()
                );
            }
            for l in text.as_bytes().chunks(32).filter(|c| c.len() == 32) {
                assert!(
                    !bytes.windows(l.len()).any(|b| b == l),
                    "{} holds the unrelated key's text",
                    p.display()
                );
            }
        }
        assert!(checked > 0, "no database files under state/");
    }
}

fn locations(v: &Value) -> Vec<Value> {
    v["locations"].as_array().unwrap().clone()
}

// ---------------------------------------------------------------------------------------
// gitleaks

const COMMIT: &str = "9f2c4b1e7d3a5c8e0b6f1a2d4c7e9b0a3f5d8c1e";
const COMMIT2: &str = "0b6f1a2d4c7e9b0a3f5d8c1e9f2c4b1e7d3a5c8e";

/// A gitleaks v8 finding, every field as `report/finding.go` writes it.
fn gitleaks_finding(rule: &str, file: &str, line: u64, secret: &str, commit: &str) -> Value {
    let git = !commit.is_empty();
    json!({
        "RuleID": rule,
        "Description": "Identified a Private Key, which may compromise cryptographic security and sensitive data encryption.",
        "StartLine": line,
        "EndLine": line + secret.matches('\n').count() as u64,
        "StartColumn": 1,
        "EndColumn": 30,
        "Match": secret,
        "Secret": secret,
        "File": file,
        "SymlinkFile": "",
        "Commit": commit,
        "Entropy": 6.026062,
        "Author": if git { "Alice Example" } else { "" },
        "Email": if git { "alice@example.com" } else { "" },
        "Date": if git { "2026-03-14T09:26:53Z" } else { "" },
        "Message": if git { "add deploy key" } else { "" },
        "Tags": [],
        "Fingerprint": if git { format!("{commit}:{file}:{rule}:{line}") } else { format!("{file}:{rule}:{line}") },
    })
}

/// gitleaks' JSON: `json.Encoder` with a one-space indent and a final newline.
fn gitleaks_json(findings: &[Value]) -> String {
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b" ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    serde::Serialize::serialize(&findings, &mut ser).unwrap();
    out.push(b'\n');
    String::from_utf8(out).unwrap()
}

#[test]
fn gitleaks_report_exposes_an_inventory_key_with_commit_and_line() {
    let fx = Fixture::new();
    let pkcs1 = fx.web_pkcs1.trim_end_matches('\n');
    // The same key as a JSON string further on: gitleaks' match keeps the `\n` escapes.
    let escaped = fx.web_pem.trim_end_matches('\n').replace('\n', "\\n");
    let findings = vec![
        gitleaks_finding("private-key", "deploy/web.key", 1, pkcs1, COMMIT),
        gitleaks_finding(
            "generic-api-key",
            "src/settings.py",
            3,
            "4f9a8c7e6d5b4a3f2e1d0c9b8a7f6e5d",
            COMMIT,
        ),
        gitleaks_finding("private-key", "deploy/old.key", 1, "REDACTED", COMMIT),
        gitleaks_finding("private-key", "config/app.json", 7, &escaped, COMMIT2),
        gitleaks_finding(
            "private-key",
            "scratch/other.key",
            1,
            fx.other_pem.trim_end_matches('\n'),
            "",
        ),
    ];
    let report = fx.home.path("gitleaks.json");
    std::fs::write(&report, gitleaks_json(&findings)).unwrap();

    let got = fx.json(
        &["ingest", "gitleaks", report.to_str().unwrap(), "--json"],
        3,
    );
    assert_eq!(got["scanner"], "gitleaks");
    assert_eq!(got["findings"], 5);
    assert_eq!(got["keys_read"], 3);
    assert_eq!(got["not_private_keys"], 1);
    let exposed = got["exposed"].as_array().unwrap();
    assert_eq!(exposed.len(), 1, "{got}");
    assert_eq!(exposed[0]["cert"], "web");
    let locs = locations(&exposed[0]);
    assert_eq!(locs.len(), 2, "{got}");
    let first = locs.iter().find(|l| l["path"] == "deploy/web.key").unwrap();
    assert_eq!(first["line"], 1);
    assert_eq!(first["commit"], COMMIT);
    assert_eq!(first["source"], "gitleaks");
    let json_file = locs
        .iter()
        .find(|l| l["path"] == "config/app.json")
        .unwrap();
    assert_eq!(json_file["line"], 7);
    assert_eq!(json_file["commit"], COMMIT2);
    let others = got["other_keys"].as_array().unwrap();
    assert_eq!(others.len(), 1, "{got}");
    assert_eq!(locations(&others[0])[0]["path"], "scratch/other.key");
    let unusable = got["unusable"].as_array().unwrap();
    assert_eq!(unusable.len(), 1, "{got}");
    assert_eq!(unusable[0]["finding"], 3);
    assert!(
        unusable[0]["reason"].as_str().unwrap().contains("--redact"),
        "{got}"
    );

    // The signal: confirmed, on `web`, with the places, first seen at the commit's date.
    let signals = fx.signals();
    assert_eq!(signals.len(), 1, "{signals:?}");
    let s = &signals[0];
    assert_eq!(s["subject"], "web");
    assert_eq!(s["confidence"], "confirmed");
    assert_eq!(s["id"], exposed[0]["signal"].as_str().unwrap()[..12]);
    assert_eq!(s["detected_at"], "2026-03-14T09:26:53Z");
    let ev = locations(&s["evidence"]);
    assert!(
        ev.iter()
            .any(|l| l["path"] == "deploy/web.key" && l["line"] == 1 && l["commit"] == COMMIT),
        "{s}"
    );

    // The human output names the certificate, the place and the signal.
    let out = fx.run(&["ingest", "gitleaks", report.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("web"), "{text}");
    assert!(
        text.contains("deploy/web.key:1 (commit 9f2c4b1e7d3a"),
        "{text}"
    );
    assert!(text.contains(&s["id"].as_str().unwrap()[..12]), "{text}");
    assert!(text.contains("seen again"), "{text}");
    assert!(text.contains("--redact"), "{text}");
    // Read twice, still one signal.
    assert_eq!(fx.signals().len(), 1);

    // The case the signal opens carries the places, not the key. (The test certificate is
    // self-signed, so the revocation step fails; the case is there either way.)
    let _ = fx.run(&["respond", "--json"]);
    let case = fx.json(&["cases", "show", "1", "--json"], 0);
    assert!(case.to_string().contains("deploy/web.key"), "{case}");
    let out = fx.run(&["cases", "show", "1"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("deploy/web.key"));
    fx.assert_no_secrets_kept();
}

#[test]
fn gitleaks_redacted_and_malformed_reports() {
    let fx = Fixture::new();
    // A report written with --redact: nothing to match, nothing exposed, not an error.
    let redacted = fx.home.path("redacted.json");
    let partly = format!("{}...", &fx.web_pkcs1[..40]);
    std::fs::write(
        &redacted,
        gitleaks_json(&[
            gitleaks_finding("private-key", "deploy/web.key", 1, "REDACTED", COMMIT),
            gitleaks_finding("private-key", "deploy/web2.key", 1, &partly, COMMIT),
        ]),
    )
    .unwrap();
    let got = fx.json(
        &["ingest", "gitleaks", redacted.to_str().unwrap(), "--json"],
        0,
    );
    assert_eq!(got["unusable"].as_array().unwrap().len(), 2, "{got}");
    assert_eq!(got["exposed"].as_array().unwrap().len(), 0);
    assert!(fx.signals().is_empty());

    // A wrong type: the line, the finding and the field are named, and nothing is stored.
    let mut bad = vec![
        gitleaks_finding("private-key", "deploy/web.key", 1, &fx.web_pem, COMMIT),
        gitleaks_finding("private-key", "deploy/other.key", 1, &fx.other_pem, COMMIT),
    ];
    bad[1]["Secret"] = json!(5);
    let text = gitleaks_json(&bad);
    let line = text
        .lines()
        .position(|l| l.contains("\"Secret\": 5"))
        .unwrap()
        + 1;
    let report = fx.home.path("report.json");
    std::fs::write(&report, &text).unwrap();
    let (status, err) = fx.fails(&["ingest", "gitleaks", report.to_str().unwrap()]);
    assert_eq!(status, Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "report.json: line {line}: finding 2: field \"Secret\": expected a string"
        )),
        "{err}"
    );
    assert!(fx.signals().is_empty(), "a malformed report stores nothing");

    // A missing field, and a syntax error.
    bad[1]["Secret"] = json!("x");
    bad[0].as_object_mut().unwrap().remove("File");
    std::fs::write(&report, gitleaks_json(&bad)).unwrap();
    let (status, err) = fx.fails(&["ingest", "gitleaks", report.to_str().unwrap()]);
    assert_eq!(status, Some(2), "{err}");
    assert!(err.contains("finding 1: field \"File\": missing"), "{err}");
    std::fs::write(&report, "[\n {\"RuleID\": \"private-key\",\n").unwrap();
    let (status, err) = fx.fails(&["ingest", "gitleaks", report.to_str().unwrap()]);
    assert_eq!(status, Some(2), "{err}");
    assert!(err.contains("report.json: line "), "{err}");
    // A missing report is an input error too.
    let (status, _) = fx.fails(&["ingest", "gitleaks", "/nonexistent/report.json"]);
    assert_eq!(status, Some(2));
}

// ---------------------------------------------------------------------------------------
// trufflehog

/// trufflehog's `Raw` for a private key: the block, one line each, ending in a newline.
fn normalized(pem: &str) -> String {
    pem.lines()
        .map(|l| format!("{}\n", l.trim()))
        .collect::<String>()
}

/// A trufflehog v3 `--json` result from a git scan.
fn trufflehog_git(raw: &str, file: &str, line: u64) -> Value {
    json!({
        "SourceMetadata": {"Data": {"Git": {
            "commit": COMMIT,
            "file": file,
            "email": "Alice Example <alice@example.com>",
            "repository": "https://git.example.test/ops/deploy.git",
            "timestamp": "2026-03-14 09:26:53 +0000",
            "line": line
        }}},
        "SourceID": 1,
        "SourceType": 16,
        "SourceName": "trufflehog - git",
        "DetectorType": 15,
        "DetectorName": "PrivateKey",
        "DetectorDescription": "Private keys are used for securely connecting and authenticating to various systems and services.",
        "DecoderName": "PLAIN",
        "Verified": false,
        "VerificationError": "verification failures: lookup crt.sh: no such host",
        "VerificationFromCache": false,
        "Raw": raw,
        "RawV2": "",
        "Redacted": raw.chars().take(64).collect::<String>(),
        "ExtraData": null,
        "StructuredData": null,
        "SecretParts": {"token": raw}
    })
}

#[test]
fn trufflehog_output_exposes_an_inventory_key_and_rejects_bad_lines() {
    let fx = Fixture::new();
    let web = trufflehog_git(&normalized(&fx.web_pkcs1), "deploy/web.key", 12);
    let mut other = trufflehog_git(&normalized(&fx.other_pem), "", 0);
    other["SourceMetadata"] =
        json!({"Data": {"Filesystem": {"file": "/srv/repo/scratch/other.key", "line": 1}}});
    other["SourceType"] = json!(15);
    other["SourceName"] = json!("trufflehog - filesystem");
    let mut token = trufflehog_git("ghp_0123456789abcdefghijklmnopqrstuvwxyzAB", "ci.yml", 4);
    token["DetectorType"] = json!(8);
    token["DetectorName"] = json!("Github");
    let lines = [web.to_string(), other.to_string(), token.to_string()];
    let report = fx.home.path("trufflehog.jsonl");
    std::fs::write(&report, format!("{}\n", lines.join("\n"))).unwrap();

    let got = fx.json(
        &["ingest", "trufflehog", report.to_str().unwrap(), "--json"],
        3,
    );
    assert_eq!(got["findings"], 3);
    assert_eq!(got["not_private_keys"], 1);
    let exposed = got["exposed"].as_array().unwrap();
    assert_eq!(exposed.len(), 1, "{got}");
    assert_eq!(exposed[0]["cert"], "web");
    let l = &locations(&exposed[0])[0];
    assert_eq!(l["path"], "deploy/web.key");
    assert_eq!(l["line"], 12);
    assert_eq!(l["commit"], COMMIT);
    assert_eq!(l["repository"], "https://git.example.test/ops/deploy.git");
    assert_eq!(l["source"], "trufflehog");
    let others = got["other_keys"].as_array().unwrap();
    assert_eq!(others.len(), 1);
    assert_eq!(
        locations(&others[0])[0]["path"],
        "/srv/repo/scratch/other.key"
    );

    let signals = fx.signals();
    assert_eq!(signals.len(), 1);
    assert_eq!(signals[0]["subject"], "web");
    let ev = locations(&signals[0]["evidence"]);
    assert!(
        ev.iter()
            .any(|l| l["line"] == 12 && l["commit"] == COMMIT && l["path"] == "deploy/web.key"),
        "{}",
        signals[0]
    );

    // Standard input works too (`trufflehog ... --json | certresponder ingest trufflehog -`).
    let mut child = Command::new(env!("CARGO_BIN_EXE_certresponder"))
        .arg("--config")
        .arg(fx.home.config())
        .args(["ingest", "trufflehog", "-", "--json"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        child.stdin.as_mut().unwrap(),
        std::fs::read(&report).unwrap().as_slice(),
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    fx.assert_clean("stdin ingest", &String::from_utf8_lossy(&out.stdout));

    // A truncated line: its number is named.
    let truncated = fx.home.path("truncated.jsonl");
    let cut = &lines[1][..lines[1].len() / 2];
    std::fs::write(&truncated, format!("{}\n{cut}\n", lines[0])).unwrap();
    let (status, err) = fx.fails(&["ingest", "trufflehog", truncated.to_str().unwrap()]);
    assert_eq!(status, Some(2), "{err}");
    assert!(err.contains("truncated.jsonl: line 2: "), "{err}");
    // A field of the wrong type.
    let mut bad = web.clone();
    bad["SourceMetadata"]["Data"]["Git"]["line"] = json!("12");
    std::fs::write(&truncated, format!("{}\n{bad}\n", lines[2])).unwrap();
    let (status, err) = fx.fails(&["ingest", "trufflehog", truncated.to_str().unwrap()]);
    assert_eq!(status, Some(2), "{err}");
    assert!(
        err.contains(
            "truncated.jsonl: line 2: field \"SourceMetadata.Data.Git.line\": expected a non-negative integer"
        ),
        "{err}"
    );
    fx.assert_no_secrets_kept();
}

// ---------------------------------------------------------------------------------------
// detect-secrets

/// The `detect-secrets` program: from the venv scripts/test prepares
/// (`CERTRESPONDER_TEST_VENV`, default `target/test-venv`) when it has it, else from a venv
/// made here, under `tmp`.
fn detect_secrets(tmp: &Path) -> PathBuf {
    let shared = std::env::var_os("CERTRESPONDER_TEST_VENV").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-venv"),
        PathBuf::from,
    );
    let prepared = shared.join("bin/detect-secrets");
    if prepared.is_file() {
        return prepared;
    }
    let venv = tmp.join("venv");
    let status = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .expect("python3 must be installed (scripts/test installs it)");
    assert!(status.success(), "python3 -m venv failed");
    let status = Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "detect-secrets"])
        .status()
        .unwrap();
    assert!(
        status.success(),
        "pip install detect-secrets failed; scripts/test installs it into CERTRESPONDER_TEST_VENV"
    );
    venv.join("bin/detect-secrets")
}

#[test]
fn detect_secrets_baseline_from_a_real_scan() {
    let fx = Fixture::new();
    let tree = fx.home.path("repo");
    std::fs::create_dir_all(tree.join("docs")).unwrap();
    std::fs::create_dir_all(tree.join("config")).unwrap();
    // The inventory key, indented in a Markdown file: its BEGIN line is line 5.
    let indented: String = fx.web_pem.lines().map(|l| format!("    {l}\n")).collect();
    std::fs::write(
        tree.join("docs/setup.md"),
        format!("# Deploying web\n\nPut this key in place:\n\n{indented}\nThen reload nginx.\n"),
    )
    .unwrap();
    // An unrelated key in a YAML file, BEGIN on line 3 (detect-secrets flags the YAML key,
    // line 2).
    let yaml_key: String = fx.other_pem.lines().map(|l| format!("    {l}\n")).collect();
    std::fs::write(
        tree.join("config/app.yaml"),
        format!("tls:\n  key: |\n{yaml_key}  password: \"Tr0ub4dor&3-horse-battery\"\n"),
    )
    .unwrap();

    let ds = detect_secrets(fx.home.dir.path());
    let out = Command::new(&ds)
        .args(["scan", "--all-files"])
        .current_dir(&tree)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "detect-secrets scan: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let baseline_path = tree.join(".secrets.baseline");
    std::fs::write(&baseline_path, &out.stdout).unwrap();
    let baseline: Value = serde_json::from_slice(&out.stdout).unwrap();
    // What detect-secrets itself says: the flagged lines, and only hashes.
    let md = baseline["results"]["docs/setup.md"].as_array().unwrap();
    let md_key = md.iter().find(|s| s["type"] == "Private Key").unwrap();
    assert_eq!(md_key["line_number"], 5, "{baseline}");
    let yaml = baseline["results"]["config/app.yaml"].as_array().unwrap();
    assert!(
        yaml.iter()
            .any(|s| s["type"] == "Private Key" && s["line_number"] == 2),
        "{baseline}"
    );
    let total: usize = baseline["results"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_array().unwrap().len())
        .sum();
    let not_keys = baseline["results"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|v| v.as_array().unwrap())
        .filter(|s| s["type"] != "Private Key")
        .count();

    let got = fx.json(
        &[
            "ingest",
            "detect-secrets",
            baseline_path.to_str().unwrap(),
            "--json",
        ],
        3,
    );
    assert_eq!(got["findings"], total, "{got}");
    assert_eq!(got["not_private_keys"], not_keys, "{got}");
    let exposed = got["exposed"].as_array().unwrap();
    assert_eq!(exposed.len(), 1, "{got}");
    assert_eq!(exposed[0]["cert"], "web");
    let l = &locations(&exposed[0])[0];
    assert_eq!(l["path"], "docs/setup.md");
    assert_eq!(l["line"], 5);
    assert_eq!(l["source"], "detect-secrets");
    let others = got["other_keys"].as_array().unwrap();
    assert_eq!(others.len(), 1, "{got}");
    let ol = &locations(&others[0])[0];
    assert_eq!(
        (ol["path"].as_str(), ol["line"].as_u64()),
        (Some("config/app.yaml"), Some(3))
    );
    assert!(got["unusable"].as_array().unwrap().is_empty(), "{got}");

    let signals = fx.signals();
    assert_eq!(signals.len(), 1, "{signals:?}");
    assert_eq!(signals[0]["subject"], "web");
    let ev = locations(&signals[0]["evidence"]);
    assert!(
        ev.iter()
            .any(|l| l["path"] == "docs/setup.md" && l["line"] == 5),
        "{}",
        signals[0]
    );

    // The baseline kept elsewhere, read against the tree with --root; a flagged file that
    // is gone is reported for its finding, and the rest is still read.
    let elsewhere = fx.home.path("baseline.json");
    std::fs::copy(&baseline_path, &elsewhere).unwrap();
    std::fs::remove_file(tree.join("config/app.yaml")).unwrap();
    let got = fx.json(
        &[
            "ingest",
            "detect-secrets",
            elsewhere.to_str().unwrap(),
            "--root",
            tree.to_str().unwrap(),
            "--json",
        ],
        3,
    );
    assert_eq!(got["exposed"][0]["cert"], "web", "{got}");
    let unusable = got["unusable"].as_array().unwrap();
    assert_eq!(unusable.len(), 1, "{got}");
    assert_eq!(unusable[0]["location"]["path"], "config/app.yaml");
    assert_eq!(unusable[0]["reason"], "the file is gone");

    // The key moved down a line: the finding is reported as changed, the key still read.
    std::fs::write(
        tree.join("docs/setup.md"),
        format!("# Deploying web\n\n\nPut this key in place:\n\n{indented}"),
    )
    .unwrap();
    let got = fx.json(
        &[
            "ingest",
            "detect-secrets",
            baseline_path.to_str().unwrap(),
            "--json",
        ],
        3,
    );
    let reasons: Vec<&str> = got["unusable"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["reason"].as_str().unwrap())
        .collect();
    assert!(reasons.iter().any(|r| r.contains("changed")), "{got}");
    assert_eq!(locations(&got["exposed"][0])[0]["line"], 6, "{got}");
    // Without the flagged files at all, nothing is exposed.
    let got = fx.json(
        &[
            "ingest",
            "detect-secrets",
            elsewhere.to_str().unwrap(),
            "--json",
        ],
        0,
    );
    assert_eq!(got["exposed"].as_array().unwrap().len(), 0, "{got}");

    // A malformed baseline names the line and the field.
    let mut bad = baseline.clone();
    bad["results"]["docs/setup.md"][0]["line_number"] = json!("5");
    let text = serde_json::to_string_pretty(&bad).unwrap();
    let line = text
        .lines()
        .position(|l| l.contains("\"line_number\": \"5\""))
        .unwrap()
        + 1;
    std::fs::write(&elsewhere, text).unwrap();
    let (status, err) = fx.fails(&["ingest", "detect-secrets", elsewhere.to_str().unwrap()]);
    assert_eq!(status, Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "baseline.json: line {line}: field \"results\": file \"docs/setup.md\": secret 1: field \"line_number\": expected a non-negative integer"
        )),
        "{err}"
    );
    fx.assert_no_secrets_kept();
}
