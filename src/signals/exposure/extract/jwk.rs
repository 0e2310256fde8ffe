//! JSON Web Keys (RFC 7517), alone, in a JWKS `keys` array, as JavaScript object literals,
//! or escaped inside a JSON string. A JWK holds a private key only when it has `d`
//! (RFC 7518 §6.2.2.1, §6.3.2.1; RFC 8037 §2). The public key is derived from the private
//! members: `d` and `crv` for EC, `d` for Ed25519; RSA's `n` and `e` count only when `p`
//! and `q` multiply to `n`, or `d` inverts `e`.

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use zeroize::Zeroizing;

use super::material::{self, OID_P256, OID_P384, OID_P521};
use super::{Block, Seen};

/// How far back from `kty` the object may open (members before `kty` are rare and short).
const MAX_BEFORE: usize = 16 * 1024;
/// How long the object may be (an RSA-16384 JWK with its primes is about 12 KiB).
const MAX_OBJECT: usize = 64 * 1024;

/// base64url, padded or not (RFC 7515 §2 says unpadded; some writers pad).
const BASE64URL: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// The JWK whose `kty` member name is at `hit`. Each object tried that yields no key (its
/// braces cannot be found, or it holds no private key) takes one from `budget`; with none
/// left, nothing is looked for. A tried object comes back as a block without keys so that
/// the scan skips the other `kty` markers inside it (text full of them stays linear).
pub(super) fn object_at(bytes: &[u8], hit: usize, budget: &mut usize) -> Option<Block> {
    // `kty` must be a member name: quoted, or a bare identifier in an object literal.
    let before = hit.checked_sub(1).map(|i| bytes[i]);
    let after = bytes.get(hit + 3).copied();
    let named = matches!(
        before,
        Some(b'"' | b'\'' | b'{' | b',' | b' ' | b'\t' | b'\n')
    ) && matches!(after, Some(b'"' | b'\'' | b'\\' | b':' | b' '));
    if !named {
        return None;
    }
    if *budget == 0 {
        return None;
    }
    let Some(start) = object_start(bytes, hit) else {
        // No object opens before the next `{`: the later markers up to it fail alike.
        *budget -= 1;
        return Some(tried(bytes, hit, bytes.len()));
    };
    let Some(end) = object_end(bytes, start) else {
        *budget -= 1;
        return Some(tried(bytes, hit, bytes.len().min(start + MAX_OBJECT)));
    };
    match key_in(&bytes[start..end]) {
        Some(seen) => Some(block(start, end, seen)),
        None => {
            *budget -= 1;
            Some(tried(bytes, hit, end))
        }
    }
}

/// What the object (braces included) holds, if it is a private JWK.
fn key_in(object: &[u8]) -> Option<Seen> {
    let members = members(&unescape(object));
    let get = |name: &str| {
        members
            .iter()
            .find(|(n, _)| n.as_slice() == name.as_bytes())
            .map(|(_, v)| v.as_slice())
    };
    let d = get("d")?;
    let kty = get("kty")?;
    match kty {
        b"RSA" => rsa(&get, d),
        b"EC" => {
            let curve = match get("crv")? {
                b"P-256" => OID_P256,
                b"P-384" => OID_P384,
                b"P-521" => OID_P521,
                _ => return Some(Seen::Unsupported),
            };
            material::ec_scalar(curve, &b64url(d)?, "jwk")
        }
        b"OKP" => match get("crv")? {
            b"Ed25519" => material::ed25519_seed(&b64url(d)?, "jwk"),
            // X25519 and X448 are key agreement keys, not signing keys; Ed448's public key
            // cannot be derived here.
            _ => Some(Seen::Unsupported),
        },
        _ => None,
    }
}

/// A block without keys from `hit` over the rest of an object that was tried (up to
/// `limit`), stopping before a nested object (which may be a JWK of its own) and before any
/// other marker (a PEM key in a string member is still found).
fn tried(bytes: &[u8], hit: usize, limit: usize) -> Block {
    let from = (hit + super::JWK_MARKER.len()).min(limit);
    let region = &bytes[from..limit];
    let mut end = memchr::memchr(b'{', region).map_or(limit, |i| from + i);
    if let Some(m) = super::automaton()
        .find_iter(&region[..end - from])
        .find(|m| super::MARKERS.get(m.pattern().as_usize()) != Some(&super::JWK_MARKER))
    {
        end = from + m.start();
    }
    Block {
        start: hit,
        end,
        seen: Vec::new(),
    }
}

fn block(start: usize, end: usize, seen: Seen) -> Block {
    Block {
        start,
        end,
        seen: vec![seen],
    }
}

fn rsa<'a>(get: &impl Fn(&str) -> Option<&'a [u8]>, d: &[u8]) -> Option<Seen> {
    let n = b64url(get("n")?)?;
    let e = b64url(get("e")?)?;
    if let (Some(p), Some(q)) = (get("p"), get("q")) {
        return material::rsa_with_primes(&n, &e, &b64url(p)?, &b64url(q)?, "jwk");
    }
    material::rsa_with_exponent(&n, &e, &b64url(d)?, "jwk")
}

fn b64url(v: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let mut out = Zeroizing::new(Vec::new());
    BASE64URL.decode_vec(v, &mut out).ok()?;
    (!out.is_empty()).then_some(out)
}

/// The `{` that opens the object holding `hit`: the nearest one before it that is not
/// closed before it (JWK values are base64url and names, so they hold no braces).
fn object_start(bytes: &[u8], hit: usize) -> Option<usize> {
    let from = hit.saturating_sub(MAX_BEFORE);
    let mut depth = 0usize;
    for i in (from..hit).rev() {
        match bytes[i] {
            b'}' => depth += 1,
            b'{' if depth == 0 => return Some(i),
            b'{' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// The end (exclusive) of the object opened at `start`, strings skipped.
fn object_end(bytes: &[u8], start: usize) -> Option<usize> {
    let limit = bytes.len().min(start + MAX_OBJECT);
    let mut depth = 0usize;
    let mut quote: Option<u8> = None;
    let mut i = start;
    while i < limit {
        let b = bytes[i];
        match quote {
            Some(_) if b == b'\\' => i += 1,
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None => match b {
                b'"' | b'\'' => quote = Some(b),
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth = depth.checked_sub(1)?;
                    if depth == 0 {
                        return Some(i + 1);
                    }
                }
                _ => {}
            },
        }
        i += 1;
    }
    None
}

/// Undoes JSON-in-a-string escaping (`{\"kty\":...}`, also escaped twice or more).
fn unescape(object: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut text = Zeroizing::new(object.to_vec());
    for _ in 0..8 {
        if memchr::memmem::find(&text, b"\\\"").is_none() {
            break;
        }
        let mut out = Zeroizing::new(Vec::with_capacity(text.len()));
        let mut i = 0;
        while i < text.len() {
            match (text[i], text.get(i + 1)) {
                (b'\\', Some(&next @ (b'"' | b'\\' | b'/'))) => {
                    out.push(next);
                    i += 2;
                }
                (b, _) => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        text = out;
    }
    text
}

/// The object's top-level members whose values are strings: (name, value). Names may be
/// quoted (JSON) or bare (JavaScript); other values are skipped.
fn members(object: &[u8]) -> Vec<(Vec<u8>, Zeroizing<Vec<u8>>)> {
    let mut out = Vec::new();
    let body = object
        .strip_prefix(b"{")
        .and_then(|o| o.strip_suffix(b"}"))
        .unwrap_or_default();
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while body.get(*i).is_some_and(u8::is_ascii_whitespace) {
            *i += 1;
        }
    };
    while i < body.len() {
        skip_ws(&mut i);
        let Some(name) = token(body, &mut i) else {
            // Not a member start: move to the next member.
            skip_value(body, &mut i);
            i += 1;
            continue;
        };
        skip_ws(&mut i);
        if body.get(i) != Some(&b':') {
            skip_value(body, &mut i);
            i += 1;
            continue;
        }
        i += 1;
        skip_ws(&mut i);
        if matches!(body.get(i), Some(b'"' | b'\''))
            && let Some(value) = token(body, &mut i)
        {
            out.push((name.to_vec(), value));
        }
        skip_value(body, &mut i);
        i += 1;
    }
    out
}

/// A quoted string or a bare identifier at `i`, advancing past it.
fn token(body: &[u8], i: &mut usize) -> Option<Zeroizing<Vec<u8>>> {
    let first = *body.get(*i)?;
    let mut out = Zeroizing::new(Vec::new());
    if first == b'"' || first == b'\'' {
        let mut j = *i + 1;
        while j < body.len() && body[j] != first {
            if body[j] == b'\\' {
                j += 1;
            }
            if let Some(&b) = body.get(j) {
                out.push(b);
            }
            j += 1;
        }
        *i = j + 1;
        return Some(out);
    }
    let n = body[*i..]
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_' || **b == b'$')
        .count();
    if n == 0 {
        return None;
    }
    out.extend_from_slice(&body[*i..*i + n]);
    *i += n;
    Some(out)
}

/// Moves `i` to the `,` that ends the current member (or the end), skipping nested values
/// and strings.
fn skip_value(body: &[u8], i: &mut usize) {
    let mut depth = 0usize;
    while *i < body.len() {
        match body[*i] {
            b'"' | b'\'' => {
                let _ = token(body, i);
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => depth = depth.saturating_sub(1),
            b',' if depth == 0 => return,
            _ => {}
        }
        *i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_of_json_and_object_literals() {
        let m = members(br#"{"kty":"EC", "crv" : "P-256", "key_ops":["sign"], "d":"AA"}"#);
        let names: Vec<&[u8]> = m.iter().map(|(n, _)| n.as_slice()).collect();
        assert_eq!(names, [&b"kty"[..], b"crv", b"d"]);
        let m = members(b"{ kty: 'OKP', crv: 'Ed25519', x: 'AB', d: 'CD' }");
        assert_eq!(m.len(), 4);
        assert_eq!(m[3].1.as_slice(), b"CD");
    }

    #[test]
    fn tried_objects_are_skipped_up_to_nested_objects_and_other_markers() {
        let text = br#"{"kty" "kty" "kty", "inner": {"kty":"EC"}}"#;
        let mut budget = 10;
        let b = object_at(text, 2, &mut budget).unwrap();
        assert!(b.seen.is_empty());
        assert_eq!(
            &text[b.end..b.end + 1],
            b"{",
            "stops before the nested object"
        );
        let text = br#"{"kty":"oct", "pem":"-----BEGIN PRIVATE KEY-----"}"#;
        let b = object_at(text, 2, &mut budget).unwrap();
        assert!(text[b.end..].starts_with(b"PRIVATE KEY-----"));
    }

    #[test]
    fn escaped_json_is_unescaped() {
        let text = unescape(br#"{\"kty\":\"EC\",\"d\":\"AB\"}"#);
        assert_eq!(text.as_slice(), br#"{"kty":"EC","d":"AB"}"#);
        let text = unescape(br#"{\\\"kty\\\":\\\"EC\\\"}"#);
        assert_eq!(text.as_slice(), br#"{"kty":"EC"}"#);
    }

    #[test]
    fn public_jwks_are_not_keys() {
        let public = br#"{"keys":[{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#;
        let hit = memchr::memmem::find(public, b"kty").unwrap();
        let mut budget = 2;
        let tried = object_at(public, hit, &mut budget).unwrap();
        assert!(tried.seen.is_empty());
        assert_eq!(budget, 1, "an object without a key costs one");
        let mut budget = 2;
        let many = b"[\"kty\", \"kty\"]".repeat(3);
        let first = object_at(&many, 2, &mut budget).unwrap();
        assert!(first.seen.is_empty());
        assert_eq!(
            first.end,
            many.len(),
            "no object opens: all the rest is skipped"
        );
        assert_eq!(budget, 1);
        assert!(object_at(&many, 9, &mut budget).is_some());
        assert_eq!(budget, 0);
        assert!(
            object_at(&many, 16, &mut budget).is_none(),
            "no budget left"
        );
    }
}
