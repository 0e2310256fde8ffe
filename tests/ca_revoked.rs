//! End-to-end tests of `revoked_at_ca` from a fetched CRL, through the binary: a certificate
//! issued by a corporate CA that certresponder does not manage (so its issuer adapter cannot
//! answer for it) is revoked by that CA's own CRL, served over real HTTP; `scan` detects it
//! from the fetched CRL once the cached copy reaches its nextUpdate, and `respond` reissues it
//! from the configured issuer with a new key. A CRL signed by an impostor CA with the same
//! name is rejected and reported, never believed, and opens no case. The same detection
//! through OCSP: a real `openssl ocsp` responder names one certificate revoked for
//! keyCompromise and another good.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod live_support;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use certresponder_inventory::CertKind;
use certresponder_inventory::inspect::{self, CertInfo};
use certresponder_issuers::config::InternalCaConfig;
use certresponder_issuers::{InternalCa, MemoryStorage, RevocationReason};
use chrono::{DateTime, Utc};
use common::{Home, text};
use serde_json::Value;

/// How long each of the corporate CA's CRLs is valid. Short, so that the copy cached by the
/// first scan reaches its nextUpdate within the test; long enough for two scans and a
/// revocation to happen before it does (checked, not assumed).
const SHORT_CRL_VALIDITY: Duration = Duration::from_secs(8);

/// How long one command may run.
const LIMIT: Duration = Duration::from_secs(90);

// ---------------------------------------------------------------------------------------
// The CRL distribution point
// ---------------------------------------------------------------------------------------

/// An HTTP/1.0 server on 127.0.0.1 serving, at each request, the current bytes of the file
/// routed to the requested path (404 otherwise), and counting requests by path. Stopped on
/// drop.
struct CrlServer {
    port: u16,
    routes: Arc<Mutex<HashMap<String, PathBuf>>>,
    hits: Arc<Mutex<HashMap<String, usize>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl CrlServer {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let routes = Arc::new(Mutex::new(HashMap::new()));
        let hits = Arc::new(Mutex::new(HashMap::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, h, s) = (routes.clone(), hits.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(mut stream) = stream {
                    serve(&mut stream, &r, &h);
                }
            }
        });
        Self {
            port,
            routes,
            hits,
            stop,
            thread: Some(thread),
        }
    }

    /// Serves `file` at `path` from now on; returns the URL.
    fn route(&self, path: &str, file: &Path) -> String {
        self.routes
            .lock()
            .unwrap()
            .insert(path.to_string(), file.to_path_buf());
        self.url(path)
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Requests received for `path`.
    fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

impl Drop for CrlServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Answers one request: reads the head, counts it, sends the routed file as it is now.
fn serve(
    stream: &mut TcpStream,
    routes: &Mutex<HashMap<String, PathBuf>>,
    hits: &Mutex<HashMap<String, usize>>,
) {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut head = Vec::new();
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head);
    let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
    *hits.lock().unwrap().entry(path.clone()).or_default() += 1;
    let file = routes.lock().unwrap().get(&path).cloned();
    let (status, body) = match file.and_then(|f| std::fs::read(f).ok()) {
        Some(b) => ("200 OK", b),
        None => ("404 Not Found", b"not here".to_vec()),
    };
    let _ = write!(
        stream,
        "HTTP/1.0 {status}\r\nContent-Type: application/pkix-crl\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(&body);
    let _ = stream.flush();
}

// ---------------------------------------------------------------------------------------
// CAs and deployments
// ---------------------------------------------------------------------------------------

/// A CA outside certresponder, made through the library with its own storage, publishing its
/// CRL (DER) at `crl_path` and naming `crl_url` in what it issues.
fn outside_ca(
    dir: &Path,
    id: &str,
    common_name: &str,
    crl_path: &Path,
    crl_url: &str,
    crl_validity: Duration,
) -> InternalCa {
    let cfg = InternalCaConfig {
        dir: dir.join(id),
        common_name: common_name.into(),
        validity_days: 90,
        profiles: Default::default(),
        crl_path: crl_path.to_path_buf(),
        crl_validity,
        crl_url: Some(crl_url.into()),
        allowed_names: vec![".example.test".into()],
    };
    InternalCa::open_or_create(id, cfg, Arc::new(MemoryStorage::new())).unwrap()
}

/// The deployed files of one service.
struct Deployed {
    cert: PathBuf,
    key: PathBuf,
    chain: PathBuf,
}

impl Deployed {
    fn leaf_der(&self) -> Vec<u8> {
        inspect::read_certificates(&std::fs::read(&self.cert).unwrap())
            .unwrap()
            .remove(0)
    }

    fn leaf(&self) -> CertInfo {
        inspect::inspect_certificate_der(&self.leaf_der()).unwrap()
    }
}

/// Has `ca` issue a certificate for `dns` on a fresh key and lays it out under
/// `srv/<name>/` (cert, key 0600, chain with the CA certificate); registers the entry, whose
/// issuer is the home's own `internal` CA.
fn deploy(home: &Home, ca: &InternalCa, name: &str, dns: &str) -> Deployed {
    let key = rcgen::KeyPair::generate().unwrap();
    let spki = rcgen::PublicKeyData::subject_public_key_info(&key);
    let issued = ca
        .issue_for_public_key(&spki, &[dns.to_string()], CertKind::TlsServer, None)
        .unwrap();
    lay_out(
        home,
        name,
        &issued.leaf_pem,
        &key.serialize_pem(),
        &issued.chain_pem,
    )
}

/// Writes a service's files under `srv/<name>/` (cert, key 0600, chain) and registers the
/// entry, whose issuer is the home's own `internal` CA.
fn lay_out(home: &Home, name: &str, leaf_pem: &str, key_pem: &str, chain_pem: &str) -> Deployed {
    let dir = home.path(&format!("srv/{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    let d = Deployed {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
        chain: dir.join("chain.pem"),
    };
    std::fs::write(&d.cert, leaf_pem).unwrap();
    std::fs::write(&d.key, key_pem).unwrap();
    std::fs::set_permissions(&d.key, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(&d.chain, chain_pem).unwrap();
    std::fs::write(
        home.path(&format!("inventory/{name}.toml")),
        format!(
            "[[cert]]\nname = \"{name}\"\nowner = \"team-{name}@example.com\"\ntags = [\"prod\"]\nissuer = \"internal\"\ncert = \"{}\"\nkey = \"{}\"\nchain = \"{}\"\n",
            d.cert.display(),
            d.key.display(),
            d.chain.display()
        ),
    )
    .unwrap();
    d
}

/// A home whose only issuer is its own internal CA (`internal`, in `ca/`, no CRL URL).
fn home() -> Home {
    let home = Home::new();
    std::fs::write(
        home.config(),
        "state_dir = \"state\"\ninventory_dir = \"inventory\"\n\n[respond]\nreload_window_ms = 0\nretry_base_ms = 10\nconfirm_timeout_secs = 5\n\n[[issuer]]\nid = \"internal\"\ntype = \"internal-ca\"\ndir = \"ca\"\n",
    )
    .unwrap();
    home
}

// ---------------------------------------------------------------------------------------
// Running the binary
// ---------------------------------------------------------------------------------------

fn run(home: &Home, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_certresponder"));
    cmd.arg("--config")
        .arg(home.config())
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("CERTRESPONDER_FAULT")
        .env_remove("CERTRESPONDER_CONFIG");
    live_support::run_bounded(cmd, LIMIT)
}

/// Runs and parses JSON stdout, asserting the exit status.
fn json(home: &Home, args: &[&str], status: i32) -> Value {
    let out = run(home, args);
    assert_eq!(out.status.code(), Some(status), "{args:?}: {}", text(&out));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {}", text(&out)))
}

/// The `revoked_at_ca` signals about `cert` that a `scan --json` report raised or saw again.
fn revoked_signals<'a>(report: &'a Value, cert: &str) -> Vec<&'a Value> {
    ["new", "seen_again"]
        .iter()
        .flat_map(|k| report[k].as_array().unwrap())
        .filter(|s| s["check"] == "revoked_at_ca" && s["subject"] == cert)
        .collect()
}

/// The `ca_problems` of a `scan --json` report.
fn problems(report: &Value) -> &Vec<Value> {
    report["ca_problems"].as_array().unwrap()
}

/// The nextUpdate of the DER CRL at `path`.
fn next_update(path: &Path) -> DateTime<Utc> {
    inspect::inspect_crl_der(&std::fs::read(path).unwrap())
        .unwrap()
        .next_update
        .expect("the CA's CRLs carry a nextUpdate")
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#[test]
fn revoked_by_its_own_crl_is_detected_from_the_fetched_crl_and_reissued_with_a_new_key() {
    let home = home();
    let server = CrlServer::start();
    let www = home.path("www");
    std::fs::create_dir_all(&www).unwrap();
    let crl_file = www.join("corp.crl");
    let url = server.route("/corp.crl", &crl_file);
    let corp = outside_ca(
        home.dir.path(),
        "corp-ca",
        "Corp Issuing CA",
        &crl_file,
        &url,
        SHORT_CRL_VALIDITY,
    );
    // The CA publishes its (empty) CRL before issuing anything.
    corp.publish_crl().unwrap();
    let first_next_update = next_update(&crl_file);
    let svc = deploy(&home, &corp, "svc", "svc.example.test");
    let old = svc.leaf();
    let old_key_pem = std::fs::read_to_string(&svc.key).unwrap();
    assert_eq!(old.crl_urls, [url.as_str()]);

    // Not revoked: no signal, nothing that could not be checked, the CRL fetched once.
    let before = json(&home, &["scan", "--json"], 0);
    assert_eq!(before["ca_checked"], 1, "{before:#}");
    assert!(revoked_signals(&before, "svc").is_empty(), "{before:#}");
    assert!(problems(&before).is_empty(), "{before:#}");
    assert_eq!(server.hits("/corp.crl"), 1);

    // Within the CRL's nextUpdate, a second scan uses the cached copy.
    let again = json(&home, &["scan", "--json"], 0);
    assert!(revoked_signals(&again, "svc").is_empty(), "{again:#}");
    assert!(problems(&again).is_empty(), "{again:#}");
    assert_eq!(
        server.hits("/corp.crl"),
        1,
        "the cached CRL was fetched again"
    );

    // The corporate CA revokes the certificate, which republishes its CRL. The copy cached
    // above is still current, so a scan now does not ask again (RFC 5280 §5.1.2.5: the
    // next CRL is due at nextUpdate) and cannot know yet.
    corp.revoke_now(&svc.leaf_der(), RevocationReason::KeyCompromise)
        .unwrap();
    let crl = inspect::inspect_crl_der(&std::fs::read(&crl_file).unwrap()).unwrap();
    assert!(crl.find(&old.serial).is_some(), "{crl:#?}");
    let cached = json(&home, &["scan", "--json"], 0);
    assert!(
        Utc::now() < first_next_update,
        "the scans took longer than the CRL's validity ({SHORT_CRL_VALIDITY:?}); the cache \
         cannot be observed: raise SHORT_CRL_VALIDITY"
    );
    assert!(revoked_signals(&cached, "svc").is_empty(), "{cached:#}");
    assert_eq!(server.hits("/corp.crl"), 1);

    // Past the cached copy's nextUpdate: fetched again, and the revocation is found there.
    let wait = (first_next_update - Utc::now())
        .to_std()
        .unwrap_or_default();
    std::thread::sleep(wait + Duration::from_millis(1100));
    let found = json(&home, &["scan", "--json"], 3);
    assert_eq!(server.hits("/corp.crl"), 2);
    assert!(problems(&found).is_empty(), "{found:#}");
    let signals = revoked_signals(&found, "svc");
    assert_eq!(signals.len(), 1, "{found:#}");
    let signal = signals[0];
    assert!(
        found["new"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["id"] == signal["id"]),
        "not a new signal: {found:#}"
    );
    assert_eq!(signal["confidence"], "confirmed", "{signal:#}");
    assert_eq!(signal["family"], "ca", "{signal:#}");
    assert_eq!(signal["state"]["state"], "open", "{signal:#}");
    let ev = &signal["evidence"];
    // Only the CRL could tell: the entry's issuer (`internal`) did not issue it.
    assert_eq!(
        ev["sources"],
        serde_json::json!([format!("CRL {url}")]),
        "{ev:#}"
    );
    assert_eq!(ev["reason"], "keyCompromise", "{ev:#}");
    assert_eq!(ev["key_compromise"], true, "{ev:#}");
    assert_eq!(ev["serial"], old.serial.as_str(), "{ev:#}");
    assert_eq!(
        signal["cert_sha256"],
        old.fingerprints.cert_sha256.as_str(),
        "{signal:#}"
    );
    assert!(
        signal["message"].as_str().unwrap().contains("new key"),
        "{signal:#}"
    );

    // The bundle is marked revoked in the history: no rollback restores it without --force.
    let history = json(&home, &["history", "svc", "--json"], 0);
    let deployed = history
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["serial"] == old.serial.as_str())
        .unwrap_or_else(|| panic!("{history:#}"));
    assert!(!deployed["revoked_at"].is_null(), "{history:#}");

    // `respond` reissues it from the configured issuer, on a new key.
    let responded = json(&home, &["respond", "--json"], 0);
    assert!(
        responded["errors"].as_array().unwrap().is_empty(),
        "{responded:#}"
    );
    let cases = responded["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 1, "{responded:#}");
    let case = &cases[0];
    assert_eq!(case["cert"], "svc", "{case:#}");
    assert_eq!(case["kind"], "reissue", "{case:#}");
    assert_eq!(case["state"], "done", "{case:#}");
    assert!(
        case["trigger"]["signals"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == &signal["dedup_key"]),
        "{case:#}"
    );
    assert!(
        !responded.to_string().contains("PRIVATE KEY"),
        "key material in the output"
    );

    let new = svc.leaf();
    assert_ne!(new.serial, old.serial);
    assert_eq!(new.dns_names, ["svc.example.test"]);
    let new_key_pem = std::fs::read_to_string(&svc.key).unwrap();
    assert_ne!(new_key_pem, old_key_pem, "the key file was not replaced");
    let new_key = inspect::read_private_key(new_key_pem.as_bytes()).unwrap();
    assert!(
        new_key.public.same_public_key(&new.key),
        "key and cert differ"
    );
    assert!(
        !new_key.public.same_public_key(&old.key),
        "the old key was reused"
    );
    assert_ne!(new.fingerprints.spki_sha256, old.fingerprints.spki_sha256);
    let mode = std::fs::metadata(&svc.key).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "key file mode {:o}", mode & 0o777);
    // Issued by the home's `internal` CA, which the chain file now carries.
    let internal_pem = std::fs::read(home.path("ca/ca.pem")).unwrap();
    let internal_der = inspect::read_certificates(&internal_pem).unwrap().remove(0);
    let internal = inspect::inspect_certificate_der(&internal_der).unwrap();
    assert_eq!(new.issuer, internal.subject);
    assert_ne!(new.issuer, old.issuer);
    assert!(inspect::cert_signed_by(&svc.leaf_der(), &internal_der).unwrap());
    let chain = inspect::read_certificates(&std::fs::read(&svc.chain).unwrap()).unwrap();
    assert_eq!(chain, [internal_der]);

    // Afterwards: the signal is resolved, nothing is open, and the new certificate (which
    // names no CRL) sends nobody to the corporate CRL.
    let after = json(&home, &["scan", "--json"], 0);
    assert_eq!(after["open"], 0, "{after:#}");
    assert!(revoked_signals(&after, "svc").is_empty(), "{after:#}");
    assert!(problems(&after).is_empty(), "{after:#}");
    assert_eq!(server.hits("/corp.crl"), 2);
    let all = json(&home, &["signals", "--all", "--json"], 0);
    let stored: Vec<&Value> = all
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["check"] == "revoked_at_ca")
        .collect();
    assert_eq!(stored.len(), 1, "{all:#}");
    assert_eq!(stored[0]["id"], signal["id"]);
    assert_eq!(stored[0]["state"]["state"], "resolved", "{all:#}");
    // Nothing left to do.
    let idle = json(&home, &["respond", "--json"], 0);
    assert!(idle["cases"].as_array().unwrap().is_empty(), "{idle:#}");
}

#[test]
fn crl_signed_by_an_impostor_with_the_same_name_is_rejected_not_trusted() {
    let home = home();
    let server = CrlServer::start();
    let www = home.path("www");
    std::fs::create_dir_all(&www).unwrap();
    let genuine_file = www.join("partner-genuine.crl");
    let forged_file = www.join("partner-forged.crl");
    let url = server.route("/partner.crl", &forged_file);
    let partner = outside_ca(
        home.dir.path(),
        "partner-ca",
        "Partner CA",
        &genuine_file,
        &url,
        Duration::from_secs(7 * 24 * 3600),
    );
    let svc = deploy(&home, &partner, "partner", "partner.example.test");
    let leaf = svc.leaf();

    // An impostor CA with the same name (another key) signs a CRL listing the certificate
    // as revoked for keyCompromise; that is what the distribution point serves.
    let impostor = outside_ca(
        home.dir.path(),
        "impostor-ca",
        "Partner CA",
        &www.join("impostor.crl"),
        &url,
        Duration::from_secs(7 * 24 * 3600),
    );
    let partner_ca = inspect::inspect_certificate_der(partner.certificate_der()).unwrap();
    let impostor_ca = inspect::inspect_certificate_der(impostor.certificate_der()).unwrap();
    assert_eq!(impostor_ca.subject, partner_ca.subject);
    assert_eq!(leaf.issuer, partner_ca.subject);
    assert!(!impostor_ca.key.same_public_key(&partner_ca.key));
    let impostor_key = std::fs::read_to_string(home.path("impostor-ca/ca.key")).unwrap();
    let signer = rcgen::Issuer::from_ca_cert_pem(
        impostor.certificate_pem(),
        rcgen::KeyPair::from_pem(&impostor_key).unwrap(),
    )
    .unwrap();
    let now = time::OffsetDateTime::now_utc();
    let mut serial = leaf.serial.clone();
    if serial.len() % 2 == 1 {
        serial.insert(0, '0');
    }
    let forged = rcgen::CertificateRevocationListParams {
        this_update: now - time::Duration::minutes(1),
        next_update: now + time::Duration::days(7),
        crl_number: rcgen::SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs: vec![rcgen::RevokedCertParams {
            serial_number: rcgen::SerialNumber::from_slice(&hex::decode(&serial).unwrap()),
            revocation_time: now - time::Duration::minutes(1),
            reason_code: Some(rcgen::RevocationReason::KeyCompromise),
            invalidity_date: None,
        }],
        key_identifier_method: rcgen::KeyIdMethod::Sha256,
    }
    .signed_by(&signer)
    .unwrap();
    std::fs::write(&forged_file, forged.der()).unwrap();
    // A well-formed CRL, naming the right issuer and listing the serial, whose signature is
    // the impostor's and not the partner CA's.
    let info = inspect::inspect_crl_der(forged.der()).unwrap();
    assert_eq!(info.issuer, partner_ca.subject);
    assert!(info.find(&leaf.serial).is_some());
    assert!(inspect::crl_signed_by(forged.der(), impostor.certificate_der()).unwrap());
    assert!(!inspect::crl_signed_by(forged.der(), partner.certificate_der()).unwrap());

    // `scan`: no signal, and a problem naming the URL saying the CRL was rejected.
    let report = json(&home, &["scan", "--json"], 0);
    assert_eq!(server.hits("/partner.crl"), 1);
    assert!(revoked_signals(&report, "partner").is_empty(), "{report:#}");
    assert_eq!(report["open"], 0, "{report:#}");
    let ps = problems(&report);
    assert_eq!(ps.len(), 1, "{report:#}");
    assert_eq!(ps[0]["cert"], "partner");
    assert_eq!(ps[0]["check"], "revoked_at_ca");
    let msg = ps[0]["message"].as_str().unwrap();
    assert!(
        msg.contains(&url) && msg.contains("rejected, not trusted"),
        "{msg}"
    );

    // The text output says so too; the rejected CRL was not cached, so it was asked again.
    let out = run(&home, &["scan"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.lines().any(|l| l.starts_with(&format!(
            "partner: revoked_at_ca could not be checked: CRL {url}: rejected, not trusted"
        ))),
        "{}",
        text(&out)
    );
    assert_eq!(server.hits("/partner.crl"), 2);

    // `respond` opens no case for it; the certificate stays as deployed.
    let responded = json(&home, &["respond", "--json"], 0);
    assert!(
        responded["cases"].as_array().unwrap().is_empty(),
        "{responded:#}"
    );
    assert!(
        responded["waiting"].as_array().unwrap().is_empty(),
        "{responded:#}"
    );
    let all = json(&home, &["signals", "--all", "--json"], 0);
    assert!(
        !all.as_array()
            .unwrap()
            .iter()
            .any(|s| s["check"] == "revoked_at_ca"),
        "{all:#}"
    );
    assert_eq!(svc.leaf().serial, leaf.serial);

    // Control: the same certificate, the same URL, now serving the partner CA's own CRL
    // with the same revocation: believed.
    partner
        .revoke_now(&svc.leaf_der(), RevocationReason::KeyCompromise)
        .unwrap();
    server.route("/partner.crl", &genuine_file);
    let genuine = json(&home, &["scan", "--json"], 3);
    assert_eq!(server.hits("/partner.crl"), 3);
    assert!(problems(&genuine).is_empty(), "{genuine:#}");
    let signals = revoked_signals(&genuine, "partner");
    assert_eq!(signals.len(), 1, "{genuine:#}");
    assert_eq!(
        signals[0]["evidence"]["sources"],
        serde_json::json!([format!("CRL {url}")])
    );
}

// ---------------------------------------------------------------------------------------
// OCSP
// ---------------------------------------------------------------------------------------

/// A real OCSP responder (`openssl ocsp`) for `ca` on 127.0.0.1, answering from the CA
/// database `index`; killed on drop.
struct OcspResponder {
    child: std::process::Child,
    url: String,
}

impl Drop for OcspResponder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl OcspResponder {
    /// Starts it on a free port (`-port 0`; openssl prints the one it bound).
    fn start(dir: &Path, ca_pem: &Path, ca_key: &Path, index: &Path) -> Self {
        let mut child = Command::new("openssl")
            .arg("ocsp")
            .arg("-index")
            .arg(index)
            .arg("-CA")
            .arg(ca_pem)
            .arg("-rsigner")
            .arg(ca_pem)
            .arg("-rkey")
            .arg(ca_key)
            .args(["-port", "0", "-ndays", "1"])
            .current_dir(dir)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("openssl must be installed");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        // "ACCEPT [::]:PORT PID=N"
        let port: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|a| a.rsplit(':').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("openssl ocsp printed {line:?}"));
        Self {
            child,
            url: format!("http://127.0.0.1:{port}/"),
        }
    }
}

/// The DER of an Authority Information Access extension naming `url` as the OCSP responder.
fn aia_ocsp(url: &str) -> Vec<u8> {
    let tlv = |tag: u8, content: &[u8]| {
        let mut out = vec![tag, u8::try_from(content.len()).unwrap()];
        out.extend_from_slice(content);
        out
    };
    // id-ad-ocsp, 1.3.6.1.5.5.7.48.1, then [6] uniformResourceIdentifier.
    let oid = tlv(0x06, &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01]);
    let access = tlv(0x30, &[oid, tlv(0x86, url.as_bytes())].concat());
    tlv(0x30, &access)
}

#[test]
fn revoked_according_to_its_ocsp_responder_is_detected_and_reissued() {
    let home = home();
    let dir = home.path("corp-ocsp");
    std::fs::create_dir_all(&dir).unwrap();
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Corp OCSP CA");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let (ca_pem, ca_key_path) = (dir.join("ca.pem"), dir.join("ca.key"));
    std::fs::write(&ca_pem, ca_cert.pem()).unwrap();
    std::fs::write(&ca_key_path, ca_key.serialize_pem()).unwrap();
    let ca = rcgen::Issuer::new(ca_params, ca_key);

    // openssl's CA database (status, expiry, revocation[,reason], serial, file, subject),
    // written before the responder starts, since it reads it then; the certificates that
    // name the responder's URL are issued once it runs.
    let certs = [("bad", 0x0b0b_u64, true), ("fine", 0x0f0f, false)];
    let index = dir.join("index.txt");
    let lines: String = certs
        .iter()
        .map(|(name, serial, revoked)| {
            if *revoked {
                format!("R\t301231235959Z\t261101120000Z,keyCompromise\t{serial:04X}\tunknown\t/CN={name}.example.test\n")
            } else {
                format!("V\t301231235959Z\t\t{serial:04X}\tunknown\t/CN={name}.example.test\n")
            }
        })
        .collect();
    std::fs::write(&index, lines).unwrap();
    let responder = OcspResponder::start(&dir, &ca_pem, &ca_key_path, &index);
    let mut deployed = Vec::new();
    for (name, serial, _) in certs {
        let key = rcgen::KeyPair::generate().unwrap();
        let dns = format!("{name}.example.test");
        let mut p = rcgen::CertificateParams::new(vec![dns.clone()]).unwrap();
        p.distinguished_name.push(rcgen::DnType::CommonName, &dns);
        p.serial_number = Some(rcgen::SerialNumber::from(serial));
        p.custom_extensions = vec![rcgen::CustomExtension::from_oid_content(
            &[1, 3, 6, 1, 5, 5, 7, 1, 1],
            aia_ocsp(&responder.url),
        )];
        let leaf = p.signed_by(&key, &ca).unwrap();
        let d = lay_out(
            &home,
            name,
            &leaf.pem(),
            &key.serialize_pem(),
            &ca_cert.pem(),
        );
        assert_eq!(d.leaf().ocsp_urls, [responder.url.as_str()]);
        deployed.push(d);
    }
    let bad_old = deployed[0].leaf();

    let found = json(&home, &["scan", "--json"], 3);
    assert!(problems(&found).is_empty(), "{found:#}");
    assert!(revoked_signals(&found, "fine").is_empty(), "{found:#}");
    let signals = revoked_signals(&found, "bad");
    assert_eq!(signals.len(), 1, "{found:#}");
    let ev = &signals[0]["evidence"];
    assert_eq!(
        ev["sources"],
        serde_json::json!([format!("OCSP {}", responder.url)]),
        "{ev:#}"
    );
    assert_eq!(ev["reason"], "keyCompromise", "{ev:#}");
    assert_eq!(ev["key_compromise"], true, "{ev:#}");
    assert_eq!(ev["revoked_at"], "2026-11-01T12:00:00Z", "{ev:#}");

    let responded = json(&home, &["respond", "--json"], 0);
    let cases = responded["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 1, "{responded:#}");
    assert_eq!(cases[0]["cert"], "bad", "{responded:#}");
    assert_eq!(cases[0]["state"], "done", "{responded:#}");
    let new = deployed[0].leaf();
    assert_ne!(new.serial, bad_old.serial);
    assert_ne!(
        new.fingerprints.spki_sha256,
        bad_old.fingerprints.spki_sha256
    );
    assert!(new.ocsp_urls.is_empty(), "{new:#?}");

    // The good answer was cached until its nextUpdate: the responder going away changes
    // nothing for `fine`, and nothing is open.
    drop(responder);
    let after = json(&home, &["scan", "--json"], 0);
    assert_eq!(after["open"], 0, "{after:#}");
    assert!(problems(&after).is_empty(), "{after:#}");
}
