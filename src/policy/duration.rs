//! Durations as policies write them: a whole number and one unit, `90s`, `30m`, `24h`, `5d`.

use chrono::Duration;

/// The longest duration a policy may name: ten years, far past any certificate's lifetime.
const MAX_SECONDS: i64 = 3650 * 86_400;

/// Parses `90s`, `30m`, `24h` or `5d`. Zero is accepted here; callers that need a positive
/// duration say so in their own error.
pub fn parse(s: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "`{s}` is not a duration: write a whole number and a unit, such as \"90s\", \"30m\", \"24h\" or \"5d\""
        )
    };
    let t = s.trim();
    let Some(unit) = t.chars().last() else {
        return Err(bad());
    };
    let num = &t[..t.len() - unit.len_utf8()];
    if num.is_empty() || !num.chars().all(|c| c.is_ascii_digit()) {
        return Err(bad());
    }
    let n: i64 = num.parse().map_err(|_| bad())?;
    let per = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3_600,
        'd' => 86_400,
        _ => return Err(bad()),
    };
    match n.checked_mul(per) {
        Some(secs) if secs <= MAX_SECONDS => Ok(Duration::seconds(secs)),
        _ => Err(format!("`{s}` is longer than ten years")),
    }
}

/// Writes a duration in the largest unit that divides it evenly (`5d`, `36h`, `90s`); one
/// day is written `24h`, as the Baseline Requirements say it.
pub fn format(d: Duration) -> String {
    let secs = d.num_seconds();
    if secs == 0 {
        return "0s".into();
    }
    if secs % 86_400 == 0 && secs > 86_400 {
        return format!("{}d", secs / 86_400);
    }
    for (unit, per) in [("h", 3_600), ("m", 60)] {
        if secs % per == 0 {
            return format!("{}{unit}", secs / per);
        }
    }
    format!("{secs}s")
}

/// Serde helper: an optional duration written as `format` writes it.
pub(crate) fn serialize_opt<S: serde::Serializer>(
    d: &Option<Duration>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&format(*d)),
        None => s.serialize_none(),
    }
}

/// Serde helper: a duration written as `format` writes it.
pub(crate) fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format(*d))
}
