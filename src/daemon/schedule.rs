//! Job schedules: `[schedule]` in the configuration, one standard five-field cron expression
//! per job (minute, hour, day of month, month, day of week), in UTC.
//!
//! ```toml
//! [schedule]
//! scan = "*/15 * * * *"          # the detectors over the inventory, then the policy acts
//! ca_check = "0 */6 * * *"       # revocation status, CRLs and ARI renewal windows, then act
//! respond = "* * * * *"          # decide open signals, re-escalate waiting cases
//! crl_publish = "0 * * * *"      # internal CAs publish a fresh CRL when it is due
//! exposure_scan = "30 3 * * *"   # look for private keys in `exposure_paths`
//! exposure_paths = ["/srv/git"]
//! ct_poll = "*/5 * * * *"        # read what the CT logs added; unauthorized issuance
//! ```
//!
//! The day of week is written by name (`MON-FRI`, `SUN`): cron implementations disagree on
//! what its numbers mean (0 or 7 for Sunday here, 1 for Sunday there), so numbers are refused
//! rather than guessed.

use std::path::PathBuf;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::Serialize;

/// The jobs a schedule can name.
pub const JOBS: &[&str] = &[
    "scan",
    "ca_check",
    "respond",
    "crl_publish",
    "exposure_scan",
    "ct_poll",
];

/// One job on its schedule.
#[derive(Debug, Clone, Serialize)]
pub struct Job {
    /// The job's name (one of [`JOBS`]).
    pub name: String,
    /// The expression as written.
    pub expression: String,
    #[serde(skip)]
    schedule: cron::Schedule,
}

impl PartialEq for Job {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.expression == other.expression
    }
}

impl Eq for Job {}

impl Job {
    /// Parses a job's five-field expression.
    pub fn new(name: &str, expression: &str) -> Result<Self, String> {
        Ok(Self {
            name: name.to_string(),
            expression: expression.to_string(),
            schedule: parse(expression)?,
        })
    }

    /// The first time strictly after `after` the job is due.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.schedule.after(&after).next()
    }
}

/// The `[schedule]` table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ScheduleConfig {
    /// The jobs, in the order written.
    pub jobs: Vec<Job>,
    /// Where `exposure_scan` looks.
    pub exposure_paths: Vec<PathBuf>,
}

/// Parses a standard five-field cron expression.
pub fn parse(expression: &str) -> Result<cron::Schedule, String> {
    let fields: Vec<&str> = expression.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "`{expression}` has {} fields; write the five of standard cron: minute hour day-of-month month day-of-week, such as \"*/15 * * * *\"",
            fields.len()
        ));
    }
    let dow = fields[4];
    if dow.chars().any(|c| c.is_ascii_digit()) {
        return Err(format!(
            "`{expression}`: the day of week `{dow}` is a number, which cron implementations read differently (is 0 Sunday or Monday? is 7?); write it by name, such as MON-FRI or SUN"
        ));
    }
    // The cron crate reads seconds first and counts days of week from 1 = Sunday; with
    // names only (above), the meaning is the standard one.
    cron::Schedule::from_str(&format!("0 {}", fields.join(" ")))
        .map_err(|e| format!("`{expression}` is not a valid cron expression: {e}"))
}

/// Parses the `[schedule]` table; errors are `(field, message)`.
pub fn parse_table(
    t: &toml::Table,
    base: &std::path::Path,
) -> Result<ScheduleConfig, (String, String)> {
    let mut out = ScheduleConfig::default();
    for (key, value) in t {
        if key == "exposure_paths" {
            let Some(a) = value.as_array() else {
                return Err((key.clone(), "must be an array of directory paths".into()));
            };
            for (i, v) in a.iter().enumerate() {
                match v.as_str() {
                    Some(p) if !p.is_empty() => {
                        let p = PathBuf::from(p);
                        out.exposure_paths
                            .push(if p.is_absolute() { p } else { base.join(p) });
                    }
                    _ => {
                        return Err((
                            format!("exposure_paths[{i}]"),
                            "must be a non-empty path".into(),
                        ));
                    }
                }
            }
            continue;
        }
        if !JOBS.contains(&key.as_str()) {
            let mut known: Vec<&str> = JOBS.to_vec();
            known.push("exposure_paths");
            let hint = certresponder_inventory::did_you_mean(key, &known)
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_else(|| format!(" (known jobs: {})", JOBS.join(", ")));
            return Err((key.clone(), format!("unknown job{hint}")));
        }
        let Some(expr) = value.as_str() else {
            return Err((
                key.clone(),
                format!(
                    "must be a cron expression in quotes, such as \"*/15 * * * *\", found {value}"
                ),
            ));
        };
        out.jobs
            .push(Job::new(key, expr).map_err(|e| (key.clone(), e))?);
    }
    if out.jobs.iter().any(|j| j.name == "exposure_scan") && out.exposure_paths.is_empty() {
        return Err((
            "exposure_paths".into(),
            "`exposure_scan` is scheduled but `exposure_paths` names nowhere to look".into(),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn five_fields_and_named_days() {
        let j = Job::new("scan", "*/15 * * * *").unwrap();
        assert_eq!(
            j.next_after(at("2026-11-27T10:07:30Z")),
            Some(at("2026-11-27T10:15:00Z"))
        );
        // 2026-11-27 is a Friday: the next weekday 09:00 is Monday the 30th.
        let j = Job::new("scan", "0 9 * * MON-FRI").unwrap();
        assert_eq!(
            j.next_after(at("2026-11-27T10:00:00Z")),
            Some(at("2026-11-30T09:00:00Z"))
        );
        let e = Job::new("scan", "0 9 * * 1-5").unwrap_err();
        assert!(e.contains("by name") && e.contains("MON-FRI"), "{e}");
        let e = Job::new("scan", "0 0 9 * * *").unwrap_err();
        assert!(e.contains("6 fields"), "{e}");
        assert!(Job::new("scan", "61 * * * *").is_err());
    }

    #[test]
    fn every_job_the_daemon_runs_can_be_scheduled() {
        let text: String = JOBS
            .iter()
            .map(|j| format!("{j} = \"*/5 * * * *\"\n"))
            .chain(["exposure_paths = [\"/srv\"]\n".to_string()])
            .collect();
        let t: toml::Table = toml::from_str(&text).unwrap();
        let cfg = parse_table(&t, std::path::Path::new("/etc")).unwrap();
        let names: Vec<&str> = cfg.jobs.iter().map(|j| j.name.as_str()).collect();
        for job in [
            "scan",
            "ca_check",
            "respond",
            "crl_publish",
            "exposure_scan",
            "ct_poll",
        ] {
            assert!(names.contains(&job), "{job} cannot be scheduled: {names:?}");
        }
    }

    #[test]
    fn table_errors_name_the_field() {
        let t: toml::Table = toml::from_str("scna = \"* * * * *\"\n").unwrap();
        let (f, m) = parse_table(&t, std::path::Path::new("/etc")).unwrap_err();
        assert_eq!(f, "scna");
        assert!(m.contains("did you mean `scan`"), "{m}");
        let t: toml::Table = toml::from_str("exposure_scan = \"0 3 * * *\"\n").unwrap();
        assert_eq!(
            parse_table(&t, std::path::Path::new("/etc")).unwrap_err().0,
            "exposure_paths"
        );
        let t: toml::Table = toml::from_str(
            "exposure_scan = \"0 3 * * *\"\nexposure_paths = [\"git\"]\nscan = \"*/5 * * * *\"\n",
        )
        .unwrap();
        let s = parse_table(&t, std::path::Path::new("/etc")).unwrap();
        assert_eq!(s.exposure_paths, [PathBuf::from("/etc/git")]);
        assert_eq!(s.jobs.len(), 2);
    }
}
