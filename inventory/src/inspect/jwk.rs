//! JSON Web Keys ([RFC 7517](https://www.rfc-editor.org/rfc/rfc7517)) and JWK Sets
//! (`{"keys": [...]}`, RFC 7517 §5): the public part of `RSA` keys (`n`, `e`; RFC 7518
//! §6.3.1), `EC` keys (`crv` P-256, P-384, P-521 or secp256k1 with `x`, `y`; RFC 7518 §6.2.1,
//! RFC 8812 §3.1) and `OKP` keys (`crv` Ed25519, Ed448, X25519 or X448 with `x`; RFC 8037
//! §2). Private members (`d`, `p`, `q`, ...) are ignored: a private JWK is read for its public
//! half. Every member is bounded in size before it is decoded.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde_json::{Map, Value};

use super::error::InspectError;
use super::key::KeyInfo;
use super::ssh::shown;

const WHAT: &str = "JWK";

/// The longest member decoded, in base64url characters (a 16384-bit modulus takes 2731).
const MAX_MEMBER: usize = 4096;
/// The largest RSA modulus read: 16384 bits.
const MAX_RSA_BYTES: usize = 16384 / 8;

/// RFC 7515 §2 base64url is unpadded; padded members are accepted too.
const BASE64URL: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The bytes without a UTF-8 byte order mark.
fn without_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes)
}

/// Whether the bytes are a JSON object: `{` after any whitespace.
pub(crate) fn looks_like_json(bytes: &[u8]) -> bool {
    without_bom(bytes)
        .iter()
        .find(|c| !c.is_ascii_whitespace())
        .is_some_and(|&c| c == b'{')
}

/// Why one key could not be read.
enum Problem {
    Bad(String),
    Unsupported(String),
}

impl Problem {
    fn into_error(self, context: Option<&str>) -> InspectError {
        let reason = |r: String| match context {
            Some(c) => format!("{c}: {r}"),
            None => r,
        };
        match self {
            Self::Bad(r) => InspectError::unparseable(WHAT, reason(r)),
            Self::Unsupported(r) => InspectError::Unsupported {
                what: WHAT,
                reason: reason(r),
            },
        }
    }
}

/// Reads a JWK or every key of a JWK Set, in order. The first key that cannot be read makes
/// the whole file an error naming that key (by position and `kid`) and the member at fault.
pub(crate) fn parse_jwk_file(bytes: &[u8]) -> Result<Vec<KeyInfo>, InspectError> {
    let value: Value = serde_json::from_slice(without_bom(bytes))
        .map_err(|e| InspectError::unparseable(WHAT, format!("not valid JSON: {e}")))?;
    let Value::Object(obj) = &value else {
        return Err(InspectError::unparseable(WHAT, "not a JSON object"));
    };
    if let Some(keys) = obj.get("keys") {
        let Value::Array(keys) = keys else {
            return Err(InspectError::unparseable(
                WHAT,
                "member `keys` of the JWK Set is not an array",
            ));
        };
        if keys.is_empty() {
            return Err(InspectError::unparseable(WHAT, "the JWK Set holds no keys"));
        }
        keys.iter()
            .enumerate()
            .map(|(i, k)| {
                parse_key(k).map_err(|p| {
                    let kid = k
                        .get("kid")
                        .and_then(Value::as_str)
                        .map(|kid| format!(" (kid `{}`)", shown(kid)))
                        .unwrap_or_default();
                    p.into_error(Some(&format!("key #{} of the set{kid}", i + 1)))
                })
            })
            .collect()
    } else if obj.contains_key("kty") {
        parse_key(&value)
            .map(|k| vec![k])
            .map_err(|p| p.into_error(None))
    } else {
        Err(InspectError::unparseable(
            WHAT,
            "a JSON object with neither `kty` (a JWK) nor `keys` (a JWK Set)",
        ))
    }
}

fn member<'a>(jwk: &'a Map<String, Value>, name: &str) -> Result<&'a str, Problem> {
    match jwk.get(name) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(Problem::Bad(format!("member `{name}` is not a string"))),
        None => Err(Problem::Bad(format!("member `{name}` is missing"))),
    }
}

/// A base64url member, decoded.
fn bytes(jwk: &Map<String, Value>, name: &str) -> Result<Vec<u8>, Problem> {
    let s = member(jwk, name)?;
    if s.is_empty() {
        return Err(Problem::Bad(format!("member `{name}` is empty")));
    }
    if s.len() > MAX_MEMBER {
        return Err(Problem::Bad(format!(
            "member `{name}` is {} characters, more than the {MAX_MEMBER} of any key read",
            s.len()
        )));
    }
    BASE64URL
        .decode(s)
        .map_err(|e| Problem::Bad(format!("member `{name}` is not base64url: {e}")))
}

/// A Base64urlUInt member (RFC 7518 §2), big-endian without leading zeros; never zero.
fn uint(jwk: &Map<String, Value>, name: &str) -> Result<Vec<u8>, Problem> {
    let mut v = bytes(jwk, name)?;
    let zeros = v.iter().take_while(|&&b| b == 0).count();
    v.drain(..zeros);
    if v.is_empty() {
        return Err(Problem::Bad(format!("member `{name}` is zero")));
    }
    Ok(v)
}

fn parse_key(value: &Value) -> Result<KeyInfo, Problem> {
    let Value::Object(jwk) = value else {
        return Err(Problem::Bad("not a JSON object".into()));
    };
    match member(jwk, "kty")? {
        "RSA" => {
            let n = uint(jwk, "n")?;
            let e = uint(jwk, "e")?;
            if n.len() > MAX_RSA_BYTES {
                return Err(Problem::Bad(format!(
                    "member `n` is a modulus of {} bytes, more than the 16384 bits read",
                    n.len()
                )));
            }
            Ok(KeyInfo::rsa(&n, &e))
        }
        "EC" => {
            let crv = member(jwk, "crv")?;
            let size = match crv {
                "P-256" | "secp256k1" => 32,
                "P-384" => 48,
                "P-521" => 66,
                other => {
                    return Err(Problem::Unsupported(format!(
                        "member `crv` is `{}`, not an EC curve certresponder reads \
                         (P-256, P-384, P-521, secp256k1)",
                        shown(other)
                    )));
                }
            };
            let mut point = Vec::with_capacity(1 + 2 * size);
            point.push(0x04);
            for name in ["x", "y"] {
                let c = bytes(jwk, name)?;
                if c.len() > size {
                    return Err(Problem::Bad(format!(
                        "member `{name}` is {} bytes, longer than a {crv} coordinate ({size})",
                        c.len()
                    )));
                }
                // RFC 7518 §6.2.1.2 asks for the full size; pad a shorter one.
                point.resize(point.len() + size - c.len(), 0);
                point.extend_from_slice(&c);
            }
            Ok(KeyInfo::ec(crv.to_string(), point))
        }
        "OKP" => {
            let crv = member(jwk, "crv")?;
            let size = match crv {
                "Ed25519" | "X25519" => 32,
                "Ed448" => 57,
                "X448" => 56,
                other => {
                    return Err(Problem::Unsupported(format!(
                        "member `crv` is `{}`, not an OKP curve certresponder reads \
                         (Ed25519, Ed448, X25519, X448)",
                        shown(other)
                    )));
                }
            };
            let public = bytes(jwk, "x")?;
            if public.len() != size {
                return Err(Problem::Bad(format!(
                    "member `x` is {} bytes; an {crv} public key is {size}",
                    public.len()
                )));
            }
            Ok(match crv {
                "Ed25519" => KeyInfo::Ed25519 { public },
                "Ed448" => KeyInfo::Ed448 { public },
                "X25519" => KeyInfo::X25519 { public },
                _ => KeyInfo::X448 { public },
            })
        }
        "oct" => Err(Problem::Unsupported(
            "`kty` `oct` is a symmetric key, which has no public key to check".into(),
        )),
        other => Err(Problem::Unsupported(format!(
            "member `kty` is `{}`, not a key type certresponder reads (RSA, EC, OKP)",
            shown(other)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::signature::KeyPair as _;
    use serde_json::json;

    use super::*;

    fn b64(v: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v)
    }

    fn read(v: &Value) -> Result<Vec<KeyInfo>, InspectError> {
        parse_jwk_file(v.to_string().as_bytes())
    }

    fn error(v: &Value) -> String {
        match read(v) {
            Err(e) => e.to_string(),
            Ok(k) => panic!("{v} parsed: {k:?}"),
        }
    }

    #[test]
    fn ec_and_ed25519_keys_made_by_aws_lc_match() {
        use aws_lc_rs::signature as s;
        let rng = aws_lc_rs::rand::SystemRandom::new();
        for (alg, crv, size) in [
            (&s::ECDSA_P256_SHA256_ASN1_SIGNING, "P-256", 32),
            (&s::ECDSA_P384_SHA384_ASN1_SIGNING, "P-384", 48),
            (&s::ECDSA_P521_SHA512_ASN1_SIGNING, "P-521", 66),
        ] {
            let pkcs8 = s::EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
            let pair = s::EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref()).unwrap();
            let point = pair.public_key().as_ref().to_vec();
            let (x, y) = point[1..].split_at(size);
            // A private JWK, with `d`, is read for its public half.
            let jwk = json!({"kty": "EC", "crv": crv, "x": b64(x), "y": b64(y), "d": b64(&[7; 32]), "use": "sig"});
            let from_pkcs8 = super::super::read_private_key(pkcs8.as_ref())
                .unwrap()
                .public;
            assert_eq!(read(&jwk).unwrap(), [from_pkcs8], "{crv}");
        }
        let pkcs8 = s::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let pair = s::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": b64(pair.public_key().as_ref())});
        let from_pkcs8 = super::super::read_private_key(pkcs8.as_ref())
            .unwrap()
            .public;
        assert_eq!(read(&jwk).unwrap(), [from_pkcs8]);
    }

    #[test]
    fn a_set_of_every_kind() {
        let n: Vec<u8> = std::iter::once(0xd1).chain([0x42; 255]).collect();
        let set = json!({"keys": [
            {"kty": "RSA", "n": b64(&n), "e": "AQAB", "kid": "rsa", "d": "AAAA", "p": "AAAA", "q": "AAAA"},
            {"kty": "EC", "crv": "secp256k1", "x": b64(&[1; 32]), "y": b64(&[2; 32])},
            {"kty": "OKP", "crv": "Ed448", "x": b64(&[3; 57])},
            {"kty": "OKP", "crv": "X25519", "x": b64(&[4; 32])},
            {"kty": "OKP", "crv": "X448", "x": b64(&[5; 56])},
        ]});
        let keys = read(&set).unwrap();
        assert_eq!(keys[0], KeyInfo::rsa(&n, &[1, 0, 1]));
        assert_eq!(keys[0].describe(), "RSA-2048");
        let mut point = vec![4];
        point.extend([1; 32]);
        point.extend([2; 32]);
        assert_eq!(keys[1], KeyInfo::ec("secp256k1".into(), point));
        assert_eq!(
            keys[2],
            KeyInfo::Ed448 {
                public: vec![3; 57]
            }
        );
        assert_eq!(
            keys[3],
            KeyInfo::X25519 {
                public: vec![4; 32]
            }
        );
        assert_eq!(
            keys[4],
            KeyInfo::X448 {
                public: vec![5; 56]
            }
        );
    }

    #[test]
    fn short_coordinates_are_padded_and_leading_zeros_dropped() {
        // A P-521 x whose top bytes are zero, as some encoders drop them.
        let jwk = json!({"kty": "EC", "crv": "P-521", "x": b64(&[9; 64]), "y": b64(&[8; 66])});
        let keys = read(&jwk).unwrap();
        let [KeyInfo::Ec { point, .. }] = keys.as_slice() else {
            panic!("not one EC key: {keys:?}");
        };
        assert_eq!(point.len(), 133);
        assert_eq!(&point[..3], &[4, 0, 0]);
        let padded = json!({"kty": "RSA", "n": b64(&[0, 0, 0xc0, 1]), "e": "AAEAAQ=="});
        assert_eq!(
            read(&padded).unwrap(),
            [KeyInfo::rsa(&[0xc0, 1], &[1, 0, 1])]
        );
        let bom = format!("\u{feff} \n{jwk}");
        assert!(looks_like_json(bom.as_bytes()));
        assert_eq!(parse_jwk_file(bom.as_bytes()).unwrap().len(), 1);
    }

    #[test]
    fn errors_name_the_member() {
        let ec = |x: &str, y: &str| json!({"kty": "EC", "crv": "P-256", "x": x, "y": y});
        let good = b64(&[1; 32]);
        let cases = [
            (
                json!({"kty": "RSA", "n": "a+b/", "e": "AQAB"}),
                "unparseable JWK: member `n` is not base64url",
            ),
            (json!({"kty": "RSA", "e": "AQAB"}), "member `n` is missing"),
            (
                json!({"kty": "RSA", "n": 12, "e": "AQAB"}),
                "member `n` is not a string",
            ),
            (
                json!({"kty": "RSA", "n": "AAAA", "e": "AQAB"}),
                "member `n` is zero",
            ),
            (
                json!({"kty": "RSA", "n": "A".repeat(MAX_MEMBER + 1), "e": "AQAB"}),
                "member `n` is 4097 characters",
            ),
            (
                json!({"kty": "RSA", "n": b64(&[0x7f; 2049]), "e": "AQAB"}),
                "member `n` is a modulus of 2049 bytes",
            ),
            (ec(&good, ""), "member `y` is empty"),
            (
                ec(&b64(&[1; 33]), &good),
                "member `x` is 33 bytes, longer than a P-256 coordinate (32)",
            ),
            (
                ec(&good, &good[..good.len() - 2]),
                "member `y` is not base64url",
            ),
            (
                json!({"kty": "OKP", "crv": "Ed25519", "x": b64(&[1; 31])}),
                "member `x` is 31 bytes; an Ed25519 public key is 32",
            ),
            (json!({"kty": 1}), "member `kty` is not a string"),
            (
                json!({"keys": [{"kty": "OKP", "crv": "X25519", "x": good}, {"kid": "two", "kty": "EC", "crv": "P-384"}]}),
                "key #2 of the set (kid `two`): member `x` is missing",
            ),
            (json!({"keys": []}), "the JWK Set holds no keys"),
            (
                json!({"keys": {}}),
                "member `keys` of the JWK Set is not an array",
            ),
            (json!({"kid": "x"}), "neither `kty` (a JWK) nor `keys`"),
            (
                json!({"kty": "RSA", "kid": "k", "keys": [1]}),
                "key #1 of the set: not a JSON object",
            ),
        ];
        for (v, want) in cases {
            let got = error(&v);
            assert!(got.contains(want), "{want:?} not in {got:?}");
            assert!(got.starts_with("unparseable JWK"), "{got}");
        }
        let got = parse_jwk_file(b"{\"kty\": \"RSA\",")
            .unwrap_err()
            .to_string();
        assert!(got.contains("not valid JSON: EOF while parsing"), "{got}");
    }

    #[test]
    fn unknown_types_and_curves_are_unsupported() {
        for (v, want) in [
            (
                json!({"kty": "FOO"}),
                "member `kty` is `FOO`, not a key type",
            ),
            (json!({"kty": "oct", "k": "AAAA"}), "symmetric key"),
            (
                json!({"kty": "EC", "crv": "P-192", "x": "AA", "y": "AA"}),
                "member `crv` is `P-192`",
            ),
            (
                json!({"kty": "OKP", "crv": "Ed25519ph", "x": "AA"}),
                "member `crv` is `Ed25519ph`",
            ),
        ] {
            match read(&v) {
                Err(InspectError::Unsupported { what, reason }) => {
                    assert_eq!(what, WHAT);
                    assert!(reason.contains(want), "{reason}");
                }
                other => panic!("{v}: {other:?}"),
            }
        }
    }

    #[test]
    fn detection() {
        assert!(looks_like_json(b"  \n{\"kty\":\"RSA\"}"));
        assert!(!looks_like_json(b"[{}]"));
        assert!(!looks_like_json(b""));
        assert!(!looks_like_json(&[0x30, 0x82, 0x01]));
    }
}
