//! `certresponder check-config` reports every problem with the configuration, the inventory
//! and the issuers' settings, and exits 2 when there is one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Home, entry};

#[test]
fn reports_inventory_and_issuer_problems() {
    let home = Home::new();
    let ok = home.json(&["check-config", "--json"], 0);
    assert_eq!(ok["valid"], true);
    assert_eq!(ok["issuers"][0]["id"], "internal");

    let (c, _) = home.make_cert("a", "a.example.test");
    let (_, other_key) = home.make_cert("b", "b.example.test");
    std::fs::write(
        home.path("inventory/bad.toml"),
        entry("web", &c, &other_key),
    )
    .unwrap();
    std::fs::write(
        home.config(),
        "state_dir = \"state\"\ninventory_dir = \"inventory\"\n\n[[issuer]]\nid = \"internal\"\ntype = \"internal-ca\"\ndir = \"ca\"\n\n[[issuer]]\nid = \"corp\"\ntype = \"command\"\ncommand = [\"/nonexistent/adapter\"]\n",
    )
    .unwrap();
    let bad = home.json(&["check-config", "--json"], 2);
    let problems: Vec<&str> = bad["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems[0].contains("bad.toml") && problems[0].contains("does not match"),
        "{problems:?}"
    );
    assert!(
        problems[1].contains("issuer `corp`") && problems[1].contains("/nonexistent/adapter"),
        "{problems:?}"
    );
}

#[test]
fn reports_a_bad_policy_with_its_line() {
    let home = Home::new();
    let ok = home.json(&["check-config", "--json"], 0);
    assert_eq!(ok["policy"]["source"], "built-in default policy");
    std::fs::write(
        home.path("policy.toml"),
        "[[rule]]\nname = \"all\"\naction = \"escalate\"\n\n[[rule]]\nname = \"never\"\nchecks = [\"fermat\"]\nmin_confidence = \"high\"\naction = \"revoke_reissue\"\n",
    )
    .unwrap();
    let cfg = std::fs::read_to_string(home.config()).unwrap();
    std::fs::write(home.config(), format!("policy = \"policy.toml\"\n{cfg}")).unwrap();
    let bad = home.json(&["check-config", "--json"], 2);
    let problems = bad["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{problems:?}");
    let p = problems[0].as_str().unwrap();
    assert!(
        p.starts_with("policy: ") && p.contains("policy.toml:5"),
        "{p}"
    );
    assert!(p.contains("never") && p.contains("all"), "{p}");
}
