//! OpenSSH public keys: one key per line (`ssh-keygen`'s `.pub` files) or a whole
//! `authorized_keys` file, as sshd(8) "AUTHORIZED_KEYS FILE FORMAT" describes it: optional
//! comma-separated options (double quotes may hold spaces), the key type, the base64 key blob
//! and an optional comment; blank lines and `#` comments are skipped.
//!
//! The blob is the SSH wire encoding of the key: `ssh-rsa` (e, n) and `ssh-dss` (p, q, g, y)
//! per [RFC 4253 §6.6](https://www.rfc-editor.org/rfc/rfc4253#section-6.6),
//! `ecdsa-sha2-nistp256/384/521` (curve identifier, point) per
//! [RFC 5656 §3.1](https://www.rfc-editor.org/rfc/rfc5656#section-3.1) and `ssh-ed25519` per
//! [RFC 8709 §4](https://www.rfc-editor.org/rfc/rfc8709#section-4). Security-key (`sk-`),
//! certificate (`-cert-v01@openssh.com`) and XMSS types are recognised and reported as
//! unsupported. Every length is checked against what is left and bounded, so no input can
//! make this module panic or allocate without limit.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use super::error::InspectError;
use super::key::KeyInfo;

const WHAT: &str = "OpenSSH public key";

/// The longest line read (an `authorized_keys` line with long options stays well below).
pub(crate) const MAX_LINE: usize = 64 * 1024;
/// The largest key blob, as OpenSSH's `SSH_MAX_PUBKEY_BYTES`.
const MAX_BLOB: usize = 16 * 1024;
/// The largest integer in a blob: 16384 bits and a sign byte, as OpenSSH's `SSHBUF_MAX_BIGNUM`.
const MAX_MPINT: usize = 16384 / 8 + 1;

/// The key types this module reads, with what their blobs hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyType {
    Rsa,
    Dss,
    /// The curve's SSH identifier (`nistp256`), its name and the size of a coordinate.
    Ecdsa(&'static str, &'static str, usize),
    Ed25519,
    /// A type OpenSSH knows that certresponder does not read, with why.
    Unsupported(&'static str),
}

const ECDSA: [(&str, &str, usize); 3] = [
    ("nistp256", "P-256", 32),
    ("nistp384", "P-384", 48),
    ("nistp521", "P-521", 66),
];

/// The supported type names, for error messages.
const SUPPORTED: &str =
    "ssh-rsa, ssh-dss, ecdsa-sha2-nistp256, ecdsa-sha2-nistp384, ecdsa-sha2-nistp521, ssh-ed25519";

impl KeyType {
    fn from_name(name: &str) -> Option<Self> {
        if name.ends_with("-cert-v01@openssh.com") && Self::from_name(&cert_base(name)).is_some() {
            return Some(Self::Unsupported(
                "an OpenSSH certificate; give its public key (`ssh-keygen -L` shows which) instead",
            ));
        }
        match name {
            "ssh-rsa" => Some(Self::Rsa),
            "ssh-dss" => Some(Self::Dss),
            "ssh-ed25519" => Some(Self::Ed25519),
            "sk-ecdsa-sha2-nistp256@openssh.com" | "sk-ssh-ed25519@openssh.com" => {
                Some(Self::Unsupported(
                    "a FIDO security-key (`sk-`) key, whose private half stays on the token; \
                     certresponder does not check these",
                ))
            }
            "ssh-xmss@openssh.com" => Some(Self::Unsupported(
                "an XMSS key (experimental in OpenSSH); certresponder does not check these",
            )),
            _ => {
                let curve = name.strip_prefix("ecdsa-sha2-")?;
                ECDSA
                    .iter()
                    .find(|(id, _, _)| *id == curve)
                    .map(|&(id, named, size)| Self::Ecdsa(id, named, size))
            }
        }
    }
}

/// `ssh-rsa-cert-v01@openssh.com` → `ssh-rsa`; `sk-ssh-ed25519-cert-v01@openssh.com` →
/// `sk-ssh-ed25519@openssh.com`.
fn cert_base(name: &str) -> String {
    let base = name.trim_end_matches("-cert-v01@openssh.com");
    if base.starts_with("sk-") || base == "ssh-xmss" {
        format!("{base}@openssh.com")
    } else {
        base.to_string()
    }
}

/// One key line, split into its fields.
struct Line<'a> {
    key_type: &'a str,
    kind: KeyType,
    blob: &'a str,
}

/// The first whitespace-separated word of `s` and the rest (leading whitespace trimmed).
fn word(s: &str) -> (&str, &str) {
    match s.find(char::is_whitespace) {
        Some(i) => (&s[..i], s[i..].trim_start()),
        None => (s, ""),
    }
}

/// The `authorized_keys` options at the start of `s` (no spaces outside double quotes; a
/// backslash escapes a quote inside them) and the rest, or why they do not end.
fn options(s: &str) -> Result<(&str, &str), String> {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => return Ok((&s[..i], s[i..].trim_start())),
            _ => {}
        }
    }
    if quoted {
        Err("the options have an unterminated double quote".into())
    } else {
        Ok((s, ""))
    }
}

/// A word for an error message: at most 40 characters.
pub(super) fn shown(s: &str) -> String {
    match s.char_indices().nth(40) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

/// Splits a non-blank, non-comment line. `Ok(None)` when neither its first word nor the word
/// after its options is a key type this module knows.
fn split(line: &str) -> Result<Option<Line<'_>>, String> {
    let (first, rest) = word(line);
    let (key_type, rest) = if KeyType::from_name(first).is_some() {
        (first, rest)
    } else {
        let (_, after) = options(line)?;
        word(after)
    };
    let Some(kind) = KeyType::from_name(key_type) else {
        return Ok(None);
    };
    let (blob, _comment) = word(rest);
    Ok(Some(Line {
        key_type,
        kind,
        blob,
    }))
}

/// Whether `text` looks like OpenSSH public keys: some line starts with a known key type,
/// possibly after `authorized_keys` options.
pub(crate) fn looks_like_openssh(text: &str) -> bool {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && l.len() <= MAX_LINE)
        .any(|l| matches!(split(l), Ok(Some(_))))
}

/// Reads every key of an OpenSSH public key or `authorized_keys` file, in line order. The
/// first line that cannot be read makes the whole file an error naming that line.
pub(crate) fn parse_openssh(text: &str) -> Result<Vec<KeyInfo>, InspectError> {
    let mut keys = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = |reason: String| InspectError::unparseable(WHAT, format!("line {n}: {reason}"));
        if line.len() > MAX_LINE {
            return Err(at(format!(
                "the line is {} bytes, longer than the {MAX_LINE} read",
                line.len()
            )));
        }
        let Some(entry) = split(line).map_err(at)? else {
            let (first, _) = word(line);
            return Err(at(format!(
                "no key type: neither `{}` nor the word after it is one ({SUPPORTED})",
                shown(first)
            )));
        };
        if let KeyType::Unsupported(why) = entry.kind {
            return Err(InspectError::Unsupported {
                what: WHAT,
                reason: format!("line {n}: `{}` is {why}", entry.key_type),
            });
        }
        keys.push(parse_entry(&entry).map_err(at)?);
    }
    if keys.is_empty() {
        return Err(InspectError::unparseable(
            WHAT,
            "the file holds no key, only blank lines and comments",
        ));
    }
    Ok(keys)
}

/// OpenSSH writes padded base64; accept it unpadded too.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

fn parse_entry(entry: &Line<'_>) -> Result<KeyInfo, String> {
    if entry.blob.is_empty() {
        return Err(format!("`{}` is not followed by a key", entry.key_type));
    }
    if entry.blob.len() > MAX_BLOB.div_ceil(3) * 4 {
        return Err(format!(
            "the key is {} base64 characters, more than a {MAX_BLOB}-byte key takes",
            entry.blob.len()
        ));
    }
    let blob = BASE64
        .decode(entry.blob)
        .map_err(|e| format!("the key is not valid base64 (truncated or damaged?): {e}"))?;
    parse_blob(entry.key_type, entry.kind, &blob)
}

/// Reads the fields of an SSH wire-encoded blob in order.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// An RFC 4251 §5 `string`: a 32-bit big-endian length and that many bytes.
    fn string(&mut self, field: &str) -> Result<&'a [u8], String> {
        let Some((len, rest)) = self.rest.split_first_chunk::<4>() else {
            return Err(format!(
                "the key is truncated: `{field}` is missing ({} bytes left, its length takes 4)",
                self.rest.len()
            ));
        };
        let len = u32::from_be_bytes(*len) as usize;
        if len > rest.len() {
            return Err(format!(
                "the key is truncated: `{field}` claims {len} bytes, {} are left",
                rest.len()
            ));
        }
        let (value, rest) = rest.split_at(len);
        self.rest = rest;
        Ok(value)
    }

    /// An RFC 4251 §5 `mpint` that must be positive, as big-endian bytes.
    fn positive(&mut self, field: &str) -> Result<&'a [u8], String> {
        let v = self.string(field)?;
        if v.first().is_some_and(|&b| b & 0x80 != 0) {
            return Err(format!("`{field}` is negative"));
        }
        if v.len() > MAX_MPINT {
            return Err(format!(
                "`{field}` is {} bytes, larger than the 16384 bits OpenSSH accepts",
                v.len()
            ));
        }
        if v.iter().all(|&b| b == 0) {
            return Err(format!("`{field}` is zero"));
        }
        Ok(v)
    }

    fn done(&self) -> Result<(), String> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{} unexpected bytes after the key's fields",
                self.rest.len()
            ))
        }
    }
}

/// Reads a decoded key blob of the type named on its line.
fn parse_blob(key_type: &str, kind: KeyType, blob: &[u8]) -> Result<KeyInfo, String> {
    let mut r = Reader { rest: blob };
    let inner = r.string("key type")?;
    if inner != key_type.as_bytes() {
        return Err(format!(
            "the line says `{key_type}` but the key inside is `{}`",
            shown(&String::from_utf8_lossy(inner))
        ));
    }
    let key = match kind {
        KeyType::Rsa => {
            let e = r.positive("e")?;
            let n = r.positive("n")?;
            KeyInfo::rsa(n, e)
        }
        KeyType::Dss => {
            let p = r.positive("p")?;
            let q = r.positive("q")?;
            let g = r.positive("g")?;
            let y = r.positive("y")?;
            KeyInfo::dsa(p, q, g, y)
        }
        KeyType::Ecdsa(id, named, size) => {
            let curve = r.string("curve")?;
            if curve != id.as_bytes() {
                return Err(format!(
                    "the curve inside is `{}`, not `{id}` as `{key_type}` requires",
                    shown(&String::from_utf8_lossy(curve))
                ));
            }
            let point = r.string("Q")?;
            let fits = match point.first() {
                Some(0x04) => point.len() == 1 + 2 * size,
                Some(0x02 | 0x03) => point.len() == 1 + size,
                _ => false,
            };
            if !fits {
                return Err(format!(
                    "the point `Q` is not a {named} point: {} bytes starting {}, expected {} \
                     (04, x, y) or {} (02 or 03, x)",
                    point.len(),
                    point
                        .first()
                        .map_or_else(|| "with nothing".into(), |b| format!("{b:02x}")),
                    1 + 2 * size,
                    1 + size
                ));
            }
            KeyInfo::ec(named.to_string(), point.to_vec())
        }
        KeyType::Ed25519 => {
            let public = r.string("public key")?;
            if public.len() != 32 {
                return Err(format!(
                    "the Ed25519 public key is {} bytes, not 32",
                    public.len()
                ));
            }
            KeyInfo::Ed25519 {
                public: public.to_vec(),
            }
        }
        KeyType::Unsupported(why) => return Err(format!("`{key_type}` is {why}")),
    };
    r.done()?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(out: &mut Vec<u8>, v: &[u8]) {
        out.extend_from_slice(&u32::try_from(v.len()).unwrap().to_be_bytes());
        out.extend_from_slice(v);
    }

    fn line(key_type: &str, fields: &[&[u8]], comment: &str) -> String {
        let mut blob = Vec::new();
        string(&mut blob, key_type.as_bytes());
        for f in fields {
            string(&mut blob, f);
        }
        format!(
            "{key_type} {} {comment}",
            base64::engine::general_purpose::STANDARD.encode(blob)
        )
    }

    fn modulus() -> Vec<u8> {
        let mut n = vec![0x00, 0xc3];
        n.extend(std::iter::repeat_n(0x5a, 127));
        n.push(0x01);
        n
    }

    fn point(size: usize) -> Vec<u8> {
        let mut p = vec![4];
        p.extend((0..2 * size).map(|i| u8::try_from(i % 251).unwrap()));
        p
    }

    fn error(text: &str) -> String {
        match parse_openssh(text) {
            Err(e) => e.to_string(),
            Ok(k) => panic!("{text:?} parsed: {k:?}"),
        }
    }

    #[test]
    fn every_supported_type() {
        let n = modulus();
        let text = [
            line("ssh-rsa", &[&[1, 0, 1], &n], "alice@example.com"),
            line(
                "ssh-dss",
                &[&[0x7f; 128], &[0x11; 20], &[2], &[0x33; 128]],
                "",
            ),
            line("ecdsa-sha2-nistp256", &[b"nistp256", &point(32)], "p256"),
            line("ecdsa-sha2-nistp384", &[b"nistp384", &point(48)], "p384"),
            line("ecdsa-sha2-nistp521", &[b"nistp521", &point(66)], "p521"),
            line("ssh-ed25519", &[&[9; 32]], "ed"),
        ]
        .join("\n");
        let keys = parse_openssh(&text).unwrap();
        let described: Vec<String> = keys.iter().map(KeyInfo::describe).collect();
        assert_eq!(
            described,
            [
                "RSA-1032",
                "DSA-1023",
                "ECDSA P-256",
                "ECDSA P-384",
                "ECDSA P-521",
                "Ed25519"
            ]
        );
        assert_eq!(keys[0], KeyInfo::rsa(&n, &[1, 0, 1]));
        assert_eq!(keys[2], KeyInfo::ec("P-256".into(), point(32)));
        assert_eq!(
            keys[5],
            KeyInfo::Ed25519 {
                public: vec![9; 32]
            }
        );
    }

    #[test]
    fn authorized_keys_with_options_comments_and_blank_lines() {
        let ed = line("ssh-ed25519", &[&[1; 32]], "first key");
        let rsa = line("ssh-rsa", &[&[3], &modulus()], "");
        let p256 = line("ecdsa-sha2-nistp256", &[b"nistp256", &point(32)], "c d e");
        let text = format!(
            "# managed by hand\n\n   \n{ed}\r\n\
             command=\"echo \\\"a b\\\", c\",no-pty,from=\"10.0.0.0/8,192.168.1.1\" {rsa}\n\
             \t# indented comment\n\
             restrict,port-forwarding   {p256}\n"
        );
        let keys = parse_openssh(&text).unwrap();
        assert_eq!(keys.len(), 3);
        assert!(matches!(keys[1], KeyInfo::Rsa { ref exponent, .. } if exponent == "3"));
        assert_eq!(keys[2].describe(), "ECDSA P-256");
        assert!(looks_like_openssh(&text));
    }

    #[test]
    fn detection() {
        assert!(looks_like_openssh(&line("ssh-ed25519", &[&[1; 32]], "")));
        assert!(looks_like_openssh("no-pty ssh-rsa AAAA"));
        assert!(looks_like_openssh("sk-ssh-ed25519@openssh.com AAAA"));
        assert!(!looks_like_openssh("hello, this is not a key\n"));
        assert!(!looks_like_openssh("ssh-foo AAAA\n# ssh-rsa AAAA\n"));
        assert!(!looks_like_openssh(""));
    }

    #[test]
    fn errors_name_the_line_and_the_reason() {
        let good = line("ssh-ed25519", &[&[1; 32]], "");
        let cases: Vec<(String, &str)> = vec![
            (
                format!("{good}\n\nssh-rsa AAAAB3NzaC1yc2EAAAADAQAB"),
                "line 3: the key is truncated: `n` is missing",
            ),
            (
                format!("{good}\nssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI"),
                "line 2: the key is not valid base64",
            ),
            (
                format!("{good}\nssh-ed25519"),
                "line 2: `ssh-ed25519` is not followed by a key",
            ),
            (
                line("ssh-ed25519", &[&[1; 31]], ""),
                "line 1: the Ed25519 public key is 31 bytes, not 32",
            ),
            (
                line("ecdsa-sha2-nistp384", &[b"nistp384", &point(32)], ""),
                "line 1: the point `Q` is not a P-384 point: 65 bytes starting 04",
            ),
            (
                line("ecdsa-sha2-nistp256", &[b"nistp384", &point(32)], ""),
                "the curve inside is `nistp384`, not `nistp256`",
            ),
            (
                line("ssh-rsa", &[&[1, 0, 1], &[0x80, 1]], ""),
                "line 1: `n` is negative",
            ),
            (line("ssh-rsa", &[&[1, 0, 1], &[0, 0]], ""), "`n` is zero"),
            (
                line("ssh-rsa", &[&[1, 0, 1], &modulus(), b"extra"], ""),
                "9 unexpected bytes after the key's fields",
            ),
            (
                line("ssh-rsa", &[&[1, 0, 1], &[0x7f; MAX_MPINT + 1]], ""),
                "larger than the 16384 bits OpenSSH accepts",
            ),
            (
                line("ssh-ed25519", &[&[1; 32]], "").replacen("ssh-ed25519", "ssh-rsa", 1),
                "the line says `ssh-rsa` but the key inside is `ssh-ed25519`",
            ),
            (
                format!("{good}\nssh-foo AAAA comment"),
                "line 2: no key type: neither `ssh-foo` nor the word after it is one",
            ),
            (
                format!("{good}\ncommand=\"oops ssh-rsa AAAA"),
                "line 2: the options have an unterminated double quote",
            ),
            (
                format!("ssh-rsa {}", "A".repeat(MAX_LINE)),
                "line 1: the line is 65544 bytes, longer than the 65536 read",
            ),
            (
                format!("ssh-rsa {}", "A".repeat(30_000)),
                "more than a 16384-byte key takes",
            ),
            ("# only\n\n".into(), "holds no key"),
        ];
        for (text, want) in cases {
            let got = error(&text);
            assert!(got.contains(want), "{want:?} not in {got:?}");
            assert!(got.starts_with("unparseable OpenSSH public key"), "{got}");
        }
    }

    #[test]
    fn security_keys_and_certificates_are_unsupported() {
        for (name, want) in [
            ("sk-ssh-ed25519@openssh.com", "FIDO security-key"),
            ("sk-ecdsa-sha2-nistp256@openssh.com", "FIDO security-key"),
            ("ssh-ed25519-cert-v01@openssh.com", "an OpenSSH certificate"),
            (
                "sk-ssh-ed25519-cert-v01@openssh.com",
                "an OpenSSH certificate",
            ),
            ("ssh-xmss@openssh.com", "XMSS"),
        ] {
            let text = format!(
                "{}\nno-touch-required {name} AAAAAAAA user",
                line("ssh-ed25519", &[&[1; 32]], "")
            );
            match parse_openssh(&text) {
                Err(InspectError::Unsupported { what, reason }) => {
                    assert_eq!(what, WHAT);
                    assert!(
                        reason.starts_with(&format!("line 2: `{name}` is")),
                        "{reason}"
                    );
                    assert!(reason.contains(want), "{reason}");
                }
                other => panic!("{name}: {other:?}"),
            }
        }
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let full = line("ecdsa-sha2-nistp521", &[b"nistp521", &point(66)], "comment");
        let rsa = line("ssh-rsa", &[&[1, 0, 1], &modulus()], "");
        for text in [&full, &rsa] {
            // Unpadded base64 is accepted: cut from before the padding.
            let blob_end = text[..text.rfind(' ').unwrap()].trim_end_matches('=').len();
            for cut in 1..blob_end {
                if let Ok(k) = parse_openssh(&text[..cut]) {
                    panic!("{cut}: {k:?}");
                }
            }
        }
        // A blob whose lengths claim more than is there, at every field.
        let mut blob = Vec::new();
        string(&mut blob, b"ssh-rsa");
        blob.extend_from_slice(&u32::MAX.to_be_bytes());
        let text = format!(
            "ssh-rsa {}",
            base64::engine::general_purpose::STANDARD.encode(&blob)
        );
        assert!(error(&text).contains("`e` claims 4294967295 bytes, 0 are left"));
    }
}
