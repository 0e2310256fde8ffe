//! CT log lists in the v3 JSON format that Chrome and Apple publish (and certspotter
//! reads): `operators[].logs[]` (RFC 6962 logs) and `operators[].tiled_logs[]`
//! (static-ct-api logs), each with its key, log id, state and URL(s).
//!
//! The list tells the SCT check which logs exist, who operates each, whether it is an RFC
//! 6962 log, and its state: an SCT counts only from a log that is qualified, usable or
//! read-only, or from a retired log when the SCT is older than the retirement.
//!
//! Unknown keys are ignored, as in the published lists. A log whose `log_id` is not the
//! SHA-256 of its key is refused, naming the field.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// A log's state in the list, with the time it entered it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListedState {
    /// Submitted to the programme, not yet trusted.
    Pending,
    /// Trusted.
    Qualified,
    /// Trusted.
    Usable,
    /// Trusted for what it logged; takes no new submissions.
    ReadOnly,
    /// Trusted for SCTs issued before the time it was retired.
    Retired,
    /// Never trusted.
    Rejected,
}

impl ListedState {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "pending" => Self::Pending,
            "qualified" => Self::Qualified,
            "usable" => Self::Usable,
            "readonly" => Self::ReadOnly,
            "retired" => Self::Retired,
            "rejected" => Self::Rejected,
            _ => return None,
        })
    }

    /// The state's name as the list writes it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Qualified => "qualified",
            Self::Usable => "usable",
            Self::ReadOnly => "readonly",
            Self::Retired => "retired",
            Self::Rejected => "rejected",
        }
    }
}

/// One log of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedLog {
    /// Its operator's name.
    pub operator: String,
    /// Its description.
    pub description: String,
    /// Its key, DER SubjectPublicKeyInfo.
    pub key_der: Vec<u8>,
    /// Whether it is an RFC 6962 log (`logs`) rather than a static-ct-api one
    /// (`tiled_logs`).
    pub rfc6962: bool,
    /// Its state and since when, when the list gives one.
    pub state: Option<(ListedState, DateTime<Utc>)>,
}

/// Parses a v3 log list; an error is `(field, message)`, the field as a JSON path
/// (`operators[0].logs[2].log_id`).
pub fn parse_log_list(text: &str) -> Result<Vec<ListedLog>, (String, String)> {
    let root: Value = serde_json::from_str(text)
        .map_err(|e| (String::new(), format!("not a JSON log list: {e}")))?;
    let operators = root
        .get("operators")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            (
                "operators".to_string(),
                "missing, or not an array".to_string(),
            )
        })?;
    let mut out: Vec<ListedLog> = Vec::new();
    let mut ids: Vec<[u8; 32]> = Vec::new();
    for (o, op) in operators.iter().enumerate() {
        let at = format!("operators[{o}]");
        let operator = op
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.trim().is_empty())
            .ok_or_else(|| (format!("{at}.name"), "missing, or not a string".to_string()))?;
        for (list, rfc6962) in [("logs", true), ("tiled_logs", false)] {
            let Some(logs) = op.get(list) else { continue };
            let logs = logs
                .as_array()
                .ok_or_else(|| (format!("{at}.{list}"), "not an array".to_string()))?;
            for (l, log) in logs.iter().enumerate() {
                let at = format!("{at}.{list}[{l}]");
                let listed = parse_log(log, &at, operator, rfc6962)?;
                let id: [u8; 32] = Sha256::digest(&listed.key_der).into();
                if ids.contains(&id) {
                    return Err((
                        format!("{at}.log_id"),
                        "the same log is listed twice".into(),
                    ));
                }
                ids.push(id);
                out.push(listed);
            }
        }
    }
    Ok(out)
}

fn parse_log(
    log: &Value,
    at: &str,
    operator: &str,
    rfc6962: bool,
) -> Result<ListedLog, (String, String)> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let field = |name: &str| -> Result<&str, (String, String)> {
        log.get(name).and_then(Value::as_str).ok_or_else(|| {
            (
                format!("{at}.{name}"),
                "missing, or not a string".to_string(),
            )
        })
    };
    let key_der = b64
        .decode(field("key")?)
        .map_err(|e| (format!("{at}.key"), format!("not base64: {e}")))?;
    if certresponder_inventory::inspect::read_public_key(&key_der).is_err() {
        return Err((format!("{at}.key"), "not a public key".into()));
    }
    let log_id = b64
        .decode(field("log_id")?)
        .map_err(|e| (format!("{at}.log_id"), format!("not base64: {e}")))?;
    if log_id.as_slice() != Sha256::digest(&key_der).as_slice() {
        return Err((
            format!("{at}.log_id"),
            "is not the SHA-256 of the log's key".into(),
        ));
    }
    let state = match log.get("state") {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) => {
            let [(name, detail)] = m.iter().collect::<Vec<_>>()[..] else {
                return Err((format!("{at}.state"), "must hold exactly one state".into()));
            };
            let state = ListedState::parse(name).ok_or_else(|| {
                (
                    format!("{at}.state.{name}"),
                    "not a state (pending, qualified, usable, readonly, retired, rejected)"
                        .to_string(),
                )
            })?;
            let since = detail
                .get("timestamp")
                .and_then(Value::as_str)
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .ok_or_else(|| {
                    (
                        format!("{at}.state.{name}.timestamp"),
                        "missing, or not an RFC 3339 time".to_string(),
                    )
                })?;
            Some((state, since.with_timezone(&Utc)))
        }
        Some(_) => return Err((format!("{at}.state"), "not an object".into())),
    };
    Ok(ListedLog {
        operator: operator.to_string(),
        description: log
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        key_der,
        rfc6962,
        state,
    })
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;

    use super::*;

    fn key() -> (String, String) {
        let k = rcgen::KeyPair::generate().unwrap();
        let der = rcgen::PublicKeyData::subject_public_key_info(&k);
        let b64 = base64::engine::general_purpose::STANDARD;
        (b64.encode(&der), b64.encode(Sha256::digest(&der)))
    }

    fn log(key: &(String, String), state: &str) -> Value {
        serde_json::json!({
            "description": "a log", "key": key.0, "log_id": key.1, "mmd": 86400,
            "url": "https://ct.example/log/", "state": serde_json::from_str::<Value>(state).unwrap(),
        })
    }

    #[test]
    fn reads_operators_logs_tiled_logs_and_states() {
        let (a, b, c) = (key(), key(), key());
        let list = serde_json::json!({
            "version": "3.0",
            "log_list_timestamp": "2026-11-01T00:00:00Z",
            "operators": [
                {"name": "Op One", "email": ["ct@one.example"],
                 "logs": [log(&a, r#"{"usable": {"timestamp": "2025-01-01T00:00:00Z"}}"#)],
                 "tiled_logs": [{"key": b.0, "log_id": b.1,
                    "submission_url": "https://one.example/s/", "monitoring_url": "https://one.example/m/",
                    "state": {"retired": {"timestamp": "2026-06-01T00:00:00Z"}}, "unknown_key": 1}]},
                {"name": "Op Two", "logs": [log(&c, "null")]}
            ]
        });
        let logs = parse_log_list(&list.to_string()).unwrap();
        assert_eq!(logs.len(), 3);
        assert_eq!(
            (
                logs[0].operator.as_str(),
                logs[0].rfc6962,
                logs[0].state.map(|s| s.0)
            ),
            ("Op One", true, Some(ListedState::Usable))
        );
        assert_eq!(
            (logs[1].rfc6962, logs[1].state),
            (
                false,
                Some((
                    ListedState::Retired,
                    "2026-06-01T00:00:00Z".parse().unwrap()
                ))
            )
        );
        assert_eq!((logs[2].operator.as_str(), logs[2].state), ("Op Two", None));
    }

    #[test]
    fn errors_name_the_field() {
        let (a, b) = (key(), key());
        let wrong_id = serde_json::json!({"operators": [{"name": "X", "logs": [
            log(&a, "null"),
            {"key": b.0, "log_id": a.1, "url": "https://x/"},
        ]}]});
        assert_eq!(
            parse_log_list(&wrong_id.to_string()).unwrap_err(),
            (
                "operators[0].logs[1].log_id".to_string(),
                "is not the SHA-256 of the log's key".to_string()
            )
        );
        let bad_state = serde_json::json!({"operators": [{"name": "X", "logs": [
            log(&a, r#"{"dead": {"timestamp": "2025-01-01T00:00:00Z"}}"#),
        ]}]});
        assert_eq!(
            parse_log_list(&bad_state.to_string()).unwrap_err().0,
            "operators[0].logs[0].state.dead"
        );
        let twice = serde_json::json!({"operators": [
            {"name": "X", "logs": [log(&a, "null")]},
            {"name": "Y", "logs": [log(&a, "null")]},
        ]});
        assert_eq!(
            parse_log_list(&twice.to_string()).unwrap_err().0,
            "operators[1].logs[0].log_id"
        );
        assert_eq!(parse_log_list("{}").unwrap_err().0, "operators");
        assert!(
            parse_log_list("not json")
                .unwrap_err()
                .1
                .contains("not a JSON")
        );
    }
}
