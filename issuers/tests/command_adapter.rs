//! The command adapter, end to end: the conformance suite against the example
//! `config/issuers/openssl-ca-adapter` on a real `openssl ca` directory made by
//! `config/issuers/openssl-ca-init`, checked by `openssl verify`; and the protocol's failure
//! modes (timeout, non-zero exit, non-JSON, wrong version, missing fields, missing executable,
//! bad certificates coming back), each driven by a small shell script.

// Helpers here are not `#[test]` functions, so clippy's allow-unwrap-in-tests does not reach
// them; a panic in a test helper is a test failure with a backtrace, which is what we want.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use certresponder_inventory::inspect;
use certresponder_inventory::{CertKind, KeyProfile, SecretPem};
use certresponder_issuers::command::CommandIssuer;
use certresponder_issuers::config::{CommandConfig, InternalCaConfig, IssuerKind, parse_issuer};
use certresponder_issuers::conformance::{self, Options};
use certresponder_issuers::{
    CertStatus, Identifier, InternalCa, IssueRequest, IssuedChain, Issuer, IssuerError,
    MemoryStorage, RevocationReason, RevokeRequest, generate_key,
};
use serde_json::{Value, json};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/issuers")
}

/// The tools the example needs; a test never skips for want of them.
fn require_tools() {
    let openssl = Command::new("/usr/bin/openssl").arg("version").output();
    assert!(
        openssl.is_ok_and(|o| o.status.success()),
        "/usr/bin/openssl is required by the openssl-ca example (scripts/test installs it: \
         apt-get install openssl)"
    );
    let python = Command::new("python3").arg("--version").output();
    assert!(
        python.is_ok_and(|o| o.status.success()),
        "python3 is required by config/issuers/openssl-ca-adapter (apt-get install python3)"
    );
}

/// A fresh CA directory made by the init script: `.example.test` allowed, profile `short`.
fn init_ca(dir: &Path) -> PathBuf {
    require_tools();
    let ca = dir.join("openssl-ca");
    let out = Command::new(examples().join("openssl-ca-init"))
        .arg(&ca)
        .args(["--allow", ".example.test", "--allow", "10.0.0.1"])
        .args(["--cn", "Command adapter test CA", "--profile", "short=1"])
        .args(["--crl-url", "http://crl.example.test/openssl-ca.crl"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl-ca-init failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    ca
}

fn adapter(ca: &Path) -> CommandIssuer {
    CommandIssuer::new(
        "openssl-ca",
        CommandConfig {
            command: vec![
                examples()
                    .join("openssl-ca-adapter")
                    .to_string_lossy()
                    .into_owned(),
                ca.to_string_lossy().into_owned(),
            ],
            timeout: Duration::from_secs(30),
        },
    )
}

fn csr_for(names: &[&str]) -> Vec<u8> {
    let key = generate_key(KeyProfile::EcdsaP256).unwrap();
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    rcgen::CertificateParams::new(names)
        .unwrap()
        .serialize_request(&key)
        .unwrap()
        .der()
        .to_vec()
}

fn request(csr_der: Vec<u8>, names: &[&str]) -> IssueRequest {
    IssueRequest {
        csr_der,
        identifiers: names
            .iter()
            .map(|n| Identifier::Dns(n.to_string()))
            .collect(),
        kind: CertKind::TlsServer,
        profile: None,
        replaces: None,
        request_id: None,
    }
}

fn leaf_der(chain: &IssuedChain) -> Vec<u8> {
    inspect::read_certificates(chain.leaf_pem.as_bytes())
        .unwrap()
        .remove(0)
}

fn openssl(args: &[&str]) -> (bool, String) {
    let out = Command::new("/usr/bin/openssl")
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test]
async fn conformance_suite_passes_against_the_openssl_ca_example() {
    let dir = tempfile::tempdir().unwrap();
    let ca = init_ca(dir.path());
    let issuer = adapter(&ca);
    let started = Instant::now();
    let report = conformance::run(
        &issuer,
        &Options {
            names: vec!["a.example.test".into(), "b.example.test".into()],
            forbidden_name: Some("evil.example.com".into()),
            profile: Some("short".into()),
            expected_validity: Some((Duration::from_secs(86_400), Duration::from_secs(600))),
            oracle: None,
        },
    )
    .await
    .unwrap();
    assert!(
        report.status_from_adapter,
        "status must come from the adapter"
    );
    assert!(report.lookup, "the example answers `lookup`");
    eprintln!(
        "conformance: issue {:?}, revoke {:?}, whole suite {:?}",
        report.issue,
        report.revoke,
        started.elapsed()
    );
}

#[tokio::test]
async fn issued_chain_verifies_with_openssl_and_revocation_reaches_the_crl() {
    let dir = tempfile::tempdir().unwrap();
    let ca = init_ca(dir.path());
    let issuer = adapter(&ca);
    let ca_pem = ca.join("ca.pem");
    let ca_pem = ca_pem.to_str().unwrap();

    let names = ["web.example.test"];
    let chain = issuer
        .issue(&request(csr_for(&names), &names))
        .await
        .unwrap();
    let leaf = dir.path().join("leaf.pem");
    std::fs::write(&leaf, &chain.leaf_pem).unwrap();
    let leaf = leaf.to_str().unwrap();
    let (ok, text) = openssl(&["verify", "-CAfile", ca_pem, leaf]);
    assert!(ok, "the issued chain must verify: {text}");
    let (ok, text) = openssl(&["verify", "-CAfile", ca_pem, "-purpose", "sslserver", leaf]);
    assert!(
        ok,
        "a tls-server certificate is fit for a TLS server: {text}"
    );
    let info = &inspect::inspect_certificates(chain.leaf_pem.as_bytes()).unwrap()[0];
    assert_eq!(info.crl_urls, ["http://crl.example.test/openssl-ca.crl"]);
    let days = (info.not_after - info.not_before).num_days();
    assert_eq!(days, 90, "no profile: the CA's default validity");

    let der = leaf_der(&chain);
    assert_eq!(issuer.status(&der).await.unwrap(), CertStatus::Good);
    let crl = ca.join("crl.pem");
    let crl = crl.to_str().unwrap();
    let (ok, text) = openssl(&[
        "verify",
        "-crl_check",
        "-CAfile",
        ca_pem,
        "-CRLfile",
        crl,
        leaf,
    ]);
    assert!(ok, "before revocation the CRL does not list it: {text}");
    issuer
        .revoke(&RevokeRequest {
            certificate_der: der.clone(),
            reason: RevocationReason::Superseded,
            certificate_key: None,
        })
        .await
        .unwrap();
    let (ok, text) = openssl(&[
        "verify",
        "-crl_check",
        "-CAfile",
        ca_pem,
        "-CRLfile",
        crl,
        leaf,
    ]);
    assert!(!ok && text.contains("certificate revoked"), "{text}");
    let crl_der = std::fs::read(ca.join("crl.der")).unwrap();
    let crl_info = inspect::inspect_crl_der(&crl_der).unwrap();
    assert_eq!(crl_info.find(&info.serial).unwrap().reason_code, Some(4));
    match issuer.status(&der).await.unwrap() {
        CertStatus::Revoked { reason, revoked_at } => {
            assert_eq!(reason, Some(RevocationReason::Superseded));
            assert!((chrono::Utc::now() - revoked_at).num_seconds().abs() < 120);
        }
        other => panic!("expected revoked, got {other:?}"),
    }
    // openssl ca has no way to record privilegeWithdrawn: a typed refusal, nothing recorded.
    let other = issuer
        .issue(&request(csr_for(&["other.example.test"]), &[]))
        .await
        .unwrap();
    let e = issuer
        .revoke(&RevokeRequest {
            certificate_der: leaf_der(&other),
            reason: RevocationReason::PrivilegeWithdrawn,
            certificate_key: None,
        })
        .await
        .unwrap_err();
    assert!(matches!(e, IssuerError::BadRequest(_)), "{e}");
    assert_eq!(
        issuer.status(&leaf_der(&other)).await.unwrap(),
        CertStatus::Good
    );
}

#[tokio::test]
async fn the_example_applies_its_policy_kinds_and_profiles() {
    let dir = tempfile::tempdir().unwrap();
    let ca = init_ca(dir.path());
    let issuer = adapter(&ca);

    // A client certificate for an allowed IP and name, from a CSR that asks to be a CA.
    let key = generate_key(KeyProfile::Rsa2048).unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["agent.example.test".to_string()]).unwrap();
    params
        .subject_alt_names
        .push(rcgen::SanType::IpAddress("10.0.0.1".parse().unwrap()));
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let csr = params.serialize_request(&key).unwrap().der().to_vec();
    let chain = issuer
        .issue(&IssueRequest {
            csr_der: csr,
            identifiers: vec![
                Identifier::Dns("agent.example.test".into()),
                Identifier::Ip("10.0.0.1".parse().unwrap()),
            ],
            kind: CertKind::TlsClient,
            profile: Some("short".into()),
            replaces: None,
            request_id: None,
        })
        .await
        .unwrap();
    let info = &inspect::inspect_certificates(chain.leaf_pem.as_bytes()).unwrap()[0];
    assert!(!info.is_ca, "a CSR asking for CA must not get it");
    let leaf = dir.path().join("client.pem");
    std::fs::write(&leaf, &chain.leaf_pem).unwrap();
    let ca_pem = ca.join("ca.pem");
    let (ok, text) = openssl(&[
        "verify",
        "-purpose",
        "sslclient",
        "-CAfile",
        ca_pem.to_str().unwrap(),
        leaf.to_str().unwrap(),
    ]);
    assert!(
        ok,
        "a tls-client certificate is fit for a TLS client: {text}"
    );
    let (ok, text) = openssl(&[
        "verify",
        "-purpose",
        "sslserver",
        "-CAfile",
        ca_pem.to_str().unwrap(),
        leaf.to_str().unwrap(),
    ]);
    assert!(!ok, "... and not for a server: {text}");

    // Refusals, each a typed error.
    let mut r = request(csr_for(&["x.example.test"]), &["x.example.test"]);
    r.profile = Some("forever".into());
    let e = issuer.issue(&r).await.unwrap_err();
    assert!(
        matches!(&e, IssuerError::BadRequest(m) if m.contains("short")),
        "{e}"
    );
    let e = issuer
        .issue(&request(csr_for(&["x.example.test"]), &["y.example.test"]))
        .await
        .unwrap_err();
    assert!(matches!(e, IssuerError::BadCsr(_)), "{e}");
    let e = issuer
        .issue(&request(csr_for(&["example.test.evil.com"]), &[]))
        .await
        .unwrap_err();
    assert!(matches!(e, IssuerError::NotAllowed(_)), "{e}");
    let e = issuer.renewal_info(&leaf_der(&chain)).await.unwrap_err();
    assert!(matches!(e, IssuerError::Unsupported(_)), "{e}");

    // A certificate from another CA: status unknown, revocation refused.
    let (foreign, _) = internal_ca_chain(dir.path(), &["web.example.test"]);
    let foreign = leaf_der(&foreign);
    assert!(matches!(
        issuer.status(&foreign).await.unwrap(),
        CertStatus::Unknown { .. }
    ));
    let e = issuer
        .revoke(&RevokeRequest {
            certificate_der: foreign,
            reason: RevocationReason::KeyCompromise,
            certificate_key: None,
        })
        .await
        .unwrap_err();
    assert!(matches!(e, IssuerError::BadRequest(_)), "{e}");

    // Concurrent issuance is serialised by the adapter's lock: all succeed, serials differ.
    let issuer = Arc::new(issuer);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let issuer = issuer.clone();
        let req = request(csr_for(&["c.example.test"]), &["c.example.test"]);
        tasks.spawn(async move { issuer.issue(&req).await });
    }
    let mut serials = Vec::new();
    while let Some(done) = tasks.join_next().await {
        let chain = done.unwrap().unwrap();
        serials.push(
            inspect::inspect_certificates(chain.leaf_pem.as_bytes()).unwrap()[0]
                .serial
                .clone(),
        );
    }
    serials.sort();
    serials.dedup();
    assert_eq!(serials.len(), 4, "four certificates with four serials");
}

/// A chain from a throwaway internal CA (another CA than the one under test), and its CSR.
fn internal_ca_chain(dir: &Path, names: &[&str]) -> (IssuedChain, Vec<u8>) {
    let ca = InternalCa::open_or_create(
        "other",
        InternalCaConfig {
            dir: dir.join("internal-ca"),
            common_name: "Another CA".into(),
            validity_days: 30,
            profiles: BTreeMap::new(),
            crl_path: dir.join("internal-ca/crl.der"),
            crl_validity: Duration::from_secs(86_400),
            crl_url: None,
            allowed_names: Vec::new(),
        },
        Arc::new(MemoryStorage::new()),
    )
    .unwrap();
    let csr = csr_for(names);
    (ca.issue_now(&request(csr.clone(), names)).unwrap(), csr)
}

/// Feeds raw bytes to the example adapter, as certresponder would; returns its exit status
/// and its response.
fn raw_adapter(ca: &Path, input: &[u8]) -> (i32, Value) {
    use std::io::Write;
    let mut child = Command::new(examples().join("openssl-ca-adapter"))
        .arg(ca)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    let response = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "the adapter's stdout is not JSON ({e}): {}; stderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), response)
}

#[test]
fn the_example_adapter_answers_garbage_with_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let ca = init_ca(dir.path());
    let refused = |input: &[u8], kind: &str| {
        let (code, r) = raw_adapter(&ca, input);
        assert_eq!(code, 0, "a refusal is an answer: {r}");
        assert_eq!(r["version"], 1, "{r}");
        assert_eq!(r["ok"], false, "{r}");
        assert_eq!(
            r["error"]["kind"],
            kind,
            "{}: {r}",
            String::from_utf8_lossy(input)
        );
        assert!(
            r["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{r}"
        );
    };
    refused(b"this is not JSON", "bad_request");
    refused(b"\xff\xfe", "bad_request");
    refused(b"[1, 2]", "bad_request");
    refused(br#"{"version": 2, "operation": "status"}"#, "unsupported");
    refused(
        br#"{"version": true, "operation": "status"}"#,
        "unsupported",
    );
    refused(
        br#"{"version": 1, "operation": "frobnicate"}"#,
        "unsupported",
    );
    refused(
        br#"{"version": 1, "operation": "renewal_info", "certificate": "x"}"#,
        "unsupported",
    );
    let issue = |csr: &str, kind: &str| {
        serde_json::to_vec(&json!({
            "version": 1, "operation": "issue", "csr": csr,
            "identifiers": [{"type": "dns", "value": "a.example.test"}],
            "kind": kind, "profile": null, "replaces": null,
        }))
        .unwrap()
    };
    refused(&issue("garbage", "tls-server"), "bad_csr");
    let tampered = inspect::encode_pem("CERTIFICATE REQUEST", b"\x30\x03\x02\x01\x01");
    refused(&issue(&tampered, "tls-server"), "bad_csr");
    let good_csr = inspect::encode_pem("CERTIFICATE REQUEST", &csr_for(&["a.example.test"]));
    refused(&issue(&good_csr, "toaster"), "bad_request");
    refused(
        br#"{"version": 1, "operation": "issue", "kind": "tls-server"}"#,
        "bad_request",
    );
    for op in ["revoke", "status"] {
        let garbage = json!({"version": 1, "operation": op, "certificate": "garbage",
                             "serial": "01", "reason": "keyCompromise", "reason_code": 1});
        refused(&serde_json::to_vec(&garbage).unwrap(), "bad_request");
        let damaged = json!({"version": 1, "operation": op,
            "certificate": "-----BEGIN CERTIFICATE-----\nMIIB!!!\n-----END CERTIFICATE-----\n",
            "serial": "01", "reason": "keyCompromise", "reason_code": 1});
        refused(&serde_json::to_vec(&damaged).unwrap(), "bad_request");
    }
    // A CA directory that is not there: the adapter is broken, says so, exits non-zero.
    let out = Command::new(examples().join("openssl-ca-adapter"))
        .arg(dir.path().join("nowhere"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("openssl-ca-init"));
}

#[test]
fn the_example_issuer_configuration_parses() {
    let path = examples().join("openssl-ca.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let doc: toml::Table = toml::from_str(&text).unwrap();
    let tables = doc["issuer"].as_array().unwrap();
    assert_eq!(tables.len(), 1);
    let spec = parse_issuer(
        tables[0].as_table().unwrap(),
        Path::new("/etc/certresponder"),
    )
    .unwrap_or_else(|e| panic!("{}: {}: {}", path.display(), e.field, e.message));
    let IssuerKind::Command(cfg) = spec.kind else {
        panic!("expected a command issuer")
    };
    assert!(
        cfg.command[0].ends_with("/openssl-ca-adapter"),
        "{:?}",
        cfg.command
    );
    assert_eq!(cfg.timeout, Duration::from_secs(30));
}

// ---- The protocol's failure modes, driven by small shell scripts. ----

/// An issuer running `/bin/sh SCRIPT DIR ARGS...`. sh reads the script, so no freshly written
/// file is exec'd (which could fail with ETXTBSY while other tests fork).
fn sh(dir: &Path, name: &str, body: &str, args: &[&str], timeout: Duration) -> CommandIssuer {
    let script = dir.join(name);
    std::fs::write(&script, body).unwrap();
    let mut command = vec![
        "/bin/sh".to_string(),
        script.to_string_lossy().into_owned(),
        dir.to_string_lossy().into_owned(),
    ];
    command.extend(args.iter().map(|a| a.to_string()));
    CommandIssuer::new("scripted", CommandConfig { command, timeout })
}

/// An issuer that saves its request to DIR/request.json and answers `response`.
fn canned(dir: &Path, response: &Value) -> CommandIssuer {
    std::fs::write(dir.join("response.json"), response.to_string()).unwrap();
    sh(
        dir,
        "canned.sh",
        "cat > \"$1/request.json\"\ncat \"$1/response.json\"\n",
        &[],
        Duration::from_secs(10),
    )
}

fn last_request(dir: &Path) -> (String, Value) {
    let text = std::fs::read_to_string(dir.join("request.json")).unwrap();
    let value = serde_json::from_str(&text).unwrap();
    (text, value)
}

/// A certificate to ask about, so requests pass the local checks and reach the command.
fn some_certificate(dir: &Path) -> Vec<u8> {
    leaf_der(&internal_ca_chain(dir, &["svc.example.test"]).0)
}

fn dead(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // A zombie is dead too, waiting for its reaper.
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

#[tokio::test]
async fn a_command_that_hangs_is_killed_at_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let cert = some_certificate(dir.path());
    let issuer = sh(
        dir.path(),
        "hang.sh",
        "echo $$ > \"$1/shell.pid\"\nsleep 30 &\necho $! > \"$1/sleep.pid\"\necho 'asking the CA...' >&2\nwait\n",
        &[],
        Duration::from_secs(1),
    );
    let started = Instant::now();
    let e = issuer.status(&cert).await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(matches!(e, IssuerError::Timeout(_)), "{e}");
    assert!(e.is_retryable());
    let text = e.to_string();
    assert!(
        text.contains("within 1s") && text.contains("killed"),
        "{text}"
    );
    assert!(
        text.contains("asking the CA..."),
        "stderr so far is kept: {text}"
    );
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    // The command and what it started are gone.
    for file in ["shell.pid", "sleep.pid"] {
        let pid = std::fs::read_to_string(dir.path().join(file)).unwrap();
        let pid = pid.trim();
        let deadline = Instant::now() + Duration::from_secs(3);
        while !dead(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(dead(pid), "{file}: process {pid} still runs");
    }
}

#[tokio::test]
async fn a_failing_command_reports_its_exit_status_and_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let cert = some_certificate(dir.path());
    let issuer = sh(
        dir.path(),
        "fail.sh",
        "cat > /dev/null\necho 'vault: permission denied on pki/sign/web' >&2\nexit 3\n",
        &[],
        Duration::from_secs(10),
    );
    match issuer.status(&cert).await.unwrap_err() {
        IssuerError::Command { status, stderr } => {
            assert!(status.starts_with("exit status 3"), "{status}");
            assert!(status.contains("operation `status`"), "{status}");
            assert_eq!(stderr, "vault: permission denied on pki/sign/web");
        }
        other => panic!("expected Command, got {other}"),
    }
    // A success printed by a command that then fails does not count.
    let issuer = sh(
        dir.path(),
        "lie.sh",
        "cat > /dev/null\necho '{\"version\":1,\"ok\":true,\"status\":\"good\"}'\nexit 1\n",
        &[],
        Duration::from_secs(10),
    );
    match issuer.status(&cert).await.unwrap_err() {
        IssuerError::Command { status, .. } => {
            assert!(status.contains("stdout was ignored"), "{status}")
        }
        other => panic!("expected Command, got {other}"),
    }
    // Killed by a signal.
    let issuer = sh(
        dir.path(),
        "signal.sh",
        "cat > /dev/null\nkill -TERM $$\n",
        &[],
        Duration::from_secs(10),
    );
    match issuer.status(&cert).await.unwrap_err() {
        IssuerError::Command { status, .. } => {
            assert!(status.starts_with("killed by signal 15"), "{status}")
        }
        other => panic!("expected Command, got {other}"),
    }
    // A chatty stderr is cut to its last 4 KiB, which hold the reason.
    let issuer = sh(
        dir.path(),
        "noisy.sh",
        "cat > /dev/null\ni=0\nwhile [ $i -lt 3000 ]; do echo \"noise line $i\" >&2; i=$((i+1)); done\n\
         echo 'the real reason' >&2\nexit 1\n",
        &[],
        Duration::from_secs(10),
    );
    match issuer.status(&cert).await.unwrap_err() {
        IssuerError::Command { stderr, .. } => {
            assert!(stderr.starts_with('…'), "{stderr}");
            assert!(
                stderr.ends_with("noise line 2999\nthe real reason"),
                "{stderr}"
            );
            assert!(stderr.len() <= 4096 + 3);
        }
        other => panic!("expected Command, got {other}"),
    }
}

fn protocol_error(e: IssuerError) -> String {
    match e {
        IssuerError::Protocol(m) => m,
        other => panic!("expected a protocol error, got {other:?}"),
    }
}

#[tokio::test]
async fn malformed_responses_are_protocol_errors_that_say_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let cert = some_certificate(dir.path());
    let answer = |name: &str, stdout: &str| {
        sh(
            dir.path(),
            name,
            &format!("cat > /dev/null\necho 'contacting CA' >&2\nprintf '%s\\n' '{stdout}'\n"),
            &[],
            Duration::from_secs(10),
        )
    };
    let m = protocol_error(
        answer("text.sh", "Certificate issued!")
            .status(&cert)
            .await
            .unwrap_err(),
    );
    assert!(
        m.contains("not one JSON object") && m.contains("Certificate issued!"),
        "{m}"
    );
    assert!(m.contains("stderr: contacting CA"), "{m}");
    assert!(
        m.contains("issuer `scripted`") && m.contains("operation `status`"),
        "{m}"
    );
    let m = protocol_error(
        answer("v2.sh", r#"{"version":2,"ok":true,"status":"good"}"#)
            .status(&cert)
            .await
            .unwrap_err(),
    );
    assert!(
        m.contains("version 2") && m.contains("speaks version 1"),
        "{m}"
    );
    let m = protocol_error(
        answer("noversion.sh", r#"{"ok":true,"status":"good"}"#)
            .status(&cert)
            .await
            .unwrap_err(),
    );
    assert!(m.contains("no `version`"), "{m}");
    let m = protocol_error(
        answer("nostatus.sh", r#"{"version":1,"ok":true}"#)
            .status(&cert)
            .await
            .unwrap_err(),
    );
    assert!(m.contains("no field `status`"), "{m}");
    let m = protocol_error(
        answer("badstatus.sh", r#"{"version":1,"ok":true,"status":"fine"}"#)
            .status(&cert)
            .await
            .unwrap_err(),
    );
    assert!(m.contains("`fine`"), "{m}");
    let m = protocol_error(
        answer(
            "nowhen.sh",
            r#"{"version":1,"ok":true,"status":"revoked","revoked_at":"yesterday"}"#,
        )
        .status(&cert)
        .await
        .unwrap_err(),
    );
    assert!(m.contains("revoked_at") && m.contains("RFC 3339"), "{m}");
    let m = protocol_error(
        answer(
            "kind.sh",
            r#"{"version":1,"ok":false,"error":{"kind":"on_fire","message":"help"}}"#,
        )
        .status(&cert)
        .await
        .unwrap_err(),
    );
    assert!(
        m.contains("unknown error kind `on_fire`") && m.contains("help"),
        "{m}"
    );
    let m = protocol_error(
        answer("nowindow.sh", r#"{"version":1,"ok":true}"#)
            .renewal_info(&cert)
            .await
            .unwrap_err(),
    );
    assert!(m.contains("`window`"), "{m}");
    let m = protocol_error(answer("empty.sh", "").status(&cert).await.unwrap_err());
    assert!(m.contains("printed nothing"), "{m}");
    let huge = sh(
        dir.path(),
        "huge.sh",
        "cat > /dev/null\nhead -c 2000000 /dev/zero | tr '\\0' 'a'\n",
        &[],
        Duration::from_secs(10),
    );
    let m = protocol_error(huge.status(&cert).await.unwrap_err());
    assert!(m.contains("larger than 1048576 bytes"), "{m}");
    // A key printed by mistake never reaches the error.
    let leaky = sh(
        dir.path(),
        "leaky.sh",
        "cat > /dev/null\nprintf -- '-----BEGIN PRIVATE KEY-----\\nMIGHAgEAMBMGByqGSM49\\n-----END PRIVATE KEY-----\\n' >&2\nexit 1\n",
        &[],
        Duration::from_secs(10),
    );
    let e = leaky.status(&cert).await.unwrap_err().to_string();
    assert!(
        !e.contains("MIGHAgEA") && e.contains("[private key withheld]"),
        "{e}"
    );
}

#[tokio::test]
async fn a_missing_or_unrunnable_executable_is_a_config_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let cert = some_certificate(dir.path());
    let config = |program: &str| {
        CommandIssuer::new(
            "corp-ca",
            CommandConfig {
                command: vec![program.to_string(), "--env".into(), "prod".into()],
                timeout: Duration::from_secs(5),
            },
        )
    };
    let e = config("/nonexistent/corp-ca-adapter")
        .status(&cert)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, IssuerError::Config { field, .. } if field == "command"),
        "{e:?}"
    );
    let text = e.to_string();
    assert!(
        text.contains("/nonexistent/corp-ca-adapter") && text.contains("not found"),
        "{text}"
    );
    assert!(!e.is_retryable());
    let e = config("corp-ca-adapter-not-on-path")
        .status(&cert)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("not found on PATH"), "{e}");
    let plain = dir.path().join("not-executable");
    std::fs::write(&plain, "#!/bin/sh\n").unwrap();
    let e = config(plain.to_str().unwrap())
        .status(&cert)
        .await
        .unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains(plain.to_str().unwrap()) && text.contains("permission denied"),
        "{text}"
    );
}

#[tokio::test]
async fn requests_carry_the_documented_fields_and_never_a_private_key() {
    let dir = tempfile::tempdir().unwrap();
    let names = ["svc.example.test"];
    let (chain, csr) = internal_ca_chain(dir.path(), &names);
    let (old, _) = internal_ca_chain(dir.path(), &names);

    // issue: the answer is checked and re-encoded; unknown response fields are ignored.
    let issuer = canned(
        dir.path(),
        &json!({"version": 1, "ok": true, "certificate": chain.leaf_pem,
                "chain": chain.chain_pem, "issued_by": "a newer adapter"}),
    );
    let got = issuer
        .issue(&IssueRequest {
            csr_der: csr.clone(),
            identifiers: vec![Identifier::Dns(names[0].into())],
            kind: CertKind::TlsMutual,
            profile: Some("shortlived".into()),
            replaces: Some(leaf_der(&old)),
            request_id: None,
        })
        .await
        .unwrap();
    assert_eq!(leaf_der(&got), leaf_der(&chain));
    assert_eq!(got.chain_pem.trim(), chain.chain_pem.trim());
    let (_, req) = last_request(dir.path());
    assert_eq!(req["version"], 1);
    assert_eq!(req["operation"], "issue");
    assert_eq!(req["issuer"], "scripted");
    assert_eq!(
        req["csr"].as_str().unwrap(),
        inspect::encode_pem("CERTIFICATE REQUEST", &csr)
    );
    assert_eq!(
        req["identifiers"],
        json!([{"type": "dns", "value": "svc.example.test"}])
    );
    assert_eq!(req["kind"], "tls-mutual");
    assert_eq!(req["profile"], "shortlived");
    assert_eq!(
        req["replaces"].as_str().unwrap(),
        inspect::encode_pem("CERTIFICATE", &leaf_der(&old))
    );

    // revoke: certificate, serial, reason and code; the certificate's key stays here.
    let key = generate_key(KeyProfile::EcdsaP256).unwrap();
    let key_pem = key.serialize_pem();
    let issuer = canned(dir.path(), &json!({"version": 1, "ok": true}));
    issuer
        .revoke(&RevokeRequest {
            certificate_der: leaf_der(&chain),
            reason: RevocationReason::KeyCompromise,
            certificate_key: Some(SecretPem::new(key_pem.clone())),
        })
        .await
        .unwrap();
    let (text, req) = last_request(dir.path());
    assert_eq!(req["operation"], "revoke");
    assert_eq!(req["reason"], "keyCompromise");
    assert_eq!(req["reason_code"], 1);
    let info = &inspect::inspect_certificates(chain.leaf_pem.as_bytes()).unwrap()[0];
    assert_eq!(req["serial"], info.serial.trim_start_matches("00"));
    assert!(
        req["certificate"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN CERTIFICATE-----")
    );
    let key_body: String = key_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    assert!(!text.contains("PRIVATE KEY") && !text.contains(&key_body[..40]));

    // status and renewal_info: certificate and serial.
    let issuer = canned(
        dir.path(),
        &json!({"version": 1, "ok": true, "status": "revoked", "reason": "key_compromise",
                "revoked_at": "2026-03-04T05:06:07+01:00"}),
    );
    let status = issuer.status(&leaf_der(&chain)).await.unwrap();
    assert_eq!(
        status,
        CertStatus::Revoked {
            reason: Some(RevocationReason::KeyCompromise),
            revoked_at: "2026-03-04T04:06:07Z".parse().unwrap(),
        }
    );
    let (_, req) = last_request(dir.path());
    assert_eq!(req["operation"], "status");
    assert_eq!(req["serial"], info.serial.trim_start_matches("00"));
    let issuer = canned(
        dir.path(),
        &json!({"version": 1, "ok": true, "window": {"start": "2026-05-01T00:00:00Z",
                "end": "2026-05-03T00:00:00Z", "explanation_url": "https://ca.example/incident",
                "retry_after_secs": 3600}}),
    );
    let window = issuer
        .renewal_info(&leaf_der(&chain))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(window.retry_after, Duration::from_secs(3600));
    assert_eq!(
        window.explanation_url.as_deref(),
        Some("https://ca.example/incident")
    );
    assert_eq!(last_request(dir.path()).1["operation"], "renewal_info");
}

#[tokio::test]
async fn certificates_coming_back_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let names = ["svc.example.test"];
    let (chain, csr) = internal_ca_chain(dir.path(), &names);
    let (other, _) = internal_ca_chain(dir.path(), &names);
    let other_dir = tempfile::tempdir().unwrap();
    let (stranger, _) = internal_ca_chain(other_dir.path(), &names);
    let issue = |certificate: &str, chain_pem: &str, identifiers: &[&str]| {
        let issuer = canned(
            dir.path(),
            &json!({"version": 1, "ok": true, "certificate": certificate, "chain": chain_pem}),
        );
        let req = request(csr.clone(), identifiers);
        async move { issuer.issue(&req).await }
    };
    let m = protocol_error(
        issue("garbage", &chain.chain_pem, &names)
            .await
            .unwrap_err(),
    );
    assert!(m.contains("field `certificate`"), "{m}");
    let m = protocol_error(
        issue(&chain.fullchain_pem(), &chain.chain_pem, &names)
            .await
            .unwrap_err(),
    );
    assert!(m.contains("holds 2 certificates"), "{m}");
    let m = protocol_error(
        issue(&other.leaf_pem, &other.chain_pem, &names)
            .await
            .unwrap_err(),
    );
    assert!(m.contains("different key"), "{m}");
    let m = protocol_error(
        issue(&chain.leaf_pem, &stranger.chain_pem, &names)
            .await
            .unwrap_err(),
    );
    assert!(m.contains("did not sign the leaf"), "{m}");
    let m = protocol_error(issue(&chain.leaf_pem, "junk", &names).await.unwrap_err());
    assert!(m.contains("field `chain`"), "{m}");
    let m = protocol_error(
        issue(
            &chain.leaf_pem,
            &chain.chain_pem,
            &["svc.example.test", "api.example.test"],
        )
        .await
        .unwrap_err(),
    );
    assert!(m.contains("does not cover `api.example.test`"), "{m}");
    // An empty chain is allowed (the leaf's issuer is known to the relying parties).
    let got = issue(&chain.leaf_pem, "", &names).await.unwrap();
    assert!(got.chain_pem.is_empty());
}

#[tokio::test]
async fn refusals_map_to_typed_errors_and_garbage_never_reaches_the_command() {
    let dir = tempfile::tempdir().unwrap();
    let cert = some_certificate(dir.path());
    let refusing = |kind: &str, retry: &str| {
        sh(
            dir.path(),
            "refuse.sh",
            "cat > /dev/null\n\
             printf '{\"version\":1,\"ok\":false,\"error\":{\"kind\":\"%s\",\"message\":\"CA says %s\",\"retry_after_secs\":%s}}\\n' \"$2\" \"$2\" \"$3\"\n",
            &[kind, retry],
            Duration::from_secs(10),
        )
    };
    let e = refusing("rate_limited", "30")
        .status(&cert)
        .await
        .unwrap_err();
    match &e {
        IssuerError::RateLimited {
            retry_after,
            detail,
        } => {
            assert_eq!(*retry_after, Some(Duration::from_secs(30)));
            assert_eq!(detail, "issuer `scripted`: CA says rate_limited");
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
    assert!(e.is_retryable());
    type Is = fn(&IssuerError) -> bool;
    let cases: [(&str, Is); 9] = [
        ("network", |e| matches!(e, IssuerError::Network(_))),
        ("server", |e| matches!(e, IssuerError::Server(_))),
        ("timeout", |e| matches!(e, IssuerError::Timeout(_))),
        ("unauthorized", |e| {
            matches!(e, IssuerError::Unauthorized(_))
        }),
        ("bad_csr", |e| matches!(e, IssuerError::BadCsr(_))),
        ("not_allowed", |e| matches!(e, IssuerError::NotAllowed(_))),
        ("already_revoked", |e| {
            matches!(e, IssuerError::AlreadyRevoked(_))
        }),
        ("bad_request", |e| matches!(e, IssuerError::BadRequest(_))),
        ("unsupported", |e| matches!(e, IssuerError::Unsupported(_))),
    ];
    for (kind, is) in cases {
        let e = refusing(kind, "null").status(&cert).await.unwrap_err();
        assert!(is(&e), "{kind}: {e:?}");
        assert!(e.to_string().contains(&format!("CA says {kind}")), "{e}");
    }

    // What cannot be a CSR or a certificate is refused here, before any command runs.
    let marker = dir.path().join("ran");
    let watcher = sh(
        dir.path(),
        "watch.sh",
        "touch \"$1/ran\"\ncat > /dev/null\necho '{\"version\":1,\"ok\":true,\"status\":\"good\"}'\n",
        &[],
        Duration::from_secs(10),
    );
    let e = watcher
        .issue(&request(b"not a CSR".to_vec(), &["a.example.test"]))
        .await
        .unwrap_err();
    assert!(matches!(e, IssuerError::BadCsr(_)), "{e}");
    let garbage = b"\x30\x03\x02\x01\x01".to_vec();
    let e = watcher.status(&garbage).await.unwrap_err();
    assert!(matches!(e, IssuerError::BadRequest(_)), "{e}");
    let e = watcher
        .revoke(&RevokeRequest {
            certificate_der: garbage,
            reason: RevocationReason::Superseded,
            certificate_key: None,
        })
        .await
        .unwrap_err();
    assert!(matches!(e, IssuerError::BadRequest(_)), "{e}");
    assert!(!marker.exists(), "the command must not have run");
    assert_eq!(watcher.status(&cert).await.unwrap(), CertStatus::Good);
    assert!(marker.exists());
}
