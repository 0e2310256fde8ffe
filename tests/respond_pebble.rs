//! End to end: the revoke-and-reissue sequence of the real binary against a real Pebble (the
//! ACME issuer) and a real nginx (the service that serves the certificate over TLS with SNI).
//!
//! Each test starts its own Pebble and nginx on free ports in its own temporary directory,
//! puts a Pebble certificate in place with `certresponder reissue` (starting from a
//! self-signed placeholder), then reports that certificate's key compromised and checks what
//! a user relies on: which certificate nginx serves (seen by `openssl s_client`, not by
//! certresponder's own TLS code), what is on disk, what Pebble says about the old certificate
//! (its management interface, by serial) and what `history` and `cases show` say.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod live_support;

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use certresponder_inventory::inspect;
use live_support::*;
use serde_json::Value;

/// The inventory name of the certificate under test.
const NAME: &str = "shop-web";
/// The DNS name it is for, and the SNI nginx serves it under.
const DNS: &str = "www.shop.example.test";
/// Upper bound for one certresponder command; a hang fails the test instead of blocking it.
const COMMAND_LIMIT: Duration = Duration::from_secs(120);

// ---------------------------------------------------------------------------------------
// The world of one test
// ---------------------------------------------------------------------------------------

/// How the inventory entry reloads nginx.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reload {
    /// `nginx -s reload`.
    Nginx,
    /// A script that fails once with a message on stderr after the test arms it, and reloads
    /// nginx otherwise.
    FailOnceWhenArmed,
}

/// The message the armed reload script prints on stderr before exiting 1.
const RELOAD_FAILURE: &str = "nginx: [emerg] reload refused by the change freeze (test)";

struct World {
    home: tempfile::TempDir,
    pebble: Pebble,
    nginx: Nginx,
    cert: PathBuf,
    key: PathBuf,
    chain: PathBuf,
    fullchain: PathBuf,
    /// Every output the binary printed, to check that no private key ever appears.
    outputs: std::cell::RefCell<Vec<String>>,
}

impl World {
    /// Pebble, a self-signed placeholder at the entry's paths, nginx serving it, and then
    /// `certresponder reissue` putting a Pebble certificate in its place (the "old" one of
    /// the tests).
    fn new(reload: Reload, verify_timeout_secs: u64) -> Self {
        let home = tempfile::tempdir().unwrap();
        let pebble = Pebble::start();
        let certs = home.path().join("certs");
        std::fs::create_dir_all(&certs).unwrap();
        std::fs::create_dir_all(home.path().join("inventory")).unwrap();
        let (cert, key, chain, fullchain) = (
            certs.join("cert.pem"),
            certs.join("key.pem"),
            certs.join("chain.pem"),
            certs.join("fullchain.pem"),
        );
        let placeholder_key = rcgen::KeyPair::generate().unwrap();
        let placeholder = rcgen::CertificateParams::new(vec![DNS.to_string()])
            .unwrap()
            .self_signed(&placeholder_key)
            .unwrap();
        std::fs::write(&cert, placeholder.pem()).unwrap();
        std::fs::write(&fullchain, placeholder.pem()).unwrap();
        std::fs::write(&chain, "").unwrap();
        std::fs::write(&key, placeholder_key.serialize_pem()).unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();

        let port = free_port();
        let nginx = Nginx::start(
            &home.path().join("nginx"),
            port,
            &[(DNS.to_string(), fullchain.clone(), key.clone())],
        );
        assert_eq!(
            served_leaf(port, Some(DNS)).unwrap(),
            placeholder.der().to_vec(),
            "nginx does not serve the placeholder: {}",
            nginx.error_log()
        );
        assert_eq!(
            served_leaf(port, None).unwrap(),
            nginx.decoy_der,
            "without SNI nginx must serve the decoy, so that SNI is what selects the certificate"
        );

        let reload_command = match reload {
            Reload::Nginx => nginx.reload_command(),
            Reload::FailOnceWhenArmed => {
                let script = home.path().join("reload.sh");
                let arm = home.path().join("fail-next-reload");
                std::fs::write(
                    &script,
                    format!(
                        "#!/bin/sh\nif [ -e '{arm}' ]; then\n  rm -f '{arm}'\n  echo '{RELOAD_FAILURE}' >&2\n  exit 1\nfi\nexec {}\n",
                        nginx.reload_command(),
                        arm = arm.display()
                    ),
                )
                .unwrap();
                std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
                script.display().to_string()
            }
        };
        std::fs::write(
            home.path().join("certresponder.toml"),
            format!(
                "state_dir = \"state\"
inventory_dir = \"inventory\"

[respond]
reload_window_ms = 0
verify_timeout_secs = {verify_timeout_secs}
verify_interval_ms = 100
confirm_timeout_secs = 5

{}",
                pebble_issuer_toml(&pebble.directory_url, &pebble.tls_root)
            ),
        )
        .unwrap();
        std::fs::write(
            home.path().join("inventory/shop.toml"),
            format!(
                "[[cert]]
name = \"{NAME}\"
owner = \"team-shop@example.test\"
kind = \"tls-server\"
issuer = \"pebble\"
key_profile = \"ecdsa-p256\"
cert = \"{}\"
key = \"{}\"
chain = \"{}\"
fullchain = \"{}\"
reload = \"{reload_command}\"
verify = [{{ address = \"127.0.0.1:{port}\", sni = \"{DNS}\" }}]
",
                cert.display(),
                key.display(),
                chain.display(),
                fullchain.display()
            ),
        )
        .unwrap();

        let world = Self {
            home,
            pebble,
            nginx,
            cert,
            key,
            chain,
            fullchain,
            outputs: std::cell::RefCell::new(Vec::new()),
        };
        // The Pebble certificate that the tests then treat as the old, deployed one.
        let (v, _) = world.json(&["reissue", NAME, "--json"], 0);
        let case = &v["cases"][0];
        assert_eq!(case["state"], "done", "initial reissue: {v:#}");
        let leaf = world.leaf_on_disk();
        let info = inspect::inspect_certificate_der(&leaf).unwrap();
        assert!(
            info.issuer.contains("Pebble"),
            "the initial reissue did not put a Pebble certificate in place: {}",
            info.issuer
        );
        wait_served(port, DNS, &leaf, &world.nginx);
        assert_eq!(world.pebble.status(&leaf).status, "Valid");
        world
    }

    fn port(&self) -> u16 {
        self.nginx.port
    }

    /// Runs the binary with this world's configuration.
    fn run(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_certresponder"));
        cmd.arg("--config")
            .arg(self.home.path().join("certresponder.toml"))
            .args(args)
            .env("NO_COLOR", "1")
            .env_remove("CERTRESPONDER_CONFIG")
            .env_remove("CERTRESPONDER_FAULT");
        let out = run_bounded(cmd, COMMAND_LIMIT);
        self.outputs.borrow_mut().push(format!(
            "$ certresponder {}\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
        out
    }

    /// Runs, asserts the exit status and parses stdout as JSON.
    fn json(&self, args: &[&str], status: i32) -> (Value, Output) {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(status),
            "certresponder {args:?}: stdout {} stderr {}\nnginx log:\n{}\npebble log:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.nginx.error_log(),
            self.pebble.log()
        );
        let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "certresponder {args:?}: not JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        });
        (v, out)
    }

    /// The leaf in the entry's `cert` file (it holds the leaf alone: the entry has `chain`).
    fn leaf_on_disk(&self) -> Vec<u8> {
        let certs = inspect::read_certificates(&std::fs::read(&self.cert).unwrap()).unwrap();
        assert_eq!(
            certs.len(),
            1,
            "{} holds more than the leaf",
            self.cert.display()
        );
        certs.into_iter().next().unwrap()
    }

    /// Every location's bytes.
    fn files(&self) -> Vec<(PathBuf, Vec<u8>)> {
        [&self.cert, &self.key, &self.chain, &self.fullchain]
            .into_iter()
            .map(|p| (p.clone(), std::fs::read(p).unwrap()))
            .collect()
    }

    fn history(&self) -> Vec<Value> {
        let (v, _) = self.json(&["history", NAME, "--json"], 0);
        v.as_array()
            .unwrap_or_else(|| panic!("history is not a list: {v:#}"))
            .clone()
    }

    fn case(&self, id: u64) -> Value {
        self.json(&["cases", "show", &id.to_string(), "--json"], 0)
            .0
    }

    /// Asserts that no private key appears in anything the binary printed: neither a PEM
    /// block nor the private scalar of the given EC keys (hex, or base64 at any alignment,
    /// with line breaks and JSON `\n` escapes removed).
    fn assert_no_key_in_outputs(&self, keys: &[&[u8]]) {
        let fragments: Vec<String> = keys.iter().flat_map(|k| secret_fragments(k)).collect();
        for out in self.outputs.borrow().iter() {
            assert!(
                !out.contains("PRIVATE KEY"),
                "a private key was printed:\n{out}"
            );
            let flat = out.replace("\\n", "").replace(['\n', '\r'], "");
            for f in &fragments {
                assert!(
                    !flat.contains(f.as_str()),
                    "private key material was printed:\n{out}"
                );
            }
        }
    }
}

/// Encodings of an EC private key's secret scalar that would betray it in printed text.
fn secret_fragments(key_pem: &[u8]) -> Vec<String> {
    let blocks = inspect::parse_pem(key_pem).unwrap();
    let der = &blocks.first().expect("a PEM private key").der;
    // ECPrivateKey (RFC 5915): version INTEGER 1, then privateKey OCTET STRING (32 bytes for
    // P-256), here inside PKCS#8.
    let at = der
        .windows(5)
        .position(|w| w == [0x02, 0x01, 0x01, 0x04, 0x20])
        .expect("an ECDSA P-256 private key");
    let scalar = &der[at + 5..at + 5 + 32];
    let mut out = vec![hex::encode(scalar), hex::encode_upper(scalar)];
    for shift in 0..3 {
        let pem = inspect::encode_pem("X", &scalar[shift..]);
        let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        // The last group also encodes whatever follows the scalar: leave it out.
        out.push(b64[..b64.len() - 4].to_string());
    }
    out
}

/// The bundle with `id` in a history listing.
fn bundle<'a>(history: &'a [Value], id: &str) -> &'a Value {
    history
        .iter()
        .find(|b| b["id"] == id)
        .unwrap_or_else(|| panic!("bundle {id} is not in the history: {history:#?}"))
}

/// The step names of a case's journal, in order.
fn steps(case: &Value) -> Vec<String> {
    case["journal"]
        .as_array()
        .unwrap_or_else(|| panic!("no journal: {case:#}"))
        .iter()
        .map(|r| r["step"].as_str().unwrap().to_string())
        .collect()
}

/// The journal record of `step` (the last one, if it ran more than once).
fn record<'a>(case: &'a Value, step: &str) -> &'a Value {
    case["journal"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|r| r["step"] == step)
        .unwrap_or_else(|| panic!("no `{step}` in the journal: {case:#}"))
}

/// Every journal record finished, with an outcome and ordered timestamps.
fn assert_journal_complete(case: &Value) {
    let mut previous_end: Option<chrono::DateTime<chrono::Utc>> = None;
    for r in case["journal"].as_array().unwrap() {
        let outcome = r["outcome"].as_str().unwrap_or_default();
        assert!(
            ["ok", "skipped", "failed"].contains(&outcome),
            "step {} has outcome {outcome:?}: {case:#}",
            r["step"]
        );
        let at = |field: &str| {
            r[field]
                .as_str()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&chrono::Utc))
                .unwrap_or_else(|| panic!("step {} has no {field}: {r:#}", r["step"]))
        };
        let (start, end) = (at("started_at"), at("finished_at"));
        assert!(
            start <= end,
            "step {} finished before it started: {r:#}",
            r["step"]
        );
        if let Some(prev) = previous_end {
            assert!(
                prev <= start,
                "step {} started before the previous ended",
                r["step"]
            );
        }
        previous_end = Some(end);
        assert!(
            !r["detail"].as_str().unwrap_or_default().is_empty(),
            "step {} has no detail: {r:#}",
            r["step"]
        );
    }
}

/// Runs `report-compromise` and returns its only case.
fn report(world: &World, status: i32) -> Value {
    let (v, _) = world.json(
        &[
            "report-compromise",
            NAME,
            "--evidence",
            "key pasted in a public CI log (test)",
            "--json",
        ],
        status,
    );
    assert_eq!(v["errors"], serde_json::json!([]), "{v:#}");
    let cases = v["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 1, "{v:#}");
    assert!(
        cases[0].get("new_key").is_none(),
        "the case JSON carries new_key: {v:#}"
    );
    cases[0].clone()
}

// ---------------------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------------------

/// The whole revoke-and-reissue: a new key and Pebble certificate deployed, nginx serving
/// it, the old certificate revoked at Pebble for keyCompromise, and the history and journal
/// saying so without ever printing a key.
#[test]
fn report_compromise_through_pebble_and_nginx() {
    let started = Instant::now();
    let world = World::new(Reload::Nginx, 20);
    let old_leaf = world.leaf_on_disk();
    let old_key = std::fs::read(&world.key).unwrap();
    let old_id = sha256_hex(&old_leaf)[..16].to_string();

    let case = report(&world, 0);
    assert_eq!(case["state"], "done", "{case:#}");
    assert_eq!(case["kind"], "revoke_reissue");
    assert_eq!(case["reason"], "keyCompromise");
    assert_eq!(case["rolled_back"], false);
    assert_eq!(case["old_bundle"], old_id.as_str(), "{case:#}");

    // A new key and certificate are on disk, and nginx serves the new leaf for the SNI.
    let new_leaf = world.leaf_on_disk();
    let new_key = std::fs::read(&world.key).unwrap();
    assert_ne!(new_leaf, old_leaf, "the certificate file was not replaced");
    assert_ne!(new_key, old_key, "the key file was not replaced");
    let new_id = sha256_hex(&new_leaf)[..16].to_string();
    assert_eq!(case["new_bundle"], new_id.as_str(), "{case:#}");
    let new_info = inspect::inspect_certificate_der(&new_leaf).unwrap();
    let old_info = inspect::inspect_certificate_der(&old_leaf).unwrap();
    assert!(new_info.issuer.contains("Pebble"), "{}", new_info.issuer);
    assert_eq!(new_info.dns_names, vec![DNS.to_string()]);
    assert_ne!(
        new_info.fingerprints.spki_sha256, old_info.fingerprints.spki_sha256,
        "the new certificate must certify a new key"
    );
    let key_info = inspect::read_private_key(&new_key).unwrap();
    assert!(
        key_info.public.same_public_key(&new_info.key),
        "the key file does not match the new certificate"
    );
    let fullchain = inspect::read_certificates(&std::fs::read(&world.fullchain).unwrap()).unwrap();
    let chain = inspect::read_certificates(&std::fs::read(&world.chain).unwrap()).unwrap();
    assert_eq!(
        fullchain.first(),
        Some(&new_leaf),
        "fullchain does not start with the leaf"
    );
    assert_eq!(
        &fullchain[1..],
        chain.as_slice(),
        "fullchain is not leaf + chain"
    );
    assert!(
        !chain.is_empty(),
        "Pebble's intermediate is missing from the chain file"
    );
    let mode = std::fs::metadata(&world.key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "key file mode {mode:o}");

    // nginx serves the new leaf, from the first handshake after the case on. (After
    // `nginx -s reload` the old worker keeps accepting for about 100 ms; verify waits for
    // `verify_consecutive` matching handshakes in a row, so the case only ends once the old
    // worker is gone.)
    let mut served = Vec::new();
    for _ in 0..5 {
        served = served_leaf(world.port(), Some(DNS)).unwrap();
        assert_eq!(sha256_hex(&served), sha256_hex(&new_leaf));
    }

    // Pebble: the old certificate is revoked for key compromise, the new one is valid.
    let old_status = world.pebble.status(&old_leaf);
    assert_eq!(
        old_status,
        PebbleStatus {
            status: "Revoked".into(),
            reason: Some(1),
        },
        "the old certificate must be revoked for keyCompromise (1)"
    );
    assert_eq!(world.pebble.status(&new_leaf).status, "Valid");

    // history: the old bundle revoked, the new one current, matching the files and nginx.
    let history = world.history();
    let old = bundle(&history, &old_id);
    let new = bundle(&history, &new_id);
    assert_eq!(old["state"], "revoked", "{history:#?}");
    assert_eq!(new["state"], "current", "{history:#?}");
    assert_eq!(new["cert_sha256"], sha256_hex(&new_leaf).as_str());
    assert_eq!(new["cert_sha256"], sha256_hex(&served).as_str());
    assert_eq!(old["serial"], old_info.serial.as_str());
    let current: Vec<&Value> = history.iter().filter(|b| b["state"] == "current").collect();
    assert_eq!(current.len(), 1, "exactly one current bundle: {history:#?}");

    // cases show: every step of the sequence, in order, each finished with timestamps.
    let id = case["id"].as_u64().unwrap();
    let shown = world.case(id);
    assert!(shown.get("new_key").is_none(), "{shown:#}");
    assert_eq!(
        steps(&shown),
        [
            "snapshot", "new_key", "issue", "check", "record", "deploy", "reload", "verify",
            "revoke", "confirm", "close"
        ],
        "{shown:#}"
    );
    assert_journal_complete(&shown);
    for r in shown["journal"].as_array().unwrap() {
        assert_eq!(r["outcome"], "ok", "{r:#}");
    }
    assert!(
        record(&shown, "revoke")["detail"]
            .as_str()
            .unwrap()
            .contains(&old_info.serial),
        "{shown:#}"
    );
    assert!(
        record(&shown, "verify")["detail"]
            .as_str()
            .unwrap()
            .contains(&new_id),
        "{shown:#}"
    );
    assert_eq!(shown["state"], "done");
    assert_eq!(shown["issued_count"], 1);

    // The key never appears in anything printed (cases list too).
    world.json(&["cases", "list", "--json"], 0);
    world.run(&["cases", "show", &id.to_string()]);
    world.run(&["history", NAME]);
    world.assert_no_key_in_outputs(&[&old_key, &new_key]);

    let elapsed = started.elapsed();
    eprintln!("report_compromise_through_pebble_and_nginx: {elapsed:?}");
    assert!(elapsed < Duration::from_secs(90), "took {elapsed:?}");
}

/// What every rolled-back case must leave: the old files byte for byte, nginx serving the
/// old leaf, the old certificate valid at Pebble, and the old bundle current again.
fn assert_rolled_back(
    world: &World,
    case: &Value,
    before: &[(PathBuf, Vec<u8>)],
    old_leaf: &[u8],
    old_id: &str,
) {
    assert_eq!(case["state"], "failed", "{case:#}");
    assert_eq!(case["rolled_back"], true, "{case:#}");
    assert_eq!(case["old_bundle"], old_id, "{case:#}");
    let error = case["error"].as_str().unwrap_or_default();
    assert!(error.contains("not revoked"), "{error}");

    for (path, bytes) in before {
        let now = std::fs::read(path).unwrap();
        assert!(
            now == *bytes,
            "{} is not byte-identical to before the case",
            path.display()
        );
    }
    let mode = std::fs::metadata(&world.key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "key file mode {mode:o}");
    wait_served(world.port(), DNS, old_leaf, &world.nginx);
    // Stable: repeated handshakes keep serving the old leaf.
    for _ in 0..3 {
        assert_eq!(
            sha256_hex(&served_leaf(world.port(), Some(DNS)).unwrap()),
            sha256_hex(old_leaf)
        );
    }

    let status = world.pebble.status(old_leaf);
    assert_eq!(
        status.status, "Valid",
        "a rolled-back case must not revoke the certificate still in service: {status:?}"
    );

    let history = world.history();
    assert_eq!(bundle(&history, old_id)["state"], "current", "{history:#?}");
    let current: Vec<&Value> = history.iter().filter(|b| b["state"] == "current").collect();
    assert_eq!(current.len(), 1, "exactly one current bundle: {history:#?}");
    assert!(
        !history.iter().any(|b| b["state"] == "revoked"),
        "nothing was revoked: {history:#?}"
    );
    if let Some(new_id) = case["new_bundle"].as_str() {
        assert_eq!(
            bundle(&history, new_id)["state"],
            "previous",
            "{history:#?}"
        );
    }

    let id = case["id"].as_u64().unwrap();
    let shown = world.case(id);
    assert!(shown.get("new_key").is_none(), "{shown:#}");
    assert_journal_complete(&shown);
    let names = steps(&shown);
    assert!(!names.contains(&"revoke".to_string()), "{shown:#}");
    assert_eq!(
        names.last().map(String::as_str),
        Some("rollback"),
        "{shown:#}"
    );
    let rollback = record(&shown, "rollback");
    assert_eq!(rollback["outcome"], "ok", "{shown:#}");
    let detail = rollback["detail"].as_str().unwrap();
    assert!(
        detail.contains("reloaded") && detail.contains(&format!("serve bundle {old_id}")),
        "the rollback must reload and verify the old bundle: {detail}"
    );
    assert_eq!(record(&shown, "deploy")["outcome"], "ok", "{shown:#}");
}

/// The reload after deploying fails (its stderr is in the case error): the old bundle is
/// restored byte for byte, nginx keeps serving it, and it is not revoked.
#[test]
fn verify_failure_rolls_back_and_keeps_old_unrevoked() {
    let started = Instant::now();
    let world = World::new(Reload::FailOnceWhenArmed, 20);
    let old_leaf = world.leaf_on_disk();
    let old_key = std::fs::read(&world.key).unwrap();
    let old_id = sha256_hex(&old_leaf)[..16].to_string();
    let before = world.files();

    // The next reload (the one after the new bundle is deployed) fails; the rollback's
    // reload then succeeds.
    std::fs::write(world.home.path().join("fail-next-reload"), "").unwrap();
    let case = report(&world, 1);
    let error = case["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(RELOAD_FAILURE),
        "the error must carry the reload's stderr: {error}"
    );
    assert_rolled_back(&world, &case, &before, &old_leaf, &old_id);
    let shown = world.case(case["id"].as_u64().unwrap());
    assert_eq!(
        steps(&shown),
        [
            "snapshot", "new_key", "issue", "check", "record", "deploy", "reload", "rollback"
        ],
        "{shown:#}"
    );
    let reload = record(&shown, "reload");
    assert_eq!(reload["outcome"], "failed", "{shown:#}");
    assert!(
        reload["detail"].as_str().unwrap().contains(RELOAD_FAILURE),
        "{shown:#}"
    );
    assert!(
        !world.home.path().join("fail-next-reload").exists(),
        "the failing reload did not run"
    );

    // No key is printed anywhere.
    world.json(&["cases", "list", "--json"], 0);
    world.assert_no_key_in_outputs(&[&old_key]);

    let elapsed = started.elapsed();
    eprintln!("verify_failure_rolls_back_and_keeps_old_unrevoked: {elapsed:?}");
    assert!(elapsed < Duration::from_secs(90), "took {elapsed:?}");
}

/// The reload succeeds but nginx never serves the new certificate: verify gives up after
/// `verify_timeout_secs`, the old bundle is restored and stays unrevoked.
#[test]
fn verify_timeout_rolls_back() {
    let started = Instant::now();
    let world = World::new(Reload::Nginx, 3);
    let old_leaf = world.leaf_on_disk();
    let old_id = sha256_hex(&old_leaf)[..16].to_string();
    let before = world.files();

    // nginx now serves copies of the files: reloads succeed, yet it never picks up what
    // certresponder deploys to the inventory's paths.
    let served_dir = world.home.path().join("served");
    std::fs::create_dir_all(&served_dir).unwrap();
    let (copy_chain, copy_key) = (served_dir.join("fullchain.pem"), served_dir.join("key.pem"));
    std::fs::copy(&world.fullchain, &copy_chain).unwrap();
    std::fs::copy(&world.key, &copy_key).unwrap();
    world
        .nginx
        .write_conf(&[(DNS.to_string(), copy_chain.clone(), copy_key.clone())]);
    let out = run_bounded(
        {
            let mut c = Command::new("sh");
            c.arg("-c").arg(world.nginx.reload_command());
            c
        },
        Duration::from_secs(20),
    );
    assert!(out.status.success(), "{out:?}");
    wait_served(world.port(), DNS, &old_leaf, &world.nginx);

    let t = Instant::now();
    let case = report(&world, 1);
    let took = t.elapsed();
    let error = case["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(&format!("still serves {}", sha256_hex(&old_leaf))),
        "the error must say the endpoint still serves the old certificate: {error}"
    );
    assert_rolled_back(&world, &case, &before, &old_leaf, &old_id);
    let shown = world.case(case["id"].as_u64().unwrap());
    assert_eq!(
        steps(&shown),
        [
            "snapshot", "new_key", "issue", "check", "record", "deploy", "reload", "verify",
            "rollback"
        ],
        "{shown:#}"
    );
    assert_eq!(record(&shown, "reload")["outcome"], "ok", "{shown:#}");
    assert_eq!(record(&shown, "verify")["outcome"], "failed", "{shown:#}");
    assert!(
        took < Duration::from_secs(60),
        "report-compromise took {took:?}"
    );

    let elapsed = started.elapsed();
    eprintln!("verify_timeout_rolls_back: {elapsed:?} (report-compromise {took:?})");
    assert!(elapsed < Duration::from_secs(90), "took {elapsed:?}");
}

#[test]
fn an_acme_server_whose_certificate_is_not_trusted_fails_the_case_at_once() {
    let pebble = Pebble::start();
    let home = tempfile::tempdir().unwrap();
    let dir = home.path();
    // A trust root that did not sign Pebble's listener certificate.
    let other = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let other_root = dir.join("other-root.pem");
    std::fs::write(&other_root, params.self_signed(&other).unwrap().pem()).unwrap();
    std::fs::create_dir_all(dir.join("inventory")).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec![DNS.to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
    std::fs::set_permissions(dir.join("key.pem"), std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(
        dir.join("inventory/web.toml"),
        format!(
            "[[cert]]\nname = \"{NAME}\"\nowner = \"shop@example.test\"\nissuer = \"pebble\"\ncert = \"{}\"\nkey = \"{}\"\n",
            dir.join("cert.pem").display(),
            dir.join("key.pem").display()
        ),
    )
    .unwrap();
    let config = dir.join("certresponder.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = \"state\"\ninventory_dir = \"inventory\"\n\n{}",
            pebble_issuer_toml(&pebble.directory_url, &other_root)
        ),
    )
    .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_certresponder"));
    cmd.arg("--config")
        .arg(&config)
        .args(["reissue", NAME, "--json"])
        .env("NO_COLOR", "1");
    let started = Instant::now();
    let out = run_bounded(cmd, COMMAND_LIMIT);
    let took = started.elapsed();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let case = &v["cases"][0];
    assert_eq!(case["state"], "failed", "{v:#}");
    let error = case["error"].as_str().unwrap();
    assert!(
        error.contains("the ACME server's certificate is not trusted")
            && error.contains("trust_root"),
        "{error}"
    );
    // Permanent: one attempt, not issue_attempts with back-off.
    let issues = case["journal"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["step"] == "issue")
        .count();
    assert_eq!(issues, 1, "{case:#}");
    assert!(!error.contains("attempt"), "{error}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
}
