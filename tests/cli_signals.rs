//! End-to-end tests of `analyze`, `scan` and `signals`: the binary on real files made by
//! OpenSSL and rcgen, and a real sled database.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::Home;
use serde_json::Value;

/// A self-signed RSA certificate and key from OpenSSL.
fn rsa_cert(dir: &Path, name: &str, bits: u32, days: u32) -> (PathBuf, PathBuf) {
    let key = dir.join(format!("{name}.key"));
    let cert = dir.join(format!("{name}.pem"));
    common::openssl_rsa_leaf(&cert, &key, &format!("{name}.example.test"), bits, days);
    (cert, key)
}

fn analyze(args: &[&str], status: i32) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_certresponder"))
        .arg("analyze")
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(status),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn checks(v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for f in v["files"].as_array().unwrap() {
        for o in f["objects"].as_array().unwrap() {
            for finding in o["findings"].as_array().unwrap() {
                out.push(finding["check"].as_str().unwrap().to_string());
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

#[test]
fn analyze_flags_weak_keys_and_rules_and_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = rsa_cert(dir.path(), "weak", 1024, 500);
    let v = analyze(&[cert.to_str().unwrap(), key.to_str().unwrap()], 3);
    let found = checks(&v);
    assert!(
        found.contains(&"rsa_modulus_small".to_string()),
        "{found:?}"
    );
    assert!(
        found.contains(&"validity_too_long".to_string()),
        "{found:?}"
    );
    assert!(
        !found.contains(&"shared_prime".to_string()),
        "a certificate and its own key are not a shared prime: {found:?}"
    );
    let f = &v["files"][0]["objects"][0]["findings"];
    let small = f
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["check"] == "rsa_modulus_small")
        .unwrap();
    assert_eq!(small["confidence"], "high");
    assert_eq!(small["deadline_hours"], 120);
    // Private trust skips the Baseline Requirements certificate rules.
    let v = analyze(&[cert.to_str().unwrap(), "--trust", "private"], 3);
    assert!(!checks(&v).contains(&"validity_too_long".to_string()));
}

#[test]
fn analyze_passes_healthy_keys_and_reports_unreadable_files() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = rsa_cert(dir.path(), "good", 2048, 90);
    let v = analyze(&[cert.to_str().unwrap(), key.to_str().unwrap()], 0);
    assert!(checks(&v).is_empty(), "{v}");
    let junk = dir.path().join("junk.pem");
    std::fs::write(
        &junk,
        "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let v = analyze(&[cert.to_str().unwrap(), junk.to_str().unwrap()], 2);
    assert!(
        v["files"][1]["error"]
            .as_str()
            .unwrap()
            .contains("bad base64"),
        "{v}"
    );
    assert_eq!(
        v["files"][1]["objects"][0]["findings"][0]["check"],
        "unparseable"
    );
}

#[test]
fn scan_deduplicates_suppresses_and_resolves() {
    let home = Home::new();
    let (cert, key) = rsa_cert(&home.path(""), "legacy", 1024, 30);
    let inv = home.path("legacy.toml");
    std::fs::write(&inv, common::entry("legacy", &cert, &key)).unwrap();
    home.json(&["inventory", "add", inv.to_str().unwrap(), "--json"], 0);

    let first = home.json(&["scan", "--json"], 3);
    let new: Vec<&str> = first["new"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["check"].as_str().unwrap())
        .collect();
    assert!(new.contains(&"rsa_modulus_small"), "{new:?}");
    let second = home.json(&["scan", "--json"], 3);
    assert_eq!(
        second["new"].as_array().unwrap().len(),
        0,
        "scanning twice raises nothing new"
    );
    assert_eq!(second["seen_again"].as_array().unwrap().len(), new.len());

    let list = home.json(&["signals", "--json"], 0);
    let small = list
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["check"] == "rsa_modulus_small")
        .unwrap();
    assert_eq!(small["times_seen"], 2);
    let id = small["id"].as_str().unwrap().to_string();
    let out = home.run(&[
        "signals",
        "suppress",
        &id[..8],
        "--until",
        "2099-01-01",
        "--reason",
        "lab device, replaced next quarter",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list = home.json(&["signals", "--json"], 0);
    let small = list
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["check"] == "rsa_modulus_small")
        .unwrap();
    assert_eq!(small["state"]["state"], "suppressed");
    assert!(
        small["state"]["by"].as_str().unwrap().contains("uid"),
        "recorded with who: {small}"
    );
    let bad = home.run(&[
        "signals",
        "suppress",
        &id,
        "--until",
        "2001-01-01",
        "--reason",
        "x",
    ]);
    assert_eq!(bad.status.code(), Some(2));

    // The certificate is replaced with a healthy one: its signals resolve.
    let (good_cert, good_key) = rsa_cert(&home.path(""), "fresh", 2048, 30);
    std::fs::copy(&good_cert, &cert).unwrap();
    std::fs::copy(&good_key, &key).unwrap();
    let third = home.json(&["scan", "--json"], 0);
    assert!(!third["resolved"].as_array().unwrap().is_empty(), "{third}");
    assert_eq!(third["open"], 0);
}

#[test]
fn expiring_threshold_from_the_entry_or_the_config() {
    let home = Home::new();
    // Ten days of a ten-day lifetime left: not in its last third.
    let (cert, key) = rsa_cert(&home.path(""), "short", 2048, 10);
    let inv = home.path("short.toml");
    std::fs::write(&inv, common::entry("short", &cert, &key)).unwrap();
    home.json(&["inventory", "add", inv.to_str().unwrap(), "--json"], 0);
    let scan = home.json(&["scan", "--json"], 0);
    assert_eq!(scan["open"], 0, "{scan}");

    // The configuration says: anything within 30 days of its end is expiring.
    let cfg = std::fs::read_to_string(home.config()).unwrap();
    std::fs::write(
        home.config(),
        cfg.replace("[[issuer]]", "[checks]\nexpiring = \"30d\"\n\n[[issuer]]"),
    )
    .unwrap();
    let scan = home.json(&["scan", "--json"], 3);
    assert_eq!(scan["new"][0]["check"], "expiring", "{scan}");

    // The entry's own threshold wins over the configuration's.
    let entry = common::entry("short", &cert, &key) + "";
    let entry = entry.replacen("[[cert]]\n", "[[cert]]\nexpiring = \"1d\"\n", 1);
    std::fs::write(home.path("inventory/short.toml"), entry).unwrap();
    let scan = home.json(&["scan", "--json"], 0);
    assert_eq!(scan["resolved"][0]["check"], "expiring", "{scan}");

    // A bad threshold names the field.
    std::fs::write(
        home.config(),
        cfg.replace("[[issuer]]", "[checks]\nexpiring = \"soon\"\n\n[[issuer]]"),
    )
    .unwrap();
    let out = home.run(&["scan"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("checks.expiring"));
}

#[test]
fn analyze_checks_a_key_against_the_scanned_inventory() {
    let home = Home::new();
    let (cert, key) = rsa_cert(&home.path(""), "inv", 2048, 30);
    let inv = home.path("inv.toml");
    std::fs::write(&inv, common::entry("inv", &cert, &key)).unwrap();
    home.json(&["inventory", "add", inv.to_str().unwrap(), "--json"], 0);
    home.json(&["scan", "--json"], 0);
    // The same key, met again elsewhere: analyze names the certificate that already uses it.
    let out = home.run(&[
        "analyze",
        key.to_str().unwrap(),
        "--against-inventory",
        "--json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let f = &v["files"][0]["objects"][0]["findings"][0];
    assert_eq!(f["check"], "shared_prime");
    assert_eq!(f["evidence"]["shared_with"], serde_json::json!(["inv"]));
    // A fresh key shares nothing with it.
    let (_, other) = rsa_cert(&home.path(""), "other", 2048, 30);
    let out = home.run(&[
        "analyze",
        other.to_str().unwrap(),
        "--against-inventory",
        "--json",
    ]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["files"][0]["objects"][0]["findings"],
        serde_json::json!([])
    );
}
