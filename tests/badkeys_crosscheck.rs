//! Cross-check against badkeys, the reference tool for weak keys: the same files, made by
//! `tests/fixtures/weak_keys.py` (seeded weak keys of every kind badkeys detects, plus healthy
//! controls), go through `badkeys --json` (every check but the blocklist, which cannot be
//! downloaded here) and `certresponder analyze --json`, and
//! - every key badkeys flags is flagged by analyze with the matching check id, and every
//!   analyze finding on a check both tools implement is one badkeys reports too (the
//!   exceptions are listed in [`allowed_ours_only`]);
//! - each planted weakness is found: by analyze always, by badkeys where it has the check;
//! - the healthy controls are clean in both.
//!
//! badkeys runs from the venv named by `CERTRESPONDER_TEST_VENV` (default `target/test-venv`),
//! which `scripts/test` creates; without it this test fails, it never skips. `analyze
//! --no-shared-primes` is run too: the same findings without `shared_prime`.
//!
//! Check names, badkeys → certresponder:
//!
//! | badkeys | certresponder |
//! |---|---|
//! | `fermat` | `fermat` |
//! | `roca` | `roca` |
//! | `smallfactors` | `rsa_small_factor`; `rsa_invalid` (`modulus_even`) when the factor is 2 |
//! | `smalld` | `rsa_small_d` |
//! | `rsainvalid` | `rsa_invalid` or `rsa_exponent_bad` |
//! | `rsapoly` (`nautilus`, `completeftp`, untyped) | `rsa_invalid` with the same `variant` (untyped: `pattern: low_density`) |
//! | `rsawarnings` `extremely_small`, `too_small` | `rsa_modulus_small` |
//! | `rsawarnings` `not_multiple_of_8` | `rsa_modulus_not_multiple_of_8` |
//! | `rsawarnings` `exponent_3`, `exponent_not_65537` | `rsa_exponent_bad` |
//! | `sharedprimes` | `shared_prime` |
//! | `rsabias` (`vanity`, untyped) | `rsa_bias` with the same `subtest` |
//! | `pattern` | `rsa_pattern` |
//! | `xzbackdoor` | `xz_backdoor` |
//! | `dsasparse` | `dsa_sparse` |
//! | `rsawarnings` `unusual_keysize` | none: not implemented, reported but not compared |
//!
//! badkeys' `sharedprimes` looks moduli up in its own list of primes known to be shared; our
//! `shared_prime` is a batch GCD across the files given to one `analyze` call. The two find
//! different things, so a planted pair is found by analyze only.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// Every badkeys check but `blocklist` (its data is a download).
const BADKEYS_CHECKS: &str = "fermat,roca,rsainvalid,rsapoly,sharedprimes,smalld,smallfactors,\
                              dsasparse,rsawarnings,rsabias,pattern,xzbackdoor";

/// Checks that both tools implement: our ids that a badkeys result maps to.
const COMMON: &[&str] = &[
    "fermat",
    "roca",
    "rsa_small_factor",
    "rsa_small_d",
    "rsa_invalid",
    "rsa_modulus_small",
    "rsa_modulus_not_multiple_of_8",
    "rsa_exponent_bad",
    "shared_prime",
    "rsa_bias",
    "rsa_pattern",
    "xz_backdoor",
    "dsa_sparse",
];

fn venv() -> PathBuf {
    let dir = std::env::var_os("CERTRESPONDER_TEST_VENV").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-venv"),
        PathBuf::from,
    );
    let badkeys = dir.join("bin/badkeys");
    assert!(
        badkeys.is_file() && dir.join("bin/python").is_file(),
        "badkeys is not installed in {} (CERTRESPONDER_TEST_VENV): run scripts/test, which \
         installs badkeys in a venv",
        dir.display()
    );
    dir
}

/// One badkeys result: check and subtest.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct BadkeysResult {
    check: String,
    subtest: Option<String>,
}

/// badkeys' verdict on one file.
#[derive(Debug)]
struct BadkeysVerdict {
    kind: String,
    results: Vec<BadkeysResult>,
    /// The modulus is even (decides how `smallfactors` maps).
    even_modulus: bool,
}

/// One analyze finding: check id and, for `rsa_invalid`, the evidence that names the case.
#[derive(Debug, Clone)]
struct Ours {
    check: String,
    confidence: String,
    evidence: Value,
}

/// What our finding must be for a badkeys result; `None` for checks we do not implement.
fn expected_for(
    r: &BadkeysResult,
    v: &BadkeysVerdict,
) -> Option<Vec<(&'static str, Option<Value>)>> {
    let sub = r.subtest.as_deref();
    let one = |id: &'static str| Some(vec![(id, None)]);
    match r.check.as_str() {
        "fermat" => one("fermat"),
        "roca" => one("roca"),
        "smallfactors" if v.even_modulus => Some(vec![(
            "rsa_invalid",
            Some(serde_json::json!({"reason": "modulus_even"})),
        )]),
        "smallfactors" => one("rsa_small_factor"),
        "smalld" => one("rsa_small_d"),
        "rsainvalid" => Some(vec![("rsa_invalid", None), ("rsa_exponent_bad", None)]),
        "rsapoly" => Some(vec![(
            "rsa_invalid",
            Some(match sub {
                Some(variant) => serde_json::json!({"pattern": "zero_chunks", "variant": variant}),
                None => serde_json::json!({"pattern": "low_density"}),
            }),
        )]),
        "sharedprimes" => one("shared_prime"),
        "rsabias" => Some(vec![(
            "rsa_bias",
            Some(serde_json::json!({"subtest": sub})),
        )]),
        "pattern" => one("rsa_pattern"),
        "xzbackdoor" => one("xz_backdoor"),
        "dsasparse" => one("dsa_sparse"),
        "rsawarnings" => match sub {
            Some("extremely_small" | "too_small") => one("rsa_modulus_small"),
            Some("not_multiple_of_8") => one("rsa_modulus_not_multiple_of_8"),
            Some("exponent_3" | "exponent_not_65537") => one("rsa_exponent_bad"),
            _ => None,
        },
        _ => None,
    }
}

/// `evidence` holds every field of `want`.
fn evidence_matches(evidence: &Value, want: &Value) -> bool {
    want.as_object()
        .unwrap()
        .iter()
        .all(|(k, v)| evidence.get(k) == Some(v))
}

/// Our findings on a check both implement that badkeys need not report:
/// - `shared_prime`: badkeys' `sharedprimes` only knows its own list (see the module doc);
/// - a size or exponent rule when badkeys reported another `rsawarnings` subtest: badkeys
///   reports only the most severe of them ("badkeys currently cannot represent this").
fn allowed_ours_only(check: &str, evidence: &Value, badkeys: &BadkeysVerdict) -> bool {
    match check {
        "shared_prime" => true,
        // badkeys does not test whether the modulus is prime.
        "rsa_invalid" => evidence["reason"] == "modulus_prime",
        "rsa_modulus_small" | "rsa_modulus_not_multiple_of_8" | "rsa_exponent_bad" => {
            badkeys.results.iter().any(|r| r.check == "rsawarnings")
        }
        _ => false,
    }
}

fn run_badkeys(venv: &Path, files: &[PathBuf]) -> BTreeMap<String, BadkeysVerdict> {
    let out = Command::new(venv.join("bin/badkeys"))
        .args(["--json", "--all", "--checks", BADKEYS_CHECKS])
        .args(files)
        .output()
        .unwrap();
    // Exit status is a bit mask: 4 vulnerable key found, 2 some input not scanned, 1 error.
    let code = out.status.code().unwrap();
    assert_eq!(
        code & 3,
        0,
        "badkeys failed or could not scan some input (status {code}): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut verdicts = BTreeMap::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let name = file_name(v["where"].as_str().unwrap());
        let mut results: Vec<BadkeysResult> = v["results"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(check, r)| BadkeysResult {
                check: check.clone(),
                subtest: r["subtest"].as_str().map(str::to_string),
            })
            .collect();
        results.sort();
        // The modulus is only read for its parity; it is never printed.
        let even_modulus = v["n"]
            .as_str()
            .is_some_and(|n| n.ends_with(['0', '2', '4', '6', '8', 'a', 'c', 'e']));
        verdicts.insert(
            name,
            BadkeysVerdict {
                kind: v["type"].as_str().unwrap().to_string(),
                results,
                even_modulus,
            },
        );
    }
    verdicts
}

fn run_analyze(files: &[PathBuf], extra: &[&str]) -> BTreeMap<String, Vec<Ours>> {
    let out = Command::new(env!("CARGO_BIN_EXE_certresponder"))
        .args(["analyze", "--json"])
        .args(extra)
        .args(files)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "analyze should find weak keys: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut found = BTreeMap::new();
    for f in v["files"].as_array().unwrap() {
        let name = file_name(f["path"].as_str().unwrap());
        assert!(f["error"].is_null(), "{name}: {}", f["error"]);
        let objects = f["objects"].as_array().unwrap();
        assert_eq!(objects.len(), 1, "{name}: one key or certificate per file");
        let findings = objects[0]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| Ours {
                check: x["check"].as_str().unwrap().to_string(),
                confidence: x["confidence"].as_str().unwrap().to_string(),
                evidence: x["evidence"].clone(),
            })
            .collect();
        found.insert(name, findings);
    }
    found
}

fn file_name(path: &str) -> String {
    Path::new(path)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

fn describe_ours(found: &[Ours]) -> String {
    let v: Vec<String> = found
        .iter()
        .map(|f| format!("{} [{}]", f.check, f.confidence))
        .collect();
    format!("[{}]", v.join(", "))
}

fn describe_badkeys(v: &BadkeysVerdict) -> String {
    let r: Vec<String> = v
        .results
        .iter()
        .map(|r| match &r.subtest {
            Some(s) => format!("{}/{s}", r.check),
            None => r.check.clone(),
        })
        .collect();
    format!("{} [{}]", v.kind, r.join(", "))
}

#[test]
fn analyze_flags_every_key_badkeys_flags_and_both_pass_healthy_keys() {
    let venv = venv();
    let dir = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/weak_keys.py");
    let out = Command::new(venv.join("bin/python"))
        .arg(&script)
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "weak_keys.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("manifest.json")).unwrap()).unwrap();
    let manifest = manifest.as_array().unwrap();
    let files: Vec<PathBuf> = manifest
        .iter()
        .map(|m| dir.path().join(m["file"].as_str().unwrap()))
        .collect();

    let badkeys = run_badkeys(&venv, &files);
    let ours = run_analyze(&files, &[]);

    // Without the batch GCD, the same findings but `shared_prime`.
    let per_key = run_analyze(&files, &["--no-shared-primes"]);
    for (name, found) in &ours {
        let ids = |v: &[Ours]| -> Vec<String> {
            v.iter()
                .map(|f| f.check.clone())
                .filter(|c| c != "shared_prime")
                .collect()
        };
        let without: Vec<String> = per_key[name].iter().map(|f| f.check.clone()).collect();
        assert_eq!(ids(found), without, "{name}: --no-shared-primes");
    }

    let mut problems = Vec::new();
    let mut notes = Vec::new();
    let mut compared = 0;
    for m in manifest {
        let name = m["file"].as_str().unwrap();
        let strings = |k: &str| -> BTreeSet<String> {
            m[k].as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_str().unwrap().to_string())
                .collect()
        };
        let (planted_ours, planted_badkeys) = (strings("expect"), strings("badkeys"));
        let Some(bk) = badkeys.get(name) else {
            problems.push(format!("{name}: no badkeys result"));
            continue;
        };
        let found = &ours[name];
        let show = || {
            format!(
                "badkeys {}, analyze {}",
                describe_badkeys(bk),
                describe_ours(found)
            )
        };
        if !["rsa", "ec", "dsa"].contains(&bk.kind.as_str()) {
            problems.push(format!("{name}: badkeys could not read it: {}", show()));
            continue;
        }

        // Healthy controls: nothing at all from either tool.
        if planted_ours.is_empty() && planted_badkeys.is_empty() {
            if !bk.results.is_empty() || !found.is_empty() {
                problems.push(format!("{name}: healthy control flagged: {}", show()));
            }
            continue;
        }

        // Each planted weakness is found.
        let our_ids: BTreeSet<String> = found.iter().map(|f| f.check.clone()).collect();
        let bk_ids: BTreeSet<String> = bk.results.iter().map(|r| r.check.clone()).collect();
        for id in planted_ours.difference(&our_ids) {
            problems.push(format!(
                "{name}: analyze missed the planted {id}: {}",
                show()
            ));
        }
        for id in planted_badkeys.difference(&bk_ids) {
            problems.push(format!(
                "{name}: badkeys missed the planted {id}: {}",
                show()
            ));
        }

        // badkeys → analyze.
        let mut matched = vec![false; found.len()];
        for r in &bk.results {
            let Some(options) = expected_for(r, bk) else {
                notes.push(format!(
                    "{name}: badkeys {}{} has no certresponder counterpart",
                    r.check,
                    r.subtest
                        .as_ref()
                        .map(|s| format!("/{s}"))
                        .unwrap_or_default()
                ));
                continue;
            };
            compared += 1;
            let hit = found.iter().enumerate().find(|(_, f)| {
                options.iter().any(|(id, ev)| {
                    f.check == *id
                        && ev
                            .as_ref()
                            .is_none_or(|ev| evidence_matches(&f.evidence, ev))
                })
            });
            match hit {
                Some((i, _)) => matched[i] = true,
                None => problems.push(format!(
                    "{name}: badkeys {r:?} expects one of {:?} from analyze: {}",
                    options
                        .iter()
                        .map(|(id, ev)| format!("{id} {ev:?}"))
                        .collect::<Vec<_>>(),
                    show()
                )),
            }
        }
        // analyze → badkeys, on the checks both implement.
        for (f, was_matched) in found.iter().zip(&matched) {
            if *was_matched || !COMMON.contains(&f.check.as_str()) {
                continue;
            }
            // One badkeys result may stand for several of ours (rsainvalid, rsawarnings).
            let covered = bk.results.iter().any(|r| {
                expected_for(r, bk).is_some_and(|o| o.iter().any(|(id, _)| *id == f.check))
            });
            if covered {
                continue;
            }
            if allowed_ours_only(&f.check, &f.evidence, bk) {
                notes.push(format!("{name}: {} from analyze only (expected)", f.check));
            } else {
                problems.push(format!(
                    "{name}: analyze reports {} but badkeys does not: {}",
                    f.check,
                    show()
                ));
            }
        }
    }
    for n in &notes {
        eprintln!("note: {n}");
    }
    assert!(compared >= 15, "only {compared} badkeys findings compared");
    assert!(
        problems.is_empty(),
        "{} disagreement(s) between badkeys and analyze:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// Writes `der` as PEM with `label`.
fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

#[test]
fn a_certificate_or_csr_with_an_invalid_version_is_unparseable_for_both_tools() {
    let venv = venv();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(d)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "key.pem",
        "-out",
        "cert.pem",
        "-subj",
        "/CN=version.example.test",
        "-days",
        "30",
        "-outform",
        "DER",
    ]);
    openssl(&[
        "req",
        "-new",
        "-key",
        "key.pem",
        "-subj",
        "/CN=version.example.test",
        "-outform",
        "DER",
        "-out",
        "csr.der",
    ]);
    // The version fields, patched: the certificate's `[0] { INTEGER 2 }` to 3 (a "v4"), the
    // CSR's `INTEGER 0` to 1.
    let mut cert = std::fs::read(d.join("cert.pem")).unwrap();
    let at = cert
        .windows(5)
        .position(|w| w == [0xa0, 0x03, 0x02, 0x01, 0x02])
        .unwrap();
    cert[at + 4] = 3;
    let mut csr = std::fs::read(d.join("csr.der")).unwrap();
    let at = csr
        .windows(3)
        .position(|w| w == [0x02, 0x01, 0x00])
        .unwrap();
    csr[at + 2] = 1;
    let files = [d.join("v4.pem"), d.join("v2-csr.pem")];
    std::fs::write(&files[0], pem("CERTIFICATE", &cert)).unwrap();
    std::fs::write(&files[1], pem("CERTIFICATE REQUEST", &csr)).unwrap();

    // badkeys' parser (Python cryptography) refuses both; for certificates badkeys then
    // falls back to pyOpenSSL, which reads anything, and says so ("fallbackparser").
    let probe = Command::new(venv.join("bin/python"))
        .arg("-c")
        .arg(
            r#"import sys
from cryptography import x509
loaders = [x509.load_pem_x509_certificate, x509.load_pem_x509_csr]
for path, load in zip(sys.argv[1:], loaders):
    try:
        load(open(path, "rb").read())
        print("parsed")
    except Exception as e:
        print(type(e).__name__)
"#,
        )
        .args(&files)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&probe.stdout);
    assert_eq!(
        said.lines().collect::<Vec<_>>(),
        ["InvalidVersion", "InvalidVersion"],
        "{said}{}",
        String::from_utf8_lossy(&probe.stderr)
    );
    let out = Command::new(env!("CARGO_BIN_EXE_certresponder"))
        .arg("analyze")
        .args(&files)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("v4.pem: ! unparseable: unparseable certificate: invalid version 3"),
        "{text}"
    );
    assert!(
        text.contains("v2-csr.pem: ! unparseable: unparseable CSR: invalid version 1"),
        "{text}"
    );
}
