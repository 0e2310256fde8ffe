//! Cross-checks the inspection API against the `openssl` command line tool.
//!
//! Every fixture is generated at test time (with rcgen or with `openssl` itself) inside a
//! temporary directory, and every fact the library reports (fingerprints, serial, SANs, key
//! size and material, TBS hash, key/certificate matching, CSR proof of possession) is compared
//! with what `openssl` prints for the same bytes. The `openssl` binary is required: the tests
//! panic with a clear message when it is missing instead of skipping silently.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Debug;
use std::io::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use certresponder_inventory::inspect::{
    CertInfo, CsrInfo, InspectError, KeyFormat, KeyInfo, Object, PrivateKeyInfo, inspect_any,
    inspect_certificate_der, inspect_certificates, read_certificates, read_csr, read_private_key,
    read_public_key,
};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, CustomExtension, DistinguishedName,
    DnType, IsCa, KeyPair, SerialNumber, date_time_ymd,
};
use tempfile::TempDir;

// ---------------------------------------------------------------------------------------------
// Running openssl
// ---------------------------------------------------------------------------------------------

/// The `openssl` binary: `$OPENSSL` when set, else `/usr/bin/openssl`, else `openssl` on PATH.
/// Panics (never skips) when it cannot be run.
fn openssl_bin() -> &'static str {
    static BIN: OnceLock<String> = OnceLock::new();
    BIN.get_or_init(|| {
        let bin = std::env::var("OPENSSL").unwrap_or_else(|_| {
            if Path::new("/usr/bin/openssl").exists() {
                "/usr/bin/openssl".to_string()
            } else {
                "openssl".to_string()
            }
        });
        match Command::new(&bin).arg("version").output() {
            Ok(out) if out.status.success() => bin,
            Ok(out) => panic!(
                "the openssl CLI is required by the openssl_crosscheck tests, but `{bin} version` \
                 failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => panic!(
                "the openssl CLI is required by the openssl_crosscheck tests, but `{bin}` could \
                 not be run ({e}); install openssl (expected at /usr/bin/openssl) or set $OPENSSL"
            ),
        }
    })
}

/// Runs openssl, feeding `stdin` when given; returns the raw output whatever the exit status.
fn openssl_output(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut cmd = Command::new(openssl_bin());
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start openssl {args:?}: {e}"));
    // Feed stdin from a thread so that a chatty child cannot dead-lock us.
    let writer = stdin.map(|data| {
        let mut pipe = child.stdin.take().expect("stdin is piped");
        let data = data.to_vec();
        std::thread::spawn(move || pipe.write_all(&data))
    });
    let out = child.wait_with_output().expect("openssl output");
    if let Some(w) = writer {
        w.join()
            .expect("stdin writer thread")
            .expect("write openssl stdin");
    }
    out
}

/// Runs openssl and returns its stdout; panics with its stderr when it fails.
fn openssl(args: &[&str], stdin: Option<&[u8]>) -> Vec<u8> {
    let out = openssl_output(args, stdin);
    assert!(
        out.status.success(),
        "openssl {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn openssl_text(args: &[&str], stdin: Option<&[u8]>) -> String {
    String::from_utf8(openssl(args, stdin)).expect("openssl prints UTF-8")
}

/// SHA-256 as computed by `openssl dgst`, lower-case hex.
fn openssl_sha256(bytes: &[u8]) -> String {
    let out = openssl_text(&["dgst", "-sha256", "-r"], Some(bytes));
    let hash = out
        .split_whitespace()
        .next()
        .expect("dgst output")
        .to_string();
    assert_eq!(hash.len(), 64, "unexpected dgst output {out:?}");
    hash.to_ascii_lowercase()
}

fn s(p: &Path) -> String {
    p.to_str().expect("temporary paths are UTF-8").to_string()
}

fn tempdir() -> TempDir {
    // Fail early and clearly when openssl is missing.
    openssl_bin();
    tempfile::tempdir().expect("temporary directory")
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("write fixture");
    p
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

fn upper_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// `AB:CD:...` (any case, any prefix up to `=`) to `abcd...`.
fn normalise_hex(s: &str) -> String {
    let s = s.rsplit_once('=').map_or(s, |(_, v)| v);
    s.trim().replace(':', "").to_ascii_lowercase()
}

/// Serial numbers compared as hex without leading zeros, case-insensitively.
fn normalise_serial(s: &str) -> String {
    let s = s.trim().to_ascii_lowercase();
    let t = s.trim_start_matches('0');
    if t.is_empty() { "0".into() } else { t.into() }
}

/// The hex bytes that follow `pub:` in `openssl pkey -text_pub` output.
fn openssl_pub_bytes(text: &str) -> String {
    let mut out = String::new();
    let mut in_pub = false;
    for line in text.lines() {
        let t = line.trim();
        if t == "pub:" {
            in_pub = true;
            continue;
        }
        if in_pub {
            if !t.is_empty() && t.chars().all(|c| c.is_ascii_hexdigit() || c == ':') {
                out.push_str(&t.replace(':', ""));
            } else {
                break;
            }
        }
    }
    assert!(!out.is_empty(), "no `pub:` block in {text}");
    out.to_ascii_lowercase()
}

/// Parses `openssl x509 -ext subjectAltName` (or `req -text`) SAN lines.
fn parse_openssl_sans(lines: &str) -> (Vec<String>, Vec<IpAddr>) {
    let mut dns = Vec::new();
    let mut ips = Vec::new();
    for item in lines.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        if let Some(d) = item.strip_prefix("DNS:") {
            dns.push(d.to_string());
        } else if let Some(ip) = item.strip_prefix("IP Address:") {
            ips.push(
                ip.parse()
                    .unwrap_or_else(|e| panic!("openssl printed IP {ip:?}: {e}")),
            );
        } else {
            panic!("unexpected subjectAltName entry from openssl: {item:?}");
        }
    }
    (dns, ips)
}

/// The value lines of `openssl x509 -noout -ext NAME` (everything after the header line).
fn ext_value(x509_ext_output: &str) -> Option<String> {
    let mut lines = x509_ext_output.lines();
    lines.next()?;
    let v: Vec<&str> = lines.map(str::trim).collect();
    let v = v.join(" ");
    (!v.trim().is_empty()).then(|| v.trim().to_string())
}

fn expect_unparseable<T: Debug>(r: Result<T, InspectError>, ctx: &str) -> String {
    match r {
        Err(InspectError::Unparseable { reason, .. }) => reason,
        other => panic!("{ctx}: expected InspectError::Unparseable, got {other:?}"),
    }
}

fn single(r: Result<Vec<CertInfo>, InspectError>, ctx: &str) -> CertInfo {
    let mut v = r.unwrap_or_else(|e| panic!("{ctx}: {e}"));
    assert_eq!(v.len(), 1, "{ctx}: expected one certificate");
    v.remove(0)
}

// ---------------------------------------------------------------------------------------------
// The certificate cross-check
// ---------------------------------------------------------------------------------------------

/// The TBSCertificate of a DER certificate as cut out by `openssl asn1parse`.
fn openssl_tbs(dir: &Path, name: &str, der_path: &Path) -> Vec<u8> {
    let listing = openssl_text(
        &["asn1parse", "-inform", "DER", "-in", &s(der_path), "-i"],
        None,
    );
    // The first depth-1 element inside the outer SEQUENCE is the TBSCertificate, e.g.
    // `    4:d=1  hl=4 l= 643 cons:  SEQUENCE`.
    let line = listing
        .lines()
        .find(|l| l.contains(":d=1 "))
        .unwrap_or_else(|| panic!("{name}: no depth-1 element in\n{listing}"));
    let (offset, rest) = line.trim_start().split_once(':').expect("offset");
    let num_after = |key: &str| -> usize {
        let at = rest.find(key).unwrap_or_else(|| panic!("{key} in {line}")) + key.len();
        rest[at..]
            .trim_start()
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let (hl, l) = (num_after("hl="), num_after(" l="));
    assert!(
        line.contains("SEQUENCE"),
        "{name}: TBS is not a SEQUENCE: {line}"
    );
    let out = dir.join(format!("{name}.tbs.der"));
    openssl(
        &[
            "asn1parse",
            "-inform",
            "DER",
            "-in",
            &s(der_path),
            "-strparse",
            offset,
            "-noout",
            "-out",
            &s(&out),
        ],
        None,
    );
    let tbs = read(&out);
    assert_eq!(
        tbs.len(),
        hl + l,
        "{name}: openssl wrote a TBS of unexpected length"
    );
    assert_eq!(tbs[0], 0x30, "{name}: TBS must start with a SEQUENCE tag");
    tbs
}

/// Inspects `der` (as DER, and as the PEM openssl makes of it) and compares every field with
/// openssl's view of the same certificate. Returns our view.
fn crosscheck_certificate(dir: &Path, name: &str, der: &[u8]) -> CertInfo {
    let der_path = write(dir, &format!("{name}.der"), der);
    let pem_path = dir.join(format!("{name}.pem"));
    openssl(
        &[
            "x509",
            "-inform",
            "DER",
            "-in",
            &s(&der_path),
            "-out",
            &s(&pem_path),
        ],
        None,
    );
    let pem = read(&pem_path);
    assert!(
        pem.starts_with(b"-----BEGIN CERTIFICATE-----"),
        "{name}: openssl PEM"
    );

    // PEM and DER, and every entry point, agree.
    let info = single(inspect_certificates(der), &format!("{name} DER"));
    assert_eq!(
        single(inspect_certificates(&pem), &format!("{name} PEM")),
        info
    );
    assert_eq!(inspect_certificate_der(der).unwrap(), info);
    assert_eq!(read_certificates(&pem).unwrap(), vec![der.to_vec()]);
    for (form, bytes) in [("PEM", &pem[..]), ("DER", der)] {
        match inspect_any(bytes).unwrap().as_slice() {
            [Object::Certificate(c)] => assert_eq!(**c, info, "{name} inspect_any {form}"),
            other => panic!("{name} inspect_any {form}: {other:?}"),
        }
    }

    let pem_s = s(&pem_path);
    let x509 = |extra: &[&str]| -> String {
        let mut args = vec!["x509", "-in", pem_s.as_str(), "-noout"];
        args.extend_from_slice(extra);
        openssl_text(&args, None)
    };

    // Whole-certificate SHA-256, from openssl reading the PEM and the DER, and from dgst.
    let fp = normalise_hex(&x509(&["-fingerprint", "-sha256"]));
    assert_eq!(info.fingerprints.cert_sha256, fp, "{name}: cert_sha256");
    let fp_der = openssl_text(
        &[
            "x509",
            "-inform",
            "DER",
            "-in",
            &s(&der_path),
            "-noout",
            "-fingerprint",
            "-sha256",
        ],
        None,
    );
    assert_eq!(
        normalise_hex(&fp_der),
        fp,
        "{name}: openssl PEM/DER fingerprints"
    );
    assert_eq!(openssl_sha256(der), fp, "{name}: dgst of the DER");

    // SPKI SHA-256; the public key openssl extracts reads back as the same key.
    let pubkey_pem = openssl(&["x509", "-in", &pem_s, "-noout", "-pubkey"], None);
    let spki_der = openssl(&["pkey", "-pubin", "-outform", "DER"], Some(&pubkey_pem));
    assert_eq!(
        info.fingerprints.spki_sha256,
        openssl_sha256(&spki_der),
        "{name}: spki_sha256"
    );
    assert_eq!(
        read_public_key(&pubkey_pem).unwrap(),
        info.key,
        "{name}: PEM public key"
    );
    assert_eq!(
        read_public_key(&spki_der).unwrap(),
        info.key,
        "{name}: DER public key"
    );

    // Serial.
    let serial = x509(&["-serial"]);
    let serial = serial.trim().strip_prefix("serial=").expect("serial=");
    assert_eq!(
        normalise_serial(&info.serial),
        normalise_serial(serial),
        "{name}: serial"
    );
    assert!(
        info.serial == "0" || info.serial == "00" || !info.serial.starts_with("00"),
        "{name}: serial {} keeps a leading zero octet",
        info.serial
    );
    assert_eq!(
        info.serial,
        info.serial.to_ascii_lowercase(),
        "{name}: serial is lower-case"
    );

    // subjectAltName.
    let (dns, ips) = ext_value(&x509(&["-ext", "subjectAltName"]))
        .map(|v| parse_openssl_sans(&v))
        .unwrap_or_default();
    assert_eq!(info.dns_names, dns, "{name}: DNS SANs");
    assert_eq!(info.ip_addresses, ips, "{name}: IP SANs");

    // Key type, size and material.
    let text = x509(&["-text"]);
    match text.find("Public-Key: (") {
        Some(at) => {
            let rest = &text[at + "Public-Key: (".len()..];
            let bits: usize = rest[..rest.find(" bit)").expect("bit)")].parse().unwrap();
            assert_eq!(info.key.bits(), bits, "{name}: key size");
        }
        None => {
            assert!(
                text.contains("ED25519 Public-Key:"),
                "{name}: unknown key in\n{text}"
            );
            assert_eq!(info.key.bits(), 256, "{name}: Ed25519 size");
        }
    }
    let pub_text = openssl_text(
        &["pkey", "-pubin", "-noout", "-text_pub"],
        Some(&pubkey_pem),
    );
    match &info.key {
        KeyInfo::Rsa {
            modulus, exponent, ..
        } => {
            assert!(
                text.contains("Public Key Algorithm: rsaEncryption"),
                "{name}"
            );
            let m = x509(&["-modulus"]);
            let m = m.trim().strip_prefix("Modulus=").expect("Modulus=");
            assert_eq!(upper_hex(modulus), m, "{name}: RSA modulus");
            assert!(
                text.contains(&format!("Exponent: {exponent} (")),
                "{name}: exponent {exponent} not in\n{text}"
            );
        }
        KeyInfo::Ec { curve, point, .. } => {
            assert!(
                text.contains("Public Key Algorithm: id-ecPublicKey"),
                "{name}"
            );
            assert!(
                text.contains(&format!("NIST CURVE: {curve}")),
                "{name}: curve {curve}"
            );
            assert_eq!(
                upper_hex(point).to_ascii_lowercase(),
                openssl_pub_bytes(&pub_text),
                "{name}: EC point"
            );
        }
        KeyInfo::Ed25519 { public } => {
            assert!(text.contains("Public Key Algorithm: ED25519"), "{name}");
            assert_eq!(
                upper_hex(public).to_ascii_lowercase(),
                openssl_pub_bytes(&pub_text),
                "{name}: Ed25519 key"
            );
        }
        other => panic!("{name}: unexpected key {other:?}"),
    }

    // Validity.
    let dates = x509(&["-startdate", "-enddate", "-dateopt", "iso_8601"]);
    let fmt = "%Y-%m-%d %H:%M:%SZ";
    assert!(
        dates.contains(&format!("notBefore={}", info.not_before.format(fmt))),
        "{name}: not_before {} vs {dates}",
        info.not_before
    );
    assert!(
        dates.contains(&format!("notAfter={}", info.not_after.format(fmt))),
        "{name}: not_after {} vs {dates}",
        info.not_after
    );

    // Subject common names and self-issuance.
    let subject = x509(&["-subject", "-nameopt", "RFC2253"]);
    let issuer = x509(&["-issuer", "-nameopt", "RFC2253"]);
    let subject = subject.trim().strip_prefix("subject=").expect("subject=");
    let issuer = issuer.trim().strip_prefix("issuer=").expect("issuer=");
    let mut cns: Vec<String> = subject
        .split(',')
        .filter_map(|rdn| rdn.strip_prefix("CN="))
        .map(str::to_string)
        .collect();
    let mut ours = info.subject_cns.clone();
    cns.sort();
    ours.sort();
    assert_eq!(ours, cns, "{name}: subject CNs");
    assert_eq!(
        info.is_self_issued(),
        subject == issuer,
        "{name}: self-issued"
    );

    // Key identifiers and basicConstraints.
    let ski = ext_value(&x509(&["-ext", "subjectKeyIdentifier"])).map(|v| normalise_hex(&v));
    assert_eq!(info.subject_key_id, ski, "{name}: subject key id");
    let aki = ext_value(&x509(&["-ext", "authorityKeyIdentifier"]))
        .map(|v| normalise_hex(v.trim_start_matches("keyid:")));
    assert_eq!(info.authority_key_id, aki, "{name}: authority key id");
    let bc = x509(&["-ext", "basicConstraints"]);
    assert_eq!(
        info.is_ca,
        bc.contains("CA:TRUE"),
        "{name}: is_ca from {bc:?}"
    );

    // CT: openssl prints the poison and the SCT list when present.
    assert_eq!(
        info.is_precertificate,
        text.contains("CT Precertificate Poison"),
        "{name}: precertificate flag"
    );
    assert_eq!(
        info.scts.len(),
        text.matches("Signed Certificate Timestamp:").count(),
        "{name}: SCT count"
    );

    // TBS hash: SHA-256 of the TBSCertificate openssl cuts out, unless CT extensions had to
    // be removed first (then it must differ).
    let tbs = openssl_tbs(dir, name, &der_path);
    let raw_tbs_sha = openssl_sha256(&tbs);
    if info.is_precertificate || !info.scts.is_empty() {
        assert_ne!(
            info.fingerprints.tbs_sha256, raw_tbs_sha,
            "{name}: CT extensions kept"
        );
    } else {
        assert_eq!(
            info.fingerprints.tbs_sha256, raw_tbs_sha,
            "{name}: tbs_sha256"
        );
    }
    for fp in [
        &info.fingerprints.cert_sha256,
        &info.fingerprints.spki_sha256,
        &info.fingerprints.tbs_sha256,
    ] {
        assert_eq!(fp.len(), 64, "{name}: fingerprint length");
        assert!(
            fp.chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)),
            "{name}: fingerprint {fp} is not lower-case hex"
        );
    }
    info
}

// ---------------------------------------------------------------------------------------------
// 1. Certificates from rcgen and from openssl
// ---------------------------------------------------------------------------------------------

fn dn(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, "DE");
    dn.push(DnType::OrganizationName, "Crosscheck");
    dn.push(DnType::CommonName, cn);
    dn
}

struct RcgenCase {
    name: &'static str,
    key: KeyPair,
    serial: Option<&'static [u8]>,
    describe: &'static str,
    bits: usize,
}

#[test]
fn rcgen_certificates_match_openssl() {
    let dir = tempdir();
    let ips: Vec<IpAddr> = vec!["192.0.2.1".parse().unwrap(), "2001:db8::1".parse().unwrap()];
    let cases = [
        RcgenCase {
            name: "rcgen-p256",
            key: KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap(),
            // rcgen derives the serial from the key.
            serial: None,
            describe: "ECDSA P-256",
            bits: 256,
        },
        RcgenCase {
            name: "rcgen-p384",
            key: KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap(),
            // High bit set: DER needs a leading zero octet, which we must strip.
            serial: Some(&[0x80, 0x00, 0x00, 0x01]),
            describe: "ECDSA P-384",
            bits: 384,
        },
        RcgenCase {
            name: "rcgen-ed25519",
            key: KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap(),
            serial: Some(&[0x01]),
            describe: "Ed25519",
            bits: 256,
        },
        RcgenCase {
            name: "rcgen-rsa2048",
            key: KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
                .unwrap(),
            serial: Some(&[
                0x7f, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d,
                0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13,
            ]),
            describe: "RSA-2048",
            bits: 2048,
        },
    ];
    for RcgenCase {
        name,
        key,
        serial,
        describe,
        bits,
    } in cases
    {
        let mut params = CertificateParams::new(vec![
            "a.example".to_string(),
            "*.b.example".to_string(),
            "192.0.2.1".to_string(),
            "2001:db8::1".to_string(),
        ])
        .unwrap();
        params.distinguished_name = dn(&format!("{name}.example"));
        params.not_before = date_time_ymd(2024, 1, 2);
        params.not_after = date_time_ymd(2034, 1, 2);
        params.serial_number = serial.map(SerialNumber::from_slice);
        let cert = params.self_signed(&key).unwrap();

        let info = crosscheck_certificate(dir.path(), name, cert.der());
        assert_eq!(info.dns_names, ["a.example", "*.b.example"], "{name}");
        assert_eq!(info.ip_addresses, ips, "{name}");
        assert_eq!(info.key.describe(), describe, "{name}");
        assert_eq!(info.key.bits(), bits, "{name}");
        assert_eq!(info.subject_cns, [format!("{name}.example")], "{name}");
        if let Some(serial) = serial {
            let expected: String = serial.iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(info.serial, expected, "{name}: serial");
        }
        // rcgen's own PEM (not openssl's) reads the same.
        assert_eq!(
            single(inspect_certificates(cert.pem().as_bytes()), name),
            info
        );
    }
}

#[test]
fn openssl_certificates_match() {
    let dir = tempdir();
    let d = dir.path();
    let mut infos = Vec::new();
    let mut pems = Vec::new();
    for (name, newkey, sans, subj) in [
        (
            "openssl-rsa3072",
            vec!["-newkey", "rsa:3072"],
            "subjectAltName=DNS:a.example,IP:192.0.2.1",
            "/C=US/O=Crosscheck/CN=rsa.example",
        ),
        (
            "openssl-p384",
            vec!["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"],
            "subjectAltName=DNS:ec.example,DNS:www.ec.example,IP:2001:db8::2,IP:198.51.100.9",
            "/CN=ec.example",
        ),
    ] {
        let key = d.join(format!("{name}.key"));
        let pem = d.join(format!("{name}.orig.pem"));
        let mut args = vec!["req", "-x509"];
        args.extend_from_slice(&newkey);
        let (key_s, pem_s) = (s(&key), s(&pem));
        args.extend_from_slice(&[
            "-nodes", "-keyout", &key_s, "-out", &pem_s, "-subj", subj, "-days", "30", "-addext",
            sans,
        ]);
        openssl(&args, None);
        let der = openssl(&["x509", "-in", &pem_s, "-outform", "DER"], None);
        let info = crosscheck_certificate(d, name, &der);
        // openssl's original PEM file (as written by `req`) reads the same.
        let orig = read(&pem);
        assert_eq!(single(inspect_certificates(&orig), name), info);
        // The key openssl wrote is the certificate's key.
        assert!(
            read_private_key(&read(&key))
                .unwrap()
                .public
                .same_public_key(&info.key)
        );
        infos.push(info);
        pems.push(orig);
    }
    let rsa = &infos[0];
    assert_eq!(rsa.dns_names, ["a.example"]);
    assert_eq!(rsa.ip_addresses, ["192.0.2.1".parse::<IpAddr>().unwrap()]);
    assert_eq!(rsa.key.describe(), "RSA-3072");
    assert_eq!(rsa.key.profile_name(), Some("rsa-3072"));
    assert!(rsa.is_ca && rsa.is_self_issued());
    let ec = &infos[1];
    assert_eq!(ec.dns_names, ["ec.example", "www.ec.example"]);
    assert_eq!(
        ec.ip_addresses,
        [
            "2001:db8::2".parse::<IpAddr>().unwrap(),
            "198.51.100.9".parse().unwrap()
        ]
    );
    assert_eq!(ec.key.describe(), "ECDSA P-384");
    assert_eq!(ec.key.profile_name(), Some("ecdsa-p384"));

    // A chain file holds both, in file order.
    let chain = [pems[0].clone(), pems[1].clone()].concat();
    assert_eq!(inspect_certificates(&chain).unwrap(), infos);
    // `openssl x509 -text` output (human text around the PEM block) reads the same.
    let pem1 = s(&d.join("openssl-rsa3072.orig.pem"));
    let with_text = openssl(&["x509", "-in", &pem1, "-text"], None);
    assert_eq!(
        single(inspect_certificates(&with_text), "x509 -text"),
        infos[0]
    );
}

// ---------------------------------------------------------------------------------------------
// 2. TBS hash: a precertificate and its certificate
// ---------------------------------------------------------------------------------------------

const OID_POISON: &[u64] = &[1, 3, 6, 1, 4, 1, 11129, 2, 4, 3];
const OID_SCT_LIST: &[u64] = &[1, 3, 6, 1, 4, 1, 11129, 2, 4, 2];

fn der_header(out: &mut Vec<u8>, tag: u8, len: usize) {
    out.push(tag);
    if len < 0x80 {
        out.push(u8::try_from(len).unwrap());
    } else if len < 0x100 {
        out.extend_from_slice(&[0x81, u8::try_from(len).unwrap()]);
    } else {
        out.push(0x82);
        out.extend_from_slice(&u16::try_from(len).unwrap().to_be_bytes());
    }
}

/// An RFC 6962 §3.3 SignedCertificateTimestampList extension value (an OCTET STRING holding
/// the TLS-encoded list) with one v1 SCT per (log id, timestamp in ms).
fn sct_list_extension(scts: &[([u8; 32], u64)]) -> CustomExtension {
    let mut list = Vec::new();
    for (log_id, ts) in scts {
        let mut sct = vec![0u8]; // v1
        sct.extend_from_slice(log_id);
        sct.extend_from_slice(&ts.to_be_bytes());
        sct.extend_from_slice(&[0, 0]); // no extensions
        sct.extend_from_slice(&[4, 3]); // sha256, ecdsa
        // A plausible ECDSA-Sig-Value shape; nobody verifies it here.
        let sig: Vec<u8> = [0x30, 0x44, 0x02, 0x20]
            .into_iter()
            .chain(std::iter::repeat_n(0x11, 32))
            .chain([0x02, 0x20])
            .chain(std::iter::repeat_n(0x22, 32))
            .collect();
        sct.extend_from_slice(&u16::try_from(sig.len()).unwrap().to_be_bytes());
        sct.extend_from_slice(&sig);
        list.extend_from_slice(&u16::try_from(sct.len()).unwrap().to_be_bytes());
        list.extend_from_slice(&sct);
    }
    let mut tls = u16::try_from(list.len()).unwrap().to_be_bytes().to_vec();
    tls.extend_from_slice(&list);
    let mut content = Vec::new();
    der_header(&mut content, 0x04, tls.len());
    content.extend_from_slice(&tls);
    CustomExtension::from_oid_content(OID_SCT_LIST, content)
}

fn poison_extension() -> CustomExtension {
    let mut poison = CustomExtension::from_oid_content(OID_POISON, vec![0x05, 0x00]);
    poison.set_criticality(true);
    poison
}

#[test]
fn tbs_hash_is_shared_by_precertificate_and_certificate() {
    let dir = tempdir();
    let d = dir.path();

    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.distinguished_name = dn("Crosscheck Test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let ca_info = crosscheck_certificate(d, "ca", ca.der());
    assert!(ca_info.is_ca);

    let leaf_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut base = CertificateParams::new(vec![
        "ct.example".to_string(),
        "www.ct.example".to_string(),
        "192.0.2.44".to_string(),
    ])
    .unwrap();
    base.distinguished_name = dn("ct.example");
    base.serial_number = Some(SerialNumber::from_slice(&[
        0x4c, 0x7a, 0x01, 0x99, 0xe2, 0x10, 0x33, 0x08, 0xaa, 0x5b, 0x6d, 0x21, 0x0f, 0xfe, 0x81,
        0x02,
    ]));
    base.not_before = date_time_ymd(2025, 3, 1);
    base.not_after = date_time_ymd(2025, 5, 30);
    base.use_authority_key_identifier_extension = true;
    // An unrelated custom extension after the CT one, so that the CT extension sits in the
    // middle of the list and not only at its end.
    let trailing =
        CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 55555, 1], vec![0x05, 0x00]);

    let log_a = [0xa1; 32];
    let log_b = [0xb2; 32];
    let (ts_a, ts_b) = (1_740_787_200_123_u64, 1_740_787_201_456_u64);

    let mut plain_params = base.clone();
    plain_params.custom_extensions = vec![trailing.clone()];
    let mut pre_params = base.clone();
    pre_params.custom_extensions = vec![poison_extension(), trailing.clone()];
    let mut final_params = base.clone();
    final_params.custom_extensions = vec![
        sct_list_extension(&[(log_a, ts_a), (log_b, ts_b)]),
        trailing,
    ];

    let plain = plain_params.signed_by(&leaf_key, &ca).unwrap();
    let pre = pre_params.signed_by(&leaf_key, &ca).unwrap();
    let fin = final_params.signed_by(&leaf_key, &ca).unwrap();

    let plain = crosscheck_certificate(d, "plain", plain.der());
    let pre = crosscheck_certificate(d, "precert", pre.der());
    let fin = crosscheck_certificate(d, "final", fin.der());

    assert!(
        pre.is_precertificate,
        "the poisoned certificate is a precertificate"
    );
    assert!(
        !fin.is_precertificate,
        "the final certificate is not a precertificate"
    );
    assert!(!plain.is_precertificate);
    assert!(pre.scts.is_empty() && plain.scts.is_empty());

    // Same issuance: same TBS hash; different certificates: different SHA-256.
    assert_eq!(pre.fingerprints.tbs_sha256, fin.fingerprints.tbs_sha256);
    assert_ne!(pre.fingerprints.cert_sha256, fin.fingerprints.cert_sha256);
    // And with the CT extensions removed both are exactly the plain certificate's TBS, whose
    // hash crosscheck_certificate compared with openssl's cut of the TBSCertificate.
    assert_eq!(plain.fingerprints.tbs_sha256, pre.fingerprints.tbs_sha256);
    assert_eq!(pre.fingerprints.spki_sha256, fin.fingerprints.spki_sha256);
    assert_eq!((&pre.serial, &pre.issuer), (&fin.serial, &fin.issuer));
    assert_eq!(pre.authority_key_id, ca_info.subject_key_id);

    // The embedded SCTs are read as written.
    let got: Vec<(String, i64)> = fin
        .scts
        .iter()
        .map(|s| (s.log_id.clone(), s.timestamp.timestamp_millis()))
        .collect();
    assert_eq!(
        got,
        [
            ("a1".repeat(32), i64::try_from(ts_a).unwrap()),
            ("b2".repeat(32), i64::try_from(ts_b).unwrap())
        ]
    );

    // Another issuance (only the serial differs) has another TBS hash.
    let mut other = plain_params.clone();
    other.serial_number = Some(SerialNumber::from_slice(&[0x01, 0x02, 0x03]));
    let other = crosscheck_certificate(d, "other", other.signed_by(&leaf_key, &ca).unwrap().der());
    assert_ne!(other.fingerprints.tbs_sha256, plain.fingerprints.tbs_sha256);

    // With no other extension, removing the CT extension removes the whole extensions field:
    // the result is the TBS of a certificate without extensions.
    let mut bare = CertificateParams::new(Vec::<String>::new()).unwrap();
    bare.distinguished_name = dn("bare.example");
    bare.serial_number = Some(SerialNumber::from_slice(&[0x42]));
    let mut bare_pre = bare.clone();
    bare_pre.custom_extensions = vec![poison_extension()];
    let mut bare_fin = bare.clone();
    bare_fin.custom_extensions = vec![sct_list_extension(&[(log_a, ts_a)])];
    let bare = crosscheck_certificate(d, "bare", bare.signed_by(&leaf_key, &ca).unwrap().der());
    let bare_pre = crosscheck_certificate(
        d,
        "bare-pre",
        bare_pre.signed_by(&leaf_key, &ca).unwrap().der(),
    );
    let bare_fin = crosscheck_certificate(
        d,
        "bare-fin",
        bare_fin.signed_by(&leaf_key, &ca).unwrap().der(),
    );
    assert!(bare_pre.is_precertificate && !bare_fin.is_precertificate);
    assert_eq!(bare_fin.scts.len(), 1);
    assert_eq!(
        bare.fingerprints.tbs_sha256,
        bare_pre.fingerprints.tbs_sha256
    );
    assert_eq!(
        bare.fingerprints.tbs_sha256,
        bare_fin.fingerprints.tbs_sha256
    );
}

// ---------------------------------------------------------------------------------------------
// 3. Private keys, public keys and CSRs made by openssl
// ---------------------------------------------------------------------------------------------

/// A key generated by openssl plus its self-signed certificate (`openssl req -x509 -key`).
struct KeyFixture {
    name: String,
    key: PathBuf,
    cert: CertInfo,
}

fn openssl_key(d: &Path, name: &str, genpkey_args: &[&str]) -> KeyFixture {
    let key = d.join(format!("{name}.key.pem"));
    let mut args = vec!["genpkey"];
    args.extend_from_slice(genpkey_args);
    let key_s = s(&key);
    args.extend_from_slice(&["-out", &key_s]);
    openssl(&args, None);
    self_signed_for(d, name, key)
}

fn self_signed_for(d: &Path, name: &str, key: PathBuf) -> KeyFixture {
    let cert = d.join(format!("{name}.crt"));
    openssl(
        &[
            "req",
            "-x509",
            "-key",
            &s(&key),
            "-subj",
            &format!("/CN={name}.example"),
            "-days",
            "2",
            "-out",
            &s(&cert),
        ],
        None,
    );
    let cert = single(inspect_certificates(&read(&cert)), name);
    KeyFixture {
        name: name.to_string(),
        key,
        cert,
    }
}

fn pem_label(bytes: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(bytes)
        .lines()
        .filter_map(|l| l.strip_prefix("-----BEGIN "))
        .map(|l| l.trim_end_matches('-').to_string())
        .collect()
}

/// Checks a private key file: its format, that it matches its own certificate and no other.
fn check_private_key(
    ctx: &str,
    bytes: &[u8],
    format: KeyFormat,
    own: &KeyFixture,
    all: &[&KeyFixture],
) -> PrivateKeyInfo {
    let info = read_private_key(bytes).unwrap_or_else(|e| panic!("{ctx}: {e}"));
    assert_eq!(info.format, format, "{ctx}: key format");
    assert!(
        info.public.same_public_key(&own.cert.key),
        "{ctx}: must match its certificate"
    );
    assert_eq!(info.public, own.cert.key, "{ctx}: public key summary");
    for other in all.iter().filter(|o| o.name != own.name) {
        assert!(
            !info.public.same_public_key(&other.cert.key),
            "{ctx}: must not match the certificate of {}",
            other.name
        );
    }
    match inspect_any(bytes)
        .unwrap_or_else(|e| panic!("{ctx} inspect_any: {e}"))
        .as_slice()
    {
        [Object::PrivateKey(k)] => assert_eq!(*k, info, "{ctx}: inspect_any"),
        other => panic!("{ctx}: inspect_any gave {other:?}"),
    }
    info
}

#[test]
fn openssl_private_and_public_keys_match_their_certificates() {
    let dir = tempdir();
    let d = dir.path();
    let rsa_a = openssl_key(
        d,
        "rsa-a",
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    );
    let rsa_b = openssl_key(
        d,
        "rsa-b",
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    );
    let p256_a = openssl_key(
        d,
        "p256-a",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    );
    let p256_b = openssl_key(
        d,
        "p256-b",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    );
    let p384 = openssl_key(
        d,
        "p384",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
    );
    let ed_a = openssl_key(d, "ed25519-a", &["-algorithm", "ed25519"]);
    let ed_b = openssl_key(d, "ed25519-b", &["-algorithm", "ed25519"]);

    // Keys written directly in the legacy formats.
    let genrsa = d.join("genrsa.key.pem");
    openssl(
        &["genrsa", "-traditional", "-out", &s(&genrsa), "2048"],
        None,
    );
    let genrsa = self_signed_for(d, "genrsa", genrsa);
    let ecparam = d.join("ecparam.key.pem");
    openssl(
        &[
            "ecparam",
            "-genkey",
            "-name",
            "prime256v1",
            "-out",
            &s(&ecparam),
        ],
        None,
    );
    let ecparam = self_signed_for(d, "ecparam", ecparam);

    let all = [
        &rsa_a, &rsa_b, &p256_a, &p256_b, &p384, &ed_a, &ed_b, &genrsa, &ecparam,
    ];
    assert_eq!(rsa_a.cert.key.describe(), "RSA-2048");
    assert_eq!(p256_a.cert.key.describe(), "ECDSA P-256");
    assert_eq!(p384.cert.key.describe(), "ECDSA P-384");
    assert_eq!(ed_a.cert.key.describe(), "Ed25519");

    // Every fixture in its native encoding.
    for k in all {
        let bytes = read(&k.key);
        let (label, format) = match k.name.as_str() {
            "genrsa" => ("RSA PRIVATE KEY", KeyFormat::Pkcs1),
            "ecparam" => ("EC PRIVATE KEY", KeyFormat::Sec1),
            _ => ("PRIVATE KEY", KeyFormat::Pkcs8),
        };
        let labels = pem_label(&bytes);
        if k.name == "ecparam" {
            assert_eq!(
                labels,
                ["EC PARAMETERS", "EC PRIVATE KEY"],
                "ecparam -genkey output"
            );
        } else {
            assert_eq!(labels, [label], "{}", k.name);
        }
        check_private_key(&k.name, &bytes, format, k, &all);
        // PKCS#8 DER of every key. (`openssl pkey -outform DER` would write the traditional
        // PKCS#1 / SEC1 form for RSA and EC keys in OpenSSL 3.0.)
        let der = openssl(
            &[
                "pkcs8",
                "-topk8",
                "-nocrypt",
                "-in",
                &s(&k.key),
                "-outform",
                "DER",
            ],
            None,
        );
        check_private_key(
            &format!("{} PKCS#8 DER", k.name),
            &der,
            KeyFormat::Pkcs8,
            k,
            &all,
        );
        // A combined "certificate + key" PEM (as for haproxy) still yields the key.
        let crt = d.join(format!("{}.crt", k.name));
        let combined = [read(&crt), bytes.clone()].concat();
        assert_eq!(
            read_private_key(&combined).unwrap().public,
            k.cert.key,
            "{}: combined PEM",
            k.name
        );
        let objects = inspect_any(&combined).unwrap();
        assert!(
            matches!(
                objects.as_slice(),
                [Object::Certificate(_), Object::PrivateKey(_)]
            ),
            "{}: {objects:?}",
            k.name
        );

        // Public keys as openssl writes them.
        let pub_pem = openssl(&["pkey", "-in", &s(&k.key), "-pubout"], None);
        assert_eq!(pem_label(&pub_pem), ["PUBLIC KEY"]);
        let pub_der = openssl(
            &["pkey", "-in", &s(&k.key), "-pubout", "-outform", "DER"],
            None,
        );
        for (form, bytes) in [("PEM", &pub_pem), ("DER", &pub_der)] {
            let public =
                read_public_key(bytes).unwrap_or_else(|e| panic!("{} {form}: {e}", k.name));
            assert_eq!(public, k.cert.key, "{}: public key {form}", k.name);
            assert!(public.same_public_key(&k.cert.key));
            for other in all.iter().filter(|o| o.name != k.name) {
                assert!(
                    !public.same_public_key(&other.cert.key),
                    "{} vs {}",
                    k.name,
                    other.name
                );
            }
        }
        match inspect_any(&pub_pem).unwrap().as_slice() {
            [Object::PublicKey(p)] => assert_eq!(*p, k.cert.key),
            other => panic!("{}: {other:?}", k.name),
        }
    }

    // RSA in PKCS#1, PEM and DER, converted by `openssl rsa -traditional`.
    for k in [&rsa_a, &rsa_b, &genrsa] {
        let pem = openssl(&["rsa", "-in", &s(&k.key), "-traditional"], None);
        assert_eq!(pem_label(&pem), ["RSA PRIVATE KEY"]);
        check_private_key(
            &format!("{} PKCS#1 PEM", k.name),
            &pem,
            KeyFormat::Pkcs1,
            k,
            &all,
        );
        let der = openssl(
            &["rsa", "-in", &s(&k.key), "-traditional", "-outform", "DER"],
            None,
        );
        check_private_key(
            &format!("{} PKCS#1 DER", k.name),
            &der,
            KeyFormat::Pkcs1,
            k,
            &all,
        );
        // `RSA PUBLIC KEY` (PKCS#1) public keys.
        let rsa_pub = openssl(&["rsa", "-in", &s(&k.key), "-RSAPublicKey_out"], None);
        assert_eq!(pem_label(&rsa_pub), ["RSA PUBLIC KEY"]);
        assert_eq!(read_public_key(&rsa_pub).unwrap(), k.cert.key, "{}", k.name);
    }
    // EC in SEC1 via `openssl ec`: PEM, DER, and without the embedded public key.
    for k in [&p256_a, &p256_b, &p384, &ecparam] {
        let pem = openssl(&["ec", "-in", &s(&k.key)], None);
        assert_eq!(pem_label(&pem), ["EC PRIVATE KEY"]);
        check_private_key(
            &format!("{} SEC1 PEM", k.name),
            &pem,
            KeyFormat::Sec1,
            k,
            &all,
        );
        let der = openssl(&["ec", "-in", &s(&k.key), "-outform", "DER"], None);
        check_private_key(
            &format!("{} SEC1 DER", k.name),
            &der,
            KeyFormat::Sec1,
            k,
            &all,
        );
        let no_pub = openssl(&["ec", "-in", &s(&k.key), "-no_public"], None);
        check_private_key(
            &format!("{} SEC1 -no_public", k.name),
            &no_pub,
            KeyFormat::Sec1,
            k,
            &all,
        );
    }
}

fn check_csr(d: &Path, k: &KeyFixture) {
    let name = &k.name;
    let pem_path = d.join(format!("{name}.csr.pem"));
    openssl(
        &[
            "req",
            "-new",
            "-key",
            &s(&k.key),
            "-subj",
            "/O=Crosscheck/CN=csr.example",
            "-addext",
            "subjectAltName=DNS:csr.example,DNS:www.csr.example,IP:198.51.100.7,IP:2001:db8::7",
            "-out",
            &s(&pem_path),
        ],
        None,
    );
    let pem = read(&pem_path);
    assert_eq!(pem_label(&pem), ["CERTIFICATE REQUEST"]);
    let der = openssl(&["req", "-in", &s(&pem_path), "-outform", "DER"], None);

    let csr: CsrInfo = read_csr(&pem).unwrap_or_else(|e| panic!("{name} CSR: {e}"));
    assert_eq!(read_csr(&der).unwrap(), csr, "{name}: CSR PEM vs DER");
    match inspect_any(&pem).unwrap().as_slice() {
        [Object::Csr(c)] => assert_eq!(**c, csr),
        other => panic!("{name}: {other:?}"),
    }
    match inspect_any(&der).unwrap().as_slice() {
        [Object::Csr(c)] => assert_eq!(**c, csr),
        other => panic!("{name}: {other:?}"),
    }
    assert!(
        csr.signature_valid,
        "{name}: openssl's CSR self-signature must verify"
    );
    assert_eq!(csr.dns_names, ["csr.example", "www.csr.example"], "{name}");
    assert_eq!(
        csr.ip_addresses,
        [
            "198.51.100.7".parse::<IpAddr>().unwrap(),
            "2001:db8::7".parse().unwrap()
        ],
        "{name}"
    );
    assert!(
        csr.subject.contains("CN=csr.example"),
        "{name}: subject {}",
        csr.subject
    );
    assert_eq!(csr.key, k.cert.key, "{name}: CSR key");
    assert!(csr.key.same_public_key(&k.cert.key));
    // SANs and SPKI hash as openssl sees them.
    let text = openssl_text(&["req", "-in", &s(&pem_path), "-noout", "-text"], None);
    let san_line = text
        .lines()
        .skip_while(|l| !l.contains("X509v3 Subject Alternative Name"))
        .nth(1)
        .expect("SAN line");
    let (dns, ips) = parse_openssl_sans(san_line);
    assert_eq!(
        (csr.dns_names.clone(), csr.ip_addresses.clone()),
        (dns, ips),
        "{name}"
    );
    let pubkey = openssl(&["req", "-in", &s(&pem_path), "-noout", "-pubkey"], None);
    let spki = openssl(&["pkey", "-pubin", "-outform", "DER"], Some(&pubkey));
    assert_eq!(
        csr.spki_sha256,
        openssl_sha256(&spki),
        "{name}: CSR spki_sha256"
    );
    assert_eq!(csr.spki_sha256, k.cert.fingerprints.spki_sha256, "{name}");

    let openssl_verifies = |bytes: &[u8], label: &str| -> bool {
        let p = write(d, &format!("{name}.{label}.csr.der"), bytes);
        let out = openssl_output(
            &["req", "-in", &s(&p), "-inform", "DER", "-noout", "-verify"],
            None,
        );
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out.status.success() && all.contains("verify OK") && !all.contains("verify failure")
    };
    assert!(
        openssl_verifies(&der, "orig"),
        "{name}: openssl verifies the original"
    );

    // Tampered signature: flip a bit of the last byte (inside the signature value).
    let mut bad_sig = der.clone();
    *bad_sig.last_mut().unwrap() ^= 0x01;
    assert!(
        !openssl_verifies(&bad_sig, "badsig"),
        "{name}: openssl rejects the tampered signature"
    );
    match read_csr(&bad_sig) {
        Ok(c) => assert!(!c.signature_valid, "{name}: tampered signature verified"),
        Err(InspectError::Unparseable { .. }) => {}
        Err(e) => panic!("{name}: tampered signature gave {e:?}"),
    }
    // Tampered request info: the signature no longer covers it; the structure stays valid,
    // so this must parse and report an invalid signature.
    let at = der
        .windows(b"csr.example".len())
        .position(|w| w == b"csr.example")
        .expect("CN in DER");
    let mut bad_info = der.clone();
    bad_info[at] = b'x';
    assert!(
        !openssl_verifies(&bad_info, "badinfo"),
        "{name}: openssl rejects the tampered info"
    );
    let c = read_csr(&bad_info).unwrap_or_else(|e| panic!("{name}: tampered info: {e}"));
    assert!(!c.signature_valid, "{name}: tampered request info verified");
    assert!(
        c.subject.contains("CN=xsr.example"),
        "{name}: {}",
        c.subject
    );
}

#[test]
fn openssl_csrs_parse_and_verify() {
    let dir = tempdir();
    let d = dir.path();
    for k in [
        openssl_key(
            d,
            "csr-rsa",
            &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
        ),
        openssl_key(
            d,
            "csr-p256",
            &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
        ),
        openssl_key(
            d,
            "csr-p384",
            &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
        ),
        openssl_key(d, "csr-ed25519", &["-algorithm", "ed25519"]),
    ] {
        check_csr(d, &k);
    }
}

// ---------------------------------------------------------------------------------------------
// 4. Malformed input: typed errors, never a panic
// ---------------------------------------------------------------------------------------------

/// Every reader must answer `Unparseable` for these bytes.
fn all_unparseable(bytes: &[u8], ctx: &str) {
    expect_unparseable(
        inspect_certificates(bytes),
        &format!("{ctx}: inspect_certificates"),
    );
    expect_unparseable(
        inspect_certificate_der(bytes),
        &format!("{ctx}: inspect_certificate_der"),
    );
    expect_unparseable(read_private_key(bytes), &format!("{ctx}: read_private_key"));
    expect_unparseable(read_public_key(bytes), &format!("{ctx}: read_public_key"));
    expect_unparseable(read_csr(bytes), &format!("{ctx}: read_csr"));
    expect_unparseable(inspect_any(bytes), &format!("{ctx}: inspect_any"));
}

/// Deterministic xorshift64* bytes.
fn pseudo_random(len: usize, mut seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        seed ^= seed >> 12;
        seed ^= seed << 25;
        seed ^= seed >> 27;
        out.extend_from_slice(&seed.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

#[test]
fn empty_whitespace_and_random_input_are_unparseable() {
    for (ctx, bytes) in [
        ("empty", &b""[..]),
        ("whitespace", &b" \n\t\r\n  \n"[..]),
        ("text", &b"hello, this is not a certificate\n"[..]),
        ("lone BEGIN", &b"-----BEGIN CERTIFICATE-----\n"[..]),
        (
            "empty block",
            &b"-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"[..],
        ),
        (
            "bad base64",
            &b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n"[..],
        ),
    ] {
        all_unparseable(bytes, ctx);
    }
    // read_certificates only splits PEM (anything else is passed on as one DER blob), but an
    // empty file is already an error there.
    expect_unparseable(read_certificates(b""), "empty: read_certificates");
    expect_unparseable(read_certificates(b" \n\t"), "whitespace: read_certificates");
    let reason = expect_unparseable(inspect_certificates(b""), "empty");
    assert!(reason.contains("empty"), "{reason}");

    let dir = tempdir();
    const SIZE: usize = 50 * 1024 * 1024;
    let random = pseudo_random(SIZE, 0x9e37_79b9_7f4a_7c15);
    assert_eq!(random.len(), SIZE);
    all_unparseable(&random, "50 MB random");
    // The same bytes behind a DER SEQUENCE header that claims exactly their length, so that
    // the parsers have to descend into them.
    let mut framed = vec![0x30, 0x84];
    framed.extend_from_slice(&u32::try_from(SIZE).unwrap().to_be_bytes());
    framed.extend_from_slice(&random);
    all_unparseable(&framed, "50 MB random inside a SEQUENCE");
    // Random bytes base64-encoded by openssl inside PEM blocks of every label.
    let small = write(dir.path(), "random.bin", &random[..1 << 20]);
    let b64 = openssl_text(&["base64", "-e", "-in", &s(&small)], None);
    for label in [
        "CERTIFICATE",
        "PRIVATE KEY",
        "RSA PRIVATE KEY",
        "EC PRIVATE KEY",
        "PUBLIC KEY",
        "RSA PUBLIC KEY",
        "CERTIFICATE REQUEST",
    ] {
        let pem = format!("-----BEGIN {label}-----\n{b64}-----END {label}-----\n");
        let bytes = pem.as_bytes();
        let ctx = format!("random `{label}` PEM");
        expect_unparseable(inspect_any(bytes), &ctx);
        match label {
            "CERTIFICATE" => drop(expect_unparseable(inspect_certificates(bytes), &ctx)),
            "PUBLIC KEY" | "RSA PUBLIC KEY" => {
                drop(expect_unparseable(read_public_key(bytes), &ctx));
            }
            "CERTIFICATE REQUEST" => drop(expect_unparseable(read_csr(bytes), &ctx)),
            _ => drop(expect_unparseable(read_private_key(bytes), &ctx)),
        }
    }
}

#[test]
fn truncated_der_and_pem_are_unparseable() {
    let dir = tempdir();
    let d = dir.path();
    let key = d.join("k.pem");
    let crt = d.join("c.pem");
    openssl(
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &s(&key),
            "-out",
            &s(&crt),
            "-subj",
            "/CN=trunc.example",
            "-days",
            "2",
            "-addext",
            "subjectAltName=DNS:trunc.example",
        ],
        None,
    );
    let cert_der = openssl(&["x509", "-in", &s(&crt), "-outform", "DER"], None);
    let cert_pem = read(&crt);
    let key_der = openssl(
        &[
            "pkcs8",
            "-topk8",
            "-nocrypt",
            "-in",
            &s(&key),
            "-outform",
            "DER",
        ],
        None,
    );
    let pkcs1_der = openssl(
        &["rsa", "-in", &s(&key), "-traditional", "-outform", "DER"],
        None,
    );
    let csr_der = openssl(
        &[
            "req",
            "-new",
            "-key",
            &s(&key),
            "-subj",
            "/CN=trunc.example",
            "-outform",
            "DER",
        ],
        None,
    );
    let pub_der = openssl(
        &["pkey", "-in", &s(&key), "-pubout", "-outform", "DER"],
        None,
    );
    // Sanity: the whole objects read.
    inspect_certificates(&cert_der).unwrap();
    assert_eq!(read_private_key(&key_der).unwrap().format, KeyFormat::Pkcs8);
    assert_eq!(
        read_private_key(&pkcs1_der).unwrap().format,
        KeyFormat::Pkcs1
    );
    read_csr(&csr_der).unwrap();
    read_public_key(&pub_der).unwrap();

    let lengths = |len: usize| (0..len).step_by(7).chain([len - 1]);
    for n in lengths(cert_der.len()) {
        let cut = &cert_der[..n];
        let ctx = format!("certificate DER cut to {n} of {}", cert_der.len());
        expect_unparseable(inspect_certificates(cut), &ctx);
        expect_unparseable(inspect_certificate_der(cut), &ctx);
        expect_unparseable(inspect_any(cut), &ctx);
    }
    for (what, der) in [("PKCS#8", &key_der), ("PKCS#1", &pkcs1_der)] {
        for n in lengths(der.len()) {
            let ctx = format!("{what} DER cut to {n} of {}", der.len());
            expect_unparseable(read_private_key(&der[..n]), &ctx);
            expect_unparseable(inspect_any(&der[..n]), &ctx);
        }
    }
    for n in lengths(csr_der.len()) {
        let ctx = format!("CSR DER cut to {n} of {}", csr_der.len());
        expect_unparseable(read_csr(&csr_der[..n]), &ctx);
        expect_unparseable(inspect_any(&csr_der[..n]), &ctx);
    }
    for n in lengths(pub_der.len()) {
        let ctx = format!("SPKI DER cut to {n} of {}", pub_der.len());
        expect_unparseable(read_public_key(&pub_der[..n]), &ctx);
    }
    // PEM cut anywhere before its END line is complete. (Cutting only the final newline
    // leaves a complete, valid PEM.)
    let end = cert_pem.len() - 1;
    assert_eq!(cert_pem[end], b'\n');
    for n in (0..end).step_by(7).chain([end - 1]) {
        let ctx = format!("certificate PEM cut to {n} of {}", cert_pem.len());
        expect_unparseable(inspect_certificates(&cert_pem[..n]), &ctx);
        expect_unparseable(inspect_any(&cert_pem[..n]), &ctx);
    }
    assert_eq!(
        single(
            inspect_certificates(&cert_pem[..end]),
            "PEM without its final newline"
        ),
        single(inspect_certificates(&cert_der), "DER")
    );
    // Trailing garbage after a DER certificate.
    let mut trailing = cert_der.clone();
    trailing.extend_from_slice(&[0x00, 0x01]);
    let reason = expect_unparseable(inspect_certificates(&trailing), "trailing bytes");
    assert!(reason.contains("trailing"), "{reason}");
}

#[test]
fn wrong_pem_label_names_what_was_found() {
    let dir = tempdir();
    let d = dir.path();
    let key = d.join("k.pem");
    let crt = d.join("c.pem");
    openssl(
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &s(&key),
            "-out",
            &s(&crt),
            "-subj",
            "/CN=label.example",
            "-days",
            "2",
        ],
        None,
    );
    let key_pem = read(&key);
    let cert_pem = read(&crt);
    let pub_pem = openssl(&["pkey", "-in", &s(&key), "-pubout"], None);
    let csr_pem = openssl(
        &[
            "req",
            "-new",
            "-key",
            &s(&key),
            "-subj",
            "/CN=label.example",
        ],
        None,
    );
    let ecparam = d.join("ecparam.pem");
    openssl(
        &[
            "ecparam",
            "-genkey",
            "-name",
            "prime256v1",
            "-out",
            &s(&ecparam),
        ],
        None,
    );
    let ecparam = read(&ecparam);

    let cases: [(&str, String, &str); 8] = [
        (
            "key to inspect_certificates",
            expect_unparseable(inspect_certificates(&key_pem), "key as cert"),
            "found `PRIVATE KEY`",
        ),
        (
            "SEC1 key with parameters to inspect_certificates",
            expect_unparseable(inspect_certificates(&ecparam), "ecparam as cert"),
            "found `EC PARAMETERS, EC PRIVATE KEY`",
        ),
        (
            "public key to inspect_certificates",
            expect_unparseable(inspect_certificates(&pub_pem), "pub as cert"),
            "found `PUBLIC KEY`",
        ),
        (
            "certificate to read_private_key",
            expect_unparseable(read_private_key(&cert_pem), "cert as key"),
            "found `CERTIFICATE`",
        ),
        (
            "CSR to read_private_key",
            expect_unparseable(read_private_key(&csr_pem), "csr as key"),
            "found `CERTIFICATE REQUEST`",
        ),
        (
            "certificate to read_public_key",
            expect_unparseable(read_public_key(&cert_pem), "cert as public key"),
            "found `CERTIFICATE`",
        ),
        (
            "certificate to read_csr",
            expect_unparseable(read_csr(&cert_pem), "cert as csr"),
            "found `CERTIFICATE`",
        ),
        (
            "key to read_csr",
            expect_unparseable(read_csr(&key_pem), "key as csr"),
            "found `PRIVATE KEY`",
        ),
    ];
    for (ctx, reason, wanted) in cases {
        assert!(
            reason.contains(wanted),
            "{ctx}: {reason:?} should contain {wanted:?}"
        );
    }
    // The message an operator sees names the label too.
    let shown = inspect_certificates(&key_pem).unwrap_err().to_string();
    assert!(shown.starts_with("unparseable certificate:"), "{shown}");
    assert!(shown.contains("PRIVATE KEY"), "{shown}");
    // A PEM with only labels no reader knows is unparseable for inspect_any.
    let reason = expect_unparseable(
        inspect_any(b"-----BEGIN X509 CRL-----\nMAA=\n-----END X509 CRL-----\n"),
        "CRL",
    );
    assert!(reason.contains("X509 CRL"), "{reason}");
}

#[test]
fn encrypted_keys_are_reported_as_encrypted() {
    let dir = tempdir();
    let d = dir.path();
    let plain = d.join("plain.pem");
    openssl(
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            &s(&plain),
        ],
        None,
    );
    let ec = d.join("ec.pem");
    openssl(
        &["ecparam", "-genkey", "-name", "prime256v1", "-out", &s(&ec)],
        None,
    );

    // PKCS#8 EncryptedPrivateKeyInfo, written directly by genpkey.
    let pkcs8 = d.join("enc8.pem");
    openssl(
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-aes256",
            "-pass",
            "pass:x",
            "-out",
            &s(&pkcs8),
        ],
        None,
    );
    let pkcs8 = read(&pkcs8);
    assert_eq!(pem_label(&pkcs8), ["ENCRYPTED PRIVATE KEY"]);
    // Ed25519 and EC, encrypted PKCS#8 via `openssl pkcs8 -topk8`.
    let ed_enc = openssl(
        &[
            "genpkey",
            "-algorithm",
            "ed25519",
            "-aes-128-cbc",
            "-pass",
            "pass:x",
        ],
        None,
    );
    let ec_enc8 = openssl(
        &[
            "pkcs8",
            "-topk8",
            "-in",
            &s(&ec),
            "-v2",
            "aes256",
            "-passout",
            "pass:x",
        ],
        None,
    );
    // Legacy OpenSSL encryption: RFC 1421 headers inside `RSA/EC PRIVATE KEY`.
    let legacy_rsa = openssl(
        &[
            "rsa",
            "-in",
            &s(&plain),
            "-aes256",
            "-traditional",
            "-passout",
            "pass:x",
        ],
        None,
    );
    let legacy_ec = openssl(
        &["ec", "-in", &s(&ec), "-aes256", "-passout", "pass:x"],
        None,
    );
    for (bytes, label) in [
        (&legacy_rsa, "RSA PRIVATE KEY"),
        (&legacy_ec, "EC PRIVATE KEY"),
    ] {
        assert_eq!(pem_label(bytes), [label]);
        let text = String::from_utf8_lossy(bytes);
        assert!(
            text.contains("Proc-Type: 4,ENCRYPTED") && text.contains("DEK-Info:"),
            "{text}"
        );
    }

    // The DER form of an encrypted PKCS#8 key: an error, never a key. (EncryptedKey would be
    // right; see known_bug_encrypted_pkcs8_der_is_reported_as_encrypted.)
    let enc_der = openssl(
        &[
            "pkcs8",
            "-topk8",
            "-in",
            &s(&ec),
            "-v2",
            "aes256",
            "-passout",
            "pass:x",
            "-outform",
            "DER",
        ],
        None,
    );
    for r in [
        read_private_key(&enc_der).map(|_| ()),
        inspect_any(&enc_der).map(|_| ()),
    ] {
        assert!(
            matches!(
                r,
                Err(InspectError::EncryptedKey | InspectError::Unparseable { .. })
            ),
            "encrypted PKCS#8 DER: {r:?}"
        );
    }

    for (ctx, bytes) in [
        ("genpkey -aes256", &pkcs8),
        ("ed25519 -aes-128-cbc", &ed_enc),
        ("pkcs8 -topk8 EC", &ec_enc8),
        ("legacy rsa -aes256 -traditional", &legacy_rsa),
        ("legacy ec -aes256", &legacy_ec),
    ] {
        assert_eq!(
            read_private_key(bytes),
            Err(InspectError::EncryptedKey),
            "{ctx}"
        );
        assert_eq!(
            inspect_any(bytes),
            Err(InspectError::EncryptedKey),
            "{ctx}: inspect_any"
        );
        // Neither a certificate nor a public key.
        expect_unparseable(inspect_certificates(bytes), ctx);
        expect_unparseable(read_public_key(bytes), ctx);
        assert_eq!(InspectError::EncryptedKey.check_id(), "unparseable");
    }
    // The passphrase is right: openssl decrypts them back to the original key.
    let decrypted = openssl(
        &["rsa", "-passin", "pass:x", "-traditional"],
        Some(&legacy_rsa),
    );
    let original = read_private_key(&read(&plain)).unwrap();
    assert_eq!(
        read_private_key(&decrypted).unwrap().public,
        original.public
    );
}

// ---------------------------------------------------------------------------------------------
// Edge cases found by cross-checking: compressed EC points, encrypted PKCS#8 in DER, DER that
// contains PEM markers, and PEM after long text.
// ---------------------------------------------------------------------------------------------

/// A certificate whose SPKI carries a compressed point (legal, RFC 5480 §2.2) matches its own
/// private key, whose public point is derived uncompressed; no false "key does not match".
#[test]
fn edge_compressed_ec_point_matches_its_private_key() {
    let dir = tempdir();
    let d = dir.path();
    let plain = s(&d.join("plain.pem"));
    let compressed = s(&d.join("compressed.pem"));
    let crt = s(&d.join("compressed.crt"));
    openssl(
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            &plain,
        ],
        None,
    );
    openssl(
        &[
            "ec",
            "-in",
            &plain,
            "-conv_form",
            "compressed",
            "-out",
            &compressed,
        ],
        None,
    );
    openssl(
        &[
            "req",
            "-x509",
            "-key",
            &compressed,
            "-subj",
            "/CN=c.example",
            "-out",
            &crt,
        ],
        None,
    );
    let cert = single(inspect_certificates(&read(Path::new(&crt))), "compressed");
    let KeyInfo::Ec { point, .. } = &cert.key else {
        panic!("EC certificate expected")
    };
    assert!(
        matches!(point.first(), Some(2 | 3)),
        "precondition: the SPKI point is compressed"
    );
    let key = read_private_key(&read(Path::new(&compressed))).unwrap();
    assert!(
        key.public.same_public_key(&cert.key),
        "private key vs its own certificate"
    );
    let uncompressed_pub = openssl(&["pkey", "-in", &plain, "-pubout"], None);
    let public = read_public_key(&uncompressed_pub).unwrap();
    assert!(
        public.same_public_key(&cert.key),
        "uncompressed public key vs compressed SPKI"
    );
}

/// A DER `EncryptedPrivateKeyInfo` (`openssl pkcs8 -topk8 -outform DER`) is reported as
/// EncryptedKey, as its PEM form is.
#[test]
fn edge_encrypted_pkcs8_der_is_reported_as_encrypted() {
    let dir = tempdir();
    let key = s(&dir.path().join("k.pem"));
    openssl(
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            &key,
        ],
        None,
    );
    let der = openssl(
        &[
            "pkcs8", "-topk8", "-in", &key, "-v2", "aes256", "-passout", "pass:x", "-outform",
            "DER",
        ],
        None,
    );
    assert_eq!(read_private_key(&der), Err(InspectError::EncryptedKey));
    assert_eq!(inspect_any(&der), Err(InspectError::EncryptedKey));
}

/// A valid DER certificate whose bytes contain `-----BEGIN ` (here in an OU) is read as DER,
/// not taken for PEM.
#[test]
fn edge_der_certificate_containing_a_pem_marker() {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = CertificateParams::new(vec!["marker.example".to_string()]).unwrap();
    params.distinguished_name = dn("marker.example");
    params.distinguished_name.push(
        DnType::OrganizationalUnitName,
        "-----BEGIN CERTIFICATE-----",
    );
    let cert = params.self_signed(&key).unwrap();
    let dir = tempdir();
    let p = write(dir.path(), "marker.der", cert.der());
    openssl(&["x509", "-inform", "DER", "-in", &s(&p), "-noout"], None);
    let direct = inspect_certificate_der(cert.der()).unwrap();
    assert_eq!(
        single(inspect_certificates(cert.der()), "DER with marker"),
        direct
    );
    assert!(inspect_any(cert.der()).is_ok());
}

/// `openssl x509 -text` output with more than 64 KiB of text before the PEM block (a
/// certificate with many SANs) is still read as PEM.
#[test]
fn edge_long_text_before_the_pem_block() {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let names: Vec<String> = (0..3000)
        .map(|i| format!("host-{i}.many-names.example"))
        .collect();
    let cert = CertificateParams::new(names)
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let dir = tempdir();
    let p = write(dir.path(), "many.der", cert.der());
    let text = openssl(&["x509", "-inform", "DER", "-in", &s(&p), "-text"], None);
    let begin = text.windows(11).position(|w| w == b"-----BEGIN ").unwrap();
    assert!(
        begin > 64 * 1024,
        "precondition: the PEM block starts after 64 KiB ({begin})"
    );
    let info = single(inspect_certificates(&text), "x509 -text with 3000 SANs");
    assert_eq!(info.dns_names.len(), 3000);
}
