//! detect-secrets 1.x baselines (`detect-secrets scan > .secrets.baseline`).
//!
//! A baseline holds no secret, only where it is: `results` maps each file to its findings
//! (`type`, `filename`, `hashed_secret`, `is_verified`, `line_number`). For a `Private Key`
//! finding the hashed secret is the SHA-1 of the marker on the key's first line (`BEGIN RSA
//! PRIVATE KEY`...), so the key is read from the flagged file (relative to the baseline's
//! directory, or a given root), from the flagged line to its END line. A file that is gone,
//! or no longer holds the flagged marker on that line, is reported for that finding.
//!
//! detect-secrets lists a secret once per file (two keys behind the same marker in one file
//! make one finding) and a `--slim` baseline has no line numbers: so every line of a flagged
//! file that carries a flagged marker is read, not only the listed lines.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use aws_lc_rs::digest::{SHA1_FOR_LEGACY_USE_ONLY, digest};
use serde_json::Value;

use super::schema::{self, Field, Kind, opt, req};
use super::{IngestError, Ingested, Location, Scanner, Unusable};

/// The most bytes read from a flagged file.
const MAX_FILE_BYTES: u64 = 64 << 20;

/// The most lines read after a BEGIN line looking for the END line.
const MAX_KEY_LINES: usize = 400;

/// The `Private Key` plugin's markers (`plugins/private_key.py`); the finding's hash is
/// the SHA-1 of the one it matched.
const MARKERS: &[&str] = &[
    "BEGIN DSA PRIVATE KEY",
    "BEGIN EC PRIVATE KEY",
    "BEGIN OPENSSH PRIVATE KEY",
    "BEGIN PGP PRIVATE KEY BLOCK",
    "BEGIN PRIVATE KEY",
    "BEGIN RSA PRIVATE KEY",
    "BEGIN SSH2 ENCRYPTED PRIVATE KEY",
    "PuTTY-User-Key-File-2",
];

const PRIVATE_KEY: &str = "Private Key";

fn is_generated_at(s: &str) -> bool {
    super::rfc3339(s).is_some()
}

const SECRET: &[Field] = &[
    req("type", Kind::Str),
    req("filename", Kind::Str),
    req("hashed_secret", Kind::Str),
    req("is_verified", Kind::Bool),
    opt("line_number", Kind::Int),
    opt("is_secret", Kind::Bool),
];

const BASELINE: &[Field] = &[
    req("version", Kind::Str),
    opt("plugins_used", Kind::Array("plugin", &Kind::Any)),
    opt("filters_used", Kind::Array("filter", &Kind::Any)),
    req(
        "results",
        Kind::Map("file", &Kind::Array("secret", &Kind::Obj(SECRET))),
    ),
    opt(
        "generated_at",
        Kind::Text("a time like \"2026-03-14T09:30:00Z\"", is_generated_at),
    ),
];

const REPORT: Kind = Kind::Obj(BASELINE);

/// A `Private Key` finding: its position in the report, the listed line, the marker hash.
struct Flagged {
    n: usize,
    line: Option<usize>,
    hash: String,
}

/// Reads a baseline named `file`; the flagged files are read under `root`.
pub(crate) fn parse(bytes: &[u8], file: &str, root: &Path) -> Result<Ingested, IngestError> {
    let value = schema::read(
        bytes,
        &REPORT,
        "the baseline (a detect-secrets baseline is an object)",
    )
    .map_err(|e| super::malformed(file, 1, e))?;
    let mut out = Ingested::new(Scanner::DetectSecrets);
    let first_seen = value
        .get("generated_at")
        .and_then(Value::as_str)
        .and_then(super::rfc3339);
    let mut by_file: BTreeMap<String, Vec<Flagged>> = BTreeMap::new();
    let results = value.get("results").and_then(Value::as_object);
    for (name, secrets) in results.into_iter().flatten() {
        for s in secrets.as_array().map(Vec::as_slice).unwrap_or_default() {
            out.findings += 1;
            if s.get("type").and_then(Value::as_str) != Some(PRIVATE_KEY) {
                out.not_keys += 1;
                continue;
            }
            by_file.entry(name.clone()).or_default().push(Flagged {
                n: out.findings,
                line: s
                    .get("line_number")
                    .and_then(Value::as_u64)
                    .and_then(|l| usize::try_from(l).ok())
                    .filter(|&l| l > 0),
                hash: s
                    .get("hashed_secret")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_ascii_lowercase(),
            });
        }
    }
    let mut extra = 0;
    for (name, flagged) in &by_file {
        let base = Location {
            path: name.clone(),
            repository: None,
            commit: None,
            line: None,
            blob: None,
            offset: None,
            encryption: None,
            first_seen,
            source: Scanner::DetectSecrets.name().to_string(),
        };
        extra += flagged_file(&mut out, &root.join(name), &base, flagged);
    }
    if extra > 0 {
        out.notes.push(format!(
            "{extra} more private-key line{} read from flagged files (detect-secrets lists a \
             marker once per file)",
            if extra == 1 { "" } else { "s" }
        ));
    }
    Ok(out)
}

fn sha1_hex(s: &str) -> String {
    hex::encode(digest(&SHA1_FOR_LEGACY_USE_ONLY, s.as_bytes()))
}

/// Reads the keys of one flagged file; returns how many lines were read beyond the listed
/// ones.
fn flagged_file(out: &mut Ingested, path: &Path, base: &Location, flagged: &[Flagged]) -> usize {
    let unusable = |out: &mut Ingested, f: &Flagged, reason: String| {
        let mut location = base.clone();
        location.line = f.line;
        out.unusable.push(Unusable {
            finding: f.n,
            location,
            reason,
        });
    };
    let bytes = match read_file(path) {
        Ok(b) => b,
        Err(reason) => {
            for f in flagged {
                unusable(out, f, reason.clone());
            }
            return 0;
        }
    };
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.split('\n').collect();
    let hashes: BTreeSet<&str> = flagged.iter().map(|f| f.hash.as_str()).collect();
    let flagged_markers: Vec<&str> = MARKERS
        .iter()
        .copied()
        .filter(|m| hashes.contains(sha1_hex(m).as_str()))
        .collect();
    // Every line that carries a flagged marker (1-based).
    let marked: BTreeSet<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| flagged_markers.iter().any(|m| l.contains(m)))
        .map(|(i, _)| i + 1)
        .collect();
    let mut listed = BTreeSet::new();
    for f in flagged {
        if let Some(b) = f.line.and_then(|n| begin_line(&lines, n, &f.hash)) {
            listed.insert(b);
            read_key(out, &lines, b, f.n, base);
            continue;
        }
        match f.line {
            Some(n) if n > lines.len() => unusable(
                out,
                f,
                format!(
                    "the file has changed: it has {} lines, the baseline flags line {n}",
                    lines.len()
                ),
            ),
            Some(n) => unusable(
                out,
                f,
                format!(
                    "the file has changed: line {n} no longer holds the flagged private key marker"
                ),
            ),
            None if flagged_markers.is_empty() => unusable(
                out,
                f,
                "the file has changed: it no longer holds the flagged private key marker".into(),
            ),
            // A --slim baseline: the lines are found below.
            None => {}
        }
    }
    let slim_finding = flagged.iter().find(|f| f.line.is_none()).map(|f| f.n);
    let mut extra = 0;
    for &n in marked.difference(&listed) {
        extra += 1;
        let finding = slim_finding
            .or_else(|| flagged.first().map(|f| f.n))
            .unwrap_or_default();
        read_key(out, &lines, n, finding, base);
    }
    extra
}

/// Whether line `n` holds a marker whose hash is `hash`.
fn line_has(lines: &[&str], n: usize, hash: &str) -> bool {
    let line = lines.get(n - 1).copied().unwrap_or_default();
    MARKERS
        .iter()
        .any(|m| line.contains(m) && sha1_hex(m) == hash)
}

/// The line the flagged key begins on: the flagged line itself, or, where detect-secrets
/// flags the key of a YAML or INI value (`key: |`, `key =`), the value's first line.
fn begin_line(lines: &[&str], n: usize, hash: &str) -> Option<usize> {
    if line_has(lines, n, hash) {
        return Some(n);
    }
    let line = lines.get(n - 1)?.trim_end();
    let head = line.trim_end_matches(|c: char| c == '-' || c == '+' || c.is_ascii_digit());
    if !head.ends_with([':', '=', '|', '>']) {
        return None;
    }
    let next = (n + 1..=lines.len()).find(|&i| !lines[i - 1].trim().is_empty())?;
    line_has(lines, next, hash).then_some(next)
}

/// Reads the key that starts on line `n`, up to its END line.
fn read_key(out: &mut Ingested, lines: &[&str], n: usize, finding: usize, base: &Location) {
    let mut location = base.clone();
    location.line = Some(n);
    let first = lines.get(n - 1).copied().unwrap_or_default();
    // A key on one line (escaped, in a JSON or .env file) ends on it; a PuTTY key file has no
    // END line and ends at its MAC.
    let end = if first.contains("-----END ") {
        n
    } else {
        lines
            .iter()
            .enumerate()
            .skip(n)
            .take(MAX_KEY_LINES)
            .find(|(_, l)| l.contains("-----END ") || l.starts_with("Private-MAC:"))
            .map_or(n, |(i, _)| i + 1)
    };
    let block = lines[n - 1..end].join("\n");
    let (read, problems) = super::add_keys(out, &block, &location);
    if read > 0 {
        return;
    }
    let reason = if end == n && !first.contains("-----END ") {
        format!("no END line within {MAX_KEY_LINES} lines of the BEGIN line: the key is cut off")
    } else {
        problems
            .into_iter()
            .next()
            .unwrap_or_else(|| "no private key could be read from the flagged lines".into())
    };
    out.unusable.push(Unusable {
        finding,
        location,
        reason,
    });
}

fn read_file(path: &Path) -> Result<Vec<u8>, String> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err("the file is gone".into());
        }
        Err(e) => return Err(format!("the file cannot be read: {e}")),
    };
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(format!(
            "the file is larger than {} MiB",
            MAX_FILE_BYTES >> 20
        ));
    }
    std::fs::read(path).map_err(|e| format!("the file cannot be read: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signals::exposure::ingest::test_keys::p256;
    use serde_json::json;

    #[test]
    fn marker_hashes_match_detect_secrets() {
        assert_eq!(
            sha1_hex("BEGIN RSA PRIVATE KEY"),
            "be4fc4886bd949b369d5e092eb87494f12e57e5b"
        );
        assert_eq!(
            sha1_hex("BEGIN PRIVATE KEY"),
            "1348b145fa1a555461c1b790a2f66614781091e9"
        );
    }

    fn secret(file: &str, line: Option<usize>, kind: &str) -> Value {
        let mut v = json!({
            "type": kind, "filename": file,
            "hashed_secret": sha1_hex("BEGIN PRIVATE KEY"), "is_verified": false
        });
        if let Some(l) = line {
            v["line_number"] = json!(l);
        }
        v
    }

    fn baseline(results: Value) -> Vec<u8> {
        serde_json::to_vec_pretty(&json!({
            "version": "1.5.0", "plugins_used": [{"name": "PrivateKeyDetector"}],
            "filters_used": [], "results": results,
            "generated_at": "2026-03-14T09:30:00Z"
        }))
        .unwrap()
    }

    #[test]
    fn reads_flagged_files_and_reports_changed_and_gone_ones() {
        let dir = tempfile::tempdir().unwrap();
        let (a, public) = p256();
        let (b, _) = p256();
        std::fs::write(
            dir.path().join("doc.md"),
            format!("# Setup\n\n```\n{a}```\n\nand\n\n{b}"),
        )
        .unwrap();
        std::fs::write(dir.path().join("changed.txt"), "nothing here\n").unwrap();
        let results = json!({
            "changed.txt": [secret("changed.txt", Some(1), PRIVATE_KEY)],
            "doc.md": [secret("doc.md", Some(4), PRIVATE_KEY), secret("doc.md", Some(2), "Secret Keyword")],
            "gone.pem": [secret("gone.pem", Some(1), PRIVATE_KEY)],
        });
        let got = parse(&baseline(results), "b.json", dir.path()).unwrap();
        assert_eq!(got.findings, 4);
        assert_eq!(got.not_keys, 1);
        // The second key, behind the same marker, is not listed but is read.
        assert_eq!(got.keys.len(), 2);
        assert!(got.keys[0].public.same_public_key(&public));
        assert_eq!(got.keys[0].location.path, "doc.md");
        assert_eq!(got.keys[0].location.line, Some(4));
        assert!(got.keys[0].location.first_seen.is_some());
        assert_eq!(got.notes.len(), 1);
        let reasons: Vec<(&str, &str)> = got
            .unusable
            .iter()
            .map(|u| (u.location.path.as_str(), u.reason.as_str()))
            .collect();
        assert_eq!(reasons.len(), 2, "{reasons:?}");
        assert!(reasons[0].1.contains("changed"), "{reasons:?}");
        assert_eq!(reasons[1], ("gone.pem", "the file is gone"));
    }

    #[test]
    fn malformed_baselines() {
        let bad = baseline(
            json!({"a.pem": [{"type": "Private Key", "filename": "a.pem",
            "hashed_secret": "x", "is_verified": "no", "line_number": 1}]}),
        );
        let e = parse(&bad, "b.json", Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(
            e.ends_with(
                "field \"results\": file \"a.pem\": secret 1: field \"is_verified\": \
                 expected true or false"
            ),
            "{e}"
        );
        let e = parse(b"[]", "b.json", Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("b.json: line 1: the baseline"), "{e}");
    }
}
