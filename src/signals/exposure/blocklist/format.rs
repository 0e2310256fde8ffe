//! The three list formats, read and checked, and told apart.
//!
//! - `badkeys`: badkeys' `blocklist.dat`, sorted 16-byte records: the first 15 bytes of
//!   SHA-256 of the key's number (BKHASH120) and a one-byte source id.
//! - `debian`: Debian's openssl-blacklist files (`blacklist.RSA-2048`): one 20-hex-digit
//!   SHA-1 suffix of `Modulus=...\n` per line, `#` comments.
//! - `spki`: SHA-256 fingerprints of SubjectPublicKeyInfos (as pwnedkeys names keys): one
//!   64-hex-digit value per line, `#` comments.
//! - `badkeys-primes`: badkeys' `keydata/primesBITS.dat`, the product of primes known to be
//!   shared by RSA keys of BITS bits found in internet scans, as gmpy2 writes a number
//!   (`to_binary`: type byte 0x01, sign byte 0x01 for positive, then the magnitude
//!   little-endian). Stored as the product, big-endian; an RSA modulus of BITS bits is
//!   checked with one gcd against it.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::BlocklistError;
use super::table::Table;

/// A list's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// badkeys `blocklist.dat`.
    Badkeys,
    /// Debian openssl-blacklist.
    Debian,
    /// SPKI SHA-256 fingerprints.
    Spki,
    /// badkeys' known-bad primes (`keydata/primesBITS.dat`).
    #[serde(rename = "badkeys-primes")]
    BadkeysPrimes,
}

impl Format {
    /// Every format.
    pub const ALL: [Self; 4] = [Self::Badkeys, Self::Debian, Self::Spki, Self::BadkeysPrimes];

    /// The format's name, as the command line and the index spell it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Badkeys => "badkeys",
            Self::Debian => "debian",
            Self::Spki => "spki",
            Self::BadkeysPrimes => "badkeys-primes",
        }
    }

    /// The length of a stored record.
    pub fn record_len(self) -> usize {
        match self {
            Self::Badkeys => 16,
            Self::Debian => DEBIAN_LEN,
            Self::Spki => SPKI_LEN,
            // Stored whole, not as records.
            Self::BadkeysPrimes => 1,
        }
    }

    /// The length of the key a record starts with.
    pub fn key_len(self) -> usize {
        match self {
            Self::Badkeys => 15,
            Self::Debian => DEBIAN_LEN,
            Self::Spki => SPKI_LEN,
            Self::BadkeysPrimes => 1,
        }
    }

    /// What one entry is, for error messages.
    fn entry(self) -> &'static str {
        match self {
            Self::Badkeys => "a badkeys record",
            Self::Debian => "a Debian openssl-blacklist entry",
            Self::Spki => "an SPKI SHA-256",
            Self::BadkeysPrimes => "a product of primes",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| {
                format!(
                    "unknown blocklist format `{s}` (expected badkeys, debian, spki or badkeys-primes)"
                )
            })
    }
}

/// Bytes of a Debian entry (80 bits).
const DEBIAN_LEN: usize = 10;
/// Bytes of an SPKI SHA-256.
const SPKI_LEN: usize = 32;

/// Reads a list in `format` into a table; errors name `path` and, for the text formats,
/// the line.
pub fn parse(path: &Path, bytes: Vec<u8>, format: Format) -> Result<Table, BlocklistError> {
    let table = match format {
        Format::Badkeys => Table::from_sorted(bytes, format.record_len(), format.key_len()),
        Format::Debian => {
            Table::from_unsorted(hex_lines::<DEBIAN_LEN>(path, &bytes, format)?, DEBIAN_LEN)
        }
        Format::Spki => {
            Table::from_unsorted(hex_lines::<SPKI_LEN>(path, &bytes, format)?, SPKI_LEN)
        }
        Format::BadkeysPrimes => {
            return Err(BlocklistError::Malformed {
                path: path.to_path_buf(),
                line: None,
                message: "a product of primes is not a table of records".into(),
            });
        }
    };
    table.map_err(|source| BlocklistError::Table {
        path: path.to_path_buf(),
        format,
        source,
    })
}

/// The entry lines of a text list: (1-based line number, trimmed line), without blank lines
/// and `#` comments.
fn entry_lines(bytes: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    bytes
        .split(|&b| b == b'\n')
        .enumerate()
        .map(|(i, line)| (i + 1, line.trim_ascii()))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with(b"#"))
}

/// A line for an error message, described by its length and kind only: the content is
/// never quoted, since a file imported by mistake (a `.env`, a key's body) could hold a
/// secret.
fn shown(line: &[u8]) -> String {
    let kind = if line.iter().all(u8::is_ascii_hexdigit) {
        "hex digits"
    } else if line
        .iter()
        .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'-' | b'_'))
    {
        "base64-like characters"
    } else if line.iter().all(|&b| matches!(b, b'\t' | 0x20..=0x7e)) {
        "text"
    } else {
        "binary or non-ASCII bytes"
    };
    format!("a line of {} bytes ({kind})", line.len())
}

fn hex_lines<const N: usize>(
    path: &Path,
    bytes: &[u8],
    format: Format,
) -> Result<Vec<[u8; N]>, BlocklistError> {
    let mut out = Vec::new();
    for (line_no, line) in entry_lines(bytes) {
        let mut rec = [0u8; N];
        if line.len() != 2 * N || hex::decode_to_slice(line, &mut rec).is_err() {
            return Err(BlocklistError::Malformed {
                path: path.to_path_buf(),
                line: Some(line_no),
                message: format!(
                    "expected {} hex digits ({}), found {}",
                    2 * N,
                    format.entry(),
                    shown(line)
                ),
            });
        }
        out.push(rec);
    }
    Ok(out)
}

/// Whether `bytes` look like text: printable ASCII, tabs and line breaks only.
fn is_text(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .all(|&b| matches!(b, b'\t' | b'\n' | b'\r' | 0x20..=0x7e))
}

/// Tells a list's format from its content: binary with a whole number of 16-byte records
/// is `badkeys`; text whose entries are all 20 hex digits `debian`, all 64 `spki`.
/// Anything else is an error asking for `--format`.
pub fn detect(path: &Path, bytes: &[u8]) -> Result<Format, BlocklistError> {
    let unknown = |message: String| BlocklistError::Detect {
        path: path.to_path_buf(),
        message,
    };
    if bytes.is_empty() {
        return Err(unknown("the file is empty".into()));
    }
    if !is_text(bytes) {
        if primes_key_bits(path).is_some() && bytes.starts_with(&[0x01, 0x01]) {
            return Ok(Format::BadkeysPrimes);
        }
        if bytes.len().is_multiple_of(16) {
            return Ok(Format::Badkeys);
        }
        return Err(unknown(format!(
            "a binary file, but its {} bytes are not a whole number of 16-byte badkeys records",
            bytes.len()
        )));
    }
    let mut seen: Option<(Format, usize)> = None;
    for (line_no, line) in entry_lines(bytes) {
        let this = match line.len() {
            20 if line.iter().all(u8::is_ascii_hexdigit) => Format::Debian,
            64 if line.iter().all(u8::is_ascii_hexdigit) => Format::Spki,
            _ => {
                return Err(unknown(format!(
                    "line {line_no} is neither 20 hex digits (debian) nor 64 (spki): {}",
                    shown(line)
                )));
            }
        };
        match seen {
            None => seen = Some((this, line_no)),
            Some((first, first_line)) if first != this => {
                return Err(unknown(format!(
                    "line {first_line} looks like {first}, line {line_no} like {this}"
                )));
            }
            Some(_) => {}
        }
    }
    seen.map(|(f, _)| f)
        .ok_or_else(|| unknown("a text file without entries (only comments or blank lines)".into()))
}

/// The RSA key size a badkeys prime file is for, from its name (`primes2048.dat`).
pub fn primes_key_bits(path: &Path) -> Option<u32> {
    let name = path.file_name()?.to_str()?;
    let bits: u32 = name
        .strip_prefix("primes")?
        .strip_suffix(".dat")?
        .parse()
        .ok()?;
    (bits >= 256 && bits.is_multiple_of(2)).then_some(bits)
}

/// The number in a gmpy2 `to_binary` file, as big-endian bytes without leading zeros:
/// a positive integer (type 0x01, sign 0x01), else an error naming the file.
pub fn gmpy2_number(path: &Path, bytes: &[u8]) -> Result<Vec<u8>, BlocklistError> {
    let bad = |message: String| BlocklistError::Malformed {
        path: path.to_path_buf(),
        line: None,
        message,
    };
    match bytes {
        [0x01, 0x01, magnitude @ ..] if magnitude.iter().any(|&b| b != 0) => {
            let mut be: Vec<u8> = magnitude.iter().rev().copied().collect();
            let start = be.iter().position(|&b| b != 0).unwrap_or(be.len());
            be.drain(..start);
            Ok(be)
        }
        [0x01, 0x00 | 0x01, ..] => Err(bad("the product of primes is zero".into())),
        [0x01, 0x02, ..] => Err(bad("the product of primes is negative".into())),
        [t, ..] => Err(bad(format!(
            "not a gmpy2 integer (type byte {t:#04x}, expected 0x01 followed by the sign 0x01)"
        ))),
        [] => Err(bad("the file is empty".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> &'static Path {
        Path::new("lists/x.txt")
    }

    #[test]
    fn text_lists_skip_comments_sort_and_deduplicate() {
        let text = b"# Debian openssl-blacklist\n\nffffffffffffffffffff\r\n  00000000000000000001 \n0123456789ABCDEF0123\nffffffffffffffffffff\n";
        let t = parse(p(), text.to_vec(), Format::Debian).unwrap();
        assert_eq!(t.len(), 3);
        assert!(
            t.find(&hex::decode("0123456789abcdef0123").unwrap())
                .is_some()
        );
        assert!(
            t.find(&hex::decode("00000000000000000001").unwrap())
                .is_some()
        );
        assert!(
            t.find(&hex::decode("00000000000000000002").unwrap())
                .is_none()
        );
        let spki = format!("{}\n# c\n{}\n", "ab".repeat(32), "01".repeat(32));
        let t = parse(p(), spki.into_bytes(), Format::Spki).unwrap();
        assert_eq!(t.len(), 2);
        assert!(t.find(&[0xab; 32]).is_some());
    }

    #[test]
    fn malformed_lines_are_named_with_the_file_and_line() {
        let text = b"# header\n0123456789abcdef0123\n0123456789abcdef012\n";
        let err = parse(p(), text.to_vec(), Format::Debian).unwrap_err();
        assert_eq!(
            err.to_string(),
            "lists/x.txt: line 3: expected 20 hex digits (a Debian openssl-blacklist entry), found a line of 19 bytes (hex digits)"
        );
        let text = format!("{}\n{}x\n", "a".repeat(64), "b".repeat(63));
        let err = parse(p(), text.into_bytes(), Format::Spki).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("lists/x.txt: line 2: expected 64 hex digits"),
            "{err}"
        );
        let err = parse(p(), b"zz0123456789abcdef01\n".to_vec(), Format::Debian).unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
    }

    #[test]
    fn errors_never_quote_the_line() {
        let secret = b"PRIVATE_KEY=MHcCAQEEIDsecretsecretsecretsecretsecretsecret\n";
        for format in [Format::Debian, Format::Spki] {
            let err = parse(p(), secret.to_vec(), format).unwrap_err().to_string();
            assert!(!err.contains("MHcC") && !err.contains("PRIVATE"), "{err}");
            assert!(
                err.contains("line 1") && err.contains("a line of 58 bytes"),
                "{err}"
            );
        }
        let err = detect(p(), b"MIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("MIIE"), "{err}");
        assert!(
            err.contains("a line of 32 bytes (base64-like characters)"),
            "{err}"
        );
    }

    #[test]
    fn badkeys_lists_must_be_whole_and_sorted() {
        let err = parse(p(), vec![1; 33], Format::Badkeys).unwrap_err();
        assert_eq!(
            err.to_string(),
            "lists/x.txt: not a valid badkeys list: 33 bytes is not a whole number of 16-byte records"
        );
        let mut data = vec![0u8; 16 * 3];
        data[16] = 2;
        data[32] = 1;
        let err = parse(p(), data, Format::Badkeys).unwrap_err();
        assert_eq!(
            err.to_string(),
            "lists/x.txt: not a valid badkeys list: the records are not sorted: record 2 (byte offset 32) sorts before record 1"
        );
    }

    #[test]
    fn formats_are_detected_or_asked_for() {
        let mut bin = vec![0u8; 32];
        bin[31] = 0x80;
        assert_eq!(detect(p(), &bin).unwrap(), Format::Badkeys);
        assert_eq!(
            detect(p(), b"# c\n0123456789abcdef0123\n").unwrap(),
            Format::Debian
        );
        assert_eq!(
            detect(p(), format!("{}\n", "0f".repeat(32)).as_bytes()).unwrap(),
            Format::Spki
        );
        let err = |b: &[u8]| detect(p(), b).unwrap_err().to_string();
        assert_eq!(
            err(b""),
            "lists/x.txt: cannot tell the list's format: the file is empty; give --format"
        );
        assert!(err(&[0u8; 17]).contains("17 bytes are not a whole number"));
        assert!(err(b"# only comments\n").contains("without entries"));
        let mixed = format!("0123456789abcdef0123\n{}\n", "0f".repeat(32));
        assert_eq!(
            err(mixed.as_bytes()),
            "lists/x.txt: cannot tell the list's format: line 1 looks like debian, line 2 like spki; give --format"
        );
        assert!(err(b"hello world\n").contains("line 1 is neither"));
        assert_eq!("spki".parse::<Format>().unwrap(), Format::Spki);
        assert!("pem".parse::<Format>().is_err());
    }
}
