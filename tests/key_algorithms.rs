//! Keys beyond RSA and EC, made by Python `cryptography`: DSA (PKCS#8, OpenSSL's
//! traditional form, public, a certificate), X25519, X448, ML-KEM-768 (the private key as
//! its seed) and ML-DSA-65. `analyze` reads every one, derives the public key of each private one, and
//! looks each up in a badkeys blocklist by the number badkeys hashes for it; badkeys, given
//! the same list, flags exactly the same files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::Home;
use serde_json::Value;

#[test]
fn every_algorithm_is_read_and_looked_up_as_badkeys_does() {
    let home = Home::new();
    let fx = home.path("keys");
    std::fs::create_dir_all(&fx).unwrap();
    common::python_fixture("key_algorithms.py", &fx);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&fx)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "pem"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 20);
    let name = |p: &Path| p.file_name().unwrap().to_string_lossy().into_owned();

    // badkeys, text output (its --json cannot print ML-DSA keys): "CHECK/LIST vulnerability,
    // TYPE, FILE" for each hit.
    let out = Command::new(common::venv().join("bin/badkeys"))
        .args(["-c", "blocklist,dsasparse"])
        .args(&files)
        .env("XDG_CACHE_HOME", fx.join("cache"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let theirs: BTreeSet<String> = text
        .lines()
        .filter(|l| l.starts_with("blocklist/"))
        .map(|l| name(Path::new(l.rsplit(", ").next().unwrap())))
        .collect();

    let v = home.json(
        &[
            "blocklist",
            "import",
            fx.join("blocklist.dat").to_str().unwrap(),
            "--json",
        ],
        0,
    );
    assert_eq!(v["list"]["records"], 5, "{v:#}");
    let args: Vec<&str> = ["analyze", "--json"]
        .into_iter()
        .chain(files.iter().map(|f| f.to_str().unwrap()))
        .collect();
    let out = home.run(&args);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let mut ours = BTreeSet::new();
    for f in report["files"].as_array().unwrap() {
        let file = name(Path::new(f["path"].as_str().unwrap()));
        assert!(f["error"].is_null(), "{file}: {}", f["error"]);
        let o = &f["objects"][0];
        let key = o["key"].as_str().unwrap();
        let want = match &file {
            n if n.contains("dsa.") || n.contains("dsa-") && !n.contains("mldsa") => "DSA-2048",
            n if n.contains("x25519") => "X25519",
            n if n.contains("x448") => "X448",
            n if n.contains("mlkem768") => "ML-KEM-768",
            _ => "ML-DSA-65",
        };
        assert_eq!(key, want, "{file}");
        if o["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["check"] == "blocklisted_key")
        {
            ours.insert(file);
        }
    }
    assert_eq!(ours, theirs, "analyze and badkeys disagree");
    assert_eq!(theirs.len(), 10, "{theirs:?}");
    assert!(
        theirs.iter().all(|f| f.starts_with("listed-")),
        "{theirs:?}"
    );
}
