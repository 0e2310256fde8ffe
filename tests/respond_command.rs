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
