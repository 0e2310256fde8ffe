//! CT monitoring settings: `[ct]` (watched domains, the CAs allowed to issue for them) and
//! `[[ct_log]]` (the logs to read).
//!
//! ```toml
//! [ct]
//! domains = [".example.com", "shop.example.org"]   # `.x` is x and everything below it
//! batch = 256                                      # default entries per get-entries request
//! start = "end"                                    # where new logs are first read from
//! log_list = "log_list.json"                       # v3 log list: the logs SCTs may come from
//! [ct.allowed_issuers]                             # like CAA: who may issue for a name
//! ".example.com" = ["Let's Encrypt", "spki:3b1e...e7"]
//!
//! [[ct_log]]
//! name = "argon2026h1"
//! url = "https://ct.googleapis.com/logs/us1/argon2026h1/"
//! key = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE..."   # base64 DER SubjectPublicKeyInfo
//! type = "rfc6962"                                  # or "static" (static-ct-api)
//! # monitoring_url = "https://..."                  # static: where tiles are read
//! rate_limit = "10/s"
//! max_batch = 256
//! parallel = 2
//! operator = "Google"                               # SCTs must come from 2 operators
//! # start = "beginning"                            # this log: read its history too
//! ```
//!
//! `start` says where a log is read from the first time (with no saved position): at its
//! `"beginning"` (every entry it ever logged; the default) or at its `"end"` (from its
//! current tree head on, which is how to add a public log of hundreds of millions of
//! entries). A log's own `start` overrides `[ct] start`.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::Serialize;
use toml::Value;

use super::{LogKind, LogSpec};

/// Fields of `[ct]`.
const CT_FIELDS: &[&str] = &["domains", "batch", "allowed_issuers", "start", "log_list"];
/// Fields of `[[ct_log]]`.
const LOG_FIELDS: &[&str] = &[
    "name",
    "url",
    "key",
    "type",
    "monitoring_url",
    "rate_limit",
    "max_batch",
    "parallel",
    "start",
    "operator",
];

/// Where a log is first read from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Start {
    /// Its first entry: everything it ever logged.
    #[default]
    Beginning,
    /// Its latest tree head: only what it logs from now on.
    End,
}

impl Start {
    fn parse(v: &Value, field: &str) -> Result<Self, (String, String)> {
        match v.as_str() {
            Some("beginning") => Ok(Self::Beginning),
            Some("end") => Ok(Self::End),
            _ => Err((
                field.to_string(),
                format!("must be \"beginning\" or \"end\", found {v}"),
            )),
        }
    }
}

/// One configured log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CtLog {
    /// Its name, unique in the configuration (state is kept under it).
    pub name: String,
    /// How to read it.
    pub spec: LogSpec,
    /// Where it is first read from, when it says so itself (else `[ct] start`).
    pub start: Option<Start>,
    /// Who operates it (for the SCT policy's distinct operators).
    pub operator: Option<String>,
}

/// The CT settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CtConfig {
    /// Watched domains besides the inventory's names; `.example.com` means the subtree.
    pub domains: Vec<String>,
    /// Per watched pattern, the CAs that may issue for it: issuer names (DN or CN, matched
    /// case-insensitively as a substring of the issuer DN) or `spki:HEX` of the issuing CA.
    pub allowed_issuers: BTreeMap<String, Vec<String>>,
    /// The logs.
    pub logs: Vec<CtLog>,
    /// Where logs that do not say are first read from.
    pub start: Start,
    /// The log list file (`log_list`), resolved against the configuration's directory.
    pub log_list: Option<std::path::PathBuf>,
    /// The logs it lists, for the SCT check (they are not monitored).
    #[serde(skip)]
    pub listed: Vec<super::loglist::ListedLog>,
}

impl CtConfig {
    /// Where `log` is first read from.
    pub fn start_of(&self, log: &CtLog) -> Start {
        log.start.unwrap_or(self.start)
    }
}

impl Eq for CtConfig {}

fn unknown(key: &str, known: &[&str]) -> String {
    let hint = certresponder_inventory::did_you_mean(key, known)
        .map(|s| format!("; did you mean `{s}`?"))
        .unwrap_or_else(|| format!(" (known fields: {})", known.join(", ")));
    format!("unknown field{hint}")
}

fn strings(v: &Value, field: &str) -> Result<Vec<String>, (String, String)> {
    let Some(a) = v.as_array() else {
        return Err((field.to_string(), "must be an array of strings".into()));
    };
    a.iter()
        .enumerate()
        .map(|(i, x)| match x.as_str() {
            Some(s) if !s.trim().is_empty() => Ok(s.trim().to_string()),
            _ => Err((format!("{field}[{i}]"), "must be a non-empty string".into())),
        })
        .collect()
}

/// Parses `[ct]`; errors are `(field within [ct], message)`.
pub fn parse_ct(t: &toml::Table, into: &mut CtConfig) -> Result<(), (String, String)> {
    for key in t.keys() {
        if !CT_FIELDS.contains(&key.as_str()) {
            return Err((key.clone(), unknown(key, CT_FIELDS)));
        }
    }
    if let Some(v) = t.get("domains") {
        into.domains = strings(v, "domains")?;
    }
    if let Some(v) = t.get("allowed_issuers") {
        let Some(m) = v.as_table() else {
            return Err((
                "allowed_issuers".into(),
                "must be a table of domain = [issuers]".into(),
            ));
        };
        for (pattern, list) in m {
            into.allowed_issuers.insert(
                pattern.clone(),
                strings(list, &format!("allowed_issuers.\"{pattern}\""))?,
            );
        }
    }
    if let Some(v) = t.get("start") {
        into.start = Start::parse(v, "start")?;
    }
    if let Some(v) = t.get("batch") {
        match v.as_integer() {
            Some(n) if (1..=10_000).contains(&n) => {
                for log in &mut into.logs {
                    log.spec.max_batch = u64::try_from(n).unwrap_or(256);
                }
            }
            _ => {
                return Err((
                    "batch".into(),
                    format!("must be a whole number from 1 to 10000, found {v}"),
                ));
            }
        }
    }
    Ok(())
}

/// Parses one `[[ct_log]]`; errors are `(field within the table, message)`.
pub fn parse_log(t: &toml::Table) -> Result<CtLog, (String, String)> {
    for key in t.keys() {
        if !LOG_FIELDS.contains(&key.as_str()) {
            return Err((key.clone(), unknown(key, LOG_FIELDS)));
        }
    }
    let string = |f: &str| -> Result<Option<String>, (String, String)> {
        match t.get(f) {
            None => Ok(None),
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim().to_string())),
            Some(other) => Err((
                f.to_string(),
                format!("must be a non-empty string, found {other}"),
            )),
        }
    };
    let name = string("name")?.ok_or_else(|| ("name".to_string(), "missing".to_string()))?;
    let url = string("url")?.ok_or_else(|| ("url".to_string(), "missing".to_string()))?;
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(("url".into(), format!("`{url}` is not an http(s) URL")));
    }
    let key = string("key")?.ok_or_else(|| {
        (
            "key".to_string(),
            "missing: the log's public key, base64 DER (as log lists give it)".to_string(),
        )
    })?;
    let der = base64::engine::general_purpose::STANDARD
        .decode(key.as_bytes())
        .map_err(|e| ("key".to_string(), format!("not base64: {e}")))?;
    // The key must be one RFC 6962 allows: ECDSA P-256 or RSA.
    match certresponder_inventory::inspect::read_public_key(&der) {
        Ok(certresponder_inventory::inspect::KeyInfo::Rsa { .. }) => {}
        Ok(certresponder_inventory::inspect::KeyInfo::Ec { curve, .. }) if curve == "P-256" => {}
        Ok(other) => {
            return Err((
                "key".into(),
                format!(
                    "a {} key; CT logs sign with ECDSA P-256 or RSA",
                    other.describe()
                ),
            ));
        }
        Err(e) => return Err(("key".into(), format!("not a public key: {e}"))),
    }
    let kind = match string("type")?.as_deref() {
        None | Some("rfc6962") => LogKind::Rfc6962,
        Some("static") | Some("static-ct-api") => LogKind::StaticCt {
            monitoring_url: string("monitoring_url")?.unwrap_or_else(|| url.clone()),
        },
        Some(other) => {
            return Err((
                "type".into(),
                format!("`{other}` is not a log type: use \"rfc6962\" or \"static\""),
            ));
        }
    };
    let mut spec = LogSpec::new(url, der, kind);
    if let Some(r) = string("rate_limit")? {
        let rate =
            crate::respond::settings::Rate::parse(&r).map_err(|e| ("rate_limit".to_string(), e))?;
        spec.rate_per_sec = Some(f64::from(rate.count) / rate.per.as_secs_f64());
    }
    let int = |f: &str, max: i64| -> Result<Option<u64>, (String, String)> {
        match t.get(f) {
            None => Ok(None),
            Some(Value::Integer(n)) if (1..=max).contains(n) => Ok(u64::try_from(*n).ok()),
            Some(other) => Err((
                f.to_string(),
                format!("must be a whole number from 1 to {max}, found {other}"),
            )),
        }
    };
    if let Some(n) = int("max_batch", 10_000)? {
        spec.max_batch = n;
    }
    if let Some(n) = int("parallel", 64)? {
        spec.parallel = usize::try_from(n).unwrap_or(1);
    }
    let start = t
        .get("start")
        .map(|v| Start::parse(v, "start"))
        .transpose()?;
    let operator = string("operator")?;
    Ok(CtLog {
        name,
        spec,
        start,
        operator,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> toml::Table {
        text.parse().unwrap()
    }

    fn log_table(extra: &str) -> toml::Table {
        let key = rcgen::KeyPair::generate().unwrap();
        let b64 = base64::engine::general_purpose::STANDARD
            .encode(rcgen::PublicKeyData::subject_public_key_info(&key));
        table(&format!(
            "name = \"a\"\nurl = \"https://log.example/a/\"\nkey = \"{b64}\"\n{extra}"
        ))
    }

    #[test]
    fn where_a_log_starts_comes_from_the_log_then_from_ct() {
        let plain = parse_log(&log_table("")).unwrap();
        let at_end = parse_log(&log_table("start = \"end\"")).unwrap();
        let from_start = parse_log(&log_table("start = \"beginning\"")).unwrap();
        assert_eq!(plain.start, None);

        let mut cfg = CtConfig {
            logs: vec![plain.clone(), at_end.clone(), from_start.clone()],
            ..CtConfig::default()
        };
        assert_eq!(cfg.start_of(&plain), Start::Beginning, "the default");
        assert_eq!(cfg.start_of(&at_end), Start::End);
        parse_ct(&table("start = \"end\""), &mut cfg).unwrap();
        assert_eq!(cfg.start_of(&plain), Start::End);
        assert_eq!(cfg.start_of(&from_start), Start::Beginning, "the log's own");

        let err = parse_log(&log_table("start = \"now\"")).unwrap_err();
        assert_eq!(err.0, "start");
        assert!(err.1.contains("\"beginning\" or \"end\""), "{}", err.1);
        let err = parse_ct(&table("start = 0"), &mut cfg).unwrap_err();
        assert_eq!(err.0, "start");
    }

    #[test]
    fn a_log_names_its_operator() {
        let log = parse_log(&log_table("operator = \"Google\"")).unwrap();
        assert_eq!(log.operator.as_deref(), Some("Google"));
        assert_eq!(parse_log(&log_table("")).unwrap().operator, None);
        let err = parse_log(&log_table("operator = \"\"")).unwrap_err();
        assert_eq!(err.0, "operator");
    }
}
