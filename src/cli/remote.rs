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
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;

use super::table::{Cell, Tone, render};
use super::{CliError, load_config};
use crate::config::Config;
use crate::daemon::control::{MAX_BODY, Status};

// What the daemon answers with is what these commands compute without it: the daemon
// calls the same code (`cli`'s other modules are private to it).
#[cfg(test)]
pub(crate) use super::inventory::open_store;

/// How long connecting to the socket may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
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

/// Connects to the daemon's control socket, with errors that say what to do.
pub(crate) async fn connect(socket: &Path) -> Result<tokio::net::UnixStream, String> {
    let where_ = socket.display();
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::UnixStream::connect(socket))
        .await
        .map_err(|_| format!("the daemon's control socket {where_} did not accept a connection"))?
        .map_err(|e| match e.kind() {
            ErrorKind::PermissionDenied => format!(
                "the daemon's control socket {where_} refuses this user: only its owner and its group may use it"
            ),
            ErrorKind::NotFound | ErrorKind::ConnectionRefused => {
                format!("the daemon is not running (no control socket answers at {where_})")
            }
            _ => format!("cannot connect to the daemon's control socket {where_}: {e}"),
        })?;
    Ok(stream)
}

/// One HTTP/1 exchange on a new connection to `socket`.
pub(crate) async fn send(
    socket: &Path,
    method: Method,
    path: &str,
    body: Bytes,
) -> Result<(StatusCode, Bytes), String> {
    let where_ = socket.display();
    let stream = connect(socket).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("talking to the daemon at {where_}: {e}"))?;
    let conn = tokio::spawn(conn);
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, "certresponder")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, "application/json")
        .body(Full::new(body))
        .map_err(|e| format!("building the request for {path}: {e}"))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("the daemon at {where_} gave no answer to {path}: {e}"))?;
    let status = resp.status();
    let bytes = Limited::new(resp.into_body(), 64 * MAX_BODY)
        .collect()
        .await
        .map_err(|e| format!("reading the daemon's answer to {path}: {e}"))?
        .to_bytes();
    conn.abort();
    Ok((status, bytes))
}

/// Has the running daemon run `jobs` now, one after the other (each after the job it is
/// running, if any), and prints how each went: `NAME (run by the daemon): RESULT`, or a JSON
/// array of `{"job", "ok", "result"}`. Exit 1 when a job failed, else 0: the daemon's policy
/// has already acted on what the jobs found (see `signals` and `cases list`).
pub(crate) fn run_jobs(cfg: &Config, jobs: &[&str], json: bool) -> Result<ExitCode, CliError> {
    let mut results = Vec::new();
    for job in jobs {
        let r: serde_json::Value =
            post_as(cfg, &format!("/v1/jobs/{job}/run"), &serde_json::json!({}))?;
        if !json {
            let line = format!(
                "{job} (run by the daemon): {}",
                r["result"].as_str().unwrap_or_default()
            );
            if r["ok"] == true {
                println!("{line}");
            } else {
                eprintln!("{line}");
            }
        }
        results.push(r);
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    }
    Ok(if results.iter().all(|r| r["ok"] == true) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
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
