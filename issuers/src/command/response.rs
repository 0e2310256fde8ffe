//! Decoding and checking the adapter's JSON responses (see `issuers/PROTOCOL.md`).

#[allow(clippy::wildcard_imports)]
use super::*;

pub(super) const ERROR_KINDS: &[&str] = &[
    "rate_limited",
    "network",
    "server",
    "timeout",
    "unauthorized",
    "bad_csr",
    "not_allowed",
    "already_revoked",
    "bad_request",
    "unsupported",
];

/// Why a response does not stand for success.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Failure {
    /// The response breaks the protocol.
    Protocol(String),
    /// A well-formed `ok: false` answer.
    Refused {
        kind: String,
        message: String,
        retry_after: Option<Duration>,
    },
}

/// Parses stdout as one version-1 response; returns its fields when `ok` is true.
pub(super) fn parse_response(stdout: &[u8], stderr: &str) -> Result<Map<String, Value>, Failure> {
    let note = stderr_note(stderr);
    if stdout.iter().all(u8::is_ascii_whitespace) {
        return Err(Failure::Protocol(format!(
            "the command printed nothing on stdout (a response is one JSON object){note}"
        )));
    }
    let value: Value = serde_json::from_slice(stdout).map_err(|e| {
        Failure::Protocol(format!(
            "stdout is not one JSON object ({e}); it begins `{}`{note}",
            snippet(stdout)
        ))
    })?;
    let Value::Object(map) = value else {
        return Err(Failure::Protocol(format!(
            "the response is JSON but not an object; it begins `{}`{note}",
            snippet(stdout)
        )));
    };
    match map.get("version") {
        Some(v) if v.as_u64() == Some(PROTOCOL_VERSION) => {}
        Some(v) => {
            let said = map
                .get("error")
                .and_then(|e| e.get("message"))
                .and_then(Value::as_str)
                .map(|m| format!("; it said: {}", bounded(&redact(m))))
                .unwrap_or_default();
            return Err(Failure::Protocol(format!(
                "the response is protocol version {}; this responder speaks version \
                 {PROTOCOL_VERSION}{said}",
                bounded(&v.to_string())
            )));
        }
        None => {
            return Err(Failure::Protocol(format!(
                "the response has no `version` (expected {PROTOCOL_VERSION})"
            )));
        }
    }
    match map.get("ok") {
        Some(Value::Bool(true)) => Ok(map),
        Some(Value::Bool(false)) => Err(refusal(&map)),
        Some(other) => Err(Failure::Protocol(format!(
            "field `ok` must be true or false, found {}",
            kind_of(other)
        ))),
        None => Err(Failure::Protocol("the response has no field `ok`".into())),
    }
}

/// Reads the `error` object of an `ok: false` response.
pub(super) fn refusal(map: &Map<String, Value>) -> Failure {
    let Some(Value::Object(error)) = map.get("error") else {
        return Failure::Protocol("`ok` is false but there is no `error` object".into());
    };
    let Some(kind) = error.get("kind").and_then(Value::as_str) else {
        return Failure::Protocol("field `error.kind` is missing or not a string".into());
    };
    let Some(message) = error.get("message").and_then(Value::as_str) else {
        return Failure::Protocol("field `error.message` is missing or not a string".into());
    };
    let retry_after = match error.get("retry_after_secs") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64() {
            Some(secs) => Some(Duration::from_secs(secs)),
            None => {
                return Failure::Protocol(format!(
                    "field `error.retry_after_secs` must be a whole number of seconds, found {v}"
                ));
            }
        },
    };
    Failure::Refused {
        kind: kind.to_string(),
        message: bounded(&redact(message)),
        retry_after,
    }
}

/// A required string field of a success response.
pub(super) fn string<'a>(map: &'a Map<String, Value>, field: &str) -> Result<&'a str, String> {
    match map.get(field) {
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(format!(
            "field `{field}` must be a string, found {}",
            kind_of(other)
        )),
        None => Err(format!("the response has no field `{field}`")),
    }
}

/// A required RFC 3339 time field.
pub(super) fn time(map: &Map<String, Value>, field: &str) -> Result<DateTime<Utc>, String> {
    let s = string(map, field)?;
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            format!(
                "field `{field}` is not an RFC 3339 time (`{}`): {e}",
                bounded(s)
            )
        })
}

pub(super) fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Reads a `status` response.
pub(super) fn decode_status(map: &Map<String, Value>) -> Result<CertStatus, String> {
    match string(map, "status")? {
        "good" => Ok(CertStatus::Good),
        "revoked" => {
            let reason = match map.get("reason") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(RevocationReason::parse(s).ok_or_else(|| {
                    format!(
                        "field `reason`: `{}` is not an RFC 5280 reason name",
                        bounded(s)
                    )
                })?),
                Some(other) => {
                    return Err(format!(
                        "field `reason` must be a reason name or null, found {}",
                        kind_of(other)
                    ));
                }
            };
            Ok(CertStatus::Revoked {
                reason,
                revoked_at: time(map, "revoked_at")?,
            })
        }
        "unknown" => Ok(CertStatus::Unknown {
            why: bounded(&redact(string(map, "why")?)),
        }),
        other => Err(format!(
            "field `status`: `{}` is not one of good, revoked, unknown",
            bounded(other)
        )),
    }
}

/// Reads a `renewal_info` response.
pub(super) fn decode_window(map: &Map<String, Value>) -> Result<Option<RenewalWindow>, String> {
    let w = match map.get("window") {
        None => return Err("the response has no field `window` (give null for none)".into()),
        Some(Value::Null) => return Ok(None),
        Some(Value::Object(w)) => w,
        Some(other) => {
            return Err(format!(
                "field `window` must be an object or null, found {}",
                kind_of(other)
            ));
        }
    };
    let start = time(w, "start").map_err(|e| format!("window: {e}"))?;
    let end = time(w, "end").map_err(|e| format!("window: {e}"))?;
    if end < start {
        return Err(format!(
            "window: `end` ({}) is before `start` ({})",
            end.to_rfc3339(),
            start.to_rfc3339()
        ));
    }
    let explanation_url = match w.get("explanation_url") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            return Err(format!(
                "window: field `explanation_url` must be a string or null, found {}",
                kind_of(other)
            ));
        }
    };
    let retry_after = match w.get("retry_after_secs") {
        None | Some(Value::Null) => DEFAULT_RENEWAL_RETRY,
        Some(v) => Duration::from_secs(v.as_u64().ok_or_else(|| {
            format!("window: field `retry_after_secs` must be a whole number of seconds, found {v}")
        })?),
    };
    Ok(Some(RenewalWindow {
        start,
        end,
        explanation_url,
        retry_after,
    }))
}

/// Checks an `issue` response against the request and returns the chain, re-encoded as PEM.
pub(super) fn decode_chain(
    map: &Map<String, Value>,
    csr: &CsrInfo,
    identifiers: &[Identifier],
) -> Result<IssuedChain, String> {
    let leaf_text = string(map, "certificate")?;
    let chain_text = string(map, "chain")?;
    let leaves = inspect::read_certificates(leaf_text.as_bytes())
        .map_err(|e| format!("field `certificate` is not a PEM certificate: {e}"))?;
    let [leaf_der] = leaves.as_slice() else {
        return Err(format!(
            "field `certificate` holds {} certificates; it must hold only the leaf (the rest \
             go in `chain`)",
            leaves.len()
        ));
    };
    let leaf = inspect::inspect_certificate_der(leaf_der)
        .map_err(|e| format!("field `certificate` does not parse: {e}"))?;
    if leaf.fingerprints.spki_sha256 != csr.spki_sha256 {
        return Err("the certificate returned certifies a different key than the CSR's".into());
    }
    if leaf.is_ca {
        return Err("the certificate returned is a CA certificate, not a leaf".into());
    }
    for id in identifiers {
        let covered = match id {
            Identifier::Dns(name) => leaf.dns_names.iter().any(|n| n.eq_ignore_ascii_case(name)),
            Identifier::Ip(ip) => leaf.ip_addresses.contains(ip),
        };
        if !covered {
            return Err(format!("the certificate returned does not cover `{id}`"));
        }
    }
    let chain = if chain_text.trim().is_empty() {
        Vec::new()
    } else {
        inspect::read_certificates(chain_text.as_bytes())
            .map_err(|e| format!("field `chain` is not PEM certificates: {e}"))?
    };
    for (i, der) in chain.iter().enumerate() {
        inspect::inspect_certificate_der(der)
            .map_err(|e| format!("field `chain`: certificate #{} does not parse: {e}", i + 1))?;
    }
    if let Some(issuer) = chain.first() {
        let signed = inspect::cert_signed_by(leaf_der, issuer)
            .map_err(|e| format!("field `chain`: cannot check the leaf's signature: {e}"))?;
        if !signed {
            return Err("the first certificate in `chain` did not sign the leaf".into());
        }
    }
    Ok(IssuedChain {
        leaf_pem: inspect::encode_pem("CERTIFICATE", leaf_der),
        chain_pem: chain
            .iter()
            .map(|d| inspect::encode_pem("CERTIFICATE", d))
            .collect(),
    })
}
