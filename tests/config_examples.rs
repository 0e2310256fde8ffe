//! The shipped examples in `config/` are valid: the configuration parses and the inventory
//! passes every structural check (its certificate paths are examples, so files are not read).

use std::path::Path;

use certresponder::config::Config;
use certresponder_inventory::{LoadOptions, load_dir};

#[test]
fn example_configuration_and_inventory_are_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let cfg = Config::from_file(&root.join("certresponder.toml")).unwrap();
    assert_eq!(cfg.issuer_ids(), ["internal"]);
    let report = load_dir(
        &root.join("inventory.d"),
        &LoadOptions {
            check_files: false,
            known_issuers: Some(cfg.issuer_ids()),
        },
    );
    assert!(report.errors.is_empty(), "{:#?}", report.errors);
    assert_eq!(report.entries.len(), 2);
    assert_eq!(report.entries[0].verify.len(), 2);
}

/// The commented-out `policy` and `[notify]` examples are valid once uncommented, and the
/// policy they name (the shipped default) loads.
#[test]
fn commented_policy_and_notify_examples_are_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let text = std::fs::read_to_string(root.join("certresponder.toml")).unwrap();
    let examples = [
        "policy =",
        "[notify",
        "attempts =",
        "retry_base_ms =",
        "timeout_secs =",
        "url =",
        "command =",
    ];
    let mut uncommented = 0;
    let text: String = text
        .lines()
        .map(|l| match l.strip_prefix("# ") {
            Some(rest) if examples.iter().any(|e| rest.starts_with(e)) => {
                uncommented += 1;
                format!("{rest}\n")
            }
            _ => format!("{l}\n"),
        })
        .collect();
    assert_eq!(uncommented, 9, "the examples changed: update this test");
    let cfg = Config::parse(&root.join("certresponder.toml"), &text).unwrap();
    assert_eq!(
        cfg.policy.as_deref(),
        Some(root.join("policy.toml").as_path())
    );
    assert!(cfg.notify.webhook.is_some() && cfg.notify.exec.is_some());
    let policy = cfg.load_policy().unwrap();
    assert_eq!(policy.rules[0].name, "key-compromise");
}
