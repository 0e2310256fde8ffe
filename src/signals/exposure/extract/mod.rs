//! Private keys found in bytes, each reduced to its public half where it is found.
//!
//! One pass over the bytes looks for a few markers at once (Aho-Corasick, SIMD-accelerated);
//! only the places they occur are parsed:
//!
//! - PEM private keys (`-----BEGIN [A-Z ]*PRIVATE KEY-----`): PKCS#8, PKCS#1, SEC1 and
//!   OpenSSH, also indented (Markdown, YAML), inside source strings (`\n` escapes, repeated
//!   escaping, quotes and `+` concatenation, HTML breaks and entities) or behind a line
//!   prefix (`//`, `#`, `+` of a diff), repaired as keyfinder does (`pem.rs`);
//! - the same PEM base64-encoded once more (Kubernetes secrets: `LS0tLS1CRUdJTi...`), and
//!   bare base64 DER private keys in a single run (`.env` values) (`b64.rs`);
//! - JWK and JWKS (RFC 7517/7518, RFC 8037): private only with a `d` member (`jwk.rs`);
//! - PuTTY `.ppk` files (`ssh.rs`);
//! - files that are one whole DER object: a private key (PKCS#8, PKCS#1, SEC1, encrypted
//!   PKCS#8) or a PKCS#12 (`der_file.rs`);
//! - UTF-16 text (LE or BE, with or without a byte order mark), searched as the text it
//!   holds (`utf16.rs`);
//! - binary files (firmware images, executables, keystores): DER private keys at any offset,
//!   PEM text and UTF-16 PEM text inside them, and Java keystores (`binary.rs`, `jks.rs`).
//!
//! Encrypted keys (encrypted PKCS#8, `Proc-Type: 4,ENCRYPTED` PEM, an OpenSSH or PuTTY
//! cipher, a PKCS#12 that needs a password, a JKS private key entry) are found too, as
//! encrypted keys (`encrypted.rs`): with the public half that travels in clear beside them
//! when the format has one (OpenSSH, PuTTY, a JKS certificate chain), else without. Public
//! keys, certificates, CSRs and random base64 never are keys: every candidate must parse as a
//! complete private key (or a complete encrypted one), and where the public half travels
//! beside the private one (JWK, OpenSSH, PuTTY) the public half is derived or checked from
//! the private part. Decoded key material is wiped when dropped and never leaves this
//! module.

mod b64;
mod binary;
mod der_file;
mod encrypted;
mod jks;
mod jwk;
mod material;
mod pem;
mod ssh;
mod utf16;

use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use certresponder_inventory::inspect::KeyInfo;

use super::{EncryptedKey, FoundKey, Location};

/// Text files are told from binary ones by a NUL byte in their first bytes, as git and
/// ripgrep do.
const BINARY_PROBE: usize = 8192;
/// JWK and PuTTY markers whose search around them (up to tens of KiB) led nowhere, before
/// the rest of a file is no longer searched for them: text full of such markers and nothing
/// else must not cost the scan quadratic time.
const MAX_MISSES: usize = 1000;
/// How deep base64-encoded PEM is unwrapped.
const MAX_DEPTH: u8 = 2;

/// One private key found in bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extracted {
    /// Its public half.
    pub public: KeyInfo,
    /// How it was encoded: `pem`, `der`, `pkcs12`, `jwk`, `openssh`, `putty`, `base64`
    /// (bare base64 DER).
    pub format: &'static str,
    /// 1-based line where the key's block starts; `None` for binary data.
    pub line: Option<usize>,
    /// Byte offset where the key starts in binary data; `None` for text and whole files.
    pub offset: Option<usize>,
}

/// One encrypted private key found in bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtractedEncrypted {
    /// Its public half, when the format stores it in clear beside the encrypted key (an
    /// OpenSSH or PuTTY key, a JKS certificate chain). It is what the file says, which the
    /// encrypted part cannot confirm without the password.
    pub public: Option<KeyInfo>,
    /// How it was encoded: `pem`, `der`, `pkcs12`, `jks`, `openssh`, `putty`, `base64`.
    pub format: &'static str,
    /// What encrypts it (`PBES2 aes-256-cbc`, `OpenSSH aes256-ctr`...).
    pub encryption: String,
    /// 1-based line where the key's block starts; `None` for binary data.
    pub line: Option<usize>,
    /// Byte offset where the key starts in binary data; `None` for text and whole files.
    pub offset: Option<usize>,
}

/// Everything [`keys_in`] found in one file or blob.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extraction {
    /// The private keys, in file order, each (key, place) once.
    pub keys: Vec<Extracted>,
    /// The encrypted private keys, in file order.
    pub encrypted: Vec<ExtractedEncrypted>,
    /// Private keys of a kind certresponder cannot reduce to a public key (DSA, Ed448
    /// without its public key, hardware-bound OpenSSH keys).
    pub unsupported: usize,
    /// Whether the bytes were binary (searched for DER keys, keystores and the text inside
    /// them, without lines).
    pub binary: bool,
}

/// An extraction's keys at one location.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Located {
    /// Private keys, and encrypted ones whose public half is known (their locations say
    /// how they are encrypted).
    pub found: Vec<FoundKey>,
    /// Encrypted private keys whose public half is not known.
    pub encrypted: Vec<EncryptedKey>,
}

/// Where in the bytes something was found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Place {
    line: Option<usize>,
    offset: Option<usize>,
}

impl Extraction {
    /// The keys at `template`, each with its line or offset.
    pub fn found_at(self, template: &Location) -> Located {
        let at =
            |line: Option<usize>, offset: Option<usize>, encryption: Option<String>| Location {
                line,
                offset: offset.map(|o| o as u64),
                encryption,
                ..template.clone()
            };
        let mut out = Located::default();
        for k in self.keys {
            out.found.push(FoundKey {
                public: k.public,
                format: k.format,
                location: at(k.line, k.offset, None),
            });
        }
        for k in self.encrypted {
            let location = at(k.line, k.offset, Some(k.encryption));
            match k.public {
                Some(public) => out.found.push(FoundKey {
                    public,
                    format: k.format,
                    location,
                }),
                None => out.encrypted.push(EncryptedKey {
                    format: k.format,
                    location,
                }),
            }
        }
        out
    }

    fn push(&mut self, seen: Seen, at: Place) {
        match seen {
            Seen::Key(public, format) => {
                let dup = self.keys.iter().any(|k| {
                    k.line == at.line && k.offset == at.offset && k.public.same_public_key(&public)
                });
                if !dup {
                    self.keys.push(Extracted {
                        public,
                        format,
                        line: at.line,
                        offset: at.offset,
                    });
                }
            }
            Seen::Encrypted(e) => self.encrypted.push(ExtractedEncrypted {
                public: e.public,
                format: e.format,
                encryption: e.encryption,
                line: at.line,
                offset: at.offset,
            }),
            Seen::Unsupported => self.unsupported += 1,
        }
    }

    /// What was found, as one parser's view of one place (for text decoded from a block).
    fn into_seen(self) -> Vec<Seen> {
        let mut seen: Vec<Seen> = self
            .keys
            .into_iter()
            .map(|k| Seen::Key(k.public, k.format))
            .collect();
        seen.extend(self.encrypted.into_iter().map(|e| {
            Seen::Encrypted(Encrypted {
                public: e.public,
                format: e.format,
                encryption: e.encryption,
            })
        }));
        seen.extend((0..self.unsupported).map(|_| Seen::Unsupported));
        seen
    }
}

/// An encrypted private key as a parser saw it.
#[derive(Debug)]
struct Encrypted {
    /// The public half stored in clear beside it, if the format has one.
    public: Option<KeyInfo>,
    /// The format.
    format: &'static str,
    /// What encrypts it.
    encryption: String,
}

impl Encrypted {
    /// An encrypted key whose public half is not known.
    fn sealed(format: &'static str, encryption: impl Into<String>) -> Seen {
        Seen::Encrypted(Self {
            public: None,
            format,
            encryption: encryption.into(),
        })
    }
}

/// What one parser made of one place in the bytes.
#[derive(Debug)]
enum Seen {
    /// A private key (its public half) and the format it was in.
    Key(KeyInfo, &'static str),
    /// An encrypted private key.
    Encrypted(Encrypted),
    /// A private key of a kind that cannot be reduced to a public key here.
    Unsupported,
}

/// A recognised block: where it starts (for its line), where it ends (the scan resumes
/// there), and what it held.
#[derive(Debug)]
struct Block {
    start: usize,
    end: usize,
    seen: Vec<Seen>,
}

/// The markers searched for, in one automaton. The index of each names its parser.
const PEM_MARKER: &str = "PRIVATE KEY-----";
const JWK_MARKER: &str = "kty";
const PUTTY_MARKER: &str = "PuTTY-User-Key-File-";
const MARKERS: &[&str] = &[PEM_MARKER, JWK_MARKER, PUTTY_MARKER, b64::PEM_IN_BASE64];

fn automaton() -> &'static AhoCorasick {
    static AC: OnceLock<AhoCorasick> = OnceLock::new();
    AC.get_or_init(|| {
        let patterns: Vec<&str> = MARKERS
            .iter()
            .copied()
            .chain(b64::BARE_DER_MARKERS.iter().copied())
            .collect();
        // Fixed, valid patterns: building the automaton cannot fail; a DFA is the fastest
        // kind for a handful of short patterns, and the SIMD prefilter does most of the work.
        #[allow(clippy::expect_used)]
        AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostFirst)
            .kind(Some(AhoCorasickKind::DFA))
            .build(patterns)
            .expect("the exposure markers are valid patterns")
    })
}

/// Finds the private keys in a file's or blob's bytes.
///
/// A whole DER object (a private key or a PKCS#12) is read as one; UTF-16 text is searched
/// as the text it holds; other binary data (a NUL byte among the first 8 KiB) is searched
/// for DER keys, keystores and the text inside it; text is searched for every format above.
pub fn keys_in(bytes: &[u8]) -> Extraction {
    let mut out = Extraction::default();
    let probe = &bytes[..bytes.len().min(BINARY_PROBE)];
    let binary = memchr::memchr(0, probe).is_some();
    if bytes.first() == Some(&0x30) && der_file::is_whole_der(bytes) {
        let seen = der_file::der_file(bytes);
        // Text that happens to start like DER (`0` and a length byte) is still searched.
        if !seen.is_empty() || binary {
            for seen in seen {
                out.push(seen, Place::default());
            }
            out.binary = true;
            return out;
        }
    }
    if let Some(text16) = utf16::text(bytes, binary) {
        text(&text16, 0, Positions::Lines, &mut out);
        return out;
    }
    if binary {
        out.binary = true;
        binary::search(bytes, &mut out);
        return out;
    }
    text(bytes, 0, Positions::Lines, &mut out);
    out
}

/// How the places of what [`text`] finds are given.
#[derive(Debug, Clone, Copy)]
enum Positions {
    /// As lines of the text.
    Lines,
    /// As byte offsets in the original bytes: `base + stride * i` for byte `i` of the text
    /// (a stride of 2 for text narrowed from UTF-16).
    Offsets { base: usize, stride: usize },
}

/// Searches text; `depth` counts base64 unwrapping.
fn text(bytes: &[u8], depth: u8, positions: Positions, out: &mut Extraction) {
    let mut consumed = 0usize;
    let mut lines = LineCounter::default();
    let mut budget = MAX_MISSES;
    for m in automaton().find_iter(bytes) {
        if m.start() < consumed {
            continue;
        }
        let id = m.pattern().as_usize();
        let block = match MARKERS.get(id) {
            Some(&PEM_MARKER) => pem::block_at(bytes, m.start()),
            Some(&JWK_MARKER) => jwk::object_at(bytes, m.start(), &mut budget),
            Some(&PUTTY_MARKER) => ssh::putty_at(bytes, m.start(), &mut budget),
            Some(_) if depth < MAX_DEPTH => b64::pem_in_base64_at(bytes, m.start(), depth),
            Some(_) => None,
            None => b64::bare_der_at(bytes, m.start()),
        };
        let Some(block) = block else { continue };
        let at = match positions {
            Positions::Lines => Place {
                line: Some(lines.line_of(bytes, block.start)),
                offset: None,
            },
            Positions::Offsets { base, stride } => Place {
                line: None,
                offset: Some(base + stride * block.start),
            },
        };
        for seen in block.seen {
            out.push(seen, at);
        }
        consumed = block.end;
    }
}

/// 1-based line numbers of increasing offsets, counted incrementally.
#[derive(Debug, Default)]
struct LineCounter {
    pos: usize,
    newlines: usize,
}

impl LineCounter {
    fn line_of(&mut self, bytes: &[u8], pos: usize) -> usize {
        let pos = pos.min(bytes.len());
        if pos < self.pos {
            *self = Self::default();
        }
        self.newlines += memchr::memchr_iter(b'\n', &bytes[self.pos..pos]).count();
        self.pos = pos;
        self.newlines + 1
    }
}

#[cfg(test)]
mod tests;
