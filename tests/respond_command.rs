//! The sequence engine through the binary with the `openssl ca` example adapter
//! (`config/issuers/openssl-ca-adapter`): a process killed when the adapter has answered and
//! nothing of the answer is journaled resumes with the certificate the CA issued for the
//! request (found by the request's id), and one killed between the renames of two locations
//! finishes them; either way the CA's `index.txt` holds exactly one new certificate, the one
//! deployed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use certresponder_inventory::inspect;
use common::{Home, text};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config/issuers")
}

/// The lines of the CA's `index.txt`: (status V/R/E, serial hex).
fn index(ca: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(ca.join("index.txt"))
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[0].to_string(), f[3].to_ascii_lowercase())
        })
        .collect()
}

#[test]
fn a_crash_after_the_adapter_answered_issues_nothing_more() {
    crash_and_resume("during:issue");
}

#[test]
fn a_crash_between_two_renames_issues_nothing_more() {
    crash_and_resume("during:deploy");
}

/// Kills `reissue` at `fault`, resumes with `respond`, and checks the CA's index.
fn crash_and_resume(fault: &str) {
    let home = Home::new();
    let ca = home.path("openssl-ca");
    let out = Command::new(examples().join("openssl-ca-init"))
        .arg(&ca)
        .args(["--allow", ".example.test"])
        .output()
        .unwrap();
    assert!(out.status.success(), "openssl-ca-init: {}", text(&out));
    let config = std::fs::read_to_string(home.config()).unwrap();
    std::fs::write(
        home.config(),
        format!(
            "{config}\n[[issuer]]\nid = \"corp\"\ntype = \"command\"\ncommand = [\"{}\", \"{}\"]\n",
            examples().join("openssl-ca-adapter").display(),
            ca.display()
        ),
    )
    .unwrap();
    let (cert, key) = home.make_cert("svc", "svc.example.test");
    let entry =
        common::entry("svc", &cert, &key).replace("issuer = \"internal\"", "issuer = \"corp\"");
    std::fs::write(home.path("inventory/svc.toml"), entry).unwrap();
    assert!(index(&ca).is_empty());

    let out = Command::new(env!("CARGO_BIN_EXE_certresponder"))
        .arg("--config")
        .arg(home.config())
        .args(["reissue", "svc", "--json"])
        .env("CERTRESPONDER_FAULT", fault)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(
        matches!(out.status.signal(), Some(9) | Some(6)),
        "expected death by SIGKILL: {}",
        text(&out)
    );
    assert_eq!(
        index(&ca).len(),
        1,
        "the adapter did not issue before the kill"
    );

    let resumed = home.json(&["respond", "--json"], 0);
    let case = &resumed["cases"][0];
    assert_eq!(case["state"], "done", "{resumed:#}");
    let issue = case["journal"]
        .as_array()
        .unwrap()
        .iter()
        .rfind(|r| r["step"] == "issue")
        .unwrap();
    if fault == "during:issue" {
        assert!(
            issue["detail"]
                .as_str()
                .unwrap()
                .contains("found by request"),
            "{issue:#}"
        );
    }
    // One certificate in the CA's index, valid, and it is the one deployed.
    let deployed = inspect::inspect_certificates(&std::fs::read(&cert).unwrap())
        .unwrap()
        .remove(0);
    let lines = index(&ca);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0].0, "V", "{lines:?}");
    assert_eq!(
        lines[0].1.trim_start_matches('0'),
        deployed.serial.trim_start_matches('0'),
        "{lines:?}"
    );
    assert!(case["orphans"].is_null() || case["orphans"] == serde_json::json!([]));
}

/// A CA made by `openssl-ca-init` (certificates valid `days` days) behind the example
/// adapter, wrapped so that a test can make the CA lag (`status` says `good` while the file
/// `lagging` exists beside it) or refuse revocations (`not_allowed` while `refuse` exists);
/// `svc` is registered for it with a first certificate from that CA. Returns (home, CA
/// directory, the certificate's path).
fn wrapped_ca(days: u32) -> (Home, PathBuf, PathBuf) {
    let home = Home::new();
    let ca = home.path("openssl-ca");
    let out = Command::new(examples().join("openssl-ca-init"))
        .arg(&ca)
        .args(["--allow", ".example.test", "--days", &days.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "openssl-ca-init: {}", text(&out));
    let wrapper = home.path("wrapped-adapter");
    std::fs::write(
        &wrapper,
        format!(
            r#"#!/bin/sh
req=$(cat)
case "$req" in
  *'"operation":"status"'*)
    if [ -e '{flags}/lagging' ]; then echo '{{"version": 1, "ok": true, "status": "good"}}'; exit 0; fi ;;
  *'"operation":"revoke"'*)
    if [ -e '{flags}/refuse' ]; then echo '{{"version": 1, "ok": false, "error": {{"kind": "not_allowed", "message": "this CA does not revoke short-lived certificates"}}}}'; exit 0; fi ;;
esac
printf '%s' "$req" | exec '{adapter}' '{ca}'
"#,
            flags = home.path("").display(),
            adapter = examples().join("openssl-ca-adapter").display(),
            ca = ca.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let config = std::fs::read_to_string(home.config()).unwrap();
    std::fs::write(
        home.config(),
        format!(
            "{config}\n[respond]\nconfirm_timeout_secs = 1\nretry_base_ms = 10\n\n[[issuer]]\nid = \"corp\"\ntype = \"command\"\ncommand = [\"{}\"]\n",
            wrapper.display()
        ),
    )
    .unwrap();
    let (cert, key) = home.make_cert("svc", "svc.example.test");
    let entry =
        common::entry("svc", &cert, &key).replace("issuer = \"internal\"", "issuer = \"corp\"");
    std::fs::write(home.path("inventory/svc.toml"), entry).unwrap();
    // The first certificate from this CA (the one made above is not the CA's to revoke).
    let first = home.json(&["reissue", "svc", "--json"], 0);
    assert_eq!(first["cases"][0]["state"], "done", "{first:#}");
    (home, ca, cert)
}

fn journal_detail(case: &serde_json::Value, step: &str) -> String {
    case["journal"]
        .as_array()
        .unwrap()
        .iter()
        .rfind(|r| r["step"] == step)
        .map(|r| {
            format!(
                "{}: {}",
                r["outcome"].as_str().unwrap_or(""),
                r["detail"].as_str().unwrap_or("")
            )
        })
        .unwrap_or_default()
}

#[test]
fn a_revocation_the_ca_does_not_report_yet_is_unconfirmed_until_a_ca_check_sees_it() {
    let (home, ca, _) = wrapped_ca(90);
    std::fs::write(home.path("lagging"), "").unwrap();
    let out = home.json(&["reissue", "svc", "--revoke", "superseded", "--json"], 1);
    let case = &out["cases"][0];
    assert_eq!(case["state"], "unconfirmed", "{out:#}");
    assert!(
        journal_detail(case, "confirm").contains("NOT confirmed"),
        "{case:#}"
    );
    // Revoked at the CA all the same.
    assert!(index(&ca).iter().any(|(s, _)| s == "R"), "{:?}", index(&ca));
    let id = case["id"].as_u64().unwrap().to_string();
    // A CA check while the CA still lags changes nothing.
    home.run(&["scan"]);
    let shown = home.json(&["cases", "show", &id, "--json"], 0);
    assert_eq!(shown["state"], "unconfirmed", "{shown:#}");
    // Once the CA reports it, the next CA check confirms and closes the case.
    std::fs::remove_file(home.path("lagging")).unwrap();
    let scan = home.run(&["scan"]);
    assert!(
        text(&scan).contains(&format!("case {id}: the CA now reports")),
        "{}",
        text(&scan)
    );
    let shown = home.json(&["cases", "show", &id, "--json"], 0);
    assert_eq!(shown["state"], "done", "{shown:#}");
    assert!(
        journal_detail(&shown, "confirm").contains("confirmed by a later CA check"),
        "{shown:#}"
    );
}

#[test]
fn a_short_lived_certificate_the_ca_will_not_revoke_ends_done() {
    // Six days: short-lived (the Baseline Requirements' 7 days count notAfter inclusive,
    // so `openssl ca -days 7` is one second over).
    let (home, _ca, _) = wrapped_ca(6);
    std::fs::write(home.path("refuse"), "").unwrap();
    let out = home.json(&["reissue", "svc", "--revoke", "superseded", "--json"], 0);
    let case = &out["cases"][0];
    assert_eq!(case["state"], "done", "{out:#}");
    let revoke = journal_detail(case, "revoke");
    assert!(
        revoke.starts_with("skipped: not revoked: short-lived") && revoke.contains("expires at"),
        "{revoke}"
    );
    assert!(revoke.contains("does not revoke short-lived"), "{revoke}");
    assert!(journal_detail(case, "confirm").contains("nothing was revoked"));
}

#[test]
fn a_long_lived_certificate_the_ca_will_not_revoke_needs_its_revocation() {
    let (home, _ca, _) = wrapped_ca(8);
    std::fs::write(home.path("refuse"), "").unwrap();
    let out = home.json(&["reissue", "svc", "--revoke", "superseded", "--json"], 1);
    let case = &out["cases"][0];
    assert_eq!(case["state"], "revocation_needed", "{out:#}");
}

#[test]
fn a_rule_can_leave_short_lived_certificates_unrevoked() {
    let (home, ca, _) = wrapped_ca(6);
    std::fs::write(
        home.path("policy.toml"),
        "[[rule]]\nname = \"compromise\"\nchecks = [\"key_exposed\"]\nmin_confidence = \"high\"\naction = \"revoke_reissue\"\nreason = \"keyCompromise\"\ndeadline = \"24h\"\nrevoke_short_lived = false\n\n[[rule]]\nname = \"rest\"\naction = \"escalate\"\n",
    )
    .unwrap();
    let config = std::fs::read_to_string(home.config()).unwrap();
    std::fs::write(home.config(), format!("policy = \"policy.toml\"\n{config}")).unwrap();
    let out = home.json(
        &[
            "report-compromise",
            "svc",
            "--evidence",
            "pasted in a ticket",
            "--json",
        ],
        0,
    );
    let case = &out["cases"][0];
    assert_eq!(case["state"], "done", "{out:#}");
    let revoke = journal_detail(case, "revoke");
    assert!(
        revoke.contains("not revoked: short-lived")
            && revoke.contains("rule `compromise` leaves short-lived certificates unrevoked"),
        "{revoke}"
    );
    assert!(index(&ca).iter().all(|(s, _)| s == "V"), "{:?}", index(&ca));
}
