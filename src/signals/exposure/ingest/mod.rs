//! Secret scanners' reports: the private keys in a gitleaks, trufflehog or detect-secrets
//! report, reduced to their public halves with the place each was found, ready for
//! [`super::record::record`].
//!
//! - [`gitleaks`]: a gitleaks v8 JSON report (the key is in `Secret`, or `Match`);
//! - [`trufflehog`]: trufflehog v3 `--json` output, one object per line (`Raw`, `RawV2`);
//! - [`detect_secrets`]: a detect-secrets 1.x baseline, which holds only a hash, so the
//!   flagged files are read from the flagged line on.
//!
//! A malformed report is rejected with the line and the field at fault ([`IngestError`]);
//! a finding that holds no usable key (a redacted secret, a file that is gone) is reported
//! as [`Unusable`], with the reason, and the rest of the report is still read. Errors and
//! reasons never quote a report's values: they are secrets.

pub mod detect_secrets;
pub mod gitleaks;
mod keys;
mod schema;
pub mod trufflehog;

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{FoundKey, Location};

/// The largest report read (trufflehog output of a big history runs to tens of megabytes).
const MAX_REPORT_BYTES: u64 = 1 << 30;

/// The secret scanners whose reports are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scanner {
    /// gitleaks v8 (`--report-format json`).
    Gitleaks,
    /// trufflehog v3 (`--json`).
    Trufflehog,
    /// detect-secrets 1.x (a baseline).
    DetectSecrets,
}

impl Scanner {
    /// The scanner's name, also the `source` of the locations it reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Gitleaks => "gitleaks",
            Self::Trufflehog => "trufflehog",
            Self::DetectSecrets => "detect-secrets",
        }
    }
}

/// How to read a report.
#[derive(Debug, Clone, Default)]
pub struct IngestOptions {
    /// detect-secrets: the directory the baseline's file names are relative to (default:
    /// the baseline's directory).
    pub root: Option<PathBuf>,
}

/// A finding that names a private key but holds none that can be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unusable {
    /// The finding's position in the report (1-based; for trufflehog, the report's line).
    pub finding: usize,
    /// Where the scanner saw it.
    pub location: Location,
    /// Why no key could be read (never the secret).
    pub reason: String,
}

/// What a report holds.
#[derive(Debug, Clone, Serialize)]
pub struct Ingested {
    /// Which scanner wrote it.
    pub scanner: Scanner,
    /// Findings in the report.
    pub findings: usize,
    /// Private keys read from the findings, each with where it was found.
    pub keys: Vec<FoundKey>,
    /// Findings about a private key that hold none that can be read.
    pub unusable: Vec<Unusable>,
    /// Findings about other secrets (tokens, passwords): not read.
    pub not_keys: usize,
    /// Remarks about the report as a whole.
    pub notes: Vec<String>,
}

impl Ingested {
    fn new(scanner: Scanner) -> Self {
        Self {
            scanner,
            findings: 0,
            keys: Vec::new(),
            unusable: Vec::new(),
            not_keys: 0,
            notes: Vec::new(),
        }
    }
}

/// A report that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IngestError {
    /// The report cannot be read at all.
    #[error("{file}: {reason}")]
    Read {
        /// The report.
        file: String,
        /// Why.
        reason: String,
    },
    /// The report is not of the documented format.
    #[error("{file}: line {line}: {message}")]
    Malformed {
        /// The report.
        file: String,
        /// 1-based line.
        line: usize,
        /// What is wrong: the finding and field, never a value.
        message: String,
    },
}

/// Reads the report at `path` (`-`: standard input) written by `scanner`.
pub fn read_report(
    scanner: Scanner,
    path: &Path,
    opts: &IngestOptions,
) -> Result<Ingested, IngestError> {
    let (name, bytes) = if path == Path::new("-") {
        ("stdin".to_string(), read_stdin()?)
    } else {
        let name = path.display().to_string();
        let bytes = read_capped(path).map_err(|reason| IngestError::Read {
            file: name.clone(),
            reason,
        })?;
        (name, bytes)
    };
    match scanner {
        Scanner::Gitleaks => gitleaks::parse(&bytes, &name),
        Scanner::Trufflehog => trufflehog::parse(&bytes, &name),
        Scanner::DetectSecrets => {
            let root = match &opts.root {
                Some(r) => r.clone(),
                None if path == Path::new("-") => PathBuf::from("."),
                None => path
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
            };
            detect_secrets::parse(&bytes, &name, &root)
        }
    }
}

fn read_stdin() -> Result<Vec<u8>, IngestError> {
    use std::io::Read as _;
    let mut out = Vec::new();
    std::io::stdin()
        .take(MAX_REPORT_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|e| IngestError::Read {
            file: "stdin".into(),
            reason: e.to_string(),
        })?;
    if out.len() as u64 > MAX_REPORT_BYTES {
        return Err(IngestError::Read {
            file: "stdin".into(),
            reason: format!("larger than {} MiB", MAX_REPORT_BYTES >> 20),
        });
    }
    Ok(out)
}

/// Reads a file of at most `MAX_REPORT_BYTES`.
fn read_capped(path: &Path) -> Result<Vec<u8>, String> {
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    if meta.len() > MAX_REPORT_BYTES {
        return Err(format!("larger than {} MiB", MAX_REPORT_BYTES >> 20));
    }
    std::fs::read(path).map_err(|e| e.to_string())
}

/// Turns a schema error into the report's error (`first_line`: where the parsed text
/// starts in the report).
fn malformed(file: &str, first_line: usize, e: schema::SchemaError) -> IngestError {
    IngestError::Malformed {
        file: file.to_string(),
        line: first_line + e.line - 1,
        message: e.message,
    }
}

/// A location as scanners report it: `line` is the first line of the secret, and a key found
/// on the `rel`-th line of the secret is on line `line + rel - 1`.
fn location_at(base: &Location, rel: usize) -> Location {
    let mut l = base.clone();
    l.line = base.line.map(|n| n + rel.saturating_sub(1));
    l
}

/// Reads the private keys in `text` (a secret from a report) and adds them to `out` at
/// `base`, where `base.line` is the line `text` starts on. Returns the number of keys read
/// and the reasons keys that seemed to be there could not be read.
fn add_keys(out: &mut Ingested, text: &str, base: &Location) -> (usize, Vec<String>) {
    let got = keys::private_keys(text.as_bytes());
    let n = got.keys.len();
    for k in got.keys {
        out.keys.push(FoundKey {
            public: k.public,
            format: k.format,
            location: location_at(base, k.line),
        });
    }
    (n, got.problems)
}

/// Whether a secret looks like a private key (so an unreadable one is worth a reason).
fn mentions_private_key(text: &str) -> bool {
    let upper = text.to_ascii_uppercase();
    upper.contains("PRIVATE KEY") || upper.contains("PUTTY-USER-KEY-FILE")
}

/// Whether `s` is a commit hash (hex), or empty: scanners write `""` outside git.
fn is_commit(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Parses an RFC 3339 time.
fn rfc3339(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

#[cfg(test)]
pub(crate) mod test_keys {
    //! Keys for the unit tests, made by rcgen.

    /// A fresh ECDSA P-256 key: (PKCS#8 PEM, its public key).
    pub(crate) fn p256() -> (String, certresponder_inventory::inspect::KeyInfo) {
        let key = rcgen::KeyPair::generate().unwrap();
        let pem = key.serialize_pem();
        let public =
            certresponder_inventory::inspect::read_public_key(key.public_key_pem().as_bytes())
                .unwrap();
        (pem, public)
    }
}
