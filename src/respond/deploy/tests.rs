//! Tests of `respond::deploy`.
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use certresponder_inventory::inspect::encode_pem;
use certresponder_inventory::{
    BundleState, CertId, Paths, SecretPem, inspect::inspect_certificate_der,
};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use tempfile::TempDir;

use super::*;

/// A bundle for `web.example.test` under a two-level test PKI: leaf signed by an
/// intermediate signed by a root, the chain being intermediate then root.
fn bundle_for(key: &KeyPair, key_pem: String) -> Bundle {
    let ca = |cn: &str| {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, cn);
        p
    };
    let root_key = KeyPair::generate().unwrap();
    let root = ca("Deploy Test Root");
    let root_cert = root.self_signed(&root_key).unwrap();
    let root_issuer = Issuer::new(root, root_key);
    let int_key = KeyPair::generate().unwrap();
    let int = ca("Deploy Test Intermediate");
    let int_cert = int.signed_by(&int_key, &root_issuer).unwrap();
    let int_issuer = Issuer::new(int, int_key);
    let mut leaf = CertificateParams::new(vec!["web.example.test".to_string()]).unwrap();
    leaf.distinguished_name
        .push(DnType::CommonName, "web.example.test");
    let leaf_cert = leaf.signed_by(key, &int_issuer).unwrap();
    let info = inspect_certificate_der(leaf_cert.der()).unwrap();
    Bundle {
        id: info.fingerprints.cert_sha256[..16].to_string(),
        cert_id: "web".into(),
        leaf_pem: encode_pem("CERTIFICATE", leaf_cert.der()),
        chain_pem: encode_pem("CERTIFICATE", int_cert.der())
            + &encode_pem("CERTIFICATE", root_cert.der()),
        key_pem: Some(SecretPem::new(key_pem)),
        fingerprints: info.fingerprints,
        serial: info.serial,
        issuer: info.issuer,
        not_after: info.not_after,
        created_at: chrono::Utc::now(),
        origin: "issued".into(),
        state: BundleState::Current,
        revoked_at: None,
    }
}

fn new_bundle() -> Bundle {
    let key = KeyPair::generate().unwrap();
    bundle_for(&key, key.serialize_pem())
}

fn entry(paths: Paths) -> ManagedCert {
    ManagedCert::new(
        CertId::new("web").unwrap(),
        "team-web",
        paths,
        "/etc/certresponder/inventory/web.toml",
    )
}

/// Every location, in `dir` (the PKCS#12 file and its password in `dir/p12`).
fn full_entry(dir: &Path) -> ManagedCert {
    std::fs::create_dir_all(dir.join("p12")).unwrap();
    std::fs::write(dir.join("p12/password"), "s3cret pass\nsecond line\n").unwrap();
    entry(Paths {
        cert: dir.join("cert.pem"),
        key: Some(dir.join("key.pem")),
        chain: Some(dir.join("chain.pem")),
        fullchain: Some(dir.join("fullchain.pem")),
        combined: Some(dir.join("combined.pem")),
        pkcs12: Some(dir.join("p12/web.p12")),
        pkcs12_password_file: Some(dir.join("p12/password")),
    })
}

fn opts() -> DeployOptions {
    DeployOptions {
        hook_timeout: Duration::from_secs(20),
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

/// Every file name in `dir` and its subdirectories, sorted.
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if e.file_type().unwrap().is_dir() {
            out.extend(tree(&e.path()).into_iter().map(|n| format!("{name}/{n}")));
        } else {
            out.push(name);
        }
    }
    out.sort();
    out
}

/// Every file's bytes, keyed by name.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    tree(dir)
        .into_iter()
        .map(|n| {
            let bytes = std::fs::read(dir.join(&n)).unwrap();
            (n, bytes)
        })
        .collect()
}

fn key_text(b: &Bundle) -> &str {
    b.key_pem.as_ref().unwrap().expose()
}

fn openssl(args: &[&str]) -> std::process::Output {
    Command::new("openssl")
        .args(args)
        .output()
        .expect("the openssl command must be installed for these tests")
}

#[tokio::test]
async fn every_location_gets_its_layout() {
    let dir = TempDir::new().unwrap();
    let e = full_entry(dir.path());
    let b = new_bundle();
    let report = deploy(&e, &b, &opts()).await.unwrap();
    let p = &e.paths;
    assert_eq!(
        report.written,
        [
            p.cert.clone(),
            p.key.clone().unwrap(),
            p.chain.clone().unwrap(),
            p.fullchain.clone().unwrap(),
            p.combined.clone().unwrap(),
            p.pkcs12.clone().unwrap(),
        ]
    );
    assert!(report.hook.is_none());
    // With `chain` and `fullchain` present, `cert` is the leaf alone.
    assert_eq!(read(&p.cert), b.leaf_pem);
    assert_eq!(read(p.key.as_ref().unwrap()), key_text(&b));
    assert_eq!(read(p.chain.as_ref().unwrap()), b.chain_pem);
    assert_eq!(
        read(p.fullchain.as_ref().unwrap()),
        format!("{}{}", b.leaf_pem, b.chain_pem)
    );
    assert_eq!(
        read(p.combined.as_ref().unwrap()),
        format!("{}{}{}", b.leaf_pem, b.chain_pem, key_text(&b))
    );
    // The chain file holds the intermediate then the root, not the leaf.
    let chain = inspect::read_certificates(read(p.chain.as_ref().unwrap()).as_bytes()).unwrap();
    assert_eq!(chain.len(), 2);
    assert!(
        inspect_certificate_der(&chain[0])
            .unwrap()
            .subject
            .contains("Intermediate")
    );
    // The PKCS#12 file: key, leaf and chain, alias = entry name, password = first line.
    let p12 = std::fs::read(p.pkcs12.as_ref().unwrap()).unwrap();
    let store = KeyStore::from_pkcs12(
        &p12,
        "s3cret pass",
        p12_keystore::Pkcs12ImportPolicy::Strict,
    )
    .unwrap();
    let (alias, keychain) = store.private_key_chain().unwrap();
    assert_eq!(alias, "web");
    let ders: Vec<&[u8]> = keychain.certs().iter().map(Certificate::as_der).collect();
    let want: Vec<Vec<u8>> =
        inspect::read_certificates(format!("{}{}", b.leaf_pem, b.chain_pem).as_bytes()).unwrap();
    assert_eq!(ders, want.iter().map(Vec::as_slice).collect::<Vec<_>>());
    let key = inspect::read_private_key(keychain.key().as_der()).unwrap();
    let leaf = inspect_certificate_der(&want[0]).unwrap();
    assert!(key.public.same_public_key(&leaf.key));
    assert!(
        KeyStore::from_pkcs12(&p12, "s3cret pass\n", Default::default()).is_err(),
        "only the first line, without its ending, is the password"
    );
    check_deployed(&e, &b).unwrap();
}

#[tokio::test]
async fn cert_carries_the_chain_unless_a_chain_location_exists() {
    let dir = TempDir::new().unwrap();
    let b = new_bundle();
    let alone = entry(Paths {
        cert: dir.path().join("a-cert.pem"),
        key: Some(dir.path().join("a-key.pem")),
        chain: None,
        fullchain: None,
        combined: None,
        pkcs12: None,
        pkcs12_password_file: None,
    });
    deploy(&alone, &b, &opts()).await.unwrap();
    assert_eq!(
        read(&alone.paths.cert),
        format!("{}{}", b.leaf_pem, b.chain_pem)
    );
    check_deployed(&alone, &b).unwrap();

    let with_full = entry(Paths {
        cert: dir.path().join("b-cert.pem"),
        key: None,
        chain: None,
        fullchain: Some(dir.path().join("b-full.pem")),
        combined: None,
        pkcs12: None,
        pkcs12_password_file: None,
    });
    deploy(&with_full, &b, &opts()).await.unwrap();
    assert_eq!(read(&with_full.paths.cert), b.leaf_pem);
    check_deployed(&with_full, &b).unwrap();

    // A cert-only location with the leaf alone is missing the intermediates.
    std::fs::write(&alone.paths.cert, &b.leaf_pem).unwrap();
    let err = check_deployed(&alone, &b).unwrap_err().to_string();
    assert!(
        err.contains("`cert`") && err.contains("holds 1 certificate(s)"),
        "{err}"
    );
}

#[tokio::test]
async fn redeploy_is_byte_identical_and_modes_are_kept() {
    let dir = TempDir::new().unwrap();
    let e = full_entry(dir.path());
    let p = &e.paths;
    let b = new_bundle();
    deploy(&e, &b, &opts()).await.unwrap();
    for secret in [&p.key, &p.combined, &p.pkcs12] {
        assert_eq!(mode(secret.as_ref().unwrap()), 0o600);
    }
    for public in [Some(&p.cert), p.chain.as_ref(), p.fullchain.as_ref()] {
        assert_eq!(mode(public.unwrap()), 0o644);
    }
    let first = snapshot(dir.path());
    std::fs::set_permissions(
        p.key.as_ref().unwrap(),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    std::fs::set_permissions(&p.cert, std::fs::Permissions::from_mode(0o444)).unwrap();

    let report = deploy(&e, &b, &opts()).await.unwrap();
    assert_eq!(report.written.len(), 6);
    let second = snapshot(dir.path());
    for ((name, a), (name2, b2)) in first.iter().zip(&second) {
        assert_eq!(name, name2);
        if name.ends_with(".p12") {
            // Fresh salts and IVs; the content is checked below.
            continue;
        }
        assert_eq!(a, b2, "{name} changed on redeploy");
    }
    assert_eq!(first.len(), second.len(), "no temporary file left behind");
    assert_eq!(mode(p.key.as_ref().unwrap()), 0o640);
    assert_eq!(mode(&p.cert), 0o444);
    check_deployed(&e, &b).unwrap();
}

#[tokio::test]
async fn failed_staging_replaces_nothing() {
    let dir = TempDir::new().unwrap();
    let e = full_entry(dir.path());
    let old = new_bundle();
    deploy(&e, &old, &opts()).await.unwrap();
    let before = snapshot(dir.path());
    let new = new_bundle();

    // The PKCS#12 file, staged last, in a directory that does not exist: the five
    // files staged before it must be removed, and nothing replaced. (The tests run as
    // root, so a read-only directory would not stop the write.)
    let mut bad_dir = e.clone();
    bad_dir.paths.pkcs12 = Some(dir.path().join("missing/web.p12"));
    let err = deploy(&bad_dir, &new, &opts()).await.unwrap_err();
    assert!(
        matches!(&err, DeployError::Io { at, .. } if at.field == "pkcs12" && at.entry == "web"),
        "{err}"
    );
    assert!(err.to_string().contains("missing/web.p12"), "{err}");
    assert_eq!(snapshot(dir.path()), before);

    // A password file that cannot be read.
    let mut bad_password = e.clone();
    bad_password.paths.pkcs12_password_file = Some(dir.path().join("p12/nope"));
    let err = deploy(&bad_password, &new, &opts()).await.unwrap_err();
    assert!(
        matches!(&err, DeployError::Password { at, .. } if at.field == "pkcs12_password_file"),
        "{err}"
    );
    assert!(err.to_string().contains("p12/nope"), "{err}");
    assert_eq!(snapshot(dir.path()), before);

    // A bundle without a key, for an entry with key locations.
    let mut keyless = new.clone();
    keyless.key_pem = None;
    let err = deploy(&e, &keyless, &opts()).await.unwrap_err();
    assert!(
        matches!(&err, DeployError::NoKey { at, bundle } if at.field == "key" && *bundle == new.id),
        "{err}"
    );
    let mut combined_only = e.clone();
    combined_only.paths.key = None;
    let err = deploy(&combined_only, &keyless, &opts()).await.unwrap_err();
    assert!(
        matches!(&err, DeployError::NoKey { at, .. } if at.field == "combined"),
        "{err}"
    );
    assert_eq!(snapshot(dir.path()), before);

    // A bundle whose key belongs to another certificate is never deployed.
    let mut mismatched = new.clone();
    mismatched.key_pem = old.key_pem.clone();
    let err = deploy(&e, &mismatched, &opts()).await.unwrap_err();
    assert!(
        matches!(&err, DeployError::Render { at, .. } if at.field == "key"),
        "{err}"
    );
    assert!(!err.to_string().contains("PRIVATE KEY"), "{err}");
    assert_eq!(snapshot(dir.path()), before);

    // Two fields naming one file.
    let mut same = e.clone();
    same.paths.fullchain = Some(e.paths.cert.clone());
    let err = deploy(&same, &new, &opts()).await.unwrap_err();
    assert!(
        matches!(&err, DeployError::SamePath { at, other: "cert" } if at.field == "fullchain"),
        "{err}"
    );
    assert_eq!(snapshot(dir.path()), before);
    check_deployed(&e, &old).unwrap();
}

#[tokio::test]
async fn hook_gets_its_environment_and_failures_are_errors() {
    let dir = TempDir::new().unwrap();
    let out = dir.path().join("hook-env.txt");
    let mut e = full_entry(dir.path());
    e.paths.chain = None;
    e.deploy_hook = Some(format!(
        "env | grep '^CERTRESPONDER_' | grep -v '^CERTRESPONDER_TEST_' | sort > '{}'; cmp -s \"$CERTRESPONDER_CERT_PATH\" \"$CERTRESPONDER_CERT_PATH\"",
        out.display()
    ));
    let b = new_bundle();
    let report = deploy(&e, &b, &opts()).await.unwrap();
    assert!(report.hook.as_ref().is_some_and(CommandOutcome::success));
    let d = dir.path().display();
    let want = format!(
        "CERTRESPONDER_BUNDLE_ID={}\n\
         CERTRESPONDER_CERT_NAME=web\n\
         CERTRESPONDER_CERT_PATH={d}/cert.pem\n\
         CERTRESPONDER_COMBINED_PATH={d}/combined.pem\n\
         CERTRESPONDER_FULLCHAIN_PATH={d}/fullchain.pem\n\
         CERTRESPONDER_KEY_PATH={d}/key.pem\n\
         CERTRESPONDER_PKCS12_PATH={d}/p12/web.p12\n",
        b.id
    );
    assert_eq!(read(&out), want, "no CHAIN_PATH: the entry has no `chain`");

    // The hook sees the new files already in place.
    e.deploy_hook = Some(
        "grep -q \"$(sed -n 2p \"$CERTRESPONDER_CERT_PATH\")\" \"$CERTRESPONDER_FULLCHAIN_PATH\" || exit 9; echo 'boom: upload refused' >&2; exit 4"
            .into(),
    );
    let b2 = new_bundle();
    let err = deploy(&e, &b2, &opts()).await.unwrap_err();
    let DeployError::HookFailed {
        at,
        detail,
        outcome,
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!((at.field, at.entry.as_str()), ("deploy_hook", "web"));
    assert_eq!(outcome.exit_code, Some(4));
    assert_eq!(detail, "exit status 4; stderr: boom: upload refused");
    let msg = err.to_string();
    assert!(
        msg.contains("files were written") && msg.contains("boom"),
        "{msg}"
    );
    assert!(msg.contains("web.toml"), "{msg}");
    check_deployed(&e, &b2).unwrap();

    e.deploy_hook = Some("sleep 30".into());
    let short_wait = DeployOptions {
        hook_timeout: Duration::from_millis(300),
    };
    let err = deploy(&e, &b2, &short_wait).await.unwrap_err();
    assert!(err.to_string().contains("timed out"), "{err}");
}

#[tokio::test]
async fn check_deployed_catches_swapped_key_and_stale_files() {
    let dir = TempDir::new().unwrap();
    let e = full_entry(dir.path());
    let p = e.paths.clone();
    let (b, other) = (new_bundle(), new_bundle());
    deploy(&e, &b, &opts()).await.unwrap();
    check_deployed(&e, &b).unwrap();

    // Someone else's key in the key file.
    std::fs::write(p.key.as_ref().unwrap(), key_text(&other)).unwrap();
    let err = check_deployed(&e, &b).unwrap_err();
    assert!(
        matches!(&err, DeployError::Mismatch { at, .. } if at.field == "key"),
        "{err}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("does not match") && msg.contains(&b.id),
        "{msg}"
    );
    assert!(!msg.contains("PRIVATE KEY"), "{msg}");
    deploy(&e, &b, &opts()).await.unwrap();

    // A stale certificate.
    std::fs::write(&p.cert, &other.leaf_pem).unwrap();
    let err = check_deployed(&e, &b).unwrap_err();
    assert!(
        matches!(&err, DeployError::Mismatch { at, .. } if at.field == "cert"),
        "{err}"
    );
    assert!(
        err.to_string().contains(&format!(
            "holds certificate {} but bundle {} has {}",
            other.id, b.id, b.id
        )),
        "{err}"
    );
    deploy(&e, &b, &opts()).await.unwrap();

    // Every other location, swapped for the other bundle's.
    let mut whole_other = e.clone();
    whole_other.paths = Paths {
        cert: dir.path().join("o-cert.pem"),
        key: Some(dir.path().join("o-key.pem")),
        chain: Some(dir.path().join("o-chain.pem")),
        fullchain: Some(dir.path().join("o-full.pem")),
        combined: Some(dir.path().join("o-combined.pem")),
        pkcs12: Some(dir.path().join("o.p12")),
        pkcs12_password_file: p.pkcs12_password_file.clone(),
    };
    deploy(&whole_other, &other, &opts()).await.unwrap();
    let o = whole_other.paths.clone();
    for (field, ours, theirs) in [
        ("chain", p.chain.clone(), o.chain.clone()),
        ("fullchain", p.fullchain.clone(), o.fullchain.clone()),
        ("combined", p.combined.clone(), o.combined.clone()),
        ("pkcs12", p.pkcs12.clone(), o.pkcs12.clone()),
    ] {
        let (ours, theirs) = (ours.unwrap(), theirs.unwrap());
        let saved = std::fs::read(&ours).unwrap();
        std::fs::copy(&theirs, &ours).unwrap();
        let err = check_deployed(&e, &b).unwrap_err();
        assert!(
            matches!(&err, DeployError::Mismatch { at, .. } if at.field == field && at.path == ours),
            "{field}: {err}"
        );
        std::fs::write(&ours, saved).unwrap();
        check_deployed(&e, &b).unwrap();
    }

    // A combined file whose certificates are right but whose key is not.
    let combined = p.combined.as_ref().unwrap();
    std::fs::write(
        combined,
        format!("{}{}{}", b.leaf_pem, b.chain_pem, key_text(&other)),
    )
    .unwrap();
    let err = check_deployed(&e, &b).unwrap_err();
    assert!(
        matches!(&err, DeployError::Mismatch { at, .. } if at.field == "combined"),
        "{err}"
    );

    // A PKCS#12 file with another password, and a missing file.
    deploy(&e, &b, &opts()).await.unwrap();
    std::fs::write(p.pkcs12_password_file.as_ref().unwrap(), "changed\n").unwrap();
    let err = check_deployed(&e, &b).unwrap_err();
    assert!(
        matches!(&err, DeployError::Mismatch { at, .. } if at.field == "pkcs12"),
        "{err}"
    );
    std::fs::remove_file(p.chain.as_ref().unwrap()).unwrap();
    let err = check_deployed(&e, &b).unwrap_err();
    assert!(
        matches!(&err, DeployError::Io { at, .. } if at.field == "chain"),
        "{err}"
    );
}

/// `openssl pkcs12 -info` prints the bag structure on stderr and the PEM on stdout.
fn openssl_pkcs12(path: &Path, pass: &str, extra: &[&str]) -> (bool, String) {
    let passin = format!("pass:{pass}");
    let mut args = vec!["pkcs12", "-in", path.to_str().unwrap(), "-passin", &passin];
    args.extend_from_slice(extra);
    let out = openssl(&args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test]
async fn pkcs12_opens_with_openssl() {
    let dir = TempDir::new().unwrap();
    let e = full_entry(dir.path());
    let b = new_bundle();
    deploy(&e, &b, &opts()).await.unwrap();
    let p12 = e.paths.pkcs12.clone().unwrap();

    let (ok, info) = openssl_pkcs12(&p12, "s3cret pass", &["-info", "-nokeys"]);
    assert!(ok, "{info}");
    assert!(info.contains("MAC: sha256"), "{info}");
    assert!(
        info.contains("PBES2, PBKDF2, AES-256-CBC") && info.contains("hmacWithSHA256"),
        "{info}"
    );
    let certs = inspect::read_certificates(info.as_bytes()).unwrap();
    let want =
        inspect::read_certificates(format!("{}{}", b.leaf_pem, b.chain_pem).as_bytes()).unwrap();
    assert_eq!(certs.len(), 3);
    assert!(want.iter().all(|c| certs.contains(c)));

    // The key comes out too, and it is the bundle's key; its bag is named for the entry.
    let (ok, all) = openssl_pkcs12(&p12, "s3cret pass", &["-nodes"]);
    assert!(ok, "{all}");
    assert!(all.contains("friendlyName: web"), "{all}");
    let key = inspect::read_private_key(all.as_bytes()).unwrap();
    let leaf = inspect_certificate_der(&want[0]).unwrap();
    assert!(key.public.same_public_key(&leaf.key));

    let (ok, _) = openssl_pkcs12(&p12, "wrong", &["-info", "-nokeys"]);
    assert!(!ok, "a wrong password must not open it");

    // Without a password file the password is empty.
    let mut no_password = e.clone();
    no_password.paths.pkcs12_password_file = None;
    deploy(&no_password, &b, &opts()).await.unwrap();
    let (ok, info) = openssl_pkcs12(&p12, "", &["-info", "-nokeys"]);
    assert!(ok, "{info}");
    check_deployed(&no_password, &b).unwrap();
    assert!(check_deployed(&e, &b).is_err(), "the password changed");
}

#[tokio::test]
async fn pkcs1_sec1_and_rsa_keys() {
    let dir = TempDir::new().unwrap();
    let cases = [
        (
            "ec",
            KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap(),
        ),
        (
            "rsa",
            KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048).unwrap(),
        ),
        ("ed", KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap()),
    ];
    for (name, key) in cases {
        let sub = dir.path().join(name);
        std::fs::create_dir_all(&sub).unwrap();
        // OpenSSL's "traditional" form: PKCS#1 for RSA, SEC1 for EC. Ed25519 has none:
        // it stays rcgen's PKCS#8 v2 (with the public key), which OpenSSL 3.0 cannot
        // read, so the PKCS#12 file must carry it as v1.
        let traditional = if name == "ed" {
            key.serialize_pem()
        } else {
            let pkcs8 = sub.join("pkcs8.pem");
            std::fs::write(&pkcs8, key.serialize_pem()).unwrap();
            let out = openssl(&["pkey", "-in", pkcs8.to_str().unwrap(), "-traditional"]);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap()
        };
        let b = bundle_for(&key, traditional.clone());
        let e = full_entry(&sub);
        deploy(&e, &b, &opts()).await.unwrap();
        assert_eq!(read(e.paths.key.as_ref().unwrap()), traditional, "{name}");
        check_deployed(&e, &b).unwrap();
        let (ok, all) =
            openssl_pkcs12(e.paths.pkcs12.as_ref().unwrap(), "s3cret pass", &["-nodes"]);
        assert!(ok, "{name}: {all}");
        let k = inspect::read_private_key(all.as_bytes()).unwrap();
        let leaf =
            inspect_certificate_der(&inspect::read_certificates(b.leaf_pem.as_bytes()).unwrap()[0])
                .unwrap();
        assert!(k.public.same_public_key(&leaf.key), "{name}");
    }
}

#[test]
fn sec1_without_curve_is_refused_without_leaking_the_key() {
    // ECPrivateKey { version 1, privateKey OCTET STRING } and nothing else.
    let sec1 = der::encode(
        0x30,
        &[&[0x02, 0x01, 0x01][..], &der::encode(0x04, &[0x42; 32])].concat(),
    );
    let pem = encode_pem("EC PRIVATE KEY", &sec1);
    let err = pkcs8_der(&pem).unwrap_err();
    assert!(err.contains("does not name its curve"), "{err}");
    assert!(!err.contains("42") && !err.contains("Qk"), "{err}");
}
