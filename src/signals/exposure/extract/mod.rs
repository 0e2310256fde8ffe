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
//! - files that are one whole DER object: a private key (PKCS#8, PKCS#1, SEC1) or a PKCS#12
//!   that opens with the empty password (`der_file.rs`).
//!
//! Encrypted keys (`ENCRYPTED PRIVATE KEY`, `Proc-Type: 4,ENCRYPTED`, an OpenSSH or PuTTY
//! cipher, a PKCS#12 that needs a password) are not exposures: they are counted, not
//! reported. Public keys, certificates, CSRs and random base64 never are keys: every
//! candidate must parse as a complete private key, and where the public half travels beside
//! the private one (JWK, OpenSSH, PuTTY) the public half is derived or checked from the
//! private part. Decoded key material is wiped when dropped and never leaves this module.

mod b64;
mod der_file;
mod jwk;
mod material;
mod pem;
mod ssh;

use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use certresponder_inventory::inspect::KeyInfo;

use super::{FoundKey, Location};

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
    /// 1-based line where the key's block starts; `None` for a whole binary file.
    pub line: Option<usize>,
}

/// Everything [`keys_in`] found in one file or blob.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extraction {
    /// The private keys, in file order, each (key, line) once.
    pub keys: Vec<Extracted>,
    /// Private keys that are encrypted (not exposed).
    pub encrypted: usize,
    /// Private keys of a kind certresponder cannot reduce to a public key (DSA, Ed448
    /// without its public key, hardware-bound OpenSSH keys).
    pub unsupported: usize,
    /// Whether the bytes were binary (and so searched only as a whole DER or PKCS#12 file).
    pub binary: bool,
}

impl Extraction {
    /// The keys as [`FoundKey`]s at `template`, each with its line.
    pub fn found_at(self, template: &Location) -> Vec<FoundKey> {
        self.keys
            .into_iter()
            .map(|k| FoundKey {
                public: k.public,
                format: k.format,
                location: Location {
                    line: k.line,
                    ..template.clone()
                },
            })
            .collect()
    }

    fn push(&mut self, seen: Seen, line: Option<usize>) {
        match seen {
            Seen::Key(public, format) => {
                let dup = self
                    .keys
                    .iter()
                    .any(|k| k.line == line && k.public.same_public_key(&public));
                if !dup {
                    self.keys.push(Extracted {
                        public,
                        format,
                        line,
                    });
                }
            }
            Seen::Encrypted => self.encrypted += 1,
            Seen::Unsupported => self.unsupported += 1,
        }
    }
}

/// What one parser made of one place in the bytes.
#[derive(Debug)]
enum Seen {
    /// A private key (its public half) and the format it was in.
    Key(KeyInfo, &'static str),
    /// An encrypted private key.
    Encrypted,
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
/// A whole DER object (a private key or a PKCS#12) is read as one; other binary data (a NUL
/// byte among the first 8 KiB) is skipped; text is searched for every format above.
pub fn keys_in(bytes: &[u8]) -> Extraction {
    let mut out = Extraction::default();
    let probe = &bytes[..bytes.len().min(BINARY_PROBE)];
    let binary = memchr::memchr(0, probe).is_some();
    if bytes.first() == Some(&0x30) && der_file::is_whole_der(bytes) {
        let seen = der_file::der_file(bytes);
        // Text that happens to start like DER (`0` and a length byte) is still searched.
        if !seen.is_empty() || binary {
            for seen in seen {
                out.push(seen, None);
            }
            out.binary = true;
            return out;
        }
    }
    if binary {
        out.binary = true;
        return out;
    }
    text(bytes, 0, &mut out);
    out
}

/// Searches text; `depth` counts base64 unwrapping.
fn text(bytes: &[u8], depth: u8, out: &mut Extraction) {
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
        let line = lines.line_of(bytes, block.start);
        for seen in block.seen {
            out.push(seen, Some(line));
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
