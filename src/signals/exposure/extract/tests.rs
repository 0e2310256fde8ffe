//! Keys in the forms they are found in, made by rcgen and aws-lc; and the look-alikes that
//! are not keys.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use certresponder_inventory::inspect::{KeyInfo, der, encode_pem, read_private_key};
use rcgen::{CertificateParams, KeyPair};

use super::*;

fn p256() -> KeyPair {
    KeyPair::generate().unwrap()
}

fn rsa2048() -> KeyPair {
    KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap()
}

fn public_of(k: &KeyPair) -> KeyInfo {
    read_private_key(&k.serialize_der()).unwrap().public
}

/// The single key found, checked against `k`; returns its line.
fn one(e: &Extraction, k: &KeyPair, format: &str) -> Option<usize> {
    assert_eq!(e.keys.len(), 1, "{e:?}");
    assert!(e.keys[0].public.same_public_key(&public_of(k)), "{e:?}");
    assert_eq!(e.keys[0].format, format);
    e.keys[0].line
}

fn nothing(text: &[u8]) {
    let e = keys_in(text);
    assert!(
        e.keys.is_empty() && e.encrypted.is_empty(),
        "{:?} in {}",
        e,
        String::from_utf8_lossy(text)
    );
}

/// The Ed25519 seed in an RFC 8410 PKCS#8 key.
fn ed25519_seed(k: &KeyPair) -> Vec<u8> {
    let inner = inner_key(&k.serialize_der());
    inner[2..34].to_vec()
}

/// A standalone SEC1 key (RFC 5915) naming P-256.
fn sec1_p256(k: &KeyPair) -> Vec<u8> {
    let inner = inner_key(&k.serialize_der());
    let (seq, _) = der::read_tlv(&inner).unwrap();
    let fields = der::children(seq.content).unwrap();
    let public = fields.iter().find(|f| f.tag == 0xa1).unwrap().raw.to_vec();
    let curve = der::encode(0x06, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]);
    let body = [
        vec![2, 1, 1],
        der::encode(0x04, fields[1].content),
        der::encode(0xa0, &curve),
        public,
    ]
    .concat();
    der::encode(0x30, &body)
}

/// The content of the OCTET STRING that a PKCS#8 key wraps (PKCS#1 or SEC1).
fn inner_key(pkcs8: &[u8]) -> Vec<u8> {
    let (seq, _) = der::read_tlv(pkcs8).unwrap();
    let fields = der::children(seq.content).unwrap();
    fields[2].content.to_vec()
}

#[test]
fn plain_pem_and_its_line() {
    let k = p256();
    let text = format!("first\nsecond\n{}trailer\n", k.serialize_pem());
    assert_eq!(one(&keys_in(text.as_bytes()), &k, "pem"), Some(3));
}

#[test]
fn pkcs1_and_sec1_pem() {
    let rsa = rsa2048();
    let pem = encode_pem("RSA PRIVATE KEY", &inner_key(&rsa.serialize_der()));
    one(&keys_in(pem.as_bytes()), &rsa, "pem");
    let ec = p256();
    let pem = encode_pem("EC PRIVATE KEY", &sec1_p256(&ec));
    one(&keys_in(pem.as_bytes()), &ec, "pem");
}

#[test]
fn indented_in_markdown_and_yaml() {
    let k = p256();
    let indented: String = k
        .serialize_pem()
        .lines()
        .map(|l| format!("    {l}\n"))
        .collect();
    let md = format!("# Deploying\n\nUse this key:\n\n{indented}\nThen restart.\n");
    assert_eq!(one(&keys_in(md.as_bytes()), &k, "pem"), Some(5));
    let yaml = format!("tls:\n  key: |\n{indented}  cert: x\n");
    assert_eq!(one(&keys_in(yaml.as_bytes()), &k, "pem"), Some(3));
    let quoted: String = k
        .serialize_pem()
        .lines()
        .map(|l| format!("> {l}\n"))
        .collect();
    one(&keys_in(quoted.as_bytes()), &k, "pem");
}

#[test]
fn escaped_inside_source_strings() {
    let k = p256();
    let pem = k.serialize_pem();
    let js = format!("// config\nconst KEY = \"{}\";\n", pem.replace('\n', "\\n"));
    assert_eq!(one(&keys_in(js.as_bytes()), &k, "pem"), Some(2));
    let twice = format!(
        "{{\"config\": \"{{\\\"key\\\": \\\"{}\\\"}}\"}}",
        pem.replace('\n', "\\\\n")
    );
    one(&keys_in(twice.as_bytes()), &k, "pem");
    let crlf = format!("key = '''{}'''", pem.replace('\n', "\r\n"));
    one(&keys_in(crlf.as_bytes()), &k, "pem");
    let php = format!(
        "{{\"k\":\"{}\"}}",
        pem.replace('\n', "\\n").replace('/', "\\/")
    );
    one(&keys_in(php.as_bytes()), &k, "pem");
}

#[test]
fn concatenated_commented_diffed_and_marked_up() {
    let k = rsa2048();
    let pem = k.serialize_pem();
    let lines: Vec<&str> = pem.lines().collect();
    let java: String = lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let lead = if i == 0 { "String key = " } else { "    " };
            let tail = if i + 1 == lines.len() { ";" } else { " +" };
            format!("{lead}\"{l}\\n\"{tail}\n")
        })
        .collect();
    one(&keys_in(java.as_bytes()), &k, "pem");
    let commented: String = lines.iter().map(|l| format!("// {l}\n")).collect();
    one(&keys_in(commented.as_bytes()), &k, "pem");
    let diff: String = lines.iter().map(|l| format!("+{l}\n")).collect();
    let diff = format!("--- /dev/null\n+++ b/key.pem\n@@ -0,0 +1,28 @@\n{diff}");
    assert_eq!(one(&keys_in(diff.as_bytes()), &k, "pem"), Some(4));
    let html = format!("<p>{}</p>", pem.replace('\n', "<br />"));
    one(&keys_in(html.as_bytes()), &k, "pem");
    let xml = format!("<key>{}</key>", pem.replace('\n', "&#10;"));
    one(&keys_in(xml.as_bytes()), &k, "pem");
}

#[test]
fn base64_encoded_pem_and_bare_der() {
    let k = p256();
    let secret = format!(
        "apiVersion: v1\nkind: Secret\ndata:\n  tls.key: {}\n",
        STANDARD.encode(k.serialize_pem())
    );
    assert_eq!(one(&keys_in(secret.as_bytes()), &k, "pem"), Some(4));
    let env = format!(
        "NAME=x\nPRIVATE_KEY={}\n",
        STANDARD.encode(k.serialize_der())
    );
    assert_eq!(one(&keys_in(env.as_bytes()), &k, "base64"), Some(2));
    let rsa = rsa2048();
    let env = format!(
        "KEY=\"{}\"",
        STANDARD.encode(inner_key(&rsa.serialize_der()))
    );
    one(&keys_in(env.as_bytes()), &rsa, "base64");
}

#[test]
fn bare_der_markers_match_real_keys() {
    let keys = [
        rsa2048().serialize_der(),
        inner_key(&rsa2048().serialize_der()),
        p256().serialize_der(),
        sec1_p256(&p256()),
        KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384)
            .unwrap()
            .serialize_der(),
        KeyPair::generate_for(&rcgen::PKCS_ED25519)
            .unwrap()
            .serialize_der(),
    ];
    for der_bytes in keys {
        let b64 = STANDARD.encode(&der_bytes);
        let marker = b64::BARE_DER_MARKERS.iter().find(|m| {
            b64.find(*m)
                .is_some_and(|at| at <= b64::BARE_DER_MARKERS.len() + 12)
        });
        assert!(marker.is_some(), "no marker for {}", &b64[..48]);
        let e = keys_in(b64.as_bytes());
        assert_eq!(e.keys.len(), 1, "{}", &b64[..40]);
    }
}

#[test]
fn whole_der_files() {
    let k = p256();
    assert_eq!(one(&keys_in(&k.serialize_der()), &k, "der"), None);
    let rsa = rsa2048();
    one(&keys_in(&inner_key(&rsa.serialize_der())), &rsa, "der");
}

/// An RFC 5958 `EncryptedPrivateKeyInfo` under PBES2 (PBKDF2, AES-256-CBC) with stand-in
/// encrypted data, as `openssl pkcs8 -topk8 -v2 aes-256-cbc` lays it out.
fn pbes2_epki(len: usize) -> Vec<u8> {
    let oid = |c: &[u8]| der::encode(0x06, c);
    let kdf = der::encode(
        0x30,
        &[
            oid(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0c]),
            der::encode(
                0x30,
                &[
                    der::encode(0x04, &[1u8; 8]),
                    der::encode(0x02, &[0x08, 0x00]),
                ]
                .concat(),
            ),
        ]
        .concat(),
    );
    let cipher = der::encode(
        0x30,
        &[
            oid(&[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2a]),
            der::encode(0x04, &[2u8; 16]),
        ]
        .concat(),
    );
    let alg = der::encode(
        0x30,
        &[
            oid(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0d]),
            der::encode(0x30, &[kdf, cipher].concat()),
        ]
        .concat(),
    );
    der::encode(0x30, &[alg, der::encode(0x04, &vec![0x5a; len])].concat())
}

#[test]
fn encrypted_keys_are_found_with_what_encrypts_them() {
    let legacy = "x\n-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00112233445566778899AABBCCDDEEFF\n\nAAAAAAAAAAAAAAAAAAAAAA==\n-----END RSA PRIVATE KEY-----\n";
    let e = keys_in(legacy.as_bytes());
    assert!(e.keys.is_empty());
    assert_eq!(e.encrypted.len(), 1, "{e:?}");
    assert_eq!(e.encrypted[0].encryption, "PEM AES-128-CBC");
    assert_eq!(e.encrypted[0].line, Some(2));
    assert!(e.encrypted[0].public.is_none());
    let pkcs8 = encode_pem("ENCRYPTED PRIVATE KEY", &pbes2_epki(160));
    let e = keys_in(pkcs8.as_bytes());
    assert!(e.keys.is_empty());
    assert_eq!(e.encrypted.len(), 1, "{e:?}");
    assert_eq!(e.encrypted[0].encryption, "PKCS#8 PBES2 aes-256-cbc");
    assert_eq!(e.encrypted[0].format, "pem");
    // The same as a whole DER file, and bare base64 in a `.env` value.
    let e = keys_in(&pbes2_epki(1200));
    assert_eq!(e.encrypted.len(), 1, "{e:?}");
    assert_eq!((e.encrypted[0].format, e.encrypted[0].line), ("der", None));
    let env = format!("TLS_KEY={}\n", STANDARD.encode(pbes2_epki(1200)));
    let e = keys_in(env.as_bytes());
    assert_eq!(e.encrypted.len(), 1, "{e:?}");
    assert_eq!(e.encrypted[0].format, "base64");
    // Placeholders and broken structures are not keys, encrypted or not.
    nothing(encode_pem("ENCRYPTED PRIVATE KEY", &[0x30, 0x03, 0x02, 0x01, 0x00]).as_bytes());
    nothing(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n...\n-----END ENCRYPTED PRIVATE KEY-----\n");
    nothing(b"-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: ...\n\n...\n-----END RSA PRIVATE KEY-----\n");
}

#[test]
fn look_alikes_are_not_keys() {
    let k = p256();
    let params = CertificateParams::new(vec!["a.example".to_string()]).unwrap();
    let cert = params.self_signed(&k).unwrap();
    nothing(cert.pem().as_bytes());
    nothing(k.public_key_pem().as_bytes());
    let csr = params.serialize_request(&k).unwrap();
    nothing(csr.pem().unwrap().as_bytes());
    // A certificate in a block labelled as a key, random base64, placeholders, truncation.
    nothing(encode_pem("PRIVATE KEY", cert.der()).as_bytes());
    let random: Vec<u8> = (0..1200u32).map(|i| (i * 7919 % 251) as u8).collect();
    nothing(encode_pem("PRIVATE KEY", &random).as_bytes());
    nothing(STANDARD.encode(&random).as_bytes());
    nothing(b"-----BEGIN PRIVATE KEY-----\n...\n-----END PRIVATE KEY-----\n");
    nothing(b"-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA...\n-----END RSA PRIVATE KEY-----");
    let pem = k.serialize_pem();
    let cut: String = pem.lines().take(3).map(|l| format!("{l}\n")).collect();
    nothing(format!("{cut}-----END PRIVATE KEY-----\n").as_bytes());
    nothing(cut.as_bytes());
    nothing(b"the kty of a JWK; {\"kty\": \"RSA\"}");
}

#[test]
fn binary_files_are_searched_for_text_der_and_utf16() {
    let k = p256();
    let mut bytes = b"\x7fELF\x00\x00".to_vec();
    bytes.extend_from_slice(k.serialize_pem().as_bytes());
    let e = keys_in(&bytes);
    assert!(e.binary);
    assert_eq!(one(&e, &k, "pem"), None);
    assert_eq!(e.keys[0].offset, Some(6));
    // DER (PKCS#8 and the SEC1 key inside it, once), and UTF-16 PEM at an odd offset.
    let rsa = rsa2048();
    let mut bytes = b"\x7fELF\x00\x01\x02".to_vec();
    bytes.extend_from_slice(&rsa.serialize_der());
    bytes.push(0);
    let utf16_at = bytes.len();
    bytes.extend(k.serialize_pem().encode_utf16().flat_map(u16::to_le_bytes));
    let e = keys_in(&bytes);
    assert_eq!(e.keys.len(), 2, "{e:?}");
    assert!(e.keys[0].public.same_public_key(&public_of(&rsa)));
    assert_eq!((e.keys[0].format, e.keys[0].offset), ("der", Some(7)));
    assert!(e.keys[1].public.same_public_key(&public_of(&k)));
    assert_eq!(
        (e.keys[1].format, e.keys[1].offset),
        ("pem", Some(utf16_at))
    );
    // A whole UTF-16 file, with lines.
    let mut text: Vec<u8> = vec![0xfe, 0xff];
    text.extend(
        format!("a\nb\n{}", k.serialize_pem())
            .encode_utf16()
            .flat_map(u16::to_be_bytes),
    );
    let e = keys_in(&text);
    assert!(!e.binary);
    assert_eq!(one(&e, &k, "pem"), Some(3));
}

#[test]
fn two_keys_and_a_repeat() {
    let (a, b) = (p256(), p256());
    let text = format!(
        "{}{}{}",
        a.serialize_pem(),
        b.serialize_pem(),
        a.serialize_pem()
    );
    let e = keys_in(text.as_bytes());
    assert_eq!(e.keys.len(), 3);
    assert!(e.keys[2].public.same_public_key(&public_of(&a)));
    assert_eq!(e.keys[1].line, Some(6));
}

fn ec_jwk(k: &KeyPair) -> String {
    let raw = k.public_key_raw();
    let sec1 = inner_key(&k.serialize_der());
    let (seq, _) = der::read_tlv(&sec1).unwrap();
    let d = der::children(seq.content).unwrap()[1].content.to_vec();
    format!(
        r#"{{"kty":"EC","crv":"P-256","kid":"a","x":"{}","y":"{}","d":"{}"}}"#,
        URL_SAFE_NO_PAD.encode(&raw[1..33]),
        URL_SAFE_NO_PAD.encode(&raw[33..]),
        URL_SAFE_NO_PAD.encode(d)
    )
}

#[test]
fn jwks_with_private_members() {
    let k = p256();
    let jwk = ec_jwk(&k);
    one(&keys_in(jwk.as_bytes()), &k, "jwk");
    let public_only: String = jwk.replace(",\"d\":", ",\"not_d\":");
    nothing(public_only.as_bytes());
    let jwks = format!("{{\n  \"keys\": [\n    {public_only},\n    {jwk}\n  ]\n}}\n");
    assert_eq!(one(&keys_in(jwks.as_bytes()), &k, "jwk"), Some(4));
    let escaped = format!("{{\"jwk\": \"{}\"}}", jwk.replace('"', "\\\""));
    one(&keys_in(escaped.as_bytes()), &k, "jwk");
    let literal = jwk
        .replace("\"kty\"", "kty")
        .replace("\"d\"", "d")
        .replace('"', "'");
    one(&keys_in(literal.as_bytes()), &k, "jwk");

    let ed = KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let seed = &ed25519_seed(&ed);
    let okp = format!(
        r#"{{"kty":"OKP","crv":"Ed25519","x":"{}","d":"{}"}}"#,
        URL_SAFE_NO_PAD.encode(ed.public_key_raw()),
        URL_SAFE_NO_PAD.encode(seed)
    );
    one(&keys_in(okp.as_bytes()), &ed, "jwk");

    let rsa = rsa2048();
    let pkcs1 = inner_key(&rsa.serialize_der());
    let (seq, _) = der::read_tlv(&pkcs1).unwrap();
    let f = der::children(seq.content).unwrap();
    let enc = |i: usize| URL_SAFE_NO_PAD.encode(der::strip_leading_zeros(f[i].content));
    let full = format!(
        r#"{{"kty":"RSA","n":"{}","e":"{}","d":"{}","p":"{}","q":"{}"}}"#,
        enc(1),
        enc(2),
        enc(3),
        enc(4),
        enc(5)
    );
    one(&keys_in(full.as_bytes()), &rsa, "jwk");
    let no_primes = format!(
        r#"{{"kty":"RSA","n":"{}","e":"{}","d":"{}"}}"#,
        enc(1),
        enc(2),
        enc(3)
    );
    one(&keys_in(no_primes.as_bytes()), &rsa, "jwk");
    let wrong_d = format!(
        r#"{{"kty":"RSA","n":"{}","e":"{}","d":"{}"}}"#,
        enc(1),
        enc(2),
        enc(4)
    );
    nothing(wrong_d.as_bytes());
}

#[test]
fn putty_files() {
    let ed = KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let seed = &ed25519_seed(&ed);
    let string = |v: &[u8]| {
        let mut out = u32::try_from(v.len()).unwrap().to_be_bytes().to_vec();
        out.extend_from_slice(v);
        out
    };
    let public = [string(b"ssh-ed25519"), string(ed.public_key_raw())].concat();
    let private = string(seed);
    let ppk = |encryption: &str| {
        format!(
            "PuTTY-User-Key-File-2: ssh-ed25519\r\nEncryption: {encryption}\r\nComment: x\r\nPublic-Lines: 2\r\n{}\r\n{}\r\nPrivate-Lines: 1\r\n{}\r\nPrivate-MAC: 00\r\n",
            &STANDARD.encode(&public)[..40],
            &STANDARD.encode(&public)[40..],
            STANDARD.encode(&private)
        )
    };
    one(&keys_in(ppk("none").as_bytes()), &ed, "putty");
    let e = keys_in(ppk("aes256-cbc").as_bytes());
    assert!(e.keys.is_empty());
    assert_eq!(e.encrypted.len(), 1);
    assert_eq!(e.encrypted[0].encryption, "PuTTY aes256-cbc");
    // PuTTY keeps the public key in clear: it is what the file names.
    let named = e.encrypted[0].public.as_ref().unwrap();
    assert!(named.same_public_key(&public_of(&ed)));
}

#[test]
fn found_keys_carry_the_location() {
    let k = p256();
    let text = format!("x\n{}", k.serialize_pem());
    let template = Location {
        path: "a/b.txt".into(),
        repository: None,
        commit: None,
        line: None,
        blob: None,
        offset: None,
        encryption: None,
        first_seen: None,
        source: "exposure-scan".into(),
    };
    let found = keys_in(text.as_bytes()).found_at(&template).found;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].location.line, Some(2));
    assert_eq!(found[0].location.path, "a/b.txt");
    assert_eq!(found[0].format, "pem");
}

#[test]
fn text_full_of_markers_costs_linear_time() {
    // Each of these would cost quadratic time if every marker searched far around itself.
    let size = 2 << 20;
    for unit in [
        &b"-----BEGIN PRIVATE KEY-----\n"[..],
        b"-----BEGIN RSA PRIVATE KEY----- \"",
        b"\"kty\", ",
        b"PuTTY-User-Key-File-2: ssh-rsa\n",
        b"LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0t ",
        b"MIIEvQIBADANBgkqhkiG9w0BAQEFAASC",
    ] {
        let text = unit.repeat(size / unit.len());
        let started = std::time::Instant::now();
        let e = keys_in(&text);
        assert!(e.keys.is_empty());
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "{:?}: {:?}",
            String::from_utf8_lossy(unit),
            started.elapsed()
        );
    }
}

#[test]
fn removed_diff_lines_hold_a_key() {
    let k = rsa2048();
    let pem = k.serialize_pem();
    let removed: String = pem.lines().map(|l| format!("-{l}\n")).collect();
    let diff = format!("--- a/key.pem\n+++ /dev/null\n@@ -1,28 +0,0 @@\n{removed}");
    assert_eq!(one(&keys_in(diff.as_bytes()), &k, "pem"), Some(4));
    for prefix in [">", "#", " ", "+"] {
        let quoted: String = pem.lines().map(|l| format!("{prefix}{l}\n")).collect();
        one(&keys_in(quoted.as_bytes()), &k, "pem");
    }
}

/// PKCS#1 `RSAPrivateKey` holding `n` and `e` of a real key with d = p = q = 1.
fn forged_pkcs1(real: &KeyPair) -> Vec<u8> {
    let KeyInfo::Rsa {
        modulus,
        exponent_bytes,
        ..
    } = public_of(real)
    else {
        panic!("not RSA");
    };
    let int = |v: &[u8]| {
        let mut c = vec![0u8];
        c.extend_from_slice(v);
        der::encode(0x02, &c)
    };
    let body = [
        vec![2, 1, 0],
        int(&modulus),
        int(&exponent_bytes),
        vec![2, 1, 1],
        vec![2, 1, 1],
        vec![2, 1, 1],
        vec![2, 1, 1],
        vec![2, 1, 1],
        vec![2, 1, 1],
    ]
    .concat();
    der::encode(0x30, &body)
}

#[test]
fn forged_rsa_keys_with_a_real_modulus_are_not_keys() {
    let k = rsa2048();
    let forged = forged_pkcs1(&k);
    let pem = encode_pem("RSA PRIVATE KEY", &forged);
    let e = keys_in(pem.as_bytes());
    assert!(e.keys.is_empty(), "{e:?}");
    assert_eq!(e.unsupported, 1);
    let e = keys_in(&forged);
    assert!(e.keys.is_empty(), "{e:?}");
    let env = format!("KEY={}\n", STANDARD.encode(&forged));
    assert!(keys_in(env.as_bytes()).keys.is_empty());
    // The real key still counts.
    one(&keys_in(k.serialize_pem().as_bytes()), &k, "pem");
}

#[test]
fn huge_jwk_exponents_are_refused_quickly() {
    let k = rsa2048();
    let KeyInfo::Rsa { modulus, .. } = public_of(&k) else {
        panic!("not RSA");
    };
    let huge = URL_SAFE_NO_PAD.encode(vec![0x7fu8; 4096]);
    let n = URL_SAFE_NO_PAD.encode(&modulus);
    for (e, d) in [(huge.as_str(), "AQAB"), ("AQAB", huge.as_str())] {
        let jwk = format!(r#"{{"kty":"RSA","n":"{n}","e":"{e}","d":"{d}"}}"#);
        assert!(keys_in(jwk.as_bytes()).keys.is_empty());
    }
}

/// Hostile inputs of 1 MB: each must finish (the suite would hang otherwise) and find
/// nothing.
#[test]
fn hostile_megabyte_inputs_finish() {
    let size = 1 << 20;
    let line = |head: &str| format!("{head}{}\n", "A".repeat(64 - head.len()));
    let inputs: Vec<Vec<u8>> = vec![
        format!("{{{}}}", "\"kty\" ".repeat(size / 6)).into_bytes(),
        "{\"kty\" ".repeat(size / 7).into_bytes(),
        format!(
            "[{}]",
            "{\"kty\":\"RSA\",\"n\":\"AQAB\"},".repeat(size / 26)
        )
        .into_bytes(),
        line("MHcCAQEEI").repeat(size / 65).into_bytes(),
        line("LS0tLS1CRUdJTi").repeat(size / 65).into_bytes(),
        line("MIIEvQIBADANBgkqhkiG9w0BAQEFAASC")
            .repeat(size / 65)
            .into_bytes(),
        "------BEGIN RSA PRIVATE KEY-----\n-AAAA\n"
            .repeat(size / 40)
            .into_bytes(),
    ];
    for text in inputs {
        let e = keys_in(&text);
        assert!(e.keys.is_empty(), "{e:?}");
    }
    // A real key after the hostile part is still found.
    let k = p256();
    let mut text = line("MHcCAQEEI").repeat(size / 65);
    text.push_str(&format!("\n{}", k.serialize_pem()));
    one(&keys_in(text.as_bytes()), &k, "pem");
    let mut text = format!("{{{}}}\n", "\"kty\" ".repeat(size / 6));
    text.push_str(&ec_jwk(&k));
    one(&keys_in(text.as_bytes()), &k, "jwk");
}
