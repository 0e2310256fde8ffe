//! End-to-end tests of `blocklist import/list/check/remove` and of the blocklists in `scan`
//! and `analyze`: the binary, a real sled database, keys and certificates from OpenSSL and
//! rcgen. The records for the inventory's keys are computed here independently of
//! certresponder's own identity code: from `openssl x509 -noout -modulus`, hashed with
//! SHA-256 (badkeys) or `sha1sum` (Debian).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::Home;
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use serde_json::Value;
use sha2::{Digest, Sha256};

fn run(program: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} must be installed (scripts/test installs it): {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A self-signed RSA-2048 leaf and its key from OpenSSL.
fn rsa_cert(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let key = dir.join(format!("{name}.key"));
    let cert = dir.join(format!("{name}.pem"));
    common::openssl_rsa_leaf(&cert, &key, &format!("{name}.example.test"), 2048, 30);
    (cert, key)
}

/// `Modulus=HEX\n` as openssl prints it for a certificate.
fn openssl_modulus_line(cert: &Path) -> String {
    String::from_utf8(run(
        "openssl",
        &["x509", "-noout", "-modulus", "-in", cert.to_str().unwrap()],
    ))
    .unwrap()
}

/// badkeys' BKHASH120 of a certificate's RSA key: SHA-256 of the modulus's minimal
/// big-endian bytes, first 15 bytes.
fn bkhash_of_cert(cert: &Path) -> [u8; 15] {
    let line = openssl_modulus_line(cert);
    let hex_n = line.trim().strip_prefix("Modulus=").unwrap();
    let padded = if hex_n.len() % 2 == 1 {
        format!("0{hex_n}")
    } else {
        hex_n.to_string()
    };
    let n = hex::decode(padded).unwrap();
    let start = n.iter().position(|&b| b != 0).unwrap();
    Sha256::digest(&n[start..])[..15].try_into().unwrap()
}

/// The Debian openssl-blacklist suffix of a certificate's RSA key, with `sha1sum`.
fn debian_suffix_of_cert(cert: &Path) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg("openssl x509 -noout -modulus -in \"$1\" | sha1sum")
        .arg("sh")
        .arg(cert)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let sha1 = text.split_whitespace().next().unwrap();
    assert_eq!(sha1.len(), 40);
    sha1[20..].to_string()
}

/// A badkeys `blocklist.dat`: `count` seeded random records plus `extra`, sorted.
fn badkeys_list(path: &Path, count: usize, extra: &[[u8; 16]]) {
    let mut rng = ChaCha8Rng::seed_from_u64(20080513);
    let mut records: Vec<[u8; 16]> = (0..count)
        .map(|_| {
            let mut r = [0u8; 16];
            rng.fill_bytes(&mut r);
            r
        })
        .collect();
    records.extend_from_slice(extra);
    records.sort_unstable();
    std::fs::write(path, records.concat()).unwrap();
}

fn register(home: &Home, name: &str, cert: &Path, key: &Path) {
    let inv = home.path(&format!("{name}.toml"));
    std::fs::write(&inv, common::entry(name, cert, key)).unwrap();
    home.json(&["inventory", "add", inv.to_str().unwrap(), "--json"], 0);
}

/// (certificate, check) of every open signal from `scan --json` for the blocklist checks.
fn blocklist_signals(scan: &Value) -> Vec<(String, String, Value)> {
    let mut out: Vec<(String, String, Value)> = ["new", "seen_again"]
        .iter()
        .flat_map(|k| scan[k].as_array().cloned().unwrap_or_default())
        .filter(|s| s["check"] == "blocklisted_key" || s["check"] == "debian_weak_key")
        .map(|s| {
            (
                s["subject"].as_str().unwrap().to_string(),
                s["check"].as_str().unwrap().to_string(),
                s.clone(),
            )
        })
        .collect();
    out.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    out
}

#[test]
fn a_badkeys_list_flags_exactly_the_listed_inventory_key() {
    let home = Home::new();
    let (listed, listed_key) = rsa_cert(&home.path(""), "listed");
    let (other, other_key) = rsa_cert(&home.path(""), "other");
    let (ec, ec_key) = home.make_cert("ec", "ec.example.test");
    register(&home, "listed", &listed, &listed_key);
    register(&home, "other", &other, &other_key);
    register(&home, "ec", &ec, &ec_key);
    let clean = home.json(&["scan", "--json"], 0);
    assert!(blocklist_signals(&clean).is_empty(), "{clean}");

    // 100,000 random records and the listed key's, from source 12 (`web`).
    let mut mine = [0u8; 16];
    mine[..15].copy_from_slice(&bkhash_of_cert(&listed));
    mine[15] = 12;
    let list = home.path("blocklist.dat");
    badkeys_list(&list, 100_000, &[mine]);
    let imported = home.json(
        &["blocklist", "import", list.to_str().unwrap(), "--json"],
        0,
    );
    assert_eq!(imported["list"]["name"], "blocklist");
    assert_eq!(imported["list"]["format"], "badkeys");
    assert_eq!(imported["detected"], true);
    assert_eq!(imported["list"]["records"], 100_001);
    let listed_lists = home.json(&["blocklist", "list", "--json"], 0);
    assert_eq!(listed_lists.as_array().unwrap().len(), 1);
    assert_eq!(
        listed_lists[0]["sha256"],
        hex::encode(Sha256::digest(std::fs::read(&list).unwrap()))
    );

    let scan = home.json(&["scan", "--json"], 3);
    let found = blocklist_signals(&scan);
    assert_eq!(found.len(), 1, "{found:?}");
    let (cert, check, signal) = &found[0];
    assert_eq!(
        (cert.as_str(), check.as_str()),
        ("listed", "blocklisted_key")
    );
    assert_eq!(signal["confidence"], "confirmed");
    assert_eq!(signal["revocation_reason"], "keyCompromise");
    assert_eq!(signal["deadline_hours"], 24);
    let message = signal["message"].as_str().unwrap();
    assert!(
        message.contains("`blocklist` (badkeys, source `web`, lookup "),
        "{message}"
    );
    assert_eq!(
        signal["evidence"]["lists"][0]["lookup"],
        hex::encode(&mine[..8])
    );

    // `blocklist check` on the certificate: exit 3, naming the list and the source.
    let out = home.run(&["blocklist", "check", listed.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("blocklisted_key"), "{text}");
    assert!(
        text.contains("`blocklist` (badkeys, source `web`"),
        "{text}"
    );
    assert!(
        text.contains(&format!("bkhash           {}", hex::encode(&mine[..15]))),
        "{text}"
    );
    // The private key names the same key; the other certificate is clean.
    let v = home.json(
        &["blocklist", "check", listed_key.to_str().unwrap(), "--json"],
        3,
    );
    assert_eq!(v["files"][0]["objects"][0]["type"], "private-key");
    assert_eq!(v["files"][0]["objects"][0]["hits"][0]["source"], "web");
    assert_eq!(v["files"][0]["objects"][0]["hits"][0]["source_id"], 12);
    let v = home.json(
        &["blocklist", "check", other.to_str().unwrap(), "--json"],
        0,
    );
    assert_eq!(v["summary"]["on_lists"], 0);
    assert_eq!(v["lists"][0], "blocklist");
    assert!(v["files"][0]["objects"][0]["ids"]["spki_sha256"].is_string());

    // `analyze` applies the lists too.
    let v = home.json(
        &[
            "analyze",
            listed.to_str().unwrap(),
            other.to_str().unwrap(),
            "--json",
        ],
        3,
    );
    let checks = |i: usize| -> Vec<String> {
        v["files"][i]["objects"][0]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["check"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(checks(0).contains(&"blocklisted_key".to_string()), "{v}");
    assert!(!checks(1).contains(&"blocklisted_key".to_string()), "{v}");

    // Removed: the signal resolves at the next scan.
    home.json(&["blocklist", "remove", "blocklist", "--json"], 0);
    let scan = home.json(&["scan", "--json"], 0);
    let resolved: Vec<&str> = scan["resolved"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["check"].as_str().unwrap())
        .collect();
    assert_eq!(resolved, ["blocklisted_key"], "{scan}");
    let out = home.run(&["blocklist", "remove", "blocklist"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no blocklist named `blocklist`"));
}

#[test]
fn debian_lists_flag_debian_weak_keys() {
    let home = Home::new();
    let (weak, weak_key) = rsa_cert(&home.path(""), "weak");
    let (fine, fine_key) = rsa_cert(&home.path(""), "fine");
    register(&home, "weak", &weak, &weak_key);
    register(&home, "fine", &fine, &fine_key);
    let list = home.path("blacklist.RSA-2048");
    std::fs::write(
        &list,
        format!(
            "# generated by the test\n00000000000000000000\n{}\nffffffffffffffffffff\n",
            debian_suffix_of_cert(&weak)
        ),
    )
    .unwrap();
    let out = home.run(&["blocklist", "import", list.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("imported `blacklist.rsa-2048` (debian, detected, 3 records)"),
        "{text}"
    );

    let scan = home.json(&["scan", "--json"], 3);
    let found = blocklist_signals(&scan);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        (found[0].0.as_str(), found[0].1.as_str()),
        ("weak", "debian_weak_key")
    );
    let message = found[0].2["message"].as_str().unwrap();
    assert!(
        message.contains("`blacklist.rsa-2048` (debian)"),
        "{message}"
    );

    let out = home.run(&[
        "blocklist",
        "check",
        weak.to_str().unwrap(),
        fine.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(3));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("debian_weak_key"), "{text}");
    assert!(
        text.contains("2 files, 2 keys, 1 on a blocklist; 1 list checked"),
        "{text}"
    );
}

#[test]
fn malformed_lists_are_rejected_with_the_file_and_line() {
    let home = Home::new();
    let bad = home.path("bad.txt");
    std::fs::write(
        &bad,
        "# header\n0123456789abcdef0123\n0123456789abcdef01234\n",
    )
    .unwrap();
    let out = home.run(&[
        "blocklist",
        "import",
        bad.to_str().unwrap(),
        "--format",
        "debian",
    ]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{}: line 3: expected 20 hex digits",
            bad.display()
        )),
        "{err}"
    );
    // Without --format: the mix cannot be told apart.
    std::fs::write(&bad, format!("0123456789abcdef0123\n{}\n", "ab".repeat(32))).unwrap();
    let out = home.run(&["blocklist", "import", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot tell the list's format"), "{err}");
    assert!(err.contains("give --format"), "{err}");
    // A badkeys list out of order names the record.
    let unsorted = home.path("unsorted.dat");
    let mut data = vec![0u8; 48];
    data[16] = 0xff;
    data[32] = 0x80;
    std::fs::write(&unsorted, &data).unwrap();
    let out = home.run(&["blocklist", "import", unsorted.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("record 2 (byte offset 32) sorts before record 1"),
        "{err}"
    );
    // Nothing was imported.
    let lists = home.json(&["blocklist", "list", "--json"], 0);
    assert_eq!(lists, serde_json::json!([]));
    // An unreadable file to check is exit 2, the others still checked.
    let out = home.run(&[
        "blocklist",
        "check",
        home.path("missing.pem").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
}

/// badkeys' verdicts (`check` names) on `files`, with the package found first on
/// `pythonpath` (a copy whose keydata holds extra primes).
fn badkeys_checks(pythonpath: &Path, files: &[PathBuf]) -> Vec<Vec<String>> {
    let out = Command::new(common::venv().join("bin/badkeys"))
        .args(["--json", "--all", "-c", "sharedprimes"])
        .args(files)
        .env("PYTHONPATH", pythonpath)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    text.lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["results"].as_object().unwrap().keys().cloned().collect()
        })
        .collect()
}

#[test]
fn known_bad_primes_are_imported_from_badkeys_keydata_and_agree_with_badkeys() {
    let home = Home::new();
    let fx = home.path("known-primes");
    std::fs::create_dir_all(&fx).unwrap();
    common::python_fixture("known_primes.py", &fx);
    let shares = fx.join("shares.pub.pem");
    let healthy = fx.join("healthy.pub.pem");

    // Every published prime file imports (its format told from its name and content), and
    // a healthy key stays clean against all of them.
    let mut names: Vec<String> = std::fs::read_dir(fx.join("keydata"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".dat"))
        .collect();
    names.sort();
    assert_eq!(names.len(), 5, "{names:?}");
    for n in &names {
        let file = fx.join("keydata").join(n);
        let v = home.json(
            &["blocklist", "import", file.to_str().unwrap(), "--json"],
            0,
        );
        assert_eq!(v["list"]["format"], "badkeys-primes", "{v:#}");
        assert!(v["list"]["key_bits"].as_u64().is_some(), "{v:#}");
    }
    let v = home.json(&["analyze", healthy.to_str().unwrap(), "--json"], 0);
    assert_eq!(
        v["files"][0]["objects"][0]["findings"],
        serde_json::json!([]),
        "{v:#}"
    );

    // The product with three primes of our own (which badkeys, given the same file, knows
    // too) replaces the published RSA-2048 list.
    let file = fx.join("primes2048.dat");
    let v = home.json(
        &["blocklist", "import", file.to_str().unwrap(), "--json"],
        0,
    );
    assert_eq!(v["replaced"], true, "{v:#}");
    let v = home.json(
        &[
            "analyze",
            shares.to_str().unwrap(),
            healthy.to_str().unwrap(),
            "--json",
            "--no-shared-primes",
        ],
        3,
    );
    let findings = &v["files"][0]["objects"][0]["findings"];
    let f = findings
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"] == "shared_prime")
        .unwrap_or_else(|| panic!("{v:#}"));
    assert_eq!(f["confidence"], "confirmed");
    assert_eq!(f["evidence"]["source"], "known_bad_primes");
    assert_eq!(f["evidence"]["factor_bits"], 1024);
    assert_eq!(
        v["files"][1]["objects"][0]["findings"],
        serde_json::json!([]),
        "{v:#}"
    );
    // badkeys, reading the same product, says the same.
    let bk = badkeys_checks(&fx, &[shares.clone(), healthy.clone()]);
    assert_eq!(bk, [vec!["sharedprimes".to_string()], vec![]]);
    // `blocklist check` says so too (exit 3 on a hit).
    let out = home.run(&["blocklist", "check", shares.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // A file that is not a gmpy2 number is refused, naming it.
    let bogus = home.path("primes1024.dat");
    std::fs::write(&bogus, [0x02, 0x01, 0x05]).unwrap();
    let out = home.run(&[
        "blocklist",
        "import",
        bogus.to_str().unwrap(),
        "--format",
        "badkeys-primes",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("primes1024.dat") && err.contains("not a gmpy2 integer"),
        "{err}"
    );
}
