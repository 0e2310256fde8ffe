//! The `[respond]` table of the configuration: how sequences run.
//!
//! ```toml
//! [respond]
//! concurrency = 8            # sequences for different certificates at once
//! issuer_concurrency = 8     # calls in flight at one issuer (issue, revoke, status)
//! history_keep = 10          # bundles kept per certificate (the current one always)
//! reload_timeout_secs = 60   # a reload command running longer is killed
//! reload_window_ms = 500     # identical reload commands requested within it run once
//! hook_timeout_secs = 60     # deploy_hook commands
//! verify_timeout_secs = 30   # keep checking the endpoints this long after a reload
//! verify_interval_ms = 100   # between two checks
//! verify_consecutive = 3     # handshakes in a row that must present the new certificate
//! issue_attempts = 5         # tries for a retryable issuer error (rate limit, network, 5xx)
//! retry_base_ms = 1000       # first back-off; doubles, capped at 60 s, or the CA's Retry-After
//! confirm_timeout_secs = 30  # keep asking the issuer for the old certificate's status
//! replacement_rate = "10/s"  # orders per issuer for mass replacements (a distrusted CA);
//!                            # N/s, N/m or N/h; no limit when absent
//! ```

use std::time::Duration;

use toml::{Table, Value};

/// Field names of `[respond]`.
pub const FIELDS: &[&str] = &[
    "concurrency",
    "issuer_concurrency",
    "history_keep",
    "reload_timeout_secs",
    "reload_window_ms",
    "hook_timeout_secs",
    "verify_timeout_secs",
    "verify_interval_ms",
    "verify_consecutive",
    "issue_attempts",
    "retry_base_ms",
    "confirm_timeout_secs",
    "replacement_rate",
];

/// How sequences run.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RespondConfig {
    /// Sequences for different certificates that run at once.
    pub concurrency: usize,
    /// Calls in flight at one issuer at once.
    pub issuer_concurrency: usize,
    /// Bundles kept per certificate.
    pub history_keep: usize,
    /// Reload command timeout.
    pub reload_timeout: Duration,
    /// Identical reload commands requested within this window run once.
    pub reload_window: Duration,
    /// Deploy hook timeout.
    pub hook_timeout: Duration,
    /// How long verification keeps retrying.
    pub verify_timeout: Duration,
    /// Pause between verification attempts.
    pub verify_interval: Duration,
    /// Handshakes in a row that must present the new certificate.
    pub verify_consecutive: u32,
    /// Attempts at an issuer call that fails with a retryable error.
    pub issue_attempts: u32,
    /// First back-off between attempts.
    pub retry_base: Duration,
    /// How long to wait for the issuer to show the old certificate revoked.
    pub confirm_timeout: Duration,
    /// The most orders a mass replacement places at one issuer per unit of time.
    pub replacement_rate: Option<Rate>,
}

/// A rate: `count` per `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Rate {
    /// How many.
    pub count: u32,
    /// Per this long.
    pub per: Duration,
}

impl Rate {
    /// Parses `10/s`, `300/m` or `5000/h`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "`{s}` is not a rate: write a count and a unit, such as \"10/s\", \"300/m\" or \"5000/h\""
            )
        };
        let (n, unit) = s.trim().split_once('/').ok_or_else(bad)?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        if count == 0 {
            return Err(format!("`{s}`: the count must be above zero"));
        }
        let per = match unit.trim() {
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            _ => return Err(bad()),
        };
        Ok(Self { count, per })
    }

    /// The spacing between two orders.
    pub fn interval(self) -> Duration {
        self.per / self.count
    }
}

/// Spaces calls evenly to at most a [`Rate`], separately for each key (an issuer id).
#[derive(Debug, Default)]
pub struct RateGate {
    rate: Option<Rate>,
    next: std::sync::Mutex<std::collections::HashMap<String, tokio::time::Instant>>,
}

impl RateGate {
    /// A gate for `rate`; `None` lets everything through at once.
    pub fn new(rate: Option<Rate>) -> Self {
        Self {
            rate,
            next: std::sync::Mutex::default(),
        }
    }

    /// Waits for `key`'s next turn: the first call goes at once, each later one
    /// [`Rate::interval`] after the one before it.
    pub async fn turn(&self, key: &str) {
        let Some(rate) = self.rate else {
            return;
        };
        let slot = {
            let Ok(mut next) = self.next.lock() else {
                return;
            };
            let now = tokio::time::Instant::now();
            let slot = next.get(key).copied().filter(|t| *t > now).unwrap_or(now);
            next.insert(key.to_string(), slot + rate.interval());
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let unit = match self.per.as_secs() {
            1 => "s",
            60 => "m",
            _ => "h",
        };
        write!(f, "{}/{unit}", self.count)
    }
}

impl Default for RespondConfig {
    fn default() -> Self {
        Self {
            concurrency: 8,
            issuer_concurrency: 8,
            history_keep: 10,
            reload_timeout: Duration::from_secs(60),
            reload_window: Duration::from_millis(500),
            hook_timeout: Duration::from_secs(60),
            verify_timeout: Duration::from_secs(30),
            verify_interval: Duration::from_millis(100),
            verify_consecutive: 3,
            issue_attempts: 5,
            retry_base: Duration::from_secs(1),
            confirm_timeout: Duration::from_secs(30),
            replacement_rate: None,
        }
    }
}

impl RespondConfig {
    /// Parses the `[respond]` table. Errors are `(field, message)`.
    pub fn parse(t: &Table) -> Result<Self, (String, String)> {
        for key in t.keys() {
            if !FIELDS.contains(&key.as_str()) {
                let hint = certresponder_inventory::did_you_mean(key, FIELDS)
                    .map(|s| format!("; did you mean `{s}`?"))
                    .unwrap_or_else(|| format!(" (known fields: {})", FIELDS.join(", ")));
                return Err((format!("respond.{key}"), format!("unknown field{hint}")));
            }
        }
        let int =
            |field: &str, min: i64, max: i64, default: u64| -> Result<u64, (String, String)> {
                match t.get(field) {
                    None => Ok(default),
                    Some(Value::Integer(n)) if (min..=max).contains(n) => {
                        Ok(u64::try_from(*n).unwrap_or(default))
                    }
                    Some(other) => Err((
                        format!("respond.{field}"),
                        format!("must be a whole number from {min} to {max}, found {other}"),
                    )),
                }
            };
        let d = Self::default();
        let secs = |field: &str, max: i64, default: Duration| {
            int(field, 1, max, default.as_secs()).map(Duration::from_secs)
        };
        let millis = |field: &str, min: i64, max: i64, default: Duration| {
            let default = u64::try_from(default.as_millis()).unwrap_or(u64::MAX);
            int(field, min, max, default).map(Duration::from_millis)
        };
        let as_usize = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        Ok(Self {
            concurrency: as_usize(int("concurrency", 1, 1024, d.concurrency as u64)?),
            issuer_concurrency: as_usize(int(
                "issuer_concurrency",
                1,
                1024,
                d.issuer_concurrency as u64,
            )?),
            history_keep: as_usize(int("history_keep", 2, 10_000, d.history_keep as u64)?),
            reload_timeout: secs("reload_timeout_secs", 3600, d.reload_timeout)?,
            reload_window: millis("reload_window_ms", 0, 60_000, d.reload_window)?,
            hook_timeout: secs("hook_timeout_secs", 3600, d.hook_timeout)?,
            verify_timeout: secs("verify_timeout_secs", 3600, d.verify_timeout)?,
            verify_interval: millis("verify_interval_ms", 10, 60_000, d.verify_interval)?,
            verify_consecutive: u32::try_from(int("verify_consecutive", 1, 100, 3)?).unwrap_or(3),
            issue_attempts: u32::try_from(int("issue_attempts", 1, 100, 5)?).unwrap_or(5),
            retry_base: millis("retry_base_ms", 1, 600_000, d.retry_base)?,
            confirm_timeout: secs("confirm_timeout_secs", 3600, d.confirm_timeout)?,
            replacement_rate: match t.get("replacement_rate") {
                None => None,
                Some(Value::String(r)) => {
                    Some(Rate::parse(r).map_err(|e| ("respond.replacement_rate".to_string(), e))?)
                }
                Some(other) => {
                    return Err((
                        "respond.replacement_rate".into(),
                        format!("must be a rate such as \"10/s\", found {other}"),
                    ));
                }
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_gate_spaces_turns_per_key() {
        let gate = std::sync::Arc::new(RateGate::new(Some(Rate::parse("10/s").unwrap())));
        let start = tokio::time::Instant::now();
        let mut tasks = Vec::new();
        for key in ["a", "a", "a", "a", "a", "b"] {
            let gate = std::sync::Arc::clone(&gate);
            tasks.push(tokio::spawn(async move {
                gate.turn(key).await;
                (key, start.elapsed())
            }));
        }
        let mut a = Vec::new();
        for t in tasks {
            match t.await.unwrap() {
                ("a", d) => a.push(d),
                (_, d) => assert_eq!(d, Duration::ZERO, "another key does not wait"),
            }
        }
        a.sort();
        let want: Vec<Duration> = (0..5).map(|i| Duration::from_millis(100 * i)).collect();
        assert_eq!(a, want);
        // Without a rate, no waiting at all.
        let open = RateGate::new(None);
        let t = tokio::time::Instant::now();
        open.turn("a").await;
        open.turn("a").await;
        assert_eq!(t.elapsed(), Duration::ZERO);
    }

    #[test]
    fn defaults_and_errors() {
        let t: Table = toml::from_str("concurrency = 32\nreload_window_ms = 0\n").unwrap();
        let c = RespondConfig::parse(&t).unwrap();
        assert_eq!(c.concurrency, 32);
        assert_eq!(c.reload_window, Duration::ZERO);
        assert_eq!(c.history_keep, 10);
        let t: Table = toml::from_str("history_keep = 1\n").unwrap();
        let (field, msg) = RespondConfig::parse(&t).unwrap_err();
        assert_eq!(field, "respond.history_keep");
        assert!(msg.contains("from 2"), "{msg}");
        let t: Table = toml::from_str("verify_timeout = 3\n").unwrap();
        let (field, msg) = RespondConfig::parse(&t).unwrap_err();
        assert_eq!(field, "respond.verify_timeout");
        assert!(msg.contains("verify_timeout_secs"), "{msg}");
        let t: Table = toml::from_str("replacement_rate = \"300/m\"\n").unwrap();
        let r = RespondConfig::parse(&t).unwrap().replacement_rate.unwrap();
        assert_eq!(r.interval(), Duration::from_millis(200));
        assert_eq!(r.to_string(), "300/m");
        for bad in ["0/s", "10", "10/d", "x/s"] {
            assert!(Rate::parse(bad).is_err(), "{bad}");
        }
        let t: Table = toml::from_str("replacement_rate = 5\n").unwrap();
        let (field, _) = RespondConfig::parse(&t).unwrap_err();
        assert_eq!(field, "respond.replacement_rate");
    }
}
