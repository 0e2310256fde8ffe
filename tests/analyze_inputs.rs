//! `certresponder analyze` on the public-key inputs beside PEM and DER: OpenSSH public keys
//! and `authorized_keys` files made by `ssh-keygen`, and JWKs and JWK Sets built from keys
//! `openssl` made (their members taken from `openssl pkey -text`). Every key is cross-checked
//! with the same key in PEM: the same key, the same SPKI SHA-256 (also against `openssl`'s DER)
//! and the same findings. Malformed inputs are clear errors naming the line or member, never a
//! panic. ssh-keygen and openssl are installed by scripts/test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine as _;
use certresponder_inventory::inspect::{KeyInfo, Object, inspect_any};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use common::Home;

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} must be installed (scripts/test installs it): {e}"))
}

/// Runs a tool that must succeed; its stdout.
fn tool(program: &str, args: &[&str]) -> Vec<u8> {
    let out = run(program, args);
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn write(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// `ssh-keygen -t ...` into `dir/name`; the `.pub` file, or `None` when this OpenSSH refuses
/// the key type.
fn ssh_keygen(dir: &Path, name: &str, args: &[&str]) -> Option<PathBuf> {
    let key = dir.join(name);
    let comment = format!("{name}@analyze-inputs");
    let mut all = vec!["-q", "-N", "", "-C", &comment, "-f", s(&key)];
    all.extend_from_slice(args);
    let out = run("ssh-keygen", &all);
    if !out.status.success() {
        return None;
    }
    Some(key.with_extension("pub"))
}

/// The key of a `.pub` file exported by `ssh-keygen -e -m PKCS8`: a `PUBLIC KEY` PEM.
fn ssh_export_pem(public: &Path) -> PathBuf {
    let pem = tool("ssh-keygen", &["-e", "-m", "PKCS8", "-f", s(public)]);
    assert!(pem.starts_with(b"-----BEGIN PUBLIC KEY-----"), "{pem:?}");
    let out = public.with_extension("pem");
    std::fs::write(&out, pem).unwrap();
    out
}

/// SHA-256 of the DER SubjectPublicKeyInfo `openssl` writes for a `PUBLIC KEY` PEM.
fn openssl_spki_sha256(public_pem: &Path) -> String {
    let der = tool(
        "openssl",
        &["pkey", "-pubin", "-in", s(public_pem), "-outform", "DER"],
    );
    hex::encode(Sha256::digest(der))
}

/// The bytes under `name:` in `openssl pkey -text -noout` (hex pairs over indented lines).
fn text_field(text: &str, name: &str) -> Vec<u8> {
    let mut lines = text
        .lines()
        .skip_while(|l| l.trim_end() != format!("{name}:"));
    assert!(lines.next().is_some(), "no `{name}:` in\n{text}");
    let hexdigits: String = lines
        .take_while(|l| l.starts_with(' '))
        .flat_map(|l| l.trim().split(':'))
        .collect();
    hex::decode(hexdigits).unwrap()
}

fn b64url(v: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v)
}

/// Big-endian without leading zeros, as a JWK's Base64urlUInt wants.
fn uint(v: &[u8]) -> &[u8] {
    let zeros = v.iter().take_while(|&&b| b == 0).count();
    &v[zeros..]
}

/// The one key `inspect_any` reads from a file.
fn key_of(path: &Path) -> KeyInfo {
    match inspect_any(&std::fs::read(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .as_slice()
    {
        [Object::PublicKey(k)] => k.clone(),
        other => panic!("{}: {other:?}", path.display()),
    }
}

/// `analyze --json` on `files`, with the exit status it must end with.
fn analyze(home: &Home, files: &[&Path], status: i32) -> Value {
    let mut args = vec!["analyze", "--json"];
    args.extend(files.iter().map(|p| s(p)));
    let out = home.run(&args);
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("panicked"),
        "{}",
        common::text(&out)
    );
    assert_eq!(out.status.code(), Some(status), "{}", common::text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The analysed objects of the file at `path` in an `analyze --json` document.
fn objects<'a>(doc: &'a Value, path: &Path) -> &'a Vec<Value> {
    let file = doc["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == s(path))
        .unwrap_or_else(|| panic!("{} not in {doc:#}", path.display()));
    assert_eq!(file["error"], Value::Null, "{file:#}");
    file["objects"].as_array().unwrap()
}

/// The only object of a file.
fn only<'a>(doc: &'a Value, path: &Path) -> &'a Value {
    match objects(doc, path).as_slice() {
        [o] => o,
        other => panic!("{}: {other:?}", path.display()),
    }
}

/// What must agree between two forms of one key: its type, its description, its SPKI
/// SHA-256 and its findings.
fn verdict(o: &Value) -> Value {
    let mut checks: Vec<&str> = o["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["check"].as_str().unwrap())
        .collect();
    checks.sort_unstable();
    json!({"type": o["type"], "key": o["key"], "spki_sha256": o["spki_sha256"], "checks": checks})
}

fn checks(o: &Value) -> Value {
    verdict(o)["checks"].clone()
}

/// The error `analyze --json` reports for the file at `path`.
fn file_error(doc: &Value, path: &Path) -> String {
    let file = doc["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == s(path))
        .unwrap();
    assert_eq!(file["objects"][0]["findings"][0]["check"], "unparseable");
    file["error"].as_str().unwrap().to_string()
}

/// The SSH wire form (RFC 4251 §5 `string`s) of `fields`, base64, as a `.pub` line.
fn ssh_line(key_type: &str, fields: &[&[u8]]) -> String {
    let mut blob = Vec::new();
    for f in std::iter::once(key_type.as_bytes()).chain(fields.iter().copied()) {
        blob.extend_from_slice(&u32::try_from(f.len()).unwrap().to_be_bytes());
        blob.extend_from_slice(f);
    }
    format!(
        "{key_type} {} hand-made",
        base64::engine::general_purpose::STANDARD.encode(blob)
    )
}

/// RFC 8410 SubjectPublicKeyInfo of an Ed25519 key.
fn ed25519_spki_sha256(public: &[u8]) -> String {
    let mut der = hex::decode("302a300506032b6570032100").unwrap();
    der.extend_from_slice(public);
    hex::encode(Sha256::digest(der))
}

#[test]
fn ssh_keygen_keys_read_like_their_pem_export() {
    let home = Home::new();
    let dir = home.path("keys");
    std::fs::create_dir_all(&dir).unwrap();
    let mut made: Vec<(PathBuf, &str)> = Vec::new();
    for (name, args, key) in [
        ("rsa1024", &["-t", "rsa", "-b", "1024"][..], "RSA-1024"),
        ("rsa3072", &["-t", "rsa", "-b", "3072"], "RSA-3072"),
        ("ecdsa256", &["-t", "ecdsa", "-b", "256"], "ECDSA P-256"),
        ("ecdsa384", &["-t", "ecdsa", "-b", "384"], "ECDSA P-384"),
        ("ecdsa521", &["-t", "ecdsa", "-b", "521"], "ECDSA P-521"),
        ("ed25519", &["-t", "ed25519"], "Ed25519"),
        ("dsa", &["-t", "dsa"], "DSA-1024"),
    ] {
        match ssh_keygen(&dir, name, args) {
            Some(public) => made.push((public, key)),
            // OpenSSH 10.0 removed DSA; an older one (Debian 12 has 9.2) still makes it.
            None if name == "dsa" => eprintln!("this ssh-keygen makes no DSA keys: not tested"),
            None => panic!("ssh-keygen {args:?} failed"),
        }
    }
    // Every type but Ed25519 exports to a `PUBLIC KEY` PEM (ssh-keygen cannot export Ed25519).
    let pems: Vec<Option<PathBuf>> = made
        .iter()
        .map(|(public, key)| (*key != "Ed25519").then(|| ssh_export_pem(public)))
        .collect();
    let mut files: Vec<&Path> = made.iter().map(|(p, _)| p.as_path()).collect();
    files.extend(pems.iter().flatten().map(PathBuf::as_path));
    // The 1024-bit RSA key is a finding: exit status 3.
    let doc = analyze(&home, &files, 3);

    for ((public, key), pem) in made.iter().zip(&pems) {
        let o = only(&doc, public);
        assert_eq!(o["type"], "public-key", "{o:#}");
        assert_eq!(o["key"], *key, "{o:#}");
        let want_checks = if *key == "RSA-1024" {
            json!(["rsa_modulus_small"])
        } else {
            json!([])
        };
        assert_eq!(checks(o), want_checks, "{}: {o:#}", public.display());
        match pem {
            Some(pem) => {
                assert_eq!(verdict(o), verdict(only(&doc, pem)), "{}", pem.display());
                assert_eq!(key_of(public), key_of(pem), "{}", pem.display());
                assert_eq!(o["spki_sha256"], openssl_spki_sha256(pem), "{key}");
            }
            None => {
                // Ed25519: the 32 bytes are the last field of the blob (RFC 8709 §4).
                let line = std::fs::read_to_string(public).unwrap();
                let blob = base64::engine::general_purpose::STANDARD
                    .decode(line.split_whitespace().nth(1).unwrap())
                    .unwrap();
                assert_eq!(
                    o["spki_sha256"],
                    ed25519_spki_sha256(&blob[blob.len() - 32..])
                );
            }
        }
    }
}

#[test]
fn authorized_keys_with_options_comments_and_blank_lines() {
    let home = Home::new();
    let dir = home.path("keys");
    std::fs::create_dir_all(&dir).unwrap();
    let ed = ssh_keygen(&dir, "ed", &["-t", "ed25519"]).unwrap();
    let weak = ssh_keygen(&dir, "weak", &["-t", "rsa", "-b", "1024"]).unwrap();
    let p256 = ssh_keygen(&dir, "p256", &["-t", "ecdsa", "-b", "256"]).unwrap();
    let strong = ssh_keygen(&dir, "strong", &["-t", "rsa", "-b", "3072"]).unwrap();
    let line = |p: &Path| std::fs::read_to_string(p).unwrap().trim().to_string();
    // The key type and blob of the ECDSA key, its comment replaced.
    let p256_line = line(&p256)
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    let text = format!(
        "# keys of the deploy account\n\
         {}\n\
         \n\
         from=\"10.0.0.0/8,192.168.1.0/24\",command=\"/usr/bin/logger \\\"key two, weak\\\"\",no-pty {}\n\
         \t# an indented comment\n\
         restrict,port-forwarding   {p256_line} laptop key with spaces\n\
         environment=\"A=b c\" {}\r\n",
        line(&ed),
        line(&weak),
        line(&strong)
    );
    let file = write(&dir, "authorized_keys", text);
    let doc = analyze(&home, &[&file, &ed, &weak, &p256, &strong], 3);
    let got = objects(&doc, &file);
    assert_eq!(got.len(), 4, "{got:#?}");
    for (o, single) in got.iter().zip([&ed, &weak, &p256, &strong]) {
        assert_eq!(
            verdict(o),
            verdict(only(&doc, single)),
            "{}",
            single.display()
        );
    }
    assert_eq!(checks(&got[1]), json!(["rsa_modulus_small"]));
    assert_eq!(got[2]["key"], "ECDSA P-256");

    // The listing names each key of the file by its place.
    let out = home.run(&["analyze", s(&file)]);
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(
        listing.contains(&format!(
            "{}#2: public-key public key (RSA-1024): 1 finding",
            file.display()
        )),
        "{listing}"
    );
    assert!(listing.contains("rsa_modulus_small"), "{listing}");
    assert_eq!(out.status.code(), Some(3), "{}", common::text(&out));
}

/// An `openssl genpkey` key of `algorithm` in `dir`: the private key's text and the public
/// key's PEM file.
fn openssl_key(dir: &Path, name: &str, algorithm: &[&str]) -> (String, PathBuf) {
    let private = dir.join(format!("{name}.key"));
    let mut args = vec!["genpkey", "-out", s(&private)];
    args.extend_from_slice(algorithm);
    tool("openssl", &args);
    let public = dir.join(format!("{name}.pub.pem"));
    tool(
        "openssl",
        &["pkey", "-in", s(&private), "-pubout", "-out", s(&public)],
    );
    let text = String::from_utf8(tool(
        "openssl",
        &["pkey", "-in", s(&private), "-text", "-noout"],
    ))
    .unwrap();
    (text, public)
}

/// The private JWK of an `openssl pkey -text` dump, every member taken from it.
fn jwk_of(text: &str, kty: &str, crv: Option<&str>) -> Value {
    match (kty, crv) {
        ("RSA", _) => {
            let exponent = text
                .lines()
                .find_map(|l| l.strip_prefix("publicExponent: "))
                .and_then(|l| l.split("(0x").nth(1))
                .and_then(|l| l.strip_suffix(')'))
                .unwrap();
            let exponent = hex::decode(format!("{exponent:0>6}")).unwrap();
            let m = |name| b64url(uint(&text_field(text, name)));
            json!({
                "kty": "RSA", "kid": "rsa", "use": "sig",
                "n": m("modulus"), "e": b64url(uint(&exponent)),
                "d": m("privateExponent"), "p": m("prime1"), "q": m("prime2"),
                "dp": m("exponent1"), "dq": m("exponent2"), "qi": m("coefficient"),
            })
        }
        ("EC", Some(crv)) => {
            let point = text_field(text, "pub");
            assert_eq!(point[0], 4, "uncompressed");
            let (x, y) = point[1..].split_at((point.len() - 1) / 2);
            json!({
                "kty": "EC", "crv": crv, "kid": crv,
                "x": b64url(x), "y": b64url(y), "d": b64url(&text_field(text, "priv")),
            })
        }
        ("OKP", Some(crv)) => json!({
            "kty": "OKP", "crv": crv, "kid": crv,
            "x": b64url(&text_field(text, "pub")), "d": b64url(&text_field(text, "priv")),
        }),
        _ => unreachable!(),
    }
}

#[test]
fn jwk_and_jwk_sets_read_like_the_openssl_keys() {
    let home = Home::new();
    let dir = home.path("keys");
    std::fs::create_dir_all(&dir).unwrap();
    let kinds: [(&str, &[&str], &str, Option<&str>); 10] = [
        (
            "rsa1024",
            &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"],
            "RSA",
            None,
        ),
        (
            "rsa2048",
            &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
            "RSA",
            None,
        ),
        (
            "p256",
            &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
            "EC",
            Some("P-256"),
        ),
        (
            "p384",
            &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
            "EC",
            Some("P-384"),
        ),
        (
            "p521",
            &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-521"],
            "EC",
            Some("P-521"),
        ),
        (
            "k256",
            &[
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:secp256k1",
            ],
            "EC",
            Some("secp256k1"),
        ),
        (
            "ed25519",
            &["-algorithm", "ED25519"],
            "OKP",
            Some("Ed25519"),
        ),
        ("ed448", &["-algorithm", "ED448"], "OKP", Some("Ed448")),
        ("x25519", &["-algorithm", "X25519"], "OKP", Some("X25519")),
        ("x448", &["-algorithm", "X448"], "OKP", Some("X448")),
    ];
    let mut pems = Vec::new();
    let mut jwks = Vec::new();
    let mut set = Vec::new();
    // The same RSA and ECDSA keys as OpenSSH lines, converted by ssh-keygen.
    let mut ssh = Vec::new();
    for (name, algorithm, kty, crv) in kinds {
        let (text, pem) = openssl_key(&dir, name, algorithm);
        let jwk = jwk_of(&text, kty, crv);
        jwks.push(write(&dir, &format!("{name}.jwk"), jwk.to_string()));
        set.push(jwk);
        if kty == "RSA" || matches!(crv, Some("P-256" | "P-384" | "P-521")) {
            let line = tool("ssh-keygen", &["-i", "-m", "PKCS8", "-f", s(&pem)]);
            ssh.push(Some(write(&dir, &format!("{name}.ssh.pub"), line)));
        } else if crv == Some("Ed25519") {
            // ssh-keygen cannot import an Ed25519 PEM: the line is written here (RFC 8709).
            let line = ssh_line("ssh-ed25519", &[&text_field(&text, "pub")]);
            ssh.push(Some(write(&dir, &format!("{name}.ssh.pub"), line)));
        } else {
            ssh.push(None);
        }
        pems.push(pem);
    }
    let set_file = write(
        &dir,
        "jwks.json",
        serde_json::to_string_pretty(&json!({"keys": set})).unwrap(),
    );
    let mut files: Vec<&Path> = pems.iter().map(PathBuf::as_path).collect();
    files.extend(jwks.iter().map(PathBuf::as_path));
    files.extend(ssh.iter().flatten().map(PathBuf::as_path));
    files.push(&set_file);
    let doc = analyze(&home, &files, 3);

    let in_set = objects(&doc, &set_file);
    assert_eq!(in_set.len(), kinds.len());
    for (i, (name, _, _, _)) in kinds.iter().enumerate() {
        let want = verdict(only(&doc, &pems[i]));
        assert_eq!(verdict(only(&doc, &jwks[i])), want, "{name} JWK");
        assert_eq!(verdict(&in_set[i]), want, "{name} in the JWK Set");
        assert_eq!(key_of(&jwks[i]), key_of(&pems[i]), "{name}");
        if let Some(line) = &ssh[i] {
            assert_eq!(verdict(only(&doc, line)), want, "{name} OpenSSH");
            assert_eq!(key_of(line), key_of(&pems[i]), "{name} OpenSSH");
        }
        assert_eq!(want["spki_sha256"], openssl_spki_sha256(&pems[i]), "{name}");
    }
    let key = |i: usize| only(&doc, &jwks[i])["key"].clone();
    assert_eq!(key(0), "RSA-1024");
    assert_eq!(checks(only(&doc, &jwks[0])), json!(["rsa_modulus_small"]));
    assert_eq!(key(5), "ECDSA secp256k1");
    assert_eq!(key(9), "X448");
}

#[test]
fn malformed_inputs_are_clear_errors() {
    let home = Home::new();
    let dir = home.path("bad");
    std::fs::create_dir_all(&dir).unwrap();
    let good = ssh_keygen(&dir, "good", &["-t", "ed25519"]).unwrap();
    let good_line = std::fs::read_to_string(&good).unwrap();
    let rsa = ssh_keygen(&dir, "rsa", &["-t", "rsa", "-b", "2048"]).unwrap();
    let rsa_line = std::fs::read_to_string(&rsa).unwrap();
    // Cut inside the base64, on a 4-character boundary: decodable, but the blob is short.
    let cut = rsa_line[..rsa_line.find(' ').unwrap() + 1 + 200].to_string();
    let p256 = b64url(&[1; 32]);
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "truncated.pub",
            cut,
            "unparseable OpenSSH public key: line 1: the key is truncated: `n` claims 257 bytes",
        ),
        (
            "damaged.pub",
            rsa_line.replacen("AAAA", "AA*A", 1),
            "line 1: the key is not valid base64",
        ),
        (
            "authorized_keys",
            format!(
                "{}\n# next\n{}\n",
                good_line.trim_end(),
                ssh_line("ssh-ed25519", &[&[7; 31]])
            ),
            "line 3: the Ed25519 public key is 31 bytes, not 32",
        ),
        (
            "options.pub",
            format!("{good_line}command=\"no end ssh-ed25519 AAAA\n"),
            "line 2: the options have an unterminated double quote",
        ),
        (
            "sk.pub",
            format!("{good_line}no-touch-required sk-ssh-ed25519@openssh.com AAAAGnNr me\n"),
            "unsupported OpenSSH public key: line 2: `sk-ssh-ed25519@openssh.com` is a FIDO \
             security-key",
        ),
        (
            "kty.jwk",
            json!({"kty": "FOO", "n": "AQAB"}).to_string(),
            "unsupported JWK: member `kty` is `FOO`, not a key type certresponder reads",
        ),
        (
            "oct.jwk",
            json!({"kty": "oct", "k": "AQAB"}).to_string(),
            "symmetric key",
        ),
        (
            "n.jwk",
            json!({"kty": "RSA", "n": "a+b/", "e": "AQAB"}).to_string(),
            "unparseable JWK: member `n` is not base64url",
        ),
        (
            "x.jwk",
            json!({"kty": "EC", "crv": "P-256", "x": b64url(&[1; 33]), "y": p256}).to_string(),
            "member `x` is 33 bytes, longer than a P-256 coordinate (32)",
        ),
        (
            "okp.jwk",
            json!({"kty": "OKP", "crv": "Ed448", "x": p256}).to_string(),
            "member `x` is 32 bytes; an Ed448 public key is 57",
        ),
        (
            "set.json",
            json!({"keys": [
                {"kty": "EC", "crv": "P-256", "x": p256, "y": p256},
                {"kty": "EC", "crv": "P-256", "x": p256, "kid": "second"},
            ]})
            .to_string(),
            "key #2 of the set (kid `second`): member `y` is missing",
        ),
        (
            "broken.json",
            "{\"kty\": \"RSA\", \"n\": ".into(),
            "unparseable JWK: not valid JSON: EOF while parsing",
        ),
    ];
    let files: Vec<PathBuf> = cases
        .iter()
        .map(|(name, text, _)| write(&dir, name, text))
        .collect();
    let mut args: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    // A good file among them is still analysed; the bad ones make the status 2.
    args.push(&good);
    let doc = analyze(&home, &args, 2);
    assert_eq!(only(&doc, &good)["key"], "Ed25519");
    for ((name, _, want), file) in cases.iter().zip(&files) {
        let got = file_error(&doc, file);
        assert!(got.contains(want), "{name}: {want:?} not in {got:?}");
    }
    assert_eq!(doc["summary"]["unreadable"], cases.len());

    // A valid EC point that is not on the curve is read, and is a finding.
    let off_curve = write(
        &dir,
        "off-curve.jwk",
        json!({"kty": "EC", "crv": "P-256", "x": p256, "y": p256}).to_string(),
    );
    let doc = analyze(&home, &[&off_curve], 3);
    assert_eq!(checks(only(&doc, &off_curve)), json!(["ec_point_invalid"]));
}
