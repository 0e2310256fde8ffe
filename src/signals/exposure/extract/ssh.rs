//! SSH private keys: OpenSSH's `openssh-key-v1` (the body of `-----BEGIN OPENSSH PRIVATE
//! KEY-----`, PROTOCOL.key in OpenSSH's sources) and PuTTY's `.ppk` files (versions 2 and 3).
//! An unencrypted key (cipher `none`, `Encryption: none`) is reduced to the public key
//! derived from its private part (Ed25519 seed, EC scalar), or its RSA primes are checked to
//! multiply to the modulus; keys bound to hardware (`sk-*`) and DSA keys are counted as
//! unsupported. An encrypted key is an encrypted key with the public key both formats keep
//! in clear beside it (RFC 4253 §6.6 encoding), which the encrypted part cannot confirm.

use zeroize::Zeroizing;

use certresponder_inventory::inspect::KeyInfo;

use super::material::{self, OID_P256, OID_P384, OID_P521};
use super::{Block, Encrypted, Seen, b64, encrypted};

const OPENSSH_MAGIC: &[u8] = b"openssh-key-v1\0";
/// The magic number of an ssh.com (SECSH) private key blob.
const SSH_COM_MAGIC: &[u8] = &[0x3f, 0x6f, 0xf9, 0xeb];
/// More keys than this in one file is not a real file.
const MAX_KEYS: u32 = 16;
/// The longest `.ppk` file read (an RSA-16384 key is about 6 KiB).
const MAX_PPK: usize = 64 * 1024;

/// The SSH wire encoding (RFC 4251 §5).
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn u32(&mut self) -> Option<u32> {
        let (head, rest) = self.0.split_first_chunk::<4>()?;
        self.0 = rest;
        Some(u32::from_be_bytes(*head))
    }

    fn string(&mut self) -> Option<&'a [u8]> {
        let len = usize::try_from(self.u32()?).ok()?;
        if len > self.0.len() {
            return None;
        }
        let (s, rest) = self.0.split_at(len);
        self.0 = rest;
        Some(s)
    }

    /// An mpint, which for the keys read here is never negative.
    fn mpint(&mut self) -> Option<&'a [u8]> {
        let v = self.string()?;
        if v.first().is_some_and(|b| b & 0x80 != 0) {
            return None;
        }
        Some(v)
    }
}

fn curve_oid(name: &[u8]) -> Option<&'static [u8]> {
    match name {
        b"nistp256" => Some(OID_P256),
        b"nistp384" => Some(OID_P384),
        b"nistp521" => Some(OID_P521),
        _ => None,
    }
}

/// The keys of a decoded `openssh-key-v1` blob; `None` when it is not one.
pub(super) fn openssh(blob: &[u8]) -> Option<Vec<Seen>> {
    let mut r = Reader(blob.strip_prefix(OPENSSH_MAGIC)?);
    let cipher = r.string()?;
    let _kdf = r.string()?;
    let _kdf_options = r.string()?;
    let count = r.u32()?;
    if count == 0 || count > MAX_KEYS {
        return None;
    }
    let mut publics = Vec::new();
    for _ in 0..count {
        publics.push(r.string()?);
    }
    let private = r.string()?;
    if cipher != b"none" {
        let encryption = format!("OpenSSH {}", encrypted::printable(cipher));
        return Some(
            publics
                .into_iter()
                .map(|blob| {
                    Seen::Encrypted(Encrypted {
                        public: public_key(blob),
                        format: "openssh",
                        encryption: encryption.clone(),
                    })
                })
                .collect(),
        );
    }
    let mut p = Reader(private);
    // Two equal check words open the (decrypted) private section.
    if p.u32()? != p.u32()? {
        return None;
    }
    let mut out = Vec::new();
    for _ in 0..count {
        let kind = p.string()?;
        let seen = match kind {
            b"ssh-ed25519" => {
                let _public = p.string()?;
                let secret = p.string()?;
                material::ed25519_seed(secret.get(..32)?, "openssh")?
            }
            b"ssh-rsa" => {
                let n = p.mpint()?;
                let e = p.mpint()?;
                let _d = p.mpint()?;
                let _iqmp = p.mpint()?;
                let prime_p = p.mpint()?;
                let prime_q = p.mpint()?;
                material::rsa_with_primes(n, e, prime_p, prime_q, "openssh")?
            }
            k if k.starts_with(b"ecdsa-sha2-") => {
                let curve = p.string()?;
                let _point = p.string()?;
                let d = p.mpint()?;
                match curve_oid(curve) {
                    Some(oid) => material::ec_scalar(oid, d, "openssh")?,
                    None => Seen::Unsupported,
                }
            }
            // DSA, hardware-bound (sk-*) and unknown key types: their fields cannot be
            // skipped without knowing them, so the rest of the file is not read.
            _ => {
                out.push(Seen::Unsupported);
                return Some(out);
            }
        };
        let _comment = p.string()?;
        out.push(seen);
    }
    Some(out)
}

/// The public key in an SSH public key blob (RFC 4253 §6.6, RFC 5656 §3.1, RFC 8709 §4):
/// Ed25519, RSA and ECDSA on the NIST curves; `None` for other kinds or a malformed blob.
fn public_key(blob: &[u8]) -> Option<KeyInfo> {
    let mut r = Reader(blob);
    match r.string()? {
        b"ssh-ed25519" => material::ed25519_public(r.string()?),
        b"ssh-rsa" => {
            let e = r.mpint()?;
            let n = r.mpint()?;
            material::rsa_public_checked(n, e)
        }
        k if k.starts_with(b"ecdsa-sha2-") => {
            let curve = curve_oid(r.string()?)?;
            material::ec_public(curve, r.string()?)
        }
        _ => None,
    }
}

/// The decoded body of an ssh.com (SECSH) private key block: magic, total length, key type
/// and cipher; encrypted unless the cipher is `none` (which is not a format read here).
pub(super) fn ssh_com(blob: &[u8]) -> Option<Seen> {
    let mut r = Reader(blob.strip_prefix(SSH_COM_MAGIC)?);
    let total = usize::try_from(r.u32()?).ok()?;
    if total != blob.len() {
        return None;
    }
    let _kind = r.string()?;
    let cipher = r.string()?;
    if cipher == b"none" {
        return Some(Seen::Unsupported);
    }
    Some(Encrypted::sealed(
        "pem",
        format!("ssh.com {}", encrypted::printable(cipher)),
    ))
}

/// The PuTTY key file whose first line's marker is at `hit`. A marker that does not start
/// a key file takes one from `budget`; with none left, nothing is looked for.
pub(super) fn putty_at(bytes: &[u8], hit: usize, budget: &mut usize) -> Option<Block> {
    if *budget == 0 {
        return None;
    }
    let found = putty(bytes, hit);
    if found.is_none() {
        *budget -= 1;
    }
    found
}

fn putty(bytes: &[u8], hit: usize) -> Option<Block> {
    let text = &bytes[hit..bytes.len().min(hit + MAX_PPK)];
    let mut lines = text
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let first = lines.next()?;
    let kind = header(first, b"PuTTY-User-Key-File-2")
        .or_else(|| header(first, b"PuTTY-User-Key-File-3"))?;
    let mut encryption = None;
    let mut public = None;
    let mut private = None;
    let mut consumed = first.len() + 1;
    while let Some(line) = lines.next() {
        consumed += line.len() + 1;
        if let Some(v) = header(line, b"Encryption") {
            encryption = Some(v);
        } else if let Some(n) = header(line, b"Public-Lines") {
            public = Some(base64_lines(&mut lines, n, &mut consumed)?);
        } else if let Some(n) = header(line, b"Private-Lines") {
            private = Some(base64_lines(&mut lines, n, &mut consumed)?);
        } else if header(line, b"Private-MAC").is_some() {
            break;
        }
    }
    let block = |seen: Seen| {
        Some(Block {
            start: hit,
            end: hit + consumed.min(text.len()),
            seen: vec![seen],
        })
    };
    let encryption = encryption?;
    let public = b64::decode(&public?)?;
    if encryption != b"none" {
        let mut pubr = Reader(&public);
        let named = pubr.string().is_some_and(|k| k == kind);
        return block(Seen::Encrypted(Encrypted {
            public: named.then(|| public_key(&public)).flatten(),
            format: "putty",
            encryption: format!("PuTTY {}", encrypted::printable(encryption)),
        }));
    }
    let private = b64::decode(&private?)?;
    let mut pubr = Reader(&public);
    let mut privr = Reader(&private);
    if pubr.string()? != kind {
        return None;
    }
    let seen = match kind {
        b"ssh-ed25519" => material::ed25519_seed(privr.string()?, "putty")?,
        b"ssh-rsa" => {
            let e = pubr.mpint()?;
            let n = pubr.mpint()?;
            let _d = privr.mpint()?;
            let p = privr.mpint()?;
            let q = privr.mpint()?;
            material::rsa_with_primes(n, e, p, q, "putty")?
        }
        k if k.starts_with(b"ecdsa-sha2-") => match curve_oid(pubr.string()?) {
            Some(oid) => material::ec_scalar(oid, privr.mpint()?, "putty")?,
            None => Seen::Unsupported,
        },
        _ => Seen::Unsupported,
    };
    block(seen)
}

/// The value of a `Name: value` line.
fn header<'a>(line: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let rest = line.strip_prefix(name)?.strip_prefix(b":")?;
    Some(rest.trim_ascii())
}

/// The next `count` lines (a decimal count), concatenated.
fn base64_lines<'a>(
    lines: &mut impl Iterator<Item = &'a [u8]>,
    count: &[u8],
    consumed: &mut usize,
) -> Option<Zeroizing<Vec<u8>>> {
    let n: usize = std::str::from_utf8(count).ok()?.parse().ok()?;
    if n > 1024 {
        return None;
    }
    let mut out = Zeroizing::new(Vec::new());
    for _ in 0..n {
        let line = lines.next()?;
        *consumed += line.len() + 1;
        out.extend_from_slice(line.trim_ascii());
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(v: &[u8]) -> Vec<u8> {
        let mut out = u32::try_from(v.len()).unwrap().to_be_bytes().to_vec();
        out.extend_from_slice(v);
        out
    }

    /// An `openssh-key-v1` blob for one Ed25519 key.
    fn ed25519_blob(
        cipher: &[u8],
        seed: &[u8; 32],
        public: &[u8; 32],
        check: (u32, u32),
    ) -> Vec<u8> {
        let pubkey = [string(b"ssh-ed25519"), string(public)].concat();
        let mut secret = seed.to_vec();
        secret.extend_from_slice(public);
        let private = [
            check.0.to_be_bytes().to_vec(),
            check.1.to_be_bytes().to_vec(),
            string(b"ssh-ed25519"),
            string(public),
            string(&secret),
            string(b"comment"),
        ]
        .concat();
        [
            OPENSSH_MAGIC.to_vec(),
            string(cipher),
            string(b"none"),
            string(b""),
            1u32.to_be_bytes().to_vec(),
            string(&pubkey),
            string(&private),
        ]
        .concat()
    }

    #[test]
    fn openssh_ed25519_plain_encrypted_and_corrupt() {
        let seed = [7u8; 32];
        let pair = aws_lc_rs::signature::Ed25519KeyPair::from_seed_unchecked(&seed).unwrap();
        let public: [u8; 32] = aws_lc_rs::signature::KeyPair::public_key(&pair)
            .as_ref()
            .try_into()
            .unwrap();
        let blob = ed25519_blob(b"none", &seed, &public, (1, 1));
        let seen = openssh(&blob).unwrap();
        assert!(
            matches!(&seen[..], [Seen::Key(KeyInfo::Ed25519 { public: p }, "openssh")] if p == &public)
        );
        let seen = openssh(&ed25519_blob(b"aes256-ctr", &seed, &public, (1, 1))).unwrap();
        assert!(
            matches!(&seen[..], [Seen::Encrypted(Encrypted { public: Some(KeyInfo::Ed25519 { public: p }), format: "openssh", encryption })] if p == &public && encryption == "OpenSSH aes256-ctr"),
            "{seen:?}"
        );
        assert!(openssh(&ed25519_blob(b"none", &seed, &public, (1, 2))).is_none());
        assert!(openssh(&blob[..blob.len() - 3]).is_none());
    }
}
