//! gitleaks v8 JSON reports (`gitleaks git|dir --report-format json --report-path FILE`).
//!
//! The report is an array of findings whose keys are gitleaks' Go field names (`RuleID`,
//! `File`, `StartLine`, `Commit`, `Date`, `Secret`, `Match`...). The `private-key` rule has
//! no capture group, so `Secret` (and `Match`) is the whole PEM block and `StartLine` its
//! BEGIN line. `--redact` replaces the secret with `REDACTED` (or, with `--redact=N`, keeps
//! only its first characters followed by `...`): such a report holds no key to read.

use serde_json::Value;

use super::schema::{self, Field, Kind, opt, req};
use super::{IngestError, Ingested, Location, Scanner, Unusable};

fn is_date(s: &str) -> bool {
    s.is_empty() || super::rfc3339(s).is_some()
}

/// A finding's fields. Those every v8 report has are required; the others (added by later
/// versions: `SymlinkFile`, `Fingerprint`, `Link`) are checked when present.
const FINDING: &[Field] = &[
    req("RuleID", Kind::Str),
    opt("Description", Kind::Str),
    req("StartLine", Kind::Int),
    opt("EndLine", Kind::Int),
    opt("StartColumn", Kind::Int),
    opt("EndColumn", Kind::Int),
    req("Match", Kind::Str),
    req("Secret", Kind::Str),
    req("File", Kind::Str),
    opt("SymlinkFile", Kind::Str),
    req(
        "Commit",
        Kind::Text("a commit hash (hex) or \"\"", super::is_commit),
    ),
    opt("Link", Kind::Str),
    opt("Entropy", Kind::Num),
    opt("Author", Kind::Str),
    opt("Email", Kind::Str),
    req("Date", Kind::Text("an RFC 3339 time (or \"\")", is_date)),
    opt("Message", Kind::Str),
    opt("Tags", Kind::Array("tag", &Kind::Str)),
    opt("Fingerprint", Kind::Str),
];

/// The report: an array of findings (`[]` when there are none).
const REPORT: Kind = Kind::Array("finding", &Kind::Obj(FINDING));

/// Reads a gitleaks report named `file`.
pub(crate) fn parse(bytes: &[u8], file: &str) -> Result<Ingested, IngestError> {
    let value = schema::read(
        bytes,
        &REPORT,
        "the report (a gitleaks JSON report is an array)",
    )
    .map_err(|e| super::malformed(file, 1, e))?;
    let mut out = Ingested::new(Scanner::Gitleaks);
    let findings = value.as_array().map(Vec::as_slice).unwrap_or_default();
    out.findings = findings.len();
    for (i, f) in findings.iter().enumerate() {
        finding(&mut out, i + 1, f);
    }
    Ok(out)
}

fn text<'a>(f: &'a Value, field: &str) -> &'a str {
    f.get(field).and_then(Value::as_str).unwrap_or_default()
}

/// Reads one finding (`n`: its 1-based position).
fn finding(out: &mut Ingested, n: usize, f: &Value) {
    let secret = text(f, "Secret");
    let matched = text(f, "Match");
    let commit = text(f, "Commit");
    let line = f
        .get("StartLine")
        .and_then(Value::as_u64)
        .and_then(|l| usize::try_from(l).ok())
        .filter(|&l| l > 0);
    let base = Location {
        path: text(f, "File").to_string(),
        repository: None,
        commit: (!commit.is_empty()).then(|| commit.to_string()),
        line,
        blob: None,
        offset: None,
        encryption: None,
        first_seen: super::rfc3339(text(f, "Date")),
        source: Scanner::Gitleaks.name().to_string(),
    };
    // `StartLine` is where the match starts; a rule with a capture group puts the secret
    // further in.
    let secret_base = match matched.find(secret) {
        Some(at) if !secret.is_empty() => {
            super::location_at(&base, 1 + matched[..at].matches('\n').count())
        }
        _ => base.clone(),
    };
    let (read, mut problems) = super::add_keys(out, secret, &secret_base);
    if read > 0 {
        return;
    }
    if matched != secret {
        let (read, more) = super::add_keys(out, matched, &base);
        if read > 0 {
            return;
        }
        problems.extend(more);
    }
    let rule = text(f, "RuleID").to_ascii_lowercase().replace('_', "-");
    let about_a_key = rule.contains("private-key")
        || rule.contains("privatekey")
        || super::mentions_private_key(secret)
        || super::mentions_private_key(matched);
    if !about_a_key {
        out.not_keys += 1;
        return;
    }
    let reason = if secret == "REDACTED" {
        "the secret is redacted (gitleaks --redact): the report holds no key; run gitleaks \
         again without --redact to check it against the inventory"
            .to_string()
    } else if secret.ends_with("...") {
        "the secret is partly redacted (gitleaks --redact=N): the report holds only the start \
         of the key; run gitleaks again without --redact to check it against the inventory"
            .to_string()
    } else if let Some(p) = problems.into_iter().next() {
        p
    } else {
        "the secret holds no complete private key".to_string()
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

    fn finding(secret: &str, line: u64) -> Value {
        json!({
            "RuleID": "private-key",
            "Description": "Identified a Private Key",
            "StartLine": line, "EndLine": line + 5, "StartColumn": 1, "EndColumn": 30,
            "Match": secret, "Secret": secret,
            "File": "deploy/key.pem", "SymlinkFile": "",
            "Commit": "9f2c4b1e7d3a5c8e0b6f1a2d4c7e9b0a3f5d8c1e",
            "Entropy": 6.02, "Author": "A", "Email": "a@example.com",
            "Date": "2026-03-14T09:26:53Z", "Message": "add key", "Tags": [],
            "Fingerprint": "x"
        })
    }

    fn report(findings: Vec<Value>) -> Vec<u8> {
        serde_json::to_vec_pretty(&Value::Array(findings)).unwrap()
    }

    #[test]
    fn reads_keys_with_their_place_and_counts_the_rest() {
        let (pem, public) = p256();
        let pem = pem.trim_end_matches('\n').to_string();
        let mut other = finding("ghp_0123456789abcdef0123456789abcdef0123", 3);
        other["RuleID"] = json!("github-pat");
        let mut dir = finding(&pem.replace('\n', "\\n"), 9);
        dir["Commit"] = json!("");
        dir["Date"] = json!("");
        let got = parse(
            &report(vec![
                finding(&pem, 7),
                other,
                finding("REDACTED", 2),
                finding("-----BEGIN PRIVATE KEY-----\nMIGHAgEAMB...", 4),
                dir,
            ]),
            "r.json",
        )
        .unwrap();
        assert_eq!(got.findings, 5);
        assert_eq!(got.not_keys, 1);
        assert_eq!(got.keys.len(), 2);
        let k = &got.keys[0];
        assert!(k.public.same_public_key(&public));
        assert_eq!(k.location.line, Some(7));
        assert_eq!(k.location.path, "deploy/key.pem");
        assert_eq!(
            k.location.commit.as_deref(),
            Some("9f2c4b1e7d3a5c8e0b6f1a2d4c7e9b0a3f5d8c1e")
        );
        assert_eq!(k.location.source, "gitleaks");
        assert!(k.location.first_seen.is_some());
        let escaped = &got.keys[1];
        assert_eq!(escaped.location.line, Some(9));
        assert_eq!(escaped.location.commit, None);
        assert_eq!(escaped.location.first_seen, None);
        assert_eq!(got.unusable.len(), 2);
        assert_eq!(got.unusable[0].finding, 3);
        assert!(got.unusable[0].reason.contains("--redact"));
        assert_eq!(got.unusable[1].finding, 4);
    }

    #[test]
    fn empty_report_and_malformed_ones() {
        assert_eq!(parse(b"[]\n", "r.json").unwrap().findings, 0);
        let mut bad = finding("x", 1);
        bad["Secret"] = json!(5);
        let bytes = report(vec![finding("y", 1), bad]);
        let e = parse(&bytes, "r.json").unwrap_err().to_string();
        let line = String::from_utf8_lossy(&bytes)
            .lines()
            .position(|l| l.contains("\"Secret\": 5"))
            .unwrap()
            + 1;
        assert_eq!(
            e,
            format!("r.json: line {line}: finding 2: field \"Secret\": expected a string")
        );
        let mut bad = finding("x", 1);
        bad["Date"] = json!("yesterday");
        let e = parse(&report(vec![bad]), "r.json").unwrap_err().to_string();
        assert!(
            e.contains("finding 1: field \"Date\": expected an RFC 3339 time"),
            "{e}"
        );
        let mut bad = finding("x", 1);
        bad["Commit"] = json!("caf\u{e9}-not-a-hash");
        let e = parse(&report(vec![bad]), "r.json").unwrap_err().to_string();
        assert!(
            e.contains("finding 1: field \"Commit\": expected a commit hash"),
            "{e}"
        );
        let e = parse(b"{\"findings\": []}", "r.json")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("r.json: line 1: the report"), "{e}");
    }
}
