//! One test per inventory error: each asserts that the message names the file, the entry
//! and the field, through `inventory validate --json` and `inventory add`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Home, entry};
use serde_json::Value;

/// Validates `text` as a file named `f.toml` and returns its single error.
fn only_error(home: &Home, text: &str) -> Value {
    let file = home.path("f.toml");
    std::fs::write(&file, text).unwrap();
    let v = home.json(
        &["inventory", "validate", file.to_str().unwrap(), "--json"],
        2,
    );
    assert_eq!(v["valid"], false);
    let errors = v["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let e = errors[0].clone();
    let msg = e["message"].as_str().unwrap();
    assert!(msg.contains("f.toml"), "names the file: {msg}");
    // `add` refuses the same file, installs nothing, and exits 2.
    let out = home.run(&["inventory", "add", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains(msg));
    assert!(!home.path("inventory/f.toml").exists());
    e
}

fn good(home: &Home) -> (String, String) {
    let (c, k) = home.make_cert("x", "x.example.test");
    (c.display().to_string(), k.display().to_string())
}

#[test]
fn missing_owner() {
    let home = Home::new();
    let (c, _) = good(&home);
    let e = only_error(
        &home,
        &format!("[[cert]]\nname = \"web\"\ncert = \"{c}\"\n"),
    );
    assert_eq!(e["entry"], "#1 \"web\"");
    assert_eq!(e["field"], "owner");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("required field is missing")
    );
}

#[test]
fn duplicate_name_in_one_file() {
    let home = Home::new();
    let (c, k) = home.make_cert("x", "x.example.test");
    let e = only_error(&home, &(entry("web", &c, &k) + &entry("web", &c, &k)));
    assert_eq!(e["entry"], "#2 \"web\"");
    assert_eq!(e["field"], "name");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("`web` is already used")
    );
}

#[test]
fn duplicate_name_across_files() {
    let home = Home::new();
    let (c, k) = home.make_cert("x", "x.example.test");
    let first = home.path("first.toml");
    std::fs::write(&first, entry("web", &c, &k)).unwrap();
    home.json(&["inventory", "add", first.to_str().unwrap(), "--json"], 0);
    let e = only_error(&home, &entry("web", &c, &k));
    assert_eq!(e["field"], "name");
    let msg = e["message"].as_str().unwrap();
    assert!(
        msg.contains("inventory/first.toml"),
        "names the first file: {msg}"
    );
}

#[test]
fn unreadable_path() {
    let home = Home::new();
    let (c, _) = good(&home);
    let missing = home.path("nope/key.pem");
    let e = only_error(
        &home,
        &format!(
            "[[cert]]\nname = \"web\"\nowner = \"o\"\ncert = \"{c}\"\nkey = \"{}\"\n",
            missing.display()
        ),
    );
    assert_eq!(e["field"], "key");
    let msg = e["message"].as_str().unwrap();
    assert!(
        msg.contains("cannot read") && msg.contains("nope/key.pem"),
        "{msg}"
    );
}

#[test]
fn key_that_does_not_match_the_certificate() {
    let home = Home::new();
    let (c1, _) = home.make_cert("a", "a.example.test");
    let (_, k2) = home.make_cert("b", "b.example.test");
    let e = only_error(&home, &entry("web", &c1, &k2));
    assert_eq!(e["field"], "key");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("does not match the certificate")
    );
}

#[test]
fn unknown_field_with_hint() {
    let home = Home::new();
    let (c, _) = good(&home);
    let e = only_error(
        &home,
        &format!(
            "[[cert]]\nname = \"web\"\nowner = \"o\"\ncert = \"{c}\"\nkey_profil = \"rsa-3072\"\n"
        ),
    );
    assert_eq!(e["field"], "key_profil");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("did you mean `key_profile`?")
    );
}

#[test]
fn unknown_issuer() {
    let home = Home::new();
    let (c, _) = good(&home);
    let e = only_error(
        &home,
        &format!("[[cert]]\nname = \"web\"\nowner = \"o\"\ncert = \"{c}\"\nissuer = \"internl\"\n"),
    );
    assert_eq!(e["field"], "issuer");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("unknown issuer `internl`; did you mean `internal`?")
    );
}

#[test]
fn unparseable_certificate() {
    let home = Home::new();
    let bad = home.path("bad.pem");
    std::fs::write(&bad, b"\x30\x82\x01").unwrap();
    let e = only_error(
        &home,
        &format!(
            "[[cert]]\nname = \"web\"\nowner = \"o\"\ncert = \"{}\"\n",
            bad.display()
        ),
    );
    assert_eq!(e["field"], "cert");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("unparseable certificate")
    );
}

#[test]
fn invalid_values_are_named() {
    let home = Home::new();
    let (c, _) = good(&home);
    for (field, value, expect) in [
        ("kind", "\"tls-sever\"", "did you mean `tls-server`?"),
        ("trust", "\"pubic\"", "did you mean `public`?"),
        ("key_profile", "\"rsa-1024\"", "is not one of"),
        (
            "verify",
            "[{ address = \"example.com\" }]",
            "must be host:port",
        ),
        ("tags", "\"prod\"", "must be an array of strings"),
    ] {
        let e = only_error(
            &home,
            &format!(
                "[[cert]]\nname = \"web\"\nowner = \"o\"\ncert = \"{c}\"\n{field} = {value}\n"
            ),
        );
        let f = e["field"].as_str().unwrap();
        assert!(f.starts_with(field), "{f} for {field}");
        assert!(e["message"].as_str().unwrap().contains(expect), "{e}");
    }
    let e = only_error(
        &home,
        &format!("[[cert]]\nname = \"Web App\"\nowner = \"o\"\ncert = \"{c}\"\n"),
    );
    assert_eq!(e["field"], "name");
    let e = only_error(
        &home,
        "[[cert]]\nname = \"web\"\nowner = \"o\"\ncert = \"relative/cert.pem\"\n",
    );
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("must be an absolute path")
    );
}

#[test]
fn syntax_error_names_the_line() {
    let home = Home::new();
    let e = only_error(&home, "[[cert]\nname = \"web\"\n");
    let msg = e["message"].as_str().unwrap();
    assert!(
        msg.contains("not valid TOML") && msg.contains("line 1"),
        "{msg}"
    );
}
