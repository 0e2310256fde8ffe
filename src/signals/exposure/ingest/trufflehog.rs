//! trufflehog v3 `--json` output: one JSON object per line.
//!
//! The `PrivateKey` detector puts the whole PEM block in `Raw` (normalised: escapes turned
//! into line breaks, one line per line); `RawV2` is empty for it but may hold a key for other
//! detectors. Where: `SourceMetadata.Data.Git` (`commit`, `file`, `line`, `timestamp`,
//! `repository`) or `.Filesystem` (`file`, `line`); the line is the BEGIN line. The inner
//! fields are left out when empty. trufflehog's own log lines (`{"level": ...}`), if they
//! were captured with the results, are skipped.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::schema::{self, Field, Kind, opt, req};
use super::{IngestError, Ingested, Location, Scanner, Unusable};

/// trufflehog's git timestamps: Go's `2006-01-02 15:04:05 -0700`.
fn git_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S %z")
        .ok()
        .map(|t| t.with_timezone(&Utc))
        .or_else(|| super::rfc3339(s))
}

fn is_git_time(s: &str) -> bool {
    s.is_empty() || git_time(s).is_some()
}

/// Git-hosted sources (`Git`, and the forges' own, which share its fields).
const GIT: &[Field] = &[
    opt(
        "commit",
        Kind::Text("a commit hash (hex)", super::is_commit),
    ),
    opt("file", Kind::Str),
    opt("email", Kind::Str),
    opt("repository", Kind::Str),
    opt(
        "timestamp",
        Kind::Text("a time like \"2026-03-14 09:26:53 +0000\"", is_git_time),
    ),
    opt("line", Kind::Int),
    opt("link", Kind::Str),
    opt("repository_local_path", Kind::Str),
];

const FILESYSTEM: &[Field] = &[
    opt("file", Kind::Str),
    opt("line", Kind::Int),
    opt("link", Kind::Str),
    opt("email", Kind::Str),
];

/// The sources whose metadata names a file: the others are reported at the report's line.
const SOURCES: &[&str] = &["Git", "Filesystem", "Github", "Gitlab"];

const DATA: &[Field] = &[
    opt("Git", Kind::Obj(GIT)),
    opt("Filesystem", Kind::Obj(FILESYSTEM)),
    opt("Github", Kind::Obj(GIT)),
    opt("Gitlab", Kind::Obj(GIT)),
];

const METADATA: &[Field] = &[req("Data", Kind::Obj(DATA))];

/// One result. `SourceMetadata`, the detector, `Verified` and `Raw` are in every v3 result;
/// the other fields came and went between versions and are checked when present.
const RESULT: &[Field] = &[
    req("SourceMetadata", Kind::Obj(METADATA)),
    opt("SourceID", Kind::Int),
    opt("SourceType", Kind::Int),
    opt("SourceName", Kind::Str),
    req("DetectorType", Kind::Int),
    req("DetectorName", Kind::Str),
    opt("DetectorDescription", Kind::Str),
    opt("DecoderName", Kind::Str),
    req("Verified", Kind::Bool),
    opt("VerificationError", Kind::Str),
    opt("VerificationFromCache", Kind::Bool),
    req("Raw", Kind::Str),
    opt("RawV2", Kind::Str),
    opt("Redacted", Kind::Str),
    opt("ExtraData", Kind::Nullable(&Kind::Map("key", &Kind::Str))),
    opt("StructuredData", Kind::Nullable(&Kind::Any)),
    opt(
        "SecretParts",
        Kind::Nullable(&Kind::Map("part", &Kind::Str)),
    ),
];

const LINE: Kind = Kind::Obj(RESULT);

/// trufflehog's `PrivateKey` detector (`DetectorType` 15).
const PRIVATE_KEY: &str = "PrivateKey";
const PRIVATE_KEY_TYPE: u64 = 15;

/// Reads trufflehog output named `file`.
pub(crate) fn parse(bytes: &[u8], file: &str) -> Result<Ingested, IngestError> {
    let mut out = Ingested::new(Scanner::Trufflehog);
    let mut log_lines = 0;
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        let n = i + 1;
        let trimmed = line.trim_ascii();
        if trimmed.is_empty() {
            continue;
        }
        if is_log_line(trimmed) {
            log_lines += 1;
            continue;
        }
        if trimmed.first() == Some(&b'[') && out.findings == 0 {
            return Err(IngestError::Malformed {
                file: file.to_string(),
                line: n,
                message: "expected one JSON object per line (trufflehog --json), not an array"
                    .into(),
            });
        }
        let value = schema::read(
            trimmed,
            &LINE,
            "the line (a trufflehog result is an object)",
        )
        .map_err(|e| super::malformed(file, n, e))?;
        out.findings += 1;
        result(&mut out, n, file, &value);
    }
    if log_lines > 0 {
        out.notes.push(format!(
            "{log_lines} trufflehog log line{} skipped",
            if log_lines == 1 { "" } else { "s" }
        ));
    }
    Ok(out)
}

/// trufflehog's logs, in JSON, start with the level.
fn is_log_line(line: &[u8]) -> bool {
    let compact: Vec<u8> = line
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .take(12)
        .collect();
    compact.starts_with(b"{\"level\":")
}

fn text<'a>(v: &'a Value, field: &str) -> &'a str {
    v.get(field).and_then(Value::as_str).unwrap_or_default()
}

/// Where the result was found; `n` is its line in the report.
fn location(v: &Value, n: usize, file: &str) -> Location {
    let data = &v["SourceMetadata"]["Data"];
    let source = SOURCES
        .iter()
        .find_map(|s| data.get(*s).filter(|d| d.is_object()));
    let mut loc = Location {
        path: format!("{file} (line {n})"),
        repository: None,
        commit: None,
        line: None,
        blob: None,
        offset: None,
        encryption: None,
        first_seen: None,
        source: Scanner::Trufflehog.name().to_string(),
    };
    let Some(d) = source else {
        return loc;
    };
    let some = |s: &str| (!s.is_empty()).then(|| s.to_string());
    if let Some(path) = some(text(d, "file")) {
        loc.path = path;
        loc.line = d
            .get("line")
            .and_then(Value::as_u64)
            .and_then(|l| usize::try_from(l).ok())
            .filter(|&l| l > 0);
    }
    loc.commit = some(text(d, "commit"));
    loc.repository = some(text(d, "repository"));
    loc.first_seen = git_time(text(d, "timestamp"));
    loc
}

/// Reads one result (`n`: its line in the report).
fn result(out: &mut Ingested, n: usize, file: &str, v: &Value) {
    let base = location(v, n, file);
    let raw = text(v, "Raw");
    let raw2 = text(v, "RawV2");
    let (read, mut problems) = super::add_keys(out, raw, &base);
    if read > 0 {
        return;
    }
    if !raw2.is_empty() && raw2 != raw {
        let (read, more) = super::add_keys(out, raw2, &base);
        if read > 0 {
            return;
        }
        problems.extend(more);
    }
    let is_private_key = text(v, "DetectorName") == PRIVATE_KEY
        || v.get("DetectorType").and_then(Value::as_u64) == Some(PRIVATE_KEY_TYPE)
        || super::mentions_private_key(raw);
    if !is_private_key {
        out.not_keys += 1;
        return;
    }
    let encrypted = v
        .get("ExtraData")
        .and_then(|d| d.get("encrypted"))
        .and_then(Value::as_str)
        == Some("true");
    let reason = if raw.is_empty() {
        "`Raw` is empty: the result holds no key".to_string()
    } else if encrypted {
        "the key is encrypted with a passphrase: its public half cannot be read".to_string()
    } else if let Some(p) = problems.into_iter().next() {
        p
    } else {
        "`Raw` holds no complete private key".to_string()
    };
    out.unusable.push(Unusable {
        finding: n,
        location: base,
        reason,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signals::exposure::ingest::test_keys::p256;
    use serde_json::json;

    fn git_result(raw: &str) -> Value {
        json!({
            "SourceMetadata": {"Data": {"Git": {
                "commit": "9f2c4b1e7d3a5c8e0b6f1a2d4c7e9b0a3f5d8c1e",
                "file": "deploy/id_rsa",
                "email": "Alice <alice@example.com>",
                "repository": "file:///srv/repo",
                "timestamp": "2026-03-14 09:26:53 +0000",
                "line": 4
            }}},
            "SourceID": 1, "SourceType": 16, "SourceName": "trufflehog - git",
            "DetectorType": 15, "DetectorName": "PrivateKey", "DecoderName": "PLAIN",
            "Verified": false, "VerificationFromCache": false,
            "Raw": raw, "RawV2": "", "Redacted": "",
            "ExtraData": {}, "StructuredData": null, "SecretParts": {"token": raw}
        })
    }

    #[test]
    fn reads_git_and_filesystem_results_and_skips_logs() {
        let (pem, public) = p256();
        let mut fs = git_result(&pem);
        fs["SourceMetadata"] = json!({"Data": {"Filesystem": {"file": "/srv/k.pem"}}});
        let mut token = git_result("ghp_x");
        token["DetectorName"] = json!("Github");
        token["DetectorType"] = json!(8);
        let text = format!(
            "{}\n{{\"level\":\"info-0\",\"ts\":\"x\",\"msg\":\"running source\"}}\n\n{}\n{}\n",
            git_result(&pem),
            fs,
            token
        );
        let got = parse(text.as_bytes(), "th.json").unwrap();
        assert_eq!(got.findings, 3);
        assert_eq!(got.not_keys, 1);
        assert_eq!(got.keys.len(), 2);
        let k = &got.keys[0].location;
        assert!(got.keys[0].public.same_public_key(&public));
        assert_eq!(k.path, "deploy/id_rsa");
        assert_eq!(k.line, Some(4));
        assert_eq!(k.repository.as_deref(), Some("file:///srv/repo"));
        assert_eq!(
            k.first_seen.unwrap().to_rfc3339(),
            "2026-03-14T09:26:53+00:00"
        );
        let f = &got.keys[1].location;
        assert_eq!(
            (f.path.as_str(), f.line, &f.commit),
            ("/srv/k.pem", None, &None)
        );
        assert_eq!(got.notes.len(), 1);
    }

    #[test]
    fn malformed_lines_name_the_line_and_field() {
        let (pem, _) = p256();
        let good = git_result(&pem).to_string();
        let mut bad = git_result(&pem);
        bad["SourceMetadata"]["Data"]["Git"]["line"] = json!("4");
        let text = format!("{good}\n{bad}\n");
        let e = parse(text.as_bytes(), "th.json").unwrap_err().to_string();
        assert_eq!(
            e,
            "th.json: line 2: field \"SourceMetadata.Data.Git.line\": expected a non-negative integer"
        );
        let text = format!("{good}\n{}\n", &good[..good.len() / 2]);
        let e = parse(text.as_bytes(), "th.json").unwrap_err().to_string();
        assert!(e.starts_with("th.json: line 2: "), "{e}");
        assert!(!e.contains("PRIVATE"), "{e}");
        let mut bad = git_result(&pem);
        bad.as_object_mut().unwrap().remove("Raw");
        let e = parse(bad.to_string().as_bytes(), "th.json")
            .unwrap_err()
            .to_string();
        assert_eq!(e, "th.json: line 1: field \"Raw\": missing");
    }

    #[test]
    fn an_encrypted_key_is_unusable() {
        let mut r = git_result(
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn\n-----END OPENSSH PRIVATE KEY-----\n",
        );
        r["ExtraData"] = json!({"encrypted": "true"});
        r["Raw"] = json!(
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n"
        );
        let got = parse(r.to_string().as_bytes(), "th.json").unwrap();
        assert_eq!(got.unusable.len(), 1);
        assert!(got.unusable[0].reason.contains("passphrase"));
    }
}
