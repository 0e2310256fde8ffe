//! Certificate check tests. Validity and SAN fixtures are made by rcgen with explicit dates;
//! weak-signature fixtures by the `openssl` command line (OpenSSL 3 still signs with SHA-1
//! and MD5 at the default security level; rcgen cannot), all inspected through the
//! inventory crate as in production.

use std::path::Path;
use std::process::Command;

use certresponder_inventory::inspect::inspect_certificate_der;
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};

use super::*;

fn utc(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    date(y, m, d).unwrap()
}

fn to_time(t: DateTime<Utc>) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(t.timestamp()).unwrap()
}

fn rcgen_cert(not_before: DateTime<Utc>, not_after: DateTime<Utc>, sans: &[&str]) -> CertInfo {
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(sans.iter().map(|s| (*s).to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, "cert.test");
    params.not_before = to_time(not_before);
    params.not_after = to_time(not_after);
    let cert = params.self_signed(&key).unwrap();
    inspect_certificate_der(cert.der()).unwrap()
}

/// A certificate valid for exactly `days` days, inclusive (notAfter = notBefore + days − 1s).
fn valid_for(not_before: DateTime<Utc>, days: i64) -> CertInfo {
    rcgen_cert(
        not_before,
        not_before + Duration::days(days) - Duration::seconds(1),
        &["cert.test"],
    )
}

fn checks_of(findings: &[Finding]) -> Vec<&'static str> {
    findings.iter().map(|f| f.check).collect()
}

fn public(cert: &CertInfo, now: DateTime<Utc>) -> Vec<&'static str> {
    checks_of(&check_certificate(
        cert,
        Trust::Public,
        now,
        &CertPolicy::default(),
    ))
}

#[test]
fn validity_boundaries_of_every_br_rule() {
    // (notBefore, longest allowed, rule date reported when exceeded)
    let cases = [
        (utc(2026, 3, 14), 398, "2020-09-01"),
        (utc(2026, 3, 15), 200, "2026-03-15"),
        (utc(2026, 3, 16), 200, "2026-03-15"),
        (utc(2027, 3, 14), 200, "2026-03-15"),
        (utc(2027, 3, 15), 100, "2027-03-15"),
        (utc(2027, 3, 16), 100, "2027-03-15"),
        (utc(2029, 3, 14), 100, "2027-03-15"),
        (utc(2029, 3, 15), 47, "2029-03-15"),
        (utc(2029, 3, 16), 47, "2029-03-15"),
        (utc(2020, 8, 31), 825, "2018-03-01"),
        (utc(2020, 9, 1), 398, "2020-09-01"),
        (utc(2018, 2, 28), 1185, "2015-04-01"),
        (utc(2018, 3, 1), 825, "2018-03-01"),
    ];
    for (nb, max, rule) in cases {
        assert_eq!(
            check_validity(&valid_for(nb, max)),
            None,
            "{nb}: {max} days"
        );
        let f = check_validity(&valid_for(nb, max + 1)).expect("one day too long");
        assert_eq!(f.check, "validity_too_long");
        assert_eq!(f.confidence, Confidence::High);
        assert_eq!(f.evidence["validity_days"], max + 1, "{nb}");
        assert_eq!(f.evidence["maximum_days"], max, "{nb}");
        assert_eq!(f.evidence["rule_date"], rule, "{nb}");
    }
}

#[test]
fn validity_is_inclusive_to_the_second() {
    let nb = utc(2025, 1, 10);
    // notAfter = notBefore + 398 days is 398 days and one second, inclusive: too long.
    let cert = rcgen_cert(nb, nb + Duration::days(398), &["cert.test"]);
    let f = check_validity(&cert).expect("one second too long");
    assert_eq!(f.evidence["validity_days"], 399);
    assert_eq!(f.evidence["validity_seconds"], 398 * DAY + 1);
    // A 398-day certificate issued on the day the 200-day rule begins is too long.
    let f = check_validity(&valid_for(utc(2026, 3, 15), 398)).unwrap();
    assert_eq!(f.evidence["maximum_days"], 200);
    // Before the BRs had a limit there is nothing to check.
    assert_eq!(check_validity(&valid_for(utc(2011, 1, 1), 3650)), None);
}

#[test]
fn missing_san_for_public_entries_only() {
    let nb = Utc::now() - Duration::days(1);
    let na = nb + Duration::days(90);
    let now = Utc::now();
    let bare = rcgen_cert(nb, na, &[]);
    assert_eq!(public(&bare, now), vec!["missing_san"]);
    let f = check_san(&bare).unwrap();
    assert_eq!(f.evidence["subject_cns"], json!(["cert.test"]));
    assert_eq!(check_san(&rcgen_cert(nb, na, &["a.test"])), None);
    assert_eq!(check_san(&rcgen_cert(nb, na, &["192.0.2.7"])), None);
    let private = check_certificate(&bare, Trust::Private, now, &CertPolicy::default());
    assert_eq!(private, vec![]);
}

#[test]
fn expired_is_high_without_revocation() {
    let nb = utc(2024, 1, 1);
    let cert = valid_for(nb, 90);
    let now = utc(2024, 6, 1);
    for trust in [Trust::Public, Trust::Private] {
        let f = check_certificate(&cert, trust, now, &CertPolicy::default());
        assert_eq!(checks_of(&f), vec!["expired"]);
        assert_eq!(f[0].confidence, Confidence::High);
        assert_eq!(f[0].revocation_reason, None);
        assert_eq!(f[0].deadline_hours, None);
        assert_eq!(f[0].evidence["expired_days"], 62);
    }
    // Valid through the notAfter second itself.
    assert_eq!(
        check_expiry(&cert, cert.not_after, &CertPolicy::default()).map(|f| f.check),
        Some("expiring")
    );
}

#[test]
fn expiring_by_fraction_of_the_lifetime() {
    let policy = CertPolicy::default();
    let nb = utc(2025, 5, 1);
    let six = valid_for(nb, 6);
    let f = check_expiry(&six, six.not_after - Duration::days(1), &policy).unwrap();
    assert_eq!((f.check, f.confidence), ("expiring", Confidence::Medium));
    assert_eq!(f.revocation_reason, None);
    assert_eq!(check_expiry(&six, nb + Duration::days(1), &policy), None);
    let long = valid_for(nb, 398);
    let f = check_expiry(&long, long.not_after - Duration::days(100), &policy).unwrap();
    assert_eq!(f.check, "expiring");
    assert_eq!(f.evidence["days_left"], 100);
    assert_eq!(
        check_expiry(&long, long.not_after - Duration::days(200), &policy),
        None
    );
    // The boundary: the last third of 398 days is 132 days and 16 hours.
    let third = Duration::seconds((398 * DAY).div_euclid(3));
    assert!(check_expiry(&long, long.not_after - third, &policy).is_some());
    assert!(
        check_expiry(
            &long,
            long.not_after - third - Duration::seconds(1),
            &policy
        )
        .is_none()
    );
    // Silly fractions do not panic: NaN means the default, others are clamped.
    for f in [f64::NAN, f64::INFINITY, -1.0, 7.0] {
        let p = CertPolicy {
            expiring: Expiring::Fraction(f),
        };
        let _ = check_expiry(&long, nb, &p);
    }
    let all = CertPolicy {
        expiring: Expiring::Fraction(7.0),
    };
    assert!(check_expiry(&long, nb, &all).is_some());
}

#[test]
fn expiring_by_fixed_duration() {
    let policy = CertPolicy {
        expiring: Expiring::Fixed(Duration::days(30)),
    };
    let cert = valid_for(utc(2025, 1, 1), 398);
    let f = check_expiry(&cert, cert.not_after - Duration::days(29), &policy).unwrap();
    assert_eq!(f.evidence["rule"]["fixed_seconds"], 30 * DAY);
    assert_eq!(
        check_expiry(&cert, cert.not_after - Duration::days(31), &policy),
        None
    );
    // A 6-day certificate is always within 30 days of its end.
    let six = valid_for(utc(2025, 1, 1), 6);
    assert!(check_expiry(&six, utc(2025, 1, 1), &policy).is_some());
}

#[test]
fn good_certificates_have_no_findings() {
    let now = Utc::now();
    let cert = valid_for(now - Duration::days(1), 90);
    assert_eq!(cert.signature_algorithm_oid, "1.2.840.10045.4.3.2");
    assert_eq!(public(&cert, now), Vec::<&str>::new());
}

// ---------------------------------------------------------------------------------------
// Signature algorithms, with certificates made by openssl.

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl must be installed to run these tests");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A self-signed certificate with a SAN and a short validity, signed by `key` with the
/// extra `req` arguments (digest, signature options).
fn openssl_cert(dir: &Path, key: &str, extra: &[&str]) -> CertInfo {
    let mut args = vec![
        "req",
        "-x509",
        "-new",
        "-key",
        key,
        "-subj",
        "/CN=sig.test",
        "-addext",
        "subjectAltName=DNS:sig.test",
        "-days",
        "30",
        "-outform",
        "DER",
        "-out",
        "cert.der",
    ];
    args.extend_from_slice(extra);
    openssl(dir, &args);
    inspect_certificate_der(&std::fs::read(dir.join("cert.der")).unwrap()).unwrap()
}

fn keys(dir: &Path) {
    openssl(
        dir,
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "rsa.pem",
        ],
    );
    openssl(
        dir,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "ec.pem",
        ],
    );
}

fn sig_finding(cert: &CertInfo) -> Option<(String, String)> {
    check_signature_algorithm(cert).map(|f| {
        assert_eq!(f.check, "signature_algorithm_weak");
        assert_eq!(f.confidence, Confidence::High);
        assert_eq!(f.deadline_hours, Some(120));
        (
            f.evidence["reason"].as_str().unwrap().to_string(),
            f.evidence["hash"]
                .as_str()
                .or_else(|| f.evidence["detail"].as_str())
                .unwrap_or("")
                .to_string(),
        )
    })
}

#[test]
fn weak_and_permitted_signature_algorithms() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    keys(d);
    let weak = |reason: &str, hash: &str| Some((reason.to_string(), hash.to_string()));
    type Case<'a> = (&'a str, Vec<&'a str>, &'a str, Option<(String, String)>);
    let cases: Vec<Case<'_>> = vec![
        (
            "rsa.pem",
            vec!["-sha1"],
            "sha1WithRSAEncryption",
            weak("weak_hash", "SHA-1"),
        ),
        (
            "rsa.pem",
            vec!["-md5"],
            "md5WithRSAEncryption",
            weak("weak_hash", "MD5"),
        ),
        (
            "ec.pem",
            vec!["-sha1"],
            "ecdsa-with-SHA1",
            weak("weak_hash", "SHA-1"),
        ),
        (
            "rsa.pem",
            vec!["-sha224"],
            "sha224WithRSAEncryption",
            weak("not_permitted", ""),
        ),
        (
            "ec.pem",
            vec!["-sha224"],
            "ecdsa-with-SHA224",
            weak("not_permitted", ""),
        ),
        ("rsa.pem", vec!["-sha256"], "sha256WithRSAEncryption", None),
        ("rsa.pem", vec!["-sha384"], "sha384WithRSAEncryption", None),
        ("rsa.pem", vec!["-sha512"], "sha512WithRSAEncryption", None),
        ("ec.pem", vec!["-sha256"], "ecdsa-with-SHA256", None),
        ("ec.pem", vec!["-sha384"], "ecdsa-with-SHA384", None),
        ("ec.pem", vec!["-sha512"], "ecdsa-with-SHA512", None),
    ];
    for (key, extra, name, want) in cases {
        let cert = openssl_cert(d, key, &extra);
        let f = check_signature_algorithm(&cert);
        let named =
            cert.signature_algorithm == name || f.is_some_and(|f| f.evidence["algorithm"] == name);
        assert!(named, "{extra:?}: {}", cert.signature_algorithm);
        assert_eq!(sig_finding(&cert), want, "{name}");
        let now = Utc::now();
        let private = check_certificate(&cert, Trust::Private, now, &CertPolicy::default());
        assert_eq!(private, vec![], "private entries skip the BR rules: {name}");
        let expected: Vec<&str> = want.iter().map(|_| "signature_algorithm_weak").collect();
        assert_eq!(public(&cert, now), expected, "{name}");
    }
}

#[test]
fn rsassa_pss_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    keys(d);
    let pss = |digest: &'static str, salt: &'static str, mgf: Option<&'static str>| {
        let mut v = vec![digest, "-sigopt", "rsa_padding_mode:pss", "-sigopt", salt];
        if let Some(m) = mgf {
            v.extend_from_slice(&["-sigopt", m]);
        }
        v
    };
    let weak = |reason: &str, detail: &str| Some((reason.to_string(), detail.to_string()));
    let cases = vec![
        (pss("-sha256", "rsa_pss_saltlen:digest", None), None),
        (pss("-sha384", "rsa_pss_saltlen:digest", None), None),
        (pss("-sha512", "rsa_pss_saltlen:digest", None), None),
        (
            pss("-sha1", "rsa_pss_saltlen:digest", None),
            weak("weak_hash", "SHA-1"),
        ),
        (
            pss("-sha256", "rsa_pss_saltlen:max", None),
            weak(
                "pss_parameters",
                "salt length 222 where SHA-256 requires 32",
            ),
        ),
        (
            pss(
                "-sha256",
                "rsa_pss_saltlen:digest",
                Some("rsa_mgf1_md:sha1"),
            ),
            weak(
                "pss_parameters",
                "MGF1 uses SHA-1 while the signature hash is SHA-256",
            ),
        ),
        (
            pss("-sha384", "rsa_pss_saltlen:32", Some("rsa_mgf1_md:sha384")),
            weak("pss_parameters", "salt length 32 where SHA-384 requires 48"),
        ),
        (
            pss("-sha224", "rsa_pss_saltlen:digest", None),
            weak("not_permitted", ""),
        ),
    ];
    for (extra, want) in cases {
        let cert = openssl_cert(d, "rsa.pem", &extra);
        assert_eq!(cert.signature_algorithm_oid, OID_RSA_PSS);
        assert!(cert.signature_pss.is_some(), "{extra:?}");
        assert_eq!(sig_finding(&cert), want, "{extra:?}");
    }
}

#[test]
fn permitted_algorithms_in_a_non_br_encoding() {
    let now = Utc::now();
    let mut cert = valid_for(now - Duration::days(1), 30);
    // ecdsa-with-SHA256 with a NULL parameter, which the BRs forbid.
    cert.signature_algorithm_der = vec![
        0x30, 0x0c, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02, 0x05, 0x00,
    ];
    assert_eq!(sig_finding(&cert), Some(("encoding".into(), String::new())));
    // Anything unknown is not permitted, without a panic.
    cert.signature_algorithm_oid = "1.3.101.112".into();
    assert_eq!(sig_finding(&cert).unwrap().0, "not_permitted");
    cert.signature_algorithm_oid = OID_RSA_PSS.into();
    cert.signature_pss = None;
    assert_eq!(sig_finding(&cert).unwrap().0, "pss_parameters");
}

#[test]
fn ca_certificates_skip_subscriber_rules() {
    let now = Utc::now();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.not_before = to_time(now - Duration::days(1));
    params.not_after = to_time(now + Duration::days(3650));
    let cert = inspect_certificate_der(params.self_signed(&key).unwrap().der()).unwrap();
    assert!(cert.is_ca);
    assert_eq!(public(&cert, now), Vec::<&str>::new());
}
