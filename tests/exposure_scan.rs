//! End-to-end tests of `exposure scan`: the binary on trees and git repositories holding an
//! inventory's private keys in the forms they leak in (committed then deleted, Markdown,
//! escaped source strings, JWK, unprotected PKCS#12, OpenSSH, base64 in a Kubernetes
//! secret), made with rcgen, OpenSSL, ssh-keygen and git; and on look-alikes that are not
//! exposures.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use common::{Home, entry};
use serde_json::Value;

/// Runs a tool the test suite installs (scripts/test), asserting success; returns stdout.
fn tool(program: &str, args: &[&str], dir: &Path) -> String {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{program} must be installed (scripts/test installs it): {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn git(repo: &Path, args: &[&str]) -> String {
    let mut all = vec![
        "-c",
        "user.name=Test",
        "-c",
        "user.email=test@example.com",
        "-c",
        "init.defaultBranch=main",
        "-c",
        "commit.gpgsign=false",
    ];
    all.extend_from_slice(args);
    tool("git", &all, repo)
}

/// Registers a certificate made by rcgen (ECDSA P-256); returns its key PEM.
fn register(home: &Home, name: &str, inventory: &mut String) -> String {
    let (cert, key) = home.make_cert(name, &format!("{name}.example.test"));
    inventory.push_str(&entry(name, &cert, &key));
    std::fs::read_to_string(key).unwrap()
}

/// Registers a certificate made by OpenSSL with an RSA key; returns (cert path, key path).
fn register_rsa(home: &Home, name: &str, inventory: &mut String) -> (PathBuf, PathBuf) {
    let dir = home.path(&format!("certs/{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    common::openssl_rsa_leaf(&cert, &key, &format!("{name}.example.test"), 2048, 30);
    inventory.push_str(&entry(name, &cert, &key));
    (cert, key)
}

fn write_inventory(home: &Home, inventory: &str) {
    std::fs::write(home.path("inventory/certs.toml"), inventory).unwrap();
}

fn scan(home: &Home, paths: &[&Path], status: i32) -> Value {
    let mut args = vec!["exposure", "scan", "--json"];
    args.extend(paths.iter().map(|p| p.to_str().unwrap()));
    home.json(&args, status)
}

/// The exposed entry for `cert`.
fn exposed<'a>(v: &'a Value, cert: &str) -> &'a Value {
    v["exposed"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["cert"] == cert)
        .unwrap_or_else(|| panic!("`{cert}` not exposed: {v:#}"))
}

fn key_exposed_signals(home: &Home) -> Vec<Value> {
    home.json(&["signals", "--json"], 0)
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["check"] == "key_exposed")
        .cloned()
        .collect()
}

/// The P-256 scalar and point of a PKCS#8 key made by rcgen (aws-lc layout: the SEC1 key
/// with its public key), for writing it as a JWK.
fn ec_parts(pem: &str) -> (Vec<u8>, Vec<u8>) {
    let der = STANDARD
        .decode(
            pem.lines()
                .filter(|l| !l.starts_with("-----"))
                .collect::<String>(),
        )
        .unwrap();
    // SEC1 inside PKCS#8: `02 01 01 04 20 <d>` then `a1 44 03 42 00 04 <x> <y>`.
    let at = der
        .windows(5)
        .position(|w| w == [0x02, 0x01, 0x01, 0x04, 0x20])
        .unwrap()
        + 5;
    let d = der[at..at + 32].to_vec();
    let point = der[der.len() - 65..].to_vec();
    assert_eq!(point[0], 4);
    (d, point)
}

#[test]
fn a_key_committed_then_deleted_is_found_in_history_with_its_commit() {
    let home = Home::new();
    let mut inventory = String::new();
    let key = register(&home, "web", &mut inventory);
    write_inventory(&home, &inventory);

    let repo = home.path("repo");
    std::fs::create_dir_all(repo.join("deploy")).unwrap();
    git(&repo, &["init", "-q"]);
    std::fs::write(repo.join("README.md"), "# service\n").unwrap();
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "initial"]);
    let indented: String = key.lines().map(|l| format!("    {l}\n")).collect();
    let yaml = format!("service: web\ntls:\n  cert: cert.pem\n  key: |\n{indented}");
    std::fs::write(repo.join("deploy/values.yaml"), yaml).unwrap();
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "add deployment values"]);
    let added = git(&repo, &["rev-parse", "HEAD"]).trim().to_string();
    git(&repo, &["rm", "-q", "deploy/values.yaml"]);
    git(&repo, &["commit", "-q", "-m", "remove the key"]);
    assert!(!repo.join("deploy/values.yaml").exists());

    let v = scan(&home, &[&repo], 3);
    let web = exposed(&v, "web");
    assert_eq!(web["new"], true);
    let locations = web["locations"].as_array().unwrap();
    assert_eq!(locations.len(), 1, "{v:#}");
    let at = &locations[0];
    assert_eq!(at["path"], "deploy/values.yaml");
    assert_eq!(at["repository"], repo.to_str().unwrap());
    assert_eq!(at["commit"], added.as_str());
    assert_eq!(at["line"], 5);
    assert!(at["first_seen"].is_string(), "{at}");
    assert_eq!(v["repositories"][0]["commits"], 3);
    assert!(v["unknown"].as_array().unwrap().is_empty());

    let signals = key_exposed_signals(&home);
    assert_eq!(signals.len(), 1, "{signals:?}");
    assert_eq!(signals[0]["subject"], "web");
    assert_eq!(signals[0]["confidence"], "confirmed");
    assert_eq!(
        signals[0]["evidence"]["locations"][0]["commit"],
        added.as_str()
    );

    // Scanning again finds the same signal, not a second one; without history, nothing.
    let again = scan(&home, &[&repo], 3);
    assert_eq!(exposed(&again, "web")["new"], false);
    assert_eq!(key_exposed_signals(&home).len(), 1);
    let out = home.run(&["exposure", "scan", "--no-history", repo.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");

    // Text output names the certificate, the place and the commit, never the key.
    let out = home.run(&["exposure", "scan", repo.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("web"), "{text}");
    assert!(text.contains("deploy/values.yaml:5"), "{text}");
    assert!(text.contains(&added[..12]), "{text}");
    let body_line = key.lines().nth(1).unwrap();
    assert!(!text.contains(body_line));
    assert!(!String::from_utf8_lossy(&out.stderr).contains(body_line));
}

#[test]
fn keys_in_every_leaked_form_are_matched_to_their_certificates() {
    let home = Home::new();
    let mut inventory = String::new();
    let md_key = register(&home, "docs", &mut inventory);
    let js_key = register(&home, "frontend", &mut inventory);
    let jwk_key = register(&home, "api", &mut inventory);
    let ssh_key = register(&home, "bastion", &mut inventory);
    let k8s_key = register(&home, "ingress", &mut inventory);
    let (p12_cert, p12_key) = register_rsa(&home, "legacy", &mut inventory);
    write_inventory(&home, &inventory);

    let tree = home.path("tree");
    for d in ["docs", "src", "keys", "k8s"] {
        std::fs::create_dir_all(tree.join(d)).unwrap();
    }
    // Markdown: an indented code block.
    let indented: String = md_key.lines().map(|l| format!("    {l}\n")).collect();
    std::fs::write(
        tree.join("docs/SETUP.md"),
        format!("# Setup\n\nInstall the key:\n\n{indented}\nThen restart.\n"),
    )
    .unwrap();
    // JavaScript: one line with `\n` escapes.
    std::fs::write(
        tree.join("src/config.js"),
        format!(
            "// settings\nexport const TLS_KEY = \"{}\";\n",
            js_key.replace('\n', "\\n")
        ),
    )
    .unwrap();
    // A JWKS with a public key and a private one.
    let (d, point) = ec_parts(&jwk_key);
    let x = URL_SAFE_NO_PAD.encode(&point[1..33]);
    let y = URL_SAFE_NO_PAD.encode(&point[33..]);
    let d = URL_SAFE_NO_PAD.encode(d);
    std::fs::write(
        tree.join("keys/jwks.json"),
        format!(
            "{{\n  \"keys\": [\n    {{\"kty\": \"EC\", \"crv\": \"P-256\", \"use\": \"sig\", \"x\": \"{x}\", \"y\": \"{y}\"}},\n    {{\"kty\": \"EC\", \"crv\": \"P-256\", \"x\": \"{x}\", \"y\": \"{y}\", \"d\": \"{d}\"}}\n  ]\n}}\n"
        ),
    )
    .unwrap();
    // OpenSSH: ssh-keygen rewrites the PEM key in its own format, without a passphrase.
    let ssh = tree.join("keys/id_ecdsa");
    std::fs::write(&ssh, &ssh_key).unwrap();
    std::fs::set_permissions(&ssh, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    tool(
        "ssh-keygen",
        &["-p", "-q", "-P", "", "-N", "", "-f", ssh.to_str().unwrap()],
        &tree,
    );
    assert!(
        std::fs::read_to_string(&ssh)
            .unwrap()
            .starts_with("-----BEGIN OPENSSH PRIVATE KEY-----")
    );
    // A Kubernetes secret: the PEM, base64-encoded.
    std::fs::write(
        tree.join("k8s/secret.yaml"),
        format!(
            "apiVersion: v1\nkind: Secret\ntype: kubernetes.io/tls\ndata:\n  tls.key: {}\n",
            STANDARD.encode(&k8s_key)
        ),
    )
    .unwrap();
    // PKCS#12 with the empty password.
    tool(
        "openssl",
        &[
            "pkcs12",
            "-export",
            "-in",
            p12_cert.to_str().unwrap(),
            "-inkey",
            p12_key.to_str().unwrap(),
            "-passout",
            "pass:",
            "-out",
            tree.join("keys/legacy.p12").to_str().unwrap(),
        ],
        &tree,
    );

    let v = scan(&home, &[&tree], 3);
    let expect = [
        ("docs", "docs/SETUP.md", Some(5)),
        ("frontend", "src/config.js", Some(2)),
        ("api", "keys/jwks.json", Some(4)),
        ("bastion", "keys/id_ecdsa", Some(1)),
        ("ingress", "k8s/secret.yaml", Some(5)),
        ("legacy", "keys/legacy.p12", None),
    ];
    for (cert, path, line) in expect {
        let e = exposed(&v, cert);
        let locations = e["locations"].as_array().unwrap();
        assert_eq!(locations.len(), 1, "{cert}: {e:#}");
        let want = tree.join(path);
        assert_eq!(locations[0]["path"], want.to_str().unwrap(), "{cert}");
        assert_eq!(
            locations[0]["line"],
            line.map_or(Value::Null, Value::from),
            "{cert}"
        );
        assert!(locations[0]["commit"].is_null());
    }
    assert_eq!(
        v["exposed"].as_array().unwrap().len(),
        expect.len(),
        "{v:#}"
    );
    assert!(v["unknown"].as_array().unwrap().is_empty(), "{v:#}");

    let signals = key_exposed_signals(&home);
    let mut subjects: Vec<&str> = signals
        .iter()
        .map(|s| s["subject"].as_str().unwrap())
        .collect();
    subjects.sort_unstable();
    assert_eq!(
        subjects,
        ["api", "bastion", "docs", "frontend", "ingress", "legacy"]
    );
    assert!(signals.iter().all(|s| s["confidence"] == "confirmed"));
}

#[test]
fn public_keys_certificates_csrs_encrypted_keys_and_random_base64_are_not_exposures() {
    let home = Home::new();
    let mut inventory = String::new();
    let (cert, key) = register_rsa(&home, "web", &mut inventory);
    write_inventory(&home, &inventory);
    let tree = home.path("tree");
    std::fs::create_dir_all(&tree).unwrap();
    let k = key.to_str().unwrap();
    let out = |name: &str| tree.join(name).to_str().unwrap().to_string();

    std::fs::copy(&cert, tree.join("cert.pem")).unwrap();
    tool(
        "openssl",
        &["pkey", "-in", k, "-pubout", "-out", &out("public.pem")],
        &tree,
    );
    tool(
        "openssl",
        &[
            "rsa",
            "-in",
            k,
            "-RSAPublicKey_out",
            "-out",
            &out("rsa-public.pem"),
        ],
        &tree,
    );
    tool(
        "openssl",
        &[
            "req",
            "-new",
            "-key",
            k,
            "-subj",
            "/CN=web.example.test",
            "-out",
            &out("web.csr"),
        ],
        &tree,
    );
    tool(
        "openssl",
        &[
            "x509",
            "-in",
            cert.to_str().unwrap(),
            "-outform",
            "DER",
            "-out",
            &out("cert.der"),
        ],
        &tree,
    );
    // Encrypted: PKCS#8, legacy PEM, PKCS#12 with a password, OpenSSH with a passphrase.
    tool(
        "openssl",
        &[
            "pkcs8",
            "-topk8",
            "-in",
            k,
            "-passout",
            "pass:secret",
            "-out",
            &out("enc.pem"),
        ],
        &tree,
    );
    tool(
        "openssl",
        &[
            "rsa",
            "-in",
            k,
            "-aes128",
            "-traditional",
            "-passout",
            "pass:secret",
            "-out",
            &out("legacy.pem"),
        ],
        &tree,
    );
    tool(
        "openssl",
        &[
            "pkcs12",
            "-export",
            "-in",
            cert.to_str().unwrap(),
            "-inkey",
            k,
            "-passout",
            "pass:secret",
            "-out",
            &out("protected.p12"),
        ],
        &tree,
    );
    tool(
        "ssh-keygen",
        &[
            "-q",
            "-t",
            "ed25519",
            "-N",
            "a passphrase",
            "-f",
            &out("id_ed25519"),
        ],
        &tree,
    );
    // Random base64, bare and inside a block labelled as a private key; placeholders.
    let noise: Vec<u8> = (0..3000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let b64 = STANDARD.encode(&noise);
    let wrapped: String = b64
        .as_bytes()
        .chunks(64)
        .map(|c| format!("{}\n", std::str::from_utf8(c).unwrap()))
        .collect();
    std::fs::write(tree.join("noise.txt"), &wrapped).unwrap();
    std::fs::write(
        tree.join("fake.pem"),
        format!("-----BEGIN PRIVATE KEY-----\n{wrapped}-----END PRIVATE KEY-----\n"),
    )
    .unwrap();
    std::fs::write(
        tree.join("README.md"),
        "Put your key in `key.pem`:\n\n    -----BEGIN PRIVATE KEY-----\n    ...\n    -----END PRIVATE KEY-----\n\nand a JWK like {\"kty\": \"EC\", \"crv\": \"P-256\", \"d\": \"...\"}.\n",
    )
    .unwrap();

    let v = scan(&home, &[&tree], 0);
    assert!(v["exposed"].as_array().unwrap().is_empty(), "{v:#}");
    assert!(v["unknown"].as_array().unwrap().is_empty(), "{v:#}");
    assert_eq!(v["found"], 0);
    assert_eq!(v["encrypted"], 4, "{v:#}");
    assert!(key_exposed_signals(&home).is_empty());
}

#[test]
fn a_key_outside_the_inventory_is_information_only() {
    let home = Home::new();
    let mut inventory = String::new();
    register(&home, "web", &mut inventory);
    write_inventory(&home, &inventory);
    let tree = home.path("tree");
    std::fs::create_dir_all(&tree).unwrap();
    let other = rcgen::KeyPair::generate().unwrap();
    std::fs::write(tree.join("stray.key"), other.serialize_pem()).unwrap();

    let v = scan(&home, &[&tree], 0);
    assert!(v["exposed"].as_array().unwrap().is_empty());
    let unknown = v["unknown"].as_array().unwrap();
    assert_eq!(unknown.len(), 1, "{v:#}");
    assert_eq!(unknown[0]["key"], "ECDSA P-256");
    assert_eq!(unknown[0]["spki_sha256"].as_str().unwrap().len(), 64);
    assert_eq!(
        unknown[0]["locations"][0]["path"],
        tree.join("stray.key").to_str().unwrap()
    );
    assert!(key_exposed_signals(&home).is_empty());

    let out = home.run(&["exposure", "scan", tree.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("not in the inventory"), "{text}");
    assert!(text.contains("stray.key:1"), "{text}");
}

#[test]
fn a_missing_path_is_an_input_error_naming_it() {
    let home = Home::new();
    write_inventory(&home, "");
    let missing = home.path("no/such/dir");
    let out = home.run(&["exposure", "scan", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(missing.to_str().unwrap()),
        "{out:?}"
    );
}

/// A scanned repository's own configuration runs nothing: a signed commit, a configured
/// signature program and `log.showSignature` would make a plain `git log` run the program.
#[test]
fn a_hostile_repository_configuration_runs_nothing() {
    let home = Home::new();
    let repo = home.path("hostile");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q"]);
    std::fs::write(repo.join("README"), "hello\n").unwrap();
    git(&repo, &["add", "README"]);
    git(&repo, &["commit", "-q", "-m", "first"]);
    // A commit carrying a (fake) signature, written as a raw object.
    let tree = git(&repo, &["rev-parse", "HEAD^{tree}"]);
    let parent = git(&repo, &["rev-parse", "HEAD"]);
    let commit = format!(
        "tree {}\nparent {}\nauthor T <t@example.com> 1700000000 +0000\ncommitter T <t@example.com> 1700000000 +0000\ngpgsig -----BEGIN PGP SIGNATURE-----\n \n iQEzBAABCAAdFiEE\n -----END PGP SIGNATURE-----\n\nsigned\n",
        tree.trim(),
        parent.trim()
    );
    std::fs::write(home.path("commit.txt"), commit).unwrap();
    let id = git(
        &repo,
        &[
            "hash-object",
            "-t",
            "commit",
            "-w",
            home.path("commit.txt").to_str().unwrap(),
        ],
    );
    git(&repo, &["update-ref", "refs/heads/main", id.trim()]);
    let marker = home.path("ran");
    let program = home.path("evil.sh");
    std::fs::write(
        &program,
        format!("#!/bin/sh\ntouch {}\nexit 1\n", marker.display()),
    )
    .unwrap();
    std::fs::set_permissions(
        &program,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    for (k, v) in [
        ("log.showSignature", "true"),
        ("gpg.program", program.to_str().unwrap()),
        ("core.pager", program.to_str().unwrap()),
    ] {
        git(&repo, &["config", k, v]);
    }
    // The configuration is live: git itself runs the program on a plain log.
    let _ = Command::new("git")
        .args(["-C", repo.to_str().unwrap(), "--no-pager", "log", "-1"])
        .output()
        .unwrap();
    assert!(
        marker.exists(),
        "the test repository does not trigger the program"
    );
    std::fs::remove_file(&marker).unwrap();
    write_inventory(&home, "");
    scan(&home, &[&repo], 0);
    assert!(
        !marker.exists(),
        "the scan ran the repository's configured program"
    );
}
