//! The CLI's side of the control socket: while the daemon runs it holds the database, so
//! the commands that read or change it (`status`, `cases`, `approve`, `deny`, `rollback`,
//! `signals`, `inventory list`) ask the daemon over HTTP on its Unix socket instead (see
//! [`crate::daemon::control`] for the API). With no daemon they open the database
//! themselves.

use std::io::ErrorKind;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, StatusCode};
use serde::de::DeserializeOwned;

use super::table::{Cell, Tone, render};
use super::{CliError, load_config};
use crate::config::Config;
use crate::daemon::control::Status;
use crate::daemon::control::client::send;

// What the daemon answers with is what these commands compute without it: the daemon
// calls the same code (`cli`'s other modules are private to it).
#[cfg(test)]
pub(crate) use super::inventory::open_store;

/// How long a request may take: a rollback restores, reloads and verifies.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(600);

/// Whether a daemon answers on the configured control socket: the socket exists and
/// accepts a connection, or refuses this user (it runs, but only its group may use it).
pub(crate) fn daemon_running(cfg: &Config) -> bool {
    let path = &cfg.daemon.control_socket;
    if !path.exists() {
        return false;
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => true,
        Err(e) => e.kind() == ErrorKind::PermissionDenied,
    }
}

/// `GET path`, the answer read as `T`.
pub(crate) fn get_as<T: DeserializeOwned>(cfg: &Config, path: &str) -> Result<T, CliError> {
    decode(call(cfg, Method::GET, path, None)?)
}

/// `POST path` with a JSON body, the answer read as `T`.
#[cfg(test)]
pub(crate) fn post_as<T: DeserializeOwned>(
    cfg: &Config,
    path: &str,
    body: &serde_json::Value,
) -> Result<T, CliError> {
    decode(call(cfg, Method::POST, path, Some(body))?)
}

fn decode<T: DeserializeOwned>(v: serde_json::Value) -> Result<T, CliError> {
    serde_json::from_value(v).map_err(|e| {
        CliError::Failure(anyhow::anyhow!(
            "the daemon's answer cannot be read: {e} (is it the same release as this command?)"
        ))
    })
}

/// Sends one request and returns the JSON answer of a 2xx; the daemon's refusals (4xx)
/// are input errors carrying its reason, the rest failures.
fn call(
    cfg: &Config,
    method: Method,
    path: &str,
    body: Option<&serde_json::Value>,
) -> Result<serde_json::Value, CliError> {
    let socket = &cfg.daemon.control_socket;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let body = match body {
        Some(b) => Bytes::from(serde_json::to_vec(b)?),
        None => Bytes::new(),
    };
    let (status, bytes) = rt
        .block_on(async {
            tokio::time::timeout(REQUEST_TIMEOUT, send(socket, method, path, body))
                .await
                .unwrap_or_else(|_| {
                    Err(format!(
                        "the daemon did not answer within {}s",
                        REQUEST_TIMEOUT.as_secs()
                    ))
                })
        })
        .map_err(|e| CliError::Failure(anyhow::anyhow!("{e}")))?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
        CliError::Failure(anyhow::anyhow!(
            "the daemon answered {status} with a body that is not JSON: {e}"
        ))
    })?;
    if status.is_success() {
        return Ok(value);
    }
    let reason = value["error"]
        .as_str()
        .map_or_else(|| value.to_string(), str::to_string);
    Err(match status {
        StatusCode::BAD_REQUEST
        | StatusCode::FORBIDDEN
        | StatusCode::NOT_FOUND
        | StatusCode::CONFLICT
        | StatusCode::PAYLOAD_TOO_LARGE => CliError::Input(anyhow::anyhow!("{reason}")),
        StatusCode::SERVICE_UNAVAILABLE => CliError::Failure(anyhow::anyhow!("{reason}")),
        other => CliError::Failure(anyhow::anyhow!("the daemon answered {other}: {reason}")),
    })
}

/// `certresponder status`.
pub(crate) fn run_status(config: Option<&Path>, json: bool) -> Result<ExitCode, CliError> {
    let cfg = load_config(config)?;
    if !daemon_running(&cfg) {
        return Err(CliError::Failure(anyhow::anyhow!(
            "the daemon is not running (no control socket at {})",
            cfg.daemon.control_socket.display()
        )));
    }
    let v: serde_json::Value = get_as(&cfg, "/v1/status")?;
    if json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    let st: Status = decode(v)?;
    print!("{}", status_text(&st));
    Ok(ExitCode::SUCCESS)
}

fn when(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map_or_else(|| "-".into(), |t| t.format("%Y-%m-%d %H:%M:%S").to_string())
}

/// `status` for people.
fn status_text(st: &Status) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "daemon:   running since {} UTC (pid {}, certresponder {}){}",
        st.started_at.format("%Y-%m-%d %H:%M:%S"),
        st.pid,
        st.version,
        if st.stopping {
            "; STOPPING: no new work is taken"
        } else {
            ""
        }
    );
    let _ = writeln!(
        o,
        "config:   {}, loaded {} UTC",
        st.config
            .source
            .as_ref()
            .map_or_else(|| "(built-in defaults)".into(), |p| p.display().to_string()),
        st.config.loaded_at.format("%Y-%m-%d %H:%M:%S")
    );
    let cases = if st.cases.is_empty() {
        "none".to_string()
    } else {
        st.cases
            .iter()
            .map(|(state, n)| format!("{n} {}", state.replace('_', " ")))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = writeln!(o, "cases:    {cases}");
    let _ = writeln!(o, "signals:  {} open", st.signals_open);
    if !st.unreadable_records.is_empty() {
        let _ = writeln!(
            o,
            "store:    {} record{} cannot be read and {} skipped (the service log and the audit log name {}):",
            st.unreadable_records.len(),
            if st.unreadable_records.len() == 1 {
                ""
            } else {
                "s"
            },
            if st.unreadable_records.len() == 1 {
                "is"
            } else {
                "are"
            },
            if st.unreadable_records.len() == 1 {
                "it"
            } else {
                "them"
            },
        );
        for r in &st.unreadable_records {
            let _ = writeln!(o, "          {r}");
        }
    }
    let b = &st.breaker;
    let state = match (&b.open, b.open_owners.is_empty()) {
        (Some(o), _) => format!(
            "OPEN since {} UTC ({})",
            o.at.format("%Y-%m-%d %H:%M"),
            o.why
        ),
        (None, true) => "closed".into(),
        (None, false) => format!("open for {}", b.open_owners.join(", ")),
    };
    let _ = writeln!(
        o,
        "breaker:  {state}; {} automatic revocation{} in the last {} (limit {}){}",
        b.in_window,
        if b.in_window == 1 { "" } else { "s" },
        crate::govern::human_duration(chrono::Duration::seconds(b.window_secs)),
        b.max_revocations,
        if b.held.is_empty() {
            String::new()
        } else {
            format!("; holds case {}", join(&b.held))
        }
    );
    if !st.waiting.is_empty() {
        let _ = writeln!(
            o,
            "waiting:  case {} (`certresponder approve CASE`)",
            join(&st.waiting)
        );
    }
    if st.jobs.is_empty() {
        let _ = writeln!(o, "jobs:     none scheduled");
        return o;
    }
    let rows: Vec<Vec<Cell>> = st
        .jobs
        .iter()
        .map(|(name, j)| {
            let tone = if j.last_failed {
                Tone::Alert
            } else {
                Tone::Plain
            };
            vec![
                Cell::plain(name.clone()),
                Cell::plain(j.schedule.clone()),
                Cell::plain(when(j.next_run)),
                Cell::plain(when(j.last_started)),
                Cell::plain(j.runs.to_string()),
                Cell::toned(j.last_result.clone().unwrap_or_else(|| "-".into()), tone),
            ]
        })
        .collect();
    o.push_str(&render(
        &[
            "JOB",
            "SCHEDULE",
            "NEXT RUN",
            "LAST RUN",
            "RUNS",
            "LAST RESULT",
        ],
        &rows,
    ));
    o
}

fn join(ids: &[u64]) -> String {
    ids.iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::super::CliError;

    #[tokio::test(flavor = "multi_thread")]
    async fn the_cli_asks_the_daemon_and_reports_its_refusals() {
        use super::super::remote;
        use crate::daemon::control::tests::{Daemon, TWO_PERSON};
        use serde_json::{Value, json};
        use std::time::Duration;
        let d = Daemon::start(Some(TWO_PERSON)).await;
        d.register("web").await;
        d.register("api").await;
        let cfg = d.shared.loaded().cfg.clone();
        // In a blocking task: the CLI's client runs a runtime of its own.
        let ask = |f: fn(&crate::config::Config) -> Result<Value, CliError>| {
            let cfg = cfg.clone();
            tokio::task::spawn_blocking(move || f(&cfg))
        };
        assert!(remote::daemon_running(&cfg));
        let listing = ask(|cfg| remote::get_as(cfg, "/v1/inventory"))
            .await
            .unwrap()
            .unwrap();
        let names: Vec<&str> = listing["certificates"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["item"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["api", "web"], "{listing:#}");

        let (_, v) = d.expose("web").await;
        let id = v["applied"]["waiting"][0].as_u64().unwrap();
        let approve = |cfg: &crate::config::Config| {
            remote::post_as::<Value>(cfg, "/v1/cases/1/approve", &json!({}))
        };
        assert_eq!(id, 1);
        ask(approve).await.unwrap().unwrap();
        match ask(approve).await.unwrap() {
            Err(CliError::Input(e)) => assert!(e.to_string().contains("already approved"), "{e}"),
            other => panic!("{other:?}"),
        }
        match ask(|cfg| remote::get_as(cfg, "/v1/cases/7")).await.unwrap() {
            Err(CliError::Input(e)) => assert!(e.to_string().contains("no case 7"), "{e}"),
            other => panic!("{other:?}"),
        }

        // While the daemon runs, a command that opens the database itself is told why it
        // cannot.
        let held = crate::store::SledStore::open(&cfg.db_path()).unwrap();
        let err = ask(|cfg| remote::open_store(cfg).map(|_| Value::Null))
            .await
            .unwrap()
            .unwrap_err();
        drop(held);
        match err {
            CliError::Failure(e) => assert!(
                e.to_string().contains("in use by the running daemon"),
                "{e}"
            ),
            other => panic!("{other:?}"),
        }

        // A socket nothing answers on any more is no daemon: the CLI works on its own.
        d.server.abort();
        let start = std::time::Instant::now();
        while remote::daemon_running(&cfg) {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the socket still answers"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(cfg.daemon.control_socket.exists());
    }
}
