//! End to end: distrusting a CA replaces exactly the certificates it signed.
//!
//! Two CAs made here sign 251 ECDSA P-256 leaves: 201 from "Distrusted Root A" (200 with a
//! `fallback_issuer`, one without) and 50 from "Other CA B". One real nginx serves all of them
//! by SNI from their inventory locations; a real Pebble is the fallback issuer. The test
//! distrusts A by its certificate file and checks what a user relies on: the dry run lists
//! exactly A's certificates and changes nothing; the real run replaces exactly the 200 through
//! Pebble within the deadline, most critical first, and escalates the one that names no
//! fallback; every A location then holds a Pebble certificate for a new key and nginx serves
//! it (seen by `openssl s_client`); every B location is untouched and still served; the
//! distrust is recorded, a later scan finds nothing new, and `cases list` shows the 200
//! reissue cases through Pebble.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod live_support;

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use certresponder_inventory::inspect;
use chrono::{DateTime, Utc};
use live_support::*;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use serde_json::Value;

/// Certificates from A with a `fallback_issuer`: the ones the distrust must replace.
const A_COUNT: usize = 200;
/// Certificates from B: the ones it must leave alone.
const B_COUNT: usize = 50;
/// The 201st certificate from A, whose entry names no `fallback_issuer`: it is escalated.
const ORPHAN: &str = "a-201.distrust.test";
/// Upper bound for one certresponder command; a hang fails the test instead of blocking it.
const COMMAND_LIMIT: Duration = Duration::from_secs(600);
/// Exit status of `distrust` when nothing failed but not everything was replaced.
const NOT_ALL_REPLACED: i32 = 3;
/// Priorities, most critical first (their rank is the index), given to entries in turn.
const PRIORITIES: [&str; 4] = ["critical", "high", "normal", "low"];
/// Threads checking what nginx serves and what Pebble says.
const CHECKERS: usize = 8;

// ---------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------

/// A CA made by the test.
struct Ca {
    pem: String,
    spki_sha256: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    fn new(cn: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, cn);
        params
            .distinguished_name
            .push(DnType::OrganizationName, "certresponder tests");
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).unwrap();
        let spki_sha256 = inspect::inspect_certificate_der(cert.der())
            .unwrap()
            .fingerprints
            .spki_sha256;
        Self {
            pem: cert.pem(),
            spki_sha256,
            issuer: Issuer::new(params, key),
        }
    }
}

/// One deployed certificate: its inventory name (also its DNS name and SNI), its files and
/// what they held before the test acted.
struct Location {
    name: String,
    priority: &'static str,
    cert: PathBuf,
    key: PathBuf,
    chain: PathBuf,
    fullchain: PathBuf,
    leaf_der: Vec<u8>,
    spki_sha256: String,
    files: Vec<(PathBuf, Vec<u8>)>,
}

impl Location {
    /// A leaf for `name` signed by `ca`, written as cert, key (0600), chain and fullchain
    /// under `root/name/`.
    fn issue(root: &Path, name: &str, priority: &'static str, ca: &Ca) -> Self {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec![name.to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(90);
        let leaf = params.signed_by(&key, &ca.issuer).unwrap();
        let (cert, keyp, chain, fullchain) = (
            dir.join("cert.pem"),
            dir.join("key.pem"),
            dir.join("chain.pem"),
            dir.join("fullchain.pem"),
        );
        std::fs::write(&cert, leaf.pem()).unwrap();
        std::fs::write(&keyp, key.serialize_pem()).unwrap();
        std::fs::set_permissions(&keyp, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&chain, &ca.pem).unwrap();
        std::fs::write(&fullchain, format!("{}{}", leaf.pem(), ca.pem)).unwrap();
        let spki_sha256 = inspect::inspect_certificate_der(leaf.der())
            .unwrap()
            .fingerprints
            .spki_sha256;
        let mut loc = Self {
            name: name.to_string(),
            priority,
            cert,
            key: keyp,
            chain,
            fullchain,
            leaf_der: leaf.der().to_vec(),
            spki_sha256,
            files: Vec::new(),
        };
        loc.files = loc.read_files();
        loc
    }

    fn paths(&self) -> [&PathBuf; 4] {
        [&self.cert, &self.key, &self.chain, &self.fullchain]
    }

    fn read_files(&self) -> Vec<(PathBuf, Vec<u8>)> {
        self.paths()
            .into_iter()
            .map(|p| (p.clone(), std::fs::read(p).unwrap()))
            .collect()
    }

    fn site(&self) -> Site {
        (self.name.clone(), self.fullchain.clone(), self.key.clone())
    }

    /// The `[[cert]]` entry; `fallback` is the issuer replacing it when its CA is distrusted.
    fn entry(&self, owner: &str, fallback: Option<&str>, reload: &str, port: u16) -> String {
        format!(
            "[[cert]]
name = \"{name}\"
owner = \"{owner}\"
kind = \"tls-server\"
priority = \"{priority}\"
{fallback}key_profile = \"ecdsa-p256\"
cert = \"{cert}\"
key = \"{key}\"
chain = \"{chain}\"
fullchain = \"{fullchain}\"
reload = \"{reload}\"
verify = [{{ address = \"127.0.0.1:{port}\", sni = \"{name}\" }}]

",
            name = self.name,
            priority = self.priority,
            fallback = fallback
                .map(|f| format!("fallback_issuer = \"{f}\"\n"))
                .unwrap_or_default(),
            cert = self.cert.display(),
            key = self.key.display(),
            chain = self.chain.display(),
            fullchain = self.fullchain.display(),
        )
    }

    /// Asserts that every file holds the bytes it held before.
    fn assert_untouched(&self) {
        for (path, before) in &self.files {
            assert!(
                std::fs::read(path).unwrap() == *before,
                "{} changed, though {} was not to be replaced",
                path.display(),
                self.name
            );
        }
    }
}

/// Everything one test run needs, started and written by [`World::new`].
struct World {
    home: tempfile::TempDir,
    pebble: Pebble,
    nginx: Nginx,
    ca_a_file: PathBuf,
    ca_a_spki: String,
    /// The 200 from A with a fallback issuer, in name order.
    a: Vec<Location>,
    /// The one from A without.
    orphan: Location,
    /// The 50 from B.
    b: Vec<Location>,
}

impl World {
    fn new() -> Self {
        let home = tempfile::tempdir().unwrap();
        let pebble = Pebble::start();
        let certs = home.path().join("certs");
        std::fs::create_dir_all(home.path().join("inventory")).unwrap();
        let ca_a = Ca::new("Distrusted Root A");
        let ca_b = Ca::new("Other CA B");
        let ca_a_file = home.path().join("distrusted-root-a.pem");
        std::fs::write(&ca_a_file, &ca_a.pem).unwrap();
        let priority = |i: usize| PRIORITIES[i % PRIORITIES.len()];
        let a: Vec<Location> = (1..=A_COUNT)
            .map(|i| {
                Location::issue(
                    &certs,
                    &format!("a-{i:03}.distrust.test"),
                    priority(i),
                    &ca_a,
                )
            })
            .collect();
        let orphan = Location::issue(&certs, ORPHAN, "critical", &ca_a);
        let b: Vec<Location> = (1..=B_COUNT)
            .map(|i| {
                Location::issue(
                    &certs,
                    &format!("b-{i:03}.distrust.test"),
                    priority(i),
                    &ca_b,
                )
            })
            .collect();

        let port = free_port();
        let sites: Vec<Site> = a
            .iter()
            .chain(std::iter::once(&orphan))
            .chain(&b)
            .map(Location::site)
            .collect();
        let nginx = Nginx::start(&home.path().join("nginx"), port, &sites);
        for loc in [&a[0], &a[A_COUNT - 1], &orphan, &b[0], &b[B_COUNT - 1]] {
            assert_eq!(
                served_leaf(port, Some(&loc.name)).unwrap(),
                loc.leaf_der,
                "nginx does not serve the original certificate of {}: {}",
                loc.name,
                nginx.error_log()
            );
        }

        let reload = nginx.reload_command();
        let mut inv_a = String::new();
        for loc in &a {
            inv_a.push_str(&loc.entry("team-a@example.test", Some("pebble"), &reload, port));
        }
        inv_a.push_str(&orphan.entry("team-a@example.test", None, &reload, port));
        std::fs::write(home.path().join("inventory/a.toml"), inv_a).unwrap();
        let inv_b: String = b
            .iter()
            .map(|loc| loc.entry("team-b@example.test", Some("pebble"), &reload, port))
            .collect();
        std::fs::write(home.path().join("inventory/b.toml"), inv_b).unwrap();

        std::fs::write(
            home.path().join("certresponder.toml"),
            format!(
                "state_dir = \"state\"
inventory_dir = \"inventory\"

# Two orders at once at Pebble: Pebble 2.4 can deadlock its store under many concurrent new
# orders (see scripts/bench-mass); the nginx reloads, not the orders, set the pace here.
[respond]
concurrency = 16
issuer_concurrency = 2
reload_window_ms = 200
verify_timeout_secs = 60
verify_interval_ms = 100
confirm_timeout_secs = 5

{}",
                pebble_issuer_toml(&pebble.directory_url, &pebble.tls_root)
            ),
        )
        .unwrap();
        Self {
            home,
            pebble,
            nginx,
            ca_a_file,
            ca_a_spki: ca_a.spki_sha256,
            a,
            orphan,
            b,
        }
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
        run_bounded(cmd, COMMAND_LIMIT)
    }

    /// Runs, asserts the exit status is one of `statuses` and parses stdout as JSON.
    fn json(&self, args: &[&str], statuses: &[i32]) -> Value {
        let out = self.run(args);
        assert!(
            out.status.code().is_some_and(|c| statuses.contains(&c)),
            "certresponder {args:?} exited {:?}, expected one of {statuses:?}\nstdout {}\nstderr {}\nnginx log (tail):\n{}\npebble log (tail):\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            tail(&String::from_utf8_lossy(&out.stderr), 60),
            tail(&self.nginx.error_log(), 40),
            tail(&self.pebble.log(), 40)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "certresponder {args:?}: not JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    fn ca_arg(&self) -> String {
        self.ca_a_file.display().to_string()
    }

    fn a_names(&self) -> BTreeSet<String> {
        self.a.iter().map(|l| l.name.clone()).collect()
    }
}

/// The last `n` lines of a log.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn array<'a>(v: &'a Value, what: &str) -> &'a Vec<Value> {
    v.as_array()
        .unwrap_or_else(|| panic!("{what} is not a list: {v:#}"))
}

fn time_of(v: &Value, what: &str) -> DateTime<Utc> {
    v.as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .unwrap_or_else(|| panic!("{what} is not an RFC 3339 time: {v}"))
        .with_timezone(&Utc)
}

fn rank(priority: &str) -> usize {
    PRIORITIES
        .iter()
        .position(|p| *p == priority)
        .unwrap_or_else(|| panic!("unknown priority {priority}"))
}

/// The single certificate in a PEM file.
fn only_cert(path: &Path) -> Vec<u8> {
    let certs = inspect::read_certificates(&std::fs::read(path).unwrap()).unwrap();
    assert_eq!(
        certs.len(),
        1,
        "{} holds {} certificates",
        path.display(),
        certs.len()
    );
    certs.into_iter().next().unwrap()
}

/// Runs `check` on every item, spread over [`CHECKERS`] threads; a failure fails the test.
fn in_parallel<T: Sync>(items: &[T], check: impl Fn(&T) + Sync) {
    let per = items.len().div_ceil(CHECKERS).max(1);
    std::thread::scope(|s| {
        for chunk in items.chunks(per) {
            let check = &check;
            s.spawn(move || chunk.iter().for_each(check));
        }
    });
}

// ---------------------------------------------------------------------------------------
// The test
// ---------------------------------------------------------------------------------------

#[test]
fn distrusting_a_ca_replaces_exactly_its_certificates_through_the_fallback_issuer() {
    let t0 = Instant::now();
    let w = World::new();
    let setup = t0.elapsed();
    let a_names = w.a_names();
    let mut a_and_orphan = a_names.clone();
    a_and_orphan.insert(ORPHAN.to_string());

    // The dry run lists exactly A's certificates, with where each would be reissued, and
    // changes nothing.
    let t = Instant::now();
    let dry = w.json(&["distrust", &w.ca_arg(), "--dry-run", "--json"], &[0]);
    let listed = array(&dry["affected"], "the dry run's affected");
    let names: BTreeSet<String> = listed
        .iter()
        .map(|o| o["cert"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        listed.len(),
        A_COUNT + 1,
        "a certificate listed twice: {dry:#}"
    );
    assert_eq!(names, a_and_orphan, "the dry run lists other certificates");
    for o in listed {
        let expected = if o["cert"] == ORPHAN {
            Value::Null
        } else {
            Value::from("pebble")
        };
        assert_eq!(o["issuer"], expected, "dry run: {o:#}");
    }
    let dry_secs = t.elapsed();
    let cases = w.json(&["cases", "list", "--json"], &[0]);
    assert!(
        array(&cases, "cases list").is_empty(),
        "the dry run opened cases: {cases:#}"
    );
    let recorded = w.json(&["distrust", "--list", "--json"], &[0]);
    assert!(
        array(&recorded, "distrust --list").is_empty(),
        "the dry run recorded the distrust: {recorded:#}"
    );
    for loc in w.a.iter().chain([&w.orphan]).chain(&w.b) {
        loc.assert_untouched();
    }

    // The distrust itself.
    let t = Instant::now();
    let started = Utc::now();
    let v = w.json(
        &[
            "distrust",
            &w.ca_arg(),
            "--deadline",
            "24h",
            "--json",
            "--no-progress",
        ],
        &[NOT_ALL_REPLACED],
    );
    let finished = Utc::now();
    let run_secs = t.elapsed();
    let s = &v["summary"];
    println!("distrust summary: {s}");
    assert_eq!(v["affected"], A_COUNT + 1, "{s}");
    assert_eq!(s["affected"], A_COUNT + 1, "{s}");
    assert_eq!(s["replaced"], A_COUNT, "{s}");
    assert_eq!(s["within_deadline"], A_COUNT, "{s}");
    assert_eq!(s["late"], 0, "{s}");
    assert_eq!(s["failed"], 0, "{s}");
    assert_eq!(s["waiting"], 0, "{s}");
    assert_eq!(s["busy"], 0, "{s}");
    assert_eq!(s["escalated"], 1, "{s}");
    assert!(
        array(&v["errors"], "errors").is_empty(),
        "errors: {:#}",
        v["errors"]
    );
    assert_eq!(v["distrust"]["ca"]["by"], "spki", "{:#}", v["distrust"]);
    assert_eq!(v["distrust"]["ca"]["value"], w.ca_a_spki.as_str());

    let outcomes = array(&v["outcomes"], "outcomes");
    assert_eq!(outcomes.len(), A_COUNT + 1);
    let mut replaced = BTreeSet::new();
    // (case id, deadline, priority rank) of each replacement, to check the order they ran in.
    let mut order = Vec::new();
    for o in outcomes {
        let name = o["cert"].as_str().unwrap().to_string();
        if name == ORPHAN {
            assert_eq!(o["status"], "escalated", "{o:#}");
            assert!(o["case"].is_null(), "{o:#}");
            let detail = o["detail"].as_str().unwrap_or_default();
            assert!(
                detail.contains("fallback_issuer"),
                "the escalation does not say that `fallback_issuer` is missing: {o:#}"
            );
            continue;
        }
        assert_eq!(o["status"], "replaced", "{o:#}");
        assert_eq!(o["issuer"], "pebble", "{o:#}");
        assert_eq!(o["within_deadline"], true, "{o:#}");
        assert!(o["seconds"].as_f64().is_some(), "{o:#}");
        assert!(o["verified_at"].is_string(), "{o:#}");
        let deadline = time_of(&o["deadline"], "deadline");
        assert!(
            deadline >= started + chrono::Duration::hours(24) - chrono::Duration::seconds(5)
                && deadline <= finished + chrono::Duration::hours(24),
            "the deadline {deadline} is not 24 h after the distrust ({started}): {o:#}"
        );
        let priority = o["priority"].as_str().unwrap();
        let expected = w.a.iter().find(|l| l.name == name).unwrap().priority;
        assert_eq!(priority, expected, "{o:#}");
        order.push((o["case"].as_u64().unwrap(), deadline, rank(priority)));
        assert!(replaced.insert(name), "{o:#} listed twice");
    }
    assert_eq!(
        replaced, a_names,
        "the replaced certificates are not exactly A's 200"
    );
    // Earliest deadline first, then the most critical: case ids follow that order. All
    // signals were raised by the one distrust, so they share the deadline and the order is
    // the priorities'.
    order.sort_by_key(|(id, _, _)| *id);
    assert!(
        order.iter().all(|(_, d, _)| *d == order[0].1),
        "the replacements of one distrust have different deadlines: {order:?}"
    );
    for pair in order.windows(2) {
        let ((_, d1, r1), (_, d2, r2)) = (pair[0], pair[1]);
        assert!(
            (d1, r1) <= (d2, r2),
            "a less urgent replacement was started before a more urgent one: {pair:?}"
        );
    }
    let cases_in_output = array(&v["cases"], "cases");
    assert_eq!(cases_in_output.len(), A_COUNT);

    // Every A location holds a Pebble certificate for a new key, and nginx serves it.
    let t = Instant::now();
    let new_leaves: Vec<(&Location, Vec<u8>)> = w
        .a
        .iter()
        .map(|loc| {
            let leaf = only_cert(&loc.cert);
            let info = inspect::inspect_certificate_der(&leaf).unwrap();
            assert!(
                info.issuer.contains("Pebble"),
                "{}: the new certificate is issued by {}, not Pebble",
                loc.name,
                info.issuer
            );
            assert!(!info.issuer.contains("Distrusted Root A"));
            assert_eq!(info.dns_names, vec![loc.name.clone()]);
            assert_ne!(
                info.fingerprints.spki_sha256, loc.spki_sha256,
                "{}: the new certificate carries the old key",
                loc.name
            );
            let key = inspect::read_private_key(&std::fs::read(&loc.key).unwrap()).unwrap();
            assert!(
                key.public.same_public_key(&info.key),
                "{}: the key file does not match the new certificate",
                loc.name
            );
            let mode = std::fs::metadata(&loc.key).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}: key mode {mode:o}", loc.name);
            let chain = inspect::inspect_certificates(&std::fs::read(&loc.chain).unwrap()).unwrap();
            assert!(
                chain
                    .first()
                    .is_some_and(|c| c.is_ca && c.subject.contains("Pebble")),
                "{}: the chain file does not start with Pebble's CA",
                loc.name
            );
            assert!(
                chain
                    .iter()
                    .all(|c| c.fingerprints.spki_sha256 != w.ca_a_spki),
                "{}: the distrusted CA is still in the deployed chain",
                loc.name
            );
            let full = inspect::read_certificates(&std::fs::read(&loc.fullchain).unwrap()).unwrap();
            assert_eq!(full.first(), Some(&leaf), "{}: fullchain", loc.name);
            assert_eq!(full.len(), 1 + chain.len(), "{}: fullchain", loc.name);
            (loc, leaf)
        })
        .collect();
    in_parallel(&new_leaves, |(loc, leaf)| {
        wait_served(w.nginx.port, &loc.name, leaf, &w.nginx);
        assert_eq!(
            w.pebble.status(leaf).status,
            "Valid",
            "{}: Pebble does not know the new certificate as valid",
            loc.name
        );
    });

    // B and the orphan are untouched and still served.
    let kept: Vec<&Location> = w.b.iter().chain([&w.orphan]).collect();
    for loc in &kept {
        loc.assert_untouched();
    }
    in_parallel(&kept, |loc| {
        assert_eq!(
            served_leaf(w.nginx.port, Some(&loc.name)).unwrap(),
            loc.leaf_der,
            "nginx no longer serves the original certificate of {}",
            loc.name
        );
    });
    let check_secs = t.elapsed();

    // The distrust is recorded.
    let recorded = w.json(&["distrust", "--list", "--json"], &[0]);
    let recorded = array(&recorded, "distrust --list");
    assert_eq!(recorded.len(), 1, "{recorded:#?}");
    assert_eq!(recorded[0]["ca"]["by"], "spki");
    assert_eq!(recorded[0]["ca"]["value"], w.ca_a_spki.as_str());
    assert_eq!(recorded[0]["deadline_hours"], 24);
    assert_eq!(recorded[0]["origin"], "command");
    let text = w.run(&["distrust", "--list"]);
    assert!(text.status.success());
    assert!(
        String::from_utf8_lossy(&text.stdout).contains(&format!("spki:{}", w.ca_a_spki)),
        "distrust --list does not show A: {}",
        String::from_utf8_lossy(&text.stdout)
    );

    // A later scan raises no new issuer_distrusted signal, and still sees the orphan.
    let scan = w.json(&["scan", "--no-ca", "--json"], &[0, 3]);
    let distrusted = |list: &Value| -> Vec<String> {
        array(list, "scan signals")
            .iter()
            .filter(|s| s["check"] == "issuer_distrusted")
            .map(|s| s["subject"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(
        distrusted(&scan["new"]).is_empty(),
        "the scan after the distrust raised new issuer_distrusted signals: {:#}",
        scan["new"]
    );
    assert_eq!(
        distrusted(&scan["seen_again"]),
        vec![ORPHAN.to_string()],
        "the scan should still find the one certificate that was not replaced"
    );

    // `cases list`: the 200 reissue cases, through Pebble, done.
    let cases = w.json(&["cases", "list", "--json"], &[0]);
    let cases = array(&cases, "cases list");
    assert_eq!(cases.len(), A_COUNT, "{cases:#?}");
    let mut case_certs = BTreeSet::new();
    for c in cases {
        assert_eq!(c["kind"], "reissue", "{c:#}");
        assert_eq!(c["issuer"], "pebble", "{c:#}");
        assert_eq!(c["state"], "done", "{c:#}");
        case_certs.insert(c["cert"].as_str().unwrap().to_string());
    }
    assert_eq!(case_certs, a_names);

    println!(
        "setup {:.1} s, dry run {:.1} s, distrust {:.1} s (p50 {} s, p99 {} s per certificate), checks {:.1} s, total {:.1} s",
        setup.as_secs_f64(),
        dry_secs.as_secs_f64(),
        run_secs.as_secs_f64(),
        s["p50_seconds"],
        s["p99_seconds"],
        check_secs.as_secs_f64(),
        t0.elapsed().as_secs_f64()
    );
}
