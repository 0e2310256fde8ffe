//! The metrics endpoint: the daemon's state in the Prometheus text exposition format
//! (version 0.0.4), served over plain HTTP/1 at `GET /metrics` on the optional
//! `daemon.metrics_listen` address.
//!
//! Everything is read from the store and the daemon's shared state at scrape time, so the
//! numbers are the ones `certresponder status` would show. A store read that fails leaves
//! out the metrics it feeds and counts in `certresponder_scrape_errors`; a scrape never
//! fails as a whole.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt::{Display, Write as _};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use certresponder_inventory::Bundle;
use chrono::{DateTime, Utc};
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use super::Shared;
use crate::govern::BreakerState;
use crate::records::case::{CaseState, StepOutcome};
use crate::signals::Confidence;
use crate::store::CertStatus;

/// The media type of the text exposition format.
const MEDIA_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upper bounds (seconds) of the step duration histogram's buckets, `+Inf` aside: from a
/// key generation or snapshot (well under a second) to an ACME order or a verification
/// that waits for a slow reload (minutes).
const STEP_BUCKETS: [f64; 7] = [0.1, 0.5, 1.0, 5.0, 30.0, 120.0, 600.0];

/// How long a client may take to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Renders every metric as of `now`. Store errors are logged and counted in
/// `certresponder_scrape_errors`; the metrics that could be read are still rendered.
pub fn render(shared: &Shared, now: DateTime<Utc>) -> String {
    let store = shared.store.as_ref();
    let loaded = shared.loaded();
    let mut out = Exposition::default();
    let mut errors = 0u64;

    // Signals by check, confidence and state.
    let signals = read(&mut errors, "signals", store.list_signals());
    out.family(
        "certresponder_signals",
        "gauge",
        "Stored signals by check, confidence and state (open, suppressed, resolved).",
    );
    let mut by_kind: BTreeMap<(&str, &str, &str), u64> = BTreeMap::new();
    for s in signals.iter().flatten() {
        *by_kind
            .entry((
                s.check.as_str(),
                confidence_name(s.confidence),
                s.state_name(now),
            ))
            .or_default() += 1;
    }
    for ((check, confidence, state), n) in by_kind {
        out.sample(
            "certresponder_signals",
            &[
                ("check", check),
                ("confidence", confidence),
                ("state", state),
            ],
            n,
        );
    }

    // Cases by state, and how long their steps took.
    let cases = read(&mut errors, "cases", store.list_cases());
    out.family("certresponder_cases", "gauge", "Cases by state.");
    if let Some(cases) = &cases {
        // Every state is reported, zero or not, so that a dashboard sees 0 rather than
        // nothing once the last failed case is dealt with.
        let mut by_state: BTreeMap<String, u64> = [
            CaseState::AwaitingApproval,
            CaseState::Denied,
            CaseState::Running,
            CaseState::Done,
            CaseState::Failed,
            CaseState::RevocationNeeded,
            CaseState::Unconfirmed,
        ]
        .iter()
        .map(|s| (s.to_string(), 0))
        .collect();
        for c in cases {
            *by_state.entry(c.state.to_string()).or_default() += 1;
        }
        for (state, n) in &by_state {
            out.sample("certresponder_cases", &[("state", state)], n);
        }
    }
    out.family(
        "certresponder_step_duration_seconds",
        "histogram",
        "Durations of the finished steps in the stored case journals, by step and outcome.",
    );
    let mut steps: BTreeMap<(String, String), Histogram> = BTreeMap::new();
    for rec in cases.iter().flatten().flat_map(|c| &c.journal) {
        let Some(finished) = rec.finished_at else {
            continue;
        };
        if rec.outcome == StepOutcome::Started {
            continue;
        }
        // A clock stepped back between start and finish would give a negative duration.
        let secs = ((finished - rec.started_at).num_milliseconds().max(0) as f64) / 1000.0;
        steps
            .entry((rec.step.to_string(), rec.outcome.to_string()))
            .or_default()
            .observe(secs);
    }
    for ((step, outcome), h) in &steps {
        h.write(
            &mut out,
            "certresponder_step_duration_seconds",
            &[("step", step), ("outcome", outcome)],
        );
    }

    // The blast-radius breaker. Every family's samples follow its HELP and TYPE lines
    // (the format wants each family in one group), so the state is read first.
    let limits = &loaded.gov.policy().limits;
    let breaker = read(&mut errors, "breaker", BreakerState::load(store)).map(|mut state| {
        state.prune(limits, now);
        state
    });
    out.family(
        "certresponder_breaker_open",
        "gauge",
        "1 when the blast-radius breaker holds automatic revocations (for every owner or for some).",
    );
    if let Some(state) = &breaker {
        let open = state.open.is_some() || !state.open_owners.is_empty();
        out.sample("certresponder_breaker_open", &[], u8::from(open));
    }
    out.family(
        "certresponder_breaker_open_owners",
        "gauge",
        "Owners the breaker holds individually (their own limit was reached).",
    );
    if let Some(state) = &breaker {
        out.sample(
            "certresponder_breaker_open_owners",
            &[],
            state.open_owners.len(),
        );
    }
    out.family(
        "certresponder_breaker_revocations_in_window",
        "gauge",
        "Automatic revocations admitted within the breaker's window.",
    );
    if let Some(state) = &breaker {
        out.sample(
            "certresponder_breaker_revocations_in_window",
            &[],
            state.admitted.len(),
        );
    }
    out.family(
        "certresponder_breaker_revocation_limit",
        "gauge",
        "The policy's limit of automatic revocations per window, all owners together.",
    );
    out.sample(
        "certresponder_breaker_revocation_limit",
        &[],
        limits.max_revocations,
    );
    out.family(
        "certresponder_breaker_held_cases",
        "gauge",
        "Cases the breaker holds for a person's approval.",
    );
    if let Some(cases) = &cases {
        let held = cases
            .iter()
            .filter(|c| {
                c.state == CaseState::AwaitingApproval
                    && c.approval.as_ref().is_some_and(|a| a.held_by_breaker)
            })
            .count();
        out.sample("certresponder_breaker_held_cases", &[], held);
    }

    out.family(
        "certresponder_store_unreadable_records",
        "gauge",
        "Stored records that cannot be read and are skipped by listings, the policy and resume.",
    );
    out.sample(
        "certresponder_store_unreadable_records",
        &[],
        store.unreadable().len(),
    );

    // Seconds to expiry of every active certificate's current bundle.
    out.family(
        "certresponder_certificate_expiry_seconds",
        "gauge",
        "Seconds until the current certificate of each active entry expires (negative once expired).",
    );
    for rec in read(&mut errors, "certificates", store.list_certs())
        .into_iter()
        .flatten()
        .filter(|r| r.status == CertStatus::Active)
    {
        let name = rec.entry.name.to_string();
        let Some(history) = read(&mut errors, "bundles", store.bundles(&name)) else {
            continue;
        };
        if let Some(current) = Bundle::current_of(&history) {
            out.sample(
                "certresponder_certificate_expiry_seconds",
                &[("cert", &name), ("owner", &rec.entry.owner)],
                (current.not_after - now).num_seconds(),
            );
        }
    }

    // Scheduled jobs.
    let jobs = match shared.jobs.lock() {
        Ok(j) => j.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    };
    out.family(
        "certresponder_job_runs_total",
        "counter",
        "Runs of each scheduled job since the daemon started.",
    );
    for (name, j) in &jobs {
        out.sample("certresponder_job_runs_total", &[("job", name)], j.runs);
    }
    out.family(
        "certresponder_job_last_failed",
        "gauge",
        "1 when the job's last run failed.",
    );
    for (name, j) in &jobs {
        out.sample(
            "certresponder_job_last_failed",
            &[("job", name)],
            u8::from(j.last_failed),
        );
    }
    out.family(
        "certresponder_job_last_finished_timestamp_seconds",
        "gauge",
        "When the job's last run ended (Unix time).",
    );
    for (name, j) in &jobs {
        if let Some(at) = j.last_finished {
            out.sample(
                "certresponder_job_last_finished_timestamp_seconds",
                &[("job", name)],
                unix_seconds(at),
            );
        }
    }

    // CT monitoring: per configured log, how far behind the newest verified tree head the
    // monitor is, and how old that head is.
    if !loaded.cfg.ct.logs.is_empty() {
        let states = read(
            &mut errors,
            "ct",
            crate::ct::poll::status(store, &loaded.cfg.ct),
        );
        if let Some(states) = states {
            out.family(
                "certresponder_ct_lag_entries",
                "gauge",
                "Entries in the log's newest verified tree head not read yet.",
            );
            for (name, st) in &states {
                out.sample(
                    "certresponder_ct_lag_entries",
                    &[("log", name)],
                    st.sth_size.saturating_sub(st.position.tree_size),
                );
            }
            out.family(
                "certresponder_ct_sth_age_seconds",
                "gauge",
                "Age of the log's newest verified tree head (-1: none yet).",
            );
            for (name, st) in &states {
                let age = st.sth_time.map_or(-1, |t| (now - t).num_seconds());
                out.sample("certresponder_ct_sth_age_seconds", &[("log", name)], age);
            }
            out.family(
                "certresponder_ct_log_failing",
                "gauge",
                "1 when the last poll of the log failed or it misbehaved.",
            );
            for (name, st) in &states {
                out.sample(
                    "certresponder_ct_log_failing",
                    &[("log", name)],
                    u8::from(st.last_error.is_some()),
                );
            }
        }
    }

    // The daemon itself.
    out.family(
        "certresponder_up_since_timestamp_seconds",
        "gauge",
        "When the daemon started (Unix time).",
    );
    out.sample(
        "certresponder_up_since_timestamp_seconds",
        &[],
        unix_seconds(shared.started_at),
    );
    out.family(
        "certresponder_config_loaded_timestamp_seconds",
        "gauge",
        "When the configuration and policy in force were loaded (Unix time).",
    );
    out.sample(
        "certresponder_config_loaded_timestamp_seconds",
        &[],
        unix_seconds(loaded.loaded_at),
    );
    out.family(
        "certresponder_scrape_errors",
        "gauge",
        "Store reads that failed during this scrape; the metrics they feed are missing.",
    );
    out.sample("certresponder_scrape_errors", &[], errors);
    out.text
}

/// Serves `GET /metrics` on `listener` until the future is dropped; anything else is 404.
/// Connections are dropped with it.
pub async fn serve(shared: Arc<Shared>, listener: TcpListener) {
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors and the like: wait rather than spin.
                tracing::warn!(error = %e, "metrics endpoint: accept failed");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        while conns.try_join_next().is_some() {}
        let shared = Arc::clone(&shared);
        conns.spawn(async move {
            let service = service_fn(move |req| answer(Arc::clone(&shared), req));
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "metrics endpoint: connection ended with an error");
            }
        });
    }
}

/// Answers one request.
async fn answer(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.method() != Method::GET || req.uri().path() != "/metrics" {
        return Ok(plain(
            StatusCode::NOT_FOUND,
            "not found: metrics are at GET /metrics\n".into(),
        ));
    }
    // The store is synchronous and may touch the disk.
    Ok(
        match tokio::task::spawn_blocking(move || render(&shared, Utc::now())).await {
            Ok(text) => plain(StatusCode::OK, text),
            Err(e) => {
                tracing::error!(error = %e, "metrics endpoint: rendering failed");
                plain(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "rendering the metrics failed; see the daemon's log\n".into(),
                )
            }
        },
    )
}

/// A text response.
fn plain(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(MEDIA_TYPE));
    resp
}

/// The value of a store read, or `None` after logging and counting its error.
fn read<T, E: Display>(errors: &mut u64, what: &'static str, r: Result<T, E>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::warn!(error = %e, read = what, "metrics: store read failed");
            *errors += 1;
            None
        }
    }
}

/// The confidence's name as signals are shown and stored.
fn confidence_name(c: Confidence) -> &'static str {
    match c {
        Confidence::Low => "low",
        Confidence::Medium => "medium",
        Confidence::High => "high",
        Confidence::Confirmed => "confirmed",
    }
}

/// Unix time in seconds, with milliseconds.
fn unix_seconds(at: DateTime<Utc>) -> f64 {
    at.timestamp_millis() as f64 / 1000.0
}

/// A sample value as the exposition format writes it (Go's float syntax).
fn float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        // Rust prints finite floats in plain decimal, which Prometheus parses.
        v.to_string()
    }
}

/// One histogram series.
#[derive(Default)]
struct Histogram {
    /// Observations at or under each bound of [`STEP_BUCKETS`] (not yet cumulative).
    buckets: [u64; STEP_BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, v: f64) {
        if let Some(i) = STEP_BUCKETS.iter().position(|b| v <= *b) {
            self.buckets[i] += 1;
        }
        self.count += 1;
        self.sum += v;
    }

    /// Writes `_bucket` (cumulative, ending with `+Inf`), `_sum` and `_count`.
    fn write(&self, out: &mut Exposition, name: &str, labels: &[(&str, &str)]) {
        let bucket = format!("{name}_bucket");
        let mut cumulative = 0;
        for (bound, n) in STEP_BUCKETS.iter().zip(self.buckets) {
            cumulative += n;
            let le = float(*bound);
            let mut l = labels.to_vec();
            l.push(("le", &le));
            out.sample(&bucket, &l, cumulative);
        }
        let mut l = labels.to_vec();
        l.push(("le", "+Inf"));
        out.sample(&bucket, &l, self.count);
        out.sample(&format!("{name}_sum"), labels, float(self.sum));
        out.sample(&format!("{name}_count"), labels, self.count);
    }
}

/// The text being written.
#[derive(Default)]
struct Exposition {
    text: String,
}

impl Exposition {
    /// Starts a metric family: its `HELP` and `TYPE` lines.
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        // Writing to a String cannot fail.
        let _ = writeln!(self.text, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    /// One sample: `name{label="value",...} value`.
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Display) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                self.text.push_str(k);
                self.text.push_str("=\"");
                for ch in v.chars() {
                    match ch {
                        '\\' => self.text.push_str("\\\\"),
                        '"' => self.text.push_str("\\\""),
                        '\n' => self.text.push_str("\\n"),
                        c => self.text.push(c),
                    }
                }
                self.text.push('"');
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {value}");
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::Arc;

    use certresponder_inventory::{BundleState, CertId, ManagedCert, Paths};
    use chrono::{Duration, Utc};
    use serde_json::json;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::daemon::Loaded;
    use crate::govern::Governor;
    use crate::policy::Policy;
    use crate::records::case::{Case, SequenceKind, Step, StepRecord, Trigger};
    use crate::respond::engine::tests::fixture;
    use crate::signals::{Finding, Signal, SignalState};
    use crate::store::{CertRecord, MemoryStore, Store};

    /// Daemon state over an empty in-memory store with the built-in policy.
    fn shared() -> (Arc<Shared>, Arc<MemoryStore>) {
        let f = fixture("");
        let store = Arc::new(MemoryStore::new());
        let engine =
            crate::respond::Engine::with_issuers(store.clone(), f.cfg.clone(), BTreeMap::new());
        let loaded = Loaded {
            cfg: f.cfg.clone(),
            gov: Arc::new(Governor::new(Arc::new(engine), Policy::builtin())),
            loaded_at: Utc::now(),
        };
        let (shared, _rx) = Shared::new(store.clone(), loaded);
        (shared, store)
    }

    fn signal(store: &dyn Store, cert: &str, check: &'static str, c: Confidence) -> Signal {
        let finding = Finding {
            check,
            confidence: c,
            message: format!("{check} found"),
            revocation_reason: None,
            deadline_hours: None,
            evidence: json!({}),
        };
        let s = Signal::from_finding(cert, "weak", &finding, Some("fp"), "test", Utc::now());
        store.put_signal(&s).unwrap();
        s
    }

    fn cert(store: &dyn Store, name: &str, owner: &str, status: CertStatus, expires_in: i64) {
        let entry = ManagedCert::new(
            CertId::new(name).unwrap(),
            owner,
            Paths::cert_only("/nonexistent/cert.pem"),
            "/nonexistent/inventory.toml",
        );
        store
            .put_cert(&CertRecord {
                entry,
                status,
                registered_at: Utc::now(),
                updated_at: Utc::now(),
            })
            .unwrap();
        // An older bundle that expires sooner, then the current one.
        let mut old = crate::store::contract::bundle(name, &format!("{name}-old"));
        old.not_after = Utc::now() - Duration::days(400);
        store.append_bundle(&old).unwrap();
        let mut b = crate::store::contract::bundle(name, &format!("{name}-new"));
        b.not_after = Utc::now() + Duration::seconds(expires_in);
        store.append_bundle(&b).unwrap();
        assert_eq!(store.bundles(name).unwrap()[1].state, BundleState::Current);
    }

    fn step(s: Step, outcome: StepOutcome, millis: Option<i64>) -> StepRecord {
        let started_at = Utc::now() - Duration::hours(1);
        StepRecord {
            step: s,
            started_at,
            finished_at: millis.map(|m| started_at + Duration::milliseconds(m)),
            outcome,
            detail: String::new(),
        }
    }

    fn case(store: &dyn Store, state: CaseState, journal: Vec<StepRecord>) {
        let trigger = Trigger {
            source: "manual".into(),
            by: "test".into(),
            why: "test".into(),
            signals: Vec::new(),
        };
        let mut c = Case::new(
            "web",
            SequenceKind::Reissue,
            false,
            None,
            trigger,
            Utc::now(),
        );
        c.id = store.next_case_id().unwrap();
        c.state = state;
        c.journal = journal;
        store.put_case(&c).unwrap();
    }

    /// Parses the text as the exposition format, line by line, and returns the samples
    /// (`name{labels}` -> value). Panics on anything Prometheus would reject.
    fn parse(text: &str) -> BTreeMap<String, f64> {
        let mut types: BTreeMap<String, String> = BTreeMap::new();
        let mut helped = BTreeSet::new();
        let mut samples = BTreeMap::new();
        // The family whose TYPE came last: a family's samples form one group after it.
        let mut current: Option<String> = None;
        let valid_name = |n: &str| {
            !n.is_empty()
                && !n.starts_with(|c: char| c.is_ascii_digit())
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
        };
        assert!(text.ends_with('\n'), "the text ends with a newline");
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, _) = rest.split_once(' ').unwrap();
                assert!(valid_name(name), "{line}");
                assert!(helped.insert(name.to_string()), "second HELP: {line}");
                continue;
            }
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                assert!(
                    ["gauge", "counter", "histogram", "summary", "untyped"].contains(&kind),
                    "{line}"
                );
                assert!(
                    types.insert(name.to_string(), kind.to_string()).is_none(),
                    "second TYPE: {line}"
                );
                current = Some(name.to_string());
                continue;
            }
            assert!(!line.starts_with('#') && !line.is_empty(), "{line:?}");
            let name_end = line.find(['{', ' ']).unwrap();
            let name = &line[..name_end];
            assert!(valid_name(name), "{line}");
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| {
                    let base = name.strip_suffix(s)?;
                    (types.get(base).map(String::as_str) == Some("histogram")).then_some(base)
                })
                .unwrap_or(name);
            assert!(types.contains_key(family), "no TYPE before {line}");
            assert_eq!(
                current.as_deref(),
                Some(family),
                "not grouped with its family: {line}"
            );
            assert!(helped.contains(family), "no HELP before {line}");
            let mut rest = &line[name_end..];
            let mut key = name.to_string();
            if let Some(labels) = rest.strip_prefix('{') {
                // label="value" pairs; values may hold escaped \\, \" and \n. Only ASCII
                // bytes are compared, so byte positions stay on character boundaries.
                let b = labels.as_bytes();
                let mut i = 0;
                let mut seen = BTreeSet::new();
                while b[i] != b'}' {
                    let eq = i + labels[i..].find('=').unwrap();
                    let lname = &labels[i..eq];
                    assert!(valid_name(lname) && seen.insert(lname), "{line}");
                    assert_eq!(b[eq + 1], b'"', "{line}");
                    i = eq + 2;
                    loop {
                        match b[i] {
                            b'\\' => {
                                assert!(matches!(b[i + 1], b'\\' | b'"' | b'n'), "{line}");
                                i += 2;
                            }
                            b'"' => {
                                i += 1;
                                break;
                            }
                            b'\n' => panic!("raw newline in {line}"),
                            _ => i += 1,
                        }
                    }
                    match b[i] {
                        b',' => i += 1,
                        b'}' => {}
                        other => panic!("unexpected {:?} in {line}", other as char),
                    }
                }
                key.push('{');
                key.push_str(&labels[..i]);
                key.push('}');
                rest = &labels[i + 1..];
            }
            let value = rest.strip_prefix(' ').unwrap();
            let v: f64 = match value {
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                v => v.parse().unwrap_or_else(|_| panic!("bad value in {line}")),
            };
            assert!(samples.insert(key, v).is_none(), "duplicate series: {line}");
        }
        samples
    }

    #[test]
    fn the_state_is_rendered_as_prometheus_text() {
        let (shared, store) = shared();
        let now = Utc::now();
        signal(store.as_ref(), "web", "fermat", Confidence::Confirmed);
        signal(store.as_ref(), "api", "fermat", Confidence::Confirmed);
        signal(store.as_ref(), "db", "expiring", Confidence::Low);
        let mut s = signal(store.as_ref(), "web", "expiring", Confidence::Low);
        s.state = SignalState::Suppressed {
            until: now + Duration::days(1),
            reason: "known".into(),
            by: "alice".into(),
            at: now,
        };
        store.put_signal(&s).unwrap();
        let mut s = signal(store.as_ref(), "old", "expiring", Confidence::Low);
        s.state = SignalState::Resolved { at: now };
        store.put_signal(&s).unwrap();
        // A check id with every character a label value must escape.
        signal(store.as_ref(), "odd", "a\\b\"c\nd", Confidence::Medium);

        case(
            store.as_ref(),
            CaseState::Done,
            vec![
                step(Step::Snapshot, StepOutcome::Ok, Some(50)),
                step(Step::Issue, StepOutcome::Ok, Some(40_000)),
                step(Step::Reload, StepOutcome::Skipped, Some(0)),
            ],
        );
        case(
            store.as_ref(),
            CaseState::Failed,
            vec![
                step(Step::Snapshot, StepOutcome::Ok, Some(150)),
                step(Step::Issue, StepOutcome::Failed, Some(3_000)),
            ],
        );
        // The step it is on has not finished: not a duration yet.
        case(
            store.as_ref(),
            CaseState::Running,
            vec![step(Step::Snapshot, StepOutcome::Started, None)],
        );

        cert(
            store.as_ref(),
            "web",
            "web-team",
            CertStatus::Active,
            86_400 * 10,
        );
        cert(
            store.as_ref(),
            "gone",
            "web-team",
            CertStatus::Active,
            -3_600,
        );
        cert(store.as_ref(), "removed", "x", CertStatus::Removed, 100);

        let mut breaker = BreakerState::default();
        breaker.record("web-team", "web", 1, now - Duration::minutes(5));
        breaker.record("web-team", "web", 1, now - Duration::days(30));
        breaker.save(store.as_ref()).unwrap();

        shared.job_started("scan");
        shared.job_finished("scan", Ok("3 signals".into()), None);
        shared.job_finished("scan", Err("boom".into()), None);
        shared.job_finished("expiry", Ok("fine".into()), None);

        let text = render(&shared, now);
        let m = parse(&text);
        let get = |k: &str| {
            *m.get(k)
                .unwrap_or_else(|| panic!("no series {k} in:\n{text}"))
        };

        assert_eq!(
            get(r#"certresponder_signals{check="fermat",confidence="confirmed",state="open"}"#),
            2.0
        );
        assert_eq!(
            get(r#"certresponder_signals{check="expiring",confidence="low",state="open"}"#),
            1.0
        );
        assert_eq!(
            get(r#"certresponder_signals{check="expiring",confidence="low",state="suppressed"}"#),
            1.0
        );
        assert_eq!(
            get(r#"certresponder_signals{check="expiring",confidence="low",state="resolved"}"#),
            1.0
        );
        assert!(
            text.contains(
                "certresponder_signals{check=\"a\\\\b\\\"c\\nd\",confidence=\"medium\",state=\"open\"} 1\n"
            ),
            "{text}"
        );

        for (state, n) in [
            ("done", 1.0),
            ("failed", 1.0),
            ("running", 1.0),
            ("awaiting_approval", 0.0),
            ("denied", 0.0),
        ] {
            assert_eq!(get(&format!("certresponder_cases{{state=\"{state}\"}}")), n);
        }

        let h = |suffix: &str, step: &str, outcome: &str, le: Option<&str>| {
            let le = le.map(|l| format!(",le=\"{l}\"")).unwrap_or_default();
            get(&format!(
                "certresponder_step_duration_seconds{suffix}{{step=\"{step}\",outcome=\"{outcome}\"{le}}}"
            ))
        };
        assert_eq!(h("_count", "snapshot", "ok", None), 2.0);
        assert!((h("_sum", "snapshot", "ok", None) - 0.2).abs() < 1e-9);
        assert_eq!(h("_bucket", "snapshot", "ok", Some("0.1")), 1.0);
        assert_eq!(h("_bucket", "snapshot", "ok", Some("0.5")), 2.0);
        assert_eq!(h("_bucket", "snapshot", "ok", Some("+Inf")), 2.0);
        assert_eq!(h("_bucket", "issue", "ok", Some("30")), 0.0);
        assert_eq!(h("_bucket", "issue", "ok", Some("120")), 1.0);
        assert_eq!(h("_bucket", "issue", "failed", Some("5")), 1.0);
        assert_eq!(h("_bucket", "reload", "skipped", Some("0.1")), 1.0);
        assert!(!text.contains("outcome=\"started\""), "{text}");

        assert_eq!(get("certresponder_breaker_open"), 0.0);
        assert_eq!(
            get("certresponder_breaker_revocations_in_window"),
            1.0,
            "the admission older than the window is not counted"
        );
        assert_eq!(get("certresponder_breaker_held_cases"), 0.0);

        let web = get(r#"certresponder_certificate_expiry_seconds{cert="web",owner="web-team"}"#);
        assert!((web - 864_000.0).abs() <= 2.0, "{web}");
        let gone = get(r#"certresponder_certificate_expiry_seconds{cert="gone",owner="web-team"}"#);
        assert!((gone + 3_600.0).abs() <= 2.0, "{gone}");
        assert!(!text.contains("cert=\"removed\""), "{text}");

        assert_eq!(get(r#"certresponder_job_runs_total{job="scan"}"#), 2.0);
        assert_eq!(get(r#"certresponder_job_last_failed{job="scan"}"#), 1.0);
        assert_eq!(get(r#"certresponder_job_last_failed{job="expiry"}"#), 0.0);
        let finished = get(r#"certresponder_job_last_finished_timestamp_seconds{job="scan"}"#);
        assert!((finished - Utc::now().timestamp() as f64).abs() < 60.0);
        let up = get("certresponder_up_since_timestamp_seconds");
        assert!((up - shared.started_at.timestamp() as f64).abs() < 1.0);
        assert_eq!(get("certresponder_scrape_errors"), 0.0);
    }

    #[test]
    fn an_open_breaker_and_an_unreadable_store_value_are_reported() {
        let (shared, store) = shared();
        let text = render(&shared, Utc::now());
        parse(&text);
        assert!(text.contains("\ncertresponder_breaker_open 0\n"), "{text}");

        let mut breaker = BreakerState::default();
        breaker.open = Some(crate::govern::breaker::Opened {
            at: Utc::now(),
            why: "storm".into(),
        });
        breaker.save(store.as_ref()).unwrap();
        let text = render(&shared, Utc::now());
        parse(&text);
        assert!(text.contains("\ncertresponder_breaker_open 1\n"), "{text}");

        // A damaged breaker record: its metrics go missing, the rest is still served.
        store.put_blob("breaker", b"not json").unwrap();
        signal(store.as_ref(), "web", "fermat", Confidence::Confirmed);
        let text = render(&shared, Utc::now());
        let m = parse(&text);
        assert_eq!(m["certresponder_scrape_errors"], 1.0);
        assert!(!m.contains_key("certresponder_breaker_open"), "{text}");
        assert_eq!(
            m[r#"certresponder_signals{check="fermat",confidence="confirmed",state="open"}"#],
            1.0
        );
        assert!(m.contains_key("certresponder_up_since_timestamp_seconds"));
    }

    async fn http_get(addr: std::net::SocketAddr, request: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(request.as_bytes()).await.unwrap();
        let mut out = String::new();
        tokio::time::timeout(
            std::time::Duration::from_secs(10),
            s.read_to_string(&mut out),
        )
        .await
        .unwrap()
        .unwrap();
        out
    }

    #[tokio::test]
    async fn the_endpoint_serves_metrics_over_http() {
        let (shared, store) = shared();
        signal(store.as_ref(), "web", "fermat", Confidence::Confirmed);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(serve(shared, listener));

        let resp = http_get(
            addr,
            "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        )
        .await;
        let (head, body) = resp.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(
            head.to_ascii_lowercase()
                .contains("\r\ncontent-type: text/plain; version=0.0.4"),
            "{head}"
        );
        let m = parse(body);
        assert_eq!(
            m[r#"certresponder_signals{check="fermat",confidence="confirmed",state="open"}"#],
            1.0
        );

        for req in [
            "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
            "GET /metricsx HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
            "POST /metrics HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        ] {
            let resp = http_get(addr, req).await;
            assert!(resp.starts_with("HTTP/1.1 404 Not Found\r\n"), "{resp}");
        }
        server.abort();
    }
}
