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
