//! End-to-end SCT checks on real certificates: an rcgen CA issues a leaf, CT log keys made
//! with aws-lc-rs sign the RFC 6962 §3.2 precert structure over the leaf's TBS, and the SCT
//! list is embedded in the leaf re-issued with the extension, as a CA does.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair, RSA_PKCS1_SHA256, RsaKeyPair,
};
use certresponder_inventory::inspect::{der, inspect_certificate_der};
use sha2::{Digest, Sha256};

use super::sct::{
    HASH_SHA256, SIG_ECDSA, SIG_RSA, embedded_scts, encode_sct_list, parse_sct_list,
    precert_signed_data,
};
use super::tbs::Tbs;
use super::*;
use crate::signals::Confidence;

const SCT_OID: &[u64] = &[1, 3, 6, 1, 4, 1, 11129, 2, 4, 2];

enum LogSigner {
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

struct Log {
    signer: LogSigner,
    spki: Vec<u8>,
}

impl Log {
    fn ec() -> Self {
        let k = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).unwrap();
        let spki = k.public_key().as_der().unwrap().as_ref().to_vec();
        Self {
            signer: LogSigner::Ec(k),
            spki,
        }
    }

    fn rsa() -> Self {
        let k = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
        let spki = k.public_key().as_der().unwrap().as_ref().to_vec();
        Self {
            signer: LogSigner::Rsa(k),
            spki,
        }
    }

    fn id(&self) -> [u8; 32] {
        Sha256::digest(&self.spki).into()
    }

    /// An SCT for the precertificate with `tbs` (CT extensions removed) under `issuer_spki`.
    fn sct(&self, timestamp: u64, issuer_spki: &[u8], tbs: &[u8]) -> Sct {
        let sig_alg = match self.signer {
            LogSigner::Ec(_) => SIG_ECDSA,
            LogSigner::Rsa(_) => SIG_RSA,
        };
        let mut sct = Sct {
            version: 0,
            log_id: self.id(),
            timestamp,
            extensions: Vec::new(),
            hash_alg: HASH_SHA256,
            sig_alg,
            signature: Vec::new(),
        };
        let issuer_key_hash: [u8; 32] = Sha256::digest(issuer_spki).into();
        let data = precert_signed_data(&sct, &issuer_key_hash, tbs);
        let rng = SystemRandom::new();
        sct.signature = match &self.signer {
            LogSigner::Ec(k) => k.sign(&rng, &data).unwrap().as_ref().to_vec(),
            LogSigner::Rsa(k) => {
                let mut sig = vec![0; k.public_modulus_len()];
                k.sign(&RSA_PKCS1_SHA256, &rng, &data, &mut sig).unwrap();
                sig
            }
        };
        sct
    }
}

struct Pki {
    issuer_der: Vec<u8>,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    leaf_key: rcgen::KeyPair,
    days: i64,
}

impl Pki {
    fn new(days: i64) -> Self {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "Test CT Issuing CA");
        let issuer_der = ca.self_signed(&ca_key).unwrap().der().to_vec();
        Self {
            issuer_der,
            issuer: rcgen::Issuer::new(ca, ca_key),
            leaf_key: rcgen::KeyPair::generate().unwrap(),
            days,
        }
    }

    fn issuer_spki(&self) -> Vec<u8> {
        Tbs::parse(&self.issuer_der).unwrap().spki().raw.to_vec()
    }

    /// The leaf, deterministic but for its signature, with an SCT list extension holding
    /// `sct_list` when given.
    fn leaf(&self, sct_list: Option<&[u8]>) -> Vec<u8> {
        let mut p = rcgen::CertificateParams::new(vec!["www.example.test".to_string()]).unwrap();
        p.serial_number = Some(rcgen::SerialNumber::from(vec![0x01, 0x23, 0x45]));
        p.not_before = rcgen::date_time_ymd(2026, 1, 1);
        p.not_after = p.not_before + time::Duration::days(self.days);
        if let Some(list) = sct_list {
            p.custom_extensions
                .push(rcgen::CustomExtension::from_oid_content(
                    SCT_OID,
                    der::encode(der::TAG_OCTET_STRING, list),
                ));
        }
        p.signed_by(&self.leaf_key, &self.issuer)
            .unwrap()
            .der()
            .to_vec()
    }

    /// The precert TBS the logs sign: the leaf's TBS without the SCT list.
    fn precert_tbs(&self) -> Vec<u8> {
        let with_dummy = self.leaf(Some(&encode_sct_list(&[])));
        let stripped = Tbs::parse(&with_dummy).unwrap().without_ct_extensions();
        // Cross-check the stripping against a leaf made without the extension at all.
        let plain = self.leaf(None);
        assert_eq!(stripped, Tbs::parse(&plain).unwrap().raw);
        stripped
    }

    /// The final certificate with SCTs from `logs`.
    fn certificate(&self, logs: &[&Log]) -> Vec<u8> {
        let tbs = self.precert_tbs();
        let spki = self.issuer_spki();
        let scts: Vec<Sct> = logs
            .iter()
            .enumerate()
            .map(|(i, l)| l.sct(1_767_225_600_000 + i as u64, &spki, &tbs))
            .collect();
        self.leaf(Some(&encode_sct_list(&scts)))
    }
}

fn keys(logs: &[&Log]) -> LogKeys {
    let mut k = LogKeys::new();
    for l in logs {
        assert_eq!(k.add_spki(&l.spki).unwrap(), l.id());
    }
    k
}

fn statuses(r: &SctReport) -> Vec<&SctStatus> {
    r.scts.iter().map(|v| &v.status).collect()
}

#[test]
fn two_valid_scts_suffice_for_90_days() {
    let (a, b) = (Log::ec(), Log::ec());
    let pki = Pki::new(90);
    let cert = pki.certificate(&[&a, &b]);
    let report = check_scts(&cert, &pki.issuer_der, &keys(&[&a, &b])).unwrap();
    assert_eq!(statuses(&report), [&SctStatus::Valid, &SctStatus::Valid]);
    assert_eq!((report.valid_logs, report.required), (2, 2));
    assert!(report.finding().is_none());
}

#[test]
fn the_valid_scts_must_come_from_two_log_operators() {
    let (a, b, c) = (Log::ec(), Log::ec(), Log::rsa());
    let pki = Pki::new(90);
    let cert = pki.certificate(&[&a, &b]);
    let mut same = LogKeys::new();
    same.add_operated(&a.spki, Some("Example CT")).unwrap();
    same.add_operated(&b.spki, Some(" example ct ")).unwrap();
    let report = check_scts(&cert, &pki.issuer_der, &same).unwrap();
    assert_eq!((report.valid_logs, report.valid_operators), (2, 1));
    let finding = report.finding().expect("one operator is not enough");
    assert!(
        finding.message.contains("1 log operator"),
        "{}",
        finding.message
    );
    assert_eq!(finding.evidence["valid_operators"], 1);
    assert_eq!(finding.evidence["required_operators"], 2);

    let mut two = LogKeys::new();
    two.add_operated(&a.spki, Some("Example CT")).unwrap();
    two.add_operated(&b.spki, Some("Other CT")).unwrap();
    let report = check_scts(&cert, &pki.issuer_der, &two).unwrap();
    assert_eq!(report.valid_operators, 2);
    assert!(report.finding().is_none());

    // A log without a configured operator counts as its own.
    let mut unnamed = LogKeys::new();
    unnamed.add_operated(&a.spki, Some("Example CT")).unwrap();
    unnamed.add_operated(&b.spki, None).unwrap();
    unnamed.add_operated(&c.spki, Some("Example CT")).unwrap();
    let report = check_scts(&cert, &pki.issuer_der, &unnamed).unwrap();
    assert_eq!(report.valid_operators, 2);
    assert!(report.finding().is_none());
}

fn listed(
    operator: &str,
    rfc6962: bool,
    state: Option<(crate::ct::loglist::ListedState, &str)>,
) -> LogMeta {
    LogMeta {
        operator: Some(operator.into()),
        rfc6962,
        state: state.map(|(s, t)| (s, t.parse().unwrap())),
    }
}

#[test]
fn log_states_and_types_from_a_log_list_decide_what_counts() {
    use crate::ct::loglist::ListedState::{Rejected, Retired, Usable};
    let (a, b) = (Log::ec(), Log::ec());
    let pki = Pki::new(90);
    // Both SCTs are from 2026-01-01.
    let cert = pki.certificate(&[&a, &b]);
    let judge = |meta_b: LogMeta| {
        let mut logs = LogKeys::new();
        logs.add_log(
            &a.spki,
            listed("One", true, Some((Usable, "2025-01-01T00:00:00Z"))),
        )
        .unwrap();
        logs.add_log(&b.spki, meta_b).unwrap();
        check_scts(&cert, &pki.issuer_der, &logs).unwrap()
    };

    // Retired after the SCT was issued: it counts.
    let r = judge(listed("Two", true, Some((Retired, "2026-06-01T00:00:00Z"))));
    assert_eq!(statuses(&r), [&SctStatus::Valid, &SctStatus::Valid]);
    assert!(r.finding().is_none());

    // Retired before: it does not.
    let r = judge(listed("Two", true, Some((Retired, "2025-06-01T00:00:00Z"))));
    assert!(
        matches!(r.scts[1].status, SctStatus::NotAcceptable(ref why) if why.contains("retired"))
    );
    assert_eq!(r.valid_logs, 1);
    let f = r.finding().unwrap();
    assert_eq!(f.evidence["scts"][1]["status"], "not_acceptable");

    // Rejected: never.
    let r = judge(listed(
        "Two",
        true,
        Some((Rejected, "2025-06-01T00:00:00Z")),
    ));
    assert!(
        matches!(r.scts[1].status, SctStatus::NotAcceptable(ref why) if why.contains("rejected"))
    );
    assert!(r.finding().is_some());

    // Both from static-ct-api logs: none from an RFC 6962 log.
    let mut logs = LogKeys::new();
    logs.add_log(&a.spki, listed("One", false, None)).unwrap();
    logs.add_log(&b.spki, listed("Two", false, None)).unwrap();
    let r = check_scts(&cert, &pki.issuer_der, &logs).unwrap();
    assert_eq!((r.valid_logs, r.valid_operators, r.rfc6962_logs), (2, 2, 0));
    let f = r.finding().unwrap();
    assert!(f.message.contains("RFC 6962"), "{}", f.message);

    // A [[ct_log]] table for a listed log keeps the list's operator and state.
    let mut logs = LogKeys::new();
    logs.add_log(&a.spki, listed("One", true, None)).unwrap();
    logs.add_log(
        &b.spki,
        listed("One", true, Some((Rejected, "2025-06-01T00:00:00Z"))),
    )
    .unwrap();
    logs.add_log(&b.spki, LogMeta::default()).unwrap();
    let r = check_scts(&cert, &pki.issuer_der, &logs).unwrap();
    assert!(matches!(r.scts[1].status, SctStatus::NotAcceptable(_)));
}

#[test]
fn long_lived_certificates_need_three() {
    let (a, b, c) = (Log::ec(), Log::ec(), Log::rsa());
    let pki = Pki::new(365);
    let two = pki.certificate(&[&a, &b]);
    let logs = keys(&[&a, &b, &c]);
    let report = check_scts(&two, &pki.issuer_der, &logs).unwrap();
    assert_eq!((report.valid_logs, report.required), (2, 3));
    let finding = report.finding().unwrap();
    assert_eq!(finding.check, "sct_insufficient");
    assert_eq!(finding.confidence, Confidence::Medium);
    assert_eq!(finding.revocation_reason, None);
    assert_eq!(finding.evidence["required"], 3);

    // Three logs, one of them RSA, meet the policy.
    let three = pki.certificate(&[&a, &b, &c]);
    let report = check_scts(&three, &pki.issuer_der, &logs).unwrap();
    assert_eq!(report.valid_logs, 3);
    assert!(report.finding().is_none());
}

#[test]
fn invalid_and_unknown_scts_do_not_count() {
    let (a, b, unknown) = (Log::ec(), Log::ec(), Log::ec());
    let pki = Pki::new(90);
    let tbs = pki.precert_tbs();
    let spki = pki.issuer_spki();
    let good = a.sct(1_767_225_600_000, &spki, &tbs);
    // b signs a different TBS: a valid signature, but not over this certificate.
    let mut other_tbs = tbs.clone();
    let last = other_tbs.len() - 1;
    other_tbs[last] ^= 1;
    let wrong = b.sct(1_767_225_600_000, &spki, &other_tbs);
    // A tampered timestamp breaks the signature too.
    let mut tampered = a.sct(1_767_225_600_000, &spki, &tbs);
    tampered.timestamp += 1;
    let stranger = unknown.sct(1_767_225_600_000, &spki, &tbs);
    let cert = pki.leaf(Some(&encode_sct_list(&[
        good.clone(),
        wrong,
        tampered,
        stranger,
        good,
    ])));

    let report = check_scts(&cert, &pki.issuer_der, &keys(&[&a, &b])).unwrap();
    let bad = SctStatus::Invalid("bad signature".into());
    assert_eq!(
        statuses(&report),
        [
            &SctStatus::Valid,
            &bad,
            &bad,
            &SctStatus::UnknownLog,
            &SctStatus::Valid
        ]
    );
    // Two valid SCTs, but from the same log.
    assert_eq!(report.valid_logs, 1);
    let finding = report.finding().unwrap();
    let listed: Vec<&str> = finding.evidence["scts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        listed,
        ["valid", "invalid", "invalid", "unknown_log", "valid"]
    );
    assert_eq!(
        finding.evidence["scts"][3]["log_id"],
        hex::encode(unknown.id())
    );
}

#[test]
fn the_wrong_issuer_invalidates_every_sct() {
    let a = Log::ec();
    let pki = Pki::new(90);
    let cert = pki.certificate(&[&a]);
    let other = Pki::new(90);
    let report = check_scts(&cert, &other.issuer_der, &keys(&[&a])).unwrap();
    assert!(matches!(report.scts[0].status, SctStatus::Invalid(_)));
}

#[test]
fn no_scts_is_insufficient() {
    let pki = Pki::new(90);
    let cert = pki.leaf(None);
    let report = check_scts(&cert, &pki.issuer_der, &LogKeys::new()).unwrap();
    assert!(report.scts.is_empty());
    assert!(report.finding().is_some());
}

#[test]
fn our_encoding_agrees_with_x509_parser() {
    let (a, b) = (Log::ec(), Log::rsa());
    let pki = Pki::new(90);
    let cert = pki.certificate(&[&a, &b]);
    let info = inspect_certificate_der(&cert).unwrap();
    let ours = embedded_scts(&cert).unwrap();
    assert_eq!(info.scts.len(), 2);
    for (theirs, ours) in info.scts.iter().zip(&ours) {
        assert_eq!(theirs.log_id, hex::encode(ours.log_id));
        assert_eq!(Some(theirs.timestamp), ours.time());
        assert_eq!(theirs.signature, ours.signature);
    }
    // The TBS we sign hashes to the inventory's RFC 6962 TBS fingerprint.
    let tbs = Tbs::parse(&cert).unwrap().without_ct_extensions();
    assert_eq!(
        info.fingerprints.tbs_sha256,
        hex::encode(Sha256::digest(&tbs))
    );
}

#[test]
fn malformed_sct_lists_are_errors() {
    assert!(parse_sct_list(&[]).is_err());
    assert!(parse_sct_list(&[0x00, 0x03, 0x00, 0x05, 0x00]).is_err());
    assert!(parse_sct_list(&[0x00, 0x00, 0x00]).is_err());
    assert_eq!(parse_sct_list(&[0x00, 0x00]).unwrap(), []);
    let pki = Pki::new(90);
    let cert = pki.leaf(Some(&[0x00, 0x05, 0x01]));
    assert!(matches!(
        check_scts(&cert, &pki.issuer_der, &LogKeys::new()),
        Err(SctError::SctList(_))
    ));
}

#[test]
fn log_keys_must_be_p256_or_rsa() {
    let ed = aws_lc_rs::signature::Ed25519KeyPair::generate().unwrap();
    let spki = ed.public_key().as_der().unwrap().as_ref().to_vec();
    assert!(LogKeys::new().add_spki(&spki).is_err());
    assert!(LogKeys::new().add_spki(b"junk").is_err());
}

#[test]
fn required_count_boundary() {
    let start = chrono::DateTime::from_timestamp(1_767_225_600, 0).unwrap();
    let day = chrono::Duration::days(1);
    assert_eq!(sct::required_scts(start, start + day * 180), 2);
    assert_eq!(sct::required_scts(start, start + day * 181), 3);
}
