//! End-to-end test of `certresponder quickstart`: the binary runs the whole loop on its demo
//! (internal CA, sample services, detect, decide, act, verify), and the commands it
//! suggests work.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Output;

use certresponder_inventory::inspect::{self, KeyInfo};
use serde_json::Value;

fn certresponder<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_certresponder"))
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("CERTRESPONDER_CONFIG")
        .output()
        .unwrap()
}

fn ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json(config: &Path, args: &[&str]) -> Value {
    let mut all = vec!["--config", config.to_str().unwrap()];
    all.extend(args);
    serde_json::from_str(&ok(&certresponder(&all), &args.join(" "))).unwrap()
}

/// The cases of `cert`, newest last.
fn cases_of(config: &Path, cert: &str) -> Vec<Value> {
    let mut cases: Vec<Value> = json(config, &["cases", "list", "--json"])
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["cert"] == cert)
        .cloned()
        .collect();
    cases.sort_by_key(|c| c["id"].as_u64());
    cases
}

/// The deployed key of a demo service, checked against its certificate.
fn deployed_key(demo: &Path, service: &str) -> KeyInfo {
    let dir = demo.join("services").join(service);
    let key = inspect::read_private_key(&std::fs::read(dir.join("key.pem")).unwrap()).unwrap();
    let cert = inspect::inspect_certificates(&std::fs::read(dir.join("cert.pem")).unwrap())
        .unwrap()
        .remove(0);
    assert!(
        key.public.same_public_key(&cert.key),
        "{service}: key and certificate match"
    );
    key.public
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// The suggested command after `certresponder ` on the line of the output containing
/// `needle`, split into arguments (the demo's path has no spaces).
fn suggested(stdout: &str, needle: &str) -> Vec<String> {
    let line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("certresponder ") && l.contains(needle))
        .unwrap_or_else(|| panic!("no suggested `{needle}` command in:\n{stdout}"));
    line.split_whitespace()
        .skip(1)
        .map(str::to_string)
        .collect()
}

#[test]
fn quickstart_runs_the_whole_loop_and_its_suggestions_work() {
    let dir = tempfile::tempdir().unwrap();
    let demo = dir.path().join("demo");
    let config = demo.join("certresponder.toml");
    let stdout = ok(
        &certresponder(&["quickstart", "--dir", demo.to_str().unwrap()]),
        "quickstart",
    );

    // The demo is registered: six services, the weak one among them.
    let list = json(&config, &["inventory", "list", "--json"]);
    assert_eq!(list["certificates"].as_array().unwrap().len(), 6);
    assert_eq!(mode(&demo.join("state/db")), 0o700);
    assert_eq!(mode(&demo.join("services/web-frontend/key.pem")), 0o600);
    assert_eq!(mode(&demo.join("services/build-agent/key.pem")), 0o644);

    // legacy-api: its RSA-1024 key was replaced by the policy, the new bundle deployed and
    // verified, the old certificate revoked as superseded.
    let legacy = cases_of(&config, "legacy-api");
    assert_eq!(legacy.len(), 1, "{legacy:?}");
    let legacy = &legacy[0];
    assert_eq!(legacy["state"], "done", "{legacy}");
    assert_eq!(legacy["kind"], "revoke_reissue");
    assert_eq!(legacy["reason"], "superseded");
    assert!(matches!(
        deployed_key(&demo, "legacy-api"),
        KeyInfo::Rsa { bits: 2048, .. }
    ));
    assert_eq!(mode(&demo.join("services/legacy-api/key.pem")), 0o600);
    let analyzed = json(
        &config,
        &[
            "analyze",
            "--json",
            demo.join("services/legacy-api/cert.pem").to_str().unwrap(),
        ],
    );
    assert_eq!(analyzed["summary"]["findings"], 0, "{analyzed}");
    let history = json(&config, &["history", "legacy-api", "--json"]);
    let states: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["revoked", "current"], "{history}");

    // payments-client: reported compromised; the demo rule makes its case wait for the
    // owner's approval, to run contain-first.
    let payments = cases_of(&config, "payments-client");
    assert_eq!(payments.len(), 1, "{payments:?}");
    let payments = &payments[0];
    assert_eq!(payments["state"], "awaiting_approval", "{payments}");
    assert_eq!(payments["reason"], "keyCompromise");
    assert_eq!(payments["contain_first"], true);
    assert_eq!(
        payments["decision"]["rule"]["name"],
        "demo-pci-key-compromise"
    );

    // build-agent's key file anomaly is low confidence: escalated, never acted on. The
    // healthy services are untouched.
    for untouched in ["build-agent", "web-frontend", "api-gateway", "reports-svc"] {
        assert!(
            cases_of(&config, untouched).is_empty(),
            "{untouched} has no case"
        );
    }
    let signals = json(&config, &["signals", "--all", "--json"]);
    for s in signals.as_array().unwrap() {
        if s["subject"] == "build-agent" {
            assert_eq!(s["handled"]["action"], "escalate", "{s}");
        }
    }

    // The summary says what happened to each service and suggests the next commands.
    for name in [
        "web-frontend",
        "legacy-api",
        "payments-client",
        "build-agent",
    ] {
        assert!(
            stdout
                .lines()
                .any(|l| l.trim_start().starts_with(name) && l.contains(':')),
            "a summary line for {name}:\n{stdout}"
        );
    }
    let approve = suggested(&stdout, " approve ");
    assert_eq!(
        approve.last().map(String::as_str),
        Some(payments["id"].to_string().as_str())
    );
    assert!(approve.contains(&config.to_str().unwrap().to_string()));
    let show = suggested(&stdout, " cases show ");
    assert_eq!(
        show.last().map(String::as_str),
        Some(legacy["id"].to_string().as_str())
    );
    ok(&certresponder(&show), "cases show");
    ok(
        &certresponder(&suggested(&stdout, " audit verify")),
        "audit verify",
    );

    // Approving runs the payments case to the end, with a new key.
    let before = deployed_key(&demo, "payments-client");
    ok(&certresponder(&approve), "approve");
    assert_eq!(cases_of(&config, "payments-client")[0]["state"], "done");
    assert!(!deployed_key(&demo, "payments-client").same_public_key(&before));

    // The suggested rollback restores the revoked RSA-1024 bundle (by force: plain
    // `rollback` refuses a revoked bundle).
    let rollback = suggested(&stdout, " rollback legacy-api");
    assert!(rollback.iter().any(|a| a == "--force"), "{rollback:?}");
    let plain: Vec<&String> = rollback.iter().filter(|a| *a != "--force").collect();
    assert_eq!(certresponder(&plain).status.code(), Some(2));
    ok(&certresponder(&rollback), "rollback");
    assert!(matches!(
        deployed_key(&demo, "legacy-api"),
        KeyInfo::Rsa { bits: 1024, .. }
    ));

    // Running it again reuses everything and decides nothing twice.
    let again = ok(
        &certresponder(&["quickstart", "--dir", demo.to_str().unwrap()]),
        "quickstart again",
    );
    assert!(!again.contains("issued:"), "{again}");
    assert!(again.contains("not reported again"), "{again}");
    assert_eq!(cases_of(&config, "payments-client").len(), 1);
    // The rollback put the RSA-1024 key back in service: the scan finds it again, and the
    // policy replaces it again (a finished case does not answer a signal that came back).
    // (The rollback by hand is a case of its own, done.)
    let legacy = cases_of(&config, "legacy-api");
    assert!(
        legacy.iter().any(|c| c["kind"] == "rollback"),
        "{legacy:#?}"
    );
    let legacy: Vec<&Value> = legacy.iter().filter(|c| c["kind"] != "rollback").collect();
    assert_eq!(legacy.len(), 2, "{legacy:#?}");
    assert!(legacy.iter().all(|c| c["state"] == "done"), "{legacy:#?}");
    assert!(matches!(
        deployed_key(&demo, "legacy-api"),
        KeyInfo::Rsa { bits: 2048, .. }
    ));
}
