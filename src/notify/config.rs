//! The `[notify]` configuration: where notifications go and how hard delivery tries.
//!
//! ```toml
//! [notify]
//! attempts = 5              # delivery attempts per notification before it is abandoned
//! retry_base_ms = 1000      # backoff doubles from this, capped at 10 minutes
//! timeout_secs = 10         # per attempt
//! [notify.webhook]
//! url = "https://hooks.example.com/certresponder"
//! secret_file = "/etc/certresponder/webhook.secret"   # HMAC-SHA256 key, mode 0600 or 0400
//! [notify.exec]
//! command = "/usr/local/bin/page-owner"               # `sh -c`, the notification JSON on stdin
//! [notify.owners."team-web@example.com"]              # replaces the defaults for this owner
//! webhook = { url = "https://hooks.example.com/web" }
//! ```

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use certresponder_inventory::did_you_mean;
use serde::{Deserialize, Serialize};
use toml::{Table, Value};

const FIELDS: &[&str] = &[
    "attempts",
    "retry_base_ms",
    "timeout_secs",
    "webhook",
    "exec",
    "owners",
];
const WEBHOOK_FIELDS: &[&str] = &["url", "secret_file"];
const EXEC_FIELDS: &[&str] = &["command"];
const OWNER_FIELDS: &[&str] = &["webhook", "exec"];

/// The longest wait between two delivery attempts, whatever the backoff or the receiver's
/// `Retry-After` say.
pub const MAX_BACKOFF: Duration = Duration::from_secs(600);

/// A configuration error: the field path inside `[notify]` and what is wrong with it.
type FieldError = (String, String);

/// The `[notify]` table: the default targets, per-owner targets and delivery settings.
///
/// It holds no secret: a webhook's HMAC key is read from its `secret_file` when a
/// notification is delivered, so it can be rotated without a restart and is never printed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotifyConfig {
    /// Delivery attempts per notification before it is abandoned (logged and audited).
    pub attempts: u32,
    /// The first retry waits this long; each further one waits twice as long as the last,
    /// up to [`MAX_BACKOFF`].
    pub retry_base_ms: u64,
    /// How long one attempt may take (connect, send and answer; or the exec hook's run).
    pub timeout_secs: u64,
    /// The default webhook.
    pub webhook: Option<WebhookTarget>,
    /// The default exec hook.
    pub exec: Option<ExecTarget>,
    /// Per-owner targets, by owner as written in the inventory. An owner listed here gets
    /// only its own targets, not the defaults.
    pub owners: BTreeMap<String, OwnerTargets>,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        Self {
            attempts: 5,
            retry_base_ms: 1000,
            timeout_secs: 10,
            webhook: None,
            exec: None,
            owners: BTreeMap::new(),
        }
    }
}

/// A webhook: notifications are POSTed to it as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookTarget {
    /// An `http://` or `https://` URL.
    pub url: String,
    /// The file holding the HMAC-SHA256 key for the `X-Certresponder-Signature` header
    /// (its contents, a trailing newline trimmed). No signature header without it.
    pub secret_file: Option<PathBuf>,
}

/// An exec hook: a shell command given the notification JSON on stdin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecTarget {
    /// The command line, run with `sh -c`.
    pub command: String,
}

/// One owner's targets (`[notify.owners."owner"]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OwnerTargets {
    /// The owner's webhook.
    pub webhook: Option<WebhookTarget>,
    /// The owner's exec hook.
    pub exec: Option<ExecTarget>,
}

/// Where one queued notification goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Target {
    /// A webhook POST.
    Webhook(WebhookTarget),
    /// An exec hook.
    Exec(ExecTarget),
}

impl Target {
    /// `webhook` or `exec`, as audit records and logs name it.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Webhook(_) => "webhook",
            Self::Exec(_) => "exec",
        }
    }
}

impl NotifyConfig {
    /// Parses the `[notify]` table. Relative `secret_file` paths are taken relative to
    /// `base` (the configuration file's directory). Errors name the field inside `[notify]`
    /// (such as `webhook.url`) and say what is wrong with it.
    pub fn parse(t: &Table, base: &Path) -> Result<Self, (String, String)> {
        check_fields(t, FIELDS, "")?;
        let mut cfg = Self::default();
        if let Some(n) = integer(t, "attempts", 1, 100)? {
            cfg.attempts = u32::try_from(n).unwrap_or(cfg.attempts);
        }
        if let Some(n) = integer(t, "retry_base_ms", 1, 600_000)? {
            cfg.retry_base_ms = u64::try_from(n).unwrap_or(cfg.retry_base_ms);
        }
        if let Some(n) = integer(t, "timeout_secs", 1, 600)? {
            cfg.timeout_secs = u64::try_from(n).unwrap_or(cfg.timeout_secs);
        }
        cfg.webhook = parse_webhook(t.get("webhook"), base, "webhook")?;
        cfg.exec = parse_exec(t.get("exec"), "exec")?;
        match t.get("owners") {
            None => {}
            Some(Value::Table(owners)) => {
                for (owner, v) in owners {
                    let path = format!("owners.{}", toml_key(owner));
                    if owner.trim().is_empty() {
                        return Err((path, "the owner must not be empty".into()));
                    }
                    if let Some(other) = cfg.owners.keys().find(|k| k.eq_ignore_ascii_case(owner)) {
                        return Err((
                            path,
                            format!(
                                "the same owner as `{other}` (owners are matched ignoring case)"
                            ),
                        ));
                    }
                    let Value::Table(ot) = v else {
                        return Err((
                            path,
                            format!(
                                "must be a table, written [notify.owners.{}]",
                                toml_key(owner)
                            ),
                        ));
                    };
                    check_fields(ot, OWNER_FIELDS, &format!("{path}."))?;
                    let targets = OwnerTargets {
                        webhook: parse_webhook(
                            ot.get("webhook"),
                            base,
                            &format!("{path}.webhook"),
                        )?,
                        exec: parse_exec(ot.get("exec"), &format!("{path}.exec"))?,
                    };
                    if targets.webhook.is_none() && targets.exec.is_none() {
                        return Err((path, "names no target: give it a webhook or an exec".into()));
                    }
                    cfg.owners.insert(owner.clone(), targets);
                }
            }
            Some(other) => {
                return Err((
                    "owners".into(),
                    format!(
                        "must be a table of owners, written [notify.owners.\"owner\"], found {other}"
                    ),
                ));
            }
        }
        Ok(cfg)
    }

    /// The targets a notification for `owner` goes to: the owner's own targets when
    /// `[notify.owners]` lists it (matched ignoring ASCII case), else the defaults.
    pub fn targets_for(&self, owner: Option<&str>) -> Vec<Target> {
        let own = owner.and_then(|o| {
            self.owners
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(o))
                .map(|(_, t)| t)
        });
        let (webhook, exec) = match own {
            Some(t) => (&t.webhook, &t.exec),
            None => (&self.webhook, &self.exec),
        };
        webhook
            .iter()
            .cloned()
            .map(Target::Webhook)
            .chain(exec.iter().cloned().map(Target::Exec))
            .collect()
    }

    /// Whether any notification can go anywhere.
    pub fn has_targets(&self) -> bool {
        self.webhook.is_some() || self.exec.is_some() || !self.owners.is_empty()
    }

    /// The time one attempt may take.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs)
    }
}

/// The wait before the next attempt after `failures` failed ones: `base_ms`, doubled for
/// each further failure, at most [`MAX_BACKOFF`].
pub fn backoff(base_ms: u64, failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(63);
    let ms = base_ms.saturating_mul(1u64 << doublings);
    Duration::from_millis(ms).min(MAX_BACKOFF)
}

/// A key as TOML would need it written: bare when it can be, else quoted.
fn toml_key(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        key.to_string()
    } else {
        format!("{key:?}")
    }
}

fn check_fields(t: &Table, known: &[&str], prefix: &str) -> Result<(), FieldError> {
    for key in t.keys() {
        if !known.contains(&key.as_str()) {
            let hint = did_you_mean(key, known)
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_else(|| format!(" (known fields: {})", known.join(", ")));
            return Err((
                format!("{prefix}{}", toml_key(key)),
                format!("unknown field{hint}"),
            ));
        }
    }
    Ok(())
}

fn integer(t: &Table, field: &str, min: i64, max: i64) -> Result<Option<i64>, FieldError> {
    match t.get(field) {
        None => Ok(None),
        Some(Value::Integer(n)) if (min..=max).contains(n) => Ok(Some(*n)),
        Some(other) => Err((
            field.to_string(),
            format!("must be a whole number from {min} to {max}, found {other}"),
        )),
    }
}

fn string(t: &Table, field: &str, path: &str) -> Result<Option<String>, FieldError> {
    match t.get(field) {
        None => Ok(None),
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.clone())),
        Some(other) => Err((
            format!("{path}.{field}"),
            format!("must be a non-empty string, found {other}"),
        )),
    }
}

fn parse_webhook(
    v: Option<&Value>,
    base: &Path,
    path: &str,
) -> Result<Option<WebhookTarget>, FieldError> {
    let Some(v) = v else {
        return Ok(None);
    };
    let Value::Table(t) = v else {
        return Err((
            path.to_string(),
            format!("must be a table with `url` and optionally `secret_file`, found {v}"),
        ));
    };
    check_fields(t, WEBHOOK_FIELDS, &format!("{path}."))?;
    let url = string(t, "url", path)?
        .ok_or_else(|| (format!("{path}.url"), "is required".to_string()))?;
    check_url(&url).map_err(|m| (format!("{path}.url"), m))?;
    let secret_file = match string(t, "secret_file", path)? {
        None => None,
        Some(s) => {
            let p = PathBuf::from(s);
            let p = if p.is_absolute() { p } else { base.join(p) };
            check_secret_file(&p).map_err(|m| (format!("{path}.secret_file"), m))?;
            Some(p)
        }
    };
    Ok(Some(WebhookTarget { url, secret_file }))
}

fn parse_exec(v: Option<&Value>, path: &str) -> Result<Option<ExecTarget>, FieldError> {
    let Some(v) = v else {
        return Ok(None);
    };
    let Value::Table(t) = v else {
        return Err((
            path.to_string(),
            format!("must be a table with `command`, found {v}"),
        ));
    };
    check_fields(t, EXEC_FIELDS, &format!("{path}."))?;
    let command = string(t, "command", path)?
        .ok_or_else(|| (format!("{path}.command"), "is required".to_string()))?;
    Ok(Some(ExecTarget { command }))
}

/// An absolute `http` or `https` URL with a host and no credentials in it.
fn check_url(url: &str) -> Result<(), String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("is not a valid URL: {e}"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        Some(other) => {
            return Err(format!(
                "must be an http:// or https:// URL, found scheme `{other}`"
            ));
        }
        None => return Err("must be an absolute http:// or https:// URL".into()),
    }
    let Some(authority) = uri.authority() else {
        return Err("must name a host".into());
    };
    if authority.as_str().contains('@') {
        return Err(
            "must not carry credentials (user:password@); receivers verify the signature made \
             with `secret_file` instead"
                .into(),
        );
    }
    if authority.host().is_empty() {
        return Err("must name a host".into());
    }
    Ok(())
}

/// The HMAC key file must exist and be private to its owner: anyone who can read it can
/// forge notifications.
fn check_secret_file(path: &Path) -> Result<(), String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{} is not a regular file", path.display()));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "{} is open to its group or others (mode {mode:04o}); the signing key must be \
             private to the service account (chmod 600)",
            path.display()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(dir: &Path, name: &str, mode: u32) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, "s3cret\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    fn parse(text: &str, base: &Path) -> Result<NotifyConfig, (String, String)> {
        let t: Table = toml::from_str(text).unwrap();
        NotifyConfig::parse(&t, base)
    }

    #[test]
    fn parses_a_full_table() {
        let dir = tempfile::tempdir().unwrap();
        secret(dir.path(), "hook.secret", 0o600);
        let cfg = parse(
            r#"
            attempts = 3
            retry_base_ms = 250
            timeout_secs = 4
            [webhook]
            url = "https://hooks.example.com/certresponder"
            secret_file = "hook.secret"
            [exec]
            command = "/usr/local/bin/page-owner"
            [owners."team-web@example.com"]
            webhook = { url = "http://127.0.0.1:9000/web" }
            "#,
            dir.path(),
        )
        .unwrap();
        assert_eq!(cfg.attempts, 3);
        assert_eq!(cfg.retry_base_ms, 250);
        assert_eq!(cfg.timeout(), Duration::from_secs(4));
        let hook = cfg.webhook.clone().unwrap();
        assert_eq!(hook.secret_file, Some(dir.path().join("hook.secret")));
        assert_eq!(
            cfg.exec.clone().unwrap().command,
            "/usr/local/bin/page-owner"
        );

        // An owner with its own targets gets only those; anyone else the defaults.
        let own = cfg.targets_for(Some("Team-Web@example.com"));
        assert_eq!(own.len(), 1);
        assert!(matches!(&own[0], Target::Webhook(w) if w.url == "http://127.0.0.1:9000/web"));
        let other = cfg.targets_for(Some("team-db@example.com"));
        assert_eq!(other.len(), 2);
        assert!(matches!(&other[0], Target::Webhook(w) if w == &hook));
        assert!(matches!(&other[1], Target::Exec(_)));
        assert_eq!(cfg.targets_for(None).len(), 2);

        // Neither Debug nor Serialize shows the key; only where it is kept.
        let shown = format!("{cfg:?}{}", serde_json::to_string(&cfg).unwrap());
        assert!(!shown.contains("s3cret"));
    }

    #[test]
    fn defaults_and_empty() {
        let cfg = parse("", Path::new("/")).unwrap();
        assert_eq!(cfg, NotifyConfig::default());
        assert!(cfg.targets_for(Some("anyone")).is_empty());
        assert!(!cfg.has_targets());
    }

    #[test]
    fn unknown_fields_get_a_hint() {
        let base = Path::new("/");
        let (field, msg) = parse("atempts = 3", base).unwrap_err();
        assert_eq!(field, "atempts");
        assert!(msg.contains("did you mean `attempts`"), "{msg}");
        let (field, msg) = parse(
            "[webhook]\nurl = \"https://x.example\"\nsecretfile = \"a\"",
            base,
        )
        .unwrap_err();
        assert_eq!(field, "webhook.secretfile");
        assert!(msg.contains("did you mean `secret_file`"), "{msg}");
        let (field, msg) = parse(
            "[owners.\"a@example.com\"]\nexec = { comand = \"true\" }",
            base,
        )
        .unwrap_err();
        assert_eq!(field, "owners.\"a@example.com\".exec.comand");
        assert!(msg.contains("did you mean `command`"), "{msg}");
    }

    #[test]
    fn rejects_bad_values() {
        let base = Path::new("/");
        let (field, msg) =
            parse("[webhook]\nurl = \"ftp://hooks.example.com/x\"", base).unwrap_err();
        assert_eq!(field, "webhook.url");
        assert!(msg.contains("http:// or https://"), "{msg}");
        let (field, _) = parse("[webhook]\nurl = \"hooks.example.com/x\"", base).unwrap_err();
        assert_eq!(field, "webhook.url");
        let (field, _) =
            parse("[webhook]\nurl = \"https://u:p@hooks.example.com/\"", base).unwrap_err();
        assert_eq!(field, "webhook.url");
        let (field, _) = parse("[webhook]\nsecret_file = \"x\"", base).unwrap_err();
        assert_eq!(field, "webhook.url");
        let (field, _) = parse("attempts = 0", base).unwrap_err();
        assert_eq!(field, "attempts");
        let (field, _) = parse("timeout_secs = \"10\"", base).unwrap_err();
        assert_eq!(field, "timeout_secs");
        let (field, _) = parse("[exec]\ncommand = \"\"", base).unwrap_err();
        assert_eq!(field, "exec.command");
        let (field, msg) = parse("[owners.ops]", base).unwrap_err();
        assert_eq!(field, "owners.ops");
        assert!(msg.contains("no target"), "{msg}");
        let (field, _) = parse(
            "[owners.ops]\nexec = { command = \"true\" }\n[owners.OPS]\nexec = { command = \"true\" }",
            base,
        )
        .unwrap_err();
        assert_eq!(field, "owners.ops");
        let (field, _) = parse(
            "[webhook]\nurl = \"https://x.example\"\nsecret_file = \"/nonexistent/x\"",
            base,
        )
        .unwrap_err();
        assert_eq!(field, "webhook.secret_file");
    }

    #[test]
    fn rejects_a_readable_secret_file() {
        let dir = tempfile::tempdir().unwrap();
        secret(dir.path(), "open.secret", 0o644);
        secret(dir.path(), "group.secret", 0o640);
        for name in ["open.secret", "group.secret"] {
            let (field, msg) = parse(
                &format!("[webhook]\nurl = \"https://x.example/\"\nsecret_file = \"{name}\""),
                dir.path(),
            )
            .unwrap_err();
            assert_eq!(field, "webhook.secret_file");
            assert!(msg.contains("chmod 600"), "{msg}");
        }
        secret(dir.path(), "ro.secret", 0o400);
        parse(
            "[webhook]\nurl = \"https://x.example/\"\nsecret_file = \"ro.secret\"",
            dir.path(),
        )
        .unwrap();
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let schedule: Vec<u64> = (1..=6)
            .map(|n| backoff(1000, n).as_millis() as u64)
            .collect();
        assert_eq!(schedule, [1000, 2000, 4000, 8000, 16_000, 32_000]);
        assert_eq!(backoff(1000, 10), Duration::from_millis(512_000));
        assert_eq!(backoff(1000, 11), MAX_BACKOFF);
        assert_eq!(backoff(600_000, 1000), MAX_BACKOFF);
        assert_eq!(backoff(50, 0), Duration::from_millis(50));
    }
}
