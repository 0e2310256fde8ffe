//! End-to-end tests of CT monitoring through the binary, against the real test log
//! (`certresponder-test-ctlog`, RFC 6962) started by the test:
//!
//! - our certificates (registered and reissued by the internal CA) logged: matched, known,
//!   no signal, the log's position caught up;
//! - a precertificate and its final certificate for a watched name from another CA: one
//!   `ct_unauthorized_issuance` signal for both, with the CA not allowed by
//!   `[ct.allowed_issuers]`; a second poll reads nothing and raises nothing;
//! - a name outside the watch list: no match, until `ct watch add` covers it;
//! - the same through a static-ct-api log, for an inventory name;
//! - `scan` counting embedded SCTs that verify against the configured logs;
//! - two ignored tests that show product bugs (see their `ignore` reasons).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod ctlog_support;
#[allow(dead_code)]
mod govern_support;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use certresponder_inventory::inspect;
use ctlog_support::TestLog;
use govern_support::{Home, KeySpec};
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, SerialNumber,
};
use serde_json::{Value, json};

/// OID of the RFC 6962 §3.1 precertificate poison extension.
const POISON: &[u64] = &[1, 3, 6, 1, 4, 1, 11129, 2, 4, 3];
/// OID of the RFC 6962 §3.3 embedded SCT list extension.
const SCT_LIST: &[u64] = &[1, 3, 6, 1, 4, 1, 11129, 2, 4, 2];

impl TestLog {
    /// Its `[[ct_log]]` table, read through static-ct-api tiles.
    fn static_config(&self) -> String {
        format!(
            "\n[[ct_log]]\nname = \"tiles\"\nurl = \"{}\"\nkey = \"{}\"\ntype = \"static\"\nmonitoring_url = \"{}\"\n",
            self.url, self.key, self.static_url
        )
    }

    /// Its `[[ct_log]]` table.
    fn config(&self) -> String {
        format!(
            "\n[[ct_log]]\nname = \"testlog\"\nurl = \"{}\"\nkey = \"{}\"\ntype = \"rfc6962\"\n",
            self.url, self.key
        )
    }
}

/// Appends to the home's configuration.
fn append_config(home: &Home, text: &str) {
    let mut cfg = std::fs::read_to_string(home.config()).unwrap();
    cfg.push_str(text);
    std::fs::write(home.config(), cfg).unwrap();
}

/// The DER certificates of a PEM file.
fn ders(path: &std::path::Path) -> Vec<Vec<u8>> {
    inspect::read_certificates(&std::fs::read(path).unwrap()).unwrap()
}

/// Another CA, not ours.
struct OtherCa {
    issuer: Issuer<'static, KeyPair>,
    der: Vec<u8>,
}

fn other_ca(cn: &str) -> OtherCa {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, cn);
    let cert = params.self_signed(&key).unwrap();
    OtherCa {
        issuer: Issuer::new(params, key),
        der: cert.der().to_vec(),
    }
}

/// The rcgen parameters of a leaf for `dns` from another CA, fixed so that two
/// certificates made from them differ only in the extensions added afterwards.
fn leaf_params(dns: &str, serial: u64) -> CertificateParams {
    let mut params = CertificateParams::new(vec![dns.to_string()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, dns);
    params.serial_number = Some(SerialNumber::from(serial.to_be_bytes().to_vec()));
    params.not_before = rcgen::date_time_ymd(2026, 1, 1);
    params.not_after = rcgen::date_time_ymd(2026, 12, 31);
    params
}

/// A precertificate for `dns` from `ca` (the poison, critical, RFC 6962 §3.1).
fn precert(ca: &OtherCa, params: &CertificateParams, key: &KeyPair) -> Vec<u8> {
    let mut params = params.clone();
    let mut poison = CustomExtension::from_oid_content(POISON, vec![0x05, 0x00]);
    poison.set_criticality(true);
    params.custom_extensions.push(poison);
    params.signed_by(key, &ca.issuer).unwrap().der().to_vec()
}

/// The final certificate, with the SCTs the log returned embedded (RFC 6962 §3.3).
fn final_with_scts(
    ca: &OtherCa,
    params: &CertificateParams,
    key: &KeyPair,
    scts: &[&Value],
) -> Vec<u8> {
    let mut list = Vec::new();
    for sct in scts {
        let field = |f: &str| STANDARD.decode(sct[f].as_str().unwrap()).unwrap();
        let mut one = vec![0u8]; // v1
        one.extend(field("id"));
        one.extend(sct["timestamp"].as_u64().unwrap().to_be_bytes());
        let ext = field("extensions");
        one.extend(u16::try_from(ext.len()).unwrap().to_be_bytes());
        one.extend(ext);
        one.extend(field("signature"));
        list.extend(u16::try_from(one.len()).unwrap().to_be_bytes());
        list.extend(one);
    }
    let mut tls = u16::try_from(list.len()).unwrap().to_be_bytes().to_vec();
    tls.extend(list);
    // extnValue holds an OCTET STRING of the TLS-encoded list.
    let mut content = vec![0x04];
    let len = tls.len();
    if len < 0x80 {
        content.push(u8::try_from(len).unwrap());
    } else {
        content.extend([0x82, u8::try_from(len >> 8).unwrap(), (len & 0xff) as u8]);
    }
    content.extend(tls);
    let mut params = params.clone();
    params
        .custom_extensions
        .push(CustomExtension::from_oid_content(SCT_LIST, content));
    params.signed_by(key, &ca.issuer).unwrap().der().to_vec()
}

/// A certificate for `dns` from `ca`.
fn plain_cert(ca: &OtherCa, dns: &str, serial: u64) -> Vec<u8> {
    let key = KeyPair::generate().unwrap();
    leaf_params(dns, serial)
        .signed_by(&key, &ca.issuer)
        .unwrap()
        .der()
        .to_vec()
}

/// The new signals of a poll report.
fn new_signals(v: &Value) -> &Vec<Value> {
    v["new_signals"].as_array().unwrap()
}

fn matches(v: &Value) -> &Vec<Value> {
    v["matches"].as_array().unwrap()
}

#[test]
fn foreign_precert_and_final_make_one_unauthorized_signal() {
    let started = std::time::Instant::now();
    let home = Home::new();
    let www = home.make_svc("www.shop", "team-www@example.com", KeySpec::P256, 30);
    let pay = home.make_svc("pay.shop", "team-pay@example.com", KeySpec::P256, 30);
    home.register("services.toml", &[&www, &pay]);
    let registered = ders(&www.cert).remove(0);
    // Reissue `www.shop` through the internal CA: the new certificate is in the ledger.
    let r = home.json(&["reissue", "www.shop", "--json"], 0);
    let reissued = ders(&www.cert).remove(0);
    assert_ne!(
        registered, reissued,
        "reissue did not deploy a new certificate: {r:#}"
    );
    let ca = home.ca_der();
    let ca_subject = inspect::inspect_certificate_der(&ca).unwrap().subject;

    let log = TestLog::start(&home.path("ctlog"));
    append_config(&home, &log.config());
    append_config(
        &home,
        "\n[ct]\ndomains = [\".shop.example.test\"]\n[ct.allowed_issuers]\n\".shop.example.test\" = [\"spki-less placeholder\"]\n",
    );
    // Allow only our internal CA, by its subject.
    let cfg = std::fs::read_to_string(home.config())
        .unwrap()
        .replace("spki-less placeholder", &ca_subject);
    std::fs::write(home.config(), cfg).unwrap();

    // Our certificates are logged: the registered one, the reissued one, and `pay.shop`.
    let pay_der = ders(&pay.cert).remove(0);
    for leaf in [&registered, &reissued, &pay_der] {
        log.submit("add-chain", &[leaf, &ca]);
    }
    let first = home.json(&["ct", "poll", "--json"], 0);
    assert_eq!(first["logs"][0]["error"], Value::Null, "{first:#}");
    assert_eq!(first["logs"][0]["entries"], 3, "{first:#}");
    assert_eq!(first["logs"][0]["to"], 3, "{first:#}");
    let m = matches(&first);
    assert_eq!(m.len(), 3, "{first:#}");
    for x in m {
        assert_eq!(x["known"], true, "{first:#}");
        assert_eq!(x["authorized_ca"], true, "{first:#}");
        assert_eq!(x["precert"], false, "{first:#}");
    }
    let certs: Vec<&str> = m.iter().map(|x| x["cert"].as_str().unwrap()).collect();
    assert_eq!(certs, ["www.shop", "www.shop", "pay.shop"], "{first:#}");
    assert_eq!(m[0]["names"], json!(["www.shop.example.test"]));
    assert!(new_signals(&first).is_empty(), "{first:#}");
    assert_eq!(first["logs"][0]["unauthorized"], 0);

    let status = home.json(&["ct", "status", "--json"], 0);
    assert_eq!(status[0]["tree_size"], 3, "{status:#}");
    assert_eq!(status[0]["position"], 3, "{status:#}");
    assert_eq!(status[0]["lag"], 0, "{status:#}");
    assert_eq!(status[0]["error"], Value::Null, "{status:#}");
    assert_eq!(status[0]["entries_read"], 3, "{status:#}");

    // Another CA issues for a watched name: a precertificate, then the final certificate.
    let other = other_ca("Other Public CA R1");
    // The final certificate embeds the SCT the log returned for the precertificate.
    let params = leaf_params("api.shop.example.test", 0x1234_5678_9abc);
    let key = KeyPair::generate().unwrap();
    let pre = precert(&other, &params, &key);
    let sct = log.submit("add-pre-chain", &[&pre, &other.der]);
    assert_eq!(sct["sct_version"], 0, "{sct}");
    let fin = final_with_scts(&other, &params, &key, &[&sct]);
    let pre_info = inspect::inspect_certificate_der(&pre).unwrap();
    let fin_info = inspect::inspect_certificate_der(&fin).unwrap();
    assert_eq!(
        pre_info.fingerprints.tbs_sha256, fin_info.fingerprints.tbs_sha256,
        "the TBS hash strips the poison and the SCT list, so both must have the same one"
    );
    log.submit("add-chain", &[&fin, &other.der]);

    let second = home.json(&["ct", "poll", "--json"], 3);
    assert_eq!(second["logs"][0]["from"], 3, "{second:#}");
    assert_eq!(second["logs"][0]["to"], 5, "{second:#}");
    assert_eq!(second["logs"][0]["entries"], 2, "{second:#}");
    assert_eq!(second["logs"][0]["unauthorized"], 2, "{second:#}");
    let m = matches(&second);
    assert_eq!(m.len(), 2, "{second:#}");
    assert_eq!(
        m.iter().map(|x| x["precert"].clone()).collect::<Vec<_>>(),
        [json!(true), json!(false)]
    );
    for x in m {
        assert_eq!(x["known"], false, "{second:#}");
        assert_eq!(x["authorized_ca"], false, "{second:#}");
        assert_eq!(x["pattern"], ".shop.example.test", "{second:#}");
        assert_eq!(x["names"], json!(["api.shop.example.test"]), "{second:#}");
        assert_eq!(x["tbs_sha256"], json!(fin_info.fingerprints.tbs_sha256));
        assert_eq!(x["cert"], Value::Null, "{second:#}");
    }
    let sigs = new_signals(&second);
    assert_eq!(
        sigs.len(),
        1,
        "precert and final must make one signal: {second:#}"
    );
    let s = &sigs[0];
    assert_eq!(s["check"], "ct_unauthorized_issuance", "{s:#}");
    assert_eq!(s["subject"], "ct:.shop.example.test", "{s:#}");
    let ev = &s["evidence"];
    assert_eq!(ev["log"], "testlog", "{s:#}");
    assert_eq!(
        ev["index"], 3,
        "the first sighting is the precertificate: {s:#}"
    );
    assert!(
        ev["issuer"]
            .as_str()
            .unwrap()
            .contains("Other Public CA R1"),
        "{s:#}"
    );
    assert_eq!(ev["serial"], json!(fin_info.serial), "{s:#}");
    assert_eq!(ev["names"], json!(["api.shop.example.test"]), "{s:#}");
    assert_eq!(
        govern_support::time(&ev["not_before"]),
        fin_info.not_before,
        "{s:#}"
    );
    assert_eq!(ev["authorized_ca"], false, "{s:#}");
    let msg = s["message"].as_str().unwrap();
    assert!(
        msg.contains("its CA may not issue for .shop.example.test"),
        "{msg}"
    );

    // One stored signal for the TBS hash, open.
    let stored: Vec<Value> = home
        .signals()
        .into_iter()
        .filter(|s| s["check"] == "ct_unauthorized_issuance")
        .collect();
    assert_eq!(stored.len(), 1, "{stored:#?}");

    // A second pass reads nothing new and raises nothing; the signal stays open (exit 3).
    let third = home.json(&["ct", "poll", "--json"], 3);
    assert_eq!(third["logs"][0]["entries"], 0, "{third:#}");
    assert_eq!(third["logs"][0]["from"], 5, "{third:#}");
    assert!(matches(&third).is_empty(), "{third:#}");
    assert!(new_signals(&third).is_empty(), "{third:#}");
    let status = home.json(&["ct", "status", "--json"], 0);
    assert_eq!(status[0]["position"], 5, "{status:#}");
    assert_eq!(status[0]["lag"], 0, "{status:#}");
    eprintln!("ct_monitor foreign issuance: {:?}", started.elapsed());
}

#[test]
fn unwatched_names_match_only_once_watched() {
    let started = std::time::Instant::now();
    let home = Home::new();
    let log = TestLog::start(&home.path("ctlog"));
    append_config(&home, &log.config());
    append_config(&home, "\n[ct]\ndomains = [\".shop.example.test\"]\n");
    let other = other_ca("Other Public CA R2");

    // Not watched: read, not matched.
    let x1 = plain_cert(&other, "x.other.test", 1);
    log.submit("add-chain", &[&x1, &other.der]);
    let v = home.json(&["ct", "poll", "--json"], 0);
    assert_eq!(v["logs"][0]["entries"], 1, "{v:#}");
    assert_eq!(v["logs"][0]["matched"], 0, "{v:#}");
    assert!(matches(&v).is_empty(), "{v:#}");
    assert!(new_signals(&v).is_empty(), "{v:#}");

    // Watched from now on.
    let out = home.status(&["ct", "watch", "add", ".other.test"], 0);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("watching `.other.test`"),
        "{}",
        govern_support::text(&out)
    );
    let list = home.json(&["ct", "watch", "list", "--json"], 0);
    let watched = list["watched"].as_array().unwrap();
    assert!(
        watched.contains(&json!({"pattern": ".other.test", "from": "ct watch add"})),
        "{list:#}"
    );
    assert!(
        watched.contains(&json!({"pattern": ".shop.example.test", "from": "configuration"})),
        "{list:#}"
    );

    let x2 = plain_cert(&other, "x.other.test", 2);
    log.submit("add-chain", &[&x2, &other.der]);
    let v = home.json(&["ct", "poll", "--json"], 3);
    assert_eq!(
        v["logs"][0]["entries"], 1,
        "only the new entry is read: {v:#}"
    );
    let m = matches(&v);
    assert_eq!(m.len(), 1, "{v:#}");
    assert_eq!(m[0]["index"], 1, "{v:#}");
    assert_eq!(m[0]["pattern"], ".other.test", "{v:#}");
    assert_eq!(m[0]["known"], false, "{v:#}");
    // No allow list for the pattern: any CA may issue, but it is not ours.
    assert_eq!(m[0]["authorized_ca"], true, "{v:#}");
    let sigs = new_signals(&v);
    assert_eq!(sigs.len(), 1, "{v:#}");
    assert_eq!(sigs[0]["subject"], "ct:.other.test", "{v:#}");
    assert!(
        !sigs[0]["message"]
            .as_str()
            .unwrap()
            .contains("may not issue"),
        "{v:#}"
    );

    // Removed: no longer listed, and a later entry for it is not matched.
    home.status(&["ct", "watch", "remove", ".other.test"], 0);
    let list = home.json(&["ct", "watch", "list", "--json"], 0);
    assert!(
        !list["watched"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["pattern"] == ".other.test"),
        "{list:#}"
    );
    let out = home.run(&["ct", "watch", "remove", ".other.test"]);
    assert_eq!(out.status.code(), Some(2), "{}", govern_support::text(&out));
    let x3 = plain_cert(&other, "y.other.test", 3);
    log.submit("add-chain", &[&x3, &other.der]);
    // The earlier signal is still open: exit 3.
    let v = home.json(&["ct", "poll", "--json"], 3);
    assert_eq!(v["logs"][0]["entries"], 1, "{v:#}");
    assert!(matches(&v).is_empty(), "{v:#}");
    assert!(new_signals(&v).is_empty(), "{v:#}");
    eprintln!("ct_monitor watch list: {:?}", started.elapsed());
}

/// Writes `leaf` (with `ca` above it) and a key under `srv/<name>/` and registers it as a
/// public-trust inventory certificate.
fn register_public(home: &Home, name: &str, leaf: &[u8], ca: &[u8], key: &KeyPair) {
    let dir = home.path(&format!("srv/{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    let pem = |der: &[u8]| {
        let b64 = STANDARD.encode(der);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            lines.join("\n")
        )
    };
    let (cert, keyp) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, format!("{}{}", pem(leaf), pem(ca))).unwrap();
    std::fs::write(&keyp, key.serialize_pem()).unwrap();
    std::fs::set_permissions(&keyp, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    std::fs::write(
        home.path(&format!("inventory/{name}.toml")),
        format!(
            "[[cert]]\nname = \"{name}\"\nowner = \"team-{name}@example.com\"\ntrust = \"public\"\ncert = \"{}\"\nkey = \"{}\"\n",
            cert.display(),
            keyp.display()
        ),
    )
    .unwrap();
}

/// Parameters valid from yesterday for 90 days: two SCTs required.
fn current_params(dns: &str, serial: u64) -> CertificateParams {
    let mut params = leaf_params(dns, serial);
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(89);
    params
}

/// The `sct_insufficient` signals of a scan, by subject.
fn sct_signals(scan: &Value) -> Vec<(String, Value)> {
    scan["new"]
        .as_array()
        .unwrap_or_else(|| panic!("no `new` in {scan:#}"))
        .iter()
        .filter(|s| s["check"] == "sct_insufficient")
        .map(|s| (s["subject"].as_str().unwrap().to_string(), s.clone()))
        .collect()
}

#[test]
fn scan_counts_valid_embedded_scts_from_configured_logs() {
    let started = std::time::Instant::now();
    let home = Home::new();
    let log_a = TestLog::start(&home.path("ctlog-a"));
    let log_b = TestLog::start(&home.path("ctlog-b"));
    append_config(&home, &log_a.config());
    append_config(
        &home,
        &log_b.config().replace("\"testlog\"", "\"testlog-b\""),
    );
    let other = other_ca("Other Public CA R3");

    // One SCT (log A): too few for a 90-day certificate.
    let key1 = KeyPair::generate().unwrap();
    let p1 = current_params("one.public.test", 11);
    let sct = log_a.submit("add-pre-chain", &[&precert(&other, &p1, &key1), &other.der]);
    let one = final_with_scts(&other, &p1, &key1, &[&sct]);
    register_public(&home, "one-sct", &one, &other.der, &key1);

    // Two SCTs from distinct configured logs: enough.
    let key2 = KeyPair::generate().unwrap();
    let p2 = current_params("two.public.test", 12);
    let pre2 = precert(&other, &p2, &key2);
    let sa = log_a.submit("add-pre-chain", &[&pre2, &other.der]);
    let sb = log_b.submit("add-pre-chain", &[&pre2, &other.der]);
    let two = final_with_scts(&other, &p2, &key2, &[&sa, &sb]);
    register_public(&home, "two-scts", &two, &other.der, &key2);

    // Two SCTs, one with a signature over another certificate: one valid, too few.
    let key3 = KeyPair::generate().unwrap();
    let p3 = current_params("forged.public.test", 13);
    let sa3 = log_a.submit("add-pre-chain", &[&precert(&other, &p3, &key3), &other.der]);
    let forged = final_with_scts(&other, &p3, &key3, &[&sa3, &sb]);
    register_public(&home, "forged-sct", &forged, &other.der, &key3);

    let scan = home.json(&["scan", "--json"], 3);
    let sigs = sct_signals(&scan);
    let subjects: Vec<&str> = sigs.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(subjects.len(), 2, "{scan:#}");
    assert!(subjects.contains(&"one-sct"), "{scan:#}");
    assert!(subjects.contains(&"forged-sct"), "{scan:#}");
    for (subject, s) in &sigs {
        let msg = s["message"].as_str().unwrap();
        assert!(
            msg.starts_with("1 valid SCT(s) from distinct logs, 2 required"),
            "{subject}: {msg}"
        );
    }
    let forged_sig = &sigs.iter().find(|(s, _)| s == "forged-sct").unwrap().1;
    let statuses: Vec<&Value> = forged_sig["evidence"]["scts"]
        .as_array()
        .unwrap_or_else(|| panic!("{forged_sig:#}"))
        .iter()
        .map(|s| &s["status"])
        .collect();
    assert_eq!(
        statuses,
        [&json!("valid"), &json!("invalid")],
        "{forged_sig:#}"
    );
    eprintln!("ct_monitor sct scan: {:?}", started.elapsed());
}

#[test]
fn precert_from_a_precertificate_signing_certificate_is_judged_by_the_final_issuer() {
    let home = Home::new();
    let log = TestLog::start(&home.path("ctlog"));
    append_config(&home, &log.config());
    let other = other_ca("Other Public CA R4");
    let spki = inspect::inspect_certificate_der(&other.der)
        .unwrap()
        .fingerprints
        .spki_sha256;
    append_config(
        &home,
        &format!(
            "\n[ct]\ndomains = [\".shop.example.test\"]\n[ct.allowed_issuers]\n\".shop.example.test\" = [\"spki:{spki}\"]\n"
        ),
    );
    // RFC 6962 §3.1: a Precertificate Signing Certificate, issued by the CA, signs the
    // precertificate; the log rewrites the issuer back to the CA's.
    let signer_key = KeyPair::generate().unwrap();
    let mut sp = CertificateParams::new(Vec::<String>::new()).unwrap();
    sp.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    sp.distinguished_name
        .push(DnType::CommonName, "Precert Signer R4");
    sp.extended_key_usages = vec![ExtendedKeyUsagePurpose::Other(vec![
        1, 3, 6, 1, 4, 1, 11129, 2, 4, 4,
    ])];
    let signer_der = sp
        .signed_by(&signer_key, &other.issuer)
        .unwrap()
        .der()
        .to_vec();
    let signer = OtherCa {
        issuer: Issuer::new(sp, signer_key),
        der: signer_der,
    };
    let params = leaf_params("cdn.shop.example.test", 0x4444);
    let key = KeyPair::generate().unwrap();
    let pre = precert(&signer, &params, &key);
    let sct = log.submit("add-pre-chain", &[&pre, &signer.der, &other.der]);
    let fin = final_with_scts(&other, &params, &key, &[&sct]);
    let fin_info = inspect::inspect_certificate_der(&fin).unwrap();
    log.submit("add-chain", &[&fin, &other.der]);

    let v = home.json(&["ct", "poll", "--json"], 3);
    let m = matches(&v);
    assert_eq!(m.len(), 2, "{v:#}");
    for x in m {
        assert_eq!(x["known"], false, "{v:#}");
        assert_eq!(
            x["tbs_sha256"],
            json!(fin_info.fingerprints.tbs_sha256),
            "{v:#}"
        );
    }
    assert_eq!(new_signals(&v).len(), 1, "{v:#}");
    for x in m {
        assert_eq!(
            x["authorized_ca"], true,
            "the CA behind the precertificate signer is allowed: {v:#}"
        );
        assert_eq!(x["issuer"], json!(fin_info.issuer), "{v:#}");
    }
}

#[test]
fn static_ct_log_foreign_issuance_for_an_inventory_name() {
    let home = Home::new();
    let www = home.make_svc("www.shop", "team-www@example.com", KeySpec::P256, 30);
    home.register("services.toml", &[&www]);
    let ours = ders(&www.cert).remove(0);
    let log = TestLog::start_with(&home.path("ctlog"), "static", None);
    append_config(&home, &log.static_config());
    let ca = home.ca_der();
    log.submit("add-chain", &[&ours, &ca]);

    // Another CA issues for the inventory's own name (no [ct] domains needed).
    let other = other_ca("Other Public CA R5");
    let params = leaf_params("www.shop.example.test", 0x5555);
    let key = KeyPair::generate().unwrap();
    let sct = log.submit(
        "add-pre-chain",
        &[&precert(&other, &params, &key), &other.der],
    );
    let fin = final_with_scts(&other, &params, &key, &[&sct]);
    let fin_info = inspect::inspect_certificate_der(&fin).unwrap();
    log.submit("add-chain", &[&fin, &other.der]);

    let v = home.json(&["ct", "poll", "--json"], 3);
    assert_eq!(v["logs"][0]["error"], Value::Null, "{v:#}");
    assert_eq!(v["logs"][0]["to"], 3, "{v:#}");
    let m = matches(&v);
    assert_eq!(m.len(), 3, "{v:#}");
    assert_eq!(
        m.iter()
            .map(|x| (x["known"].clone(), x["precert"].clone()))
            .collect::<Vec<_>>(),
        [
            (json!(true), json!(false)),
            (json!(false), json!(true)),
            (json!(false), json!(false))
        ],
        "{v:#}"
    );
    for x in m {
        assert_eq!(x["cert"], "www.shop", "{v:#}");
        assert_eq!(x["pattern"], "www.shop.example.test", "{v:#}");
    }
    assert_eq!(m[1]["tbs_sha256"], m[2]["tbs_sha256"], "{v:#}");
    assert_eq!(m[2]["tbs_sha256"], json!(fin_info.fingerprints.tbs_sha256));
    let sigs = new_signals(&v);
    assert_eq!(sigs.len(), 1, "{v:#}");
    assert_eq!(sigs[0]["subject"], "www.shop", "{v:#}");
    assert_eq!(sigs[0]["evidence"]["log"], "tiles", "{v:#}");
    assert_eq!(
        sigs[0]["evidence"]["serial"],
        json!(fin_info.serial),
        "{v:#}"
    );

    let again = home.json(&["ct", "poll", "--json"], 3);
    assert_eq!(again["logs"][0]["entries"], 0, "{again:#}");
    assert!(new_signals(&again).is_empty(), "{again:#}");
    let status = home.json(&["ct", "status", "--json"], 0);
    assert_eq!(status[0]["position"], 3, "{status:#}");
    assert_eq!(status[0]["lag"], 0, "{status:#}");
}

#[test]
fn allow_list_of_a_subtree_covers_inventory_names_below_it() {
    let home = Home::new();
    let www = home.make_svc("www.shop", "team-www@example.com", KeySpec::P256, 30);
    home.register("services.toml", &[&www]);
    let ca_subject = inspect::inspect_certificate_der(&home.ca_der())
        .unwrap()
        .subject;
    let log = TestLog::start(&home.path("ctlog"));
    append_config(&home, &log.config());
    append_config(
        &home,
        &format!(
            "\n[ct]\ndomains = [\".shop.example.test\"]\n[ct.allowed_issuers]\n\".shop.example.test\" = [\"{ca_subject}\"]\n"
        ),
    );
    let other = other_ca("Other Public CA R6");
    let foreign = plain_cert(&other, "www.shop.example.test", 0x6666);
    log.submit("add-chain", &[&foreign, &other.der]);
    let v = home.json(&["ct", "poll", "--json"], 3);
    let m = matches(&v);
    assert_eq!(m.len(), 1, "{v:#}");
    assert_eq!(m[0]["known"], false, "{v:#}");
    assert_eq!(m[0]["cert"], "www.shop", "{v:#}");
    assert_eq!(
        m[0]["authorized_ca"], false,
        "only our CA may issue below .shop.example.test: {v:#}"
    );
}

/// A v3 log list naming `logs`: (operator, log, state JSON).
fn log_list(logs: &[(&str, &TestLog, Value)]) -> Value {
    let mut operators: Vec<Value> = Vec::new();
    for (op, log, state) in logs {
        let der = STANDARD.decode(&log.key).unwrap();
        let id = STANDARD.encode(sha2::Digest::finalize(
            <sha2::Sha256 as sha2::Digest>::new_with_prefix(&der),
        ));
        let entry = json!({"description": format!("{op} log"), "key": log.key, "log_id": id,
            "url": log.url, "mmd": 86400, "state": state});
        match operators.iter_mut().find(|o| o["name"] == *op) {
            Some(o) => o["logs"].as_array_mut().unwrap().push(entry),
            None => operators.push(json!({"name": op, "email": [], "logs": [entry]})),
        }
    }
    json!({"version": "3.0", "log_list_timestamp": "2026-11-01T00:00:00Z", "operators": operators})
}

/// The logs of a log list, with no `[[ct_log]]` at all: an SCT from a log retired before it
/// was issued does not count; two usable logs of two operators do.
#[test]
fn scan_judges_scts_by_the_log_list() {
    let home = Home::new();
    let (a, b, c) = (
        TestLog::start(&home.path("ctlog-a")),
        TestLog::start(&home.path("ctlog-b")),
        TestLog::start(&home.path("ctlog-c")),
    );
    let usable = json!({"usable": {"timestamp": "2025-01-01T00:00:00Z"}});
    let list = log_list(&[
        ("Op One", &a, usable.clone()),
        (
            "Op Two",
            &b,
            json!({"retired": {"timestamp": "2025-06-01T00:00:00Z"}}),
        ),
        ("Op Two", &c, usable),
    ]);
    let list_path = home.path("log_list.json");
    std::fs::write(&list_path, list.to_string()).unwrap();
    append_config(
        &home,
        &format!("\n[ct]\nlog_list = \"{}\"\n", list_path.display()),
    );
    let other = other_ca("Other Public CA R6");
    for (name, serial, second) in [("retired-log", 21, &b), ("two-operators", 22, &c)] {
        let key = KeyPair::generate().unwrap();
        let p = current_params(&format!("{name}.public.test"), serial);
        let pre = precert(&other, &p, &key);
        let s1 = a.submit("add-pre-chain", &[&pre, &other.der]);
        let s2 = second.submit("add-pre-chain", &[&pre, &other.der]);
        let fin = final_with_scts(&other, &p, &key, &[&s1, &s2]);
        register_public(&home, name, &fin, &other.der, &key);
    }

    let scan = home.json(&["scan", "--json"], 3);
    let sigs = sct_signals(&scan);
    assert_eq!(sigs.len(), 1, "{scan:#}");
    let (subject, s) = &sigs[0];
    assert_eq!(subject, "retired-log", "{scan:#}");
    let scts = s["evidence"]["scts"].as_array().unwrap();
    assert_eq!(scts[0]["status"], "valid", "{s:#}");
    assert_eq!(scts[1]["status"], "not_acceptable", "{s:#}");
    assert!(
        scts[1]["reason"].as_str().unwrap().contains("retired"),
        "{s:#}"
    );

    // The list is checked with the configuration.
    let checked = home.json(&["check-config", "--json"], 0);
    assert_eq!(checked["ct"]["listed_logs"], 3, "{checked:#}");
    std::fs::write(&list_path, "{\"operators\": 5}").unwrap();
    let out = home.run(&["check-config"]);
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("ct.log_list") && text.contains("log_list.json"),
        "{text}"
    );
}

#[test]
fn a_certificate_a_case_did_not_deploy_is_ours_in_ct() {
    let home = Home::new();
    let www = home.make_svc("www.shop", "team-www@example.com", KeySpec::P256, 30);
    // The entry asks for RSA-2048 keys, which the configured checks refuse: the case's new
    // certificate is issued and then fails its check, so it is never deployed.
    let entry = www.entry().replace(
        "issuer = \"internal\"\n",
        "issuer = \"internal\"\nkey_profile = \"rsa-2048\"\n",
    );
    std::fs::write(home.path("inventory/services.toml"), entry).unwrap();
    let cfg = std::fs::read_to_string(home.config())
        .unwrap()
        .replace("[checks]\n", "[checks]\nrsa_min_bits = 3072\n");
    std::fs::write(home.config(), cfg).unwrap();
    let before = ders(&www.cert).remove(0);
    let r = home.json(&["reissue", "www.shop", "--json"], 1);
    let case = &r["cases"][0];
    assert_eq!(case["state"], "failed", "{r:#}");
    assert_eq!(ders(&www.cert).remove(0), before, "something was deployed");
    // The certificate it obtained is listed, revoked, and in the CT ledger.
    let orphans = case["orphans"].as_array().unwrap();
    assert_eq!(orphans.len(), 1, "{r:#}");
    assert_eq!(orphans[0]["state"], "revoked", "{r:#}");
    let orphan = inspect::read_certificates(orphans[0]["leaf_pem"].as_str().unwrap().as_bytes())
        .unwrap()
        .remove(0);
    let serial = inspect::inspect_certificate_der(&orphan).unwrap().serial;
    let crl = inspect::inspect_crl_der(&std::fs::read(home.path("ca/crl.der")).unwrap()).unwrap();
    assert_eq!(
        crl.find(&serial).and_then(|e| e.reason_code),
        Some(4),
        "not revoked as superseded: {crl:?}"
    );

    // The CA logs it: CT monitoring knows it for ours and raises nothing.
    let log = TestLog::start(&home.path("ctlog"));
    append_config(&home, &log.config());
    append_config(&home, "\n[ct]\ndomains = [\".shop.example.test\"]\n");
    log.submit("add-chain", &[&orphan, &home.ca_der()]);
    let poll = home.json(&["ct", "poll", "--json"], 0);
    let m = matches(&poll);
    assert_eq!(m.len(), 1, "{poll:#}");
    assert_eq!(m[0]["known"], true, "{poll:#}");
    assert!(new_signals(&poll).is_empty(), "{poll:#}");
}
