//! End-to-end tests of `exposure scan`: the binary on trees and git repositories holding an
//! inventory's private keys in the forms they leak in (committed then deleted, committed
//! then dropped by a reset, staged and never committed, Markdown, escaped source strings,
//! JWK, unprotected PKCS#12, OpenSSH, base64 in a Kubernetes secret, DER inside an ELF
//! binary, UTF-16 text; encrypted PKCS#8, PEM, OpenSSH, PKCS#12 and JKS), made with rcgen,
//! OpenSSL, ssh-keygen, keytool and git; and on look-alikes that are not exposures.
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
    signals_of(home, "key_exposed")
}

fn signals_of(home: &Home, check: &str) -> Vec<Value> {
    home.json(&["signals", "--json"], 0)
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["check"] == check)
        .cloned()
        .collect()
}

/// The `unknown` entries that are encrypted keys, each checked to say so.
fn unknown_encrypted(v: &Value) -> Vec<&Value> {
    let list: Vec<&Value> = v["unknown"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u.get("check").is_some())
        .collect();
    for u in &list {
        assert_eq!(u["check"], "encrypted_key_exposed", "{u}");
        assert_eq!(u["confidence"], "low", "{u}");
        assert!(u["locations"][0]["encryption"].is_string(), "{u}");
    }
    list
}

/// The `unknown` entry (an encrypted key) found at `path`.
fn unknown_at<'a>(v: &'a Value, path: &Path) -> &'a Value {
    unknown_encrypted(v)
        .into_iter()
        .find(|u| u["locations"][0]["path"] == path.to_str().unwrap())
        .unwrap_or_else(|| panic!("nothing reported at {}: {v:#}", path.display()))
}

/// The body lines of PEM text (what must never be printed).
fn body_lines(pem: &str) -> Vec<String> {
    pem.lines()
        .filter(|l| !l.starts_with("-----") && !l.contains(':') && l.len() > 16)
        .map(str::to_string)
        .collect()
}

/// Asserts that no line of any of `secrets` appears in the command's output.
fn prints_no_secret(out: &std::process::Output, secrets: &[String]) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    for pem in secrets {
        for line in body_lines(pem) {
            assert!(
                !stdout.contains(&line) && !stderr.contains(&line),
                "a key line was printed: {line}"
            );
        }
    }
}

/// The DER of a PEM block.
fn pem_der(pem: &str) -> Vec<u8> {
    STANDARD
        .decode(
            pem.lines()
                .filter(|l| !l.starts_with("-----"))
                .collect::<String>(),
        )
        .unwrap()
}

/// The P-256 scalar and point of a PKCS#8 key made by rcgen (aws-lc layout: the SEC1 key
/// with its public key), for writing it as a JWK.
fn ec_parts(pem: &str) -> (Vec<u8>, Vec<u8>) {
    let der = pem_der(pem);
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
fn public_keys_certificates_csrs_and_random_base64_are_not_keys_and_encrypted_keys_only_information()
 {
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
    assert!(
        v["encrypted_exposed"].as_array().unwrap().is_empty(),
        "{v:#}"
    );
    assert_eq!(v["found"], 0);
    assert_eq!(v["encrypted"], 4, "{v:#}");
    // The encrypted keys are information (the inventory key's public half is not readable
    // from the encrypted PKCS#8, legacy PEM or PKCS#12; the OpenSSH key is someone else's).
    let mut paths: Vec<&str> = unknown_encrypted(&v)
        .iter()
        .map(|u| u["locations"][0]["path"].as_str().unwrap())
        .collect();
    paths.sort_unstable();
    let want: Vec<String> = ["enc.pem", "id_ed25519", "legacy.pem", "protected.p12"]
        .iter()
        .map(|f| out(f))
        .collect();
    assert_eq!(paths, want, "{v:#}");
    assert_eq!(v["unknown"].as_array().unwrap().len(), 4, "{v:#}");
    assert!(key_exposed_signals(&home).is_empty());
    assert!(signals_of(&home, "encrypted_key_exposed").is_empty());
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

#[test]
fn encrypted_keys_are_reported_and_matched_when_their_public_half_is_in_clear() {
    let home = Home::new();
    let mut inventory = String::new();
    let bastion_key = register(&home, "bastion", &mut inventory);
    let java_key = register(&home, "java-app", &mut inventory);
    let (web_cert, web_key) = register_rsa(&home, "web", &mut inventory);
    write_inventory(&home, &inventory);
    let tree = home.path("tree");
    std::fs::create_dir_all(&tree).unwrap();
    let at = |name: &str| tree.join(name);
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let web_k = s(&web_key);

    // OpenSSH with a passphrase: the public key stays in clear beside the encrypted one.
    let ssh = at("id_bastion");
    std::fs::write(&ssh, &bastion_key).unwrap();
    std::fs::set_permissions(&ssh, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    tool(
        "ssh-keygen",
        &["-p", "-q", "-P", "", "-N", "a passphrase", "-f", &s(&ssh)],
        &tree,
    );
    // A Java keystore made by keytool from a PKCS#12: its certificate chain is in clear.
    let (java_cert, java_key_path) = (
        home.path("certs/java-app/cert.pem"),
        home.path("certs/java-app/key.pem"),
    );
    let p12 = home.path("java-app.p12");
    tool(
        "openssl",
        &[
            "pkcs12",
            "-export",
            "-in",
            &s(&java_cert),
            "-inkey",
            &s(&java_key_path),
            "-name",
            "app",
            "-passout",
            "pass:changeit",
            "-out",
            &s(&p12),
        ],
        &tree,
    );
    let keytool = Command::new("keytool")
        .args([
            "-importkeystore",
            "-noprompt",
            "-srckeystore",
            &s(&p12),
            "-srcstoretype",
            "PKCS12",
            "-srcstorepass",
            "changeit",
            "-destkeystore",
            &s(&at("app.jks")),
            "-deststoretype",
            "JKS",
            "-deststorepass",
            "changeit",
        ])
        .output()
        .expect("keytool must be installed (Debian: default-jre-headless)");
    assert!(keytool.status.success(), "{keytool:?}");
    // The inventory's RSA key as encrypted PKCS#8 (PEM and DER) and legacy PEM: no public
    // half beside them, so information only.
    for (name, extra) in [
        ("web.p8.pem", &[][..]),
        ("web.p8.der", &["-outform", "DER"][..]),
    ] {
        let mut args = vec![
            "pkcs8",
            "-topk8",
            "-v2",
            "aes-256-cbc",
            "-in",
            &web_k,
            "-passout",
            "pass:secret",
        ];
        args.extend_from_slice(extra);
        let out = s(&at(name));
        args.extend_from_slice(&["-out", &out]);
        tool("openssl", &args, &tree);
    }
    tool(
        "openssl",
        &[
            "rsa",
            "-in",
            &web_k,
            "-aes256",
            "-traditional",
            "-passout",
            "pass:secret",
            "-out",
            &s(&at("web.legacy.pem")),
        ],
        &tree,
    );
    // A fresh encrypted key and PKCS#12 of the inventory's certificate, with passwords.
    tool(
        "openssl",
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-aes256",
            "-pass",
            "pass:secret",
            "-out",
            &s(&at("fresh.pem")),
        ],
        &tree,
    );
    tool(
        "openssl",
        &[
            "pkcs12",
            "-export",
            "-in",
            &s(&web_cert),
            "-inkey",
            &web_k,
            "-passout",
            "pass:secret",
            "-out",
            &s(&at("web.p12")),
        ],
        &tree,
    );
    // Someone else's encrypted OpenSSH key: its public half is known and not ours.
    tool(
        "ssh-keygen",
        &[
            "-q",
            "-t",
            "ed25519",
            "-N",
            "pass",
            "-f",
            &s(&at("id_other")),
        ],
        &tree,
    );
    std::fs::remove_file(at("id_other.pub")).unwrap();
    let web_pem = std::fs::read_to_string(&web_key).unwrap();
    let secrets = [bastion_key.clone(), java_key.clone(), web_pem];

    // An encrypted inventory key is a finding on its certificate: exit 3.
    let v = scan(&home, &[&tree], 3);
    assert!(v["exposed"].as_array().unwrap().is_empty(), "{v:#}");
    assert_eq!(v["found"], 0, "{v:#}");
    let encrypted = v["encrypted_exposed"].as_array().unwrap();
    assert_eq!(encrypted.len(), 2, "{v:#}");
    let of = |cert: &str| {
        encrypted
            .iter()
            .find(|e| e["cert"] == cert)
            .unwrap_or_else(|| panic!("`{cert}` not found encrypted: {v:#}"))
    };
    let bastion = of("bastion");
    assert_eq!(bastion["check"], "encrypted_key_exposed");
    assert_eq!(bastion["confidence"], "low");
    assert_eq!(bastion["key"], "ECDSA P-256");
    assert_eq!(bastion["new"], true);
    let l = &bastion["locations"][0];
    assert_eq!(l["path"], s(&ssh));
    assert_eq!(l["line"], 1);
    assert_eq!(l["encryption"], "OpenSSH aes256-ctr");
    let java = of("java-app");
    assert_eq!(java["check"], "encrypted_key_exposed");
    assert_eq!(java["confidence"], "low");
    let l = &java["locations"][0];
    assert_eq!(l["path"], s(&at("app.jks")));
    assert!(l["line"].is_null());
    assert!(l["offset"].as_u64().unwrap() > 0, "{l}");
    assert!(
        l["encryption"]
            .as_str()
            .unwrap()
            .starts_with("JKS keystore password"),
        "{l}"
    );

    // The others are information, each with where and what encrypts it.
    let info = |name: &str| unknown_at(&v, &at(name));
    assert_eq!(
        info("web.p8.pem")["locations"][0]["encryption"],
        "PKCS#8 PBES2 aes-256-cbc"
    );
    assert_eq!(info("web.p8.pem")["locations"][0]["line"], 1);
    assert_eq!(info("web.p8.pem")["key"], "public key unknown");
    assert_eq!(
        info("web.p8.der")["locations"][0]["encryption"],
        "PKCS#8 PBES2 aes-256-cbc"
    );
    assert_eq!(
        info("web.legacy.pem")["locations"][0]["encryption"],
        "PEM AES-256-CBC"
    );
    assert_eq!(
        info("fresh.pem")["locations"][0]["encryption"],
        "PKCS#8 PBES2 aes-256-cbc"
    );
    assert!(
        info("web.p12")["locations"][0]["encryption"]
            .as_str()
            .unwrap()
            .starts_with("PKCS#12 password"),
    );
    let other = info("id_other");
    assert_eq!(other["key"], "Ed25519");
    assert_eq!(other["spki_sha256"].as_str().unwrap().len(), 64);
    assert_eq!(unknown_encrypted(&v).len(), 6, "{v:#}");
    assert_eq!(v["encrypted"], 8, "{v:#}");

    // Stored as low-confidence signals on the two certificates, which the default policy
    // escalates to a person; never as key_exposed.
    assert!(key_exposed_signals(&home).is_empty());
    let signals = signals_of(&home, "encrypted_key_exposed");
    let mut subjects: Vec<&str> = signals
        .iter()
        .map(|s| s["subject"].as_str().unwrap())
        .collect();
    subjects.sort_unstable();
    assert_eq!(subjects, ["bastion", "java-app"]);
    assert!(
        signals.iter().all(|s| s["confidence"] == "low"),
        "{signals:?}"
    );
    let explained = home.json(
        &[
            "policy",
            "explain",
            "bastion",
            "encrypted_key_exposed",
            "--json",
        ],
        0,
    );
    assert_eq!(explained["action"], "escalate", "{explained:#}");

    // The text output says what and where, never a key.
    let out = home.run(&["exposure", "scan", tree.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("encrypted_key_exposed"), "{text}");
    assert!(text.contains("bastion"), "{text}");
    assert!(text.contains(&format!("{}:1", s(&ssh))), "{text}");
    assert!(text.contains("web.legacy.pem:1"), "{text}");
    prints_no_secret(&out, &secrets);
    let json_out = home.run(&["exposure", "scan", "--json", tree.to_str().unwrap()]);
    prints_no_secret(&json_out, &secrets);
}

#[test]
fn keys_inside_binaries_and_utf16_text_are_found_and_clean_binaries_are_quiet() {
    let home = Home::new();
    let mut inventory = String::new();
    let elf_key = register(&home, "device", &mut inventory);
    let utf16_key = register(&home, "desktop", &mut inventory);
    let (_, rsa_key) = register_rsa(&home, "appliance", &mut inventory);
    write_inventory(&home, &inventory);
    let tree = home.path("tree");
    let clean = home.path("clean");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::create_dir_all(&clean).unwrap();

    // A copy of a real ELF binary with a PKCS#8 key spliced in at an odd offset.
    let elf = std::fs::read("/bin/true").unwrap();
    assert!(elf.starts_with(b"\x7fELF"));
    let offset = (elf.len() / 2) | 1;
    let mut bytes = elf.clone();
    bytes.splice(offset..offset, pem_der(&elf_key));
    std::fs::write(tree.join("true-with-key"), &bytes).unwrap();
    // A firmware image: the ELF, then the RSA key as PKCS#1 DER (as OpenSSL writes it).
    let pkcs1 = home.path("appliance.der");
    tool(
        "openssl",
        &[
            "rsa",
            "-in",
            rsa_key.to_str().unwrap(),
            "-traditional",
            "-outform",
            "DER",
            "-out",
            pkcs1.to_str().unwrap(),
        ],
        &tree,
    );
    let mut firmware = elf.clone();
    firmware.extend_from_slice(&[0xff; 333]);
    let rsa_offset = firmware.len();
    firmware.extend_from_slice(&std::fs::read(&pkcs1).unwrap());
    firmware.extend_from_slice(&[0xff; 4096]);
    std::fs::write(tree.join("firmware.img"), &firmware).unwrap();
    // The PEM re-encoded as UTF-16LE with a byte order mark (as Windows tools save it).
    let mut utf16 = vec![0xff, 0xfe];
    utf16.extend(
        format!("# deploy notes\r\n{}", utf16_key.replace('\n', "\r\n"))
            .encode_utf16()
            .flat_map(u16::to_le_bytes),
    );
    std::fs::write(tree.join("notes-utf16.txt"), utf16).unwrap();
    // Healthy binaries: real executables without keys.
    for b in ["/bin/true", "/usr/bin/ssh-keygen", "/usr/bin/git"] {
        let name = Path::new(b).file_name().unwrap();
        std::fs::copy(b, clean.join(name)).unwrap();
    }

    let quiet = scan(&home, &[&clean], 0);
    assert_eq!(quiet["found"], 0, "{quiet:#}");
    assert!(quiet["unknown"].as_array().unwrap().is_empty(), "{quiet:#}");
    assert_eq!(quiet["encrypted"], 0, "{quiet:#}");
    assert_eq!(quiet["unsupported"], 0, "{quiet:#}");
    assert_eq!(quiet["binary"], 3, "{quiet:#}");

    let v = scan(&home, &[&tree], 3);
    let expect = [
        ("device", "true-with-key", None, Some(offset)),
        ("appliance", "firmware.img", None, Some(rsa_offset)),
        ("desktop", "notes-utf16.txt", Some(2), None),
    ];
    for (cert, file, line, at) in expect {
        let e = exposed(&v, cert);
        assert_eq!(e["check"], "key_exposed");
        assert_eq!(e["confidence"], "confirmed");
        let l = &e["locations"][0];
        assert_eq!(l["path"], tree.join(file).to_str().unwrap(), "{cert}");
        assert_eq!(l["line"], line.map_or(Value::Null, Value::from), "{cert}");
        assert_eq!(
            l.get("offset").cloned().unwrap_or(Value::Null),
            at.map_or(Value::Null, |o| Value::from(o as u64)),
            "{cert}: {e:#}"
        );
    }
    assert_eq!(v["exposed"].as_array().unwrap().len(), 3, "{v:#}");
    assert!(v["unknown"].as_array().unwrap().is_empty(), "{v:#}");
    let signals = key_exposed_signals(&home);
    assert_eq!(signals.len(), 3, "{signals:?}");
    assert!(signals.iter().all(|s| s["confidence"] == "confirmed"));

    let out = home.run(&["exposure", "scan", tree.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("true-with-key at byte {offset}")),
        "{text}"
    );
    assert!(text.contains("notes-utf16.txt:2"), "{text}");
    let rsa_pem = std::fs::read_to_string(&rsa_key).unwrap();
    prints_no_secret(&out, &[elf_key, utf16_key, rsa_pem]);
}

#[test]
fn keys_left_unreachable_in_git_are_found_and_large_blobs_are_not_read() {
    let home = Home::new();
    let mut inventory = String::new();
    let dropped_key = register(&home, "web", &mut inventory);
    let staged_key = register(&home, "api", &mut inventory);
    write_inventory(&home, &inventory);

    let repo = home.path("repo");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q"]);
    std::fs::write(repo.join("README.md"), "# service\n").unwrap();
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "initial"]);
    // A key committed, then the commit dropped and its reflog entries expired: nothing
    // reaches it any more, but its objects are still in the repository.
    std::fs::write(repo.join("tls.key"), format!("# web\n{dropped_key}")).unwrap();
    git(&repo, &["add", "tls.key"]);
    git(&repo, &["commit", "-q", "-m", "add the key"]);
    let dropped = git(&repo, &["rev-parse", "HEAD"]).trim().to_string();
    git(&repo, &["reset", "-q", "--hard", "HEAD~1"]);
    git(&repo, &["reflog", "expire", "--expire=now", "--all"]);
    let reachable = git(&repo, &["log", "--all", "--reflog", "--format=%H"]);
    assert!(
        !reachable.contains(&dropped),
        "the commit is still reachable"
    );
    git(&repo, &["cat-file", "-e", &dropped]);
    // A key staged and unstaged again: a blob no commit holds.
    std::fs::write(repo.join("api.key"), &staged_key).unwrap();
    git(&repo, &["add", "api.key"]);
    let staged_blob = git(&repo, &["rev-parse", ":api.key"]).trim().to_string();
    git(&repo, &["reset", "-q"]);
    std::fs::remove_file(repo.join("api.key")).unwrap();
    // A committed blob over the size cap: listed, never read.
    std::fs::write(repo.join("big.log"), "x".repeat(300 * 1024)).unwrap();
    git(&repo, &["add", "big.log"]);
    git(&repo, &["commit", "-q", "-m", "logs"]);

    let v = home.json(
        &[
            "exposure",
            "scan",
            "--json",
            "--max-file-size",
            "200K",
            repo.to_str().unwrap(),
        ],
        3,
    );
    let web = exposed(&v, "web");
    let l = &web["locations"][0];
    assert_eq!(l["path"], "tls.key");
    assert_eq!(l["commit"], dropped.as_str());
    assert_eq!(l["line"], 2);
    assert_eq!(l["repository"], repo.to_str().unwrap());
    let api = exposed(&v, "api");
    let l = &api["locations"][0];
    assert_eq!(l["blob"], staged_blob.as_str());
    assert!(l["commit"].is_null());
    assert_eq!(l["line"], 1);
    let r = &v["repositories"][0];
    // initial, logs (reachable); add the key (unreachable).
    assert_eq!(r["commits"], 2, "{r}");
    assert_eq!(r["unreachable_commits"], 1, "{r}");
    assert_eq!(r["unreachable_blobs"], 2, "{r}");
    // The working file and the committed blob: both over the cap, neither read.
    let too_large: Vec<&str> = v["too_large"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    let logs = git(&repo, &["rev-parse", "HEAD"]);
    let big = format!("{}/big.log", repo.display());
    assert_eq!(
        too_large,
        [big.clone(), format!("{big} (commit {})", &logs[..12])],
        "{v:#}"
    );
    assert_eq!(r["blobs"], 3, "README.md and the two keys: {r}");
    let signals = key_exposed_signals(&home);
    assert_eq!(signals.len(), 2, "{signals:?}");
    let web_signal = signals.iter().find(|s| s["subject"] == "web").unwrap();
    assert_eq!(
        web_signal["evidence"]["locations"][0]["commit"],
        dropped.as_str()
    );

    let out = home.run(&["exposure", "scan", repo.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&dropped[..12]), "{text}");
    assert!(text.contains(&format!("blob {staged_blob}")), "{text}");
    prints_no_secret(&out, &[dropped_key, staged_key]);
}
