//! End-to-end tests of `certresponder inventory ...`: the binary, a real sled database,
//! real certificate files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Home, entry};
use serde_json::Value;

fn names(list: &Value) -> Vec<String> {
    list["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn register_list_show_remove_register_again() {
    let home = Home::new();
    let (c1, k1) = home.make_cert("web", "www.example.test");
    let (c2, k2) = home.make_cert("api", "api.example.test");
    let file = home.path("team.toml");
    std::fs::write(&file, entry("web", &c1, &k1) + &entry("api", &c2, &k2)).unwrap();

    let added = home.json(&["inventory", "add", file.to_str().unwrap(), "--json"], 0);
    assert_eq!(added["registered"].as_array().unwrap().len(), 2);
    assert!(
        home.path("inventory/team.toml").is_file(),
        "installed in the inventory dir"
    );

    let list = home.json(&["inventory", "list", "--json"], 0);
    assert_eq!(names(&list), ["api", "web"]);
    let web = &list["certificates"][1];
    assert_eq!(web["status"], "ok");
    assert_eq!(web["owner"], "team-web@example.com");
    assert_eq!(web["bundles"], 1);

    let show = home.json(&["inventory", "show", "web", "--json"], 0);
    assert_eq!(show["certificate"]["dns_names"][0], "www.example.test");
    let fp = show["certificate"]["fingerprints"]["cert_sha256"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        show["bundles"][0]["fingerprints"]["cert_sha256"],
        fp.as_str()
    );
    assert_eq!(show["bundles"][0]["state"], "current");
    assert_eq!(show["bundles"][0]["has_key"], true);
    // The key never appears in output.
    let raw = home.run(&["inventory", "show", "web", "--json"]);
    assert!(!String::from_utf8_lossy(&raw.stdout).contains("PRIVATE KEY"));

    let removed = home.json(&["inventory", "remove", "web", "--json"], 0);
    assert_eq!(removed["bundles_kept"], 1);
    assert_eq!(removed["file_deleted"], false);
    let list = home.json(&["inventory", "list", "--json"], 0);
    assert_eq!(names(&list), ["api"]);
    let all = home.json(&["inventory", "list", "--all", "--json"], 0);
    assert_eq!(names(&all), ["api", "web"]);
    assert_eq!(all["certificates"][1]["record"], "removed");
    // History survives removal.
    let show = home.json(&["inventory", "show", "web", "--json"], 0);
    assert_eq!(show["record"], "removed");
    assert_eq!(show["bundles"].as_array().unwrap().len(), 1);
    let installed = std::fs::read_to_string(home.path("inventory/team.toml")).unwrap();
    assert!(!installed.contains("name = \"web\"") && installed.contains("name = \"api\""));

    // Register again: same history, active again.
    let again = home.path("web.toml");
    std::fs::write(&again, entry("web", &c1, &k1)).unwrap();
    let added = home.json(&["inventory", "add", again.to_str().unwrap(), "--json"], 0);
    assert_eq!(added["registered"][0], "web");
    let show = home.json(&["inventory", "show", "web", "--json"], 0);
    assert_eq!(show["record"], "active");
    assert_eq!(
        show["bundles"].as_array().unwrap().len(),
        1,
        "same bundle, not recorded twice"
    );
    let kinds: Vec<&str> = show["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["registered", "bundle_recorded", "removed", "registered"]
    );
}

#[test]
fn a_new_certificate_on_disk_becomes_current_and_the_old_one_previous() {
    let home = Home::new();
    let (c, k) = home.make_cert("web", "www.example.test");
    let file = home.path("web.toml");
    std::fs::write(&file, entry("web", &c, &k)).unwrap();
    home.json(&["inventory", "add", file.to_str().unwrap(), "--json"], 0);
    // Someone renews the certificate by hand.
    let (leaf, key) = common::issue("www.example.test");
    std::fs::write(&c, leaf).unwrap();
    std::fs::write(&k, key).unwrap();
    let show = home.json(&["inventory", "show", "web", "--json"], 0);
    let states: Vec<&str> = show["bundles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["previous", "current"]);
}

#[test]
fn a_broken_inventory_file_loses_nothing_already_stored() {
    let home = Home::new();
    let (c, k) = home.make_cert("web", "www.example.test");
    let file = home.path("web.toml");
    std::fs::write(&file, entry("web", &c, &k)).unwrap();
    home.json(&["inventory", "add", file.to_str().unwrap(), "--json"], 0);
    // A bad hand edit in the inventory directory.
    std::fs::write(home.path("inventory/web.toml"), "[[cert]\nname = ").unwrap();
    let list = home.json(&["inventory", "list", "--json"], 0);
    assert_eq!(names(&list), ["web"]);
    assert_eq!(list["certificates"][0]["record"], "active");
    assert_eq!(list["certificates"][0]["status"], "invalid_entry");
    let err = list["inventory_errors"][0].as_str().unwrap();
    assert!(
        err.contains("inventory/web.toml") && err.contains("not valid TOML"),
        "{err}"
    );
    // The certificate file becoming garbage is reported, the history kept.
    std::fs::write(home.path("inventory/web.toml"), entry("web", &c, &k)).unwrap();
    std::fs::write(
        &c,
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let list = home.json(&["inventory", "list", "--json"], 0);
    assert_eq!(list["certificates"][0]["status"], "unparseable");
    assert_eq!(list["certificates"][0]["bundles"], 1);
    let human = home.run(&["inventory", "list"]);
    assert!(String::from_utf8_lossy(&human.stdout).contains("! UNPARSEABLE"));
}

#[test]
fn bad_config_is_an_input_error_naming_file_and_field() {
    let home = Home::new();
    std::fs::write(home.config(), "inventory_dri = \"x\"\n").unwrap();
    let out = home.run(&["inventory", "list"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("certresponder.toml")
            && err.contains("`inventory_dri`")
            && err.contains("did you mean `inventory_dir`"),
        "{err}"
    );
}

#[test]
fn unknown_name_is_an_input_error_with_a_hint() {
    let home = Home::new();
    let (c, k) = home.make_cert("web", "www.example.test");
    let file = home.path("web.toml");
    std::fs::write(&file, entry("web-frontend", &c, &k)).unwrap();
    home.json(&["inventory", "add", file.to_str().unwrap(), "--json"], 0);
    let out = home.run(&["inventory", "show", "web-frontnd"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("did you mean `web-frontend`"));
}

#[test]
fn a_database_held_by_another_process_is_refused_clearly() {
    let home = Home::new();
    let _held = certresponder::store::SledStore::open(&home.path("state/db")).unwrap();
    let out = home.run(&["inventory", "list"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("in use by another certresponder process"),
        "{err}"
    );
}
