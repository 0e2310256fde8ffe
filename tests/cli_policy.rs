//! End-to-end tests of `certresponder policy {explain,check,show-default}`: the binary, a
//! registered certificate in a real sled database, and policy files on disk.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Home, entry};

/// A home with one registered certificate, `web` (owner team-web@example.com, tag prod).
fn home_with_web() -> Home {
    let home = Home::new();
    let (cert, key) = home.make_cert("web", "web.example.test");
    std::fs::write(home.path("inventory/web.toml"), entry("web", &cert, &key)).unwrap();
    home
}

/// Points the home's configuration at `policy.toml` next to it, with this text.
fn use_policy(home: &Home, text: &str) {
    let cfg = std::fs::read_to_string(home.config()).unwrap();
    if !cfg.starts_with("policy = ") {
        std::fs::write(home.config(), format!("policy = \"policy.toml\"\n{cfg}")).unwrap();
    }
    std::fs::write(home.path("policy.toml"), text).unwrap();
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn explain_fermat_on_a_registered_certificate() {
    let home = home_with_web();
    let out = home.run(&["policy", "explain", "web", "fermat"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    for want in [
        "certificate    web (owner team-web@example.com, kind tls-server, tags prod)",
        "signal         fermat (family weak, confidence confirmed; no open signal",
        "policy         built-in default policy",
        "key-compromise",
        "matches: check `fermat` is among its checks; confidence confirmed is at least high",
        "applies        rule `key-compromise` (built-in default policy line",
        "action         revoke_reissue",
        "approval       auto (no approval needed)",
        "reason         keyCompromise",
        "contain first  no",
        "deadline       24h after detection",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }

    let json = home.json(&["policy", "explain", "web", "fermat", "--json"], 0);
    assert_eq!(json["cert"], "web");
    assert_eq!(json["check"], "fermat");
    assert_eq!(json["family"], "weak");
    assert_eq!(json["confidence"], "confirmed");
    assert_eq!(json["action"], "revoke_reissue");
    assert_eq!(json["approval"], "auto");
    assert_eq!(json["approvals_needed"], 0);
    assert_eq!(json["reason"], "keyCompromise");
    assert_eq!(json["contain_first"], false);
    assert_eq!(json["deadline"], "24h");
    assert_eq!(json["rule"]["name"], "key-compromise");
    assert_eq!(json["rule"]["source"], "built-in default policy");
    let rules = json["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0]["matched"], true);

    // The same check at low confidence is never acted on.
    let json = home.json(
        &[
            "policy",
            "explain",
            "web",
            "fermat",
            "--confidence",
            "low",
            "--json",
        ],
        0,
    );
    assert_eq!(json["action"], "escalate");
    assert_eq!(
        json["rules"][0]["why"],
        "confidence low is below its min_confidence high"
    );
}

#[test]
fn explain_key_file_permissions_escalates() {
    let home = home_with_web();
    let out = home.run(&["policy", "explain", "web", "key_file_permissions"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    for want in [
        "signal         key_file_permissions (family exposure, confidence low;",
        "no: check `key_file_permissions` is not among its checks",
        "escalate-everything-else",
        "matches: it has no conditions",
        "action         escalate",
        "reason         -",
        "deadline       none",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    assert!(!text.contains("contain first"), "{text}");

    let json = home.json(
        &["policy", "explain", "web", "key_file_permissions", "--json"],
        0,
    );
    assert_eq!(json["action"], "escalate");
    assert_eq!(json["family"], "exposure");
    assert_eq!(json["confidence"], "low");
    assert_eq!(json["reason"], serde_json::Value::Null);
    assert_eq!(json["deadline"], serde_json::Value::Null);
    assert_eq!(json["rule"]["name"], "escalate-everything-else");
    let rules = json["rules"].as_array().unwrap();
    assert!(rules.len() > 1);
    assert!(
        rules[..rules.len() - 1]
            .iter()
            .all(|r| r["matched"] == false)
    );
    assert_eq!(rules.last().unwrap()["matched"], true);
}

#[test]
fn explain_rejects_unknown_names_and_checks() {
    let home = home_with_web();
    let out = home.run(&["policy", "explain", "wbe", "fermat"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("no registered certificate named `wbe`; did you mean `web`?"),
        "{err}"
    );
    let out = home.run(&["policy", "explain", "web", "fermatt"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("unknown check `fermatt`; did you mean `fermat`?"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn explain_uses_the_configured_policy_and_its_approvers() {
    let home = home_with_web();
    use_policy(
        &home,
        r#"
[owners."team-web@example.com"]
approvers = ["alice", "bob"]

[[rule]]
name = "prod-compromise"
checks = ["fermat"]
tags = ["prod"]
action = "revoke_reissue"
approval = "two_person"
contain_first = true

[[rule]]
name = "rest"
action = "escalate"
"#,
    );
    let out = home.run(&["policy", "explain", "web", "fermat"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    for want in [
        "applies        rule `prod-compromise` (policy.toml line 5)",
        "approval       two_person (2 approval(s) from: alice, bob)",
        "contain first  yes",
        "reason         keyCompromise",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    let json = home.json(&["policy", "explain", "web", "fermat", "--json"], 0);
    assert_eq!(json["approvers"], serde_json::json!(["alice", "bob"]));
    assert_eq!(json["approvals_needed"], 2);

    let out = home.run(&["policy", "check"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("policy.toml (valid)"), "{text}");
    assert!(
        text.contains("approvers for team-web@example.com: alice, bob"),
        "{text}"
    );
    assert!(text.contains("prod-compromise"), "{text}");
    let json = home.json(&["policy", "check", "--json"], 0);
    assert_eq!(json["rules"][0]["name"], "prod-compromise");
    assert_eq!(json["rules"][0]["line"], 5);
    assert_eq!(json["limits"]["window"], "1h");
}

#[test]
fn check_rejects_a_bad_policy_naming_the_line() {
    let home = Home::new();
    use_policy(
        &home,
        "[limits]\nwindow = \"1h\"\n\n[[rule]]\nname = \"renew\"\nchecks = [\"expiring\"]\naction = \"reissue\"\nreason = \"superseded\"\n",
    );
    let out = home.run(&["policy", "check"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("policy.toml:8: rule `renew` field `reason`:"),
        "{err}"
    );

    use_policy(
        &home,
        "[[rule]]\nname = \"all\"\naction = \"escalate\"\n\n[[rule]]\nname = \"fermat\"\nchecks = [\"fermat\"]\naction = \"escalate\"\n",
    );
    let out = home.run(&["policy", "check"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("policy.toml:5: rule `fermat`: can never apply: rule `all` (line 1)"),
        "{err}"
    );
}

#[test]
fn check_lists_the_default_policy() {
    let home = Home::new();
    let out = home.run(&["policy", "check"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("policy: built-in default policy (valid)"),
        "{text}"
    );
    assert!(
        text.contains("at most 10 automatic revocations per 1h (5 per owner)"),
        "{text}"
    );
    for rule in [
        "key-compromise",
        "weak-parameters",
        "renewal",
        "escalate-everything-else",
    ] {
        assert!(text.contains(rule), "missing {rule} in:\n{text}");
    }
}

#[test]
fn show_default_prints_the_shipped_default() {
    let home = Home::new();
    let out = home.run(&["policy", "show-default"]);
    assert_eq!(out.status.code(), Some(0));
    let shipped = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/policy.toml"),
    )
    .unwrap();
    assert_eq!(stdout(&out), shipped);
}

#[test]
fn explain_uses_the_open_signal_found_by_scan() {
    let home = Home::new();
    let dir = home.path("certs");
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("small.pem"), dir.join("small.key"));
    let out = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:1024", "-nodes", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .args([
            "-subj",
            "/CN=small.example.test",
            "-days",
            "30",
            "-addext",
            "subjectAltName=DNS:small.example.test",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
        ])
        .output()
        .expect("openssl must be installed (scripts/test installs it)");
    assert!(out.status.success(), "{}", stderr(&out));
    std::fs::write(
        home.path("inventory/small.toml"),
        entry("small", &cert, &key),
    )
    .unwrap();
    let scan = home.run(&["scan", "--json"]);
    assert_eq!(scan.status.code(), Some(3), "{}", stderr(&scan));

    let json = home.json(
        &["policy", "explain", "small", "rsa_modulus_small", "--json"],
        0,
    );
    assert!(
        json["signal"].as_str().is_some_and(|k| k.len() == 64),
        "{json}"
    );
    assert_eq!(json["confidence"], "high");
    assert_eq!(json["rule"]["name"], "weak-parameters");
    assert_eq!(json["action"], "revoke_reissue");
    assert_eq!(json["reason"], "superseded");
    assert_eq!(json["deadline"], "5d");
    assert!(json["deadline_at"].is_string(), "{json}");

    let out = home.run(&["policy", "explain", "small", "rsa_modulus_small"]);
    let text = stdout(&out);
    assert!(text.contains("confidence high; the open signal "), "{text}");
    assert!(
        text.contains("deadline       5d after detection ("),
        "{text}"
    );
}

#[test]
fn check_holds_public_revoking_rules_to_the_baseline_requirements_clock() {
    let home = Home::new();
    let rule = "[[rule]]\nname = \"slow\"\nchecks = [\"rsa_modulus_small\"]\nmin_confidence = \"high\"\naction = \"revoke_reissue\"\nreason = \"superseded\"\ndeadline = \"7d\"\n";
    use_policy(&home, rule);
    let out = home.run(&["policy", "check"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("policy.toml:7: rule `slow` field `deadline`:")
            && err.contains("5 days")
            && err.contains("trust = \"private\""),
        "{err}"
    );
    // keyCompromise has 24 hours.
    use_policy(
        &home,
        &rule
            .replace("superseded", "keyCompromise")
            .replace("7d", "2d"),
    );
    let err = stderr(&home.run(&["policy", "check"]));
    assert!(err.contains("24 hours for a compromised key"), "{err}");
    // A rule for a private PKI is not bound by them.
    use_policy(
        &home,
        &format!("{rule}trust = \"private\"\n\n[[rule]]\nname = \"rest\"\naction = \"escalate\"\n"),
    );
    let out = home.run(&["policy", "check"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}
