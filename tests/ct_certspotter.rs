//! `certresponder ct poll` against certspotter 0.16 (Debian's `certspotter`), both reading the
//! same real test log (`certresponder-test-ctlog`), and poll's behaviour when logs misbehave.
//!
//! Comparison rule: certspotter notifies once per log *entry* (with `-no_save` it keeps no
//! de-duplication markers), and gives each its `TBS_SHA256`, the TBS with the SCT-list and
//! poison extensions removed (RFC 6962 §3.2), so a precertificate and its final certificate
//! share it. certresponder counts such a pair as one certificate (one signal). So the two must agree on the
//! *set of TBS hashes* they report and on the log entries that match (both list one match
//! per entry), and certresponder must open a single signal for the pair.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod ctlog_support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ctlog_support::{TestLog, ctlog_bin};
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DnType, IsCa, Issuer, KeyPair,
    SerialNumber,
};
use serde_json::Value;

/// Precertificate poison (RFC 6962 §3.1), critical, value ASN.1 NULL.
const POISON_OID: &[u64] = &[1, 3, 6, 1, 4, 1, 11129, 2, 4, 3];
/// Embedded SCT list (RFC 6962 §3.3).
const SCT_LIST_OID: &[u64] = &[1, 3, 6, 1, 4, 1, 11129, 2, 4, 2];

/// A child process killed (SIGKILL) and reaped on drop.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn fill(dir: &Path, count: u64, domain: &str) {
    let out = Command::new(ctlog_bin())
        .args([
            "fill",
            "--count",
            &count.to_string(),
            "--domain",
            domain,
            "--dir",
        ])
        .arg(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

/// DER length prefix.
fn der_len(n: usize) -> Vec<u8> {
    match n {
        0..=127 => vec![n as u8],
        128..=255 => vec![0x81, n as u8],
        _ => vec![0x82, (n >> 8) as u8, n as u8],
    }
}

/// The extnValue contents of an SCT-list extension holding the one SCT `sct` (add-chain JSON).
fn sct_list_extension(sct: &Value) -> Vec<u8> {
    let b64 = |k: &str| STANDARD.decode(sct[k].as_str().unwrap()).unwrap();
    let mut one = vec![0u8];
    one.extend(b64("id"));
    one.extend(sct["timestamp"].as_u64().unwrap().to_be_bytes());
    let ext = b64("extensions");
    one.extend((ext.len() as u16).to_be_bytes());
    one.extend(ext);
    one.extend(b64("signature"));
    let mut list = ((one.len() + 2) as u16).to_be_bytes().to_vec();
    list.extend((one.len() as u16).to_be_bytes());
    list.extend(one);
    let mut der = vec![0x04];
    der.extend(der_len(list.len()));
    der.extend(list);
    der
}

struct Ca {
    der: Vec<u8>,
    issuer: Issuer<'static, KeyPair>,
}

fn ca(cn: &str) -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, cn);
    let der = p.self_signed(&key).unwrap().der().to_vec();
    Ca {
        der,
        issuer: Issuer::new(p, key),
    }
}

fn leaf_params(names: &[&str], serial: u64) -> CertificateParams {
    let mut p =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    p.distinguished_name.push(DnType::CommonName, names[0]);
    p.serial_number = Some(SerialNumber::from_slice(&serial.to_be_bytes()));
    p.not_before = time::OffsetDateTime::from_unix_timestamp(1_790_000_000).unwrap();
    p.not_after = time::OffsetDateTime::from_unix_timestamp(1_797_776_000).unwrap();
    p
}

/// The parameters of a precertificate for `name`: a leaf with the poison extension.
fn precert_params(name: &str, serial: u64) -> CertificateParams {
    let mut pre = leaf_params(&[name], serial);
    pre.custom_extensions = vec![{
        let mut e = CustomExtension::from_oid_content(POISON_OID, vec![0x05, 0x00]);
        e.set_criticality(true);
        e
    }];
    pre
}

/// Logs a precertificate for `name` from `ca`, then its final certificate carrying the SCT.
fn submit_pair(log: &TestLog, ca: &Ca, name: &str, serial: u64) {
    let key = KeyPair::generate().unwrap();
    let pre_der = precert_params(name, serial)
        .signed_by(&key, &ca.issuer)
        .unwrap()
        .der()
        .to_vec();
    let sct = log.submit("add-pre-chain", &[&pre_der, &ca.der]);
    let mut fin = leaf_params(&[name], serial);
    fin.custom_extensions = vec![CustomExtension::from_oid_content(
        SCT_LIST_OID,
        sct_list_extension(&sct),
    )];
    let fin_der = fin.signed_by(&key, &ca.issuer).unwrap().der().to_vec();
    log.submit("add-chain", &[&fin_der, &ca.der]);
}

/// Writes a `-script` hook that saves each notification's environment as one file in `out`.
fn hook(dir: &Path, out: &Path) -> PathBuf {
    std::fs::create_dir_all(out).unwrap();
    let path = dir.join("hook.sh");
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\nenv > '{}/'\"$EVENT-$ENTRY_INDEX-$$.env\"\n",
            out.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    path
}

/// Runs certspotter 0.16 (a daemon with no one-shot mode) until its saved, *verified*
/// position reaches `tree_size`, then stops it. Returns (entry index, TBS SHA-256) per notification.
fn certspotter(
    work: &Path,
    log_list: &Path,
    watch: &[&str],
    tree_size: u64,
    extra: &[&str],
) -> Vec<(u64, String)> {
    let wl = work.join("watchlist");
    std::fs::write(&wl, watch.join("\n") + "\n").unwrap();
    let out = work.join("notified");
    let script = hook(work, &out);
    let state = work.join("cs-state");
    let child = Command::new("certspotter")
        .arg("-logs")
        .arg(log_list)
        .arg("-watchlist")
        .arg(&wl)
        .arg("-state_dir")
        .arg(&state)
        .arg("-script")
        .arg(&script)
        .arg("-no_save")
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("certspotter (apt-get install certspotter) must be installed");
    let guard = Guard(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let done = std::fs::read_dir(state.join("logs"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|d| std::fs::read(d.path().join("state.json")).ok())
            .filter_map(|b| serde_json::from_slice::<Value>(&b).ok())
            .any(|s| s["verified_position"]["size"].as_u64() == Some(tree_size));
        if done {
            break;
        }
        assert!(Instant::now() < deadline, "certspotter did not finish");
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(guard);
    let mut found = Vec::new();
    for f in std::fs::read_dir(&out).unwrap().flatten() {
        let env = std::fs::read_to_string(f.path()).unwrap();
        let var = |k: &str| {
            env.lines()
                .find_map(|l| l.strip_prefix(&format!("{k}=")))
                .unwrap_or_default()
                .to_string()
        };
        assert_eq!(var("EVENT"), "discovered_cert", "{env}");
        found.push((var("ENTRY_INDEX").parse().unwrap(), var("TBS_SHA256")));
    }
    found.sort();
    found
}

/// A certresponder home whose config monitors `logs` (name, TestLog) for `domains`.
fn home_with_logs(logs: &[(&str, &TestLog)], domains: &[&str]) -> common::Home {
    let home = common::Home::new();
    let mut cfg = std::fs::read_to_string(home.config()).unwrap();
    cfg.push_str(&format!("\n[ct]\ndomains = {domains:?}\n"));
    for (name, log) in logs {
        cfg.push_str(&format!(
            "\n[[ct_log]]\nname = \"{name}\"\nurl = \"{}\"\nkey = \"{}\"\ntype = \"rfc6962\"\n",
            log.url, log.key
        ));
    }
    std::fs::write(home.config(), cfg).unwrap();
    home
}

/// The report of log `name` in a `ct poll --json` answer.
fn log_report(v: &Value, name: &str) -> Value {
    v["logs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == name)
        .unwrap_or_else(|| panic!("no report for log {name}: {v:#}"))
        .clone()
}

fn poll(home: &common::Home) -> (Option<i32>, Value) {
    let out = home.run(&["ct", "poll", "--json"]);
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "ct poll: not JSON ({e}): {} / {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), v)
}

#[test]
fn poll_finds_what_certspotter_finds() {
    let tmp = tempfile::tempdir().unwrap();
    let log_dir = tmp.path().join("log");
    // Background: certificates for a name outside the watch list.
    fill(&log_dir, 300, "unwatched.test");
    let log = TestLog::start(&log_dir);
    let ca = ca("ct test CA");
    let mut serial = 0x4000u64;
    let mut add = |names: &[&str]| {
        serial += 1;
        let key = KeyPair::generate().unwrap();
        let der = leaf_params(names, serial)
            .signed_by(&key, &ca.issuer)
            .unwrap()
            .der()
            .to_vec();
        log.submit("add-chain", &[&der, &ca.der]);
    };
    // Watched: exact name, the subtree apex, a child, a deep child, a wildcard, a SAN mix.
    add(&["www.exact.test"]);
    add(&["example.test"]);
    add(&["a.example.test"]);
    add(&["deep.sub.example.test"]);
    add(&["*.example.test"]);
    add(&["other.test", "b.example.test"]);
    // Not watched: a sibling of the exact name, look-alikes, another domain.
    add(&["x.www.exact.test"]);
    add(&["exact.test"]);
    add(&["notexample.test"]);
    add(&["example.test.evil"]);
    add(&["other.test"]);
    // A precertificate and its final certificate (same TBS once poison / SCTs are removed).
    submit_pair(&log, &ca, "pre.example.test", 0x5000);
    // A precertificate never followed by its final certificate.
    let key = KeyPair::generate().unwrap();
    let lone_der = precert_params("lone.example.test", 0x5001)
        .signed_by(&key, &ca.issuer)
        .unwrap()
        .der()
        .to_vec();
    log.submit("add-pre-chain", &[&lone_der, &ca.der]);
    let tree_size = 300 + 11 + 3;

    let watch = [".example.test", "www.exact.test"];
    let spotted = certspotter(tmp.path(), &log.log_list_path(), &watch, tree_size, &[]);
    let spotted_tbs: BTreeSet<&str> = spotted.iter().map(|(_, t)| t.as_str()).collect();
    // Sanity: certspotter saw 9 watched entries (6 + precert + final + lone precert), 8 TBSs.
    assert_eq!(spotted.len(), 9, "{spotted:?}");
    assert_eq!(spotted_tbs.len(), 8, "{spotted:?}");

    let home = home_with_logs(&[("test", &log)], &watch);
    let (code, v) = poll(&home);
    // Nothing here was ordered through certresponder: 3 (unauthorized issuance open) or 0 if
    // the policy treats unknown CAs otherwise; never 1 (a log failed).
    assert!(matches!(code, Some(0 | 3)), "exit {code:?}: {v:#}");
    let l = &v["logs"][0];
    assert!(l.get("error").is_none_or(Value::is_null), "{v:#}");
    assert_eq!(l["entries"].as_u64(), Some(tree_size), "{v:#}");
    let matches = v["matches"].as_array().unwrap();
    let ours_tbs: BTreeSet<&str> = matches
        .iter()
        .map(|m| m["tbs_sha256"].as_str().unwrap())
        .collect();
    assert_eq!(ours_tbs, spotted_tbs, "{v:#}\ncertspotter: {spotted:?}");
    // Both list one match per log entry: the same entries.
    let spotted_idx: BTreeSet<u64> = spotted.iter().map(|(i, _)| *i).collect();
    let ours_idx: BTreeSet<u64> = matches
        .iter()
        .map(|m| m["index"].as_u64().unwrap())
        .collect();
    assert_eq!(ours_idx, spotted_idx, "{v:#}");
    assert_eq!(matches.len(), spotted.len(), "{v:#}");
    // The precertificate and its final certificate: two entries, one TBS, one signal.
    let pair: Vec<_> = matches
        .iter()
        .filter(|m| {
            m["names"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n == "pre.example.test")
        })
        .collect();
    assert_eq!(pair.len(), 2, "{v:#}");
    assert_eq!(pair[0]["tbs_sha256"], pair[1]["tbs_sha256"], "{v:#}");
    let pair_signals = v["new_signals"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["evidence"]["tbs_sha256"] == pair[0]["tbs_sha256"])
        .count();
    assert_eq!(pair_signals, 1, "{v:#}");
}

#[test]
fn a_broken_log_does_not_stop_the_healthy_one() {
    let tmp = tempfile::tempdir().unwrap();
    let mut logs = Vec::new();
    for fault in ["wrong-root", "bad-sth-signature", "truncated-entry"] {
        let dir = tmp.path().join(fault);
        fill(&dir, 300, "example.test");
        logs.push((fault, TestLog::start_with(&dir, "rfc6962", Some(fault))));
    }
    let healthy_dir = tmp.path().join("healthy");
    fill(&healthy_dir, 500, "example.test");
    fill(&healthy_dir, 500, "unwatched.test");
    logs.push(("healthy", TestLog::start(&healthy_dir)));
    let named: Vec<(&str, &TestLog)> = logs.iter().map(|(n, l)| (*n, l)).collect();
    let home = home_with_logs(&named, &[".example.test"]);
    let (code, v) = poll(&home);
    assert_eq!(code, Some(1), "a log failed: {v:#}");
    let by_name = |n: &str| log_report(&v, n);
    for (fault, log) in &logs[..3] {
        let l = by_name(fault);
        // The alert names the log (its URL) and nothing it served is taken as read.
        assert!(
            l["error"].as_str().is_some_and(|e| e.contains(&log.url)),
            "{fault}: {l:#}"
        );
        assert_eq!(l["to"].as_u64(), Some(0), "{fault}: position kept: {l:#}");
        assert_eq!(l["matched"].as_u64(), Some(0), "{fault}: {l:#}");
    }
    let h = by_name("healthy");
    assert!(h.get("error").is_none_or(Value::is_null), "{h:#}");
    assert_eq!(h["entries"].as_u64(), Some(1000), "{h:#}");
    assert_eq!(h["matched"].as_u64(), Some(500), "{h:#}");
    assert!(
        v["matches"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["log"] == "healthy"),
        "{v:#}"
    );
}

/// A log added with `start = "end"` is not read before its tree head at the time: its
/// history, watched names included, raises nothing, and what is logged afterwards is read
/// as from any position. certspotter with `-start_at_end` reports the same entries. The
/// static-ct-api side starts from its hash tiles; a log that says `start = "beginning"`
/// overrides `[ct] start` and reads everything.
#[test]
fn a_log_started_at_its_end_reads_only_what_follows_as_certspotter_does() {
    let tmp = tempfile::tempdir().unwrap();
    let log_dir = tmp.path().join("log");
    // History: 100 watched entries among 1,037 (a size with six set bits).
    fill(&log_dir, 100, "example.test");
    fill(&log_dir, 937, "unwatched.test");
    let log = TestLog::start_with(&log_dir, "both", None);
    let log_list = log.log_list_path();
    let watch = [".example.test"];
    let start_at_end = ["-start_at_end"];
    let spotted = certspotter(tmp.path(), &log_list, &watch, 1037, &start_at_end);
    assert!(spotted.is_empty(), "certspotter read history: {spotted:?}");

    let home = common::Home::new();
    let mut cfg = std::fs::read_to_string(home.config()).unwrap();
    cfg.push_str(&format!(
        "\n[ct]\ndomains = {watch:?}\nstart = \"end\"\n\
         \n[[ct_log]]\nname = \"rfc\"\nurl = \"{url}\"\nkey = \"{key}\"\n\
         \n[[ct_log]]\nname = \"tiles\"\nurl = \"{url}\"\nkey = \"{key}\"\ntype = \"static\"\nmonitoring_url = \"{tiles}\"\n\
         \n[[ct_log]]\nname = \"history\"\nurl = \"{url}\"\nkey = \"{key}\"\nstart = \"beginning\"\n",
        url = log.url,
        key = log.key,
        tiles = log.static_url,
    ));
    std::fs::write(home.config(), cfg).unwrap();

    let (code, v) = poll(&home);
    assert_eq!(
        code,
        Some(3),
        "the history log found unauthorized issuance: {v:#}"
    );
    for name in ["rfc", "tiles"] {
        let l = log_report(&v, name);
        assert!(l.get("error").is_none_or(Value::is_null), "{name}: {l:#}");
        assert_eq!(l["started_at_end"].as_u64(), Some(1037), "{name}: {l:#}");
        assert_eq!(l["to"].as_u64(), Some(1037), "{name}: {l:#}");
        assert_eq!(l["entries"].as_u64(), Some(0), "{name}: {l:#}");
        assert_eq!(l["matched"].as_u64(), Some(0), "{name}: {l:#}");
    }
    let out = home.run(&["ct", "status", "--json"]);
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    let from: Vec<(&str, u64)> = status
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["name"].as_str().unwrap(),
                l["monitored_from"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        from,
        [("rfc", 1037), ("tiles", 1037), ("history", 0)],
        "{status:#}"
    );
    let h = log_report(&v, "history");
    assert!(h.get("started_at_end").is_none_or(Value::is_null), "{h:#}");
    assert_eq!(h["entries"].as_u64(), Some(1037), "{h:#}");
    assert_eq!(h["matched"].as_u64(), Some(100), "{h:#}");

    // Another CA issues for a watched name after monitoring began.
    let other = ca("Later Public CA");
    submit_pair(&log, &other, "new.example.test", 0x6000);
    let spotted = certspotter(tmp.path(), &log_list, &watch, 1039, &start_at_end);
    let spotted_idx: BTreeSet<u64> = spotted.iter().map(|(i, _)| *i).collect();
    let spotted_tbs: BTreeSet<&str> = spotted.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(spotted_idx, BTreeSet::from([1037, 1038]), "{spotted:?}");

    let (code, v) = poll(&home);
    assert_eq!(code, Some(3), "{v:#}");
    for name in ["rfc", "tiles", "history"] {
        let l = log_report(&v, name);
        assert!(l.get("error").is_none_or(Value::is_null), "{name}: {l:#}");
        assert!(
            l.get("started_at_end").is_none_or(Value::is_null),
            "{name}: {l:#}"
        );
        assert_eq!(
            (l["from"].as_u64(), l["to"].as_u64()),
            (Some(1037), Some(1039)),
            "{name}: {l:#}"
        );
        assert_eq!(l["entries"].as_u64(), Some(2), "{name}: {l:#}");
        assert_eq!(l["matched"].as_u64(), Some(2), "{name}: {l:#}");
        let found: Vec<&Value> = v["matches"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["log"] == name)
            .collect();
        let idx: BTreeSet<u64> = found.iter().map(|m| m["index"].as_u64().unwrap()).collect();
        let tbs: BTreeSet<&str> = found
            .iter()
            .map(|m| m["tbs_sha256"].as_str().unwrap())
            .collect();
        assert_eq!(idx, spotted_idx, "{name}: {v:#}");
        assert_eq!(tbs, spotted_tbs, "{name}: {v:#}");
    }
    // The precertificate and its certificate, seen in three logs: one signal.
    let tbs = spotted[0].1.as_str();
    let signals: Vec<&Value> = v["new_signals"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["evidence"]["tbs_sha256"] == tbs)
        .collect();
    assert_eq!(signals.len(), 1, "{v:#}");
}

/// A log whose tree head does not match what it serves cannot be started at its end: an
/// alert naming the log, no position taken, and the next pass tries again.
#[test]
fn a_log_that_cannot_be_started_at_its_end_is_an_alert_and_is_tried_again() {
    let tmp = tempfile::tempdir().unwrap();
    let bad_dir = tmp.path().join("bad");
    fill(&bad_dir, 300, "example.test");
    let bad = TestLog::start_with(&bad_dir, "rfc6962", Some("wrong-root"));
    let home = home_with_logs(&[("bad", &bad)], &[".example.test"]);
    let mut cfg = std::fs::read_to_string(home.config()).unwrap();
    cfg = cfg.replace("[ct]\n", "[ct]\nstart = \"end\"\n");
    std::fs::write(home.config(), cfg).unwrap();
    for pass in 0..2 {
        let (code, v) = poll(&home);
        assert_eq!(code, Some(1), "pass {pass}: {v:#}");
        let l = &v["logs"][0];
        let err = l["error"].as_str().unwrap_or_default();
        assert!(err.contains("starting at the end"), "pass {pass}: {l:#}");
        assert!(err.contains(&bad.url), "pass {pass}: {l:#}");
        assert_eq!(l["misbehaviour"], Value::Bool(true), "pass {pass}: {l:#}");
        assert_eq!(l["to"].as_u64(), Some(0), "pass {pass}: {l:#}");
        assert_eq!(l["entries"].as_u64(), Some(0), "pass {pass}: {l:#}");
    }
    let out = home.run(&["ct", "status", "--json"]);
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status[0]["position"], 0, "{status:#}");
    assert!(
        status[0].to_string().contains("starting at the end"),
        "{status:#}"
    );
}
