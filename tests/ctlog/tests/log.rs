//! End-to-end: starts the test log as a process, submits chains, and checks everything it
//! serves with an independent verifier written here (not the log's own code).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failure should panic

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rcgen::{BasicConstraints, CertificateParams, CustomExtension, DnType, IsCa, Issuer, KeyPair};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

type Hash = [u8; 32];

/// The log process, killed on drop.
struct LogProc {
    child: Child,
    info: Value,
    host: String,
}

impl Drop for LogProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &Path, extra: &[&str]) -> LogProc {
    let mut child = Command::new(env!("CARGO_BIN_EXE_certresponder-test-ctlog"))
        .args(["--listen", "127.0.0.1:0", "--dir"])
        .arg(dir)
        .args(extra)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let info: Value = serde_json::from_str(&line).unwrap();
    let host = info["url"]
        .as_str()
        .unwrap()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    LogProc { child, info, host }
}

impl LogProc {
    fn request(&self, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
        let mut s = TcpStream::connect(&self.host).unwrap();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            self.host,
            body.len()
        )
        .unwrap();
        s.write_all(body).unwrap();
        let mut resp = Vec::new();
        s.read_to_end(&mut resp).unwrap();
        let split = resp.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8_lossy(&resp[..split]).to_string();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        (status, resp[split + 4..].to_vec())
    }

    fn get(&self, path: &str) -> (u16, Vec<u8>) {
        self.request("GET", path, b"")
    }

    fn get_json(&self, path: &str) -> Value {
        let (status, body) = self.get(path);
        assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
        serde_json::from_slice(&body).unwrap()
    }

    fn add(&self, endpoint: &str, chain: &[&[u8]]) -> (u16, Value) {
        let body = json!({"chain": chain.iter().map(|c| STANDARD.encode(c)).collect::<Vec<_>>()});
        let (status, resp) = self.request(
            "POST",
            &format!("/ct/v1/{endpoint}"),
            body.to_string().as_bytes(),
        );
        (status, serde_json::from_slice(&resp).unwrap_or(Value::Null))
    }

    fn public_key(&self) -> UnparsedPublicKey<Vec<u8>> {
        let spki = b64(&self.info["public_key_der"]);
        // A P-256 SPKI ends with the 65-byte uncompressed point.
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, spki[spki.len() - 65..].to_vec())
    }
}

fn b64(v: &Value) -> Vec<u8> {
    STANDARD.decode(v.as_str().unwrap()).unwrap()
}

fn h(parts: &[&[u8]]) -> Hash {
    let mut d = Sha256::new();
    for p in parts {
        d.update(p);
    }
    d.finalize().into()
}

fn mth(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => h(&[]),
        1 => leaves[0],
        n => {
            let k = 1 << (usize::BITS - 1 - (n - 1).leading_zeros());
            h(&[&[1], &mth(&leaves[..k]), &mth(&leaves[k..])])
        }
    }
}

/// RFC 9162 §2.1.3.2.
fn verify_inclusion(index: u64, size: u64, leaf: Hash, path: &[Hash], root: Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut fn_, mut sn, mut r) = (index, size - 1, leaf);
    for p in path {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = h(&[&[1], p, &r]);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            r = h(&[&[1], &r, p]);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    sn == 0 && r == root
}

/// RFC 9162 §2.1.4.2.
fn verify_consistency(first: u64, second: u64, r1: Hash, r2: Hash, proof: &[Hash]) -> bool {
    if first == second {
        return proof.is_empty() && r1 == r2;
    }
    if first == 0 || first > second {
        return first == 0 && proof.is_empty();
    }
    let mut path = proof.to_vec();
    if first.is_power_of_two() {
        path.insert(0, r1);
    }
    let (mut fn_, mut sn) = (first - 1, second - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let Some((&start, rest)) = path.split_first() else {
        return false;
    };
    let (mut fr, mut sr) = (start, start);
    for c in rest {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = h(&[&[1], c, &fr]);
            sr = h(&[&[1], c, &sr]);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            sr = h(&[&[1], &sr, c]);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    fr == r1 && sr == r2 && sn == 0
}

fn hashes(v: &Value) -> Vec<Hash> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| b64(x).try_into().unwrap())
        .collect()
}

fn u24(n: usize) -> [u8; 3] {
    let b = (n as u32).to_be_bytes();
    [b[1], b[2], b[3]]
}

/// Checks an STH's signature and returns (size, root).
/// Verifies a precertificate SCT (RFC 6962 §3.2): signed over the final certificate's TBS
/// and the SHA-256 of the final issuer's SubjectPublicKeyInfo.
fn verify_precert_sct(
    log: &LogProc,
    sct: &Value,
    final_der: &[u8],
    issuer_der: &[u8],
) -> Result<(), aws_lc_rs::error::Unspecified> {
    let (_, parsed) = x509_parser::parse_x509_certificate(final_der).unwrap();
    let final_tbs = parsed.tbs_certificate.as_ref();
    let (_, issuer) = x509_parser::parse_x509_certificate(issuer_der).unwrap();
    let ikh = h(&[issuer.tbs_certificate.subject_pki.raw]);
    let ext = b64(&sct["extensions"]);
    let mut msg = vec![0u8, 0];
    msg.extend_from_slice(&sct["timestamp"].as_u64().unwrap().to_be_bytes());
    msg.extend_from_slice(&[0, 1]);
    msg.extend_from_slice(&ikh);
    msg.extend_from_slice(&u24(final_tbs.len()));
    msg.extend_from_slice(final_tbs);
    msg.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    msg.extend_from_slice(&ext);
    log.public_key().verify(&msg, &b64(&sct["signature"])[4..])
}

fn check_sth(log: &LogProc, sth: &Value) -> Result<(u64, Hash), String> {
    let size = sth["tree_size"].as_u64().unwrap();
    let ts = sth["timestamp"].as_u64().unwrap();
    let root: Hash = b64(&sth["sha256_root_hash"]).try_into().unwrap();
    let sig = b64(&sth["tree_head_signature"]);
    assert_eq!(&sig[..2], &[4, 3], "SHA-256 / ECDSA");
    let mut msg = vec![0u8, 1];
    msg.extend_from_slice(&ts.to_be_bytes());
    msg.extend_from_slice(&size.to_be_bytes());
    msg.extend_from_slice(&root);
    log.public_key()
        .verify(&msg, &sig[4..])
        .map_err(|_| "bad STH signature".to_string())?;
    Ok((size, root))
}

struct Pki {
    root_der: Vec<u8>,
    root_pem: String,
    issuer: Issuer<'static, KeyPair>,
    leaf_key: KeyPair,
}

fn pki() -> Pki {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name
        .push(DnType::CommonName, "ctlog test root");
    let root = p.self_signed(&key).unwrap();
    Pki {
        root_der: root.der().to_vec(),
        root_pem: root.pem(),
        issuer: Issuer::new(p, key),
        leaf_key: KeyPair::generate().unwrap(),
    }
}

fn leaf_params(name: &str, serial: u8) -> CertificateParams {
    let mut p = CertificateParams::new(vec![name.to_string()]).unwrap();
    p.serial_number = Some(vec![serial].into());
    p
}

fn poison() -> CustomExtension {
    let mut e = CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 11129, 2, 4, 3], vec![5, 0]);
    e.set_criticality(true);
    e
}

#[test]
fn rfc6962_and_static_views_agree_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki();
    let roots = dir.path().join("roots.pem");
    std::fs::write(&roots, &pki.root_pem).unwrap();
    let logdir = dir.path().join("log");
    let log = start(&logdir, &["--roots", roots.to_str().unwrap()]);
    let log_id = b64(&log.info["log_id"]);
    assert_eq!(log_id, h(&[&b64(&log.info["public_key_der"])]).to_vec());

    // add-chain: the log completes the chain with the root and signs an SCT over the leaf.
    let leaf = leaf_params("a.example.test", 1)
        .signed_by(&pki.leaf_key, &pki.issuer)
        .unwrap();
    let (status, sct) = log.add("add-chain", &[leaf.der()]);
    assert_eq!(status, 200, "{sct}");
    assert_eq!(b64(&sct["id"]), log_id);
    let ext = b64(&sct["extensions"]);
    assert_eq!(ext, vec![0, 0, 5, 0, 0, 0, 0, 0], "leaf_index 0");
    let mut msg = vec![0u8, 0];
    msg.extend_from_slice(&sct["timestamp"].as_u64().unwrap().to_be_bytes());
    msg.extend_from_slice(&[0, 0]);
    msg.extend_from_slice(&u24(leaf.der().len()));
    msg.extend_from_slice(leaf.der());
    msg.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    msg.extend_from_slice(&ext);
    log.public_key()
        .verify(&msg, &b64(&sct["signature"])[4..])
        .expect("x509 SCT verifies");

    // add-pre-chain: the SCT covers the TBS of the final certificate, i.e. without the poison.
    let mut pp = leaf_params("b.example.test", 2);
    let final_cert = pp.signed_by(&pki.leaf_key, &pki.issuer).unwrap();
    pp.custom_extensions.push(poison());
    let precert = pp.signed_by(&pki.leaf_key, &pki.issuer).unwrap();
    let (status, sct) = log.add("add-pre-chain", &[precert.der(), &pki.root_der]);
    assert_eq!(status, 200, "{sct}");
    verify_precert_sct(&log, &sct, final_cert.der(), &pki.root_der)
        .expect("precert SCT verifies over the poison-free TBS");

    // Wrong submissions are refused.
    let stranger = pki_leaf_from_other_root();
    assert_eq!(log.add("add-chain", &[&stranger]).0, 400, "untrusted root");
    assert_eq!(
        log.add("add-chain", &[precert.der()]).0,
        400,
        "precert via add-chain"
    );
    assert_eq!(
        log.add("add-pre-chain", &[leaf.der(), &pki.root_der]).0,
        400,
        "no poison"
    );
    let roots = log.get_json("/ct/v1/get-roots");
    assert_eq!(b64(&roots["certificates"][0]), pki.root_der);

    // More entries, so proofs have some depth.
    for i in 0..9u8 {
        let c = leaf_params(&format!("c{i}.example.test"), 10 + i)
            .signed_by(&pki.leaf_key, &pki.issuer)
            .unwrap();
        assert_eq!(log.add("add-chain", &[c.der(), &pki.root_der]).0, 200);
    }

    let sth = log.get_json("/ct/v1/get-sth");
    let (size, root) = check_sth(&log, &sth).unwrap();
    assert_eq!(size, 11);

    // Entries: recompute the root from what get-entries returns.
    let entries = log.get_json("/ct/v1/get-entries?start=0&end=100")["entries"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(entries.len(), 11);
    let leaves: Vec<Vec<u8>> = entries.iter().map(|e| b64(&e["leaf_input"])).collect();
    let leaf_hashes: Vec<Hash> = leaves.iter().map(|l| h(&[&[0], l])).collect();
    assert_eq!(mth(&leaf_hashes), root);
    assert_eq!((leaves[0][10], leaves[0][11]), (0, 0), "x509 entry");
    assert_eq!((leaves[1][10], leaves[1][11]), (0, 1), "precert entry");
    let extra0 = b64(&entries[0]["extra_data"]);
    assert_eq!(
        &extra0[6..],
        &pki.root_der[..],
        "chain completed with the root"
    );
    let extra1 = b64(&entries[1]["extra_data"]);
    assert_eq!(&extra1[3..3 + precert.der().len()], &precert.der()[..]);

    // Inclusion proofs for every leaf, at several tree sizes.
    for s in 1..=size {
        let r = mth(&leaf_hashes[..s as usize]);
        for (i, lh) in leaf_hashes.iter().enumerate().take(s as usize) {
            let hash = STANDARD
                .encode(lh)
                .replace('+', "%2B")
                .replace('/', "%2F")
                .replace('=', "%3D");
            let p = log.get_json(&format!(
                "/ct/v1/get-proof-by-hash?hash={hash}&tree_size={s}"
            ));
            assert_eq!(p["leaf_index"].as_u64().unwrap(), i as u64);
            assert!(
                verify_inclusion(i as u64, s, *lh, &hashes(&p["audit_path"]), r),
                "leaf {i} in {s}"
            );
        }
    }
    // Consistency proofs for every pair of sizes.
    for a in 0..=size {
        for b in a..=size {
            let p = log.get_json(&format!("/ct/v1/get-sth-consistency?first={a}&second={b}"));
            let (ra, rb) = (
                mth(&leaf_hashes[..a as usize]),
                mth(&leaf_hashes[..b as usize]),
            );
            assert!(
                verify_consistency(a, b, ra, rb, &hashes(&p["consistency"])),
                "{a} -> {b}"
            );
        }
    }
    let e = log.get_json("/ct/v1/get-entry-and-proof?leaf_index=3&tree_size=11");
    assert_eq!(b64(&e["leaf_input"]), leaves[3]);
    assert!(verify_inclusion(
        3,
        11,
        leaf_hashes[3],
        &hashes(&e["audit_path"]),
        root
    ));

    // Checkpoint: same tree, RFC6962NoteSignature by the same key.
    let (status, cp) = log.get("/static/checkpoint");
    assert_eq!(status, 200);
    let cp = String::from_utf8(cp).unwrap();
    let origin = log.info["origin"].as_str().unwrap();
    let (body, sigs) = cp.split_once("\n\n").unwrap();
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines, [origin, "11", STANDARD.encode(root).as_str()]);
    let sig_line = sigs.strip_suffix('\n').unwrap();
    let rest = sig_line.strip_prefix("\u{2014} ").unwrap();
    let (name, sig) = rest.split_once(' ').unwrap();
    assert_eq!(name, origin);
    let sig = STANDARD.decode(sig).unwrap();
    assert_eq!(
        &sig[..4],
        &h(&[origin.as_bytes(), &[0x0a, 0x05], &log_id])[..4]
    );
    let ts = u64::from_be_bytes(sig[4..12].try_into().unwrap());
    let as_sth = json!({"tree_size": 11, "timestamp": ts, "sha256_root_hash": STANDARD.encode(root),
        "tree_head_signature": STANDARD.encode(&sig[12..])});
    check_sth(&log, &as_sth).expect("checkpoint signature is a valid STH signature");

    // Hash tiles and data tiles agree with get-entries.
    assert_eq!(log.get("/static/tile/0/000").0, 404, "no full tile yet");
    let (status, tile) = log.get("/static/tile/0/000.p/11");
    assert_eq!(status, 200);
    assert_eq!(tile, leaf_hashes.concat());
    let (status, data) = log.get("/static/tile/data/000.p/11");
    assert_eq!(status, 200);
    let mut d = &data[..];
    let root_fp = h(&[&pki.root_der]);
    for (i, leaf_input) in leaves.iter().enumerate() {
        let te = &leaf_input[2..];
        assert_eq!(&d[..te.len()], te, "TimestampedEntry {i}");
        d = &d[te.len()..];
        if i == 1 {
            let n = u32::from_be_bytes([0, d[0], d[1], d[2]]) as usize;
            assert_eq!(&d[3..3 + n], &precert.der()[..]);
            d = &d[3 + n..];
        }
        assert_eq!(&d[..2], &[0, 32]);
        assert_eq!(&d[2..34], &root_fp);
        d = &d[34..];
    }
    assert!(d.is_empty());
    let (status, issuer) = log.get(&format!("/static/issuer/{}", hex::encode(root_fp)));
    assert_eq!(status, 200);
    assert_eq!(issuer, pki.root_der);

    // A restart keeps the key and the log.
    let key_path = log.info["key_pem_path"].clone();
    drop(log);
    let log = start(&logdir, &[]);
    assert_eq!(log.info["key_pem_path"], key_path);
    assert_eq!(b64(&log.info["log_id"]), log_id);
    let (size2, root2) = check_sth(&log, &log.get_json("/ct/v1/get-sth")).unwrap();
    assert_eq!((size2, root2), (size, root));
    drop(log);

    // Faults.
    let log = start(&logdir, &["--fault", "wrong-root"]);
    let (s, r) = check_sth(&log, &log.get_json("/ct/v1/get-sth")).unwrap();
    assert_eq!(s, size);
    assert_ne!(r, root, "wrong-root serves a validly signed wrong root");
    drop(log);
    let log = start(&logdir, &["--fault", "bad-sth-signature"]);
    assert!(check_sth(&log, &log.get_json("/ct/v1/get-sth")).is_err());
    drop(log);
    let log = start(&logdir, &["--fault", "truncated-entry"]);
    let e = log.get_json("/ct/v1/get-entries?start=0&end=1");
    assert_eq!(b64(&e["entries"][0]["leaf_input"]), leaves[0]);
    assert!(b64(&e["entries"][1]["leaf_input"]).len() < leaves[1].len());
}

fn pki_leaf_from_other_root() -> Vec<u8> {
    let other = pki();
    leaf_params("x.example.test", 9)
        .signed_by(&other.leaf_key, &other.issuer)
        .unwrap()
        .der()
        .to_vec()
}

#[test]
fn filled_log_serves_batches_and_full_tiles() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_certresponder-test-ctlog"))
        .args(["fill", "--count", "1000", "--domain", "fill.test", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = start(dir.path(), &["--mode", "both"]);
    assert_eq!(log.info["tree_size"], 1000);
    let (size, root) = check_sth(&log, &log.get_json("/ct/v1/get-sth")).unwrap();
    assert_eq!(size, 1000);
    let mut leaf_hashes = Vec::new();
    while (leaf_hashes.len() as u64) < size {
        let start = leaf_hashes.len();
        let e = log.get_json(&format!("/ct/v1/get-entries?start={start}&end=999"));
        let batch = e["entries"].as_array().unwrap();
        assert!(!batch.is_empty() && batch.len() <= 256, "capped batch");
        leaf_hashes.extend(batch.iter().map(|x| h(&[&[0], &b64(&x["leaf_input"])])));
    }
    assert_eq!(mth(&leaf_hashes), root);
    for n in 0..3 {
        let (status, tile) = log.get(&format!("/static/tile/0/00{n}"));
        assert_eq!(status, 200);
        assert_eq!(tile, leaf_hashes[n * 256..(n + 1) * 256].concat());
    }
    let (status, l1) = log.get("/static/tile/1/000.p/3");
    assert_eq!(status, 200);
    for n in 0..3 {
        assert_eq!(
            &l1[n * 32..(n + 1) * 32],
            &mth(&leaf_hashes[n * 256..(n + 1) * 256])
        );
    }
    assert_eq!(log.get("/static/tile/0/003.p/232").0, 200);
    assert_eq!(log.get("/static/tile/0/003.p/233").0, 404);
}

/// RFC 6962 §3.1: a precertificate from a Precertificate Signing Certificate is logged with
/// the final issuer's key hash, name and authority key identifier.
#[test]
fn precert_signing_certificate_is_replaced_by_the_final_issuer() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki();
    let log = start(dir.path(), &[]);

    let mut signer_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    signer_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    signer_params
        .distinguished_name
        .push(DnType::CommonName, "precert signer");
    signer_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::Other(vec![
        1, 3, 6, 1, 4, 1, 11129, 2, 4, 4,
    ])];
    let signer_key = KeyPair::generate().unwrap();
    let signer_cert = signer_params.signed_by(&signer_key, &pki.issuer).unwrap();
    let signer = Issuer::new(signer_params, signer_key);

    let mut pp = leaf_params("p.example.test", 7);
    pp.use_authority_key_identifier_extension = true;
    let final_cert = pp.signed_by(&pki.leaf_key, &pki.issuer).unwrap();
    pp.custom_extensions.push(poison());
    let precert = pp.signed_by(&pki.leaf_key, &signer).unwrap();
    let (status, sct) = log.add(
        "add-pre-chain",
        &[precert.der(), signer_cert.der(), &pki.root_der],
    );
    assert_eq!(status, 200, "{sct}");

    verify_precert_sct(&log, &sct, final_cert.der(), &pki.root_der)
        .expect("SCT covers the final certificate's TBS");
}

#[test]
fn modes_select_the_apis_served() {
    let dir = tempfile::tempdir().unwrap();
    let log = start(dir.path(), &["--mode", "static"]);
    assert_eq!(log.get("/ct/v1/get-sth").0, 404);
    assert_eq!(
        log.get("/ct/v1/get-roots").0,
        200,
        "submission prefix stays"
    );
    assert_eq!(log.get("/static/checkpoint").0, 200);
    let list: Value = serde_json::from_slice(
        &std::fs::read(log.info["log_list_path"].as_str().unwrap()).unwrap(),
    )
    .unwrap();
    let tiled = &list["operators"][0]["tiled_logs"][0];
    assert_eq!(tiled["log_id"], log.info["log_id"]);
    assert_eq!(tiled["monitoring_url"], log.info["static_url"]);
    drop(log);
    let log = start(dir.path(), &["--mode", "rfc6962"]);
    assert_eq!(log.get("/static/checkpoint").0, 404);
    assert_eq!(log.get("/ct/v1/get-sth").0, 200);
}
