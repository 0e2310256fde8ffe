//! End-to-end tests of the sequence engine with the internal CA, through the binary:
//! a revocation lands in the CA's CRL, manual rollback restores exactly what a bundle
//! deployed (and refuses a revoked one unless forced), a SIGKILL at every step boundary, after
//! the issuer answered and between two renames resumes to a complete, matching deployment
//! with exactly one new valid certificate (invariant 3), a permanent issuer error leaves the old bundle untouched, and the bundle
//! history is trimmed to `history_keep`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use certresponder::store::{SledStore, Store};
use certresponder_inventory::inspect::{self, CertInfo, CrlInfo};
use common::{Home, text};
use serde_json::Value;

/// The inventory name of the service under test.
const NAME: &str = "svc";
/// The name its certificates are for.
const DNS: &str = "svc.example.test";
/// Every file location the entry names (each `srv/<field>.pem`).
const LOCATIONS: [&str; 5] = ["cert", "key", "chain", "fullchain", "combined"];
/// The steps of revoke_reissue.
const STEPS: [&str; 11] = [
    "snapshot", "new_key", "issue", "check", "record", "deploy", "reload", "verify", "revoke",
    "confirm", "close",
];
/// Reason code of keyCompromise in a CRL entry (RFC 5280 §5.3.1).
const KEY_COMPROMISE: u8 = 1;

/// The reload command: records, each time it runs, whether the files agree with each other
/// (the cert's public key equals the key file's, the combined file's leaf and key, the
/// fullchain's leaf) and whether the leaf verifies against the chain file.
const RELOAD_SCRIPT: &str = r#"#!/bin/sh
d="$1"
log="$2"
cert=$(openssl x509 -noout -pubkey -in "$d/cert.pem" 2>/dev/null)
key=$(openssl pkey -pubout -in "$d/key.pem" 2>/dev/null)
ccert=$(openssl x509 -noout -pubkey -in "$d/combined.pem" 2>/dev/null)
ckey=$(openssl pkey -pubout -in "$d/combined.pem" 2>/dev/null)
fcert=$(openssl x509 -noout -pubkey -in "$d/fullchain.pem" 2>/dev/null)
if [ -n "$cert" ] && [ "$cert" = "$key" ] && [ "$cert" = "$ccert" ] && [ "$cert" = "$ckey" ] \
    && [ "$cert" = "$fcert" ] \
    && openssl verify -CAfile "$d/chain.pem" "$d/cert.pem" >/dev/null 2>&1; then
    echo "match $CERTRESPONDER_BUNDLE_ID" >> "$log"
else
    echo "MISMATCH $CERTRESPONDER_BUNDLE_ID" >> "$log"
fi
"#;

/// A home with one service `svc` whose files (cert, key, chain, fullchain, combined) live
/// under `srv/`, reloaded by [`RELOAD_SCRIPT`], and whose current certificate was issued by
/// the internal CA (a first `reissue` replaced the rcgen placeholder).
struct Svc {
    home: Home,
}

impl Svc {
    /// Builds the home; `respond` and `issuer` are extra lines for `[respond]` and the
    /// internal CA's `[[issuer]]` table.
    fn new(respond: &str, issuer: &str) -> Self {
        let svc = Self { home: Home::new() };
        svc.write_config(respond, issuer);
        std::fs::create_dir_all(svc.home.path("srv")).unwrap();
        // The placeholder: an rcgen leaf and its CA, laid out as a deployment would be.
        let (fullchain, key) = common::issue(DNS);
        let split = fullchain[1..].find("-----BEGIN CERTIFICATE-----").unwrap() + 1;
        let (leaf, ca) = fullchain.split_at(split);
        let write = |field: &str, content: &str, mode: u32| {
            let p = svc.loc(field);
            std::fs::write(&p, content).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        };
        write("cert", leaf, 0o644);
        write("key", &key, 0o600);
        write("chain", ca, 0o644);
        write("fullchain", &fullchain, 0o644);
        write("combined", &format!("{fullchain}{key}"), 0o600);
        std::fs::write(svc.home.path("reload.sh"), RELOAD_SCRIPT).unwrap();
        let mut entry = format!(
            "[[cert]]\nname = \"{NAME}\"\nowner = \"team-svc@example.com\"\ntags = [\"prod\"]\nissuer = \"internal\"\n"
        );
        for field in LOCATIONS {
            entry.push_str(&format!("{field} = \"{}\"\n", svc.loc(field).display()));
        }
        entry.push_str(&format!(
            "reload = \"sh {} {} {}\"\n",
            svc.home.path("reload.sh").display(),
            svc.home.path("srv").display(),
            svc.home.path("reload.log").display()
        ));
        std::fs::write(svc.home.path("inventory/svc.toml"), entry).unwrap();
        let first = svc.home.json(&["reissue", NAME, "--json"], 0);
        assert_eq!(first["cases"][0]["state"], "done", "{first:#}");
        svc
    }

    /// (Re)writes the configuration.
    fn write_config(&self, respond: &str, issuer: &str) {
        std::fs::write(
            self.home.config(),
            format!(
                "state_dir = \"state\"\ninventory_dir = \"inventory\"\n\n[respond]\nreload_window_ms = 0\nretry_base_ms = 10\nconfirm_timeout_secs = 5\n{respond}\n[[issuer]]\nid = \"internal\"\ntype = \"internal-ca\"\ndir = \"ca\"\n{issuer}"
            ),
        )
        .unwrap();
    }

    fn loc(&self, field: &str) -> PathBuf {
        self.home.path(&format!("srv/{field}.pem"))
    }

    /// The first certificate of a location, DER.
    fn loc_der(&self, field: &str) -> Vec<u8> {
        inspect::read_certificates(&std::fs::read(self.loc(field)).unwrap())
            .unwrap()
            .remove(0)
    }

    /// The exact content of every location (all PEM text, so compared byte for byte).
    fn files(&self) -> BTreeMap<&'static str, String> {
        LOCATIONS
            .iter()
            .map(|f| (*f, std::fs::read_to_string(self.loc(f)).unwrap()))
            .collect()
    }

    /// Runs the binary with `CERTRESPONDER_FAULT` set to `fault` (or unset).
    fn run_fault(&self, args: &[&str], fault: Option<&str>) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_certresponder"));
        cmd.arg("--config")
            .arg(self.home.config())
            .args(args)
            .env("NO_COLOR", "1");
        match fault {
            Some(f) => cmd.env("CERTRESPONDER_FAULT", f),
            None => cmd.env_remove("CERTRESPONDER_FAULT"),
        };
        cmd.output().unwrap()
    }

    /// Runs `f` on the store, opened by the test while no certresponder process runs.
    ///
    /// sled releases its database lock (a `flock` on `db/db`) only when its background
    /// threads let go of the file, which can be a moment after the handle is dropped; so
    /// this waits until the lock is free again before the next process needs it.
    fn with_store<T>(&self, f: impl FnOnce(&SledStore) -> T) -> T {
        let store = SledStore::open(&self.home.path("state/db")).unwrap();
        let out = f(&store);
        drop(store);
        let lock = self.home.path("state/db/db");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !Command::new("flock")
            .args(["-n", "-x"])
            .arg(&lock)
            .arg("true")
            .status()
            .expect("flock(1) from util-linux is installed")
            .success()
        {
            assert!(
                Instant::now() < deadline,
                "the database lock {} was never released",
                lock.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        out
    }

    /// How many certificates the internal CA has issued (its `cert/SERIAL` records).
    fn ca_issued(&self) -> usize {
        self.ca_serials().len()
    }

    /// The serials (hex) of every certificate the internal CA has issued.
    fn ca_serials(&self) -> std::collections::BTreeSet<String> {
        self.with_store(|s| s.issuer_storage("internal").scan("cert/").unwrap())
            .into_iter()
            .map(|(k, _)| k.trim_start_matches("cert/").to_string())
            .collect()
    }

    /// The CA certificate, DER.
    fn ca_der(&self) -> Vec<u8> {
        let pem = std::fs::read(self.home.path("ca/ca.pem")).unwrap();
        inspect::read_certificates(&pem).unwrap().remove(0)
    }

    /// The published CRL (`ca/crl.der`), checked to be signed by the CA; `None` before the
    /// first revocation.
    fn crl(&self) -> Option<CrlInfo> {
        let der = std::fs::read(self.home.path("ca/crl.der")).ok()?;
        assert!(
            inspect::crl_signed_by(&der, &self.ca_der()).unwrap(),
            "the CRL is not signed by the CA"
        );
        Some(inspect::inspect_crl_der(&der).unwrap())
    }

    /// `history svc --json`.
    fn history(&self) -> Vec<Value> {
        self.home
            .json(&["history", NAME, "--json"], 0)
            .as_array()
            .unwrap()
            .clone()
    }

    /// The state `history` gives bundle `id`.
    fn state_of(&self, id: &str) -> String {
        let h = self.history();
        let b = h
            .iter()
            .find(|b| b["id"] == id)
            .unwrap_or_else(|| panic!("bundle {id} is not in the history: {h:#?}"));
        b["state"].as_str().unwrap().to_string()
    }

    /// The temporary files beside the locations (`.NAME.tmp.*`).
    fn leftovers(&self) -> Vec<String> {
        std::fs::read_dir(self.home.path("srv"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.') && n.contains(".tmp."))
            .collect()
    }

    /// Lines of the reload log.
    fn reload_log(&self) -> Vec<String> {
        std::fs::read_to_string(self.home.path("reload.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Asserts that every location holds one complete bundle: the key matches the leaf,
    /// the chain signs the leaf, fullchain and combined carry the same leaf (and combined
    /// the same key), and the key files are 0600. Returns the leaf.
    fn deployed(&self) -> CertInfo {
        let f = self.files();
        let certs = |field: &str| {
            inspect::read_certificates(f[field].as_bytes())
                .unwrap_or_else(|e| panic!("{field}: not certificates: {e}"))
        };
        let leaf_der = certs("cert").remove(0);
        let leaf = inspect::inspect_certificate_der(&leaf_der).unwrap();
        let key = inspect::read_private_key(f["key"].as_bytes()).unwrap();
        assert!(
            key.public.same_public_key(&leaf.key),
            "the key file does not match the cert file"
        );
        let chain = certs("chain");
        assert!(!chain.is_empty(), "the chain file is empty");
        assert!(
            inspect::cert_signed_by(&leaf_der, &chain[0]).unwrap(),
            "the chain file does not sign the leaf"
        );
        let full = certs("fullchain");
        assert_eq!(full[0], leaf_der, "fullchain starts with another leaf");
        assert_eq!(full[1..], chain[..], "fullchain carries another chain");
        let combined = certs("combined");
        assert_eq!(combined[0], leaf_der, "combined starts with another leaf");
        let text = &f["combined"];
        let at = text.find("-----BEGIN PRIVATE KEY-----").unwrap_or_else(|| {
            text.find("-----BEGIN EC PRIVATE KEY-----")
                .expect("no private key in combined")
        });
        let ckey = inspect::read_private_key(&text.as_bytes()[at..]).unwrap();
        assert!(
            ckey.public.same_public_key(&leaf.key),
            "combined's key does not match its leaf"
        );
        for field in ["key", "combined"] {
            let mode = std::fs::metadata(self.loc(field))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{field} has mode {:o}", mode & 0o777);
        }
        leaf
    }
}

/// The bundle id of a leaf: the first 16 hex digits of its SHA-256 fingerprint.
fn bundle_id(leaf: &CertInfo) -> String {
    leaf.fingerprints.cert_sha256[..16].to_string()
}

fn openssl(args: &[&str]) -> Output {
    Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl is installed (README test command)")
}

#[test]
fn internal_ca_revocation_lands_in_the_crl() {
    let svc = Svc::new("", "");
    let old = svc.deployed();
    let old_id = bundle_id(&old);
    let old_pem = svc.home.path("old-cert.pem");
    std::fs::copy(svc.loc("cert"), &old_pem).unwrap();
    assert_eq!(svc.state_of(&old_id), "current");

    let out = svc.home.json(
        &[
            "report-compromise",
            NAME,
            "--evidence",
            "private key pasted in a public gist",
            "--json",
        ],
        0,
    );
    assert!(out["errors"].as_array().unwrap().is_empty(), "{out:#}");
    let case = &out["cases"][0];
    assert_eq!(case["state"], "done", "{case:#}");
    assert_eq!(case["kind"], "revoke_reissue");
    assert_eq!(case["old_bundle"], old_id.as_str());
    assert_eq!(case["issued_count"], 1);
    assert!(
        !out.to_string().contains("PRIVATE KEY"),
        "key material in the output"
    );

    // The new bundle is on disk, complete, on a new key.
    let new = svc.deployed();
    let new_id = bundle_id(&new);
    assert_eq!(case["new_bundle"], new_id.as_str());
    assert_ne!(new.serial, old.serial);
    assert_ne!(new.fingerprints.spki_sha256, old.fingerprints.spki_sha256);
    assert_eq!(new.dns_names, [DNS]);
    assert!(inspect::cert_signed_by(&svc.loc_der("cert"), &svc.ca_der()).unwrap());

    // The old serial is in the CA's CRL as keyCompromise; the new one is not.
    let crl = svc.crl().expect("no CRL published after a revocation");
    let entry = crl
        .find(&old.serial)
        .unwrap_or_else(|| panic!("serial {} is not in the CRL {crl:#?}", old.serial));
    assert_eq!(entry.reason_code, Some(KEY_COMPROMISE));
    assert!(crl.find(&new.serial).is_none(), "the new serial is revoked");

    // OpenSSL reads the same CRL: the old certificate is revoked, the new one verifies.
    let crl_der = svc.home.path("ca/crl.der");
    let shown = openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        crl_der.to_str().unwrap(),
        "-noout",
        "-text",
    ]);
    let shown = String::from_utf8_lossy(&shown.stdout).to_string();
    assert!(
        shown.contains(&format!(
            "Serial Number: {}",
            old.serial.to_ascii_uppercase()
        )),
        "{shown}"
    );
    assert!(shown.contains("Key Compromise"), "{shown}");
    let ca = svc.home.path("ca/ca.pem");
    let crl_pem = svc.home.path("ca/crl.pem");
    let verify = |cert: &Path| {
        openssl(&[
            "verify",
            "-crl_check",
            "-CAfile",
            ca.to_str().unwrap(),
            "-CRLfile",
            crl_pem.to_str().unwrap(),
            cert.to_str().unwrap(),
        ])
    };
    let old_verify = verify(&old_pem);
    assert!(!old_verify.status.success(), "{}", text(&old_verify));
    assert!(
        String::from_utf8_lossy(&old_verify.stdout).contains("revoked")
            || String::from_utf8_lossy(&old_verify.stderr).contains("revoked"),
        "{}",
        text(&old_verify)
    );
    let new_verify = verify(&svc.loc("cert"));
    assert!(new_verify.status.success(), "{}", text(&new_verify));

    // The key file is 0600 (checked by `deployed`) and OpenSSL agrees it matches the cert.
    let pubkey_of_cert = openssl(&[
        "x509",
        "-noout",
        "-pubkey",
        "-in",
        svc.loc("cert").to_str().unwrap(),
    ]);
    let pubkey_of_key = openssl(&["pkey", "-pubout", "-in", svc.loc("key").to_str().unwrap()]);
    assert!(pubkey_of_key.status.success(), "{}", text(&pubkey_of_key));
    assert_eq!(pubkey_of_cert.stdout, pubkey_of_key.stdout);

    // History: old revoked, new current, and only one current.
    assert_eq!(svc.state_of(&old_id), "revoked");
    assert_eq!(svc.state_of(&new_id), "current");
    let currents = svc
        .history()
        .iter()
        .filter(|b| b["state"] == "current")
        .count();
    assert_eq!(currents, 1);
    assert!(svc.reload_log().iter().all(|l| l.starts_with("match ")));

    // The CT authorization ledger has the new TBS hash, from this case.
    let ledger = svc
        .with_store(|s| s.get_ledger(&new.fingerprints.tbs_sha256).unwrap())
        .expect("the new certificate's TBS hash is not in the ledger");
    assert_eq!(ledger.cert, NAME);
    assert_eq!(ledger.serial, new.serial);
    assert_eq!(ledger.case, case["id"].as_u64());
    assert_eq!(ledger.origin, "issued");
}

#[test]
fn manual_rollback_restores_identical_bytes_and_refuses_revoked() {
    let svc = Svc::new("", "");
    let b1 = bundle_id(&svc.deployed());
    let s1 = svc.files();
    let out = svc.home.json(&["reissue", NAME, "--json"], 0);
    assert_eq!(out["cases"][0]["state"], "done", "{out:#}");
    let b2 = bundle_id(&svc.deployed());
    let s2 = svc.files();
    assert_ne!(b1, b2);
    // The chain (the CA certificate) stays; every other location changes.
    for f in ["cert", "key", "fullchain", "combined"] {
        assert_ne!(s1[f], s2[f], "{f} did not change on reissue");
    }

    // Back to the first issued bundle: every file byte-identical to what it deployed.
    let out = svc.home.json(&["rollback", NAME, "--to", &b1, "--json"], 0);
    assert_eq!(out["ok"], true, "{out:#}");
    assert_eq!(out["bundle"], b1.as_str());
    assert_eq!(svc.files(), s1);
    svc.deployed();
    assert_eq!(svc.state_of(&b1), "current");
    assert_eq!(svc.state_of(&b2), "previous");

    // Forward again by a unique prefix of the id.
    let out = svc
        .home
        .json(&["rollback", NAME, "--to", &b2[..10], "--json"], 0);
    assert_eq!(out["bundle"], b2.as_str(), "{out:#}");
    assert_eq!(svc.files(), s2);
    assert_eq!(svc.state_of(&b2), "current");

    // A revoke_reissue revokes b2 and deploys b3.
    let out = svc
        .home
        .json(&["reissue", NAME, "--revoke", "keyCompromise", "--json"], 0);
    assert_eq!(out["cases"][0]["state"], "done", "{out:#}");
    let b3 = bundle_id(&svc.deployed());
    let s3 = svc.files();
    assert_eq!(svc.state_of(&b2), "revoked");
    assert_eq!(svc.state_of(&b3), "current");

    // Without --to: the latest earlier bundle that is not revoked, b1 (b2 is revoked).
    let out = svc.home.json(&["rollback", NAME, "--json"], 0);
    assert_eq!(out["bundle"], b1.as_str(), "{out:#}");
    assert_eq!(svc.files(), s1);
    assert_eq!(svc.state_of(&b1), "current");
    assert_eq!(svc.state_of(&b3), "previous");

    // The revoked bundle is refused, saying so and naming --force; nothing is touched.
    let history = svc.history();
    let out = svc.home.run(&["rollback", NAME, "--to", &b2]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("revoked"), "{err}");
    assert!(err.contains("--force"), "{err}");
    assert!(err.contains(&b2), "{err}");
    assert_eq!(svc.files(), s1);
    assert_eq!(svc.history(), history);

    // With --force it is restored, byte for byte, and the output says it is revoked.
    let out = svc
        .home
        .json(&["rollback", NAME, "--to", &b2, "--force", "--json"], 0);
    assert_eq!(out["ok"], true, "{out:#}");
    assert!(
        out["detail"].as_str().unwrap().contains("revoked"),
        "{out:#}"
    );
    assert_eq!(svc.files(), s2);
    svc.deployed();

    // A forced restore does not clear the revocation: once another bundle is deployed, b2
    // is refused again without --force, and the default never picks it (invariant 2).
    let out = svc.home.json(&["rollback", NAME, "--to", &b3, "--json"], 0);
    assert_eq!(out["bundle"], b3.as_str(), "{out:#}");
    assert_eq!(svc.files(), s3);
    let out = svc.home.run(&["rollback", NAME, "--to", &b2]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a revoked bundle was restored without --force after an earlier forced restore: {}",
        text(&out)
    );
    assert_eq!(svc.files(), s3);
    let out = svc.home.json(&["rollback", NAME, "--json"], 0);
    assert_eq!(out["bundle"], b1.as_str(), "{out:#}");
    assert_eq!(svc.files(), s1);
    assert!(svc.reload_log().iter().all(|l| l.starts_with("match ")));
}

/// One crash point: `phase:step`, with or without contain-first.
#[derive(Clone, Copy, Debug)]
struct CrashPoint {
    phase: &'static str,
    step: &'static str,
    contain_first: bool,
}

/// Kills `report-compromise` at the crash point, checks the files, then resumes with
/// `respond` and checks the outcome; panics with the crash point in the message.
fn crash_and_resume(p: CrashPoint) {
    let svc = Svc::new("", "");
    let old = svc.deployed();
    let serials_before = svc.ca_serials();
    let fault = format!("{}:{}", p.phase, p.step);
    let mut args = vec![
        "report-compromise",
        NAME,
        "--evidence",
        "key found on a stolen laptop",
        "--json",
    ];
    if p.contain_first {
        args.push("--contain-first");
    }
    let out = svc.run_fault(&args, Some(&fault));
    assert!(
        matches!(out.status.signal(), Some(9) | Some(6)),
        "{fault}: expected death by SIGKILL: {}",
        text(&out)
    );
    // The fault hit the point asked for: the journal's last record is that step, started
    // and not finished.
    let cases = svc.with_store(|s| s.list_cases().unwrap());
    let last = cases.last().unwrap().journal.last().unwrap();
    assert_eq!(
        (last.step.as_str(), last.outcome.to_string().as_str()),
        (p.step, "started"),
        "{fault}: the process died elsewhere"
    );
    // Whatever the moment between steps, every location holds a complete, matching bundle;
    // in the middle of deploy, some hold the new one and some the old.
    if p.phase == "during" && p.step == "deploy" {
        let files = svc.files();
        assert!(
            std::panic::catch_unwind(|| svc.deployed()).is_err(),
            "{fault}: every location was already written: {files:?}"
        );
        // The staged files not yet renamed are still there, the new key in some of them.
        assert!(
            !svc.leftovers().is_empty(),
            "{fault}: nothing was left staged"
        );
    } else {
        svc.deployed();
    }

    let out = svc.run_fault(&["respond", "--json"], None);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{fault}: respond: {}",
        text(&out)
    );
    let cases = svc.home.json(&["cases", "list", "--json"], 0);
    let cases = cases.as_array().unwrap();
    assert_eq!(cases.len(), 2, "{fault}: {cases:#?}");
    // The audit log survived the kill as an intact chain.
    let audit = svc.home.run(&["audit", "verify"]);
    assert_eq!(audit.status.code(), Some(0), "{fault}: {}", text(&audit));
    let case = cases
        .iter()
        .find(|c| c["kind"] == "revoke_reissue")
        .unwrap();
    assert_eq!(case["state"], "done", "{fault}: {case:#}");
    assert_eq!(case["contain_first"], p.contain_first);
    assert_eq!(case["old_bundle"], bundle_id(&old).as_str(), "{fault}");

    // The new bundle is deployed, complete, and current.
    let new = svc.deployed();
    assert_ne!(
        new.serial, old.serial,
        "{fault}: the old certificate is still deployed"
    );
    assert_ne!(new.fingerprints.spki_sha256, old.fingerprints.spki_sha256);
    let new_id = bundle_id(&new);
    assert_eq!(case["new_bundle"], new_id.as_str(), "{fault}");
    assert_eq!(svc.state_of(&new_id), "current", "{fault}");
    assert_eq!(svc.state_of(&bundle_id(&old)), "revoked", "{fault}");

    // The old certificate is in the CRL as keyCompromise, the deployed one is not.
    let crl = svc.crl().unwrap_or_else(|| panic!("{fault}: no CRL"));
    assert_eq!(
        crl.find(&old.serial).map(|e| e.reason_code),
        Some(Some(KEY_COMPROMISE)),
        "{fault}: old serial not revoked as keyCompromise"
    );
    assert!(
        crl.find(&new.serial).is_none(),
        "{fault}: the deployed cert is revoked"
    );

    // Exactly one new valid certificate, the one deployed; any other the case obtained is
    // revoked and in the CT ledger.
    let new_serials: Vec<String> = svc
        .ca_serials()
        .difference(&serials_before)
        .cloned()
        .collect();
    let issued = new_serials.len();
    let valid: Vec<&String> = new_serials
        .iter()
        .filter(|s| crl.find(s).is_none())
        .collect();
    assert_eq!(
        valid.len(),
        1,
        "{fault}: {issued} certificate(s) issued for the case, valid: {valid:?}"
    );
    assert_eq!(
        valid[0].trim_start_matches('0'),
        new.serial.trim_start_matches('0'),
        "{fault}"
    );
    for orphan in case["orphans"].as_array().into_iter().flatten() {
        assert_eq!(orphan["state"], "revoked", "{fault}: {orphan:#}");
        let tbs = orphan["tbs_sha256"].as_str().unwrap().to_string();
        assert!(
            svc.with_store(|s| s.get_ledger(&tbs).unwrap()).is_some(),
            "{fault}: an unused certificate is not in the ledger"
        );
    }
    assert!(
        svc.with_store(|s| s.get_ledger(&new.fingerprints.tbs_sha256).unwrap())
            .is_some(),
        "{fault}: the deployed certificate is not in the ledger"
    );

    // Nothing staged is left behind, whatever the kill left.
    assert_eq!(svc.leftovers(), Vec::<String>::new(), "{fault}");

    // Every reload saw a matching cert and key.
    let log = svc.reload_log();
    eprintln!(
        "{fault}{}: {issued} certificate(s) issued for the case, {} reload(s)",
        if p.contain_first {
            " (contain first)"
        } else {
            ""
        },
        log.len()
    );
    assert!(log.len() >= 2, "{fault}: reload log {log:?}");
    assert!(
        log.iter().all(|l| l.starts_with("match ")),
        "{fault}: reload log {log:?}"
    );
    assert!(
        log.last().unwrap().ends_with(&new_id),
        "{fault}: the last reload was not for the new bundle: {log:?}"
    );
}

#[test]
fn crash_at_every_step_boundary_resumes() {
    let mut points = Vec::new();
    for step in STEPS {
        for phase in ["before", "after"] {
            points.push(CrashPoint {
                phase,
                step,
                contain_first: false,
            });
        }
    }
    // Inside steps: the issuer has answered and nothing is journaled; between the renames
    // of two locations.
    for (step, contain_first) in [("issue", false), ("deploy", false), ("deploy", true)] {
        points.push(CrashPoint {
            phase: "during",
            step,
            contain_first,
        });
    }
    for (phase, step) in [
        ("after", "record"),
        ("before", "revoke"),
        ("after", "revoke"),
        ("before", "deploy"),
        ("after", "deploy"),
        ("after", "confirm"),
    ] {
        points.push(CrashPoint {
            phase,
            step,
            contain_first: true,
        });
    }
    let started = Instant::now();
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(p) = points.get(i).copied() else {
                        break;
                    };
                    let t = Instant::now();
                    let r = std::panic::catch_unwind(|| crash_and_resume(p));
                    eprintln!("crash point {p:?}: {:?}", t.elapsed());
                    if let Err(e) = r {
                        let msg = e
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                            .unwrap_or_default();
                        failures.lock().unwrap().push(format!("{p:?}: {msg}"));
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} crash points failed:\n{}",
        failures.len(),
        points.len(),
        failures.join("\n\n")
    );
    eprintln!("{} crash points in {:?}", points.len(), started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(90));
}

#[test]
fn permanent_issuer_error_fails_and_leaves_old_bundle() {
    let svc = Svc::new("", "");
    let old = svc.deployed();
    let old_id = bundle_id(&old);
    let before = svc.files();
    let issued_before = svc.ca_issued();
    let reloads_before = svc.reload_log().len();
    // The CA is narrowed to names this certificate does not have: issuance is refused, and
    // retrying cannot help.
    svc.write_config("", "allowed_names = [\".other.test\"]\n");

    let started = Instant::now();
    let out = svc.home.run(&[
        "report-compromise",
        NAME,
        "--evidence",
        "key seen in a crash dump",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let case = &v["cases"][0];
    assert_eq!(case["state"], "failed", "{case:#}");
    let error = case["error"].as_str().unwrap();
    assert!(error.contains("permanent"), "{error}");
    assert!(error.contains(DNS), "{error}");
    assert!(
        error.contains("not revoked") || error.contains("unrevoked"),
        "{error}"
    );
    assert_eq!(case["issued_count"], 0);
    let journal = case["journal"].as_array().unwrap();
    let issue = journal.iter().find(|r| r["step"] == "issue").unwrap();
    assert_eq!(issue["outcome"], "failed");
    for step in ["deploy", "reload", "revoke"] {
        assert!(
            journal.iter().all(|r| r["step"] != step),
            "{step} ran after a failed issue: {journal:#?}"
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "a permanent error was retried"
    );

    // The old bundle is untouched, still current, and not revoked at the CA.
    assert_eq!(svc.files(), before);
    assert_eq!(svc.state_of(&old_id), "current");
    assert_eq!(svc.ca_issued(), issued_before);
    if let Some(crl) = svc.crl() {
        assert!(
            crl.find(&old.serial).is_none(),
            "the old serial was revoked"
        );
    }
    assert_eq!(
        svc.reload_log().len(),
        reloads_before,
        "the service was reloaded"
    );
    let shown = svc.home.json(&["cases", "show", "2", "--json"], 0);
    assert_eq!(shown["state"], "failed");
}

#[test]
fn history_retention() {
    let svc = Svc::new("history_keep = 3\n", "");
    let mut ids = vec![bundle_id(&svc.deployed())];
    for _ in 0..4 {
        let out = svc.home.json(&["reissue", NAME, "--json"], 0);
        assert_eq!(out["cases"][0]["state"], "done", "{out:#}");
        ids.push(bundle_id(&svc.deployed()));
    }
    assert_eq!(ids.len(), 5, "five issued bundles");
    let history = svc.history();
    assert!(history.len() <= 3, "{history:#?}");
    let kept: Vec<&str> = history.iter().map(|b| b["id"].as_str().unwrap()).collect();
    let current: Vec<&str> = history
        .iter()
        .filter(|b| b["state"] == "current")
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    assert_eq!(current, [ids[4].as_str()], "{history:#?}");
    // The newest bundles are the ones kept: the current one and the rollback targets.
    assert_eq!(
        kept,
        ids[2..].iter().map(String::as_str).collect::<Vec<_>>()
    );
}

#[test]
fn a_rollback_by_hand_killed_in_the_middle_resumes() {
    let svc = Svc::new("", "");
    let first = svc.files();
    let b1 = bundle_id(&svc.deployed());
    let v = svc.home.json(&["reissue", NAME, "--json"], 0);
    assert_eq!(v["cases"][0]["state"], "done", "{v:#}");
    assert_ne!(svc.files(), first);
    // Killed between the renames of two locations while it restores the first bundle.
    let out = svc.run_fault(&["rollback", NAME, "--to", &b1], Some("during:deploy"));
    assert!(
        matches!(out.status.signal(), Some(9) | Some(6)),
        "expected death by SIGKILL: {}",
        text(&out)
    );
    assert!(
        std::panic::catch_unwind(|| svc.deployed()).is_err(),
        "the kill came after every location was written"
    );
    // The rollback is a case, journaled, and `respond` finishes it.
    let cases = svc.home.json(&["cases", "list", "--json"], 0);
    let rollback = cases
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "rollback")
        .unwrap_or_else(|| panic!("{cases:#}"));
    assert_eq!(rollback["state"], "running", "{rollback:#}");
    let out = svc.run_fault(&["respond", "--json"], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        svc.files(),
        first,
        "the first bundle is not back byte for byte"
    );
    svc.deployed();
    assert_eq!(svc.state_of(&b1), "current");
    let id = rollback["id"].as_u64().unwrap();
    let shown = svc
        .home
        .json(&["cases", "show", &id.to_string(), "--json"], 0);
    assert_eq!(shown["state"], "done", "{shown:#}");
    assert!(svc.reload_log().last().unwrap().ends_with(&b1));
}
