//! Which rules apply to which certificates, on certificates made by Python's `cryptography`
//! (`tests/fixtures/rule_certs.py`) and judged by `certresponder analyze`: the TLS Baseline
//! Requirements only on TLS server certificates, the S/MIME and Code Signing BRs' own validity
//! limits on theirs, Chrome's serverAuth-only rule for public TLS leaves from 2027-03-15, and
//! the BR-only key rules as warnings for a private PKI.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// Writes the fixtures into a temporary directory.
fn fixtures() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    common::python_fixture("rule_certs.py", dir.path());
    dir
}

/// `analyze --json` of every fixture under `trust`: file stem -> [(check, confidence, message)].
fn analyze(dir: &Path, trust: &str) -> BTreeMap<String, Vec<(String, String, String)>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let out = Command::new(env!("CARGO_BIN_EXE_certresponder"))
        .args(["analyze", "--json", "--no-shared-primes", "--trust", trust])
        .args(&files)
        .env_remove("CERTRESPONDER_CONFIG")
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", common::text(&out)));
    let mut by_file = BTreeMap::new();
    for file in v["files"].as_array().unwrap() {
        let path = PathBuf::from(file["path"].as_str().unwrap());
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        let findings = file["objects"][0]["findings"]
            .as_array()
            .unwrap_or_else(|| panic!("{file:#}"))
            .iter()
            .filter(|f| f["check"] != "expired" && f["check"] != "expiring")
            .map(|f| {
                (
                    f["check"].as_str().unwrap().to_string(),
                    f["confidence"].as_str().unwrap().to_string(),
                    f["message"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        by_file.insert(stem, findings);
    }
    by_file
}

fn checks(f: &[(String, String, String)]) -> Vec<(&str, &str)> {
    f.iter()
        .map(|(c, conf, _)| (c.as_str(), conf.as_str()))
        .collect()
}

#[test]
fn each_certificate_is_held_to_its_own_rules() {
    let dir = fixtures();
    let public = analyze(dir.path(), "public");
    assert_eq!(public.len(), 10, "{public:#?}");
    // Healthy certificates of each kind: nothing.
    for clean in [
        "smime_700",
        "code_1000_2025",
        "tls_server_2027",
        "client_only",
    ] {
        assert!(public[clean].is_empty(), "{clean}: {:#?}", public[clean]);
    }
    // Too long under their own rule sets, which the findings name.
    let smime = &public["smime_900"];
    assert_eq!(checks(smime), [("validity_too_long", "high")], "{smime:#?}");
    assert!(
        smime[0].2.contains("S/MIME Baseline Requirements"),
        "{smime:#?}"
    );
    let code = &public["code_1000_2026"];
    assert_eq!(checks(code), [("validity_too_long", "high")], "{code:#?}");
    assert!(
        code[0].2.contains("Code Signing Baseline Requirements"),
        "{code:#?}"
    );
    assert!(code[0].2.contains("460"), "{code:#?}");
    let tls = &public["tls_300_2026"];
    assert_eq!(checks(tls), [("validity_too_long", "high")], "{tls:#?}");
    assert!(tls[0].2.contains("200 days"), "{tls:#?}");
    // clientAuth on a public TLS leaf: forbidden from 2027-03-15, a warning before.
    assert_eq!(
        checks(&public["tls_client_2027"]),
        [("public_client_auth", "high")]
    );
    assert_eq!(
        checks(&public["tls_client_2026"]),
        [("public_client_auth", "low")]
    );
    assert!(public["tls_client_2026"][0].2.contains("2027-03-15"));
    // A brainpool key breaks the BRs for a public certificate ...
    assert_eq!(
        checks(&public["brainpool"]),
        [("ec_curve_disallowed", "high")]
    );
    // ... and is only a warning for a private PKI, which the BRs do not bind.
    let private = analyze(dir.path(), "private");
    assert_eq!(
        checks(&private["brainpool"]),
        [("ec_curve_disallowed", "low")]
    );
    assert!(private["code_1000_2026"].is_empty());
}

#[test]
fn a_distrust_by_a_common_name_two_cas_share_is_refused() {
    let home = common::Home::new();
    // Two certificates from two different CAs that are both called "Test CA".
    let mut inventory = String::new();
    for name in ["alpha", "beta"] {
        let (cert, key) = home.make_cert(name, &format!("{name}.example.test"));
        inventory.push_str(&common::entry(name, &cert, &key));
    }
    std::fs::write(home.path("inventory/all.toml"), inventory).unwrap();
    let out = home.run(&["distrust", "Test CA", "--dry-run", "--json"]);
    assert_eq!(out.status.code(), Some(2), "{}", common::text(&out));
    let text = common::text(&out);
    assert!(
        text.contains("common name of 2 CAs") && text.contains("spki:"),
        "{text}"
    );
    // By its key it names one CA.
    let pem = std::fs::read_to_string(home.path("certs/alpha/cert.pem")).unwrap();
    let ca = certresponder_inventory::inspect::inspect_certificates(pem.as_bytes())
        .unwrap()
        .remove(1);
    let spki = format!("spki:{}", ca.fingerprints.spki_sha256);
    let v = home.json(&["distrust", &spki, "--dry-run", "--json"], 0);
    assert_eq!(v["affected"].as_array().map(Vec::len), Some(1), "{v:#}");
}
